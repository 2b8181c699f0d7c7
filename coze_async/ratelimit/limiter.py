"""The in-process quota limiter: strict sliding windows, multi-bucket, FIFO, cancellation-safe.

Algorithm: each bucket keeps the times of its last ``limit`` counted calls (a sliding log).
A grant at time ``t`` is allowed when fewer than ``limit`` calls are counted in
``(t - period, t]``. This is exact: no window of length ``period`` ever holds more than
``limit`` calls, which a token bucket cannot promise (a full bucket plus its refill lets
``burst + rate * period`` through). ``margin`` widens every window a little more.

When is a call counted? The server counts it when it arrives, and that moment is only known
to lie between the write of the request and the arrival of its answer: under a burst the
server may take hundreds of milliseconds to get to a request, longer than any fixed margin
(issue 12, item 9). So the transport reserves quota, tells the reservation when the request
is written (aiohttp's "headers sent" hook) and again when the answer's headers arrive or the
attempt fails; the call is counted from the answer, the latest moment the server can have
counted it. Until then it counts as inside the window. Whatever the delays, no window of the
server then holds more than ``limit`` calls (a call that leaves the server's window leaves
ours no earlier); what that costs is the time from the server's count to the answer, about
one round trip per window. A call whose answer takes longer than :data:`SETTLE_AFTER`
after its write (a synchronous workflow run, a large upload) is counted from that moment, so
a long call does not hold its slot until it ends. A call never written (connection refused)
gives its slot back.

A call that needs several buckets (a chat needs the chat QPS bucket and the model RPM bucket)
takes one token from each at the same instant or waits for all of them. Waiters queue in each
bucket they need, in arrival order, and are served first come, first served. One exception
keeps a blocked call from blocking others: a later waiter may go ahead of earlier ones when
every one of them is held back by another bucket and its grant cannot delay any of them (a
retrieve, which needs only the chat QPS bucket, does not wait a minute behind chats that wait
for the model RPM window). Calls with the same needs are always served in arrival order, and
no waiter can starve. A cancelled (or timed-out) waiter leaves its queues having taken
nothing, and the waiters behind it move up.

A lifetime :class:`~coze_async.ratelimit.CallBudget` is charged once a call has its quota,
before it is sent, and refunded if the call is then never written: calls that time out or
are cancelled in the wait, or fail to connect, cost nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from ..errors import InvalidArgumentError, LocalRateLimitError
from .budget import CallBudget
from .clock import Clock, LoopClock
from .plans import Plan

__all__ = ["SETTLE_AFTER", "Limiter", "Reservation"]

logger = logging.getLogger("coze_async.ratelimit")

#: Seconds after its request was written by which the server has surely counted a call: a
#: call whose answer takes longer is counted from this moment instead of from its answer.
SETTLE_AFTER = 1.0

_INF = float("inf")


class _Held:
    """A written call of one bucket, not answered yet: counted as arriving by ``until``."""

    __slots__ = ("alive", "until")

    def __init__(self, until: float) -> None:
        self.until = until
        self.alive = True


class _Bucket:
    __slots__ = (
        "limit",
        "live",
        "name",
        "paused_until",
        "period",
        "queue",
        "stamps",
        "unwritten",
        "window",
        "written",
    )

    def __init__(self, name: str, limit: int, period: float, margin: float) -> None:
        self.name = name
        self.limit = limit
        self.period = period
        self.window = period * (1.0 + margin)  # the period widened by the margin
        # Times the calls were counted from, oldest first; trimmed lazily.
        self.stamps: deque[float] = deque()
        # Granted calls not written yet: inside the window for as long as that lasts.
        self.unwritten = 0
        # Written calls waiting for their answer, in write order (so by ``until``); ``live``
        # of them still count (the others were answered or have left the window).
        self.written: deque[_Held] = deque()
        self.live = 0
        self.queue: deque[_Waiter] = deque()
        self.paused_until = float("-inf")

    def count(self) -> int:
        """Calls counted in the window or not placed yet (untrimmed)."""
        return self.unwritten + self.live + len(self.stamps)

    def trim(self, now: float) -> None:
        """Forget the calls that have left the window."""
        stamps = self.stamps
        window = self.window
        while stamps and stamps[0] + window <= now:
            stamps.popleft()
        written = self.written
        while written and (not written[0].alive or written[0].until + window <= now):
            held = written.popleft()
            if held.alive:  # unanswered for so long that it counts from `until`, now gone
                held.alive = False
                self.live -= 1

    def _free_at(self, k: int) -> float:
        # When the (k+1)-th earliest counted call leaves the window: stamps leave at
        # stamp + window, unanswered written calls at until + window at the latest, unwritten
        # ones at an unknown time (inf: only their progress can tell, and it wakes us).
        stamps = self.stamps
        if k >= len(stamps) + self.live:
            return _INF
        held = (h.until for h in self.written if h.alive)
        nxt = next(held, _INF)
        i = 0
        value = _INF
        n = len(stamps)
        for _ in range(k + 1):
            s = stamps[i] if i < n else _INF
            if s <= nxt:
                value = s
                i += 1
            else:
                value = nxt
                nxt = next(held, _INF)
        return value + self.window

    def ready_at(self, now: float) -> float:
        """When the next grant may happen; ``inf`` when only a pending call can tell."""
        self.trim(now)
        excess = self.count() - self.limit
        t = self.paused_until
        if excess >= 0:
            t = max(t, self._free_at(excess))
        return t

    def ready_after_grant(self) -> float:
        """:meth:`ready_at` as it would be after one more grant now (already trimmed)."""
        excess = self.count() + 1 - self.limit
        t = self.paused_until
        if excess >= 0:
            t = max(t, self._free_at(excess))
        return t

    def add_stamp(self, t: float) -> None:
        stamps = self.stamps
        if not stamps or stamps[-1] <= t:
            stamps.append(t)
        else:  # counted from before the latest stamps (a long call): keep the log sorted
            stamps.insert(bisect.bisect_right(stamps, t), t)

    def wake(self) -> None:
        if self.queue:
            self.queue[0].event.set()


class _Waiter:
    __slots__ = ("buckets", "event")

    def __init__(self, buckets: tuple[_Bucket, ...]) -> None:
        self.buckets = buckets
        self.event = anyio.Event()


_RESERVED, _WRITTEN, _DONE = 0, 1, 2


class Reservation:
    """Quota taken for one call whose arrival at the server is not known yet.

    The transport calls :meth:`commit` the moment the request is written and :meth:`done`
    when its answer's headers arrive or the attempt fails. Until then the call counts as
    inside the window; after :meth:`done` it is counted from the answer (the latest moment
    the server can have counted it), or from :data:`SETTLE_AFTER` after the write if the
    answer took longer. A call that was never written gives its quota (and its lifetime
    budget charge) back.
    """

    __slots__ = ("_buckets", "_charged", "_held", "_limiter", "_state", "waited")

    def __init__(self, limiter: Limiter, buckets: tuple[_Bucket, ...], waited: float) -> None:
        self._limiter = limiter
        self._buckets = buckets
        self._held: tuple[_Held, ...] = ()
        self._state = _RESERVED
        self._charged = False
        #: Seconds the call waited for the quota.
        self.waited = waited

    def commit(self) -> None:
        """The request is being written now. Idempotent."""
        if self._state != _RESERVED:
            return
        self._state = _WRITTEN
        until = self._limiter._now() + self._limiter.settle_after
        held = []
        for b in self._buckets:
            b.unwritten -= 1
            h = _Held(until)
            b.written.append(h)
            b.live += 1
            held.append(h)
            b.wake()  # its leaving time is known now: waiters may look again
        self._held = tuple(held)

    def done(self, *, traced: bool = False) -> None:
        """The answer's headers arrived, or the attempt ended. Idempotent.

        ``traced``: :meth:`commit` would have been called had the request been written (the
        transport's own session has the hook), so an uncommitted call was never sent and
        gives its quota and budget charge back. Otherwise an uncommitted call may have been
        sent and is counted from now.
        """
        state, self._state = self._state, _DONE
        if state == _DONE:
            return
        now = self._limiter._now()
        if state == _RESERVED:
            for b in self._buckets:
                b.unwritten -= 1
                if not traced:
                    b.add_stamp(now)
                b.wake()
            if traced and self._charged:
                self._charged = False
                self._limiter._refund()
            return
        for b, h in zip(self._buckets, self._held, strict=True):
            if h.alive:
                h.alive = False
                b.live -= 1
                t = min(now, h.until)
                if t + b.window > now:
                    b.add_stamp(t)
            b.wake()


class Limiter:
    """Client-side enforcement of a :class:`Plan`'s limits, for all tasks of one process.

    ``acquire(["chat", "model_rpm"])`` returns once a token of each named bucket is taken,
    with the seconds it waited; :meth:`reserve` is what the transport uses, counting each
    call from its answer (see the module docstring). ``margin`` is a fraction of each
    bucket's period added to its window (default 0: every quota second is usable), slack
    for a server whose windows are not exact sliding windows; the network's delays need no
    margin, since a call is counted from its answer. ``settle_after`` is
    :data:`SETTLE_AFTER`. ``clock`` is injectable for tests. ``budget`` (e.g.
    :class:`FileCallBudget`) counts every call sent against a lifetime allowance (the free
    plan's 500 calls) and refuses calls before the account would be locked.
    """

    def __init__(
        self,
        plan: Plan | None = None,
        *,
        margin: float = 0.0,
        clock: Clock | None = None,
        budget: CallBudget | None = None,
        settle_after: float = SETTLE_AFTER,
    ) -> None:
        if margin < 0:
            raise InvalidArgumentError("margin must be >= 0")
        if not settle_after > 0:
            raise InvalidArgumentError("settle_after must be > 0")
        self.budget = budget
        self.margin = margin
        self.settle_after = settle_after
        # Refunds being written, and charges still running whose call was abandoned.
        self._refunds: set[asyncio.Future[Any]] = set()
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
            reservation = await self.reserve(names, timeout=timeout)
            reservation.done()  # counted from now, as acquire promises
            return reservation.waited
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
                or (b.unwritten + b.live + len(b.stamps) >= b.limit and b.ready_at(now) > now)
            ):
                break
        else:
            for b in buckets:
                b.stamps.append(now)
            return 0.0
        waited = await self._wait(buckets, now, timeout)
        Reservation(self, buckets, waited).done()
        return waited

    async def reserve(self, names: Sequence[str], *, timeout: float | None = None) -> Reservation:
        """Like :meth:`acquire`, but the call is placed by :meth:`Reservation.commit` (the
        request is written) and :meth:`Reservation.done` (its answer arrived).

        With a budget, the call is charged once it has its quota; a refusal (or a budget
        error) gives the quota back and raises.
        """
        buckets = self._buckets_for(names)
        now = self._now()
        waited = 0.0
        for b in buckets:
            if (
                b.queue
                or b.paused_until > now
                or (b.unwritten + b.live + len(b.stamps) >= b.limit and b.ready_at(now) > now)
            ):
                waited = await self._wait(buckets, now, timeout)
                break
        else:
            for b in buckets:
                b.unwritten += 1
        reservation = Reservation(self, buckets, waited)
        if self.budget is not None:
            try:
                await self._charge(self.budget)
            except BaseException:
                reservation.done(traced=True)  # not sent: the quota goes back
                raise
            reservation._charged = True
        return reservation

    async def _charge(self, budget: CallBudget) -> None:
        # In a task of its own: a caller cancelled while the charge runs (file locking in a
        # worker thread) must not leave a charge for a call that is never sent.
        task = asyncio.ensure_future(budget.charge())
        try:
            await asyncio.shield(task)
        except BaseException:
            if task.done():
                if not task.cancelled() and task.exception() is None:
                    self._refund()
            else:
                # Still charging: refund once it is done (flush() waits for both steps).
                self._refunds.add(task)
                task.add_done_callback(self._refunds.discard)
                task.add_done_callback(self._refund_if_charged)
            raise

    def _refund_if_charged(self, task: asyncio.Future[int]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._refund()

    def _refund(self) -> None:
        """Give one budget charge back, in the background (the caller is in a finally)."""
        budget = self.budget
        refund = getattr(budget, "refund", None)
        if refund is None:
            return  # a budget that cannot refund keeps the charge: it errs on the safe side
        task = asyncio.get_running_loop().create_task(self._run_refund(refund))
        self._refunds.add(task)
        task.add_done_callback(self._refunds.discard)

    async def _run_refund(self, refund: Callable[[], Awaitable[object]]) -> None:
        try:
            await refund()
        except Exception as exc:  # the call stays counted: the safe side
            logger.warning("could not refund a lifetime budget charge (%s)", exc)

    async def flush(self) -> None:
        """Wait until the budget refunds of unsent calls have been written."""
        while self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)

    async def _wait(
        self, buckets: tuple[_Bucket, ...], start: float, timeout: float | None
    ) -> float:
        # Returns with one token of each bucket held as unwritten (the caller places it).
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
                            b.unwritten += 1
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
                            b.unwritten += 1
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
        """Finish the budget refunds still being written (nothing else to release)."""
        with anyio.move_on_after(5, shield=True):
            await self.flush()
