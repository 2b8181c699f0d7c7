"""Conversation messages over real sockets: CRUD, cursor pagination, chats' messages, feedback."""

from __future__ import annotations

import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ContentItem,
    FeedbackType,
    InvalidArgumentError,
    Message,
    Page,
)
from coze_async.emulator import ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio


def _list_requests(emu: Emulator) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.path == "/v1/conversation/message/list"]


async def _conversation_with(coze: AsyncCoze, n: int) -> tuple[str, list[Message]]:
    conv = await coze.conversations.create(bot_id=ECHO_BOT_ID)
    made = [
        await coze.conversations.messages.create(
            conversation_id=conv.id, content=f"第{i}条", role="user" if i % 2 else "assistant"
        )
        for i in range(n)
    ]
    return conv.id, made


async def test_create_retrieve_update_delete_round_trip(coze: AsyncCoze, emu: Emulator) -> None:
    conv = await coze.conversations.create(bot_id=ECHO_BOT_ID)
    msg = await coze.conversations.messages.create(
        conversation_id=conv.id, content="早上好", meta_data={"k": "v"}
    )
    assert msg.logid is not None
    assert (msg.role, msg.content, msg.content_type, msg.type) == ("user", "早上好", "text", "")
    assert msg.conversation_id == conv.id and msg.section_id == conv.last_section_id
    assert msg.meta_data == {"k": "v"}
    create = emu.requests[-1]
    assert create.query == {"conversation_id": conv.id}
    assert create.json == {
        "role": "user",
        "content": "早上好",
        "content_type": "text",
        "meta_data": {"k": "v"},
    }

    got = await coze.conversations.messages.retrieve(conversation_id=conv.id, message_id=msg.id)
    assert got == msg

    updated = await coze.conversations.messages.update(
        conversation_id=conv.id, message_id=msg.id, content="晚上好", meta_data={"k": "w"}
    )
    # The modify answer carries the message under "message", not "data": read from there.
    assert emu.requests[-1].json == {
        "content": "晚上好",
        "content_type": "text",
        "meta_data": {"k": "w"},
    }
    assert updated.content == "晚上好" and updated.meta_data == {"k": "w"}
    assert updated.id == msg.id and updated.logid is not None
    again = await coze.conversations.messages.retrieve(conversation_id=conv.id, message_id=msg.id)
    assert again.content == "晚上好"
    multimodal = await coze.conversations.messages.update(
        conversation_id=conv.id,
        message_id=msg.id,
        content=[ContentItem.of_text("看图"), ContentItem.of_image(file_url="https://x/y.png")],
    )
    assert multimodal.content_type == "object_string"
    assert multimodal.content_items()[1] == {"type": "image", "file_url": "https://x/y.png"}

    deleted = await coze.conversations.messages.delete(conversation_id=conv.id, message_id=msg.id)
    assert deleted.id == msg.id
    with pytest.raises(BadRequestError) as info:
        await coze.conversations.messages.retrieve(conversation_id=conv.id, message_id=msg.id)
    assert info.value.code == 4005
    with pytest.raises(BadRequestError) as info:
        await coze.conversations.messages.delete(conversation_id=conv.id, message_id=msg.id)
    assert info.value.code == 4005
    assert [m async for m in coze.conversations.messages.list(conversation_id=conv.id)] == []


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_list_follows_last_id_across_three_pages(
    coze: AsyncCoze, emu: Emulator, order: str
) -> None:
    cid, made = await _conversation_with(coze, 11)
    expected = [m.id for m in (made if order == "asc" else reversed(made))]
    before = len(emu.requests)
    pager = coze.conversations.messages.list(conversation_id=cid, order=order, limit=4)
    assert len(emu.requests) == before  # lazy

    pages: list[Page[Message]] = [p async for p in pager.pages()]
    assert [len(p) for p in pages] == [4, 4, 3]
    assert [p.has_more for p in pages] == [True, True, False]
    assert [m.id for p in pages for m in p.items] == expected  # no gap, no duplicate
    assert [(p.first_id, p.last_id) for p in pages] == [
        (p.items[0].id, p.items[-1].id) for p in pages
    ]
    bodies = [r.json for r in _list_requests(emu)]
    assert bodies == [
        {"order": order, "limit": 4},
        {"order": order, "limit": 4, "after_id": pages[0].last_id},
        {"order": order, "limit": 4, "after_id": pages[1].last_id},
    ]
    # Item iteration gives the same sequence.
    assert [
        m.id
        async for m in coze.conversations.messages.list(conversation_id=cid, order=order, limit=4)
    ] == expected


async def test_before_id_pages_back_towards_the_start(coze: AsyncCoze) -> None:
    cid, made = await _conversation_with(coze, 10)
    pager = coze.conversations.messages.list(
        conversation_id=cid, order="asc", before_id=made[-1].id, limit=4
    )
    pages = [p async for p in pager.pages()]
    # Pages walk backwards; each page is in listing (ascending) order.
    assert [[m.content for m in p.items] for p in pages] == [
        ["第5条", "第6条", "第7条", "第8条"],
        ["第1条", "第2条", "第3条", "第4条"],
        ["第0条"],
    ]
    after = coze.conversations.messages.list(conversation_id=cid, order="asc", after_id=made[6].id)
    assert [m.content async for m in after] == ["第7条", "第8条", "第9条"]
    window = coze.conversations.messages.list(
        conversation_id=cid, order="desc", after_id=made[8].id, before_id=made[2].id, limit=2
    )
    assert [m.content async for m in window] == ["第7条", "第6条", "第5条", "第4条", "第3条"]


