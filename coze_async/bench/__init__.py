"""``coze-async bench``: a bounded load test against the emulator or Coze, with a report.

``run_bench(BenchConfig(...))`` runs it from Python; :mod:`.stats` holds the accounting,
:mod:`.report` the table, JSON and chart. See the command's ``--help``.
"""

from .report import format_report, write_json, write_plot
from .runner import PLANS, SCENARIOS, BenchConfig, BenchResult, Progress, run_bench
from .stats import RequestRecord, Summary, per_second, percentile, summarize
from .verdict import Verdict, exit_code, judge

__all__ = [
    "PLANS",
    "SCENARIOS",
    "BenchConfig",
    "BenchResult",
    "Progress",
    "RequestRecord",
    "Summary",
    "Verdict",
    "exit_code",
    "format_report",
    "judge",
    "per_second",
    "percentile",
    "run_bench",
    "summarize",
    "write_json",
    "write_plot",
]
