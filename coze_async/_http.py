"""The SDK's only aiohttp client module: sessions, sending, reading, errors mapped once.

Everything else in the client package (the transport loop, streams, OAuth) goes through
:func:`new_session`, :func:`send`, :class:`RawResponse` and :class:`ByteStream`, and sees
SDK errors only: a failure below (aiohttp, the socket, a timeout) arrives as a
:class:`~coze_async.errors.TransportError` built by :func:`map_client_error`, the one
aiohttp -> SDK mapping.

Pool: :class:`FreshConnector` never writes a request on a pooled connection the server has
already closed (see its docstring).

Errors: aiohttp errors -> SDK errors, with nothing secret left in them.

aiohttp's exceptions keep the request they belong to: ``ClientResponseError.request_info``
holds the request headers, ``Authorization: Bearer pat_...`` among them. Chaining such an
exception (``raise TransportError(...) from exc``, or raising inside its ``except`` block,
which sets ``__context__``) would hand the token to every traceback printer, error reporter
and log line that walks the chain. So the SDK never chains an aiohttp exception: it keeps its
class name and message (with any known secret masked) in an :class:`ErrorCause`, which becomes
the SDK error's ``__cause__``, and the caller raises the result *outside* the ``except``
block.
"""

from __future__ import annotations

import asyncio
import io
import platform
import select
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import anyio
import attrs

from . import __about__
from .config import Timeouts
from .errors import (
    ErrorCause,
    ResponseTooLargeError,
    TimeoutCause,
    TransportError,
    TransportTimeoutError,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "USER_AGENT",
    "ByteStream",
    "FreshConnector",
    "RawResponse",
    "Session",
    "close_session",
    "map_client_error",
    "new_session",
    "peer_closed",
    "read_capped",
    "send",
    "summarize",
]

#: What a socket read or write may raise: aiohttp's errors, timeouts and OS errors.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

_MAX_MESSAGE = 300

#: The session type a caller may hand in (``AsyncCoze(session=...)``, OAuth helpers).
Session = aiohttp.ClientSession

#: The ``User-Agent`` every request carries.
USER_AGENT = (
    f"coze-async/{__about__.__version__} python/{platform.python_version()} "
    f"aiohttp/{aiohttp.__version__}"
)

#: A request body as :func:`send` takes it: bytes, a file-like object, or an async iterable
#: of chunks (a multipart upload).
Body = Any


