"""The official cozepy SDK, pointed at the emulator, runs workflows and chatflows against it.

An independent check that the emulator's workflow wire format is what Coze's own SDK expects
(cozepy validates Message/Interrupt payloads strictly and parses ``id:``/``event:``/``data:``
lines itself).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from coze_async.emulator import (
    CHATFLOW_ID,
    ECHO_WORKFLOW_ID,
    QA_WORKFLOW_ID,
    SLOW_WORKFLOW_ID,
    STREAM_WORKFLOW_ID,
    Emulator,
)

pytestmark = pytest.mark.anyio


def _cozepy() -> Any:
    # cozepy imports authlib.jose, which forces its own deprecation warning to "always";
    # recording is the only way to keep that noise (not ours) out of the report.
    with warnings.catch_warnings(record=True):
        return pytest.importorskip("cozepy")


async def test_cozepy_runs_workflow_stream_sync_run_and_chatflow() -> None:
    cozepy = _cozepy()
    async with Emulator() as emu, cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            # A multi-node workflow stream.
            kinds = []
            text = ""
            async for event in coze.workflows.runs.stream(
                workflow_id=STREAM_WORKFLOW_ID, parameters={"topic": "电影"}
            ):
                kinds.append(event.event)
                if event.event == cozepy.WorkflowEventType.MESSAGE:
                    text += event.message.content
            assert set(kinds) == {cozepy.WorkflowEventType.MESSAGE}, "cozepy swallows Done"
            assert "怕坐不下！" in text

            # A sync run.
            result = await coze.workflows.runs.create(
                workflow_id=ECHO_WORKFLOW_ID, parameters={"input": "你好"}
            )
            assert result.data == '{"output":"你好"}'
            assert "execute_id=" in result.debug_url
            assert result.usage is not None and result.usage.token_count > 0

            # A chatflow stream.
            answer = ""
            completed = None
            async for event in coze.workflows.chat.stream(
                workflow_id=CHATFLOW_ID,
                app_id="7300000000000000001",
                additional_messages=[cozepy.Message.build_user_question_text("早上好")],
            ):
                if event.event == cozepy.ChatEventType.CONVERSATION_MESSAGE_DELTA:
                    answer += event.message.content
                if event.event == cozepy.ChatEventType.CONVERSATION_CHAT_COMPLETED:
                    completed = event.chat
            assert answer == "你说：早上好"
            assert completed is not None
            assert completed.status == cozepy.ChatStatus.COMPLETED

            # Interrupt, then resume (cozepy's resume is the streaming one).
            interrupt = None
            async for event in coze.workflows.runs.stream(workflow_id=QA_WORKFLOW_ID):
                if event.event == cozepy.WorkflowEventType.INTERRUPT:
                    interrupt = event.interrupt
            assert interrupt is not None
            assert interrupt.node_title == "问答"
            resumed = ""
            async for event in coze.workflows.runs.resume(
                workflow_id=QA_WORKFLOW_ID,
                event_id=interrupt.interrupt_data.event_id,
                resume_data="广州",
                interrupt_type=interrupt.interrupt_data.type,
            ):
                if event.event == cozepy.WorkflowEventType.MESSAGE:
                    resumed += event.message.content
            assert "广州" in resumed

            # PING heartbeats come through as cozepy's UNKNOWN events (with their id).
            pings = 0
            async for event in coze.workflows.runs.stream(workflow_id=SLOW_WORKFLOW_ID):
                if event.event == cozepy.WorkflowEventType.UNKNOWN:
                    pings += 1
            assert pings == 3

            # Async run, its history (cozepy validates it strictly) and an output node.
            started = await coze.workflows.runs.create(
                workflow_id=STREAM_WORKFLOW_ID, is_async=True
            )
            assert started.execute_id
            await emu.wait_background()
            history = await coze.workflows.runs.run_histories.retrieve(
                workflow_id=STREAM_WORKFLOW_ID, execute_id=started.execute_id
            )
            assert history.execute_status == "Success"
            assert history.error_code == 0
            assert history.run_mode == 2
            node = history.node_execute_status["Message"]
            output = await coze.workflows.runs.run_histories.execute_nodes.retrieve(
                workflow_id=STREAM_WORKFLOW_ID,
                execute_id=started.execute_id,
                node_execute_uuid=node.node_execute_uuid,
            )
            assert output.is_finish
            assert "坐不下" in (output.node_output or "")
        # cozepy warns on enum values it does not know; the emulator must send none.
        assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []
