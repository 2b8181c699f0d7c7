"""Issue 13: chat and workflows on declarative endpoints and request models.

The request models are built once per call and shared by every method that sends them; the
pollers carry every per-call option to every call they make; chatflow streams cancel at Coze.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from coze_async import (
    APIError,
    AsyncCoze,
    ChatPollTimeoutError,
    InvalidArgumentError,
    Message,
    MessageDelta,
    RetryPolicy,
)
from coze_async.call import Call, Envelope
from coze_async.config import Timeouts
from coze_async.emulator import (
    CHATFLOW_ID,
    ECHO_BOT_ID,
    ECHO_WORKFLOW_ID,
    FAULT_HEADER,
    REPEAT_HEADER,
    Emulator,
)
from coze_async.models.workflow import WorkflowInfo
from coze_async.relay import sse_frames
from coze_async.requests import ChatflowRequest, ChatRequest, WorkflowRunRequest, split
from coze_async.resources import chat as chat_module
from coze_async.resources import workflows as workflows_module
from coze_async.sse import SSEDecoder

pytestmark = pytest.mark.anyio

APP_ID = "7300000000000000001"
SLOW = {FAULT_HEADER: "latency=0.02", REPEAT_HEADER: "100"}
RETRY = RetryPolicy(max_retries=1)
TIMEOUTS = Timeouts(read=30)
OPTIONS: dict[str, Any] = {
    "extra_headers": {"X-House": "1"},
    "extra_query": {"house": "q"},
    "extra_body": {"house_body": "b"},
    "timeouts": TIMEOUTS,
    "retry": RETRY,
}


def _record_calls(coze: AsyncCoze) -> list[Call]:
    """Every Call the client's transport is given, in order."""
    transport = coze._transport
    calls: list[Call] = []
    original = transport.request

    async def request(call: Call) -> Envelope:
        calls.append(call)
        return await original(call)

    transport.request = request  # type: ignore[method-assign]
    return calls


def _assert_all_options(calls: list[Call], emu: Emulator) -> None:
    assert calls
    for call in calls:
        assert (call.timeouts, call.retry) == (TIMEOUTS, RETRY), call.what
    assert len(emu.requests) == len(calls)
    for seen in emu.requests:
        assert seen.headers["X-House"] == "1", seen.path
        assert seen.query["house"] == "q", seen.path
        assert seen.json is not None and seen.json["house_body"] == "b", seen.path


# -- request models and the splitter -----------------------------------------------------


def test_split_separates_fields_from_options_and_names_unknown_keywords() -> None:
    request, options = split(
        {"workflow_id": "w", "extra_headers": {"a": "b"}, "retry": RETRY},
        WorkflowRunRequest,
        method="run",
    )
    assert request == WorkflowRunRequest(workflow_id="w")
    assert options == {"extra_headers": {"a": "b"}, "retry": RETRY}
    with pytest.raises(TypeError, match=r"run\(\) got unexpected keyword argument\(s\) 'bogus'"):
        split({"workflow_id": "w", "bogus": 1}, WorkflowRunRequest, method="run")


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.chat.create(bot_id=ECHO_BOT_ID, user_id="u", bogus=1),
        lambda c: c.chat.stream(bot_id=ECHO_BOT_ID, user_id="u", bogus=1),
        lambda c: c.chat.create_and_poll(bot_id=ECHO_BOT_ID, user_id="u", bogus=1),
        lambda c: c.workflows.run(workflow_id="w", bogus=1),
        lambda c: c.workflows.run_async(workflow_id="w", bogus=1),
        lambda c: c.workflows.run_and_wait(workflow_id="w", bogus=1),
        lambda c: c.workflows.stream(workflow_id="w", bogus=1),
        lambda c: c.workflows.chat(workflow_id="w", app_id="1", messages=[], bogus=1),
        lambda c: c.chat.retrieve(conversation_id="c", chat_id="x", bogus=1),
        lambda c: c.workflows.runs.retrieve(workflow_id="w", execute_id="e", bogus=1),
    ],
)
async def test_an_unknown_keyword_is_a_type_error_naming_it(
    coze: AsyncCoze, emu: Emulator, send: Any
) -> None:
    with pytest.raises(TypeError, match="'bogus'"):
        result = send(coze)
        if asyncio.iscoroutine(result):
            await result
    assert emu.requests == []


