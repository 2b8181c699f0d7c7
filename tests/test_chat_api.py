"""The non-streaming chat calls and the request bodies, over real sockets."""

from __future__ import annotations

import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ChatFailedError,
    ChatPollTimeoutError,
    ContentItem,
    InvalidArgumentError,
    Message,
    NotFoundError,
    ToolOutput,
)
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, TOOL_BOT_ID, Emulator

pytestmark = pytest.mark.anyio


def _chat_requests(emu: Emulator) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.path == "/v3/chat"]


async def test_create_retrieve_messages_round_trip(coze: AsyncCoze) -> None:
    chat = await coze.chat.create(
        bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("早上好")], meta_data={"k": "v"}
    )
    assert chat.status in ("created", "in_progress")
    assert chat.meta_data == {"k": "v"}
    assert chat.logid is not None
    poll = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID,
        user_id="u1",
        messages=[Message.user("你好")],
        poll_interval=0.02,
        timeout=10,
    )
    assert poll.chat.status == "completed"
    assert "你好" in poll.text
    types = {m.type for m in poll.messages}
    assert {"answer", "verbose", "follow_up"} <= types
    again = await coze.chat.retrieve(
        conversation_id=poll.chat.conversation_id, chat_id=poll.chat.id
    )
    assert again.status == "completed"
    listed = await coze.chat.messages(conversation_id=again.conversation_id, chat_id=again.id)
    assert listed.logid is not None
    assert [m.id for m in listed] == [m.id for m in poll.messages]


async def test_retrieve_uses_get(coze: AsyncCoze, emu: Emulator) -> None:
    poll = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")], poll_interval=0.02
    )
    retrieves = [r for r in emu.requests if r.path == "/v3/chat/retrieve"]
    assert retrieves and all(r.method == "GET" for r in retrieves)
    assert retrieves[-1].query == {
        "conversation_id": poll.chat.conversation_id,
        "chat_id": poll.chat.id,
    }


async def test_create_and_poll_failed_chat_surfaces_last_error(coze: AsyncCoze) -> None:
    with pytest.raises(ChatFailedError) as info:
        await coze.chat.create_and_poll(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("a")],
            poll_interval=0.02,
            extra_headers={FAULT_HEADER: "chat-failed;error-code=4028"},
        )
    assert info.value.code == 4028
    assert info.value.chat.status == "failed"


async def test_create_and_poll_deadline_cancels(emu: Emulator) -> None:
    slow = Emulator(chat_duration=30)
    async with slow, AsyncCoze(token=slow.token, base_url=slow.url) as client:
        with pytest.raises(ChatPollTimeoutError) as info:
            await client.chat.create_and_poll(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("a")],
                poll_interval=0.05,
                timeout=0.2,
            )
        assert info.value.chat.status == "canceled"
        assert slow.cancels == [(info.value.chat.conversation_id, info.value.chat.id)]


async def test_cancel_completed_chat_is_4104(coze: AsyncCoze) -> None:
    poll = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")], poll_interval=0.02
    )
    with pytest.raises(BadRequestError) as info:
        await coze.chat.cancel(conversation_id=poll.chat.conversation_id, chat_id=poll.chat.id)
    assert info.value.code == 4104


async def test_retrieve_unknown_chat(coze: AsyncCoze) -> None:
    with pytest.raises((NotFoundError, BadRequestError)) as info:
        await coze.chat.retrieve(conversation_id="1", chat_id="2")
    assert info.value.code in (4001, 4002, 4200)


async def test_submit_tool_outputs_non_stream(coze: AsyncCoze) -> None:
    async with coze.chat.stream(
        bot_id=TOOL_BOT_ID, user_id="u", messages=[Message.user("天气")]
    ) as stream:
        snap = await stream.final()
    assert snap.status == "requires_action"
    assert snap.chat is not None and snap.chat.required_action is not None
    call = snap.chat.required_action.tool_calls[0]
    chat = await coze.chat.submit_tool_outputs(
        conversation_id=snap.chat.conversation_id,
        chat_id=snap.chat.id,
        tool_outputs=[ToolOutput(tool_call_id=call.id, output="多云")],
    )
    assert chat.id == snap.chat.id
    assert chat.status in ("in_progress", "completed")


