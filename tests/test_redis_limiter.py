"""RedisLimiter against a real redis-server: windows, FIFO, pause, outages, several processes.

A session fixture starts ``redis-server`` on a free loopback port (CI installs it; the tests
skip, saying why, only where the binary is missing). Every test uses its own ``account`` so
the tests never see each other's keys.

Grant times are checked on Redis's own clock: right after each grant the test reads the
bucket's sorted set (member -> grant time in µs), so it sees every grant before it ages out.
The multi-process tests check what matters in the end instead: the arrival times the
emulator recorded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import redis.asyncio as redis_asyncio

from coze_async import (
    AsyncCoze,
    LimiterUnavailableError,
    LocalRateLimitError,
    Message,
    RetryPolicy,
)
from coze_async.emulator import ECHO_BOT_ID, Emulator
from coze_async.ratelimit import Bucket, Plan, RedisLimiter

from ._redis_worker import make_plan

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_redis_worker.py"


# The server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


#: No persistence: a test server starts empty and writes nothing to disk.
SERVER_OPTIONS = ("--save", "", "--appendonly", "no")


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: .ci/run installs it, so CI must run these tests")
        pytest.skip(reason)
    return binary


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [_redis_binary(), *("--port", str(port), "--bind", "127.0.0.1"), *SERVER_OPTIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Bounded polling of an external process: up to 10 s for the first PONG.
    deadline = time.monotonic() + 10
    while not _pings(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_redis(proc)
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.02)
    return proc


def _stop_redis(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    port = _free_port()
    proc = _start_redis(port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop_redis(proc)


@pytest.fixture
def account() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


Factory = Callable[..., RedisLimiter]


@pytest.fixture
async def limiter(redis_url: str, account: str) -> AsyncIterator[Factory]:
    """Makes RedisLimiters on the test's Redis and account (or ``url=``); closes them all."""
    made: list[RedisLimiter] = []

    def make(url: str = redis_url, **kwargs: Any) -> RedisLimiter:
        kwargs.setdefault("account", account)
        made.append(RedisLimiter(url, **kwargs))
        return made[-1]

    yield make
    for lim in made:
        await lim.aclose()


def _plan(*buckets: Bucket) -> Plan:
    return Plan(name="test", buckets=buckets)


class GrantLog:
    """Every grant of some buckets as Redis recorded it (member -> µs), read after each grant."""

    def __init__(self, raw: redis_asyncio.Redis, *keys: str) -> None:
        self.raw = raw
        self.seen: dict[str, dict[bytes, float]] = {key: {} for key in keys}

    async def snapshot(self) -> None:
        for key, seen in self.seen.items():
            for member, score in await self.raw.zrange(key, 0, -1, withscores=True):
                seen[member] = score

    def max_in_window(self, key: str, period: float) -> int:
        times = sorted(self.seen[key].values())
        span = period * 1_000_000
        best = start = 0
        for end, t in enumerate(times):
            while times[start] <= t - span:
                start += 1
            best = max(best, end - start + 1)
        return best


# Single process --------------------------------------------------------------------------------


async def test_window_never_exceeded_across_two_limiters(
    limiter: Factory, raw: redis_asyncio.Redis
) -> None:
    # Two limiters on one account stand for two processes; margin 0 tests the exact window.
    plan = _plan(Bucket("a", 4, 0.3), Bucket("b", 100, 1.0))
    limiters = [limiter(plan=plan, margin=0.0) for _ in "12"]
    a, b = limiters[0].key("a"), limiters[0].key("b")
    log = GrantLog(raw, a, b)

    async def call(i: int) -> None:
        await limiters[i % 2].acquire(("a", "b"))
        await log.snapshot()

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(call, i)
    elapsed = time.monotonic() - started
    assert len(log.seen[a]) == 20
    assert log.max_in_window(a, 0.3) == 4  # full windows, never more
    assert elapsed >= 4 * 0.3  # 20 grants at 4 per window need 5 windows: 4 waits
    # Both buckets were taken together, at the same instant (Redis's clock).
    assert log.seen[a] == log.seen[b]


async def test_fifo_within_a_process(limiter: Factory) -> None:
    lim = limiter(plan=_plan(Bucket("a", 2, 0.2)), margin=0.0)
    order: list[int] = []

    async def call(i: int) -> None:
        await lim.acquire(["a"])
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(call, i)  # tasks start, and so queue, in this order
    assert order == list(range(8))


