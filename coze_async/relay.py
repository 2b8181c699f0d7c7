"""Relay a streaming chat (or workflow run) to browsers as Server-Sent Events.

A web backend that streams a Coze chat to a browser has three jobs besides copying text: send
frames a front end can use, keep idle connections alive through proxies, and stop Coze when
the browser leaves (closing a socket does not stop Coze from generating, and billing). This
module does all three.

* :func:`sse_frames` turns a stream into an async iterator of encoded SSE frames (``bytes``).
  It knows no web framework: hand it to Starlette/FastAPI's ``StreamingResponse``, Quart,
  Sanic, Litestar, or write the frames yourself.
* :func:`relay_response` is the ready-made ``aiohttp.web`` handler body: headers, frames,
  disconnect handling, and ``204`` for ``EventSource`` reconnects.

Frames (every data line is one line of compact JSON, so multi-line text is safe)::

    chat streams (``coze.chat.stream``, ``submit_tool_outputs_stream``, chatflows)
      chat             {"status", "chat_id", "conversation_id"}   created / in_progress
      delta            {"text", "message_id"}                     a piece of the answer
      reasoning        {"text", "message_id"}                     deep-thinking text, if any
      message          {"id", "type", "content", "content_type"}  a completed message
      suggestions      ["...", ...]                               follow-up questions
      usage            {"input_count", "output_count", "token_count"}
      requires_action  {"chat_id", "conversation_id", "tool_calls": [{"id", "name"}]}
      done             {"chat_id", "conversation_id", "status", "usage"}

    workflow streams (``coze.workflows.stream``, ``resume_stream``)
      message          {"content", "node_title", "node_seq_id", "node_is_finish"}
      interrupt        {"event_id", "type", "question", "node_title"}
      done             {"usage", "interrupted"}

    both
      error            {"type", "code", "msg", "logid"}

Every relay ends with exactly one terminal frame, ``done`` or ``error``, and then the body
ends. ``error`` carries the SDK's error class name as ``type`` (``StreamErrorEvent``,
``ChatFailedError``, ``RateLimitError``, ``StreamInterruptedError``...), Coze's ``code`` and
``msg`` and the ``logid`` to quote to Coze support; an unexpected exception becomes
``{"type": "InternalError"}`` with a generic message (the exception is logged, not sent).
Audio deltas, ``verbose`` messages, workflow ``PING`` events and unknown events are not
relayed; only ``answer`` messages get a ``message`` frame unless ``message_types=`` says more.

Frames carry ``id: 0``, ``id: 1``... so that a browser's ``EventSource`` sends
``Last-Event-ID`` when it reconnects. A relay is **not resumable**: :func:`relay_response`
answers such a reconnect with ``204 No Content``, which tells ``EventSource`` to stop
reconnecting instead of starting the chat again. (Note that a frame named ``error`` reaches
the same ``EventSource`` listener as connection errors: the frame is a ``MessageEvent`` with
``data``, a connection error is a plain ``Event``.)

Heartbeats: after ``heartbeat`` seconds (15 by default) without a frame, a comment
``: ping`` is sent, so proxies and load balancers keep an idle stream open. The upstream read
runs in its own task and is never cancelled for a heartbeat, so a ping cannot cut an event in
half.

Disconnects: when the consumer stops early (a write fails, the handler is cancelled, or the
frame iterator is closed or cancelled), the relay stops reading, by default calls
``/v3/chat/cancel`` so Coze stops generating, and closes the upstream stream (its connection
and, if it was still waiting, its place in the quota limiter go back). The same happens when
the relay gives up on a chat it can no longer read (a broken upstream connection, lost
events). If the chat id is not known yet (the browser left before the first event), the relay
waits up to two seconds for that event so it can cancel the chat it started. The cancel is
sent while the upstream stream is still open, so it needs a second connection from the
client's pool: keep ``AsyncCoze(connection_limit=...)`` above the number of relays you run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncGenerator, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast

import anyio

from ._json import dumps
from .errors import CozeError, InvalidArgumentError, StreamErrorEvent
from .models.chat import Chat, MessageType, Usage
from .models.events import (
    ChatCompleted,
    ChatCreated,
    ChatEvent,
    ChatFailed,
    ChatInProgress,
    ChatRequiresAction,
    Done,
    MessageCompleted,
    MessageDelta,
)
from .models.workflow import WorkflowDone, WorkflowEvent, WorkflowInterrupt, WorkflowMessage
from .streaming import ChatStream
from .workflow_stream import WorkflowStream

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "DEFAULT_HEARTBEAT",
    "PING_FRAME",
    "RELAY_HEADERS",
    "encode_sse",
    "relay_response",
    "sse_frames",
]

logger = logging.getLogger("coze_async.relay")

#: Response headers for an SSE relay. ``X-Accel-Buffering: no`` stops nginx from buffering
#: the body (the browser would see nothing until the end); ``no-cache`` keeps proxies and the
#: browser from caching or transforming it.
RELAY_HEADERS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Content-Type": "text/event-stream; charset=utf-8",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
        "Connection": "keep-alive",
    }
)

#: Seconds without a frame before a heartbeat comment is sent.
DEFAULT_HEARTBEAT: Final = 15.0

#: The heartbeat: an SSE comment, ignored by ``EventSource`` but real bytes on the wire.
PING_FRAME: Final = b": ping\n\n"

# How long a relay whose consumer left waits for the first event to learn the chat id (so
# the chat it started can be cancelled) before giving up on cancelling.
_FIRST_EVENT_GRACE: Final = 2.0

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")

RelayedStream = ChatStream | WorkflowStream
_Frame = tuple[str, Any]


def encode_sse(
    data: str, *, event: str | None = None, id: str | int | None = None, retry: int | None = None
) -> bytes:
    """Encode one SSE frame (UTF-8), ending with the blank line that dispatches it.

    Each line of ``data`` becomes its own ``data:`` line (browsers join them with ``\\n``), so
    multi-line text arrives intact; ``\\r\\n`` and ``\\r`` line breaks arrive as ``\\n``.
    ``event`` and ``id`` must be single lines. ``retry`` is the reconnection delay in ms.
    """
    lines: list[str] = []
    if id is not None:
        text = str(id)
        if _LINE_BREAK.search(text) or "\0" in text:
            raise InvalidArgumentError("an SSE id must be one line without NUL characters")
        lines.append(f"id: {text}")
    if event is not None:
        if _LINE_BREAK.search(event):
            raise InvalidArgumentError("an SSE event name must be one line")
        lines.append(f"event: {event}")
    if retry is not None:
        if retry < 0:
            raise InvalidArgumentError("retry must be >= 0 milliseconds")
        lines.append(f"retry: {int(retry)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def _json_frame(frame_id: int, event: str, payload: Any) -> bytes:
    # Compact JSON never contains a raw CR or LF (they are escaped inside strings), so the
    # payload is always exactly one data line.
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (frame_id, event.encode(), dumps(payload))


def _usage(usage: Usage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "input_count": usage.input_count,
        "output_count": usage.output_count,
        "token_count": usage.token_count,
    }


def _error_payload(exc: BaseException, logid: str | None) -> dict[str, Any]:
    if not isinstance(exc, CozeError):
        # Internal details (paths, arguments) stay in the server log.
        return {
            "type": "InternalError",
            "code": None,
            "msg": "the relay failed unexpectedly; see the server log",
            "logid": None,
        }
    code = getattr(exc, "code", None)
    msg = getattr(exc, "msg", None)
    return {
        "type": type(exc).__name__,
        "code": code if isinstance(code, int) else None,
        "msg": msg if isinstance(msg, str) and msg else str(exc),
        "logid": exc.logid or logid,
    }


class _ChatFrames:
    """Chat events -> frames. Follow-ups are gathered into one ``suggestions`` frame."""

    def __init__(self, message_types: Collection[str]) -> None:
        self._message_types = frozenset(message_types)
        self._suggestions: list[str] = []
        self._chat: Chat | None = None

    def _flush(self, out: list[_Frame]) -> None:
        if self._suggestions:
            out.append(("suggestions", self._suggestions))
            self._suggestions = []

    def _ids(self) -> dict[str, str | None]:
        chat = self._chat
        return {
            "chat_id": chat.id if chat is not None else None,
            "conversation_id": chat.conversation_id if chat is not None else None,
        }

    def translate(self, event: ChatEvent, logid: str | None) -> tuple[list[_Frame], bool]:
        """The frames for ``event`` and whether they end the relay."""
        out: list[_Frame] = []
        if isinstance(event, MessageCompleted) and event.message.type == MessageType.FOLLOW_UP:
            # Follow-ups arrive one message each, back to back; a front end wants the list.
            self._suggestions.append(event.message.content)
            return out, False
        self._flush(out)
        if isinstance(event, MessageDelta):
            message = event.message
            if message.type in (MessageType.ANSWER, ""):
                if message.reasoning_content:
                    text = message.reasoning_content
                    out.append(("reasoning", {"text": text, "message_id": message.id}))
                if message.content:
                    out.append(("delta", {"text": message.content, "message_id": message.id}))
        elif isinstance(event, MessageCompleted):
            message = event.message
            if message.type in self._message_types:
                payload: dict[str, Any] = {
                    "id": message.id,
                    "type": message.type,
                    "content": message.content,
                    "content_type": message.content_type,
                }
                out.append(("message", payload))
        elif isinstance(event, ChatCreated | ChatInProgress):
            self._chat = event.chat
            out.append(("chat", {"status": event.chat.status, **self._ids()}))
        elif isinstance(event, ChatCompleted):
            self._chat = event.chat
            out.append(("usage", _usage(event.chat.usage)))
        elif isinstance(event, ChatRequiresAction):
            self._chat = event.chat
            action = event.chat.required_action
            calls = action.tool_calls if action is not None else ()
            tool_calls = [{"id": c.id, "name": c.function.name} for c in calls]
            out.append(("requires_action", {**self._ids(), "tool_calls": tool_calls}))
        elif isinstance(event, ChatFailed):
            self._chat = event.chat
            error = event.chat.last_error
            failure: dict[str, Any] = {
                "type": "ChatFailedError",
                "code": error.code if error is not None else None,
                "msg": (error.msg if error is not None else "") or "the chat failed",
                "logid": logid,
            }
            out.append(("error", failure))
            return out, True
        elif isinstance(event, Done):
            out.append(("done", self._done()))
            return out, True
        return out, False

    def _done(self) -> dict[str, Any]:
        chat = self._chat
        return {
            **self._ids(),
            "status": chat.status if chat is not None else None,
            "usage": _usage(chat.usage) if chat is not None else None,
        }

    def finish(self) -> list[_Frame]:
        """Frames for a body that ended without ``done`` (e.g. after ``requires_action``)."""
        out: list[_Frame] = []
        self._flush(out)
        out.append(("done", self._done()))
        return out


class _WorkflowFrames:
    """Workflow events -> frames."""

    def __init__(self) -> None:
        self._usage: Usage | None = None
        self._interrupted = False

    def translate(self, event: WorkflowEvent, logid: str | None) -> tuple[list[_Frame], bool]:
        """The frames for ``event`` and whether they end the relay."""
        if isinstance(event, WorkflowMessage):
            if event.usage is not None:
                self._usage = event.usage
            payload = {
                "content": event.content,
                "node_title": event.node_title,
                "node_seq_id": event.node_seq_id,
                "node_is_finish": event.node_is_finish,
            }
            return [("message", payload)], False
        if isinstance(event, WorkflowInterrupt):
            self._interrupted = True
            data = event.interrupt_data
            payload = {
                "event_id": data.event_id,
                "type": data.type,
                "question": data.question,
                "node_title": event.node_title,
            }
            return [("interrupt", payload)], False
        if isinstance(event, WorkflowDone):
            return self.finish(), True
        return [], False

    def finish(self) -> list[_Frame]:
        """The ``done`` frame (also for a body that ends right after ``Interrupt``)."""
        return [("done", {"usage": _usage(self._usage), "interrupted": self._interrupted})]


_END: Final = object()


async def _next_event(stream: RelayedStream) -> object:
    # StopAsyncIteration must not travel through a Task; end of stream is a sentinel here.
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return _END


class _Idle(Exception):
    """No event within the heartbeat interval."""


class _Reader:
    """Reads the next event in its own task, so waiting can time out without cancelling it."""

    def __init__(self, stream: RelayedStream) -> None:
        self._stream = stream
        self.pending: asyncio.Task[object] | None = None

    async def next(self, timeout: float | None) -> object:
        task = self.pending
        if task is None:
            task = self.pending = asyncio.ensure_future(_next_event(self._stream))
        done, _ = await asyncio.wait((task,), timeout=timeout)
        if not done:
            raise _Idle
        self.pending = None
        return task.result()

    async def settle(self, timeout: float) -> None:
        """Give a pending read up to ``timeout`` seconds to deliver its event."""
        if self.pending is not None and not self.pending.done():
            await asyncio.wait((self.pending,), timeout=timeout)

    async def stop(self) -> None:
        """Cancel a pending read and wait for it to end; never raises."""
        task, self.pending = self.pending, None
        if task is None:
            return
        if not task.done():
            # The stream releases its connection (or its place in the limiter) when a read is
            # cancelled, so nothing leaks.
            task.cancel()
            await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is not None:
            logger.debug("relay: the last upstream read failed: %r", task.exception())


def sse_frames(
    stream: RelayedStream,
    *,
    heartbeat: float | None = DEFAULT_HEARTBEAT,
    cancel_on_disconnect: bool = True,
    cancel_timeout: float = 10.0,
    message_types: Collection[str] = (MessageType.ANSWER,),
) -> AsyncGenerator[bytes, None]:
    """Relay ``stream`` as encoded SSE frames (see the module docstring for the schema).

    ``stream`` is a chat stream (``coze.chat.stream(...)``, a chatflow) or a workflow stream,
    opened or not; the relay opens it if needed and always closes it. Send the frames with
    :data:`RELAY_HEADERS`. ``heartbeat`` is the idle time before a ``: ping`` comment
    (``None``: never). If the iterator is closed or cancelled before its terminal frame (the
    browser left), the relay closes the stream and, with ``cancel_on_disconnect`` (the
    default), cancels the chat at Coze, shielded and bounded by ``cancel_timeout`` seconds.
    ``message_types`` lists the message types that get a ``message`` frame when completed.

    Stream errors never escape: they become one ``error`` frame and the iterator ends.
    Arguments are checked now; nothing is sent until the first frame is requested.
    """
    if heartbeat is not None and not heartbeat > 0:
        raise InvalidArgumentError("heartbeat must be a positive number of seconds or None")
    if not cancel_timeout > 0:
        raise InvalidArgumentError("cancel_timeout must be a positive number of seconds")
    translator: _ChatFrames | _WorkflowFrames
    if isinstance(stream, ChatStream):
        translator = _ChatFrames(message_types)
    elif isinstance(stream, WorkflowStream):
        translator = _WorkflowFrames()
    else:
        raise InvalidArgumentError(
            f"sse_frames relays a ChatStream or a WorkflowStream, not {type(stream).__name__}"
        )
    return _relay(
        stream,
        translator,
        heartbeat=heartbeat,
        cancel_on_disconnect=cancel_on_disconnect,
        cancel_timeout=cancel_timeout,
    )


async def _relay(
    stream: RelayedStream,
    translator: _ChatFrames | _WorkflowFrames,
    *,
    heartbeat: float | None,
    cancel_on_disconnect: bool,
    cancel_timeout: float,
) -> AsyncGenerator[bytes, None]:
    ids = itertools.count()
    reader = _Reader(stream)
    # Until the relay reaches its end, leaving means the consumer went away.
    abandoned = True
    try:
        while True:
            try:
                event = await reader.next(heartbeat)
            except _Idle:
                yield PING_FRAME
                continue
            except Exception as exc:
                # A stream that errored is over at Coze (an error event, a failed open);
                # one we stopped being able to read may still be generating: cancel that.
                abandoned = not isinstance(exc, StreamErrorEvent) and _chat_is_live(stream)
                if isinstance(exc, CozeError):
                    logger.info("relay: upstream stream failed: %s", exc)
                else:
                    logger.exception("relay: unexpected error while relaying a stream")
                yield _json_frame(next(ids), "error", _error_payload(exc, stream.logid))
                return
            if event is _END:
                frames, terminal = translator.finish(), True
            else:
                # The translator was chosen for this stream's type, so the event fits it.
                frames, terminal = translator.translate(cast(Any, event), stream.logid)
            if terminal:
                abandoned = False
            for name, payload in frames:
                yield _json_frame(next(ids), name, payload)
            if terminal:
                return
    finally:
        await _finish(
            stream,
            reader,
            cancel=abandoned and cancel_on_disconnect,
            cancel_timeout=cancel_timeout,
        )


def _chat_is_live(stream: RelayedStream) -> bool:
    chat = stream.snapshot.chat if isinstance(stream, ChatStream) else None
    return chat is not None and not chat.is_terminal


async def _finish(
    stream: RelayedStream, reader: _Reader, *, cancel: bool, cancel_timeout: float
) -> None:
    # Shielded: Starlette cancels the response's task group when the browser leaves, and the
    # cancel request and the release must still happen.
    with anyio.CancelScope(shield=True):
        try:
            chat_stream = stream if cancel and isinstance(stream, ChatStream) else None
            if chat_stream is not None:
                if chat_stream.snapshot.chat is None:
                    await reader.settle(_FIRST_EVENT_GRACE)
                if _chat_is_live(chat_stream):
                    # Cancel before the pending read is stopped: stopping it closes the
                    # upstream connection, and the chat must be cancelled while it is
                    # certainly still running (ChatStream.cancel closes the stream after).
                    logger.debug("relay: consumer left mid-chat; cancelling the chat at Coze")
                    await chat_stream.cancel(timeout=cancel_timeout)
        except Exception as exc:
            # Cleanup must not turn a disconnect into a traceback in the web framework.
            logger.warning("relay: cancelling the chat failed: %s", exc)
        finally:
            await reader.stop()
            await stream.aclose()


async def relay_response(
    request: web.Request,
    stream: RelayedStream,
    *,
    heartbeat: float | None = DEFAULT_HEARTBEAT,
    cancel_on_disconnect: bool = True,
    cancel_timeout: float = 10.0,
    message_types: Collection[str] = (MessageType.ANSWER,),
    headers: Mapping[str, str] | None = None,
) -> web.StreamResponse:
    """Relay ``stream`` to the client of an ``aiohttp.web`` request; return the response.

    Use it as the handler's return value::

        async def chat(request: web.Request) -> web.StreamResponse:
            stream = coze.chat.stream(bot_id=BOT_ID, user_id=uid, messages=[...])
            return await relay_response(request, stream)

    The response has :data:`RELAY_HEADERS` (plus ``headers``) and the frames of
    :func:`sse_frames` (same options). A client that goes away (a failed write, or the handler
    being cancelled when the server runs with ``handler_cancellation=True``) ends the relay
    quietly: the stream is closed and the chat cancelled. A request carrying
    ``Last-Event-ID`` is an ``EventSource`` reconnect; relays are not resumable, so it is
    answered ``204 No Content`` (which stops ``EventSource``) and the stream is never sent.
    """
    from aiohttp import web

    frames = sse_frames(
        stream,
        heartbeat=heartbeat,
        cancel_on_disconnect=cancel_on_disconnect,
        cancel_timeout=cancel_timeout,
        message_types=message_types,
    )
    try:
        if "Last-Event-ID" in request.headers:
            return web.Response(status=204, headers={"Cache-Control": "no-cache"})
        resp = web.StreamResponse(status=200, headers={**RELAY_HEADERS, **(headers or {})})
        try:
            await resp.prepare(request)
            async for frame in frames:
                await resp.write(frame)
            await resp.write_eof()
        except ConnectionError:
            # aiohttp's ClientConnectionResetError is one: the client went away mid-write.
            logger.debug("relay: the client went away")
        return resp
    finally:
        # Runs the relay's cleanup (cancel + close) if the frames were not all sent, then
        # makes sure a stream the relay never started is closed too.
        with anyio.CancelScope(shield=True):
            await frames.aclose()
            await stream.aclose()
