"""The report figure of a load run: what is plotted (:class:`FigureData`) and how.

:func:`figure_data` picks the series out of a :class:`~.runner.BenchResult` once, so both
renderers draw the same thing and tests can read back what was drawn:

* :func:`draw_figure` (matplotlib, the optional ``plot`` extra, Agg backend) draws three
  panels sharing the time axis: accepted / rejected / failed requests per second stacked,
  with the quota lines; latency p50/p95/p99 per second; limiter wait p50/p99 per second.
* without matplotlib, :func:`~.chart.write_png_chart` draws the first panel with the
  standard library only.

Seconds after the deadline, when nothing could be sent any more and only the last replies
came in, are not drawn: they would read as a collapse of throughput. The run's last second,
when it is partial (a run bounded by ``--requests``), is drawn as narrow as it was long.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import attrs

from .runner import BenchResult

__all__ = [
    "FigureData",
    "draw_figure",
    "figure_data",
    "figure_png",
    "have_matplotlib",
    "write_figure",
]

#: Series names and colours shared by both renderers. Rejections are orange and failures
#: purple, both far from the quota line's black, so an over-quota run stands out.
ACCEPTED = ("accepted", "#4285f4")
REJECTED = ("rejected (quota)", "#f4a000")
FAILED = ("failed (other errors)", "#8e44ad")
QUOTA = ("quota per second", "#202020")
QUOTA_AVERAGE = ("per-minute quota, per second", "#7f7f7f")


@attrs.frozen
class FigureData:
    """The series one figure draws; index ``k`` is second ``[k, k+1)`` of the run."""

    title: str
    #: How much of each second the run covered (1.0, except perhaps the last).
    widths: list[float]
    accepted: list[int]
    rejected: list[int]
    failed: list[int]
    #: The plan's per-second quota and per-minute quota as a per-second average, if any.
    quota: float | None
    quota_average: float | None
    #: ``p50``/``p95``/``p99`` latency (seconds) of the ok requests sent in each second.
    latency: dict[str, list[float | None]]
    #: ``p50``/``p99`` limiter wait (seconds) of the requests sent in each second.
    quota_wait: dict[str, list[float | None]]
    #: Seconds of wind-down (after the deadline) left out of the figure.
    omitted: float = 0.0

    @property
    def seconds(self) -> int:
        """How many seconds are drawn."""
        return len(self.widths)


def figure_data(result: BenchResult) -> FigureData:
    """The series of ``result`` to draw (see the module's docstring for what is left out)."""
    c, s = result.config, result.summary
    total = len(s.accepted_per_second)
    # Seconds starting at or after the deadline hold only the wind-down of a run.
    drawn = min(total, max(1, math.ceil(c.deadline))) if total else 0
    widths = [min(1.0, max(0.0, s.elapsed - k)) for k in range(drawn)]
    qps, average = c.quota_lines()

    def cut(series: list[Any]) -> list[Any]:
        return list(series[:drawn]) + [0] * max(0, drawn - len(series))

    limiter = "limiter on" if c.limit else "limiter off"
    return FigureData(
        title=(
            f"coze-async bench: {c.scenario}, {c.plan.name}, concurrency {c.concurrency}, {limiter}"
        ),
        widths=widths,
        accepted=cut(s.accepted_per_second),
        rejected=cut(s.rejected_per_second),
        failed=cut(s.failed_per_second),
        quota=qps,
        quota_average=average,
        latency={k: list(v[:drawn]) for k, v in s.latency_per_second.items()},
        quota_wait={k: list(v[:drawn]) for k, v in s.quota_wait_per_second.items()},
        omitted=max(0.0, s.elapsed - drawn),
    )


def _span(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def have_matplotlib() -> bool:
    """True when the ``plot`` extra (matplotlib) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw_figure(data: FigureData) -> Any:
    """A matplotlib ``Figure`` of ``data`` (needs the ``plot`` extra).

    The request panel's bar containers carry the series names as labels (``accepted``,
    ``rejected (quota)``, ``failed (other errors)``), so what was drawn can be read back.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and none is touched
    from matplotlib.figure import Figure

    fig: Any = Figure(figsize=(11, 8.5), layout="constrained")
    ax_req, ax_lat, ax_wait = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 1.2]}
    )
    x = [k + w / 2 for k, w in enumerate(data.widths)]
    widths = [w * 0.8 for w in data.widths]
    bottom = [0] * data.seconds
    for (label, colour), values in (
        (ACCEPTED, data.accepted),
        (REJECTED, data.rejected),
        (FAILED, data.failed),
    ):
        ax_req.bar(x, values, widths, bottom=bottom, label=label, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if data.quota is not None:
        ax_req.axhline(data.quota, color=QUOTA[1], linewidth=1.6, label=QUOTA[0])
    if data.quota_average is not None:
        ax_req.axhline(
            data.quota_average,
            color=QUOTA_AVERAGE[1],
            linewidth=1.2,
            linestyle="--",
            label=QUOTA_AVERAGE[0],
        )
    stacks = [a + r + f for a, r, f in zip(data.accepted, data.rejected, data.failed, strict=True)]
    ax_req.set_ylim(0, max([*stacks, data.quota or 0, data.quota_average or 0, 1]) * 1.12)
    ax_req.set_ylabel("requests per second")
    fig.suptitle(data.title)
    # Legends beside the panels, never over a bar or a line.
    outside: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)}
    ax_req.legend(fontsize="small", **outside)
    ax_req.grid(axis="y", alpha=0.3)

    def line(ax: Any, values: list[float | None], label: str, style: str) -> None:
        ms = [math.nan if v is None else v * 1000 for v in values]
        ax.plot(x, ms, style, label=label, markersize=3)

    for q, style in (("p50", "-o"), ("p95", "--o"), ("p99", ":o")):
        line(ax_lat, data.latency.get(q, []), f"latency {q}", style)
    ax_lat.set_ylabel("latency (ms)")
    ax_lat.legend(fontsize="small", **outside)
    ax_lat.grid(alpha=0.3)
    for q, style in (("p50", "-o"), ("p99", ":o")):
        line(ax_wait, data.quota_wait.get(q, []), f"limiter wait {q}", style)
    ax_wait.set_ylabel("limiter wait (ms)")
    ax_wait.legend(fontsize="small", **outside)
    ax_wait.grid(alpha=0.3)
    xlabel = "second of the run"
    if data.omitted > 0:
        xlabel += f" (the last {_span(data.omitted)}, after the deadline, not drawn)"
    ax_wait.set_xlabel(xlabel)
    span = max(1.0, sum(data.widths))
    ax_wait.set_xlim(0, span)
    every = max(1, math.ceil(span / 20))
    ax_wait.set_xticks(range(0, math.ceil(span) + 1, every))
    return fig


def write_figure(data: FigureData, path: Path) -> None:
    """Render :func:`draw_figure` of ``data`` to a PNG at ``path``."""
    path.write_bytes(figure_png(data))


def figure_png(data: FigureData) -> bytes:
    """:func:`draw_figure` of ``data`` as PNG bytes."""
    buf = io.BytesIO()
    draw_figure(data).savefig(buf, format="png", dpi=100)
    return buf.getvalue()
