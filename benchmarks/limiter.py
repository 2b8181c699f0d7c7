"""Rate limiters compared: cost of an acquire, exactness at saturation, fairness.

Usage::

    python benchmarks/limiter.py [--redis-url URL] [--duration S] [--json PATH] [--check]
    python benchmarks/limiter.py --burst-only [--burst-runs 5] [--burst-streams 1000]

Implementations, each driven the way its documentation shows for asyncio code:

* ``ours in-process``: :class:`coze_async.ratelimit.Limiter` with ``margin=0`` (the default
  5 % widens every window; the benchmark measures the exact window), ``await
  limiter.acquire(("x",))``.
* ``ours Redis``: :class:`coze_async.ratelimit.RedisLimiter` on a loopback ``redis-server``
  (started by this script unless ``--redis-url`` is given), ``margin=0``, same call. One Lua
  script per attempt, Redis's clock.
* ``aiolimiter``: ``AsyncLimiter(limit, period)``, ``await limiter.acquire()`` (a leaky
  bucket: it lets a full bucket through and then drains, so a window may see up to twice the
  limit; it does not claim sliding-window exactness).
* ``pyrate-limiter``: ``Limiter(InMemoryBucket([Rate(limit, period_ms)]))``, ``await
  limiter.try_acquire_async("x", blocking=True)`` (a sliding-window log; blocked callers
  sleep and retry).
* ``limits``: ``limits.aio.strategies.MovingWindowRateLimiter`` on ``limits.aio.storage.
  MemoryStorage``. ``limits`` has no blocking acquire, so a caller loops ``hit()``; when it
  is refused it reads ``get_window_stats().reset_time`` and sleeps until then (the pattern
  its docs suggest). Its windows are whole seconds.

What is measured:

1. ``µs per uncontended acquire``: one task calls acquire ``--uncontended`` times in a
   loop, with a limit high enough never to wait; best of 3 runs (fresh limiter each run,
   gc off). The ``await`` of a no-op coroutine is shown as the floor. For Redis the same
   loop is timed per call (p50/p99 latency on loopback).
2. ``saturation``: ``--tasks`` (2,000) tasks race a ``--qps`` (100) limit for
   ``--duration`` (10) s, each looping acquire. Reported: grants, the achieved rate (grants
   / duration; a strict sliding window allows exactly ``qps x duration`` from an empty
   start), and the most grants found in any sliding 1 s window ``(t - 1, t]`` of the grant
   times (violation = more than ``qps``). Grant times are the event loop's clock when
   acquire returned; for ``ours Redis`` also the grant times on Redis's clock (read from the
   bucket's sorted set every 200 ms, before any grant ages out), which is the clock the
   guarantee is made on. The client-clock count of the Redis limiter can exceed the limit
   by the jitter of the Redis round trip with ``margin=0``; that jitter is what ``margin``
   absorbs in production.
3. ``FIFO``: a limit of ``--fifo-limit`` (500) per second is used up, then ``--waiters``
   (1,000) tasks call acquire in a known order; spread = how far the grant order departs
   from the arrival order (max and mean of ``|grant rank - arrival rank|``; 0 = FIFO).

4. ``flagship burst``: the whole SDK path, as issue 12 item 9 reported it.
   ``AsyncCoze(plan=Plan.ENTERPRISE_FLAGSHIP)`` (its default limiter; one connection per
   stream) opens ``--burst-streams`` (1,000) chat streams at once against
   ``Emulator(plan=Plan.ENTERPRISE_FLAGSHIP)`` (500 chat QPS: two full windows) in a process
   of its own, ``--burst-runs`` (5) times, each with a fresh emulator and client. Reported
   per run: the server's rejections, the most chats it saw in any 1 s window, how much later
   the limiter counted each chat from than the server did (``late``: mean of counted-from
   minus arrival, one machine, one monotonic clock), and the share of the quota used,
   ``period / (window + late)``: a saturated client holds each slot for ``window`` from the
   time it counts a call from, the server for ``period`` from its arrival, so this is the
   part of the server's capacity the limiter lets a saturated client use.

Targets (PASS/MISS; ``--check`` exits 1 on a MISS): in-process uncontended acquire <= 1 µs;
zero window violations for ours (in-process on the loop clock, Redis on Redis's clock);
>= 99 % of the limit achieved at saturation by ours; Redis acquire p50 <= 250 µs on
loopback; flagship burst: 0 rejections in every run and >= 98 % of the quota used (mean of
the runs). Optional libraries that are not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import platform
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, cast

try:
    import coze_async  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from coze_async.ratelimit import Bucket, Limiter, Plan

NOTES: list[str] = []
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "limiter.json"
ROOT = Path(__file__).resolve().parent.parent
NAMES = ("x",)

TARGET_UNCONTENDED_US = 1.0
TARGET_RATE_FRACTION = 0.99
TARGET_REDIS_P50_US = 250.0
TARGET_BURST_SHARE = 0.98


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# The implementations -----------------------------------------------------------------------


class Impl:
    """One limiter under test, configured for ``limit`` grants per ``period`` seconds."""

    name = ""
    how = ""

    def __init__(self, limit: int, period: float) -> None:
        raise NotImplementedError

    async def acquire(self) -> None:
        raise NotImplementedError

    async def loop(self, n: int) -> None:
        """``n`` acquires in the library's own calling style (the uncontended timing)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release the limiter's resources."""


class OursLocal(Impl):
    name = "ours in-process"
    how = "Limiter(plan, margin=0); await acquire(('x',))"

    def __init__(self, limit: int, period: float) -> None:
        plan = Plan(name="bench", buckets=(Bucket("x", limit, period),))
        self.lim = Limiter(plan, margin=0.0)

    async def acquire(self) -> None:
        await self.lim.acquire(NAMES)

    async def loop(self, n: int) -> None:
        acquire, names = self.lim.acquire, NAMES
        for _ in range(n):
            await acquire(names)


class OursRedis(Impl):
    name = "ours Redis"
    how = "RedisLimiter(url, plan, margin=0); await acquire(('x',))"
    url = ""

    def __init__(self, limit: int, period: float) -> None:
        from coze_async.ratelimit import RedisLimiter

        plan = Plan(name="bench", buckets=(Bucket("x", limit, period),))
        self.lim = RedisLimiter(
            self.url, plan=plan, margin=0.0, account=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self._recorder: asyncio.Task[None] | None = None
        self.redis_grants: dict[bytes, float] = {}

    async def acquire(self) -> None:
        await self.lim.acquire(NAMES)

    async def loop(self, n: int) -> None:
        acquire, names = self.lim.acquire, NAMES
        for _ in range(n):
            await acquire(names)

    async def latencies(self, n: int) -> list[float]:
        acquire, names, clock = self.lim.acquire, NAMES, time.perf_counter
        out = []
        for _ in range(n):
            t0 = clock()
            await acquire(names)
            out.append(clock() - t0)
        return out

    def start_recording(self) -> None:
        """Read the bucket's grant log every 200 ms (grants stay in it for the 1 s window)."""
        import redis.asyncio

        async def snapshot(raw: redis.asyncio.Redis) -> None:
            log = await raw.zrange(self.lim.key("x"), 0, -1, withscores=True)
            for member, score in cast("list[tuple[bytes, float]]", log):
                self.redis_grants[member] = score / 1e6

        async def record() -> None:
            raw = redis.asyncio.Redis.from_url(self.url)
            try:
                while True:
                    await snapshot(raw)
                    await asyncio.sleep(0.2)
            finally:
                with suppress(Exception):
                    await snapshot(raw)  # the last grants, once the run is over
                await raw.aclose()

        self._recorder = asyncio.get_running_loop().create_task(record())

    async def stop_recording(self) -> list[float]:
        if self._recorder is not None:
            self._recorder.cancel()
            with suppress(asyncio.CancelledError):
                await self._recorder
        return sorted(self.redis_grants.values())

    async def aclose(self) -> None:
        await self.lim.aclose()


