"""Bots: what a chat turn produces, both as SSE frames and as the final stored state.

A bot turns a started chat into a :class:`Turn`: a lazy iterator of ready-to-write SSE frames
plus the :class:`~coze_async.emulator.state.Outcome` the chat ends with. The same Turn serves
both modes: a stream writes its frames (the turn commits its outcome just before yielding the
terminal chat event), a non-stream chat just calls :meth:`Turn.settle` from a background task.

Frames are built as bytes once per event; answer deltas use a pre-split JSON template so the
hot path of a long stream is one small ``dumps`` and three concatenations per event.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .state import ChatRecord, Conversation, EmulatorState, MessageRecord, Outcome, Usage, new_id
from .wire import DONE_FRAME, dumps, sse_frame

__all__ = [
    "AUDIO_BOT_ID",
    "ECHO_BOT_ID",
    "TOOL_BOT_ID",
    "AudioBot",
    "Bot",
    "EchoBot",
    "ScriptedBot",
    "ToolBot",
    "Turn",
    "TurnContext",
    "describe_content",
    "failed_turn",
]

#: Echoes the user's last message in Chinese ("你说：…"); also answers for unknown bot ids.
ECHO_BOT_ID: Final = "7400000000000000001"
#: Asks for a ``get_weather`` tool call (``requires_action``), then answers "天气：<output>".
TOOL_BOT_ID: Final = "7400000000000000002"
#: Like the echo bot, plus ``conversation.audio.delta`` events with base64 PCM.
AUDIO_BOT_ID: Final = "7400000000000000003"

# The verbose message Coze sends once all answers are done, byte for byte as recorded.
VERBOSE_FINISH: Final = dumps(
    {
        "msg_type": "generate_answer_finish",
        "data": dumps({"finish_reason": 0, "FinData": ""}).decode(),
        "from_module": None,
        "from_unit": None,
    }
).decode()

FOLLOW_UPS: Final = ("能再详细说说吗？", "还有其他相关的内容吗？", "你能举个例子吗？")

# 20 ms of a 440 Hz tone as 24 kHz 16-bit mono little-endian PCM, the format Coze streams.
_PCM_SAMPLES: Final = 480
_PCM: Final = struct.pack(
    f"<{_PCM_SAMPLES}h",
    *(int(8000 * math.sin(2 * math.pi * 440 * i / 24000)) for i in range(_PCM_SAMPLES)),
)
AUDIO_CHUNK_B64: Final = base64.b64encode(_PCM).decode()

# Pretend system-prompt size so input usage is non-zero even for tiny queries.
_PROMPT_TOKENS: Final = 96


def describe_content(
    content_type: str,
    content: str,
    describe_file: Callable[[str], str | None] | None = None,
) -> str:
    """Render a message's content as plain text for the echo reply.

    ``object_string`` content (a JSON string holding a list of text/file/image/audio items) is
    summarised as its text followed by ``[附件: image file_id=…]`` markers. ``describe_file``
    labels a file id the emulator knows (an uploaded file: ``name=… bytes=…``) and raises
    ValueError for one the caller may not use; unknown ids get no label. Raises ValueError
    when the content is not a JSON list of objects with a ``type``.
    """
    if content_type != "object_string":
        return content
    items = json.loads(content)
    if not isinstance(items, list) or not items:
        raise ValueError("object_string content must be a non-empty JSON array")
    texts: list[str] = []
    attachments: list[str] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError("object_string items must be objects with a string 'type'")
        if item["type"] == "text":
            texts.append(str(item.get("text") or ""))
        elif item.get("file_id"):
            label = describe_file(str(item["file_id"])) if describe_file is not None else None
            extra = f" {label}" if label else ""
            attachments.append(f"[附件: {item['type']} file_id={item['file_id']}{extra}]")
        elif item.get("file_url"):
            attachments.append(f"[附件: {item['type']} file_url={item['file_url']}]")
        else:
            raise ValueError(f"object_string {item['type']} item needs file_id or file_url")
    return " ".join(part for part in (" ".join(texts), *attachments) if part)


def chunk_text(text: str) -> list[str]:
    """Split a reply into delta pieces of about four characters.

    Short replies use smaller pieces so that every answer has at least three deltas (clients
    must be seen to concatenate), e.g. "你说：早上好" gives three deltas of two characters.
    """
    if not text:
        return [""]
    size = max(1, min(4, len(text) // 3))
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(slots=True)
class TurnContext:
    """What a bot knows when it starts or resumes a chat."""

    state: EmulatorState
    chat: ChatRecord
    conversation: Conversation
    #: Text of the last user message (object_string content already summarised).
    query: str
    #: How many times to repeat the reply (``x-coze-emulator-repeat``), at least 1.
    repeat: int = 1


class Turn:
    """One bot turn: lazily built SSE frames plus the outcome the chat ends with.

    Iterating yields frames; the frame source calls :meth:`commit` right before yielding the
    terminal chat event, so state and stream agree. Whatever interrupts the stream, the
    writer calls :meth:`settle` (generation "finishes on the server", as Coze keeps going when
    a client leaves) or :meth:`fail` (an injected error event).
    """

    __slots__ = ("_committed", "_frames", "chat", "outcome", "state")

    def __init__(
        self,
        state: EmulatorState,
        chat: ChatRecord,
        outcome: Outcome,
        frames: Callable[[Turn], Iterator[bytes]],
    ) -> None:
        self.state = state
        self.chat = chat
        self.outcome = outcome
        self._committed = False
        self._frames = frames(self)

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def commit(self) -> None:
        """Apply the outcome to the state (once; a canceled chat keeps its canceled state)."""
        if not self._committed:
            self._committed = True
            self.state.finish_chat(self.chat, self.outcome)

    def settle(self) -> None:
        """Finish the turn in the background: same as :meth:`commit`; also closes the frames."""
        self.commit()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def fail(self, code: int, msg: str) -> None:
        """End the turn as failed with ``last_error`` ``(code, msg)`` unless already committed."""
        if not self._committed:
            self._committed = True
            self.state.finish_chat(self.chat, Outcome("failed", last_error=(code, msg)))

    def error_frame(self, code: int, msg: str) -> bytes:
        """The mid-stream ``error`` event of a chat stream (recorded ``{"code","msg"}`` shape)."""
        return sse_frame("error", {"code": code, "msg": msg})


class _MessageFrames:
    """Pre-encoded frames for one message: deltas via a split template, completed once."""

    _SENTINEL: Final = "\ue000coze-emulator-content\ue000"

    def __init__(self, msg: MessageRecord, event: str = "conversation.message.delta") -> None:
        self.msg = msg
        data: dict[str, Any] = {
            "id": msg.id,
            "conversation_id": msg.conversation_id,
            "bot_id": msg.bot_id,
            "role": msg.role,
            "type": msg.type,
            "content": self._SENTINEL,
            "content_type": msg.content_type,
            "chat_id": msg.chat_id,
            "section_id": msg.section_id,
        }
        head, tail = dumps(data).split(dumps(self._SENTINEL))
        self._pre = b"event:" + event.encode() + b"\ndata:" + head
        self._post = tail + b"\n\n"

    def delta(self, piece: str) -> bytes:
        return self._pre + dumps(piece) + self._post

    def completed(self) -> bytes:
        return sse_frame("conversation.message.completed", self.msg.to_event())


def _chat_frame(event: str, chat: ChatRecord, *, status: str | None = None) -> bytes:
    return sse_frame(event, chat.to_json(status=status, inserted=status == "created"))


def _message(
    ctx: TurnContext, type_: str, content: str, content_type: str = "text"
) -> MessageRecord:
    return MessageRecord(
        id=new_id(),
        conversation_id=ctx.conversation.id,
        section_id=ctx.chat.section_id,
        role="assistant",
        type=type_,
        content=content,
        content_type=content_type,
        bot_id=ctx.chat.bot_id,
        chat_id=ctx.chat.id,
    )


def _usage(query: str, reply: str) -> Usage:
    input_count = _PROMPT_TOKENS + len(query)
    output_count = max(1, len(reply))
    return Usage(input_count + output_count, output_count, input_count)


class Bot(ABC):
    """A scriptable bot. Subclass and register with ``Emulator.add_bot`` to add behaviours."""

    #: Prefix of the answer given after tool outputs are submitted.
    tool_answer_prefix = "结果："

    @abstractmethod
    def start(self, ctx: TurnContext) -> Turn:
        """Produce the turn for a newly created chat."""

    def resume(self, ctx: TurnContext, tool_outputs: Sequence[tuple[str, str]]) -> Turn:
        """Produce the continuation after ``submit_tool_outputs`` (same chat id).

        Sequence: ``in_progress``, ``message.completed`` (tool_response), answer deltas,
        ``message.completed`` (answer), ``chat.completed``, ``done``.
        """
        output = "；".join(out for _, out in tool_outputs)
        tool_msg = _message(
            ctx,
            "tool_response",
            dumps({"content_type": 1, "response_for_model": output, "type_for_model": 1}).decode(),
        )
        reply = self.tool_answer_prefix + output
        answer = _message(ctx, "answer", reply)
        outcome = Outcome(
            "completed", [tool_msg, answer], _usage(output, reply), required_action=None
        )

        def frames(turn: Turn) -> Iterator[bytes]:
            yield _chat_frame("conversation.chat.in_progress", ctx.chat)
            yield _MessageFrames(tool_msg).completed()
            answer_frames = _MessageFrames(answer)
            for piece in chunk_text(reply):
                yield answer_frames.delta(piece)
            yield answer_frames.completed()
            turn.commit()
            yield _chat_frame("conversation.chat.completed", ctx.chat)
            yield DONE_FRAME

        return Turn(ctx.state, ctx.chat, outcome, frames)


class EchoBot(Bot):
    """Answers "你说：<last user message>" in ~4-character deltas, then verbose + follow-ups.

    Stream: created, in_progress, N x message.delta, message.completed (answer),
    message.completed (verbose generate_answer_finish), 3 x message.completed (follow_up),
    chat.completed (non-zero usage), done.
    """

    #: Emit ``conversation.audio.delta`` events (see :class:`AudioBot`).
    audio = False
    #: With ``audio``: one audio delta after each text delta, instead of the recorded order
    #: (one audio delta with the whole answer's audio after ``conversation.chat.completed``).
    interleaved = False

    def start(self, ctx: TurnContext) -> Turn:
        reply = ("你说：" + ctx.query) * max(1, ctx.repeat)
        answer = _message(ctx, "answer", reply)
        verbose = _message(ctx, "verbose", VERBOSE_FINISH)
        follow_ups = [_message(ctx, "follow_up", text) for text in FOLLOW_UPS]
        outcome = Outcome("completed", [answer, verbose, *follow_ups], _usage(ctx.query, reply))
        audio = self.audio
        interleaved = audio and self.interleaved

        def frames(turn: Turn) -> Iterator[bytes]:
            chat = ctx.chat
            yield _chat_frame("conversation.chat.created", chat, status="created")
            yield _chat_frame("conversation.chat.in_progress", chat, status="in_progress")
            answer_frames = _MessageFrames(answer)
            pieces = chunk_text(reply)
            audio_frames: _MessageFrames | None = None
            if audio:
                audio_msg = MessageRecord(
                    id=answer.id,
                    conversation_id=answer.conversation_id,
                    section_id=answer.section_id,
                    role="assistant",
                    type="answer",
                    content="",
                    content_type="audio",
                    bot_id=answer.bot_id,
                    chat_id=answer.chat_id,
                )
                audio_frames = _MessageFrames(audio_msg, "conversation.audio.delta")
            each = b""
            if interleaved and audio_frames is not None:
                each = audio_frames.delta(AUDIO_CHUNK_B64)
            for piece in pieces:
                yield answer_frames.delta(piece)
                if each:
                    yield each
            yield answer_frames.completed()
            yield _MessageFrames(verbose).completed()
            for msg in follow_ups:
                yield _MessageFrames(msg).completed()
            turn.commit()
            yield _chat_frame("conversation.chat.completed", chat)
            if audio_frames is not None and not interleaved:
                # As recorded: the whole answer's audio in one delta after chat.completed.
                yield audio_frames.delta(_audio_b64(len(pieces)))
            yield DONE_FRAME

        return Turn(ctx.state, ctx.chat, outcome, frames)


class AudioBot(EchoBot):
    """The echo bot plus ``conversation.audio.delta`` events (base64 24 kHz 16-bit PCM).

    By default in the recorded order: one audio delta carrying the whole answer's audio (20 ms
    per text delta) after ``conversation.chat.completed``, right before ``done``.
    ``AudioBot(interleaved=True)`` sends one 20 ms audio delta after every text delta instead.
    """

    audio = True

    def __init__(self, *, interleaved: bool = False) -> None:
        self.interleaved = interleaved


def _audio_b64(chunks: int) -> str:
    """``chunks`` times the 20 ms tone, as one base64 string."""
    return base64.b64encode(_PCM * max(1, chunks)).decode()


class ToolBot(Bot):
    """Calls a ``get_weather`` tool: the chat stops in ``requires_action``.

    Stream: created, in_progress, message.completed (function_call),
    chat.requires_action (``required_action.submit_tool_outputs.tool_calls[0]`` with an opaque
    id), done. Submitting outputs resumes the same chat and answers "天气：<output>".
    """

    tool_answer_prefix = "天气："

    def start(self, ctx: TurnContext) -> Turn:
        arguments = {"city": "北京"}
        call = _message(
            ctx,
            "function_call",
            dumps(
                {
                    "name": "get_weather",
                    "arguments": arguments,
                    "plugin_id": 7400000000000000100,
                    "api_id": 7400000000000000101,
                    "plugin_type": 1,
                    "thought": "用户想知道天气，需要调用 get_weather 工具查询北京的天气。",
                }
            ).decode(),
        )
        # Coze's tool call ids are opaque base64-looking strings, not numeric ids.
        tool_call_id = base64.b64encode(os.urandom(33)).decode()
        required_action = {
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": tool_call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": dumps(arguments).decode()},
                    }
                ]
            },
        }
        outcome = Outcome(
            "requires_action", [call], _usage(ctx.query, ""), required_action=required_action
        )

        def frames(turn: Turn) -> Iterator[bytes]:
            chat = ctx.chat
            yield _chat_frame("conversation.chat.created", chat, status="created")
            yield _chat_frame("conversation.chat.in_progress", chat, status="in_progress")
            yield _MessageFrames(call).completed()
            turn.commit()
            yield _chat_frame("conversation.chat.requires_action", chat)
            yield DONE_FRAME

        return Turn(ctx.state, ctx.chat, outcome, frames)


class ScriptedBot(Bot):
    """Streams a fixed list of frames verbatim, one write per frame, adding nothing.

    Lets tests produce any event sequence (unknown events, error events, odd framing, CRLF).
    The chat is marked completed after the last frame; non-stream chats to a scripted bot
    complete in the background without messages.
    """

    def __init__(self, frames: Sequence[bytes]) -> None:
        self.frames = list(frames)

    def start(self, ctx: TurnContext) -> Turn:
        script = self.frames

        def frames(turn: Turn) -> Iterator[bytes]:
            yield from script
            turn.commit()

        return Turn(ctx.state, ctx.chat, Outcome("completed"), frames)


def failed_turn(ctx: TurnContext, code: int, msg: str) -> Turn:
    """The ``chat-failed`` fault: created, in_progress, then ``conversation.chat.failed``.

    As recorded, the stream ends after the failed event without ``done``.
    """
    outcome = Outcome("failed", last_error=(code, msg))

    def frames(turn: Turn) -> Iterator[bytes]:
        yield _chat_frame("conversation.chat.created", ctx.chat, status="created")
        yield _chat_frame("conversation.chat.in_progress", ctx.chat, status="in_progress")
        turn.commit()
        yield _chat_frame("conversation.chat.failed", ctx.chat)

    return Turn(ctx.state, ctx.chat, outcome, frames)
