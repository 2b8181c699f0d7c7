"""Workflow streams over real sockets: events, ids, interrupts and resumes, errors, framing."""

from __future__ import annotations

from typing import Any

import aiohttp
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ConflictError,
    IncompleteStreamError,
    InterruptType,
    NotFoundError,
    StreamErrorEvent,
    StreamGapError,
    StreamInterruptedError,
    UnknownEvent,
    WorkflowDone,
    WorkflowInterrupt,
    WorkflowMessage,
    WorkflowPing,
    WorkflowSnapshot,
    accumulate_workflow,
)
from coze_async.emulator import (
    ECHO_WORKFLOW_ID,
    FAILING_WORKFLOW_ID,
    FAULT_HEADER,
    MAX_RESUMES,
    QA_WORKFLOW_ID,
    SLOW_WORKFLOW_ID,
    STREAM_WORKFLOW_ID,
    Emulator,
    QuestionWorkflow,
    sse_frame,
)
from coze_async.emulator.workflows import StreamingWorkflow

pytestmark = pytest.mark.anyio


def _msg(
    n: int, content: str, *, seq: int = 0, finish: bool = True, title: str = "Message"
) -> bytes:
    data = {
        "content": content,
        "node_is_finish": finish,
        "node_seq_id": str(seq),
        "node_title": title,
    }
    return sse_frame("Message", data, spaced=True, id=n)


def _done(n: int, data: Any = None) -> bytes:
    return sse_frame("Done", {} if data is None else data, spaced=True, id=n)


# --------------------------------------------------------------------------- events


