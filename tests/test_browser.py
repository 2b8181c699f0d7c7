"""The web chat example in a real browser: headless Chromium driven over the DevTools protocol.

Chromium comes from Debian's ``chromium`` package (``.ci/run`` installs it; nothing is
downloaded at run time). The tests talk to it with the Chrome DevTools Protocol over an
``aiohttp`` websocket, so no browser-automation library is needed. Where Chromium is missing
the tests skip, saying why, except under ``CI``, where they fail: CI must run them.

Chain under test: emulator (echo bot, 50 ms between events) <- AsyncCoze <- the example's
aiohttp app (``examples/web_chat/app.py``) <- the page's ``EventSource`` in Chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import shutil
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from coze_async import AsyncCoze, Timeouts
from coze_async.emulator import Emulator
from coze_async.emulator.bots import FOLLOW_UPS

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web_chat" / "app.py"

# Headless and quiet: no GPU, no sandbox (CI runs as root), and nothing that phones home, so
# the only network traffic is loopback.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--no-pings",
    "--mute-audio",
    "--remote-debugging-port=0",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path is not None:
            return path
    reason = "Chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: .ci/run installs it, so CI must run these tests")
    pytest.skip(reason)


def load_example() -> ModuleType:
    """Import ``examples/web_chat/app.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location("web_chat_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- a minimal DevTools protocol client ------------------------------------------------------


class DevTools:
    """Commands and events over the browser's DevTools websocket (flattened sessions)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: dict[tuple[str | None, str], asyncio.Queue[dict[str, Any]]] = {}

    async def pump(self) -> None:
        """Dispatch incoming messages until the socket closes."""
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if "id" in data:
                future = self._replies.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(RuntimeError(f"DevTools: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                queue = self._listeners.get((data.get("sessionId"), data["method"]))
                if queue is not None:
                    queue.put_nowait(data.get("params", {}))
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("the DevTools socket closed"))

    def listen(self, method: str, session_id: str | None = None) -> asyncio.Queue[dict[str, Any]]:
        """A queue of ``method`` events; subscribe before the command that triggers them."""
        return self._listeners.setdefault((session_id, method), asyncio.Queue())

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[msg_id] = future
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        await self._ws.send_str(json.dumps(message))
        with anyio.fail_after(30):
            return await future


class Page:
    """One browser tab."""

    def __init__(self, devtools: DevTools, target_id: str, session_id: str) -> None:
        self.devtools = devtools
        self.target_id = target_id
        self.session_id = session_id

    async def goto(self, url: str) -> None:
        loaded = self.devtools.listen("Page.loadEventFired", self.session_id)
        await self.devtools.send("Page.enable", session_id=self.session_id)
        await self.devtools.send("Page.navigate", {"url": url}, session_id=self.session_id)
        with anyio.fail_after(20):
            await loaded.get()

    async def evaluate(self, expression: str) -> Any:
        """Run ``expression`` in the page, await it if it is a promise, return its value."""
        result = await self.devtools.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session_id=self.session_id,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise AssertionError(f"page script failed: {text}")
        return result["result"].get("value")

    async def close(self) -> None:
        await self.devtools.send("Target.closeTarget", {"targetId": self.target_id})


class Browser:
    """A running headless Chromium and its DevTools connection."""

    def __init__(self, devtools: DevTools) -> None:
        self.devtools = devtools

    async def new_page(self) -> Page:
        target = await self.devtools.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.devtools.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        return Page(self.devtools, target["targetId"], attached["sessionId"])


async def _devtools_url(proc: asyncio.subprocess.Process, log: deque[str]) -> str:
    assert proc.stderr is not None
    while True:
        line = await proc.stderr.readline()
        if not line:
            raise RuntimeError("Chromium exited before DevTools started:\n" + "\n".join(log))
        text = line.decode(errors="replace").rstrip()
        log.append(text)
        prefix = "DevTools listening on "
        if text.startswith(prefix):
            return text[len(prefix) :]


async def _drain(stream: asyncio.StreamReader, log: deque[str]) -> None:
    # Keep reading Chromium's stderr so a chatty browser never blocks on a full pipe.
    while line := await stream.readline():
        log.append(line.decode(errors="replace").rstrip())


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    binary = _chromium()
    log: deque[str] = deque(maxlen=50)
    proc = await asyncio.create_subprocess_exec(
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        with anyio.fail_after(30):
            ws_url = await _devtools_url(proc, log)
        assert proc.stderr is not None
        tasks.append(asyncio.create_task(_drain(proc.stderr, log)))
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url, max_msg_size=0) as ws,
        ):
            devtools = DevTools(ws)
            tasks.append(asyncio.create_task(devtools.pump()))
            yield Browser(devtools)
            with contextlib.suppress(Exception), anyio.move_on_after(5):
                await devtools.send("Browser.close")
    finally:
        if proc.returncode is None:
            with anyio.move_on_after(10):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- the example app on a test emulator ------------------------------------------------------


@pytest.fixture
async def slow_emu() -> AsyncIterator[Emulator]:
    # 50 ms between events: the reply visibly grows, as in the example's own main().
    async with Emulator(event_delay=0.05) as server:
        yield server


@pytest.fixture
async def web_chat(slow_emu: Emulator) -> AsyncIterator[str]:
    example = load_example()
    async with AsyncCoze(
        token=slow_emu.token, base_url=slow_emu.url, timeouts=Timeouts(read=10)
    ) as coze:
        runner = web.AppRunner(example.make_app(coze))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}/"
        finally:
            await runner.cleanup()


# Records every distinct value of #reply until the page reaches a final state.
WATCH_REPLY = """
new Promise((resolve, reject) => {
  const reply = document.getElementById("reply");
  const seen = [];
  const record = () => {
    const text = reply.textContent;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(record).observe(
    reply, {childList: true, characterData: true, subtree: true});
  const timer = setTimeout(
    () => reject(new Error("no final state; state=" + document.body.dataset.state)), 20000);
  new MutationObserver(() => {
    const state = document.body.dataset.state;
    if (state === "done" || state === "error") {
      clearTimeout(timer);
      record();
      resolve({
        state,
        seen,
        final: reply.textContent,
        status: document.getElementById("status").textContent,
        suggestions: [...document.querySelectorAll("#suggestions button")].map(
          (b) => b.textContent),
      });
    }
  }).observe(document.body, {attributes: true, attributeFilter: ["data-state"]});
  document.getElementById("q").value = %s;
  document.getElementById("send").click();
})
"""

# Sends a message and resolves with the reply's first text.
FIRST_TEXT = """
new Promise((resolve, reject) => {
  const reply = document.getElementById("reply");
  const timer = setTimeout(() => reject(new Error("no reply text")), 20000);
  new MutationObserver(() => {
    if (reply.textContent) { clearTimeout(timer); resolve(reply.textContent); }
  }).observe(reply, {childList: true, characterData: true, subtree: true});
  document.getElementById("q").value = %s;
  document.getElementById("send").click();
})
"""


async def test_page_shows_the_reply_growing(browser: Browser, web_chat: str) -> None:
    page = await browser.new_page()
    await page.goto(web_chat)
    text = "早上好，今天想聊聊浏览器里的流式输出是怎么一点点长出来的"
    with anyio.fail_after(30):
        result = await page.evaluate(WATCH_REPLY % json.dumps(text))

    assert result["state"] == "done", result["status"]
    assert result["final"] == "你说：" + text
    seen = result["seen"]
    assert len(seen) >= 3, f"the reply should grow in steps, saw {seen}"
    for shorter, longer in itertools.pairwise(seen):
        assert longer.startswith(shorter) and len(longer) > len(shorter), seen
    assert seen[-1] == result["final"]
    assert result["suggestions"] == list(FOLLOW_UPS)
    assert "tokens" in result["status"]
    await page.close()


async def test_closing_the_page_cancels_the_chat(
    browser: Browser, web_chat: str, slow_emu: Emulator
) -> None:
    page = await browser.new_page()
    await page.goto(web_chat)
    # ~100 deltas 50 ms apart: the reply is still streaming for seconds after it starts.
    text = "这是一段很长的话。" * 45
    with anyio.fail_after(30):
        first = await page.evaluate(FIRST_TEXT % json.dumps(text))
        assert first.startswith("你说")
        await page.close()
        # The relay notices at its next write, cancels the chat, then closes the upstream
        # stream: the emulator going idle means both have happened.
        await slow_emu.wait_idle()

    assert len(slow_emu.cancels) == 1
    conversation_id, chat_id = slow_emu.cancels[0]
    chat = slow_emu.state.find_chat(conversation_id, chat_id)
    assert chat is not None and chat.status == "canceled"
    assert slow_emu.open_streams == 0
