"""OAuth for Coze: JWT service-app auth, and the PKCE (web) and device-code user flows.

* :class:`JWTAuth` is an auth for :class:`~coze_async.AsyncCoze` (``auth=JWTAuth(...)``): it
  signs an RS256 JWT with the service app's private key, exchanges it for a ``czs_`` access
  token, caches the token until shortly before it expires and refreshes it single-flight
  (however many tasks need a token at once, one exchange runs and all of them await it).
  After a 4100 / HTTP 401 the transport asks it to drop the rejected token and retries once.
* :class:`PKCEOAuth` builds the browser authorization URL (S256 challenge), exchanges the
  code that comes back and refreshes; :class:`DeviceOAuth` runs the device-code flow for
  devices without a browser. Both return :class:`OAuthToken`.

Wire facts: coze-api.md §1.3. ``expires_in`` is an absolute Unix timestamp, not a duration.

Why this module talks to aiohttp itself instead of going through ``transport.py``: the token
endpoints are not Coze API calls. Their success body is ``{access_token, expires_in, ...}``
with no ``code/msg/data`` envelope, their errors are ``{error_code, error_message}`` (or
``error`` / ``error_description``: both are read), their bearer is a JWT or a client secret
rather than the auth's token (the transport would ask the very auth being refreshed for a
token), and the quota limiter and retry policy for API calls do not apply. Each exchange uses
the ``session=`` given, or a short-lived session of its own (exchanges are rare: one per
token lifetime).

Signing needs PyJWT and cryptography: ``pip install 'coze-async[jwt]'``. Without them,
creating a :class:`JWTAuth` raises :class:`~coze_async.errors.MissingExtraError`; the user
flows need nothing extra.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import platform
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp
import anyio
import attrs

from . import __about__
from ._http import map_client_error, read_capped
from ._json import dumps, loads
from .auth import redact
from .config import COZE_CN_BASE_URL, check_base_url
from .errors import (
    AuthorizationPendingError,
    ExpiredTokenError,
    InvalidArgumentError,
    InvalidClientError,
    MissingExtraError,
    OAuthError,
    ResponseValidationError,
    TransportError,
    oauth_error_class_for,
)

__all__ = [
    "DEVICE_GRANT_TYPE",
    "JWT_GRANT_TYPE",
    "AuthorizeRequest",
    "DeviceCode",
    "DeviceOAuth",
    "JWTAuth",
    "OAuthToken",
    "PKCEOAuth",
    "code_challenge",
]

logger = logging.getLogger("coze_async")

JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""``grant_type`` of the JWT (service app) exchange."""
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
"""``grant_type`` of device-code polling."""

_TOKEN_PATH = "/api/permission/oauth2/token"
_DEVICE_CODE_PATH = "/api/permission/oauth2/device/code"
_AUTHORIZE_PATH = "/api/permission/oauth2/authorize"
#: The JWT only has to live through its own exchange; Coze's docs sample uses 600 s.
_JWT_LIFETIME = 600
#: Coze's bounds for the access token's ``duration_seconds``.
_MAX_TTL = 86399
#: Refresh this long before expiry at most (and at most 10 % of the token's lifetime).
_MAX_MARGIN = 30.0

# A token endpoint answers a few hundred bytes; anything near this is not a token answer.
_MAX_TOKEN_RESPONSE = 1024 * 1024

_USER_AGENT = (
    f"coze-async/{__about__.__version__} python/{platform.python_version()} "
    f"aiohttp/{aiohttp.__version__}"
)


@attrs.frozen(kw_only=True, repr=False)
class OAuthToken:
    """An access token from a Coze OAuth token endpoint.

    ``expires_in`` is what Coze sends: an **absolute** Unix timestamp in seconds (not a
    duration). ``refresh_token`` comes with the user flows (PKCE, device; valid 30 days and
    single-use: refreshing returns a new one), never with the JWT flow. ``logid`` is the
    exchange's ``x-tt-logid``. The repr shows neither token.
    """

    access_token: str
    expires_in: int
    refresh_token: str | None = None
    token_type: str | None = None
    logid: str | None = attrs.field(default=None, eq=False)

    def __repr__(self) -> str:
        refresh = redact(self.refresh_token) if self.refresh_token else None
        return (
            f"OAuthToken(access_token={redact(self.access_token)}, expires_in={self.expires_in}, "
            f"refresh_token={refresh}, token_type={self.token_type!r})"
        )


