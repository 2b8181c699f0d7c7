"""Wire-level helpers shared by every emulator route: JSON, logids, envelopes, SSE frames.

Everything here is about producing bytes exactly as Coze does (coze-api.md §1 and §9):
compact JSON with raw UTF-8 (``ensure_ascii=False``), ``X-Tt-Logid`` on every response,
``{"code","msg","data","detail":{"logid"}}`` envelopes, and chat SSE frames without a space
after the colon.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "DONE_FRAME",
    "FAULT_HEADER",
    "LOGID_HEADER",
    "NOT_A_CHAT_REQUEST",
    "REPEAT_HEADER",
    "ApiError",
    "bot_not_found",
    "dumps",
    "envelope_error",
    "envelope_ok",
    "error_message",
    "new_logid",
    "sse_frame",
]

#: Bearer token an :class:`~coze_async.emulator.Emulator` accepts unless told otherwise.
DEFAULT_TOKEN: Final = "emu_test_token"
#: Request header selecting faults for that one request (see ``faults.py``).
FAULT_HEADER: Final = "x-coze-emulator-fault"
#: Request header repeating the echo/audio bots' reply N times (many deltas for load tests).
REPEAT_HEADER: Final = "x-coze-emulator-repeat"
#: Response header carrying the request's log id, spelled as Coze sends it (aiohttp keeps the
#: case; clients that look it up case-sensitively, as coze-js does, find it).
LOGID_HEADER: Final = "X-Tt-Logid"
#: Beijing time, the zone of Coze's logid stamps.
_BEIJING_OFFSET: Final = 8 * 3600

_json_dumps: Callable[[Any], bytes]
try:  # orjson is an optional speed-up; its output is byte-identical for our payloads.
    import orjson

    _json_dumps = orjson.dumps
except ImportError:  # pragma: no cover - exercised only without the speedups extra
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def _json_dumps(obj: Any) -> bytes:
        return _encoder.encode(obj).encode()


def dumps(obj: Any) -> bytes:
    """Encode ``obj`` as compact UTF-8 JSON (no spaces, non-ASCII kept raw), like Coze."""
    return _json_dumps(obj)


def new_logid() -> str:
    """Return a fresh log id in Coze's 34-character format.

    A 14-digit Beijing-time (UTC+8) ``YYYYMMDDhhmmss`` stamp + 20 upper-case hex characters,
    e.g. ``20240708143040790E78F9318B35A2910B``.
    """
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + _BEIJING_OFFSET))
    return stamp + secrets.token_hex(10).upper()


#: Coze's 4000 text for a ``/v3/chat`` body that is not JSON, or whose fields have the wrong
#: JSON types (e.g. ``user_id`` sent as a number), as api.coze.cn answers it; also the
#: emulator's default 4000 text (the only 4000 wording on record).
NOT_A_CHAT_REQUEST: Final = (
    "The field http body provided is not a valid json or chat request. Please check your input."
)

# Realistic messages for the error codes tests are most likely to ask for; anything else gets
# a generic text. [rec] marks Coze's own wording, from answers quoted in the official SDKs'
# issue threads and user reports (coze-api.md §1.6); the rest paraphrase the error-code table.
_ERROR_MESSAGES: Final[dict[int, str]] = {
    4000: NOT_A_CHAT_REQUEST,  # [rec]
    4001: "Invalid chat. Please check that the chat_id and conversation_id are correct.",
    4002: "Invalid conversation. Please check that the conversation_id is correct.",
    4003: "The meta_data exceeds the limits: at most 16 pairs, keys 1-64 and values 1-512 "
    "characters.",
    4005: "Invalid message. Please check that the message_id and the content are correct.",
    4006: "Invalid bot. Please check that the bot_id is correct.",
    4007: "Invalid parameter: auto_save_history must be true when stream is false.",
    4008: "The bot's daily usage limit has been reached. Please try again tomorrow.",
    4009: "The system has reached its request limit. Please try again later.",
    4011: "Your Coze token balance is insufficient.",
    4013: "The model service encountered an error. Please try again later.",
    4015: "The bot has not been published to the API channel.",
    4016: (  # [rec]
        "Conversation occupied: Another chat is currently active. Please wait for the ongoing "
        "chat to complete or create a new conversation to start a separate chat. Ensure only "
        "one chat runs at a time within the same conversation."
    ),
    4019: "Your account balance is insufficient or in arrears.",
    4020: "The bot has exceeded the purchased RPM peak. Please try again later.",
    4028: (
        "Your free quota has been used up. Please upgrade to a paid plan to continue: "
        "https://console.volcengine.com/coze-pro"
    ),
    4100: "authentication is invalid",  # [rec] coze-py #78, coze-js #314
    # [rec] coze.com (coze-go #56); coze.cn links https://coze.cn/docs/... instead.
    4101: (
        "The token you entered is incorrect. Please double-check and try again. For more "
        "information, refer to https://coze.com/docs/developer_guides/authentication"
    ),
    4104: "The chat cannot be canceled: it has already completed, failed or requires action.",
    4200: "The requested resource was not found.",
    4300: "The file is empty.",
    4301: "Only one file can be uploaded at a time.",
    4302: "The file exceeds the maximum allowed size.",
    4303: "The file type is not supported.",
    4304: "The file is invalid.",
    # [rec] coze-js #179 quotes its start; the whole sentence as Coze sends it elsewhere.
    5000: (
        "We're currently experiencing server issues. Please try your request again after a "
        "short delay. If the problem persists, contact our support team."
    ),
}


class ApiError(Exception):
    """Raised by a handler to answer with an error envelope ``{"code":code,"msg":msg}``.

    The server's middleware turns it into the response, so handlers read straight down.
    """

    def __init__(self, code: int, msg: str | None = None) -> None:
        self.code = code
        self.msg = error_message(code) if msg is None else msg
        super().__init__(f"{code}: {self.msg}")


def error_message(code: int) -> str:
    """Return a realistic ``msg`` for an error ``code`` (generic text for unlisted codes)."""
    return _ERROR_MESSAGES.get(code, f"Emulated error {code}.")


def bot_not_found(bot_id: str) -> str:
    """Coze's 4200 text for a chat addressed to a bot that does not exist (recorded)."""
    return (
        f"Requested resource bot_id={bot_id} does not exist. "
        "Ensure you are the correct resource identifier."
    )