def test_request_models_are_frozen_checked_copies() -> None:
    variables = {"k": "v"}
    request = ChatRequest(bot_id=1, user_id="u", custom_variables=variables)  # type: ignore[arg-type]
    variables["k"] = "changed"
    assert request.bot_id == "1"
    body = request.to_body(stream=True)
    assert body["custom_variables"] == {"k": "v"} and body["stream"] is True
    assert request.to_body(stream=False)["stream"] is False
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.bot_id = "2"  # type: ignore[misc]
    flow = ChatflowRequest(workflow_id="w", bot_id="b", messages=[Message.user("hi")])
    assert flow.to_body()["additional_messages"][0]["content"] == "hi"
    run = WorkflowRunRequest(workflow_id="w", parameters={"a": 1})
    assert run.to_body(is_async=True) == {
        "workflow_id": "w",
        "parameters": {"a": 1},
        "is_async": True,
    }
    assert "is_async" not in run.to_body()


async def test_one_chat_request_per_call(
    coze: AsyncCoze, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[ChatRequest] = []

    class Counting(ChatRequest):
        def __attrs_post_init__(self) -> None:
            super().__attrs_post_init__()
            built.append(self)

    monkeypatch.setattr(chat_module, "ChatRequest", Counting)
    await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")], poll_interval=0.01
    )
    assert len(built) == 1


def test_endpoints_are_declared_once() -> None:
    assert chat_module.CREATE.quota == "chat.create"
    assert chat_module.STREAM.quota == "chat.stream"
    assert not chat_module.CREATE.idempotent and chat_module.RETRIEVE.idempotent
    for name in ("RUN", "RUN_ASYNC", "STREAM", "RESUME", "RESUME_STREAM", "CHAT", "NODE_OUTPUT"):
        endpoint = getattr(workflows_module, name)
        assert endpoint.max_body == 20 * 1024 * 1024, name


def test_every_declared_endpoint_is_in_the_quota_table() -> None:
    from coze_async.endpoint import Endpoint
    from coze_async.ratelimit.plans import ENDPOINT_BUCKETS

    declared = {
        value.quota
        for module in (chat_module, workflows_module)
        for value in vars(module).values()
        if isinstance(value, Endpoint)
    }
    assert {"chat.stream", "workflows.chat"} <= declared
    assert declared - set(ENDPOINT_BUCKETS) == set()


# -- pollers carry every option ----------------------------------------------------------


async def test_create_and_poll_passes_every_option_to_every_call(
    coze: AsyncCoze, emu: Emulator
) -> None:
    calls = _record_calls(coze)
    poll = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("a")],
        poll_interval=0.01,
        **OPTIONS,
    )
    assert poll.chat.status == "completed"
    paths = [r.path for r in emu.requests]
    assert paths[0] == "/v3/chat" and paths[-1] == "/v3/chat/message/list"
    assert "/v3/chat/retrieve" in paths
    _assert_all_options(calls, emu)


async def test_create_and_poll_cancels_with_every_option() -> None:
    slow = Emulator(chat_duration=30)
    async with slow, AsyncCoze(token=slow.token, base_url=slow.url) as coze:
        calls = _record_calls(coze)
        with pytest.raises(ChatPollTimeoutError):
            await coze.chat.create_and_poll(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("a")],
                poll_interval=0.05,
                timeout=0.2,
                **OPTIONS,
            )
        assert "/v3/chat/cancel" in [r.path for r in slow.requests]
        _assert_all_options(calls, slow)


async def test_run_and_wait_passes_every_option_to_every_call(
    coze: AsyncCoze, emu: Emulator
) -> None:
    calls = _record_calls(coze)
    history = await coze.workflows.run_and_wait(
        workflow_id=ECHO_WORKFLOW_ID, parameters={"input": "x"}, poll_interval=0.01, **OPTIONS
    )
    assert history.succeeded
    paths = [r.path for r in emu.requests]
    assert paths[0] == "/v1/workflow/run" and emu.requests[0].json["is_async"] is True
    assert any("/run_histories/" in p for p in paths[1:])
    _assert_all_options(calls, emu)


# -- chatflow streams cancel at Coze -----------------------------------------------------


def _slow_chatflow(coze: AsyncCoze) -> Any:
    return coze.workflows.chat(
        workflow_id=CHATFLOW_ID,
        app_id=APP_ID,
        messages=[Message.user("慢慢说")],
        extra_headers=SLOW,
    )