class AioLimiter(Impl):
    name = "aiolimiter"
    how = "AsyncLimiter(limit, period); await acquire()"

    def __init__(self, limit: int, period: float) -> None:
        from aiolimiter import AsyncLimiter

        self.lim = AsyncLimiter(limit, period)

    async def acquire(self) -> None:
        await self.lim.acquire()

    async def loop(self, n: int) -> None:
        acquire = self.lim.acquire
        for _ in range(n):
            await acquire()


class PyrateLimiter(Impl):
    name = "pyrate-limiter"
    how = "Limiter(InMemoryBucket([Rate])); await try_acquire_async('x', blocking=True)"

    def __init__(self, limit: int, period: float) -> None:
        from pyrate_limiter import InMemoryBucket, Limiter, Rate

        self.lim = Limiter(InMemoryBucket([Rate(limit, round(period * 1000))]))

    async def acquire(self) -> None:
        if not await self.lim.try_acquire_async("x", blocking=True):
            raise RuntimeError("pyrate-limiter refused a blocking acquire")

    async def loop(self, n: int) -> None:
        acquire = self.lim.try_acquire_async
        for _ in range(n):
            await acquire("x")

    async def aclose(self) -> None:
        self.lim.close()


class LimitsLib(Impl):
    name = "limits"
    how = "MovingWindowRateLimiter(MemoryStorage); loop hit(), sleep to reset_time"

    def __init__(self, limit: int, period: float) -> None:
        import limits
        from limits.aio.storage import MemoryStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        if period != int(period):
            raise ValueError("limits' windows are whole seconds")
        self.item = limits.RateLimitItemPerSecond(limit, int(period))
        self.storage = MemoryStorage()
        self.lim = MovingWindowRateLimiter(self.storage)

    async def acquire(self) -> None:
        lim, item = self.lim, self.item
        while not await lim.hit(item, "x"):
            stats = await lim.get_window_stats(item, "x")
            await asyncio.sleep(max(0.0, stats.reset_time - time.time()))

    async def loop(self, n: int) -> None:
        hit, item = self.lim.hit, self.item
        for _ in range(n):
            await hit(item, "x")

    async def aclose(self) -> None:
        timer = getattr(self.storage, "timer", None)
        if timer is not None:
            timer.cancel()
            with suppress(asyncio.CancelledError):
                await timer


