"""Chat, message and tool-call models (coze-api.md §2.3-2.4).

Every model is a slotted, frozen attrs class. Fields whose values form an open set (status,
role, type, content_type) are plain ``str``: compare them with the :class:`ChatStatus`,
:class:`MessageRole`, :class:`MessageType` and :class:`ContentType` constants (``StrEnum``
members compare equal to their strings), and a value Coze adds tomorrow is kept, not rejected.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import attrs

from .._errors_base import InvalidArgumentError
from .._validate import check_str, kind

__all__ = [
    "Chat",
    "ChatPoll",
    "ChatStatus",
    "ContentItem",
    "ContentType",
    "LastError",
    "Message",
    "MessageRole",
    "MessageType",
    "RequiredAction",
    "SubmitToolOutputs",
    "ToolCall",
    "ToolCallFunction",
    "ToolOutput",
    "Usage",
]


class ChatStatus(StrEnum):
    """Known chat statuses. ``chat.status`` is a ``str`` and may hold other values."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"
    CANCELED = "canceled"


class MessageRole(StrEnum):
    """Message roles."""

    USER = "user"
    ASSISTANT = "assistant"


class MessageType(StrEnum):
    """Known message types (``""`` on user-created messages)."""

    QUESTION = "question"
    ANSWER = "answer"
    FUNCTION_CALL = "function_call"
    TOOL_OUTPUT = "tool_output"
    TOOL_RESPONSE = "tool_response"
    FOLLOW_UP = "follow_up"
    VERBOSE = "verbose"
    KNOWLEDGE = "knowledge"


class ContentType(StrEnum):
    """Known message content types."""

    TEXT = "text"
    OBJECT_STRING = "object_string"
    CARD = "card"
    AUDIO = "audio"


@attrs.frozen
class Usage:
    """Token usage of a chat; zeros until the chat completes."""

    token_count: int = 0
    output_count: int = 0
    input_count: int = 0


@attrs.frozen
class LastError:
    """A chat's error: ``code`` 0 and empty ``msg`` when there was none."""

    code: int | None = 0
    msg: str = ""


@attrs.frozen
class ToolCallFunction:
    """The function a tool call asks for; ``arguments`` is a JSON string."""

    name: str = ""
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        """``arguments`` decoded from JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.arguments) if self.arguments else {}


@attrs.frozen
class ToolCall:
    """One pending tool call. Answer it with ``ToolOutput(tool_call_id=call.id, ...)``."""

    id: str = ""
    type: str = "function"
    function: ToolCallFunction = attrs.Factory(ToolCallFunction)


@attrs.frozen
class SubmitToolOutputs:
    """The tool calls a ``requires_action`` chat waits for."""

    tool_calls: tuple[ToolCall, ...] = ()


@attrs.frozen
class RequiredAction:
    """What a ``requires_action`` chat needs (``type == "submit_tool_outputs"``)."""

    type: str = ""
    submit_tool_outputs: SubmitToolOutputs | None = None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The pending tool calls (empty when none)."""
        return self.submit_tool_outputs.tool_calls if self.submit_tool_outputs else ()


@attrs.frozen
class InsertedMessage:
    """The id of a message inserted from ``additional_messages``."""

    id: str = ""


@attrs.frozen
class Chat:
    """A chat (one bot turn) as Coze reports it.

    ``logid`` (and ``quota_wait``) are set on the chat objects that calls return.
    """

    id: str
    conversation_id: str = ""
    bot_id: str | None = None
    created_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    meta_data: dict[str, str] | None = None
    last_error: LastError | None = None
    status: str = ""
    required_action: RequiredAction | None = None
    usage: Usage | None = None
    section_id: str | None = None
    inserted_additional_messages: tuple[InsertedMessage, ...] | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    #: Seconds the call that returned this chat waited for the client-side limiter.
    quota_wait: float = attrs.field(default=0.0, eq=False, repr=False)

    @property
    def is_terminal(self) -> bool:
        """True once the chat will not change without further input."""
        return self.status not in (ChatStatus.CREATED, ChatStatus.IN_PROGRESS)


