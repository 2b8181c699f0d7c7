"""What a route handler may use of the :class:`~coze_async.emulator.Emulator`: the :class:`Host`.

Handler modules (``chat``, ``conversations``, ``files``, ``workflows``, ``oauth``) are typed
against this protocol, never against ``server.Emulator``; ``server`` is the one module that
imports them. So the emulator's modules import each other without a circle, type-checking
imports included (``tests/test_emulator_imports.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from .bots import Bot, Turn
from .faults import FaultSpec
from .state import EmulatorState

__all__ = ["Handler", "Host", "RecordedRequest", "RequestContext", "Route"]

#: An aiohttp request handler, as routes are registered.
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: ``(method, path, handler, requires_auth)``, as every handler module lists its routes.
Route = tuple[str, str, Handler, bool]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the emulator received it (recorded before auth and faults)."""

    method: str
    path: str
    #: Query parameters (the first value wins for repeated keys).
    query: dict[str, str]
    raw_query: str
    #: Case-insensitive header mapping.
    headers: Mapping[str, str]
    #: Parsed JSON body, or None when the body is empty or not JSON.
    json: Any
    body: bytes
    #: ``time.monotonic()`` when the request arrived.
    at: float


@dataclass(slots=True)
class RequestContext:
    """Per-request data the middleware hands to handlers."""

    logid: str
    faults: FaultSpec
    recorded: RecordedRequest
    #: ``x-coze-emulator-repeat`` value (how many times bots repeat their reply).
    repeat: int = 1
    #: The user the request's token belongs to ("" on routes exempt from auth).
    user_id: str = ""
    #: The token is an OAuth access token the emulator issued (not a personal one).
    oauth: bool = False


class Host(Protocol):
    """The emulator as its route handlers see it (exactly what they use, nothing more)."""

    #: Conversations, chats, messages and files.
    state: EmulatorState
    #: ``(conversation_id, chat_id)`` of every ``/v3/chat/cancel`` request handled.
    cancels: list[tuple[str, str]]
    #: Largest upload accepted.
    max_upload_bytes: int
    #: The account's plan as Coze names it (``free`` refuses ``is_async`` workflow runs).
    user_level: str
    #: Seconds an async workflow run stays ``Running`` before it finishes.
    workflow_duration: float

    def context(self, request: web.Request) -> RequestContext:
        """The :class:`RequestContext` the middleware attached to ``request``."""
        ...

    def ok(self, request: web.Request, data: Any = None, *, has_data: bool = True) -> web.Response:
        """Success envelope carrying this request's logid."""
        ...

    def bot_for(self, bot_id: str) -> Bot:
        """The bot answering ``bot_id`` (raises ``ApiError(4200)`` for an unknown one)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, owned by the emulator."""
        ...

    def complete_later(self, turn: Turn) -> None:
        """Settle a non-stream turn after the emulator's chat duration."""
        ...

    async def stream_frames(self, request: web.Request, frames: Sequence[bytes]) -> web.Response:
        """An SSE response whose body is exactly ``frames`` (no stream faults)."""
        ...

    async def stream_turn(
        self, request: web.Request, turn: Turn, *, delay: float | None = None
    ) -> web.StreamResponse:
        """Write ``turn``'s frames as an SSE response, applying the request's faults."""
        ...
