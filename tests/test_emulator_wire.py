"""Wire-level tests of the Coze emulator, over real loopback sockets with raw aiohttp.

These pin what the emulator writes byte for byte (framing, envelopes, logids, faults), so
that the SDK's own tests, which run against it, test against something faithful. One test
also drives it with the official cozepy SDK as an independent check.
"""

from __future__ import annotations

import base64
import json
import re
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from coze_async.emulator import (
    AUDIO_BOT_ID,
    DEFAULT_TOKEN,
    ECHO_BOT_ID,
    FAULT_HEADER,
    REPEAT_HEADER,
    TOOL_BOT_ID,
    Emulator,
    sse_frame,
)

pytestmark = pytest.mark.anyio

LOGID_RE = re.compile(r"^\d{14}[0-9A-F]{20}$")  # Beijing-time stamp + 20 hex (item 7)
ID_RE = re.compile(r"^\d{19}$")
VERBOSE_FINISH = (
    '{"msg_type":"generate_answer_finish","data":"{\\"finish_reason\\":0,\\"FinData\\":\\"\\"}",'
    '"from_module":null,"from_unit":null}'
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator() as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# --------------------------------------------------------------------------- helpers


def auth(emu: Emulator, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.token}", **extra}


def chat_body(text: str = "早上好", *, bot_id: str = ECHO_BOT_ID, **extra: Any) -> dict[str, Any]:
    return {
        "bot_id": bot_id,
        "user_id": "user-1",
        "additional_messages": [{"role": "user", "content": text, "content_type": "text"}],
        **extra,
    }


async def call(
    session: aiohttp.ClientSession,
    emu: Emulator,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, str] | None = None,
    fault: str | None = None,
) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
    """A JSON call; returns the response (already read) and the decoded envelope."""
    headers = auth(emu)
    if fault is not None:
        headers[FAULT_HEADER] = fault
    async with session.request(
        method, emu.url + path, json=body, params=params, headers=headers
    ) as resp:
        envelope = json.loads(await resp.read())
    return resp, envelope


