"""The main job, first form: ``coze-async chat`` against the embedded emulator."""

from __future__ import annotations

import os
import subprocess
import sys


def test_chat_command_streams_from_embedded_emulator() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COZE_API_TOKEN", "COZE_API_BASE")}
    proc = subprocess.run(
        [sys.executable, "-m", "coze_async", "chat", "早上好"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    out = proc.stdout.decode()
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert out.strip() == "你说：早上好"
    # It says which target answered (issue 15.3).
    assert "coze-async chat: target: the embedded emulator" in err
    assert "tokens:" in err


def test_chat_command_with_token_needs_bot_id() -> None:
    env = {**os.environ, "COZE_API_TOKEN": "pat_x"}
    proc = subprocess.run(
        [sys.executable, "-m", "coze_async", "chat", "hi"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert b"--bot-id" in proc.stderr
