"""The ``coze-async`` command as a new user meets it (issue 15): target, guard, subcommands.

Every test runs the command as a subprocess. A run "against Coze" targets an emulator started
here (``--target coze --base-url http://127.0.0.1:PORT``), so nothing reaches real Coze, and
the emulator's own request log says what was sent.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from coze_async.emulator import (
    ECHO_BOT_ID,
    ECHO_WORKFLOW_ID,
    QA_WORKFLOW_ID,
    TOOL_BOT_ID,
    Emulator,
    QuestionWorkflow,
)
from coze_async.ratelimit import Plan

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COZE_")}
    env.update(extra)
    return env


async def _run(
    *args: str, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> tuple[int, str, str]:
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
    code, out, err = await _run("bench", "--requests", "5", "--concurrency", "5", env=env)
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


# ----------------------------------------------------------------------------- 15.10 one parser


async def test_version_prints_the_package_version() -> None:
    from coze_async import __version__

    code, out, _ = await _run("--version")
    assert code == 0
    assert out.strip() == f"coze-async {__version__}"


def _options(help_text: str) -> str:
    """The help after the usage block: descriptions and options, not the program name."""
    return help_text.split("\n\n", 1)[1]


async def test_the_emulator_subcommand_has_the_module_s_options_and_help() -> None:
    code, sub_help, _ = await _run("emulator", "--help")
    assert code == 0
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "coze_async.emulator", "--help"], env=_env()
        )
    module_help = done.stdout.decode()
    assert _options(sub_help) == _options(module_help)
    for flag in ("--quota", "--no-record", "--coalesce", "--chat-duration", "--rate-limit-status"):
        assert flag in sub_help


async def test_the_emulator_subcommand_enforces_its_quota_flag() -> None:
    import aiohttp

    cmd = [sys.executable, "-m", "coze_async", "emulator", "--port", "0", "--quota", "chat=1/1"]
    cmd += ["--no-record", "--coalesce"]
    async with await anyio.open_process(cmd, env=_env(PYTHONUNBUFFERED="1")) as proc:
        assert proc.stdout is not None
        seen = b""
        with anyio.fail_after(20):
            while b"Press Ctrl-C" not in seen:
                seen += await proc.stdout.receive()
        banner = seen.decode()
        url = banner.splitlines()[0].removeprefix("Coze emulator listening on ")
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert "quotas: chat 1/1s" in banner
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_emulator/quota") as resp:
            report = await resp.json()
        proc.terminate()
        with anyio.fail_after(20):
            code = await proc.wait()
    assert report["buckets"]["chat"]["limit"] == 1
    assert code == 0


async def test_a_typo_in_a_bench_flag_shows_bench_s_usage() -> None:
    code, out, err = await _run("bench", "--duraton", "1")
    assert code == 2
    assert out == ""
    assert err.startswith("usage: coze-async bench ")
    assert "coze-async bench: error: unrecognized arguments: --duraton 1" in err


# ----------------------------------------------------------------------------- 15.11 port in use


@pytest.fixture
def busy_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port: int = s.getsockname()[1]
        yield port


async def test_a_port_in_use_is_one_line_naming_it(busy_port: int) -> None:
    commands = {
        "coze-async emulator": ["-m", "coze_async", "emulator"],
        "python -m coze_async.emulator": ["-m", "coze_async.emulator"],
        "web_chat example": [str(EXAMPLES / "web_chat" / "app.py")],
    }
    done: dict[str, Any] = {}

    async def one(name: str, command: list[str]) -> None:
        done[name] = await anyio.run_process(
            [sys.executable, *command, "--port", str(busy_port)], check=False, env=_env()
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:  # three interpreters start at once
            for name, command in commands.items():
                tg.start_soon(one, name, command)
    for name, proc in done.items():
        err = proc.stderr.decode()
        assert proc.returncode == 1, name
        assert "Traceback" not in err, name
        assert len(err.strip().splitlines()) == 1, (name, err)
        assert f"port {busy_port} on 127.0.0.1 is already in use" in err, name
        assert "--port 0" in err, name


# ----------------------------------------------------------------------------- 15.12 tool calls


async def test_chat_with_a_tool_bot_prints_the_calls_and_exits_3(emu: Emulator) -> None:
    code, out, err = await _run("chat", "--base-url", emu.url, "--bot-id", TOOL_BOT_ID, "天气")
    assert code == 3, err
    assert out.strip() == 'tool call: get_weather {"city":"北京"}'
    assert "--tool-output get_weather=JSON" in err
    assert _sent(emu, "/v3/chat/submit_tool_outputs") == 0


async def test_chat_answers_tool_calls_from_tool_output_flags(emu: Emulator) -> None:
    code, out, err = await _run(
        "chat",
        "--base-url",
        emu.url,
        "--bot-id",
        TOOL_BOT_ID,
        "--tool-output",
        'get_weather={"temp": 25}',
        "天气",
    )
    assert code == 0, err
    assert out.strip() == '天气：{"temp": 25}'
    submits = [r for r in emu.requests if r.path == "/v3/chat/submit_tool_outputs"]
    assert len(submits) == 1
    assert [o["output"] for o in submits[0].json["tool_outputs"]] == ['{"temp": 25}']


async def test_chat_does_not_submit_when_a_requested_tool_has_no_output(emu: Emulator) -> None:
    args = ["--bot-id", TOOL_BOT_ID, "--tool-output", "get_time=12:00", "天气"]
    code, out, err = await _run("chat", "--base-url", emu.url, *args)
    assert code == 3, err
    assert "tool call: get_weather" in out
    assert _sent(emu, "/v3/chat/submit_tool_outputs") == 0


async def test_a_tool_output_without_a_name_is_a_usage_error() -> None:
    code, _, err = await _run("chat", "--tool-output", "no-equals-sign", "hi")
    assert code == 2
    assert err.startswith("usage: coze-async chat ")
    assert "NAME=JSON" in err


# ----------------------------------------------------------------------------- 15.9 workflow


def _paths(emu: Emulator) -> list[str]:
    return [r.path for r in emu.requests]


async def test_workflow_run_parses_params_as_json_or_text_and_prints_debug_url(
    emu: Emulator,
) -> None:
    args = ["--param", "n=3", "--param", "name=abc", "--param", 'tags=["a"]', "--param", "ok=true"]
    code, out, err = await _run("workflow", "run", ECHO_WORKFLOW_ID, "--base-url", emu.url, *args)
    assert code == 0, err
    assert json.loads(out) == {"output": {"n": 3, "name": "abc", "tags": ["a"], "ok": True}}
    assert "debug_url: https://www.coze.cn/work_flow?execute_id=" in err
    assert _paths(emu) == ["/v1/workflow/run"]


async def test_workflow_run_resumes_an_interrupt_with_a_line_from_stdin(emu: Emulator) -> None:
    code, out, err = await _run(
        "workflow", "run", QA_WORKFLOW_ID, "--base-url", emu.url, stdin="杭州\n".encode()
    )
    assert code == 0, err
    assert json.loads(out) == {"output": "杭州：晴，25°C"}
    assert "the workflow asks: 请问你想查看哪个城市的天气呢？" in err
    assert _paths(emu) == ["/v1/workflow/run", "/v1/workflows/resume"]


async def test_workflow_stream_resumes_with_resume_data(emu: Emulator) -> None:
    # Done with a debug_url (the documented form; the recorded Done is {}).
    emu.add_workflow(QA_WORKFLOW_ID, QuestionWorkflow().configured(done_debug_url=True))
    code, out, err = await _run(
        "workflow", "stream", QA_WORKFLOW_ID, "--base-url", emu.url, "--resume-data", "成都"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert "成都今天晴，气温 25°C。" in lines
    assert json.loads(lines[-1]) == {"output": "成都：晴，25°C"}
    assert "debug_url: https://" in err
    assert _paths(emu) == ["/v1/workflow/stream_run", "/v1/workflow/stream_resume"]


async def test_an_unanswered_interrupt_exits_3_without_resuming(emu: Emulator) -> None:
    code, _, err = await _run("workflow", "stream", QA_WORKFLOW_ID, "--base-url", emu.url)
    assert code == 3
    assert "--resume-data" in err
    assert _paths(emu) == ["/v1/workflow/stream_run"]


async def test_workflow_with_no_configuration_runs_on_the_embedded_emulator() -> None:
    code, out, err = await _run("workflow", "run", ECHO_WORKFLOW_ID, "--param", "input=早上好")
    assert code == 0, err
    assert json.loads(out) == {"output": "早上好"}
    assert "target: the embedded emulator" in err


# ----------------------------------------------------------------------------- 15.13 extras


@pytest.mark.parametrize(
    ("example", "missing", "extra"),
    [
        ("oauth_jwt.py", "jwt", "jwt"),
        ("oauth_jwt.py", "cryptography", "jwt"),
        ("web_chat/fastapi_app.py", "fastapi", "examples"),
    ],
)
async def test_an_example_without_its_extra_names_the_extra(
    example: str, missing: str, extra: str
) -> None:
    # The package is made unimportable (as when it is not installed), then the example runs.
    script = (
        f"import sys, runpy; sys.modules[{missing!r}] = None; "
        f"sys.argv = [{str(EXAMPLES / example)!r}]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    with anyio.fail_after(30):
        done = await anyio.run_process([sys.executable, "-c", script], check=False, env=_env())
    err = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in err
    assert f"pip install 'coze-async[{extra}]'" in err
    assert f"({missing} is not installed)" in err


def test_the_examples_extra_brings_fastapi_and_uvicorn() -> None:
    import tomllib

    meta = tomllib.loads((EXAMPLES.parent / "pyproject.toml").read_text())
    extras = meta["project"]["optional-dependencies"]
    assert extras["examples"] == ["fastapi>=0.110", "uvicorn>=0.29"]


# ----------------------------------------------------------------------------- README


def _readme_commands() -> list[str]:
    """The README's ``coze-async ...`` examples that run on the embedded emulator's ids."""
    import re

    text = (EXAMPLES.parent / "README.md").read_text()
    section = text.split("## The command line", 1)[1].split("\n## ", 1)[0]
    spans = re.findall(r"`(coze-async [^`]+)`", section.replace("\n", " "))
    return [c for c in spans if re.search(r"\b7[45]0{16}\d\b", c)]


async def test_the_readme_s_command_line_examples_run_as_shown() -> None:
    import shlex

    commands = _readme_commands()
    assert len(commands) >= 2  # the tool-output chat and the workflow with --resume-data
    results: dict[str, tuple[int, str, str]] = {}

    async def one(command: str) -> None:
        results[command] = await _run(*shlex.split(command)[1:])

    async with anyio.create_task_group() as tg:
        for command in commands:
            tg.start_soon(one, command)
    for command, (code, out, err) in results.items():
        assert code == 0, (command, err)
        assert out.strip(), command