async def _on_headers_sent(
    session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    permit = ctx.trace_request_ctx
    if permit is not None:
        permit.commit()


# Tells a call's quota permit that its request is being written (``commit()``), on the
# sessions this module creates.
_QUOTA_TRACE = aiohttp.TraceConfig()
_QUOTA_TRACE.on_request_headers_sent.append(_on_headers_sent)
_QUOTA_TRACE.freeze()


def new_session(*, connection_limit: int = 100) -> aiohttp.ClientSession:
    """A session for the SDK: the fresh-connection pool, no session-wide timeout (every
    request passes its own, so a stream never inherits a total), and the quota hook that
    commits a permit passed to :func:`send` when its request is written."""
    return aiohttp.ClientSession(
        connector=FreshConnector(limit=connection_limit),
        timeout=aiohttp.ClientTimeout(total=None),
        trace_configs=[_QUOTA_TRACE],
    )


async def close_session(session: aiohttp.ClientSession) -> None:
    """Close ``session``, even under cancellation."""
    if not session.closed:
        with anyio.CancelScope(shield=True):
            await session.close()


def client_timeout(timeouts: Timeouts, *, stream: bool) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for ``timeouts``; a stream never gets a total (wall-clock) limit."""
    return aiohttp.ClientTimeout(
        total=None if stream else timeouts.total,
        connect=timeouts.pool,
        sock_connect=timeouts.connect,
        sock_read=timeouts.read,
    )


class ByteStream:
    """An answer's body, read piece by piece; a failed read raises a mapped
    :class:`TransportError` (phase ``"read"``), never an aiohttp exception.

    :meth:`release` hands a fully read connection back to the pool (a partly read one is
    closed); :meth:`close` always drops it. Both are synchronous: safe under cancellation
    and from ``__del__``.
    """

    __slots__ = ("_host", "_resp", "_secrets", "_what", "logid")

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        *,
        what: str,
        host: str,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self._resp = resp
        self._what = what
        self._host = host
        self._secrets = tuple(secrets)  # masked out of read errors too
        self.logid = resp.headers.get("x-tt-logid")

    @property
    def closed(self) -> bool:
        """True once the connection has been released or closed."""
        return self._resp.closed

    async def chunk(self) -> bytes:
        """The next bytes of the body as they arrive; ``b""`` at its end."""
        error: TransportError
        try:
            return await self._resp.content.readany()
        except TRANSPORT_ERRORS as exc:
            error = self._mapped(exc)
        raise error  # outside the except block: no aiohttp exception in the chain

    async def read(self, limit: int, *, first: bytes = b"") -> bytes:
        """The rest of the body, refused with :class:`ResponseTooLargeError` past ``limit``
        (``first``: what the caller has already read of it)."""
        error: TransportError
        try:
            return await read_capped(self._resp, limit, self._what, first=first)
        except TRANSPORT_ERRORS as exc:
            error = self._mapped(exc)
        raise error

    def _mapped(self, exc: BaseException) -> TransportError:
        return map_client_error(
            exc,
            what=self._what,
            host=self._host,
            phase="read",
            logid=self.logid,
            secrets=self._secrets,
        )

    def release(self) -> None:
        """Give the connection back to the pool if the body was read to its end, else close."""
        self._resp.release()

    def close(self) -> None:
        """Drop the connection."""
        self._resp.close()


@attrs.frozen
class RawResponse:
    """An answer whose headers have arrived: ``status``, ``headers`` and the unread ``body``."""

    status: int
    headers: Mapping[str, str]
    body: ByteStream

    @property
    def logid(self) -> str | None:
        """The ``X-Tt-Logid`` header."""
        return self.body.logid

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header (``""`` when absent)."""
        return self.headers.get("Content-Type", "")


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeouts: Timeouts,
    stream: bool = False,
    params: Mapping[str, str] | None = None,
    data: Body = None,
    permit: Any = None,
    host: str,
    what: str,
    secrets: Iterable[str | None] = (),
) -> RawResponse:
    """Send one request and return as soon as the answer's headers are in.

    ``permit`` is committed by the session's quota hook when the request is written
    (sessions from :func:`new_session`). A failure is raised as the mapped
    :class:`TransportError`, with ``secrets`` (the token...) masked out of its cause. The
    caller owns the returned body and must release or close it.
    """
    if isinstance(data, bytes) and len(data) > 1024 * 1024:
        # aiohttp warns (ResourceWarning) about raw bytes bodies over 1 MiB, as big workflow
        # inputs are; a file-like object is sent the same way without the warning.
        data = io.BytesIO(data)
    secrets = tuple(secrets)
    error: TransportError
    try:
        resp = await session.request(
            method,
            url,
            params=params,
            data=data,
            headers=dict(headers),
            timeout=client_timeout(timeouts, stream=stream),
            allow_redirects=False,
            trace_request_ctx=permit,
        )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        # Mapped here, raised below: outside this block, so that aiohttp's exception (which
        # holds the request headers, the token among them) is not the context.
        error = map_client_error(exc, what=what, host=host, phase="headers", secrets=secrets)
    else:
        return RawResponse(
            resp.status, resp.headers, ByteStream(resp, what=what, host=host, secrets=secrets)
        )
    raise error


async def read_capped(
    resp: aiohttp.ClientResponse, limit: int, what: str, *, first: bytes = b""
) -> bytes:
    """The whole body of ``resp``, refused with :class:`ResponseTooLargeError` past ``limit``.

    A ``Content-Length`` over the limit is refused before reading anything; otherwise the
    body (decompressed, if it was compressed) is read piece by piece and refused as soon as
    it passes the limit, never buffered whole. ``first`` is the part of the body the caller
    has already read. aiohttp's own errors propagate unchanged, for the caller to map.
    """
    logid = resp.headers.get("x-tt-logid")
    announced = resp.content_length
    if announced is not None and announced > limit:
        raise _too_large(what, f"announces {announced} bytes", announced, limit, logid)
    body = bytearray(first)
    while chunk := await resp.content.readany():
        body += chunk
        if len(body) > limit:
            raise _too_large(what, f"passed {limit} bytes", len(body), limit, logid)
    return bytes(body)


