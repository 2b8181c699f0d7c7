"""The load run: N concurrent workers making real calls until a deadline or a request count.

With no token and no ``base_url`` the runner starts the emulator in a child process (so the
client under test and the server each get a core), enforcing the chosen plan's quotas, and
points an :class:`~coze_async.AsyncCoze` at it; otherwise it targets the given host. Every
loop is bounded: workers stop taking requests at the deadline (or after ``requests``),
requests still waiting for quota are withdrawn unsent, and requests in flight get ``grace``
seconds to finish before they are cut off.
"""

from __future__ import annotations

import contextvars
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import anyio
import anyio.abc
import attrs

from ..client import AsyncCoze
from ..config import RetryPolicy, Timeouts
from ..errors import ChatFailedError, CozeError, InvalidArgumentError, RateLimitError
from ..models.chat import ChatStatus, Message
from ..ratelimit import Limiter, Plan, QuotaLimiter
from .stats import NOT_SENT, OK, RequestRecord, Summary, summarize

__all__ = ["PLANS", "SCENARIOS", "BenchConfig", "BenchResult", "Progress", "run_bench"]

#: Scenario names. ``mixed`` cycles through the other three, request by request.
SCENARIOS = ("chat-stream", "chat-poll", "workflow-stream", "mixed")
#: Plan names accepted by ``--plan``.
PLANS: dict[str, Plan] = {
    "personal-free": Plan.PERSONAL_FREE,
    "personal-pro": Plan.PERSONAL_PRO,
    "enterprise-standard": Plan.ENTERPRISE_STANDARD,
    "enterprise-flagship": Plan.ENTERPRISE_FLAGSHIP,
}
_MIXED = ("chat-stream", "chat-poll", "workflow-stream")
#: The emulator's echo bot and streaming workflow (kept literal: the SDK must not import the
#: emulator just to learn two ids).
_EMU_BOT_ID = "7400000000000000001"
_EMU_WORKFLOW_ID = "7500000000000000002"
#: Seconds between a chat-poll request's retrieves.
_POLL_INTERVAL = 0.25
#: What a cut-off request's outcome says.
CUT_OFF = "cut off at the end of the run"


