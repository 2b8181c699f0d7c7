"""Cleanup that must finish however the caller is cancelled.

``anyio.CancelScope(shield=True)`` only protects against *anyio* cancellation: a plain
``task.cancel()`` (``asyncio.timeout``, ``asyncio.wait_for``, an ``asyncio.TaskGroup``
shutting down, a server cancelling its handler) still lands inside the shielded block and
aborts whatever request it was awaiting. A ``/v3/chat/cancel`` aborted like that never
reaches Coze, which then keeps generating, and billing.

:func:`run_to_completion` runs the cleanup in a task of its own, so that no cancellation of
the caller can reach it, waits for it (bounded by its own timeout) and only then lets the
caller's cancellation continue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ["run_to_completion"]

T = TypeVar("T")


async def _bounded(fn: Callable[[], Awaitable[T]], timeout: float) -> T | None:
    try:
        async with asyncio.timeout(timeout):
            return await fn()
    except TimeoutError:
        return None


async def run_to_completion(fn: Callable[[], Awaitable[T]], *, timeout: float) -> T | None:
    """Await ``fn()`` to its end (``None`` after ``timeout`` seconds), even if cancelled.

    A cancellation of the caller that arrives meanwhile, native or anyio's, is held back
    until ``fn()`` has finished, then re-raised; ``fn()``'s own exceptions propagate as
    usual. The wait can never exceed ``timeout`` (plus the event loop's latency).
    """
    task = asyncio.get_running_loop().create_task(_bounded(fn, timeout))
    interrupted: asyncio.CancelledError | None = None
    # The anyio shield stops anyio from re-delivering its cancellation at every turn of the
    # loop below; the loop itself absorbs native cancellations.
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError as exc:
                interrupted = exc  # the caller's: fn() runs on in its own task
    if interrupted is not None:
        # fn() is done; its outcome is moot once the caller is being cancelled. Retrieve it
        # anyway so that asyncio does not log "exception was never retrieved".
        if not task.cancelled():
            task.exception()
        raise interrupted
    return task.result()
