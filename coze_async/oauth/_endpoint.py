"""Small JSON POSTs to one host's OAuth endpoints, on :mod:`coze_async._http`.

The token endpoints are not Coze API calls, so they do not go through the transport: their
success body is ``{access_token, expires_in, ...}`` with no ``code/msg/data`` envelope, their
errors are ``{error_code, error_message}`` (or ``error`` / ``error_description``: both are
read), their bearer is a JWT or a client secret rather than the auth's token (the transport
would ask the very auth being refreshed for a token), and the quota limiter and retry policy
for API calls do not apply. A failure below HTTP is mapped by :func:`coze_async._http.send`
(the SDK's one aiohttp -> SDK mapping); this module maps the endpoints' own error bodies.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from .._http import USER_AGENT, Session, close_session, new_session, send
from .._json import dumps, loads
from ..config import Timeouts
from ..errors import InvalidClientError, OAuthError, ResponseValidationError, oauth_error_class_for
from ._common import TOKEN_PATH, OAuthToken, parse_token

__all__ = ["TokenEndpoint", "refresh_user_token"]

# A token endpoint answers a few hundred bytes; anything near this is not a token answer.
_MAX_TOKEN_RESPONSE = 1024 * 1024


class TokenEndpoint:
    """One host's OAuth endpoints: JSON POSTs whose error bodies become :class:`OAuthError`.

    Each exchange uses the ``session`` given, or a short-lived session of its own
    (exchanges are rare: one per token lifetime); ``timeout`` bounds one exchange.
    """

    def __init__(self, *, base_url: str, session: Session | None, timeout: float) -> None:
        self.base_url = base_url
        self.host = urlsplit(base_url).hostname or ""
        self.session = session
        self.timeout = timeout

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Session]:
        """The caller's session, or a fresh one closed on exit (a few requests at most)."""
        if self.session is not None:
            yield self.session
            return
        session = new_session()
        try:
            yield session
        finally:
            await close_session(session)

    async def post(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        bearer: str | None = None,
        session: Session | None = None,
    ) -> tuple[dict[str, Any], str | None]:
        """POST ``body``; return the decoded object and logid, or raise the mapped error."""
        if session is None:
            async with self.opened() as own:
                return await self.post(path, body, bearer=bearer, session=own)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        what = f"POST {path}"
        resp = await send(
            session,
            "POST",
            self.base_url + path,
            headers=headers,
            timeouts=Timeouts(connect=None, read=None, total=self.timeout, pool=None),
            data=dumps(dict(body)),
            host=self.host,
            what=what,
            secrets=(bearer, *(v for v in body.values() if isinstance(v, str))),
        )
        try:
            raw = await resp.body.read(_MAX_TOKEN_RESPONSE)
        except BaseException:
            resp.body.close()
            raise
        resp.body.release()
        status, logid = resp.status, resp.logid
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


async def refresh_user_token(
    endpoint: TokenEndpoint, *, client_id: str, refresh_token: str, secret: str | None
) -> OAuthToken:
    """New user tokens for ``refresh_token`` (PKCE and device flows)."""
    body = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    data, logid = await endpoint.post(TOKEN_PATH, body, bearer=secret)
    return parse_token(data, logid)
