"""Every error ``coze_async`` raises, in one tree.

::

    CozeError                      base of everything below; str() is never empty
    ├── InvalidArgumentError       bad input, found before anything was sent (also a ValueError)
    ├── RequestTooLargeError       request body over Coze's size limit, found before sending
    ├── LocalRateLimitError        the client-side limiter refused (timeout or lifetime budget)
    │   └── LimiterUnavailableError  the shared (Redis) limiter is unreachable: failed closed
    ├── BudgetFileError            the lifetime call budget's file is corrupt or unusable
    ├── APIError                   Coze answered with an error (.code, .msg, .logid, .http_status)
    │   ├── AuthenticationError    4100 / HTTP 401: bad, expired or wrong-region token
    │   ├── PermissionDeniedError  4101 / HTTP 403 / 6003: token or plan lacks the permission
    │   ├── BadRequestError        other 4000-class codes / HTTP 4xx: the request was rejected
    │   ├── NotFoundError          4200, 4314 / HTTP 404
    │   ├── ConflictError          4016, 4315 / HTTP 409: the resource's state forbids the call
    │   ├── RateLimitError         HTTP 429, 4009, 4020, 4013 (ambiguous): retry later
    │   ├── QuotaExhaustedError    4008, 4011, 4019, 4022, 4028: balance or quota used up
    │   ├── ServerError            5000 / HTTP 5xx
    │   └── OAuthError             an OAuth endpoint refused (.error_code, .error_message)
    │       ├── InvalidClientError bad client credential: unknown kid (wrong region?), bad JWT
    │       ├── InvalidGrantError  unknown or used code, refresh token or device code
    │       ├── AccessDeniedError  the user declined the authorization
    │       ├── ExpiredTokenError  the device code expired before the user approved it
    │       └── AuthorizationPendingError  device polling gave up while still pending
    ├── MissingExtraError          an optional extra is not installed (also an ImportError)
    ├── TransportError             no usable HTTP answer (.phase: connect, send, headers, read)
    │   └── TransportTimeoutError  the same, because a timeout expired (also a TimeoutError)
    ├── ResponseValidationError    an answer that does not have the documented shape
    │   └── ResponseTooLargeError  a unary response body over ``max_response_bytes``
    ├── StreamError                a stream ended badly; .partial holds what was received
    │   ├── StreamErrorEvent       the server sent an ``error`` / ``Error`` event (.code, .msg)
    │   ├── IncompleteStreamError  the body ended before the terminal event
    │   ├── StreamInterruptedError the connection failed mid-stream
    │   ├── StreamGapError         workflow event ids skipped a value: events were lost
    │   ├── InvalidEventError      an event's data could not be decoded (also a validation error)
    │   └── EventTooLargeError     one event over ``max_event_bytes`` (16 MiB by default)
    ├── ChatFailedError            the chat ended with status ``failed`` (.last_error, .chat)
    ├── ChatPollTimeoutError       create_and_poll passed its deadline (the chat was cancelled)
    ├── WorkflowRunFailedError     a workflow run's history says ``Fail`` (.history, .code, .msg)
    └── WorkflowPollTimeoutError   run_and_wait passed its deadline (.history: the last state)

Which :class:`APIError` subclass is raised is chosen from the envelope ``code`` first (Coze
sends most business errors with HTTP 200) and from the HTTP status when the code is absent or
unknown; the table is :data:`CODE_TO_ERROR` / :data:`STATUS_TO_ERROR`. OAuth token endpoints
answer with their own body (``error_code`` / ``error_message``, no envelope); their errors are
chosen from ``error_code`` by :data:`OAUTH_CODE_TO_ERROR`. :class:`InvalidClientError` is also
an :class:`AuthenticationError`, and :class:`AuthorizationPendingError` a ``TimeoutError``.
Every error that comes from an answer carries ``logid`` (from the ``x-tt-logid`` header or
``detail.logid``): quote it when asking Coze support about a call.

No error carries a secret: an error caused by a failure below the SDK (aiohttp, the socket)
has an :class:`ErrorCause` as its ``__cause__`` (the original's class name and message only)
and no ``__context__``, because aiohttp's exceptions hold the request, and with it the
``Authorization`` header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from ._errors_base import CozeError, InvalidArgumentError, ResponseValidationError

if TYPE_CHECKING:
    from pathlib import Path

    from .models.chat import Chat, LastError

__all__ = [
    "CODE_TO_ERROR",
    "DEFAULT_RATE_LIMIT_CODES",
    "OAUTH_CODE_TO_ERROR",
    "STATUS_TO_ERROR",
    "APIError",
    "AccessDeniedError",
    "AuthenticationError",
    "AuthorizationPendingError",
    "BadRequestError",
    "BudgetFileError",
    "ChatFailedError",
    "ChatPollTimeoutError",
    "ConflictError",
    "CozeError",
    "ErrorCause",
    "EventTooLargeError",
    "ExpiredTokenError",
    "IncompleteStreamError",
    "InvalidArgumentError",
    "InvalidClientError",
    "InvalidEventError",
    "InvalidGrantError",
    "LimiterUnavailableError",
    "LocalRateLimitError",
    "MissingExtraError",
    "NotFoundError",
    "OAuthError",
    "PermissionDeniedError",
    "QuotaExhaustedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "ServerError",
    "StreamError",
    "StreamErrorEvent",
    "StreamGapError",
    "StreamInterruptedError",
    "TimeoutCause",
    "TransportError",
    "TransportTimeoutError",
    "WorkflowPollTimeoutError",
    "WorkflowRunFailedError",
    "error_class_for",
    "oauth_error_class_for",
    "parse_code",
]


class RequestTooLargeError(CozeError):
    """The request body exceeds Coze's limit for this API; nothing was sent.

    Attributes: ``size`` (bytes of the encoded body) and ``limit`` (bytes).
    """

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class LocalRateLimitError(CozeError):
    """The client-side limiter refused the call (acquire timeout or lifetime budget)."""


class LimiterUnavailableError(LocalRateLimitError):
    """A shared limiter's store (Redis) could not be reached, so the call was not sent.

    Raised by :class:`~coze_async.ratelimit.RedisLimiter` with ``on_unavailable="fail"``
    (fail closed); the message names the store's ``host:port``, never its credentials.
    """


class BudgetFileError(CozeError):
    """A lifetime call budget's file cannot be used: corrupt, unreadable, or not lockable here.

    Raised by :class:`~coze_async.ratelimit.FileCallBudget` instead of counting from zero (which
    could spend the calls that lock the account); nothing was sent. ``path`` is the file.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class APIError(CozeError):
    """Coze answered with an error.

    Attributes: ``code`` (envelope code, or ``None`` when the body had none), ``msg`` (the
    server's message), ``logid``, ``http_status``, ``debug_url`` (workflow runs) and ``body``
    (the decoded JSON body, when there was one).
    """

    def __init__(
        self,
        msg: str,
        *,
        code: int | None = None,
        logid: str | None = None,
        http_status: int | None = None,
        debug_url: str | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        self.code = code
        self.msg = msg
        self.logid = logid
        self.http_status = http_status
        self.debug_url = debug_url
        self.body = body
        self.hint = hint
        super().__init__(self._render())

    def with_hint(self, hint: str) -> Self:
        """A copy of this error (same class and fields) whose message carries ``hint``.

        For callers that know more than the envelope did, e.g. why a plan refused a call.
        """
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.hint = hint
        clone.args = (clone._render(),)
        return clone

    def _head_parts(self) -> list[str]:
        """What identifies the error inside the message's ``[...]`` head."""
        return [f"code={self.code}"] if self.code is not None else []

    def _render(self) -> str:
        parts = self._head_parts()
        if self.http_status is not None and self.http_status != 200:
            parts.append(f"http_status={self.http_status}")
        head = f"[{', '.join(parts)}] " if parts else ""
        text = f"{head}{self.msg or 'no message'}"
        if self.hint:
            text += f" (hint: {self.hint})"
        if self.logid:
            text += f" (logid={self.logid})"
        return text


class AuthenticationError(APIError):
    """4100 / HTTP 401: the token is invalid, expired or issued for the other region."""


class PermissionDeniedError(APIError):
    """4101 / HTTP 403 / 6003: the token or the plan does not allow this call.

    6003 means ``is_async=True`` (``run_async`` / ``run_and_wait``) on a plan without async
    workflow runs: Coze reserves them for paid (Professional) plans.
    """


class BadRequestError(APIError):
    """The request was rejected as invalid (4000-class codes, other HTTP 4xx)."""


class NotFoundError(APIError):
    """The resource does not exist or is not visible to this token (4200, 4314, HTTP 404)."""


class ConflictError(APIError):
    """The resource is in a state that forbids the call (4016, 4315, HTTP 409).

    4016: another chat is already running in this conversation. 4315: the workflow run has
    already finished (or used up its resumes), so it cannot be resumed.
    """


class RateLimitError(APIError):
    """The server rejected the call for rate (HTTP 429, 4009, 4020, 4013); retry later."""


class QuotaExhaustedError(APIError):
    """A balance or quota is used up (4008, 4011, 4019, 4022, 4028); retrying will not help."""


class ServerError(APIError):
    """Coze failed internally (5000, HTTP 5xx)."""


class OAuthError(APIError):
    """An OAuth endpoint (token, device code) refused the request.

    These endpoints answer without Coze's envelope, with a string ``error_code`` (e.g.
    ``invalid_client``, ``invalid_request``) and an ``error_message``; ``code`` is therefore
    ``None``. Attributes: ``error_code``, ``error_message``, ``http_status``, ``logid`` and
    ``hint`` (what the error most likely means for you). Never carries a token or a key.
    """

    def __init__(
        self,
        error_message: str,
        *,
        error_code: str | None,
        http_status: int | None = None,
        logid: str | None = None,
        body: Any = None,
        hint: str | None = None,
    ) -> None:
        self.error_code = error_code
        self.error_message = error_message
        super().__init__(
            error_message, code=None, logid=logid, http_status=http_status, body=body, hint=hint
        )

    def _head_parts(self) -> list[str]:
        return [self.error_code] if self.error_code else []


class InvalidClientError(OAuthError, AuthenticationError):
    """``invalid_client``: the server does not accept the client's credential.

    For a JWT (service) app the usual cause is a ``kid`` (``public_key_id``) that is not
    registered on this host, which is what a key made for a coze.cn app gets from
    api.coze.com and vice versa (HTTP 401); a bad signature, ``aud``, ``exp`` or a replayed
    ``jti`` is refused the same way. The message's hint names the likely cause.
    """


class InvalidGrantError(OAuthError):
    """The code, refresh token or device code is unknown, used or expired: start over."""


class AccessDeniedError(OAuthError):
    """``access_denied``: the user declined the authorization (device or web flow)."""


class ExpiredTokenError(OAuthError):
    """``expired_token``: the device code expired before the user approved it.

    Also raised by ``DeviceOAuth.poll`` when the code's ``expires_in`` passes locally.
    Request a new code and show the user the new ``user_code``.
    """


class AuthorizationPendingError(OAuthError, TimeoutError):
    """The user has not approved yet and the caller's polling ``timeout`` has passed."""


class MissingExtraError(CozeError, ImportError):
    """An optional dependency is missing; the message names the extra to install.

    ``extra`` is the extra's name, e.g. ``"jwt"`` for ``pip install 'coze-async[jwt]'``.
    """

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class TransportError(CozeError):
    """No usable HTTP answer was received.

    ``phase`` says how far the call got: ``"connect"`` (never reached the server, always safe
    to retry), ``"send"``, ``"headers"`` (waiting for the response) or ``"read"``.
    """

    def __init__(self, message: str, *, phase: str, logid: str | None = None) -> None:
        super().__init__(message)
        self.phase = phase
        self.logid = logid


class TransportTimeoutError(TransportError, TimeoutError):
    """A connect, read or total timeout expired."""


class ErrorCause(Exception):
    """What the HTTP library or the socket reported, kept as an SDK error's ``__cause__``.

    Only the original exception's class name (``type_name``) and message (``message``, any
    known secret masked) are kept: the original objects hold the request, and the request
    holds the ``Authorization`` header. Not a :class:`CozeError`; never raised by itself.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message


class TimeoutCause(ErrorCause, TimeoutError):
    """An :class:`ErrorCause` for a timeout (so ``isinstance(exc.__cause__, TimeoutError)``)."""


class StreamError(CozeError):
    """A stream ended abnormally. ``partial`` is the stream's snapshot at that moment.

    ``partial`` always holds everything the stream delivered before the failure (for a chat
    stream: the chat object, completed messages and the text of the message in progress), so
    that no received content is lost with the error.
    """

    def __init__(self, message: str, *, partial: Any, logid: str | None = None) -> None:
        super().__init__(message)
        self.partial = partial
        self.logid = logid


class StreamErrorEvent(StreamError):
    """The server sent an ``error`` (chat) or ``Error`` (workflow) event.

    ``code`` and ``msg`` come from the event; ``http_status`` is the stream's status (200).
    """

    def __init__(
        self,
        msg: str,
        *,
        code: int | None,
        partial: Any,
        logid: str | None = None,
        http_status: int | None = None,
        data: Any = None,
    ) -> None:
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.data = data
        text = f"stream error event: [code={code}] {msg or 'no message'}"
        if logid:
            text += f" (logid={logid})"
        super().__init__(text, partial=partial, logid=logid)


class IncompleteStreamError(StreamError):
    """The body ended before the stream's terminal event (``done`` / ``Done``).

    ``tail`` is the undispatched event the body ended in the middle of, if any.
    """

    def __init__(
        self, message: str, *, partial: Any, logid: str | None = None, tail: Any = None
    ) -> None:
        super().__init__(message, partial=partial, logid=logid)
        self.tail = tail


class StreamInterruptedError(StreamError):
    """The connection failed or timed out mid-stream. ``__cause__`` is the transport error."""


class StreamGapError(StreamError):
    """A workflow stream's event ids skipped a value: events were lost on the way.

    Workflow events carry ``id: 0, 1, 2...`` (restarting at 0 on every stream, resumes
    included); ``expected`` is the id that should have come next and ``received`` the one that
    did. ``partial`` holds everything received before the gap.
    """

    def __init__(
        self,
        message: str,
        *,
        partial: Any,
        expected: int,
        received: int,
        logid: str | None = None,
    ) -> None:
        super().__init__(message, partial=partial, logid=logid)
        self.expected = expected
        self.received = received


class InvalidEventError(StreamError, ResponseValidationError):
    """An event's data could not be decoded. ``event`` and ``data`` hold what was received."""

    def __init__(
        self,
        message: str,
        *,
        partial: Any,
        event: str,
        data: str,
        logid: str | None = None,
        path: str | None = None,
    ) -> None:
        StreamError.__init__(self, message, partial=partial, logid=logid)
        self.path = path
        self.body = data
        self.event = event
        self.data = data


class EventTooLargeError(StreamError):
    """One stream event grew past the client's ``max_event_bytes`` (16 MiB by default).

    Raised as soon as the limit is passed, before the rest of the event is buffered; the
    connection is closed. ``size`` is how much of the event had arrived, ``limit`` the cap.
    """

    def __init__(
        self, message: str, *, partial: Any, size: int, limit: int, logid: str | None = None
    ) -> None:
        super().__init__(message, partial=partial, logid=logid)
        self.size = size
        self.limit = limit


class ResponseTooLargeError(ResponseValidationError):
    """A (non-streamed) response body is over the client's ``max_response_bytes``.

    Raised as soon as the limit is passed (or at once, from ``Content-Length``); the body is
    not buffered past it. ``size`` is what had arrived or was announced, ``limit`` the cap.
    """

    def __init__(self, message: str, *, size: int, limit: int, logid: str | None = None) -> None:
        super().__init__(message, logid=logid)
        self.size = size
        self.limit = limit


class ChatFailedError(CozeError):
    """The chat ended with status ``failed``.

    ``chat`` is the failed chat, ``last_error`` its error, ``code``/``msg`` shortcuts to it
    (e.g. 4028 when the free quota is used up), and ``partial`` the stream snapshot when the
    failure was seen on a stream.
    """

    def __init__(
        self,
        chat: Chat,
        *,
        logid: str | None = None,
        partial: Any = None,
    ) -> None:
        self.chat = chat
        self.last_error: LastError | None = chat.last_error
        self.code = chat.last_error.code if chat.last_error is not None else None
        self.msg = chat.last_error.msg if chat.last_error is not None else ""
        self.logid = logid
        self.partial = partial
        text = f"chat {chat.id} failed: [code={self.code}] {self.msg or 'no message'}"
        if logid:
            text += f" (logid={logid})"
        super().__init__(text)


class ChatPollTimeoutError(CozeError, TimeoutError):
    """``create_and_poll`` ran past its deadline and cancelled the chat (``chat``: last state)."""

    def __init__(self, message: str, *, chat: Chat, logid: str | None = None) -> None:
        super().__init__(message)
        self.chat = chat
        self.logid = logid


class WorkflowRunFailedError(CozeError):
    """A workflow run ended with status ``Fail`` (seen in its run history).

    ``history`` is the run's :class:`~coze_async.models.workflow.WorkflowRunHistory`;
    ``code`` (int, or ``None`` when Coze sent none) and ``msg`` come from its ``error_code`` /
    ``error_message``; ``debug_url`` opens the run in Coze's console.
    """

    def __init__(self, history: Any, *, logid: str | None = None) -> None:
        self.history = history
        self.code: int | None = history.code
        self.msg: str = history.error_message or ""
        self.debug_url: str | None = history.debug_url
        self.logid = logid
        text = (
            f"workflow run {history.execute_id} failed: "
            f"[code={history.error_code or None}] {self.msg or 'no message'}"
        )
        if self.debug_url:
            text += f" (debug_url={self.debug_url})"
        if logid:
            text += f" (logid={logid})"
        super().__init__(text)


class WorkflowPollTimeoutError(CozeError, TimeoutError):
    """``run_and_wait`` ran past its deadline; ``history`` is the run's last known state.

    The run itself goes on at Coze (workflow runs cannot be cancelled through the API): keep
    polling ``coze.workflows.runs.retrieve`` with ``history.execute_id`` if you still need it.
    """

    def __init__(self, message: str, *, history: Any, logid: str | None = None) -> None:
        super().__init__(message)
        self.history = history
        self.logid = logid


#: Envelope codes that are rate-limit rejections: the default of
#: ``RetryPolicy.rate_limit_codes`` (which alone decides what is retried and paused as a rate
#: limit) and the codes raised as :class:`RateLimitError`. 4013 is ambiguous (documented as
#: "model error", treated as a rate limit by coze-js).
DEFAULT_RATE_LIMIT_CODES: frozenset[int] = frozenset({4009, 4013, 4020})

#: Envelope code -> error class. Codes not listed fall back to the HTTP status, then to the
#: code's class (4xxx -> BadRequestError, 5xxx -> ServerError).
CODE_TO_ERROR: dict[int, type[APIError]] = {
    4100: AuthenticationError,
    4101: PermissionDeniedError,
    6003: PermissionDeniedError,
    4200: NotFoundError,
    4314: NotFoundError,
    4016: ConflictError,
    4315: ConflictError,
    # Invalid conversation / message (a bad id, or one the token's user did not create) and
    # the upload refusals: empty, more than one file, too large, unsupported type, invalid.
    4002: BadRequestError,
    4005: BadRequestError,
    4300: BadRequestError,
    4301: BadRequestError,
    4302: BadRequestError,
    4303: BadRequestError,
    4304: BadRequestError,
    **dict.fromkeys(DEFAULT_RATE_LIMIT_CODES, RateLimitError),
    4008: QuotaExhaustedError,
    4011: QuotaExhaustedError,
    4019: QuotaExhaustedError,
    4022: QuotaExhaustedError,
    4028: QuotaExhaustedError,
    5000: ServerError,
}

#: HTTP status -> error class, used when the body has no (known) code.
STATUS_TO_ERROR: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    429: RateLimitError,
}


