"""aiohttp errors -> SDK errors, in one place, with nothing secret left in them.

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
from collections.abc import Iterable

import aiohttp

from .errors import ErrorCause, TimeoutCause, TransportError, TransportTimeoutError

__all__ = ["TRANSPORT_ERRORS", "map_client_error", "summarize"]

#: What a socket read or write may raise: aiohttp's errors, timeouts and OS errors.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

_MAX_MESSAGE = 300


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
