"""Relay a streaming chat (or workflow run) to browsers as Server-Sent Events.

A web backend that streams a Coze chat to a browser has three jobs besides copying text: send
frames a front end can use, keep idle connections alive through proxies, and stop Coze when
the browser leaves (closing a socket does not stop Coze from generating, and billing). This
module does all three.

* :func:`sse_frames` turns a stream into an async iterator of encoded SSE frames (``bytes``).
  It knows no web framework: hand it to Starlette/FastAPI's ``StreamingResponse``, Quart,
  Sanic, Litestar, or write the frames yourself.
* :func:`relay_response` is the ready-made ``aiohttp.web`` handler body: headers, frames,
  disconnect handling, ``403`` for cross-site requests and ``204`` for ``EventSource``
  reconnects.
* :func:`origin_allowed` is its cross-site check, for handlers in other frameworks.

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
``ChatFailedError``, ``RateLimitError``, ``StreamInterruptedError``...), a stable ``code``,
a short fixed ``msg`` and the ``logid`` to quote to Coze support. ``code`` is Coze's error
code (an int) when Coze gave one, else one of the strings in :data:`ERROR_CODES`
(``"upstream_unavailable"``, ``"upstream_interrupted"``...). Nothing else from the failure
reaches the browser: upstream hosts and ports, aiohttp's messages, Coze's own ``msg`` and
exception text go to the ``coze_async.relay`` log, and an unexpected exception becomes
``{"type": "InternalError", "code": "internal_error"}``.

Cross-site requests: a page on another site can open an ``EventSource`` (or an ``<img>``)
on the relay's URL, and the browser sends the request with the user's cookies: without a
check, any site could start chats billed to you. :func:`relay_response` refuses such
requests with ``403`` before anything is sent to Coze, using :func:`origin_allowed`: a
browser's ``Sec-Fetch-Site`` header (``same-origin`` / ``none`` pass, ``same-site`` /
``cross-site`` only from an origin in ``allowed_origins``), or, from browsers without it, the
``Origin`` header compared with the request's own origin. A request with neither (``curl``,
a server-side client) is not a browser acting for someone else and passes. Behind a proxy
that rewrites ``Host`` or terminates TLS, list the public origin in ``allowed_origins``.
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
waits up to two seconds for that event so it can cancel the chat it started. This cleanup
runs to its end however the consumer is cancelled, by anyio (Starlette) or by plain asyncio
(``task.cancel()``, ``asyncio.timeout``), even repeatedly; the cancellation is re-raised
once it is done. The cancel is sent while the upstream stream is still open, so it needs a
second connection from the client's pool: keep ``AsyncCoze(connection_limit=...)`` above the
number of relays you run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncGenerator, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from ._json import dumps
from ._shield import run_to_completion
from .errors import (
    APIError,
    AuthenticationError,
    ChatFailedError,
    ConflictError,
    CozeError,
    InvalidArgumentError,
    InvalidEventError,
    LocalRateLimitError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    StreamError,
    StreamErrorEvent,
    TransportError,
    TransportTimeoutError,
)
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
    "ERROR_CODES",
    "PING_FRAME",
    "RELAY_HEADERS",
    "encode_sse",
    "origin_allowed",
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
# Time allowed, past the cancel request, to stop the pending read and close the stream.
_CLOSE_TIMEOUT: Final = 5.0

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")

#: The ``code`` of an ``error`` frame when Coze gave none, with the failures it stands for.
ERROR_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "upstream_unavailable": "Coze could not be reached (connection refused, DNS, TLS...)",
        "upstream_timeout": "Coze did not answer in time",
        "upstream_interrupted": "the stream from Coze broke off or lost events",
        "upstream_invalid": "Coze sent something that is not a valid event or answer",
        "upstream_error": "Coze (or a proxy before it) answered with an error and no code",
        "stream_error": "Coze sent an error event without a code",
        "chat_failed": "the chat failed and Coze gave no code",
        "rate_limited": "the client's own rate limiter or budget refused to send the chat",
        "invalid_request": "the relay's request was refused by the SDK before sending",
        "internal_error": "an unexpected exception in the relay (see the server log)",
    }
)

# The fixed text of an error frame, by error class (the first match in this order wins).
_ERROR_TEXT: Final[tuple[tuple[type[BaseException], str | None, str], ...]] = (
    (AuthenticationError, None, "Coze refused the server's credentials."),
    (PermissionDeniedError, None, "Coze denied permission for this request."),
    (RateLimitError, None, "Coze is busy; please try again later."),
    (QuotaExhaustedError, None, "The Coze quota or balance is used up."),
    (NotFoundError, None, "Coze could not find the bot, conversation or workflow."),
    (ConflictError, None, "Coze refused the request in the current state; try again later."),
    (ServerError, None, "Coze had a server error; please try again later."),
    (APIError, None, "Coze refused the request."),
    (StreamErrorEvent, "stream_error", "Coze reported an error during the reply."),
    (InvalidEventError, "upstream_invalid", "Coze sent a reply the server could not read."),
    (StreamError, "upstream_interrupted", "The connection to Coze was lost during the reply."),
    (ResponseValidationError, "upstream_invalid", "Coze sent a reply the server could not read."),
    (TransportTimeoutError, "upstream_timeout", "Coze did not answer in time."),
    (TransportError, "upstream_unavailable", "Coze could not be reached; please try again later."),
    (LocalRateLimitError, "rate_limited", "Too many requests; please try again later."),
    (ChatFailedError, "chat_failed", "The chat failed."),
    (CozeError, "invalid_request", "The request could not be sent to Coze."),
)
_CHAT_FAILED_TEXT: Final = "The chat failed."
_INTERNAL_TEXT: Final = "The relay failed unexpectedly."

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


def _pick(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of ``obj`` as a frame payload, in that order."""
    return {name: getattr(obj, name) for name in names}