async def test_request_body_has_every_field_and_no_nulls(coze: AsyncCoze, emu: Emulator) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u1",
        messages=[Message.assistant("之前的回答"), Message.user("你好", meta_data={"a": "b"})],
        custom_variables={"name": "小明"},
        meta_data={"trace": "t1"},
        extra_params={"latitude": "39.9", "longitude": "116.4"},
        parameters={"k": 1},
        shortcut_command={"command_id": "7", "parameters": {}},
        enable_card=True,
        publish_status="published_online",
        bot_version="42",
        extra_body={"connector_id": "1024"},
    ) as stream:
        await stream.final()
    req = _chat_requests(emu)[-1]
    assert "conversation_id" not in req.query, "never sent empty"
    assert "conversation_id" not in req.raw_query
    body = req.json
    assert body["bot_id"] == ECHO_BOT_ID and body["user_id"] == "u1" and body["stream"] is True
    assert body["custom_variables"] == {"name": "小明"}
    assert body["meta_data"] == {"trace": "t1"}
    assert body["extra_params"] == {"latitude": "39.9", "longitude": "116.4"}
    assert body["parameters"] == {"k": 1}
    assert body["shortcut_command"] == {"command_id": "7", "parameters": {}}
    assert body["enable_card"] is True
    assert body["publish_status"] == "published_online"
    assert body["bot_version"] == "42"
    assert body["connector_id"] == "1024"
    assert body["additional_messages"] == [
        {"role": "assistant", "type": "answer", "content": "之前的回答", "content_type": "text"},
        {
            "role": "user",
            "type": "question",
            "content": "你好",
            "content_type": "text",
            "meta_data": {"a": "b"},
        },
    ]
    assert "null" not in req.body.decode()


async def test_conversation_id_is_sent_when_given(coze: AsyncCoze, emu: Emulator) -> None:
    first = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")], poll_interval=0.02
    )
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        conversation_id=first.chat.conversation_id,
        messages=[Message.user("b")],
    ) as stream:
        snap = await stream.final()
    assert snap.chat is not None and snap.chat.conversation_id == first.chat.conversation_id
    assert _chat_requests(emu)[-1].query["conversation_id"] == first.chat.conversation_id


async def test_object_string_message_reaches_the_bot(coze: AsyncCoze, emu: Emulator) -> None:
    content = [ContentItem.of_text("这是什么"), ContentItem.of_image(file_id="7369495981102022700")]
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user(content)]
    ) as stream:
        snap = await stream.final()
    sent = _chat_requests(emu)[-1].json["additional_messages"][0]
    assert sent["content_type"] == "object_string"
    assert sent["content"] == (
        '[{"type":"text","text":"这是什么"},{"type":"image","file_id":"7369495981102022700"}]'
    )
    assert "7369495981102022700" in snap.text  # the echo bot acknowledges the attachment


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Message.user([]), "at least one item"),
        (lambda: Message.user([ContentItem.of_text("only text")]), "plain text"),
        (
            lambda: Message.user(
                [
                    ContentItem.of_text("a"),
                    ContentItem.of_text("b"),
                    ContentItem.of_file(file_id="1"),
                ]
            ),
            "at most one text",
        ),
        (lambda: ContentItem.of_image(), "exactly one of file_id"),
        (lambda: ContentItem.of_image(file_id="1", file_url="http://x"), "exactly one of file_id"),
        (lambda: Message.user(""), "must not be empty"),
        (lambda: Message.user("x", meta_data={"k" * 65: "v"}), "1-64"),
        (lambda: Message.user("x", meta_data={str(i): "v" for i in range(17)}), "at most 16"),
    ],
)
def test_message_builder_rules(build, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"bot_id": ""}, "bot_id"),
        ({"user_id": " "}, "user_id"),
        ({"messages": "hi"}, "list of Message"),
        ({"messages": [{"role": "user", "content": "x"}]}, "messages[0]"),
        ({"conversation_id": ""}, "conversation_id"),
        ({"extra_params": {"city": "x"}}, "latitude and longitude"),
        ({"publish_status": "draft"}, "publish_status"),
        ({"publish_status": "unpublished_draft", "bot_version": "1"}, "bot_version"),
        ({"meta_data": {"k": ""}}, "1-512"),
        ({"shortcut_command": {}}, "command_id"),
        (
            {"messages": [Message.user([ContentItem.of_image(file_id="1")])]},
            "next to a plain-text message",
        ),
    ],
)
async def test_bad_arguments_fail_before_sending(
    coze: AsyncCoze,
    emu: Emulator,
    kwargs: dict,  # type: ignore[type-arg]
    fragment: str,
) -> None:
    args = {"bot_id": ECHO_BOT_ID, "user_id": "u", "messages": [Message.user("x")], **kwargs}
    with pytest.raises(InvalidArgumentError) as info:
        coze.chat.stream(**args)
    assert fragment in str(info.value)
    with pytest.raises(InvalidArgumentError):
        await coze.chat.create(**args)
    assert emu.requests == []


async def test_non_stream_without_history_is_refused_locally(
    coze: AsyncCoze, emu: Emulator
) -> None:
    with pytest.raises(InvalidArgumentError, match="4007"):
        await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", auto_save_history=False)
    assert emu.requests == []