async def test_multi_node_stream_events_ids_and_result(coze: AsyncCoze, emu: Emulator) -> None:
    # The documented optional fields (node ids, End usage, Done's debug_url), which Coze's
    # recorded streams lack, are what this test reads.
    emu.add_workflow(
        STREAM_WORKFLOW_ID, StreamingWorkflow().configured(done_debug_url=True, node_details=True)
    )
    events = []
    async with coze.workflows.stream(
        workflow_id=STREAM_WORKFLOW_ID, parameters={"topic": "电影"}
    ) as run:
        async for event in run:
            events.append(event)
    assert [e.id for e in events] == list(range(len(events))), "ids 0, 1, 2... across the stream"
    assert isinstance(events[-1], WorkflowDone)
    assert events[-1].debug_url is not None
    messages = [e for e in events if isinstance(e, WorkflowMessage)]
    assert [m.node_title for m in messages][-1] == "", "the End node comes last"
    by_node: dict[str, list[WorkflowMessage]] = {}
    for m in messages:
        by_node.setdefault(m.node_title, []).append(m)
    assert list(by_node) == ["Message", "Message_2", ""]
    for chunks in by_node.values():
        # node_seq_id restarts per node; only the node's last chunk finishes it.
        assert [c.node_seq_id for c in chunks] == [str(i) for i in range(len(chunks))]
        assert [c.node_is_finish for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert len({c.node_execute_uuid for c in chunks}) == 1
        assert chunks[0].node_id
    assert len(by_node["Message"]) >= 3
    end = by_node[""][0]
    assert end.usage is not None and end.usage.token_count > 0

    result = await run.final()
    joke = "为什么小明要带一把尺子去看电影？因为他听说电影很长，怕坐不下！"
    assert result.output == '{"output":"' + joke + '"}'
    assert result.parsed == {"output": joke}
    assert [n.node_title for n in result.nodes] == ["Message", "Message_2", ""]
    node = result.node("Message")
    assert node is not None and node.content == joke and node.finished
    assert node.chunks == len(by_node["Message"])
    message_2 = result.node("Message_2")
    assert message_2 is not None and message_2.content == "讲完了，祝你开心！"
    assert result.usage == end.usage
    assert result.debug_url == events[-1].debug_url
    assert result.execute_id is not None and result.execute_id in result.debug_url
    assert result.interrupt is None and not result.interrupted
    assert result.logid == run.logid and run.logid is not None
    assert run.closed


async def test_text_view_and_snapshot(coze: AsyncCoze) -> None:
    async with coze.workflows.stream(workflow_id=STREAM_WORKFLOW_ID) as run:
        pieces = [p async for p in run.text()]
        snap = run.snapshot
    assert "".join(pieces) == snap.text
    assert snap.done is not None and snap.output is not None
    assert snap.last_id == snap.events - 1


async def test_replaying_events_gives_the_same_snapshot(coze: AsyncCoze) -> None:
    async with coze.workflows.stream(workflow_id=STREAM_WORKFLOW_ID) as run:
        events = [e async for e in run]
    replay = WorkflowSnapshot()
    for event in events:
        replay = accumulate_workflow(replay, event)
    assert replay.result() == run.snapshot.result()


async def test_nothing_is_sent_before_iteration(coze: AsyncCoze, emu: Emulator) -> None:
    run = coze.workflows.stream(workflow_id=ECHO_WORKFLOW_ID, parameters={"input": "x"})
    assert not emu.requests
    events = [e async for e in run]
    assert isinstance(events[-1], WorkflowDone)
    (sent,) = [r for r in emu.requests if r.path == "/v1/workflow/stream_run"]
    assert sent.json == {"workflow_id": ECHO_WORKFLOW_ID, "parameters": {"input": "x"}}


def test_workflow_events_are_frozen_and_slotted() -> None:
    for cls in (WorkflowMessage, WorkflowInterrupt, WorkflowDone, WorkflowPing):
        assert attrs.has(cls)
        assert "__slots__" in cls.__dict__
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        WorkflowDone({}).data = 1  # type: ignore[misc]


# --------------------------------------------------------------------------- interrupt, resume


async def test_interrupt_then_resume_then_done(coze: AsyncCoze, emu: Emulator) -> None:
    async with coze.workflows.stream(workflow_id=QA_WORKFLOW_ID) as run:
        events = [e async for e in run]
    # The emulator ends an interrupted stream right after Interrupt, like Coze's docs show.
    assert isinstance(events[-1], WorkflowInterrupt)
    assert [type(e) for e in events] == [WorkflowMessage, WorkflowInterrupt]
    first = await run.final()
    assert first.interrupted and first.output is None
    assert first.interrupt is not None
    data = first.interrupt.interrupt_data
    assert data.type == InterruptType.QUESTION
    assert data.question == "请问你想查看哪个城市的天气呢？"
    assert first.interrupt.node_title == "问答"

    async with coze.workflows.resume_stream(
        workflow_id=QA_WORKFLOW_ID,
        event_id=data.event_id,
        interrupt_type=data.type,
        resume_data="上海",
    ) as resumed:
        events = [e async for e in resumed]
    assert events[0].id == 0, "ids restart at 0 on a resume"
    assert isinstance(events[-1], WorkflowDone)
    result = await resumed.final()
    assert result.parsed == {"output": "上海：晴，25°C"}
    weather = result.node("天气")
    assert weather is not None and weather.content == "上海今天晴，气温 25°C。"
    (sent,) = [r for r in emu.requests if r.path == "/v1/workflow/stream_resume"]
    assert sent.json == {
        "workflow_id": QA_WORKFLOW_ID,
        "event_id": data.event_id,
        "interrupt_type": 2,
        "resume_data": "上海",
    }


async def test_done_after_interrupt_is_accepted(coze: AsyncCoze, emu: Emulator) -> None:
    qa = QuestionWorkflow(done_after_interrupt=True).configured(done_debug_url=True)
    emu.add_workflow("qa-with-done", qa)
    async with coze.workflows.stream(workflow_id="qa-with-done") as run:
        events = [e async for e in run]
    assert [type(e) for e in events] == [WorkflowMessage, WorkflowInterrupt, WorkflowDone]
    result = await run.final()
    assert result.interrupted
    assert result.output is None, "an interrupted run has no end output"
    assert result.debug_url is not None


async def test_at_most_three_resumes_then_the_run_fails(coze: AsyncCoze) -> None:
    async with coze.workflows.stream(workflow_id=QA_WORKFLOW_ID) as run:
        result = await run.final()
    assert result.interrupt is not None
    interrupt = result.interrupt.interrupt_data
    for _ in range(MAX_RESUMES - 1):
        # A blank answer makes the Q&A node ask again, with a new event id.
        async with coze.workflows.resume_stream(
            workflow_id=QA_WORKFLOW_ID,
            event_id=interrupt.event_id,
            interrupt_type=interrupt.type,
            resume_data=" ",
        ) as again:
            result = await again.final()
        assert result.interrupt is not None
        assert result.interrupt.interrupt_data.question == "没听清，请再告诉我城市名称。"
        assert result.interrupt.interrupt_data.event_id != interrupt.event_id
        interrupt = result.interrupt.interrupt_data
    # The third resume would need a fourth: the run fails instead.
    last = coze.workflows.resume_stream(
        workflow_id=QA_WORKFLOW_ID,
        event_id=interrupt.event_id,
        interrupt_type=interrupt.type,
        resume_data="",
    )
    with pytest.raises(StreamErrorEvent) as info:
        async with last:
            await last.final()
    assert "resumed 3 times" in info.value.msg
    # ... and a failed run cannot be resumed any more.
    with pytest.raises(ConflictError) as conflict:
        async with coze.workflows.resume_stream(
            workflow_id=QA_WORKFLOW_ID,
            event_id=interrupt.event_id,
            interrupt_type=interrupt.type,
            resume_data="北京",
        ):
            pass
    assert conflict.value.code == 4315
    history = await coze.workflows.runs.retrieve(
        workflow_id=QA_WORKFLOW_ID, execute_id=interrupt.event_id.split("/")[0]
    )
    assert history.failed


async def test_resume_errors_are_json_not_sse(coze: AsyncCoze) -> None:
    with pytest.raises(NotFoundError) as missing:
        async with coze.workflows.resume_stream(
            workflow_id=QA_WORKFLOW_ID, event_id="1/2", interrupt_type=2, resume_data="x"
        ):
            pass
    assert missing.value.code == 4314
    async with coze.workflows.stream(workflow_id=QA_WORKFLOW_ID) as run:
        result = await run.final()
    assert result.interrupt is not None
    with pytest.raises(BadRequestError) as wrong_type:
        async with coze.workflows.resume_stream(
            workflow_id=QA_WORKFLOW_ID,
            event_id=result.interrupt.interrupt_data.event_id,
            interrupt_type=5,
            resume_data="x",
        ):
            pass
    assert wrong_type.value.code == 4000
    with pytest.raises(NotFoundError) as unpublished:
        async with coze.workflows.stream(workflow_id="7599999999999999999"):
            pass
    assert unpublished.value.code == 4200


# --------------------------------------------------------------------------- errors


async def test_error_event_mid_stream_keeps_partial_output(coze: AsyncCoze) -> None:
    seen = []
    run = coze.workflows.stream(workflow_id=FAILING_WORKFLOW_ID)
    with pytest.raises(StreamErrorEvent) as info:
        async with run:
            async for event in run:
                seen.append(event)
    err = info.value
    assert err.code == 5000
    assert "ZeroDivisionError" in err.msg
    assert err.data == {"error_code": 5000, "error_message": err.msg}
    assert err.logid == run.logid and err.logid is not None
    partial = err.partial
    assert isinstance(partial, WorkflowSnapshot)
    assert partial.text == "正在计算，请稍候……"
    assert [n.node_title for n in partial.nodes] == ["Message"]
    assert seen and all(isinstance(e, WorkflowMessage) for e in seen)
    with pytest.raises(StreamErrorEvent):
        await run.final()  # the error is remembered
    assert run.closed


async def test_ping_heartbeats(coze: AsyncCoze) -> None:
    async with coze.workflows.stream(workflow_id=SLOW_WORKFLOW_ID) as run:
        events = [e async for e in run]
    pings = [e for e in events if isinstance(e, WorkflowPing)]
    assert len(pings) == 3
    assert pings[0].data == {"content": "{}"}
    assert [e.id for e in events] == list(range(len(events))), "PING events carry ids too"
    result = await run.final()
    assert run.snapshot.pings == 3
    assert result.parsed == {"output": "慢工出细活，终于好了。"}


async def test_id_gap_raises_with_the_partial_snapshot(coze: AsyncCoze, emu: Emulator) -> None:
    frames = [_msg(0, "一"), _msg(1, "二", title="B"), _msg(3, "四", title="D"), _done(4)]
    emu.add_scripted_workflow("gappy", frames)
    run = coze.workflows.stream(workflow_id="gappy")
    seen = []
    with pytest.raises(StreamGapError) as info:
        async with run:
            async for event in run:
                seen.append(event)
    assert info.value.expected == 2
    assert info.value.received == 3
    assert "1 event(s) were lost" in str(info.value)
    assert [e.content for e in seen] == ["一", "二"]
    assert info.value.partial.text == "一二"
    assert run.closed
    # Opting out of the check reads the same body to its end.
    async with coze.workflows.stream(workflow_id="gappy", check_ids=False) as lenient:
        result = await lenient.final()
    assert result.text == "一二四"


async def test_first_id_must_be_zero(coze: AsyncCoze, emu: Emulator) -> None:
    emu.add_scripted_workflow("late-start", [_msg(2, "x"), _done(3)])
    with pytest.raises(StreamGapError) as info:
        async with coze.workflows.stream(workflow_id="late-start") as run:
            await run.final()
    assert (info.value.expected, info.value.received) == (0, 2)


async def test_missing_id_lines_and_unknown_events(coze: AsyncCoze, emu: Emulator) -> None:
    frames = [
        _msg(0, "a"),
        sse_frame("Message", {"content": "b", "node_title": "M"}, spaced=True),  # no id line
        sse_frame("Progress", {"percent": 50}, spaced=True, id=1),
        b"id:2\nevent:Message\ndata:" + b'{"content":"c","node_title":"M","node_seq_id":1}\n\n',
        _done(3, {"debug_url": "https://www.coze.cn/work_flow?execute_id=42&space_id=1"}),
        _msg(4, "after done is ignored"),
    ]
    emu.add_scripted_workflow("odd", frames)
    async with coze.workflows.stream(workflow_id="odd") as run:
        events = [e async for e in run]
    assert [type(e) for e in events] == [
        WorkflowMessage,
        WorkflowMessage,
        UnknownEvent,
        WorkflowMessage,
        WorkflowDone,
    ]
    unknown = events[2]
    assert isinstance(unknown, UnknownEvent) and unknown.json() == {"percent": 50}
    result = await run.final()
    assert result.text == "abc"
    assert result.execute_id == "42"
    assert run.snapshot.unknown == [unknown]


async def test_eof_without_done_or_interrupt_is_incomplete(coze: AsyncCoze, emu: Emulator) -> None:
    emu.add_scripted_workflow("cut", [_msg(0, "半", finish=False)])
    with pytest.raises(IncompleteStreamError) as info:
        async with coze.workflows.stream(workflow_id="cut") as run:
            await run.final()
    assert info.value.partial.text == "半"


async def test_eof_right_after_interrupt_is_a_normal_end(coze: AsyncCoze, emu: Emulator) -> None:
    interrupt = {
        "interrupt_data": {
            "data": "",
            "event_id": "7404830425073352713/2769808280134765896",
            "type": 2,
        },
        "node_title": "问答",
    }
    emu.add_scripted_workflow(
        "recorded-qa",
        [_msg(0, "请问你想查看哪个城市、哪一天的天气呢", title="问答"),
         sse_frame("Interrupt", interrupt, spaced=True, id=1)],
    )  # fmt: skip
    async with coze.workflows.stream(workflow_id="recorded-qa") as run:
        result = await run.final()
    assert result.interrupt is not None
    assert result.interrupt.interrupt_data.event_id == "7404830425073352713/2769808280134765896"
    assert result.interrupt.interrupt_data.data == ""
    assert result.interrupt.interrupt_data.question == ""


async def test_dropped_connection_mid_stream(coze: AsyncCoze) -> None:
    run = coze.workflows.stream(
        workflow_id=STREAM_WORKFLOW_ID, extra_headers={FAULT_HEADER: "drop-after=2"}
    )
    with pytest.raises(StreamInterruptedError) as info:
        async with run:
            await run.final()
    assert info.value.partial.events == 2


async def test_injected_error_event_continues_the_ids(coze: AsyncCoze) -> None:
    seen = []
    run = coze.workflows.stream(
        workflow_id=STREAM_WORKFLOW_ID,
        extra_headers={FAULT_HEADER: "error-at=2;error-code=4013"},
    )
    with pytest.raises(StreamErrorEvent) as info:
        async with run:
            async for event in run:
                seen.append(event)
    assert len(seen) == 2
    assert info.value.code == 4013


async def test_break_releases_the_connection(coze: AsyncCoze, emu: Emulator) -> None:
    async with coze.workflows.stream(workflow_id=SLOW_WORKFLOW_ID) as run:
        async for event in run:
            assert isinstance(event, WorkflowPing)
            break
    assert run.closed
    await emu.wait_idle()
    assert emu.open_streams == 0


# --------------------------------------------------------------------------- framing


async def test_emulator_framing_is_byte_faithful(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.url}/v1/workflow/stream_run",
            json={"workflow_id": ECHO_WORKFLOW_ID, "parameters": {"input": "<&>"}},
            headers=headers,
        ) as resp,
    ):
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert len(resp.headers["x-tt-logid"]) == 34
        body = await resp.read()
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    end, done = frames[0], frames[1]
    assert end.startswith(b"id: 0\nevent: Message\ndata: {")
    # The recorded End node message: keys in Coze's order, &<> escaped as Go encodes JSON.
    assert end.endswith(
        b'data: {"content":"{\\"output\\":\\"\\u003c\\u0026\\u003e\\"}","cost":"0.00",'
        b'"node_is_finish":true,"node_seq_id":"0","node_title":"","token":0}'
    )
    assert done == b"id: 1\nevent: Done\ndata: {}", "Done as recorded"
    assert len(frames) == 3, "Done is the last event"


