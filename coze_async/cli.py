"""The ``coze-async`` command.

``coze-async chat "早上好"`` streams a reply to the terminal: from Coze when a token
(``--token`` or ``COZE_API_TOKEN``) and ``--bot-id`` are given, otherwise from the embedded
emulator, started in-process, so the command works on a fresh machine with no account.
``coze-async workflow run|stream ID`` runs a workflow, answering its interrupts.
``coze-async emulator --port 8080`` serves the emulator from the shell.
``coze-async bench`` runs a bounded load test, on an emulator in a child process unless its
flags choose Coze. Every command picks its target with :func:`cli_target.resolve_target`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from .__about__ import __version__
from .cli_target import Target, TargetError, budget_refusal, estimate_calls, resolve_target
from .client import AsyncCoze
from .config import COZE_CN_BASE_URL
from .errors import CozeError
from .models.chat import Chat, Message, ToolCall, ToolOutput
from .models.events import ChatFailed, ChatRequiresAction, MessageDelta
from .models.workflow import InterruptData, WorkflowMessage

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from .emulator.__main__ import DESCRIPTION, add_arguments

    parser = argparse.ArgumentParser(
        prog="coze-async", description="Coze (扣子) OpenAPI from the terminal, asyncio-native."
    )
    parser.add_argument("--version", action="version", version=f"coze-async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    chat = sub.add_parser(
        "chat",
        help="stream a chat reply to the terminal",
        description=(
            "Stream a bot's reply. With no token configured, a local emulator answers "
            "(its echo bot repeats your message). Exit status: 0 answered, 1 the chat failed, "
            f"2 usage, {EXIT_TOOL_CALLS} the bot waits for tool outputs not given with "
            "--tool-output (the calls are printed)."
        ),
    )
    chat.add_argument("message", help="what to say")
    _add_pairs(
        chat,
        "--tool-output",
        "NAME=JSON",
        "answer the bot's calls of tool NAME with this output (sent as given; repeatable)",
    )
    chat.add_argument("--bot-id", help="the bot to talk to (required with a real token)")
    chat.add_argument(
        "--user-id", default="coze-async-cli", help="end-user id (default: %(default)s)"
    )
    chat.add_argument("--conversation-id", help="continue this conversation")
    _add_target_args(chat, env_chooses=True)

    _add_bench_parser(sub)
    _add_workflow_parser(sub)

    # The same options and help as ``python -m coze_async.emulator``: one definition.
    emu = sub.add_parser("emulator", help="serve the local Coze emulator", description=DESCRIPTION)
    add_arguments(emu)
    for command in sub.choices.values():
        command.set_defaults(subparser=command)
    return parser


#: Exit status when the run waits for input the command was not given: ``chat``'s tool
#: calls with no --tool-output, a workflow's interrupt with no answer.
EXIT_NEEDS_INPUT = 3
#: ``chat``'s name for it.
EXIT_TOOL_CALLS = EXIT_NEEDS_INPUT


def _name_value(metavar: str) -> Any:
    """An argparse ``type`` splitting ``NAME=VALUE`` at the first ``=``."""

    def parse(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected {metavar}, got {text!r}")
        return name.strip(), value

    return parse


def _add_pairs(parser: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """Add a repeatable ``flag METAVAR`` option collecting ``(name, value)`` pairs."""
    parser.add_argument(
        flag, action="append", default=[], type=_name_value(metavar), metavar=metavar, help=help
    )


def _add_target_args(parser: argparse.ArgumentParser, *, env_chooses: bool) -> None:
    """Add ``--target``, ``--base-url`` and ``--token`` (see :func:`resolve_target`)."""
    env = (
        "; an exported COZE_API_TOKEN or COZE_API_BASE chooses as these flags do"
        if env_chooses
        else "; the environment never chooses Coze for this command"
    )
    parser.add_argument(
        "--target",
        choices=("coze", "emulator"),
        help=(
            "where calls go (default: an explicit --base-url decides: a loopback host is an "
            f"emulator, any other Coze; --token means Coze; else the embedded emulator{env})"
        ),
    )
    parser.add_argument(
        "--base-url",
        help=f"API host (Coze's default: $COZE_API_BASE or {COZE_CN_BASE_URL})",
    )
    parser.add_argument(
        "--token", help="access token (Coze's default: $COZE_API_TOKEN; an emulator's: its own)"
    )


def _resolve(args: argparse.Namespace, *, env_chooses: bool) -> Target | None:
    """The command's target, announced on stderr; None (after saying why) when unusable."""
    try:
        target = resolve_target(
            target=args.target,
            base_url=args.base_url,
            token=args.token,
            env=os.environ,
            env_chooses=env_chooses,
        )
    except TargetError as exc:
        print(f"coze-async {args.command}: {exc}", file=sys.stderr)
        return None
    print(f"coze-async {args.command}: target: {target.describe()}", file=sys.stderr, flush=True)
    return target


