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

__all__ = ["chat_event_from_sse", "chat_event_parser", "message_from_wire"]

_new = object.__new__
_set_attr = object.__setattr__
_join = "".join
_dict = dict
_int = int
#: Message fields whose wire value is a string (the fast path adopts only these).
_STR_FIELDS = frozenset(
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
        "reasoning_content",
    )
)


def message_from_wire(d: Any) -> Message:
    """Build a :class:`Message` from decoded JSON; fast when the payload has the plain types.

    The fast path applies when every key is a string-valued Message field (plus an int
    ``created_at``): the freshly decoded dict then becomes the instance's ``__dict__`` as is,
    with the class-level defaults filling in absent fields. Anything else (ids sent as
    numbers, numeric-string timestamps, ``meta_data``, nulls, unknown keys) goes through the
    lenient cattrs converter.
    """
    if type(d) is _dict:
        created_at = d.pop("created_at", None)
        if (created_at is None or type(created_at) is _int) and d.keys() <= _STR_FIELDS:
            try:
                _join(d.values())  # raises TypeError unless every value is a str
            except TypeError:
                pass
            else:
                if created_at is not None:
                    d["created_at"] = created_at
                message = _new(Message)
                _set_attr(message, "__dict__", d)
                return message
        if created_at is not None:
            d["created_at"] = created_at
    return structure(d, Message, what="$.data")


def _chat(d: Any) -> Chat:
    return structure(d, Chat, what="$.data")


_MESSAGE_EVENTS: dict[str, type[MessageDelta | MessageCompleted | AudioDelta]] = {
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


def chat_event_parser(loads: Callable[[str], Any] = loads) -> Callable[[str, str], ChatEvent]:
    """Build a chat-event parser using ``loads`` for JSON (benchmarks compare json/orjson)."""

    def parse(name: str, data: str) -> ChatEvent:
        message_event = _MESSAGE_EVENTS.get(name)
        if message_event is not None:
            # The per-delta path: set the one slot directly instead of running __init__.
            event = _new(message_event)
            _set_attr(event, "message", message_from_wire(loads(data)))
            return event
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

    return parse


#: Turn one chat-family SSE event (name, data) into its typed event. ``error`` events are
#: handled by the stream. Raises ``ValueError`` for data that is not JSON and
#: :class:`~coze_async.errors.ResponseValidationError` for JSON of the wrong shape.
chat_event_from_sse = chat_event_parser()
