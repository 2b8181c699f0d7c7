"""Quota enforcement for the emulator: a strict sliding window per bucket and per token.

The emulator does what a strict server would: it remembers the arrival time of every call it
accepted and rejects a call when any bucket it draws from already holds ``limit`` calls in the
last ``period`` seconds. Rejected calls take nothing.

The rejection's HTTP status and code are configurable (``Emulator(rate_limit_status=,
rate_limit_code=)``, ``--rate-limit-status`` / ``--rate-limit-code``) because Coze's real
answer to a rate limit is **unconfirmed**: not documented, and no recording of one is known
(coze-api.md §6). The default, HTTP 200 with code 4009 ("the system has reached its request
limit"), follows Coze's business-error convention. What the official clients classify as a
rate limit: the JS SDK (@coze/api) only HTTP 429 or code 4013 (``RateLimitError``); cozepy
nothing (a ``CozeAPIError`` carrying the code, or ``code=429`` for a non-JSON 429); so a
client tested against the default sees a 4009 business error, and ``rate_limit_status=429``
(or ``rate_limit_code=4013``) is what makes the JS SDK see a rate limit.

A plan is duck-typed (``plan.buckets``: objects with ``name``, ``limit``, ``period``) so that
``coze_async.ratelimit.Plan`` works without the emulator importing the SDK.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BucketStats", "QuotaEnforcer", "QuotaTable", "buckets_for_path", "parse_quota"]

_CHAT = "chat"
_WORKFLOW = "workflow"
_UPLOAD = "upload"
_MODEL = "model_rpm"

# (method, path regex) -> buckets; the first match wins.
_ROUTES: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (method, re.compile(pattern), buckets)
    for method, pattern, buckets in (
        ("POST", r"^/v3/chat$", (_CHAT, _MODEL)),
        ("POST", r"^/v3/chat/submit_tool_outputs$", (_CHAT, _MODEL)),
        ("*", r"^/v3/chat/(retrieve|message/list|cancel)$", (_CHAT,)),
        ("POST", r"^/v1/workflow/(run|stream_run|stream_resume)$", (_WORKFLOW, _MODEL)),
        ("POST", r"^/v1/workflows/(resume|chat)$", (_WORKFLOW, _MODEL)),
        ("GET", r"^/v1/workflows/[^/]+/run_histories/", (_WORKFLOW,)),
        ("POST", r"^/v1/files/upload$", (_UPLOAD,)),
    )
)


def buckets_for_path(method: str, path: str) -> tuple[str, ...]:
    """The quota buckets a request draws from at Coze (none for unlimited endpoints)."""
    for route_method, pattern, buckets in _ROUTES:
        if (route_method == "*" or route_method == method) and pattern.match(path):
            return buckets
    return ()


@dataclass(frozen=True)
class QuotaLimit:
    """One bucket's limit, shaped like ``coze_async.ratelimit.Bucket``."""

    name: str
    limit: int
    period: float


@dataclass(frozen=True)
class QuotaTable:
    """A plan given as plain limits (e.g. from the command line), shaped like ``Plan``."""

    name: str
    buckets: tuple[QuotaLimit, ...]


def parse_quota(specs: list[str], *, name: str = "custom") -> QuotaTable:
    """Parse ``NAME=LIMIT/PERIOD`` strings (``chat=20/1``, ``model_rpm=300/60``).

    This is how a process that does import the SDK (the load benchmark) hands its plan to an
    emulator in another process, without the emulator importing the SDK.
    """
    limits = []
    for spec in specs:
        try:
            bucket, rest = spec.split("=", 1)
            limit, _, period = rest.partition("/")
            item = QuotaLimit(bucket.strip(), int(limit), float(period or 1))
        except ValueError:
            raise ValueError(f"bad quota {spec!r}: expected NAME=LIMIT/PERIOD") from None
        if not item.name or item.limit < 1 or item.period <= 0:
            raise ValueError(f"bad quota {spec!r}: expected NAME=LIMIT/PERIOD, both positive")
        limits.append(item)
    return QuotaTable(name, tuple(limits))


@dataclass
class BucketStats:
    """Accepted and rejected calls of one bucket, with the accepted calls' arrival times."""

    accepted: int = 0
    rejected: int = 0
    #: ``time.monotonic()`` of every accepted call, for sliding-window checks in tests.
    accepted_at: list[float] = field(default_factory=list)


class QuotaEnforcer:
    """Sliding-window limits of one plan, kept per (token, bucket)."""

    def __init__(self, plan: Any) -> None:
        self.limits: dict[str, tuple[int, float]] = {
            str(b.name): (int(b.limit), float(b.period)) for b in plan.buckets
        }
        self.plan_name = str(getattr(plan, "name", "custom"))
        self.stats: dict[str, BucketStats] = {name: BucketStats() for name in self.limits}
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def admit(self, token: str, method: str, path: str, now: float) -> str | None:
        """Record the call and return ``None``, or return the name of the full bucket."""
        names = [n for n in buckets_for_path(method, path) if n in self.limits]
        windows = []
        full: str | None = None
        for name in names:
            limit, period = self.limits[name]
            window = self._windows.setdefault((token, name), deque())
            while window and window[0] <= now - period:
                window.popleft()
            if len(window) >= limit and full is None:
                full = name
            windows.append(window)
        if full is not None:
            for name in names:
                self.stats[name].rejected += 1
            return full
        for name, window in zip(names, windows, strict=True):
            window.append(now)
            stats = self.stats[name]
            stats.accepted += 1
            stats.accepted_at.append(now)
        return None

    def report(self) -> dict[str, Any]:
        """Per-bucket counts, JSON-ready (what ``GET /_emulator/quota`` answers)."""
        return {
            "plan": self.plan_name,
            "buckets": {
                name: {
                    "limit": self.limits[name][0],
                    "period": self.limits[name][1],
                    "accepted": s.accepted,
                    "rejected": s.rejected,
                    "max_in_window": self.max_in_window(name),
                }
                for name, s in self.stats.items()
            },
        }

    def max_in_window(self, bucket: str) -> int:
        """The most accepted calls of ``bucket`` found in any window of its period."""
        times = self.stats[bucket].accepted_at
        period = self.limits[bucket][1]
        best = 0
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - period:
                start += 1
            best = max(best, end - start + 1)
        return best
