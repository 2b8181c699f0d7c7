"""Helpers for users' own test suites.

``no_backoff()`` switches retry backoff sleeps off, so tests that exercise retries against the
emulator run instantly while keeping the same retry decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .retry import without_backoff

__all__ = ["no_backoff"]


@contextmanager
def no_backoff() -> Iterator[None]:
    """Within the block, retries happen without sleeping (decisions are unchanged).

    Context-local: tasks started inside the block inherit it; other tasks and threads keep
    their own setting (a ``contextvars.ContextVar``).
    """
    with without_backoff():
        yield
