"""Hardening (issue 12, item 6): wrong-shaped JSON raises, it never becomes defaults.

Where a typed object (or list, or map) is expected and something else arrives, unary calls
raise ``ResponseValidationError`` and streams ``InvalidEventError`` (partial kept), naming the
field and the JSON type received. The lenient rules stay: unknown fields are ignored, unknown
enum values kept, numeric strings accepted for ints.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from coze_async import (
    AsyncCoze,
    Chat,
    InvalidEventError,
    Message,
    ResponseValidationError,
    RetryPolicy,
)
from coze_async import models as models_pkg
from coze_async.emulator import Emulator, sse_frame
from coze_async.models import chat as chat_models
from coze_async.models import conversation, events, file, workflow
from coze_async.models.converter import structure
from coze_async.models.wire import chat_event_from_sse

from ._payloads import chat_obj, msg_obj, start_frames

pytestmark = pytest.mark.anyio

HI = [Message.user("hi")]

#: Every attrs model a response can be structured into (events and snapshots are built by
#: the SDK itself, not structured from JSON).
_BUILT_LOCALLY = {
    "ChatSnapshot",
    "WorkflowSnapshot",
    "WorkflowResult",
    "WorkflowNodeContent",
    "ChatPoll",
    "ContentItem",
}
WIRE_MODELS = sorted(
    {
        cls
        for module in (chat_models, conversation, events, file, workflow)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if attrs.has(cls)
        and cls.__module__ == module.__name__
        and not cls.__name__.startswith("_")
        and cls.__name__ not in _BUILT_LOCALLY
    },
    key=lambda c: c.__name__,
)

NOT_OBJECTS: list[tuple[Any, str]] = [
    ([1, 2], "list"),
    ("lots", "str"),
    (7, "int"),
    (1.5, "float"),
    (True, "bool"),
    (None, "null"),
]


def test_the_model_walk_found_the_models() -> None:
    names = {c.__name__ for c in WIRE_MODELS}
    assert {"Chat", "Message", "Usage", "LastError", "WorkflowRunHistory", "File"} <= names
    assert set(models_pkg.__all__) >= {"Chat", "Usage"}


@pytest.mark.parametrize("cls", WIRE_MODELS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("value", "kind"), NOT_OBJECTS, ids=[k for _, k in NOT_OBJECTS])
def test_every_model_refuses_a_non_object(cls: type, value: Any, kind: str) -> None:
    with pytest.raises(ResponseValidationError) as info:
        structure(value, cls, what="$.data")
    assert f"$.data: expected an object, got {kind}" in str(info.value)
    assert info.value.path == "$.data"


NESTED: list[tuple[type, dict[str, Any], str]] = [
    (Chat, {"id": "1", "usage": "lots"}, "$.data.usage: expected an object, got str"),
    (Chat, {"id": "1", "last_error": "boom"}, "$.data.last_error: expected an object, got str"),
    (
        Chat,
        {"id": "1", "required_action": 5},
        "$.data.required_action: expected an object, got int",
    ),
    (
        Chat,
        {"id": "1", "required_action": {"type": "x", "submit_tool_outputs": []}},
        "$.data.required_action.submit_tool_outputs: expected an object, got list",
    ),
    (
        Chat,
        {"id": "1", "required_action": {"submit_tool_outputs": {"tool_calls": {"a": 1}}}},
        "$.data.required_action.submit_tool_outputs.tool_calls: expected a list, got dict",
    ),
    (
        Chat,
        {"id": "1", "required_action": {"submit_tool_outputs": {"tool_calls": ["x"]}}},
        "$.data.required_action.submit_tool_outputs.tool_calls[0]: expected an object, got str",
    ),
    (
        Chat,
        {
            "id": "1",
            "required_action": {"submit_tool_outputs": {"tool_calls": [{"function": None}]}},
        },
        "$.data.required_action.submit_tool_outputs.tool_calls[0].function: "
        "expected an object, got null",
    ),
    (
        Chat,
        {"id": "1", "inserted_additional_messages": "abc"},
        "$.data.inserted_additional_messages: expected a list, got str",
    ),
    (Chat, {"id": "1", "meta_data": ["a"]}, "$.data.meta_data: expected an object, got list"),
    (Chat, {"id": "1", "usage": {"token_count": [1]}}, "$.data.usage.token_count"),
    (Message, {"meta_data": "x"}, "$.data.meta_data: expected an object, got str"),
    (
        workflow.WorkflowRunHistory,
        {"execute_id": "e", "node_execute_status": {"End": "done"}},
        "$.data.node_execute_status['End']: expected an object, got str",
    ),
    (
        workflow.WorkflowRunHistory,
        {"execute_id": "e", "node_execute_status": []},
        "$.data.node_execute_status: expected an object, got list",
    ),
    (
        workflow.WorkflowMessage,
        {"content": "x", "usage": 5},
        "$.data.usage: expected an object, got int",
    ),
    (
        workflow.WorkflowInterrupt,
        {"interrupt_data": "x"},
        "$.data.interrupt_data: expected an object, got str",
    ),
    (
        workflow.WorkflowMessage,
        {"content": "x", "ext": "e"},
        "$.data.ext: expected an object, got str",
    ),
]


@pytest.mark.parametrize(("cls", "data", "expected"), NESTED)
def test_nested_fields_of_the_wrong_shape_are_named(
    cls: type, data: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ResponseValidationError) as info:
        structure(data, cls, what="$.data")
    assert expected in str(info.value)


def test_lenient_rules_still_hold() -> None:
    chat = structure(
        {
            "id": 12,
            "created_at": "1718792949",
            "status": "brand_new",
            "usage": {"token_count": "3"},
            "last_error": {"code": None, "msg": ""},
            "required_action": None,
            "future": [1, {"x": 2}],
        },
        Chat,
    )
    assert chat.id == "12" and chat.created_at == 1718792949 and chat.status == "brand_new"
    assert chat.usage is not None and chat.usage.token_count == 3
    assert chat.required_action is None
    history = structure({"execute_id": "e", "node_execute_status": {}}, workflow.WorkflowRunHistory)
    assert history.node_execute_status == {}


@pytest.mark.parametrize(("value", "kind"), NOT_OBJECTS, ids=[k for _, k in NOT_OBJECTS])
def test_message_event_data_must_be_an_object(value: Any, kind: str) -> None:
    # The fast path hands anything that is not a plain dict to the converter, which refuses it.
    with pytest.raises(ResponseValidationError, match=f"expected an object, got {kind}"):
        chat_event_from_sse("conversation.message.delta", json.dumps(value))


# -- streams: InvalidEventError with the partial kept ------------------------------------------


async def _drain(coze: AsyncCoze, bot_id: str) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as info:
        async with coze.chat.stream(bot_id=bot_id, user_id="u", messages=HI) as stream:
            async for _ in stream:
                pass
    return info.value


async def test_stream_delta_that_is_a_list(coze: AsyncCoze, emu: Emulator) -> None:
    frames = [
        *start_frames(),
        sse_frame("conversation.message.delta", msg_obj("早", type="answer")),
        sse_frame("conversation.message.delta", [msg_obj("上", type="answer")]),
    ]
    emu.add_scripted_bot("shape", frames)
    err = await _drain(coze, "shape")
    assert "expected an object, got list" in str(err)
    assert err.event == "conversation.message.delta"
    assert err.partial.events == 3 and err.partial.text == "早"


async def test_stream_failed_chat_with_a_string_last_error(coze: AsyncCoze, emu: Emulator) -> None:
    bad = chat_obj("failed", last_error="quota used up")
    emu.add_scripted_bot("shape", [*start_frames(), sse_frame("conversation.chat.failed", bad)])
    err = await _drain(coze, "shape")
    assert "last_error: expected an object, got str" in str(err)
    assert err.partial.chat is not None  # the chat from conversation.chat.created is kept


async def test_stream_usage_that_is_a_string(coze: AsyncCoze, emu: Emulator) -> None:
    bad = chat_obj("completed", usage="lots")
    emu.add_scripted_bot("shape", [*start_frames(), sse_frame("conversation.chat.completed", bad)])
    err = await _drain(coze, "shape")
    assert "usage: expected an object, got str" in str(err)


# -- unary calls: a server that answers wrong-shaped JSON ---------------------------------------


@pytest.fixture
async def odd_server() -> AsyncIterator[tuple[str, list[Any]]]:
    """A server answering each request with the next body of ``bodies`` (test-filled)."""
    bodies: list[Any] = []
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response(bodies.pop(0), headers={"x-tt-logid": "LOG1"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", bodies
    finally:
        await runner.cleanup()


async def test_unary_chat_usage_string(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": chat_obj("completed", usage="lots")})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError) as info:
            await coze.chat.retrieve(conversation_id="c", chat_id="x")
    assert "$.data.usage: expected an object, got str" in str(info.value)
    assert info.value.logid == "LOG1"


async def test_unary_chat_last_error_string(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": chat_obj("failed", last_error="boom")})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match="last_error: expected an object"):
            await coze.chat.retrieve(conversation_id="c", chat_id="x")


async def test_unary_message_list_item_that_is_a_list(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": [msg_obj("a"), ["b"]]})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match=r"\$\.data\[1\]: expected an object"):
            await coze.chat.messages(conversation_id="c", chat_id="x")


async def test_unary_workflow_run_usage_string(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": "{}", "usage": "lots", "debug_url": "u"})
    bodies.append({"code": 0, "msg": "", "data": "{}", "interrupt_data": "x"})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match=r"\$\.usage: expected an object"):
            await coze.workflows.run(workflow_id="w")
        with pytest.raises(ResponseValidationError, match="interrupt_data: expected an object"):
            await coze.workflows.run(workflow_id="w")


async def test_unary_conversation_that_is_a_string(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": "conv"})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match=r"\$\.data: expected an object, got str"):
            await coze.conversations.retrieve(conversation_id="c")


async def test_message_page_cursor_that_is_an_object(odd_server: tuple[str, list[Any]]) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": [msg_obj("a")], "last_id": {"id": 1}})
    bodies.append({"code": 0, "msg": "", "data": [msg_obj("a")], "has_more": "lots"})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match=r"\$\.last_id: expected a string"):
            [m async for m in coze.conversations.messages.list(conversation_id="c")]
        with pytest.raises(ResponseValidationError, match=r"\$\.has_more: expected a boolean"):
            [m async for m in coze.conversations.messages.list(conversation_id="c")]


async def test_conversation_page_has_more_that_is_a_list(
    odd_server: tuple[str, list[Any]],
) -> None:
    url, bodies = odd_server
    bodies.append({"code": 0, "msg": "", "data": {"conversations": [], "has_more": [1]}})
    async with AsyncCoze(token="t", base_url=url, retry=RetryPolicy.none()) as coze:
        with pytest.raises(ResponseValidationError, match=r"has_more: expected a boolean"):
            [c async for c in coze.conversations.list(bot_id="b")]
