"""Streams never leak: every way out of a stream leaves a one-connection pool whole.

Each test opens a stream on a client whose pool holds ONE connection, leaves the stream in a
different way, then makes another request: if the first stream still held the connection,
that request would wait for the pool and fail with a pool timeout. ResourceWarnings are
errors in this suite (pyproject's filterwarnings).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from coze_async import AsyncCoze, Message, MessageDelta, RetryPolicy, Timeouts
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, REPEAT_HEADER, Emulator

pytestmark = pytest.mark.anyio

LONG = "一二三四五六七八九十" * 4
# ~1,000 deltas 20 ms apart: the server would still be writing long after the pool timeout,
# so a stream that kept its connection makes the next request fail instead of passing late.
SLOW = {FAULT_HEADER: "latency=0.02", REPEAT_HEADER: "100"}


@pytest.fixture
async def one_conn(emu: Emulator) -> AsyncIterator[AsyncCoze]:
    async with AsyncCoze(
        token=emu.token,
        base_url=emu.url,
        connection_limit=1,
        timeouts=Timeouts(pool=1.5, read=10, total=10),
        retry=RetryPolicy.none(),
    ) as client:
        yield client


async def _pool_is_whole(client: AsyncCoze, emu: Emulator) -> None:
    async with client.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("再来")]
    ) as stream:
        snap = await stream.final()
    assert "再来" in snap.text
    await emu.wait_idle()
    assert emu.open_streams == 0


def _stream(client: AsyncCoze):  # type: ignore[no-untyped-def]
    return client.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user(LONG)], extra_headers=SLOW
    )


async def test_break(one_conn: AsyncCoze, emu: Emulator) -> None:
    async with _stream(one_conn) as stream:
        async for event in stream:
            if isinstance(event, MessageDelta):
                break
    assert stream.closed
    await _pool_is_whole(one_conn, emu)


async def test_break_without_context_manager(one_conn: AsyncCoze, emu: Emulator) -> None:
    async for event in _stream(one_conn):
        if isinstance(event, MessageDelta):
            break
    await _pool_is_whole(one_conn, emu)


async def test_exception_in_loop_body(one_conn: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(RuntimeError, match="user code"):
        async with _stream(one_conn) as stream:
            async for event in stream:
                if isinstance(event, MessageDelta):
                    raise RuntimeError("user code")
    assert stream.closed
    await _pool_is_whole(one_conn, emu)


async def test_move_on_after_mid_read(one_conn: AsyncCoze, emu: Emulator) -> None:
    got = 0
    with anyio.move_on_after(0.15) as scope:
        async with _stream(one_conn) as stream:
            async for _ in stream:
                got += 1
    assert scope.cancelled_caught
    assert got > 0
    assert stream.closed
    await _pool_is_whole(one_conn, emu)


async def test_cancel_during_open(one_conn: AsyncCoze, emu: Emulator) -> None:
    with anyio.move_on_after(0.1) as scope:
        async with one_conn.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("x")],
            extra_headers={FAULT_HEADER: "slow-headers=2"},
        ):
            pytest.fail("headers arrive after the deadline")
    assert scope.cancelled_caught
    await _pool_is_whole(one_conn, emu)


async def test_task_group_cancellation(one_conn: AsyncCoze, emu: Emulator) -> None:
    started = anyio.Event()
    streams = []

    async def consume() -> None:
        async with _stream(one_conn) as stream:
            streams.append(stream)
            async for _ in stream:
                started.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await started.wait()
        tg.cancel_scope.cancel()
    assert streams[0].closed
    await _pool_is_whole(one_conn, emu)


async def test_double_aclose(one_conn: AsyncCoze, emu: Emulator) -> None:
    stream = _stream(one_conn)
    await stream.__aenter__()
    first = await stream.__anext__()
    assert first is not None
    await stream.aclose()
    await stream.aclose()
    await stream.__aexit__(None, None, None)
    assert stream.closed
    assert [e async for e in stream] == []
    await _pool_is_whole(one_conn, emu)


async def test_server_side_notices_client_leaving(one_conn: AsyncCoze, emu: Emulator) -> None:
    async with _stream(one_conn) as stream:
        async for _ in stream:
            assert emu.open_streams == 1
            break
    await emu.wait_idle()
    assert emu.open_streams == 0


async def test_stream_never_opened_sends_nothing(one_conn: AsyncCoze, emu: Emulator) -> None:
    stream = _stream(one_conn)
    del stream
    assert emu.requests == []
    await _pool_is_whole(one_conn, emu)


async def test_unclosed_client_warns() -> None:
    import gc
    import warnings

    async with Emulator() as server:
        client = AsyncCoze(token=server.token, base_url=server.url)
        await client.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")])
        session = client._transport._session
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del client
            gc.collect()
        assert any(issubclass(w.category, ResourceWarning) for w in caught)
        assert session is not None
        await session.close()
