"""Workflow and chatflow routes, and the scriptable workflows behind them (coze-api.md §4).

Routes: ``POST /v1/workflow/run`` (sync and ``is_async``), ``POST /v1/workflow/stream_run``,
``POST /v1/workflow/stream_resume``, ``POST /v1/workflows/resume``,
``GET /v1/workflows/{id}/run_histories/{execute_id}`` (and ``.../execute_nodes/{uuid}``) and
``POST /v1/workflows/chat``; ``GET /v1/workflows/{id}`` (the workflow's metadata, with its input
and output parameters when ``include_input_output=true``) and ``GET /v1/workflows`` (the
registered workflows, paged with ``page_num``/``page_size`` 1-30, filtered by
``workflow_mode``, ``app_id`` and ``publish_status``).

Workflows are registered by id (:meth:`Emulator.add_workflow`); the built-in ones:

=========================  ==============================================================
id                         behaviour
=========================  ==============================================================
:data:`ECHO_WORKFLOW_ID`   End node outputs ``{"output": parameters["input"]}`` (the whole
                           ``parameters`` object when there is no ``input``)
:data:`STREAM_WORKFLOW_ID` two streaming message (output) nodes, then the End node
:data:`QA_WORKFLOW_ID`     a Q&A node asks for a city and interrupts; a non-blank answer
                           finishes the run, a blank one asks again. At most
                           :data:`MAX_RESUMES` resumes: a run that would need a 4th fails
                           with an ``Error`` event, and resuming it then answers 4315
:data:`FAILING_WORKFLOW_ID` one message node streams, then a node fails: ``Error`` event
                           (sync run: error envelope with ``debug_url``; history ``Fail``)
:data:`SLOW_WORKFLOW_ID`   emits ``PING`` heartbeats (:attr:`SlowWorkflow.interval` apart)
                           before its output
:data:`CHATFLOW_ID`        a chatflow answering "你说：<query>" (chat event family)
=========================  ==============================================================

Wire behaviour: stream events are ``id: N\\nevent: X\\ndata: {...}\\n\\n`` with ids 0, 1, 2...
per stream (restarting on every resume), keys in the recorded order and ``&<>`` escaped as Go
encodes them. As recorded, an output node's ``Message`` is ``content, node_is_finish,
node_seq_id, node_title``; the Q&A node's adds ``content_type``; the End node's adds the legacy
``cost`` ("0.00") and ``token`` (0); ``Done`` is ``{}``. Two per-workflow options give the
documented alternatives: ``done_debug_url`` (``Done`` ``{"debug_url": ...}``, as coze-go's
tests and coze-py #325 show it) and ``node_details`` (every ``Message`` also carries
``content_type``, ``node_execute_uuid`` and ``node_id``, and the End node its ``usage``).
The docs end an interrupted stream right after ``Interrupt``; so does the emulator unless a
workflow sets ``done_after_interrupt``.

Every run (sync, stream, async) gets a run history, its fields in the documented order, its
``output`` the JSON text ``{"Output": <End node>, "<output node title>": <its text>}`` where the
End node's entry is itself JSON text in the doc example's form
``{"content_type":1,"data":<End node output>,"original_result":null,"type_for_model":2}``.
Async runs report ``Running`` and finish ``emu.workflow_duration`` seconds later in the
background (``await emu.wait_background()`` waits for them). A run stopped at a Q&A node
stays ``Running`` with ``interrupt_data`` in its history.

Errors: 4000 bad/missing parameter, ``bot_id`` with ``app_id``, wrong ``interrupt_type``, a
chatflow run as a workflow or the reverse; 4200 unknown (unpublished) workflow id, or a
chatflow's ``bot_id`` that names no bot (unless ``accept_any_bot``); 4314
unknown execute id / event id / node uuid; 4315 resume of a finished run or of an interrupt
already answered; 6003 ``is_async`` when ``emu.user_level == "free"``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from aiohttp import web

from .bots import VERBOSE_FINISH, Turn, chunk_text
from .host import Host, Route
from .request import (
    int_param,
    json_object,
    opt_bool,
    opt_str,
    opt_str_map,
    parse_messages,
    required_str,
)
from .state import (
    ChatRecord,
    Conversation,
    EmulatorState,
    MessageRecord,
    Outcome,
    Usage,
    input_records,
    new_id,
    now,
)
from .wire import LOGID_HEADER, ApiError, dumps, error_message, sse_frame

__all__ = [
    "CHATFLOW_ID",
    "ECHO_WORKFLOW_ID",
    "FAILING_WORKFLOW_ID",
    "MAX_RESUMES",
    "QA_WORKFLOW_ID",
    "SLOW_WORKFLOW_ID",
    "STREAM_WORKFLOW_ID",
    "USER_LEVELS",
    "Chatflow",
    "EchoWorkflow",
    "FailingWorkflow",
    "QuestionWorkflow",
    "Script",
    "ScriptedWorkflow",
    "SlowWorkflow",
    "StreamingWorkflow",
    "Workflow",
    "WorkflowAPI",
    "WorkflowRegistry",
    "WorkflowRun",
    "parameter",
]

ECHO_WORKFLOW_ID: Final = "7500000000000000001"
STREAM_WORKFLOW_ID: Final = "7500000000000000002"
QA_WORKFLOW_ID: Final = "7500000000000000003"
FAILING_WORKFLOW_ID: Final = "7500000000000000004"
SLOW_WORKFLOW_ID: Final = "7500000000000000005"
CHATFLOW_ID: Final = "7500000000000000006"

#: A run may be resumed at most this many times (coze-api.md §4.3).
MAX_RESUMES: Final = 3
#: Coze's plan names (``user_level`` in its benefits API); only "free" refuses async runs.
USER_LEVELS: Final = ("free", "pro_personal", "team", "enterprise")

_SPACE_ID: Final = "7500000000000000999"
#: The creator the metadata routes report for every workflow.
_CREATOR: Final = {"id": "7400000000000009999", "name": "emulator"}
_WORKFLOW_MODES: Final = ("workflow", "chatflow")
#: Every built-in workflow is published; registered ones too (Coze lists published ones by
#: default; ``all`` and ``published_online`` include them, the draft filters do not).
_LISTED_STATUSES: Final = ("all", "published_online")
_PUBLISH_STATUSES: Final = ("all", "published_online", "published_draft", "unpublished_draft")
#: ``connector_uid`` of runs without ``ext.user_id`` (Coze reports the token owner's id).
_OWNER_ID: Final = "7400000000000009999"
_END_NODE_ID: Final = "900001"
_node_ids: Final = itertools.count(110001)
_ASYNC_PREMIUM_MSG: Final = (
    "Workflow execution with is_async=true is a premium feature available only to Coze "
    "Professional users"
)
_RESUME_LIMIT: Final = (
    5000,
    f"The workflow has been resumed {MAX_RESUMES} times, the maximum; the run has failed.",
)


def _go_json(obj: Any) -> bytes:
    """Compact JSON with ``&``, ``<``, ``>`` escaped, as Coze's Go code writes.

    Keys are written in the order the payload was built, which is Coze's recorded order
    (workflow events happen to be alphabetical, chat events follow the struct). The recorded
    chatflow ``done`` carries ``\\u0026`` in its debug URL; the escapes can only occur inside
    strings, so replacing the bytes keeps the JSON valid.
    """
    raw = dumps(obj)
    return raw.replace(b"&", b"\\u0026").replace(b"<", b"\\u003c").replace(b">", b"\\u003e")


def _usage(input_text: str, output_text: str) -> dict[str, int]:
    input_count = 50 + len(input_text)
    output_count = max(1, len(output_text))
    return {
        "input_count": input_count,
        "output_count": output_count,
        "token_count": input_count + output_count,
    }


def debug_url(workflow_id: str, execute_id: str) -> str:
    """The console URL Coze gives for a run (valid 7 days there; here, just the shape)."""
    return (
        f"https://www.coze.cn/work_flow?execute_id={execute_id}&space_id={_SPACE_ID}"
        f"&workflow_id={workflow_id}"
    )


# ----------------------------------------------------------------------------- run state


@dataclass(slots=True)
class NodeRun:
    """One node's execution within a run (``node_execute_status`` / execute_nodes)."""

    title: str
    node_id: str
    uuid: str = field(default_factory=new_id)
    output: str = ""
    is_finish: bool = False
    #: Output nodes answer ``execute_nodes/{uuid}``; the End node does not.
    output_node: bool = True
    update_time: int = field(default_factory=now)


