"""The :class:`Emulator`: a real aiohttp.web server speaking Coze's wire protocol.

Request pipeline (one middleware, in this order):

1. a fresh ``X-Tt-Logid`` is minted; every response, JSON or SSE or 404, carries it;
2. the token is looked up, and only a request that passes bearer auth (or a route exempt
   from it) has its body read, up to Coze's limit for the route (:func:`body_limit`): a
   client without a valid token cannot make the emulator read, let alone keep, a body;
3. the request is recorded in :attr:`Emulator.requests` (before anything can reject it;
   ``body`` is empty when it was not read);
4. the fault header is parsed (unknown names -> HTTP 400) and ``times=K`` is applied;
5. request-level faults answer instead of the route (every answer, the quota count
   included, is decided on arrival; ``slow-headers`` only delays sending it);
6. bearer auth for every route not registered with ``auth=False``: the token names the
   user (:attr:`RequestContext.user_id`), an unknown one answers 4100 (as does an OAuth
   token from :attr:`Emulator.oauth` once it has expired or been revoked);
7. a body over the limit answers HTTP 413 with code 4000, as soon as the limit is passed
   (at once when ``Content-Length`` declares it), without the rest being read;
8. the route handler; an :class:`~coze_async.emulator.wire.ApiError` becomes an envelope.

Stream-level faults are applied by :meth:`Emulator.stream_turn`, which every SSE route uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Coroutine, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .bots import (
    AUDIO_BOT_ID,
    ECHO_BOT_ID,
    TOOL_BOT_ID,
    AudioBot,
    Bot,
    EchoBot,
    ScriptedBot,
    ToolBot,
    Turn,
)
from .chat import ChatAPI
from .conversations import ConversationsAPI
from .faults import FaultCounter, FaultSpec, FaultSpecError, parse_faults
from .files import FilesAPI
from .host import Handler, RecordedRequest, RequestContext
from .oauth import OAuthServer
from .quota import QuotaEnforcer
from .state import EmulatorState, new_id
from .wire import (
    DEFAULT_TOKEN,
    FAULT_HEADER,
    LOGID_HEADER,
    REPEAT_HEADER,
    ApiError,
    bot_not_found,
    envelope_error,
    envelope_ok,
    error_message,
    new_logid,
)
from .workflows import ScriptedWorkflow, Workflow, WorkflowAPI, WorkflowRegistry

__all__ = ["Emulator", "Handler", "RecordedRequest", "RequestContext"]


_HTML_502: Final = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
# aiohttp >= 3.14 wants typed request keys; older versions (the floor is 3.9) only take str.
_CTX_KEY: Any = (
    web.RequestKey("coze_emulator", object) if hasattr(web, "RequestKey") else "coze_emulator"
)
# Upper bound on how long drop-after waits for written events to leave the socket buffer.
_FLUSH_TIMEOUT: Final = 1.0
#: Coze's upload limit (coze-api.md §5), the default of ``max_upload_bytes``.
MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024
#: Coze's request size limit for most APIs (coze-api.md §3.4).
MAX_BODY_BYTES: Final = 15 * 1024 * 1024
#: Coze's request size limit for workflow APIs (``/v1/workflow/*``, ``/v1/workflows/*``).
MAX_WORKFLOW_BODY_BYTES: Final = 20 * 1024 * 1024
# Room for the multipart framing around an upload's file (boundaries, part headers, other
# form fields), so a declared Content-Length over limit + this is surely over the limit.
_MULTIPART_SLACK: Final = 1024 * 1024
_READ_CHUNK: Final = 64 * 1024


def body_limit(path: str) -> int:
    """Coze's request size limit for ``path``: 20 MB for workflow APIs, else 15 MB."""
    if path.startswith(("/v1/workflow/", "/v1/workflows/")):
        return MAX_WORKFLOW_BODY_BYTES
    return MAX_BODY_BYTES


class _TooLarge(Exception):
    """A request body passed its limit (raised before the rest of it is read)."""


