"""A browser chat that streams a Coze bot's reply as it is generated.

Runs as is, with no token: it starts the local Coze emulator in-process (its echo bot answers
"你说：<your text>" a few characters at a time) and serves one page::

    python examples/web_chat/app.py                # then open http://127.0.0.1:8080/
    python examples/web_chat/app.py --port 0       # any free port (the URL is printed)

The page (``index.html``, vanilla JS) opens an ``EventSource`` on ``GET /chat?q=...``: a GET
with the text in the query string keeps the browser side to the built-in ``EventSource``
(automatic SSE parsing, no fetch-stream code). The handler relays the chat with
``coze_async.relay.relay_response``: text deltas, the completed answer, follow-up
suggestions, usage, then ``done`` (or one ``error`` frame, with a code and a fixed message;
the details are logged). Closing the tab or pressing "停止" closes the connection; the relay
notices, closes the upstream stream and cancels the chat at Coze so it stops generating.

Only the app's own page may start chats: a request another site's page makes (its browser
sends ``Sec-Fetch-Site: cross-site`` and its ``Origin``) is refused with 403 before anything
is sent to Coze. Pass ``allowed_origins=["https://your.front.end"]`` to ``make_app`` if the
page is served from another origin (or through a proxy that rewrites ``Host``).

Against the real Coze, build ``make_app(AsyncCoze(token="pat_..."), bot_id="<your bot>")``
instead of using the emulator, and derive ``user_id`` from your own login session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Collection
from pathlib import Path

from aiohttp import web

from coze_async import AsyncCoze, Message
from coze_async.emulator import ECHO_BOT_ID, Emulator
from coze_async.emulator.__main__ import listen_error
from coze_async.relay import relay_response

INDEX = Path(__file__).resolve().parent / "index.html"
#: Longest message the page may send (a GET query string should stay small).
MAX_QUERY_CHARS = 2000


def make_app(
    coze: AsyncCoze,
    *,
    bot_id: str = ECHO_BOT_ID,
    user_id: str = "web-demo",
    heartbeat: float = 15.0,
    allowed_origins: Collection[str] = (),
) -> web.Application:
    """The web app: ``GET /`` serves the page, ``GET /chat?q=`` streams the bot's reply.

    ``coze`` is owned by the caller (keep it open while the app runs). ``/chat`` serves
    same-origin pages, non-browser clients and pages from ``allowed_origins``; other
    cross-site requests get 403.
    """

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(INDEX, headers={"Cache-Control": "no-cache"})

    async def chat(request: web.Request) -> web.StreamResponse:
        text = request.query.get("q", "").strip()
        if not text or len(text) > MAX_QUERY_CHARS:
            raise web.HTTPBadRequest(text=f"q must be 1-{MAX_QUERY_CHARS} characters")
        stream = coze.chat.stream(bot_id=bot_id, user_id=user_id, messages=[Message.user(text)])
        # relay_response checks Origin / Sec-Fetch-Site first: a cross-site request gets 403
        # and the stream is never sent.
        return await relay_response(
            request, stream, heartbeat=heartbeat, allowed_origins=allowed_origins
        )

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/chat", chat)
    return app


async def main(host: str, port: int, event_delay: float) -> None:
    """Start the emulator and the web app; serve until interrupted (Ctrl-C)."""
    async with (
        Emulator(event_delay=event_delay) as emu,
        AsyncCoze(token=emu.token, base_url=emu.url) as coze,
    ):
        runner = web.AppRunner(make_app(coze))
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                # One line naming the port, not a traceback: the usual cause is another server
                # (often the emulator, also on 8080) already listening there.
                raise SystemExit(f"web chat: {listen_error(exc, host, port)}") from None
            bound_host, bound_port = runner.addresses[0][:2]
            print(f"web chat: http://{bound_host}:{bound_port}/  (Ctrl-C to stop)", flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C still works
                    loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--event-delay",
        type=float,
        default=0.08,
        help="seconds between the emulator's stream events (so the reply visibly grows)",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.event_delay))
