"""Tests for the sans-IO SSE decoder (coze_async.sse).

The stream fixtures below are written for these tests in the shapes Coze uses (see
coze-api.md §2.5 and §4.2); they are not copies of recorded traffic.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coze_async.sse import ServerSentEvent, SSEDecoder, iter_events

BOM = b"\xef\xbb\xbf"


def decode_all(chunks: Iterable[bytes]) -> tuple[list[ServerSentEvent], ServerSentEvent | None]:
    """Feed every chunk to a fresh decoder; return all events and what close() returned."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events, decoder.close()


def decode(body: bytes) -> list[ServerSentEvent]:
    return decode_all([body])[0]


def split_at(body: bytes, points: Sequence[int]) -> list[bytes]:
    """Split ``body`` at the given (sorted, possibly repeated) offsets."""
    bounds = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


def ev(
    data: str, event: str = "message", id: str | None = None, retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(event, data, id, retry)


# --------------------------------------------------------------------------------------------
# ServerSentEvent itself


def test_event_defaults_repr_eq_hash() -> None:
    e = ServerSentEvent()
    assert (e.event, e.data, e.id, e.retry) == ("message", "", None, None)
    a = ServerSentEvent("x", "中文", "7", 10)
    b = ServerSentEvent("x", "中文", "7", 10)
    assert a == b
    assert hash(a) == hash(b)
    assert a != ServerSentEvent("x", "中文", "7", None)
    assert a != ("x", "中文", "7", 10)
    assert repr(a) == "ServerSentEvent(event='x', data='中文', id='7', retry=10)"
    match a:
        case ServerSentEvent("x", data):
            assert data == "中文"
        case _:
            pytest.fail("positional match failed")


# --------------------------------------------------------------------------------------------
# Line endings


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_line_endings(eol: bytes) -> None:
    body = eol.join([b"event:a", b"data:1", b"data:2", b"", b"data:3", b"", b""])
    assert decode(body) == [ev("1\n2", "a"), ev("3")]


def test_mixed_line_endings() -> None:
    body = b"data:1\rdata:2\r\ndata:3\n\r\ndata:4\r\r"
    assert decode(body) == [ev("1\n2\n3"), ev("4")]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # If "\r" + "\n" were two line ends, the "\n" would be a blank line dispatching "a" alone.
    events, pending = decode_all([b"data:a\r", b"\ndata:b\r\n\r", b"\n", b"data:c\r\n\r\n"])
    assert events == [ev("a\nb"), ev("c")]
    assert pending is None


def test_cr_at_chunk_end_followed_by_non_lf() -> None:
    events, _ = decode_all([b"data:a\r", b"data:b\r", b"\r", b"data:c\n\n"])
    assert events == [ev("a\nb"), ev("c")]


def test_lone_cr_then_lf_only_chunk() -> None:
    # "\r" | "\n" | "\n": CRLF (one line end) then LF (blank line) -> exactly one dispatch.
    events, pending = decode_all([b"data:x\r", b"\n", b"\n"])
    assert events == [ev("x")]
    assert pending is None


# --------------------------------------------------------------------------------------------
# Field parsing


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),  # only one space is stripped
        (b"data:x ", "x "),  # trailing space kept
        (b"data:\tx", "\tx"),  # only a space, not other whitespace
        (b"data: a:b: c", "a:b: c"),  # split at the first colon only
        (b"data", ""),  # no colon: field name with empty value
        (b"data:", ""),
        (b"data: ", ""),
    ],
)
def test_data_value_parsing(line: bytes, expected: str) -> None:
    assert decode(line + b"\n\n") == [ev(expected)]


def test_optional_space_on_event_and_id() -> None:
    body = b"event: a\nid: 1\ndata:x\n\nevent:  b\nid:  2\ndata:y\n\n"
    assert decode(body) == [ev("x", "a", "1"), ev("y", " b", " 2")]


def test_multiline_data_joined_with_lf() -> None:
    body = b"data:a\ndata:\ndata\ndata: b\n\n"
    assert decode(body) == [ev("a\n\n\nb")]


def test_comments_are_ignored() -> None:
    body = b": keep-alive\n:\nevent:x\n: in the middle\ndata:1\n:data:2\n\n: ping\n\n"
    assert decode(body) == [ev("1", "x")]


def test_comments_only_stream_dispatches_nothing() -> None:
    events, pending = decode_all([b": ping\n\n: ping\n\n", b": pi", b"ng\n"])
    assert events == []
    assert pending is None


