"""Lenient response models, exact requests, and the typed fast path."""

from __future__ import annotations

import pytest

from coze_async import Chat, Message, ResponseValidationError
from coze_async.models.conversation import Conversation
from coze_async.models.converter import structure
from coze_async.models.wire import chat_event_from_sse, message_from_wire


def test_ids_and_timestamps_as_int_or_string() -> None:
    chat = structure(
        {
            "id": 7382159487131697202,
            "conversation_id": "7381473525342978089",
            "created_at": "1718792949",
            "completed_at": 1718792950,
            "status": "brand_new_status",
            "last_error": {"code": None, "msg": ""},
            "usage": {"token_count": "633", "output_count": 19, "input_count": 614},
            "some_future_field": {"nested": True},
        },
        Chat,
    )
    assert chat.id == "7382159487131697202"
    assert chat.created_at == 1718792949
    assert chat.status == "brand_new_status"  # unknown values are kept
    assert chat.last_error is not None and chat.last_error.code is None
    assert chat.usage is not None and chat.usage.token_count == 633


def test_shape_error_names_the_path() -> None:
    with pytest.raises(ResponseValidationError) as info:
        structure({"id": "1", "usage": {"token_count": [1]}}, Chat, what="$.data")
    assert "$.data.usage.token_count" in str(info.value)


def test_fast_path_equals_converter() -> None:
    wire = {
        "id": "1",
        "conversation_id": "2",
        "bot_id": "3",
        "role": "assistant",
        "type": "answer",
        "content": "星期三",
        "content_type": "text",
        "chat_id": "4",
        "section_id": "2",
        "created_at": 1735115983,
    }
    assert message_from_wire(wire) == structure(wire, Message)
    odd = {**wire, "id": 12, "created_at": "1735115983", "reasoning_content": "思考"}
    fallback = message_from_wire(odd)
    assert fallback.id == "12" and fallback.created_at == 1735115983
    assert fallback.reasoning_content == "思考"  # extra known keys are not skipped


def test_unknown_message_type_and_null_fields_are_kept() -> None:
    m = message_from_wire(
        {"id": "1", "type": "knowledge", "content": "x", "bot_id": None, "meta_data": None}
    )
    assert m.type == "knowledge" and m.bot_id is None


def test_done_variants() -> None:
    assert chat_event_from_sse("done", '"[DONE]"').data == "[DONE]"  # type: ignore[union-attr]
    assert chat_event_from_sse("done", "[DONE]").data == "[DONE]"  # type: ignore[union-attr]
    done = chat_event_from_sse("done", '{"debug_url":"https://x"}')
    assert done.debug_url == "https://x"  # type: ignore[union-attr]


def test_stdlib_json_fallback_without_orjson() -> None:
    # The core install has no orjson: the stdlib path must give the same results.
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['orjson'] = None\n"
        "from coze_async import _json\n"
        "assert not _json.HAS_ORJSON\n"
        "assert _json.loads(b'{\"a\":\"\\xe4\\xbd\\xa0\"}') == {'a': '你'}\n"
        "assert _json.dumps({'a': '你'}) == '{\"a\":\"你\"}'.encode()\n"
        "from coze_async.models.wire import chat_event_from_sse\n"
        'data = \'{"id":"1","content":"好"}\'\n'
        "e = chat_event_from_sse('conversation.message.delta', data)\n"
        "assert e.message.content == '好'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()


@pytest.mark.parametrize("stamp", [1718592898, "1718592898"])
def test_updated_at_as_int_or_numeric_string(stamp: int | str) -> None:
    # Coze's doc examples write updated_at as a number in some answers and as a numeric
    # string in others (message/create); both become an int.
    wire = {
        "id": "1",
        "conversation_id": "2",
        "bot_id": "",
        "role": "user",
        "type": "",
        "content": "hi",
        "content_type": "text",
        "created_at": 1718592898,
        "updated_at": stamp,
        "meta_data": {},
    }
    assert structure(dict(wire), Message).updated_at == 1718592898
    assert message_from_wire(dict(wire)).updated_at == 1718592898
    conversation = structure(
        {"id": "2", "created_at": stamp, "updated_at": stamp, "meta_data": {}}, Conversation
    )
    assert conversation.created_at == conversation.updated_at == 1718592898