# Redis server for the Redis row ------------------------------------------------------------


@contextmanager
def redis_server(url: str | None) -> Iterator[str | None]:
    """A Redis URL: the given one, or a private loopback ``redis-server`` (None if neither)."""
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        NOTES.append("ours Redis skipped: no --redis-url and no redis-server binary")
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # bounded polling of the external process until it answers PING
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# Measurements ------------------------------------------------------------------------------


async def _noop() -> None:
    return None


async def _noop_loop(n: int) -> None:
    for _ in range(n):
        await _noop()


async def time_uncontended(factory: Callable[[], Impl] | None, n: int, repeats: int) -> float:
    """Best µs per acquire over ``repeats`` runs (the no-op floor when ``factory`` is None)."""
    best = float("inf")
    for _ in range(repeats):
        impl = factory() if factory is not None else None
        run: Callable[[int], Awaitable[None]] = impl.loop if impl is not None else _noop_loop
        await run(min(n, 1000))  # warm-up (and, for Redis, connect)
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            await run(n)
            best = min(best, time.perf_counter() - t0)
        finally:
            gc.enable()
            if impl is not None:
                await impl.aclose()
    return best / n * 1e6


def max_in_window(times: Sequence[float], period: float = 1.0) -> int:
    """The most grants in any half-open window ``(t - period, t]``."""
    times = sorted(times)
    best = start = 0
    for end, t in enumerate(times):
        while times[start] <= t - period:
            start += 1
        best = max(best, end - start + 1)
    return best


async def saturate(impl: Impl, tasks: int, duration: float) -> list[float]:
    """``tasks`` tasks loop acquire for ``duration`` s; the loop-clock grant times."""
    loop = asyncio.get_running_loop()
    grants: list[float] = []
    end = loop.time() + duration

    async def worker() -> None:
        while True:
            await impl.acquire()
            now = loop.time()
            if now >= end:
                return
            grants.append(now)

    workers = [loop.create_task(worker()) for _ in range(tasks)]
    await asyncio.sleep(max(0.0, end - loop.time()))
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return grants


async def fifo(impl: Impl, limit: int, waiters: int, timeout: float) -> tuple[list[int], float]:
    """Use up the window, then ``waiters`` tasks queue in order; the grant order, seconds."""
    for _ in range(limit):
        await impl.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await impl.acquire()
        order.append(i)

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    # Tasks run in creation order, so waiter i calls acquire i-th.
    tasks = [loop.create_task(waiter(i)) for i in range(waiters)]
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return order, loop.time() - t0


# Flagship burst ------------------------------------------------------------------------------


@dataclass
class BurstRun:
    streams: int
    accepted: int
    rejected: int
    max_in_1s_window: int
    mean_late_ms: float | None  # counted from (client) minus arrival (server), mean
    quota_share: float | None
    seconds: float


