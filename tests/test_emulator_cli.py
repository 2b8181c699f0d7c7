"""``coze-async emulator`` and ``python -m coze_async.emulator``: one parser, same flags (issue
14 items 9 and 10), and the new flags reach the server."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import aiohttp
import anyio
import pytest

from coze_async.cli import _parser as cli_parser
from coze_async.emulator import ECHO_BOT_ID
from coze_async.emulator.__main__ import build_parser

pytestmark = pytest.mark.anyio

#: Every flag the emulator command has; a new one must be added here and to both spellings.
FLAGS = {
    "--host",
    "--port",
    "--token",
    "--event-delay",
    "--chat-duration",
    "--quota",
    "--rate-limit-status",
    "--rate-limit-code",
    "--jwt-app",
    "--accept-any-bot",
    "--coalesce",
    "--no-record",
}


def _emulator_subparser() -> argparse.ArgumentParser:
    parser = cli_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = sub.choices["emulator"]
    return found


def _options(parser: argparse.ArgumentParser) -> dict[str, tuple[Any, ...]]:
    """option string -> (dest, default, nargs, const, type, metavar, help) of each option."""
    out = {}
    for action in parser._actions:
        for option in action.option_strings:
            out[option] = (
                action.dest,
                action.default,
                action.nargs,
                action.const,
                action.type,
                action.metavar,
                action.help,
                type(action).__name__,
            )
    return out


def test_both_spellings_have_the_same_options() -> None:
    module = _options(build_parser())
    sub = _options(_emulator_subparser())
    assert module == sub
    assert set(module) - {"-h", "--help"} == FLAGS


def test_both_spellings_parse_alike() -> None:
    argv = [
        "--port", "0", "--quota", "chat=1/1", "--quota", "model_rpm=300/60",
        "--rate-limit-status", "429", "--rate-limit-code", "4013",
        "--jwt-app", "app=key.pem:kid", "--accept-any-bot", "--no-record", "--coalesce",
    ]  # fmt: skip
    module = vars(build_parser().parse_args(argv))
    sub = vars(cli_parser().parse_args(["emulator", *argv]))
    sub.pop("command")
    sub.pop("subparser")
    assert module == sub
    assert module["rate_limit_code"] == 4013
    assert module["jwt_app"] == ["app=key.pem:kid"]
    assert module["accept_any_bot"] is True


def test_help_documents_the_unconfirmed_rate_limit_answer() -> None:
    text = build_parser().format_help()
    flat = " ".join(text.split())
    assert "not documented or recorded" in flat
    assert "HTTP 429 or code 4013" in flat


async def test_rate_limit_code_and_accept_any_bot_reach_the_server() -> None:
    cmd = [sys.executable, "-m", "coze_async", "emulator", "--port", "0", "--quota", "chat=1/60"]
    cmd += ["--rate-limit-status", "429", "--rate-limit-code", "4013", "--accept-any-bot"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COZE_")}
    env["PYTHONUNBUFFERED"] = "1"
    async with await anyio.open_process(cmd, env=env) as proc:
        assert proc.stdout is not None
        seen = b""
        with anyio.fail_after(20):
            while b"Press Ctrl-C" not in seen:
                seen += await proc.stdout.receive()
        banner = seen.decode()
        url = banner.splitlines()[0].removeprefix("Coze emulator listening on ")
        assert "rejections: HTTP 429, code 4013" in banner
        assert f"echo {ECHO_BOT_ID} (and any other id)" in banner
        body = {
            "bot_id": "7499999999999999999",  # answered: --accept-any-bot
            "user_id": "u",
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
        }
        headers = {"Authorization": "Bearer emu_test_token"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v3/chat", json=body, headers=headers) as resp:
                assert (resp.status, (await resp.json())["code"]) == (200, 0)
            async with http.post(f"{url}/v3/chat", json=body, headers=headers) as resp:
                assert resp.status == 429
                assert (await resp.json())["code"] == 4013
        proc.terminate()
        with anyio.fail_after(20):
            assert await proc.wait() == 0