def _add_bench_parser(sub: Any) -> None:
    from .bench import PLANS, SCENARIOS
    from .bench.report import output_problem

    def output_path(value: str) -> Path:
        # An argparse type: a bad output path stops the command (exit 2) before any run.
        path = Path(value)
        problem = output_problem(path)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return path

    def fraction(value: str) -> float:
        try:
            rate = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number within 0..1, got {value!r}"
            ) from None
        if not 0 <= rate <= 1:
            raise argparse.ArgumentTypeError(f"expected a number within 0..1, got {value}")
        return rate

    bench = sub.add_parser(
        "bench",
        help="a bounded load test with a report",
        description=(
            "Run concurrent calls for --duration seconds (or --requests calls) and report "
            "throughput, latency percentiles, limiter waits and rate-limit rejections. With no "
            "token, an emulator enforcing --plan's quotas runs in a child process."
        ),
    )
    bench.add_argument("--scenario", choices=SCENARIOS, default="chat-stream")
    bench.add_argument("--concurrency", type=int, default=50, help="workers (default: 50)")
    bench.add_argument(
        "--duration", type=float, help="seconds to issue requests (default: 10 unless --requests)"
    )
    bench.add_argument("--requests", type=int, help="stop after this many requests")
    bench.add_argument(
        "--plan", choices=sorted(PLANS), default="personal-free", help="(default: %(default)s)"
    )
    bench.add_argument(
        "--no-limit",
        action="store_true",
        help=(
            "turn the client-side quota limiter off (a stress mode: the server rejects what "
            "is over quota, and each worker backs off after a rejection: 0.05 s doubling to 1 s)"
        ),
    )
    bench.add_argument(
        "--no-backoff",
        action="store_true",
        help="with --no-limit: send again at once after a rejection (raw stress)",
    )
    bench.add_argument(
        "--event-delay",
        type=float,
        default=0.02,
        help="emulator seconds between stream events (default: %(default)s)",
    )
    bench.add_argument("--retries", type=int, default=0, help="SDK retries (default: 0)")
    bench.add_argument("--message", default="早上好", help="what each chat says")
    bench.add_argument("--json", type=output_path, metavar="PATH", help="write the results as JSON")
    bench.add_argument(
        "--plot",
        type=output_path,
        metavar="PATH",
        help="write the report figure as a PNG (full with the 'plot' extra, else a built-in chart)",
    )
    bench.add_argument(
        "--html",
        type=output_path,
        metavar="PATH",
        help="write one self-contained HTML report (figure inline, table, settings) to attach",
    )
    _add_target_args(bench, env_chooses=False)
    bench.add_argument(
        "--max-calls",
        type=int,
        metavar="N",
        help=(
            "against Coze: refuse to start a run that may make more than N API calls "
            "(required on personal-free, whose accounts get 500 calls ever, unless --yes)"
        ),
    )
    bench.add_argument("--yes", action="store_true", help="against Coze: run even over --max-calls")
    bench.add_argument("--bot-id", help="bot for chat scenarios (required with a token)")
    bench.add_argument("--workflow-id", help="workflow for workflow-stream (with a token)")
    bench.add_argument("--quiet", action="store_true", help="no live progress line")
    bench.add_argument(
        "--max-error-rate",
        type=fraction,
        default=0.0,
        metavar="FRACTION",
        help=(
            "share of sent requests that may fail or be rejected with the run still passing "
            "(exit 0), e.g. 0.05 (default: 0, any failure exits 1; with the limiter on, a "
            "server rejection always exits 1)"
        ),
    )