# The emulator of one burst, in a process of its own (a server never shares the client's event
# loop; the same machine, so one monotonic clock). It prints its URL, then on "report" the
# arrival times of the chats it accepted and its counts, as one JSON line, and exits.
_BURST_SERVER = """
import asyncio, json, sys
from coze_async.emulator import Emulator
from coze_async.ratelimit import Plan

async def main():
    async with Emulator(plan=Plan.ENTERPRISE_FLAGSHIP) as emu:
        emu.record_requests = False
        print(emu.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        chat = emu.quota.stats["chat"]
        print(json.dumps({"accepted_at": chat.accepted_at, "rejected": chat.rejected,
                          "max_in_window": emu.quota.max_in_window("chat")}), flush=True)

asyncio.run(main())
"""


async def flagship_burst(streams: int) -> BurstRun:
    """``streams`` concurrent chat streams through the SDK against a flagship emulator."""
    from coze_async import AsyncCoze, Message, RateLimitError, RetryPolicy
    from coze_async.emulator import DEFAULT_TOKEN, ECHO_BOT_ID

    plan = Plan.ENTERPRISE_FLAGSHIP
    counted: list[float] = []  # when the limiter counted each chat from (its clock)

    class Placed:
        """Forwards to the limiter's reservation; notes when the call is counted from."""

        def __init__(self, inner: Any, now: Callable[[], float]) -> None:
            self.inner, self.now, self.waited = inner, now, inner.waited
            self.placed = False

        def commit(self) -> None:
            self.inner.commit()

        def done(self, *, traced: bool = False) -> None:
            if not self.placed:
                self.placed = True
                counted.append(self.now())
            self.inner.done(traced=traced)

    class Recording(Limiter):
        async def reserve(self, names: Sequence[str], *, timeout: float | None = None) -> Any:
            reservation = await super().reserve(names, timeout=timeout)
            return Placed(reservation, self.clock.now) if "chat" in names else reservation

    async def one(client: AsyncCoze, i: int) -> None:
        with suppress(RateLimitError):  # the emulator counts it
            async with client.chat.stream(
                bot_id=ECHO_BOT_ID, user_id=f"u{i}", messages=[Message.user("hi")]
            ) as stream:
                await stream.final()

    started = time.perf_counter()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BURST_SERVER,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert server.stdin is not None
    assert server.stdout is not None
    try:
        url = (await server.stdout.readline()).decode().strip()
        limiter = Recording(plan)
        async with AsyncCoze(
            token=DEFAULT_TOKEN,
            base_url=url,
            plan=plan,
            limiter=limiter,
            retry=RetryPolicy.none(),
            connection_limit=streams,  # every stream on its own connection, at once
        ) as client:
            await asyncio.gather(*(one(client, i) for i in range(streams)))
        server.stdin.write(b"report\n")
        await server.stdin.drain()
        report = json.loads(await server.stdout.readline())
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()
    arrivals: list[float] = report["accepted_at"]
    bucket = plan.bucket("chat")
    assert bucket is not None
    late = None
    share = None
    if len(counted) == len(arrivals) and arrivals:
        # The mean of (counted from - arrival) over the calls, whatever pairs them.
        late = (sum(counted) - sum(arrivals)) / len(arrivals)
        window = bucket.period * (1 + limiter.margin)
        share = bucket.period / (window + late)
    return BurstRun(
        streams=streams,
        accepted=len(arrivals),
        rejected=int(report["rejected"]),
        max_in_1s_window=int(report["max_in_window"]),
        mean_late_ms=None if late is None else late * 1000,
        quota_share=share,
        seconds=time.perf_counter() - started,
    )


async def run_bursts(runs: int, streams: int) -> list[BurstRun]:
    out = []
    for i in range(runs):
        out.append(await flagship_burst(streams))
        print(f"  flagship burst {i + 1}/{runs} done", file=sys.stderr)
    return out


