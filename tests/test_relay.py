"""``coze_async.relay`` over real sockets: emulator <- AsyncCoze <- relay app <- HTTP client.

Every test runs the whole chain on loopback: the emulator speaks Coze's wire protocol, an
``AsyncCoze`` client streams from it, an ``aiohttp.web`` app relays the stream with
``relay_response`` (or a test drives ``sse_frames`` directly, as an ASGI framework would), and
an ``aiohttp`` client plays the browser. Waiting is always on a condition (a frame, a handler
finishing, the emulator going idle), each bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from coze_async import AsyncCoze, ChatStream, Message, Plan, RetryPolicy
from coze_async.emulator import (
    AUDIO_BOT_ID,
    CHATFLOW_ID,
    ECHO_BOT_ID,
    FAILING_WORKFLOW_ID,
    FAULT_HEADER,
    QA_WORKFLOW_ID,
    REPEAT_HEADER,
    STREAM_WORKFLOW_ID,
    TOOL_BOT_ID,
    Emulator,
    sse_frame,
)
from coze_async.emulator.bots import FOLLOW_UPS
from coze_async.errors import InvalidArgumentError
from coze_async.ratelimit import Bucket
from coze_async.relay import (
    PING_FRAME,
    RELAY_HEADERS,
    encode_sse,
    relay_response,
    sse_frames,
)
from coze_async.sse import SSEDecoder

pytestmark = pytest.mark.anyio

# ~1,000 deltas 20 ms apart: far longer than any test, so only a disconnect ends it early.
SLOW = "latency=0.02"
LONG_REPEAT = "100"


# -- the relay app ------------------------------------------------------------------------


@dataclass
class RelayApp:
    """A running relay app: its URL and what its handlers did."""

    url: str
    #: One event per request handled, set when the handler has returned (or raised).
    finished: list[anyio.Event] = field(default_factory=list)
    #: Exceptions that escaped a handler (CancelledError included): there should be none
    #: except the cancellation aiohttp itself delivers with handler_cancellation=True.
    escaped: list[BaseException] = field(default_factory=list)
    #: The streams the handlers relayed, in request order.
    streams: list[Any] = field(default_factory=list)

    async def handler_done(self, index: int = 0) -> None:
        with anyio.fail_after(10):
            await self.finished[index].wait()


def _make_stream(coze: AsyncCoze, query: Any) -> Any:
    headers = {}
    if "fault" in query:
        headers[FAULT_HEADER] = query["fault"]
    if "repeat" in query:
        headers[REPEAT_HEADER] = query["repeat"]
    kind = query.get("kind", "chat")
    if kind == "chat":
        return coze.chat.stream(
            bot_id=query.get("bot", ECHO_BOT_ID),
            user_id="u-relay",
            messages=[Message.user(query.get("q", "早上好"))],
            extra_headers=headers,
        )
    if kind == "chatflow":
        return coze.workflows.chat(
            workflow_id=CHATFLOW_ID,
            bot_id=ECHO_BOT_ID,
            messages=[Message.user(query.get("q", "早上好"))],
            extra_headers=headers,
        )
    return coze.workflows.stream(workflow_id=query["wf"], parameters={}, extra_headers=headers)


@asynccontextmanager
async def serve(coze: AsyncCoze, *, handler_cancellation: bool = False) -> AsyncIterator[RelayApp]:
    """Start a relay app on a free loopback port; every option comes from the query string."""
    app = web.Application()
    state = RelayApp(url="")

    async def relay(request: web.Request) -> web.StreamResponse:
        done = anyio.Event()
        state.finished.append(done)
        try:
            query = request.query
            stream = _make_stream(coze, query)
            state.streams.append(stream)
            types = query.get("types")
            return await relay_response(
                request,
                stream,
                heartbeat=float(query.get("hb", "15")),
                cancel_on_disconnect=query.get("cancel", "1") == "1",
                message_types=types.split(",") if types else ("answer",),
                headers={"X-Relay-Test": "1"},
            )
        except BaseException as exc:
            state.escaped.append(exc)
            raise
        finally:
            done.set()

    app.router.add_get("/relay", relay)
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url = f"http://{host}:{port}/relay"
    try:
        yield state
    finally:
        await runner.cleanup()


@dataclass
class Frame:
    event: str
    data: Any
    id: str | None


async def read_frames(resp: aiohttp.ClientResponse) -> AsyncIterator[Frame]:
    """Decode the relay's body as a browser would (comments are skipped by the decoder)."""
    decoder = SSEDecoder()
    async for chunk in resp.content.iter_any():
        for sse in decoder.feed(chunk):
            yield Frame(sse.event, json.loads(sse.data), sse.id)