@attrs.frozen(kw_only=True, repr=False)
class AuthorizeRequest:
    """The URL to send the user's browser to, and what to keep until the code comes back.

    Keep ``code_verifier`` server-side (it proves the code exchange comes from whoever built
    the URL) and check that the redirect's ``state`` equals ``state`` (CSRF protection).
    """

    url: str
    state: str
    code_verifier: str

    def __repr__(self) -> str:
        return f"AuthorizeRequest(url={self.url!r}, state={self.state!r})"


@attrs.frozen(kw_only=True, repr=False)
class DeviceCode:
    """A device-code flow in progress: show ``verification_url`` (or ``verification_uri`` and
    ``user_code``) to the user, then :meth:`DeviceOAuth.poll`.

    ``expires_in`` (seconds, relative) and ``interval`` (seconds between polls) are as Coze
    sent them; ``received_at`` is the ``time.monotonic()`` of their arrival.
    """

    device_code: str
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float
    received_at: float
    logid: str | None = attrs.field(default=None, eq=False)

    @property
    def verification_url(self) -> str:
        """``verification_uri`` with the user code filled in, as cozepy builds it."""
        sep = "&" if "?" in self.verification_uri else "?"
        return f"{self.verification_uri}{sep}{urlencode({'user_code': self.user_code})}"

    def __repr__(self) -> str:
        return (
            f"DeviceCode(user_code={self.user_code!r}, verification_uri="
            f"{self.verification_uri!r}, expires_in={self.expires_in}, interval={self.interval})"
        )


# ---------------------------------------------------------------------------- HTTP


def _check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or not client_id.strip():
        raise InvalidArgumentError("client_id must be a non-empty string")
    return client_id


def _check_timeout(timeout: float) -> float:
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidArgumentError(f"timeout must be a positive number, got {timeout!r}")
    return float(timeout)


