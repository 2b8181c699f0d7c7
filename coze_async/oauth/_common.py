"""What the OAuth flows share: the token and request types, the token-endpoint paths, the
answer parsing and argument checks. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import attrs

from ..auth import redact
from ..errors import InvalidArgumentError, ResponseValidationError

__all__ = [
    "AUTHORIZE_PATH",
    "DEVICE_CODE_PATH",
    "DEVICE_GRANT_TYPE",
    "JWT_GRANT_TYPE",
    "TOKEN_PATH",
    "AuthorizeRequest",
    "DeviceCode",
    "OAuthToken",
    "check_client_id",
    "check_timeout",
    "parse_token",
]

JWT_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
"""``grant_type`` of the JWT (service app) exchange."""
DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
"""``grant_type`` of device-code polling."""

TOKEN_PATH = "/api/permission/oauth2/token"
DEVICE_CODE_PATH = "/api/permission/oauth2/device/code"
AUTHORIZE_PATH = "/api/permission/oauth2/authorize"


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


def check_client_id(client_id: str) -> str:
    """``client_id`` if it is a non-empty string."""
    if not isinstance(client_id, str) or not client_id.strip():
        raise InvalidArgumentError("client_id must be a non-empty string")
    return client_id


def check_timeout(timeout: float) -> float:
    """``timeout`` as a float if it is a positive number."""
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidArgumentError(f"timeout must be a positive number, got {timeout!r}")
    return float(timeout)


def parse_token(data: Mapping[str, Any], logid: str | None) -> OAuthToken:
    """The :class:`OAuthToken` in a token endpoint's answer."""
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
