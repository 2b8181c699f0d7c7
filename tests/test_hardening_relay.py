"""Issue 12, items 3 and 10 (relay part): cross-site relays, error frames, native cancellation.

Everything runs over loopback sockets: the emulator <- ``AsyncCoze`` <- a relay app (or a
task consuming ``sse_frames`` directly) <- an ``aiohttp`` client playing the browser (or a
hostile page's browser, sending the ``Origin`` / ``Sec-Fetch-Site`` headers browsers send).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from coze_async import AsyncCoze, ChatStream, Message, RetryPolicy
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, REPEAT_HEADER, Emulator
from coze_async.emulator.bots import EchoBot, Turn, TurnContext
from coze_async.emulator.wire import error_message
from coze_async.errors import InvalidArgumentError
from coze_async.relay import origin_allowed, relay_response, sse_frames
from coze_async.sse import SSEDecoder

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "web_chat"
# ~1,000 deltas 20 ms apart: only a cancellation ends such a chat within a test.
SLOW = {FAULT_HEADER: "latency=0.02", REPEAT_HEADER: "100"}


def _chat_posts(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests if r.path == "/v3/chat"]


def _cancel_posts(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests if r.path == "/v3/chat/cancel"]


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yield its base URL (no trailing slash)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def relay_app(
    coze: AsyncCoze, *, allowed_origins: Collection[str] = ()
) -> AsyncIterator[tuple[str, list[ChatStream]]]:
    """A ``GET /relay`` app around ``relay_response``; yields its URL and the streams made."""
    streams: list[ChatStream] = []

    async def relay(request: web.Request) -> web.StreamResponse:
        stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("你好")])
        streams.append(stream)
        return await relay_response(request, stream, allowed_origins=allowed_origins)

    app = web.Application()
    app.router.add_get("/relay", relay)
    async with serve_app(app) as url:
        yield f"{url}/relay", streams


def _events(body: bytes) -> list[tuple[str, Any]]:
    return [(e.event, json.loads(e.data)) for e in SSEDecoder().feed(body)]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- item 3: cross-site requests ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        # A page on another site opens EventSource("https://relay/chat?q=..."): the browser
        # sends both headers.
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        # A sibling subdomain is "same-site" but still another origin.
        {"Origin": "http://evil.127.0.0.1.nip.io", "Sec-Fetch-Site": "same-site"},
        # An older browser without Fetch Metadata: the Origin alone gives it away.
        {"Origin": "http://evil.example"},
        # Sandboxed iframes and some redirects send the opaque origin.
        {"Origin": "null"},
        # Fetch Metadata wins over an Origin that claims to be anything.
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_site_relay_is_refused_before_anything_is_sent(
    emu: Emulator, coze: AsyncCoze, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with relay_app(coze) as (url, streams):
        with anyio.fail_after(10):
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 403
                assert resp.content_type != "text/event-stream"
                assert b"event:" not in await resp.read()
    assert _chat_posts(emu) == [], "a refused relay must not start a chat at Coze"
    assert emu.requests == []
    assert streams[0].closed


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, a server-side client: no browser, no cross-site risk
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {"Sec-Fetch-Site": "same-origin", "Origin": "SELF"},
        {"Origin": "SELF"},  # an older browser on the relay's own page
    ],
)
async def test_same_origin_and_non_browser_relays_are_served(
    emu: Emulator, coze: AsyncCoze, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    async with relay_app(coze) as (url, _):
        own_origin = url.removesuffix("/relay")
        sent = {k: own_origin if v == "SELF" else v for k, v in headers.items()}
        with anyio.fail_after(20):
            async with http.get(url, headers=sent) as resp:
                assert resp.status == 200
                events = _events(await resp.read())
    assert events[-1][0] == "done"
    assert len(_chat_posts(emu)) == 1


async def test_allowed_origins_admit_a_named_cross_site_page(
    emu: Emulator, coze: AsyncCoze, http: aiohttp.ClientSession
) -> None:
    async with relay_app(coze, allowed_origins=["https://app.example.com"]) as (url, _):
        with anyio.fail_after(20):
            ok = {"Origin": "https://APP.example.com:443", "Sec-Fetch-Site": "cross-site"}
            async with http.get(url, headers=ok) as resp:
                assert resp.status == 200
                assert _events(await resp.read())[-1][0] == "done"
            evil = {
                "Origin": "https://app.example.com.evil.example",
                "Sec-Fetch-Site": "cross-site",
            }
            async with http.get(url, headers=evil) as resp:
                assert resp.status == 403
    assert len(_chat_posts(emu)) == 1


def test_origin_allowed_rules() -> None:
    host = "chat.example.com"

    def allowed(headers: dict[str, str], origins: Collection[str] = ()) -> bool:
        return origin_allowed(headers, host=host, scheme="https", allowed_origins=origins)

    assert allowed({})
    assert allowed({"sec-fetch-site": "same-origin"})  # header names are case-insensitive
    assert allowed({"Origin": "https://chat.example.com"})
    assert allowed({"Origin": "https://chat.example.com:443"})
    assert not allowed({"Origin": "http://chat.example.com"})  # another scheme: another origin
    assert not allowed({"Origin": "https://chat.example.com.evil.example"})
    assert not allowed({"Sec-Fetch-Site": "cross-site", "Origin": "https://chat.example.com"})
    assert not allowed({"Sec-Fetch-Site": "something-new"})
    assert allowed(
        {"Sec-Fetch-Site": "same-site", "Origin": "https://a.example.com"},
        ["https://a.example.com/"],
    )
    assert not allowed({"Sec-Fetch-Site": "same-site"}, ["https://a.example.com"])
    with pytest.raises(InvalidArgumentError, match="allowed_origins"):
        allowed({}, ["https://a.example.com/path"])
    with pytest.raises(InvalidArgumentError, match="allowed_origins"):
        allowed({}, "https://a.example.com")  # a bare string is not a collection of origins


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_aiohttp_example_refuses_cross_site_chat(
    emu: Emulator, coze: AsyncCoze, http: aiohttp.ClientSession
) -> None:
    example = _load_example("app")
    async with serve_app(example.make_app(coze, heartbeat=5)) as url:
        with anyio.fail_after(20):
            evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
            async with http.get(f"{url}/chat", params={"q": "你好"}, headers=evil) as resp:
                assert resp.status == 403
            assert _chat_posts(emu) == []
            same = {"Sec-Fetch-Site": "same-origin"}
            async with http.get(f"{url}/chat", params={"q": "你好"}, headers=same) as resp:
                assert resp.status == 200
                assert _events(await resp.read())[-1][0] == "done"
    assert len(_chat_posts(emu)) == 1


async def test_fastapi_example_refuses_cross_site_chat(emu: Emulator) -> None:
    pytest.importorskip("fastapi")
    import httpx

    example = _load_example("fastapi_app")
    transport = httpx.ASGITransport(app=example.app)
    async with AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        example.app.state.coze = coze
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
            evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
            resp = await client.get("/chat", params={"q": "你好"}, headers=evil)
            assert resp.status_code == 403
    assert _chat_posts(emu) == []


# -- item 3: error frames carry no internal text --------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _error_frame(stream: ChatStream) -> dict[str, Any]:
    with anyio.fail_after(20):
        frames = [f async for f in sse_frames(stream)]
    events = _events(b"".join(frames))
    assert events[-1][0] == "error"
    payload: dict[str, Any] = events[-1][1]
    assert set(payload) == {"type", "code", "msg", "logid"}
    return payload


async def test_unreachable_upstream_frame_hides_host_and_aiohttp_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = _closed_port()
    async with AsyncCoze(
        token="pat_x", base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy.none()
    ) as coze:
        stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")])
        with caplog.at_level(logging.INFO, logger="coze_async.relay"):
            error = await _error_frame(stream)
    assert error["type"] == "TransportError"
    assert error["code"] == "upstream_unavailable"
    assert str(port) not in error["msg"] and "127.0.0.1" not in error["msg"]
    assert "Errno" not in error["msg"] and "Connect call failed" not in error["msg"]
    assert error["logid"] is None
    # The detail an operator needs is in the server log instead.
    assert any(str(port) in r.getMessage() for r in caplog.records)


async def test_broken_upstream_frame_hides_exception_text(
    emu: Emulator, coze: AsyncCoze, caplog: pytest.LogCaptureFixture
) -> None:
    stream = coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("你好")],
        extra_headers={FAULT_HEADER: "drop-after=4"},
    )
    with caplog.at_level(logging.INFO, logger="coze_async.relay"):
        error = await _error_frame(stream)
    assert error["type"] == "StreamInterruptedError"
    assert error["code"] == "upstream_interrupted"
    logged = [r.getMessage() for r in caplog.records if "upstream stream failed" in r.getMessage()]
    assert logged, "the detail goes to the log"
    detail = logged[0].split("upstream stream failed: ", 1)[1]
    assert detail not in error["msg"]
    assert error["logid"]  # still there to quote to Coze support


async def test_gateway_html_error_frame_hides_the_page(emu: Emulator, coze: AsyncCoze) -> None:
    stream = coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("你好")],
        extra_headers={FAULT_HEADER: "html-502"},
    )
    error = await _error_frame(stream)
    assert error["type"] == "ServerError"
    assert error["code"] == "upstream_error"
    assert "nginx" not in error["msg"] and "<" not in error["msg"]
    assert error["logid"]


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("json-error=4100", "AuthenticationError", 4100),
        ("error-at=4;error-code=4016", "StreamErrorEvent", 4016),
        ("chat-failed;error-code=4028", "ChatFailedError", 4028),
    ],
)
async def test_coze_errors_keep_their_code_with_a_fixed_message(
    emu: Emulator, coze: AsyncCoze, fault: str, kind: str, code: int
) -> None:
    stream = coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("你好")],
        extra_headers={FAULT_HEADER: fault},
    )
    error = await _error_frame(stream)
    assert (error["type"], error["code"]) == (kind, code)
    assert error["logid"]
    # A short fixed text chosen by the SDK, not whatever the upstream said.
    assert error["msg"] and error_message(code) not in error["msg"]


# -- item 10: plain-asyncio cancellation still cancels the chat at Coze ----------------------


def _slow_stream(coze: AsyncCoze) -> ChatStream:
    return coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("慢慢说")], extra_headers=SLOW
    )


async def _assert_cancelled_and_whole(stream: ChatStream, coze: AsyncCoze, emu: Emulator) -> None:
    chat = stream.snapshot.chat
    assert chat is not None
    assert [r.json for r in _cancel_posts(emu)] == [
        {"conversation_id": chat.conversation_id, "chat_id": chat.id}
    ]
    assert emu.cancels == [(chat.conversation_id, chat.id)]
    assert stream.closed
    with anyio.fail_after(10):
        await emu.wait_idle()
        # The pool and the limiter got everything back: two streams at once still fit.
        async with _slow_stream(coze) as one, _slow_stream(coze) as two:
            await one.__anext__()
            await two.__anext__()
    assert coze.limiter is not None
    assert coze.limiter.in_flight_waiters() == 0  # type: ignore[attr-defined]


async def test_task_cancel_of_frame_consumer_sends_chat_cancel(
    pooled: AsyncCoze, emu: Emulator
) -> None:
    stream = _slow_stream(pooled)
    got_delta = asyncio.Event()

    async def consume() -> None:
        decoder = SSEDecoder()
        async for frame in sse_frames(stream, heartbeat=0.05):
            if any(e.event == "delta" for e in decoder.feed(frame)):
                got_delta.set()

    task = asyncio.get_running_loop().create_task(consume())
    async with asyncio.timeout(10):
        await got_delta.wait()
        task.cancel()  # plain asyncio, no anyio scope anywhere
        with pytest.raises(asyncio.CancelledError):
            await task
    await _assert_cancelled_and_whole(stream, pooled, emu)


async def test_asyncio_timeout_around_frames_sends_chat_cancel(
    pooled: AsyncCoze, emu: Emulator
) -> None:
    stream = _slow_stream(pooled)
    decoder = SSEDecoder()
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(10) as deadline:
            async for frame in sse_frames(stream, heartbeat=0.05):
                if any(e.event == "delta" for e in decoder.feed(frame)):
                    # The caller's deadline passes mid-chat (now, rather than after a sleep).
                    deadline.reschedule(loop.time())
    await _assert_cancelled_and_whole(stream, pooled, emu)


async def test_task_cancel_of_relay_response_handler_sends_chat_cancel(
    pooled: AsyncCoze, emu: Emulator, http: aiohttp.ClientSession
) -> None:
    streams: list[ChatStream] = []
    handler_tasks: list[asyncio.Task[Any]] = []
    got_delta = asyncio.Event()
    finished = asyncio.Event()

    async def relay(request: web.Request) -> web.StreamResponse:
        current = asyncio.current_task()
        assert current is not None
        handler_tasks.append(current)
        stream = _slow_stream(pooled)
        streams.append(stream)
        try:
            return await relay_response(request, stream, heartbeat=0.05)
        finally:
            finished.set()

    app = web.Application()
    app.router.add_get("/relay", relay)
    async with serve_app(app) as url:
        async with asyncio.timeout(10):
            async with http.get(f"{url}/relay") as resp:
                decoder = SSEDecoder()
                async for chunk in resp.content.iter_any():
                    if any(e.event == "delta" for e in decoder.feed(chunk)):
                        got_delta.set()
                        break
                # E.g. a server shutting down, or a framework timeout: task.cancel().
                handler_tasks[0].cancel()
                await finished.wait()
    await _assert_cancelled_and_whole(streams[0], pooled, emu)


async def _cancel_until_done(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` natively at every turn of the loop until it ends.

    What a caller does whose scopes keep firing while the relay cleans up: nested
    ``asyncio.timeout`` blocks expiring one after the other, a server shutdown cancelling a
    handler that a disconnect already cancelled. Each ``sleep(0)`` only yields one turn.
    """
    while not task.done():
        task.cancel()
        await asyncio.sleep(0)


