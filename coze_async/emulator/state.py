"""In-memory server state: conversations, chats, messages and id generation.

Nothing here does I/O; handlers and bots mutate it synchronously, so a client that sees a
terminal stream event and immediately calls retrieve always observes the final state.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "ACTIVE_STATUSES",
    "ChatRecord",
    "Conversation",
    "EmulatorState",
    "MessageRecord",
    "Outcome",
    "Usage",
    "new_id",
    "now",
]

# Coze ids are int64 snowflakes rendered as 19-digit strings. One process-wide counter seeded
# from the clock keeps ids unique and increasing across Emulator instances and restarts.
_ids: Final = itertools.count(7_000_000_000_000_000_000 + time.time_ns() // 1_000)


def new_id() -> str:
    """Return a new 19-digit decimal id, unique and increasing within the process."""
    return str(next(_ids))


def now() -> int:
    """Current Unix time in whole seconds (Coze's 10-digit timestamps)."""
    return int(time.time())


#: Chat statuses that occupy their conversation (another chat there gets 4016).
ACTIVE_STATUSES: Final = frozenset({"created", "in_progress"})

# Recorded streams carry this placeholder when no action is pending (coze-api.md §2.3).
_NO_ACTION: Final[dict[str, Any]] = {"type": "", "submit_tool_outputs": {"tool_calls": []}}


@dataclass(slots=True)
class Usage:
    """Token accounting of a chat (``*_count`` keys, as recorded)."""

    token_count: int = 0
    output_count: int = 0
    input_count: int = 0

    def to_json(self) -> dict[str, int]:
        """Wire form."""
        return {
            "token_count": self.token_count,
            "output_count": self.output_count,
            "input_count": self.input_count,
        }


@dataclass(slots=True)
class MessageRecord:
    """One stored message (user input or bot output)."""

    id: str
    conversation_id: str
    section_id: str
    role: str
    type: str
    content: str
    content_type: str
    bot_id: str | None = None
    chat_id: str | None = None
    meta_data: dict[str, str] = field(default_factory=dict)
    created_at: int = field(default_factory=now)
    updated_at: int = 0

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    def to_event(self) -> dict[str, Any]:
        """Form used in ``conversation.message.completed`` events (recorded field order)."""
        out: dict[str, Any] = {"id": self.id, "conversation_id": self.conversation_id}
        if self.bot_id is not None:
            out["bot_id"] = self.bot_id
        out["role"] = self.role
        out["type"] = self.type
        out["content"] = self.content
        out["content_type"] = self.content_type
        if self.chat_id is not None:
            out["chat_id"] = self.chat_id
        out["section_id"] = self.section_id
        out["created_at"] = self.created_at
        out["updated_at"] = self.updated_at
        return out

    def to_json(self) -> dict[str, Any]:
        """Full form used by list/retrieve endpoints."""
        out = self.to_event()
        out["meta_data"] = self.meta_data
        return out


@dataclass(slots=True)
class Outcome:
    """How a chat turn ends; applied to the state when the turn's terminal event is sent."""

    status: str
    messages: list[MessageRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    last_error: tuple[int, str] = (0, "")
    required_action: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatRecord:
    """One chat (a bot turn) and everything it produced."""

    id: str
    conversation_id: str
    bot_id: str
    user_id: str
    section_id: str
    status: str = "created"
    created_at: int = field(default_factory=now)
    completed_at: int | None = None
    failed_at: int | None = None
    meta_data: dict[str, str] | None = None
    last_error: tuple[int, str] = (0, "")
    usage: Usage = field(default_factory=Usage)
    required_action: dict[str, Any] | None = None
    inserted_message_ids: list[str] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)
    auto_save_history: bool = True

    def to_json(self, *, status: str | None = None, inserted: bool = False) -> dict[str, Any]:
        """Wire form of the Chat object.

        ``status`` overrides the stored status (the ``created`` event is sent while the chat is
        already in progress); ``inserted`` adds ``inserted_additional_messages`` as Coze does on
        ``conversation.chat.created`` and in the create response.
        """
        out: dict[str, Any] = {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "bot_id": self.bot_id,
            "created_at": self.created_at,
        }
        if self.completed_at is not None:
            out["completed_at"] = self.completed_at
        if self.failed_at is not None:
            out["failed_at"] = self.failed_at
        if self.meta_data is not None:
            out["meta_data"] = self.meta_data
        out["last_error"] = {"code": self.last_error[0], "msg": self.last_error[1]}
        out["status"] = self.status if status is None else status
        out["usage"] = self.usage.to_json()
        out["required_action"] = self.required_action or _NO_ACTION
        out["section_id"] = self.section_id
        if inserted:
            out["inserted_additional_messages"] = [{"id": i} for i in self.inserted_message_ids]
        return out

    @property
    def active(self) -> bool:
        """True while the chat occupies its conversation."""
        return self.status in ACTIVE_STATUSES


@dataclass(slots=True)
class Conversation:
    """A conversation: its saved messages and the chat currently running in it, if any."""

    id: str
    created_at: int = field(default_factory=now)
    meta_data: dict[str, str] = field(default_factory=dict)
    section_id: str = ""
    messages: list[MessageRecord] = field(default_factory=list)
    active_chat: ChatRecord | None = None

    def __post_init__(self) -> None:
        if not self.section_id:
            # Recorded streams show a fresh conversation's section id equal to its own id.
            self.section_id = self.id

    @property
    def occupied(self) -> bool:
        """True while another chat is created/in progress here (Coze answers 4016)."""
        return self.active_chat is not None and self.active_chat.active


class EmulatorState:
    """All conversations and chats of one emulator, keyed by id."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.chats: dict[str, ChatRecord] = {}

    def create_conversation(self, meta_data: dict[str, str] | None = None) -> Conversation:
        """Create and register an empty conversation."""
        conv = Conversation(id=new_id(), meta_data=dict(meta_data or {}))
        self.conversations[conv.id] = conv
        return conv

    def find_chat(self, conversation_id: str, chat_id: str) -> ChatRecord | None:
        """The chat with ``chat_id`` if it belongs to ``conversation_id``, else None."""
        chat = self.chats.get(chat_id)
        if chat is None or chat.conversation_id != conversation_id:
            return None
        return chat

    def start_chat(
        self,
        conv: Conversation,
        *,
        bot_id: str,
        user_id: str,
        meta_data: dict[str, str] | None,
        inputs: list[MessageRecord],
        auto_save_history: bool,
    ) -> ChatRecord:
        """Register a new in-progress chat in ``conv``, saving the user's input messages."""
        chat = ChatRecord(
            id=new_id(),
            conversation_id=conv.id,
            bot_id=bot_id,
            user_id=user_id,
            section_id=conv.section_id,
            status="in_progress",
            meta_data=meta_data,
            inserted_message_ids=[m.id for m in inputs],
            auto_save_history=auto_save_history,
        )
        if auto_save_history:
            conv.messages.extend(inputs)
        conv.active_chat = chat
        self.chats[chat.id] = chat
        return chat

    def finish_chat(self, chat: ChatRecord, outcome: Outcome) -> bool:
        """Apply a turn's outcome; returns False (and changes nothing) if the chat was canceled.

        The check matters because cancel races with both background completion and streams.
        """
        if chat.status != "in_progress" and chat.status != "created":
            return False
        stamp = now()
        chat.status = outcome.status
        chat.usage = outcome.usage
        chat.last_error = outcome.last_error
        chat.required_action = outcome.required_action
        if outcome.status == "completed":
            chat.completed_at = stamp
        elif outcome.status == "failed":
            chat.failed_at = stamp
        chat.messages.extend(outcome.messages)
        conv = self.conversations.get(chat.conversation_id)
        if conv is not None and chat.auto_save_history:
            conv.messages.extend(outcome.messages)
        return True

    def resume_chat(self, chat: ChatRecord) -> None:
        """Move a ``requires_action`` chat back to in progress (tool outputs were submitted)."""
        chat.status = "in_progress"
        chat.required_action = None
        conv = self.conversations.get(chat.conversation_id)
        if conv is not None:
            conv.active_chat = chat

    def cancel_chat(self, chat: ChatRecord) -> None:
        """Mark an active chat canceled."""
        chat.status = "canceled"
        chat.completed_at = now()
