"""Issue 12, limiter part: budgets, optional imports, windows as the server sees them.

Every test asserts what a user notices: the typed error and its message, the calls the
emulator received, the count the budget file holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    CozeError,
    LocalRateLimitError,
    Message,
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    Timeouts,
    TransportError,
)
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator
from coze_async.ratelimit import FileCallBudget, Limiter, Plan, RedisLimiter

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


# Item 14: a corrupt budget file -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"calls": "many"}', "[1, 2]", '{"other": 1}', '{"calls": -3}', "\xff\xfe"],
)
async def test_a_corrupt_budget_file_raises_a_typed_error_naming_the_file(
    tmp_path: Path, content: str
) -> None:
    from coze_async.errors import BudgetFileError

    path = tmp_path / "calls.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    budget = FileCallBudget(path, limit=500)
    for attempt in (budget.used, budget.charge):
        with pytest.raises(BudgetFileError) as info:
            await attempt()
        assert isinstance(info.value, CozeError)
        assert str(path) in str(info.value)
        assert info.value.path == path
    assert path.read_bytes() == content.encode("utf-8", "surrogateescape")  # left for a human


# Item 15: no fcntl (Windows) --------------------------------------------------------------


def test_import_works_without_fcntl_and_the_file_budget_says_why_it_cannot() -> None:
    code = (
        "import sys\n"
        "sys.modules['fcntl'] = None  # as on Windows\n"
        "import coze_async, coze_async.ratelimit\n"
        "from coze_async import AsyncCoze, Plan\n"
        "from coze_async.errors import BudgetFileError\n"
        "from coze_async.ratelimit import FileCallBudget, Limiter\n"
        "Limiter(Plan.PERSONAL_FREE)\n"
        "try:\n"
        "    FileCallBudget('calls.json')\n"
        "except BudgetFileError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout
    assert "fcntl" in out.stdout and "calls.json" in out.stdout


# Item 12 (part): no redis-py ----------------------------------------------------------------


def test_a_missing_redis_extra_raises_missing_extra_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "from coze_async import MissingExtraError\n"
        "from coze_async.ratelimit import RedisLimiter\n"
        "try:\n"
        "    RedisLimiter()\n"
        "except MissingExtraError as exc:\n"
        "    print('extra:', exc.extra, '|', exc)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "extra: redis |" in out.stdout
    assert "pip install 'coze-async[redis]'" in out.stdout


# Item 7: the lifetime budget is charged only for calls written to the wire ----------------

TINY = Plan.custom(
    chat_qps=1, workflow_qps=1, upload_qps=1, model_rpm=1000, lifetime_calls=10, name="tiny"
)


def _budget_client(
    emu: Emulator, budget: FileCallBudget, plan: Plan = TINY, **kwargs: Any
) -> AsyncCoze:
    return AsyncCoze(
        token=emu.token,
        base_url=kwargs.pop("base_url", emu.url),
        limiter=Limiter(plan, budget=budget),
        retry=kwargs.pop("retry", RetryPolicy.none()),
        **kwargs,
    )


async def _retrieve(client: AsyncCoze) -> None:
    with contextlib.suppress(NotFoundError, BadRequestError):  # no such chat: it was sent
        await client.chat.retrieve(conversation_id="1", chat_id="2")


async def test_a_wait_that_times_out_is_not_charged(emu: Emulator, tmp_path: Path) -> None:
    budget = FileCallBudget(tmp_path / "calls.json")
    async with _budget_client(emu, budget, acquire_timeout=0.2) as client:
        await _retrieve(client)
        for _ in range(3):
            with pytest.raises(LocalRateLimitError, match="not available within"):
                await _retrieve(client)
    assert len(emu.requests) == 1
    assert await budget.used() == 1


@pytest.mark.parametrize("how", ["anyio", "asyncio"])
async def test_a_cancelled_wait_is_not_charged(emu: Emulator, tmp_path: Path, how: str) -> None:
    budget = FileCallBudget(tmp_path / "calls.json")
    async with _budget_client(emu, budget) as client:
        await _retrieve(client)
        for _ in range(3):
            if how == "anyio":
                with anyio.move_on_after(0.1) as scope:
                    await _retrieve(client)
                assert scope.cancelled_caught
            else:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await _retrieve(client)
    assert len(emu.requests) == 1
    assert await budget.used() == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


async def test_a_connection_refused_is_not_charged(emu: Emulator, tmp_path: Path) -> None:
    budget = FileCallBudget(tmp_path / "calls.json")
    dead = f"http://127.0.0.1:{_closed_port()}"
    big = Plan.custom(
        chat_qps=100, workflow_qps=100, upload_qps=100, model_rpm=1000, lifetime_calls=10
    )
    # Retried twice (a connect failure is always safe to retry): three attempts, none sent.
    async with _budget_client(
        emu, budget, big, base_url=dead, retry=RetryPolicy(max_retries=2)
    ) as client:
        for _ in range(4):
            with pytest.raises(TransportError) as info:
                await client.chat.create(
                    bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")]
                )
            assert info.value.phase == "connect"
    assert await budget.used() == 0


async def test_concurrent_calls_never_pass_the_lifetime_limit(
    emu: Emulator, tmp_path: Path
) -> None:
    budget = FileCallBudget(tmp_path / "calls.json", limit=5)
    big = Plan.custom(chat_qps=100, workflow_qps=100, upload_qps=100, model_rpm=1000)
    refused: list[LocalRateLimitError] = []
    async with _budget_client(emu, budget, big) as client:

        async def one() -> None:
            try:
                await _retrieve(client)
            except LocalRateLimitError as exc:
                refused.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    assert len(emu.requests) == 5
    assert len(refused) == 15
    assert all("5 of 5" in str(exc) for exc in refused)
    assert await budget.used() == 5


# Item 8: a send delayed after its grant (busy pool, slow server) stays in the window --------


@pytest.fixture(params=["in-process", "redis"])
async def limiter_kind(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Any]]:
    if request.param == "in-process":
        yield lambda: Limiter()
        return
    from .test_redis_limiter import _redis_binary, _start_redis, _stop_redis

    _redis_binary()
    port = _closed_port()
    proc = _start_redis(port)
    try:
        yield lambda: RedisLimiter(f"redis://127.0.0.1:{port}/0", account=uuid.uuid4().hex)
    finally:
        _stop_redis(proc)


@pytest.mark.timeout(60)
async def test_sends_delayed_by_a_busy_pool_are_counted_where_the_server_sees_them(
    limiter_kind: Callable[[], Any],
) -> None:
    # chat_qps=5 and five connections. The first five chats are streams that hold every
    # connection for ~2 s; the next five are granted one window later but cannot be written
    # until a connection frees up, over a window after their grant. The five after those
    # must still wait for them: the server sees at most 5 chats in any second.
    plan = Plan.custom(chat_qps=5, workflow_qps=5, upload_qps=5, model_rpm=10_000)
    async with (
        Emulator(plan=plan) as emu,
        AsyncCoze(
            token=emu.token,
            base_url=emu.url,
            plan=plan,
            limiter=limiter_kind(),
            connection_limit=5,
            retry=RetryPolicy.none(),
            timeouts=Timeouts(connect=30, read=30, total=30),
        ) as client,
    ):
        rejected: list[int] = []

        async def one(i: int) -> None:
            message = [Message.user("a")]
            try:
                if i < 5:
                    async with client.chat.stream(
                        bot_id=ECHO_BOT_ID,
                        user_id=f"u{i}",
                        messages=message,
                        extra_headers={FAULT_HEADER: "latency=0.25"},
                    ) as stream:
                        await stream.final()
                else:
                    await client.chat.create(bot_id=ECHO_BOT_ID, user_id=f"u{i}", messages=message)
            except RateLimitError:
                rejected.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(15):
                tg.start_soon(one, i)
        assert emu.quota is not None
        start = emu.requests[0].at
        seen = [(r.json["user_id"], round(r.at - start, 3)) for r in emu.requests]
        assert rejected == [], seen
        assert emu.quota.stats["chat"].accepted == 15
        assert emu.quota.max_in_window("chat") <= 5, seen
        assert seen[-1][1] > 2.0  # the streams did hold the pool: the test tested a delay


# Item 9: a 1,000-stream burst at the flagship plan sees no rejection -----------------------

FLAGSHIP = Plan.ENTERPRISE_FLAGSHIP


async def _flagship_burst(streams: int) -> tuple[int, int, int]:
    """One burst of ``streams`` concurrent chat streams: (accepted, rejected, max in window)."""
    async with (
        Emulator(plan=FLAGSHIP) as emu,
        AsyncCoze(
            token=emu.token,
            base_url=emu.url,
            plan=FLAGSHIP,
            retry=RetryPolicy.none(),
            connection_limit=streams,  # every stream on its own connection, at once
        ) as client,
    ):

        async def one(i: int) -> None:
            with contextlib.suppress(RateLimitError):  # counted by the emulator
                async with client.chat.stream(
                    bot_id=ECHO_BOT_ID, user_id=f"u{i}", messages=[Message.user("hi")]
                ) as stream:
                    await stream.final()

        async with anyio.create_task_group() as tg:
            for i in range(streams):
                tg.start_soon(one, i)
        assert emu.quota is not None
        chat = emu.quota.stats["chat"]
        return chat.accepted, chat.rejected, emu.quota.max_in_window("chat")


@pytest.mark.timeout(60)
async def test_a_burst_of_1000_streams_at_the_flagship_plan_sees_no_rejection() -> None:
    # 500 chat QPS: the burst is two full windows. The server counts a call when it gets to
    # it, hundreds of milliseconds after the write under such a burst; counting from the
    # answer keeps every window of the server within the plan. (Five bursts in a row, with
    # the share of the quota used, are in benchmarks/limiter.py: one burst keeps the suite
    # fast, and the old code already failed in most single runs.)
    accepted, rejected, most = await _flagship_burst(1000)
    assert (accepted, rejected) == (1000, 0)
    assert most <= 500
