"""Request helpers shared by the route handlers: the JSON body and its fields, validated.

Every helper raises :class:`~coze_async.emulator.wire.ApiError` (code 4000, the msg naming
the field) on a value Coze would refuse; null-valued fields count as absent (cozepy sends
explicit nulls) and an empty string as absent where Coze treats it so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from .bots import describe_content
from .host import RecordedRequest
from .wire import NOT_A_CHAT_REQUEST, ApiError

__all__ = [
    "INVALID_BODY",
    "NOT_A_CHAT_REQUEST",
    "int_param",
    "json_object",
    "opt_bool",
    "opt_str",
    "opt_str_map",
    "parse_messages",
    "required_str",
]

#: The emulator's 4000 text for such a body elsewhere (Coze's wording there is not known).
INVALID_BODY: Final = "Invalid request body: the body is not a valid JSON object."

_ROLES: Final = frozenset({"user", "assistant"})
_CONTENT_TYPES: Final = frozenset({"text", "object_string"})


def json_object(recorded: RecordedRequest, *, invalid: str = INVALID_BODY) -> dict[str, Any]:
    """The request's JSON body as a dict (``{}`` for no body, or ``null``).

    A body that is not JSON, or JSON that is not an object, answers 4000 with ``invalid``
    (the chat API passes Coze's own text, :data:`NOT_A_CHAT_REQUEST`).
    """
    value = recorded.json
    if value is None:
        if recorded.body.strip() and not _is_json_null(recorded.body):
            raise ApiError(4000, invalid)
        return {}
    if not isinstance(value, dict):
        raise ApiError(4000, invalid)
    return value


def _is_json_null(body: bytes) -> bool:
    try:
        return json.loads(body) is None
    except ValueError:
        return False


def required_str(source: Mapping[str, Any], key: str) -> str:
    """A required, non-empty string field."""
    value = source.get(key)
    if value is None or value == "":
        raise ApiError(4000, f"Invalid parameter {key}: {key} is required.")
    if not isinstance(value, str):
        raise ApiError(4000, f"Invalid parameter {key}: must be a string.")
    return value


def opt_str(body: Mapping[str, Any], key: str) -> str | None:
    """An optional string field (None when absent, null or empty)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(4000, f"Invalid parameter {key}: must be a string.")
    return value


def opt_bool(body: Mapping[str, Any], key: str, *, default: bool) -> bool:
    """An optional boolean field."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(4000, f"Invalid parameter {key}: must be a boolean.")
    return value


def opt_str_map(body: Mapping[str, Any], key: str) -> dict[str, str] | None:
    """An optional map of strings (``meta_data``, ``ext``)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ApiError(4000, f"Invalid parameter {key}: must be a map of strings.")
    return dict(value)


def parse_messages(
    value: Any,
    describe_file: Callable[[str], str | None] | None = None,
    *,
    field: str = "additional_messages",
) -> list[dict[str, Any]]:
    """Validate ``additional_messages``; returns normalised dicts (role/type/content/...)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(4000, f"Invalid parameter {field}: must be an array.")
    out = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise ApiError(4000, f"Invalid parameter {where}: must be an object.")
        role = item.get("role")
        if not isinstance(role, str) or not role:
            raise ApiError(4000, f"Invalid parameter {where}.role: role is required.")
        if role not in _ROLES:
            raise ApiError(4000, f"Invalid parameter {where}.role: {role!r}.")
        content = item.get("content")
        if not isinstance(content, str):
            raise ApiError(4000, f"Invalid parameter {where}.content: content is required.")
        content_type = item.get("content_type") or "text"
        if content_type not in _CONTENT_TYPES:
            raise ApiError(4000, f"Invalid parameter {where}.content_type: {content_type!r}.")
        try:
            text = describe_content(content_type, content, describe_file)
        except ValueError as exc:
            raise ApiError(4000, f"Invalid parameter {where}.content: {exc}.") from None
        meta = item.get("meta_data")
        out.append(
            {
                "role": role,
                "type": item.get("type") or ("question" if role == "user" else "answer"),
                "content": content,
                "content_type": content_type,
                "meta_data": dict(meta) if isinstance(meta, dict) else {},
                "text": text,
            }
        )
    return out


def int_param(query: Mapping[str, str], key: str, default: int, low: int, high: int | None) -> int:
    """An optional integer query parameter within ``low``..``high`` (``high`` None: no cap)."""
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(4000, f"Invalid parameter {key}: must be an integer.") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f">= {low}"
        raise ApiError(4000, f"Invalid parameter {key}: must be {bounds}.")
    return value
