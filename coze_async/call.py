"""What one API call is, and the interfaces the transport relies on. Sans-IO.

* :class:`Call`: one request as a resource describes it (method, path, body, options);
* :class:`Envelope`: a decoded successful JSON answer;
* :class:`CallOptions`: the per-call options every public method takes, and
  :func:`check_options`, which checks them before anything is sent;
* the protocols the transport uses on the objects it is given: :class:`Permit` and
  :class:`ReservingLimiter` (a quota limiter that counts a call from its send time);
  refreshing and base-URL-bound auths are declared in :mod:`coze_async.auth`.

Nothing here imports aiohttp: this module is unit-testable without a socket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypedDict, runtime_checkable

import attrs

from ._validate import check_headers, check_json_object, check_query, kind
from .config import Timeouts
from .errors import InvalidArgumentError
from .ratelimit.base import QuotaLimiter
from .retry import RetryPolicy
from .uploads import UploadFile

__all__ = [
    "DEFAULT_MAX_BODY",
    "OPTION_NAMES",
    "WORKFLOW_MAX_BODY",
    "Call",
    "CallOptions",
    "Envelope",
    "Options",
    "Permit",
    "ReservingLimiter",
    "check_options",
]

#: Coze's request-body limits (coze-api.md §4): 20 MB for workflow APIs, 15 MB for the rest.
DEFAULT_MAX_BODY = 15 * 1024 * 1024
WORKFLOW_MAX_BODY = 20 * 1024 * 1024


class CallOptions(TypedDict, total=False):
    """The options every public method accepts, all optional, all keyword arguments.

    * ``extra_headers``: more request headers (they win over the SDK's own);
    * ``extra_query``: more query parameters;
    * ``extra_body``: more top-level JSON body keys (for an upload: more form fields);
    * ``timeouts``: this call's :class:`~coze_async.config.Timeouts`;
    * ``retry``: this call's :class:`~coze_async.retry.RetryPolicy`.
    """

    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None
    timeouts: Timeouts | None
    retry: RetryPolicy | None


#: The names of the per-call options.
OPTION_NAMES = frozenset(CallOptions.__annotations__)


@attrs.frozen
class Options:
    """:class:`CallOptions`, checked (see :func:`check_options`)."""

    extra_headers: dict[str, str] | None = None
    extra_query: dict[str, str] | None = None
    extra_body: dict[str, Any] | None = None
    timeouts: Timeouts | None = None
    retry: RetryPolicy | None = None


def check_options(options: Mapping[str, Any] | Options, *, method: str = "this method") -> Options:
    """Check the per-call options; a name that is not one of them is a ``TypeError``.

    Methods take the options as ``**options``, so Python itself no longer refuses a
    misspelled keyword (``extra_header=``): this does, naming it, before anything is sent.
    """
    if isinstance(options, Options):
        return options
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise TypeError(
            f"{method}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"the per-call options are {', '.join(sorted(OPTION_NAMES))}"
        )
    timeouts = options.get("timeouts")
    if timeouts is not None and not isinstance(timeouts, Timeouts):
        raise InvalidArgumentError(
            f"timeouts must be a Timeouts(...) value or None, got {kind(timeouts)}"
        )
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidArgumentError(
            f"retry must be a RetryPolicy(...) value or None, got {kind(retry)}"
        )
    extra_body = options.get("extra_body")
    return Options(
        extra_headers=check_headers("extra_headers", options.get("extra_headers")),
        extra_query=check_query("extra_query", options.get("extra_query")),  # type: ignore[arg-type]
        extra_body=None if extra_body is None else check_json_object("extra_body", extra_body),
        timeouts=timeouts,
        retry=retry,
    )


@attrs.frozen(kw_only=True)
class Call:
    """A declarative description of one API call, built by an endpoint.

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

    @property
    def replayable(self) -> bool:
        """Whether the body can be sent again (a non-seekable upload cannot)."""
        return self.upload is None or self.upload.replayable

    @property
    def what(self) -> str:
        """``METHOD /path``, for messages."""
        return f"{self.method} {self.path}"


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


class Permit(Protocol):
    """A limiter's grant for one attempt of a call.

    ``waited``: seconds spent waiting for it. ``commit()``: the request is being written (the
    call counts from now). ``done(traced=...)``: the answer arrived or the attempt ended; an
    uncommitted permit is refunded when ``traced`` says the write would have been seen.
    """

    waited: float

    def commit(self) -> None:
        """The request is being written."""
        ...

    def done(self, *, traced: bool = False) -> None:
        """The attempt is over."""
        ...


@runtime_checkable
class ReservingLimiter(QuotaLimiter, Protocol):
    """A :class:`QuotaLimiter` that counts a call from the moment it is written.

    Both of the SDK's limiters are; a limiter with only ``acquire`` counts from the grant.
    """

    async def reserve(self, names: Sequence[str], *, timeout: float | None = None) -> Permit:
        """Wait for one token from each named bucket; the permit settles the count."""
        ...