def test_unknown_fields_ignored_and_field_names_case_sensitive() -> None:
    body = b"foo:bar\nData:no\nEVENT:no\ndata:yes\nevent :no\n\n"
    assert decode(body) == [ev("yes")]


def test_event_type_set_and_empty_event_means_message() -> None:
    body = b"event:a\ndata:1\n\nevent:\ndata:2\n\ndata:3\n\nevent:a\nevent:b\ndata:4\n\n"
    assert decode(body) == [ev("1", "a"), ev("2"), ev("3"), ev("4", "b")]


# --------------------------------------------------------------------------------------------
# id and retry


def test_id_persists_across_events() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id is None
    events = decoder.feed(b"data:0\n\nid:1\ndata:a\n\ndata:b\n\nid:2\ndata:c\n\n")
    assert [e.id for e in events] == [None, "1", "1", "2"]
    assert decoder.last_event_id == "2"


def test_id_with_nul_is_ignored() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"id:1\ndata:a\n\nid:2\x003\ndata:b\n\n")
    assert [e.id for e in events] == ["1", "1"]
    assert decoder.last_event_id == "1"


def test_empty_id_resets_to_empty_string() -> None:
    events = decode(b"id:1\ndata:a\n\nid\ndata:b\n\nid:\ndata:c\n\n")
    assert [e.id for e in events] == ["1", "", ""]


def test_id_without_data_still_updates_last_event_id() -> None:
    # The spec sets the last event ID string at every dispatch, even one with no data.
    decoder = SSEDecoder()
    assert decoder.feed(b"id:5\n\n") == []
    assert decoder.last_event_id == "5"
    assert decoder.feed(b"data:x\n\n") == [ev("x", id="5")]


def test_last_event_id_only_moves_at_dispatch() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id:1\ndata:a\n\nid:2\ndata:b\n")
    assert decoder.last_event_id == "1"
    decoder.feed(b"\n")
    assert decoder.last_event_id == "2"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"3000", 3000),
        (b" 0", 0),
        (b"007", 7),
        (b"", None),
        (b"-1", None),
        (b"1.5", None),
        (b"10a", None),
        (b"1_000", None),
        (b" 1 ", None),
        ("١٢".encode(), None),  # non-ASCII digits are not ASCII digits
        ("１２".encode(), None),
    ],
)
def test_retry_only_ascii_digits(value: bytes, expected: int | None) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"retry:" + value + b"\ndata:x\n\n")
    assert events == [ev("x", retry=expected)]
    assert decoder.retry == expected


def test_retry_belongs_to_its_event_only() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"retry:100\ndata:a\n\ndata:b\n\nretry:5\n\ndata:c\n\n")
    assert [e.retry for e in events] == [100, None, None]
    # A retry-only block dispatches nothing but still sets the reconnection time.
    assert decoder.retry == 5


# --------------------------------------------------------------------------------------------
# Dispatch rules


def test_blank_line_dispatches() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:a\n") == []
    assert decoder.feed(b"\n") == [ev("a")]


def test_empty_data_buffer_is_not_dispatched_and_resets_event_type() -> None:
    body = b"event:x\n\ndata:y\n\nevent:z\nid:1\nretry:7\n\n\n\n\ndata:w\n\n"
    assert decode(body) == [ev("y"), ev("w", id="1")]


def test_leading_blank_lines_dispatch_nothing() -> None:
    assert decode(b"\n\n\r\n\r\rdata:x\n\n") == [ev("x")]


def test_event_with_empty_data_line_is_dispatched() -> None:
    # "data:" appends an empty line, so the data buffer is "\n" -> non-empty -> dispatched.
    assert decode(b"event:e\ndata:\n\n") == [ev("", "e")]


def test_final_event_without_blank_line_is_returned_by_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'event:a\ndata:1\n\nevent:done\ndata:"[DONE]"\n') == [ev("1", "a")]
    assert decoder.pending_bytes == len(b'event:done\ndata:"[DONE]"\n')
    assert decoder.close() == ev('"[DONE]"', "done")
    assert decoder.pending_bytes == 0
    assert decoder.last_event_id is None


def test_close_includes_unterminated_last_line() -> None:
    _, pending = decode_all([b"id:9\ndata:a\n", b'data:{"trunc'])
    assert pending == ev('a\n{"trunc', id="9")


