"""The in-process quota limiter: strict sliding windows, multi-bucket, FIFO, cancellation-safe.

Algorithm: each bucket keeps the times of its last ``limit`` grants (a sliding log). A grant
at time ``t`` is allowed when fewer than ``limit`` grants happened in ``(t - period, t]``,
i.e. when ``t >= oldest_of_the_last_limit + period``. This is exact: no window of length
``period`` ever holds more than ``limit`` grants, which a token bucket cannot promise (a full
bucket plus its refill lets ``burst + rate * period`` through). ``margin`` widens every window
a little, so that requests that leave together but reach the server with different network
delays are still inside the server's window.

A call is counted from the moment its request is written (the transport reserves quota,
then commits the reservation from aiohttp's "headers sent" hook), not from the moment it was
granted: a call that waited for a pooled connection or a stalled event loop after its grant
would otherwise reach the server later than the limiter thinks. Until it is committed a
reserved call counts as inside the window.

A call that needs several buckets (a chat needs the chat QPS bucket and the model RPM bucket)
takes one token from each at the same instant or waits for all of them. Waiters queue in each
bucket they need, in arrival order, and are served first come, first served. One exception
keeps a blocked call from blocking others: a later waiter may go ahead of earlier ones when
every one of them is held back by another bucket and its grant cannot delay any of them (a
retrieve, which needs only the chat QPS bucket, does not wait a minute behind chats that wait
for the model RPM window). Calls with the same needs are always served in arrival order, and
no waiter can starve. A cancelled (or timed-out) waiter leaves its queues having taken
nothing, and the waiters behind it move up.
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

__all__ = ["Limiter", "Reservation"]

logger = logging.getLogger("coze_async.ratelimit")


class _Bucket:
    __slots__ = ("limit", "name", "paused_until", "pending", "period", "queue", "stamps", "window")

    def __init__(self, name: str, limit: int, period: float, margin: float) -> None:
        self.name = name
        self.limit = limit
        self.period = period
        self.window = period * (1.0 + margin)  # the period widened by the jitter margin
        # Times of the calls counted in the window, oldest first (appended at "now", so
        # sorted); trimmed lazily.
        self.stamps: deque[float] = deque()
        # Granted calls whose send time is not known yet: they count as inside the window.
        self.pending = 0
        self.queue: deque[_Waiter] = deque()
        self.paused_until = float("-inf")

    def ready_at(self, now: float) -> float:
        """When the next grant may happen; ``inf`` when only a pending call's commit can tell."""
        stamps = self.stamps
        window = self.window
        while stamps and stamps[0] + window <= now:
            stamps.popleft()
        excess = self.pending + len(stamps) - self.limit
        t = self.paused_until
        if excess >= 0:
            # Room comes back when the (excess+1)-th oldest counted call leaves the window.
            t = max(t, stamps[excess] + window) if excess < len(stamps) else _INF
        return t

    def ready_after_grant(self) -> float:
        """:meth:`ready_at` as it would be after one more grant now (stamps already trimmed)."""
        stamps = self.stamps
        excess = self.pending + 1 + len(stamps) - self.limit
        t = self.paused_until
        if excess >= 0:
            t = max(t, stamps[excess] + self.window) if excess < len(stamps) else _INF
        return t


_INF = float("inf")


class _Waiter:
    __slots__ = ("buckets", "event")

    def __init__(self, buckets: tuple[_Bucket, ...]) -> None:
        self.buckets = buckets
        self.event = anyio.Event()


