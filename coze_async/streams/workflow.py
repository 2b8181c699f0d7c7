"""The workflow stream: ``coze.workflows.stream(...)`` and ``coze.workflows.resume_stream(...)``.

The same stream object as chat (design.md §3: lazy open, ``async with`` / ``async for``,
``snapshot``, ``final()``, leak-free ``aclose()``), over Coze's workflow framing: every event
has an ``id:`` line, ``id`` counts 0, 1, 2... across the stream and restarts at 0 on every
stream, resumes included.

Terminal rules, in addition to the shared ones:

* ``Done`` -> normal end; the :class:`WorkflowDone` event (with ``debug_url``) is yielded last
  and nothing after it is read;
* ``Interrupt`` -> the run waits for an answer. Coze's docs show the body ending right after
  it and do not say whether ``Done`` follows, so both are accepted: EOF right after an
  ``Interrupt`` is a normal end, and a ``Done`` after it is yielded as usual;
* ``Error`` -> :class:`~coze_async.errors.StreamErrorEvent` (``code`` from ``error_code``,
  ``msg`` from ``error_message``) carrying the partial snapshot;
* an id that is not the previous id + 1 (the first must be 0) ->
  :class:`~coze_async.errors.StreamGapError` with ``expected`` / ``received``: events were
  lost, so the snapshot can no longer be trusted to be complete. An event whose id repeats
  the previous one (a server that omits ``id:`` lines: SSE keeps the last id) and events
  with a non-numeric id are not checked. ``check_ids=False`` turns the check off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import StreamGapError
from ..models.workflow import (
    WorkflowDone,
    WorkflowEvent,
    WorkflowMessage,
    WorkflowResult,
    WorkflowSnapshot,
    accumulate_workflow,
    workflow_event_from_sse,
)
from ..sse import ServerSentEvent
from .base import EventStream

if TYPE_CHECKING:
    from ..call import Call
    from ..transport import Transport

__all__ = ["WorkflowStream"]


def _event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    return int(text) if text.isdigit() else None


class WorkflowStream(EventStream[WorkflowEvent, WorkflowSnapshot]):
    """A streaming workflow run or resume (``/v1/workflow/stream_run``, ``stream_resume``).

    Use it as ``async with coze.workflows.stream(...) as run: async for event in run``.
    Views over the same cursor: typed events (:class:`~coze_async.models.workflow.
    WorkflowMessage`, ``WorkflowInterrupt``, ``WorkflowDone``, ``WorkflowPing``,
    ``UnknownEvent``), :meth:`text` for message content, :attr:`snapshot`, and :meth:`final`
    for the :class:`~coze_async.models.workflow.WorkflowResult` (end output, every node's
    content, usage, ``debug_url``, or the interrupt to resume).
    """

    def __init__(self, transport: Transport, call: Call, *, check_ids: bool = True) -> None:
        super().__init__(transport, call, WorkflowSnapshot())
        self._check_ids = check_ids
        self._last_id: int | None = None

    async def __aenter__(self) -> WorkflowStream:
        await super().__aenter__()
        return self

    def __aiter__(self) -> WorkflowStream:
        return self

    def _check_id(self, raw: str | None) -> int | None:
        event_id = _event_id(raw)
        if event_id is None or not self._check_ids:
            return event_id
        last = self._last_id
        if last is not None and event_id == last:
            return event_id  # no id: line on this event (SSE keeps the last id): unchecked
        expected = 0 if last is None else last + 1
        if event_id != expected:
            lost = (
                f"{event_id - expected} event(s) were lost"
                if event_id > expected
                else "ids went backwards"
            )
            raise StreamGapError(
                f"workflow stream event ids jumped from "
                f"{'the start' if last is None else last} to {event_id} (expected {expected}): "
                f"{lost} after {self._snapshot.events} events",
                partial=self._snapshot,
                expected=expected,
                received=event_id,
                logid=self._logid,
            )
        self._last_id = event_id
        return event_id

    def _parse(self, sse: ServerSentEvent) -> WorkflowEvent:
        event_id = self._check_id(sse.id)
        if sse.event == "Error":
            raise self._error_event(sse)
        event = workflow_event_from_sse(sse.event, sse.data, event_id)
        if type(event) is WorkflowDone:
            self._finished = True
            self._queue.clear()  # nothing after Done belongs to this run
        return event

    def _accumulate(self, snapshot: WorkflowSnapshot, event: WorkflowEvent) -> WorkflowSnapshot:
        return accumulate_workflow(snapshot, event)

    def _eof_is_end(self) -> bool:
        # See the module docstring: the body may end right after an Interrupt.
        return self._snapshot.interrupt is not None

    def _count(self) -> int:
        return self._snapshot.events

    async def text(self) -> AsyncIterator[str]:
        """Yield the ``content`` of every ``Message`` event as it arrives."""
        async for event in self:
            if type(event) is WorkflowMessage:
                yield event.content

    async def final(self) -> WorkflowResult:
        """Drain the stream and return the :class:`WorkflowResult`.

        Re-raises the stream's error when it ended badly (``Error`` event, lost events,
        broken connection). An interrupted run is not an error: check ``result.interrupt``.
        """
        snapshot = await self.until_done()
        return snapshot.result(logid=self._logid)
