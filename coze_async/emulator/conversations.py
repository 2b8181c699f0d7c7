"""Conversation, message and feedback routes (coze-api.md §3), sharing the chats' state.

Conversations created here and by ``/v3/chat`` live in the same store: a chat's question and
answer are listable as conversation messages, and clearing a conversation starts the section
the next chat runs in. Everything is scoped to the caller: another user's conversation (or a
message in it) is answered exactly like a missing one.

Paging, as Coze documents it:

* conversations: ``page_num``/``page_size`` (1-50), newest first unless ``sort_order=ASC``;
  ``has_more`` says whether a later page has items;
* messages: ``order`` (``desc`` by default) then the cursors, relative to the listing order:
  ``after_id`` keeps what comes after that message, ``before_id`` what comes before it (the
  ``limit`` closest to it, when it is the only cursor); ``first_id``/``last_id`` name the
  page's ends and ``has_more`` says whether more lie beyond the page in the direction read.
  A cursor need not be an existing message (ids are ordered), so deleting the cursor message
  does not break paging. ``0`` or an empty string means "no cursor".

Error codes: 4000 bad or missing parameter (the msg names it), 4002 unknown conversation,
4003 meta_data over the limits, 4005 unknown message or message content the call refuses
(delete of a tool message, feedback on a non-answer, malformed object_string content), 4016
clearing the context while a chat runs in the conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from .bots import describe_content
from .host import Host, Route
from .request import int_param, json_object, opt_str, opt_str_map, parse_messages, required_str
from .state import API_CONNECTOR_ID, Conversation, MessageRecord, input_records, new_id, now
from .wire import LOGID_HEADER, ApiError, dumps

__all__ = ["ConversationsAPI"]

_MAX_NAME = 100
_MAX_PAGE = 50
#: Channels whose conversations the list API shows (API and Chat SDK).
_LISTED_CONNECTORS = frozenset({API_CONNECTOR_ID, "999"})
#: Message types listed without ``include_middle_message`` (user-created ones have "").
_PLAIN_TYPES = frozenset({"", "question", "answer"})
_FEEDBACK_TYPES = frozenset({"like", "unlike"})


class ConversationsAPI:
    """Handlers for ``/v1/conversation*`` and message feedback, bound to one emulator."""

    def __init__(self, emu: Host) -> None:
        self.emu = emu
        self.state = emu.state

    def routes(self) -> list[Route]:
        """``(method, path, handler, requires_auth)`` for every route of this module."""
        feedback = "/v1/conversations/{conversation_id}/messages/{message_id}/feedback"
        return [
            ("POST", "/v1/conversation/create", self.create, True),
            ("GET", "/v1/conversation/retrieve", self.retrieve, True),
            ("GET", "/v1/conversations", self.list_conversations, True),
            ("PUT", "/v1/conversations/{conversation_id}", self.update, True),
            ("DELETE", "/v1/conversations/{conversation_id}", self.delete, True),
            ("POST", "/v1/conversations/{conversation_id}/clear", self.clear, True),
            ("POST", "/v1/conversation/message/create", self.create_message, True),
            ("POST", "/v1/conversation/message/list", self.list_messages, True),
            ("GET", "/v1/conversation/message/retrieve", self.retrieve_message, True),
            ("POST", "/v1/conversation/message/modify", self.modify_message, True),
            ("POST", "/v1/conversation/message/delete", self.delete_message, True),
            ("POST", feedback, self.set_feedback, True),
            ("DELETE", feedback, self.delete_feedback, True),
        ]

    # ------------------------------------------------------------------ conversations

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversation/create`` -> ConversationData (messages saved in order)."""
        ctx = self.emu.context(request)
        body = json_object(ctx.recorded)
        bot_id = opt_str(body, "bot_id")
        name = _opt_name(body)
        meta_data = _meta_data(body, "meta_data")
        connector_id = opt_str(body, "connector_id") or API_CONNECTOR_ID
        inputs = parse_messages(body.get("messages"), self._describer(request), field="messages")
        conv = self.state.create_conversation(
            meta_data,
            creator_id=ctx.user_id,
            bot_id=bot_id or "",
            name=name or "",
            connector_id=connector_id,
        )
        conv.messages.extend(input_records(conv, inputs, bot_id="", chat_id=""))
        return self.emu.ok(request, conv.to_json())

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/conversation/retrieve?conversation_id=`` -> ConversationData."""
        conv = self._conversation(request, required_str(request.query, "conversation_id"))
        return self.emu.ok(request, conv.to_json())

    async def list_conversations(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/conversations?bot_id=&page_num=&page_size=&sort_order=&connector_id=``."""
        ctx = self.emu.context(request)
        query = request.query
        bot_id = required_str(query, "bot_id")
        page_num = int_param(query, "page_num", 1, 1, None)
        page_size = int_param(query, "page_size", _MAX_PAGE, 1, _MAX_PAGE)
        sort_order = (query.get("sort_order") or "DESC").upper()
        if sort_order not in ("ASC", "DESC"):
            raise ApiError(4000, "Invalid parameter sort_order: must be ASC or DESC.")
        connector_id = query.get("connector_id") or API_CONNECTOR_ID
        if connector_id not in _LISTED_CONNECTORS:
            raise ApiError(
                4000, "Invalid parameter connector_id: only 1024 (API) and 999 (Chat SDK)."
            )
        mine = sorted(
            (
                c
                for c in self.state.conversations.values()
                if c.creator_id == ctx.user_id
                and c.bot_id == bot_id
                and c.connector_id == connector_id
            ),
            key=lambda c: int(c.id),
            reverse=sort_order == "DESC",
        )
        start = (page_num - 1) * page_size
        page = mine[start : start + page_size]
        return self.emu.ok(
            request,
            {
                "has_more": start + page_size < len(mine),
                "conversations": [c.to_json() for c in page],
            },
        )

    async def update(self, request: web.Request) -> web.StreamResponse:
        """``PUT /v1/conversations/{id}`` ``{name}`` -> ConversationData."""
        conv = self._conversation(request, request.match_info["conversation_id"])
        body = json_object(self.emu.context(request).recorded)
        name = _opt_name(body)
        if name is None:
            raise ApiError(4000, "Invalid parameter name: name is required.")
        conv.name = name
        conv.updated_at = now()
        return self.emu.ok(request, conv.to_json())

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/conversations/{id}`` -> an envelope without ``data``, as documented."""
        conv = self._conversation(request, request.match_info["conversation_id"])
        self.state.delete_conversation(conv)
        return self.emu.ok(request, has_data=False)

    async def clear(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversations/{id}/clear`` -> the new section ``{id, conversation_id}``."""
        conv = self._conversation(request, request.match_info["conversation_id"])
        if conv.occupied:
            raise ApiError(4016)
        section_id = self.state.clear_section(conv)
        return self.emu.ok(request, {"id": section_id, "conversation_id": conv.id})

    # ------------------------------------------------------------------ messages

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversation/message/create?conversation_id=`` -> Message (type "")."""
        conv = self._conversation(request, required_str(request.query, "conversation_id"))
        body = json_object(self.emu.context(request).recorded)
        role = required_str(body, "role")
        if role not in ("user", "assistant"):
            raise ApiError(4000, f"Invalid parameter role: {role!r}.")
        content = required_str(body, "content")
        content_type = _content_type(body)
        self._check_content(request, content_type, content)
        record = MessageRecord(
            id=new_id(),
            conversation_id=conv.id,
            section_id=conv.section_id,
            role=role,
            type="",
            content=content,
            content_type=content_type,
            bot_id="",
            chat_id="",
            meta_data=_meta_data(body, "meta_data") or {},
        )
        conv.messages.append(record)
        conv.updated_at = record.created_at
        # The doc example of this endpoint writes updated_at as a numeric string.
        return self.emu.ok(request, record.to_json(updated_at_str=True))

    async def list_messages(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversation/message/list?conversation_id=`` -> data + cursors."""
        ctx = self.emu.context(request)
        conv = self._conversation(request, required_str(request.query, "conversation_id"))
        body = json_object(ctx.recorded)
        order = body.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise ApiError(4000, "Invalid parameter order: must be asc or desc.")
        limit = body.get("limit")
        if limit is None:
            limit = _MAX_PAGE
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
            raise ApiError(4000, f"Invalid parameter limit: must be 1-{_MAX_PAGE}.")
        chat_id = opt_str(body, "chat_id")
        before = _cursor(body, "before_id")
        after = _cursor(body, "after_id")
        middle = body.get("include_middle_message") is True
        desc = order == "desc"

        def in_window(m: MessageRecord) -> bool:
            key = int(m.id)
            # "after" / "before" follow the listing order: in desc order, after = older.
            if after is not None and not (key < after if desc else key > after):
                return False
            return before is None or (key > before if desc else key < before)

        listed = sorted(
            (
                m
                for m in conv.messages
                if (middle or m.type in _PLAIN_TYPES)
                and (chat_id is None or m.chat_id == chat_id)
                and in_window(m)
            ),
            key=lambda m: int(m.id),
            reverse=desc,
        )
        page = listed[-limit:] if before is not None and after is None else listed[:limit]
        return self._list_response(request, page, has_more=len(listed) > len(page))

    async def retrieve_message(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/conversation/message/retrieve?conversation_id=&message_id=`` -> Message."""
        _, message = self._message(request)
        return self.emu.ok(request, message.to_json())

    async def modify_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversation/message/modify`` -> the message under ``message``."""
        _, message = self._message(request)
        body = json_object(self.emu.context(request).recorded)
        content = body.get("content")
        meta_data = _meta_data(body, "meta_data")
        if (content is None or content == "") and not meta_data:
            raise ApiError(4000, "Invalid parameter: content and meta_data cannot both be empty.")
        if content is not None and content != "":
            if not isinstance(content, str):
                raise ApiError(4000, "Invalid parameter content: must be a string.")
            content_type = _content_type(body, default=message.content_type)
            self._check_content(request, content_type, content)
            message.content = content
            message.content_type = content_type
        if meta_data:
            message.meta_data = meta_data
        message.updated_at = now()
        logid = self.emu.context(request).logid
        payload = {"code": 0, "msg": "", "message": message.to_json(), "detail": {"logid": logid}}
        resp = web.Response(body=dumps(payload), content_type="application/json")
        resp.headers[LOGID_HEADER] = logid
        return resp

    async def delete_message(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversation/message/delete`` -> the deleted Message.

        Only questions and answers (and user-created messages) can be deleted; deleting an
        answer also deletes its chat's intermediate messages (tool calls, follow-ups...).
        """
        conv, message = self._message(request)
        if message.type not in _PLAIN_TYPES:
            raise ApiError(
                4005, f"Invalid message: a {message.type} message cannot be deleted directly."
            )
        doomed = [message]
        if message.type == "answer" and message.chat_id:
            doomed += [
                m
                for m in conv.messages
                if m.chat_id == message.chat_id and m.type not in _PLAIN_TYPES
            ]
        self.state.delete_messages(conv, doomed)
        return self.emu.ok(request, message.to_json())

    async def set_feedback(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/conversations/{cid}/messages/{mid}/feedback`` -> no ``data``."""
        message = self._feedback_target(request)
        body = json_object(self.emu.context(request).recorded)
        feedback_type = required_str(body, "feedback_type")
        if feedback_type not in _FEEDBACK_TYPES:
            raise ApiError(4000, "Invalid parameter feedback_type: must be like or unlike.")
        feedback: dict[str, Any] = {"feedback_type": feedback_type}
        reasons = body.get("reason_types")
        if reasons is not None:
            if (
                not isinstance(reasons, list)
                or len(reasons) > 10
                or not all(isinstance(r, str) and 1 <= len(r) <= 30 for r in reasons)
            ):
                raise ApiError(
                    4000, "Invalid parameter reason_types: at most 10 labels of 1-30 characters."
                )
            feedback["reason_types"] = list(reasons)
        comment = body.get("comment")
        if comment is not None:
            if not isinstance(comment, str) or len(comment) > 250:
                raise ApiError(4000, "Invalid parameter comment: at most 250 characters.")
            feedback["comment"] = comment
        self.state.feedback[message.id] = feedback
        return self.emu.ok(request, has_data=False)

    async def delete_feedback(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/conversations/{cid}/messages/{mid}/feedback`` -> no ``data``."""
        message = self._feedback_target(request)
        self.state.feedback.pop(message.id, None)
        return self.emu.ok(request, has_data=False)

    # ------------------------------------------------------------------ helpers

    def _describer(self, request: web.Request) -> Callable[[str], str | None]:
        user_id = self.emu.context(request).user_id
        return lambda file_id: self.state.describe_file(file_id, user_id)

    def _check_content(self, request: web.Request, content_type: str, content: str) -> None:
        try:
            describe_content(content_type, content, self._describer(request))
        except ValueError as exc:
            raise ApiError(4005, f"Invalid message content: {exc}.") from None

    def _conversation(self, request: web.Request, conversation_id: str) -> Conversation:
        user_id = self.emu.context(request).user_id
        conv = self.state.visible_conversation(conversation_id, user_id)
        if conv is None:
            raise ApiError(4002, f"Invalid conversation: {conversation_id} does not exist.")
        return conv

    def _message(self, request: web.Request) -> tuple[Conversation, MessageRecord]:
        query = request.query
        conv = self._conversation(request, required_str(query, "conversation_id"))
        return conv, self._find_message(conv, required_str(query, "message_id"))

    @staticmethod
    def _find_message(conv: Conversation, message_id: str) -> MessageRecord:
        message = conv.find_message(message_id)
        if message is None:
            raise ApiError(
                4005, f"Invalid message: no message {message_id} in conversation {conv.id}."
            )
        return message

    def _feedback_target(self, request: web.Request) -> MessageRecord:
        conv = self._conversation(request, request.match_info["conversation_id"])
        message = self._find_message(conv, request.match_info["message_id"])
        if message.role != "assistant" or message.type != "answer":
            raise ApiError(4005, "Invalid message: feedback is only accepted on bot answers.")
        return message

    def _list_response(
        self, request: web.Request, page: list[MessageRecord], *, has_more: bool
    ) -> web.Response:
        # Cursors sit at the top level next to data (coze-api.md §1.5), not inside it.
        logid = self.emu.context(request).logid
        payload = {
            "code": 0,
            "msg": "",
            "data": [m.to_json() for m in page],
            "first_id": page[0].id if page else "",
            "last_id": page[-1].id if page else "",
            "has_more": has_more,
            "detail": {"logid": logid},
        }
        resp = web.Response(body=dumps(payload), content_type="application/json")
        resp.headers[LOGID_HEADER] = logid
        return resp


def _opt_name(body: Mapping[str, Any]) -> str | None:
    name = opt_str(body, "name")
    if name is not None and len(name) > _MAX_NAME:
        raise ApiError(4000, f"Invalid parameter name: at most {_MAX_NAME} characters.")
    return name


def _meta_data(body: Mapping[str, Any], key: str) -> dict[str, str] | None:
    """``meta_data`` as Coze bounds it: at most 16 pairs, keys 1-64 and values 1-512 chars."""
    value = opt_str_map(body, key)
    if value is not None and (
        len(value) > 16
        or not all(1 <= len(k) <= 64 and 1 <= len(v) <= 512 for k, v in value.items())
    ):
        raise ApiError(4003)
    return value


def _content_type(body: Mapping[str, Any], default: str = "text") -> str:
    content_type = body.get("content_type") or default
    if content_type not in ("text", "object_string"):
        raise ApiError(4000, f"Invalid parameter content_type: {content_type!r}.")
    return str(content_type)


def _cursor(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value in ("", "0", 0):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(4000, f"Invalid parameter {key}: must be a message id.") from None
