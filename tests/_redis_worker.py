"""One worker process of the Redis limiter's multi-process tests (spawned by the tests).

It builds ``AsyncCoze(limiter=RedisLimiter(...), plan=...)`` against the emulator the test
started, prints ``READY <instance id>``, waits for ``go`` on stdin (so that every worker
starts together, after their imports), then makes ``--calls`` chat calls at once. It prints
``WAITING`` the first time its limiter has to wait (so a test can kill it right there) and
``DONE <json>`` at the end: how many calls succeeded and the errors of the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import anyio
import anyio.to_thread

try:
    import coze_async  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coze_async import AsyncCoze, CozeError, Message, RetryPolicy
from coze_async.emulator import ECHO_BOT_ID
from coze_async.ratelimit import Bucket, Plan, RedisLimiter


def make_plan(chat_qps: int, period: float) -> Plan:
    """The plan of a test: a small chat QPS and a model RPM high enough never to matter."""
    if period == 1.0:
        return Plan.custom(chat_qps=chat_qps, workflow_qps=50, upload_qps=10, model_rpm=100_000)
    # A longer window gives a test's kill time to land before the window reopens.
    return Plan(
        name="redis-test",
        buckets=(Bucket("chat", chat_qps, period), Bucket("model_rpm", 100_000, 60.0)),
    )


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _WaitingSignal(logging.Handler):
    """Prints WAITING once, when the limiter logs that it is about to sleep for quota."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.seen and record.getMessage().startswith("waiting"):
            self.seen = True
            _say("WAITING")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--chat-qps", type=int, required=True)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--calls", type=int, required=True)
    args = parser.parse_args(argv)

    log = logging.getLogger("coze_async.ratelimit")
    log.setLevel(logging.DEBUG)
    log.addHandler(_WaitingSignal())

    limiter = RedisLimiter(args.redis, account=args.account, margin=args.margin)
    async with AsyncCoze(
        token=args.token,
        base_url=args.emulator,
        plan=make_plan(args.chat_qps, args.period),
        limiter=limiter,
        # A rejection must show up as an error here, not be hidden by a retry.
        retry=RetryPolicy.none(),
    ) as coze:
        _say(f"READY {limiter.instance_id}")
        await anyio.to_thread.run_sync(sys.stdin.readline)
        ok = 0
        errors: list[str] = []

        async def one(i: int) -> None:
            nonlocal ok
            try:
                await coze.chat.create(
                    bot_id=ECHO_BOT_ID, user_id=f"worker-{i}", messages=[Message.user("hi")]
                )
                ok += 1
            except CozeError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        async with anyio.create_task_group() as tg:
            for i in range(args.calls):
                tg.start_soon(one, i)
        _say("DONE " + json.dumps({"ok": ok, "errors": errors}))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
