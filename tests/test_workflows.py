"""Workflow runs over real sockets: sync run, async run + history, resume, output nodes, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ConflictError,
    InterruptType,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    ServerError,
    WorkflowPollTimeoutError,
    WorkflowRunFailedError,
    WorkflowRunStatus,
)
from coze_async.emulator import (
    ECHO_WORKFLOW_ID,
    FAILING_WORKFLOW_ID,
    QA_WORKFLOW_ID,
    STREAM_WORKFLOW_ID,
    Emulator,
)
from coze_async.emulator.workflows import StreamingWorkflow
from coze_async.models.workflow import run_history_from_wire, run_result_from_wire

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


def _paths(emu: Emulator, path: str) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.path == path]


async def _client(emu: Emulator) -> AsyncCoze:
    return AsyncCoze(token=emu.token, base_url=emu.url)


# --------------------------------------------------------------------------- sync run


async def test_sync_run_returns_raw_and_parsed_data(coze: AsyncCoze, emu: Emulator) -> None:
    result = await coze.workflows.run(
        workflow_id=ECHO_WORKFLOW_ID, parameters={"input": "早上好"}, ext={"user_id": "u-1"}
    )
    assert result.data == '{"output":"早上好"}'
    assert result.parsed == {"output": "早上好"}
    assert result.debug_url is not None and "work_flow?execute_id=" in result.debug_url
    assert result.execute_id is not None and result.execute_id in result.debug_url
    assert result.usage is not None and result.usage.token_count > 0
    assert result.interrupt_data is None and not result.interrupted
    assert result.logid is not None and len(result.logid) == 34
    (sent,) = _paths(emu, "/v1/workflow/run")
    assert sent.json == {
        "workflow_id": ECHO_WORKFLOW_ID,
        "parameters": {"input": "早上好"},
        "ext": {"user_id": "u-1"},
        "is_async": False,
    }
    # The run has a history too (run_mode 0), found through the execute id.
    history = await coze.workflows.runs.retrieve(
        workflow_id=ECHO_WORKFLOW_ID, execute_id=result.execute_id
    )
    assert history.succeeded
    assert history.run_mode == 0
    assert history.connector_uid == "u-1"


async def test_sync_run_sends_every_optional_field(coze: AsyncCoze, emu: Emulator) -> None:
    await coze.workflows.run(
        workflow_id=ECHO_WORKFLOW_ID,
        parameters={"input": 1},
        app_id="7300000000000000001",
        workflow_version="v0.0.2",
        connector_id="1024",
        extra_headers={"x-trace": "t1"},
        extra_body={"custom": True},
    )
    (sent,) = _paths(emu, "/v1/workflow/run")
    assert sent.json == {
        "workflow_id": ECHO_WORKFLOW_ID,
        "parameters": {"input": 1},
        "app_id": "7300000000000000001",
        "workflow_version": "v0.0.2",
        "connector_id": "1024",
        "is_async": False,
        "custom": True,
    }
    assert sent.headers["x-trace"] == "t1"


async def test_non_json_data_is_kept_raw() -> None:
    result = run_result_from_wire(
        {"code": 0, "data": "plain text, not JSON", "debug_url": "https://x/?execute_id=7"},
        logid="L",
    )
    assert result.data == "plain text, not JSON"
    assert result.parsed is None
    assert result.execute_id == "7"
    # A server that sends the object itself is accepted and re-encoded.
    odd = run_result_from_wire({"data": {"output": 1}}, logid=None)
    assert odd.parsed == {"output": 1}


async def test_sync_run_stopped_by_question_then_resumed(coze: AsyncCoze, emu: Emulator) -> None:
    first = await coze.workflows.run(workflow_id=QA_WORKFLOW_ID)
    assert first.interrupted
    interrupt = first.interrupt_data
    assert interrupt is not None
    assert interrupt.type == InterruptType.QUESTION
    assert interrupt.event_id.startswith(f"{first.execute_id}/")
    assert interrupt.question == "请问你想查看哪个城市的天气呢？"
    assert first.data == ""

    done = await coze.workflows.resume(
        workflow_id=QA_WORKFLOW_ID,
        event_id=interrupt.event_id,
        interrupt_type=interrupt.type,
        resume_data="杭州",
    )
    assert done.parsed == {"output": "杭州：晴，25°C"}
    assert not done.interrupted
    (sent,) = _paths(emu, "/v1/workflows/resume")
    assert sent.json == {
        "workflow_id": QA_WORKFLOW_ID,
        "event_id": interrupt.event_id,
        "interrupt_type": 2,
        "resume_data": "杭州",
    }
    # The interrupt was used: answering it again is a conflict (4315).
    with pytest.raises(ConflictError) as info:
        await coze.workflows.resume(
            workflow_id=QA_WORKFLOW_ID,
            event_id=interrupt.event_id,
            interrupt_type=2,
            resume_data="杭州",
        )
    assert info.value.code == 4315


async def test_failed_sync_run_raises_with_debug_url(coze: AsyncCoze) -> None:
    with pytest.raises(ServerError) as info:
        await coze.workflows.run(workflow_id=FAILING_WORKFLOW_ID)
    assert info.value.code == 5000
    assert "ZeroDivisionError" in info.value.msg
    assert info.value.debug_url is not None and "execute_id=" in info.value.debug_url
    assert info.value.logid is not None


async def test_unpublished_workflow_is_not_found(coze: AsyncCoze) -> None:
    with pytest.raises(NotFoundError) as info:
        await coze.workflows.run(workflow_id="7599999999999999999")
    assert info.value.code == 4200
    assert "published" in info.value.msg


async def test_bot_id_and_app_id_together(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(InvalidArgumentError, match="bot_id= or app_id="):
        await coze.workflows.run(workflow_id=ECHO_WORKFLOW_ID, bot_id="1", app_id="2")
    with pytest.raises(InvalidArgumentError):
        coze.workflows.stream(workflow_id=ECHO_WORKFLOW_ID, bot_id="1", app_id="2")
    assert not emu.requests, "refused before anything was sent"
    # The server says 4000 too (reached here through the extra_body escape hatch).
    with pytest.raises(BadRequestError) as info:
        await coze.workflows.run(
            workflow_id=ECHO_WORKFLOW_ID, bot_id="1", extra_body={"app_id": "2"}
        )
    assert info.value.code == 4000


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"workflow_id": ""}, "workflow_id"),
        ({"workflow_id": ECHO_WORKFLOW_ID, "parameters": ["x"]}, "parameters"),
        ({"workflow_id": ECHO_WORKFLOW_ID, "ext": {"user_id": 1}}, "ext"),
    ],
)
async def test_bad_run_arguments_fail_before_sending(
    coze: AsyncCoze, emu: Emulator, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        await coze.workflows.run(**kwargs)
    assert not emu.requests


async def test_bad_resume_arguments_fail_before_sending(coze: AsyncCoze, emu: Emulator) -> None:
    not_an_int: Any = "2"
    with pytest.raises(InvalidArgumentError, match="interrupt_type"):
        await coze.workflows.resume(
            workflow_id=QA_WORKFLOW_ID, event_id="1/2", interrupt_type=not_an_int, resume_data="x"
        )
    not_a_str: Any = None
    with pytest.raises(InvalidArgumentError, match="resume_data"):
        coze.workflows.resume_stream(
            workflow_id=QA_WORKFLOW_ID, event_id="1/2", interrupt_type=2, resume_data=not_a_str
        )
    assert not emu.requests


# --------------------------------------------------------------------------- async runs


async def test_async_run_history_moves_from_running_to_success() -> None:
    # The run stays Running for 1 s (not the default 50 ms), so a loaded machine still reads
    # it Running before it finishes; wait_background() then awaits the end, no sleeping.
    async with Emulator(workflow_duration=1.0) as emu, await _client(emu) as coze:
        await _check_running_then_success(coze, emu)


async def _check_running_then_success(coze: AsyncCoze, emu: Emulator) -> None:
    execute_id = await coze.workflows.run_async(
        workflow_id=ECHO_WORKFLOW_ID, parameters={"input": "后台"}
    )
    assert execute_id.isdigit() and len(execute_id) == 19
    (sent,) = _paths(emu, "/v1/workflow/run")
    assert sent.json["is_async"] is True

    running = await coze.workflows.runs.retrieve(
        workflow_id=ECHO_WORKFLOW_ID, execute_id=execute_id
    )
    assert running.execute_status == WorkflowRunStatus.RUNNING
    assert running.running and running.parsed is None
    assert running.run_mode == 2

    await emu.wait_background()
    done = await coze.workflows.runs.retrieve(workflow_id=ECHO_WORKFLOW_ID, execute_id=execute_id)
    assert done.execute_status == "Success"
    assert done.error_code == "" and done.code is None
    assert done.parsed is not None
    # The End node's entry is JSON text in the doc example's form (coze-api.md §4.5).
    assert json.loads(done.parsed["Output"]) == {
        "content_type": 1,
        "data": '{"output":"后台"}',
        "original_result": None,
        "type_for_model": 2,
    }
    assert done.usage is not None and done.usage.token_count > 0
    assert done.debug_url is not None and execute_id in done.debug_url
    assert done.run_logid is not None and done.logid is not None
    assert done.run_logid != done.logid, "the run's logid is not the retrieve call's"
    assert done.node_execute_status is not None and "End" in done.node_execute_status


async def test_run_and_wait_polls_to_success(coze: AsyncCoze, emu: Emulator) -> None:
    history = await coze.workflows.run_and_wait(
        workflow_id=STREAM_WORKFLOW_ID, parameters={"topic": "电影"}, poll_interval=0.01
    )
    assert history.succeeded
    assert history.parsed is not None
    assert "坐不下" in history.parsed["Output"]
    polls = [r for r in emu.requests if "/run_histories/" in r.path]
    assert polls and all(r.method == "GET" for r in polls)


async def test_run_and_wait_polls_to_fail(coze: AsyncCoze) -> None:
    with pytest.raises(WorkflowRunFailedError) as info:
        await coze.workflows.run_and_wait(workflow_id=FAILING_WORKFLOW_ID, poll_interval=0.01)
    err = info.value
    assert err.code == 5000
    assert "ZeroDivisionError" in err.msg
    assert err.history.failed
    assert err.history.error_code == "5000"
    assert err.debug_url is not None
    assert "failed" in str(err)


async def test_run_and_wait_returns_at_a_question(coze: AsyncCoze) -> None:
    history = await coze.workflows.run_and_wait(workflow_id=QA_WORKFLOW_ID, poll_interval=0.01)
    assert history.running, "a run waiting for an answer stays Running"
    assert history.interrupt_data is not None
    assert history.interrupt_data.type == 2


async def test_run_and_wait_deadline() -> None:
    async with Emulator(workflow_duration=30) as emu, await _client(emu) as coze:
        with pytest.raises(WorkflowPollTimeoutError) as info:
            await coze.workflows.run_and_wait(
                workflow_id=ECHO_WORKFLOW_ID, poll_interval=0.01, timeout=0.05
            )
    assert info.value.history.running
    assert isinstance(info.value, TimeoutError)


async def test_async_run_on_the_free_plan_is_6003() -> None:
    async with Emulator(user_level="free") as emu, await _client(emu) as coze:
        with pytest.raises(PermissionDeniedError) as info:
            await coze.workflows.run_async(workflow_id=ECHO_WORKFLOW_ID)
        assert info.value.code == 6003
        assert "paid" in str(info.value) and "run()" in str(info.value)
        # Sync runs work on the free plan.
        result = await coze.workflows.run(workflow_id=ECHO_WORKFLOW_ID, parameters={"input": 1})
        assert result.parsed == {"output": 1}


async def test_unknown_execute_id_is_4314(coze: AsyncCoze) -> None:
    with pytest.raises(NotFoundError) as info:
        await coze.workflows.runs.retrieve(
            workflow_id=ECHO_WORKFLOW_ID, execute_id="7000000000000000000"
        )
    assert info.value.code == 4314


def test_history_is_lenient() -> None:
    history = run_history_from_wire(
        {
            "execute_id": 7,
            "execute_status": "Cancelled",
            "error_code": 4000,
            "output": "not json",
            "logid": "RUNLOG",
            "create_time": "1718592898",
            "node_execute_status": {"问答": {"node_id": "1", "is_finish": True, "extra": 1}},
            "unknown_field": {"x": 1},
        },
        logid="CALL",
    )
    assert history.execute_id == "7"
    assert history.execute_status == "Cancelled"
    assert not (history.running or history.succeeded or history.failed)
    assert history.error_code == "4000" and history.code == 4000
    assert history.parsed is None and history.output == "not json"
    assert history.run_logid == "RUNLOG" and history.logid == "CALL"
    assert history.create_time == 1718592898
    assert history.node_execute_status is not None
    assert history.node_execute_status["问答"].is_finish


# --------------------------------------------------------------------------- output nodes


async def test_output_node_results(coze: AsyncCoze, emu: Emulator) -> None:
    # The execute id comes from Done's debug_url, which Coze's recorded Done ({}) lacks.
    emu.add_workflow(STREAM_WORKFLOW_ID, StreamingWorkflow().configured(done_debug_url=True))
    async with coze.workflows.stream(workflow_id=STREAM_WORKFLOW_ID) as run:
        result = await run.final()
    assert result.execute_id is not None
    history = await coze.workflows.runs.retrieve(
        workflow_id=STREAM_WORKFLOW_ID, execute_id=result.execute_id
    )
    assert history.run_mode == 1
    assert history.node_execute_status is not None
    node = history.node_execute_status["Message"]
    assert node.is_finish and node.node_execute_uuid
    output = await coze.workflows.node_output(
        workflow_id=STREAM_WORKFLOW_ID,
        execute_id=result.execute_id,
        node_execute_uuid=node.node_execute_uuid,
    )
    assert output.is_finish
    streamed = result.node("Message")
    assert streamed is not None and output.node_output == streamed.content
    assert output.logid is not None
    # The End node is not an output node.
    end = history.node_execute_status["End"]
    with pytest.raises(NotFoundError) as info:
        await coze.workflows.node_output(
            workflow_id=STREAM_WORKFLOW_ID,
            execute_id=result.execute_id,
            node_execute_uuid=end.node_execute_uuid,
        )
    assert info.value.code == 4314


# --------------------------------------------------------------------------- body limits


async def test_workflow_bodies_over_20_mb_are_refused_before_sending(
    coze: AsyncCoze, emu: Emulator
) -> None:
    big = {"input": "x" * (20 * MB)}
    with pytest.raises(RequestTooLargeError) as info:
        await coze.workflows.run(workflow_id=ECHO_WORKFLOW_ID, parameters=big)
    assert info.value.limit == 20 * MB
    assert info.value.size > 20 * MB
    with pytest.raises(RequestTooLargeError):
        await coze.workflows.run_async(workflow_id=ECHO_WORKFLOW_ID, parameters=big)
    with pytest.raises(RequestTooLargeError):
        await coze.workflows.resume(
            workflow_id=QA_WORKFLOW_ID, event_id="1/2", interrupt_type=2, resume_data="x" * 21 * MB
        )
    stream = coze.workflows.stream(workflow_id=ECHO_WORKFLOW_ID, parameters=big)
    with pytest.raises(RequestTooLargeError):
        async with stream:
            pass
    assert stream.closed
    assert not emu.requests, "nothing was sent"


async def test_workflow_bodies_between_15_and_20_mb_are_sent(
    coze: AsyncCoze, emu: Emulator
) -> None:
    payload = "y" * (16 * MB)
    result = await coze.workflows.run(workflow_id=ECHO_WORKFLOW_ID, parameters={"input": payload})
    assert result.parsed == {"output": payload}
    (sent,) = _paths(emu, "/v1/workflow/run")
    assert len(sent.body) > 16 * MB
