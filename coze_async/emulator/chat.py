"""Chat v3 routes: create (stream or not), retrieve, message list, cancel, submit_tool_outputs.

Request validation follows coze-api.md §2: null-valued and unknown JSON fields are ignored
(cozepy sends explicit nulls), an empty ``conversation_id=`` query counts as absent, and
request-level errors on stream endpoints are JSON envelopes, not SSE (except 4016, below).

Error codes used: 4000 bad/missing parameter (the msg names the field), 4001 unknown chat
(any chat-scoped route whose conversation_id/chat_id pair does not name a chat of the
caller's), 4002 unknown (or another user's) conversation on ``/v3/chat``, 4200 a ``bot_id``
that names no bot (Coze's text; ``Emulator(accept_any_bot=True)`` answers it with the echo
bot instead), 4007 ``stream=false`` with ``auto_save_history=false``, 4016 conversation
occupied, 4104 chat not cancelable. ``submit_tool_outputs`` on a chat that is not
``requires_action`` answers 4000. 4016 on a streamed chat is an SSE ``error`` event (HTTP
200, ``text/event-stream``, data ``{"code":4016,"msg":…}``), as Coze sends it; on a
non-streamed chat it is the usual envelope. ``POST /v3/chat/retrieve`` (what cozepy and
coze-js send) works with a personal token but answers 4100 with an OAuth access token, as
at Coze (coze-js #314); ``GET`` works with both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from .bots import TurnContext, describe_content, failed_turn
from .host import Host, Route
from .request import (
    NOT_A_CHAT_REQUEST,
    json_object,
    opt_bool,
    opt_str_map,
    parse_messages,
    required_str,
)
from .state import ChatRecord, input_records
from .wire import ApiError, error_message, sse_frame

__all__ = ["ChatAPI"]


class ChatAPI:
    """Handlers for ``/v3/chat*``, bound to one :class:`~coze_async.emulator.Emulator`."""

    def __init__(self, emu: Host) -> None:
        self.emu = emu
        self.state = emu.state

    def routes(self) -> list[Route]:
        """``(method, path, handler, requires_auth)`` for every chat route."""
        return [
            ("POST", "/v3/chat", self.create, True),
            # Docs and coze-go use GET; cozepy and coze-js use POST with a query string, which
            # Coze refuses (4100) with an OAuth token (coze-js #314).
            ("GET", "/v3/chat/retrieve", self.retrieve, True),
            ("POST", "/v3/chat/retrieve", self.retrieve_post, True),
            ("GET", "/v3/chat/message/list", self.list_messages, True),
            ("POST", "/v3/chat/cancel", self.cancel, True),
            ("POST", "/v3/chat/submit_tool_outputs", self.submit_tool_outputs, True),
        ]

    # ------------------------------------------------------------------ POST /v3/chat

    async def create(self, request: web.Request) -> web.StreamResponse:
        """Start a chat; stream it (SSE) or return it in progress and finish in background."""
        emu = self.emu
        ctx = emu.context(request)
        body = json_object(ctx.recorded, invalid=NOT_A_CHAT_REQUEST)
        _check_chat_types(body)
        bot_id = required_str(body, "bot_id")
        user_id = required_str(body, "user_id")
        bot = emu.bot_for(bot_id)  # 4200 for a bot that does not exist
        stream = opt_bool(body, "stream", default=False)
        auto_save = opt_bool(body, "auto_save_history", default=True)
        meta_data = opt_str_map(body, "meta_data")
        describe_file = self.file_describer(ctx.user_id)
        inputs = parse_messages(body.get("additional_messages"), describe_file)
        if not stream and not auto_save:
            raise ApiError(4007)

        conversation_id = request.query.get("conversation_id") or None
        conv = None
        if conversation_id is not None:
            # Another user's conversation is as invisible as a missing one.
            conv = self.state.visible_conversation(conversation_id, ctx.user_id)
            if conv is None:
                raise ApiError(4002, f"Invalid conversation: {conversation_id} does not exist.")
            if conv.occupied:
                if stream:
                    # A streamed chat is refused by an SSE error event (HTTP 200), as Coze
                    # does; a non-streamed one by the usual envelope.
                    error = {"code": 4016, "msg": error_message(4016)}
                    return await emu.stream_frames(request, [sse_frame("error", error)])
                raise ApiError(4016)

        query = _last_user_text(inputs)
        if query is None and conv is not None:
            query = next(
                (
                    describe_content(m.content_type, m.content, describe_file)
                    for m in reversed(conv.messages)
                    if m.role == "user"
                ),
                None,
            )
        if query is None:
            raise ApiError(
                4000,
                "Invalid parameter additional_messages: a user message is required "
                "when the conversation has none.",
            )

        if conv is None:
            conv = self.state.create_conversation(creator_id=ctx.user_id, bot_id=bot_id)
        elif not conv.bot_id:
            conv.bot_id = bot_id  # a conversation is listed under the bot that chats in it
        records = input_records(conv, inputs)
        chat = self.state.start_chat(
            conv,
            bot_id=bot_id,
            user_id=user_id,
            meta_data=meta_data,
            inputs=records,
            auto_save_history=auto_save,
        )
        for record in records:
            record.chat_id = chat.id
        turn_ctx = TurnContext(self.state, chat, conv, query, ctx.repeat)
        if ctx.faults.chat_failed:
            code = ctx.faults.error_code if ctx.faults.error_code is not None else 5000
            # The recorded failure text for 5000; realistic texts (e.g. 4028 quota) otherwise.
            msg = "event interval error" if code == 5000 else error_message(code)
            turn = failed_turn(turn_ctx, code, msg)
        else:
            turn = bot.start(turn_ctx)
        if stream:
            return await emu.stream_turn(request, turn)
        emu.complete_later(turn)
        return emu.ok(request, chat.to_json(inserted=True))

    # ------------------------------------------------------------------ chat-scoped routes

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET``/``POST /v3/chat/retrieve?conversation_id=&chat_id=`` -> Chat."""
        chat = self._chat_from_query(request)
        return self.emu.ok(request, chat.to_json())

    async def retrieve_post(self, request: web.Request) -> web.StreamResponse:
        """``POST /v3/chat/retrieve``: as GET for personal tokens; 4100 for OAuth tokens."""
        if self.emu.context(request).oauth:
            raise ApiError(4100)
        return await self.retrieve(request)

    async def list_messages(self, request: web.Request) -> web.StreamResponse:
        """``GET /v3/chat/message/list`` -> the chat's messages except the user's query.

        A failed chat answers an envelope without ``data`` at all, as Coze does (coze-py #425).
        """
        chat = self._chat_from_query(request)
        if chat.status == "failed":
            return self.emu.ok(request, has_data=False)
        return self.emu.ok(request, [m.to_json() for m in chat.messages])

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """``POST /v3/chat/cancel`` ``{conversation_id, chat_id}`` -> Chat (canceled) or 4104."""
        body = json_object(self.emu.context(request).recorded)
        conversation_id = body.get("conversation_id")
        chat_id = body.get("chat_id")
        # Recorded before validation so tests can see every cancel attempt the SDK made.
        self.emu.cancels.append(
            (
                conversation_id if isinstance(conversation_id, str) else "",
                chat_id if isinstance(chat_id, str) else "",
            )
        )
        chat = self._find_chat(
            required_str(body, "conversation_id"),
            required_str(body, "chat_id"),
            self.emu.context(request).user_id,
        )
        if not chat.active:
            raise ApiError(4104, f"{error_message(4104)} (status: {chat.status})")
        self.state.cancel_chat(chat)
        return self.emu.ok(request, chat.to_json())

    async def submit_tool_outputs(self, request: web.Request) -> web.StreamResponse:
        """``POST /v3/chat/submit_tool_outputs`` -> continue a ``requires_action`` chat."""
        emu = self.emu
        ctx = emu.context(request)
        chat = self._chat_from_query(request)
        body = json_object(ctx.recorded)
        stream = opt_bool(body, "stream", default=False)
        outputs = _parse_tool_outputs(body.get("tool_outputs"))
        if chat.status != "requires_action" or chat.required_action is None:
            raise ApiError(
                4000,
                f"Invalid chat status {chat.status!r}: tool outputs can only be submitted "
                "while the chat requires action.",
            )
        pending = [call["id"] for call in chat.required_action["submit_tool_outputs"]["tool_calls"]]
        submitted = [tool_call_id for tool_call_id, _ in outputs]
        unknown = [i for i in submitted if i not in pending]
        if unknown:
            raise ApiError(
                4000, f"Invalid parameter tool_outputs: unknown tool_call_id {unknown[0]}"
            )
        missing = [i for i in pending if i not in submitted]
        if missing:
            raise ApiError(4000, f"Invalid parameter tool_outputs: no output for {missing[0]}")
        conv = self.state.conversations[chat.conversation_id]
        self.state.resume_chat(chat)
        turn = emu.bot_for(chat.bot_id).resume(TurnContext(self.state, chat, conv, ""), outputs)
        if stream:
            return await emu.stream_turn(request, turn)
        emu.complete_later(turn)
        return emu.ok(request, chat.to_json())

    # ------------------------------------------------------------------ helpers

    def file_describer(self, user_id: str) -> Callable[[str], str | None]:
        """Labels file ids in ``object_string`` content for ``user_id`` (see bots.py)."""
        return lambda file_id: self.state.describe_file(file_id, user_id)

    def _chat_from_query(self, request: web.Request) -> ChatRecord:
        query = request.query
        return self._find_chat(
            required_str(query, "conversation_id"),
            required_str(query, "chat_id"),
            self.emu.context(request).user_id,
        )

    def _find_chat(self, conversation_id: str, chat_id: str, user_id: str) -> ChatRecord:
        chat = self.state.find_chat(conversation_id, chat_id)
        if chat is not None and self.state.visible_conversation(conversation_id, user_id) is None:
            chat = None  # another user's chat
        if chat is None:
            raise ApiError(
                4001,
                f"Invalid chat: no chat {chat_id} in conversation {conversation_id}.",
            )
        return chat