async def get_frames(http: aiohttp.ClientSession, url: str, **query: str) -> list[Frame]:
    with anyio.fail_after(20):
        async with http.get(url, params=query) as resp:
            assert resp.status == 200
            return [f async for f in read_frames(resp)]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def relay(coze: AsyncCoze) -> AsyncIterator[RelayApp]:
    async with serve(coze) as app:
        yield app


def _names(frames: list[Frame]) -> list[str]:
    # Consecutive deltas collapse to one "delta*" so sequences read like the protocol.
    out: list[str] = []
    for f in frames:
        name = "delta*" if f.event == "delta" else f.event
        if not (out and out[-1] == name == "delta*"):
            out.append(name)
    return out


# -- chat frames ----------------------------------------------------------------------------


async def test_chat_relay_frames_and_headers(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    with anyio.fail_after(20):
        async with http.get(relay.url, params={"q": "早上好"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
            assert resp.headers["Cache-Control"] == "no-cache"
            assert resp.headers["X-Accel-Buffering"] == "no"
            assert resp.headers["X-Relay-Test"] == "1"
            frames = [f async for f in read_frames(resp)]

    assert _names(frames) == [
        "chat",
        "chat",
        "delta*",
        "message",
        "suggestions",
        "usage",
        "done",
    ]
    assert [f.id for f in frames] == [str(i) for i in range(len(frames))]
    created, in_progress = frames[0].data, frames[1].data
    assert created["status"] == "created" and in_progress["status"] == "in_progress"
    chat_id, conversation_id = created["chat_id"], created["conversation_id"]
    assert chat_id and conversation_id

    deltas = [f.data for f in frames if f.event == "delta"]
    assert len(deltas) >= 3
    assert "".join(d["text"] for d in deltas) == "你说：早上好"
    message = next(f.data for f in frames if f.event == "message")
    assert message["type"] == "answer" and message["content"] == "你说：早上好"
    assert message["content_type"] == "text"
    assert {d["message_id"] for d in deltas} == {message["id"]}

    suggestions = next(f.data for f in frames if f.event == "suggestions")
    assert suggestions == list(FOLLOW_UPS)
    usage = next(f.data for f in frames if f.event == "usage")
    assert usage["output_count"] > 0 and usage["token_count"] > 0

    done = frames[-1].data
    assert done == {
        "chat_id": chat_id,
        "conversation_id": conversation_id,
        "status": "completed",
        "usage": usage,
    }
    await relay.handler_done()
    assert relay.escaped == []
    assert relay.streams[0].closed


async def test_multiline_text_round_trips(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    text = "第一行\n第二行\r\n  indented: line\n\nlast\rline"
    frames = await get_frames(http, relay.url, q=text)
    deltas = "".join(f.data["text"] for f in frames if f.event == "delta")
    assert deltas == "你说：" + text
    assert next(f.data["content"] for f in frames if f.event == "message") == "你说：" + text


def test_encode_sse_splits_lines() -> None:
    frame = encode_sse("one\ntwo\r\nthree\rfour", event="note", id=7, retry=1000)
    assert frame == (
        b"id: 7\nevent: note\nretry: 1000\ndata: one\ndata: two\ndata: three\ndata: four\n\n"
    )
    (decoded,) = SSEDecoder().feed(frame)
    assert decoded.event == "note" and decoded.id == "7"
    assert decoded.data == "one\ntwo\nthree\nfour"
    # Leading spaces survive: only the one space after "data:" is the separator.
    (spaced,) = SSEDecoder().feed(encode_sse("  two spaces\n"))
    assert spaced.data == "  two spaces\n"
    with pytest.raises(InvalidArgumentError):
        encode_sse("x", event="a\nb")
    with pytest.raises(InvalidArgumentError):
        encode_sse("x", id="1\r2")


async def test_tool_call_chat_relays_requires_action(
    relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    frames = await get_frames(http, relay.url, bot=TOOL_BOT_ID, q="天气")
    # The function_call message is internal by default: not relayed.
    assert _names(frames) == ["chat", "chat", "requires_action", "done"]
    action = frames[2].data
    assert action["chat_id"] == frames[0].data["chat_id"]
    assert [c["name"] for c in action["tool_calls"]] == ["get_weather"]
    assert action["tool_calls"][0]["id"]
    assert frames[-1].data["status"] == "requires_action"

    # message_types= opts other message types in.
    frames = await get_frames(
        http, relay.url, bot=TOOL_BOT_ID, q="天气", types="answer,function_call"
    )
    assert _names(frames) == ["chat", "chat", "message", "requires_action", "done"]
    assert frames[2].data["type"] == "function_call"


async def test_scripted_chat_every_event_kind(
    emu: Emulator, relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    bot_id = "7400000000000000777"
    ids = {"conversation_id": "7000000000000000001", "bot_id": bot_id}
    chat = {**ids, "id": "7000000000000000002", "status": "created"}
    msg = {**ids, "chat_id": chat["id"], "role": "assistant", "content_type": "text"}
    answer = {**msg, "id": "7000000000000000003", "type": "answer"}
    usage = {"token_count": 5, "output_count": 2, "input_count": 3}
    script = [
        ("conversation.chat.created", chat),
        ("conversation.chat.in_progress", {**chat, "status": "in_progress"}),
        ("conversation.message.delta", {**answer, "content": "", "reasoning_content": "想"}),
        ("conversation.message.delta", {**answer, "content": "a\n"}),
        ("conversation.audio.delta", {**answer, "content": "AAAA", "content_type": "audio"}),
        ("conversation.chat.mystery", {"anything": 1}),
        ("conversation.message.delta", {**answer, "content": "b"}),
        ("conversation.message.completed", {**answer, "content": "a\nb"}),
        ("conversation.message.completed", {**msg, "id": "8", "type": "verbose", "content": "{}"}),
        (
            "conversation.message.completed",
            {**msg, "id": "9", "type": "follow_up", "content": "再说？"},
        ),
        ("conversation.chat.completed", {**chat, "status": "completed", "usage": usage}),
    ]
    frames_out = [sse_frame(name, data) for name, data in script]
    emu.add_scripted_bot(bot_id, [*frames_out, sse_frame("done", '"[DONE]"')])
    frames = await get_frames(http, relay.url, bot=bot_id)
    assert [f.event for f in frames] == [
        "chat",
        "chat",
        "reasoning",
        "delta",
        "delta",
        "message",
        "suggestions",
        "usage",
        "done",
    ]
    assert frames[2].data == {"text": "想", "message_id": answer["id"]}
    assert [frames[3].data["text"], frames[4].data["text"]] == ["a\n", "b"]
    assert frames[6].data == ["再说？"]
    assert frames[7].data == {"input_count": 3, "output_count": 2, "token_count": 5}
    assert frames[8].data["status"] == "completed"


async def test_audio_deltas_are_not_relayed(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, bot=AUDIO_BOT_ID, q="你好")
    assert _names(frames)[:3] == ["chat", "chat", "delta*"]
    assert "".join(f.data["text"] for f in frames if f.event == "delta") == "你说：你好"


# -- errors -------------------------------------------------------------------------------


async def test_upstream_error_event_becomes_error_frame(
    emu: Emulator, relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    frames = await get_frames(http, relay.url, fault="error-at=4;error-code=4016")
    assert frames[-1].event == "error"
    error = frames[-1].data
    assert error["type"] == "StreamErrorEvent"
    assert error["code"] == 4016
    assert error["msg"]
    assert error["logid"]  # the upstream response's x-tt-logid, to quote to Coze support
    assert [f.event for f in frames].count("error") == 1
    assert "done" not in [f.event for f in frames]
    await relay.handler_done()
    assert relay.escaped == []
    assert relay.streams[0].closed
    # Coze reported the error itself: nothing to cancel.
    assert emu.cancels == []


async def test_failed_chat_becomes_error_frame(
    emu: Emulator, relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    frames = await get_frames(http, relay.url, fault="chat-failed;error-code=4028")
    assert _names(frames) == ["chat", "chat", "error"]
    assert frames[-1].data["type"] == "ChatFailedError"
    assert frames[-1].data["code"] == 4028
    assert frames[-1].data["msg"]
    assert emu.cancels == []


async def test_error_before_the_stream_opens(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, fault="json-error=4100")
    assert [f.event for f in frames] == ["error"]
    assert frames[0].data["type"] == "AuthenticationError"
    assert frames[0].data["code"] == 4100


async def test_broken_upstream_becomes_error_frame_and_cancels(
    emu: Emulator, relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    frames = await get_frames(http, relay.url, fault="drop-after=4")
    assert frames[-1].event == "error"
    assert frames[-1].data["type"] == "StreamInterruptedError"
    # The relay gave up on a chat that may still be generating at Coze: it cancels it.
    chat_id = frames[0].data["chat_id"]
    assert [c for _, c in emu.cancels] == [chat_id]


async def test_unexpected_exception_is_logged_not_sent(
    coze: AsyncCoze, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")])

    async def broken() -> Any:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(stream, "__anext__", broken)
    with caplog.at_level(logging.ERROR, logger="coze_async.relay"), anyio.fail_after(10):
        frames = [f async for f in sse_frames(stream)]
    (frame,) = [f for f in frames if f != PING_FRAME]
    (sse,) = SSEDecoder().feed(frame)
    assert sse.event == "error"
    payload = json.loads(sse.data)
    assert payload["type"] == "InternalError"
    assert "secret" not in payload["msg"]
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)
    assert stream.closed


# -- heartbeats ----------------------------------------------------------------------------


async def test_heartbeat_when_upstream_is_idle(
    relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    # Upstream waits 2 s between events; the relay pings every 50 ms meanwhile.
    with anyio.fail_after(10):
        async with http.get(relay.url, params={"hb": "0.05", "fault": "latency=2"}) as resp:
            body = b""
            while body.count(PING_FRAME) < 2:
                chunk = await resp.content.readany()
                assert chunk, "the body ended before two heartbeats"
                body += chunk
    # The first event came straight away; the pings followed it, as whole SSE comments.
    assert body.startswith(b"id: 0\nevent: chat\n")
    assert body.endswith(PING_FRAME)
    await relay.handler_done()


async def test_heartbeats_never_cut_an_event(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    # Heartbeat interval shorter than the event pace: pings interleave with every event,
    # and the upstream read they time out on is never cancelled, so nothing is lost.
    q = "心跳不会打断事件"
    with anyio.fail_after(20):
        async with http.get(relay.url, params={"q": q, "hb": "0.01", "fault": "latency=0.03"}) as r:
            body = await r.read()
    assert body.count(PING_FRAME) >= 3
    frames = [json.loads(s.data) for s in SSEDecoder().feed(body) if s.event == "delta"]
    assert "".join(f["text"] for f in frames) == "你说：" + q
    assert b"event: done" in body


# -- disconnects ---------------------------------------------------------------------------


async def _pool_and_limiter_are_whole(coze: AsyncCoze, emu: Emulator) -> None:
    assert coze.limiter is not None
    assert coze.limiter.in_flight_waiters() == 0  # type: ignore[attr-defined]

    def stream(text: str) -> ChatStream:
        return coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user(text)])

    # Both streams hold a connection at once: had the relay leaked one, the second would
    # wait for the pool and fail after its 1.5 s pool timeout.
    with anyio.fail_after(10):
        async with stream("一") as one, stream("二") as two:
            assert (await one.final()).text == "你说：一"
            assert (await two.final()).text == "你说：二"
    await emu.wait_idle()
    assert emu.open_streams == 0


async def _read_until_delta(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """Read frames until the first delta; return the chat frame (ids of the chat)."""
    chat: dict[str, Any] = {}
    async with aclosing(read_frames(resp)) as frames:
        async for frame in frames:
            if frame.event == "chat":
                chat = frame.data
            if frame.event == "delta":
                return chat
    pytest.fail("the relay ended before any delta")


@pytest.mark.parametrize("handler_cancellation", [False, True])
async def test_client_disconnect_cancels_chat(
    pooled: AsyncCoze,
    emu: Emulator,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    handler_cancellation: bool,
) -> None:
    async with serve(pooled, handler_cancellation=handler_cancellation) as app:
        with anyio.fail_after(10):
            resp = await http.get(app.url, params={"fault": SLOW, "repeat": LONG_REPEAT})
            chat = await _read_until_delta(resp)
            resp.close()  # the browser tab closes: the TCP connection goes away
            await app.handler_done()
            await emu.wait_idle()  # the upstream stream was closed

        assert emu.cancels == [(chat["conversation_id"], chat["chat_id"])]
        record = emu.state.find_chat(chat["conversation_id"], chat["chat_id"])
        assert record is not None and record.status == "canceled"
        assert app.streams[0].closed
        if handler_cancellation:
            # aiohttp cancels the handler: the relay cleans up and lets that cancellation go.
            assert [type(e) for e in app.escaped] == [asyncio.CancelledError]
        else:
            assert app.escaped == []
        await _pool_and_limiter_are_whole(pooled, emu)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_disconnect_without_cancel(
    pooled: AsyncCoze, emu: Emulator, http: aiohttp.ClientSession
) -> None:
    async with serve(pooled) as app:
        with anyio.fail_after(10):
            params = {"fault": SLOW, "repeat": LONG_REPEAT, "cancel": "0"}
            resp = await http.get(app.url, params=params)
            await _read_until_delta(resp)
            resp.close()
            await app.handler_done()
            await emu.wait_idle()
        assert emu.cancels == []
        assert app.streams[0].closed
        await _pool_and_limiter_are_whole(pooled, emu)


async def test_disconnect_while_waiting_for_quota(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # One chat per minute: the second relay waits in the limiter, pinging the browser.
    plan = Plan(name="tiny", buckets=(Bucket("chat", 1, 60.0), Bucket("model_rpm", 100, 60.0)))
    async with (
        AsyncCoze(token=emu.token, base_url=emu.url, plan=plan, retry=RetryPolicy.none()) as coze,
        serve(coze) as app,
    ):
        assert [f.event for f in await get_frames(http, app.url)][-1] == "done"
        with anyio.fail_after(10):
            async with http.get(app.url, params={"hb": "0.05"}) as resp:
                chunk = await resp.content.readany()
                # Only heartbeats: the relay waits for quota and has sent nothing upstream.
                assert chunk.startswith(PING_FRAME) and b"event:" not in chunk
            await app.handler_done(1)
        assert coze.limiter is not None
        assert coze.limiter.in_flight_waiters() == 0  # type: ignore[attr-defined]
        chats = [r for r in emu.requests if r.path == "/v3/chat"]
        assert len(chats) == 1, "the abandoned relay never sent its chat"
        assert emu.cancels == []


async def test_eventsource_reconnect_gets_204(
    emu: Emulator, relay: RelayApp, http: aiohttp.ClientSession
) -> None:
    with anyio.fail_after(10):
        async with http.get(relay.url, headers={"Last-Event-ID": "3"}) as resp:
            assert resp.status == 204
            assert await resp.read() == b""
    await relay.handler_done()
    assert relay.streams[0].closed
    assert not [r for r in emu.requests if r.path == "/v3/chat"]


# -- workflows and chatflows ------------------------------------------------------------------


async def test_workflow_stream_frames(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, kind="workflow", wf=STREAM_WORKFLOW_ID)
    names = [f.event for f in frames]
    assert names[-1] == "done" and set(names[:-1]) == {"message"}
    messages = [f.data for f in frames[:-1]]
    assert all(
        set(m) == {"content", "node_title", "node_seq_id", "node_is_finish"} for m in messages
    )
    assert any(m["node_is_finish"] for m in messages)
    assert frames[-1].data["interrupted"] is False
    assert frames[-1].data["usage"] is None or frames[-1].data["usage"]["token_count"] >= 0


async def test_workflow_interrupt_frames(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, kind="workflow", wf=QA_WORKFLOW_ID)
    assert [f.event for f in frames] == ["message", "interrupt", "done"]
    interrupt = frames[1].data
    assert interrupt["question"] == "请问你想查看哪个城市的天气呢？"
    assert interrupt["type"] == 2 and interrupt["event_id"]
    assert frames[-1].data["interrupted"] is True


async def test_workflow_error_event(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, kind="workflow", wf=FAILING_WORKFLOW_ID)
    assert frames[0].event == "message"
    assert frames[-1].event == "error"
    assert frames[-1].data["type"] == "StreamErrorEvent"
    assert frames[-1].data["code"]
    await relay.handler_done()
    assert relay.escaped == []


async def test_chatflow_relays_like_a_chat(relay: RelayApp, http: aiohttp.ClientSession) -> None:
    frames = await get_frames(http, relay.url, kind="chatflow", q="你好")
    assert frames[0].event == "chat" and frames[-1].event == "done"
    assert "".join(f.data["text"] for f in frames if f.event == "delta") == "你说：你好"
    assert frames[-1].data["status"] == "completed"


# -- the frame iterator, as ASGI frameworks use it -----------------------------------------


def _slow_stream(coze: AsyncCoze) -> ChatStream:
    return coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("慢慢说")],
        extra_headers={FAULT_HEADER: SLOW, REPEAT_HEADER: LONG_REPEAT},
    )


async def _until_delta(frames: AsyncIterator[bytes]) -> None:
    decoder = SSEDecoder()
    async for frame in frames:
        if any(sse.event == "delta" for sse in decoder.feed(frame)):
            return
    pytest.fail("no delta")


async def test_frame_iterator_closed_early_cancels_chat(pooled: AsyncCoze, emu: Emulator) -> None:
    stream = _slow_stream(pooled)
    frames = sse_frames(stream)
    with anyio.fail_after(10):
        await _until_delta(frames)
        # What Starlette / any consumer does when it stops early: close the generator.
        await frames.aclose()
        await emu.wait_idle()
    assert stream.closed
    chat = stream.snapshot.chat
    assert chat is not None
    assert emu.cancels == [(chat.conversation_id, chat.id)]
    await _pool_and_limiter_are_whole(pooled, emu)


async def test_frame_iterator_cancelled_by_task_group_cancels_chat(
    pooled: AsyncCoze, emu: Emulator
) -> None:
    # Starlette's StreamingResponse runs the body in a task group and cancels it when the
    # ASGI server reports http.disconnect; the relay must clean up under that cancellation.
    stream = _slow_stream(pooled)
    frames = sse_frames(stream, heartbeat=0.05)
    got_delta = anyio.Event()

    async def body() -> None:
        decoder = SSEDecoder()
        async for frame in frames:
            if any(sse.event == "delta" for sse in decoder.feed(frame)):
                got_delta.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(body)
            await got_delta.wait()
            tg.cancel_scope.cancel()
        await emu.wait_idle()
    assert stream.closed
    chat = stream.snapshot.chat
    assert chat is not None
    assert emu.cancels == [(chat.conversation_id, chat.id)]
    await _pool_and_limiter_are_whole(pooled, emu)


async def test_frame_iterator_checks_arguments(coze: AsyncCoze) -> None:
    stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")])
    bad: list[Callable[[], object]] = [
        lambda: sse_frames(stream, heartbeat=0),
        lambda: sse_frames(stream, cancel_timeout=0),
        lambda: sse_frames(object()),  # type: ignore[arg-type]
    ]
    for call in bad:
        with pytest.raises(InvalidArgumentError):
            call()
    await stream.aclose()
    assert dict(RELAY_HEADERS)["Cache-Control"] == "no-cache"
