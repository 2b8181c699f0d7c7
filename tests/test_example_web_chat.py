"""``examples/web_chat/app.py`` runs as documented: one command, no token, a page and a relay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest

from coze_async.sse import SSEDecoder

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web_chat" / "app.py"


async def test_web_chat_example_serves_page_and_streams() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("COZE_API_TOKEN", "COZE_API_BASE")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--port",
        "0",
        "--event-delay",
        "0.01",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        with anyio.fail_after(30):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("web chat: http://127.0.0.1:"), line
        url = line.split()[2]

        async with aiohttp.ClientSession() as http:
            with anyio.fail_after(30):
                async with http.get(url) as resp:
                    assert resp.status == 200
                    page = await resp.text()
                assert "new EventSource(" in page
                async with http.get(url + "chat", params={"q": "你好\n世界"}) as resp:
                    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
                    events = SSEDecoder().feed(await resp.read())
                async with http.get(url + "chat", params={"q": " "}) as resp:
                    assert resp.status == 400
        names = [e.event for e in events]
        assert names[0] == "chat" and names[-1] == "done"
        text = "".join(json.loads(e.data)["text"] for e in events if e.event == "delta")
        assert text == "你说：你好\n世界"

        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
