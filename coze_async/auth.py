"""Authentication: how a call gets its bearer token.

An auth object has one coroutine, ``token()``, so the transport can ask for a fresh token per
attempt (an OAuth auth refreshes behind it). Tokens never appear in ``repr`` or logs.

Two optional abilities, each a declared protocol (checked with ``isinstance``), so an auth
with only ``token()`` keeps working:

* :class:`RefreshableAuth` - ``async invalidate(token)``: called when Coze rejects ``token``
  (4100 / HTTP 401); the auth drops it if it is still the cached one, and the call is retried
  once with a fresh token (implemented by :class:`~coze_async.oauth.JWTAuth`);
* :class:`HostBoundAuth` - ``bind_base_url(base_url)``: called by ``AsyncCoze`` with its base
  URL, for auths whose tokens depend on the host (a JWT's ``aud``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from .errors import InvalidArgumentError

__all__ = ["Auth", "CallableAuth", "HostBoundAuth", "RefreshableAuth", "TokenAuth", "redact"]


def redact(token: str | None) -> str:
    """The form a token takes in reprs and logs: its kind prefix and nothing else."""
    if not token:
        return "<none>"
    prefix = token.split("_", 1)[0] + "_" if "_" in token[:5] else ""
    return f"{prefix}***"


@runtime_checkable
class Auth(Protocol):
    """Anything that can produce a bearer token for the next request."""

    async def token(self) -> str:
        """Return the bearer token to send."""
        ...


@runtime_checkable
class RefreshableAuth(Auth, Protocol):
    """An :class:`Auth` whose tokens expire and can be replaced (e.g. ``JWTAuth``)."""

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the current one: Coze has rejected it."""
        ...


@runtime_checkable
class HostBoundAuth(Auth, Protocol):
    """An :class:`Auth` whose tokens depend on the API host (e.g. ``JWTAuth``: the JWT's
    ``aud``); ``AsyncCoze`` tells it the base URL in use."""

    def bind_base_url(self, base_url: str) -> None:
        """Issue tokens for ``base_url`` from now on."""
        ...


class TokenAuth:
    """A fixed token: a personal access token (``pat_``), a service token or an OAuth token."""

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise InvalidArgumentError("token must be a non-empty string")
        if any(c.isspace() for c in token):
            raise InvalidArgumentError("token must not contain whitespace")
        self._token = token

    async def token(self) -> str:
        """Return the token."""
        return self._token

    def __repr__(self) -> str:
        return f"TokenAuth({redact(self._token)})"


class CallableAuth:
    """Wraps a user-provided ``async () -> str`` (e.g. a token cache shared by a fleet)."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], Awaitable[str]]) -> None:
        self._fn = fn

    async def token(self) -> str:
        """Call the wrapped coroutine function."""
        value = await self._fn()
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError("the token callable must return a non-empty string")
        return value

    def __repr__(self) -> str:
        return f"CallableAuth({getattr(self._fn, '__qualname__', 'callable')})"