class Emulator:
    """A local Coze OpenAPI server for tests, benchmarks and offline development.

    Use it as an async context manager (or call :meth:`start` / :meth:`close`)::

        async with Emulator() as emu:
            client = AsyncCoze(token=emu.token, base_url=emu.url)

    It binds ``host``:``port`` (port 0 picks a free port), accepts ``Authorization: Bearer
    <token>``, sleeps ``event_delay`` seconds between SSE events, and completes non-stream
    chats ``chat_duration`` seconds after they are created.

    Every token is a different user: ``tokens=`` (or :meth:`add_token`) adds users next to
    ``token``, and each sees only the conversations, messages and files it created, as at
    Coze. Uploads over ``max_upload_bytes`` answer 4302.

    ``plan=`` enforces quotas; a rejection answers HTTP ``rate_limit_status`` with code
    ``rate_limit_code`` (200 and 4009 by default: Coze's real status and code are
    unconfirmed, see :mod:`coze_async.emulator.quota`).

    Chats name a registered bot (:data:`ECHO_BOT_ID`, :data:`TOOL_BOT_ID`,
    :data:`AUDIO_BOT_ID`, or one added with :meth:`add_bot`); any other ``bot_id`` answers
    4200 "Requested resource bot_id=… does not exist", as Coze does. ``accept_any_bot=True``
    lets the echo bot answer every unknown id instead (a convenience, not Coze's behaviour).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        event_delay: float = 0.0,
        chat_duration: float = 0.05,
        plan: Any = None,
        rate_limit_status: int = 200,
        rate_limit_code: int = 4009,
        tokens: Sequence[str] = (),
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        user_level: str | None = None,
        workflow_duration: float = 0.05,
        coalesce: bool = False,
        accept_any_bot: bool = False,
    ) -> None:
        #: Quota enforcement (``plan=``, e.g. ``coze_async.Plan.PERSONAL_FREE``), or None.
        self.quota = QuotaEnforcer(plan) if plan is not None else None
        self.rate_limit_status = rate_limit_status
        self.rate_limit_code = rate_limit_code
        self.host = host
        self.port = port
        self.token = token
        self.event_delay = event_delay
        self.chat_duration = chat_duration
        #: Conversations, chats and messages.
        self.state = EmulatorState()
        #: Every request received, in arrival order (unless ``record_requests`` is false).
        self.requests: list[RecordedRequest] = []
        #: Keep :attr:`requests`; a long load test turns this off so memory stays flat.
        self.record_requests = True
        #: Requests received, recorded or not.
        self.requests_seen = 0
        #: SSE frames written on the stream hot path (counted per response, not per write).
        self.frames_written = 0
        #: With ``event_delay`` 0, hand the socket up to 64 KiB of events per write (each
        #: event still its own HTTP chunk); see :meth:`_write_coalesced`. For load tests.
        self.coalesce = coalesce
        #: ``(conversation_id, chat_id)`` of every ``/v3/chat/cancel`` request handled.
        self.cancels: list[tuple[str, str]] = []
        #: Counts ``times=K`` fault budgets; ``emu.fault_counter.reset()`` starts them over.
        self.fault_counter = FaultCounter()
        #: Let the echo bot answer any unknown ``bot_id`` (else 4200, as at Coze).
        self.accept_any_bot = accept_any_bot
        self._default_bot: Bot = EchoBot()
        self._bots: dict[str, Bot] = {
            ECHO_BOT_ID: self._default_bot,
            TOOL_BOT_ID: ToolBot(),
            AUDIO_BOT_ID: AudioBot(),
        }
        self._auth_exempt: set[Handler] = set()
        #: ``Authorization`` header value -> user id.
        self._users: dict[str, str] = {}
        self.add_token(token)
        for extra in tokens:
            self.add_token(extra)
        #: OAuth token endpoints and the tokens they issue (see :mod:`.oauth`).
        self.oauth = OAuthServer(self)
        #: Largest upload accepted (Coze: 512 MB); larger ones answer 4302.
        self.max_upload_bytes = max_upload_bytes
        #: The account's plan as Coze names it (``free``, ``pro_personal``, ``team``,
        #: ``enterprise``); only decides whether ``is_async`` workflow runs are allowed
        #: ("free" answers 6003). Quotas are ``plan=``'s business. Not given: derived from
        #: ``plan`` (a free plan gives "free"), else "pro_personal".
        if user_level is None:
            plan_name = str(getattr(plan, "name", "")) if plan is not None else ""
            user_level = "free" if "free" in plan_name else "pro_personal"
        self.user_level = user_level
        #: Seconds an async workflow run stays ``Running`` before it finishes.
        self.workflow_duration = workflow_duration
        #: Workflows by id, and their runs (see :mod:`coze_async.emulator.workflows`).
        self.workflows = WorkflowRegistry()
        # Handlers that read the request body themselves (streamed uploads).
        self._raw_body: set[Handler] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[int, web.BaseRequest] = {}  # keyed by id(): requests are unhashable
        self._open_streams = 0
        self._idle: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing = False

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind the socket and start serving; :attr:`url` is valid afterwards."""
        if self._runner is not None:
            raise RuntimeError("Emulator already started")
        self._closing = False
        # handler_cancellation: a client that disconnects mid-stream cancels its handler at
        # once, even while it sleeps between events, so open_streams drops promptly.
        runner = web.AppRunner(
            self.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving: abort in-flight requests, cancel background work, release the port.

        Safe to call twice and with streams in flight (their clients see a broken connection).
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Aborting the transports cancels the handlers (handler_cancellation), so shutdown
        # does not wait for slow streams or slow-headers sleeps.
        for request in list(self._inflight.values()):
            if request.transport is not None:
                request.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        await runner.cleanup()
        self._url = None

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:54321``."""
        if self._url is None:
            raise RuntimeError("Emulator is not running; use 'async with Emulator()' or start()")
        return self._url

    @property
    def open_streams(self) -> int:
        """Number of SSE responses currently being written."""
        return self._open_streams

    async def wait_idle(self) -> None:
        """Return once no SSE response is being written (e.g. a disconnect was noticed)."""
        if self._open_streams == 0:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        await self._idle.wait()

    async def wait_background(self) -> None:
        """Return once every background chat completion started so far has run.

        Lets tests observe a non-stream chat's final state without polling or sleeping.
        """
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ----------------------------------------------------------------- bots

    def add_bot(self, bot_id: str, bot: Bot) -> None:
        """Register ``bot`` to answer chats addressed to ``bot_id``."""
        self._bots[bot_id] = bot

    def add_scripted_bot(self, bot_id: str, frames: Sequence[bytes]) -> None:
        """Register a bot whose stream body is exactly ``frames``, one write per frame.

        Nothing is added (no ``done``); build frames with
        :func:`~coze_async.emulator.sse_frame` or write raw bytes for odd framing.
        """
        self.add_bot(bot_id, ScriptedBot(frames))

    def bot_for(self, bot_id: str) -> Bot:
        """The bot answering ``bot_id``: a registered one; else the echo bot when
        ``accept_any_bot`` is set, or :class:`~coze_async.emulator.wire.ApiError` 4200."""
        bot = self._bots.get(bot_id)
        if bot is not None:
            return bot
        if self.accept_any_bot:
            return self._default_bot
        raise ApiError(4200, bot_not_found(bot_id))

    # ----------------------------------------------------------------- workflows

    def add_workflow(self, workflow_id: str, workflow: Workflow) -> None:
        """Register ``workflow`` (see :mod:`coze_async.emulator.workflows`) under its id."""
        self.workflows.add(workflow_id, workflow)

    def add_scripted_workflow(self, workflow_id: str, frames: Sequence[bytes]) -> None:
        """Register a workflow whose stream body is exactly ``frames`` (ids and all)."""
        self.workflows.add(workflow_id, ScriptedWorkflow(frames))

    # ----------------------------------------------------------------- users

    def add_token(self, token: str | None = None) -> str:
        """Accept ``token`` (a fresh random one if None) as a new user; returns the token."""
        if token is None:
            token = f"emu_{secrets.token_hex(12)}"
        if not token:
            raise ValueError("token must not be empty")
        self._users.setdefault(f"Bearer {token}", new_id())
        return token

    def user_id_for(self, token: str) -> str:
        """The user id (``creator_id``) that ``token`` acts as; KeyError if not accepted."""
        return self._users[f"Bearer {token}"]

    # ----------------------------------------------------------------- app

    def make_app(self) -> web.Application:
        """Build the aiohttp application (routes + middleware) bound to this emulator."""
        # The middleware reads bodies itself, within each route's limit (body_limit); uploads
        # are streamed by their handler and never read whole. client_max_size only guards
        # a handler that would call request.read() itself.
        app = web.Application(
            middlewares=[self._make_middleware()], client_max_size=MAX_WORKFLOW_BODY_BYTES
        )
        app.on_response_prepare.append(_ensure_logid)
        for method, path, handler, auth in ChatAPI(self).routes():
            self.add_route(app, method, path, handler, auth=auth)
        for method, path, handler, auth in ConversationsAPI(self).routes():
            self.add_route(app, method, path, handler, auth=auth)
        files = FilesAPI(self)
        for method, path, handler, auth in files.routes():
            self.add_route(app, method, path, handler, auth=auth)
        self._raw_body.add(files.upload)
        for method, path, handler, auth in WorkflowAPI(self, self.workflows).routes():
            self.add_route(app, method, path, handler, auth=auth)
        for method, path, handler, auth in self.oauth.routes():
            self.add_route(app, method, path, handler, auth=auth)
        self.add_route(app, "GET", "/_emulator/quota", self._quota_report, auth=False)
        self.add_route(app, "GET", "/_emulator/stats", self._stats_report, auth=False)
        return app

    def add_route(
        self, app: web.Application, method: str, path: str, handler: Handler, *, auth: bool = True
    ) -> None:
        """Register a route; ``auth=False`` exempts it from bearer auth (e.g. OAuth token)."""
        app.router.add_route(method, path, handler)
        if not auth:
            self._auth_exempt.add(handler)

    def _make_middleware(self) -> Any:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            logid = new_logid()
            try:
                return await self._dispatch(request, handler, logid)
            except web.HTTPException as exc:
                # 404/405 from routing: still stamp the logid, like every Coze response.
                exc.headers[LOGID_HEADER] = logid
                raise

        return middleware

    async def _dispatch(
        self, request: web.Request, handler: Handler, logid: str
    ) -> web.StreamResponse:
        routed = request.match_info.http_exception is None
        needs_auth = routed and request.match_info.handler not in self._auth_exempt
        # The token is checked before any byte of the body is read: a client that cannot
        # authenticate must not be able to make the emulator buffer (or record) anything.
        user_id, via_oauth = self._user_for(request) if needs_auth else (None, False)
        too_large: int | None = None
        body = b""
        # A streamed upload is read by its handler, chunk by chunk: never buffer it here.
        if routed and (user_id is not None or not needs_auth):
            if request.match_info.handler in self._raw_body:
                declared = request.content_length
                if declared is not None and declared > self.max_upload_bytes + _MULTIPART_SLACK:
                    too_large = self.max_upload_bytes
            else:
                try:
                    body = await _read_body(request, body_limit(request.path))
                except _TooLarge:
                    too_large = body_limit(request.path)
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            raw_query=request.query_string,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            json=_parse_json(body),
            body=body,
            at=time.monotonic(),
        )
        self.requests_seen += 1
        if self.record_requests:
            self.requests.append(recorded)
        self._inflight[id(request)] = request
        try:
            header = request.headers.get(FAULT_HEADER)
            try:
                faults = parse_faults(header)
                repeat = _parse_repeat(request.headers.get(REPEAT_HEADER))
            except FaultSpecError as exc:
                return _plain(400, f"coze emulator: {exc}\n", logid)
            if header is not None and faults.times is not None:
                faults = self.fault_counter.admit(header, faults)
            ctx = RequestContext(
                logid=logid, faults=faults, recorded=recorded, repeat=repeat, oauth=via_oauth
            )
            request[_CTX_KEY] = ctx
            answer = self._answer_before_route(
                request, ctx, needs_auth=needs_auth, user_id=user_id, too_large=too_large
            )
            # The answer (and the quota's count) is decided at arrival, like Coze; a
            # slow-headers fault only delays when it is sent. Deciding after the sleep would
            # judge this call against calls that arrived after it.
            if faults.slow_headers:
                await asyncio.sleep(faults.slow_headers)
            if answer is not None:
                return answer
            try:
                return await handler(request)
            except ApiError as exc:
                return self.error(request, exc.code, exc.msg)
        finally:
            self._inflight.pop(id(request), None)

    def _answer_before_route(
        self,
        request: web.Request,
        ctx: RequestContext,
        *,
        needs_auth: bool,
        user_id: str | None,
        too_large: int | None,
    ) -> web.StreamResponse | None:
        """What answers instead of the route (a fault, 4100, a body too large, a quota
        rejection), or None: the route runs. Only a call the route would serve is counted."""
        faults = ctx.faults
        if faults.html_502:
            resp = web.Response(status=502, body=_HTML_502, content_type="text/html")
            resp.headers[LOGID_HEADER] = ctx.logid
            return resp
        if faults.http_status is not None:
            return _plain(faults.http_status, None, ctx.logid)
        if faults.json_error is not None:
            return self.error(request, faults.json_error)
        if needs_auth:
            if user_id is None:
                return self.error(request, 4100)
            ctx.user_id = user_id
        if too_large is not None:
            return self._too_large(request, too_large)
        if self.quota is not None:
            return self._check_quota(request, ctx.recorded.at)
        return None

    def _user_for(self, request: web.Request) -> tuple[str | None, bool]:
        """The user the request's bearer token belongs to, or None (answer 4100), and
        whether the token is one :attr:`oauth` issued."""
        authorization = request.headers.get("Authorization", "")
        user_id = self._users.get(authorization)
        if user_id is not None:
            return user_id, False
        # An OAuth-issued token: accepted until it expires or is revoked.
        user_id = self.oauth.user_for(authorization)
        return user_id, user_id is not None

    def _too_large(self, request: web.Request, limit: int) -> web.Response:
        """The answer to a body over ``limit``; the rest of it is never read.

        Uploads answer 4302 (Coze's documented "file too large" code). Other APIs: Coze
        documents the 15 MB / 20 MB limits but not the answer; like the HTTP gateway in
        front of an API, the emulator answers HTTP 413, with the usual envelope and code
        4000 (invalid request) so that clients keying off ``code`` see a request error too.
        """
        if request.match_info.handler in self._raw_body:
            return self.error(
                request, 4302, f"The file exceeds the maximum allowed size ({limit} bytes)."
            )
        ctx = self.context(request)
        mb = limit // (1024 * 1024)
        resp = envelope_error(
            ctx.logid,
            4000,
            f"Invalid request: the request body exceeds the {mb} MB limit of this API.",
            status=413,
        )
        resp.headers[LOGID_HEADER] = ctx.logid
        return resp

    def _check_quota(self, request: web.Request, now: float) -> web.Response | None:
        assert self.quota is not None
        token = request.headers.get("Authorization", "")
        full = self.quota.admit(token, request.method, request.path, now)
        if full is None:
            return None
        logid = self.context(request).logid
        resp = envelope_error(
            logid,
            self.rate_limit_code,
            f"Request rate exceeded the {full} limit of your plan; retry later.",
            status=self.rate_limit_status,
        )
        resp.headers[LOGID_HEADER] = logid
        return resp

    async def _quota_report(self, request: web.Request) -> web.Response:
        report = self.quota.report() if self.quota is not None else {"plan": None, "buckets": {}}
        return web.json_response(report)

    async def _stats_report(self, request: web.Request) -> web.Response:
        # For load benchmarks that run the emulator in its own process: its CPU time shows
        # whether the server, not the client under test, was the bottleneck.
        return web.json_response(
            {
                "cpu_seconds": time.process_time(),
                "requests": self.requests_seen,
                "open_streams": self._open_streams,
                "frames_written": self.frames_written,
            }
        )

    # ----------------------------------------------------------------- helpers for routes

    @staticmethod
    def context(request: web.Request) -> RequestContext:
        """The :class:`RequestContext` the middleware attached to ``request``."""
        return cast(RequestContext, request[_CTX_KEY])

    def ok(self, request: web.Request, data: Any = None, *, has_data: bool = True) -> web.Response:
        """Success envelope carrying this request's logid (header and ``detail.logid``)."""
        logid = self.context(request).logid
        resp = envelope_ok(logid, data, has_data=has_data)
        resp.headers[LOGID_HEADER] = logid
        return resp

    def error(self, request: web.Request, code: int, msg: str | None = None) -> web.Response:
        """Error envelope; HTTP 200 unless the request's ``status=`` fault says otherwise."""
        ctx = self.context(request)
        status = ctx.faults.status if ctx.faults.status is not None else 200
        resp = envelope_error(ctx.logid, code, msg, status=status)
        resp.headers[LOGID_HEADER] = ctx.logid
        return resp

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a background task owned by the emulator (cancelled on close)."""
        if self._closing:
            coro.close()  # shutting down: never start work that close() would not see
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete_later(self, turn: Turn) -> None:
        """Settle a non-stream turn after ``chat_duration`` seconds, in the background."""
        self.spawn(self._complete_later(turn))

    async def _complete_later(self, turn: Turn) -> None:
        await asyncio.sleep(self.chat_duration)
        turn.settle()

    async def stream_turn(
        self, request: web.Request, turn: Turn, *, delay: float | None = None
    ) -> web.StreamResponse:
        """Write ``turn``'s frames as an SSE response, applying this request's stream faults.

        One ``write`` per frame. However the stream ends (done, fault, client gone, server
        closing) the turn is settled and :attr:`open_streams` decremented. ``delay`` is this
        stream's own pace between events (e.g. a slow workflow's heartbeats); the ``latency``
        fault overrides it, and it defaults to ``event_delay``.
        """
        ctx = self.context(request)
        faults = ctx.faults
        if faults.latency is not None:
            delay = faults.latency
        elif delay is None:
            delay = self.event_delay
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                LOGID_HEADER: ctx.logid,
            }
        )
        self._stream_opened()
        sent = 0
        try:
            await resp.prepare(request)
            if faults.has_stream_faults:
                await self._write_faulty(request, resp, turn, faults, delay)
            elif self.coalesce and delay <= 0:
                sent = await self._write_coalesced(request, resp, turn)
            else:
                # Hot path (load benchmarks): one write per pre-built frame, nothing else.
                for frame in turn:
                    if delay > 0 and sent:
                        await asyncio.sleep(delay)
                    await resp.write(frame)
                    sent += 1
                await resp.write_eof()
        except ConnectionError:
            pass  # the client went away; nothing to report to anyone
        finally:
            self.frames_written += sent
            turn.settle()
            self._stream_closed()
        return resp

    async def stream_frames(self, request: web.Request, frames: Sequence[bytes]) -> web.Response:
        """An SSE response (HTTP 200, ``text/event-stream``) whose body is exactly ``frames``.

        For answers Coze sends as events of their own rather than as a chat's stream, e.g.
        the ``error`` event that refuses a streamed chat in an occupied conversation (4016).
        """
        logid = self.context(request).logid
        return web.Response(
            body=b"".join(frames),
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                LOGID_HEADER: logid,
            },
        )

    async def _write_coalesced(
        self, request: web.Request, resp: web.StreamResponse, turn: Turn
    ) -> int:
        """Every event its own HTTP chunk, handed to the socket up to 64 KiB at a time.

        Per-event writes cost a send() each, which made the emulator, not the client under
        test, the bottleneck of load benchmarks. A real server that produces events faster
        than the network drains them has the same effect (TCP coalesces its writes), while
        the client still parses one HTTP chunk per event, as from Coze. Returns the number
        of frames written.
        """
        frames = iter(turn)
        first = next(frames, None)
        if first is None:
            await resp.write_eof()
            return 0
        # Through aiohttp: this flushes the headers with the first chunk.
        await resp.write(first)
        writer = await resp.prepare(request)  # already prepared: this returns its writer
        transport = request.transport
        sent = 1
        batch: list[bytes] = []
        size = 0
        for frame in frames:
            batch += (b"%x\r\n" % len(frame), frame, b"\r\n")
            size += len(frame)
            sent += 1
            if size >= 0x10000:
                if transport is None or transport.is_closing():
                    return sent
                transport.write(b"".join(batch))
                batch.clear()
                size = 0
                if writer:
                    await writer.drain()  # waits only while the socket is above high water
        if batch and transport is not None and not transport.is_closing():
            transport.write(b"".join(batch))
        await resp.write_eof()
        return sent

    async def _write_faulty(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        turn: Turn,
        faults: FaultSpec,
        delay: float,
    ) -> None:
        """The stream loop with drop/eof/malformed/error faults; N counts events written."""
        frames = iter(turn)
        sent = 0
        while True:
            if faults.drop_after is not None and sent >= faults.drop_after:
                await _abort(request)
                return
            if faults.eof_after is not None and sent >= faults.eof_after:
                break
            # Check error-at before pulling the next frame so the turn never commits an
            # outcome (e.g. completed) that the error is about to contradict.
            frame = None
            if faults.error_at is None or sent < faults.error_at:
                frame = next(frames, None)
            if frame is None:
                if faults.error_at is not None:
                    code = faults.error_code if faults.error_code is not None else 5000
                    msg = error_message(code)
                    if sent and delay > 0:
                        await asyncio.sleep(delay)
                    await resp.write(turn.error_frame(code, msg))
                    turn.fail(code, msg)
                elif faults.drop_after is not None:
                    await _abort(request)  # drop-after beyond the last event
                    return
                break
            if sent and delay > 0:
                await asyncio.sleep(delay)
            if sent == faults.malformed_at:
                frame = _malform(frame)
            await resp.write(frame)
            sent += 1
        await resp.write_eof()

    def _stream_opened(self) -> None:
        self._open_streams += 1
        if self._idle is not None:
            self._idle.clear()

    def _stream_closed(self) -> None:
        self._open_streams -= 1
        if self._open_streams == 0 and self._idle is not None:
            self._idle.set()


async def _ensure_logid(request: web.Request, response: web.StreamResponse) -> None:
    # Safety net for responses built outside the middleware (e.g. aiohttp's own 500 page).
    if LOGID_HEADER not in response.headers:
        response.headers[LOGID_HEADER] = new_logid()


async def _read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, raising :class:`_TooLarge` as soon as it passes ``limit``.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a
    chunked body is read until it passes the limit, never further.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _TooLarge
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _parse_repeat(value: str | None) -> int:
    if value is None:
        return 1
    try:
        repeat = int(value)
    except ValueError:
        repeat = 0
    if repeat < 1:
        raise FaultSpecError(f"{REPEAT_HEADER} needs a positive integer, got {value!r}")
    return repeat


def _plain(status: int, text: str | None, logid: str) -> web.Response:
    if text is None:
        # http-status fault: a short body like a bare gateway would send (none where HTTP
        # forbids one).
        text = "" if status < 200 or status in (204, 304) else _status_line(status)
    resp = web.Response(status=status, text=text or None, content_type="text/plain")
    resp.headers[LOGID_HEADER] = logid
    return resp


def _status_line(status: int) -> str:
    with contextlib.suppress(ValueError):
        return f"{status} {HTTPStatus(status).phrase}\n"
    return f"{status}\n"


def _malform(frame: bytes) -> bytes:
    """Cut the frame's data line in half so it is not valid JSON (kept valid UTF-8)."""
    start = frame.find(b"data:")
    if start < 0:
        return frame
    start += 5
    end = frame.find(b"\n", start)
    if end < 0:
        end = len(frame)
    cut = start + max(1, (end - start) // 2)
    while cut > start and frame[cut] & 0xC0 == 0x80:
        cut -= 1  # never split a multi-byte UTF-8 character
    return frame[:cut] + frame[end:]


async def _abort(request: web.BaseRequest) -> None:
    """Reset the connection mid-body, after letting already-written events reach the client.

    ``transport.abort()`` discards unsent bytes, so wait (briefly) for the buffer to drain
    first; the client then sees N complete events followed by a broken chunked body.
    """
    transport = request.transport
    if transport is None:
        return
    deadline = time.monotonic() + _FLUSH_TIMEOUT
    # asyncio exposes no "buffer drained" event for a transport; on loopback the buffer is
    # almost always already empty, so a short bounded poll on this rare path is enough.
    while transport.get_write_buffer_size() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    transport.abort()