async def test_timeout_takes_nothing(limiter: Factory, raw: redis_asyncio.Redis) -> None:
    lim = limiter(plan=_plan(Bucket("a", 1, 5.0)), margin=0.0)
    assert await lim.acquire(["a"]) == 0.0
    # The next slot is 5 s away: known to be too late at once, without waiting.
    with pytest.raises(LocalRateLimitError, match=r"within 0\.2 s"):
        await lim.acquire(["a"], timeout=0.2)
    assert await raw.zcard(lim.key("a")) == 1


async def test_a_reservation_is_pending_until_its_answer_then_counted_from_it(
    limiter: Factory, raw: redis_asyncio.Redis
) -> None:
    # The transport reserves, writes (commit), then gets the answer (done): until the answer
    # the call is pending, never trimmed, and then it is counted from the answer's time.
    lim = limiter(plan=_plan(Bucket("a", 5, 5.0)), margin=0.0)
    reservation = await lim.reserve(["a"])
    assert reservation.waited == 0.0
    assert await raw.zcard(lim.key("a")) == 0
    [(member, _)] = await raw.zrange(lim.key("a") + ":pending", 0, -1, withscores=True)
    [(now_s, now_us)] = [await raw.time()]
    granted_at = now_s * 1_000_000 + now_us
    reservation.commit()
    await anyio.sleep(0.05)  # the "wait for the answer" being modelled, not a wait for a result
    reservation.done()
    reservation.done()  # idempotent
    await lim.flush()
    assert await raw.zcard(lim.key("a") + ":pending") == 0
    [(same, counted_at)] = await raw.zrange(lim.key("a"), 0, -1, withscores=True)
    assert same == member
    assert counted_at - granted_at >= 40_000  # µs on Redis's clock


async def test_a_reservation_never_written_is_given_back(
    limiter: Factory, raw: redis_asyncio.Redis
) -> None:
    lim = limiter(plan=_plan(Bucket("a", 1, 5.0)), margin=0.0)
    (await lim.reserve(["a"])).done(traced=True)  # e.g. connection refused
    await lim.flush()
    assert await raw.zcard(lim.key("a")) == 0
    assert await raw.zcard(lim.key("a") + ":pending") == 0
    assert await lim.acquire(["a"], timeout=0.5) == 0.0  # the slot is free at once


async def test_timeout_while_queued_behind_another_task(limiter: Factory) -> None:
    lim = limiter(plan=_plan(Bucket("a", 1, 5.0)), margin=0.0)
    await lim.acquire(["a"])
    async with anyio.create_task_group() as tg:
        tg.start_soon(lim.acquire, ["a"])  # holds the queue, waiting 5 s
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(LocalRateLimitError, match="queued behind"):
            await lim.acquire(["a"], timeout=0.05)
        tg.cancel_scope.cancel()


async def test_cancelled_waiter_takes_nothing(limiter: Factory, raw: redis_asyncio.Redis) -> None:
    lim = limiter(plan=_plan(Bucket("a", 1, 0.5)), margin=0.0)
    await lim.acquire(["a"])
    with anyio.move_on_after(0.1) as scope:
        await lim.acquire(["a"])
    assert scope.cancelled_caught
    assert await raw.zcard(lim.key("a")) == 1  # only the first grant
    # The queue moved on: the next caller gets the slot when the window opens.
    waited = await lim.acquire(["a"], timeout=1.0)
    assert 0.2 < waited <= 0.5


async def test_pause_is_shared_between_limiters(limiter: Factory) -> None:
    plan = _plan(Bucket("a", 100, 1.0))
    first = limiter(plan=plan)
    second = limiter(plan=plan)
    first.pause(["a"], 0.5)
    await first.flush()  # the pause has reached Redis
    waited = await second.acquire(["a"], timeout=2.0)
    assert 0.3 < waited <= 0.6
    # Pauses only lengthen: a shorter one does not cut the running one.
    first.pause(["a"], 0.4)
    first.pause(["a"], 0.05)
    await first.flush()
    waited = await second.acquire(["a"], timeout=2.0)
    assert 0.25 < waited <= 0.5


async def test_accounts_do_not_share_limits(limiter: Factory) -> None:
    plan = _plan(Bucket("a", 1, 5.0))
    one = limiter(plan=plan, account="one")
    two = limiter(plan=plan, account="two")
    assert await one.acquire(["a"]) == 0.0
    assert await two.acquire(["a"]) == 0.0
    assert one.key("a") != two.key("a")


