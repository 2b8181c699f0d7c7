"""The ``coze-async`` command as a new user meets it (issue 15): target, guard, subcommands.

Every test runs the command as a subprocess. A run "against Coze" targets an emulator started
here (``--target coze --base-url http://127.0.0.1:PORT``), so nothing reaches real Coze, and
the emulator's own request log says what was sent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping

import anyio
import pytest

from coze_async.emulator import ECHO_BOT_ID, Emulator
from coze_async.ratelimit import Plan

pytestmark = pytest.mark.anyio


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COZE_")}
    env.update(extra)
    return env


async def _run(*args: str, env: Mapping[str, str] | None = None, stdin: bytes = b"") -> tuple[
    int, str, str
]:
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "coze_async", *args],
            input=stdin,
            check=False,
            env=dict(env if env is not None else _env()),
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _sent(emu: Emulator, prefix: str = "/v") -> int:
    """API calls the emulator received (its own log, not the client's view)."""
    return sum(1 for r in emu.requests if r.path.startswith(prefix))


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(plan=Plan.PERSONAL_FREE) as server:
        yield server


# ----------------------------------------------------------------------------- 15.2 bench target


async def test_an_exported_token_does_not_take_over_the_main_command() -> None:
    # The README's main command (shorter) with a token exported: still the embedded emulator.
    env = _env(COZE_API_TOKEN="pat_exported_by_the_user")
    code, out, err = await _run("bench", "--duration", "1", "--concurrency", "5", env=env)
    assert code == 0, (out, err)
    assert "target: the embedded emulator" in err
    assert ", 0 failed" in out and "server-side rate-limit rejections: 0" in out
    assert "may make" not in err  # no Coze estimate: nothing goes to Coze


async def test_an_emulator_url_gets_the_emulator_token_not_the_exported_one(
    emu: Emulator,
) -> None:
    env = _env(COZE_API_TOKEN="pat_exported_by_the_user")
    code, out, err = await _run("bench", "--base-url", emu.url, "--requests", "4", env=env)
    assert code == 0, (out, err)
    assert f"target: the emulator at {emu.url}" in err
    calls = [r for r in emu.requests if r.path == "/v3/chat"]
    assert len(calls) == 4
    assert {r.headers["Authorization"] for r in calls} == {f"Bearer {emu.token}"}


def _coze(emu: Emulator, *args: str) -> list[str]:
    return [
        "bench",
        "--target",
        "coze",
        "--base-url",
        emu.url,
        "--token",
        emu.token,
        "--bot-id",
        ECHO_BOT_ID,
        *args,
    ]


async def test_a_free_plan_run_against_coze_is_refused_before_anything_is_sent(
    emu: Emulator,
) -> None:
    code, out, err = await _run(*_coze(emu, "--duration", "1"))
    assert code == 2, (out, err)
    # 20 chats/s over 1 s plus 5 s of grace; the 300/min model window allows more.
    assert "may make up to 120 API calls" in err
    assert "500 API calls per account" in err and "--max-calls" in err
    assert _sent(emu) == 0


async def test_a_run_over_max_calls_is_refused_and_under_it_runs_as_estimated(
    emu: Emulator,
) -> None:
    code, _, err = await _run(*_coze(emu, "--requests", "3", "--max-calls", "2"))
    assert code == 2
    assert "up to 3 API calls, more than --max-calls 2" in err
    assert _sent(emu) == 0

    code, out, err = await _run(*_coze(emu, "--requests", "3", "--max-calls", "3"))
    assert code == 0, (out, err)
    assert f"target: Coze at {emu.url}" in err
    assert "may make up to 3 API calls" in err
    assert _sent(emu) == 3  # the estimate was an honest bound


async def test_an_unbounded_run_against_coze_needs_yes(emu: Emulator) -> None:
    code, _, err = await _run(*_coze(emu, "--no-limit", "--duration", "1", "--max-calls", "400"))
    assert code == 2
    assert "an unbounded number of API calls" in err
    assert "no bound: the limiter is off" in err
    assert _sent(emu) == 0


async def test_coze_without_a_token_is_a_usage_error(emu: Emulator) -> None:
    code, _, err = await _run("bench", "--target", "coze", "--base-url", emu.url)
    assert code == 2
    assert "needs a token" in err
    assert _sent(emu) == 0


# ----------------------------------------------------------------------------- 15.3 chat target


async def test_chat_base_url_without_a_token_uses_that_emulator(emu: Emulator) -> None:
    code, out, err = await _run("chat", "--base-url", emu.url, "早上好")
    assert code == 0, err
    assert out.strip() == "你说：早上好"
    assert f"target: the emulator at {emu.url}" in err
    assert _sent(emu, "/v3/chat") == 1


async def test_chat_takes_coze_api_base_from_the_environment(emu: Emulator) -> None:
    code, out, err = await _run("chat", "你好", env=_env(COZE_API_BASE=emu.url))
    assert code == 0, err
    assert out.strip() == "你说：你好"
    assert f"target: the emulator at {emu.url}" in err
    assert _sent(emu, "/v3/chat") == 1


async def test_chat_to_a_remote_host_without_a_token_says_so() -> None:
    # No token: nothing can be sent, so this never reaches the host.
    code, out, err = await _run("chat", "--base-url", "https://api.coze.com", "hi")
    assert code == 2
    assert out == ""
    assert "Coze at https://api.coze.com needs a token" in err


async def test_chat_with_no_configuration_names_the_embedded_emulator() -> None:
    code, out, err = await _run("chat", "hi")
    assert code == 0, err
    assert out.strip() == "你说：hi"
    assert "target: the embedded emulator" in err