@dataclass(slots=True)
class WorkflowRun:
    """One execution of a workflow and everything its history reports."""

    execute_id: str
    workflow_id: str
    run_mode: int
    logid: str
    params: dict[str, Any]
    bot_id: str = "0"
    connector_id: str = "1024"
    connector_uid: str = _OWNER_ID
    status: str = "Running"
    create_time: int = field(default_factory=now)
    update_time: int = field(default_factory=now)
    end_output: str = ""
    error_code: str = ""
    error_message: str = ""
    usage: dict[str, int] = field(default_factory=lambda: _usage("", ""))
    #: Nodes by title (the End node, streamed with an empty title, as "End").
    nodes: dict[str, NodeRun] = field(default_factory=dict)
    #: The pending interrupt (``event_id``, ``type``, ``data``, ...) while waiting for a resume.
    interrupt: dict[str, Any] | None = None
    resumes: int = 0

    @property
    def debug_url(self) -> str:
        """This run's debug URL."""
        return debug_url(self.workflow_id, self.execute_id)

    @property
    def finished(self) -> bool:
        """True once the run succeeded or failed (it can no longer be resumed)."""
        return self.status in ("Success", "Fail")

    def history(self) -> dict[str, Any]:
        """The run-history object (``GET .../run_histories/{execute_id}``).

        Fields in the order of the documented WorkflowExecuteHistory (coze-api.md §4.5);
        ``output`` as in the doc example (see the module docstring).
        """
        output: dict[str, Any] = {}
        if self.status == "Success":
            output["Output"] = dumps(
                {
                    "content_type": 1,
                    "data": self.end_output,
                    "original_result": None,
                    "type_for_model": 2,
                }
            ).decode()
        for node in self.nodes.values():
            if node.output_node:
                output[node.title] = node.output
        out: dict[str, Any] = {
            "execute_id": self.execute_id,
            "execute_status": self.status,
            "bot_id": self.bot_id,
            "connector_id": self.connector_id,
            "connector_uid": self.connector_uid,
            "run_mode": self.run_mode,
            "logid": self.logid,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "output": dumps(output).decode() if output else "",
            "error_code": self.error_code,
            "error_message": self.error_message,
            "debug_url": self.debug_url,
            "usage": self.usage,
            "is_output_trimmed": False,
            "node_execute_status": {
                key: {
                    "node_id": node.node_id,
                    "is_finish": node.is_finish,
                    "update_time": node.update_time,
                    "node_execute_uuid": node.uuid,
                }
                for key, node in self.nodes.items()
            },
        }
        if self.interrupt is not None:
            out["interrupt_data"] = _interrupt_json(self.interrupt)
        out["token"] = str(self.usage["token_count"])  # undocumented, in the doc example
        return out


def _interrupt_json(interrupt: dict[str, Any]) -> dict[str, Any]:
    out = {"data": interrupt["data"], "event_id": interrupt["event_id"], "type": interrupt["type"]}
    if interrupt.get("required_parameters") is not None:
        out["required_parameters"] = interrupt["required_parameters"]
    return out


