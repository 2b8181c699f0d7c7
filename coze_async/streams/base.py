"""The stream object: one cursor over an SSE response, with several views.

The chat and workflow streams (:mod:`.chat`, :mod:`.workflow`) share this base. It reads
the answer through :class:`coze_async._http.ByteStream`, whose read errors are already SDK
errors: nothing here touches aiohttp.

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
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._json import loads
from ..call import Call
from ..errors import (
    CozeError,
    ErrorCause,
    EventTooLargeError,
    IncompleteStreamError,
    InvalidEventError,
    ResponseTooLargeError,
    ResponseValidationError,
    StreamError,
    StreamErrorEvent,
    StreamInterruptedError,
    TransportError,
    parse_code,
)
from ..sse import EventTooLarge, ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from .._http import RawResponse
    from ..transport import Transport

__all__ = ["EventStream"]

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
        self._resp: RawResponse | None = None
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
        self._logid = resp.logid
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

        It contains no checkpoint (releasing a response is synchronous), so a cancelled
        task still runs it to the end.
        """
        self._closed = True
        self._release()

    def _release(self) -> None:
        resp, self._resp = self._resp, None
        if resp is not None:
            # release() returns a fully read connection to the pool and closes a partly read
            # one; close() always drops it. Both are synchronous, so this is safe under
            # cancellation and from __del__.
            if self._finished:
                resp.body.release()
            else:
                resp.body.close()

    def __del__(self) -> None:
        # A stream iterated without ``async with`` and abandoned: drop its connection now
        # rather than leaving it to aiohttp's own finalizer.
        resp = getattr(self, "_resp", None)
        if resp is not None and not resp.body.closed:
            resp.body.close()

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
            chunk: bytes | None = await resp.body.chunk()
        except TransportError as exc:
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

    async def _envelope_instead(self, resp: RawResponse, first: bytes) -> CozeError:
        """The body is JSON, not SSE (no event line starts with ``{``): read and map it.

        Coze answers some refusals with an error envelope even on a streaming endpoint; the
        SSE decoder would skip every line of it as an unknown field and report a stream that
        ended with nothing. The envelope is read to its end (within ``max_response_bytes``)
        and mapped like a unary answer: the :class:`APIError` for its code.
        """
        error: CozeError
        try:
            body = await resp.body.read(self._transport.max_response_bytes, first=first)
        except TransportError as exc:
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

    def _interrupted(self, exc: TransportError, when: str) -> StreamInterruptedError:
        """The error for a failed read, with the read error's (sanitized) cause."""
        cause = exc.__cause__
        if not isinstance(cause, ErrorCause):
            cause = ErrorCause(type(exc).__name__, str(exc))
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