async def test_unknown_buckets_are_free(limiter: Factory) -> None:
    lim = limiter(plan=_plan(Bucket("a", 1, 5.0)))
    assert await lim.acquire([]) == 0.0
    assert await lim.acquire(["not-in-plan"]) == 0.0


async def test_survives_a_redis_restart(limiter: Factory) -> None:
    # Its own server: the limiter's kept connection dies and the restarted Redis has lost
    # the script; the next acquire reconnects and reloads it without an error.
    port = _free_port()
    proc = _start_redis(port)
    try:
        lim = limiter(f"redis://127.0.0.1:{port}/0", plan=_plan(Bucket("a", 5, 1.0)))
        assert await lim.acquire(["a"]) == 0.0
        _stop_redis(proc)
        proc = _start_redis(port)
        assert await lim.acquire(["a"]) == 0.0
    finally:
        _stop_redis(proc)


# Redis unreachable -----------------------------------------------------------------------------


async def test_unreachable_fails_closed_without_leaking_the_password() -> None:
    port = _free_port()  # nothing listens there
    lim = RedisLimiter(
        f"redis://admin:s3cret-pw@127.0.0.1:{port}/0", plan=_plan(Bucket("a", 5, 1.0))
    )
    with pytest.raises(LimiterUnavailableError) as info:
        await lim.acquire(["a"])
    await lim.aclose()
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text
    assert "failing closed" in text
    assert "s3cret-pw" not in text and "admin" not in text
    assert "s3cret-pw" not in repr(lim)
    assert isinstance(info.value, LocalRateLimitError)


async def test_silent_server_times_out_and_fails_closed() -> None:
    # A socket that accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        lim = RedisLimiter(
            f"redis://127.0.0.1:{port}/0", plan=_plan(Bucket("a", 5, 1.0)), socket_timeout=0.2
        )
        started = time.monotonic()
        with pytest.raises(LimiterUnavailableError, match=r"no answer within 0\.2 s"):
            await lim.acquire(["a"])
        assert time.monotonic() - started < 2.0
        await lim.aclose()


async def test_unreachable_fail_closed_sends_nothing(emu: Emulator) -> None:
    lim = RedisLimiter(f"redis://:pw@127.0.0.1:{_free_port()}/0")
    async with AsyncCoze(
        token=emu.token, base_url=emu.url, plan=Plan.PERSONAL_FREE, limiter=lim
    ) as coze:
        with pytest.raises(LimiterUnavailableError):
            await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")])
    assert [r for r in emu.requests if r.path == "/v3/chat"] == []


async def test_unreachable_falls_back_to_local(caplog: pytest.LogCaptureFixture) -> None:
    lim = RedisLimiter(
        f"redis://:s3cret-pw@127.0.0.1:{_free_port()}/0",
        plan=_plan(Bucket("a", 2, 0.3)),
        margin=0.0,
        on_unavailable="local",
    )
    with caplog.at_level(logging.WARNING, logger="coze_async.ratelimit"):
        try:
            assert await lim.acquire(["a"]) == 0.0
            assert await lim.acquire(["a"]) == 0.0
            waited = await lim.acquire(["a"])  # the in-process limiter still enforces the plan
        finally:
            await lim.aclose()
    assert 0.25 < waited <= 0.35
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per outage, not once per call
    assert "in-process limiter" in warnings[0].getMessage()
    assert "s3cret-pw" not in caplog.text