async def test_chatflow_cancel_cancels_at_coze(coze: AsyncCoze, emu: Emulator) -> None:
    async with _slow_chatflow(coze) as stream:
        async for event in stream:
            if isinstance(event, MessageDelta):
                cancelled = await stream.cancel()
                break
    assert cancelled is not None and cancelled.status == "canceled"
    assert emu.cancels == [(cancelled.conversation_id, cancelled.id)]
    cancels = [r for r in emu.requests if r.path == "/v3/chat/cancel"]
    assert [r.json for r in cancels] == [
        {"conversation_id": cancelled.conversation_id, "chat_id": cancelled.id}
    ]
    assert stream.closed
    await emu.wait_idle()
    assert emu.open_streams == 0


async def test_a_relay_disconnect_cancels_the_chatflow(coze: AsyncCoze, emu: Emulator) -> None:
    stream = _slow_chatflow(coze)
    got_delta = asyncio.Event()

    async def consume() -> None:
        decoder = SSEDecoder()
        async for frame in sse_frames(stream, heartbeat=0.05):
            if any(e.event == "delta" for e in decoder.feed(frame)):
                got_delta.set()

    task = asyncio.get_running_loop().create_task(consume())
    async with asyncio.timeout(10):
        await got_delta.wait()
        task.cancel()  # the relay's client went away
        with pytest.raises(asyncio.CancelledError):
            await task
    chat = stream.snapshot.chat
    assert chat is not None
    assert emu.cancels == [(chat.conversation_id, chat.id)]
    assert stream.closed


# -- workflow metadata: retrieve and list ------------------------------------------------


async def test_workflows_retrieve(coze: AsyncCoze, emu: Emulator) -> None:
    info = await coze.workflows.retrieve(workflow_id=ECHO_WORKFLOW_ID)
    assert isinstance(info, WorkflowInfo)
    assert info.workflow_id == ECHO_WORKFLOW_ID and info.workflow_name
    assert info.app_id == "0" and info.created_at.isdigit() and info.updated_at.isdigit()
    assert info.creator is not None and info.creator.id
    assert info.input_parameters is None and info.output_parameters is None
    assert info.logid is not None
    full = await coze.workflows.retrieve(
        workflow_id=ECHO_WORKFLOW_ID, include_input_output=True, **OPTIONS
    )
    assert full.input_parameters and full.output_parameters is not None
    first, second = emu.requests
    assert (first.method, first.path, first.query) == (
        "GET",
        f"/v1/workflows/{ECHO_WORKFLOW_ID}",
        {},
    )
    assert second.query == {"include_input_output": "true", "house": "q"}
    assert second.headers["X-House"] == "1" and second.json == {"house_body": "b"}


async def test_workflows_retrieve_unknown_and_bad_ids(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(APIError) as info:
        await coze.workflows.retrieve(workflow_id="7499999999999999999")
    assert info.value.code == 4200
    with pytest.raises(InvalidArgumentError):
        await coze.workflows.retrieve(workflow_id="..")
    with pytest.raises(InvalidArgumentError):
        await coze.workflows.retrieve(workflow_id="w", include_input_output="yes")  # type: ignore[arg-type]
    assert len(emu.requests) == 1


async def test_workflows_list_pages(coze: AsyncCoze, emu: Emulator) -> None:
    everything = [w async for w in coze.workflows.list(workspace_id="ws", page_size=2)]
    ids = [w.workflow_id for w in everything]
    assert ECHO_WORKFLOW_ID in ids and CHATFLOW_ID in ids and len(ids) == len(set(ids))
    pages = [r for r in emu.requests if r.path == "/v1/workflows"]
    assert len(pages) == -(-len(ids) // 2)  # has_more stops it after the last page
    assert pages[0].query == {"workspace_id": "ws", "page_num": "1", "page_size": "2"}
    chatflows = [
        w.workflow_id
        async for w in coze.workflows.list(workspace_id="ws", workflow_mode="chatflow", **OPTIONS)
    ]
    assert chatflows == [CHATFLOW_ID]
    last = emu.requests[-1]
    assert last.query["workflow_mode"] == "chatflow" and last.headers["X-House"] == "1"


async def test_workflows_list_checks_arguments_before_sending(
    coze: AsyncCoze, emu: Emulator
) -> None:
    with pytest.raises(InvalidArgumentError, match="page_size"):
        coze.workflows.list(workspace_id="ws", page_size=31)
    with pytest.raises(InvalidArgumentError, match="workspace_id"):
        coze.workflows.list(workspace_id="")
    with pytest.raises(TypeError, match="'extra_header'"):
        coze.workflows.list(workspace_id="ws", extra_header={})  # type: ignore[call-arg]
    assert emu.requests == []
