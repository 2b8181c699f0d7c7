"""Configuration: base URLs, timeouts and the retry policy.

These are plain frozen values so that one ``AsyncCoze`` can be configured once and shared by
every task; per-call overrides build a new value with :func:`attrs.evolve`.
"""

from __future__ import annotations

import ipaddress
import math
import warnings
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import InvalidArgumentError

__all__ = [
    "COZE_CN_BASE_URL",
    "COZE_COM_BASE_URL",
    "DEFAULT_RATE_LIMIT_CODES",
    "DEFAULT_RETRY_STATUSES",
    "RetryPolicy",
    "Timeouts",
]

#: The China API host (coze.cn). This SDK's default, overridable by ``COZE_API_BASE``.
COZE_CN_BASE_URL = "https://api.coze.cn"
#: The global API host (coze.com). Tokens are region-bound: a coze.com token fails on the CN host.
COZE_COM_BASE_URL = "https://api.coze.com"


class _CheckedURL(str):
    """A base URL :func:`check_base_url` has already accepted (and warned about, if needed).

    ``AsyncCoze`` checks its URL and then hands it to its auth (``JWTAuth.bind_base_url``),
    which checks it again; marking the value keeps that second check from warning twice.
    """

    __slots__ = ()


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; InvalidArgumentError unless it is http(s).

    A plain ``http://`` URL to a host other than this machine (127.0.0.0/8, ::1,
    ``localhost``) is accepted with a :class:`UserWarning`: the bearer token would then travel
    in clear text. Loopback (the emulator) and ``https://`` do not warn.
    """
    if isinstance(base_url, _CheckedURL):
        return base_url
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise InvalidArgumentError(
            f"base_url must start with http:// or https://, got {base_url!r}"
        )
    url = base_url.rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidArgumentError(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if not host:
        raise InvalidArgumentError(f"base_url {base_url!r} has no host")
    if parts.scheme == "http" and not is_loopback_host(host):
        warnings.warn(
            f"base_url {url!r} uses plain http:// to {host}: the API token travels in clear "
            "text and can be read on the way; use https://",
            UserWarning,
            stacklevel=3,
        )
    return _CheckedURL(url)


#: HTTP statuses that mean "the gateway could not serve this now"; retried for idempotent calls.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({502, 503, 504})
#: Envelope codes treated as rate-limit rejections (retried with backoff, even for chat).
#: 4013 is ambiguous (documented as "model error", treated as a rate limit by coze-js).
DEFAULT_RATE_LIMIT_CODES: frozenset[int] = frozenset({4009, 4013, 4020})


def _positive_or_none(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(
            f"Timeouts.{attribute.name} must be a number of seconds or None, "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(
            f"Timeouts.{attribute.name} must be a positive number or None, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Timeouts:
    """Timeouts in seconds; ``None`` disables one.

    ``read`` is the longest gap allowed between two reads from the socket (including the wait
    for response headers), so a stream that keeps producing events never times out while a
    stalled one does. ``total`` bounds a whole unary call and is never applied to streams: a
    long answer must not be cut off by a wall-clock limit (aiohttp's default ``total=300``
    would do exactly that). ``pool`` bounds the wait for a free connection from the pool.
    """

    connect: float | None = attrs.field(default=5.0, validator=_positive_or_none)
    read: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    total: float | None = attrs.field(default=120.0, validator=_positive_or_none)
    pool: float | None = attrs.field(default=None, validator=_positive_or_none)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how often a call is retried. Retries never go past the response headers.

    Idempotent calls (GET, retrieve, list, cancel) retry connection failures, timeouts before
    the response headers, rate-limit rejections and the statuses in ``retry_statuses``.
    Non-idempotent calls (chat, workflow run, upload) retry only what provably never reached
    the server (failures to connect) and rate-limit rejections, unless ``retry_unsafe`` is set:
    a retried chat that did reach the server would be a second, billed chat.

    Backoff is exponential with full jitter: before retry *n* (0-based) the loop sleeps a
    uniform random time in ``[0, min(max_backoff, initial_backoff * 2**n)]``. The loop stops at
    ``max_retries`` retries or when the next attempt could not start before ``deadline``
    seconds have passed since the first one, whichever comes first.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    deadline: float | None = 30.0
    retry_unsafe: bool = False
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    rate_limit_codes: frozenset[int] = DEFAULT_RATE_LIMIT_CODES

    def __attrs_post_init__(self) -> None:
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise InvalidArgumentError(
                f"RetryPolicy.max_retries must be an integer, got {type(self.max_retries).__name__}"
            )
        if self.max_retries < 0:
            raise InvalidArgumentError(
                f"RetryPolicy.max_retries must be >= 0, got {self.max_retries}"
            )
        for name in ("initial_backoff", "max_backoff", "deadline"):
            value = getattr(self, name)
            if value is None and name == "deadline":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgumentError(
                    f"RetryPolicy.{name} must be a number of seconds, got {type(value).__name__}"
                )
            if not math.isfinite(value) or value < 0 or (name == "deadline" and value == 0):
                bound = "> 0 (or None)" if name == "deadline" else ">= 0"
                raise InvalidArgumentError(f"RetryPolicy.{name} must be {bound}, got {value!r}")
        if not isinstance(self.retry_unsafe, bool):
            raise InvalidArgumentError(
                f"RetryPolicy.retry_unsafe must be True or False, "
                f"got {type(self.retry_unsafe).__name__}"
            )
        for name in ("retry_statuses", "rate_limit_codes"):
            value = getattr(self, name)
            if not isinstance(value, set | frozenset | list | tuple) or not all(
                isinstance(code, int) and not isinstance(code, bool) for code in value
            ):
                raise InvalidArgumentError(
                    f"RetryPolicy.{name} must be a set of integers, got {type(value).__name__}"
                )
            # Frozen, and hashable like the rest of the value, whatever collection was given.
            object.__setattr__(self, name, frozenset(value))

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_retries=0)
