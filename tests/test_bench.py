"""``coze-async bench``: the accounting on its own, then short runs against real emulators.

No test here asserts how fast anything is: only that what the report says matches what the
server saw (requests, rejections, the per-second series) and that the run stays bounded.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import attrs
import pytest

from coze_async import Plan
from coze_async.bench import (
    BenchConfig,
    RequestRecord,
    format_report,
    per_second,
    percentile,
    run_bench,
    summarize,
)
from coze_async.bench.chart import sparkline
from coze_async.bench.report import format_progress
from coze_async.bench.runner import Progress
from coze_async.bench.stats import NOT_SENT
from coze_async.emulator import Emulator
from coze_async.errors import InvalidArgumentError

pytestmark = pytest.mark.anyio

FREE = Plan.PERSONAL_FREE
#: Events in one echo-bot stream answering "早上好": created, in_progress, three deltas,
#: answer + verbose + three follow-ups completed, chat.completed, done.
ECHO_EVENTS = 12


# ----------------------------------------------------------------------------- accounting


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_per_second_counts_each_whole_second_and_ignores_outside() -> None:
    assert per_second([0.1, 0.9, 1.0, 2.5, -0.1, 3.0], 3) == [2, 1, 1]
    assert per_second([], 2) == [0, 0]


def test_summarize_groups_errors_and_times_from_the_send() -> None:
    records = [
        # ok: waited 1 s for quota, first event 0.2 s and last 0.5 s after the send
        RequestRecord(
            "chat-stream",
            start=0.0,
            quota_wait=1.0,
            accepted_at=1.05,
            first_event=1.2,
            end=1.5,
            events=12,
        ),
        RequestRecord(
            "chat-stream",
            start=0.5,
            quota_wait=0.0,
            accepted_at=0.55,
            first_event=0.6,
            end=0.9,
            events=12,
        ),
        RequestRecord(
            "chat-stream", start=0.2, outcome="RateLimitError", end=0.25, server_rejected=True
        ),
        RequestRecord(
            "chat-stream", start=0.3, outcome="RateLimitError", end=0.31, server_rejected=True
        ),
        RequestRecord(
            "chat-poll",
            start=1.0,
            outcome="StreamInterruptedError",
            accepted_at=1.1,
            end=1.4,
            events=3,
        ),
        RequestRecord("chat-poll", start=1.5, outcome=NOT_SENT, quota_wait=0.5, end=2.0),
    ]
    s = summarize(records, elapsed=2.0)
    assert (s.requests, s.ok, s.failed, s.not_sent) == (5, 2, 3, 1)
    assert s.errors == {"RateLimitError": 2, "StreamInterruptedError": 1}
    assert s.client_rejections == 2
    assert s.events == 27
    assert s.events_per_s == 13.5
    assert s.requests_per_s == 1.0
    # Timed from the send: the 1 s limiter wait is not in the first request's figures.
    assert s.ttfe["p50"] == pytest.approx(0.15)
    assert s.latency["p99"] == pytest.approx(0.5, abs=0.01)
    assert s.quota_wait["p99"] == pytest.approx(0.96)  # unsent requests are not in it
    assert s.accepted_per_second == [1, 2]
    assert s.by_scenario == {
        "chat-stream": {"ok": 2, "failed": 2, "not_sent": 0},
        "chat-poll": {"ok": 0, "failed": 1, "not_sent": 1},
    }


def test_config_rejects_bad_values_before_anything_runs() -> None:
    with pytest.raises(InvalidArgumentError, match="scenario must be one of"):
        BenchConfig(scenario="chat")
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        BenchConfig(concurrency=0)
    with pytest.raises(InvalidArgumentError, match="duration"):
        BenchConfig(duration=0)
    with pytest.raises(InvalidArgumentError, match="needs bot_id"):
        BenchConfig(token="pat_x", base_url="https://api.coze.cn")
    with pytest.raises(InvalidArgumentError, match="needs workflow_id"):
        BenchConfig(token="pat_x", scenario="mixed", bot_id="1")
    assert "pat_x" not in repr(BenchConfig(token="pat_x", bot_id="1"))


def test_progress_line_and_sparkline_show_what_happened() -> None:
    line = format_progress(
        Progress(elapsed=5.0, deadline=10.0, done=1234, failed=3, in_flight=50, events_per_s=980)
    )
    assert "5.0/10 s" in line
    assert "done 1,234" in line and "errors 3" in line and "980 events/s" in line
    assert line.count("█") == 12  # half of the 24-cell bar
    # Scaled to the quota: a full block is the limit, so a run at the limit reads as flat.
    assert sparkline([0, 10, 20], limit=20) == " ▄█"
    assert sparkline([], limit=20) == ""


# ----------------------------------------------------------------------------- short runs


@pytest.fixture
async def free_emu() -> AsyncIterator[Emulator]:
    async with Emulator(plan=FREE, event_delay=0.005) as server:
        yield server


async def test_a_limited_run_matches_what_the_server_accepted(free_emu: Emulator) -> None:
    assert free_emu.quota is not None
    config = BenchConfig(base_url=free_emu.url, concurrency=60, duration=1.5, plan=FREE)
    result = await run_bench(config)
    s = result.summary
    stats = free_emu.quota.stats["chat"]
    assert stats.rejected == 0
    assert free_emu.quota.max_in_window("chat") <= 20
    assert s.failed == 0
    assert s.ok == stats.accepted > 0
    assert s.events == s.ok * ECHO_EVENTS
    # 60 workers against 20 chats/s: some were still queued for quota when the run ended,
    # and they were withdrawn without being sent.
    assert s.not_sent > 0
    assert sum(s.accepted_per_second) == s.ok
    assert max(s.accepted_per_second) <= 20
    assert s.quota_wait["p99"] is not None and s.quota_wait["p99"] > 0
    assert s.ttfe["p50"] is not None and s.latency["p50"] is not None
    assert s.ttfe["p50"] <= s.latency["p50"]
    report = format_report(result)
    assert f"{s.ok:,} ok, 0 failed" in report
    assert "server-side rate-limit rejections: 0" in report
    # The withdrawn requests are explained, not listed like a failure.
    assert f"{s.not_sent:,} more were still waiting for quota when the run ended" in report
    assert "not errors: they never reached the server" in report
    assert f"  requests      {s.ok:,} ok, 0 failed\n" in report


async def test_without_the_limiter_the_server_rejects_and_errors_are_classed(
    free_emu: Emulator,
) -> None:
    assert free_emu.quota is not None
    config = BenchConfig(
        base_url=free_emu.url, concurrency=40, duration=1.0, plan=FREE, limit=False
    )
    result = await run_bench(config)
    s = result.summary
    rejected = free_emu.quota.stats["chat"].rejected
    assert rejected > 0
    # retries=0: every server rejection is one failed request, named by its error class.
    assert s.errors.get("RateLimitError") == rejected == s.client_rejections
    assert s.ok == free_emu.quota.stats["chat"].accepted
    assert s.not_sent == 0
    assert result.server_rejections == rejected


async def test_a_request_count_bounds_the_run(free_emu: Emulator) -> None:
    config = BenchConfig(base_url=free_emu.url, concurrency=3, requests=7, plan=FREE)
    result = await run_bench(config)
    assert result.summary.ok == 7
    assert result.summary.requests == 7
    assert len(free_emu.requests) == 7


async def test_mixed_runs_every_scenario(free_emu: Emulator) -> None:
    config = BenchConfig(
        base_url=free_emu.url, concurrency=3, requests=9, plan=FREE, scenario="mixed"
    )
    result = await run_bench(config)
    assert result.summary.by_scenario == {
        "chat-stream": {"ok": 3, "failed": 0, "not_sent": 0},
        "chat-poll": {"ok": 3, "failed": 0, "not_sent": 0},
        "workflow-stream": {"ok": 3, "failed": 0, "not_sent": 0},
    }
    paths = [r.path for r in free_emu.requests]
    assert paths.count("/v1/workflow/stream_run") == 3
    assert paths.count("/v3/chat") == 6


# ----------------------------------------------------------------------------- the command


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "coze_async", "bench", *args]


async def test_the_command_spawns_an_emulator_and_writes_json_and_png(tmp_path: Path) -> None:
    out_json, out_png = tmp_path / "bench.json", tmp_path / "chart.png"
    out_html = tmp_path / "report.html"
    args = ("--duration", "1", "--json", str(out_json), "--plot", str(out_png))
    with anyio.fail_after(60):
        done = await anyio.run_process(_cli(*args, "--html", str(out_html)), check=False)
    stdout = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "server-side rate-limit rejections: 0" in stdout
    doc = json.loads(out_json.read_text())
    assert doc["config"]["target"] == "emulator"
    assert doc["config"]["plan"] == doc["server_quota"]["plan"] == "personal_free"
    assert doc["interrupted"] is False
    s = doc["summary"]
    assert s["ok"] > 0 and s["failed"] == 0
    # The emulator in the child process counted the same requests the client reported.
    assert doc["server_quota"]["buckets"]["chat"]["accepted"] == s["ok"]
    assert doc["server_quota"]["buckets"]["chat"]["max_in_window"] <= 20
    assert sum(s["accepted_per_second"]) == s["ok"]
    assert doc["quota_line"]["per_second"] == 20
    assert _png_size(out_png.read_bytes())[0] > 0
    assert f"chart written to {out_png}" in stdout
    assert doc["verdict"]["passed"] is True
    # The HTML report is one file: the figure inline, the report table, the settings.
    assert f"HTML report written to {out_html}" in stdout
    page = out_html.read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page
    assert "server-side rate-limit rejections: 0" in page
    assert "<th>concurrency</th><td>50</td>" in page
    assert set(os.listdir(tmp_path)) == {"bench.json", "chart.png", "report.html"}


async def test_ctrl_c_stops_cleanly_with_a_partial_report(tmp_path: Path) -> None:
    out_json = tmp_path / "partial.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    async with await anyio.open_process(
        _cli("--duration", "60", "--quiet", "--json", str(out_json)), env=env
    ) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        with anyio.fail_after(30):
            seen = b""
            while b"Ctrl-C stops early" not in seen:
                seen += await proc.stderr.receive()
            proc.send_signal(signal.SIGINT)
            stdout = b""
            async for chunk in proc.stdout:
                stdout += chunk
            code = await proc.wait()
    assert code == 130
    text = stdout.decode()
    assert "INTERRUPTED: partial report" in text
    doc = json.loads(out_json.read_text())
    assert doc["interrupted"] is True
    assert doc["summary"]["elapsed"] < 30


# ----------------------------------------------------------------------------- verdict (issue 15.1)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connecting is refused at once


async def test_a_run_where_every_request_fails_exits_non_zero_and_shows_no_tick() -> None:
    from coze_async.bench import exit_code

    config = BenchConfig(
        base_url=f"http://127.0.0.1:{_closed_port()}", concurrency=4, requests=40, plan=FREE
    )
    result = await run_bench(config)
    s = result.summary
    assert (s.ok, s.failed) == (0, 40)
    assert s.errors == {"TransportError": 40}
    assert exit_code(result) != 0
    report = format_report(result)
    assert "✓" not in report
    assert "FAILED" in report and "40 of 40 requests failed" in report


async def test_max_error_rate_relaxes_the_verdict_but_never_shows_a_tick(
    free_emu: Emulator,
) -> None:
    from coze_async.bench import exit_code, judge

    # No limiter and a quota of 20 chats/s: some of the 30 requests are rejected.
    base = BenchConfig(base_url=free_emu.url, concurrency=30, requests=30, plan=FREE, limit=False)
    result = await run_bench(base)
    s = result.summary
    assert 0 < s.failed < 30
    assert exit_code(result) == 1
    rate = s.failed / s.requests
    result.config = attrs.evolve(base, max_error_rate=1.0)
    assert judge(result).passed
    assert exit_code(result) == 0
    report = format_report(result)
    assert "✓" not in report
    assert f"{rate:.1%}" in report
    with pytest.raises(InvalidArgumentError, match="max_error_rate"):
        BenchConfig(max_error_rate=1.5)


async def test_a_clean_run_passes_with_a_tick(free_emu: Emulator) -> None:
    from coze_async.bench import exit_code

    result = await run_bench(
        BenchConfig(base_url=free_emu.url, concurrency=2, requests=4, plan=FREE)
    )
    assert exit_code(result) == 0
    assert "✓ passed" in format_report(result)


async def test_the_command_exits_1_when_the_server_refuses_every_request() -> None:
    # An emulator that knows another token: every call answers 4100.
    async with Emulator(token="emu_some_other_token") as other:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COZE_")}
        with anyio.fail_after(30):
            done = await anyio.run_process(
                _cli("--base-url", other.url, "--requests", "40", "--concurrency", "4"),
                check=False,
                env=env,
            )
        assert len(other.requests) == 40
    stdout = done.stdout.decode()
    assert done.returncode == 1, (stdout, done.stderr.decode())
    assert "0 ok, 40 failed" in stdout
    assert "AuthenticationError" in stdout
    assert "✓" not in stdout


@pytest.mark.parametrize("flag", ["--plot", "--json", "--html"])
async def test_an_output_file_in_a_missing_directory_is_refused_before_the_run(
    tmp_path: Path, flag: str
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    with anyio.fail_after(30):
        done = await anyio.run_process(
            _cli("--duration", "1", flag, str(missing / "x.out")), check=False
        )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert f"{flag}: directory {missing} does not exist" in stderr
    assert "Ctrl-C stops early" not in stderr  # no run started
    assert not (tmp_path / "nonexistent").exists()


# ----------------------------------------------------------------------------- chat-poll (15.6)


def _most_in_any_second(times: list[float]) -> int:
    ordered = sorted(times)
    best, low = 0, 0
    for high, t in enumerate(ordered):
        while ordered[low] <= t - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


async def test_chat_poll_counts_each_request_when_its_create_was_accepted(
    free_emu: Emulator,
) -> None:
    # Each polled chat makes three chat-bucket calls (create, retrieve, message list) against
    # 20 a second; 26 workers start at once, so 20 creates go at once and 6 wait for quota.
    config = BenchConfig(
        base_url=free_emu.url, scenario="chat-poll", concurrency=26, duration=1.2, plan=FREE
    )
    result = await run_bench(config)
    s = result.summary
    creates = [r.at for r in free_emu.requests if (r.method, r.path) == ("POST", "/v3/chat")]
    assert s.failed == 0 and s.ok == len(creates) >= 26
    server = per_second([t - result.started_at for t in creates], len(s.accepted_per_second))
    assert server[0] == 20
    # The client's series follows the server's, second by second (a create answered just
    # after a second's boundary may move one request to the next second).
    assert sum(s.accepted_per_second) == sum(server)
    assert all(abs(a - b) <= 1 for a, b in zip(s.accepted_per_second, server, strict=True))
    assert max(s.accepted_per_second) <= _most_in_any_second(creates) == 20
    # The limiter wait is the create's: the first 20 did not wait at all, the rest did.
    assert s.quota_wait["p50"] is not None and s.quota_wait["p50"] < 0.2
    assert s.quota_wait["p99"] is not None and s.quota_wait["p99"] > 0.5


# ----------------------------------------------------------------------------- backoff (15.4)


def test_the_backoff_after_rejections_doubles_up_to_a_cap() -> None:
    from coze_async.bench.runner import BACKOFF_CAP, rejection_backoff

    assert [rejection_backoff(n) for n in range(7)] == [0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert rejection_backoff(1000) == BACKOFF_CAP == 1.0


async def test_no_limit_backs_off_after_rejections_unless_told_not_to() -> None:
    sent: dict[bool, int] = {}
    for backoff in (True, False):
        async with Emulator(plan=FREE, event_delay=0.005) as server:
            assert server.quota is not None
            config = BenchConfig(
                base_url=server.url,
                concurrency=40,
                duration=1.0,
                plan=FREE,
                limit=False,
                backoff=backoff,
            )
            result = await run_bench(config)
            s, stats = result.summary, server.quota.stats["chat"]
        # What the server answered is what the report says was sent, second by second.
        assert s.requests == sum(s.sent_per_second) == len(server.requests)
        assert sum(s.rejected_per_second) == stats.rejected > 0
        assert sum(s.accepted_per_second) == stats.accepted
        report = format_report(result)
        assert f"sent          {s.requests:,} requests, {s.sent_per_s:,.1f}/s" in report
        sent[backoff] = s.requests
        if backoff:
            # Pauses of at least 25, 50, 100, 200, 400 ms: at most 6 rejections a second per
            # worker, each accepted request starting one worker's count over.
            assert stats.rejected <= 6 * (config.concurrency + stats.accepted)
            assert "backs off after a rejection" in report
        else:
            assert "--no-backoff" in report
    # Without the pauses the same workers send more (about 5x on a quiet machine; only
    # "more" is asserted, since a loaded machine slows the unpaused run most).
    assert sent[False] > sent[True]
