"""Workflow models (coze-api.md §4): run results, run history, node output, stream events.

Everything is a frozen attrs class. Open value sets stay plain values: ``execute_status`` is
a ``str`` (compare with :class:`WorkflowRunStatus`), an interrupt's ``type`` an ``int``
(compare with :class:`InterruptType`), so a value Coze adds tomorrow is kept, not rejected.

Coze returns workflow outputs as JSON *text* (``data`` of a run, ``output`` of a history,
``node_output`` of an output node, the End node's streamed ``content``). Those are kept
verbatim and also decoded once into ``parsed`` (``None`` when the text is empty or not JSON:
Coze documents that it may be plain text).

Streams: :func:`workflow_event_from_sse` turns one SSE event into a typed event, and
:func:`accumulate_workflow` folds events into a :class:`WorkflowSnapshot`, the value behind
``stream.snapshot``, ``await stream.final()`` (as a :class:`WorkflowResult`) and the
``partial`` of every stream error.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import attrs

from .._json import dumps, loads
from .chat import Usage
from .converter import structure
from .events import UnknownEvent

__all__ = [
    "InterruptData",
    "InterruptType",
    "NodeExecuteStatus",
    "WorkflowCreator",
    "WorkflowDone",
    "WorkflowEvent",
    "WorkflowInfo",
    "WorkflowInterrupt",
    "WorkflowMessage",
    "WorkflowNodeContent",
    "WorkflowNodeOutput",
    "WorkflowPing",
    "WorkflowResult",
    "WorkflowRunHistory",
    "WorkflowRunResult",
    "WorkflowRunStatus",
    "WorkflowSnapshot",
    "accumulate_workflow",
    "execute_id_from_debug_url",
    "parse_json_text",
    "run_history_from_wire",
    "run_result_from_wire",
    "workflow_event_from_sse",
]


class WorkflowRunStatus(StrEnum):
    """Known run-history statuses. ``history.execute_status`` is a ``str`` and may hold others."""

    SUCCESS = "Success"
    RUNNING = "Running"
    FAIL = "Fail"


class InterruptType(IntEnum):
    """Known interrupt types (``InterruptData.type`` is an ``int`` and may hold others)."""

    #: A Q&A (问答) node asks the user a question; resume with the answer text.
    QUESTION = 2
    #: An input node wants values; resume with a JSON object serialized as a string.
    INPUT = 5
    #: A local (端) plugin must run on the caller's side; resume with its output.
    LOCAL_PLUGIN = 6
    #: An OAuth plugin needs the user to authorize first.
    OAUTH_PLUGIN = 7


def parse_json_text(text: str | None) -> Any:
    """``text`` decoded as JSON, or ``None`` when it is empty or not JSON."""
    if not text:
        return None
    try:
        return loads(text)
    except ValueError:
        return None


def execute_id_from_debug_url(url: str | None) -> str | None:
    """The ``execute_id`` query parameter of a workflow ``debug_url`` (``None`` if absent)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("execute_id")
    return values[0] if values else None


def _as_text(value: Any) -> str:
    # Output fields are JSON text at Coze; keep a server that sends the object itself lenient.
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return dumps(value).decode()


@attrs.frozen
class InterruptData:
    """Why a run stopped and how to resume it.

    Pass ``event_id`` and ``type`` back to ``coze.workflows.resume_stream`` /
    ``coze.workflows.resume`` as ``event_id=`` and ``interrupt_type=``. ``data`` is the
    node's payload as sent (for a Q&A node a JSON text such as
    ``{"content_type":"text","content":"请输入您的姓名"}``), also decoded in ``parsed``;
    ``required_parameters`` describes what an input node wants.
    """

    event_id: str = ""
    type: int = 0
    data: str = ""
    required_parameters: dict[str, Any] | None = None
    parsed: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_json_text(self.data))

    @property
    def question(self) -> str:
        """The text to show the user: ``parsed["content"]`` when present, else ``data``."""
        if isinstance(self.parsed, dict) and isinstance(self.parsed.get("content"), str):
            return str(self.parsed["content"])
        return self.data