def print_bursts(bursts: list[BurstRun]) -> dict[str, str]:
    streams = bursts[0].streams if bursts else 0
    print(
        f"\n5) Flagship burst: {streams:,} concurrent chat streams, AsyncCoze(plan="
        f"ENTERPRISE_FLAGSHIP) vs Emulator(plan=ENTERPRISE_FLAGSHIP), {len(bursts)} runs"
    )
    head = (
        f"{'run':>3} {'accepted':>9} {'rejected':>9} {'max/1s (server)':>16} "
        f"{'late ms':>8} {'quota used':>11} {'secs':>6}"
    )
    print(head)
    print("-" * len(head))
    for i, b in enumerate(bursts, 1):
        share = None if b.quota_share is None else 100 * b.quota_share
        print(
            f"{i:>3} {b.accepted:>9,} {b.rejected:>9,} {b.max_in_1s_window:>16} "
            f"{_fmt(b.mean_late_ms, '8.1f')} {_fmt(share, '10.1f')}% {b.seconds:>6.1f}"
        )
    shares = [b.quota_share for b in bursts if b.quota_share is not None]
    mean_share = sum(shares) / len(shares) if shares else None
    rejections = [b.rejected for b in bursts]
    print(
        f"rejections per run: {rejections}; quota used (mean): "
        f"{'-' if mean_share is None else f'{100 * mean_share:.1f}%'}"
    )
    return {
        "flagship burst: 0 rejections in every run": _verdict(bool(bursts) and not any(rejections)),
        ">= 98 % of the quota used in the flagship burst": _verdict(
            None if mean_share is None else mean_share >= TARGET_BURST_SHARE
        ),
    }


# Report ------------------------------------------------------------------------------------


@dataclass
class Row:
    implementation: str
    version: str | None
    driven_as: str
    uncontended_us: float | None = None
    saturation_grants: int | None = None
    saturation_rate: float | None = None
    saturation_fraction: float | None = None
    max_in_1s_window: int | None = None  # on the loop clock
    max_in_1s_window_grant_clock: int | None = None  # Redis's clock (Redis row only)
    violations: bool | None = None
    fifo_granted: int | None = None
    fifo_max_displacement: int | None = None
    fifo_mean_displacement: float | None = None
    fifo_seconds: float | None = None
    latency_us: dict[str, float] = field(default_factory=dict)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(rows: list[Row], floor_us: float, args: argparse.Namespace) -> dict[str, str]:
    print(
        f"\n1) Uncontended acquire (one task, limit never reached; best of {args.repeats}, "
        f"n={args.uncontended:,} in process, {args.redis_calls:,} for Redis)"
    )
    print(f"{'implementation':<18} {'µs/acquire':>11}  driven as")
    print(f"{'await no-op (floor)':<18} {floor_us:>11.3f}")
    for r in rows:
        print(f"{r.implementation:<18} {_fmt(r.uncontended_us, '11.3f')}  {r.driven_as}")

    print(
        f"\n2) Saturation: {args.tasks:,} tasks racing a {args.qps} QPS limit for "
        f"{args.duration:g} s (ideal: {args.qps * args.duration:,.0f} grants)"
    )
    head = (
        f"{'implementation':<18} {'grants':>7} {'rate/s':>8} {'% limit':>8} "
        f"{'max/1s (loop)':>14} {'max/1s (grant clock)':>21}  violations"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        percent = None if r.saturation_fraction is None else 100 * r.saturation_fraction
        print(
            f"{r.implementation:<18} {_fmt(r.saturation_grants, '7d')} "
            f"{_fmt(r.saturation_rate, '8.2f')} {_fmt(percent, '7.1f')}% "
            f"{_fmt(r.max_in_1s_window, '14d')} {_fmt(r.max_in_1s_window_grant_clock, '21d')}  "
            f"{'-' if r.violations is None else ('YES' if r.violations else 'no')}"
        )

    print(f"\n3) FIFO: {args.waiters:,} waiters queued behind a used-up {args.fifo_limit}/s window")
    head = f"{'implementation':<18} {'granted':>8} {'max |rank diff|':>16} {'mean':>8} {'secs':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.implementation:<18} {_fmt(r.fifo_granted, '8d')} "
            f"{_fmt(r.fifo_max_displacement, '16d')} {_fmt(r.fifo_mean_displacement, '8.1f')} "
            f"{_fmt(r.fifo_seconds, '6.2f')}"
        )

    local = next((r for r in rows if r.implementation == OursLocal.name), None)
    remote = next((r for r in rows if r.implementation == OursRedis.name), None)
    aio = next((r for r in rows if r.implementation == AioLimiter.name), None)
    if remote is not None and remote.latency_us:
        lat = remote.latency_us
        print(
            f"\n4) Redis acquire latency on loopback: p50 {lat['p50']:.0f} µs, "
            f"p90 {lat['p90']:.0f} µs, p99 {lat['p99']:.0f} µs, max {lat['max']:.0f} µs"
        )

    verdicts = {
        "in-process uncontended acquire <= 1 µs": _verdict(
            None
            if local is None or local.uncontended_us is None
            else local.uncontended_us <= TARGET_UNCONTENDED_US
        ),
        "zero window violations (ours in-process)": _verdict(
            None if local is None or local.violations is None else not local.violations
        ),
        "zero window violations (ours Redis, Redis clock)": _verdict(
            None
            if remote is None or remote.max_in_1s_window_grant_clock is None
            else remote.max_in_1s_window_grant_clock <= args.qps
        ),
        ">= 99 % of the limit at saturation (ours in-process)": _verdict(
            None
            if local is None or local.saturation_fraction is None
            else local.saturation_fraction >= TARGET_RATE_FRACTION
        ),
        ">= 99 % of the limit at saturation (ours Redis)": _verdict(
            None
            if remote is None or remote.saturation_fraction is None
            else remote.saturation_fraction >= TARGET_RATE_FRACTION
        ),
        "Redis acquire p50 <= 250 µs": _verdict(
            None
            if remote is None or not remote.latency_us
            else remote.latency_us["p50"] <= TARGET_REDIS_P50_US
        ),
    }
    print("\nTargets")
    for name, verdict in verdicts.items():
        print(f"  {verdict:<4}  {name}")
    if local is not None and aio is not None and local.uncontended_us and aio.uncontended_us:
        print(
            f"  info  in-process uncontended acquire vs aiolimiter: "
            f"{local.uncontended_us / aio.uncontended_us:.2f}x its time"
        )
    for note in NOTES:
        print(f"note: {note}")
    return verdicts


