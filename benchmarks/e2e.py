"""End to end: streamed chat events through three clients, against one emulator process.

Usage::

    python benchmarks/e2e.py [--repeats R] [--json PATH] [--quick]

One emulator (``python -m coze_async.emulator --coalesce --no-record``) runs in its own process
for the whole run, so client and server each get a core. Every measurement runs in a fresh
client process (``--worker``), so its CPU time and peak RSS belong to that client alone:

* ``ours``: ``AsyncCoze.chat.stream`` and ``async for event in stream`` (typed attrs events,
  the accumulated snapshot, every lifecycle check);
* ``cozepy``: the official SDK's ``AsyncCoze.chat.stream`` (httpx, pydantic), cozepy 0.20.0;
* ``raw``: the floor: aiohttp, our SSE decoder and one ``loads`` per event, no typing.

Each client streams the echo bot's reply to a long message: about one
``conversation.message.delta`` event per four characters, each event its own HTTP chunk, as
Coze sends them. ``--coalesce`` lets the emulator hand the socket 64 KiB of such chunks per
write instead of one ``send()`` per event; without it the emulator spends more CPU per event
than the clients and becomes what is measured. Its CPU per event is reported beside the
clients' (from ``GET /_emulator/stats``).

Scenarios: one stream of many events; 200 and 1,000 concurrent streams (all opened, then all
read, so every stream is open at once) with events sent as fast as the client reads them:
these give events/s and CPU per event. Then 1,000 concurrent streams paced at a model's
speed (the emulator's ``latency`` fault: 50 ms between events, as Coze's answers trickle
in): this gives the memory an open stream costs. In the unpaced runs a stream's whole reply
arrives at once and sits in the client's buffers until read, so their RSS per stream is
mostly the reply's bytes (the same for every client); it is reported too.

Reported per client: events/s (events over the wall time from the first request to the last
event), client CPU seconds per 10k events, and peak RSS growth per stream (``VmHWM`` at the end
minus ``VmRSS`` after a warm-up stream, over the stream count; from ``/proc``, so Linux only).

Timing: the clients run interleaved, round-robin, ``--repeats`` times, and the median of
each is kept (this VM is noisy; the median resists one bad run either way).

Targets (issue 6), with ratios taken within this one run:

* ``ours`` at 200 streams: >= 4x cozepy's events/s;
* ``ours`` CPU per event <= 0.25x cozepy's and <= 2x the raw floor's (200 streams);
* 1,000 concurrent streams complete with no errors (both runs) and < 64 KiB peak RSS per
  open stream (paced run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "e2e.json"
IMPLS = ("ours", "cozepy", "raw")
ECHO_BOT_ID = "7400000000000000001"
FAULT_HEADER = "x-coze-emulator-fault"
PACED = "1,000 streams, paced"
TOKEN = "emu_test_token"
#: (name, concurrent streams, characters per message, seconds between events). Four
#: characters per delta event. Pace 0: as fast as the client reads (throughput); the paced
#: run streams at a model's speed, as Coze does, to measure what an open stream costs.
SCENARIOS = (
    ("1 stream", 1, 200_000, 0.0),
    ("200 streams", 200, 1_000, 0.0),
    ("1,000 streams", 1_000, 500, 0.0),
    (PACED, 1_000, 500, 0.05),
)
QUICK_SCENARIOS = (
    ("1 stream", 1, 20_000, 0.0),
    ("200 streams", 200, 400, 0.0),
    ("1,000 streams", 1_000, 200, 0.0),
    (PACED, 1_000, 200, 0.02),
)


# ----------------------------------------------------------------------------- worker side


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _run_ours(
    url: str, streams: int, text: str, gate: asyncio.Event, headers: dict[str, str]
) -> list[int]:
    from coze_async import AsyncCoze, Message

    async with AsyncCoze(token=TOKEN, base_url=url, connection_limit=streams + 8) as coze:

        async def one(wait: bool) -> int:
            n = 0
            stream = coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="bench",
                messages=[Message.user(text)],
                extra_headers=headers,
            )
            async with stream:
                if wait:
                    opened.append(1)
                    if len(opened) == streams:
                        gate.set()
                    await gate.wait()
                async for _ in stream:
                    n += 1
            return n

        opened: list[int] = []
        await one(False)  # warm-up: imports, connection, converter caches
        _mark_baseline()
        return list(await asyncio.gather(*(one(True) for _ in range(streams))))


async def _run_cozepy(
    url: str, streams: int, text: str, gate: asyncio.Event, headers: dict[str, str]
) -> list[int]:
    import httpx
    from cozepy import AsyncCoze, AsyncHTTPClient, AsyncTokenAuth
    from cozepy import Message as CozeMessage

    client = AsyncHTTPClient(
        limits=httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    )
    coze = AsyncCoze(auth=AsyncTokenAuth(TOKEN), base_url=url, http_client=client)
    opened: list[int] = []

    async def one(wait: bool) -> int:
        # cozepy's stream is an async generator that sends the request on the first
        # __anext__, so "open" here means "first event received".
        events = coze.chat.stream(
            bot_id=ECHO_BOT_ID,
            user_id="bench",
            additional_messages=[CozeMessage.build_user_question_text(text)],
            headers=headers,
        )
        await events.__anext__()
        n = 1
        if wait:
            opened.append(1)
            if len(opened) == streams:
                gate.set()
            await gate.wait()
        async for _ in events:
            n += 1
        return n

    try:
        await one(False)
        _mark_baseline()
        return list(await asyncio.gather(*(one(True) for _ in range(streams))))
    finally:
        await client.aclose()


async def _run_raw(
    url: str, streams: int, text: str, gate: asyncio.Event, extra: dict[str, str]
) -> list[int]:
    import aiohttp

    from coze_async._json import loads
    from coze_async.sse import SSEDecoder

    body = {
        "bot_id": ECHO_BOT_ID,
        "user_id": "bench",
        "stream": True,
        "additional_messages": [{"role": "user", "content": text, "content_type": "text"}],
    }
    headers = {"Authorization": f"Bearer {TOKEN}", **extra}
    connector = aiohttp.TCPConnector(limit=streams + 8)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        opened: list[int] = []

        async def one(wait: bool) -> int:
            n = 0
            async with session.post(url + "/v3/chat", json=body, headers=headers) as resp:
                resp.raise_for_status()
                if wait:
                    opened.append(1)
                    if len(opened) == streams:
                        gate.set()
                    await gate.wait()
                decoder = SSEDecoder()
                while True:
                    chunk = await resp.content.readany()
                    if not chunk:
                        break
                    for event in decoder.feed(chunk):
                        loads(event.data)
                        n += 1
            return n

        await one(False)
        _mark_baseline()
        return list(await asyncio.gather(*(one(True) for _ in range(streams))))


_BASELINE: dict[str, float] = {}


def _mark_baseline() -> None:
    # Everything after the warm-up stream is what the measured streams cost.
    _BASELINE["rss_kib"] = _proc_status_kib("VmRSS")
    _BASELINE["cpu"] = time.process_time()
    _BASELINE["wall"] = time.perf_counter()


def worker(impl: str, url: str, streams: int, chars: int, pace: float) -> dict[str, Any]:
    """Run one measurement in this process; return what it measured."""
    _raise_fd_limit()
    headers = {FAULT_HEADER: f"latency={pace}"} if pace > 0 else {}
    runner = {"ours": _run_ours, "cozepy": _run_cozepy, "raw": _run_raw}[impl]
    text = "好" * chars
    errors: list[str] = []

    async def main() -> list[int]:
        gate = asyncio.Event()
        return await runner(url, streams, text, gate, headers)

    counts: list[int] = []
    try:
        counts = asyncio.run(main())
    except Exception as exc:  # reported, not raised: the table shows the failure
        errors.append(f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - _BASELINE.get("wall", time.perf_counter())
    cpu = time.process_time() - _BASELINE.get("cpu", time.process_time())
    events = sum(counts)
    peak = _proc_status_kib("VmHWM")
    return {
        "impl": impl,
        "streams": streams,
        "events": events,
        "events_per_stream": counts[0] if counts else 0,
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_baseline_kib": _BASELINE.get("rss_kib", 0),
        "rss_peak_kib": peak,
        "errors": errors,
    }


# ----------------------------------------------------------------------------- driver side


def _get_json(url: str) -> Any:
    from urllib.request import urlopen

    with urlopen(url, timeout=10) as resp:  # loopback only
        return json.load(resp)


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    """The emulator in its own process; returns it and its base URL."""
    cmd = [sys.executable, "-m", "coze_async.emulator", "--port", "0"]
    cmd += ["--coalesce", "--no-record", "--token", TOKEN]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=_raise_fd_limit)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.split()[-1]


def measure(impl: str, url: str, streams: int, chars: int, pace: float) -> dict[str, Any]:
    """One client process against the running emulator, with the emulator's CPU time."""
    before = _get_json(url + "/_emulator/stats")
    cmd = [sys.executable, __file__, "--worker", impl, "--url", url]
    cmd += ["--streams", str(streams), "--chars", str(chars), "--pace", str(pace)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    after = _get_json(url + "/_emulator/stats")
    if out.returncode != 0 or not out.stdout.strip():
        return {"impl": impl, "streams": streams, "events": 0, "errors": [out.stderr[-500:]]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    frames = after["frames_written"] - before["frames_written"]
    result["server_cpu_s"] = after["cpu_seconds"] - before["cpu_seconds"]
    result["server_frames"] = frames
    return result


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if not r.get("errors") and r.get("events")]
    if not good:
        return runs[-1]
    out = dict(good[0])
    for key in ("wall_s", "cpu_s", "server_cpu_s", "rss_peak_kib", "rss_baseline_kib"):
        out[key] = statistics.median(r[key] for r in good)
    out["errors"] = [e for r in runs for e in r.get("errors", [])]
    out["runs"] = len(runs)
    return out


def derive(r: dict[str, Any]) -> dict[str, Any]:
    """Add the reported figures to one (median) measurement."""
    events = r.get("events") or 0
    if events:
        r["events_per_s"] = events / r["wall_s"]
        r["cpu_us_per_event"] = r["cpu_s"] / events * 1e6
        r["cpu_s_per_10k_events"] = r["cpu_s"] / events * 10_000
        r["server_cpu_us_per_event"] = r["server_cpu_s"] / max(1, r["server_frames"]) * 1e6
        r["rss_kib_per_stream"] = (r["rss_peak_kib"] - r["rss_baseline_kib"]) / r["streams"]
    return r


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every scenario and client, interleaved; returns the results document."""
    impls = [i for i in IMPLS if i in args.impl]
    scenarios = QUICK_SCENARIOS if args.quick else SCENARIOS
    proc, url = start_emulator()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        for name, streams, chars, pace in scenarios:
            runs: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
            # The paced run measures memory, which is steady: once is enough.
            for _ in range(1 if pace else args.repeats):
                for impl in impls:
                    runs[impl].append(measure(impl, url, streams, chars, pace))
            results[name] = {i: derive(_median_of(runs[i])) for i in impls}
            for impl in impls:
                r = results[name][impl]
                sys.stderr.write(
                    f"  {name:>13} {impl:>6}: {r.get('events_per_s', 0):>10,.0f} events/s\n"
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"scenarios": results, "targets": verdicts(results)}


def verdicts(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and PASS/MISS."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        out.append({"target": name, "value": value, "limit": limit, "verdict": verdict})

    s200 = results.get("200 streams", {})
    ours, coz, raw = s200.get("ours", {}), s200.get("cozepy", {}), s200.get("raw", {})
    if ours.get("events_per_s") and coz.get("events_per_s"):
        ratio = ours["events_per_s"] / coz["events_per_s"]
        add("200 streams: events/s vs cozepy", ratio, ">= 4.0x", ratio >= 4.0)
    if ours.get("cpu_us_per_event") and coz.get("cpu_us_per_event"):
        ratio = ours["cpu_us_per_event"] / coz["cpu_us_per_event"]
        add("200 streams: CPU/event vs cozepy", ratio, "<= 0.25x", ratio <= 0.25)
    if ours.get("cpu_us_per_event") and raw.get("cpu_us_per_event"):
        ratio = ours["cpu_us_per_event"] / raw["cpu_us_per_event"]
        add("200 streams: CPU/event vs raw floor", ratio, "<= 2.0x", ratio <= 2.0)
    s1000 = results.get("1,000 streams", {}).get("ours", {})
    paced = results.get(PACED, {}).get("ours", {})
    for label, r in (("1,000 streams", s1000), (PACED, paced)):
        if r:
            errors = len(r.get("errors", []))
            add(f"{label}: errors", errors, "0", errors == 0 and bool(r.get("events")))
    per = paced.get("rss_kib_per_stream")
    if paced:
        add(f"{PACED}: peak RSS per open stream (KiB)", per, "< 64", per is not None and per < 64)
    return out


def print_report(doc: dict[str, Any]) -> None:
    """The results as a Markdown table, then the targets."""
    print()
    print(
        "| scenario | client | events | events/s | client CPU s / 10k events | "
        "CPU µs/event | peak RSS KiB / stream | emulator CPU µs/event | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, by_impl in doc["scenarios"].items():
        for impl, r in by_impl.items():
            if not r.get("events"):
                print(f"| {name} | {impl} | 0 | — | — | — | — | — | {r.get('errors')} |")
                continue
            print(
                f"| {name} | {impl} | {r['events']:,} | {r['events_per_s']:,.0f} | "
                f"{r['cpu_s_per_10k_events']:.3f} | {r['cpu_us_per_event']:.2f} | "
                f"{r['rss_kib_per_stream']:.1f} | {r['server_cpu_us_per_event']:.2f} | "
                f"{len(r['errors'])} |"
            )
    print()
    print("| target | measured | limit | verdict |")
    print("|---|---|---|---|")
    for t in doc["targets"]:
        value = t["value"]
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"| {t['target']} | {shown} | {t['limit']} | {t['verdict']} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per client (median kept)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="results file")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument(
        "--impl", nargs="+", default=list(IMPLS), choices=IMPLS, help="clients to run"
    )
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--streams", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--chars", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.streams, args.chars, args.pace)))
        return 0
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    from coze_async._json import HAS_ORJSON

    started = time.perf_counter()
    doc = run(args)
    doc["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "json": "orjson" if HAS_ORJSON else "json (stdlib)",
        "repeats": args.repeats,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print_report(doc)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {args.json}")
    return 0 if all(t["verdict"] != "MISS" for t in doc["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
