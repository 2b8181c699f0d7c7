"""Randomized cancellation: whatever the moment and the kind, nothing is left behind.

Issue 12's acceptance: for random cancellation points across the limiter wait, the stream's
opening, its reading and ``cancel()`` itself, under anyio and plain-asyncio cancellation
(``task.cancel()``, ``asyncio.timeout``, ``anyio.move_on_after``, and a second native cancel
landing later, e.g. during ``cancel()``), afterwards:

* the pool is whole (the emulator holds no open stream, and a pool of two serves two new
  streams at once),
* the limiter is whole (no waiter, no reservation or unanswered call left counted),
* the lifetime budget counted exactly the calls the emulator received (none that was never
  sent), and
* every chat whose stream was open when the caller called ``cancel()`` got its
  ``/v3/chat/cancel`` request.

Each example runs a few concurrent chats, each of which calls ``stream.cancel()`` in its
``finally``, as a careful caller does, against an emulator enforcing a small plan so that
some chats wait in the limiter when the cancellation lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coze_async import AsyncCoze, Message, RetryPolicy, Timeouts
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, REPEAT_HEADER, Emulator
from coze_async.ratelimit import FileCallBudget, Limiter, Plan

pytestmark = pytest.mark.anyio

PLAN = Plan.custom(chat_qps=3, workflow_qps=50, upload_qps=10, model_rpm=600)
# A reply of ~400 deltas 10 ms apart: still generating whenever the cancellation lands.
SLOW = {FAULT_HEADER: "latency=0.01", REPEAT_HEADER: "40"}
DELAYS = [0.0, 0.001, 0.003, 0.01, 0.03, 0.06, 0.12, 0.25]


@attrs.define
class Plot:
    kind: str  # how the caller's scope is cancelled
    delay: float  # when
    second: float | None  # a later native task.cancel(), or none


@attrs.define
class Outcome:
    open_at_cancel: bool = False  # the stream had its response when cancel() was called
    chat: Any = None


plots = st.builds(
    Plot,
    kind=st.sampled_from(["task", "timeout", "anyio"]),
    delay=st.sampled_from(DELAYS),
    second=st.one_of(st.none(), st.sampled_from(DELAYS)),
)


async def _careful_chat(coze: AsyncCoze, out: Outcome) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("慢慢说")], extra_headers=SLOW
    ) as stream:
        try:
            async for _ in stream:
                pass
        finally:
            out.open_at_cancel = stream.http_status is not None and not stream.closed
            try:
                await stream.cancel(timeout=5)
            finally:
                out.chat = stream.snapshot.chat


async def _run(coze: AsyncCoze, plot: Plot, out: Outcome) -> None:
    loop = asyncio.get_running_loop()
    if plot.kind == "task":
        inner = asyncio.create_task(_careful_chat(coze, out))
        loop.call_later(plot.delay, inner.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await inner
    elif plot.kind == "timeout":
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(plot.delay):
                await _careful_chat(coze, out)
    else:
        with anyio.move_on_after(plot.delay):
            await _careful_chat(coze, out)


def _limiter_is_whole(limiter: Limiter) -> None:
    assert limiter.in_flight_waiters() == 0
    for bucket in limiter._buckets.values():
        assert not bucket.queue, bucket.name
        assert bucket.unwritten == 0, bucket.name  # no reservation left pending
        assert bucket.live == 0, bucket.name  # no written call left unanswered


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(plots, min_size=1, max_size=4))
async def test_random_cancellation_leaves_nothing_behind(plan_list: list[Plot]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        budget = FileCallBudget(os.path.join(tmp, "calls.json"), limit=10_000)
        limiter = Limiter(PLAN, budget=budget)
        async with (
            Emulator(plan=PLAN) as emu,
            AsyncCoze(
                token=emu.token,
                base_url=emu.url,
                limiter=limiter,
                connection_limit=2,
                timeouts=Timeouts(pool=5, read=10, total=20),
                retry=RetryPolicy.none(),
            ) as coze,
        ):
            outcomes = [Outcome() for _ in plan_list]
            tasks = [
                asyncio.create_task(_run(coze, plot, out))
                for plot, out in zip(plan_list, outcomes, strict=True)
            ]
            loop = asyncio.get_running_loop()
            for plot, task in zip(plan_list, tasks, strict=True):
                if plot.second is not None:
                    loop.call_later(plot.delay + plot.second, task.cancel)
            with anyio.fail_after(30):
                await asyncio.gather(*tasks, return_exceptions=True)

            # Every chat whose stream was open when cancel() was called was cancelled at Coze.
            for out in outcomes:
                if out.open_at_cancel:
                    assert out.chat is not None
                    assert (out.chat.conversation_id, out.chat.id) in emu.cancels

            # The limiter is whole; the budget counted exactly what reached the server.
            _limiter_is_whole(limiter)
            await limiter.flush()  # refunds of calls never sent are written in the background
            await emu.wait_idle()
            assert await budget.used() == len(emu.requests)

            # The pool is whole: nothing open at the server, and two new streams fit at once.
            assert emu.open_streams == 0

            async def short() -> str:
                async with coze.chat.stream(
                    bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("好")]
                ) as stream:
                    return (await stream.final()).text

            with anyio.fail_after(10):
                texts = await asyncio.gather(short(), short())
            assert all("好" in t for t in texts)
            _limiter_is_whole(limiter)
