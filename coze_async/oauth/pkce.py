"""The authorization-code flow with PKCE (web apps acting for a signed-in Coze user):
:class:`PKCEOAuth` and :func:`code_challenge`."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from .._http import Session
from ..config import COZE_CN_BASE_URL, check_base_url
from ..errors import InvalidArgumentError
from ._common import (
    AUTHORIZE_PATH,
    TOKEN_PATH,
    AuthorizeRequest,
    OAuthToken,
    check_client_id,
    check_timeout,
    parse_token,
)
from ._endpoint import TokenEndpoint, refresh_user_token

__all__ = ["PKCEOAuth", "code_challenge"]


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
        session: Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client_id = check_client_id(client_id)
        base = check_base_url(base_url)
        self.www_base_url = check_base_url(www_base_url or _www_base_url(base))
        self._secret = client_secret
        self._endpoint = TokenEndpoint(
            base_url=base, session=session, timeout=check_timeout(timeout)
        )

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
            else AUTHORIZE_PATH
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
        data, logid = await self._endpoint.post(TOKEN_PATH, body, bearer=self._secret)
        return parse_token(data, logid)

    async def refresh(self, *, refresh_token: str) -> OAuthToken:
        """New tokens for a refresh token; the old refresh token stops working."""
        return await refresh_user_token(
            self._endpoint,
            client_id=self.client_id,
            refresh_token=refresh_token,
            secret=self._secret,
        )

    def __repr__(self) -> str:
        return f"PKCEOAuth(client_id={self.client_id!r}, base_url={self.base_url!r})"
