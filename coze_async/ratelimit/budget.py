"""Lifetime call budgets: the free plan allows 500 API calls, ever, per account.

After that Coze locks every API of the account, so the last thing a client should do is
spend call 501. A budget counts every call sent (retries included: each reaches the server)
in durable storage shared by every process that uses the account, and refuses a call with
:class:`~coze_async.errors.LocalRateLimitError` before it would go over.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio.to_thread

from ..errors import InvalidArgumentError, LocalRateLimitError

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


class FileCallBudget:
    """A budget kept in a small JSON file, locked with ``flock`` (one machine, many processes).

    ``limit`` defaults to the plan's ``lifetime_calls`` when the limiter is bound to a plan.
    """

    def __init__(self, path: str | os.PathLike[str], *, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise InvalidArgumentError("limit must be >= 1")
        self.path = Path(path)
        self.limit = limit

    def _update(self, add: int) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed
            text = f.read()
            count = int(json.loads(text)["calls"]) if text.strip() else 0
            if add and self.limit is not None and count + add > self.limit:
                raise LocalRateLimitError(
                    f"lifetime call budget used up: {count} of {self.limit} calls made "
                    f"(counted in {self.path}); Coze locks the account's API after that"
                )
            if add:
                count += add
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

    def __repr__(self) -> str:
        return f"FileCallBudget({str(self.path)!r}, limit={self.limit})"
