"""SSE decoding throughput on a realistic Coze chat stream.

Usage::

    python benchmarks/sse_decode.py [--events N] [--json PATH] [--repeats R] [--check]

One run builds a chat stream body in the exact framing Coze uses for ``/v3/chat``
(``event:<name>\\ndata:<compact JSON>\\n\\n``, no space after the colon, see coze-api.md §2.5):
``conversation.chat.created`` and ``conversation.chat.in_progress``, N
``conversation.message.delta`` events carrying a full Message object with a few Chinese
characters of content each, then ``conversation.message.completed`` (the whole answer and a
``verbose`` generate_answer_finish), ``conversation.chat.completed`` and ``done``. The body is
cut into 1 KiB and 64 KiB chunks (what a socket read typically yields on a slow and on a fast
link) and every implementation decodes the same chunks.

What is measured (each case is a function of the chunk list returning the event count):

* ``ours``: :class:`coze_async.sse.SSEDecoder`, ``feed()`` per chunk, then ``close()``.
* ``lower bound``: the least work that yields the same ``(event, data)`` strings for this
  particular body: ``body.split(b"\\n\\n")``, each block ``.split(b"\\n")`` into its two lines,
  strip the ``event:``/``data:`` prefixes by slicing, ``.decode()`` both. It sees the whole
  body at once (no chunking, no state, no generality), so it is the same for both chunk sizes.
* ``cozepy``: cozepy 0.20.0's own parser, ``cozepy.model.Stream`` with
  ``fields=["event", "data"]``, exactly as ``ChatClient.stream`` builds it, given a handler that
  returns the field dict (so no JSON/pydantic work is counted here). cozepy reads
  ``httpx.Response.iter_lines()``; we stand in for the response with a generator that does the
  same per-chunk work as ``iter_lines`` does: decode with ``httpx._decoders.TextDecoder``
  (incremental UTF-8, errors="replace") and split with ``httpx._decoders.LineDecoder`` (httpx's
  own classes, so the splitting is byte-for-byte what httpx does). That line splitting is
  counted in cozepy's time because it is part of cozepy's path. Left out, in cozepy's favour:
  httpx's ``iter_raw``/``iter_bytes``/``iter_text`` generator layers. ``Stream`` gets a real
  ``httpx.Response`` carrying an ``x-tt-logid`` header because cozepy evaluates
  ``self.response.logid`` for its debug log call on every line, as it does in production. We
  drive the sync ``Stream``; ``AsyncStream`` runs the same per-line code plus an ``await`` per
  line, so the sync one is the conservative baseline.
* ``httpx-sse``: ``httpx_sse._decoders.SSEDecoder`` fed the lines of
  ``httpx_sse._decoders.SSELineDecoder`` over ``TextDecoder`` output, with the
  ``rstrip("\\n")`` that ``EventSource.iter_sse`` applies: the same as ``iter_sse()``.
* full typed path (separate table): cozepy's ``Stream`` with its real ``_chat_stream_handler``
  (``Message``/``Chat.model_validate_json`` and a ``ChatEvent`` per event), against
  :func:`typed_path_ours` (decode + JSON + our attrs event/Message models, exactly the work
  ``ChatStream`` does per event) with the stdlib json and with orjson.

Timing: the cases run interleaved, round-robin, ``--repeats`` times (so load changes on a busy
machine hit every case alike) and the best run of each is kept, both wall time
(``time.perf_counter``) and process CPU time (``time.process_time``). The garbage collector is
collected before and disabled during each run, as ``timeit`` does. Ratios and the PASS/MISS
verdicts use the best wall time.

Firm targets, for ``ours`` at both chunk sizes:

* events/s at least 3.5x cozepy's parser at the same chunk size;
* time at most 1.6x the lower bound.

cozepy and httpx-sse are optional: their rows are skipped with a note when not installed.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import gc
import json
import platform
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

try:
    import coze_async  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from coze_async.models.wire import chat_event_parser
from coze_async.sse import SSEDecoder

# Optional comparison targets -------------------------------------------------------------

NOTES: list[str] = []

try:
    with warnings.catch_warnings():
        # cozepy imports authlib.jose, which warns about its own deprecation; authlib installs
        # an "always" filter for that warning on import, so load it first, then silence it.
        with contextlib.suppress(ImportError):
            import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401
        warnings.simplefilter("ignore")
        import httpx
        from cozepy.chat import _chat_stream_handler
        from cozepy.model import Stream as CozeStream
        from httpx._decoders import LineDecoder as HttpxLineDecoder
        from httpx._decoders import TextDecoder as HttpxTextDecoder

    COZEPY_VERSION: str | None = metadata.version("cozepy")
    if COZEPY_VERSION != "0.20.0":
        NOTES.append(f"cozepy {COZEPY_VERSION} installed; targets are defined against 0.20.0")
except ImportError as exc:  # pragma: no cover - depends on the environment
    COZEPY_VERSION = None
    NOTES.append(f"cozepy rows skipped: cozepy/httpx not importable ({exc})")

try:
    from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
    from httpx_sse._decoders import SSELineDecoder

    HTTPX_SSE_VERSION: str | None = metadata.version("httpx-sse")
except ImportError as exc:  # pragma: no cover - depends on the environment
    HTTPX_SSE_VERSION = None
    NOTES.append(f"httpx-sse rows skipped: httpx_sse not importable ({exc})")

ORJSON_LOADS: Callable[[str], Any] | None
try:
    import orjson

    ORJSON_LOADS = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    ORJSON_LOADS = None
    NOTES.append("orjson row skipped: orjson not installed")

TARGET_VS_COZEPY = 3.5  # ours events/s >= 3.5 x cozepy events/s
TARGET_VS_LOWER_BOUND = 1.6  # ours time <= 1.6 x lower-bound time
CHUNK_SIZES = (1024, 64 * 1024)
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "sse_decode.json"

# The stream body ---------------------------------------------------------------------------

CHAT_ID = "7382159487131697202"
CONVERSATION_ID = "7381473525342978089"
BOT_ID = "7379462189365198898"
MESSAGE_ID = "7382159494123470858"
# Typical answer text: common characters, full-width punctuation, the odd ASCII word/emoji.
_WORDS = (
    *("你好", "今天", "天气", "很好", "我们", "一起", "去", "公园", "散步", "吧", "这是"),
    *("一个", "测试", "消息", "扣子", "智能体", "回答", "问题", "根据", "您的", "需求"),
    *("建议", "如下", "首先", "其次", "最后", "可以", "使用", "工作流", "插件", "知识库"),
    *("，", "。", "！", "？", "：", "API", "SDK", "2024", "😀"),
)


def _compact(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _chat(status: str, usage: int = 0) -> dict[str, Any]:
    return {
        "id": CHAT_ID,
        "conversation_id": CONVERSATION_ID,
        "bot_id": BOT_ID,
        "created_at": 1718792949,
        "last_error": {"code": 0, "msg": ""},
        "status": status,
        "usage": {"token_count": usage * 2, "output_count": usage, "input_count": usage},
        "section_id": CONVERSATION_ID,
    }


def _message(content: str, type_: str = "answer", message_id: str = MESSAGE_ID) -> dict[str, Any]:
    return {
        "id": message_id,
        "conversation_id": CONVERSATION_ID,
        "bot_id": BOT_ID,
        "role": "assistant",
        "type": type_,
        "content": content,
        "content_type": "text",
        "chat_id": CHAT_ID,
        "section_id": CONVERSATION_ID,
    }


def build_body(n_deltas: int, seed: int = 2024) -> tuple[bytes, int]:
    """Return (body, number of SSE events in it)."""
    rnd = random.Random(seed)
    parts: list[bytes] = []

    def emit(event: str, obj: object) -> None:
        parts.append(b"event:" + event.encode() + b"\ndata:" + _compact(obj) + b"\n\n")

    emit("conversation.chat.created", _chat("created"))
    emit("conversation.chat.in_progress", _chat("in_progress"))
    answer: list[str] = []
    for _ in range(n_deltas):
        piece = "".join(rnd.choice(_WORDS) for _ in range(rnd.randint(1, 2)))
        answer.append(piece)
        emit("conversation.message.delta", _message(piece))
    emit("conversation.message.completed", _message("".join(answer)))
    verbose = json.dumps(
        {
            "msg_type": "generate_answer_finish",
            "data": '{"finish_reason":0,"FinData":""}',
            "from_module": None,
            "from_unit": None,
        }
    )
    emit("conversation.message.completed", _message(verbose, "verbose", "7382159494123470859"))
    emit("conversation.chat.completed", _chat("completed", n_deltas))
    parts.append(b'event:done\ndata:"[DONE]"\n\n')
    return b"".join(parts), len(parts)


def split_chunks(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


# The implementations -------------------------------------------------------------------------


def run_ours(chunks: Sequence[bytes]) -> int:
    decoder = SSEDecoder()
    feed = decoder.feed
    n = 0
    for chunk in chunks:
        n += len(feed(chunk))
    decoder.close()
    return n


def run_lower_bound(body: bytes) -> int:
    out: list[tuple[str, str]] = []
    append = out.append
    for block in body.split(b"\n\n"):
        if block:
            event_line, data_line = block.split(b"\n")
            append((event_line[6:].decode(), data_line[5:].decode()))
    return len(out)


def httpx_iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """What ``httpx.Response.iter_lines()`` does per chunk, minus its generator layers."""
    text_decoder = HttpxTextDecoder("utf-8")
    line_decoder = HttpxLineDecoder()
    for chunk in chunks:
        text = text_decoder.decode(chunk)
        if text:  # httpx's TextChunker drops empty strings
            yield from line_decoder.decode(text)
    text = text_decoder.flush()
    if text:
        yield from line_decoder.decode(text)
    yield from line_decoder.flush()


def _fake_response() -> Any:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream", "x-tt-logid": "20240601123456ABCDEF"},
    )


def _fields_only(data: dict[str, str], raw_response: Any) -> dict[str, str]:
    return data


def run_cozepy(chunks: Sequence[bytes]) -> int:
    stream = CozeStream(
        _fake_response(), httpx_iter_lines(chunks), fields=["event", "data"], handler=_fields_only
    )
    n = 0
    for _ in stream:
        n += 1
    return n


def run_cozepy_typed(chunks: Sequence[bytes]) -> int:
    stream = CozeStream(
        _fake_response(),
        httpx_iter_lines(chunks),
        fields=["event", "data"],
        handler=_chat_stream_handler,
    )
    n = 0
    for _ in stream:
        n += 1
    # cozepy's handler swallows the final ``done`` event; count it like the others do.
    return n + 1


def run_httpx_sse(chunks: Sequence[bytes]) -> int:
    text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    line_decoder = SSELineDecoder()
    decoder = HttpxSSEDecoder()
    n = 0
    for chunk in chunks:
        text = text_decoder.decode(chunk)
        if not text:
            continue
        for line in line_decoder.decode(text):
            if decoder.decode(line.rstrip("\n")) is not None:
                n += 1
    for line in line_decoder.flush():
        if decoder.decode(line.rstrip("\n")) is not None:
            n += 1
    return n


def _typed_path(chunks: Sequence[bytes], loads: Callable[[str], Any]) -> int:
    # The per-event work of ChatStream: decode, then name -> typed event (JSON + models).
    parse = chat_event_parser(loads)
    decoder = SSEDecoder()
    n = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            parse(event.event, event.data)
            n += 1
    decoder.close()
    return n


def typed_path_ours(chunks: Sequence[bytes]) -> int:
    """Decode + build our typed chat events (attrs models), parsing JSON with the stdlib."""
    return _typed_path(chunks, json.loads)


def typed_path_ours_orjson(chunks: Sequence[bytes]) -> int:
    """As :func:`typed_path_ours`, parsing JSON with orjson (the ``speedups`` extra)."""
    assert ORJSON_LOADS is not None
    return _typed_path(chunks, ORJSON_LOADS)


def _naive_path(chunks: Sequence[bytes], loads: Callable[[str], Any]) -> int:
    # The obvious implementation, for scale: every event through the cattrs converter.
    from coze_async.models import Chat, Done, Message, UnknownEvent
    from coze_async.models.converter import converter
    from coze_async.models.wire import _CHAT_EVENTS, _MESSAGE_EVENTS

    structure = converter.structure
    decoder = SSEDecoder()
    n = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            name = event.event
            if name in _MESSAGE_EVENTS:
                _MESSAGE_EVENTS[name](structure(loads(event.data), Message))
            elif name in _CHAT_EVENTS:
                _CHAT_EVENTS[name](structure(loads(event.data), Chat))
            elif name == "done":
                Done(loads(event.data))
            else:
                UnknownEvent(name, event.data)
            n += 1
    decoder.close()
    return n


def typed_path_naive(chunks: Sequence[bytes]) -> int:
    """The same typed events built naively (cattrs ``structure`` per event), stdlib json."""
    return _naive_path(chunks, json.loads)


def typed_path_naive_orjson(chunks: Sequence[bytes]) -> int:
    """As :func:`typed_path_naive`, with orjson."""
    assert ORJSON_LOADS is not None
    return _naive_path(chunks, ORJSON_LOADS)


# Harness ---------------------------------------------------------------------------------------


@dataclass
class Case:
    section: str  # "decode" or "typed"
    name: str
    chunk_label: str
    chunk_size: int | None
    func: Callable[[Any], int]
    arg: Any
    wall: float = float("inf")
    cpu: float = float("inf")


@dataclass
class Row:
    section: str
    implementation: str
    chunk: str
    chunk_size: int | None
    events: int
    best_wall_s: float
    best_cpu_s: float
    events_per_s: float
    us_per_event: float
    ratio_vs_cozepy: float | None  # events/s of this row / events/s of cozepy, same chunking
    ratio_vs_lower_bound: float | None  # time of this row / time of the lower bound
    target_vs_cozepy: str | None  # PASS / MISS for the firm targets (ours rows only)
    target_vs_lower_bound: str | None
    stretch_target: str | None = None  # typed rows of ours: "PASS (<=5 µs)" or "MISS (...)"


def _time_once(case: Case, expected: int) -> None:
    gc.collect()
    gc.disable()
    try:
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        n = case.func(case.arg)
        cpu1 = time.process_time()
        wall1 = time.perf_counter()
    finally:
        gc.enable()
    if n != expected:
        raise SystemExit(f"{case.name} [{case.chunk_label}] decoded {n} events, want {expected}")
    case.wall = min(case.wall, wall1 - wall0)
    case.cpu = min(case.cpu, cpu1 - cpu0)


def _verify_same_events(body: bytes, chunks_by_size: dict[int, list[bytes]]) -> None:
    """Check ours yields exactly the lower bound's (event, data) pairs before timing."""
    want = []
    for block in body.split(b"\n\n"):
        if block:
            event_line, data_line = block.split(b"\n")
            want.append((event_line[6:].decode(), data_line[5:].decode()))
    for size, chunks in chunks_by_size.items():
        decoder = SSEDecoder()
        got = [(e.event, e.data) for c in chunks for e in decoder.feed(c)]
        if got != want or decoder.close() is not None:
            raise SystemExit(f"SSEDecoder output differs from the lower bound at {size} B")


