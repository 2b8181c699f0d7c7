"""Chat streams over real sockets: every event type, every terminal rule, every fault."""

from __future__ import annotations

import base64

import pytest

from coze_async import (
    AsyncCoze,
    AudioDelta,
    AuthenticationError,
    ChatCompleted,
    ChatCreated,
    ChatFailed,
    ChatFailedError,
    ChatInProgress,
    ChatRequiresAction,
    ChatSnapshot,
    ConflictError,
    Done,
    IncompleteStreamError,
    InvalidEventError,
    Message,
    MessageCompleted,
    MessageDelta,
    ServerError,
    StreamErrorEvent,
    StreamInterruptedError,
    TransportTimeoutError,
    UnknownEvent,
    accumulate_chat,
)
from coze_async.emulator import (
    AUDIO_BOT_ID,
    ECHO_BOT_ID,
    FAULT_HEADER,
    TOOL_BOT_ID,
    Emulator,
    sse_frame,
)

from ._payloads import CHAT, CONV, DONE, chat_obj, delta_frames, full_chat, msg_obj, start_frames

pytestmark = pytest.mark.anyio

HI = [Message.user("你好")]


def _fault(spec: str) -> dict[str, str]:
    return {FAULT_HEADER: spec}


async def test_echo_stream_yields_typed_events_and_done_last(coze: AsyncCoze) -> None:
    events = []
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("早上好，今天天气怎么样")]
    ) as stream:
        async for event in stream:
            events.append(event)
    kinds = [type(e) for e in events]
    assert kinds[0] is ChatCreated
    assert kinds[1] is ChatInProgress
    assert kinds.count(MessageDelta) >= 3
    assert ChatCompleted in kinds
    assert kinds[-1] is Done
    assert events[-1].data == "[DONE]"
    deltas = "".join(e.message.content for e in events if isinstance(e, MessageDelta))
    answer = [
        e.message for e in events if isinstance(e, MessageCompleted) and e.message.type == "answer"
    ]
    assert answer[0].content == deltas
    assert "早上好，今天天气怎么样" in deltas
    snap = stream.snapshot
    assert snap.text == deltas
    assert snap.status == "completed"
    assert snap.usage is not None and snap.usage.token_count > 0
    assert snap.follow_ups, "the echo bot suggests follow-up questions like Coze does"
    assert stream.logid is not None and len(stream.logid) == 34
    assert stream.closed


async def test_text_view_and_final(coze: AsyncCoze) -> None:
    stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("你好")])
    async with stream:
        pieces = [piece async for piece in stream.text()]
        final = await stream.final()
    assert "".join(pieces) == final.text
    assert "你好" in final.text
    assert final.done is not None


async def test_final_alone_drains(coze: AsyncCoze) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("一二三四五六七八")]
    ) as stream:
        snap = await stream.final()
    assert "一二三四五六七八" in snap.text
    assert [m.type for m in snap.messages].count("answer") == 1


async def test_async_for_without_context_manager_opens_lazily(
    coze: AsyncCoze, emu: Emulator
) -> None:
    stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("hi")])
    assert not [r for r in emu.requests if r.path == "/v3/chat"], "nothing sent before iteration"
    texts = [e async for e in stream]
    assert isinstance(texts[-1], Done)
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 1


