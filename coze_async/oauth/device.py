"""The device-code flow, for a CLI or a device without a browser: :class:`DeviceOAuth`."""

from __future__ import annotations

import time
from typing import Any

import anyio

from .._http import Session
from ..config import COZE_CN_BASE_URL, check_base_url
from ..errors import (
    AuthorizationPendingError,
    ExpiredTokenError,
    InvalidArgumentError,
    OAuthError,
    ResponseValidationError,
)
from ._common import (
    DEVICE_CODE_PATH,
    DEVICE_GRANT_TYPE,
    TOKEN_PATH,
    DeviceCode,
    OAuthToken,
    check_client_id,
    check_timeout,
    parse_token,
)
from ._endpoint import TokenEndpoint, refresh_user_token

__all__ = ["DeviceOAuth"]


def _default(value: Any, default: float) -> Any:
    return default if value is None else value


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
        session: Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client_id = check_client_id(client_id)
        self._endpoint = TokenEndpoint(
            base_url=check_base_url(base_url), session=session, timeout=check_timeout(timeout)
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
            else DEVICE_CODE_PATH
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
            check_timeout(timeout)
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
                    data, logid = await self._endpoint.post(TOKEN_PATH, body, session=session)
                except OAuthError as exc:
                    logid = exc.logid
                    if exc.error_code == "authorization_pending":
                        continue
                    if exc.error_code == "slow_down":
                        interval = min(max_interval, interval + slow_down_step)
                        continue
                    raise
                return parse_token(data, logid)

    async def refresh(self, *, refresh_token: str) -> OAuthToken:
        """New tokens for a refresh token; the old refresh token stops working."""
        return await refresh_user_token(
            self._endpoint, client_id=self.client_id, refresh_token=refresh_token, secret=None
        )

    def __repr__(self) -> str:
        return f"DeviceOAuth(client_id={self.client_id!r}, base_url={self.base_url!r})"
