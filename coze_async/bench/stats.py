"""The load benchmark's accounting: pure functions over per-request records, no I/O.

Each request the runner makes becomes one :class:`RequestRecord`. :func:`summarize` turns the
records of a run into the figures the report prints and the JSON keeps, so the arithmetic is
tested on its own, with hand-made records, apart from any network.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

__all__ = [
    "NOT_SENT",
    "OK",
    "RequestRecord",
    "Summary",
    "per_second",
    "percentile",
    "summarize",
]

#: ``RequestRecord.outcome`` of a request that succeeded.
OK = "ok"
#: ``RequestRecord.outcome`` of a request stopped before it was sent (the run ended while it
#: waited for quota). Counted apart: neither a success nor a failure.
NOT_SENT = "not sent"


@attrs.define
class RequestRecord:
    """What happened to one request of a load run. Times are seconds from the run's start.

    ``outcome`` is :data:`OK`, :data:`NOT_SENT`, or the failure's exception class name
    (``RateLimitError``, ``StreamInterruptedError``, ...). ``quota_wait`` is the time spent
    waiting for the client-side limiter; ``first_event`` and ``end`` are measured from
    ``start``, so they include that wait (:attr:`ttfe` and :attr:`latency` leave it out).
    ``accepted_at`` is when the server took the request (the response headers arrived);
    ``sent_at`` when it left the client (the limiter let it go, or at ``start`` without one).
    """

    scenario: str
    start: float
    outcome: str = OK
    end: float | None = None
    first_event: float | None = None
    accepted_at: float | None = None
    quota_wait: float = 0.0
    events: int = 0
    server_rejected: bool = False
    #: The client-side limiter let it go (always true without a limiter).
    granted: bool = False
    sent_at: float | None = None

    @property
    def sent_time(self) -> float:
        """When it was sent: ``sent_at``, else ``start`` plus the limiter wait."""
        return self.sent_at if self.sent_at is not None else self.start + self.quota_wait

    @property
    def ttfe(self) -> float | None:
        """Time to first event once sent (limiter wait excluded), or None."""
        if self.first_event is None:
            return None
        return max(0.0, self.first_event - self.start - self.quota_wait)

    @property
    def latency(self) -> float | None:
        """Time from send to the last byte (limiter wait excluded), or None if unfinished."""
        if self.end is None or self.outcome == NOT_SENT:
            return None
        return max(0.0, self.end - self.start - self.quota_wait)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks.

    ``None`` for no values. Matches the "linear" method of common statistics packages:
    p50 of ``[1, 2, 3, 4]`` is 2.5, p100 is the maximum.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def per_second(times: Iterable[float], seconds: int) -> list[int]:
    """Counts of ``times`` in each whole second ``[k, k+1)`` for ``k`` in ``0..seconds-1``.

    Times outside the range (negative, or at/after ``seconds``) are not counted.
    """
    counts = [0] * max(0, seconds)
    for t in times:
        k = math.floor(t)
        if 0 <= k < seconds:
            counts[k] += 1
    return counts


def _pcts(values: list[float]) -> dict[str, float | None]:
    return {f"p{q}": percentile(values, q) for q in (50, 95, 99)}


def _pcts_per_second(
    pairs: Iterable[tuple[float, float]], seconds: int, qs: Sequence[int]
) -> dict[str, list[float | None]]:
    """Percentiles ``qs`` of the values in each whole second, from ``(time, value)`` pairs."""
    buckets: list[list[float]] = [[] for _ in range(max(0, seconds))]
    for t, value in pairs:
        k = math.floor(t)
        if 0 <= k < seconds:
            buckets[k].append(value)
    return {f"p{q}": [percentile(b, q) for b in buckets] for q in qs}


@attrs.frozen
class Summary:
    """The figures of one run (see :func:`summarize`); :meth:`to_json` for the JSON file."""

    elapsed: float
    requests: int
    ok: int
    failed: int
    not_sent: int
    errors: dict[str, int]
    events: int
    events_per_s: float
    requests_per_s: float
    ttfe: dict[str, float | None]
    latency: dict[str, float | None]
    quota_wait: dict[str, float | None]
    client_rejections: int
    accepted_per_second: list[int]
    by_scenario: dict[str, dict[str, int]]
    #: Requests sent, per second: what the server had to answer (accepted or not).
    sent_per_second: list[int] = attrs.field(factory=list)
    #: Requests rejected for quota, by the second they were sent.
    rejected_per_second: list[int] = attrs.field(factory=list)
    #: Other failures the server did not accept (connection errors, a bad token, ...), by
    #: the second they ended. With the two above and ``accepted_per_second``, every sent
    #: request is in exactly one series.
    failed_per_second: list[int] = attrs.field(factory=list)
    #: Requests sent per second over the whole run.
    sent_per_s: float = 0.0
    #: Latency p50/p95/p99 (s) of the successful requests sent in each second (None: none).
    latency_per_second: dict[str, list[float | None]] = attrs.field(factory=dict)
    #: Limiter wait p50/p99 (s) of the requests sent in each second.
    quota_wait_per_second: dict[str, list[float | None]] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (seconds as floats, counts as ints)."""
        return attrs.asdict(self)