@attrs.frozen(kw_only=True)
class BenchConfig:
    """One load run. ``duration`` and ``requests`` bound it; with neither, 10 s.

    ``limit=False`` turns the client-side limiter off (the emulator still enforces the plan,
    so rejections show what the limiter prevents). ``event_delay`` is the emulator's pause
    between stream events. ``retries`` is the SDK's retry count (0: every rejection shows).
    """

    scenario: str = "chat-stream"
    concurrency: int = 50
    duration: float | None = None
    requests: int | None = None
    plan: Plan = Plan.PERSONAL_FREE
    limit: bool = True
    event_delay: float = 0.02
    base_url: str | None = None
    token: str | None = attrs.field(default=None, repr=False)
    #: ``"coze"`` or ``"emulator"`` (the CLI decides it explicitly); None: a token means Coze.
    target: str | None = None
    bot_id: str | None = None
    workflow_id: str | None = None
    message: str = "早上好"
    retries: int = 0
    grace: float = 5.0
    max_duration: float = 600.0
    #: The share of sent requests that may fail (or be rejected) with the run still passing.
    max_error_rate: float = 0.0
    #: After a rate-limit rejection, a worker pauses (see :func:`rejection_backoff`) before
    #: its next request; False sends again at once (the raw stress of ``--no-backoff``).
    backoff: bool = True

    def __attrs_post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise InvalidArgumentError(
                f"scenario must be one of {', '.join(SCENARIOS)}; got {self.scenario!r}"
            )
        if self.concurrency < 1:
            raise InvalidArgumentError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.duration is not None and not 0 < self.duration <= self.max_duration:
            raise InvalidArgumentError(
                f"duration must be > 0 and <= {self.max_duration:g} s, got {self.duration}"
            )
        if self.requests is not None and self.requests < 1:
            raise InvalidArgumentError(f"requests must be >= 1, got {self.requests}")
        if self.event_delay < 0:
            raise InvalidArgumentError(f"event_delay must be >= 0, got {self.event_delay}")
        if self.retries < 0:
            raise InvalidArgumentError(f"retries must be >= 0, got {self.retries}")
        if not 0 <= self.max_error_rate <= 1:
            raise InvalidArgumentError(
                f"max_error_rate must be within 0..1, got {self.max_error_rate}"
            )
        if self.target not in (None, "coze", "emulator"):
            raise InvalidArgumentError(f"target must be coze or emulator, got {self.target!r}")
        if self.target == "coze" and not self.token:
            raise InvalidArgumentError("target coze needs a token (--token or COZE_API_TOKEN)")
        if self.targets_real_coze:
            kinds = _MIXED if self.scenario == "mixed" else (self.scenario,)
            if any(k.startswith("chat") for k in kinds) and not self.bot_id:
                raise InvalidArgumentError(f"scenario {self.scenario} needs bot_id (--bot-id)")
            if "workflow-stream" in kinds and not self.workflow_id:
                raise InvalidArgumentError(
                    f"scenario {self.scenario} needs workflow_id (--workflow-id)"
                )

    @property
    def targets_real_coze(self) -> bool:
        """True when the run goes to ``base_url`` as Coze: ``target="coze"``, or a token with no
        ``target``. With ``target="emulator"`` the token is the emulator's."""
        if self.target is not None:
            return self.target == "coze"
        return self.token is not None

    @property
    def deadline(self) -> float:
        """Seconds after which no new request starts."""
        if self.duration is not None:
            return self.duration
        return self.max_duration if self.requests is not None else 10.0

    def quota_lines(self) -> tuple[float | None, float | None]:
        """(per-second limit, per-second average of the per-minute limit) for the chart."""
        names = {"chat-stream": ("chat",), "chat-poll": ("chat",)}.get(
            self.scenario,
            ("workflow",) if self.scenario == "workflow-stream" else ("chat", "workflow"),
        )
        qps = [b.limit / b.period for b in self.plan.buckets if b.name in names]
        model = self.plan.bucket("model_rpm")
        return (sum(qps) if qps else None, model.limit / model.period if model else None)

    def to_json(self) -> dict[str, Any]:
        """The settings, JSON-ready, without the token."""
        out = attrs.asdict(self, filter=lambda a, _: a.name not in ("token", "plan"))
        out["plan"] = self.plan.name
        out["target"] = "coze" if self.targets_real_coze else "emulator"
        return out


@attrs.frozen
class Progress:
    """A snapshot for the live progress display."""

    elapsed: float
    deadline: float
    done: int
    failed: int
    in_flight: int
    events_per_s: float


@attrs.define
class BenchResult:
    """A finished (or interrupted) run: the config, the summary, and the server's own view."""

    config: BenchConfig
    summary: Summary
    interrupted: bool = False
    #: The emulator's ``GET /_emulator/quota`` report (None against real Coze).
    server_quota: dict[str, Any] | None = None
    base_url: str = ""
    #: ``anyio.current_time()`` (the event loop's monotonic clock) at the run's start: the
    #: zero of every time in the records, to line them up with a server's own clock.
    started_at: float = 0.0

    @property
    def server_rejections(self) -> int:
        """Calls the server rejected for quota: the emulator's count, else the client's."""
        if self.server_quota is None:
            return self.summary.client_rejections
        buckets = self.server_quota.get("buckets", {})
        return sum(int(buckets.get(n, {}).get("rejected", 0)) for n in ("chat", "workflow"))

    def to_json(self) -> dict[str, Any]:
        """The whole result, JSON-ready."""
        qps, average = self.config.quota_lines()
        return {
            "config": self.config.to_json(),
            "interrupted": self.interrupted,
            "summary": self.summary.to_json(),
            "server_rejections": self.server_rejections,
            "server_quota": self.server_quota,
            "quota_line": {"per_second": qps, "per_minute_average": average},
        }


# ----------------------------------------------------------------------------- limiter watch

#: The request the current worker task is making (each worker task has its own context).
_CURRENT: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar(
    "coze_bench_current", default=None
)


