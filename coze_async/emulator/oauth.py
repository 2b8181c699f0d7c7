"""OAuth routes: the token endpoint for the JWT, PKCE / web and device-code flows.

Wire facts (coze-api.md §1.3): the token endpoint lives on the API host, takes a JSON body and
answers *without* the ``code/msg/data`` envelope: ``{"access_token", "expires_in"}`` where
``expires_in`` is an absolute Unix timestamp in whole seconds. Errors carry ``error_code`` /
``error_message`` (what cozepy and coze-go read) and, because the docs name them
``error`` / ``error_description``, both pairs are emitted.

Choices where Coze's behaviour is not documented (marked [infer] in the docs' terms):

* every refused JWT (unknown ``kid``, bad signature, wrong ``aud``, expired, replayed ``jti``)
  answers HTTP 401 ``invalid_client`` with ``invalid jwt: <reason>``, as the recorded wrong-kid
  answer does (``invalid jwt: kid not been registred``, Coze's spelling);
* an unknown, used or mismatched code / refresh token / device code answers HTTP 400
  ``invalid_grant``; device polling states (``authorization_pending``, ``slow_down``,
  ``access_denied``, ``expired_token``) answer HTTP 400;
* a client's secret is checked only if one was registered (:meth:`OAuthServer.add_web_app`);
  other client ids are accepted by the user flows, so tests need no set-up for them.

Tokens issued here are accepted by the emulator's auth middleware until they expire or are
revoked (:meth:`OAuthServer.user_for`). Time comes from :attr:`OAuthServer.clock`, so a test
can share a fake clock with the client and expire tokens without waiting.

PyJWT and cryptography (the ``coze-async[jwt]`` extra) are imported only when a JWT app is
registered or a JWT is verified: without them everything else still runs, and the JWT grant
answers a 500 ``internal_error`` that names the extra.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import html
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from .host import Host, Route
from .state import new_id
from .wire import LOGID_HEADER, dumps

__all__ = [
    "DEVICE_CODE_PATH",
    "DEVICE_GRANT",
    "JWT_GRANT",
    "TOKEN_PATH",
    "OAuthServer",
]

TOKEN_PATH: Final = "/api/permission/oauth2/token"
DEVICE_CODE_PATH: Final = "/api/permission/oauth2/device/code"
AUTHORIZE_PATH: Final = "/api/permission/oauth2/authorize"
JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_GRANT: Final = "urn:ietf:params:oauth:grant-type:device_code"

#: Coze's bounds for ``duration_seconds`` (coze-api.md §1.3).
_DEFAULT_DURATION: Final = 900
_MAX_DURATION: Final = 86399
#: User-flow access tokens live ~15 min, refresh tokens 30 days (coze-api.md §1.3).
_USER_TOKEN_TTL: Final = 900
_REFRESH_TTL: Final = 30 * 86400
_CODE_TTL: Final = 600
#: Tolerance for a client clock slightly ahead of ours when checking ``iat``.
_IAT_LEEWAY: Final = 60

_GRANT_NAMES: Final = {
    JWT_GRANT: "jwt",
    "authorization_code": "authorization_code",
    "refresh_token": "refresh_token",
    DEVICE_GRANT: "device_code",
}


class _OAuthFailure(Exception):
    """Raised inside a handler; becomes an OAuth error body (never an envelope)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


@dataclass(slots=True)
class _IssuedToken:
    client_id: str
    user_id: str
    expires_at: int


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str | None
    method: str
    user_id: str
    expires_at: float


@dataclass(slots=True)
class _Device:
    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    user_id: str
    status: str = "pending"  # pending | approved | denied
    script: collections.deque[str] = field(default_factory=collections.deque)
    polls: int = 0


