"""The HTML report of a load run: one self-contained file to attach to a ticket.

It holds the verdict, the figure (inline, as a base64 PNG: no file next to it, nothing
fetched), the report table exactly as the terminal shows it, the run's settings, and the
whole JSON result folded away at the end. Everything the run produced is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .chart import render_png_chart
from .figure import figure_data, figure_png, have_matplotlib
from .report import format_report, result_json
from .runner import BenchResult
from .verdict import judge

__all__ = ["render_html", "write_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
.verdict { padding: .6em 1em; border-radius: 4px; font-weight: 600; }
.passed { background: #e6f4ea; } .failed { background: #fce8e6; } .warn { background: #fef7e0; }
pre { background: #f6f8fa; padding: 1em; overflow-x: auto; font-size: .9em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: .25em .6em; }
th { text-align: left; background: #f6f8fa; } img { max-width: 100%; }
"""


def render_html(result: BenchResult, *, renderer: str = "auto") -> str:
    """The report of ``result`` as one HTML document (see the module's docstring).

    ``renderer`` picks the figure as :func:`~.report.write_plot` does.
    """
    data = figure_data(result)
    if renderer == "auto":
        renderer = "matplotlib" if have_matplotlib() else "builtin"
    png = figure_png(data) if renderer == "matplotlib" else render_png_chart(data)[0]
    verdict = judge(result)
    if result.interrupted:
        css, headline = "warn", f"interrupted, partial report ({verdict.reason})"
    elif verdict.clean:
        css, headline = "passed", f"✓ passed ({verdict.reason})"
    elif verdict.passed:
        css, headline = "warn", f"passed with errors: {verdict.reason}"
    else:
        css, headline = "failed", f"✗ FAILED: {verdict.reason}"
    c = result.config
    settings = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_value(v))}</td></tr>"
        for k, v in c.to_json().items()
    )
    title = f"coze-async bench: {c.scenario} on {c.plan.name}"
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    doc = json.dumps(result_json(result), indent=2, ensure_ascii=False)
    image = base64.b64encode(png).decode("ascii")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f"<p>Generated {generated} by <code>coze-async bench</code>.</p>\n"
        f'<p class="verdict {css}">{html.escape(headline)}</p>\n'
        "<h2>Figure</h2>\n"
        f'<img alt="requests per second of the run" src="data:image/png;base64,{image}">\n'
        "<h2>Report</h2>\n"
        f"<pre>{html.escape(format_report(result))}</pre>\n"
        f'<h2>Settings</h2>\n<table class="config">{settings}</table>\n'
        "<h2>All figures (JSON)</h2>\n"
        f"<details><summary>the JSON result</summary><pre>{html.escape(doc)}</pre></details>\n"
        "</body>\n</html>\n"
    )


def _value(value: Any) -> str:
    return "—" if value is None else str(value)


def write_html(result: BenchResult, path: Path, *, renderer: str = "auto") -> None:
    """Write :func:`render_html` of ``result`` to ``path`` (its directory must exist)."""
    path.write_text(render_html(result, renderer=renderer), encoding="utf-8")