#: The JSON type of each chat request field the emulator reads: at Coze a value of another
#: type fails to decode into the request, which answers 4000 :data:`NOT_A_CHAT_REQUEST`.
_CHAT_FIELD_TYPES: Final[dict[str, type]] = {
    "bot_id": str,
    "user_id": str,
    "stream": bool,
    "auto_save_history": bool,
    "additional_messages": list,
    "meta_data": dict,
    "custom_variables": dict,
}


def _check_chat_types(body: dict[str, Any]) -> None:
    for key, kind in _CHAT_FIELD_TYPES.items():
        value = body.get(key)
        # bool is an int in Python, never a str/list/dict; a number is never a bool here.
        if value is not None and not isinstance(value, kind):
            raise ApiError(4000, NOT_A_CHAT_REQUEST)


def _last_user_text(inputs: list[dict[str, Any]]) -> str | None:
    for item in reversed(inputs):
        if item["role"] == "user":
            return str(item["text"])
    return None


def _parse_tool_outputs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise ApiError(4000, "Invalid parameter tool_outputs: a non-empty array is required.")
    outputs = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(4000, f"Invalid parameter tool_outputs[{index}]: must be an object.")
        tool_call_id = item.get("tool_call_id")
        output = item.get("output")
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise ApiError(4000, f"Invalid parameter tool_outputs[{index}].tool_call_id.")
        if not isinstance(output, str):
            raise ApiError(4000, f"Invalid parameter tool_outputs[{index}].output.")
        outputs.append((tool_call_id, output))
    return outputs
