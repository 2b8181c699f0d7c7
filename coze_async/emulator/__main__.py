"""Command line: ``python -m coze_async.emulator --port 8080`` serves until Ctrl-C.

``coze-async emulator`` is the same command: both build their options with
:func:`add_arguments` and run :func:`run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import signal
from collections.abc import Sequence

from .bots import AUDIO_BOT_ID, ECHO_BOT_ID, TOOL_BOT_ID
from .quota import parse_quota
from .server import Emulator
from .wire import DEFAULT_TOKEN, FAULT_HEADER
from .workflows import ECHO_WORKFLOW_ID, FAILING_WORKFLOW_ID, QA_WORKFLOW_ID, STREAM_WORKFLOW_ID

#: The command's description, in ``--help`` of both spellings.
DESCRIPTION = (
    "Serve a local Coze OpenAPI emulator until interrupted. The first line printed is "
    "'Coze emulator listening on URL' (with --port 0, the URL of the port actually bound)."
)


def build_parser(prog: str = "python -m coze_async.emulator") -> argparse.ArgumentParser:
    """The command's argument parser."""
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` (``coze-async emulator`` uses the same)."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="accepted bearer token (default: %(default)s)"
    )
    parser.add_argument(
        "--event-delay",
        type=float,
        default=0.0,
        help="seconds between SSE events (default: %(default)s)",
    )
    parser.add_argument(
        "--chat-duration",
        type=float,
        default=0.05,
        help="seconds until a non-stream chat completes (default: %(default)s)",
    )
    parser.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="NAME=LIMIT/PERIOD",
        help=(
            "enforce a quota bucket, e.g. chat=20/1 or model_rpm=300/60 (repeatable; buckets: "
            "chat, workflow, upload, model_rpm); rejections answer --rate-limit-status and "
            "--rate-limit-code"
        ),
    )
    parser.add_argument(
        "--rate-limit-status",
        type=int,
        default=200,
        help=(
            "HTTP status of a quota rejection (default: %(default)s, Coze's business-error "
            "status). Coze's real rate-limit status and code are not documented or "
            "recorded; the JS SDK (@coze/api) classifies only HTTP 429 or code 4013 as a "
            "rate limit, cozepy none (it raises CozeAPIError with the code)"
        ),
    )
    parser.add_argument(
        "--rate-limit-code",
        type=int,
        default=4009,
        help=(
            "code of a quota rejection (default: %(default)s, the system request ceiling; "
            "unconfirmed, see --rate-limit-status)"
        ),
    )
    parser.add_argument(
        "--jwt-app",
        action="append",
        default=[],
        metavar="CLIENT_ID=PUBLIC_KEY_FILE[:KID]",
        help=(
            "register a JWT (service) app: its PEM public key file, under the key id KID "
            "(default: the client id); repeatable. The JWT's aud may be this server's host "
            "or host:port"
        ),
    )
    parser.add_argument(
        "--accept-any-bot",
        action="store_true",
        help=(
            "let the echo bot answer any bot_id (a convenience; by default an unknown "
            "bot_id answers code 4200, as Coze does)"
        ),
    )
    parser.add_argument(
        "--coalesce",
        action="store_true",
        help=(
            "with --event-delay 0, hand the socket up to 64 KiB of events per write (each "
            "event still its own HTTP chunk), so a load test measures the client, not this"
        ),
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not keep every request in memory (for long load tests)",
    )


def parse_jwt_app(spec: str) -> tuple[str, str, str]:
    """``CLIENT_ID=PUBLIC_KEY_FILE[:KID]`` -> ``(client_id, path, kid)``; ValueError if bad.

    The key id is what follows the last colon, unless that looks like part of a path
    (``C:\\keys\\app.pem``); it defaults to the client id.
    """
    client_id, sep, rest = spec.partition("=")
    if not sep or not client_id or not rest:
        raise ValueError(f"--jwt-app needs CLIENT_ID=PUBLIC_KEY_FILE[:KID], got {spec!r}")
    path, colon, kid = rest.rpartition(":")
    if not colon or not path or not kid or "/" in kid or "\\" in kid:
        path, kid = rest, client_id
    return client_id, path, kid


def _add_jwt_apps(emu: Emulator, specs: Sequence[str], prog: str) -> list[str]:
    """Register every ``--jwt-app``; returns ``client_id (kid KID)`` lines for the banner."""
    lines = []
    for spec in specs:
        try:
            client_id, path, kid = parse_jwt_app(spec)
            with open(path, "rb") as f:
                pem = f.read()
            emu.oauth.add_jwt_app(client_id=client_id, public_key=pem, kid=kid)
        except OSError as exc:
            msg = f"{prog}: --jwt-app: cannot read {exc.filename}: {exc.strerror}"
            raise SystemExit(msg) from None
        except (ValueError, TypeError, RuntimeError) as exc:
            # ValueError: a bad spec or a file that is not a PEM public key.
            raise SystemExit(f"{prog}: --jwt-app {spec!r}: {exc}") from None
        lines.append(f"{client_id} (kid {kid})")
    return lines


def listen_error(exc: OSError, host: str, port: int) -> str:
    """The one-line message for a server that cannot listen on ``host:port`` (the examples
    use it too)."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use; choose another with --port "
            "(--port 0 picks a free one and prints its URL)"
        )
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


async def serve(args: argparse.Namespace, prog: str = "python -m coze_async.emulator") -> None:
    """Run the emulator described by parsed ``args`` until cancelled.

    Bad options and a port that cannot be bound raise :class:`SystemExit` with a one-line
    message (exit status 1), not a traceback.
    """
    try:
        plan = parse_quota(args.quota) if args.quota else None
    except ValueError as exc:
        raise SystemExit(f"{prog}: {exc}") from None
    emu = Emulator(
        host=args.host,
        port=args.port,
        token=args.token,
        event_delay=args.event_delay,
        chat_duration=args.chat_duration,
        plan=plan,
        rate_limit_status=args.rate_limit_status,
        rate_limit_code=args.rate_limit_code,
        coalesce=args.coalesce,
        accept_any_bot=args.accept_any_bot,
    )
    emu.record_requests = not args.no_record
    jwt_apps = _add_jwt_apps(emu, args.jwt_app, prog)
    try:
        await emu.start()
    except OSError as exc:
        raise SystemExit(f"{prog}: {listen_error(exc, args.host, args.port)}") from None
    try:
        print(f"Coze emulator listening on {emu.url}", flush=True)
        print(f"  token:  {emu.token}")
        any_bot = " (and any other id)" if args.accept_any_bot else ""
        print(f"  bots:   echo {ECHO_BOT_ID}{any_bot}, tool {TOOL_BOT_ID}, audio {AUDIO_BOT_ID}")
        print(
            f"  workflows: echo {ECHO_WORKFLOW_ID}, stream {STREAM_WORKFLOW_ID}, "
            f"qa (interrupts) {QA_WORKFLOW_ID}, failing {FAILING_WORKFLOW_ID}"
        )
        print(f"  faults: request header {FAULT_HEADER}: name[=value];...")
        if jwt_apps:
            print(f"  jwt apps: {', '.join(jwt_apps)}")
        if plan is not None:
            quotas = ", ".join(f"{b.name} {b.limit}/{b.period:g}s" for b in plan.buckets)
            print(f"  quotas: {quotas}")
            print(
                f"  rejections: HTTP {emu.rate_limit_status}, code {emu.rate_limit_code} "
                "(Coze's real answer is unconfirmed)"
            )
        print("Press Ctrl-C to stop.", flush=True)
        stop = asyncio.Event()
        # SIGTERM (docker stop, kill) shuts down as cleanly as Ctrl-C does.
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
    finally:
        await emu.close()


def run(args: argparse.Namespace, prog: str = "python -m coze_async.emulator") -> int:
    """Serve parsed ``args`` until Ctrl-C or SIGTERM; returns the process exit code."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args, prog))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