async def test_every_event_kind_from_a_scripted_bot(coze: AsyncCoze, emu: Emulator) -> None:
    audio = base64.b64encode(b"\x00\x01" * 64).decode()
    frames = [
        *start_frames(),
        sse_frame(
            "conversation.message.completed",
            msg_obj('{"name":"weather","arguments":{}}', type="function_call", id="1"),
        ),
        *delta_frames("2", "0", "星期三"),
        sse_frame(
            "conversation.audio.delta",
            msg_obj(audio, type="answer", id="2", content_type="audio"),
        ),
        sse_frame("conversation.message.completed", msg_obj("20星期三")),
        sse_frame("conversation.chat.unheard_of", {"x": 1}),
        sse_frame("conversation.chat.completed", chat_obj("completed")),
        DONE,
    ]
    emu.add_scripted_bot("script-all", frames)
    async with coze.chat.stream(bot_id="script-all", user_id="u", messages=HI) as stream:
        events = [e async for e in stream]
    assert [type(e) for e in events] == [
        ChatCreated,
        ChatInProgress,
        MessageCompleted,
        MessageDelta,
        MessageDelta,
        MessageDelta,
        AudioDelta,
        MessageCompleted,
        UnknownEvent,
        ChatCompleted,
        Done,
    ]
    unknown = events[8]
    assert isinstance(unknown, UnknownEvent)
    assert unknown.name == "conversation.chat.unheard_of"
    assert unknown.json() == {"x": 1}
    assert stream.snapshot.audio == b"\x00\x01" * 64
    assert stream.snapshot.text == "20星期三"


async def test_audio_bot_streams_audio(coze: AsyncCoze) -> None:
    async with coze.chat.stream(
        bot_id=AUDIO_BOT_ID, user_id="u", messages=[Message.user("读一下")]
    ) as stream:
        events = [e async for e in stream]
    audio = [e for e in events if isinstance(e, AudioDelta)]
    assert audio
    assert all(e.message.content_type == "audio" for e in audio)
    assert len(stream.snapshot.audio) > 0


async def test_chatflow_done_payload_is_kept(coze: AsyncCoze, emu: Emulator) -> None:
    url = "https://www.coze.cn/work_flow?execute_id=1&space_id=2&workflow_id=3"
    frames = [
        sse_frame("conversation.chat.created", chat_obj("created"), spaced=True),
        sse_frame("conversation.message.delta", msg_obj("I'm fine"), spaced=True),
        sse_frame("conversation.chat.completed", chat_obj("completed"), spaced=True),
        sse_frame("done", {"debug_url": url}, spaced=True),
    ]
    emu.add_scripted_bot("chatflow-like", frames)
    async with coze.chat.stream(bot_id="chatflow-like", user_id="u", messages=HI) as stream:
        events = [e async for e in stream]
    done = events[-1]
    assert isinstance(done, Done)
    assert done.debug_url == url
    assert stream.snapshot.debug_url == url


async def test_events_after_done_are_not_part_of_the_chat(coze: AsyncCoze, emu: Emulator) -> None:
    emu.add_scripted_bot("after-done", [*full_chat("a", "b"), *delta_frames("stray")])
    async with coze.chat.stream(bot_id="after-done", user_id="u", messages=HI) as stream:
        events = [e async for e in stream]
    assert isinstance(events[-1], Done)
    assert stream.snapshot.text == "ab"


async def test_match_statement_on_events(coze: AsyncCoze) -> None:
    seen: list[str] = []
    async with coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")]) as s:
        async for event in s:
            match event:
                case MessageDelta(message=m):
                    seen.append(m.content)
                case ChatCompleted(chat=c):
                    assert c.usage is not None
    assert "x" in "".join(seen)


# -- terminal rules ------------------------------------------------------------------------


async def test_error_event_raises_with_partial(coze: AsyncCoze, emu: Emulator) -> None:
    frames = [
        *start_frames(),
        *delta_frames("部分", "内容"),
        sse_frame("error", {"code": 4016, "msg": "Conversation occupied: Another chat is active"}),
    ]
    emu.add_scripted_bot("err", frames)
    got: list[object] = []
    with pytest.raises(StreamErrorEvent) as info:
        async with coze.chat.stream(bot_id="err", user_id="u", messages=HI) as stream:
            async for event in stream:
                got.append(event)
    err = info.value
    assert err.code == 4016
    assert "Conversation occupied" in err.msg
    assert isinstance(err.partial, ChatSnapshot)
    assert err.partial.text == "部分内容"
    assert err.logid is not None
    assert len(got) == 4
    assert stream.closed