def _too_large(
    what: str, got: str, size: int, limit: int, logid: str | None
) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"{what}: the response body {got}, over the client's limit of {limit} bytes "
        "(AsyncCoze(max_response_bytes=...)); not read",
        size=size,
        limit=limit,
        logid=logid,
    )


def summarize(exc: BaseException, secrets: Iterable[str | None] = ()) -> ErrorCause:
    """An :class:`ErrorCause` with ``exc``'s class name and message, secrets masked."""
    message = str(exc)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "..."
    cls = TimeoutCause if isinstance(exc, TimeoutError) else ErrorCause
    return cls(type(exc).__name__, message)


def map_client_error(
    exc: BaseException,
    *,
    what: str,
    host: str,
    phase: str,
    secrets: Iterable[str | None] = (),
    logid: str | None = None,
) -> TransportError:
    """The :class:`TransportError` for an aiohttp (or socket) failure during ``what``.

    ``phase`` is where the call was when it failed (``"headers"``: waiting for the answer,
    ``"read"``: reading its body); a failure to connect is always ``"connect"``. The result
    has a sanitized ``__cause__`` and no ``__context__`` as long as it is raised outside the
    ``except`` block that caught ``exc``.
    """
    secrets = tuple(secrets)
    cause = summarize(exc, secrets)
    error: TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = TransportTimeoutError(
            f"{what}: timed out connecting to {host} (or waiting for a free connection in "
            "the pool)",
            phase="connect",
            logid=logid,
        )
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = summarize(exc.os_error, secrets).message if exc.os_error else cause.message
        error = TransportError(
            f"{what}: cannot connect to {host}: {reason}", phase="connect", logid=logid
        )
    elif isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        where = (
            "reading the response body" if phase == "read" else "waiting for the response headers"
        )
        error = TransportTimeoutError(f"{what}: timed out {where}", phase=phase, logid=logid)
    else:
        where = "while reading the body" if phase == "read" else "before the response headers"
        error = TransportError(
            f"{what}: connection failed {where}: {cause}", phase=phase, logid=logid
        )
    error.__cause__ = cause
    return error


def peer_closed(sock: Any) -> bool:
    """True when an idle socket is readable: its peer closed it (or sent stray bytes).

    An idle HTTP/1.1 keep-alive connection has nothing to read; if it does, the answer can
    only be an end-of-file (or garbage), and a request written on it would be lost. This
    is the zero-timeout check urllib3 and httpcore make before reusing a connection; it sees
    a close that the kernel has received but the event loop has not processed yet.
    """
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True  # a socket we cannot even poll is no socket to send a request on


class FreshConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that drops pooled connections their peer has already closed.

    A server (or a proxy, or a load balancer) that closes a keep-alive connection right
    after its answer, without ``Connection: close``, races the client's next request: if
    the request goes out on the closed connection it fails with a reset, and a chat, which
    must never be sent twice, cannot be retried because the SDK cannot prove the server
    never read it. aiohttp only notices the close once its event loop has processed the
    FIN; this connector also polls each idle socket (:func:`peer_closed`) right before
    handing it out, so such a connection is closed and a fresh one is opened instead.
    """

    async def _get(self, key: Any, traces: Any) -> Any:
        self._drop_closed(key)
        return await super()._get(key, traces)

    def _drop_closed(self, key: Any) -> None:
        conns = getattr(self, "_conns", None)
        pooled = conns.get(key) if isinstance(conns, dict) else None
        if not pooled:
            return
        for item in list(pooled):
            proto = item[0]
            transport = getattr(proto, "transport", None)
            if transport is None or transport.is_closing():
                continue  # aiohttp's own check drops it
            sock = transport.get_extra_info("socket")
            if sock is not None and peer_closed(sock):
                pooled.remove(item)
                proto.close()
