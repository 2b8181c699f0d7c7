"""The limiter in front of real sockets: a plan-enforcing emulator sees no rejection."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from coze_async import AsyncCoze, Message, RateLimitError, RetryPolicy
from coze_async.emulator import ECHO_BOT_ID, Emulator
from coze_async.ratelimit import Plan
from coze_async.ratelimit.plans import Bucket

pytestmark = pytest.mark.anyio

FREE = Plan.PERSONAL_FREE


@pytest.fixture
async def free_emu() -> AsyncIterator[Emulator]:
    async with Emulator(plan=FREE) as server:
        yield server


async def _stream_chat(client: AsyncCoze, i: int) -> float:
    async with client.chat.stream(
        bot_id=ECHO_BOT_ID, user_id=f"user-{i}", messages=[Message.user(f"第{i}个")]
    ) as stream:
        snap = await stream.final()
    assert f"第{i}个" in snap.text
    return stream.quota_wait


# The free plan's shape (a per-second chat bucket, and a model bucket with a longer window
# that binds first), with its 60 s window scaled down to 3 s so the test takes seconds.
FREE_SHAPE = Plan(
    name="free_shape",
    buckets=(
        Bucket("chat", 200, 1.0),
        Bucket("workflow", 50, 1.0),
        Bucket("upload", 10, 1.0),
        Bucket("model_rpm", 300, 3.0),
    ),
)


async def test_500_concurrent_streams_on_a_free_shaped_plan_see_no_rejection() -> None:
    # The first 200 streams go at once, the next 100 wait for the chat window, and the other
    # 200 wait for the model window to roll over (~3 s). Bounded: 500 streams.
    waits: list[float] = []
    async with (
        Emulator(plan=FREE_SHAPE) as emu,
        AsyncCoze(
            token=emu.token, base_url=emu.url, plan=FREE_SHAPE, retry=RetryPolicy.none()
        ) as client,
    ):

        async def one(i: int) -> None:
            waits.append(await _stream_chat(client, i))

        async with anyio.create_task_group() as tg:
            for i in range(500):
                tg.start_soon(one, i)
    assert emu.quota is not None
    stats = emu.quota.stats
    summary = (stats, emu.quota.max_in_window("chat"), sorted(waits)[:25])
    assert stats["chat"].accepted == 500, summary
    assert stats["chat"].rejected == 0, summary
    assert stats["model_rpm"].rejected == 0, summary
    assert emu.quota.max_in_window("chat") <= 200
    assert emu.quota.max_in_window("model_rpm") <= 300
    assert len(waits) == 500
    assert max(waits) > 3  # the last ones really waited for the model window
    assert sorted(waits)[:200] == [0.0] * 200  # the first window's worth went straight through


async def test_without_the_limiter_the_server_rejects(free_emu: Emulator) -> None:
    outcomes: list[str] = []
    rejections: list[RateLimitError] = []
    async with AsyncCoze(
        token=free_emu.token, base_url=free_emu.url, retry=RetryPolicy.none()
    ) as client:

        async def one(i: int) -> None:
            try:
                await _stream_chat(client, i)
                outcomes.append("ok")
            except RateLimitError as exc:
                rejections.append(exc)
                outcomes.append("rejected")

        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(one, i)
    assert outcomes.count("ok") <= 20
    assert outcomes.count("rejected") >= 40
    assert all(exc.code == 4009 and exc.logid for exc in rejections)
    assert free_emu.quota is not None
    assert free_emu.quota.stats["chat"].rejected == outcomes.count("rejected")


async def test_server_rejection_pauses_the_bucket_for_every_task(free_emu: Emulator) -> None:
    # A client that believes in a bigger plan than the account has: the server rejects, the
    # limiter pauses the bucket, and the retry (after the pause) succeeds.
    too_big = Plan.custom(chat_qps=1000, workflow_qps=1000, upload_qps=1000, model_rpm=100000)
    async with AsyncCoze(
        token=free_emu.token,
        base_url=free_emu.url,
        plan=too_big,
        retry=RetryPolicy(max_retries=3, deadline=None),
    ) as client:
        results = []

        async def one(i: int) -> None:
            results.append(await _stream_chat(client, i))

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
    assert len(results) == 30  # every call got through in the end
    assert free_emu.quota is not None
    assert free_emu.quota.stats["chat"].rejected > 0
    assert max(results) >= 1.0  # retried calls waited out the pause


async def test_quota_wait_is_visible(free_emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="coze_async")
    tiny = Plan.custom(chat_qps=1, workflow_qps=1, upload_qps=1, model_rpm=1000)
    async with AsyncCoze(token=free_emu.token, base_url=free_emu.url, plan=tiny) as client:
        first = await client.chat.create(
            bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")]
        )
        second = await client.chat.retrieve(conversation_id=first.conversation_id, chat_id=first.id)
    assert first.quota_wait == 0.0
    assert second.quota_wait > 0.9  # one chat-bucket call per second (plus the margin)
    assert any("waited" in r.getMessage() for r in caplog.records)


async def test_acquire_timeout_refuses_locally(free_emu: Emulator) -> None:
    from coze_async import LocalRateLimitError

    tiny = Plan.custom(chat_qps=1, workflow_qps=1, upload_qps=1, model_rpm=1000)
    async with AsyncCoze(
        token=free_emu.token, base_url=free_emu.url, plan=tiny, acquire_timeout=0.2
    ) as client:
        await client.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")])
        sent = len(free_emu.requests)
        with pytest.raises(LocalRateLimitError):
            await client.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("b")])
    assert len(free_emu.requests) == sent  # refused before sending


async def test_quota_report_endpoint(free_emu: Emulator) -> None:
    import aiohttp

    async with AsyncCoze(token=free_emu.token, base_url=free_emu.url, plan=FREE) as client:
        await _stream_chat(client, 1)
    async with (
        aiohttp.ClientSession() as session,
        session.get(free_emu.url + "/_emulator/quota") as resp,
    ):
        report = await resp.json()
    assert report["plan"] == "personal_free"
    assert report["buckets"]["chat"] == {
        "limit": 20,
        "period": 1.0,
        "accepted": 1,
        "rejected": 0,
        "max_in_window": 1,
    }


async def test_lifetime_budget_refuses_before_the_account_is_locked(
    free_emu: Emulator, tmp_path: object
) -> None:
    from pathlib import Path

    from coze_async import LocalRateLimitError
    from coze_async.ratelimit import FileCallBudget, Limiter

    assert isinstance(tmp_path, Path)
    path = tmp_path / "calls.json"
    small = Plan.custom(
        chat_qps=100, workflow_qps=100, upload_qps=100, model_rpm=10000, lifetime_calls=3
    )
    async with AsyncCoze(
        token=free_emu.token,
        base_url=free_emu.url,
        limiter=Limiter(small, budget=FileCallBudget(path)),
    ) as client:
        chat = await client.chat.create(
            bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("1")]
        )
        await client.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
    # A new process (here: a new client) continues the same count from the file.
    async with AsyncCoze(
        token=free_emu.token,
        base_url=free_emu.url,
        limiter=Limiter(small, budget=FileCallBudget(path)),
    ) as client:
        await client.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
        sent = len(free_emu.requests)
        with pytest.raises(LocalRateLimitError, match="3 of 3"):
            await client.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
    assert len(free_emu.requests) == sent == 3
    assert await FileCallBudget(path).used() == 3


async def test_free_plan_emulator_refuses_async_workflow_runs(free_emu: Emulator) -> None:
    from coze_async import PermissionDeniedError
    from coze_async.emulator import ECHO_WORKFLOW_ID

    assert free_emu.user_level == "free"  # derived from plan=PERSONAL_FREE
    async with AsyncCoze(token=free_emu.token, base_url=free_emu.url, plan=FREE) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.workflows.run_async(workflow_id=ECHO_WORKFLOW_ID, parameters={})
    assert info.value.code == 6003


async def test_a_call_that_fails_before_sending_gives_its_quota_back(free_emu: Emulator) -> None:
    from coze_async import BadRequestError, CallableAuth, Limiter

    calls = 0

    async def flaky_token() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("token store down")
        return free_emu.token

    one_per_second = Plan.custom(chat_qps=1, workflow_qps=1, upload_qps=1, model_rpm=1000)
    limiter = Limiter(one_per_second, margin=0.0)
    async with AsyncCoze(
        auth=CallableAuth(flaky_token), base_url=free_emu.url, limiter=limiter
    ) as client:
        with pytest.raises(RuntimeError, match="token store down"):
            await client.chat.retrieve(conversation_id="1", chat_id="2")
        # The failed attempt was never written: it gives its quota back, never left pending
        # (the bucket serves again instead of blocking forever).
        with anyio.fail_after(5), pytest.raises(BadRequestError) as info:
            await client.chat.retrieve(conversation_id="1", chat_id="2")
    assert info.value.code == 4001  # it reached the emulator: no such chat