class WorkflowRegistry:
    """Registered workflows, and the runs, interrupts and output nodes they produced."""

    def __init__(self) -> None:
        self.workflows: dict[str, Workflow] = {
            ECHO_WORKFLOW_ID: EchoWorkflow(),
            STREAM_WORKFLOW_ID: StreamingWorkflow(),
            QA_WORKFLOW_ID: QuestionWorkflow(),
            FAILING_WORKFLOW_ID: FailingWorkflow(),
            SLOW_WORKFLOW_ID: SlowWorkflow(),
            CHATFLOW_ID: Chatflow(),
        }
        #: execute_id -> run
        self.runs: dict[str, WorkflowRun] = {}
        #: interrupt event_id -> execute_id (answered ones stay, for 4315)
        self.events: dict[str, str] = {}
        #: node_execute_uuid -> (execute_id, node)
        self.node_runs: dict[str, tuple[str, NodeRun]] = {}
        #: workflow_id -> (created_at, updated_at), as the metadata routes report them.
        self.times: dict[str, tuple[int, int]] = dict.fromkeys(self.workflows, (now(), now()))

    def add(self, workflow_id: str, workflow: Workflow) -> None:
        """Register ``workflow`` under ``workflow_id`` (replacing any previous one)."""
        created = self.times.get(workflow_id, (now(), 0))[0]
        self.workflows[workflow_id] = workflow
        self.times[workflow_id] = (created, now())

    def detail(self, workflow_id: str) -> dict[str, Any]:
        """The ``workflow_detail`` object of ``GET /v1/workflows/{id}`` (times as strings)."""
        workflow = self.get(workflow_id)
        created, updated = self.times.get(workflow_id, (0, 0))
        return {
            "workflow_id": workflow_id,
            "workflow_name": workflow.name or f"workflow_{workflow_id}",
            "description": workflow.description,
            "icon_url": workflow.icon_url,
            "app_id": workflow.app_id or "0",
            "created_at": str(created),
            "updated_at": str(updated),
            "creator": dict(_CREATOR),
        }

    def get(self, workflow_id: str) -> Workflow:
        """The workflow, or 4200 (Coze's answer for an id that was never published)."""
        workflow = self.workflows.get(workflow_id)
        if workflow is None:
            raise ApiError(
                4200,
                f"Workflow {workflow_id} not found: it does not exist or has not been published.",
            )
        return workflow

    def new_run(self, workflow_id: str, run_mode: int, logid: str, **fields: Any) -> WorkflowRun:
        """Create and register a run."""
        run = WorkflowRun(
            execute_id=new_id(), workflow_id=workflow_id, run_mode=run_mode, logid=logid, **fields
        )
        self.runs[run.execute_id] = run
        return run


# ----------------------------------------------------------------------------- scripts


@dataclass(slots=True)
class _Chunk:
    node: NodeRun
    content: str
    seq: int
    finish: bool
    usage: dict[str, int] | None = None
    end: bool = False
    #: A Q&A node's question: the one Message that carries ``content_type`` as recorded.
    question: bool = False


@dataclass(slots=True)
class _Ping:
    pass


@dataclass(slots=True)
class _Ask:
    node_title: str
    type: int
    data: str
    required_parameters: dict[str, Any] | None


@dataclass(slots=True)
class _Fail:
    code: int
    message: str


_Step = _Chunk | _Ping | _Ask | _Fail


class Script:
    """What one segment of a run does (the start, or the part after a resume).

    A :class:`Workflow` fills it with :meth:`message`, :meth:`ping`, :meth:`end`,
    :meth:`ask` and :meth:`fail`; the emulator then streams it, or applies it at once for a
    sync run. ``params`` are the run's parameters; ``answer`` the resume data (``None`` at
    the start); ``resumes`` how many times the run was resumed so far.
    """

    def __init__(self, run: WorkflowRun, *, answer: str | None = None) -> None:
        self.run = run
        self.params = run.params
        self.answer = answer
        self.resumes = run.resumes
        self.steps: list[_Step] = []
        self._input = dumps(run.params).decode()

    @property
    def pings(self) -> int:
        """How many heartbeats the segment sends."""
        return sum(1 for step in self.steps if isinstance(step, _Ping))

    def message(
        self,
        node_title: str,
        pieces: Sequence[str],
        *,
        node_id: str | None = None,
        output_node: bool = True,
    ) -> None:
        """A node streaming ``pieces`` (node_seq_id 0, 1, ...; the last one finishes it)."""
        node = NodeRun(node_title, node_id or str(next(_node_ids)), output_node=output_node)
        pieces = list(pieces) or [""]
        for seq, piece in enumerate(pieces):
            self.steps.append(_Chunk(node, piece, seq, seq == len(pieces) - 1))

    def ping(self, count: int = 1) -> None:
        """``count`` PING heartbeats."""
        self.steps.extend(_Ping() for _ in range(count))

    def end(self, output: Any) -> None:
        """The End node: one chunk whose content is ``output`` (JSON-encoded unless a str)."""
        text = output if isinstance(output, str) else dumps(output).decode()
        node = NodeRun("", _END_NODE_ID, output_node=False)
        self.steps.append(_Chunk(node, text, 0, True, _usage(self._input, text), end=True))

    def ask(
        self,
        question: str,
        *,
        node_title: str = "问答",
        type: int = 2,
        required_parameters: dict[str, Any] | None = None,
    ) -> None:
        """A Q&A node: stream the question, then interrupt (the segment ends here)."""
        self.message(node_title, [question])
        last = self.steps[-1]
        assert isinstance(last, _Chunk)
        last.question = True
        data = dumps({"content_type": "text", "content": question}).decode()
        self.steps.append(_Ask(node_title, type, data, required_parameters))

    def fail(self, code: int, message: str) -> None:
        """A node fails: an ``Error`` event; the run ends with ``Fail``."""
        self.steps.append(_Fail(code, message))

    def enforce_resume_limit(self) -> None:
        """A segment that would interrupt a run already resumed MAX_RESUMES times fails."""
        if self.steps and isinstance(self.steps[-1], _Ask) and self.resumes >= MAX_RESUMES:
            self.steps[-1] = _Fail(*_RESUME_LIMIT)


