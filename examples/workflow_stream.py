"""Stream a workflow that asks a question, answer it, and print the result.

Runs as is, with no token: it starts the local Coze emulator in-process and uses its Q&A
workflow (a 问答 node asks for a city, the run stops with an ``Interrupt``; resuming with the
answer finishes it)::

    python examples/workflow_stream.py            # answers "杭州"
    python examples/workflow_stream.py 成都       # answers "成都"

Against the real Coze: replace the emulator with
``AsyncCoze(token="pat_...")`` (or ``COZE_API_TOKEN``) and use your published workflow's id.
"""

from __future__ import annotations

import sys

import anyio

from coze_async import (
    AsyncCoze,
    WorkflowDone,
    WorkflowInterrupt,
    WorkflowMessage,
    WorkflowPing,
    WorkflowResult,
)
from coze_async.emulator import QA_WORKFLOW_ID, Emulator, QuestionWorkflow


async def run_once(coze: AsyncCoze, workflow_id: str, answer: str) -> WorkflowResult:
    """Stream the workflow; each time it asks, answer and resume; return the final result."""
    stream = coze.workflows.stream(workflow_id=workflow_id, parameters={})
    while True:
        async with stream:
            async for event in stream:
                match event:
                    case WorkflowMessage(node_title=title, node_seq_id=seq, node_is_finish=end):
                        if seq == "0":  # a node's first chunk
                            print(f"[{title or 'End'}] ", end="")
                        print(event.content, end="\n" if end else "", flush=True)
                    case WorkflowInterrupt(interrupt_data=data):
                        print(f"  -> the workflow asks: {data.question}")
                    case WorkflowPing():
                        print("  (still working...)")
                    case WorkflowDone(debug_url=url):
                        print(f"  done; debug page: {url}")
            result = await stream.final()
        if result.interrupt is None:
            return result
        data = result.interrupt.interrupt_data
        print(f"  <- answering: {answer}")
        stream = coze.workflows.resume_stream(
            workflow_id=workflow_id,
            event_id=data.event_id,
            interrupt_type=data.type,
            resume_data=answer,
        )


async def main() -> None:
    answer = sys.argv[1] if len(sys.argv) > 1 else "杭州"
    async with Emulator() as emu, AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        # Coze's recorded streams end with Done {} and no usage; ask the emulator for the
        # documented forms (Done's debug_url, the End node's usage) so there is more to print.
        workflow = QuestionWorkflow().configured(done_debug_url=True, node_details=True)
        emu.add_workflow(QA_WORKFLOW_ID, workflow)
        result = await run_once(coze, QA_WORKFLOW_ID, answer)
        print("output:", result.parsed["output"] if result.parsed else result.output)
        print("usage:", result.usage)
        print("execute_id:", result.execute_id)


if __name__ == "__main__":
    anyio.run(main)