async def _bench(args: argparse.Namespace) -> int:
    from .bench import PLANS, BenchConfig, run_bench
    from .bench.report import format_progress, format_report, write_json, write_plot

    target = _resolve(args, env_chooses=False)
    if target is None:
        return 2
    config = BenchConfig(
        scenario=args.scenario,
        concurrency=args.concurrency,
        duration=args.duration,
        requests=args.requests,
        plan=PLANS[args.plan],
        limit=not args.no_limit,
        event_delay=args.event_delay,
        base_url=target.base_url,
        token=target.token,
        target="coze" if target.is_coze else "emulator",
        bot_id=args.bot_id,
        workflow_id=args.workflow_id,
        message=args.message,
        retries=args.retries,
    )
    if config.targets_real_coze:
        # Said and checked before anything is sent: a free account has 500 calls, ever.
        estimate = estimate_calls(config)
        upper = "an unbounded number of" if estimate.upper is None else f"up to {estimate.upper}"
        print(
            f"coze-async bench: this run may make {upper} API calls ({estimate.why})",
            file=sys.stderr,
            flush=True,
        )
        refusal = budget_refusal(estimate, config.plan, max_calls=args.max_calls, yes=args.yes)
        if refusal is not None:
            print(f"coze-async bench: not started: {refusal}", file=sys.stderr)
            return 2
    live = sys.stderr.isatty() and not args.quiet
    shown = [0]

    def progress(p: Any) -> None:
        line = format_progress(p)
        sys.stderr.write("\r" + line.ljust(shown[0]))
        sys.stderr.flush()
        shown[0] = len(line)

    def started(url: str) -> None:
        where = f"Coze at {url}" if config.targets_real_coze else f"the emulator at {url}"
        print(
            f"bench: {config.scenario}, concurrency {config.concurrency}, "
            f"{'limiter on' if config.limit else 'limiter off'}, against {where}; "
            "Ctrl-C stops early",
            file=sys.stderr,
            flush=True,
        )

    import attrs

    from .bench import exit_code

    result = await run_bench(
        attrs.evolve(config, max_error_rate=args.max_error_rate, backoff=not args.no_backoff),
        on_progress=progress if live else None,
        on_start=started,
        handle_signals=True,
    )
    if live:
        sys.stderr.write("\n")
    print(format_report(result), flush=True)
    if args.json:
        write_json(result, args.json)
        print(f"results written to {args.json}")
    if args.plot:
        drawn_by = write_plot(result, args.plot)
        how = (
            "matplotlib figure"
            if drawn_by == "matplotlib"
            else "built-in chart; pip install 'coze-async[plot]' adds latency and limiter wait"
        )
        print(f"chart written to {args.plot} ({how})")
    if args.html:
        from .bench.html import write_html

        write_html(result, args.html)
        print(f"HTML report written to {args.html}")
    return exit_code(result)


#: How many times one ``chat`` answers tool calls before it stops (a bot asking forever).
_TOOL_ROUNDS = 8