def summarize(records: Sequence[RequestRecord], elapsed: float) -> Summary:
    """Aggregate a run's records; ``elapsed`` is the run's wall time in seconds.

    Failures are grouped by error class. Percentiles cover successful requests only (a
    failure's timing says little about the service). The per-second series counts the
    requests the server accepted, by the second they were accepted in; it and the other
    per-second series have one entry per started second of the run.
    """
    sent = [r for r in records if r.outcome != NOT_SENT]
    ok = [r for r in sent if r.outcome == OK]
    errors = Counter(r.outcome for r in sent if r.outcome != OK)
    events = sum(r.events for r in records)
    seconds = max(1, math.ceil(elapsed)) if records else 0
    by_scenario: dict[str, dict[str, int]] = {}
    for r in records:
        row = by_scenario.setdefault(r.scenario, {"ok": 0, "failed": 0, "not_sent": 0})
        key = "ok" if r.outcome == OK else "not_sent" if r.outcome == NOT_SENT else "failed"
        row[key] += 1
    return Summary(
        elapsed=elapsed,
        requests=len(sent),
        ok=len(ok),
        failed=len(sent) - len(ok),
        not_sent=len(records) - len(sent),
        errors=dict(errors.most_common()),
        events=events,
        events_per_s=events / elapsed if elapsed > 0 else 0.0,
        requests_per_s=len(ok) / elapsed if elapsed > 0 else 0.0,
        ttfe=_pcts([t for r in ok if (t := r.ttfe) is not None]),
        latency=_pcts([t for r in ok if (t := r.latency) is not None]),
        quota_wait={
            k: v for k, v in _pcts([r.quota_wait for r in sent]).items() if k in ("p50", "p99")
        },
        client_rejections=sum(1 for r in sent if r.server_rejected),
        accepted_per_second=per_second(
            (r.accepted_at for r in sent if r.accepted_at is not None), seconds
        ),
        by_scenario=by_scenario,
        sent_per_second=per_second((r.sent_time for r in sent), seconds),
        rejected_per_second=per_second((r.sent_time for r in sent if r.server_rejected), seconds),
        failed_per_second=per_second(
            (
                r.end
                for r in sent
                if r.outcome != OK
                and not r.server_rejected
                and r.accepted_at is None
                and r.end is not None
            ),
            seconds,
        ),
        sent_per_s=len(sent) / elapsed if elapsed > 0 else 0.0,
        latency_per_second=_pcts_per_second(
            ((r.sent_time, t) for r in ok if (t := r.latency) is not None), seconds, (50, 95, 99)
        ),
        quota_wait_per_second=_pcts_per_second(
            ((r.sent_time, r.quota_wait) for r in sent), seconds, (50, 99)
        ),
    )