def _error_payload(exc: BaseException, logid: str | None) -> dict[str, Any]:
    # Only the class name, a stable code, fixed text and the logid: exception text can hold
    # the upstream host and port, aiohttp's messages or paths, which are the server's
    # business (the caller logs them).
    if not isinstance(exc, CozeError):
        return {
            "type": "InternalError",
            "code": "internal_error",
            "msg": _INTERNAL_TEXT,
            "logid": None,
        }
    fallback, text = "internal_error", _INTERNAL_TEXT
    for cls, cls_code, cls_text in _ERROR_TEXT:
        if isinstance(exc, cls):
            fallback, text = cls_code or "upstream_error", cls_text
            break
    code = getattr(exc, "code", None)
    public_code = (
        code if isinstance(code, int) and not isinstance(code, bool) and code else fallback
    )
    return {
        "type": type(exc).__name__,
        "code": public_code,
        "msg": text,
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
            # Coze's last_error text is logged, not sent: the code says what went wrong.
            logger.info("relay: the chat failed: %s", error)
            failure: dict[str, Any] = {
                "type": "ChatFailedError",
                "code": error.code if error is not None and error.code else "chat_failed",
                "msg": _CHAT_FAILED_TEXT,
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
            fields = ("content", "node_title", "node_seq_id", "node_is_finish")
            return [("message", _pick(event, fields))], False
        if isinstance(event, WorkflowInterrupt):
            self._interrupted = True
            payload = _pick(event.interrupt_data, ("event_id", "type", "question"))
            payload["node_title"] = event.node_title
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
    default), cancels the chat at Coze, bounded by ``cancel_timeout`` seconds and carried
    through any cancellation of the consumer (anyio or plain asyncio).
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


def _cleanup_budget(cancel_timeout: float) -> float:
    # The longest a relay's cleanup may take: the wait for the chat id, the cancel request,
    # and closing the stream.
    return _FIRST_EVENT_GRACE + cancel_timeout + _CLOSE_TIMEOUT


async def _finish(
    stream: RelayedStream, reader: _Reader, *, cancel: bool, cancel_timeout: float
) -> None:
    async def cleanup() -> None:
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

    # In a task of its own, to its end: the consumer leaving is usually a cancellation
    # (Starlette cancels the response's task group, aiohttp the handler, asyncio.timeout the
    # caller), possibly repeated, and an anyio shield does not stop plain asyncio's. The
    # wait for the chat id, the cancel request and the release must all still happen; the
    # caller's cancellation is re-raised afterwards.
    await run_to_completion(cleanup, timeout=_cleanup_budget(cancel_timeout))


# Fetch Metadata values a browser sends for a request its own page (or its user) made.
_SAME_ORIGIN_SITES: Final = frozenset({"same-origin", "none"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_Origin = tuple[str, str, int]


def _parse_origin(value: str) -> _Origin | None:
    """``scheme://host[:port]`` as ``(scheme, host, port)``; None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if (
        not scheme
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or parts.password is not None
    ):
        return None
    if port is None:
        port = _DEFAULT_PORTS.get(scheme, 0)
    return scheme, host, port


def _allowed_set(allowed_origins: Collection[str]) -> frozenset[_Origin]:
    if isinstance(allowed_origins, str | bytes):
        raise InvalidArgumentError(
            "allowed_origins must be a collection of origins such as "
            "['https://app.example.com'], not one string"
        )
    out: set[_Origin] = set()
    for entry in allowed_origins:
        parsed = _parse_origin(entry) if isinstance(entry, str) else None
        if parsed is None:
            raise InvalidArgumentError(
                f"allowed_origins: {entry!r} is not an origin (scheme://host[:port], no path)"
            )
        out.add(parsed)
    return frozenset(out)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Works for case-insensitive mappings (aiohttp, Starlette) and for plain dicts alike.
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


def origin_allowed(
    headers: Mapping[str, str],
    *,
    host: str | None,
    scheme: str = "http",
    allowed_origins: Collection[str] = (),
) -> bool:
    """Whether a request with these ``headers`` may start a relay (not a cross-site one).

    ``host`` and ``scheme`` are the request's own (its ``Host`` header and ``http`` or
    ``https``), ``allowed_origins`` the other origins whose pages may use the relay, e.g.
    ``["https://app.example.com"]`` (compared by scheme, host and port). The rules:

    * ``Sec-Fetch-Site`` (sent by current browsers) decides when present: ``same-origin``
      and ``none`` (the user typed the URL) pass; ``same-site``, ``cross-site`` and unknown
      values pass only if ``Origin`` is in ``allowed_origins``;
    * otherwise an ``Origin`` header (older browsers) must equal ``scheme://host`` or be in
      ``allowed_origins``; the opaque origin ``null`` never passes;
    * a request with neither header (``curl``, a server-side client) passes: it is not a
      browser sending a user's cookies on another site's behalf.

    Works with any mapping of header names to values (aiohttp's, Starlette's, a dict).
    Raises :class:`~coze_async.errors.InvalidArgumentError` for a malformed
    ``allowed_origins`` entry.
    """
    return _origin_allowed(headers, host, scheme, _allowed_set(allowed_origins))


def _origin_allowed(
    headers: Mapping[str, str], host: str | None, scheme: str, allowed: frozenset[_Origin]
) -> bool:
    site = _header(headers, "sec-fetch-site")
    origin_value = _header(headers, "origin")
    origin = _parse_origin(origin_value) if origin_value is not None else None
    if site is not None:
        if site.strip().lower() in _SAME_ORIGIN_SITES:
            return True
        return origin is not None and origin in allowed
    if origin_value is None:
        return True
    if origin is None:  # "null" or garbage
        return False
    if origin in allowed:
        return True
    own = _parse_origin(f"{scheme}://{host}") if host else None
    return own is not None and origin == own


async def relay_response(
    request: web.Request,
    stream: RelayedStream,
    *,
    heartbeat: float | None = DEFAULT_HEARTBEAT,
    cancel_on_disconnect: bool = True,
    cancel_timeout: float = 10.0,
    message_types: Collection[str] = (MessageType.ANSWER,),
    headers: Mapping[str, str] | None = None,
    allowed_origins: Collection[str] = (),
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

    A cross-site request (see :func:`origin_allowed`; pages from ``allowed_origins`` are
    let through) is answered ``403 Forbidden`` and the stream is never sent either.
    """
    from aiohttp import web

    allowed = _allowed_set(allowed_origins)  # a bad argument raises before anything else
    frames = sse_frames(
        stream,
        heartbeat=heartbeat,
        cancel_on_disconnect=cancel_on_disconnect,
        cancel_timeout=cancel_timeout,
        message_types=message_types,
    )
    try:
        if not _origin_allowed(request.headers, request.host, request.scheme, allowed):
            logger.warning(
                "relay: refused a cross-site request (Origin %r, Sec-Fetch-Site %r)",
                request.headers.get("Origin"),
                request.headers.get("Sec-Fetch-Site"),
            )
            return web.Response(
                status=403,
                text="cross-site request refused\n",
                headers={"Cache-Control": "no-cache"},
            )
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

        async def close() -> None:
            # Runs the relay's cleanup (cancel + close) if the frames were not all sent,
            # then makes sure a stream the relay never started is closed too.
            try:
                await frames.aclose()
            finally:
                await stream.aclose()

        # However the handler is being cancelled (see _finish).
        await run_to_completion(close, timeout=_cleanup_budget(cancel_timeout))