def error_class_for(code: int | None, http_status: int | None) -> type[APIError]:
    """Pick the :class:`APIError` subclass for an envelope ``code`` and an HTTP status."""
    if code is not None and code in CODE_TO_ERROR:
        return CODE_TO_ERROR[code]
    if http_status is not None:
        if http_status in STATUS_TO_ERROR:
            return STATUS_TO_ERROR[http_status]
        if http_status >= 500:
            return ServerError
        if 400 <= http_status < 500:
            return BadRequestError
    if code is not None:
        if 4000 <= code < 5000:
            return BadRequestError
        if 5000 <= code < 6000:
            return ServerError
    return APIError


#: OAuth ``error_code`` (or ``error``) -> error class; other codes raise :class:`OAuthError`.
#: ``access_deny`` is the spelling Coze's docs list next to the standard ``access_denied``.
OAUTH_CODE_TO_ERROR: dict[str, type[OAuthError]] = {
    "invalid_client": InvalidClientError,
    "invalid_grant": InvalidGrantError,
    "access_denied": AccessDeniedError,
    "access_deny": AccessDeniedError,
    "expired_token": ExpiredTokenError,
    "authorization_pending": AuthorizationPendingError,
}


def oauth_error_class_for(error_code: str | None) -> type[OAuthError]:
    """Pick the :class:`OAuthError` subclass for an OAuth ``error_code``."""
    return OAUTH_CODE_TO_ERROR.get(error_code or "", OAuthError)


def parse_code(value: Any) -> int | None:
    """An envelope or event ``code`` as an int (Coze sends ints, sometimes numeric strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