class _AnnouncingBot(EchoBot):
    """The echo bot, setting ``started`` when a chat reaches it (before any event is sent)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    def start(self, ctx: TurnContext) -> Turn:
        self.started.set()
        return super().start(ctx)


@pytest.mark.parametrize("when", ["after-first-delta", "while-opening"])
async def test_repeated_native_cancellation_still_sends_chat_cancel(
    pooled: AsyncCoze, emu: Emulator, when: str
) -> None:
    bot = _AnnouncingBot()
    emu.add_bot(ECHO_BOT_ID, bot)
    stream = _slow_stream(pooled)
    started = asyncio.Event()

    async def consume() -> None:
        decoder = SSEDecoder()
        frames = sse_frames(stream, heartbeat=0.05)
        try:
            async for frame in frames:
                events = decoder.feed(frame)
                if when == "after-first-delta" and any(e.event == "delta" for e in events):
                    started.set()
        finally:
            await frames.aclose()

    task = asyncio.get_running_loop().create_task(consume())
    async with asyncio.timeout(15):
        if when == "after-first-delta":
            await started.wait()
        else:
            # The chat has reached Coze but the relay has (most likely) read no event yet:
            # it must wait for the chat id (bounded) to cancel the chat it started.
            await bot.started.wait()
        await _cancel_until_done(task)
    assert task.cancelled()
    await _assert_cancelled_and_whole(stream, pooled, emu)
