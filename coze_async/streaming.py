"""The stream object: one cursor over an SSE response, with several views.

``EventStream`` is opened lazily: nothing is sent until ``async with`` or the first
``async for``. Opening acquires quota (when a limiter is configured), POSTs, and waits for the
headers; from then on the response belongs to the stream, which releases it on every way out:
the terminal event, an error, ``break``, an exception in the caller's loop body, cancellation,
``aclose()``, or garbage collection. ``aclose()`` is idempotent and shielded from cancellation.

Terminal rules (design.md §3):

* ``done`` -> normal end; the ``Done`` event (and its payload) is yielded last;
* ``error`` event -> :class:`StreamErrorEvent` carrying the partial snapshot;
* the body ends before the terminal event -> :class:`IncompleteStreamError` (partial kept);
* the connection fails or times out mid-stream -> :class:`StreamInterruptedError`;
* an unknown event name -> :class:`UnknownEvent`, never dropped, never fatal.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import aiohttp

from ._http import TRANSPORT_ERRORS, read_capped, summarize
from ._json import loads
from ._shield import run_to_completion
from .errors import (
    APIError,
    ChatFailedError,
    CozeError,
    EventTooLargeError,
    IncompleteStreamError,
    InvalidEventError,
    ResponseTooLargeError,
    ResponseValidationError,
    StreamError,
    StreamErrorEvent,
    StreamInterruptedError,
    parse_code,
)
from .models.chat import Chat, ChatStatus, MessageType
from .models.events import ChatEvent, ChatSnapshot, Done, MessageDelta, accumulate_chat
from .models.wire import chat_event_from_sse
from .sse import EventTooLarge, ServerSentEvent, SSEDecoder
from .transport import Call, Transport

__all__ = ["ChatStream", "EventStream"]

E = TypeVar("E")
S = TypeVar("S")


class EventStream(Generic[E, S]):
    """Base of the chat and workflow streams: lifecycle, reading, terminal rules.

    Subclasses supply ``_parse`` (one SSE event -> a typed event, or raise), ``_accumulate``
    and ``_eof_is_end`` (whether the body may end here without the terminal event).
    """

    def __init__(self, transport: Transport, call: Call, snapshot: S) -> None:
        self._transport = transport
        self._call = call
        self._snapshot = snapshot
        self._resp: aiohttp.ClientResponse | None = None
        self._decoder = SSEDecoder(max_event_bytes=transport.max_event_bytes)
        self._queue: deque[ServerSentEvent] = deque()
        self._opened = False
        # The first bytes of the body are looked at once: an error envelope sent with an
        # event-stream content type is an answer to map, not a stream to decode.
        self._sniff = True
        self._finished = False  # the terminal event was handed out or the body ended cleanly
        self._closed = False
        self._error: BaseException | None = None
        self._logid: str | None = None
        self._http_status: int | None = None
        self._quota_wait = 0.0

    # -- public state ----------------------------------------------------------------------

    @property
    def snapshot(self) -> S:
        """Everything received so far, accumulated (updated as events are consumed)."""
        return self._snapshot

    @property
    def logid(self) -> str | None:
        """The ``x-tt-logid`` of the stream's response (``None`` before it is opened)."""
        return self._logid

    @property
    def quota_wait(self) -> float:
        """Seconds the stream waited for the client-side limiter before it was sent."""
        return self._quota_wait

    @property
    def http_status(self) -> int | None:
        """The HTTP status of the stream's response."""
        return self._http_status

    @property
    def closed(self) -> bool:
        """True once the stream has released its connection for good."""
        return self._closed

    # -- lifecycle -------------------------------------------------------------------------

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        resp, self._quota_wait = await self._transport.open_stream(self._call)
        # From here the response is ours: close it if we are closed or cancelled meanwhile.
        self._resp = resp
        self._logid = resp.headers.get("x-tt-logid")
        self._http_status = resp.status
        if self._closed:
            self._release()

    async def __aenter__(self) -> EventStream[E, S]:
        try:
            await self._open()
        except BaseException:
            self._closed = True
            self._release()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the connection. Idempotent, and never interrupted by cancellation.

        It contains no checkpoint (releasing an aiohttp response is synchronous), so a
        cancelled task still runs it to the end.
        """
        self._closed = True
        self._release()

    def _release(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            # release() returns a fully read connection to the pool and closes a partly read
            # one (aiohttp checks); close() always drops it. Both are synchronous, so this is
            # safe under cancellation and from __del__.
            if self._finished:
                resp.release()
            else:
                resp.close()

    def __del__(self) -> None:
        # A stream iterated without ``async with`` and abandoned: drop its connection now
        # rather than leaving it to aiohttp's own finalizer.
        resp = getattr(self, "_resp", None)
        if resp is not None and not resp.closed:
            resp.close()

    # -- iteration -------------------------------------------------------------------------

    def __aiter__(self) -> EventStream[E, S]:
        return self

    async def __anext__(self) -> E:
        while True:
            if self._queue:
                sse = self._queue.popleft()
                event = self._handle(sse)
                if event is not None:
                    return event
                continue
            if self._finished or self._closed or self._error is not None:
                self._release()
                raise StopAsyncIteration
            if not self._opened:
                await self.__aenter__()
            await self._read()

    async def _read(self) -> None:
        resp = self._resp
        if resp is None:  # closed while opening
            raise StopAsyncIteration
        try:
            chunk: bytes | None = await resp.content.readany()
        except TRANSPORT_ERRORS as exc:
            # Raised below, outside this block: aiohttp's exception must not become the
            # context (it may hold the request headers, the token among them).
            chunk, failure = None, exc
        except BaseException:
            # Cancellation (or anything else) while waiting: the connection state is unknown.
            self._release()
            raise
        if chunk is None:
            raise self._fail(self._interrupted(failure, f"mid-stream after {self._count()} events"))
        if chunk:
            if self._sniff:
                # Whitespace (or a BOM) first says nothing yet: look at the next chunk too.
                head = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
                if head:
                    self._sniff = False
                    if head[:1] == b"{":
                        raise await self._envelope_instead(resp, chunk)
            try:
                self._queue.extend(self._decoder.feed(chunk))
            except EventTooLarge as exc:
                raise self._fail(
                    EventTooLargeError(
                        f"a stream event passed {exc.limit} bytes after {self._count()} "
                        "events (AsyncCoze(max_event_bytes=...) raises the cap); the "
                        "connection was closed",
                        partial=self._snapshot,
                        size=exc.size,
                        limit=exc.limit,
                        logid=self._logid,
                    )
                ) from None
            return
        tail = self._decoder.close()
        if self._eof_is_end():
            self._finished = True
            self._release()
            raise StopAsyncIteration
        raise self._fail(
            IncompleteStreamError(
                f"the stream ended after {self._count()} events without its terminal event",
                partial=self._snapshot,
                logid=self._logid,
                tail=tail,
            )
        )

    async def _envelope_instead(self, resp: aiohttp.ClientResponse, first: bytes) -> CozeError:
        """The body is JSON, not SSE (no event line starts with ``{``): read and map it.

        Coze answers some refusals with an error envelope even on a streaming endpoint; the
        SSE decoder would skip every line of it as an unknown field and report a stream that
        ended with nothing. The envelope is read to its end (within ``max_response_bytes``)
        and mapped like a unary answer: the :class:`APIError` for its code.
        """
        error: CozeError
        try:
            body = await read_capped(
                resp,
                self._transport.max_response_bytes,
                "a JSON body sent as a stream",
                first=first,
            )
        except TRANSPORT_ERRORS as exc:
            error = self._interrupted(exc, "while reading a JSON body sent as a stream")
        except ResponseTooLargeError as exc:
            error = exc
        else:
            try:
                envelope = self._transport.decode(resp.status, resp.headers, body)
            except CozeError as exc:
                error = exc
            else:
                error = ResponseValidationError(
                    "expected an event stream, got a JSON body "
                    f"({str(envelope.body)[:200]!r}) with an event-stream content type",
                    logid=self._logid,
                    body=envelope.body,
                )
        self._error = error
        self._release()
        return error

    def _interrupted(self, exc: BaseException, when: str) -> StreamInterruptedError:
        """The error for a failed read; raise it outside the ``except`` that caught ``exc``
        (aiohttp's exception may hold the request headers: it must not be the context)."""
        cause = summarize(exc)
        error = StreamInterruptedError(
            f"the connection failed {when}: "
            f"{cause if cause.message else cause.type_name + ': timeout'}",
            partial=self._snapshot,
            logid=self._logid,
        )
        error.__cause__ = cause
        return error

    def _fail(self, exc: StreamError) -> StreamError:
        self._error = exc
        self._release()
        return exc

    def _handle(self, sse: ServerSentEvent) -> E | None:
        try:
            event = self._parse(sse)
        except StreamError as exc:
            raise self._fail(exc) from exc.__cause__
        except (ValueError, TypeError, KeyError, CozeError) as exc:
            raise self._fail(
                InvalidEventError(
                    f"cannot decode {sse.event!r} event: {exc}",
                    partial=self._snapshot,
                    event=sse.event,
                    data=sse.data,
                    logid=self._logid,
                )
            ) from exc
        if event is None:
            return None
        self._snapshot = self._accumulate(self._snapshot, event)
        return event

    def _error_event(self, sse: ServerSentEvent) -> StreamErrorEvent:
        # Chat error events carry {"code", "msg"}, workflow ones {"error_code",
        # "error_message"}; a body that is not JSON is kept as the message.
        code: int | None = None
        msg = sse.data
        data: Any = sse.data
        with contextlib.suppress(ValueError):
            data = loads(sse.data)
        if isinstance(data, dict):
            raw = data.get("code")
            code = parse_code(raw if raw is not None else data.get("error_code"))
            msg = str(data.get("msg") or data.get("error_message") or "")
        return StreamErrorEvent(
            msg,
            code=code,
            partial=self._snapshot,
            logid=self._logid,
            http_status=self._http_status,
            data=data,
        )

    # -- subclass hooks --------------------------------------------------------------------

    def _parse(self, sse: ServerSentEvent) -> E | None:
        raise NotImplementedError

    def _accumulate(self, snapshot: S, event: E) -> S:
        raise NotImplementedError

    def _eof_is_end(self) -> bool:
        raise NotImplementedError

    def _count(self) -> int:
        return 0

    # -- views -----------------------------------------------------------------------------

    async def until_done(self) -> S:
        """Consume the remaining events and return the snapshot (re-raising a past error)."""
        if self._error is not None:
            raise self._error
        async for _ in self:
            pass
        if self._error is not None:
            raise self._error
        return self._snapshot


class ChatStream(EventStream[ChatEvent, ChatSnapshot]):
    """A streaming chat (``/v3/chat``, submit_tool_outputs, chatflow).

    Use it as ``async with coze.chat.stream(...) as stream: async for event in stream``.
    Views over the same cursor: iterate typed events, :meth:`text` for answer deltas,
    :attr:`snapshot` for the accumulated state, :meth:`final` for the end result, and
    :meth:`cancel` to stop the chat on Coze's side too.
    """

    def __init__(
        self,
        transport: Transport,
        call: Call,
        *,
        canceller: Callable[[str, str], Awaitable[Chat]] | None = None,
    ) -> None:
        super().__init__(transport, call, ChatSnapshot())
        self._canceller = canceller

    async def __aenter__(self) -> ChatStream:
        await super().__aenter__()
        return self

    def __aiter__(self) -> ChatStream:
        return self

    def _parse(self, sse: ServerSentEvent) -> ChatEvent:
        if sse.event == "error":
            raise self._error_event(sse)
        event = chat_event_from_sse(sse.event, sse.data)
        if type(event) is Done:
            self._finished = True
            self._queue.clear()  # nothing after done is part of this chat
        return event

    def _accumulate(self, snapshot: ChatSnapshot, event: ChatEvent) -> ChatSnapshot:
        return accumulate_chat(snapshot, event)

    def _eof_is_end(self) -> bool:
        # Coze may end a failed or requires_action chat without ``done`` (a recorded failed
        # chat does exactly that); any other early end means events were lost.
        status = self._snapshot.status
        return status in (ChatStatus.FAILED, ChatStatus.REQUIRES_ACTION)

    def _count(self) -> int:
        return self._snapshot.events

    async def text(self) -> AsyncIterator[str]:
        """Yield the answer's text deltas as they arrive (other events are consumed silently)."""
        async for event in self:
            if type(event) is MessageDelta and event.message.type in (MessageType.ANSWER, ""):
                yield event.message.content

    async def final(self) -> ChatSnapshot:
        """Drain the stream and return the final snapshot.

        Raises :class:`ChatFailedError` (with ``partial``) when the chat failed, and re-raises
        the stream's error when it ended badly.
        """
        snapshot = await self.until_done()
        if snapshot.failed and snapshot.chat is not None:
            raise ChatFailedError(snapshot.chat, logid=self._logid, partial=snapshot)
        return snapshot

    async def cancel(self, *, timeout: float = 10.0) -> Chat | None:
        """Cancel the chat on Coze's side, stop reading and release the connection.

        Closing a socket does not stop Coze from generating (and billing); this also calls
        ``/v3/chat/cancel``. If the stream is open but its first event (which carries the
        chat's id) has not been read yet, it is read first. The whole cancel runs to its end
        (at most ``timeout`` seconds) however the caller is cancelled meanwhile, by anyio or
        by plain asyncio (``asyncio.timeout``, ``task.cancel()``); the caller's cancellation
        is re-raised after it. Returns the cancelled chat, or ``None`` when there was nothing
        to cancel (the stream was never opened, or the chat had already ended) or the
        request timed out.
        """
        try:
            if self._canceller is None:
                return None
            canceller = self._canceller

            async def send() -> Chat | None:
                chat = self._snapshot.chat or await self._read_to_chat()
                if chat is None or chat.is_terminal:
                    return None
                try:
                    return await canceller(chat.conversation_id, chat.id)
                except APIError as exc:
                    if exc.code == 4104:  # already completed / failed / requires_action
                        return None
                    raise

            # Cancel while the stream is still open: the chat is certainly live on Coze's
            # side, and the connection is released right after, whatever happens.
            return await run_to_completion(send, timeout=timeout)
        finally:
            await self.aclose()

    async def _read_to_chat(self) -> Chat | None:
        """Read events until the chat object is known (Coze sends it first); None if the
        stream is not open or ends or fails before that."""
        if self._resp is None or self._finished or self._closed or self._error is not None:
            return None
        try:
            while self._snapshot.chat is None:
                await self.__anext__()
        except (StopAsyncIteration, CozeError):
            return None
        return self._snapshot.chat
