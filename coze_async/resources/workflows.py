"""``coze.workflows``: workflow runs, streams, resumes, run history and chatflows (coze-api.md §4).

Every call here is a workflow API: its request body may be up to 20 MB (other APIs: 15 MB),
checked before anything is sent. Runs, streams, resumes and chatflows are not retried once
they may have reached Coze (a retried run would be a second, billed run). ``run``,
``run_async``, ``stream`` and ``run_and_wait`` send one
:class:`~coze_async.requests.WorkflowRunRequest`, built once per call.
"""

from __future__ import annotations

from typing import Any, Unpack

import anyio

from .._validate import check_bool, check_str
from ..call import WORKFLOW_MAX_BODY, CallOptions, Envelope
from ..endpoint import Endpoint, page_items, stamped, streamed
from ..errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    ResponseValidationError,
    WorkflowPollTimeoutError,
    WorkflowRunFailedError,
)
from ..models.converter import structure
from ..models.workflow import (
    WorkflowInfo,
    WorkflowNodeOutput,
    WorkflowRunHistory,
    WorkflowRunResult,
    WorkflowRunStatus,
    run_history_from_wire,
    run_result_from_wire,
    workflow_info_from_wire,
)
from ..pagination import AsyncPager
from ..requests import (
    ChatflowCallParams,
    ChatflowRequest,
    WorkflowRunCallParams,
    WorkflowRunRequest,
    split,
)
from ..streaming import ChatStream
from ..transport import Transport
from ..workflow_stream import WorkflowStream
from ._base import Resource, check_int, poll_deadline, require_id
from .chat import ChatResource

__all__ = ["WorkflowRunsResource", "WorkflowsResource"]

#: Why 6003 happened, in words a user can act on.
_ASYNC_PLAN_HINT = (
    "is_async runs (run_async / run_and_wait) are a paid-plan feature at Coze (Coze "
    "Professional); on the free plan use run() or stream() instead"
)


def _result(env: Envelope) -> WorkflowRunResult:
    return stamped(run_result_from_wire(env.body, logid=env.logid), env)


def _history(env: Envelope) -> WorkflowRunHistory:
    found = env.field("data")
    # Coze answers a list holding exactly one history; accept a bare object too.
    if isinstance(found, list):
        if not found:
            raise ResponseValidationError(
                "expected one run history under data, got an empty list",
                logid=env.logid,
                body=env.body,
            )
        found = found[0]
    return run_history_from_wire(found, logid=env.logid)


def _node_output(env: Envelope) -> WorkflowNodeOutput:
    found = env.field("data")
    if isinstance(found, dict) and found.get("node_output") is None:
        found = {**found, "node_output": ""}
    return stamped(structure(found, WorkflowNodeOutput, logid=env.logid, what="$.data"), env)


def _workflow(method: str, path: str, quota: str, parse: Any, **kw: Any) -> Endpoint[Any]:
    return Endpoint(method, path, quota, parse, max_body=WORKFLOW_MAX_BODY, **kw)


_HISTORY = "/v1/workflows/{workflow_id}/run_histories/{execute_id}"
RUN: Endpoint[WorkflowRunResult] = _workflow("POST", "/v1/workflow/run", "workflows.run", _result)
RUN_ASYNC: Endpoint[WorkflowRunResult] = _workflow(
    "POST", "/v1/workflow/run", "workflows.run_async", _result
)
STREAM: Endpoint[Envelope] = _workflow(
    "POST", "/v1/workflow/stream_run", "workflows.stream", streamed
)
RESUME_STREAM: Endpoint[Envelope] = _workflow(
    "POST", "/v1/workflow/stream_resume", "workflows.resume_stream", streamed
)
RESUME: Endpoint[WorkflowRunResult] = _workflow(
    "POST", "/v1/workflows/resume", "workflows.resume", _result
)
RUN_HISTORY: Endpoint[WorkflowRunHistory] = _workflow(
    "GET", _HISTORY, "workflows.runs.retrieve", _history, idempotent=True
)
NODE_OUTPUT: Endpoint[WorkflowNodeOutput] = _workflow(
    "GET",
    _HISTORY + "/execute_nodes/{node_execute_uuid}",
    "workflows.node_output",
    _node_output,
    idempotent=True,
)
CHAT: Endpoint[Envelope] = _workflow("POST", "/v1/workflows/chat", "workflows.chat", streamed)
RETRIEVE = Endpoint(
    "GET",
    "/v1/workflows/{workflow_id}",
    "workflows.retrieve",
    lambda env: stamped(workflow_info_from_wire(env.field("data"), logid=env.logid), env),
    idempotent=True,
)
LIST = Endpoint(
    "GET", "/v1/workflows", "workflows.list", page_items("items", WorkflowInfo), idempotent=True
)