async def _stream_chat(coze: AsyncCoze, args: argparse.Namespace, bot_id: str) -> int:
    outputs = dict(args.tool_output)
    stream = coze.chat.stream(
        bot_id=bot_id,
        user_id=args.user_id,
        messages=[Message.user(args.message)],
        conversation_id=args.conversation_id,
    )
    for _ in range(_TOOL_ROUNDS):
        wrote = False
        waiting: Chat | None = None
        async with stream:
            async for event in stream:
                if type(event) is MessageDelta and event.message.type in ("answer", ""):
                    sys.stdout.write(event.message.content)
                    sys.stdout.flush()
                    wrote = wrote or bool(event.message.content)
                elif type(event) is ChatRequiresAction:
                    waiting = event.chat
                elif type(event) is ChatFailed:
                    err = event.chat.last_error
                    print(f"\nchat failed: {err}", file=sys.stderr)
                    return 1
        if wrote:
            sys.stdout.write("\n")
        calls = waiting.required_action.tool_calls if waiting and waiting.required_action else ()
        if waiting is None or not calls:
            break
        missing = sorted({c.function.name for c in calls} - outputs.keys())
        if missing:
            return _show_tool_calls(calls, missing)
        # Every call named has an answer: submit them all at once, as Coze expects.
        stream = coze.chat.submit_tool_outputs_stream(
            conversation_id=waiting.conversation_id,
            chat_id=waiting.id,
            tool_outputs=[
                ToolOutput(tool_call_id=c.id, output=outputs[c.function.name]) for c in calls
            ],
        )
    else:
        print(
            f"coze-async chat: the bot still asks for tools after {_TOOL_ROUNDS} rounds",
            file=sys.stderr,
        )
        return EXIT_TOOL_CALLS
    snap = stream.snapshot
    for question in snap.follow_ups:
        print(f"  ↳ {question}", file=sys.stderr)
    if snap.usage is not None:
        print(
            f"[tokens: {snap.usage.token_count} (in {snap.usage.input_count}, "
            f"out {snap.usage.output_count}) logid={stream.logid}]",
            file=sys.stderr,
        )
    return 0


def _show_tool_calls(calls: Sequence[ToolCall], missing: Sequence[str]) -> int:
    """Print the pending tool calls (stdout) and how to answer them (stderr)."""
    for call in calls:
        print(f"tool call: {call.function.name} {call.function.arguments}", flush=True)
    flags = " ".join(f"--tool-output {name}=JSON" for name in missing)
    print(
        f"coze-async chat: the bot waits for tool outputs; run again with {flags} "
        f"(exit status {EXIT_TOOL_CALLS})",
        file=sys.stderr,
    )
    return EXIT_TOOL_CALLS


def _add_workflow_parser(sub: Any) -> None:
    workflow = sub.add_parser(
        "workflow",
        help="run a published workflow, answering its questions",
        description=(
            "Run a workflow (run: wait for the result; stream: print its nodes' output as it "
            "comes). When a Q&A / input node interrupts the run, the answer comes from the "
            "next --resume-data, else from a line read on stdin, and the run is resumed. "
            "Prints the output on stdout and debug_url on stderr. With no token configured, "
            "the embedded emulator runs it (workflow ids: see README, 'The emulator'). Exit "
            f"status: 0 done, 1 failed, 2 usage, {EXIT_NEEDS_INPUT} an interrupt had no answer."
        ),
    )
    workflow.add_argument("mode", choices=("run", "stream"), help="run or stream")
    workflow.add_argument("workflow_id", metavar="ID", help="the workflow's id")
    _add_pairs(
        workflow,
        "--param",
        "KEY=VALUE",
        "an input parameter; VALUE is parsed as JSON when it parses, else text (repeatable)",
    )
    workflow.add_argument(
        "--resume-data",
        action="append",
        default=[],
        metavar="TEXT",
        help="the answer to the next interrupt, instead of a line on stdin (repeatable, in order)",
    )
    workflow.add_argument("--bot-id", help="the bot a workflow with a bot node runs as")
    _add_target_args(workflow, env_chooses=True)


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text  # ``--param city=杭州`` means the text, no JSON quoting needed


async def _answer(interrupt: InterruptData, answers: list[str]) -> str | None:
    """The answer to ``interrupt``: the next ``--resume-data``, else a line read on stdin."""
    print(f"the workflow asks: {interrupt.question}", file=sys.stderr, flush=True)
    if answers:
        return answers.pop(0)
    if sys.stdin.isatty():
        print("> ", end="", file=sys.stderr, flush=True)
    line: str = await anyio.to_thread.run_sync(sys.stdin.readline)
    if not line:  # end of input: nobody to ask
        print(
            "coze-async workflow: no answer on stdin; pass it with --resume-data TEXT "
            f"(exit status {EXIT_NEEDS_INPUT})",
            file=sys.stderr,
        )
        return None
    return line.rstrip("\r\n")


