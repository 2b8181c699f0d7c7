"""JWT service-app auth: :class:`JWTAuth` signs an RS256 JWT with the app's private key,
exchanges it for a ``czs_`` access token, caches the token until shortly before it expires
and refreshes it single-flight (however many tasks need a token at once, one exchange runs
and all of them await it). After a 4100 / HTTP 401 the transport asks it to drop the rejected
token and retries once.

Signing needs PyJWT and cryptography: ``pip install 'coze-async[jwt]'``. Without them,
creating a :class:`JWTAuth` raises :class:`~coze_async.errors.MissingExtraError`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._http import Session
from ..auth import redact
from ..config import COZE_CN_BASE_URL, check_base_url
from ..errors import InvalidArgumentError, MissingExtraError
from ._common import (
    JWT_GRANT_TYPE,
    TOKEN_PATH,
    OAuthToken,
    check_client_id,
    check_timeout,
    parse_token,
)
from ._endpoint import TokenEndpoint

__all__ = ["JWTAuth"]

logger = logging.getLogger("coze_async")

#: The JWT only has to live through its own exchange; Coze's docs sample uses 600 s.
_JWT_LIFETIME = 600
#: Coze's bounds for the access token's ``duration_seconds``.
_MAX_TTL = 86399
#: Refresh this long before expiry at most (and at most 10 % of the token's lifetime).
_MAX_MARGIN = 30.0


def _require_jwt_extra() -> None:
    try:
        import cryptography  # noqa: F401
        import jwt  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            "JWTAuth signs its JWTs with PyJWT and cryptography, which are not installed: "
            "pip install 'coze-async[jwt]'",
            extra="jwt",
        ) from exc


def _load_private_key(private_key: str | bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if isinstance(private_key, str):
        private_key = private_key.encode()
    if not isinstance(private_key, bytes):
        raise InvalidArgumentError("private_key must be a PEM string or bytes")
    try:
        key = load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError):
        # Never chain: the parser's message could quote the key material.
        key = None
    if not isinstance(key, RSAPrivateKey):
        raise InvalidArgumentError(
            "private_key must be an unencrypted PEM RSA private key (the private_key.pem "
            "downloaded when the app's public key was created)"
        )
    return key


class JWTAuth:
    """Auth for a Coze service app ("服务类应用"): JWT-signed token exchange, cached.

    ``client_id`` is the OAuth app id, ``private_key`` its PEM RSA private key and
    ``public_key_id`` the key's fingerprint shown on the app page (the JWT's ``kid``).
    ``ttl`` is the access token lifetime asked for (``duration_seconds``: 1..86399, Coze's
    default 900). ``session_name`` isolates end users' conversations within the app;
    ``scope`` is Coze's scope object (e.g. ``{"account_permission": {"permission_list":
    ["Connector.botChat"]}}``), omitted when None.

    ``base_url`` is the API host to exchange at; the JWT's ``aud`` is its host name
    (``api.coze.cn``). Left out, an ``AsyncCoze`` that receives this auth fills in its own
    base URL (and :data:`~coze_async.COZE_CN_BASE_URL` is used before that). ``audience``
    overrides ``aud`` for a ``base_url`` that is a proxy in front of Coze. ``session`` is an
    ``Session`` for the exchanges (not closed here); ``timeout`` bounds one.
    ``clock`` returns Unix seconds (injectable for tests).

    The token is cached until ``expires_in`` minus a margin (30 s, or 10 % of its lifetime
    if less). Refreshing is single-flight: concurrent :meth:`token` calls share one exchange,
    and a caller cancelled while waiting does not cancel it for the others. Every exchange
    signs a new JWT with a fresh ``jti`` (Coze accepts each JWT once). Neither the key nor a
    token ever appears in ``repr`` or errors.
    """

    def __init__(
        self,
        *,
        client_id: str,
        private_key: str | bytes,
        public_key_id: str,
        ttl: int = 900,
        session_name: str | None = None,
        scope: Mapping[str, Any] | None = None,
        base_url: str | None = None,
        audience: str | None = None,
        session: Session | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _require_jwt_extra()
        self.client_id = check_client_id(client_id)
        if not isinstance(public_key_id, str) or not public_key_id.strip():
            raise InvalidArgumentError("public_key_id must be a non-empty string")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= _MAX_TTL:
            raise InvalidArgumentError(f"ttl must be an int in 1..{_MAX_TTL} seconds, got {ttl!r}")
        if session_name is not None and not isinstance(session_name, str):
            raise InvalidArgumentError("session_name must be a string")
        self.public_key_id = public_key_id
        self.ttl = ttl
        self.session_name = session_name
        self.scope: dict[str, Any] | None = dict(scope) if scope is not None else None
        self._key = _load_private_key(private_key)
        self._audience = audience
        self._session = session
        self._timeout = check_timeout(timeout)
        self._clock = clock
        self._base_url_given = base_url is not None
        self._bound = False  # base_url taken from the first AsyncCoze it was given to
        self._endpoint = self._make_endpoint(base_url or COZE_CN_BASE_URL)
        self._cached: OAuthToken | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Task[OAuthToken] | None = None

    def _make_endpoint(self, base_url: str) -> TokenEndpoint:
        return TokenEndpoint(
            base_url=check_base_url(base_url), session=self._session, timeout=self._timeout
        )

    @property
    def base_url(self) -> str:
        """The host the JWT is exchanged at."""
        return self._endpoint.base_url

    @property
    def audience(self) -> str:
        """The JWT's ``aud``: ``audience=`` if given, else ``base_url``'s host name."""
        return self._audience or self._endpoint.host

    def bind_base_url(self, base_url: str) -> None:
        """Called by ``AsyncCoze``: adopt the client's base URL unless one was given.

        A ``JWTAuth`` without ``base_url=`` follows the first client it is given to; giving it
        to a client for another host then raises, since its tokens only work on one host.
        """
        base_url = check_base_url(base_url)
        if self._base_url_given or base_url == self._endpoint.base_url:
            return
        if self._bound or self._cached is not None or self._inflight is not None:
            raise InvalidArgumentError(
                f"this JWTAuth already gets tokens for {self._endpoint.host}; tokens are "
                "host-bound, so pass base_url= (or a separate JWTAuth) for each host"
            )
        self._endpoint = self._make_endpoint(base_url)
        self._bound = True

    def build_jwt(self) -> str:
        """Sign a new JWT for one exchange (fresh ``jti``; claims as coze-api.md §1.3).

        Useful to exchange it yourself (:meth:`exchange`); :meth:`token` does it for you.
        """
        import jwt

        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + _JWT_LIFETIME,
            # 24 random bytes as 48 hex characters: Coze recommends more than 32.
            "jti": secrets.token_hex(24),
        }
        if self.session_name:
            claims["session_name"] = self.session_name
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.public_key_id})

    async def exchange(self, *, assertion: str) -> OAuthToken:
        """Exchange a signed JWT for an access token; the cache is left alone.

        Raises :class:`~coze_async.errors.InvalidClientError` when Coze refuses the JWT
        (unknown ``kid``, e.g. a key of the other region; bad signature; a reused ``jti``).
        """
        body: dict[str, Any] = {"grant_type": JWT_GRANT_TYPE, "duration_seconds": self.ttl}
        if self.scope is not None:
            body["scope"] = self.scope
        data, logid = await self._endpoint.post(TOKEN_PATH, body, bearer=assertion)
        token = parse_token(data, logid)
        logger.debug(
            "JWT exchange for client %s at %s: expires_in=%s logid=%s",
            self.client_id,
            self._endpoint.host,
            token.expires_in,
            logid,
        )
        return token

    async def token(self) -> str:
        """The cached access token, or a fresh one (one exchange for all concurrent callers)."""
        cached = self._cached
        if cached is not None and self._clock() < self._refresh_at:
            return cached.access_token
        return (await self._refresh()).access_token

    async def get_token(self) -> OAuthToken:
        """Like :meth:`token`, as the full :class:`OAuthToken` (with ``expires_in``)."""
        cached = self._cached
        if cached is not None and self._clock() < self._refresh_at:
            return cached
        return await self._refresh()

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the cached one (Coze rejected it with 4100).

        Compared first so that many calls failing with the same old token cause one
        refresh, and a call failing with an older token does not discard a newer one.
        """
        cached = self._cached
        if cached is not None and secrets.compare_digest(cached.access_token, token):
            self._cached = None

    async def _refresh(self) -> OAuthToken:
        task = self._inflight
        loop = asyncio.get_running_loop()
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._exchange_and_cache())
            self._inflight = task
            task.add_done_callback(self._exchange_done)
        # Shielded: a waiter being cancelled must not cancel the exchange the others await.
        return await asyncio.shield(task)

    def _exchange_done(self, task: asyncio.Task[OAuthToken]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: no "exception never retrieved" if all waiters left

    async def _exchange_and_cache(self) -> OAuthToken:
        token = await self.exchange(assertion=self.build_jwt())
        lifetime = token.expires_in - self._clock()
        margin = max(0.0, min(_MAX_MARGIN, lifetime * 0.1))
        self._cached = token
        self._refresh_at = token.expires_in - margin
        return token

    def __repr__(self) -> str:
        cached = redact(self._cached.access_token) if self._cached is not None else None
        return (
            f"JWTAuth(client_id={self.client_id!r}, public_key_id={self.public_key_id!r}, "
            f"base_url={self.base_url!r}, token={cached})"
        )