def _interrupt_wire(d: Any) -> Any:
    if isinstance(d, dict) and "data" in d and not isinstance(d["data"], str):
        d = {**d, "data": _as_text(d["data"])}
    return d


@attrs.frozen
class WorkflowRunResult:
    """The answer of a synchronous run (``coze.workflows.run``) or a non-stream resume.

    ``data`` is the End node's output exactly as Coze sent it (JSON text, or plain text for
    some workflows) and ``parsed`` the same decoded (``None`` when it is not JSON). When a
    Q&A or input node stopped the run, ``interrupt_data`` says how to resume it. ``execute_id``
    is Coze's when sent, else read from ``debug_url``.
    """

    data: str = ""
    debug_url: str | None = None
    usage: Usage | None = None
    execute_id: str | None = None
    interrupt_data: InterruptData | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    #: Seconds the call waited for the client-side quota limiter before it was sent.
    quota_wait: float = attrs.field(default=0.0, eq=False, repr=False)
    parsed: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_json_text(self.data))

    @property
    def interrupted(self) -> bool:
        """True when the run stopped at a Q&A / input node and waits to be resumed."""
        return self.interrupt_data is not None


def run_result_from_wire(body: Any, *, logid: str | None) -> WorkflowRunResult:
    """Build a :class:`WorkflowRunResult` from a run/resume envelope (fields beside ``data``)."""
    if not isinstance(body, dict):
        body = {}
    wire = {
        "data": _as_text(body.get("data")),
        "debug_url": body.get("debug_url") or None,
        "usage": body.get("usage") or None,
        "execute_id": body.get("execute_id") or None,
        "interrupt_data": _interrupt_wire(body.get("interrupt_data")) or None,
    }
    result = structure(wire, WorkflowRunResult, logid=logid, what="$")
    if result.execute_id is None:
        result = attrs.evolve(result, execute_id=execute_id_from_debug_url(result.debug_url))
    return attrs.evolve(result, logid=logid)


@attrs.frozen
class NodeExecuteStatus:
    """One node's execution in a run history (``node_execute_status`` values).

    ``node_execute_uuid`` of an output node is what ``coze.workflows.node_output`` wants.
    """

    node_id: str = ""
    is_finish: bool = False
    update_time: int | None = None
    node_execute_uuid: str = ""
    loop_index: int | None = None
    batch_index: int | None = None
    sub_execute_id: str | None = None


@attrs.frozen
class WorkflowRunHistory:
    """A run's history (``coze.workflows.runs.retrieve``): status, output, errors, nodes.

    ``execute_status`` is ``"Running"``, ``"Success"`` or ``"Fail"`` (see
    :class:`WorkflowRunStatus`; other values are kept). ``output`` is the raw output text
    (``{"Output": ..., "<output node title>": ...}`` at Coze) and ``parsed`` the same decoded.
    ``error_code`` is kept as Coze sent it (``""`` when fine; a string, sometimes a number);
    :attr:`code` gives it as an ``int``. ``run_logid`` is the logid Coze recorded for the run
    itself; ``logid`` is the logid of the retrieve call. ``run_mode``: 0 sync, 1 stream,
    2 async.
    """

    execute_id: str
    execute_status: str = ""
    bot_id: str | None = None
    connector_id: str | None = None
    connector_uid: str | None = None
    run_mode: int | None = None
    run_logid: str | None = None
    create_time: int | None = None
    update_time: int | None = None
    output: str = ""
    error_code: str = ""
    error_message: str = ""
    debug_url: str | None = None
    usage: Usage | None = None
    is_output_trimmed: bool = False
    node_execute_status: dict[str, NodeExecuteStatus] | None = None
    interrupt_data: InterruptData | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    parsed: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_json_text(self.output))

    @property
    def code(self) -> int | None:
        """``error_code`` as an int; ``None`` when empty, ``"0"`` or not numeric."""
        text = self.error_code.strip()
        if text.lstrip("-").isdigit() and int(text) != 0:
            return int(text)
        return None

    @property
    def running(self) -> bool:
        """True while Coze still reports the run as ``Running``."""
        return self.execute_status == WorkflowRunStatus.RUNNING

    @property
    def succeeded(self) -> bool:
        """True once the run reported ``Success``."""
        return self.execute_status == WorkflowRunStatus.SUCCESS

    @property
    def failed(self) -> bool:
        """True once the run reported ``Fail``."""
        return self.execute_status == WorkflowRunStatus.FAIL


