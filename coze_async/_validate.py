"""Argument checks shared by the models, the config values and the resources (sans-IO).

Every public entry point checks its arguments before anything is sent and raises
:class:`~coze_async.errors.InvalidArgumentError` whose message names the argument (and, inside
free-form JSON, the path to the offending value). The classes of bad input refused here are the
ones that would otherwise be sent wrong or fail late with a bare ``TypeError``/``ValueError``:
a wrong type (``"no"`` for a bool, a bool for an int), a str that UTF-8 cannot encode (a lone
surrogate), a value JSON cannot carry (a set, bytes, NaN, an int beyond 64 bits), and control
characters where they would break a header line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidArgumentError

__all__ = [
    "check_bool",
    "check_headers",
    "check_int",
    "check_json",
    "check_json_object",
    "check_number",
    "check_query",
    "check_str",
    "check_token",
    "kind",
]

#: Deeper JSON than this is refused (it is also how a value that contains itself ends).
MAX_JSON_DEPTH = 128
# orjson (the speedups extra) refuses ints outside 64 bits; refuse them with either encoder.
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
#: An HTTP header name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters a header value must not hold: controls other than HTAB (CR/LF would end the line).
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def kind(value: object) -> str:
    """A short name of ``value``'s type for error messages (never the value: it may be secret)."""
    return "None" if value is None else type(value).__name__


def _encodable(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"{name} holds a lone surrogate ({value[exc.start]!r} at index {exc.start}) that "
            "cannot be sent as UTF-8"
        ) from None


def check_str(name: str, value: object, *, empty: bool = True) -> str:
    """``value`` if it is a str UTF-8 can encode (and, unless ``empty``, not blank)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {kind(value)}")
    if not empty and not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string")
    _encodable(name, value)
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (``"no"``, ``0`` and ``None`` are refused, not coerced)."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False, got {kind(value)}")
    return value


def check_int(name: str, value: object, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an int (not a bool) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {kind(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            bounds = f">= {low}"
        elif low is None:
            bounds = f"<= {high}"
        else:
            bounds = f"between {low} and {high}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value}")
    return int(value)


def check_number(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a float if it is a finite int or float (not a bool), ``>= 0`` or ``> 0``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{name} must be a number, got {kind(value)}")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value}")
    if value < 0 or (positive and value == 0):
        raise InvalidArgumentError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


class _NotJSON(Exception):
    """Raised inside the JSON walk; ``path`` grows as it unwinds (built only on failure)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


def _json_copy(value: Any, depth: int) -> Any:
    cls = type(value)
    if cls is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _NotJSON(f"holds a lone surrogate at index {exc.start}") from None
        return value
    if value is None or cls is bool:
        return value
    if cls is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _NotJSON("is an integer outside the 64-bit range JSON encoders accept")
        return int(value)
    if cls is float or isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(f"is {value}, which JSON cannot represent")
        return float(value)
    if isinstance(value, str):  # a str subclass such as a StrEnum member
        return _json_copy(str(value), depth)
    if depth >= MAX_JSON_DEPTH:
        raise _NotJSON(f"is nested more than {MAX_JSON_DEPTH} levels deep (or contains itself)")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJSON(f"has a {kind(key)} key {key!r}: JSON object keys must be strings")
            try:
                key.encode("utf-8")
                out[str(key)] = _json_copy(item, depth + 1)
            except UnicodeEncodeError:
                raise _NotJSON("has a key holding a lone surrogate") from None
            except _NotJSON as exc:
                exc.path.append(f"[{key!r}]")
                raise
        return out
    if isinstance(value, list | tuple):
        copied = []
        for index, item in enumerate(value):
            try:
                copied.append(_json_copy(item, depth + 1))
            except _NotJSON as exc:
                exc.path.append(f"[{index}]")
                raise
        return copied
    raise _NotJSON(
        f"is a {kind(value)}, which JSON cannot carry (use str, int, float, bool, None, "
        "list or dict)"
    )


def check_json(name: str, value: object) -> Any:
    """A plain copy of ``value`` (dicts, lists, str, int, float, bool, None) for the wire.

    Refuses what JSON cannot carry, wherever it is nested, naming its path
    (``parameters['a'][2] is a set ...``). Copying means later changes by the caller do not
    alter what was checked (a stream sends its body only when it is opened).
    """
    try:
        return _json_copy(value, 0)
    except _NotJSON as exc:
        where = name + "".join(reversed(exc.path))
        raise InvalidArgumentError(f"{where} {exc.message}") from None


def check_json_object(name: str, value: object) -> dict[str, Any]:
    """:func:`check_json` for a value that must be a JSON object (a mapping)."""
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping (a JSON object), got {kind(value)}")
    checked: dict[str, Any] = check_json(name, value)
    return checked


def check_headers(name: str, value: object) -> dict[str, str] | None:
    """Extra HTTP headers: token names and str values with no CR/LF or other controls.

    Error messages name the header, never its value (it may be a secret).
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping of header names to strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            shown = repr(key) if isinstance(key, str) and key.isprintable() else kind(key)
            raise InvalidArgumentError(
                f"{name}: {shown} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
            )
        if not isinstance(item, str):
            raise InvalidArgumentError(f"{name}[{key!r}] must be a string, got {kind(item)}")
        if _HEADER_VALUE_BAD.search(item):
            raise InvalidArgumentError(
                f"{name}[{key!r}] holds a control character (CR, LF, NUL...) that would break "
                "the header line"
            )
        _encodable(f"{name}[{key!r}]", item)
        out[key] = item
    return out


def check_query(name: str, value: object) -> dict[str, str | int | float] | None:
    """Extra query parameters: str keys, and str, int or float values (not bool or None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping of str to str")
    out: dict[str, str | int | float] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"{name}: keys must be non-empty strings, got {kind(key)}")
        _encodable(f"{name} key", key)
        if isinstance(item, str):
            _encodable(f"{name}[{key!r}]", item)
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidArgumentError(f"{name}[{key!r}] must be a string, got {kind(item)}")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidArgumentError(f"{name}[{key!r}] must be a finite number")
        out[key] = item
    return out


def check_token(name: str, value: object) -> str:
    """A bearer token: a str with no whitespace or control characters (never echoed)."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {kind(value)}")
    if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidArgumentError(
            f"{name} must be a non-empty string without spaces, CR/LF or other control "
            "characters (it goes into the Authorization header)"
        )
    _encodable(name, value)
    return value
