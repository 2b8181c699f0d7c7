"""Helpers for users' own test suites.

``no_backoff()`` switches retry backoff sleeps off, so tests that exercise retries against the
emulator run instantly while keeping the same retry decisions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .transport import backoff_enabled, set_backoff_enabled

__all__ = ["no_backoff"]


@contextmanager
def no_backoff() -> Iterator[None]:
    """Within the block, retries happen without sleeping (decisions are unchanged)."""
    previous = backoff_enabled()
    set_backoff_enabled(False)
    try:
        yield
    finally:
        set_backoff_enabled(previous)