def run_history_from_wire(
    data: Any, *, logid: str | None, what: str = "$.data[0]"
) -> WorkflowRunHistory:
    """Build a :class:`WorkflowRunHistory` from one decoded history object."""
    if isinstance(data, dict):
        data = dict(data)
        # The history's own "logid" field is the run's, not this call's.
        data["run_logid"] = data.pop("logid", None) or None
        code = data.get("error_code")
        data["error_code"] = "" if code is None else code
        data["output"] = _as_text(data.get("output"))
        if data.get("error_message") is None:
            data.pop("error_message", None)
        data["interrupt_data"] = _interrupt_wire(data.get("interrupt_data")) or None
    history = structure(data, WorkflowRunHistory, logid=logid, what=what)
    return attrs.evolve(history, logid=logid)


@attrs.frozen
class WorkflowNodeOutput:
    """An output node's result (``coze.workflows.node_output``).

    ``node_output`` is the text as Coze sent it and ``parsed`` the same decoded.
    ``is_finish`` is False while the node is still producing.
    """

    is_finish: bool = False
    node_output: str = ""
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    parsed: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_json_text(self.node_output))


# ---------------------------------------------------------------------------- stream events


@attrs.frozen
class WorkflowMessage:
    """``Message``: a chunk of a node's output (message, Q&A, output or End node).

    A node's chunks share ``node_title`` (and ``node_execute_uuid`` when sent);
    ``node_seq_id`` restarts at ``"0"`` for every node and ``node_is_finish`` marks a node's
    last chunk. ``id`` is the event's SSE id (0, 1, 2... across the stream).
    """

    event_name: ClassVar[str] = "Message"
    content: str = ""
    node_title: str = ""
    node_seq_id: str = ""
    node_is_finish: bool = False
    node_id: str | None = None
    node_execute_uuid: str | None = None
    content_type: str | None = None
    usage: Usage | None = None
    ext: dict[str, Any] | None = None
    id: int | None = None


@attrs.frozen
class WorkflowInterrupt:
    """``Interrupt``: a Q&A / input node stopped the run; resume with ``interrupt_data``.

    The stream may end right after this event (no ``Done``); that is a normal end.
    """

    event_name: ClassVar[str] = "Interrupt"
    interrupt_data: InterruptData
    node_title: str = ""
    id: int | None = None


@attrs.frozen
class WorkflowDone:
    """``Done``: the run's stream ended normally. ``data`` is kept as sent.

    Coze sends ``{}`` or ``{"debug_url": ...}``; read the latter from :attr:`debug_url`.
    """

    event_name: ClassVar[str] = "Done"
    data: Any = None
    id: int | None = None

    @property
    def debug_url(self) -> str | None:
        """The run's debug URL, when the server sent one."""
        if isinstance(self.data, dict):
            url = self.data.get("debug_url")
            return url if isinstance(url, str) and url else None
        return None


@attrs.frozen
class WorkflowPing:
    """``PING``: a keep-alive heartbeat while a slow node works (``data`` kept as sent)."""

    event_name: ClassVar[str] = "PING"
    data: Any = None
    id: int | None = None


WorkflowEvent = WorkflowMessage | WorkflowInterrupt | WorkflowDone | WorkflowPing | UnknownEvent


def _json_or_text(data: str) -> Any:
    try:
        return loads(data)
    except ValueError:
        return data


