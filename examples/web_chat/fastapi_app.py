"""The same chat relay on FastAPI (or plain Starlette): ``StreamingResponse`` over frames.

FastAPI and uvicorn are not dependencies of coze_async: they come with the ``examples``
extra. To try it against the emulator::

    pip install -e '.[examples]'                            # fastapi and uvicorn
    coze-async emulator --port 8081 --event-delay 0.08 &    # a local Coze
    COZE_API_TOKEN=emu_test_token COZE_API_BASE=http://127.0.0.1:8081 \\
        uvicorn examples.web_chat.fastapi_app:app --port 8080    # from the repository root

and open http://127.0.0.1:8080/ (the same ``index.html`` as the aiohttp example).

Disconnects: Starlette's ``StreamingResponse`` listens for the ASGI ``http.disconnect``
message while it streams and cancels the streaming task when the browser goes away (recent
Starlette versions; older ones notice at the next failed send). Either way the frame
iterator is closed or cancelled, and ``sse_frames`` then closes the upstream stream and
cancels the chat at Coze, shielded from that cancellation.

Cross-site requests: ``/chat`` calls ``origin_allowed`` first, so that another site's page
cannot start chats billed to you (its browser sends ``Sec-Fetch-Site: cross-site`` and its
``Origin``); it gets 403 and nothing is sent to Coze. List the origins of other front ends
(or your public origin, behind a proxy that rewrites ``Host``) in ``ALLOWED_ORIGINS``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import (
        FileResponse,
        Response,
        StreamingResponse,
    )
except ImportError as exc:
    # A one-line pointer to the extra instead of a traceback about a missing module.
    missing = (exc.name or "?").partition(".")[0]
    raise SystemExit(
        f"examples/web_chat/fastapi_app.py needs the examples extra ({missing} is not "
        "installed): pip install 'coze-async[examples]'"
    ) from None

from coze_async import AsyncCoze, Message
from coze_async.emulator import ECHO_BOT_ID
from coze_async.relay import RELAY_HEADERS, origin_allowed, sse_frames

INDEX = Path(__file__).resolve().parent / "index.html"
BOT_ID = ECHO_BOT_ID  # your bot's id at Coze
#: Other origins whose pages may use /chat, e.g. ("https://app.example.com",).
ALLOWED_ORIGINS: tuple[str, ...] = ()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client for the whole app: it owns the connection pool (and the quota limiter).
    async with AsyncCoze() as coze:  # COZE_API_TOKEN, COZE_API_BASE from the environment
        app.state.coze = coze
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def index() -> FileResponse:
    return FileResponse(INDEX)


@app.get("/chat")
async def chat(request: Request, q: str) -> Response:
    # Before anything else: a cross-site request must not start a chat.
    if not origin_allowed(
        request.headers,
        host=request.headers.get("host"),
        scheme=request.url.scheme,
        allowed_origins=ALLOWED_ORIGINS,
    ):
        return Response("cross-site request refused\n", status_code=403)
    if not q.strip() or len(q) > 2000:
        raise HTTPException(400, "q must be 1-2000 characters")
    if "last-event-id" in request.headers:
        # An EventSource reconnect: relays are not resumable. 204 stops EventSource.
        return Response(status_code=204)
    coze: AsyncCoze = request.app.state.coze
    stream = coze.chat.stream(bot_id=BOT_ID, user_id="web-demo", messages=[Message.user(q)])
    return StreamingResponse(sse_frames(stream), headers=dict(RELAY_HEADERS))