class _Endpoint:
    """Small JSON POSTs to one host's OAuth endpoints, mapping their own error bodies."""

    def __init__(
        self, *, base_url: str, session: aiohttp.ClientSession | None, timeout: float
    ) -> None:
        self.base_url = base_url
        self.host = urlsplit(base_url).hostname or ""
        self.session = session
        self.timeout = timeout

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[aiohttp.ClientSession]:
        """The caller's session, or a fresh one closed on exit (a few requests at most)."""
        if self.session is not None:
            yield self.session
            return
        async with aiohttp.ClientSession() as session:
            yield session

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        bearer: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """POST ``body``; return the decoded object and logid, or raise the mapped error."""
        if session is None:
            async with self.opened() as own:
                return await self.post(path, body, bearer=bearer, session=own)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        what = f"POST {path}"
        error: TransportError | None = None
        try:
            async with session.post(
                self.base_url + path,
                data=dumps(dict(body)),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                logid = resp.headers.get("x-tt-logid")
                raw = await read_capped(resp, _MAX_TOKEN_RESPONSE, what)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Raised below, outside this block: aiohttp's exception holds the request headers
            # (the bearer JWT) and must not become the error's context.
            error = map_client_error(
                exc,
                what=what,
                host=self.host,
                phase="headers",
                secrets=(bearer, *(str(v) for v in body.values() if isinstance(v, str))),
            )
        if error is not None:
            raise error
        try:
            decoded = loads(raw) if raw else None
        except ValueError:
            decoded = None
        data = decoded if isinstance(decoded, dict) else None
        if status >= 400 or (data is not None and _error_code(data) is not None):
            raise self._error(status, data, raw, logid)
        if data is None:
            raise ResponseValidationError(
                f"{what}: expected a JSON object from {self.host}",
                logid=logid,
                body=raw.decode("utf-8", "replace")[:500],
            )
        return data, logid

    def _error(
        self, status: int, data: dict[str, Any] | None, raw: bytes, logid: str | None
    ) -> OAuthError:
        if data is None:
            text = " ".join(raw.decode("utf-8", "replace").split())[:200]
            return OAuthError(
                f"HTTP {status}: {text}" if text else f"HTTP {status}",
                error_code=None,
                http_status=status,
                logid=logid,
            )
        code = _error_code(data)
        message = data.get("error_message") or data.get("error_description") or data.get("msg")
        message = str(message) if message else (code or f"HTTP {status}")
        cls = oauth_error_class_for(code)
        detail = data.get("detail")
        if logid is None and isinstance(detail, dict) and isinstance(detail.get("logid"), str):
            logid = detail["logid"]
        return cls(
            message,
            error_code=code,
            http_status=status,
            logid=logid,
            body=data,
            hint=_hint(cls, code, message, self.host),
        )


def _error_code(data: Mapping[str, Any]) -> str | None:
    code = data.get("error_code") or data.get("error")
    if isinstance(code, str) and code:
        return code
    envelope = data.get("code")  # a gateway answering with the API envelope instead
    if isinstance(envelope, int) and not isinstance(envelope, bool) and envelope != 0:
        return str(envelope)
    return None


def _hint(cls: type[OAuthError], code: str | None, message: str, host: str) -> str | None:
    words = set(re.findall(r"[a-z_]+", message.lower()))
    if cls is InvalidClientError:
        if "iss" in words:
            return "client_id is not the app that public_key_id belongs to: check both"
        if "kid" in words:
            return (
                f"the JWT's kid is not registered on {host}: a key made for a coze.cn app does "
                "not work on api.coze.com, and vice versa; check public_key_id and base_url"
            )
        if "aud" in words:
            return (
                f"{host} expects the JWT's aud to be its own host name; JWTAuth takes it from "
                "base_url (set audience= only when base_url is a proxy in front of Coze)"
            )
        if "jti" in words:
            return "a JWT can be exchanged only once (its jti is single-use): sign a new one"
        if "signature" in words:
            return (
                "the signature does not match the public key registered under public_key_id: "
                "check that private_key is that key pair's private half"
            )
        if words & {"exp", "iat", "expired"}:
            return "the JWT's iat/exp are checked against the server's clock: check this clock"
        return (
            f"{host} does not accept this client: check client_id and that base_url is the "
            "region (coze.cn or coze.com) the app was created in"
        )
    if code == "invalid_grant":
        return "the code or refresh token is unknown, already used or expired: start over"
    if code in ("access_denied", "access_deny"):
        return "the user declined the authorization"
    if code == "expired_token":
        return "the device code expired before the user approved it: request a new code"
    return None


async def _refresh_user_token(
    endpoint: _Endpoint, *, client_id: str, refresh_token: str, secret: str | None
) -> OAuthToken:
    body = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    data, logid = await endpoint.post(_TOKEN_PATH, body, bearer=secret)
    return _parse_token(data, logid)


def _default(value: Any, default: float) -> Any:
    return default if value is None else value


def _parse_token(data: Mapping[str, Any], logid: str | None) -> OAuthToken:
    access = data.get("access_token")
    expires = data.get("expires_in")
    # Lenient like every answer: Coze sends an int; accept a numeric string or a whole float.
    if (isinstance(expires, str) and expires.strip().isdigit()) or (
        isinstance(expires, float) and expires.is_integer()
    ):
        expires = int(expires)
    if not isinstance(access, str) or not access:
        raise ResponseValidationError(
            "the token endpoint's answer has no access_token", logid=logid, path="$.access_token"
        )
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise ResponseValidationError(
            "the token endpoint's answer has no integer expires_in",
            logid=logid,
            path="$.expires_in",
        )
    refresh = data.get("refresh_token")
    token_type = data.get("token_type")
    return OAuthToken(
        access_token=access,
        expires_in=expires,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        token_type=token_type if isinstance(token_type, str) else None,
        logid=logid,
    )


# ---------------------------------------------------------------------------- JWT


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
    ``aiohttp.ClientSession`` for the exchanges (not closed here); ``timeout`` bounds one.
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
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _require_jwt_extra()
        self.client_id = _check_client_id(client_id)
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
        self._timeout = _check_timeout(timeout)
        self._clock = clock
        self._base_url_given = base_url is not None
        self._bound = False  # base_url taken from the first AsyncCoze it was given to
        self._endpoint = self._make_endpoint(base_url or COZE_CN_BASE_URL)
        self._cached: OAuthToken | None = None
        self._refresh_at = 0.0
        self._inflight: asyncio.Task[OAuthToken] | None = None

    def _make_endpoint(self, base_url: str) -> _Endpoint:
        return _Endpoint(
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
        data, logid = await self._endpoint.post(_TOKEN_PATH, body, bearer=assertion)
        token = _parse_token(data, logid)
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


# ---------------------------------------------------------------------------- user flows


def _www_base_url(base_url: str) -> str:
    """Where the browser goes: www.coze.cn / www.coze.com for the API hosts, else base_url."""
    host = urlsplit(base_url).hostname or ""
    if host == "api.coze.cn":
        return "https://www.coze.cn"
    if host == "api.coze.com":
        return "https://www.coze.com"
    return base_url


def code_challenge(verifier: str, *, method: Literal["S256", "plain"] = "S256") -> str:
    """The PKCE ``code_challenge`` for ``verifier``: base64url(sha256) without padding."""
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class PKCEOAuth:
    """The authorization-code flow with PKCE, for apps acting for a signed-in Coze user.

    1. :meth:`authorize_url` -> send the browser to ``.url``; keep ``.code_verifier`` and
       ``.state``;
    2. Coze redirects to ``redirect_uri?code=...&state=...``: check ``state``, then
       :meth:`exchange_code`;
    3. before ``expires_in``, :meth:`refresh` with the ``refresh_token`` (single-use: store
       the new one it returns).

    ``base_url`` is the API host (token endpoint); the authorize page is on ``www_base_url``
    (derived: www.coze.cn / www.coze.com; the emulator serves both itself).
    ``client_secret`` is for web apps with a secret (sent as the token endpoint's bearer);
    PKCE apps have none. ``session`` and ``timeout`` as for :class:`JWTAuth`.
    """

    def __init__(
        self,
        *,
        client_id: str,
        base_url: str = COZE_CN_BASE_URL,
        www_base_url: str | None = None,
        client_secret: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client_id = _check_client_id(client_id)
        base = check_base_url(base_url)
        self.www_base_url = check_base_url(www_base_url or _www_base_url(base))
        self._secret = client_secret
        self._endpoint = _Endpoint(base_url=base, session=session, timeout=_check_timeout(timeout))

    @property
    def base_url(self) -> str:
        """The API host the code is exchanged at."""
        return self._endpoint.base_url

    def authorize_url(
        self,
        *,
        redirect_uri: str,
        state: str | None = None,
        code_challenge_method: Literal["S256", "plain"] = "S256",
        workspace_id: str | None = None,
    ) -> AuthorizeRequest:
        """Build the browser URL with a fresh verifier and its ``code_challenge``.

        ``state`` defaults to a random string; ``S256`` is the default because ``plain``
        gives the verifier away in the URL. ``workspace_id`` selects the workspace variant.
        """
        if code_challenge_method not in ("S256", "plain"):
            raise InvalidArgumentError("code_challenge_method must be 'S256' or 'plain'")
        if not redirect_uri:
            raise InvalidArgumentError("redirect_uri must be a non-empty string")
        verifier = secrets.token_urlsafe(48)  # 64 characters, inside RFC 7636's 43..128
        state = state if state is not None else secrets.token_urlsafe(16)
        path = (
            f"/api/permission/oauth2/workspace_id/{workspace_id}/authorize"
            if workspace_id
            else _AUTHORIZE_PATH
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": code_challenge(verifier, method=code_challenge_method),
                "code_challenge_method": code_challenge_method,
            }
        )
        return AuthorizeRequest(
            url=f"{self.www_base_url}{path}?{query}", state=state, code_verifier=verifier
        )

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> OAuthToken:
        """Exchange the redirect's ``code`` for tokens (``code_verifier``: from the request)."""
        body: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
        }
        if code_verifier is not None:
            body["code_verifier"] = code_verifier
        data, logid = await self._endpoint.post(_TOKEN_PATH, body, bearer=self._secret)
        return _parse_token(data, logid)

    async def refresh(self, *, refresh_token: str) -> OAuthToken:
        """New tokens for a refresh token; the old refresh token stops working."""
        return await _refresh_user_token(
            self._endpoint,
            client_id=self.client_id,
            refresh_token=refresh_token,
            secret=self._secret,
        )

    def __repr__(self) -> str:
        return f"PKCEOAuth(client_id={self.client_id!r}, base_url={self.base_url!r})"


class DeviceOAuth:
    """The device-code flow, for a CLI or a device without a browser.

    :meth:`request_code`, show the user ``code.verification_url``, then :meth:`poll` until
    they approve (:class:`OAuthToken`), decline (:class:`~coze_async.errors.AccessDeniedError`)
    or the code expires (:class:`~coze_async.errors.ExpiredTokenError`).
    """

    def __init__(
        self,
        *,
        client_id: str,
        base_url: str = COZE_CN_BASE_URL,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client_id = _check_client_id(client_id)
        self._endpoint = _Endpoint(
            base_url=check_base_url(base_url), session=session, timeout=_check_timeout(timeout)
        )

    @property
    def base_url(self) -> str:
        """The API host of the device and token endpoints."""
        return self._endpoint.base_url

    async def request_code(self, *, workspace_id: str | None = None) -> DeviceCode:
        """Start a device flow: a device code for polling and a user code for the user."""
        path = (
            f"/api/permission/oauth2/workspace_id/{workspace_id}/device/code"
            if workspace_id
            else _DEVICE_CODE_PATH
        )
        data, logid = await self._endpoint.post(path, {"client_id": self.client_id})
        try:
            return DeviceCode(
                device_code=str(data["device_code"]),
                user_code=str(data["user_code"]),
                verification_uri=str(data["verification_uri"]),
                # Coze's documented defaults when a field is missing: 300 s and 5 s.
                expires_in=float(_default(data.get("expires_in"), 300)),
                interval=float(_default(data.get("interval"), 5)),
                received_at=time.monotonic(),
                logid=logid,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ResponseValidationError(
                f"the device code answer lacks a valid {exc}", logid=logid
            ) from None

    async def poll(
        self,
        *,
        code: DeviceCode,
        timeout: float | None = None,
        slow_down_step: float = 5.0,
        max_interval: float = 30.0,
    ) -> OAuthToken:
        """Poll the token endpoint until the user decides; return the tokens.

        Waits ``code.interval`` seconds before each poll; ``slow_down`` adds
        ``slow_down_step`` (Coze and RFC 8628: 5 s) up to ``max_interval``. Stops with
        :class:`~coze_async.errors.AccessDeniedError` (declined),
        :class:`~coze_async.errors.ExpiredTokenError` (the code expired: at the server, or
        locally once ``code.expires_in`` has passed) or, after ``timeout`` seconds,
        :class:`~coze_async.errors.AuthorizationPendingError` (a ``TimeoutError``).
        """
        if timeout is not None:
            _check_timeout(timeout)
        if slow_down_step < 0 or max_interval <= 0:
            raise InvalidArgumentError("slow_down_step must be >= 0 and max_interval > 0")
        interval = max(0.0, code.interval)
        expires_at = code.received_at + code.expires_in
        give_up_at = time.monotonic() + timeout if timeout is not None else None
        body = {
            "grant_type": DEVICE_GRANT_TYPE,
            "client_id": self.client_id,
            "device_code": code.device_code,
        }
        logid = code.logid
        async with self._endpoint.opened() as session:
            while True:
                next_poll = time.monotonic() + interval
                if next_poll >= expires_at:
                    raise ExpiredTokenError(
                        f"the device code expired (after {code.expires_in:g} s) before the user "
                        "approved it",
                        error_code="expired_token",
                        logid=logid,
                        hint="request a new code and show the user its user_code",
                    )
                if give_up_at is not None and next_poll > give_up_at:
                    raise AuthorizationPendingError(
                        f"the user had not approved the device within timeout={timeout:g} s",
                        error_code="authorization_pending",
                        logid=logid,
                    )
                await anyio.sleep(interval)
                try:
                    data, logid = await self._endpoint.post(_TOKEN_PATH, body, session=session)
                except OAuthError as exc:
                    logid = exc.logid
                    if exc.error_code == "authorization_pending":
                        continue
                    if exc.error_code == "slow_down":
                        interval = min(max_interval, interval + slow_down_step)
                        continue
                    raise
                return _parse_token(data, logid)

    async def refresh(self, *, refresh_token: str) -> OAuthToken:
        """New tokens for a refresh token; the old refresh token stops working."""
        return await _refresh_user_token(
            self._endpoint, client_id=self.client_id, refresh_token=refresh_token, secret=None
        )

    def __repr__(self) -> str:
        return f"DeviceOAuth(client_id={self.client_id!r}, base_url={self.base_url!r})"