class WorkflowTurn(Turn):
    """A run segment as SSE frames (``id: N`` / ``event: X`` / ``data: {...}``).

    A :class:`~coze_async.emulator.bots.Turn` so that :meth:`Emulator.stream_turn` writes it
    with the same per-request faults as chat streams. Frames are built lazily and each step
    is applied to the run as its frame is produced; :meth:`settle` applies what is left (the
    run goes on at Coze when a client leaves), :meth:`fail` ends the run with an injected
    error.
    """

    __slots__ = (
        "_closed",
        "_gen",
        "_next_id",
        "done_after_interrupt",
        "done_debug_url",
        "node_details",
        "registry",
        "run",
    )

    def __init__(
        self,
        registry: WorkflowRegistry,
        run: WorkflowRun,
        steps: Sequence[_Step] | None,
        *,
        raw: Sequence[bytes] | None = None,
        done_after_interrupt: bool = False,
        done_debug_url: bool = False,
        node_details: bool = False,
    ) -> None:
        # Turn.__init__ is for chats; every method that uses its slots is overridden here.
        self.registry = registry
        self.run = run
        self.done_after_interrupt = done_after_interrupt
        self.done_debug_url = done_debug_url
        self.node_details = node_details
        self._next_id = 0
        self._closed = False
        self._gen: Generator[bytes, None, None] = (
            self._raw(raw) if raw is not None else self._step_frames(list(steps or ()))
        )

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def _frame(self, event: str, data: Any) -> bytes:
        frame = sse_frame(event, _go_json(data).decode(), spaced=True, id=self._next_id)
        self._next_id += 1
        return frame

    def _step_frames(self, steps: list[_Step]) -> Generator[bytes, None, None]:
        run = self.run
        for step in steps:
            run.update_time = now()
            if isinstance(step, _Chunk):
                yield self._chunk(step)
            elif isinstance(step, _Ping):
                yield self._frame("PING", {"content": "{}"})
            elif isinstance(step, _Ask):
                event_id = f"{run.execute_id}/{new_id()}"
                run.interrupt = {
                    "event_id": event_id,
                    "type": step.type,
                    "data": step.data,
                    "required_parameters": step.required_parameters,
                    "node_title": step.node_title,
                }
                self.registry.events[event_id] = run.execute_id
                payload = {
                    "interrupt_data": _interrupt_json(run.interrupt),
                    "node_title": step.node_title,
                }
                self._closed = True
                yield self._frame("Interrupt", payload)
                if self.done_after_interrupt:
                    yield self._done()
                return
            else:
                self._end_failed(step.code, step.message)
                yield self._frame("Error", {"error_code": step.code, "error_message": step.message})
                return
        self._end_success()
        yield self._done()

    def _done(self) -> bytes:
        # Recorded and in the doc examples: {}; with done_debug_url as coze-go's tests show.
        return self._frame("Done", {"debug_url": self.run.debug_url} if self.done_debug_url else {})

    def _raw(self, frames: Sequence[bytes]) -> Generator[bytes, None, None]:
        yield from frames
        self._end_success()

    def _chunk(self, step: _Chunk) -> bytes:
        node = step.node
        run = self.run
        if node.uuid not in self.registry.node_runs:
            run.nodes[node.title or "End"] = node
            self.registry.node_runs[node.uuid] = (run.execute_id, node)
        node.output += step.content
        node.is_finish = step.finish
        node.update_time = now()
        details = self.node_details
        # The recorded key order (alphabetical: Coze writes these events from Go maps).
        payload: dict[str, Any] = {"content": step.content}
        if step.question or details:
            payload["content_type"] = "text"
        if step.end:
            payload["cost"] = "0.00"  # legacy, recorded on the End node's message
        if details:
            payload["node_execute_uuid"] = node.uuid
            payload["node_id"] = node.node_id
        payload["node_is_finish"] = step.finish
        payload["node_seq_id"] = str(step.seq)
        payload["node_title"] = node.title
        if step.end:
            run.end_output = node.output
            assert step.usage is not None
            run.usage = step.usage
            payload["token"] = 0  # legacy, recorded as 0
            if details:
                payload["usage"] = step.usage
        return self._frame("Message", payload)

    def _end_success(self) -> None:
        if not self._closed:
            self._closed = True
            self.run.status = "Success"
            self.run.update_time = now()

    def _end_failed(self, code: int, message: str) -> None:
        self._closed = True
        self.run.status = "Fail"
        self.run.error_code = str(code)
        self.run.error_message = message
        self.run.interrupt = None
        self.run.update_time = now()

    @property
    def outcome_kind(self) -> str:
        """``"success"``, ``"interrupt"`` or ``"fail"`` once the segment has been applied."""
        if self.run.status == "Fail":
            return "fail"
        return "interrupt" if self.run.interrupt is not None else "success"

    def commit(self) -> None:
        """Apply every remaining step (without writing anything)."""
        for _ in self._gen:
            pass

    def settle(self) -> None:
        """Finish the segment in the background (same as :meth:`commit`)."""
        self.commit()

    def fail(self, code: int, msg: str) -> None:
        """An injected ``error-at`` fault: the run fails with ``(code, msg)``."""
        if not self._closed:
            self._end_failed(code, msg)
            self._gen.close()

    def error_frame(self, code: int, msg: str) -> bytes:
        """The workflow ``Error`` event, with the next id."""
        return self._frame("Error", {"error_code": code, "error_message": msg})


# ----------------------------------------------------------------------------- workflows


