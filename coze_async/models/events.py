"""Typed chat stream events and the chat snapshot they accumulate into.

Events are slotted frozen attrs classes, so they work with ``match``::

    match event:
        case MessageDelta(message=m): print(m.content, end="")
        case ChatCompleted(chat=c): print(c.usage)

``error`` events are not yielded: they raise :class:`~coze_async.errors.StreamErrorEvent`.
Unknown event names are yielded as :class:`UnknownEvent`, never dropped.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

import attrs

from .._json import loads
from .chat import Chat, ChatStatus, Message, MessageType, Usage

__all__ = [
    "AudioDelta",
    "ChatCompleted",
    "ChatCreated",
    "ChatEvent",
    "ChatFailed",
    "ChatInProgress",
    "ChatRequiresAction",
    "ChatSnapshot",
    "Done",
    "MessageCompleted",
    "MessageDelta",
    "UnknownEvent",
    "accumulate_chat",
]


@attrs.frozen
class ChatCreated:
    """``conversation.chat.created``: the chat exists; ``chat.id`` is known from here on."""

    event_name: ClassVar[str] = "conversation.chat.created"
    chat: Chat


@attrs.frozen
class ChatInProgress:
    """``conversation.chat.in_progress``: the bot is working."""

    event_name: ClassVar[str] = "conversation.chat.in_progress"
    chat: Chat


@attrs.frozen
class MessageDelta:
    """``conversation.message.delta``: a piece of a message (same ``message.id`` throughout)."""

    event_name: ClassVar[str] = "conversation.message.delta"
    message: Message


@attrs.frozen
class AudioDelta:
    """``conversation.audio.delta``: a piece of audio (base64 ``message.content``)."""

    event_name: ClassVar[str] = "conversation.audio.delta"
    message: Message


@attrs.frozen
class MessageCompleted:
    """``conversation.message.completed``: a whole message (answer, verbose, follow_up, ...)."""

    event_name: ClassVar[str] = "conversation.message.completed"
    message: Message


@attrs.frozen
class ChatCompleted:
    """``conversation.chat.completed``: the chat finished; ``chat.usage`` is final."""

    event_name: ClassVar[str] = "conversation.chat.completed"
    chat: Chat


@attrs.frozen
class ChatFailed:
    """``conversation.chat.failed``: the chat failed; see ``chat.last_error``."""

    event_name: ClassVar[str] = "conversation.chat.failed"
    chat: Chat


@attrs.frozen
class ChatRequiresAction:
    """``conversation.chat.requires_action``: tool outputs are needed to go on."""

    event_name: ClassVar[str] = "conversation.chat.requires_action"
    chat: Chat


@attrs.frozen
class Done:
    """``done``: the normal end of the stream. ``data`` is kept as sent.

    A chat stream sends the JSON string ``"[DONE]"``; a chatflow sends an object with
    ``debug_url`` (read it from :attr:`debug_url`).
    """

    event_name: ClassVar[str] = "done"
    data: Any = None

    @property
    def debug_url(self) -> str | None:
        """The chatflow debug URL, when the server sent one."""
        if isinstance(self.data, dict):
            url = self.data.get("debug_url")
            return url if isinstance(url, str) else None
        return None


@attrs.frozen
class UnknownEvent:
    """An event this SDK version does not know. ``data`` is the raw data text."""

    name: str
    data: str

    def json(self) -> Any:
        """``data`` decoded as JSON (raises ``ValueError`` if it is not JSON)."""
        return loads(self.data)


ChatEvent = (
    ChatCreated
    | ChatInProgress
    | MessageDelta
    | AudioDelta
    | MessageCompleted
    | ChatCompleted
    | ChatFailed
    | ChatRequiresAction
    | Done
    | UnknownEvent
)


@attrs.define
class _Pending:
    first: Message
    parts: list[str]


@attrs.define
class ChatSnapshot:
    """Everything a chat stream has delivered so far.

    ``chat`` is the latest chat object, ``messages`` the completed messages in arrival order;
    the message currently streaming is visible through :attr:`text` and :attr:`pending`.
    It is the stream's ``snapshot``, the value of ``final()`` and the ``partial`` of every
    stream error.
    """

    chat: Chat | None = None
    messages: list[Message] = attrs.Factory(list)
    done: Done | None = None
    events: int = 0
    #: Events this SDK does not know, in arrival order (also yielded by the stream), kept as
    #: the workflow snapshot keeps them.
    unknown: list[UnknownEvent] = attrs.Factory(list)
    _pending: dict[str, _Pending] = attrs.Factory(dict)
    _audio: list[bytes] = attrs.Factory(list)

    @property
    def pending(self) -> list[Message]:
        """Messages still streaming, with the content received so far."""
        return [attrs.evolve(p.first, content="".join(p.parts)) for p in self._pending.values()]

    @property
    def text(self) -> str:
        """The answer text so far: completed answers, then the answer being streamed."""
        out = [m.content for m in self.messages if m.type == MessageType.ANSWER]
        out.extend(
            "".join(p.parts)
            for p in self._pending.values()
            if p.first.type in (MessageType.ANSWER, "")
        )
        return "".join(out)

    @property
    def audio(self) -> bytes:
        """The audio received in ``conversation.audio.delta`` events, decoded."""
        return b"".join(self._audio)

    @property
    def usage(self) -> Usage | None:
        """The chat's usage (final after ``conversation.chat.completed``)."""
        return self.chat.usage if self.chat is not None else None

    @property
    def status(self) -> str | None:
        """The chat's status as last reported."""
        return self.chat.status if self.chat is not None else None

    @property
    def follow_ups(self) -> list[str]:
        """Suggested follow-up questions (``follow_up`` messages)."""
        return [m.content for m in self.messages if m.type == MessageType.FOLLOW_UP]

    @property
    def debug_url(self) -> str | None:
        """The ``done`` event's debug URL (chatflows)."""
        return self.done.debug_url if self.done is not None else None

    @property
    def failed(self) -> bool:
        """True when the chat reported status ``failed``."""
        return self.chat is not None and self.chat.status == ChatStatus.FAILED


def accumulate_chat(snapshot: ChatSnapshot, event: ChatEvent) -> ChatSnapshot:
    """Fold one event into ``snapshot`` and return it.

    The snapshot is updated in place (copying it per delta would make long answers quadratic);
    the function has no other effect, so replaying a recorded event list through it gives the
    same snapshot the live stream had.
    """
    snapshot.events += 1
    if type(event) is MessageDelta:
        message = event.message
        pending = snapshot._pending.get(message.id)
        if pending is None:
            snapshot._pending[message.id] = _Pending(message, [message.content])
        else:
            pending.parts.append(message.content)
    elif type(event) is MessageCompleted:
        snapshot._pending.pop(event.message.id, None)
        snapshot.messages.append(event.message)
    elif type(event) is AudioDelta:
        try:
            snapshot._audio.append(base64.b64decode(event.message.content))
        except (binascii.Error, ValueError):
            snapshot._audio.append(b"")
    elif type(event) is Done:
        snapshot.done = event
    elif type(event) is UnknownEvent:
        snapshot.unknown.append(event)
    elif isinstance(
        event, ChatCreated | ChatInProgress | ChatCompleted | ChatFailed | ChatRequiresAction
    ):
        snapshot.chat = event.chat
    return snapshot