async def test_error_fault_mid_stream_on_echo_bot(coze: AsyncCoze) -> None:
    with pytest.raises(StreamErrorEvent) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("一二三四五六七八九十")],
            extra_headers=_fault("error-at=4;error-code=5000"),
        ) as stream:
            async for _ in stream:
                pass
    assert info.value.code == 5000
    assert info.value.partial.events == 4
    assert info.value.partial.text != ""


async def test_eof_before_done_is_incomplete_with_partial(coze: AsyncCoze) -> None:
    with pytest.raises(IncompleteStreamError) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("一二三四五六七八九十")],
            extra_headers=_fault("eof-after=4"),
        ) as stream:
            async for _ in stream:
                pass
    assert info.value.partial.events == 4
    assert info.value.partial.text  # the two deltas received are kept
    assert info.value.logid == stream.logid


async def test_eof_mid_event_keeps_the_tail(coze: AsyncCoze, emu: Emulator) -> None:
    emu.add_scripted_bot("cut", [*start_frames(), b"event:conversation.message.delta\ndata:{"])
    with pytest.raises(IncompleteStreamError) as info:
        async with coze.chat.stream(bot_id="cut", user_id="u", messages=HI) as stream:
            async for _ in stream:
                pass
    assert info.value.partial.events == 2
    assert info.value.tail is not None
    assert info.value.tail.event == "conversation.message.delta"


async def test_dropped_connection_is_stream_interrupted(coze: AsyncCoze) -> None:
    received = []
    with pytest.raises(StreamInterruptedError) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("一二三四五六七八九十")],
            extra_headers=_fault("drop-after=3"),
        ) as stream:
            async for event in stream:
                received.append(event)
    assert len(received) == 3
    assert info.value.partial.events == 3
    assert info.value.__cause__ is not None  # the aiohttp error, chained, never raised raw


async def test_read_gap_timeout_mid_stream(emu: Emulator) -> None:
    from coze_async import Timeouts

    async with AsyncCoze(token=emu.token, base_url=emu.url, timeouts=Timeouts(read=0.3)) as client:
        with pytest.raises(StreamInterruptedError) as info:
            async with client.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("你好")],
                extra_headers=_fault("latency=5"),
            ) as stream:
                async for _ in stream:
                    pass
        assert isinstance(info.value.__cause__, TimeoutError)


async def test_malformed_event_data(coze: AsyncCoze) -> None:
    with pytest.raises(InvalidEventError) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("一二三四五六七八九十")],
            extra_headers=_fault("malformed-at=3"),
        ) as stream:
            async for _ in stream:
                pass
    err = info.value
    assert err.partial.events == 3
    assert err.event == "conversation.message.delta"
    assert err.data.startswith("{")


async def test_wrong_shape_event_is_invalid_with_path(coze: AsyncCoze, emu: Emulator) -> None:
    bad = chat_obj("completed", usage={"token_count": "lots"})
    emu.add_scripted_bot("shape", [*start_frames(), sse_frame("conversation.chat.completed", bad)])
    with pytest.raises(InvalidEventError) as info:
        async with coze.chat.stream(bot_id="shape", user_id="u", messages=HI) as stream:
            async for _ in stream:
                pass
    assert "token_count" in str(info.value)


async def test_chat_failed_event_then_final_raises(coze: AsyncCoze) -> None:
    stream = coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("hi")],
        extra_headers=_fault("chat-failed;error-code=4028"),
    )
    async with stream:
        events = [e async for e in stream]
        assert isinstance(events[-1], ChatFailed)  # EOF after failed is a normal end
        with pytest.raises(ChatFailedError) as info:
            await stream.final()
    assert info.value.code == 4028
    assert info.value.partial is stream.snapshot