def _resume_body(
    workflow_id: str, event_id: str, interrupt_type: int, resume_data: str
) -> dict[str, Any]:
    if not isinstance(interrupt_type, int) or isinstance(interrupt_type, bool):
        raise InvalidArgumentError(
            f"interrupt_type must be the interrupt's int type (e.g. 2), got {interrupt_type!r}"
        )
    if not isinstance(resume_data, str):
        raise InvalidArgumentError(
            "resume_data must be a string (the answer, or JSON serialized as a string)"
        )
    check_str("resume_data", resume_data)
    return {
        "workflow_id": require_id("workflow_id", workflow_id),
        "event_id": require_id("event_id", event_id),
        "interrupt_type": int(interrupt_type),
        "resume_data": resume_data,
    }


class WorkflowRunsResource(Resource):
    """``coze.workflows.runs``: a run's history (status, output, errors, nodes)."""

    async def retrieve(
        self, *, workflow_id: str, execute_id: str, **options: Unpack[CallOptions]
    ) -> WorkflowRunHistory:
        """Get a run's history (``GET /v1/workflows/{id}/run_histories/{execute_id}``).

        Works for every run (sync, stream, async); an async run reports ``Running`` until it
        finishes with ``Success`` or ``Fail``. Unknown ids raise ``NotFoundError`` (4314).
        """
        ids = {"workflow_id": workflow_id, "execute_id": execute_id}
        return await self._send(RUN_HISTORY, options, ids=ids)


