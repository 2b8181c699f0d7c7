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
    "API_CONNECTOR_ID",
    "ChatRecord",
    "Conversation",
    "EmulatorState",
    "FileRecord",
    "MessageRecord",
    "Outcome",
    "Usage",
    "input_records",
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


#: The API channel's connector id, Coze's default for conversations.
API_CONNECTOR_ID: Final = "1024"

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
        """Form of ``/v3/chat``'s ``conversation.message.*`` events, as recorded.

        Coze's struct order ``id, conversation_id, bot_id, role, type, content, content_type,
        chat_id, section_id`` and no timestamps: the recorded answer, verbose and audio
        messages carry neither ``created_at`` nor ``updated_at``.
        """
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
        return out

    def to_json(self, *, updated_at_str: bool = False) -> dict[str, Any]:
        """Full form used by list/retrieve endpoints: the event form plus timestamps and
        ``meta_data``. ``updated_at_str`` writes ``updated_at`` as a numeric string, as the
        doc example of ``/v1/conversation/message/create`` shows it."""
        out = self.to_event()
        out["created_at"] = self.created_at
        out["updated_at"] = str(self.updated_at) if updated_at_str else self.updated_at
        out["meta_data"] = self.meta_data
        return out


def input_records(
    conv: Conversation,
    inputs: list[dict[str, Any]],
    *,
    bot_id: str | None = None,
    chat_id: str | None = None,
) -> list[MessageRecord]:
    """Message records for validated input messages, in ``conv``'s section.

    A chat's ``additional_messages`` leave ``bot_id``/``chat_id`` unset (the chat fills
    them); ``conversation/create`` sends them as empty strings, as Coze does.
    """
    return [
        MessageRecord(
            id=new_id(),
            conversation_id=conv.id,
            section_id=conv.section_id,
            role=item["role"],
            type=item["type"],
            content=item["content"],
            content_type=item["content_type"],
            meta_data=item["meta_data"],
            bot_id=bot_id,
            chat_id=chat_id,
        )
        for item in inputs
    ]


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
    """A conversation: its saved messages and the chat currently running in it, if any.

    ``section_id`` is the current context section (``last_section_id`` on the wire); clearing
    the context replaces it. ``creator_id`` is the user whose token created it: nobody else
    sees it.
    """

    id: str
    created_at: int = field(default_factory=now)
    meta_data: dict[str, str] = field(default_factory=dict)
    section_id: str = ""
    messages: list[MessageRecord] = field(default_factory=list)
    active_chat: ChatRecord | None = None
    creator_id: str = ""
    bot_id: str = ""
    name: str = ""
    connector_id: str = API_CONNECTOR_ID
    updated_at: int = 0

    def __post_init__(self) -> None:
        if not self.section_id:
            # Recorded streams show a fresh conversation's section id equal to its own id.
            self.section_id = self.id
        if not self.updated_at:
            self.updated_at = self.created_at

    def to_json(self) -> dict[str, Any]:
        """Wire form (``ConversationData``)."""
        return {
            "id": self.id,
            "name": self.name,
            "meta_data": self.meta_data,
            "creator_id": self.creator_id,
            "connector_id": self.connector_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_section_id": self.section_id,
        }

    def find_message(self, message_id: str) -> MessageRecord | None:
        """The stored message with ``message_id``, if it is in this conversation."""
        return next((m for m in self.messages if m.id == message_id), None)

    @property
    def occupied(self) -> bool:
        """True while another chat is created/in progress here (Coze answers 4016)."""
        return self.active_chat is not None and self.active_chat.active


@dataclass(slots=True)
class FileRecord:
    """An uploaded file. Only its size, digest and first bytes are kept, never the content."""

    id: str
    file_name: str
    #: Size in bytes.
    size: int
    creator_id: str
    sha256: str
    content_type: str = "application/octet-stream"
    #: The first bytes (up to 512), enough to recognise the file's format.
    head: bytes = b""
    created_at: int = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        """Wire form (``File``)."""
        return {
            "id": self.id,
            "bytes": self.size,
            "file_name": self.file_name,
            "created_at": self.created_at,
        }


class EmulatorState:
    """All conversations and chats of one emulator, keyed by id."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.chats: dict[str, ChatRecord] = {}
        #: Uploaded files by id.
        self.files: dict[str, FileRecord] = {}
        #: Feedback set on answers, by message id (``{"feedback_type": ..., ...}``).
        self.feedback: dict[str, dict[str, Any]] = {}

    def create_conversation(
        self,
        meta_data: dict[str, str] | None = None,
        *,
        creator_id: str = "",
        bot_id: str = "",
        name: str = "",
        connector_id: str = API_CONNECTOR_ID,
    ) -> Conversation:
        """Create and register an empty conversation."""
        conv = Conversation(
            id=new_id(),
            meta_data=dict(meta_data or {}),
            creator_id=creator_id,
            bot_id=bot_id,
            name=name,
            connector_id=connector_id,
        )
        self.conversations[conv.id] = conv
        return conv

    def describe_file(self, file_id: str, user_id: str) -> str | None:
        """How the echo bot names an attached file: ``name=… bytes=…`` for an uploaded one.

        None for an id the emulator never issued (tests use made-up ids); ValueError for a
        file uploaded by someone else, which Coze does not let the caller use.
        """
        record = self.files.get(file_id)
        if record is None:
            return None
        if record.creator_id != user_id:
            raise ValueError(f"file {file_id} does not belong to the caller")
        return f"name={record.file_name} bytes={record.size}"

    def visible_conversation(self, conversation_id: str, user_id: str) -> Conversation | None:
        """The conversation if it exists and ``user_id`` created it (nobody else sees it).

        A conversation created without a known user (``creator_id == ""``) is visible to all.
        """
        conv = self.conversations.get(conversation_id)
        if conv is None or (conv.creator_id and conv.creator_id != user_id):
            return None
        return conv

    def clear_section(self, conv: Conversation) -> str:
        """Start a new context section in ``conv``; later chats and messages belong to it."""
        conv.section_id = new_id()
        conv.updated_at = now()
        return conv.section_id

    def delete_conversation(self, conv: Conversation) -> None:
        """Remove ``conv``, its messages and its chats for good."""
        self.conversations.pop(conv.id, None)
        for chat_id in [c.id for c in self.chats.values() if c.conversation_id == conv.id]:
            del self.chats[chat_id]
        for message in conv.messages:
            self.feedback.pop(message.id, None)

    def delete_messages(self, conv: Conversation, doomed: list[MessageRecord]) -> None:
        """Remove messages from ``conv`` and from the chats that produced them."""
        ids = {m.id for m in doomed}
        conv.messages[:] = [m for m in conv.messages if m.id not in ids]
        for chat_id in {m.chat_id for m in doomed if m.chat_id}:
            chat = self.chats.get(chat_id)
            if chat is not None:
                chat.messages[:] = [m for m in chat.messages if m.id not in ids]
        for message_id in ids:
            self.feedback.pop(message_id, None)

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
        for message in inputs:
            # Coze's message objects always carry bot_id (a string), the inserted ones too.
            if message.bot_id is None:
                message.bot_id = bot_id
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
            # The recorded conversation.chat.failed carries both stamps.
            chat.completed_at = stamp
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