def _label(size: int) -> str:
    return f"{size // 1024} KiB"


def build_cases(body: bytes, chunks_by_size: dict[int, list[bytes]]) -> list[Case]:
    have_cozepy = COZEPY_VERSION is not None
    per_chunking: list[tuple[str, str, Callable[[Any], int], bool]] = [
        ("decode", "ours (SSEDecoder)", run_ours, True),
        ("decode", "cozepy Stream", run_cozepy, have_cozepy),
        ("decode", "httpx-sse", run_httpx_sse, HTTPX_SSE_VERSION is not None),
        ("typed", "ours typed events + json", typed_path_ours, True),
        ("typed", "ours typed events + orjson", typed_path_ours_orjson, ORJSON_LOADS is not None),
        ("typed", "naive cattrs + json", typed_path_naive, True),
        (
            "typed",
            "naive cattrs + orjson",
            typed_path_naive_orjson,
            ORJSON_LOADS is not None,
        ),
        ("typed", "cozepy ChatEvent (pydantic)", run_cozepy_typed, have_cozepy),
    ]
    cases = [Case("decode", "lower bound (bytes.split)", "whole body", None, run_lower_bound, body)]
    for size, chunks in chunks_by_size.items():
        cases += [
            Case(section, name, _label(size), size, func, chunks)
            for section, name, func, available in per_chunking
            if available
        ]
    return cases


