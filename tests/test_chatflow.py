"""Chatflows (``/v1/workflows/chat``) over real sockets: chat events, done with debug_url."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ChatCompleted,
    ChatCreated,
    ChatInProgress,
    ChatStream,
    Done,
    InvalidArgumentError,
    Message,
    MessageCompleted,
    MessageDelta,
    NotFoundError,
    StreamErrorEvent,
)
from coze_async.emulator import CHATFLOW_ID, ECHO_WORKFLOW_ID, FAULT_HEADER, Emulator

pytestmark = pytest.mark.anyio

APP_ID = "7300000000000000001"


async def test_chatflow_streams_chat_events_and_keeps_debug_url(
    coze: AsyncCoze, emu: Emulator
) -> None:
    stream = coze.workflows.chat(
        workflow_id=CHATFLOW_ID,
        app_id=APP_ID,
        messages=[Message.user("今天天气怎么样")],
        parameters={"CONVERSATION_NAME": "默认"},
        ext={"user_id": "u-9"},
    )
    assert isinstance(stream, ChatStream)
    assert not emu.requests, "nothing sent before async with"
    async with stream:
        events = [e async for e in stream]
    kinds = [type(e) for e in events]
    assert kinds[:2] == [ChatCreated, ChatInProgress]
    assert kinds.count(MessageDelta) >= 3
    assert ChatCompleted in kinds
    assert kinds[-1] is Done
    done = events[-1]
    assert isinstance(done, Done)
    assert done.debug_url is not None and "work_flow?execute_id=" in done.debug_url
    assert "&space_id=" in done.debug_url, "the \\u0026 escape is decoded"
    snap = await stream.final()
    assert snap.text == "你说：今天天气怎么样"
    assert snap.debug_url == done.debug_url
    assert snap.status == "completed"
    assert snap.chat is not None and snap.chat.bot_id is None, "chatflow chats carry no bot_id"
    answers = [e for e in events if isinstance(e, MessageCompleted) and e.message.type == "answer"]
    assert answers[0].message.content == snap.text
    (sent,) = [r for r in emu.requests if r.path == "/v1/workflows/chat"]
    assert sent.json == {
        "workflow_id": CHATFLOW_ID,
        "additional_messages": [
            {
                "role": "user",
                "content": "今天天气怎么样",
                "content_type": "text",
                "type": "question",
            }
        ],
        "parameters": {"CONVERSATION_NAME": "默认"},
        "app_id": APP_ID,
        "ext": {"user_id": "u-9"},
    }


async def test_chatflow_continues_a_conversation(coze: AsyncCoze) -> None:
    async with coze.workflows.chat(
        workflow_id=CHATFLOW_ID, bot_id="7400000000000000001", messages=[Message.user("第一句")]
    ) as first:
        snap = await first.final()
    assert snap.chat is not None
    conversation_id = snap.chat.conversation_id
    async with coze.workflows.chat(
        workflow_id=CHATFLOW_ID,
        bot_id="7400000000000000001",
        conversation_id=conversation_id,
        messages=[Message.assistant("好的"), Message.user("第二句")],
    ) as second:
        again = await second.final()
    assert again.chat is not None and again.chat.conversation_id == conversation_id
    assert again.text == "你说：第二句"


async def test_chatflow_error_event(coze: AsyncCoze) -> None:
    stream = coze.workflows.chat(
        workflow_id=CHATFLOW_ID,
        app_id=APP_ID,
        messages=[Message.user("你好啊朋友们")],
        extra_headers={FAULT_HEADER: "error-at=4;error-code=4016"},
    )
    with pytest.raises(StreamErrorEvent) as info:
        async with stream:
            await stream.final()
    assert info.value.code == 4016
    assert info.value.partial.text, "the deltas received before the error are kept"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"app_id": APP_ID, "bot_id": "1"}, "exactly one of app_id"),
        ({}, "exactly one of app_id"),
        ({"app_id": APP_ID, "messages": []}, "at least"),
        ({"app_id": APP_ID, "messages": [Message.assistant("hi")]}, "last message"),
        ({"app_id": APP_ID, "messages": [Message.user("x")] * 51}, "at most 50"),
        ({"app_id": APP_ID, "messages": Message.user("x")}, "list of Message"),
    ],
)
async def test_bad_chatflow_arguments_fail_before_sending(
    coze: AsyncCoze,
    emu: Emulator,
    kwargs: dict[str, Any],
    fragment: str,
) -> None:
    args = {"workflow_id": CHATFLOW_ID, "messages": [Message.user("hi")], **kwargs}
    with pytest.raises(InvalidArgumentError, match=fragment):
        coze.workflows.chat(**args)
    assert not emu.requests


async def test_chatflow_request_errors(coze: AsyncCoze) -> None:
    with pytest.raises(NotFoundError) as unknown:
        async with coze.workflows.chat(
            workflow_id="7599999999999999999", app_id=APP_ID, messages=[Message.user("hi")]
        ):
            pass
    assert unknown.value.code == 4200
    with pytest.raises(BadRequestError, match="not a chatflow"):
        async with coze.workflows.chat(
            workflow_id=ECHO_WORKFLOW_ID, app_id=APP_ID, messages=[Message.user("hi")]
        ):
            pass
    with pytest.raises(BadRequestError, match="chatflow"):
        await coze.workflows.run(workflow_id=CHATFLOW_ID)


async def test_chatflow_framing_has_spaces_and_done_object(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.token}"}
    body = {
        "workflow_id": CHATFLOW_ID,
        "app_id": APP_ID,
        "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.url}/v1/workflows/chat", json=body, headers=headers) as resp,
    ):
        raw = await resp.read()
    frames = raw.split(b"\n\n")
    assert frames[0].startswith(b"event: conversation.chat.created\ndata: {")
    assert b"id:" not in raw, "chatflow events have no id lines"
    assert frames[-2].startswith(b'event: done\ndata: {"debug_url":"https://www.coze.cn/work_flow?')
    assert b"\\u0026" in frames[-2]
    assert b'"bot_id"' not in raw