def _check_meta_data(meta_data: Mapping[str, str] | None, where: str) -> dict[str, str] | None:
    if meta_data is None:
        return None
    if not isinstance(meta_data, Mapping):
        raise InvalidArgumentError(
            f"{where} must be a mapping of str to str, got {kind(meta_data)}"
        )
    if len(meta_data) > 16:
        raise InvalidArgumentError(f"{where}: at most 16 pairs allowed, got {len(meta_data)}")
    for key, value in meta_data.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 64:
            raise InvalidArgumentError(f"{where}: key {key!r} must be a string of 1-64 characters")
        if not isinstance(value, str) or not 1 <= len(value) <= 512:
            raise InvalidArgumentError(
                f"{where}[{key!r}]: value must be a string of 1-512 characters"
            )
        check_str(f"{where} key {key!r}", key)
        check_str(f"{where}[{key!r}]", value)
    return dict(meta_data)


@attrs.frozen
class ContentItem:
    """One item of a multimodal (``object_string``) message. Build with the classmethods."""

    type: str
    text: str | None = None
    file_id: str | None = None
    file_url: str | None = None

    @classmethod
    def of_text(cls, text: str) -> ContentItem:
        """A text item (at most one per message, and only beside a file/image/audio item)."""
        if not isinstance(text, str) or not text:
            raise InvalidArgumentError("ContentItem.of_text: text must be a non-empty string")
        return cls(type="text", text=check_str("ContentItem.of_text: text", text))

    @classmethod
    def _media(cls, media: str, file_id: str | None, file_url: str | None) -> ContentItem:
        if (file_id is None) == (file_url is None):
            raise InvalidArgumentError(
                f"ContentItem.of_{media}: give exactly one of file_id= or file_url="
            )
        if file_id is not None:
            check_str(f"ContentItem.of_{media}: file_id", file_id, empty=False)
        if file_url is not None:
            check_str(f"ContentItem.of_{media}: file_url", file_url, empty=False)
        return cls(type=media, file_id=file_id, file_url=file_url)

    @classmethod
    def of_image(cls, *, file_id: str | None = None, file_url: str | None = None) -> ContentItem:
        """An image, by uploaded ``file_id`` or public ``file_url``."""
        return cls._media("image", file_id, file_url)

    @classmethod
    def of_file(cls, *, file_id: str | None = None, file_url: str | None = None) -> ContentItem:
        """A file, by uploaded ``file_id`` or public ``file_url``."""
        return cls._media("file", file_id, file_url)

    @classmethod
    def of_audio(cls, *, file_id: str | None = None, file_url: str | None = None) -> ContentItem:
        """An audio clip, by uploaded ``file_id`` or public ``file_url``."""
        return cls._media("audio", file_id, file_url)


def encode_object_string(items: Sequence[ContentItem]) -> str:
    """Check Coze's ``object_string`` rules and encode the items as the JSON string it wants.

    Rules (coze-api.md §2.1): at least one item; at most one text item; a text item must come
    with at least one file/image/audio item (pure text must be sent as ``content_type=text``);
    every media item has exactly one of ``file_id``/``file_url``.
    """
    if not items:
        raise InvalidArgumentError("object_string content needs at least one item")
    texts = 0
    media = 0
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, ContentItem):
            raise InvalidArgumentError(
                f"content[{index}] must be a ContentItem, got {type(item).__name__}"
            )
        if item.type == "text":
            texts += 1
            if not isinstance(item.text, str) or not item.text:
                raise InvalidArgumentError(f"content[{index}]: text item has no text")
            out.append({"type": "text", "text": check_str(f"content[{index}].text", item.text)})
        elif item.type in ("image", "file", "audio"):
            media += 1
            if (item.file_id is None) == (item.file_url is None):
                raise InvalidArgumentError(
                    f"content[{index}] ({item.type}): needs exactly one of file_id or file_url"
                )
            entry: dict[str, str] = {"type": item.type}
            if item.file_id is not None:
                entry["file_id"] = check_str(f"content[{index}].file_id", item.file_id, empty=False)
            else:
                assert item.file_url is not None
                entry["file_url"] = check_str(
                    f"content[{index}].file_url", item.file_url, empty=False
                )
            out.append(entry)
        else:
            raise InvalidArgumentError(
                f"content[{index}]: unknown type {item.type!r} "
                "(expected text, image, file or audio)"
            )
    if texts > 1:
        raise InvalidArgumentError("object_string content may hold at most one text item")
    if texts and not media:
        raise InvalidArgumentError(
            "a text-only message must be sent as plain text: pass a str instead of ContentItems"
        )
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


