"""Issue 12, limiter part: budgets, optional imports, windows as the server sees them.

Every test asserts what a user notices: the typed error and its message, the calls the
emulator received, the count the budget file holds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coze_async import CozeError
from coze_async.ratelimit import FileCallBudget

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


# Item 14: a corrupt budget file -------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["{not json", '{"calls": "many"}', "[1, 2]", '{"other": 1}', '{"calls": -3}', "\xff\xfe"],
)
async def test_a_corrupt_budget_file_raises_a_typed_error_naming_the_file(
    tmp_path: Path, content: str
) -> None:
    from coze_async.errors import BudgetFileError

    path = tmp_path / "calls.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    budget = FileCallBudget(path, limit=500)
    for attempt in (budget.used, budget.charge):
        with pytest.raises(BudgetFileError) as info:
            await attempt()
        assert isinstance(info.value, CozeError)
        assert str(path) in str(info.value)
        assert info.value.path == path
    assert path.read_bytes() == content.encode("utf-8", "surrogateescape")  # left for a human


# Item 15: no fcntl (Windows) --------------------------------------------------------------


def test_import_works_without_fcntl_and_the_file_budget_says_why_it_cannot() -> None:
    code = (
        "import sys\n"
        "sys.modules['fcntl'] = None  # as on Windows\n"
        "import coze_async, coze_async.ratelimit\n"
        "from coze_async import AsyncCoze, Plan\n"
        "from coze_async.errors import BudgetFileError\n"
        "from coze_async.ratelimit import FileCallBudget, Limiter\n"
        "Limiter(Plan.PERSONAL_FREE)\n"
        "try:\n"
        "    FileCallBudget('calls.json')\n"
        "except BudgetFileError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout
    assert "fcntl" in out.stdout and "calls.json" in out.stdout


# Item 12 (part): no redis-py ----------------------------------------------------------------


def test_a_missing_redis_extra_raises_missing_extra_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "from coze_async import MissingExtraError\n"
        "from coze_async.ratelimit import RedisLimiter\n"
        "try:\n"
        "    RedisLimiter()\n"
        "except MissingExtraError as exc:\n"
        "    print('extra:', exc.extra, '|', exc)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "extra: redis |" in out.stdout
    assert "pip install 'coze-async[redis]'" in out.stdout
