"""Per-request fault injection: parsing the ``x-coze-emulator-fault`` header.

A request opts into faults with a header such as::

    x-coze-emulator-fault: drop-after=3
    x-coze-emulator-fault: json-error=4009;status=429;times=2
    x-coze-emulator-fault: latency=0.2;malformed-at=4

Items are ``;``-separated ``name`` or ``name=value`` pairs. Unknown names and bad values are
rejected (the server answers HTTP 400 naming the problem) so that a typo in a test fails
loudly instead of silently testing the happy path.

=================  =========  ===========================================================
name               value      effect
=================  =========  ===========================================================
``latency``        seconds    sleep between SSE events (overrides ``event_delay``)
``drop-after``     N          after N SSE events abort the TCP connection (broken body)
``eof-after``      N          after N SSE events end the body cleanly, without ``done``
``malformed-at``   N          SSE event N (0-based) carries a truncated, invalid JSON line
``error-at``       N          after N SSE events send an ``error`` event and end
``error-code``     code       code used by ``error-at`` and ``chat-failed`` (default 5000)
``chat-failed``    -          the chat fails (``conversation.chat.failed``, no ``done``)
``json-error``     code       answer with a JSON error envelope instead of the real response
``status``         NNN        HTTP status of any error envelope of this request (default 200)
``html-502``       -          answer HTTP 502 with an nginx-like HTML page
``http-status``    NNN        answer that HTTP status with a short plain-text body
``slow-headers``   seconds    sleep before sending any response headers
``times``          K          only the first K requests with this exact header value fault
=================  =========  ===========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

__all__ = [
    "FAULT_NAMES",
    "NO_FAULTS",
    "FaultCounter",
    "FaultSpec",
    "FaultSpecError",
    "parse_faults",
]


class FaultSpecError(ValueError):
    """The fault header names an unknown fault or gives a fault a bad value."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """The faults selected by one request's ``x-coze-emulator-fault`` header.

    Attribute names mirror the header names with ``-`` replaced by ``_``; ``None``/``False``
    means "not requested".
    """

    latency: float | None = None
    drop_after: int | None = None
    eof_after: int | None = None
    malformed_at: int | None = None
    error_at: int | None = None
    error_code: int | None = None
    chat_failed: bool = False
    json_error: int | None = None
    status: int | None = None
    html_502: bool = False
    http_status: int | None = None
    slow_headers: float | None = None
    times: int | None = None

    @property
    def any(self) -> bool:
        """True when at least one fault is selected."""
        return self != _NO_FAULTS

    @property
    def has_stream_faults(self) -> bool:
        """True when a fault changes how SSE frames are written (not just their pace)."""
        return (
            self.drop_after is not None
            or self.eof_after is not None
            or self.malformed_at is not None
            or self.error_at is not None
        )


_NO_FAULTS: Final = FaultSpec()
#: A spec selecting nothing; what a request without the header (or past ``times``) gets.
NO_FAULTS: Final = _NO_FAULTS

_FLAGS: Final = frozenset({"chat-failed", "html-502"})
_FLOATS: Final = frozenset({"latency", "slow-headers"})
_HTTP_STATUSES: Final = frozenset({"status", "http-status"})
#: Every fault name the header accepts.
FAULT_NAMES: Final = tuple(f.name.replace("_", "-") for f in fields(FaultSpec))


def parse_faults(header: str | None) -> FaultSpec:
    """Parse a fault header value; ``None`` or blank gives a spec with nothing selected.

    Raises :class:`FaultSpecError` with a message naming the offending item.
    """
    if header is None or not header.strip():
        return _NO_FAULTS
    values: dict[str, float | int | bool] = {}
    for raw_item in header.split(";"):
        item = raw_item.strip()
        if not item:
            continue  # tolerate "a;;b" and a trailing ";"
        name, has_value, raw_value = (part.strip() for part in item.partition("="))
        name = name.lower()
        if name not in FAULT_NAMES:
            raise FaultSpecError(
                f"unknown fault {name!r} in {header!r}; known faults: {', '.join(FAULT_NAMES)}"
            )
        if name in _FLAGS:
            if has_value:
                raise FaultSpecError(f"fault {name!r} takes no value (got {raw_value!r})")
            values[name] = True
            continue
        if not has_value or not raw_value:
            raise FaultSpecError(f"fault {name!r} needs a value, e.g. {name}=1")
        values[name] = _parse_value(name, raw_value)
    return FaultSpec(**{key.replace("-", "_"): value for key, value in values.items()})  # type: ignore[arg-type]


def _parse_value(name: str, raw: str) -> float | int:
    try:
        if name in _FLOATS:
            number: float | int = float(raw)
            if not math.isfinite(number):
                raise ValueError(raw)
        else:
            number = int(raw)
    except ValueError:
        kind = "a number of seconds" if name in _FLOATS else "an integer"
        raise FaultSpecError(f"fault {name!r} needs {kind}, got {raw!r}") from None
    if number < 0:
        raise FaultSpecError(f"fault {name!r} must not be negative, got {raw!r}")
    if name in _HTTP_STATUSES and not 100 <= number <= 599:
        raise FaultSpecError(f"fault {name!r} needs an HTTP status 100-599, got {raw!r}")
    return number


class FaultCounter:
    """Implements ``times=K``: counts requests per distinct fault-header value, server-wide.

    The first K requests carrying exactly the same header value get the faults; later ones
    behave normally. That is how a test says "the first attempt gets a 502, the retry works".
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def admit(self, header: str, spec: FaultSpec) -> FaultSpec:
        """Return ``spec`` while this header value is within its ``times`` budget, else none."""
        if spec.times is None:
            return spec
        key = header.strip()
        count = self._seen.get(key, 0) + 1
        self._seen[key] = count
        return spec if count <= spec.times else _NO_FAULTS

    def reset(self) -> None:
        """Forget all counts (every header value gets its full budget again)."""
        self._seen.clear()