def workflow_event_from_sse(name: str, data: str, id: int | None = None) -> WorkflowEvent:
    """Turn one workflow SSE event (name, data, id) into its typed event.

    ``Error`` events are handled by the stream (they raise). Raises ``ValueError`` for data
    that is not JSON and :class:`~coze_async.errors.ResponseValidationError` for JSON of the
    wrong shape.
    """
    if name == "Message":
        payload = loads(data)
        if isinstance(payload, dict):
            payload = {**payload, "id": id}
        return structure(payload, WorkflowMessage, what="$.data")
    if name == "Interrupt":
        payload = loads(data)
        if isinstance(payload, dict):
            payload = {
                **payload,
                "interrupt_data": _interrupt_wire(payload.get("interrupt_data")),
                "id": id,
            }
        return structure(payload, WorkflowInterrupt, what="$.data")
    if name == "Done":
        return WorkflowDone(_json_or_text(data) if data else None, id)
    if name == "PING":
        return WorkflowPing(_json_or_text(data) if data else None, id)
    return UnknownEvent(name, data)


# ---------------------------------------------------------------------------- accumulation


@attrs.frozen
class WorkflowNodeContent:
    """Everything one node streamed: its chunks' ``content`` concatenated.

    ``finished`` is True once the node's ``node_is_finish`` chunk arrived.
    """

    node_title: str
    content: str
    finished: bool = False
    chunks: int = 0
    node_id: str | None = None
    node_execute_uuid: str | None = None


@attrs.define
class _NodeParts:
    first: WorkflowMessage
    parts: list[str]
    finished: bool = False

    def freeze(self) -> WorkflowNodeContent:
        return WorkflowNodeContent(
            node_title=self.first.node_title,
            content="".join(self.parts),
            finished=self.finished,
            chunks=len(self.parts),
            node_id=self.first.node_id,
            node_execute_uuid=self.first.node_execute_uuid,
        )


def _node_key(message: WorkflowMessage) -> str:
    if message.node_execute_uuid:
        return "uuid:" + message.node_execute_uuid
    if message.node_id:
        return "id:" + message.node_id
    return "title:" + message.node_title


@attrs.frozen
class WorkflowResult:
    """What ``await stream.final()`` returns: the run's outcome as streamed.

    * ``output``: the End node's content (the last node Coze streamed), verbatim, and
      ``parsed`` the same decoded; ``None`` when the run was interrupted;
    * ``nodes``: every node's concatenated content, in the order the nodes first appeared;
    * ``usage``: the last usage Coze reported; ``debug_url`` from ``Done``;
    * ``interrupt``: set when a Q&A / input node stopped the run; resume it with
      ``coze.workflows.resume_stream(workflow_id=..., event_id=
      result.interrupt.interrupt_data.event_id, interrupt_type=...type, resume_data=...)``.
    """

    output: str | None = None
    nodes: tuple[WorkflowNodeContent, ...] = ()
    usage: Usage | None = None
    debug_url: str | None = None
    interrupt: WorkflowInterrupt | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    parsed: Any = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "parsed", parse_json_text(self.output))

    @property
    def interrupted(self) -> bool:
        """True when the run stopped at a Q&A / input node and waits to be resumed."""
        return self.interrupt is not None

    @property
    def execute_id(self) -> str | None:
        """The run's execute id, read from ``debug_url`` (for ``coze.workflows.runs``)."""
        return execute_id_from_debug_url(self.debug_url)

    @property
    def text(self) -> str:
        """Every node's content concatenated, in node order."""
        return "".join(node.content for node in self.nodes)

    def node(self, title: str) -> WorkflowNodeContent | None:
        """The first node whose ``node_title`` is ``title``, if any."""
        return next((n for n in self.nodes if n.node_title == title), None)