def envelope_ok(logid: str, data: Any = None, *, has_data: bool = True) -> web.Response:
    """Build a success envelope ``{"code":0,"msg":"","data":...,"detail":{"logid":...}}``.

    ``has_data=False`` omits the ``data`` key entirely, which Coze does for a failed chat's
    message list (coze-api.md §2.7) and which clients must survive.
    """
    body: dict[str, Any] = {"code": 0, "msg": ""}
    if has_data:
        body["data"] = data
    body["detail"] = {"logid": logid}
    return web.Response(body=dumps(body), content_type="application/json")


def envelope_error(
    logid: str, code: int, msg: str | None = None, *, status: int = 200
) -> web.Response:
    """Build an error envelope ``{"code":N,"msg":...,"detail":{"logid":...}}``.

    Business errors are HTTP 200 at Coze; ``status`` exists for the ``status=`` fault.
    """
    body: dict[str, Any] = {
        "code": code,
        "msg": error_message(code) if msg is None else msg,
        "detail": {"logid": logid},
    }
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def sse_frame(
    event: str,
    data: str | dict[str, Any] | list[Any],
    *,
    spaced: bool = False,
    id: int | None = None,
) -> bytes:
    """Encode one server-sent event the way Coze frames it.

    Chat streams use ``event:NAME\\ndata:JSON\\n\\n`` (no space after the colon); chatflow and
    workflow streams put a space after the colon (``spaced=True``) and workflows start each
    event with an ``id: N`` line. ``data`` given as ``str`` is written verbatim, so
    ``sse_frame("done", '"[DONE]"')`` produces ``data:"[DONE]"``; dicts and lists are encoded
    as compact JSON.
    """
    payload = data.encode() if isinstance(data, str) else dumps(data)
    sep = b": " if spaced else b":"
    head = b"" if id is None else b"id: %d\n" % id
    return head + b"event" + sep + event.encode() + b"\ndata" + sep + payload + b"\n\n"


#: The frame that ends every successful chat stream.
DONE_FRAME: Final = sse_frame("done", '"[DONE]"')