#: Stretch targets for the full typed path of ours, µs per event (json / orjson).
STRETCH_US: dict[Callable[[Any], int], float] = {
    typed_path_ours: 5.0,
    typed_path_ours_orjson: 3.0,
}


def make_rows(cases: list[Case], n_events: int) -> list[Row]:
    lower = next(c for c in cases if c.func is run_lower_bound)
    baseline = {
        (c.section, c.chunk_size): c for c in cases if c.func in (run_cozepy, run_cozepy_typed)
    }
    rows = []
    for c in cases:
        coze = baseline.get((c.section, c.chunk_size))
        vs_cozepy = coze.wall / c.wall if coze is not None else None
        vs_lower = c.wall / lower.wall if c.section == "decode" else None
        t_coze = t_lower = None
        if c.func is run_ours:
            t_coze = "n/a" if vs_cozepy is None else _verdict(vs_cozepy >= TARGET_VS_COZEPY)
            t_lower = _verdict(vs_lower is not None and vs_lower <= TARGET_VS_LOWER_BOUND)
        stretch = None
        limit = STRETCH_US.get(c.func)
        if limit is not None:
            us = c.wall / n_events * 1e6
            stretch = f"{_verdict(us <= limit)} (stretch <={limit:g} µs/event)"
        rows.append(
            Row(
                section=c.section,
                implementation=c.name,
                chunk=c.chunk_label,
                chunk_size=c.chunk_size,
                events=n_events,
                best_wall_s=c.wall,
                best_cpu_s=c.cpu,
                events_per_s=n_events / c.wall,
                us_per_event=c.wall / n_events * 1e6,
                ratio_vs_cozepy=vs_cozepy,
                ratio_vs_lower_bound=vs_lower,
                target_vs_cozepy=t_coze,
                target_vs_lower_bound=t_lower,
                stretch_target=stretch,
            )
        )
    return rows


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    columns = (
        f"{'implementation':<30} {'chunk':>10} {'events/s':>11} {'µs/event':>9} "
        f"{'CPU µs/ev':>9} {'vs cozepy':>9} {'vs lower':>9}  targets"
    )
    for section, title in (
        ("decode", "SSE decode only"),
        ("typed", "Full typed path (decode + JSON [+ models])"),
    ):
        print(f"\n{title}")
        print(columns)
        print("-" * len(columns))
        for r in rows:
            if r.section != section:
                continue
            targets = ""
            if r.target_vs_cozepy is not None:
                targets = (
                    f"{r.target_vs_cozepy} (>={TARGET_VS_COZEPY}x cozepy)  "
                    f"{r.target_vs_lower_bound} (<={TARGET_VS_LOWER_BOUND}x lower)"
                )
            if r.stretch_target is not None:
                targets = r.stretch_target
            print(
                f"{r.implementation:<30} {r.chunk:>10} {r.events_per_s:>11,.0f} "
                f"{r.us_per_event:>9.3f} {r.best_cpu_s / r.events * 1e6:>9.3f} "
                f"{_ratio(r.ratio_vs_cozepy):>9} {_ratio(r.ratio_vs_lower_bound):>9}  {targets}"
            )
    print(
        "\nvs cozepy = events/s of the row / events/s of cozepy at the same chunk size (higher "
        "is better);\nvs lower = time of the row / time of the bytes.split lower bound (lower "
        "is better)."
    )
    for note in NOTES:
        print(f"note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="message.delta events")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--repeats", type=int, default=7, help="runs per case (best is kept)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a firm target is missed")
    args = parser.parse_args(argv)

    body, n_events = build_body(args.events)
    chunks_by_size = {size: split_chunks(body, size) for size in CHUNK_SIZES}
    _verify_same_events(body, chunks_by_size)
    cases = build_cases(body, chunks_by_size)
    for case in cases:  # warm-up: imports, caches, pydantic validators
        _time_once(case, n_events)
        case.wall = case.cpu = float("inf")
    for _ in range(args.repeats):
        for case in cases:
            _time_once(case, n_events)
    rows = make_rows(cases, n_events)

    header = (
        f"SSE decode benchmark: {n_events:,} events ({args.events:,} message.delta), "
        f"{len(body) / 1e6:.2f} MB body, {len(body) / n_events:.0f} B/event on average; "
        f"best of {args.repeats}; Python {platform.python_version()}, "
        f"cozepy {COZEPY_VERSION or '-'}, httpx-sse {HTTPX_SSE_VERSION or '-'}"
    )
    print_table(rows, header)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "sse_decode",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cozepy": COZEPY_VERSION,
        "httpx_sse": HTTPX_SSE_VERSION,
        "events": n_events,
        "delta_events": args.events,
        "body_bytes": len(body),
        "avg_event_bytes": len(body) / n_events,
        "chunk_sizes": list(CHUNK_SIZES),
        "repeats": args.repeats,
        "timer": "best of repeats; perf_counter (wall) and process_time (cpu); gc disabled",
        "targets": {
            "ours_vs_cozepy_events_per_s_min": TARGET_VS_COZEPY,
            "ours_vs_lower_bound_time_max": TARGET_VS_LOWER_BOUND,
        },
        "notes": NOTES,
        "rows": [asdict(r) for r in rows],
    }
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {args.json}")

    missed = [r for r in rows if "MISS" in (r.target_vs_cozepy, r.target_vs_lower_bound)]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
