"""Lifetime call budgets: the free plan allows 500 API calls, ever, per account.

After that Coze locks every API of the account, so the last thing a client should do is
spend call 501. A budget counts every call sent (retries included: each reaches the server)
in durable storage shared by every process that uses the account, and refuses a call with
:class:`~coze_async.errors.LocalRateLimitError` before it would go over.

The limiter charges a call once it has its quota, just before it is sent (so concurrent
calls, in any process, can never overshoot), and refunds the charge when the call is then
not written after all (connection refused, budget refusal of another bucket, cancellation).
A call that waits for quota and times out or is cancelled is never charged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

import anyio.to_thread

from ..errors import BudgetFileError, InvalidArgumentError, LocalRateLimitError

__all__ = ["CallBudget", "FileCallBudget"]


@runtime_checkable
class CallBudget(Protocol):
    """Durable count of calls an account has made, with a ceiling."""

    limit: int | None

    async def charge(self) -> int:
        """Count one call and return the new total; refuse when it would pass the limit."""
        ...

    async def used(self) -> int:
        """How many calls have been counted so far."""
        ...

    # Optional: ``async def refund(self) -> None`` gives one charge back (a call charged but
    # never sent). A budget without it keeps such charges, erring on the safe side.


class FileCallBudget:
    """A budget kept in a small JSON file, locked with ``flock`` (one machine, many processes).

    ``limit`` defaults to the plan's ``lifetime_calls`` when the limiter is bound to a plan.
    A file that cannot be read or does not hold a count raises
    :class:`~coze_async.errors.BudgetFileError` (naming the file) rather than counting from
    zero; so does creating one where ``fcntl`` is missing (Windows).
    """

    def __init__(self, path: str | os.PathLike[str], *, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise InvalidArgumentError("limit must be >= 1")
        self.path = Path(path)
        self.limit = limit
        self._fcntl = _import_fcntl(self.path)

    def _error(self, problem: str) -> BudgetFileError:
        return BudgetFileError(
            f"lifetime call budget file {str(self.path)!r} {problem}: calls are refused until "
            "it is fixed (removing it would forget the calls already made)",
            path=self.path,
        )

    def _parse(self, text: str) -> int:
        if not text.strip():
            return 0  # just created
        try:
            data = json.loads(text)
        except ValueError:
            raise self._error("is not valid JSON") from None
        count = data.get("calls") if isinstance(data, dict) else None
        if type(count) is not int or count < 0:
            raise self._error('does not hold {"calls": <count>}')
        return count

    def _update(self, add: int) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error(f"cannot be opened ({type(exc).__name__}: {exc.strerror})") from None
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            self._fcntl.flock(f, self._fcntl.LOCK_EX)  # released when the file is closed
            try:
                text = f.read()
            except UnicodeDecodeError:
                raise self._error("is not UTF-8 text") from None
            except OSError as exc:
                raise self._error(f"cannot be read ({exc.strerror})") from None
            count = self._parse(text)
            if add > 0 and self.limit is not None and count + add > self.limit:
                raise LocalRateLimitError(
                    f"lifetime call budget used up: {count} of {self.limit} calls made "
                    f"(counted in {self.path}); Coze locks the account's API after that"
                )
            if add:
                count = max(0, count + add)
                f.seek(0)
                f.truncate()
                f.write(json.dumps({"calls": count}))
                f.flush()
                os.fsync(f.fileno())
        return count

    async def charge(self) -> int:
        """Count one call (in a worker thread: file locking blocks)."""
        return await anyio.to_thread.run_sync(self._update, 1)

    async def used(self) -> int:
        """Calls counted so far."""
        return await anyio.to_thread.run_sync(self._update, 0)

    async def refund(self) -> None:
        """Give back one charge, for a call that was charged but never sent."""
        await anyio.to_thread.run_sync(self._update, -1)

    def __repr__(self) -> str:
        return f"FileCallBudget({str(self.path)!r}, limit={self.limit})"


def _import_fcntl(path: Path) -> ModuleType:
    # Imported here, not at module level: ``import coze_async`` must work where the module
    # does not exist (Windows), and only this class needs it.
    try:
        import fcntl
    except ImportError:
        raise BudgetFileError(
            f"FileCallBudget({str(path)!r}) locks its file with fcntl.flock, which this "
            "platform does not have (Windows); pass a CallBudget of your own",
            path=path,
        ) from None
    return fcntl