class Workflow(ABC):
    """A scriptable workflow. Subclass it and register it with ``Emulator.add_workflow``.

    :meth:`start` fills the :class:`Script` of a new run; :meth:`resume` the segment after
    an interrupt was answered. ``pace`` is the pause between stream events (seconds; the
    ``latency`` fault overrides it); ``done_after_interrupt`` sends ``Done`` right after an
    ``Interrupt``; ``done_debug_url`` and ``node_details`` choose the documented forms over the
    recorded ones (see the module docstring). Set them on an instance, or with
    :meth:`configured`.
    """

    chatflow: ClassVar[bool] = False
    pace: float = 0.0
    done_after_interrupt: bool = False
    #: End the stream with ``Done`` ``{"debug_url": ...}`` instead of the recorded ``{}``.
    done_debug_url: bool = False
    #: Put the documented optional fields on every ``Message`` (``content_type``,
    #: ``node_execute_uuid``, ``node_id``; the End node's ``usage``), not only the recorded ones.
    node_details: bool = False
    #: What ``GET /v1/workflows/{id}`` and the list report (a blank name: ``workflow_<id>``).
    name: str = ""
    description: str = ""
    icon_url: str = ""
    #: The app (project) the workflow belongs to; "" reports ``"0"`` (none), as Coze does.
    app_id: str = ""

    def configured(self, *, done_debug_url: bool = False, node_details: bool = False) -> Workflow:
        """Set the wire options on this workflow and return it (for ``add_workflow``)."""
        self.done_debug_url = done_debug_url
        self.node_details = node_details
        return self

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        """The Start node's parameters: ``{name: {type, required, description,
        default_value}}`` (see :func:`parameter`)."""
        return {}

    def output_parameters(self) -> dict[str, dict[str, Any]]:
        """The End node's parameters, in the same shape."""
        return {"output": parameter("string", "The workflow's result.")}

    @abstractmethod
    def start(self, script: Script) -> None:
        """Fill the script of a new run."""

    def resume(self, script: Script, answer: str) -> None:
        """Fill the script after an interrupt was answered with ``answer``."""
        script.fail(4000, "This workflow has nothing to resume.")


class EchoWorkflow(Workflow):
    """End node only: ``{"output": parameters["input"]}`` (or all parameters)."""

    name = "echo"
    description = "Outputs its input parameter unchanged."

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        return {"input": parameter("string", "The text to echo.")}

    def start(self, script: Script) -> None:
        params = script.params
        script.end({"output": params.get("input", params)})


class StreamingWorkflow(Workflow):
    """Two streaming message (output) nodes, then the End node with the joined text.

    ``parameters["topic"]`` (default "电影") is woven into the text.
    """

    name = "stream_joke"
    description = "Tells a joke about a topic through two streaming output nodes."

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        return {"topic": parameter("string", "What the joke is about.", default="电影")}

    def start(self, script: Script) -> None:
        topic = str(script.params.get("topic") or "电影")
        joke = f"为什么小明要带一把尺子去看{topic}？因为他听说{topic}很长，怕坐不下！"
        script.message("Message", chunk_text(joke))
        closing = "讲完了，祝你开心！"
        script.message("Message_2", chunk_text(closing))
        script.end({"output": joke})


class QuestionWorkflow(Workflow):
    """Asks for a city (Q&A node, interrupt type 2), then answers with its weather.

    A blank answer makes it ask again; see :data:`MAX_RESUMES` for the limit.
    """

    name = "weather_qa"
    description = "Asks for a city (a Q&A node), then answers with its weather."
    question = "请问你想查看哪个城市的天气呢？"
    again = "没听清，请再告诉我城市名称。"

    def __init__(self, *, done_after_interrupt: bool = False) -> None:
        self.done_after_interrupt = done_after_interrupt

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        return {"city": parameter("string", "The city; asked for when missing.")}

    def start(self, script: Script) -> None:
        city = str(script.params.get("city") or "").strip()
        if city:
            self._answer(script, city)
        else:
            script.ask(self.question)

    def resume(self, script: Script, answer: str) -> None:
        if answer.strip():
            self._answer(script, answer.strip())
        else:
            script.ask(self.again)

    @staticmethod
    def _answer(script: Script, city: str) -> None:
        script.message("天气", chunk_text(f"{city}今天晴，气温 25°C。"))
        script.end({"output": f"{city}：晴，25°C"})


class FailingWorkflow(Workflow):
    """A message node streams part of its text, then the next node fails (``Error``)."""

    name = "failing"
    description = "Streams a message, then a code node fails."

    def __init__(
        self,
        *,
        code: int = 5000,
        message: str = "节点「代码」执行失败：ZeroDivisionError: division by zero",
    ) -> None:
        self.code = code
        self.message_text = message

    def start(self, script: Script) -> None:
        script.message("Message", chunk_text("正在计算，请稍候……"))
        script.fail(self.code, self.message_text)


class SlowWorkflow(Workflow):
    """Sends ``pings`` PING heartbeats ``interval`` seconds apart, then its output."""

    name = "slow"
    description = "Sends PING heartbeats before its output."

    def __init__(self, *, pings: int = 3, interval: float = 0.02) -> None:
        self.pings = pings
        self.interval = interval
        self.pace = interval

    def start(self, script: Script) -> None:
        script.ping(self.pings)
        script.end({"output": "慢工出细活，终于好了。"})


class ScriptedWorkflow(Workflow):
    """Streams fixed frames verbatim (ids and all); sync runs just succeed with no output."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self.frames = list(frames)

    def start(self, script: Script) -> None:
        script.end("")


class Chatflow(Workflow):
    """A chatflow: answers ``reply(query)`` through ``/v1/workflows/chat`` (chat events)."""

    chatflow = True
    name = "echo_chatflow"
    description = "A chatflow answering 你说：<query>."

    def input_parameters(self) -> dict[str, dict[str, Any]]:
        # A chatflow's Start node always has these two (Coze adds them).
        return {
            "USER_INPUT": parameter("string", "The user's message in this turn."),
            "CONVERSATION_NAME": parameter("string", "The conversation the chatflow runs in."),
        }

    def start(self, script: Script) -> None:
        script.end({"output": ""})

    def reply(self, query: str, parameters: dict[str, Any]) -> str:
        """The answer to the user's ``query``."""
        return "你说：" + query


