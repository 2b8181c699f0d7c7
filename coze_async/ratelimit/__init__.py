"""Client-side quota limiting: the plan table, the in-process limiter and clocks.

``AsyncCoze(plan=Plan.PERSONAL_FREE)`` keeps every call of the process inside the plan's
per-API QPS and per-user model RPM; a shared limiter keeps a whole fleet inside it.
``RedisLimiter`` (the ``coze-async[redis]`` extra) is imported on first use, so the core
install never needs redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import QuotaLimiter
from .budget import CallBudget, FileCallBudget
from .clock import Clock, FakeClock, LoopClock
from .limiter import Limiter
from .plans import ENDPOINT_BUCKETS, Bucket, Plan, buckets_for

__all__ = [
    "ENDPOINT_BUCKETS",
    "Bucket",
    "CallBudget",
    "Clock",
    "FakeClock",
    "FileCallBudget",
    "Limiter",
    "LoopClock",
    "Plan",
    "QuotaLimiter",
    "RedisLimiter",
    "buckets_for",
]

if TYPE_CHECKING:
    from .redis import RedisLimiter


def __getattr__(name: str) -> Any:
    # Lazy: importing coze_async.ratelimit must not import redis (an optional extra).
    if name == "RedisLimiter":
        from .redis import RedisLimiter

        return RedisLimiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