async def test_async_run_response_shape(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.url}/v1/workflow/run",
            json={"workflow_id": ECHO_WORKFLOW_ID, "is_async": True},
            headers=headers,
        ) as resp,
    ):
        body = await resp.json()
    # As documented: no "code" key at all, execute_id and debug_url at the top level.
    assert "code" not in body
    assert body["msg"] == ""
    assert body["execute_id"] in body["debug_url"]


# --------------------------------------------------------------------------- accumulation


@given(
    chunks=st.lists(
        st.tuples(st.sampled_from(["A", "B", "问答"]), st.text(max_size=6)), max_size=30
    ),
    done=st.booleans(),
)
def test_accumulation_keeps_every_nodes_content(chunks: list[tuple[str, str]], done: bool) -> None:
    snap = WorkflowSnapshot()
    for n, (title, text) in enumerate(chunks):
        snap = accumulate_workflow(snap, WorkflowMessage(content=text, node_title=title, id=n))
    if done:
        snap = accumulate_workflow(snap, WorkflowDone({}, len(chunks)))
    expected: dict[str, str] = {}
    for title, text in chunks:
        expected[title] = expected.get(title, "") + text
    assert [(n.node_title, n.content) for n in snap.nodes] == list(expected.items())
    assert snap.text == "".join(expected.values())
    assert snap.events == len(chunks) + done
    if done and chunks:
        assert snap.output == expected[chunks[-1][0]], "the last node to emit is the End node"
    else:
        assert snap.output is None
    assert snap.result().nodes == tuple(snap.nodes)