async def test_a_chat_s_messages_are_listed_and_filtered(coze: AsyncCoze) -> None:
    conv = await coze.conversations.create(bot_id=ECHO_BOT_ID)
    await coze.conversations.messages.create(conversation_id=conv.id, content="先存一条")
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", conversation_id=conv.id, messages=[Message.user("早上好")]
    ) as stream:
        snap = await stream.final()
    assert snap.chat is not None
    chat_id = snap.chat.id

    listed = [m async for m in coze.conversations.messages.list(conversation_id=conv.id)]
    assert [(m.role, m.type, m.content) for m in listed] == [
        ("assistant", "answer", "你说：早上好"),
        ("user", "question", "早上好"),
        ("user", "", "先存一条"),
    ]
    only_chat = coze.conversations.messages.list(conversation_id=conv.id, chat_id=chat_id)
    assert {m.chat_id async for m in only_chat} == {chat_id}
    everything = coze.conversations.messages.list(
        conversation_id=conv.id, chat_id=chat_id, include_middle_message=True, order="asc"
    )
    types = [m.type async for m in everything]
    assert types[:2] == ["question", "answer"] and {"verbose", "follow_up"} <= set(types)

    # Deleting the answer also deletes the chat's intermediate messages.
    answer = listed[0]
    await coze.conversations.messages.delete(conversation_id=conv.id, message_id=answer.id)
    assert list(await coze.chat.messages(conversation_id=conv.id, chat_id=chat_id)) == []
    remaining = coze.conversations.messages.list(
        conversation_id=conv.id, include_middle_message=True
    )
    assert [m.content async for m in remaining] == ["早上好", "先存一条"]


async def test_feedback_on_answers(coze: AsyncCoze, emu: Emulator) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("你好")]
    ) as stream:
        snap = await stream.final()
    assert snap.chat is not None
    cid = snap.chat.conversation_id
    question, answer = sorted(
        [m async for m in coze.conversations.messages.list(conversation_id=cid)],
        key=lambda m: m.type != "question",
    )
    result = await coze.conversations.messages.set_feedback(
        conversation_id=cid,
        message_id=answer.id,
        feedback_type=FeedbackType.UNLIKE,
        reason_types=["不准确"],
        comment="答非所问",
    )
    assert result is None
    assert emu.state.feedback[answer.id] == {
        "feedback_type": "unlike",
        "reason_types": ["不准确"],
        "comment": "答非所问",
    }
    assert emu.requests[-1].path == f"/v1/conversations/{cid}/messages/{answer.id}/feedback"
    await coze.conversations.messages.set_feedback(
        conversation_id=cid, message_id=answer.id, feedback_type="like"
    )
    assert emu.state.feedback[answer.id] == {"feedback_type": "like"}
    await coze.conversations.messages.delete_feedback(conversation_id=cid, message_id=answer.id)
    assert answer.id not in emu.state.feedback
    assert emu.requests[-1].method == "DELETE"

    with pytest.raises(BadRequestError) as info:
        await coze.conversations.messages.set_feedback(
            conversation_id=cid, message_id=question.id, feedback_type="like"
        )
    assert info.value.code == 4005
    with pytest.raises(InvalidArgumentError):
        await coze.conversations.messages.set_feedback(
            conversation_id=cid, message_id=answer.id, feedback_type="love"
        )
    with pytest.raises(InvalidArgumentError):
        await coze.conversations.messages.set_feedback(
            conversation_id=cid, message_id=answer.id, feedback_type="like", comment="长" * 251
        )


async def test_arguments_are_checked_before_sending(coze: AsyncCoze, emu: Emulator) -> None:
    messages = coze.conversations.messages
    with pytest.raises(InvalidArgumentError):
        await messages.create(conversation_id="1", content="")
    with pytest.raises(InvalidArgumentError):
        await messages.create(conversation_id="1", content="x", role="system")
    with pytest.raises(InvalidArgumentError):
        await messages.create(conversation_id="1", content="x", content_type="object_string")
    with pytest.raises(InvalidArgumentError):
        await messages.update(conversation_id="1", message_id="2")
    for kwargs in ({"order": "DESC"}, {"limit": 0}, {"limit": 51}, {"chat_id": ""}):
        with pytest.raises(InvalidArgumentError):
            messages.list(conversation_id="1", **kwargs)  # type: ignore[arg-type]
    assert emu.requests == []


async def test_bad_message_content_is_a_4005(coze: AsyncCoze) -> None:
    conv = await coze.conversations.create()
    with pytest.raises(BadRequestError) as info:
        await coze.conversations.messages.create(
            conversation_id=conv.id,
            content='[{"type":"image"}]',  # an image item needs file_id or file_url
            content_type="object_string",
        )
    assert info.value.code == 4005
    assert "file_id" in info.value.msg