class _WatchedLimiter:
    """Delegates to a real limiter and marks the current request granted when it is.

    At the deadline the runner withdraws the calls still waiting for quota; this tells those
    (never sent, not a failure) from calls already on their way.
    """

    def __init__(self, inner: Limiter) -> None:
        self.inner = inner

    @property
    def plan(self) -> Plan | None:
        return self.inner.plan

    @plan.setter
    def plan(self, plan: Plan | None) -> None:
        self.inner.plan = plan

    def bind(self, plan: Plan) -> None:
        self.inner.bind(plan)

    #: The run's clock (seconds from its start), set once the run exists.
    clock: Callable[[], float] | None = None

    def _granted(self) -> None:
        record = _CURRENT.get()
        if record is not None:
            # The first grant is the request's own send (a poll's later retrieves are not).
            if record.sent_at is None and self.clock is not None:
                record.sent_at = self.clock()
            record.granted = True

    async def acquire(self, names: Sequence[str], *, timeout: float | None = None) -> float:
        waited = await self.inner.acquire(names, timeout=timeout)
        self._granted()
        return waited

    async def reserve(self, names: Sequence[str], *, timeout: float | None = None) -> Any:
        permit = await self.inner.reserve(names, timeout=timeout)
        self._granted()
        return permit

    def pause(self, names: Sequence[str], seconds: float) -> None:
        self.inner.pause(names, seconds)

    async def aclose(self) -> None:
        await self.inner.aclose()


# ----------------------------------------------------------------------------- emulator process


@asynccontextmanager
async def _emulator_process(config: BenchConfig) -> AsyncIterator[str]:
    """Start ``python -m coze_async.emulator`` enforcing the plan; yield its base URL."""
    cmd = [sys.executable, "-m", "coze_async.emulator", "--port", "0", "--no-record"]
    cmd += ["--event-delay", repr(config.event_delay)]
    if config.event_delay == 0:
        cmd.append("--coalesce")
    for b in config.plan.buckets:
        cmd += ["--quota", f"{b.name}={b.limit}/{b.period:g}"]
    # Its own session: the terminal's Ctrl-C goes to the runner only, which still needs the
    # emulator's counts for the partial report.
    process = await anyio.open_process(cmd, start_new_session=True, stderr=None)
    try:
        assert process.stdout is not None
        url = await _read_url(process.stdout)
        yield url
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.terminate()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            await process.aclose()


async def _read_url(stdout: anyio.abc.ByteReceiveStream) -> str:
    buf = b""
    with anyio.fail_after(20):
        while b"\n" not in buf:
            try:
                buf += await stdout.receive()
            except anyio.EndOfStream:
                break
    line = buf.split(b"\n", 1)[0].decode(errors="replace")
    if "listening on" not in line:
        raise RuntimeError(f"the emulator did not start: {line!r}")
    return line.split()[-1]


async def _get_json(url: str) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
        data: dict[str, Any] = await resp.json()
        return data


# ----------------------------------------------------------------------------- the run

#: The first pause after a rejection, and the most a worker ever pauses (seconds).
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 1.0


def rejection_backoff(rejected_in_a_row: int) -> float:
    """The longest pause (seconds) after ``rejected_in_a_row`` consecutive rejections.

    Doubles from :data:`BACKOFF_FIRST` and stops at :data:`BACKOFF_CAP`: 0.05, 0.1, 0.2,
    0.4, 0.8, 1, 1, ... The worker pauses a random 50-100 % of it.
    """
    if rejected_in_a_row < 1:
        return 0.0
    return float(min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** min(rejected_in_a_row - 1, 30)))


