"""``coze-async bench`` output: the report figure (both renderers) and the HTML report.

What was drawn is read back from the figure itself (matplotlib's artists, or what the
built-in chart says it drew), never from pixels.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from coze_async import Plan
from coze_async.bench import BenchConfig, BenchResult, RequestRecord, run_bench, summarize
from coze_async.bench.chart import write_png_chart
from coze_async.bench.figure import QUOTA, REJECTED, draw_figure, figure_data
from coze_async.bench.html import write_html
from coze_async.bench.report import format_report, write_plot
from coze_async.emulator import Emulator

pytestmark = pytest.mark.anyio

FREE = Plan.PERSONAL_FREE


_RUNS: dict[str, BenchResult] = {}


@pytest.fixture
async def runs() -> dict[str, BenchResult]:
    """A clean run (limiter on) and a rejecting one (limiter off), 1 s each.

    Made once per test process and shared (the results are plain data the tests only read):
    four tests need the same two runs.
    """
    if not _RUNS:
        for name, limit in (("clean", True), ("rejecting", False)):
            async with Emulator(plan=FREE, event_delay=0.005) as server:
                config = BenchConfig(
                    base_url=server.url, concurrency=40, duration=1.0, plan=FREE, limit=limit
                )
                _RUNS[name] = await run_bench(config)
    return _RUNS


def _bars(fig: Any) -> dict[str, list[float]]:
    ax = fig.axes[0]
    return {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers}


async def test_the_figure_of_a_rejecting_run_shows_its_rejections(
    runs: dict[str, BenchResult], tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    clean, rejecting = runs["clean"], runs["rejecting"]
    figures = {name: draw_figure(figure_data(r)) for name, r in runs.items()}
    bars = {name: _bars(fig) for name, fig in figures.items()}
    assert set(bars["clean"]) == {"accepted", "rejected (quota)", "failed (other errors)"}
    assert sum(bars["clean"]["rejected (quota)"]) == 0
    # The bars are the run's per-second series, for the seconds drawn (a call answered in
    # the wind-down after the deadline is in the JSON, not drawn).
    drawn_rejected = bars["rejecting"]["rejected (quota)"]
    assert drawn_rejected == rejecting.summary.rejected_per_second[: len(drawn_rejected)]
    assert 0 < sum(drawn_rejected) <= rejecting.server_rejections
    assert drawn_rejected != bars["clean"]["rejected (quota)"]
    drawn_accepted = bars["clean"]["accepted"]
    assert drawn_accepted == clean.summary.accepted_per_second[: len(drawn_accepted)]
    fig = figures["rejecting"]
    req, lat, wait = fig.axes[:3]
    legend = [t.get_text() for t in req.get_legend().get_texts()]
    assert "quota per second" in legend and "rejected (quota)" in legend
    quota = [ln for ln in req.get_lines() if ln.get_label() == "quota per second"]
    assert list(quota[0].get_ydata()) == [20, 20]
    assert {ln.get_label() for ln in lat.get_lines()} == {
        "latency p50",
        "latency p95",
        "latency p99",
    }
    assert {ln.get_label() for ln in wait.get_lines()} == {"limiter wait p50", "limiter wait p99"}
    # The rejected bars' colour is not the quota line's.
    assert REJECTED[1] != QUOTA[1]
    out = tmp_path / "f.png"
    assert write_plot(rejecting, out) == "matplotlib"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_the_built_in_chart_shows_rejections_a_legend_and_no_wind_down(
    runs: dict[str, BenchResult], tmp_path: Path
) -> None:
    drawn = {
        name: write_png_chart(tmp_path / f"{name}.png", figure_data(r)) for name, r in runs.items()
    }
    clean, rejecting = drawn["clean"], drawn["rejecting"]
    assert sum(clean.bars["rejected (quota)"]) == 0
    drawn_rejected = rejecting.bars["rejected (quota)"]
    summary = runs["rejecting"].summary
    assert drawn_rejected == summary.rejected_per_second[: len(drawn_rejected)]
    assert 0 < sum(drawn_rejected) <= runs["rejecting"].server_rejections
    assert rejecting.legend == [
        "accepted",
        "rejected (quota)",
        "failed (other errors)",
        "quota per second",
        "per-minute quota, per second",
    ]
    assert rejecting.lines["quota per second"] == 20
    # A 1 s run ends a little after 1 s: the wind-down second is in the JSON, not drawn.
    for r, d in zip(runs.values(), drawn.values(), strict=True):
        assert len(r.summary.accepted_per_second) == 2
        assert len(d.bars["accepted"]) == 1
    assert write_plot(runs["rejecting"], tmp_path / "b.png", renderer="builtin") == "builtin"


def test_a_partial_last_second_is_drawn_as_narrow_as_it_was_long() -> None:
    # A run bounded by a request count that ended at 1.5 s: its second second was half long.
    records = [
        RequestRecord("chat-stream", start=0.1, accepted_at=0.2, end=0.3, sent_at=0.1),
        RequestRecord("chat-stream", start=1.1, accepted_at=1.2, end=1.3, sent_at=1.1),
    ]
    config = BenchConfig(requests=2)
    result = BenchResult(config=config, summary=summarize(records, 1.5))
    data = figure_data(result)
    assert data.widths == [1.0, 0.5]
    assert data.accepted == [1, 1]
    assert data.omitted == 0


async def test_the_html_report_is_one_file_with_the_figure_table_and_settings(
    runs: dict[str, BenchResult], tmp_path: Path
) -> None:
    result = runs["rejecting"]
    for renderer in ("builtin", "matplotlib"):
        if renderer == "matplotlib":
            pytest.importorskip("matplotlib")
        out = tmp_path / f"{renderer}.html"
        write_html(result, out, renderer=renderer)
        page = out.read_text(encoding="utf-8")
        images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
        assert len(images) == 1
        assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
        # Nothing is fetched from elsewhere: the file alone is the report.
        assert not re.search(r'(src|href)="(?!data:)', page)
        assert "<script" not in page and "<link" not in page
        assert "✗ FAILED" in page
        # The terminal report's table, escaped, and the settings.
        first = format_report(result).splitlines()[0]
        assert first in page
        assert f"server-side rate-limit rejections: {result.server_rejections:,}" in page
        assert "<th>limit</th><td>False</td>" in page
        assert "<th>plan</th><td>personal_free</td>" in page
        assert '"verdict"' in page or "&quot;verdict&quot;" in page