def test_core_import_does_not_need_redis() -> None:
    code = (
        "import sys\n"
        "import coze_async, coze_async.ratelimit\n"
        "assert 'redis' not in sys.modules, 'coze_async imported redis'\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "from coze_async.ratelimit import RedisLimiter\n"
        "try:\n"
        "    RedisLimiter()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert "coze-async[redis]" in out.stdout


# Several processes -----------------------------------------------------------------------------


class Worker:
    """A ``tests/_redis_worker.py`` process and its line protocol."""

    def __init__(self, proc: anyio.abc.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self._buffer = b""
        self.lines: list[str] = []

    async def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """The next stdout line starting with ``prefix`` (bounded: a hung worker fails)."""
        assert self.proc.stdout is not None
        with anyio.fail_after(timeout):
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    text = line.decode()
                    self.lines.append(text)
                    if text.startswith(prefix):
                        return text
                chunk = await self.proc.stdout.receive()
                self._buffer += chunk

    async def go(self) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send(b"go\n")


async def _start_worker(
    redis_url: str, account: str, emu: Emulator, *, chat_qps: int, period: float, margin: float,
    calls: int,
) -> Worker:  # fmt: skip
    proc = await anyio.open_process(
        [
            sys.executable,
            str(WORKER),
            *("--redis", redis_url, "--account", account, "--emulator", emu.url),
            *("--token", emu.token, "--chat-qps", str(chat_qps), "--period", str(period)),
            *("--margin", str(margin), "--calls", str(calls)),
        ],
        stderr=None,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return Worker(proc)


async def test_four_processes_never_exceed_the_window(redis_url: str, account: str) -> None:
    qps, calls_each, n_workers = 8, 6, 4
    # 20 % margin: the grant happens in the worker, the window is checked where the request
    # lands; the margin absorbs the scheduling delays of five busy processes on a small box.
    margin = 0.2
    plan = make_plan(qps, 1.0)
    async with Emulator(plan=plan) as emu:
        workers = [
            await _start_worker(
                redis_url, account, emu, chat_qps=qps, period=1.0, margin=margin, calls=calls_each
            )
            for _ in range(n_workers)
        ]
        try:
            for w in workers:
                await w.expect("READY")
            started = time.monotonic()
            for w in workers:
                await w.go()
            results = [json.loads((await w.expect("DONE")).split(" ", 1)[1]) for w in workers]
            elapsed = time.monotonic() - started
            for w in workers:
                assert await w.proc.wait() == 0
        finally:
            for w in workers:
                if w.proc.returncode is None:
                    w.proc.kill()
                    await w.proc.wait()
        quota = emu.quota
        assert quota is not None
        total = n_workers * calls_each
        assert [r["errors"] for r in results] == [[]] * n_workers
        assert sum(r["ok"] for r in results) == total
        stats = quota.stats["chat"]
        assert (stats.accepted, stats.rejected) == (total, 0)
        # Never more than the limit in any 1 s window, and the windows were used in full.
        assert quota.max_in_window("chat") == qps
        # 24 calls at 8 per window: two full waits of one (widened) window.
        assert elapsed >= 2 * 1.0


async def test_killed_process_leaves_no_stuck_reservation(
    redis_url: str, raw: redis_asyncio.Redis, account: str
) -> None:
    qps, period, margin = 3, 2.0, 0.1
    window = period * (1 + margin)
    plan = make_plan(qps, period)
    async with Emulator(plan=plan) as emu:
        worker = await _start_worker(
            redis_url, account, emu, chat_qps=qps, period=period, margin=margin, calls=5
        )
        try:
            instance = (await worker.expect("READY")).split(" ", 1)[1]
            lim = RedisLimiter(redis_url, account=account, margin=margin)
            async with AsyncCoze(
                token=emu.token, base_url=emu.url, plan=plan, limiter=lim, retry=RetryPolicy.none()
            ) as coze:

                async def chat() -> None:
                    await coze.chat.create(
                        bot_id=ECHO_BOT_ID, user_id="t", messages=[Message.user("a")]
                    )

                # Fill the window, then let the worker queue five calls behind it.
                filled = time.monotonic()
                for _ in range(qps):
                    await chat()
                await worker.go()
                await worker.expect("WAITING")
                worker.proc.send_signal(signal.SIGKILL)
                assert await worker.proc.wait() == -signal.SIGKILL
                assert not any(line.startswith("DONE") for line in worker.lines)
                # The dead process holds nothing: the whole next window is ours, on time.
                await lim.flush()  # our own calls' answers have been placed in Redis
                assert await raw.zcard(lim.key("chat")) == qps
                assert await raw.zcard(lim.key("chat") + ":pending") == 0
                members = await raw.zrange(lim.key("chat"), 0, -1)
                assert not [m for m in members if m.decode().startswith(instance)]
                with anyio.fail_after(window + 1.0):
                    async with anyio.create_task_group() as tg:
                        for _ in range(qps):
                            tg.start_soon(chat)
                done = time.monotonic()
        finally:
            if worker.proc.returncode is None:
                worker.proc.kill()
                await worker.proc.wait()
        assert done - filled <= window + 0.5
        quota = emu.quota
        assert quota is not None
        assert (quota.stats["chat"].accepted, quota.stats["chat"].rejected) == (2 * qps, 0)
        assert quota.max_in_window("chat") == qps
