"""Clocks for the limiter: the event loop's clock, and a fake one for tests.

The limiter never calls ``time`` or ``sleep`` directly; it asks its clock for ``now()`` and
waits with ``wait(event, deadline)``, so tests can drive time by hand and see exactly when
each waiter is let through.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "LoopClock"]


class Clock(Protocol):
    """What the limiter needs from a clock."""

    def now(self) -> float:
        """Current time in seconds (monotonic)."""
        ...

    async def wait(self, event: anyio.Event, deadline: float) -> None:
        """Return when ``event`` is set or ``deadline`` (a ``now()`` value) has passed."""
        ...


class LoopClock:
    """The real monotonic clock (``time.monotonic``, which is also asyncio's ``loop.time``).

    Waits are relative (``deadline - now()``), so it works the same on any anyio backend.
    """

    # A plain function: an uncontended acquire reads the clock once, and looking the backend
    # up through anyio.current_time() would cost more than the rest of the acquire.
    now = staticmethod(time.monotonic)

    async def wait(self, event: anyio.Event, deadline: float) -> None:
        """Wait for ``event`` at most until ``deadline``."""
        delay = deadline - time.monotonic()
        if delay <= 0:
            return
        with anyio.move_on_after(delay if math.isfinite(delay) else None):
            await event.wait()


class FakeClock:
    """A clock that moves only when :meth:`advance` is called. For unit tests.

    ``wait`` parks the caller until its event is set or ``advance`` moves time past its
    deadline; ``await clock.settle()`` lets every runnable task run before the test goes on.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        """The fake current time."""
        return self._now

    async def wait(self, event: anyio.Event, deadline: float) -> None:
        """Park until ``event`` is set or fake time reaches ``deadline``."""
        if deadline <= self._now:
            return
        if math.isfinite(deadline):
            heapq.heappush(self._timers, (deadline, next(self._seq), event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward, waking the waiters whose deadline has come."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        while self._timers and self._timers[0][0] <= self._now:
            _, _, event = heapq.heappop(self._timers)
            event.set()

    @staticmethod
    async def settle(rounds: int = 20) -> None:
        """Yield to the event loop enough times for woken tasks to run to their next wait."""
        for _ in range(rounds):
            await anyio.lowlevel.checkpoint()
