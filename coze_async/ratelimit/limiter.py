"""The in-process quota limiter: strict sliding windows, multi-bucket, FIFO, cancellation-safe.

Algorithm: each bucket keeps the times of its last ``limit`` grants (a sliding log). A grant
at time ``t`` is allowed when fewer than ``limit`` grants happened in ``(t - period, t]``,
i.e. when ``t >= oldest_of_the_last_limit + period``. This is exact: no window of length
``period`` ever holds more than ``limit`` grants, which a token bucket cannot promise (a full
bucket plus its refill lets ``burst + rate * period`` through). ``margin`` widens every window
a little, so that requests that leave together but reach the server with different network
delays are still inside the server's window.

A call that needs several buckets (a chat needs the chat QPS bucket and the model RPM bucket)
takes one token from each at the same instant or waits for all of them. Waiters queue in each
bucket they need, in arrival order; a waiter is served only when it heads every one of its
queues, so the order is FIFO per bucket and no waiter can starve. A cancelled (or timed-out)
waiter leaves its queues having taken nothing, and the waiters behind it move up.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

import anyio

from ..errors import InvalidArgumentError, LocalRateLimitError
from .budget import CallBudget
from .clock import Clock, LoopClock
from .plans import Plan

__all__ = ["Limiter"]

logger = logging.getLogger("coze_async.ratelimit")


class _Bucket:
    __slots__ = ("grants", "limit", "name", "paused_until", "period", "queue", "window")

    def __init__(self, name: str, limit: int, period: float, margin: float) -> None:
        self.name = name
        self.limit = limit
        self.period = period
        self.window = period * (1.0 + margin)  # the period widened by the jitter margin
        self.grants: deque[float] = deque(maxlen=limit)
        self.queue: deque[_Waiter] = deque()
        self.paused_until = float("-inf")

    def ready_at(self) -> float:
        # When the next grant may happen (the limiter compares it with "now").
        t = self.paused_until
        if len(self.grants) == self.limit:
            t = max(t, self.grants[0] + self.window)
        return t


class _Waiter:
    __slots__ = ("buckets", "event")

    def __init__(self, buckets: tuple[_Bucket, ...]) -> None:
        self.buckets = buckets
        self.event = anyio.Event()


class Limiter:
    """Client-side enforcement of a :class:`Plan`'s limits, for all tasks of one process.

    ``acquire(["chat", "model_rpm"])`` returns once a token of each named bucket is taken,
    with the seconds it waited. ``margin`` is the fraction of each bucket's period added to
    its window (default 5 %: 50 ms on a 1 s QPS window), to absorb network jitter between
    this client and the server's own window. ``clock`` is injectable for tests. ``budget``
    (e.g. :class:`FileCallBudget`) counts every call against a lifetime allowance (the free
    plan's 500 calls) and refuses calls before the account would be locked.
    """

    def __init__(
        self,
        plan: Plan | None = None,
        *,
        margin: float = 0.05,
        clock: Clock | None = None,
        budget: CallBudget | None = None,
    ) -> None:
        if margin < 0:
            raise InvalidArgumentError("margin must be >= 0")
        self.budget = budget
        self.margin = margin
        self.clock: Clock = clock or LoopClock()
        self._now = self.clock.now
        self.plan: Plan | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._resolved: dict[tuple[str, ...], tuple[_Bucket, ...]] = {}
        if plan is not None:
            self.bind(plan)

    def bind(self, plan: Plan) -> None:
        """Use ``plan``'s buckets (``AsyncCoze(plan=...)`` calls this)."""
        self.plan = plan
        self._buckets = {
            b.name: _Bucket(b.name, b.limit, b.period, self.margin) for b in plan.buckets
        }
        self._resolved = {}
        if self.budget is not None and self.budget.limit is None:
            self.budget.limit = plan.lifetime_calls

    def _resolve(self, names: Sequence[str]) -> tuple[_Bucket, ...]:
        key = names if type(names) is tuple else tuple(names)
        found = self._resolved.get(key)
        if found is None:
            buckets = self._buckets
            found = self._resolved[key] = tuple(buckets[n] for n in key if n in buckets)
        return found

    async def acquire(self, names: Sequence[str], *, timeout: float | None = None) -> float:
        """Take one token from each named bucket; return the seconds waited.

        Buckets the plan does not have are ignored. Raises :class:`LocalRateLimitError` when
        the tokens cannot be had within ``timeout`` seconds (nothing is taken then).
        """
        if self.budget is not None:
            await self.budget.charge()  # refuses before anything waits or is sent
        try:
            buckets = self._resolved[names]  # type: ignore[index]
        except (KeyError, TypeError):  # first use of this bucket set, or names is a list
            buckets = self._resolve(names)
        if not buckets:
            return 0.0
        now = self._now()
        # Fast path: nobody queued and every bucket has room now (ready_at, inlined).
        for b in buckets:
            grants = b.grants
            if (
                b.queue
                or b.paused_until > now
                or (len(grants) == b.limit and grants[0] + b.window > now)
            ):
                break
        else:
            for b in buckets:
                b.grants.append(now)
            return 0.0
        return await self._wait(buckets, now, timeout)

    async def _wait(
        self, buckets: tuple[_Bucket, ...], start: float, timeout: float | None
    ) -> float:
        waiter = _Waiter(buckets)
        for b in buckets:
            b.queue.append(waiter)
        deadline = float("inf") if timeout is None else start + timeout
        clock = self.clock
        try:
            while True:
                now = clock.now()
                if all(b.queue[0] is waiter for b in buckets):
                    ready = max(b.ready_at() for b in buckets)
                    if ready <= now:
                        for b in buckets:
                            b.grants.append(now)
                        waited = now - start
                        logger.debug(
                            "waited %.3fs for %s", waited, ",".join(b.name for b in buckets)
                        )
                        return waited
                    if ready > deadline:
                        raise LocalRateLimitError(
                            f"quota for {'+'.join(b.name for b in buckets)} not available "
                            f"within {timeout} s (next slot in {ready - now:.3f} s)"
                        )
                    wake_at = ready
                else:
                    wake_at = deadline
                    if now >= deadline:
                        raise LocalRateLimitError(
                            f"quota for {'+'.join(b.name for b in buckets)} not available "
                            f"within {timeout} s (queued behind other calls)"
                        )
                waiter.event = anyio.Event()
                await clock.wait(waiter.event, wake_at)
        finally:
            # Leave every queue (granted, cancelled or timed out) and let the new heads look.
            for b in buckets:
                b.queue.remove(waiter)
                if b.queue:
                    b.queue[0].event.set()

    def pause(self, names: Sequence[str], seconds: float) -> None:
        """Let nothing through the named buckets for ``seconds`` (after a server rejection).

        Every task waiting on those buckets waits too: the server said the account is over
        its limit, so the next call from any task would be rejected as well.
        """
        until = self.clock.now() + seconds
        for b in self._resolve(names):
            if until > b.paused_until:
                b.paused_until = until
                logger.debug("bucket %s paused for %.3fs", b.name, seconds)
            if b.queue:
                b.queue[0].event.set()

    def in_flight_waiters(self) -> int:
        """How many acquire calls are waiting (for tests and diagnostics)."""
        return len({id(w) for b in self._buckets.values() for w in b.queue})

    async def aclose(self) -> None:
        """Nothing to release for the in-process limiter (kept for a common interface)."""
