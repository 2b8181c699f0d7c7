"""The interface every quota limiter offers to the transport."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .plans import Plan

__all__ = ["QuotaLimiter"]


@runtime_checkable
class QuotaLimiter(Protocol):
    """A limiter the transport can use: in-process (:class:`Limiter`) or shared (Redis).

    A limiter may also offer ``reserve(names, *, timeout=None)``, returning an object with
    ``waited`` and ``commit()``: the transport then commits when the request has been written,
    so the call is counted from its send time rather than its grant time. Both limiters here
    do; a limiter with ``acquire`` only is counted from the grant.
    """

    plan: Plan | None

    def bind(self, plan: Plan) -> None:
        """Enforce ``plan``'s buckets."""
        ...

    async def acquire(self, names: Sequence[str], *, timeout: float | None = None) -> float:
        """Take one token from each named bucket; return the seconds waited."""
        ...

    def pause(self, names: Sequence[str], seconds: float) -> None:
        """Hold the named buckets closed for ``seconds`` (after a server rejection)."""
        ...

    async def aclose(self) -> None:
        """Release resources (connections)."""
        ...
