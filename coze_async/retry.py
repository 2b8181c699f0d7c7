"""When a failed call is tried again: the policy, one classifier, and the backoff switch.

Sans-IO: nothing here sends anything. :func:`classify` looks at one failure of one call and
says whether to retry it and whether it was a rate-limit rejection (which pauses the
client-side limiter); :func:`backoff_delay` says how long to sleep first. What counts as a
rate limit is decided here only, from the call's :class:`RetryPolicy`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

import attrs

from .errors import DEFAULT_RATE_LIMIT_CODES, APIError, InvalidArgumentError, TransportError

__all__ = [
    "DEFAULT_RATE_LIMIT_CODES",
    "DEFAULT_RATE_LIMIT_STATUSES",
    "DEFAULT_RETRY_STATUSES",
    "Decision",
    "RetryPolicy",
    "Retryable",
    "backoff_delay",
    "backoff_enabled",
    "classify",
    "set_backoff_enabled",
    "without_backoff",
]

#: HTTP statuses that mean "the gateway could not serve this now"; retried for idempotent calls.
DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset({502, 503, 504})
#: HTTP statuses that are rate-limit rejections whatever the body says.
DEFAULT_RATE_LIMIT_STATUSES: frozenset[int] = frozenset({429})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how often a call is retried. Retries never go past the response headers.

    Idempotent calls (GET, retrieve, list, cancel) retry connection failures, timeouts before
    the response headers, rate-limit rejections and the statuses in ``retry_statuses``.
    Non-idempotent calls (chat, workflow run, upload) retry only what provably never reached
    the server (failures to connect) and rate-limit rejections, unless ``retry_unsafe`` is set:
    a retried chat that did reach the server would be a second, billed chat.

    A rate-limit rejection is an :class:`~coze_async.errors.APIError` whose code is in
    ``rate_limit_codes`` or whose HTTP status is in ``rate_limit_statuses``: this policy is
    the only place that says so. Such a rejection is retried even for a chat (the server
    refused it, so nothing ran) and pauses the client-side limiter's buckets; remove a code
    from the set and it is neither retried nor paused on.

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
    rate_limit_statuses: frozenset[int] = DEFAULT_RATE_LIMIT_STATUSES

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
        for name in ("retry_statuses", "rate_limit_codes", "rate_limit_statuses"):
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


class Retryable(Protocol):
    """What :func:`classify` needs to know about a call."""

    @property
    def idempotent(self) -> bool:
        """Repeating the call leaves the same state (GET, retrieve, list, cancel...)."""
        ...

    @property
    def replayable(self) -> bool:
        """The request body can be sent again (false for a non-seekable upload)."""
        ...


@attrs.frozen
class Decision:
    """What to do after a failed attempt: ``retry`` it; ``rate_limited``: the server refused
    it for rate, so the limiter's buckets pause whether or not it is retried."""

    retry: bool
    rate_limited: bool


def is_rate_limit(error: BaseException, policy: RetryPolicy) -> bool:
    """Whether ``error`` is a rate-limit rejection under ``policy``."""
    if not isinstance(error, APIError):
        return False
    if error.code is not None and error.code in policy.rate_limit_codes:
        return True
    return error.http_status is not None and error.http_status in policy.rate_limit_statuses


def classify(error: BaseException, call: Retryable, policy: RetryPolicy) -> Decision:
    """Decide on one failed attempt of ``call`` (the attempt budget is the loop's business).

    * a body that cannot be sent again is never retried;
    * a rate-limit rejection (see :func:`is_rate_limit`) is retried: nothing ran;
    * another :class:`APIError`: retried when the call is safe to repeat (idempotent, or
      ``policy.retry_unsafe``) and its status is in ``retry_statuses``;
    * a :class:`TransportError`: retried when it failed to connect (nothing was sent) or
      the call is safe to repeat;
    * anything else: not retried.
    """
    rate_limited = is_rate_limit(error, policy)
    if not call.replayable:
        return Decision(retry=False, rate_limited=rate_limited)
    safe = call.idempotent or policy.retry_unsafe
    if rate_limited:
        retry = True
    elif isinstance(error, APIError):
        retry = safe and error.http_status in policy.retry_statuses
    elif isinstance(error, TransportError):
        retry = error.phase == "connect" or safe
    else:
        retry = False
    return Decision(retry=retry, rate_limited=rate_limited)


# Context-local, so that one test (or one task tree) can switch sleeps off without touching
# others; ``None`` falls back to the process-wide setting below.
_BACKOFF: ContextVar[bool | None] = ContextVar("coze_async_backoff", default=None)
_PROCESS_BACKOFF = True


def backoff_enabled() -> bool:
    """Whether retry backoff sleeps are on here (this context, else the process setting)."""
    value = _BACKOFF.get()
    return _PROCESS_BACKOFF if value is None else value


def set_backoff_enabled(enabled: bool) -> None:
    """Switch retry backoff sleeps on or off for the whole process (contexts may override)."""
    global _PROCESS_BACKOFF
    _PROCESS_BACKOFF = bool(enabled)


@contextmanager
def without_backoff() -> Iterator[None]:
    """Within the block (and the tasks it starts), retries happen without sleeping."""
    token = _BACKOFF.set(False)
    try:
        yield
    finally:
        _BACKOFF.reset(token)


def backoff_delay(policy: RetryPolicy, attempt: int, rng: Any = random) -> float:
    """Seconds to sleep before retry ``attempt`` (0-based): full jitter, capped; 0 when off."""
    if not backoff_enabled():
        return 0.0
    cap = min(policy.max_backoff, policy.initial_backoff * (2**attempt))
    return float(rng.uniform(0, cap))