def test_close_returns_pending_event_without_data() -> None:
    assert decode_all([b"data:a\n\nevent:conversation.chat.failed\n"])[1] == ev(
        "", "conversation.chat.failed"
    )
    assert decode_all([b"data:a\n\nretry:5"])[1] == ev("", retry=5)
    pending = decode_all([b"id:1\ndata:a\n\nid:2\n"])[1]
    assert pending == ev("", id="2")


def test_close_does_not_dispatch_or_move_stream_state() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id:1\nretry:10\ndata:a\n\nid:2\nretry:20\ndata:b")
    assert decoder.close() == ev("b", id="2", retry=20)
    assert decoder.last_event_id == "1"
    assert decoder.retry == 10


@pytest.mark.parametrize(
    "tail",
    [b"", b"\n", b": comment\n", b"unknown:x\n", b"id:1\n", b"\r", b"event:\n"],
    ids=repr,
)
def test_close_returns_none_when_nothing_pending(tail: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id:1\ndata:a\n\n" + tail)
    assert decoder.close() is None


def test_feed_after_close_raises_and_close_is_idempotent() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data:a")
    assert decoder.close() == ev("a")
    assert decoder.close() is None
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n\n")
    with pytest.raises(RuntimeError):
        decoder.feed(b"")


# --------------------------------------------------------------------------------------------
# BOM and UTF-8


def test_bom_stripped() -> None:
    assert decode(BOM + b"data:x\n\n") == [ev("x")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_bom_split_across_chunks(cut: int) -> None:
    body = BOM + b"data:x\n\n"
    for chunks in ([body[:cut], body[cut:]], [bytes([b]) for b in body]):
        assert decode_all(chunks) == ([ev("x")], None)


def test_only_one_leading_bom_is_stripped() -> None:
    # The second BOM becomes part of the field name, so the line is an unknown field.
    assert decode(BOM + BOM + b"data:x\n\ndata:y\n\n") == [ev("y")]


def test_bom_later_in_stream_is_not_stripped() -> None:
    assert decode(b"data:a\n\n" + BOM + b"data:b\n\n") == [ev("a")]
    assert decode(b"data:" + BOM + b"a\n\n") == [ev("\ufeffa")]


def test_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.pending_bytes == 2
    # The held-back bytes start the first line: "\ufffd" + "data" is an unknown field name.
    assert decoder.feed(b"data:lost\n\ndata:kept\n\n") == [ev("kept")]
    decoder2 = SSEDecoder()
    decoder2.feed(b"\xef")
    assert decoder2.close() is None


def test_multibyte_utf8_split_at_every_byte_offset() -> None:
    text = "中文😀é ∑ 扣子"
    body = f"event:事件\ndata:{text}\n\n".encode()
    expected = [ev(text, "事件")]
    for i in range(len(body) + 1):
        assert decode_all([body[:i], body[i:]]) == (expected, None), i
    assert decode_all([bytes([b]) for b in body]) == (expected, None)


def test_invalid_utf8_is_replaced_not_raised() -> None:
    body = b"event:\xff\ndata:a\xe4\xb8\ndata:\xc3(\nid:\xfe\n\n"
    assert decode(body) == [ev("a\ufffd\n\ufffd(", "\ufffd", "\ufffd")]
    assert decode_all([b"data:\xe4", b"\xb8\n\n"])[0] == [ev("\ufffd")]


def test_pending_invalid_utf8_in_close() -> None:
    assert decode_all([b"data:\xe4\xb8"])[1] == ev("\ufffd")


# --------------------------------------------------------------------------------------------
# Large events, spill path, linear time


def test_4mib_data_line_in_1kib_chunks() -> None:
    payload = ("扣子" * (4 * 1024 * 1024 // 6 + 1)).encode()[: 4 * 1024 * 1024 - 1] + b"x"
    body = b"event:big\ndata:" + payload + b"\n\ndata:after\n\n"
    chunks = [body[i : i + 1024] for i in range(0, len(body), 1024)]
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    max_pending = 0
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
        max_pending = max(max_pending, decoder.pending_bytes)
    assert len(events) == 2
    assert events[0].event == "big"
    assert events[0].data == payload.decode("utf-8", "replace")
    assert events[1] == ev("after")
    assert max_pending >= 4 * 1024 * 1024
    assert decoder.pending_bytes == 0
    assert decoder.close() is None


def test_large_multiline_event_and_straddling_blank_line() -> None:
    # Forces the spill path, with the dispatching blank line split between two chunks.
    lines = [f"line {i} 中".encode() for i in range(5000)]
    body = b"".join(b"data:" + line + b"\n" for line in lines)
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for i in range(0, len(body), 1000):
        events.extend(decoder.feed(body[i : i + 1000]))
    assert events == []
    assert decoder.pending_bytes == len(body)
    # This LF alone completes the blank line whose first LF ended the previous chunk.
    expected = "\n".join(line.decode() for line in lines)
    assert decoder.feed(b"\n") == [ev(expected)]
    assert decoder.pending_bytes == 0
    assert decoder.feed(b"id:7\ndata:next\n\ndata:tail") == [ev("next", id="7")]
    assert decoder.close() == ev("tail", id="7")


def test_large_event_then_events_in_one_big_chunk() -> None:
    big = b"data:" + b"z" * 100_000 + b"\n\n"
    body = b"data:a\n\n" + big + b"data:b\n\ndata:" + b"q" * 50_000
    for size in (777, 4096, 65536, len(body)):
        events, pending = decode_all([body[i : i + size] for i in range(0, len(body), size)])
        assert events == [ev("a"), ev("z" * 100_000), ev("b")], size
        assert pending == ev("q" * 50_000), size


# --------------------------------------------------------------------------------------------
# Coze framings (our own fixtures, shaped like coze-api.md §2.5 / §4.2 / §4.4)

CHAT_CREATED = {
    "id": "7400000000000000001",
    "conversation_id": "7400000000000000002",
    "bot_id": "7400000000000000003",
    "created_at": 1730000000,
    "last_error": {"code": 0, "msg": ""},
    "status": "created",
    "usage": {"token_count": 0, "output_count": 0, "input_count": 0},
}


def _delta(content: str) -> dict[str, str]:
    return {
        "id": "7400000000000000010",
        "conversation_id": "7400000000000000002",
        "bot_id": "7400000000000000003",
        "role": "assistant",
        "type": "answer",
        "content": content,
        "content_type": "text",
        "chat_id": "7400000000000000001",
    }


def _compact(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def test_chat_framing_no_space() -> None:
    deltas = ["早", "上好", "！😀", 'say "hi": ok']
    body = (
        f"event:conversation.chat.created\ndata:{_compact(CHAT_CREATED)}\n\n"
        + "".join(
            f"event:conversation.message.delta\ndata:{_compact(_delta(d))}\n\n" for d in deltas
        )
        + 'event:done\ndata:"[DONE]"\n\n'
    ).encode()
    events = decode(body)
    assert [e.event for e in events] == [
        "conversation.chat.created",
        *["conversation.message.delta"] * len(deltas),
        "done",
    ]
    assert json.loads(events[0].data) == CHAT_CREATED
    assert [json.loads(e.data)["content"] for e in events[1:-1]] == deltas
    assert events[-1].data == '"[DONE]"'
    assert json.loads(events[-1].data) == "[DONE]"
    assert all(e.id is None and e.retry is None for e in events)


def test_chatflow_framing_with_spaces() -> None:
    done = {"debug_url": "https://www.coze.cn/work_flow?execute_id=1\u0026space_id=2"}
    body = (
        f"event: conversation.chat.created\ndata: {_compact(CHAT_CREATED)}\n\n"
        f"event: conversation.message.delta\ndata: {_compact(_delta('I'))}\n\n"
        f"event: done\ndata: {json.dumps(done)}\n\n"
    ).encode()
    events = decode(body)
    assert [e.event for e in events] == [
        "conversation.chat.created",
        "conversation.message.delta",
        "done",
    ]
    assert json.loads(events[1].data)["content"] == "I"
    assert json.loads(events[2].data) == done


def test_workflow_framing_with_ids() -> None:
    messages = [
        {"content": "你好", "node_is_finish": False, "node_seq_id": "0", "node_title": "Message"},
        {"content": "！", "node_is_finish": True, "node_seq_id": "1", "node_title": "Message"},
    ]
    body = "".join(
        f"id: {i}\nevent: Message\ndata: {_compact(m)}\n\n" for i, m in enumerate(messages)
    )
    body += 'id: 2\nevent: PING\ndata: {"content":"{}"}\n\n'
    body += "id: 3\nevent: Done\ndata: {}\n\n"
    decoder = SSEDecoder()
    events = decoder.feed(body.encode())
    assert [(e.id, e.event) for e in events] == [
        ("0", "Message"),
        ("1", "Message"),
        ("2", "PING"),
        ("3", "Done"),
    ]
    assert [json.loads(e.data) for e in events[:2]] == messages
    assert events[3].data == "{}"
    assert decoder.last_event_id == "3"
    # coze-go style: no space after the colon.
    assert decode(b"id:0\nevent:Error\ndata:{}\n\n") == [ev("{}", "Error", "0")]


def test_done_bare_and_quoted() -> None:
    body = b'event:done\ndata:"[DONE]"\n\nevent:done\ndata:[DONE]\n\n'
    assert decode(body) == [ev('"[DONE]"', "done"), ev("[DONE]", "done")]


def test_event_name_cache_does_not_leak_between_decoders_or_names() -> None:
    names = [f"e{i}" for i in range(600)]  # more names than the cache holds
    body = "".join(f"event:{n}\ndata:{n}\n\n" for n in names * 2).encode()
    events = decode(body)
    assert [(e.event, e.data) for e in events] == [(n, n) for n in names * 2]


# --------------------------------------------------------------------------------------------
# Chunking invariance

TRICKY_STREAM = (
    BOM
    + b": hello\r\n"
    + b"retry: 1500\r\n"
    + b"event:conversation.chat.created\r\n"
    + 'data:{"k":"中文😀"}\r\n\r\n'.encode()
    + b"id: 42\rdata:one\rdata: two\r\r"
    + b"event: Message\ndata:  spaced\n\n"
    + b"data\nevent\n\n"
    + b"data:\xe9\r\ndata:\xe4\r\n\r\n"  # invalid UTF-8 (Latin-1 bytes)
    + b'event:done\ndata:"[DONE]"\n\n'
    + b"data:unfinished"
)


def test_tricky_stream_reference_result() -> None:
    events, pending = decode_all([TRICKY_STREAM])
    assert events == [
        ev('{"k":"中文😀"}', "conversation.chat.created", None, 1500),
        ev("one\ntwo", id="42"),
        ev(" spaced", "Message", "42"),
        ev("", id="42"),
        ev("\ufffd\n\ufffd", id="42"),
        ev('"[DONE]"', "done", "42"),
    ]
    assert pending == ev("unfinished", id="42")


def test_every_two_chunk_split_gives_identical_events() -> None:
    expected = decode_all([TRICKY_STREAM])
    for i in range(len(TRICKY_STREAM) + 1):
        assert decode_all([TRICKY_STREAM[:i], TRICKY_STREAM[i:]]) == expected, i


def test_every_three_chunk_split_gives_identical_events() -> None:
    body = b"data:a\r\n\r\nid:1\revent:\xe4\xb8\xad\rdata:b\r\r"
    expected = decode_all([body])
    assert expected[0] == [ev("a"), ev("b", "中", "1")]
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1):
            assert decode_all([body[:i], body[i:j], body[j:]]) == expected, (i, j)


def test_one_byte_chunks_and_bytearray_input() -> None:
    expected = decode_all([TRICKY_STREAM])
    assert decode_all([TRICKY_STREAM[i : i + 1] for i in range(len(TRICKY_STREAM))]) == expected
    # feed() is typed for bytes (what aiohttp yields) but tolerates bytearray.
    halves: list[bytes] = [bytearray(TRICKY_STREAM[:50]), bytearray(TRICKY_STREAM[50:])]  # type: ignore[list-item]
    assert decode_all(halves) == expected


def test_memoryview_input_with_cr() -> None:
    body = b"data:a\r\ndata:b\r\r"
    halves: list[bytes] = [memoryview(body)[:7], memoryview(body)[7:]]  # type: ignore[list-item]
    assert decode_all(halves) == ([ev("a\nb")], None)


def test_huge_event_name() -> None:
    name = "n" * 1_000_000
    body = f"event:{name}\ndata:1\n\nevent:{name}\ndata:2\n\n".encode()
    assert decode_all([body[i : i + 4096] for i in range(0, len(body), 4096)]) == (
        [ev("1", name), ev("2", name)],
        None,
    )


def test_iter_events_discards_incomplete_final_event() -> None:
    chunks = [TRICKY_STREAM[:100], TRICKY_STREAM[100:]]
    assert list(iter_events(chunks)) == decode_all([TRICKY_STREAM])[0]


def test_pending_bytes_tracks_undispatched_input() -> None:
    decoder = SSEDecoder()
    assert decoder.pending_bytes == 0
    decoder.feed(b"data:abc")
    assert decoder.pending_bytes == 8
    decoder.feed(b"\n\ndata:x")
    assert decoder.pending_bytes == 6


# --------------------------------------------------------------------------------------------
# Property tests

_line_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"),
    max_size=12,
) | st.sampled_from(["中文回答", "😀👍🏽", "é", " lead", "a:b", '"[DONE]"', "", " "])


class Spec(NamedTuple):
    """One event to encode: its fields as the server means them."""

    event: str
    data: list[str]
    id: str | None
    retry: int | None


_event_spec = st.builds(
    Spec,
    event=_line_text,
    data=st.lists(_line_text, min_size=1, max_size=4),
    id=st.none() | _line_text.filter(lambda s: "\0" not in s),
    retry=st.none() | st.integers(min_value=0, max_value=10**6),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(_event_spec, max_size=6), bom=st.booleans(), draw=st.data())
def test_roundtrip_random_events_endings_spaces_and_chunks(
    specs: list[Spec], bom: bool, draw: st.DataObject
) -> None:
    out = bytearray(BOM if bom else b"")
    prev_eol = b"\n"
    expected: list[ServerSentEvent] = []
    last_id: str | None = None

    def put(line: str) -> None:
        nonlocal prev_eol
        eols = [b"\n", b"\r", b"\r\n"]
        if not line and prev_eol == b"\r":
            # "\r" followed by an empty line ending in "\n" would read as one CRLF.
            eols = [b"\r", b"\r\n"]
        prev_eol = draw.draw(st.sampled_from(eols))
        out.extend(line.encode() + prev_eol)

    def field(name: str, value: str) -> None:
        # A value that starts with a space needs the separator space, or it would be eaten.
        space = draw.draw(st.booleans()) or value.startswith(" ")
        put(f"{name}:{' ' if space else ''}{value}")

    for spec in specs:
        # Data lines keep their order; the other fields land at random places among them.
        lines = [("data", d) for d in spec.data]
        others = [("event", spec.event)]
        if spec.id is not None:
            others.append(("id", spec.id))
        if spec.retry is not None:
            others.append(("retry", str(spec.retry)))
        for item in others:
            lines.insert(draw.draw(st.integers(0, len(lines))), item)
        for name, value in lines:
            if draw.draw(st.integers(0, 9)) == 0:
                put(": comment")
            field(name, value)
        put("")
        if spec.id is not None:
            last_id = spec.id
        expected.append(
            ServerSentEvent(spec.event or "message", "\n".join(spec.data), last_id, spec.retry)
        )
    body = bytes(out)
    points = sorted(draw.draw(st.lists(st.integers(0, len(body)), max_size=8)))
    got, pending = decode_all(split_at(body, points))
    assert got == expected
    assert pending is None


def reference_decode(body: bytes) -> tuple[list[ServerSentEvent], ServerSentEvent | None]:
    """A direct, unoptimised transcription of the WHATWG algorithm, used as an oracle."""
    # Decoding the whole body at once is what the spec does ("utf-8-sig" strips one BOM).
    text = body.decode("utf-8-sig", "replace")
    *lines, rest = re.split(r"\r\n|\r|\n", text)
    events: list[ServerSentEvent] = []
    event, data, retry = "", [], None
    id_buffer: str | None = None
    last_id: str | None = None

    def field(line: str) -> None:
        nonlocal event, retry, id_buffer
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)

    for line in lines:
        if line:
            field(line)
            continue
        last_id = id_buffer
        if data:
            events.append(ServerSentEvent(event or "message", "\n".join(data), id_buffer, retry))
        event, data, retry = "", [], None
    if rest:
        field(rest)
    pending = None
    if data or (event or "message") != "message" or retry is not None or id_buffer != last_id:
        pending = ServerSentEvent(event or "message", "\n".join(data), id_buffer, retry)
    return events, pending


_soup = st.lists(
    st.sampled_from(
        [
            *(b"data", b"event", b"id", b"retry", b":", b" ", b"  "),
            *(b"\r", b"\n", b"\r\n", b"\n\n"),
            *(BOM, b"\xef", b"\xbb", b"\x00", b"\xff", b"\xe4\xb8", b"\xad", "中".encode()),
            *(b"0", b"42", b"x", b"message", b"Data", "😀".encode()),
        ]
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(body=_soup, draw=st.data())
def test_matches_reference_on_arbitrary_bytes(body: bytes, draw: st.DataObject) -> None:
    points = sorted(draw.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    assert decode_all(split_at(body, points)) == reference_decode(body)


def test_reference_oracle_sanity() -> None:
    # The oracle itself must agree with hand-checked results, or the fuzz test proves nothing.
    assert reference_decode(TRICKY_STREAM) == decode_all([TRICKY_STREAM])
    assert reference_decode(b"data:a\r\n\r\ndata:b") == ([ev("a")], ev("b"))