class Reservation:
    """Quota taken for one call whose send time is not known yet.

    The transport reserves before sending and calls :meth:`commit` the moment the request
    has been written (or, failing a hook for that, when the answer arrives): the call is then
    counted in the window from that moment. Until then it counts as "in the window now", so
    a call that waited for a pooled connection or a busy event loop after being granted is
    still counted where the server will see it.
    """

    __slots__ = ("_buckets", "_limiter", "waited")

    def __init__(self, limiter: Limiter, buckets: tuple[_Bucket, ...], waited: float) -> None:
        self._limiter = limiter
        self._buckets = buckets
        #: Seconds the call waited for the quota.
        self.waited = waited

    def commit(self) -> None:
        """Count the call as sent now. Idempotent."""
        buckets, self._buckets = self._buckets, ()
        if buckets:
            now = self._limiter._now()
            for b in buckets:
                b.pending -= 1
                b.stamps.append(now)
                if b.queue:
                    b.queue[0].event.set()


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

    def _buckets_for(self, names: Sequence[str]) -> tuple[_Bucket, ...]:
        try:
            return self._resolved[names]  # type: ignore[index]
        except (KeyError, TypeError):  # first use of this bucket set, or names is a list
            return self._resolve(names)

    async def acquire(self, names: Sequence[str], *, timeout: float | None = None) -> float:
        """Take one token from each named bucket, counted from now; return the seconds waited.

        Buckets the plan does not have are ignored. Raises :class:`LocalRateLimitError` when
        the tokens cannot be had within ``timeout`` seconds (nothing is taken then).
        """
        if self.budget is not None:
            await self.budget.charge()  # refuses before anything waits or is sent
        try:  # _buckets_for, inlined: this is the per-call hot path
            buckets = self._resolved[names]  # type: ignore[index]
        except (KeyError, TypeError):
            buckets = self._resolve(names)
        if not buckets:
            return 0.0
        now = self._now()
        # Fast path: nobody queued and every bucket has room now.
        for b in buckets:
            if (
                b.queue
                or b.paused_until > now
                or (b.pending + len(b.stamps) >= b.limit and b.ready_at(now) > now)
            ):
                break
        else:
            for b in buckets:
                b.stamps.append(now)
            return 0.0
        waited = await self._wait(buckets, now, timeout)
        Reservation(self, buckets, waited).commit()
        return waited

    async def reserve(self, names: Sequence[str], *, timeout: float | None = None) -> Reservation:
        """Like :meth:`acquire`, but the call is counted from :meth:`Reservation.commit`."""
        if self.budget is not None:
            await self.budget.charge()
        buckets = self._buckets_for(names)
        if not buckets:
            return Reservation(self, (), 0.0)
        now = self._now()
        for b in buckets:
            if (
                b.queue
                or b.paused_until > now
                or (b.pending + len(b.stamps) >= b.limit and b.ready_at(now) > now)
            ):
                waited = await self._wait(buckets, now, timeout)
                break
        else:
            for b in buckets:
                b.pending += 1
            return Reservation(self, buckets, 0.0)
        return Reservation(self, buckets, waited)

    async def _wait(
        self, buckets: tuple[_Bucket, ...], start: float, timeout: float | None
    ) -> float:
        # Returns with one token of each bucket held as pending (the caller commits it).
        waiter = _Waiter(buckets)
        for b in buckets:
            b.queue.append(waiter)
        deadline = _INF if timeout is None else start + timeout
        clock = self.clock
        names = "+".join(b.name for b in buckets)
        try:
            while True:
                now = clock.now()
                if all(b.queue[0] is waiter for b in buckets):
                    ready = max(b.ready_at(now) for b in buckets)
                    if ready <= now:
                        for b in buckets:
                            b.pending += 1
                        waited = now - start
                        logger.debug("waited %.3fs for %s", waited, names)
                        return waited
                    if deadline < ready < _INF:
                        raise LocalRateLimitError(
                            f"quota for {names} not available within {timeout} s "
                            f"(next slot in {ready - now:.3f} s)"
                        )
                    wake_at = min(ready, deadline)
                    self._pass_on(waiter, now)
                else:
                    ok, retry_at = self._can_backfill(waiter, now)
                    if ok:
                        for b in buckets:
                            b.pending += 1
                        waited = now - start
                        logger.debug("waited %.3fs for %s (ahead of blocked calls)", waited, names)
                        return waited
                    wake_at = min(retry_at, deadline)
                    self._pass_on(waiter, now)
                if now >= deadline:
                    raise LocalRateLimitError(
                        f"quota for {names} not available within {timeout} s "
                        "(queued behind other calls)"
                    )
                waiter.event = anyio.Event()
                await clock.wait(waiter.event, wake_at)
        finally:
            # Leave every queue (granted, cancelled or timed out) and let the new heads look.
            for b in buckets:
                b.queue.remove(waiter)
                if b.queue:
                    b.queue[0].event.set()

    @staticmethod
    def _can_backfill(waiter: _Waiter, now: float) -> tuple[bool, float]:
        """May ``waiter`` go ahead of the earlier waiters in its queues, now?

        Only when that cannot delay any of them: every earlier waiter is held back by another
        bucket (a chat waiting for the model RPM window must not hold up a retrieve that only
        needs the chat QPS bucket), and after this grant each shared bucket still has room by
        the time that earlier waiter could go. Returns ``(ok, when to look again)``; ``inf``
        means "when woken", because only another waiter's progress can change the answer.
        """
        buckets = waiter.buckets
        # The earliest moment any earlier waiter of each bucket could be served.
        limit_by: list[float] = []
        for b in buckets:
            b_ready = b.ready_at(now)
            earliest = _INF
            for earlier in b.queue:
                if earlier is waiter:
                    break
                e_ready = max(x.ready_at(now) for x in earlier.buckets)
                if e_ready <= now or e_ready == _INF or b_ready >= e_ready:
                    # It can go now, or its time is unknown, or this very bucket is what
                    # holds it: it goes first.
                    return False, _INF
                earliest = min(earliest, e_ready)
            limit_by.append(earliest)
        room_at = max(b.ready_at(now) for b in buckets)
        if room_at > now:
            return False, room_at  # no room for us yet; look again when there is
        for b, earliest in zip(buckets, limit_by, strict=True):
            if b.ready_after_grant() > earliest:
                return False, _INF  # our token would push an earlier waiter back
        return True, now

    @staticmethod
    def _pass_on(waiter: _Waiter, now: float) -> None:
        # ``waiter`` is not taking a bucket that has room: let the next waiter with a
        # different need look (the same need could not pass it anyway), so a call blocked
        # elsewhere does not hold up calls that only need this bucket.
        for b in waiter.buckets:
            if b.ready_at(now) > now:
                continue
            seen = False
            for other in b.queue:
                if other is waiter:
                    seen = True
                elif seen and other.buckets is not waiter.buckets:
                    other.event.set()
                    break

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
