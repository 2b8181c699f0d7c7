"""The SDK's aiohttp client plumbing: the connection pool, and errors mapped in one place.

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
import select
from collections.abc import Iterable
from typing import Any

import aiohttp

from .errors import (
    ErrorCause,
    ResponseTooLargeError,
    TimeoutCause,
    TransportError,
    TransportTimeoutError,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "FreshConnector",
    "map_client_error",
    "peer_closed",
    "read_capped",
    "summarize",
]

#: What a socket read or write may raise: aiohttp's errors, timeouts and OS errors.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

_MAX_MESSAGE = 300


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
