"""Shared fixtures: a real emulator on a loopback port and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from coze_async import AsyncCoze, RetryPolicy, Timeouts
from coze_async.emulator import Emulator
from coze_async.ratelimit import Plan
from coze_async.testing import no_backoff


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    # Retry decisions stay the same; only the sleeps between attempts go.
    with no_backoff():
        yield


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as server:
        yield server


@pytest.fixture
async def coze(emu: Emulator) -> AsyncIterator[AsyncCoze]:
    async with AsyncCoze(
        token=emu.token,
        base_url=emu.url,
        timeouts=Timeouts(connect=5, read=10, total=20),
        retry=RetryPolicy(max_retries=2),
    ) as client:
        yield client


@pytest.fixture
async def pooled(emu: Emulator) -> AsyncIterator[AsyncCoze]:
    """A client with a two-connection pool and a quota limiter, to prove both stay whole."""
    async with AsyncCoze(
        token=emu.token,
        base_url=emu.url,
        connection_limit=2,
        plan=Plan.PERSONAL_FREE,
        timeouts=Timeouts(pool=1.5, read=10, total=10),
        retry=RetryPolicy.none(),
    ) as client:
        yield client
