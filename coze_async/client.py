"""``AsyncCoze``: the session object users create once and share between tasks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable, Callable

import aiohttp

from ._validate import check_int, check_number, check_token, kind
from .auth import Auth, CallableAuth, HostBoundAuth, TokenAuth, redact
from .config import COZE_CN_BASE_URL, RetryPolicy, Timeouts, check_base_url
from .errors import InvalidArgumentError
from .ratelimit import Limiter, Plan, QuotaLimiter
from .resources.chat import ChatResource
from .resources.conversations import ConversationsResource
from .resources.files import FilesResource
from .resources.workflows import WorkflowsResource
from .transport import DEFAULT_MAX_EVENT, DEFAULT_MAX_RESPONSE, Transport

__all__ = ["AsyncCoze"]


class AsyncCoze:
    """An asyncio client for the Coze OpenAPI.

    ``token`` (or ``auth``) falls back to the ``COZE_API_TOKEN`` environment variable.
    ``auth`` takes a token string, any :class:`~coze_async.auth.Auth` (``TokenAuth``,
    :class:`~coze_async.oauth.JWTAuth` for service apps: it gets this client's ``base_url``
    unless it has its own) or an ``async () -> str`` callable (your own token cache);
    ``base_url`` to ``COZE_API_BASE`` and then :data:`COZE_CN_BASE_URL`. Pass ``session`` to
    use your own ``aiohttp.ClientSession`` (it is never closed by this client; its own
    default timeout is overridden per request, so a stream never gets a total timeout).

    ``plan`` (e.g. ``Plan.PERSONAL_FREE``) turns on client-side quota limiting: every call
    waits, before it is sent, until the plan's QPS and model-RPM windows have room, so a busy
    service stays inside its quota instead of collecting rejections. ``limiter`` shares the
    limits wider (e.g. a Redis limiter for a fleet); ``acquire_timeout`` bounds the wait
    (then :class:`~coze_async.errors.LocalRateLimitError`). Without either, nothing is limited.

    ``max_event_bytes`` (16 MiB) caps one stream event and ``max_response_bytes`` (64 MiB) one
    unary response body: past them a stream raises
    :class:`~coze_async.errors.EventTooLargeError` and a call
    :class:`~coze_async.errors.ResponseTooLargeError`, before buffering more.

    Use it as ``async with AsyncCoze(...) as coze:`` or call :meth:`aclose` when done; a
    client that created its own session and is never closed emits a ``ResourceWarning``.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        auth: Auth | str | Callable[[], Awaitable[str]] | None = None,
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        connection_limit: int = 100,
        plan: Plan | None = None,
        limiter: QuotaLimiter | None = None,
        acquire_timeout: float | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE,
    ) -> None:
        if token is not None and auth is not None:
            raise InvalidArgumentError("give token= or auth=, not both")
        if auth is None:
            token = token if token is not None else os.environ.get("COZE_API_TOKEN")
            if not token:
                raise InvalidArgumentError(
                    "no token: pass token=... or set COZE_API_TOKEN "
                    "(or start coze_async.emulator.Emulator for a local server)"
                )
            auth = TokenAuth(check_token("token", token))
        elif isinstance(auth, str):
            auth = TokenAuth(check_token("auth", auth))
        elif not isinstance(auth, Auth):
            if not callable(auth):
                raise InvalidArgumentError(
                    "auth must be a token string, an object with an async token() method, "
                    "or an async () -> str callable"
                )
            auth = CallableAuth(auth)
        # Every argument is checked before anything (the auth's binding included) changes.
        check_int("connection_limit", connection_limit, 1)
        check_int("max_event_bytes", max_event_bytes, 1)
        check_int("max_response_bytes", max_response_bytes, 1)
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            raise InvalidArgumentError(
                f"timeouts must be a Timeouts(...) value, got {kind(timeouts)}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidArgumentError(f"retry must be a RetryPolicy(...) value, got {kind(retry)}")
        if acquire_timeout is not None:
            check_number("acquire_timeout", acquire_timeout, positive=True)
        if plan is not None and not isinstance(plan, Plan):
            raise InvalidArgumentError(
                f"plan must be a Plan (e.g. Plan.PERSONAL_FREE), got {kind(plan)}"
            )
        if limiter is not None and not isinstance(limiter, QuotaLimiter):
            raise InvalidArgumentError(f"limiter must be a QuotaLimiter, got {kind(limiter)}")
        url = check_base_url(base_url or os.environ.get("COZE_API_BASE") or COZE_CN_BASE_URL)
        if isinstance(auth, HostBoundAuth):
            auth.bind_base_url(url)  # e.g. JWTAuth: the JWT's aud is this host
        if limiter is not None:
            if plan is not None:
                limiter.bind(plan)
            elif limiter.plan is None:
                raise InvalidArgumentError("limiter= needs plan= (or a limiter bound to a plan)")
        elif plan is not None:
            limiter = Limiter(plan)
        self.limiter = limiter
        """The quota limiter in use (``None`` when ``plan`` and ``limiter`` were not given)."""
        self._auth = auth
        self._transport = Transport(
            limiter=limiter,
            acquire_timeout=acquire_timeout,
            base_url=url,
            auth=auth,
            timeouts=timeouts or Timeouts(),
            retry=retry or RetryPolicy(),
            session=session,
            connection_limit=connection_limit,
            max_event_bytes=max_event_bytes,
            max_response_bytes=max_response_bytes,
        )
        self.chat = ChatResource(self._transport)
        """The chat API (:class:`~coze_async.resources.chat.ChatResource`)."""
        self.conversations = ConversationsResource(self._transport)
        """Conversations (:class:`~coze_async.resources.conversations.ConversationsResource`);
        their messages under ``conversations.messages``."""
        self.files = FilesResource(self._transport)
        """File uploads (:class:`~coze_async.resources.files.FilesResource`)."""
        self.workflows = WorkflowsResource(self._transport)
        """Workflows and chatflows (:class:`~coze_async.resources.workflows.WorkflowsResource`);
        run histories under ``workflows.runs``."""

    @property
    def base_url(self) -> str:
        """The API host this client talks to."""
        return self._transport.base_url

    async def __aenter__(self) -> AsyncCoze:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client created it, and the limiter. Idempotent."""
        await self._transport.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()

    def __repr__(self) -> str:
        token = getattr(self._auth, "_token", None)
        shown = redact(token) if isinstance(token, str) else type(self._auth).__name__
        return f"AsyncCoze(base_url={self.base_url!r}, auth={shown})"

    def __del__(self) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.owns_session and transport.session_open:
            warnings.warn(
                f"{self!r} was never closed: use 'async with AsyncCoze(...)' or 'await "
                "coze.aclose()'",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