class _Run:
    def __init__(
        self, config: BenchConfig, coze: AsyncCoze, on_progress: Callable[[Progress], None] | None
    ) -> None:
        self.config = config
        self.coze = coze
        self.on_progress = on_progress
        self.records: list[RequestRecord] = []
        self.issued = 0
        self.stopping = False
        self.interrupted = False
        self.stop = anyio.Event()
        #: Set at the deadline (or on a stop): workers pausing after a rejection wake up.
        self.stopped = anyio.Event()
        self.all_done = anyio.Event()
        self.workers_left = config.concurrency
        self.waiting: dict[anyio.CancelScope, RequestRecord] = {}
        self.t0 = anyio.current_time()
        self.ended: float | None = None
        self.bot_id = config.bot_id or _EMU_BOT_ID
        self.workflow_id = config.workflow_id or _EMU_WORKFLOW_ID

    def now(self) -> float:
        return anyio.current_time() - self.t0

    def request_stop(self, *, interrupted: bool = False) -> None:
        self.interrupted = self.interrupted or interrupted
        self.stop.set()

    async def run(self) -> None:
        self.t0 = anyio.current_time()
        try:
            async with anyio.create_task_group() as tg:
                for i in range(self.config.concurrency):
                    tg.start_soon(self.worker, i)
                if self.on_progress is not None:
                    tg.start_soon(self.progress_loop)
                with anyio.move_on_after(self.config.deadline):
                    await self.stop.wait()
                self.stopping = True
                self.stopped.set()
                # Withdraw what still waits for quota: never sent, so not a failure.
                for scope, record in list(self.waiting.items()):
                    if not record.granted:
                        scope.cancel()
                with anyio.move_on_after(self.config.grace):
                    await self.all_done.wait()
                tg.cancel_scope.cancel()
        finally:
            self.ended = self.now()

    def take(self) -> bool:
        if self.stopping:
            return False
        if self.config.requests is not None and self.issued >= self.config.requests:
            return False
        self.issued += 1
        return True

    async def worker(self, index: int) -> None:
        rejected_in_a_row = 0
        try:
            while self.take():
                kind = self.config.scenario
                if kind == "mixed":
                    kind = _MIXED[(self.issued - 1) % len(_MIXED)]
                record = RequestRecord(scenario=kind, start=self.now())
                # Without a limiter nothing waits: every request is on its way at once.
                record.granted = self.coze.limiter is None
                if record.granted:
                    record.sent_at = record.start
                self.records.append(record)
                await self.one(kind, record, user_id=f"bench-{index}")
                if not (record.server_rejected and self.config.backoff):
                    rejected_in_a_row = 0
                    continue
                # Back off, as a well-behaved client would: the stress stays (every worker
                # still sends) but a rejecting server is not hammered thousands of times a
                # second. Jitter keeps the workers from coming back in lockstep.
                rejected_in_a_row += 1
                delay = rejection_backoff(rejected_in_a_row) * random.uniform(0.5, 1.0)
                with anyio.move_on_after(delay):
                    await self.stopped.wait()
        finally:
            self.workers_left -= 1
            if not self.workers_left:
                self.all_done.set()
                self.stop.set()

    async def one(self, kind: str, record: RequestRecord, *, user_id: str) -> None:
        _CURRENT.set(record)
        scope = anyio.CancelScope()
        self.waiting[scope] = record
        try:
            with scope:
                await self._call(kind, record, user_id)
        except anyio.get_cancelled_exc_class():
            # The run's end (after its grace period) or a second Ctrl-C.
            record.outcome = CUT_OFF if record.granted else NOT_SENT
            record.end = self.now()
            raise
        except CozeError as exc:
            record.outcome = type(exc).__name__
            record.server_rejected = isinstance(exc, RateLimitError)
            record.end = self.now()
        finally:
            self.waiting.pop(scope, None)
            _CURRENT.set(None)
        if scope.cancelled_caught:
            record.outcome = NOT_SENT
            record.quota_wait = self.now() - record.start
            record.end = self.now()

    async def _call(self, kind: str, record: RequestRecord, user_id: str) -> None:
        if kind == "chat-poll":
            await self._poll(record, user_id)
        else:
            stream: Any
            if kind == "chat-stream":
                stream = self.coze.chat.stream(
                    bot_id=self.bot_id,
                    user_id=user_id,
                    messages=[Message.user(self.config.message)],
                )
            else:
                stream = self.coze.workflows.stream(
                    workflow_id=self.workflow_id,
                    parameters={"input": self.config.message},
                )
            async with stream:
                record.quota_wait = stream.quota_wait
                record.accepted_at = self.now()
                async for _ in stream:
                    if record.first_event is None:
                        record.first_event = self.now()
                    record.events += 1
        record.end = self.now()
        record.outcome = OK

    async def _poll(self, record: RequestRecord, user_id: str) -> None:
        # create_and_poll's steps, spelled out: the request is timed by its create (the call
        # the server accepts and the quota counts), not by whichever retrieve came last.
        chat = await self.coze.chat.create(
            bot_id=self.bot_id, user_id=user_id, messages=[Message.user(self.config.message)]
        )
        record.quota_wait = chat.quota_wait
        record.accepted_at = self.now()
        while chat.status in (ChatStatus.CREATED, ChatStatus.IN_PROGRESS):
            await anyio.sleep(_POLL_INTERVAL)
            chat = await self.coze.chat.retrieve(
                conversation_id=chat.conversation_id, chat_id=chat.id
            )
        if chat.status == ChatStatus.FAILED:
            raise ChatFailedError(chat, logid=chat.logid)
        found = await self.coze.chat.messages(conversation_id=chat.conversation_id, chat_id=chat.id)
        record.events = len(found)

    async def progress_loop(self) -> None:
        assert self.on_progress is not None
        last_events, last_t = 0, 0.0
        rate = 0.0
        while True:
            await anyio.sleep(0.25)  # a display refresh interval, not a wait for a condition
            t = self.now()
            events = sum(r.events for r in self.records)
            if t > last_t:
                rate = (events - last_events) / (t - last_t)
            last_events, last_t = events, t
            finished = [r for r in self.records if r.end is not None]
            self.on_progress(
                Progress(
                    elapsed=t,
                    deadline=self.config.deadline,
                    done=len(finished),
                    failed=sum(1 for r in finished if r.outcome not in (OK, NOT_SENT)),
                    in_flight=len(self.records) - len(finished),
                    events_per_s=rate,
                )
            )


