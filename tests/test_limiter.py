"""The in-process limiter, driven by a fake clock: order, atomicity, cancellation, windows."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coze_async import LocalRateLimitError
from coze_async.ratelimit import ENDPOINT_BUCKETS, Bucket, FakeClock, Limiter, Plan

pytestmark = pytest.mark.anyio


def _plan(*buckets: Bucket) -> Plan:
    return Plan(name="test", buckets=buckets)


def _limiter(*buckets: Bucket) -> tuple[Limiter, FakeClock]:
    clock = FakeClock()
    return Limiter(_plan(*buckets), margin=0.0, clock=clock), clock


async def test_fast_path_then_wait_for_the_window() -> None:
    lim, clock = _limiter(Bucket("a", 2, 1.0))
    assert await lim.acquire(["a"]) == 0.0
    assert await lim.acquire(["a"]) == 0.0
    granted: list[float] = []

    async def third() -> None:
        granted.append(await lim.acquire(["a"]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(third)
        await clock.settle()
        assert granted == []  # the window holds 2 already
        clock.advance(0.999)
        await clock.settle()
        assert granted == []
        clock.advance(0.001)
    assert granted == [1.0]


async def test_fifo_order() -> None:
    lim, clock = _limiter(Bucket("a", 1, 1.0))
    await lim.acquire(["a"])
    order: list[int] = []

    async def worker(i: int) -> None:
        await lim.acquire(["a"])
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(worker, i)
            await clock.settle()  # start them in a known order
        for _ in range(6):
            clock.advance(1.0)
            await clock.settle()
    assert order == [0, 1, 2, 3, 4, 5]


async def test_two_buckets_taken_atomically() -> None:
    lim, clock = _limiter(Bucket("a", 1, 1.0), Bucket("b", 3, 1.0))
    await lim.acquire(["a"])  # a is full until t=1
    done: list[str] = []

    async def both() -> None:
        await lim.acquire(["a", "b"])
        done.append("ab")

    async with anyio.create_task_group() as tg:
        tg.start_soon(both)
        await clock.settle()
        assert done == []
        # Waiting for "a" took nothing from "b": its 3 tokens are all still there at t=1.
        clock.advance(1.0)
        await clock.settle()
        assert done == ["ab"]
    assert await lim.acquire(["b"]) == 0.0
    assert await lim.acquire(["b"]) == 0.0
    with pytest.raises(LocalRateLimitError):
        await lim.acquire(["b"], timeout=0.5)


async def test_a_call_blocked_elsewhere_does_not_hold_up_others() -> None:
    # A chat needs chat QPS + model RPM; the RPM window is used up until t=60. A retrieve
    # (chat bucket only) queued behind it goes at once, and the chat is not delayed by it.
    lim, clock = _limiter(Bucket("chat", 2, 1.0), Bucket("rpm", 1, 60.0))
    await lim.acquire(["chat", "rpm"])  # t=0: the RPM window is now full for 60 s
    granted: dict[str, float] = {}

    async def call(name: str, needs: list[str]) -> None:
        await lim.acquire(needs)
        granted[name] = clock.now()

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "chat", ["chat", "rpm"])
        await clock.settle()
        tg.start_soon(call, "retrieve", ["chat"])
        await clock.settle()
        assert granted == {"retrieve": 0.0}  # not a minute behind the chat
        tg.start_soon(call, "retrieve-2", ["chat"])
        await clock.settle()
        # The chat QPS bucket (2/s) is full for this second: the next retrieve waits for it.
        assert "retrieve-2" not in granted
        clock.advance(1.0)
        await clock.settle()
        assert granted["retrieve-2"] == 1.0
        clock.advance(59.0)
        await clock.settle()
    assert granted["chat"] == 60.0  # exactly when the RPM window allowed it


async def test_a_later_call_never_delays_an_earlier_one() -> None:
    # The chat at the head waits for "rpm" until t=2 and needs a "chat" token then. The chat
    # bucket holds 1 per 3 s: a retrieve taking it at t=0 would push the chat to t=3, so the
    # retrieve must wait behind it.
    lim, clock = _limiter(Bucket("chat", 1, 3.0), Bucket("rpm", 1, 2.0))
    await lim.acquire(["rpm"])  # t=0: rpm full until t=2
    granted: dict[str, float] = {}

    async def call(name: str, needs: list[str]) -> None:
        await lim.acquire(needs)
        granted[name] = clock.now()

    async with anyio.create_task_group() as tg:
        tg.start_soon(call, "chat", ["chat", "rpm"])
        await clock.settle()
        tg.start_soon(call, "retrieve", ["chat"])
        await clock.settle()
        for _ in range(10):
            clock.advance(0.5)
            await clock.settle()
    assert granted == {"chat": 2.0, "retrieve": 5.0}


async def test_cancelled_waiter_takes_nothing_and_keeps_order() -> None:
    lim, clock = _limiter(Bucket("a", 1, 1.0))
    await lim.acquire(["a"])
    order: list[str] = []

    async def worker(name: str) -> None:
        await lim.acquire(["a"])
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "first")
        await clock.settle()
        doomed = anyio.CancelScope()
        tg.start_soon(_cancellable, lim, doomed)
        await clock.settle()
        tg.start_soon(worker, "third")
        await clock.settle()
        assert lim.in_flight_waiters() == 3
        doomed.cancel()
        await clock.settle()
        assert lim.in_flight_waiters() == 2
        clock.advance(1.0)
        await clock.settle()
        clock.advance(1.0)
        await clock.settle()
    assert order == ["first", "third"]


async def _cancellable(lim: Limiter, scope: anyio.CancelScope) -> None:
    with scope:
        await lim.acquire(["a"])
        pytest.fail("a cancelled waiter must not be granted")


async def test_timeout_raises_and_consumes_nothing() -> None:
    lim, clock = _limiter(Bucket("a", 1, 10.0))
    await lim.acquire(["a"])
    with pytest.raises(LocalRateLimitError, match="within 1"):
        await lim.acquire(["a"], timeout=1.0)  # next slot at t=10: known to be too late
    assert lim.in_flight_waiters() == 0
    errors: list[Exception] = []

    async def queued() -> None:
        try:
            await lim.acquire(["a"], timeout=20.0)
        except LocalRateLimitError as exc:  # pragma: no cover - must not happen
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(queued)
        await clock.settle()
        clock.advance(10.0)
    assert errors == []


async def test_pause_holds_everyone() -> None:
    lim, clock = _limiter(Bucket("a", 100, 1.0))
    lim.pause(["a"], 2.0)
    got: list[float] = []

    async def one() -> None:
        got.append(await lim.acquire(["a"]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one)
        tg.start_soon(one)
        await clock.settle()
        clock.advance(1.5)
        await clock.settle()
        assert got == []
        clock.advance(0.5)
    assert got == [2.0, 2.0]


async def test_unknown_buckets_are_free() -> None:
    lim, _ = _limiter(Bucket("a", 1, 1.0))
    assert await lim.acquire([]) == 0.0
    assert await lim.acquire(["not-in-plan"]) == 0.0


def test_every_endpoint_maps_to_known_buckets() -> None:
    names = {b.name for b in Plan.PERSONAL_FREE.buckets}
    for endpoint, buckets in ENDPOINT_BUCKETS.items():
        assert set(buckets) <= names, endpoint
    model_users = {e for e, b in ENDPOINT_BUCKETS.items() if "model_rpm" in b}
    assert {"chat.create", "chat.stream", "chat.submit_tool_outputs"} <= model_users
    assert "chat.retrieve" not in model_users


def test_plan_table() -> None:
    def limits(plan: Plan) -> tuple[int | None, ...]:
        return tuple(
            b.limit if (b := plan.bucket(n)) else None
            for n in ("chat", "workflow", "upload", "model_rpm")
        )

    assert limits(Plan.PERSONAL_FREE) == (20, 50, 10, 300)
    assert limits(Plan.PERSONAL_PRO) == (100, 100, 10, 1000)
    assert limits(Plan.ENTERPRISE_STANDARD) == (200, 200, 20, 5000)
    assert limits(Plan.ENTERPRISE_FLAGSHIP) == (500, 500, 20, 12000)
    assert Plan.PERSONAL_FREE.lifetime_calls == 500
    model = Plan.PERSONAL_FREE.bucket("model_rpm")
    assert model is not None and model.period == 60.0


# A sliding-window property over random arrivals --------------------------------------------

arrivals = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.7, allow_nan=False),  # gap before this arrival
        st.sampled_from([("a",), ("b",), ("a", "b")]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(arrivals=arrivals, limit_a=st.integers(1, 4), limit_b=st.integers(1, 6))
def test_never_more_than_the_limit_in_any_window(
    arrivals: list[tuple[float, tuple[str, ...]]], limit_a: int, limit_b: int
) -> None:
    async def scenario() -> dict[str, list[float]]:
        lim, clock = _limiter(Bucket("a", limit_a, 1.0), Bucket("b", limit_b, 2.0))
        grants: dict[str, list[float]] = {"a": [], "b": []}
        order: list[int] = []

        async def call(i: int, names: tuple[str, ...]) -> None:
            await lim.acquire(names)
            order.append(i)
            for n in names:
                grants[n].append(clock.now())

        async with anyio.create_task_group() as tg:
            for i, (gap, names) in enumerate(arrivals):
                clock.advance(gap)
                await clock.settle()
                tg.start_soon(call, i, names)
                await clock.settle()
            # Drive time until everyone is through (bounded: 40 calls x 2 s windows).
            for _ in range(200):
                if len(order) == len(arrivals):
                    break
                clock.advance(0.25)
                await clock.settle()
        assert len(order) == len(arrivals)
        # Calls with the same needs are granted in arrival order (a call may only pass an
        # earlier one held back by a bucket it does not need).
        for need in {names for _, names in arrivals}:
            same = [i for i in order if arrivals[i][1] == need]
            assert same == sorted(same)
        return grants

    grants = anyio.run(scenario)
    for name, limit, period in (("a", limit_a, 1.0), ("b", limit_b, 2.0)):
        times = grants[name]
        for i, t in enumerate(times):
            in_window = [u for u in times[i:] if u < t + period]
            assert len(in_window) <= limit, (name, times)


def _endpoints_in_resources() -> set[str]:
    # Every endpoint a resource declares: the quota name of each ``Endpoint`` constant.
    import importlib
    import pkgutil

    import coze_async.resources
    from coze_async.endpoint import Endpoint

    found: set[str] = set()
    for info in pkgutil.iter_modules(coze_async.resources.__path__):
        module = importlib.import_module(f"coze_async.resources.{info.name}")
        found.update(v.quota for v in vars(module).values() if isinstance(v, Endpoint))
    return found


def test_every_sdk_endpoint_is_in_the_quota_table() -> None:
    used = _endpoints_in_resources()
    assert "chat.stream" in used  # the scan works
    missing = used - set(ENDPOINT_BUCKETS)
    assert missing == set(), f"endpoints missing from ENDPOINT_BUCKETS: {sorted(missing)}"
