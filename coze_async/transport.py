"""The call loop: reserve quota -> authenticate -> send -> decode -> classify, and again.

A resource describes a call as a :class:`~coze_async.call.Call` and hands it to
:class:`Transport`:

* :meth:`Transport.request` sends a unary call and returns the decoded
  :class:`~coze_async.call.Envelope`;
* :meth:`Transport.open_stream` sends a streaming call and returns the answer once its
  headers say ``text/event-stream``; the stream object reads the body.

The pieces live elsewhere: sending and reading in :mod:`coze_async._http`, decoding in
:mod:`coze_async.envelope`, retry decisions in :mod:`coze_async.retry`. The loop never goes
past the response headers (design.md §5): nothing is retried once a byte of a stream body may
have been handed to the caller. Between "response received" and "returned", every exit path
(including cancellation) closes the response, so a connection is never leaked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import anyio
import attrs

from ._http import USER_AGENT, RawResponse, Session, close_session, new_session, send
from ._json import dumps
from ._validate import check_token
from .auth import Auth, RefreshableAuth
from .call import DEFAULT_MAX_BODY, WORKFLOW_MAX_BODY, Call, Envelope, Permit, ReservingLimiter
from .config import RetryPolicy, Timeouts
from .envelope import decode
from .errors import (
    APIError,
    AuthenticationError,
    CozeError,
    RequestTooLargeError,
    ResponseValidationError,
    TransportError,
)
from .ratelimit.base import QuotaLimiter
from .ratelimit.plans import buckets_for
from .retry import backoff_delay, backoff_enabled, classify, set_backoff_enabled
from .uploads import MultipartBody

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_EVENT",
    "DEFAULT_MAX_RESPONSE",
    "WORKFLOW_MAX_BODY",
    "Call",
    "Envelope",
    "Transport",
    "backoff_enabled",
    "set_backoff_enabled",
]

logger = logging.getLogger("coze_async")

#: The SDK's caps on what it buffers from a server: one stream event, one unary body. Coze's
#: real answers are far below both; the caps stop a broken or hostile server from making the
#: client buffer without bound (``AsyncCoze(max_event_bytes=..., max_response_bytes=...)``).
DEFAULT_MAX_EVENT = 16 * 1024 * 1024
DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024


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


class Transport:
    """Sends :class:`Call` objects over one aiohttp session. Owned by ``AsyncCoze``."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: Auth,
        timeouts: Timeouts,
        retry: RetryPolicy,
        session: Session | None,
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
        #: The API host, for error messages and hints.
        self.host = urlsplit(self.base_url).hostname or ""

    # -- session ---------------------------------------------------------------------------

    @property
    def owns_session(self) -> bool:
        """True when this transport created (and will close) the aiohttp session."""
        return self._owns_session

    @property
    def session_open(self) -> bool:
        """True when an owned session exists and is not closed yet."""
        return self._session is not None and not self._session.closed

    def _get_session(self) -> Session:
        if self._closed:
            raise CozeError("this AsyncCoze has been closed")
        if self._session is None:
            self._session = new_session(connection_limit=self._connection_limit)  # in the loop
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport owns it. Idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await close_session(session)

    # -- building --------------------------------------------------------------------------

    @staticmethod
    def _encode(call: Call) -> bytes | None:
        if call.upload is not None:
            size = call.upload.size
            if size is not None and size > call.max_body:
                raise RequestTooLargeError(
                    f"{call.what}: {call.upload.filename!r} is {size} bytes, over Coze's "
                    f"limit of {call.max_body} bytes per file; nothing was sent",
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
                f"{call.what}: request body is {len(raw)} bytes, over Coze's limit of "
                f"{call.max_body} bytes for this API; nothing was sent",
                size=len(raw),
                limit=call.max_body,
            )
        return raw

    @staticmethod
    def _params(call: Call) -> dict[str, str] | None:
        if not call.params and not call.extra_query:
            return None
        return {**(call.params or {}), **(call.extra_query or {})}

    def decode(self, status: int, headers: Mapping[str, str], raw: bytes) -> Envelope:
        """Decode a JSON answer; raise the mapped :class:`APIError` for an error envelope."""
        return decode(status, headers, raw, host=self.host)

    # -- one attempt -----------------------------------------------------------------------

    async def _send_once(
        self, call: Call, body: bytes | None, permit: Permit, token: str
    ) -> RawResponse:
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if call.stream else "application/json",
        }
        data: bytes | MultipartBody | None = body
        if call.upload is not None:
            # A fresh body per attempt: a retry re-reads the file from its start.
            data = await call.upload.open(call.extra_body)
            headers["Content-Type"] = data.content_type
            if data.length is not None:
                headers["Content-Length"] = str(data.length)
        elif body is not None:
            headers["Content-Type"] = "application/json"
        if call.extra_headers:
            headers.update(call.extra_headers)
        try:
            return await send(
                self._get_session(),
                call.method,
                self.base_url + call.path,
                headers=headers,
                timeouts=call.timeouts or self.timeouts,
                stream=call.stream,
                params=self._params(call),
                data=data,
                permit=permit,  # committed when the headers are written
                host=self.host,
                what=call.what,
                secrets=(token,),
            )
        finally:
            # The answer's headers are here (or the attempt failed): the server has counted
            # the call by now, so the limiter counts it from now. Never written (no hook call
            # on our own session): the quota and any budget charge go back.
            permit.done(traced=self._owns_session)
            if isinstance(data, MultipartBody):
                data.close()  # the server has answered: the body is no longer needed

    async def _attempt(
        self, call: Call, body: bytes | None, permit: Permit, token: str
    ) -> Envelope | RawResponse:
        resp = await self._send_once(call, body, permit, token)
        try:
            if call.stream and resp.status == 200 and "event-stream" in resp.content_type:
                logger.debug("%s -> %s stream logid=%s", call.what, resp.status, resp.logid)
                return resp
            raw = await resp.body.read(self.max_response_bytes)
            try:
                envelope = self.decode(resp.status, resp.headers, raw)
            except APIError as exc:
                logger.debug(
                    "%s -> %s code=%s logid=%s", call.what, resp.status, exc.code, exc.logid
                )
                raise
            if call.stream:
                raise ResponseValidationError(
                    f"{call.what}: expected an event stream, got "
                    f"{resp.content_type or 'no content type'} with a success envelope",
                    logid=envelope.logid,
                    body=envelope.body,
                )
            logger.debug("%s -> %s logid=%s", call.what, resp.status, envelope.logid)
            resp.body.release()
            return envelope
        except BaseException:
            resp.body.close()
            raise

    async def _reserve(self, names: tuple[str, ...]) -> Permit:
        limiter = self.limiter
        if limiter is None:
            return _NO_PERMIT
        # Called even with no bucket: a lifetime call budget counts every call.
        if isinstance(limiter, ReservingLimiter):
            # Counted from the moment the request is written, not from the grant: a call that
            # then waits for a pooled connection or a busy loop is still counted where the
            # server will see it.
            return await limiter.reserve(names, timeout=self.acquire_timeout)
        return _Granted(await limiter.acquire(names, timeout=self.acquire_timeout))

    async def _token(self) -> str:
        token = await self.auth.token()
        if token is not self._checked_token:
            # An auth callable's (or an OAuth exchange's) token goes into a header: CR/LF
            # there would break the request. Checked once per value.
            check_token("the token returned by auth", token)
            self._checked_token = token
        return token

    # -- the loop --------------------------------------------------------------------------

    async def _run(self, call: Call) -> tuple[Envelope | RawResponse, float]:
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
                    token = await self._token()
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
                decision = classify(exc, call, policy)
                if names and decision.rate_limited:
                    assert self.limiter is not None
                    # The account is over a limit right now: hold back every task, not just
                    # this one, for a window's length.
                    self.limiter.pause(names, self.rejection_pause)
                if attempt >= policy.max_retries or not decision.retry:
                    raise
                delay = backoff_delay(policy, attempt)
                if (
                    policy.deadline is not None
                    and time.monotonic() + delay - started > policy.deadline
                ):
                    raise
                attempt += 1
                logger.debug(
                    "%s: retry %d/%d in %.2fs after %s",
                    call.what,
                    attempt,
                    policy.max_retries,
                    delay,
                    type(exc).__name__,
                )
                if delay:
                    await anyio.sleep(delay)

    async def _reauth(self, exc: Exception, call: Call, token: str) -> bool:
        """After a 4100 / 401, let a refreshing auth drop ``token``; True: retry once at once.

        Safe even for a chat: an authentication failure means the server did nothing. Only a
        :class:`~coze_async.auth.RefreshableAuth` (e.g. ``JWTAuth``) gets this retry; a fixed
        token would only be rejected again. A non-seekable upload cannot be sent twice.
        """
        if not isinstance(exc, AuthenticationError) or not isinstance(self.auth, RefreshableAuth):
            return False
        if not call.replayable:
            return False
        await self.auth.invalidate(token)
        logger.debug("retrying once with a fresh token after %s", type(exc).__name__)
        return True

    async def request(self, call: Call) -> Envelope:
        """Send a unary call (with retries) and return its decoded envelope."""
        result, waited = await self._run(call)
        assert isinstance(result, Envelope)
        return attrs.evolve(result, quota_wait=waited) if waited else result

    async def open_stream(self, call: Call) -> tuple[RawResponse, float]:
        """Send a streaming call (with retries up to the headers); return the answer.

        Also returns the seconds spent waiting for quota. The caller owns the returned
        answer's body and must close or release it.
        """
        result, waited = await self._run(attrs.evolve(call, stream=True))
        assert isinstance(result, RawResponse)
        return result, waited