class WorkflowsResource(Resource):
    """The workflow API: run, run_async, stream, resume, history, node output, chatflow.

    Every method takes the per-call options (:class:`~coze_async.call.CallOptions`:
    ``extra_headers``, ``extra_query``, ``extra_body``, ``timeouts``, ``retry``).
    """

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.runs = WorkflowRunsResource(transport)
        """Run histories (:class:`WorkflowRunsResource`)."""
        self._chat = ChatResource(transport)  # a chatflow's chat is cancelled like any chat

    # -- metadata ----------------------------------------------------------------------------

    async def retrieve(
        self,
        *,
        workflow_id: str,
        include_input_output: bool | None = None,
        **options: Unpack[CallOptions],
    ) -> WorkflowInfo:
        """A workflow's metadata (``GET /v1/workflows/{id}``); with
        ``include_input_output=True``, its Start and End parameters too."""
        params = None
        if include_input_output is not None:
            flag = check_bool("include_input_output", include_input_output)
            params = {"include_input_output": "true" if flag else "false"}
        return await self._send(RETRIEVE, options, ids={"workflow_id": workflow_id}, params=params)

    def list(
        self,
        *,
        workspace_id: str,
        workflow_mode: str | None = None,
        app_id: str | None = None,
        publish_status: str | None = None,
        page_size: int = 10,
        page_num: int = 1,
        **options: Unpack[CallOptions],
    ) -> AsyncPager[WorkflowInfo]:
        """The workspace's workflows (``GET /v1/workflows``), as a lazy
        :class:`~coze_async.pagination.AsyncPager` of ``page_size`` (1-30) per request.

        ``workflow_mode``: ``"workflow"`` or ``"chatflow"``; ``app_id``: only that app's;
        ``publish_status``: e.g. ``"published_online"`` (Coze's default). Nothing is sent
        before iteration starts; bad arguments raise here.
        """
        check_int("page_size", page_size, 1, 30)
        check_int("page_num", page_num, 1, None)
        params = {"workspace_id": require_id("workspace_id", workspace_id)}
        given = {"workflow_mode": workflow_mode, "app_id": app_id, "publish_status": publish_status}
        params.update((k, require_id(k, v)) for k, v in given.items() if v is not None)
        what = f"workflows of workspace {params['workspace_id']}"
        return self._numbered_pages(LIST, options, params, page=(page_num, page_size), what=what)

    # -- synchronous and asynchronous runs ---------------------------------------------------

    async def run(self, **params: Unpack[WorkflowRunCallParams]) -> WorkflowRunResult:
        """Run a published workflow and wait for its result (``POST /v1/workflow/run``).

        Takes the run's fields (:class:`~coze_async.requests.WorkflowRunParams`) and the
        per-call options. Returns the End node's output (``result.data``, and
        ``result.parsed`` when it is JSON), ``debug_url``, ``usage`` and ``execute_id``;
        ``result.interrupt_data`` is set when a Q&A / input node stopped the run (continue
        with :meth:`resume`). Coze drops a sync run that produces nothing for 90 s: use
        :meth:`stream` or :meth:`run_async` for long workflows. ``bot_id`` and ``app_id``
        together raise ``InvalidArgumentError`` before anything is sent.
        """
        request, options = split(params, WorkflowRunRequest, method="run")
        return await self._send(RUN, options, json=request.to_body(is_async=False))

    async def run_async(self, **params: Unpack[WorkflowRunCallParams]) -> str:
        """Start a run in the background (``is_async=true``) and return its ``execute_id``.

        Takes the run's fields (:class:`~coze_async.requests.WorkflowRunParams`) and the
        per-call options. Follow it with ``coze.workflows.runs.retrieve(workflow_id=...,
        execute_id=...)`` or use :meth:`run_and_wait`. Async runs are a paid-plan feature: on
        the free plan Coze answers 6003, raised as ``PermissionDeniedError`` with a hint
        saying so.
        """
        request, options = split(params, WorkflowRunRequest, method="run_async")
        return await self._run_async(request, options)

    async def _run_async(self, request: WorkflowRunRequest, options: CallOptions) -> str:
        try:
            call = RUN_ASYNC.call(options, json=request.to_body(is_async=True))
            env = await self._transport.request(call)
        except PermissionDeniedError as exc:
            if exc.code != 6003:
                raise
            raise exc.with_hint(_ASYNC_PLAN_HINT) from exc
        result = RUN_ASYNC.parse(env)
        if not result.execute_id:
            raise ResponseValidationError(
                "an async workflow run answered without an execute_id",
                logid=env.logid,
                body=env.body,
            )
        return result.execute_id

    async def run_and_wait(
        self,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = 600.0,
        **params: Unpack[WorkflowRunCallParams],
    ) -> WorkflowRunHistory:
        """Start an async run and poll its history until it leaves ``Running``.

        Takes the run's fields (:class:`~coze_async.requests.WorkflowRunParams`) and the
        per-call options, which every call it makes (the run and each poll) carries.

        * ``Success`` (or a status this SDK does not know) -> the history;
        * still ``Running`` but stopped at a Q&A / input node (``interrupt_data`` set) -> the
          history, since waiting longer cannot help;
        * ``Fail`` -> :class:`~coze_async.errors.WorkflowRunFailedError` with the history;
        * past ``timeout`` seconds -> :class:`~coze_async.errors.WorkflowPollTimeoutError`
          with the last history (the run goes on at Coze: runs cannot be cancelled).
        """
        request, options = split(params, WorkflowRunRequest, method="run_and_wait")
        deadline = poll_deadline(poll_interval, timeout)
        execute_id = await self._run_async(request, options)
        history: WorkflowRunHistory | None = None
        while history is None or (history.running and history.interrupt_data is None):
            now = anyio.current_time()
            if deadline is not None and now >= deadline and history is not None:
                raise WorkflowPollTimeoutError(
                    f"workflow run {execute_id} was still {history.execute_status} after "
                    f"{timeout} s",
                    history=history,
                    logid=history.logid,
                )
            wait = poll_interval if deadline is None else min(poll_interval, deadline - now)
            await anyio.sleep(max(0.0, wait))
            history = await self.runs.retrieve(
                workflow_id=request.workflow_id, execute_id=execute_id, **options
            )
        if history.execute_status == WorkflowRunStatus.FAIL:
            raise WorkflowRunFailedError(history, logid=history.logid)
        return history

    # -- streams -----------------------------------------------------------------------------

    def stream(
        self, *, check_ids: bool = True, **params: Unpack[WorkflowRunCallParams]
    ) -> WorkflowStream:
        """Run a workflow with streaming (``POST /v1/workflow/stream_run``).

        Takes the run's fields (:class:`~coze_async.requests.WorkflowRunParams`) and the
        per-call options. Nothing is sent until ``async with`` / ``async for``; arguments
        are checked now. ``check_ids=False`` turns off event-id gap detection
        (:class:`~coze_async.errors.StreamGapError`).
        """
        request, options = split(params, WorkflowRunRequest, method="stream")
        call = STREAM.call(options, json=request.to_body())
        return WorkflowStream(self._transport, call, check_ids=check_bool("check_ids", check_ids))

    def resume_stream(
        self,
        *,
        workflow_id: str,
        event_id: str,
        interrupt_type: int,
        resume_data: str,
        check_ids: bool = True,
        **options: Unpack[CallOptions],
    ) -> WorkflowStream:
        """Answer an interrupt and stream the rest of the run (``/v1/workflow/stream_resume``).

        ``event_id`` and ``interrupt_type`` come from the interrupt's ``interrupt_data``
        (``event_id`` and ``type``); ``resume_data`` is the answer (for an input node, JSON
        serialized as a string). Event ids restart at 0. A run can be resumed at most 3
        times; resuming a finished run raises ``ConflictError`` (4315).
        """
        body = _resume_body(workflow_id, event_id, interrupt_type, resume_data)
        call = RESUME_STREAM.call(options, json=body)
        return WorkflowStream(self._transport, call, check_ids=check_bool("check_ids", check_ids))

    async def resume(
        self,
        *,
        workflow_id: str,
        event_id: str,
        interrupt_type: int,
        resume_data: str,
        **options: Unpack[CallOptions],
    ) -> WorkflowRunResult:
        """Answer an interrupt without streaming (``POST /v1/workflows/resume``).

        Takes the same arguments as :meth:`resume_stream` (but ``check_ids``) and returns the
        same :class:`~coze_async.models.workflow.WorkflowRunResult` as :meth:`run` (possibly
        interrupted again).
        """
        body = _resume_body(workflow_id, event_id, interrupt_type, resume_data)
        return await self._send(RESUME, options, json=body)

    # -- output nodes ------------------------------------------------------------------------

    async def node_output(
        self,
        *,
        workflow_id: str,
        execute_id: str,
        node_execute_uuid: str,
        **options: Unpack[CallOptions],
    ) -> WorkflowNodeOutput:
        """An output node's execution result (``is_finish``, ``node_output``).

        ``node_execute_uuid`` comes from the run history's ``node_execute_status``. Only
        output nodes have one (not the End node); Coze keeps them 24 hours.
        """
        ids = {
            "workflow_id": workflow_id,
            "execute_id": execute_id,
            "node_execute_uuid": node_execute_uuid,
        }
        return await self._send(NODE_OUTPUT, options, ids=ids)

    # -- chatflow ----------------------------------------------------------------------------

    def chat(self, **params: Unpack[ChatflowCallParams]) -> ChatStream:
        """Talk to a chatflow (``POST /v1/workflows/chat``); returns a chat stream.

        Takes the turn's fields (:class:`~coze_async.requests.ChatflowParams`) and the
        per-call options. The events are the chat family (``ChatCreated``, ``MessageDelta``,
        ...); the final ``Done`` carries the run's ``debug_url``
        (``stream.snapshot.debug_url``). Exactly one of ``app_id`` (low-code app) or
        ``bot_id`` is required; ``messages`` are text only, at most 50, the last one the
        user's query. A ``ChatRequiresAction`` means a Q&A / input node waits: call ``chat``
        again with the answer as the last message. ``stream.cancel()`` (and a relay whose
        client went away) cancels the chatflow's chat at Coze (``POST /v3/chat/cancel``).
        """
        request, options = split(params, ChatflowRequest, method="chat")
        call = CHAT.call(options, json=request.to_body())
        return ChatStream(self._transport, call, canceller=self._chat._cancel_for_stream)
