"""The load run's report: the terminal table, the JSON file and the live progress line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .chart import sparkline, write_png_chart
from .figure import figure_data, have_matplotlib, write_figure
from .runner import BenchResult, Progress
from .verdict import judge

__all__ = [
    "format_progress",
    "format_report",
    "output_problem",
    "result_json",
    "write_json",
    "write_plot",
]


def _s(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _rate(series: list[int], elapsed: float) -> str:
    return f"{sum(series) / elapsed:,.1f}" if elapsed > 0 else "0"


def format_progress(p: Progress, width: int = 24) -> str:
    """One status line: a bar of elapsed time, requests done, events/s and errors."""
    frac = min(1.0, p.elapsed / p.deadline) if p.deadline > 0 else 1.0
    filled = round(frac * width)
    bar = "█" * filled + "·" * (width - filled)
    return (
        f"[{bar}] {p.elapsed:5.1f}/{p.deadline:g} s  done {p.done:,}  in flight "
        f"{p.in_flight:,}  {p.events_per_s:,.0f} events/s  errors {p.failed:,}"
    )


def format_report(result: BenchResult) -> str:
    """The human-readable report of a run."""
    c, s = result.config, result.summary
    qps, average = c.quota_lines()
    target = "Coze at " + result.base_url if c.targets_real_coze else "the emulator"
    if c.limit:
        limiter = "on"
    elif c.backoff:
        limiter = "OFF (--no-limit; each worker backs off after a rejection)"
    else:
        limiter = "OFF (--no-limit --no-backoff: rejections are retried at once)"
    lines = [
        f"coze-async bench: {c.scenario} against {target}",
        f"  plan {c.plan.name}, client-side limiter {limiter}, concurrency {c.concurrency}, "
        f"ran {s.elapsed:.1f} s"
        + ("  (INTERRUPTED: partial report)" if result.interrupted else ""),
        "",
        f"  requests      {s.ok:,} ok, {s.failed:,} failed",
    ]
    if s.not_sent:
        lines.append(
            f"    {s.not_sent:,} more were still waiting for quota when the run ended and were "
            "withdrawn unsent (not errors: they never reached the server)"
        )
    for name, count in s.errors.items():
        lines.append(f"    {name:<28} {count:,}")
    if len(s.by_scenario) > 1:
        for name, row in s.by_scenario.items():
            lines.append(f"    {name:<15} ok {row['ok']:,}  failed {row['failed']:,}")
    lines += [
        f"  throughput    {s.requests_per_s:,.1f} ok requests/s, {s.events:,} events "
        f"({s.events_per_s:,.0f} events/s)",
        f"  sent          {s.requests:,} requests, {s.sent_per_s:,.1f}/s: accepted "
        f"{_rate(s.accepted_per_second, s.elapsed)}/s, rejected "
        f"{_rate(s.rejected_per_second, s.elapsed)}/s",
        "",
        "                      p50        p95        p99",
        "  first event   " + "".join(f"{_s(s.ttfe[k]):>11}" for k in ("p50", "p95", "p99")),
        "  total         " + "".join(f"{_s(s.latency[k]):>11}" for k in ("p50", "p95", "p99")),
        f"  limiter wait  {_s(s.quota_wait['p50']):>11}{'':>11}{_s(s.quota_wait['p99']):>11}",
        "  (first event and total are timed from the send: limiter wait excluded)",
        "",
    ]
    rejections = result.server_rejections
    note = "  (expected 0 with the limiter on)" if c.limit and rejections else ""
    lines.append(f"  server-side rate-limit rejections: {rejections:,}{note}")
    if result.server_quota is not None:
        for name, b in result.server_quota.get("buckets", {}).items():
            if b.get("accepted") or b.get("rejected"):
                lines.append(
                    f"    {name:<10} accepted {b['accepted']:,}  rejected {b['rejected']:,}  "
                    f"most in any {b['period']:g} s window {b['max_in_window']:,} "
                    f"(limit {b['limit']:,})"
                )
    quota = f"quota {qps:g}/s" if qps is not None else "no quota"
    if average is not None:
        quota += f", {average:g}/s averaged over a minute"
    lines += [
        "",
        f"  accepted/s  {sparkline(figure_data(result).accepted, qps)}  ({quota}; "
        f"max {max(s.accepted_per_second, default=0)})",
        "",
        _verdict_line(result),
    ]
    return "\n".join(lines)


def _verdict_line(result: BenchResult) -> str:
    # ✓ only over a clean run: a run that passed within --max-error-rate still had failures.
    v = judge(result)
    if result.interrupted:
        return f"  result: interrupted, not judged ({v.reason})"
    if v.clean:
        return f"  result: ✓ passed ({v.reason})"
    if v.passed:
        return f"  result: passed with errors: {v.reason}"
    return f"  result: ✗ FAILED: {v.reason}"


def output_problem(path: Path) -> str | None:
    """Why ``path`` cannot take an output file, or None if it can.

    Checked before a run, so a typo in a directory costs no run, and no directory is made
    on the user's behalf (a misspelt one would silently hold the report).
    """
    parent = path.parent
    if not parent.exists():
        return f"directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.is_dir():
        return f"{path} is a directory"
    return None


def result_json(result: BenchResult) -> dict[str, Any]:
    """:meth:`BenchResult.to_json` with the verdict (passed, and why) added."""
    doc: dict[str, Any] = result.to_json()
    v = judge(result)
    doc["verdict"] = {
        "passed": v.passed,
        "clean": v.clean,
        "errors": v.errors,
        "error_rate": v.error_rate,
        "max_error_rate": result.config.max_error_rate,
        "reason": v.reason,
    }
    return doc


def write_json(result: BenchResult, path: Path) -> None:
    """Write :func:`result_json` to ``path`` (its directory must exist)."""
    doc = result_json(result)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_plot(result: BenchResult, path: Path, *, renderer: str = "auto") -> str:
    """Write the run's figure (PNG) to ``path``; return which renderer drew it.

    ``renderer`` is ``"matplotlib"`` (the ``plot`` extra: requests, latency and limiter wait
    per second), ``"builtin"`` (requests per second, standard library only) or ``"auto"``:
    matplotlib when installed, else the built-in chart.
    """
    data = figure_data(result)
    if renderer == "auto":
        renderer = "matplotlib" if have_matplotlib() else "builtin"
    if renderer == "matplotlib":
        write_figure(data, path)
    elif renderer == "builtin":
        write_png_chart(path, data)
    else:
        raise ValueError(f"renderer must be auto, matplotlib or builtin, got {renderer!r}")
    return renderer