async def run_bench(
    config: BenchConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    handle_signals: bool = False,
) -> BenchResult:
    """Run the load described by ``config``; return the accounting, even when interrupted.

    ``on_progress`` gets a :class:`Progress` four times a second; ``on_start`` the base URL
    once the server is up and the first request is about to go. ``handle_signals`` (the CLI
    sets it) turns the first SIGINT/SIGTERM into a clean stop with a partial report, and a
    second into an immediate one.
    """
    async with AsyncExitStack() as stack:
        if config.targets_real_coze:
            base_url, token = config.base_url, config.token
        elif config.base_url is not None:
            base_url = config.base_url
            token = config.token or os.environ.get("COZE_API_TOKEN", "emu_test_token")
        else:
            base_url = await stack.enter_async_context(_emulator_process(config))
            token = "emu_test_token"
        limiter: QuotaLimiter | None = (
            _WatchedLimiter(Limiter(config.plan)) if config.limit else None
        )
        coze = await stack.enter_async_context(
            AsyncCoze(
                token=token,
                base_url=base_url,
                limiter=limiter,
                plan=config.plan if limiter is not None else None,
                retry=RetryPolicy(max_retries=config.retries),
                timeouts=Timeouts(connect=10, read=60, total=120),
                connection_limit=max(100, config.concurrency + 10),
            )
        )
        run = _Run(config, coze, on_progress)
        if isinstance(limiter, _WatchedLimiter):
            limiter.clock = run.now
        async with anyio.create_task_group() as tg:
            if handle_signals:
                await tg.start(_watch_signals, run, tg.cancel_scope)
            if on_start is not None:
                on_start(str(base_url))
            await run.run()
            tg.cancel_scope.cancel()
        summary = summarize(run.records, max(run.ended or 0.0, 1e-9))
        quota = None
        if not config.targets_real_coze and config.base_url is None:
            with anyio.move_on_after(10, shield=True):
                quota = await _get_json(f"{base_url}/_emulator/quota")
            if quota is not None:
                # The child emulator enforces exactly this plan's buckets, handed over as
                # --quota specs, which carry no name: it calls the table "custom".
                quota["plan"] = config.plan.name
        return BenchResult(
            config=config,
            summary=summary,
            interrupted=run.interrupted,
            server_quota=quota,
            base_url=str(base_url),
            started_at=run.t0,
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def _watch_signals(
    run: _Run,
    scope: anyio.CancelScope,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        count = 0
        async for _ in signals:
            count += 1
            run.request_stop(interrupted=True)
            if count >= 2:
                scope.cancel()  # the second one: stop now, cutting off what is in flight