# Main --------------------------------------------------------------------------------------


def available() -> list[type[Impl]]:
    impls: list[type[Impl]] = [OursLocal]
    if OursRedis.url:
        impls.append(OursRedis)
    for cls, module, dist in (
        (AioLimiter, "aiolimiter", "aiolimiter"),
        (PyrateLimiter, "pyrate_limiter", "pyrate-limiter"),
        (LimitsLib, "limits", "limits"),
    ):
        try:
            __import__(module)
        except ImportError:
            NOTES.append(f"{cls.name} skipped: {dist} is not installed")
            continue
        impls.append(cls)
    return impls


VERSIONS = {
    OursLocal.name: "coze-async",
    OursRedis.name: "redis",
    AioLimiter.name: "aiolimiter",
    PyrateLimiter.name: "pyrate-limiter",
    LimitsLib.name: "limits",
}


async def run(args: argparse.Namespace) -> tuple[list[Row], float]:
    impls = available()
    rows = {cls.name: Row(cls.name, _version(VERSIONS[cls.name]), cls.how) for cls in impls}
    huge = 10**9

    floor = await time_uncontended(None, args.uncontended, args.repeats)
    for cls in impls:
        row = rows[cls.name]
        if cls is OursRedis:
            n = args.redis_calls
            remote = OursRedis(huge, 1.0)
            await remote.loop(200)  # connect and load the script
            lat = sorted(await remote.latencies(n))
            await remote.aclose()
            row.uncontended_us = sum(lat) / n * 1e6
            row.latency_us = {
                "p50": lat[n // 2] * 1e6,
                "p90": lat[int(n * 0.9)] * 1e6,
                "p99": lat[int(n * 0.99)] * 1e6,
                "max": lat[-1] * 1e6,
            }
        else:
            row.uncontended_us = await time_uncontended(
                functools.partial(cls, huge, 1.0), args.uncontended, args.repeats
            )
        print(f"  uncontended: {cls.name} done", file=sys.stderr)

    for cls in impls:
        row = rows[cls.name]
        impl = cls(args.qps, 1.0)
        if isinstance(impl, OursRedis):
            impl.start_recording()
        grants = await saturate(impl, args.tasks, args.duration)
        if isinstance(impl, OursRedis):
            row.max_in_1s_window_grant_clock = max_in_window(await impl.stop_recording())
        await impl.aclose()
        row.saturation_grants = len(grants)
        row.saturation_rate = len(grants) / args.duration
        row.saturation_fraction = len(grants) / (args.qps * args.duration)
        row.max_in_1s_window = max_in_window(grants)
        row.violations = (
            row.max_in_1s_window_grant_clock > args.qps
            if row.max_in_1s_window_grant_clock is not None
            else row.max_in_1s_window > args.qps
        )
        print(f"  saturation: {cls.name} done", file=sys.stderr)

    for cls in impls:
        row = rows[cls.name]
        impl = cls(args.fifo_limit, 1.0)
        order, seconds = await fifo(impl, args.fifo_limit, args.waiters, timeout=20.0)
        await impl.aclose()
        displacement = [abs(rank - i) for rank, i in enumerate(order)]
        row.fifo_granted = len(order)
        row.fifo_max_displacement = max(displacement, default=0)
        row.fifo_mean_displacement = sum(displacement) / len(displacement) if order else None
        row.fifo_seconds = seconds
        print(f"  FIFO: {cls.name} done", file=sys.stderr)
    return list(rows.values()), floor


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="use this Redis instead of starting redis-server")
    parser.add_argument("--duration", type=float, default=10.0, help="saturation run, seconds")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks in the saturation run")
    parser.add_argument("--qps", type=int, default=100, help="limit in the saturation run")
    parser.add_argument("--waiters", type=int, default=1000, help="tasks in the FIFO run")
    parser.add_argument("--fifo-limit", type=int, default=500, help="limit/s in the FIFO run")
    parser.add_argument("--uncontended", type=int, default=50_000, help="acquires per run")
    parser.add_argument("--redis-calls", type=int, default=3000, help="timed Redis acquires")
    parser.add_argument("--repeats", type=int, default=3, help="uncontended runs (best kept)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--burst-runs", type=int, default=5, help="flagship bursts (0: none)")
    parser.add_argument("--burst-streams", type=int, default=1000, help="streams per burst")
    parser.add_argument(
        "--burst-only", action="store_true", help="run the flagship burst only (sections 1-3 off)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rows: list[Row] = []
    floor = 0.0
    if not args.burst_only:
        have_redis_py = _version("redis") is not None
        if not have_redis_py:
            NOTES.append("ours Redis skipped: redis-py is not installed (coze-async[redis])")
        with redis_server(args.redis_url if have_redis_py else "") as url:
            OursRedis.url = url or ""
            rows, floor = asyncio.run(run(args))
    bursts = asyncio.run(run_bursts(args.burst_runs, args.burst_streams))
    elapsed = time.perf_counter() - started

    print(
        f"Limiter benchmark; Python {platform.python_version()}, {platform.machine()}, "
        f"{elapsed:.0f} s. ours uses margin=0 (exact windows), the default, throughout; the "
        "flagship burst (5) uses the client exactly as AsyncCoze(plan=...) builds it."
    )
    verdicts = print_report(rows, floor, args) if not args.burst_only else {}
    verdicts.update(print_bursts(bursts))

    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "limiter",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: _version(dist) for name, dist in VERSIONS.items()},
        "parameters": {
            "uncontended_acquires": args.uncontended,
            "redis_timed_acquires": args.redis_calls,
            "repeats": args.repeats,
            "saturation_tasks": args.tasks,
            "saturation_qps": args.qps,
            "saturation_seconds": args.duration,
            "fifo_waiters": args.waiters,
            "fifo_limit_per_s": args.fifo_limit,
            "ours_margin": 0.0,
            "burst_runs": args.burst_runs,
            "burst_streams": args.burst_streams,
            "burst_only": args.burst_only,
        },
        "await_noop_floor_us": floor,
        "targets": {
            "in_process_uncontended_us_max": TARGET_UNCONTENDED_US,
            "saturation_fraction_min": TARGET_RATE_FRACTION,
            "redis_p50_us_max": TARGET_REDIS_P50_US,
            "window_violations": 0,
            "flagship_burst_rejections": 0,
            "flagship_burst_quota_share_min": TARGET_BURST_SHARE,
        },
        "verdicts": verdicts,
        "notes": NOTES,
        "seconds": elapsed,
        "rows": [asdict(r) for r in rows],
        "flagship_burst": {
            "plan": Plan.ENTERPRISE_FLAGSHIP.name,
            "rejections_per_run": [b.rejected for b in bursts],
            "quota_share_per_run": [b.quota_share for b in bursts],
            "runs": [asdict(b) for b in bursts],
        },
    }
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {args.json}")
    return 1 if args.check and "MISS" in verdicts.values() else 0


if __name__ == "__main__":
    sys.exit(main())
