"""The official cozepy SDK, pointed at the emulator: conversations, messages and files.

An independent client parsing our emulator's answers (and sending its own request quirks:
explicit nulls, ``page_num`` paging, ``after_id`` cursors, httpx multipart) checks that the
emulator speaks Coze's wire format, not just whatever our SDK happens to expect.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from coze_async.emulator import ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio


async def test_cozepy_drives_conversations_messages_and_files(tmp_path: Path) -> None:
    # cozepy imports authlib.jose, which forces its own deprecation warning to "always";
    # recording keeps that noise (not ours) out of the report.
    with warnings.catch_warnings(record=True):
        pytest.importorskip("cozepy")
        from cozepy import (
            AsyncCoze,
            AsyncHTTPClient,
            AsyncTokenAuth,
            ChatEventType,
            Message,
            MessageContentType,
            MessageRole,
        )
        from cozepy.conversations.message.feedback import FeedbackType

    async with Emulator() as emu, AsyncHTTPClient() as http:
        coze = AsyncCoze(auth=AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = await coze.conversations.create(
                bot_id=ECHO_BOT_ID,
                messages=[Message.build_user_question_text("你好")],
                meta_data={"uuid": "u-1"},
            )
            assert first.meta_data == {"uuid": "u-1"}
            assert first.last_section_id
            made = [first] + [
                await coze.conversations.create(bot_id=ECHO_BOT_ID, name=f"c{i}") for i in range(4)
            ]
            pager = await coze.conversations.list(bot_id=ECHO_BOT_ID, page_size=2)
            listed: list[Any] = [c async for c in pager]
            assert sorted(c.id for c in listed) == sorted(c.id for c in made)
            assert len(listed) == 5  # three pages, nothing twice

            conv = await coze.conversations.retrieve(conversation_id=first.id)
            assert conv.id == first.id
            renamed = await coze.conversations.update(conversation_id=first.id, name="改名")
            assert renamed.name == "改名"

            for i in range(4):
                await coze.conversations.messages.create(
                    conversation_id=first.id,
                    role=MessageRole.USER,
                    content=f"第{i}条",
                    content_type=MessageContentType.TEXT,
                )
            messages = await coze.conversations.messages.list(conversation_id=first.id, limit=2)
            contents = [m.content async for m in messages]
            assert contents == ["第3条", "第2条", "第1条", "第0条", "你好"]

            newest = (await coze.conversations.messages.list(conversation_id=first.id)).items[0]
            got = await coze.conversations.messages.retrieve(
                conversation_id=first.id, message_id=newest.id
            )
            assert got.content == "第3条"
            changed = await coze.conversations.messages.update(
                conversation_id=first.id, message_id=newest.id, content="改过了"
            )
            assert changed.content == "改过了"
            deleted = await coze.conversations.messages.delete(
                conversation_id=first.id, message_id=newest.id
            )
            assert deleted.id == newest.id

            section = await coze.conversations.clear(conversation_id=first.id)
            assert section.conversation_id == first.id
            answer_id = ""
            async for event in coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u1",
                conversation_id=first.id,
                additional_messages=[Message.build_user_question_text("早上好")],
            ):
                completed = event.event == ChatEventType.CONVERSATION_MESSAGE_COMPLETED
                if completed and event.message.type == "answer":
                    answer_id = event.message.id
                if event.event == ChatEventType.CONVERSATION_CHAT_COMPLETED:
                    assert event.chat.conversation_id == first.id
            await coze.conversations.messages.feedback.create(
                conversation_id=first.id, message_id=answer_id, feedback_type=FeedbackType.LIKE
            )
            assert emu.state.feedback[answer_id] == {"feedback_type": "like"}

            path = tmp_path / "hello.txt"
            path.write_bytes(b"hello, coze")
            with path.open("rb") as handle:  # cozepy never closes files it opens itself
                uploaded = await coze.files.upload(file=handle)
            assert uploaded.bytes == 11 and uploaded.file_name == "hello.txt"
            again = await coze.files.retrieve(file_id=uploaded.id)
            assert again.id == uploaded.id
            pair = await coze.files.upload(file=("数据.csv", b"a,b\n"))
            assert pair.file_name == "数据.csv"

            await coze.conversations.delete(conversation_id=first.id)
            assert first.id not in emu.state.conversations
        # cozepy warns on enum values it does not know; the emulator must send none.
        assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
