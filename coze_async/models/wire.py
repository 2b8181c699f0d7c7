"""Wire data -> typed chat events, on the per-event hot path.

A streamed chat is mostly ``conversation.message.delta`` events, so their structuring is a
hand-written fast path (one dict lookup per field, a type check, one constructor call); any
payload that does not have the plain expected types goes through the cattrs converter, which
is lenient (ids as int, timestamps as strings) and reports shape errors with their paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._json import loads
from .chat import Chat, Message
from .converter import structure
from .events import (
    AudioDelta,
    ChatCompleted,
    ChatCreated,
    ChatEvent,
    ChatFailed,
    ChatInProgress,
    ChatRequiresAction,
    Done,
    MessageCompleted,
    MessageDelta,
    UnknownEvent,
)

__all__ = ["chat_event_from_sse", "message_from_wire"]

_str = str
_int = int
_FAST_KEYS = frozenset(
    (
        "role",
        "content",
        "content_type",
        "type",
        "id",
        "conversation_id",
        "bot_id",
        "chat_id",
        "section_id",
        "created_at",
    )
)


def message_from_wire(d: Any) -> Message:
    """Build a :class:`Message` from decoded JSON, fast when the types are the plain ones."""
    if type(d) is not dict:
        return structure(d, Message, what="$.data")
    g = d.get
    role = g("role", "")
    content = g("content", "")
    content_type = g("content_type", "text")
    mtype = g("type", "")
    mid = g("id", "")
    conversation_id = g("conversation_id", "")
    bot_id = g("bot_id")
    chat_id = g("chat_id")
    section_id = g("section_id")
    created_at = g("created_at")
    if (
        type(role) is _str
        and type(content) is _str
        and type(content_type) is _str
        and type(mtype) is _str
        and type(mid) is _str
        and type(conversation_id) is _str
        and (bot_id is None or type(bot_id) is _str)
        and (chat_id is None or type(chat_id) is _str)
        and (section_id is None or type(section_id) is _str)
        and (created_at is None or type(created_at) is _int)
        and d.keys() <= _FAST_KEYS
    ):
        # Only the keys read above are present, so nothing the payload carried is skipped.
        return Message(
            role,
            content,
            content_type,
            mtype,
            mid,
            conversation_id,
            bot_id,
            chat_id,
            section_id,
            None,
            created_at,
        )
    return structure(d, Message, what="$.data")


def _chat(d: Any) -> Chat:
    return structure(d, Chat, what="$.data")


_MESSAGE_EVENTS: dict[str, Callable[[Message], ChatEvent]] = {
    "conversation.message.delta": MessageDelta,
    "conversation.message.completed": MessageCompleted,
    "conversation.audio.delta": AudioDelta,
}
_CHAT_EVENTS: dict[str, Callable[[Chat], ChatEvent]] = {
    "conversation.chat.created": ChatCreated,
    "conversation.chat.in_progress": ChatInProgress,
    "conversation.chat.completed": ChatCompleted,
    "conversation.chat.failed": ChatFailed,
    "conversation.chat.requires_action": ChatRequiresAction,
}


def chat_event_from_sse(name: str, data: str) -> ChatEvent:
    """Turn one chat-family SSE event into its typed event (``error`` is handled by the caller).

    Raises ``ValueError`` for data that is not JSON and
    :class:`~coze_async.errors.ResponseValidationError` for JSON of the wrong shape.
    """
    make_message = _MESSAGE_EVENTS.get(name)
    if make_message is not None:
        return make_message(message_from_wire(loads(data)))
    make_chat = _CHAT_EVENTS.get(name)
    if make_chat is not None:
        return make_chat(_chat(loads(data)))
    if name == "done":
        try:
            payload = loads(data)
        except ValueError:
            payload = data  # the docs' overview shows a bare [DONE]; keep it as text
        return Done(payload)
    return UnknownEvent(name, data)