# ----------------------------------------------------------------------------- routes


class WorkflowAPI:
    """Handlers for the workflow routes, bound to one :class:`~coze_async.emulator.Emulator`."""

    def __init__(self, emu: Host, registry: WorkflowRegistry) -> None:
        self.emu = emu
        self.registry = registry

    def routes(self) -> list[Route]:
        """``(method, path, handler, requires_auth)`` for every workflow route."""
        history = "/v1/workflows/{workflow_id}/run_histories/{execute_id}"
        return [
            ("POST", "/v1/workflow/run", self.run, True),
            ("POST", "/v1/workflow/stream_run", self.stream_run, True),
            ("POST", "/v1/workflow/stream_resume", self.stream_resume, True),
            ("POST", "/v1/workflows/resume", self.resume, True),
            ("GET", history, self.history, True),
            ("GET", history + "/execute_nodes/{node_execute_uuid}", self.node_output, True),
            ("POST", "/v1/workflows/chat", self.chat, True),
            ("GET", "/v1/workflows", self.list_workflows, True),
            ("GET", "/v1/workflows/{workflow_id}", self.retrieve, True),
        ]

    # ------------------------------------------------------------------ helpers

    def _body(self, request: web.Request) -> dict[str, Any]:
        return json_object(self.emu.context(request).recorded)

    def _envelope(
        self, request: web.Request, fields: dict[str, Any], *, code: int | None = 0
    ) -> web.Response:
        logid = self.emu.context(request).logid
        body: dict[str, Any] = {} if code is None else {"code": code}
        body.update(fields)
        body["detail"] = {"logid": logid}
        raw = dumps(body).replace(b"&", b"\\u0026")
        resp = web.Response(body=raw, content_type="application/json")
        resp.headers[LOGID_HEADER] = logid
        return resp

    def _start(self, request: web.Request, run_mode: int, *, allow_async: bool) -> Any:
        body = self._body(request)
        workflow_id = required_str(body, "workflow_id")
        is_async = opt_bool(body, "is_async", default=False) if allow_async else False
        bot_id = opt_str(body, "bot_id")
        app_id = opt_str(body, "app_id")
        if bot_id is not None and app_id is not None:
            raise ApiError(4000, "Invalid parameter: bot_id and app_id cannot both be set.")
        ext = opt_str_map(body, "ext") or {}
        opt_str(body, "workflow_version")
        connector_id = opt_str(body, "connector_id") or "1024"
        params = _parameters(body.get("parameters"))
        workflow = self.registry.get(workflow_id)
        if workflow.chatflow:
            raise ApiError(
                4000, f"Workflow {workflow_id} is a chatflow: call it through /v1/workflows/chat."
            )
        if is_async and self.emu.user_level == "free":
            raise ApiError(6003, _ASYNC_PREMIUM_MSG)
        run = self.registry.new_run(
            workflow_id,
            2 if is_async else run_mode,
            self.emu.context(request).logid,
            params=params,
            bot_id=bot_id or "0",
            connector_id=connector_id,
            connector_uid=(ext.get("user_id") or self.emu.context(request).user_id or _OWNER_ID),
        )
        script = Script(run)
        workflow.start(script)
        return workflow, run, script, is_async

    def _turn(self, workflow: Workflow, run: WorkflowRun, script: Script) -> WorkflowTurn:
        script.enforce_resume_limit()
        raw = workflow.frames if isinstance(workflow, ScriptedWorkflow) else None
        return WorkflowTurn(
            self.registry,
            run,
            script.steps,
            raw=raw,
            done_after_interrupt=workflow.done_after_interrupt,
            done_debug_url=workflow.done_debug_url,
            node_details=workflow.node_details,
        )

    async def _unary(
        self, request: web.Request, workflow: Workflow, run: WorkflowRun, script: Script
    ) -> web.Response:
        turn = self._turn(workflow, run, script)
        if workflow.pace and script.pings:
            await asyncio.sleep(workflow.pace * script.pings)  # the run takes its time
        turn.settle()
        kind = turn.outcome_kind
        if kind == "fail":
            return self._envelope(
                request,
                {"msg": run.error_message, "debug_url": run.debug_url},
                code=int(run.error_code),
            )
        fields: dict[str, Any] = {
            "msg": "",
            "data": run.end_output if kind == "success" else "",
            "debug_url": run.debug_url,
            "usage": run.usage,
        }
        if kind == "interrupt":
            assert run.interrupt is not None
            fields["interrupt_data"] = _interrupt_json(run.interrupt)
        if run.run_mode == 2:
            fields["execute_id"] = run.execute_id
        return self._envelope(request, fields)

    def _resume_target(self, request: web.Request) -> tuple[Workflow, WorkflowRun, Script]:
        body = self._body(request)
        workflow_id = required_str(body, "workflow_id")
        event_id = required_str(body, "event_id")
        interrupt_type = body.get("interrupt_type")
        if not isinstance(interrupt_type, int) or isinstance(interrupt_type, bool):
            raise ApiError(4000, "Invalid parameter interrupt_type: an integer is required.")
        resume_data = body.get("resume_data")
        if not isinstance(resume_data, str):
            raise ApiError(4000, "Invalid parameter resume_data: a string is required.")
        workflow = self.registry.get(workflow_id)
        execute_id = self.registry.events.get(event_id)
        run = self.registry.runs.get(execute_id) if execute_id is not None else None
        if run is None or run.workflow_id != workflow_id:
            raise ApiError(4314, f"Workflow execution record not found for event {event_id}.")
        if run.finished:
            raise ApiError(
                4315, f"Workflow execution {run.execute_id} has already finished ({run.status})."
            )
        pending = run.interrupt
        if pending is None or pending["event_id"] != event_id:
            raise ApiError(4315, f"The interrupt {event_id} has already been resumed.")
        if interrupt_type != pending["type"]:
            raise ApiError(
                4000,
                f"Invalid parameter interrupt_type: the interrupt is of type {pending['type']}.",
            )
        run.resumes += 1
        run.interrupt = None
        script = Script(run, answer=resume_data)
        workflow.resume(script, resume_data)
        return workflow, run, script

    def _run_for(self, request: web.Request) -> WorkflowRun:
        workflow_id = request.match_info["workflow_id"]
        execute_id = request.match_info["execute_id"]
        run = self.registry.runs.get(execute_id)
        if run is None or run.workflow_id != workflow_id:
            raise ApiError(4314, f"Workflow execution record {execute_id} not found.")
        return run

    async def _finish_later(self, turn: WorkflowTurn, delay: float) -> None:
        await asyncio.sleep(delay)
        turn.settle()

    # ------------------------------------------------------------------ handlers

    async def run(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/workflow/run``: sync result, or ``is_async`` -> execute_id at once."""
        workflow, run, script, is_async = self._start(request, 0, allow_async=True)
        if is_async:
            turn = self._turn(workflow, run, script)
            delay = self.emu.workflow_duration + workflow.pace * script.pings
            self.emu.spawn(self._finish_later(turn, delay))
            # The documented async answer has no "code" key at all.
            return self._envelope(
                request, {"debug_url": run.debug_url, "execute_id": run.execute_id, "msg": ""},
                code=None,
            )  # fmt: skip
        return await self._unary(request, workflow, run, script)

    async def stream_run(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/workflow/stream_run``: the run as SSE."""
        workflow, run, script, _ = self._start(request, 1, allow_async=False)
        turn = self._turn(workflow, run, script)
        return await self.emu.stream_turn(request, turn, delay=workflow.pace or None)

    async def stream_resume(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/workflow/stream_resume``: answer an interrupt, stream the rest."""
        workflow, run, script = self._resume_target(request)
        turn = self._turn(workflow, run, script)
        return await self.emu.stream_turn(request, turn, delay=workflow.pace or None)

    async def resume(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/workflows/resume``: answer an interrupt, get the result like a run."""
        workflow, run, script = self._resume_target(request)
        return await self._unary(request, workflow, run, script)

    async def history(self, request: web.Request) -> web.StreamResponse:
        """``GET .../run_histories/{execute_id}``: ``data`` is a list of one history."""
        run = self._run_for(request)
        return self.emu.ok(request, [run.history()])

    async def node_output(self, request: web.Request) -> web.StreamResponse:
        """``GET .../execute_nodes/{uuid}``: an output node's ``is_finish`` / ``node_output``."""
        run = self._run_for(request)
        uuid = request.match_info["node_execute_uuid"]
        found = self.registry.node_runs.get(uuid)
        if found is None or found[0] != run.execute_id or not found[1].output_node:
            raise ApiError(4314, f"No output node execution {uuid} in run {run.execute_id}.")
        node = found[1]
        return self.emu.ok(request, {"is_finish": node.is_finish, "node_output": node.output})

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/workflows/{id}?include_input_output=``: the workflow's metadata."""
        workflow_id = request.match_info["workflow_id"]
        include = _query_bool(request.query, "include_input_output")
        data: dict[str, Any] = {"workflow_detail": self.registry.detail(workflow_id)}
        if include:
            workflow = self.registry.get(workflow_id)
            data["input"] = {"parameters": workflow.input_parameters()}
            data["output"] = {"parameters": workflow.output_parameters()}
        return self.emu.ok(request, data)

    async def list_workflows(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/workflows?workspace_id=&page_num=``: the registered workflows, paged."""
        query = request.query
        required_str(query, "workspace_id")
        if not query.get("page_num"):
            raise ApiError(4000, "Invalid parameter page_num: page_num is required.")
        page_num = int_param(query, "page_num", 1, 1, None)
        page_size = int_param(query, "page_size", 10, 1, 30)
        mode = opt_str(query, "workflow_mode")
        if mode is not None and mode not in _WORKFLOW_MODES:
            raise ApiError(4000, f"Invalid parameter workflow_mode: {mode!r}.")
        app_id = opt_str(query, "app_id")
        status = opt_str(query, "publish_status") or "published_online"
        if status not in _PUBLISH_STATUSES:
            raise ApiError(4000, f"Invalid parameter publish_status: {status!r}.")
        matching = [
            workflow_id
            for workflow_id, workflow in self.registry.workflows.items()
            if status in _LISTED_STATUSES
            and (mode is None or (mode == "chatflow") == workflow.chatflow)
            and (app_id is None or (workflow.app_id or "0") == app_id)
        ]
        start = (page_num - 1) * page_size
        page = matching[start : start + page_size]
        return self.emu.ok(
            request,
            {
                "items": [self.registry.detail(workflow_id) for workflow_id in page],
                "has_more": start + page_size < len(matching),
            },
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/workflows/chat``: a chatflow turn, streamed as chat events."""
        emu = self.emu
        body = self._body(request)
        workflow_id = required_str(body, "workflow_id")
        inputs = parse_messages(body.get("additional_messages"))
        if not inputs:
            raise ApiError(4000, "Invalid parameter additional_messages: at least one message.")
        if len(inputs) > 50:
            raise ApiError(4000, "Invalid parameter additional_messages: at most 50 messages.")
        if inputs[-1]["role"] != "user":
            raise ApiError(4000, "Invalid parameter additional_messages: the last must be user.")
        bot_id = opt_str(body, "bot_id")
        app_id = opt_str(body, "app_id")
        if (bot_id is None) == (app_id is None):
            raise ApiError(4000, "Invalid parameter: exactly one of app_id or bot_id is required.")
        if bot_id is not None:
            emu.bot_for(bot_id)  # the agent the chatflow runs for must exist (else 4200)
        params = _parameters(body.get("parameters"))
        conversation_id = opt_str(body, "conversation_id")
        workflow = self.registry.get(workflow_id)
        if not isinstance(workflow, Chatflow):
            raise ApiError(4000, f"Workflow {workflow_id} is not a chatflow.")
        state = emu.state
        conv: Conversation | None = None
        user_id = emu.context(request).user_id
        if conversation_id is not None:
            # Another user's conversation is as invisible as a missing one.
            conv = state.visible_conversation(conversation_id, user_id)
            if conv is None:
                raise ApiError(4002, f"Invalid conversation: {conversation_id} does not exist.")
            if conv.occupied:
                # As on /v3/chat: a streamed chat is refused by an SSE error event.
                error = _go_json({"code": 4016, "msg": error_message(4016)}).decode()
                return await emu.stream_frames(request, [sse_frame("error", error, spaced=True)])
        if conv is None:
            conv = state.create_conversation(creator_id=user_id, bot_id=bot_id or "")
        records = input_records(conv, inputs)
        chat = state.start_chat(
            conv,
            bot_id=bot_id or app_id or "",
            user_id=user_id or _OWNER_ID,
            meta_data=None,
            inputs=records,
            auto_save_history=True,
        )
        for record in records:
            record.chat_id = chat.id
            record.bot_id = bot_id or ""  # a chatflow's user message: the agent's id, or ""
        run = self.registry.new_run(
            workflow_id, 1, emu.context(request).logid, params=params, bot_id=bot_id or "0"
        )
        query = str(inputs[-1]["text"])
        turn = _chatflow_turn(state, chat, conv, run, workflow.reply(query, params), query)
        return await emu.stream_turn(request, turn)


# ----------------------------------------------------------------------------- chatflow


class _ChatflowTurn(Turn):
    """A chatflow turn: chat events with ``event: `` / ``data: `` spacing."""

    __slots__ = ()

    def error_frame(self, code: int, msg: str) -> bytes:
        return sse_frame("error", _go_json({"code": code, "msg": msg}).decode(), spaced=True)


def _chatflow_turn(
    state: EmulatorState,
    chat: ChatRecord,
    conv: Conversation,
    run: WorkflowRun,
    reply: str,
    query: str,
) -> Turn:
    def message(type_: str, content: str) -> MessageRecord:
        return MessageRecord(
            id=new_id(),
            conversation_id=conv.id,
            section_id=chat.section_id,
            role="assistant",
            type=type_,
            content=content,
            content_type="text",
            chat_id=chat.id,
        )

    answer = message("answer", reply)
    verbose = message("verbose", VERBOSE_FINISH)
    usage = _usage(query, reply)
    outcome = Outcome(
        "completed",
        [answer, verbose],
        Usage(usage["token_count"], usage["output_count"], usage["input_count"]),
    )

    def frame(event: str, data: Any) -> bytes:
        return sse_frame(event, _go_json(data).decode(), spaced=True)

    def chat_json(status: str | None = None) -> dict[str, Any]:
        # Recorded: id, conversation_id, created_at, [completed_at], last_error, status,
        # usage, section_id; created also lists the inserted messages (coze-py #168).
        out = chat.to_json(status=status, inserted=status == "created")
        # Chatflow chat objects carry neither bot_id nor the required_action placeholder.
        out.pop("bot_id", None)
        out.pop("required_action", None)
        return out

    def message_json(msg: MessageRecord, content: str, *, stamps: int) -> dict[str, Any]:
        # Recorded order; ``stamps`` 1 adds created_at (the last delta, the answer), 2 also
        # updated_at (the verbose message).
        out = msg.to_event()
        out["content"] = content  # keeps its place between type and content_type
        if stamps >= 1:
            out["created_at"] = msg.created_at
        if stamps >= 2:
            out["updated_at"] = msg.updated_at
        return out

    def frames(turn: Turn) -> Iterator[bytes]:
        yield frame("conversation.chat.created", chat_json("created"))
        yield frame("conversation.chat.in_progress", chat_json("in_progress"))
        pieces = chunk_text(reply)
        for index, piece in enumerate(pieces):
            last = int(index == len(pieces) - 1)
            yield frame("conversation.message.delta", message_json(answer, piece, stamps=last))
        yield frame("conversation.message.completed", message_json(answer, reply, stamps=1))
        yield frame(
            "conversation.message.completed", message_json(verbose, VERBOSE_FINISH, stamps=2)
        )
        turn.commit()
        run.end_output = dumps({"output": reply}).decode()
        run.usage = usage
        run.status = "Success"
        yield frame("conversation.chat.completed", chat_json())
        yield frame("done", {"debug_url": run.debug_url})

    return _ChatflowTurn(state, chat, outcome, frames)


# ----------------------------------------------------------------------------- parsing


def _parameters(value: Any) -> dict[str, Any]:
    # The doc table says "JSON string"; every example and SDK sends an object. Take both.
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise ApiError(4000, "Invalid parameter parameters: not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError(4000, "Invalid parameter parameters: must be an object.")
    return value


def _query_bool(query: Mapping[str, str], key: str) -> bool:
    raw = query.get(key, "")
    if raw in ("", "false", "False", "0"):
        return False
    if raw in ("true", "True", "1"):
        return True
    raise ApiError(4000, f"Invalid parameter {key}: must be a boolean.")


def parameter(
    type_: str, description: str = "", *, required: bool = False, default: str = ""
) -> dict[str, Any]:
    """One Start/End node parameter as ``GET /v1/workflows/{id}`` describes it."""
    return {
        "type": type_,
        "required": required,
        "description": description,
        "default_value": default,
    }
