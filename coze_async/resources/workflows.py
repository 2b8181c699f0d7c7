"""``coze.workflows``: workflow runs, streams, resumes, run history and chatflows (coze-api.md §4).

Every call here is a workflow API: its request body may be up to 20 MB (other APIs: 15 MB),
checked before anything is sent. Runs, streams, resumes and chatflows are not retried once
they may have reached Coze (a retried run would be a second, billed run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from .._validate import check_bool, check_json_object, check_str
from ..config import Timeouts
from ..errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    ResponseValidationError,
    WorkflowPollTimeoutError,
    WorkflowRunFailedError,
)
from ..models.chat import Message
from ..models.converter import structure
from ..models.workflow import (
    WorkflowNodeOutput,
    WorkflowRunHistory,
    WorkflowRunResult,
    WorkflowRunStatus,
    run_history_from_wire,
    run_result_from_wire,
)
from ..streaming import ChatStream
from ..transport import WORKFLOW_MAX_BODY, Call, Envelope, Transport
from ..workflow_stream import WorkflowStream
from ._base import (
    Resource,
    check_messages,
    check_str_map,
    path,
    poll_deadline,
    require_id,
)

__all__ = ["WorkflowRunsResource", "WorkflowsResource"]

#: Why 6003 happened, in words a user can act on.
_ASYNC_PLAN_HINT = (
    "is_async runs (run_async / run_and_wait) are a paid-plan feature at Coze (Coze "
    "Professional); on the free plan use run() or stream() instead"
)


def _parameters(value: Mapping[str, Any] | str | None) -> dict[str, Any] | str | None:
    # Coze's table says "JSON string" while every example and SDK sends an object: accept
    # both, send what was given.
    if value is None:
        return None
    if isinstance(value, str):
        return check_str("parameters", value)
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            f"parameters must be a mapping (the start node's inputs), got {type(value).__name__}"
        )
    return check_json_object("parameters", value)


class WorkflowRunsResource(Resource):
    """``coze.workflows.runs``: a run's history (status, output, errors, nodes)."""

    async def retrieve(
        self,
        *,
        workflow_id: str,
        execute_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowRunHistory:
        """Get a run's history (``GET /v1/workflows/{id}/run_histories/{execute_id}``).

        Works for every run (sync, stream, async); an async run reports ``Running`` until it
        finishes with ``Success`` or ``Fail``. Unknown ids raise ``NotFoundError`` (4314).
        """
        env = await self._transport.request(
            self._call(
                "GET",
                path(
                    "/v1/workflows/{workflow_id}/run_histories/{execute_id}",
                    workflow_id=workflow_id,
                    execute_id=execute_id,
                ),
                endpoint="workflows.runs.retrieve",
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
                max_body=WORKFLOW_MAX_BODY,
            )
        )
        data = env.field("data")
        # Coze answers a list holding exactly one history; accept a bare object too.
        if isinstance(data, list):
            if not data:
                raise ResponseValidationError(
                    "expected one run history under data, got an empty list",
                    logid=env.logid,
                    body=env.body,
                )
            data = data[0]
        return run_history_from_wire(data, logid=env.logid)


class WorkflowsResource(Resource):
    """The workflow API: run, run_async, stream, resume, history, node output, chatflow."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.runs = WorkflowRunsResource(transport)
        """Run histories (:class:`WorkflowRunsResource`)."""

    # -- building ----------------------------------------------------------------------------

    def _run_body(
        self,
        *,
        workflow_id: str,
        parameters: Mapping[str, Any] | str | None,
        bot_id: str | None,
        app_id: str | None,
        ext: Mapping[str, str] | None,
        workflow_version: str | None,
        connector_id: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow_id": require_id("workflow_id", workflow_id)}
        if bot_id is not None and app_id is not None:
            raise InvalidArgumentError(
                "give bot_id= or app_id=, not both (Coze answers 4000 when both are set)"
            )
        params = _parameters(parameters)
        if params is not None:
            body["parameters"] = params
        if bot_id is not None:
            body["bot_id"] = require_id("bot_id", bot_id)
        if app_id is not None:
            body["app_id"] = require_id("app_id", app_id)
        checked_ext = check_str_map("ext", ext)
        if checked_ext is not None:
            body["ext"] = checked_ext
        if workflow_version is not None:
            body["workflow_version"] = require_id("workflow_version", workflow_version)
        if connector_id is not None:
            body["connector_id"] = require_id("connector_id", connector_id)
        return body

    def _workflow_call(
        self,
        path: str,
        endpoint: str,
        body: dict[str, Any],
        *,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, str] | None,
        extra_body: Mapping[str, Any] | None,
        timeouts: Timeouts | None,
    ) -> Call:
        return self._call(
            "POST",
            path,
            endpoint=endpoint,
            json=body,
            idempotent=False,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
            max_body=WORKFLOW_MAX_BODY,
        )

    @staticmethod
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

    def _result(self, env: Envelope) -> WorkflowRunResult:
        return self._stamped(run_result_from_wire(env.body, logid=env.logid), env)

    # -- synchronous and asynchronous runs ---------------------------------------------------

    async def run(
        self,
        *,
        workflow_id: str,
        parameters: Mapping[str, Any] | str | None = None,
        bot_id: str | None = None,
        app_id: str | None = None,
        ext: Mapping[str, str] | None = None,
        workflow_version: str | None = None,
        connector_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowRunResult:
        """Run a published workflow and wait for its result (``POST /v1/workflow/run``).

        Returns the End node's output (``result.data``, and ``result.parsed`` when it is
        JSON), ``debug_url``, ``usage`` and ``execute_id``; ``result.interrupt_data`` is set
        when a Q&A / input node stopped the run (continue with :meth:`resume`). Coze drops
        a sync run that produces nothing for 90 s: use :meth:`stream` or :meth:`run_async`
        for long workflows. ``bot_id`` and ``app_id`` together raise
        ``InvalidArgumentError`` before anything is sent.
        """
        body = self._run_body(
            workflow_id=workflow_id,
            parameters=parameters,
            bot_id=bot_id,
            app_id=app_id,
            ext=ext,
            workflow_version=workflow_version,
            connector_id=connector_id,
        )
        body["is_async"] = False
        call = self._workflow_call(
            "/v1/workflow/run",
            "workflows.run",
            body,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return self._result(await self._transport.request(call))

    async def run_async(
        self,
        *,
        workflow_id: str,
        parameters: Mapping[str, Any] | str | None = None,
        bot_id: str | None = None,
        app_id: str | None = None,
        ext: Mapping[str, str] | None = None,
        workflow_version: str | None = None,
        connector_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> str:
        """Start a run in the background (``is_async=true``) and return its ``execute_id``.

        Follow it with ``coze.workflows.runs.retrieve(workflow_id=..., execute_id=...)`` or
        use :meth:`run_and_wait`. Async runs are a paid-plan feature: on the free plan Coze
        answers 6003, raised as ``PermissionDeniedError`` with a hint saying so.
        """
        body = self._run_body(
            workflow_id=workflow_id,
            parameters=parameters,
            bot_id=bot_id,
            app_id=app_id,
            ext=ext,
            workflow_version=workflow_version,
            connector_id=connector_id,
        )
        body["is_async"] = True
        call = self._workflow_call(
            "/v1/workflow/run",
            "workflows.run_async",
            body,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        try:
            env = await self._transport.request(call)
        except PermissionDeniedError as exc:
            if exc.code != 6003:
                raise
            raise PermissionDeniedError(
                exc.msg,
                code=exc.code,
                logid=exc.logid,
                http_status=exc.http_status,
                debug_url=exc.debug_url,
                body=exc.body,
                hint=_ASYNC_PLAN_HINT,
            ) from exc
        result = self._result(env)
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
        workflow_id: str,
        parameters: Mapping[str, Any] | str | None = None,
        bot_id: str | None = None,
        app_id: str | None = None,
        ext: Mapping[str, str] | None = None,
        workflow_version: str | None = None,
        connector_id: str | None = None,
        poll_interval: float = 1.0,
        timeout: float | None = 600.0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> WorkflowRunHistory:
        """Start an async run and poll its history until it leaves ``Running``.

        * ``Success`` (or a status this SDK does not know) -> the history;
        * still ``Running`` but stopped at a Q&A / input node (``interrupt_data`` set) -> the
          history, since waiting longer cannot help;
        * ``Fail`` -> :class:`~coze_async.errors.WorkflowRunFailedError` with the history;
        * past ``timeout`` seconds -> :class:`~coze_async.errors.WorkflowPollTimeoutError`
          with the last history (the run goes on at Coze: runs cannot be cancelled).
        """
        deadline = poll_deadline(poll_interval, timeout)
        execute_id = await self.run_async(
            workflow_id=workflow_id,
            parameters=parameters,
            bot_id=bot_id,
            app_id=app_id,
            ext=ext,
            workflow_version=workflow_version,
            connector_id=connector_id,
            extra_headers=extra_headers,
        )
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
                workflow_id=workflow_id, execute_id=execute_id, extra_headers=extra_headers
            )
        if history.execute_status == WorkflowRunStatus.FAIL:
            raise WorkflowRunFailedError(history, logid=history.logid)
        return history

    # -- streams -----------------------------------------------------------------------------

    def stream(
        self,
        *,
        workflow_id: str,
        parameters: Mapping[str, Any] | str | None = None,
        bot_id: str | None = None,
        app_id: str | None = None,
        ext: Mapping[str, str] | None = None,
        workflow_version: str | None = None,
        connector_id: str | None = None,
        check_ids: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowStream:
        """Run a workflow with streaming (``POST /v1/workflow/stream_run``).

        Nothing is sent until ``async with`` / ``async for``; arguments are checked now.
        ``check_ids=False`` turns off event-id gap detection
        (:class:`~coze_async.errors.StreamGapError`).
        """
        body = self._run_body(
            workflow_id=workflow_id,
            parameters=parameters,
            bot_id=bot_id,
            app_id=app_id,
            ext=ext,
            workflow_version=workflow_version,
            connector_id=connector_id,
        )
        call = self._workflow_call(
            "/v1/workflow/stream_run",
            "workflows.stream",
            body,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return WorkflowStream(self._transport, call, check_ids=check_bool("check_ids", check_ids))

    def resume_stream(
        self,
        *,
        workflow_id: str,
        event_id: str,
        interrupt_type: int,
        resume_data: str,
        check_ids: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowStream:
        """Answer an interrupt and stream the rest of the run (``/v1/workflow/stream_resume``).

        ``event_id`` and ``interrupt_type`` come from the interrupt's ``interrupt_data``
        (``event_id`` and ``type``); ``resume_data`` is the answer (for an input node, JSON
        serialized as a string). Event ids restart at 0. A run can be resumed at most 3
        times; resuming a finished run raises ``ConflictError`` (4315).
        """
        call = self._workflow_call(
            "/v1/workflow/stream_resume",
            "workflows.resume_stream",
            self._resume_body(workflow_id, event_id, interrupt_type, resume_data),
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return WorkflowStream(self._transport, call, check_ids=check_bool("check_ids", check_ids))

    async def resume(
        self,
        *,
        workflow_id: str,
        event_id: str,
        interrupt_type: int,
        resume_data: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowRunResult:
        """Answer an interrupt without streaming (``POST /v1/workflows/resume``).

        Returns the same :class:`~coze_async.models.workflow.WorkflowRunResult` as
        :meth:`run` (possibly interrupted again).
        """
        call = self._workflow_call(
            "/v1/workflows/resume",
            "workflows.resume",
            self._resume_body(workflow_id, event_id, interrupt_type, resume_data),
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return self._result(await self._transport.request(call))

    # -- output nodes ------------------------------------------------------------------------

    async def node_output(
        self,
        *,
        workflow_id: str,
        execute_id: str,
        node_execute_uuid: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> WorkflowNodeOutput:
        """An output node's execution result (``is_finish``, ``node_output``).

        ``node_execute_uuid`` comes from the run history's ``node_execute_status``. Only
        output nodes have one (not the End node); Coze keeps them 24 hours.
        """
        env = await self._transport.request(
            self._call(
                "GET",
                path(
                    "/v1/workflows/{workflow_id}/run_histories/{execute_id}"
                    "/execute_nodes/{node_execute_uuid}",
                    workflow_id=workflow_id,
                    execute_id=execute_id,
                    node_execute_uuid=node_execute_uuid,
                ),
                endpoint="workflows.node_output",
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
                max_body=WORKFLOW_MAX_BODY,
            )
        )
        data = env.field("data")
        if isinstance(data, dict) and data.get("node_output") is None:
            data = {**data, "node_output": ""}
        output = structure(data, WorkflowNodeOutput, logid=env.logid, what="$.data")
        return self._stamped(output, env)

    # -- chatflow ----------------------------------------------------------------------------

    def chat(
        self,
        *,
        workflow_id: str,
        messages: Sequence[Message],
        parameters: Mapping[str, Any] | None = None,
        app_id: str | None = None,
        bot_id: str | None = None,
        conversation_id: str | None = None,
        ext: Mapping[str, str] | None = None,
        workflow_version: str | None = None,
        connector_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> ChatStream:
        """Talk to a chatflow (``POST /v1/workflows/chat``); returns a chat stream.

        The events are the chat family (``ChatCreated``, ``MessageDelta``, ...); the final
        ``Done`` carries the run's ``debug_url`` (``stream.snapshot.debug_url``). Exactly one
        of ``app_id`` (low-code app) or ``bot_id`` is required; ``messages`` are text only,
        at most 50, the last one the user's query. A ``ChatRequiresAction`` means a Q&A /
        input node waits: call ``chat`` again with the answer as the last message.
        """
        if (app_id is None) == (bot_id is None):
            raise InvalidArgumentError(
                "give exactly one of app_id= (the chatflow's app) or bot_id= (the bot it is "
                "bound to)"
            )
        body: dict[str, Any] = {
            "workflow_id": require_id("workflow_id", workflow_id),
            "additional_messages": check_messages(
                messages, limit=50, text_only=True, query_last=True
            ),
        }
        params = _parameters(parameters)
        if params is not None:
            body["parameters"] = params
        if app_id is not None:
            body["app_id"] = require_id("app_id", app_id)
        if bot_id is not None:
            body["bot_id"] = require_id("bot_id", bot_id)
        if conversation_id is not None:
            body["conversation_id"] = require_id("conversation_id", conversation_id)
        checked_ext = check_str_map("ext", ext)
        if checked_ext is not None:
            body["ext"] = checked_ext
        if workflow_version is not None:
            body["workflow_version"] = require_id("workflow_version", workflow_version)
        if connector_id is not None:
            body["connector_id"] = require_id("connector_id", connector_id)
        call = self._workflow_call(
            "/v1/workflows/chat",
            "workflows.chat",
            body,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return ChatStream(self._transport, call)