class OAuthServer:
    """The emulator's OAuth state and routes; reach it as ``emu.oauth``.

    Register apps with :meth:`add_jwt_app` (service apps) and :meth:`add_web_app` (a client
    secret); approve flows with :meth:`issue_code`, :meth:`approve_device`,
    :meth:`deny_device`; shorten lifetimes with :attr:`token_ttl`; count with
    :attr:`exchanges`.
    """

    def __init__(self, emu: Host) -> None:
        self.emu = emu
        #: Wall clock in Unix seconds: token expiry, JWT ``iat``/``exp``, device expiry.
        self.clock: Callable[[], float] = time.time
        #: Cap on every issued access token's lifetime in seconds (None: what the client
        #: asked for, or Coze's defaults). Lifetimes are whole seconds, as on the wire.
        self.token_ttl: int | None = None
        #: The ``aud`` a JWT must carry. None: the address the request was sent to, as a
        #: client derives it from its base URL, with or without the port (``127.0.0.1`` and
        #: ``127.0.0.1:8080`` both: cozepy puts the URL's netloc, ``host:port``, in ``aud``;
        #: the docs and this SDK the bare host; coze-js takes ``aud`` from its caller). Set
        #: e.g. ``"api.coze.cn"`` to act as that host (``api.coze.cn:443`` is accepted too).
        self.audience: str | None = None
        #: ``interval`` (seconds) and ``expires_in`` answered by the device-code endpoint.
        #: Coze says 5 and 300; tests set a small interval so polling is quick.
        self.device_interval: float = 5
        self.device_expires_in: int = 300
        #: Successful token grants by kind: ``jwt``, ``authorization_code``,
        #: ``refresh_token``, ``device_code``.
        self.exchanges: collections.Counter[str] = collections.Counter()
        #: Every token-endpoint request by kind, refused ones included.
        self.token_requests: collections.Counter[str] = collections.Counter()
        self._jwt_keys: dict[str, tuple[str, Any]] = {}  # kid -> (client_id, public key)
        self._secrets: dict[str, str] = {}
        self._seen_jti: dict[str, float] = {}  # jti -> its JWT's exp (pruned after it)
        self._tokens: dict[str, _IssuedToken] = {}  # "Bearer <token>" -> issued token
        self._refresh: dict[str, tuple[str, str, float]] = {}  # -> (client, user, expires_at)
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}  # device_code -> device
        self._user_codes: dict[str, str] = {}  # user_code -> device_code
        self._identities: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ registration

    def add_jwt_app(self, *, client_id: str, public_key: str | bytes, kid: str) -> None:
        """Register a service app's public key (PEM) under ``kid`` (its fingerprint at Coze).

        An app may have several keys; a ``kid`` not registered here answers HTTP 401
        ``invalid_client``, as Coze does for a key made for the other region.
        """
        try:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError(
                "JWT apps need cryptography and PyJWT: pip install 'coze-async[jwt]'"
            ) from exc
        data = public_key.encode() if isinstance(public_key, str) else public_key
        self._jwt_keys[kid] = (client_id, load_pem_public_key(data))

    def add_web_app(self, *, client_id: str, client_secret: str) -> None:
        """Require ``Authorization: Bearer <client_secret>`` on this client's code/refresh."""
        self._secrets[client_id] = client_secret

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        code_challenge: str | None = None,
        code_challenge_method: str = "plain",
    ) -> str:
        """Act as the user who consents in the browser: return an authorization code.

        The code is single-use, valid for 10 minutes and bound to ``client_id``,
        ``redirect_uri`` and the PKCE challenge (``S256`` or ``plain``, Coze's default).
        """
        if code_challenge_method not in ("S256", "plain"):
            raise ValueError("code_challenge_method must be 'S256' or 'plain'")
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(
            client_id=client_id,
            redirect_uri=redirect_uri,
            challenge=code_challenge,
            method=code_challenge_method,
            user_id=self._identity(client_id, "user"),
            expires_at=self.clock() + _CODE_TTL,
        )
        return code

    def approve_device(self, user_code: str) -> None:
        """The user enters ``user_code`` and approves: the next poll gets a token."""
        self._device(user_code).status = "approved"

    def deny_device(self, user_code: str) -> None:
        """The user declines: polls answer ``access_denied``."""
        self._device(user_code).status = "denied"

    def expire_device(self, user_code: str) -> None:
        """Expire the device code now: polls answer ``expired_token``."""
        self._device(user_code).expires_at = self.clock() - 1

    def script_device(self, user_code: str, answers: Iterable[str]) -> None:
        """The next polls answer these error codes (e.g. ``["slow_down"]``) first, in order."""
        self._device(user_code).script.extend(answers)

    def device_polls(self, user_code: str) -> int:
        """How many times the device code was polled (KeyError once it was redeemed)."""
        return self._device(user_code).polls

    def revoke(self, access_token: str) -> None:
        """Revoke an issued access token: calls with it answer 4100 from now on."""
        self._tokens.pop(f"Bearer {access_token}", None)

    def user_for(self, authorization: str) -> str | None:
        """The user an ``Authorization`` header's OAuth token acts as, or None.

        None for unknown, revoked and expired tokens (the middleware answers 4100).
        """
        issued = self._tokens.get(authorization)
        if issued is None:
            return None
        if self.clock() >= issued.expires_at:
            del self._tokens[authorization]
            return None
        return issued.user_id

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[Route]:
        """``(method, path, handler, requires_auth)``: every OAuth route is auth-exempt."""
        return [
            ("POST", TOKEN_PATH, self.token, False),
            ("POST", "/api/permission/oauth2/account/{account_id}/token", self.token, False),
            ("POST", DEVICE_CODE_PATH, self.device_code, False),
            (
                "POST",
                "/api/permission/oauth2/workspace_id/{workspace_id}/device/code",
                self.device_code,
                False,
            ),
            ("GET", AUTHORIZE_PATH, self.authorize, False),
            (
                "GET",
                "/api/permission/oauth2/workspace_id/{workspace_id}/authorize",
                self.authorize,
                False,
            ),
            ("GET", "/_emulator/oauth/device", self.device_page, False),
        ]

    async def token(self, request: web.Request) -> web.Response:
        """``POST /api/permission/oauth2/token``: every grant type."""
        body = self.emu.context(request).recorded.json
        grant = body.get("grant_type") if isinstance(body, dict) else None
        self.token_requests[_GRANT_NAMES.get(str(grant), "other")] += 1
        try:
            if not isinstance(body, dict):
                raise _OAuthFailure(400, "invalid_request", "invalid request: body")
            if grant == JWT_GRANT:
                answer = self._jwt_grant(request, body)
            elif grant == "authorization_code":
                answer = self._code_grant(request, body)
            elif grant == "refresh_token":
                answer = self._refresh_grant(request, body)
            elif grant == DEVICE_GRANT:
                answer = self._device_grant(body)
            elif not grant:
                raise _OAuthFailure(400, "invalid_request", "invalid request: grant_type")
            else:
                raise _OAuthFailure(
                    400, "unsupported_grant_type", f"unsupported grant_type: {grant}"
                )
        except _OAuthFailure as exc:
            return self._error(request, exc)
        self.exchanges[_GRANT_NAMES[str(grant)]] += 1
        return self._json(request, answer)

    async def device_code(self, request: web.Request) -> web.Response:
        """``POST /api/permission/oauth2/device/code``: start a device flow."""
        body = self.emu.context(request).recorded.json
        client_id = body.get("client_id") if isinstance(body, dict) else None
        if not isinstance(client_id, str) or not client_id:
            return self._error(
                request, _OAuthFailure(400, "invalid_request", "invalid request: client_id")
            )
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(8))
        self._devices[device_code] = _Device(
            device_code=device_code,
            user_code=user_code,
            client_id=client_id,
            expires_at=self.clock() + self.device_expires_in,
            user_id=self._identity(client_id, "user"),
        )
        self._user_codes[user_code] = device_code
        origin = f"{request.scheme}://{request.host}"
        return self._json(
            request,
            {
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": f"{origin}/_emulator/oauth/device",
                "expires_in": self.device_expires_in,
                "interval": self.device_interval,
            },
        )

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        """``GET .../authorize``: the emulated user consents at once; 302 back with a code."""
        q = request.query
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        method = q.get("code_challenge_method") or "plain"
        if q.get("response_type") != "code" or not client_id or not redirect_uri:
            return web.Response(
                status=400, text="response_type=code, client_id and redirect_uri are required\n"
            )
        if method not in ("S256", "plain"):
            return web.Response(status=400, text="code_challenge_method must be S256 or plain\n")
        code = self.issue_code(
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=q.get("code_challenge") or None,
            code_challenge_method=method,
        )
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        parts = urlsplit(redirect_uri)
        query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
        raise web.HTTPFound(urlunsplit(parts._replace(query=query)))

    async def device_page(self, request: web.Request) -> web.Response:
        """``GET /_emulator/oauth/device?user_code=…&decision=approve|deny``: a human's page."""
        user_code = request.query.get("user_code", "")
        decision = request.query.get("decision")
        if user_code not in self._user_codes:
            return web.Response(status=404, text="unknown user_code\n")
        if decision in ("approve", "deny"):
            (self.approve_device if decision == "approve" else self.deny_device)(user_code)
            return web.Response(text=f"{decision}d\n")
        safe = html.escape(user_code)
        return web.Response(
            content_type="text/html",
            text=(
                f"<html><body><p>Device code {safe}</p>"
                f'<a href="?user_code={safe}&decision=approve">approve</a> '
                f'<a href="?user_code={safe}&decision=deny">deny</a></body></html>'
            ),
        )

    # ------------------------------------------------------------------ grants

    def _jwt_grant(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: missing")
        claims, client_id = self._verify_jwt(request, auth[7:].strip())
        duration = body.get("duration_seconds", _DEFAULT_DURATION)
        if duration is None:
            duration = _DEFAULT_DURATION
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int)
            or not 0 < duration <= _MAX_DURATION
        ):
            raise _OAuthFailure(400, "invalid_request", "invalid request: duration_seconds")
        session = claims.get("session_name")
        user_id = self._identity(client_id, f"session:{session if session else ''}")
        token, expires_at = self._issue("czs_", client_id, user_id, duration)
        return {"access_token": token, "expires_in": expires_at}

    def _verify_jwt(self, request: web.Request, assertion: str) -> tuple[dict[str, Any], str]:
        try:
            import jwt
        except ImportError:
            raise _OAuthFailure(
                500,
                "internal_error",
                "the emulator verifies JWTs with PyJWT: pip install 'coze-async[jwt]'",
            ) from None
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: malformed") from None
        if header.get("alg") != "RS256":
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: alg must be RS256")
        app = self._jwt_keys.get(str(header.get("kid")))
        if app is None:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: kid not been registred")
        client_id, key = app
        try:
            # Time and audience are checked below, against this server's own clock.
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key=key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: signature invalid") from None
        except jwt.PyJWTError:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: malformed") from None
        if claims.get("iss") != client_id:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: iss does not match kid")
        if claims.get("aud") not in self._audiences(request):
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: aud not match")
        now = self.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp <= iat:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: iat and exp required")
        if exp <= now:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: expired")
        if iat > now + _IAT_LEEWAY:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: iat in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: jti required")
        self._seen_jti = {k: v for k, v in self._seen_jti.items() if v > now}
        if jti in self._seen_jti:
            raise _OAuthFailure(401, "invalid_client", "invalid jwt: jti has been used")
        self._seen_jti[jti] = exp
        return claims, client_id

    def _code_grant(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        client_id = _required(body, "client_id")
        self._check_secret(request, client_id)
        code = self._codes.pop(_required(body, "code"), None)  # single-use, even on failure
        if code is None or code.expires_at <= self.clock() or code.client_id != client_id:
            raise _OAuthFailure(400, "invalid_grant", "invalid grant: code")
        if body.get("redirect_uri") != code.redirect_uri:
            raise _OAuthFailure(400, "invalid_grant", "invalid grant: redirect_uri")
        if code.challenge is not None:
            verifier = body.get("code_verifier")
            if not isinstance(verifier, str) or _challenge(verifier, code.method) != (
                code.challenge
            ):
                raise _OAuthFailure(400, "invalid_grant", "invalid grant: code_verifier")
        return self._user_tokens(client_id, code.user_id)

    def _refresh_grant(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        client_id = _required(body, "client_id")
        self._check_secret(request, client_id)
        # Rotation: the presented refresh token is spent whatever happens next.
        found = self._refresh.pop(_required(body, "refresh_token"), None)
        if found is None or found[0] != client_id or found[2] <= self.clock():
            raise _OAuthFailure(400, "invalid_grant", "invalid grant: refresh_token")
        return self._user_tokens(client_id, found[1])

    def _device_grant(self, body: dict[str, Any]) -> dict[str, Any]:
        client_id = _required(body, "client_id")
        device = self._devices.get(_required(body, "device_code"))
        if device is None or device.client_id != client_id:
            raise _OAuthFailure(400, "invalid_grant", "invalid grant: device_code")
        device.polls += 1
        if device.script:
            state = device.script.popleft()
            raise _OAuthFailure(400, state, _DEVICE_MESSAGES.get(state, state))
        if self.clock() >= device.expires_at:
            state = "expired_token"
        elif device.status == "denied":
            state = "access_denied"
        elif device.status == "pending":
            state = "authorization_pending"
        else:
            del self._devices[device.device_code]
            self._user_codes.pop(device.user_code, None)
            return self._user_tokens(client_id, device.user_id)
        raise _OAuthFailure(400, state, _DEVICE_MESSAGES[state])

    # ------------------------------------------------------------------ helpers

    def _audiences(self, request: web.Request) -> set[str]:
        """Every ``aud`` accepted on ``request``: the host alone, and ``host:port``."""
        if self.audience is not None:
            return {self.audience, f"{self.audience}:443"}
        host = request.url.host or ""
        literal = f"[{host}]" if ":" in host else host  # an IPv6 address as a URL writes it
        port = request.url.port
        found = {host, literal, request.host}
        if port is not None:
            found.add(f"{literal}:{port}")
        return found

    def _check_secret(self, request: web.Request, client_id: str) -> None:
        secret = self._secrets.get(client_id)
        if secret is None:
            return
        given = request.headers.get("Authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {secret}".encode()):
            raise _OAuthFailure(400, "invalid_request", "invalid request: client_secret")

    def _identity(self, client_id: str, who: str) -> str:
        # One stable user per (app, session): conversations survive a token refresh.
        return self._identities.setdefault((client_id, who), new_id())

    def _issue(self, prefix: str, client_id: str, user_id: str, ttl: int) -> tuple[str, int]:
        if self.token_ttl is not None:
            ttl = min(ttl, self.token_ttl)
        token = f"{prefix}{secrets.token_hex(24)}"
        # Whole seconds on the wire; rounded up so a token never lives less than asked.
        expires_at = math.ceil(self.clock() + ttl)
        self._tokens[f"Bearer {token}"] = _IssuedToken(client_id, user_id, expires_at)
        return token, expires_at

    def _user_tokens(self, client_id: str, user_id: str) -> dict[str, Any]:
        token, expires_at = self._issue("czu_", client_id, user_id, _USER_TOKEN_TTL)
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = (client_id, user_id, self.clock() + _REFRESH_TTL)
        return {
            "access_token": token,
            "expires_in": expires_at,
            "refresh_token": refresh,
            "token_type": "Bearer",
        }

    def _device(self, user_code: str) -> _Device:
        return self._devices[self._user_codes[user_code]]

    def _json(self, request: web.Request, obj: Any) -> web.Response:
        resp = web.Response(body=dumps(obj), content_type="application/json")
        resp.headers[LOGID_HEADER] = self.emu.context(request).logid
        return resp

    def _error(self, request: web.Request, exc: _OAuthFailure) -> web.Response:
        body = {
            "error_code": exc.error_code,
            "error_message": exc.message,
            "error": exc.error_code,
            "error_description": exc.message,
        }
        resp = web.Response(status=exc.status, body=dumps(body), content_type="application/json")
        resp.headers[LOGID_HEADER] = self.emu.context(request).logid
        return resp


_DEVICE_MESSAGES: Final = {
    "authorization_pending": "the user has not approved the device yet",
    "slow_down": "polling too fast: slow down",
    "access_denied": "the user denied the authorization",
    "expired_token": "the device code has expired",
}


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _OAuthFailure(400, "invalid_request", f"invalid request: {name}")
    return value


def _challenge(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
