"""The emulator answers as real Coze does by default (issue 14), conveniences on request.

Driven with the official ``cozepy`` client where it is installed and with raw aiohttp for the
bytes (content types, header spelling, exact texts). Item 6 (shapes, key order) lives in
``test_emulator_wire.py``.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from coze_async import APIError, AsyncCoze, Message
from coze_async.emulator import CHATFLOW_ID, ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio

UNKNOWN_BOT = "7499999999999999999"
BOT_NOT_FOUND = (
    f"Requested resource bot_id={UNKNOWN_BOT} does not exist. "
    "Ensure you are the correct resource identifier."
)


def _cozepy() -> Any:
    # cozepy imports authlib.jose, which forces a deprecation warning (not ours) to "always".
    with warnings.catch_warnings(record=True):
        return pytest.importorskip("cozepy")


@pytest.fixture
async def session(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(base_url=emu.url, headers=headers) as s:
        yield s


def chat_body(bot_id: str = ECHO_BOT_ID, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bot_id": bot_id,
        "user_id": "u",
        "additional_messages": [{"role": "user", "content": "你好", "content_type": "text"}],
    }
    body.update(fields)
    return body


async def post_json(
    session: aiohttp.ClientSession, path: str, body: Any
) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
    async with session.post(path, json=body) as resp:
        assert resp.content_type == "application/json"
        return resp, await resp.json()


# ----------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_bot_is_4200(session: aiohttp.ClientSession, stream: bool) -> None:
    # A request-level error on a stream endpoint is a JSON envelope, not SSE (coze-py #78).
    resp, body = await post_json(session, "/v3/chat", chat_body(UNKNOWN_BOT, stream=stream))
    assert resp.status == 200
    assert body["code"] == 4200
    assert body["msg"] == BOT_NOT_FOUND
    assert "data" not in body


async def test_unknown_bot_creates_nothing(emu: Emulator, session: aiohttp.ClientSession) -> None:
    before = len(emu.state.conversations)
    await post_json(session, "/v3/chat", chat_body(UNKNOWN_BOT))
    assert len(emu.state.conversations) == before


async def test_accept_any_bot_lets_the_echo_bot_answer() -> None:
    async with Emulator(accept_any_bot=True) as emu, aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with s.post(
            f"{emu.url}/v3/chat", json=chat_body(UNKNOWN_BOT, stream=True), headers=headers
        ) as resp:
            assert resp.content_type == "text/event-stream"
            text = (await resp.read()).decode()
        assert "你说：你好" in text.replace('","content":"', "")
        assert "event:done" in text


async def test_chatflow_unknown_bot_is_4200(session: aiohttp.ClientSession) -> None:
    body = {
        "workflow_id": CHATFLOW_ID,
        "bot_id": UNKNOWN_BOT,
        "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
    }
    _, answer = await post_json(session, "/v1/workflows/chat", body)
    assert answer["code"] == 4200
    assert answer["msg"] == BOT_NOT_FOUND


async def test_sdk_sees_4200_for_an_unknown_bot(emu: Emulator) -> None:
    async with AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        with pytest.raises(APIError) as info:
            await coze.chat.create(bot_id=UNKNOWN_BOT, user_id="u", messages=[Message.user("x")])
        assert info.value.code == 4200
        with pytest.raises(APIError) as info:
            async with coze.chat.stream(
                bot_id=UNKNOWN_BOT, user_id="u", messages=[Message.user("x")]
            ) as stream:
                async for _ in stream:
                    pass
        assert info.value.code == 4200


async def test_cozepy_sees_4200_for_an_unknown_bot(emu: Emulator) -> None:
    cozepy = _cozepy()
    async with cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        question = [cozepy.Message.build_user_question_text("x")]
        with pytest.raises(cozepy.CozeAPIError) as info:
            await coze.chat.create(bot_id=UNKNOWN_BOT, user_id="u", additional_messages=question)
        assert info.value.code == 4200
        assert info.value.msg == BOT_NOT_FOUND
        with pytest.raises(cozepy.CozeAPIError) as info:
            async for _ in coze.chat.stream(
                bot_id=UNKNOWN_BOT, user_id="u", additional_messages=question
            ):
                pass
        assert info.value.code == 4200
        # The documented bot answers.
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        assert chat.bot_id == ECHO_BOT_ID


# ----------------------------------------------------------------------------- item 2

OCCUPIED = (
    "Conversation occupied: Another chat is currently active. Please wait for the ongoing chat "
    "to complete or create a new conversation to start a separate chat. Ensure only one chat "
    "runs at a time within the same conversation."
)


async def _busy_conversation(session: aiohttp.ClientSession) -> str:
    _, body = await post_json(session, "/v3/chat", chat_body())  # runs for chat_duration
    assert body["code"] == 0
    return str(body["data"]["conversation_id"])


async def test_occupied_streamed_chat_is_an_sse_error_event() -> None:
    async with (
        Emulator(chat_duration=30) as emu,
        aiohttp.ClientSession(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}
        ) as session,
    ):
        conv = await _busy_conversation(session)
        params = {"conversation_id": conv}
        async with session.post("/v3/chat", params=params, json=chat_body(stream=True)) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["X-Tt-Logid"]
            raw = await resp.read()
        expected = '{"code":4016,"msg":"' + OCCUPIED + '"}'
        assert raw == b"event:error\ndata:" + expected.encode() + b"\n\n"
        # Not streamed: the envelope, same code and text.
        async with session.post("/v3/chat", params=params, json=chat_body()) as resp:
            assert resp.content_type == "application/json"
            body = await resp.json()
        assert (body["code"], body["msg"]) == (4016, OCCUPIED)


async def test_occupied_chatflow_is_an_sse_error_event() -> None:
    async with (
        Emulator(chat_duration=30) as emu,
        aiohttp.ClientSession(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}
        ) as session,
    ):
        conv = await _busy_conversation(session)
        body = {
            "workflow_id": CHATFLOW_ID,
            "app_id": "7300000000000000001",
            "conversation_id": conv,
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
        }
        async with session.post("/v1/workflows/chat", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            raw = await resp.read()
        # Chatflow streams put a space after the colon.
        assert raw.startswith(b'event: error\ndata: {"code":4016,"msg":"Conversation occupied')


async def test_cozepy_sees_the_occupied_error_event() -> None:
    cozepy = _cozepy()
    async with Emulator(chat_duration=30) as emu, cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        question = [cozepy.Message.build_user_question_text("x")]
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        # cozepy 0.20.0 raises a bare Exception for an SSE error event ("error event: {...}").
        with pytest.raises(Exception, match="4016") as info:
            async for _ in coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                conversation_id=chat.conversation_id,
                additional_messages=question,
            ):
                pass
        assert not isinstance(info.value, cozepy.CozeAPIError)
        with pytest.raises(cozepy.CozeAPIError) as api:
            await coze.chat.create(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                conversation_id=chat.conversation_id,
                additional_messages=question,
            )
        assert api.value.code == 4016