async def test_json_error_instead_of_sse(coze: AsyncCoze) -> None:
    with pytest.raises(AuthenticationError) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("hi")],
            extra_headers=_fault("json-error=4100"),
        ):
            pass
    assert info.value.code == 4100
    assert info.value.logid


async def test_html_502_on_stream_open(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(ServerError) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("hi")],
            extra_headers=_fault("html-502"),
        ):
            pass
    assert info.value.http_status == 502
    assert "502" in str(info.value)
    # a chat is not idempotent: a 502 may have reached Coze, so it is not retried
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 1


async def test_slow_headers_time_out(emu: Emulator) -> None:
    from coze_async import RetryPolicy, Timeouts

    async with AsyncCoze(
        token=emu.token,
        base_url=emu.url,
        timeouts=Timeouts(read=0.3),
        retry=RetryPolicy(max_retries=0),
    ) as client:
        with pytest.raises(TransportTimeoutError) as info:
            async with client.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("hi")],
                extra_headers=_fault("slow-headers=3"),
            ):
                pass
    assert info.value.phase == "headers"


async def test_conversation_busy_is_conflict(coze: AsyncCoze) -> None:
    chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")])
    # Non-streamed: Coze's envelope, a ConflictError.
    with pytest.raises(ConflictError) as conflict:
        await coze.chat.create(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            conversation_id=chat.conversation_id,
            messages=[Message.user("b")],
        )
    assert conflict.value.code == 4016
    # Streamed: Coze answers with an SSE error event, so the stream raises it, code and all.
    with pytest.raises(StreamErrorEvent) as info:
        async with coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            conversation_id=chat.conversation_id,
            messages=[Message.user("b")],
        ) as stream:
            async for _ in stream:
                pass
    assert info.value.code == 4016
    assert info.value.msg.startswith("Conversation occupied: Another chat is currently active.")


# -- tool calls and cancel -----------------------------------------------------------------


async def test_requires_action_then_submit_tool_outputs_stream(coze: AsyncCoze) -> None:
    from coze_async import ToolOutput

    async with coze.chat.stream(
        bot_id=TOOL_BOT_ID, user_id="u", messages=[Message.user("北京天气？")]
    ) as stream:
        events = [e async for e in stream]
    action = next(e for e in events if isinstance(e, ChatRequiresAction))
    calls = action.chat.required_action.tool_calls  # type: ignore[union-attr]
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.parsed_arguments() == {"city": "北京"}
    chat = action.chat
    async with coze.chat.submit_tool_outputs_stream(
        conversation_id=chat.conversation_id,
        chat_id=chat.id,
        tool_outputs=[ToolOutput(tool_call_id=calls[0].id, output="晴，25度")],
    ) as follow:
        final = await follow.final()
    assert final.chat is not None and final.chat.id == chat.id
    assert final.status == "completed"
    assert "晴，25度" in final.text


async def test_cancel_calls_chat_cancel(coze: AsyncCoze, emu: Emulator) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("一二三四五六七八九十" * 5)],
        extra_headers=_fault("latency=0.05"),
    ) as stream:
        async for event in stream:
            if isinstance(event, MessageDelta):
                cancelled = await stream.cancel()
                break
    assert cancelled is not None and cancelled.status == "canceled"
    assert emu.cancels == [(cancelled.conversation_id, cancelled.id)]
    assert stream.closed
    await emu.wait_idle()
    assert emu.open_streams == 0


def test_accumulate_is_replayable() -> None:
    from coze_async.models.wire import chat_event_from_sse
    from coze_async.sse import SSEDecoder

    body = b"".join(full_chat("早", "上", "好"))
    snap = ChatSnapshot()
    for sse in SSEDecoder().feed(body):
        snap = accumulate_chat(snap, chat_event_from_sse(sse.event, sse.data))
    assert snap.text == "早上好"
    assert snap.chat is not None and snap.chat.id == CHAT
    assert snap.chat.conversation_id == CONV
    assert snap.done is not None
