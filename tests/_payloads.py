"""Builders for wire payloads used by scripted-bot tests (our own fixtures, not recordings)."""

from __future__ import annotations

from typing import Any

from coze_async.emulator import sse_frame

CONV = "7381473525342978089"
CHAT = "7382159487131697202"
BOT = "7379462189365198898"
MSG = "7382159494123470858"


def chat_obj(status: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": CHAT,
        "conversation_id": CONV,
        "bot_id": BOT,
        "created_at": 1718792949,
        "last_error": {"code": 0, "msg": ""},
        "status": status,
        "usage": {"token_count": 0, "output_count": 0, "input_count": 0},
        "section_id": CONV,
    }
    out.update(extra)
    return out


def msg_obj(content: str, *, type: str = "answer", id: str = MSG, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": id,
        "conversation_id": CONV,
        "bot_id": BOT,
        "role": "assistant",
        "type": type,
        "content": content,
        "content_type": "text",
        "chat_id": CHAT,
        "section_id": CONV,
    }
    out.update(extra)
    return out


def start_frames() -> list[bytes]:
    return [
        sse_frame("conversation.chat.created", chat_obj("created")),
        sse_frame("conversation.chat.in_progress", chat_obj("in_progress")),
    ]


def delta_frames(*pieces: str) -> list[bytes]:
    return [sse_frame("conversation.message.delta", msg_obj(p)) for p in pieces]


def completed_frames(text: str) -> list[bytes]:
    usage = {"token_count": 30, "output_count": 10, "input_count": 20}
    return [
        sse_frame("conversation.message.completed", msg_obj(text)),
        sse_frame("conversation.chat.completed", chat_obj("completed", usage=usage)),
    ]


DONE = sse_frame("done", '"[DONE]"')


def full_chat(*pieces: str) -> list[bytes]:
    return [*start_frames(), *delta_frames(*pieces), *completed_frames("".join(pieces)), DONE]
