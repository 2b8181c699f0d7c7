"""Conversations over real sockets: CRUD, page-number pagination, sections, isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    Conversation,
    InvalidArgumentError,
    Message,
    RequestTooLargeError,
)
from coze_async.emulator import ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio

OTHER_BOT = "7400000000000000009"


def _requests(emu: Emulator, path: str) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.path == path]


@pytest.fixture
async def other_user(emu: Emulator) -> AsyncIterator[AsyncCoze]:
    async with AsyncCoze(token=emu.add_token("emu_user_b"), base_url=emu.url) as client:
        yield client


async def test_create_retrieve_update_delete_round_trip(coze: AsyncCoze, emu: Emulator) -> None:
    conv = await coze.conversations.create(
        bot_id=ECHO_BOT_ID,
        name="推荐杭州美食",
        messages=[Message.user("你好"), Message.assistant("你好，我是机器人")],
        meta_data={"uuid": "newid1234"},
    )
    assert conv.logid is not None
    assert conv.name == "推荐杭州美食"
    assert conv.meta_data == {"uuid": "newid1234"}
    assert conv.connector_id == "1024"
    assert conv.creator_id == emu.user_id_for(emu.token)
    assert conv.last_section_id
    assert _requests(emu, "/v1/conversation/create")[-1].json["messages"][0] == {
        "role": "user",
        "content": "你好",
        "content_type": "text",
        "type": "question",
    }

    again = await coze.conversations.retrieve(conversation_id=conv.id)
    assert again == conv
    assert _requests(emu, "/v1/conversation/retrieve")[-1].query == {"conversation_id": conv.id}
    seeded = [m async for m in coze.conversations.messages.list(conversation_id=conv.id)]
    assert [m.content for m in seeded] == ["你好，我是机器人", "你好"]

    renamed = await coze.conversations.update(conversation_id=conv.id, name="新名字")
    assert renamed.name == "新名字" and renamed.id == conv.id
    assert (await coze.conversations.retrieve(conversation_id=conv.id)).name == "新名字"
    put = _requests(emu, f"/v1/conversations/{conv.id}")[-1]
    assert put.method == "PUT" and put.json == {"name": "新名字"}

    assert await coze.conversations.delete(conversation_id=conv.id) is None
    with pytest.raises(BadRequestError) as info:
        await coze.conversations.retrieve(conversation_id=conv.id)
    assert info.value.code == 4002
    assert info.value.logid is not None
    with pytest.raises(BadRequestError):
        await coze.conversations.messages.list(conversation_id=conv.id).pages().__anext__()


async def _make(coze: AsyncCoze, n: int, bot_id: str = ECHO_BOT_ID) -> list[Conversation]:
    return [await coze.conversations.create(bot_id=bot_id, name=f"c{i}") for i in range(n)]


async def test_list_walks_three_pages_lazily_without_gaps_or_duplicates(
    coze: AsyncCoze, emu: Emulator
) -> None:
    made = await _make(coze, 7)
    await _make(coze, 2, bot_id=OTHER_BOT)  # another bot's conversations are not listed
    before = len(emu.requests)
    pager = coze.conversations.list(bot_id=ECHO_BOT_ID, page_size=3)
    assert len(emu.requests) == before  # nothing is sent until iteration starts

    pages = [p async for p in pager.pages()]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    assert [p.page_num for p in pages] == [1, 2, 3]
    assert all(p.logid for p in pages)
    listed = [c.id for p in pages for c in p.items]
    assert listed == [c.id for c in reversed(made)]  # newest first, each exactly once
    sent = _requests(emu, "/v1/conversations")
    assert [r.query["page_num"] for r in sent] == ["1", "2", "3"]
    assert sent[0].query == {
        "bot_id": ECHO_BOT_ID,
        "page_num": "1",
        "page_size": "3",
        "sort_order": "DESC",
    }

    oldest_first = [c async for c in coze.conversations.list(bot_id=ECHO_BOT_ID, sort_order="ASC")]
    assert [c.id for c in oldest_first] == [c.id for c in made]
    assert all(c.logid for c in oldest_first)


async def test_list_stops_on_has_more_false_at_an_exact_page_boundary(
    coze: AsyncCoze, emu: Emulator
) -> None:
    made = await _make(coze, 6)
    items = [c async for c in coze.conversations.list(bot_id=ECHO_BOT_ID, page_size=2)]
    assert sorted(c.id for c in items) == sorted(c.id for c in made)
    assert len(_requests(emu, "/v1/conversations")) == 3  # no extra request for an empty page
    later = [c async for c in coze.conversations.list(bot_id=ECHO_BOT_ID, page_size=4, page_num=2)]
    assert [c.id for c in later] == [made[1].id, made[0].id]
    assert [c async for c in coze.conversations.list(bot_id="7400000000000000404")] == []


async def test_list_arguments_are_checked_before_sending(coze: AsyncCoze, emu: Emulator) -> None:
    for kwargs in (
        {"page_size": 0},
        {"page_size": 51},
        {"page_num": 0},
        {"sort_order": "desc"},
        {"bot_id": ""},
    ):
        args = {"bot_id": ECHO_BOT_ID, **kwargs}
        with pytest.raises(InvalidArgumentError):
            coze.conversations.list(**args)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await coze.conversations.create(name="x" * 101)
    with pytest.raises(InvalidArgumentError):
        await coze.conversations.update(conversation_id="", name="x")
    assert emu.requests == []


async def test_chat_conversations_are_listed_under_their_bot(coze: AsyncCoze) -> None:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("早上好")]
    ) as stream:
        snap = await stream.final()
    assert snap.chat is not None
    listed = [c async for c in coze.conversations.list(bot_id=ECHO_BOT_ID)]
    assert [c.id for c in listed] == [snap.chat.conversation_id]


async def test_clear_starts_a_section_the_next_chat_uses(coze: AsyncCoze) -> None:
    conv = await coze.conversations.create(bot_id=ECHO_BOT_ID)
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", conversation_id=conv.id, messages=[Message.user("一")]
    ) as stream:
        first = await stream.final()
    assert first.chat is not None and first.chat.section_id == conv.last_section_id

    section = await coze.conversations.clear(conversation_id=conv.id)
    assert section.conversation_id == conv.id
    assert section.id != conv.last_section_id
    assert section.logid is not None
    assert (await coze.conversations.retrieve(conversation_id=conv.id)).last_section_id == (
        section.id
    )

    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", conversation_id=conv.id, messages=[Message.user("二")]
    ) as stream:
        second = await stream.final()
    assert second.chat is not None and second.chat.section_id == section.id
    messages = [m async for m in coze.conversations.messages.list(conversation_id=conv.id)]
    # The old section's messages stay listable; the new ones carry the new section id.
    by_content = {m.content: m.section_id for m in messages}
    assert by_content["一"] == conv.last_section_id
    assert by_content["二"] == section.id
    assert by_content["你说：二"] == section.id

    again = await coze.conversations.clear(conversation_id=conv.id)
    assert again.id not in (section.id, conv.last_section_id)


async def test_only_the_creator_sees_a_conversation(
    coze: AsyncCoze, other_user: AsyncCoze, emu: Emulator
) -> None:
    conv = await coze.conversations.create(bot_id=ECHO_BOT_ID, name="A 的会话")
    assert [c async for c in other_user.conversations.list(bot_id=ECHO_BOT_ID)] == []
    theirs = other_user.conversations
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: theirs.retrieve(conversation_id=conv.id),
        lambda: theirs.update(conversation_id=conv.id, name="偷改"),
        lambda: theirs.clear(conversation_id=conv.id),
        lambda: theirs.delete(conversation_id=conv.id),
        lambda: theirs.messages.create(conversation_id=conv.id, content="hi"),
        lambda: other_user.chat.create(
            bot_id=ECHO_BOT_ID, user_id="b", conversation_id=conv.id, messages=[Message.user("x")]
        ),
    ]
    for attempt in attempts:
        with pytest.raises(BadRequestError) as info:
            await attempt()
        assert info.value.code == 4002
    mine = await coze.conversations.retrieve(conversation_id=conv.id)
    assert mine.name == "A 的会话"
    own = await other_user.conversations.create(bot_id=ECHO_BOT_ID)
    assert own.creator_id == emu.user_id_for("emu_user_b") != mine.creator_id
    assert [c.id async for c in coze.conversations.list(bot_id=ECHO_BOT_ID)] == [conv.id]


async def test_request_over_15_mb_is_refused_before_sending(coze: AsyncCoze, emu: Emulator) -> None:
    huge = "字" * (6 * 1024 * 1024)  # 18 MB of UTF-8
    with pytest.raises(RequestTooLargeError) as info:
        await coze.conversations.create(messages=[Message.user(huge)])
    assert info.value.limit == 15 * 1024 * 1024
    with pytest.raises(RequestTooLargeError):
        await coze.conversations.messages.create(conversation_id="1", content=huge)
    assert emu.requests == []
    # Large but allowed bodies go through (the emulator accepts up to Coze's limits).
    big = "字" * (1024 * 1024)  # 3 MB
    conv = await coze.conversations.create(messages=[Message.user(big)])
    listed = [m async for m in coze.conversations.messages.list(conversation_id=conv.id)]
    assert listed[0].content == big
