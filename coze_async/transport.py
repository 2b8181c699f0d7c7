"""The only module that talks to aiohttp: sending, the retry loop, envelopes, error mapping.

A resource describes a call as a :class:`Call` and hands it to :class:`Transport`:

* :meth:`Transport.request` sends a unary call and returns the decoded :class:`Envelope`;
* :meth:`Transport.open_stream` sends a streaming call and returns the response once its
  headers say ``text/event-stream``; the stream object reads the body.

Both run the same retry loop, which never goes past the response headers (design.md §5):
nothing is retried once a byte of a stream body may have been handed to the caller. Between
"response received" and "returned", every exit path (including cancellation) closes the
response, so a connection is never leaked.
"""

from __future__ import annotations

import io
import logging
import platform
import random
import re
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import anyio
import attrs

from . import __about__
from ._http import FreshConnector, map_client_error, read_capped
from ._json import dumps, loads
from ._validate import check_token
from .auth import Auth
from .config import RetryPolicy, Timeouts
from .errors import (
    APIError,
    AuthenticationError,
    CozeError,
    RateLimitError,
    RequestTooLargeError,
    ResponseValidationError,
    TransportError,
    error_class_for,
    parse_code,
)
from .ratelimit.base import QuotaLimiter
from .ratelimit.plans import buckets_for
from .uploads import MultipartBody, UploadFile

__all__ = ["Call", "Envelope", "Transport", "backoff_enabled", "set_backoff_enabled"]

logger = logging.getLogger("coze_async")

#: Coze's request-body limits (coze-api.md §4): 20 MB for workflow APIs, 15 MB for the rest.
DEFAULT_MAX_BODY = 15 * 1024 * 1024
WORKFLOW_MAX_BODY = 20 * 1024 * 1024

#: The SDK's caps on what it buffers from a server: one stream event, one unary body. Coze's
#: real answers are far below both; the caps stop a broken or hostile server from making the
#: client buffer without bound (``AsyncCoze(max_event_bytes=..., max_response_bytes=...)``).
DEFAULT_MAX_EVENT = 16 * 1024 * 1024
DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024

_BACKOFF = True


def set_backoff_enabled(enabled: bool) -> None:
    """Switch retry backoff sleeps on or off process-wide (``coze_async.testing`` uses it)."""
    global _BACKOFF
    _BACKOFF = enabled


def backoff_enabled() -> bool:
    """Whether retry backoff sleeps are on."""
    return _BACKOFF


@attrs.frozen(kw_only=True)
class Call:
    """A declarative description of one API call, built by a resource.

    ``endpoint`` names the SDK operation (``"chat.create"``, ``"conversations.list"``...): the
    quota limiter maps it to the buckets the call draws from. ``json`` is the request body
    (already without ``None`` values); ``idempotent`` decides what may be retried.
    ``upload`` replaces the JSON body with a streamed ``multipart/form-data`` one (its size is
    checked against ``max_body``; ``extra_body`` keys become extra form fields).
    """

    method: str
    path: str
    endpoint: str = ""
    params: Mapping[str, str] | None = None
    json: Any = None
    idempotent: bool = False
    stream: bool = False
    max_body: int = DEFAULT_MAX_BODY
    extra_headers: Mapping[str, str] | None = None
    extra_query: Mapping[str, str] | None = None
    extra_body: Mapping[str, Any] | None = None
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None
    upload: UploadFile | None = None


@attrs.frozen
class Envelope:
    """A decoded successful JSON answer: the whole ``body``, ``logid``, ``http_status``, and
    ``quota_wait``, the seconds the call waited for the client-side limiter."""

    body: Any
    logid: str | None
    http_status: int
    quota_wait: float = 0.0

    def field(self, name: str = "data") -> Any:
        """The value under ``name`` (``None`` when the key is absent)."""
        return self.body.get(name) if isinstance(self.body, dict) else None


_TITLE_RE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _text_excerpt(raw: bytes, limit: int = 200) -> str:
    match = _TITLE_RE.search(raw)
    text = match.group(1) if match else raw
    out = text.decode("utf-8", "replace").strip()
    out = " ".join(out.split())
    return out[:limit] + ("..." if len(out) > limit else "")