async def _workflow(args: argparse.Namespace) -> int:
    target = _resolve(args, env_chooses=True)
    if target is None:
        return 2
    params = {key: _param_value(value) for key, value in args.param}
    answers = list(args.resume_data)
    async with _client(target) as coze:
        if args.mode == "run":
            return await _run_workflow(coze, args, params, answers)
        return await _stream_workflow(coze, args, params, answers)


async def _run_workflow(
    coze: AsyncCoze, args: argparse.Namespace, params: dict[str, Any], answers: list[str]
) -> int:
    workflow_id = args.workflow_id
    result = await coze.workflows.run(
        workflow_id=workflow_id, parameters=params, bot_id=args.bot_id
    )
    while result.interrupt_data is not None:
        answer = await _answer(result.interrupt_data, answers)
        if answer is None:
            return EXIT_NEEDS_INPUT
        result = await coze.workflows.resume(
            workflow_id=workflow_id,
            event_id=result.interrupt_data.event_id,
            interrupt_type=result.interrupt_data.type,
            resume_data=answer,
        )
    print(result.data, flush=True)
    _print_run_footer(result.debug_url, result.usage)
    return 0


async def _stream_workflow(
    coze: AsyncCoze, args: argparse.Namespace, params: dict[str, Any], answers: list[str]
) -> int:
    workflow_id = args.workflow_id
    stream = coze.workflows.stream(workflow_id=workflow_id, parameters=params, bot_id=args.bot_id)
    while True:
        async with stream:
            async for event in stream:
                if type(event) is WorkflowMessage:
                    # Each node's content as it streams, one line per node.
                    end = "\n" if event.node_is_finish else ""
                    print(event.content, end=end, flush=True)
            result = await stream.final()
        if result.interrupt is None:
            break
        data = result.interrupt.interrupt_data
        answer = await _answer(data, answers)
        if answer is None:
            return EXIT_NEEDS_INPUT
        stream = coze.workflows.resume_stream(
            workflow_id=workflow_id,
            event_id=data.event_id,
            interrupt_type=data.type,
            resume_data=answer,
        )
    _print_run_footer(result.debug_url, result.usage)
    return 0


def _print_run_footer(debug_url: str | None, usage: Any) -> None:
    print(f"debug_url: {debug_url or '(none)'}", file=sys.stderr)
    if usage is not None:
        print(
            f"[tokens: {usage.token_count} (in {usage.input_count}, out {usage.output_count})]",
            file=sys.stderr,
        )


async def _chat(args: argparse.Namespace) -> int:
    target = _resolve(args, env_chooses=True)
    if target is None:
        return 2
    if target.is_coze and not args.bot_id:
        print("coze-async chat: --bot-id is required against Coze", file=sys.stderr)
        return 2
    async with _client(target) as coze:
        return await _stream_chat(coze, args, args.bot_id or _ECHO_BOT_ID)


#: The emulator's echo bot (``coze_async.emulator.ECHO_BOT_ID``), any emulator's default bot.
_ECHO_BOT_ID = "7400000000000000001"


@asynccontextmanager
async def _client(target: Target) -> AsyncIterator[AsyncCoze]:
    """A client for ``target``; the embedded emulator runs in-process for as long."""
    if target.kind != "embedded":
        async with AsyncCoze(token=target.token, base_url=target.base_url) as coze:
            yield coze
        return
    from .emulator import Emulator

    async with Emulator() as emu, AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        yield coze


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coze-async`` command; returns the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Let the subcommand complain, so its usage (not the top-level one) is shown.
        args.subparser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "chat":
            return anyio.run(_chat, args)
        if args.command == "workflow":
            return anyio.run(_workflow, args)
        if args.command == "bench":
            return anyio.run(_bench, args)
        if args.command == "emulator":
            from .emulator.__main__ import run

            return run(args, prog="coze-async emulator")
    except CozeError as exc:
        print(f"coze-async: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
