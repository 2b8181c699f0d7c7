"""``examples/oauth_jwt.py`` runs as documented: no account, the embedded emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "oauth_jwt.py"


def test_jwt_example_chats_as_a_service_app() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COZE_API_TOKEN", "COZE_API_BASE")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "你好"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    assert "你说：你好" in out
    assert "authenticated with OAuthToken(access_token=czs_***, expires_in=" in out
    assert "token exchanges: 1" in out
    assert "PRIVATE KEY" not in out + proc.stderr.decode()