def _logid_from(headers: Mapping[str, str], body: Any) -> str | None:
    logid = headers.get("x-tt-logid") or headers.get("X-Tt-Logid")
    if logid:
        return logid
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("logid"), str):
            return str(detail["logid"])
    return None


class _Permit(Protocol):
    waited: float

    def commit(self) -> None: ...

    def done(self, *, traced: bool = False) -> None: ...


class _Granted:
    """A permit already counted at grant time (limiters without reservations)."""

    __slots__ = ("waited",)

    def __init__(self, waited: float) -> None:
        self.waited = waited

    def commit(self) -> None:
        pass

    def done(self, *, traced: bool = False) -> None:
        pass


_NO_PERMIT = _Granted(0.0)


async def _on_headers_sent(
    session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    params: aiohttp.TraceRequestHeadersSentParams,
) -> None:
    permit = ctx.trace_request_ctx
    if permit is not None:
        permit.commit()


# Tells a call's quota reservation that its request is being written (owned sessions only:
# ``traced`` below says whether an uncommitted reservation can have been sent).
_QUOTA_TRACE = aiohttp.TraceConfig()
_QUOTA_TRACE.on_request_headers_sent.append(_on_headers_sent)
_QUOTA_TRACE.freeze()


class Transport:
    """Sends :class:`Call` objects over one aiohttp session. Owned by ``AsyncCoze``."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: Auth,
        timeouts: Timeouts,
        retry: RetryPolicy,
        session: aiohttp.ClientSession | None,
        connection_limit: int = 100,
        limiter: QuotaLimiter | None = None,
        acquire_timeout: float | None = None,
        rejection_pause: float = 1.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE,
        max_event_bytes: int = DEFAULT_MAX_EVENT,
    ) -> None:
        #: The largest unary response body read (ResponseTooLargeError past it).
        self.max_response_bytes = max_response_bytes
        #: The largest single stream event buffered (EventTooLargeError past it).
        self.max_event_bytes = max_event_bytes
        self.limiter = limiter
        self.acquire_timeout = acquire_timeout
        self.rejection_pause = rejection_pause
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeouts = timeouts
        self.retry = retry
        self._session = session
        self._owns_session = session is None
        self._connection_limit = connection_limit
        self._closed = False
        self._checked_token: str | None = None
        self._user_agent = (
            f"coze-async/{__about__.__version__} python/{platform.python_version()} "
            f"aiohttp/{aiohttp.__version__}"
        )
        self._host = urlsplit(self.base_url).hostname or ""

    # -- session ---------------------------------------------------------------------------

    @property
    def owns_session(self) -> bool:
        """True when this transport created (and will close) the aiohttp session."""
        return self._owns_session

    @property
    def session_open(self) -> bool:
        """True when an owned session exists and is not closed yet."""
        return self._session is not None and not self._session.closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise CozeError("this AsyncCoze has been closed")
        if self._session is None:
            # Created lazily, inside the running loop; no session-wide timeout: every request
            # passes its own, so that a stream never inherits a total timeout.
            self._session = aiohttp.ClientSession(
                connector=FreshConnector(limit=self._connection_limit),
                timeout=aiohttp.ClientTimeout(total=None),
                trace_configs=[_QUOTA_TRACE],
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport owns it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            with anyio.CancelScope(shield=True):
                await session.close()

    # -- building --------------------------------------------------------------------------

    def _encode(self, call: Call) -> bytes | None:
        if call.upload is not None:
            size = call.upload.size
            if size is not None and size > call.max_body:
                raise RequestTooLargeError(
                    f"{call.method} {call.path}: {call.upload.filename!r} is {size} bytes, over "
                    f"Coze's limit of {call.max_body} bytes per file; nothing was sent",
                    size=size,
                    limit=call.max_body,
                )
            return None  # the multipart body is produced per attempt, in _send_once
        body = call.json
        if call.extra_body:
            body = {**(body or {}), **call.extra_body}
        if body is None:
            return None
        raw = dumps(body)
        if len(raw) > call.max_body:
            raise RequestTooLargeError(
                f"{call.method} {call.path}: request body is {len(raw)} bytes, over Coze's "
                f"limit of {call.max_body} bytes for this API; nothing was sent",
                size=len(raw),
                limit=call.max_body,
            )
        return raw

    def _client_timeout(self, call: Call) -> aiohttp.ClientTimeout:
        t = call.timeouts or self.timeouts
        return aiohttp.ClientTimeout(
            total=None if call.stream else t.total,
            connect=t.pool,
            sock_connect=t.connect,
            sock_read=t.read,
        )

    def _params(self, call: Call) -> dict[str, str] | None:
        if not call.params and not call.extra_query:
            return None
        return {**(call.params or {}), **(call.extra_query or {})}

    # -- error mapping ---------------------------------------------------------------------

    def _auth_hint(self) -> str:
        if self._host.endswith("coze.cn"):
            return (
                "api.coze.cn rejected the token: a token issued on coze.com only works on "
                "api.coze.com (base_url=COZE_COM_BASE_URL); otherwise it is expired or revoked"
            )
        if self._host.endswith("coze.com"):
            return (
                "api.coze.com rejected the token: a token issued on coze.cn only works on "
                "api.coze.cn (base_url=COZE_CN_BASE_URL); otherwise it is expired or revoked"
            )
        return "check that the token is valid, not expired, and issued for this host's region"

    def make_api_error(
        self, *, code: int | None, msg: str, http_status: int, logid: str | None, body: Any
    ) -> APIError:
        """Build the :class:`APIError` subclass chosen from ``code`` and ``http_status``."""
        cls = error_class_for(code, http_status)
        hint = self._auth_hint() if cls is AuthenticationError else None
        debug_url = body.get("debug_url") if isinstance(body, dict) else None
        return cls(
            msg,
            code=code,
            logid=logid,
            http_status=http_status,
            debug_url=debug_url if isinstance(debug_url, str) else None,
            body=body,
            hint=hint,
        )

    def decode(self, status: int, headers: Mapping[str, str], raw: bytes) -> Envelope:
        """Decode a JSON answer; raise the mapped :class:`APIError` for an error envelope."""
        try:
            body = loads(raw) if raw else None
        except ValueError:
            body = None
            logid = _logid_from(headers, None)
            if status >= 400:
                excerpt = _text_excerpt(raw)
                raise self.make_api_error(
                    code=None,
                    msg=f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}",
                    http_status=status,
                    logid=logid,
                    body=raw.decode("utf-8", "replace"),
                ) from None
            raise ResponseValidationError(
                f"expected a JSON body, got: {_text_excerpt(raw)!r}",
                logid=logid,
                body=raw.decode("utf-8", "replace"),
            ) from None
        logid = _logid_from(headers, body)
        if isinstance(body, dict):
            code = parse_code(body.get("code"))
            if code:
                raise self.make_api_error(
                    code=code,
                    msg=str(body.get("msg") or ""),
                    http_status=status,
                    logid=logid,
                    body=body,
                )
            if status >= 400:
                # OAuth-style error bodies, or a gateway error with a JSON body and no code.
                msg = str(
                    body.get("error_message")
                    or body.get("msg")
                    or body.get("error_code")
                    or f"HTTP {status}"
                )
                raise self.make_api_error(
                    code=code, msg=msg, http_status=status, logid=logid, body=body
                )
        elif status >= 400:
            raise self.make_api_error(
                code=None, msg=f"HTTP {status}", http_status=status, logid=logid, body=body
            )
        return Envelope(body, logid, status)

    # -- the retry loop --------------------------------------------------------------------

    def _retryable(self, exc: Exception, call: Call, policy: RetryPolicy) -> bool:
        if call.upload is not None and not call.upload.replayable:
            return False  # a non-seekable stream cannot be sent twice
        safe = call.idempotent or policy.retry_unsafe
        if isinstance(exc, RateLimitError):
            return True
        if isinstance(exc, APIError):
            if exc.code is not None and exc.code in policy.rate_limit_codes:
                return True
            return safe and exc.http_status in policy.retry_statuses
        if isinstance(exc, TransportError):
            return exc.phase == "connect" or safe
        return False

    async def _send_once(
        self, call: Call, body: bytes | None, permit: _Permit, token: str
    ) -> aiohttp.ClientResponse:
        session = self._get_session()
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": self._user_agent,
            "Accept": "text/event-stream" if call.stream else "application/json",
        }
        data: bytes | io.BytesIO | MultipartBody | None = body
        if call.upload is not None:
            # A fresh body per attempt: a retry re-reads the file from its start.
            data = await call.upload.open(call.extra_body)
            headers["Content-Type"] = data.content_type
            if data.length is not None:
                headers["Content-Length"] = str(data.length)
        elif body is not None:
            headers["Content-Type"] = "application/json"
            if len(body) > 1024 * 1024:
                # aiohttp warns (ResourceWarning) about raw bytes bodies over 1 MiB, as big
                # workflow inputs are; a fresh stream per attempt keeps retries whole.
                data = io.BytesIO(body)
        if call.extra_headers:
            headers.update(call.extra_headers)
        error: TransportError
        try:
            return await session.request(
                call.method,
                self.base_url + call.path,
                params=self._params(call),
                data=data,
                headers=headers,
                timeout=self._client_timeout(call),
                allow_redirects=False,
                trace_request_ctx=permit,  # committed when the headers are written
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Mapped here, raised below: outside this block, so that aiohttp's exception
            # (which holds the request headers, the token among them) is not the context.
            error = map_client_error(
                exc,
                what=f"{call.method} {call.path}",
                host=self._host,
                phase="headers",
                secrets=(token,),
            )
        finally:
            # The answer's headers are here (or the attempt failed): the server has counted
            # the call by now, so the limiter counts it from now. Never written (no hook call
            # on our own session): the quota and any budget charge go back.
            permit.done(traced=self._owns_session)
            if isinstance(data, MultipartBody):
                data.close()  # the server has answered: the body is no longer needed
        raise error  # outside the except block: no aiohttp exception in the chain

    async def _read_body(self, call: Call, resp: aiohttp.ClientResponse) -> bytes:
        what = f"{call.method} {call.path}"
        error: TransportError
        try:
            return await read_capped(resp, self.max_response_bytes, what)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = map_client_error(
                exc,
                what=what,
                host=self._host,
                phase="read",
                logid=resp.headers.get("x-tt-logid"),
            )
        raise error  # outside the except block: no aiohttp exception in the chain

    async def _attempt(
        self, call: Call, body: bytes | None, permit: _Permit, token: str
    ) -> Envelope | aiohttp.ClientResponse:
        resp = await self._send_once(call, body, permit, token)
        try:
            ctype = resp.headers.get("Content-Type", "")
            if call.stream and resp.status == 200 and "event-stream" in ctype:
                logger.debug(
                    "%s %s -> %s stream logid=%s",
                    call.method,
                    call.path,
                    resp.status,
                    resp.headers.get("x-tt-logid"),
                )
                return resp
            raw = await self._read_body(call, resp)
            try:
                envelope = self.decode(resp.status, resp.headers, raw)
            except APIError as exc:
                logger.debug(
                    "%s %s -> %s code=%s logid=%s",
                    call.method,
                    call.path,
                    resp.status,
                    exc.code,
                    exc.logid,
                )
                raise
            if call.stream:
                raise ResponseValidationError(
                    f"{call.method} {call.path}: expected an event stream, got "
                    f"{ctype or 'no content type'} with a success envelope",
                    logid=envelope.logid,
                    body=envelope.body,
                )
            logger.debug(
                "%s %s -> %s logid=%s", call.method, call.path, resp.status, envelope.logid
            )
            resp.release()
            return envelope
        except BaseException:
            resp.close()
            raise

    async def _reserve(self, names: tuple[str, ...]) -> _Permit:
        limiter = self.limiter
        if limiter is None:
            return _NO_PERMIT
        # Called even with no bucket: a lifetime call budget counts every call.
        reserve = getattr(limiter, "reserve", None)
        if reserve is not None:
            # Counted from the moment the request is written, not from the grant: a call that
            # then waits for a pooled connection or a busy loop is still counted where the
            # server will see it.
            permit: _Permit = await reserve(names, timeout=self.acquire_timeout)
            return permit
        return _Granted(await limiter.acquire(names, timeout=self.acquire_timeout))

    async def _run(self, call: Call) -> tuple[Envelope | aiohttp.ClientResponse, float]:
        body = self._encode(call)
        policy = call.retry or self.retry
        names = buckets_for(call.endpoint) if self.limiter is not None and call.endpoint else ()
        started = time.monotonic()
        attempt = 0
        waited = 0.0
        reauthed = False
        while True:
            # Every attempt reaches the server and counts against its window: acquire each time.
            permit = await self._reserve(names)
            waited += permit.waited
            token: str | None = None
            try:
                try:
                    token = await self.auth.token()
                    if token is not self._checked_token:
                        # An auth callable's (or an OAuth exchange's) token goes into a
                        # header: CR/LF there would break the request. Checked once per value.
                        check_token("the token returned by auth", token)
                        self._checked_token = token
                    result = await self._attempt(call, body, permit, token)
                finally:
                    # Normally settled when the answer arrived; this also covers an attempt
                    # that failed before sending (e.g. the auth callable raised: nothing was
                    # written), so a reservation can never stay pending and eat the bucket.
                    permit.done(traced=True)
                return result, waited
            except (APIError, TransportError) as exc:
                if not reauthed and token is not None and await self._reauth(exc, call, token):
                    reauthed = True  # once per call: a second rejection is final
                    continue
                if names and self._server_rate_limited(exc, policy):
                    assert self.limiter is not None
                    # The account is over a limit right now: hold back every task, not just
                    # this one, for a window's length.
                    self.limiter.pause(names, self.rejection_pause)
                if attempt >= policy.max_retries or not self._retryable(exc, call, policy):
                    raise
                delay = min(policy.max_backoff, policy.initial_backoff * (2**attempt))
                delay = random.uniform(0, delay) if _BACKOFF else 0.0
                if (
                    policy.deadline is not None
                    and time.monotonic() + delay - started > policy.deadline
                ):
                    raise
                attempt += 1
                logger.debug(
                    "%s %s: retry %d/%d in %.2fs after %s",
                    call.method,
                    call.path,
                    attempt,
                    policy.max_retries,
                    delay,
                    type(exc).__name__,
                )
                if delay:
                    await anyio.sleep(delay)

    async def _reauth(self, exc: Exception, call: Call, token: str) -> bool:
        """After a 4100 / 401, let a refreshing auth drop ``token``; True: retry once at once.

        Safe even for a chat: an authentication failure means the server did nothing. Only
        auths with ``invalidate`` (e.g. ``JWTAuth``) get this retry; a fixed token would only
        be rejected again. A non-seekable upload cannot be sent twice.
        """
        invalidate = getattr(self.auth, "invalidate", None)
        if not isinstance(exc, AuthenticationError) or invalidate is None:
            return False
        if call.upload is not None and not call.upload.replayable:
            return False
        await invalidate(token)
        logger.debug("retrying once with a fresh token after %s", type(exc).__name__)
        return True

    @staticmethod
    def _server_rate_limited(exc: Exception, policy: RetryPolicy) -> bool:
        if isinstance(exc, RateLimitError):
            return True
        return isinstance(exc, APIError) and exc.code in policy.rate_limit_codes

    async def request(self, call: Call) -> Envelope:
        """Send a unary call (with retries) and return its decoded envelope."""
        result, waited = await self._run(call)
        assert isinstance(result, Envelope)
        return attrs.evolve(result, quota_wait=waited) if waited else result

    async def open_stream(self, call: Call) -> tuple[aiohttp.ClientResponse, float]:
        """Send a streaming call (with retries up to the headers); return the response.

        Also returns the seconds spent waiting for quota. The caller owns the returned
        response and must close or release it.
        """
        result, waited = await self._run(attrs.evolve(call, stream=True))
        assert isinstance(result, aiohttp.ClientResponse)
        return result, waited
