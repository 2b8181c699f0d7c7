"""``examples/workflow_stream.py`` runs as documented: no token, the embedded emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "workflow_stream.py"


def test_workflow_example_answers_the_question_and_finishes() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COZE_API_TOKEN", "COZE_API_BASE")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "成都"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "the workflow asks: 请问你想查看哪个城市的天气呢？" in out
    assert "answering: 成都" in out
    assert "output: 成都：晴，25°C" in out
    assert "debug page: https://www.coze.cn/work_flow?execute_id=" in out
