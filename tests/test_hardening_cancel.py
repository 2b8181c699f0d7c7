"""``stream.cancel()`` reaches Coze however the caller's scope is cancelled (issue 12, item 10).

The server here is written by the test: it starts a chat, then never finishes it, and holds
``/v3/chat/cancel`` open until the test lets it answer, so a second cancellation can be
delivered while the cancel request is in flight, at any point before or during it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web

from coze_async import AsyncCoze, Message
from coze_async._json import dumps
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator
from tests._payloads import CHAT, CONV, chat_obj, start_frames

pytestmark = pytest.mark.anyio


class HangingChatServer:
    """A chat that streams its first events and then hangs; cancel answers when released."""

    def __init__(self) -> None:
        self.cancel_arrived = asyncio.Event()
        self.release_cancel = asyncio.Event()
        self.cancels_received = 0
        self.cancels_answered = 0
        self.app = web.Application()
        self.app.router.add_post("/v3/chat", self.chat)
        self.app.router.add_post("/v3/chat/cancel", self.cancel)
        self.url = ""

    async def chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for frame in start_frames():
            await resp.write(frame)
        await asyncio.Event().wait()  # until the client goes away
        return resp

    async def cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body == {"conversation_id": CONV, "chat_id": CHAT}
        self.cancels_received += 1
        self.cancel_arrived.set()
        await self.release_cancel.wait()
        self.cancels_answered += 1
        envelope = {"code": 0, "msg": "", "data": chat_obj("canceled")}
        return web.Response(body=dumps(envelope), content_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[HangingChatServer]:
    srv = HangingChatServer()
    runner = web.AppRunner(srv.app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.url = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        srv.release_cancel.set()
        await runner.cleanup()


async def _chat_then_cancel(coze: AsyncCoze, started: asyncio.Event, result: list[object]) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("hi")]
    ) as stream:
        try:
            async for _ in stream:
                if stream.snapshot.chat is not None:
                    started.set()
        finally:
            result.append(await stream.cancel(timeout=5))


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5, 8, 13])
async def test_second_native_cancel_does_not_abort_the_cancel_request(
    server: HangingChatServer, turns: int
) -> None:
    """task.cancel() twice (a TaskGroup shutting down, a timeout after a cancel...): the cancel
    request still reaches Coze, is answered, and the task still ends cancelled."""
    async with AsyncCoze(token="pat_test", base_url=server.url) as coze:
        started = asyncio.Event()
        result: list[object] = []
        task = asyncio.create_task(_chat_then_cancel(coze, started, result))
        await started.wait()
        task.cancel()  # the caller's scope goes away: its finally calls stream.cancel()
        for _ in range(turns):  # the second cancellation lands somewhere in the cancel path
            await asyncio.sleep(0)
        task.cancel()
        with anyio.fail_after(10):  # today's code never sends it: fail, don't hang
            await server.cancel_arrived.wait()
        server.release_cancel.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancel request was answered before the task's cancellation went on.
        assert server.cancels_received == 1
        assert server.cancels_answered == 1


async def test_asyncio_timeout_expiring_during_cancel(server: HangingChatServer) -> None:
    """The cancel runs past the caller's asyncio.timeout: it is still sent and answered, and
    the caller sees its TimeoutError afterwards."""
    async with AsyncCoze(token="pat_test", base_url=server.url) as coze:
        started = asyncio.Event()
        result: list[object] = []

        async def release_when_arrived() -> None:
            await server.cancel_arrived.wait()
            server.release_cancel.set()

        async def consume() -> None:
            async with asyncio.timeout(None) as scope:
                body = asyncio.create_task(_chat_then_cancel(coze, started, result))
                await started.wait()
                # Expire the timeout now: the chat's finally runs cancel() inside it.
                scope.reschedule(asyncio.get_running_loop().time())
                await body

        helper = asyncio.create_task(release_when_arrived())
        with pytest.raises((TimeoutError, asyncio.CancelledError)):
            await consume()
        with anyio.fail_after(10):
            await helper
        assert server.cancels_received == 1
        assert server.cancels_answered == 1


async def test_anyio_cancel_during_cancel_request(server: HangingChatServer) -> None:
    """An anyio scope cancelled while the cancel request is in flight does not abort it."""
    async with AsyncCoze(token="pat_test", base_url=server.url) as coze:
        started = asyncio.Event()
        result: list[object] = []
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                with anyio.CancelScope() as scope:
                    tg.start_soon(_cancel_later, scope)
                    await _chat_then_cancel(coze, started, result)

            async def _cancel_later(scope: anyio.CancelScope) -> None:
                await started.wait()
                scope.cancel()  # the chat's finally calls cancel()
                await server.cancel_arrived.wait()
                scope.cancel()  # and again while it is in flight
                server.release_cancel.set()

            tg.start_soon(run)
        assert server.cancels_answered == 1
        assert result and getattr(result[0], "status", None) == "canceled"


async def test_cancel_is_bounded_by_its_timeout(server: HangingChatServer) -> None:
    """A cancel endpoint that never answers holds the caller for ``timeout`` at most."""
    async with AsyncCoze(token="pat_test", base_url=server.url) as coze:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("hi")]
        ) as stream:
            async for _ in stream:
                if stream.snapshot.chat is not None:
                    break
            with anyio.fail_after(5):  # far above the cancel's own bound
                assert await stream.cancel(timeout=0.2) is None
        assert stream.closed
        assert server.cancels_received == 1


async def test_cancel_before_the_first_event_is_read(coze: AsyncCoze, emu: Emulator) -> None:
    """Opened but not read yet: cancel() reads up to the chat's id, then cancels it."""
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("慢慢说")],
        extra_headers={FAULT_HEADER: "latency=0.05"},
    ) as stream:
        assert stream.snapshot.chat is None
        cancelled = await stream.cancel()
    assert cancelled is not None and cancelled.status == "canceled"
    assert emu.cancels == [(cancelled.conversation_id, cancelled.id)]
    assert stream.closed


async def test_cancel_of_a_stream_never_opened_sends_nothing(
    coze: AsyncCoze, emu: Emulator
) -> None:
    stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")])
    assert await stream.cancel() is None
    assert emu.requests == []