# Not slotted, unlike the other models: a streamed chat builds one Message per delta, and a
# dict-backed instance can adopt the decoded JSON object as its __dict__ (see
# ``models.wire.message_from_wire``), which is several times cheaper than calling __init__.
@attrs.frozen(slots=False)
class Message:
    """A message, as sent in ``messages=`` or received from Coze.

    Build request messages with :meth:`user` and :meth:`assistant`; only ``role``, ``type``,
    ``content``, ``content_type`` and ``meta_data`` are sent.
    """

    role: str = ""
    content: str = ""
    content_type: str = "text"
    type: str = ""
    id: str = ""
    conversation_id: str = ""
    bot_id: str | None = None
    chat_id: str | None = None
    section_id: str | None = None
    meta_data: dict[str, str] | None = None
    created_at: int | None = None
    updated_at: int | None = None
    reasoning_content: str | None = None
    logid: str | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def _build(
        cls,
        role: str,
        content: str | Sequence[ContentItem],
        meta_data: Mapping[str, str] | None,
        type: str | None,
    ) -> Message:
        md = _check_meta_data(meta_data, "Message.meta_data")
        if isinstance(content, str):
            if not content:
                raise InvalidArgumentError(f"Message.{role}: content must not be empty")
            check_str(f"Message.{role}: content", content)
            return cls(
                role=role, content=content, content_type="text", type=type or "", meta_data=md
            )
        if not isinstance(content, list | tuple):
            raise InvalidArgumentError(
                f"Message.{role}: content must be a str or a list of ContentItem, "
                f"got {kind(content)}"
            )
        return cls(
            role=role,
            content=encode_object_string(list(content)),
            content_type="object_string",
            type=type or "",
            meta_data=md,
        )

    @classmethod
    def user(
        cls,
        content: str | Sequence[ContentItem],
        *,
        meta_data: Mapping[str, str] | None = None,
    ) -> Message:
        """A user message (type ``question``): text, or a list of :class:`ContentItem`."""
        return cls._build("user", content, meta_data, "question")

    @classmethod
    def assistant(
        cls,
        content: str | Sequence[ContentItem],
        *,
        meta_data: Mapping[str, str] | None = None,
    ) -> Message:
        """An assistant message (type ``answer``), e.g. to seed a conversation's history."""
        return cls._build("assistant", content, meta_data, "answer")

    @property
    def is_object_string(self) -> bool:
        """True for multimodal (``object_string``) content."""
        return self.content_type == ContentType.OBJECT_STRING

    def content_items(self) -> list[dict[str, Any]]:
        """The decoded items of ``object_string`` content (``[]`` for other content types)."""
        if not self.is_object_string:
            return []
        value = json.loads(self.content)
        return value if isinstance(value, list) else []

    def audio_bytes(self) -> bytes:
        """The decoded bytes of an ``audio`` message (base64 content)."""
        return base64.b64decode(self.content) if self.content else b""

    def to_request(self) -> dict[str, Any]:
        """The wire form used in ``additional_messages`` (no ``None`` values)."""
        out: dict[str, Any] = {
            "role": self.role,
            "content": self.content,
            "content_type": self.content_type,
        }
        if self.type:
            out["type"] = self.type
        if self.meta_data:
            out["meta_data"] = dict(self.meta_data)
        return out


# Class-level defaults: a Message whose __dict__ was adopted from the wire falls back to these
# for the fields the payload did not carry (attrs removes them from dict classes).
for _field in attrs.fields(Message):
    setattr(Message, _field.name, _field.default)
del _field


def _tool_call_id(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(
            f"ToolOutput.tool_call_id must be the tool call's id (a non-empty string), "
            f"got {kind(value)}"
        )
    check_str("ToolOutput.tool_call_id", value)


def _tool_output(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
    check_str("ToolOutput.output", value)


@attrs.frozen
class ToolOutput:
    """The answer to one tool call, for ``submit_tool_outputs``.

    ``output`` is a string (serialize structured results, e.g. with ``json.dumps``).
    """

    tool_call_id: str = attrs.field(validator=_tool_call_id)
    output: str = attrs.field(validator=_tool_output)


@attrs.frozen
class ChatPoll:
    """What ``create_and_poll`` returns: the final chat and its messages."""

    chat: Chat
    messages: tuple[Message, ...]

    @property
    def text(self) -> str:
        """The concatenated content of the ``answer`` messages."""
        return "".join(m.content for m in self.messages if m.type == MessageType.ANSWER)