async def stream_raw(
    session: aiohttp.ClientSession,
    emu: Emulator,
    body: dict[str, Any],
    *,
    path: str = "/v3/chat",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[aiohttp.ClientResponse, list[bytes]]:
    """POST a streaming request; returns the response and the body's HTTP chunks."""
    chunks: list[bytes] = []
    async with session.post(
        emu.url + path, json=body, params=params, headers={**auth(emu), **(headers or {})}
    ) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        buf = b""
        async for data, end_of_chunk in resp.content.iter_chunks():
            buf += data
            if end_of_chunk:
                chunks.append(buf)
                buf = b""
        assert buf == b""
    return resp, chunks


def parse_sse(raw: bytes) -> list[tuple[str, str]]:
    """Strict parser for Coze chat framing: ``event:X\\ndata:Y\\n\\n`` blocks, nothing else."""
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        assert len(lines) == 2, block
        assert lines[0].startswith(b"event:")
        assert not lines[0].startswith(b"event: ")
        assert lines[1].startswith(b"data:")
        assert not lines[1].startswith(b"data: ")
        events.append((lines[0][6:].decode(), lines[1][5:].decode()))
    return events


def decoded(events: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    return [(name, json.loads(data)) for name, data in events]


# --------------------------------------------------------------------------- envelope basics


async def test_logid_on_json_and_sse_responses(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    resp, envelope = await call(
        session, emu, "GET", "/v3/chat/retrieve", params={"conversation_id": "1", "chat_id": "2"}
    )
    logid = resp.headers["x-tt-logid"]
    assert LOGID_RE.match(logid), logid
    assert len(logid) == 34
    assert envelope["detail"] == {"logid": logid}
    assert envelope["code"] == 4001
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json"

    resp, chunks = await stream_raw(session, emu, chat_body(stream=True))
    assert LOGID_RE.match(resp.headers["x-tt-logid"])
    assert resp.headers["x-tt-logid"] != logid
    assert chunks


async def test_auth_missing_or_wrong_token_is_4100(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    assert emu.token == DEFAULT_TOKEN
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": emu.token}):
        async with session.post(
            emu.url + "/v3/chat", json=chat_body(stream=True), headers=headers
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            envelope = await resp.json()
        assert envelope["code"] == 4100
        assert envelope["msg"] == "authentication is invalid"
        assert envelope["detail"]["logid"] == resp.headers["x-tt-logid"]
    # A fault can give the auth error a gateway-style status.
    async with session.post(
        emu.url + "/v3/chat", json=chat_body(), headers={FAULT_HEADER: "status=401"}
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["code"] == 4100
    # Rejected requests are recorded too.
    assert len(emu.requests) == 4
    assert all(r.path == "/v3/chat" for r in emu.requests)


async def test_custom_token() -> None:
    async with Emulator(token="pat_custom") as emu, aiohttp.ClientSession() as session:
        assert emu.token == "pat_custom"
        _, envelope = await call(session, emu, "POST", "/v3/chat", body=chat_body())
        assert envelope["code"] == 0


# --------------------------------------------------------------------------- echo stream


async def test_echo_stream_framing(emu: Emulator, session: aiohttp.ClientSession) -> None:
    body = chat_body("早上好", stream=True, meta_data={"k": "v"})
    _, chunks = await stream_raw(session, emu, body, params={"conversation_id": ""})
    raw = b"".join(chunks)
    assert raw.startswith(b"event:conversation.chat.created\ndata:{")
    assert raw.endswith(b'event:done\ndata:"[DONE]"\n\n')
    events = parse_sse(raw)
    # One HTTP chunk per event.
    assert [parse_sse(chunk)[0] for chunk in chunks] == events
    names = [name for name, _ in events]
    deltas = [n for n in names if n == "conversation.message.delta"]
    assert len(deltas) >= 3
    assert names[:2] == ["conversation.chat.created", "conversation.chat.in_progress"]
    assert names[-2:] == ["conversation.chat.completed", "done"]
    assert events[-1][1] == '"[DONE]"'

    items = decoded(events[:-1])
    created, in_progress = items[0][1], items[1][1]
    chat_id, conversation_id = created["id"], created["conversation_id"]
    assert ID_RE.match(chat_id)
    assert ID_RE.match(conversation_id)
    assert created["status"] == "created"
    assert in_progress["status"] == "in_progress"
    assert created["bot_id"] == ECHO_BOT_ID
    assert created["last_error"] == {"code": 0, "msg": ""}
    assert created["usage"] == {"token_count": 0, "output_count": 0, "input_count": 0}
    assert created["section_id"] == conversation_id
    assert created["meta_data"] == {"k": "v"}
    assert len(created["inserted_additional_messages"]) == 1
    assert len(str(created["created_at"])) == 10

    delta_msgs = [d for n, d in items if n == "conversation.message.delta"]
    completed = [d for n, d in items if n == "conversation.message.completed"]
    answer = completed[0]
    assert answer["type"] == "answer"
    assert {d["id"] for d in delta_msgs} == {answer["id"]}
    assert "".join(d["content"] for d in delta_msgs) == answer["content"] == "你说：早上好"
    assert all(d["chat_id"] == chat_id and d["role"] == "assistant" for d in delta_msgs)
    assert completed[1]["type"] == "verbose"
    assert completed[1]["content"] == VERBOSE_FINISH
    follow_ups = completed[2:]
    assert 1 <= len(follow_ups) <= 3
    assert all(m["type"] == "follow_up" for m in follow_ups)
    final = items[-1][1]
    assert final["status"] == "completed"
    assert final["id"] == chat_id
    assert final["usage"]["token_count"] > 0
    assert final["usage"]["output_count"] > 0
    # Raw bytes carry Chinese as UTF-8, never \\u escapes.
    assert "你说".encode() in raw
    assert b"\\u" not in raw

    # The chat is saved: retrieve and message list see the final state.
    _, env = await call(
        session,
        emu,
        "GET",
        "/v3/chat/message/list",
        params={"conversation_id": conversation_id, "chat_id": chat_id},
    )
    listed = env["data"]
    assert [m["type"] for m in listed] == ["answer", "verbose"] + ["follow_up"] * len(follow_ups)
    assert listed[0]["content"] == "你说：早上好"
    assert all(m["type"] != "question" for m in listed)


async def test_echo_handles_nulls_object_string_and_repeat(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    # cozepy-style explicit nulls everywhere, an unknown field, object_string content.
    items = [{"type": "text", "text": "这是什么"}, {"type": "image", "file_id": "123"}]
    message = {
        "role": "user",
        "type": "question",
        "content": json.dumps(items),
        "content_type": "object_string",
        "meta_data": None,
        "id": None,
        "chat_id": None,
        "reasoning_content": None,
    }
    body = {
        "bot_id": ECHO_BOT_ID,
        "user_id": "u",
        "additional_messages": [message],
        "stream": True,
        "custom_variables": None,
        "meta_data": None,
        "unknown_field": 1,
    }
    _, chunks = await stream_raw(session, emu, body)
    answer = next(
        d
        for n, d in decoded(parse_sse(b"".join(chunks))[:-1])
        if n == "conversation.message.completed"
    )
    assert answer["content"] == "你说：这是什么 [附件: image file_id=123]"

    _, chunks = await stream_raw(
        session, emu, chat_body("hi", stream=True), headers={REPEAT_HEADER: "50"}
    )
    events = decoded(parse_sse(b"".join(chunks))[:-1])
    deltas = [d["content"] for n, d in events if n == "conversation.message.delta"]
    assert len(deltas) >= 50
    assert "".join(deltas) == "你说：hi" * 50


async def test_audio_bot_emits_audio_deltas(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, chunks = await stream_raw(session, emu, chat_body("你好", bot_id=AUDIO_BOT_ID, stream=True))
    events = decoded(parse_sse(b"".join(chunks))[:-1])
    audio = [d for n, d in events if n == "conversation.audio.delta"]
    assert audio
    for msg in audio:
        assert msg["content_type"] == "audio"
        pcm = base64.b64decode(msg["content"], validate=True)
        assert pcm
        assert len(pcm) % 2 == 0
    assert any(n == "conversation.message.delta" for n, _ in events)


async def test_scripted_bot_frames_verbatim(emu: Emulator, session: aiohttp.ClientSession) -> None:
    frames = [
        sse_frame("conversation.chat.created", {"id": "1", "conversation_id": "2"}),
        b'event:weird.new_event\r\ndata:{"x":1}\r\n\r\n',
        sse_frame("Message", {"a": 1}, spaced=True, id=0),
        sse_frame("done", '"[DONE]"'),
    ]
    assert frames[0] == (
        b'event:conversation.chat.created\ndata:{"id":"1","conversation_id":"2"}\n\n'
    )
    assert frames[2] == b'id: 0\nevent: Message\ndata: {"a":1}\n\n'
    assert frames[3] == b'event:done\ndata:"[DONE]"\n\n'
    emu.add_scripted_bot("9000000000000000001", frames)
    _, chunks = await stream_raw(session, emu, chat_body(bot_id="9000000000000000001", stream=True))
    assert chunks == frames


# --------------------------------------------------------------------------- chat lifecycle


async def test_auto_create_and_4016_while_chat_in_progress() -> None:
    async with Emulator(chat_duration=30) as emu, aiohttp.ClientSession() as session:
        _, env = await call(session, emu, "POST", "/v3/chat", body=chat_body())
        assert env["code"] == 0
        chat = env["data"]
        assert chat["status"] == "in_progress"
        assert ID_RE.match(chat["conversation_id"])
        assert chat["conversation_id"] in emu.state.conversations
        params = {"conversation_id": chat["conversation_id"]}

        _, env = await call(session, emu, "POST", "/v3/chat", body=chat_body(), params=params)
        assert env["code"] == 4016
        assert env["msg"].startswith("Conversation occupied: Another chat is currently active")
        # On a stream request Coze refuses with an SSE error event (issue 14 item 2; the
        # details are in test_emulator_fidelity.py).
        async with session.post(
            emu.url + "/v3/chat",
            params=params,
            json=chat_body(stream=True),
            headers=auth(emu),
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert (await resp.read()).startswith(b'event:error\ndata:{"code":4016,')

        _, env = await call(
            session, emu, "POST", "/v3/chat", body=chat_body(), params={"conversation_id": "42"}
        )
        assert env["code"] == 4002


async def test_request_validation(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, env = await call(
        session, emu, "POST", "/v3/chat", body=chat_body(stream=False, auto_save_history=False)
    )
    assert env["code"] == 4007
    for missing in ("bot_id", "user_id"):
        body = chat_body()
        body[missing] = None
        _, env = await call(session, emu, "POST", "/v3/chat", body=body)
        assert env["code"] == 4000
        assert missing in env["msg"]
    body = chat_body()
    del body["additional_messages"][0]["role"]
    _, env = await call(session, emu, "POST", "/v3/chat", body=body)
    assert env["code"] == 4000
    assert "role" in env["msg"]


async def test_non_stream_chat_retrieve_and_message_list(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    _, env = await call(session, emu, "POST", "/v3/chat", body=chat_body("你好"))
    chat = env["data"]
    assert chat["status"] == "in_progress"
    await emu.wait_background()
    params = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
    for method in ("GET", "POST"):
        _, env = await call(session, emu, method, "/v3/chat/retrieve", params=params)
        assert env["code"] == 0
        assert env["data"]["status"] == "completed"
        assert env["data"]["id"] == chat["id"]
        assert env["data"]["usage"]["token_count"] > 0
    _, env = await call(session, emu, "GET", "/v3/chat/message/list", params=params)
    assert env["data"][0]["content"] == "你说：你好"
    assert {m["chat_id"] for m in env["data"]} == {chat["id"]}

    _, env = await call(
        session, emu, "GET", "/v3/chat/retrieve", params={**params, "chat_id": "1" * 19}
    )
    assert env["code"] == 4001
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params={"chat_id": chat["id"]})
    assert env["code"] == 4000


async def test_cancel_and_4104(session: aiohttp.ClientSession) -> None:
    async with Emulator(chat_duration=30) as emu:
        _, env = await call(session, emu, "POST", "/v3/chat", body=chat_body())
        chat = env["data"]
        ids = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
        _, env = await call(session, emu, "POST", "/v3/chat/cancel", body=ids)
        assert env["code"] == 0
        assert env["data"]["status"] == "canceled"
        _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=ids)
        assert env["data"]["status"] == "canceled"
        _, env = await call(session, emu, "POST", "/v3/chat/cancel", body=ids)
        assert env["code"] == 4104
        assert emu.cancels == [(chat["conversation_id"], chat["id"])] * 2
        # The conversation is free again.
        _, env = await call(
            session,
            emu,
            "POST",
            "/v3/chat",
            body=chat_body(),
            params={"conversation_id": chat["conversation_id"]},
        )
        assert env["code"] == 0


async def test_cancel_during_stream_is_not_overwritten(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    headers = auth(emu, **{FAULT_HEADER: "latency=0.01"})
    async with session.post(
        emu.url + "/v3/chat", json=chat_body(stream=True), headers=headers
    ) as resp:
        first = await resp.content.readuntil(b"\n\n")
        chat = json.loads(first.split(b"\ndata:", 1)[1])
        ids = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
        _, env = await call(session, emu, "POST", "/v3/chat/cancel", body=ids)
        assert env["data"]["status"] == "canceled"
        # Cancel only changes state; the open stream still runs to its end.
        rest = await resp.read()
    assert rest.endswith(b'event:done\ndata:"[DONE]"\n\n')
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=ids)
    assert env["data"]["status"] == "canceled"
    _, env = await call(session, emu, "GET", "/v3/chat/message/list", params=ids)
    assert env["data"] == []


async def test_tool_bot_requires_action_then_submit_stream(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    _, chunks = await stream_raw(
        session, emu, chat_body("北京天气", bot_id=TOOL_BOT_ID, stream=True)
    )
    events = parse_sse(b"".join(chunks))
    assert [n for n, _ in events] == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
        "conversation.message.completed",
        "conversation.chat.requires_action",
        "done",
    ]
    items = decoded(events[:-1])
    assert items[2][1]["type"] == "function_call"
    chat = items[3][1]
    assert chat["status"] == "requires_action"
    action = chat["required_action"]
    assert action["type"] == "submit_tool_outputs"
    (call_,) = action["submit_tool_outputs"]["tool_calls"]
    assert call_["type"] == "function"
    assert call_["function"] == {"name": "get_weather", "arguments": '{"city":"北京"}'}
    assert not call_["id"].isdigit()
    params = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}

    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    assert env["data"]["status"] == "requires_action"
    bad = {"tool_outputs": [{"tool_call_id": "nope", "output": "x"}], "stream": True}
    _, env = await call(
        session, emu, "POST", "/v3/chat/submit_tool_outputs", body=bad, params=params
    )
    assert env["code"] == 4000
    _, env = await call(
        session,
        emu,
        "POST",
        "/v3/chat/submit_tool_outputs",
        body=bad,
        params={**params, "chat_id": "1" * 19},
    )
    assert env["code"] == 4001

    body = {"tool_outputs": [{"tool_call_id": call_["id"], "output": "晴 25°C"}], "stream": True}
    _, chunks = await stream_raw(
        session, emu, body, path="/v3/chat/submit_tool_outputs", params=params
    )
    events = parse_sse(b"".join(chunks))
    names = [n for n, _ in events]
    assert names[:2] == ["conversation.chat.in_progress", "conversation.message.completed"]
    assert names[-3:] == ["conversation.message.completed", "conversation.chat.completed", "done"]
    items = decoded(events[:-1])
    assert items[0][1]["id"] == chat["id"]
    assert items[1][1]["type"] == "tool_response"
    text = "".join(d["content"] for n, d in items if n == "conversation.message.delta")
    assert text == items[-2][1]["content"] == "天气：晴 25°C"
    assert items[-1][1]["id"] == chat["id"]
    assert items[-1][1]["status"] == "completed"

    _, env = await call(session, emu, "GET", "/v3/chat/message/list", params=params)
    assert [m["type"] for m in env["data"]] == ["function_call", "tool_response", "answer"]
    # Not requires_action any more.
    _, env = await call(
        session, emu, "POST", "/v3/chat/submit_tool_outputs", body=body, params=params
    )
    assert env["code"] == 4000


async def test_tool_bot_non_stream(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, env = await call(session, emu, "POST", "/v3/chat", body=chat_body(bot_id=TOOL_BOT_ID))
    params = {"conversation_id": env["data"]["conversation_id"], "chat_id": env["data"]["id"]}
    await emu.wait_background()
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    tool_call = env["data"]["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    body = {"tool_outputs": [{"tool_call_id": tool_call["id"], "output": "雨"}]}
    _, env = await call(
        session, emu, "POST", "/v3/chat/submit_tool_outputs", body=body, params=params
    )
    assert env["data"]["status"] == "in_progress"
    await emu.wait_background()
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    assert env["data"]["status"] == "completed"


# --------------------------------------------------------------------------- faults


async def test_fault_drop_after_breaks_the_body(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    received = b""
    async with session.post(
        emu.url + "/v3/chat",
        json=chat_body(stream=True),
        headers=auth(emu, **{FAULT_HEADER: "drop-after=3"}),
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            async for data in resp.content.iter_any():
                received += data
    assert [n for n, _ in parse_sse(received)] == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
        "conversation.message.delta",
    ]
    with anyio.fail_after(5):
        await emu.wait_idle()


async def test_fault_eof_after_ends_cleanly_without_done(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    _, chunks = await stream_raw(
        session, emu, chat_body(stream=True), headers={FAULT_HEADER: "eof-after=2"}
    )
    assert [n for n, _ in parse_sse(b"".join(chunks))] == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
    ]


async def test_fault_malformed_at(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, chunks = await stream_raw(
        session, emu, chat_body(stream=True), headers={FAULT_HEADER: "malformed-at=1"}
    )
    events = parse_sse(b"".join(chunks))
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1][1])
    assert events[1][0] == "conversation.chat.in_progress"
    for index, (_, data) in enumerate(events):
        if index != 1:
            json.loads(data)
    assert events[-1] == ("done", '"[DONE]"')


async def test_fault_error_at(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, chunks = await stream_raw(
        session,
        emu,
        chat_body(stream=True),
        headers={FAULT_HEADER: "error-at=3;error-code=4016"},
    )
    events = decoded(parse_sse(b"".join(chunks)))
    assert len(events) == 4
    name, error = events[-1]
    assert name == "error"
    assert error["code"] == 4016
    assert error["msg"].startswith("Conversation occupied")
    chat = events[0][1]
    params = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    assert env["data"]["status"] == "failed"
    assert env["data"]["last_error"]["code"] == 4016

    _, chunks = await stream_raw(
        session, emu, chat_body(stream=True), headers={FAULT_HEADER: "error-at=0"}
    )
    assert decoded(parse_sse(b"".join(chunks)))[0][1]["code"] == 5000


async def test_fault_chat_failed_stream(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, chunks = await stream_raw(
        session, emu, chat_body(stream=True), headers={FAULT_HEADER: "chat-failed"}
    )
    events = decoded(parse_sse(b"".join(chunks)))
    assert [n for n, _ in events] == [
        "conversation.chat.created",
        "conversation.chat.in_progress",
        "conversation.chat.failed",
    ]
    failed = events[-1][1]
    assert failed["status"] == "failed"
    assert failed["last_error"] == {"code": 5000, "msg": "event interval error"}
    assert len(str(failed["failed_at"])) == 10


async def test_fault_chat_failed_non_stream(emu: Emulator, session: aiohttp.ClientSession) -> None:
    _, env = await call(
        session, emu, "POST", "/v3/chat", body=chat_body(), fault="chat-failed;error-code=4028"
    )
    assert env["data"]["status"] == "in_progress"
    params = {"conversation_id": env["data"]["conversation_id"], "chat_id": env["data"]["id"]}
    await emu.wait_background()
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    assert env["data"]["status"] == "failed"
    assert env["data"]["last_error"]["code"] == 4028
    assert "free quota" in env["data"]["last_error"]["msg"]
    _, env = await call(session, emu, "GET", "/v3/chat/message/list", params=params)
    assert env["code"] == 0
    assert "data" not in env


async def test_fault_json_error_with_status(emu: Emulator, session: aiohttp.ClientSession) -> None:
    for body in (chat_body(stream=True), chat_body()):
        resp, env = await call(
            session, emu, "POST", "/v3/chat", body=body, fault="json-error=4009;status=429"
        )
        assert resp.status == 429
        assert resp.headers["Content-Type"] == "application/json"
        assert env["code"] == 4009
        assert env["msg"]
        assert env["detail"]["logid"] == resp.headers["x-tt-logid"]
    # Unary routes honour it too; the default status is 200.
    resp, env = await call(
        session,
        emu,
        "GET",
        "/v3/chat/retrieve",
        params={"conversation_id": "1", "chat_id": "2"},
        fault="json-error=5000",
    )
    assert resp.status == 200
    assert env["code"] == 5000


async def test_fault_html_502_and_http_status(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    headers = auth(emu, **{FAULT_HEADER: "html-502"})
    async with session.post(emu.url + "/v3/chat", json=chat_body(), headers=headers) as resp:
        assert resp.status == 502
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "502 Bad Gateway" in await resp.text()
        assert LOGID_RE.match(resp.headers["x-tt-logid"])
    headers = auth(emu, **{FAULT_HEADER: "http-status=503"})
    async with session.get(emu.url + "/v3/chat/retrieve", headers=headers) as resp:
        assert resp.status == 503
        assert "Service Unavailable" in await resp.text()


async def test_fault_slow_headers_and_latency(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    headers = auth(emu, **{FAULT_HEADER: "slow-headers=0.2"})
    async with session.post(emu.url + "/v3/chat", json=chat_body(), headers=headers) as resp:
        assert time.monotonic() - started >= 0.2
        assert (await resp.json())["code"] == 0

    started = time.monotonic()
    _, chunks = await stream_raw(
        session, emu, chat_body(stream=True), headers={FAULT_HEADER: "latency=0.05;eof-after=4"}
    )
    assert len(chunks) == 4
    assert time.monotonic() - started >= 0.15


async def test_fault_times_applies_to_first_k_requests(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    statuses = []
    for fault in ("html-502;times=1", "html-502;times=1", "times=1;html-502"):
        headers = auth(emu, **{FAULT_HEADER: fault})
        async with session.post(emu.url + "/v3/chat", json=chat_body(), headers=headers) as resp:
            statuses.append(resp.status)
            await resp.read()
    assert statuses == [502, 200, 502]  # counted per distinct header value


async def test_unknown_or_bad_fault_is_400(emu: Emulator, session: aiohttp.ClientSession) -> None:
    for fault, needle in (
        ("drop-afterr=3", "drop-afterr"),
        ("drop-after=x", "drop-after"),
        ("html-502=1", "html-502"),
    ):
        headers = auth(emu, **{FAULT_HEADER: fault})
        async with session.post(emu.url + "/v3/chat", json=chat_body(), headers=headers) as resp:
            assert resp.status == 400
            assert needle in await resp.text()
    assert [r.headers[FAULT_HEADER] for r in emu.requests] == [
        "drop-afterr=3",
        "drop-after=x",
        "html-502=1",
    ]


# --------------------------------------------------------------------------- lifecycle


async def test_request_recording(emu: Emulator, session: aiohttp.ClientSession) -> None:
    await call(
        session,
        emu,
        "POST",
        "/v3/chat/cancel",
        body={"conversation_id": "1", "chat_id": "2"},
    )
    await call(session, emu, "GET", "/v3/chat/retrieve?conversation_id=&chat_id=5")
    first, second = emu.requests
    assert first.method == "POST"
    assert first.path == "/v3/chat/cancel"
    assert first.json == {"conversation_id": "1", "chat_id": "2"}
    assert json.loads(first.body) == first.json
    assert first.headers["authorization"] == f"Bearer {emu.token}"
    assert second.query == {"conversation_id": "", "chat_id": "5"}
    assert second.raw_query == "conversation_id=&chat_id=5"
    assert second.json is None
    assert second.body == b""
    assert first.at <= second.at
    assert emu.cancels == [("1", "2")]


async def test_client_disconnect_releases_the_stream(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    headers = auth(emu, **{FAULT_HEADER: "latency=5"})
    resp = await session.post(emu.url + "/v3/chat", json=chat_body(stream=True), headers=headers)
    first = await resp.content.readuntil(b"\n\n")
    assert first.startswith(b"event:conversation.chat.created\n")
    assert emu.open_streams == 1
    resp.close()
    with anyio.fail_after(5):
        await emu.wait_idle()
    assert emu.open_streams == 0
    # Like Coze, generation "finishes on the server" although the client left.
    chat = json.loads(first.split(b"\ndata:", 1)[1])
    params = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
    _, env = await call(session, emu, "GET", "/v3/chat/retrieve", params=params)
    assert env["data"]["status"] == "completed"


async def test_close_with_stream_in_flight(session: aiohttp.ClientSession) -> None:
    emu = Emulator(event_delay=5)
    await emu.start()
    url = emu.url
    resp = await session.post(url + "/v3/chat", json=chat_body(stream=True), headers=auth(emu))
    try:
        await resp.content.readuntil(b"\n\n")
        with anyio.fail_after(5):
            await emu.close()
            with pytest.raises(aiohttp.ClientPayloadError):
                await resp.read()
    finally:
        resp.close()
    assert emu.open_streams == 0
    await emu.close()  # idempotent
    with pytest.raises(RuntimeError):
        _ = emu.url


# --------------------------------------------------------------------------- cozepy


async def test_official_cozepy_parses_everything() -> None:
    # cozepy imports authlib.jose, which forces its own deprecation warning to "always";
    # recording is the only way to keep that noise (not ours) out of the report.
    with warnings.catch_warnings(record=True):
        pytest.importorskip("cozepy")
        from cozepy import (
            AsyncCoze,
            AsyncHTTPClient,
            AsyncTokenAuth,
            ChatEventType,
            ChatStatus,
            Message,
            ToolOutput,
        )

    async with Emulator() as emu, AsyncHTTPClient() as http:
        coze = AsyncCoze(auth=AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            seen: set[Any] = set()
            text = ""
            async for event in coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u1",
                additional_messages=[Message.build_user_question_text("早上好")],
            ):
                seen.add(event.event)
                if event.event == ChatEventType.CONVERSATION_MESSAGE_DELTA:
                    text += event.message.content
                if event.event == ChatEventType.CONVERSATION_CHAT_COMPLETED:
                    chat = event.chat
            assert text == "你说：早上好"
            assert seen == {
                ChatEventType.CONVERSATION_CHAT_CREATED,
                ChatEventType.CONVERSATION_CHAT_IN_PROGRESS,
                ChatEventType.CONVERSATION_MESSAGE_DELTA,
                ChatEventType.CONVERSATION_MESSAGE_COMPLETED,
                ChatEventType.CONVERSATION_CHAT_COMPLETED,
            }
            assert chat.status == ChatStatus.COMPLETED
            assert chat.usage is not None
            assert chat.usage.token_count > 0
            retrieved = await coze.chat.retrieve(
                conversation_id=chat.conversation_id, chat_id=chat.id
            )
            assert retrieved.status == ChatStatus.COMPLETED
            messages = await coze.chat.messages.list(
                conversation_id=chat.conversation_id, chat_id=chat.id
            )
            assert messages[0].content == "你说：早上好"

            audio_seen = set()
            async for event in coze.chat.stream(
                bot_id=AUDIO_BOT_ID,
                user_id="u1",
                additional_messages=[Message.build_user_question_text("你好")],
            ):
                audio_seen.add(event.event)
                if event.event == ChatEventType.CONVERSATION_AUDIO_DELTA:
                    assert event.message.get_audio()
            assert ChatEventType.CONVERSATION_AUDIO_DELTA in audio_seen

            tool_call_id = ""
            async for event in coze.chat.stream(
                bot_id=TOOL_BOT_ID,
                user_id="u1",
                additional_messages=[Message.build_user_question_text("北京天气")],
            ):
                if event.event == ChatEventType.CONVERSATION_CHAT_REQUIRES_ACTION:
                    tool_chat = event.chat
                    action = tool_chat.required_action
                    tool_call_id = action.submit_tool_outputs.tool_calls[0].id
            assert tool_call_id
            answer = ""
            async for event in coze.chat.submit_tool_outputs_stream(
                conversation_id=tool_chat.conversation_id,
                chat_id=tool_chat.id,
                tool_outputs=[ToolOutput(tool_call_id=tool_call_id, output="晴")],
            ):
                if event.event == ChatEventType.CONVERSATION_MESSAGE_DELTA:
                    answer += event.message.content
                if event.event == ChatEventType.CONVERSATION_CHAT_COMPLETED:
                    assert event.chat.id == tool_chat.id
            assert answer == "天气：晴"

            failed = []
            async for event in coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u1",
                additional_messages=[Message.build_user_question_text("hi")],
                headers={FAULT_HEADER: "chat-failed"},
            ):
                if event.event == ChatEventType.CONVERSATION_CHAT_FAILED:
                    failed.append(event.chat)
            assert failed[0].status == ChatStatus.FAILED
            assert failed[0].last_error is not None
            assert failed[0].last_error.code == 5000
        # cozepy warns on enum values it does not know; the emulator must send none.
        assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