@attrs.define
class WorkflowSnapshot:
    """Everything a workflow stream has delivered so far (mutable, updated in place).

    It is the stream's ``snapshot`` and the ``partial`` of every stream error, so the output
    of nodes that ran before an ``Error`` event, a lost connection or an id gap is kept.
    """

    events: int = 0
    last_id: int | None = None
    usage: Usage | None = None
    interrupt: WorkflowInterrupt | None = None
    done: WorkflowDone | None = None
    pings: int = 0
    unknown: list[UnknownEvent] = attrs.Factory(list)
    _nodes: dict[str, _NodeParts] = attrs.Factory(dict)
    _last_node: str | None = None

    @property
    def nodes(self) -> list[WorkflowNodeContent]:
        """Each node's content so far, in the order the nodes first appeared."""
        return [parts.freeze() for parts in self._nodes.values()]

    @property
    def text(self) -> str:
        """Every node's content so far, concatenated in node order."""
        return "".join("".join(parts.parts) for parts in self._nodes.values())

    @property
    def interrupted(self) -> bool:
        """True once an ``Interrupt`` event arrived."""
        return self.interrupt is not None

    @property
    def output(self) -> str | None:
        """The End node's content once the run finished (``Done``) without an interrupt.

        Coze streams the End node last, so it is the content of the last node that emitted.
        """
        if self.done is None or self.interrupt is not None or self._last_node is None:
            return None
        return "".join(self._nodes[self._last_node].parts)

    @property
    def debug_url(self) -> str | None:
        """The ``Done`` event's debug URL."""
        return self.done.debug_url if self.done is not None else None

    def result(self, *, logid: str | None = None) -> WorkflowResult:
        """Freeze the snapshot into a :class:`WorkflowResult`."""
        return WorkflowResult(
            output=self.output,
            nodes=tuple(self.nodes),
            usage=self.usage,
            debug_url=self.debug_url,
            interrupt=self.interrupt,
            logid=logid,
        )


def accumulate_workflow(snapshot: WorkflowSnapshot, event: WorkflowEvent) -> WorkflowSnapshot:
    """Fold one event into ``snapshot`` and return it.

    Updated in place (copying per chunk would make long outputs quadratic); no other effect,
    so replaying recorded events through it gives the snapshot the live stream had.
    """
    snapshot.events += 1
    event_id = getattr(event, "id", None)
    if isinstance(event_id, int):
        snapshot.last_id = event_id
    if type(event) is WorkflowMessage:
        key = _node_key(event)
        parts = snapshot._nodes.get(key)
        if parts is None:
            parts = snapshot._nodes[key] = _NodeParts(event, [])
        parts.parts.append(event.content)
        if event.node_is_finish:
            parts.finished = True
        if event.usage is not None:
            snapshot.usage = event.usage
        snapshot._last_node = key
    elif type(event) is WorkflowInterrupt:
        snapshot.interrupt = event
    elif type(event) is WorkflowDone:
        snapshot.done = event
    elif type(event) is WorkflowPing:
        snapshot.pings += 1
    elif type(event) is UnknownEvent:
        snapshot.unknown.append(event)
    return snapshot


# ---------------------------------------------------------------------------- metadata


@attrs.frozen
class WorkflowCreator:
    """Who created a workflow (``WorkflowInfo.creator``)."""

    id: str = ""
    name: str = ""


@attrs.frozen
class WorkflowInfo:
    """A workflow's metadata (``coze.workflows.retrieve`` and ``coze.workflows.list``).

    ``app_id`` is ``"0"`` for a workflow outside any app; ``created_at`` / ``updated_at`` are
    Unix seconds as Coze sends them (strings; numbers are accepted). ``input_parameters`` /
    ``output_parameters`` (``{name: {type, required, description, ...}}``) are set by
    ``retrieve(include_input_output=True)``.
    """

    workflow_id: str
    workflow_name: str = ""
    description: str = ""
    icon_url: str = ""
    app_id: str = ""
    created_at: str = ""
    updated_at: str = ""
    creator: WorkflowCreator | None = None
    input_parameters: dict[str, Any] | None = None
    output_parameters: dict[str, Any] | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)


def workflow_info_from_wire(data: Any, *, logid: str | None) -> WorkflowInfo:
    """A :class:`WorkflowInfo` from ``GET /v1/workflows/{id}``'s ``data`` (its
    ``workflow_detail``, plus the parameters of ``input`` and ``output`` when present)."""
    detail = data.get("workflow_detail") if isinstance(data, dict) else None
    if isinstance(detail, dict):
        for part in ("input", "output"):
            found = data.get(part)
            if isinstance(found, dict) and found.get("parameters") is not None:
                detail = {**detail, f"{part}_parameters": found["parameters"]}
    return structure(detail, WorkflowInfo, logid=logid, what="$.data.workflow_detail")
