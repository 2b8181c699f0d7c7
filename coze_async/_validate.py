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

from ._errors_base import InvalidArgumentError
from ._json import HAS_ORJSON, dumps

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

    def __init__(self, message: str, *, key: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []
        #: The fault is in the current mapping's key, not under it: add no path step for it.
        self.key = key


def _scalar(value: Any) -> Any:
    """A JSON scalar checked (and a str/int/float subclass such as an enum made plain)."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise _NotJSON(f"holds a lone surrogate at index {exc.start}") from None
        return str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _NotJSON("is an integer outside the 64-bit range JSON encoders accept")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(f"is {value}, which JSON cannot represent")
        return float(value)
    raise _NotJSON(
        f"is a {kind(value)}, which JSON cannot carry (use str, int, float, bool, None, "
        "list or dict)"
    )


def _json_copy(value: Any, depth: int) -> Any:
    # Hot for big workflow inputs (megabytes of rows): plain children are handled inline, so
    # the walk costs about one type() lookup per value; only containers recurse.
    if depth >= MAX_JSON_DEPTH:
        raise _NotJSON(f"is nested more than {MAX_JSON_DEPTH} levels deep (or contains itself)")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        key: Any = None
        try:
            for key, item in value.items():
                if type(key) is not str:
                    if not isinstance(key, str):
                        raise _NotJSON(
                            f"has the key {key!r} ({kind(key)}): JSON object keys must be strings",
                            key=True,
                        )
                    key = str(key)
                if not key.isascii():
                    try:
                        _scalar(key)
                    except _NotJSON:
                        raise _NotJSON("has a key holding a lone surrogate", key=True) from None
                cls = type(item)
                if cls is str:
                    out[key] = item if item.isascii() else _scalar(item)
                elif cls is int:
                    out[key] = item if _INT_MIN <= item <= _INT_MAX else _scalar(item)
                elif cls is bool or item is None:
                    out[key] = item
                elif cls is dict or cls is list or cls is tuple or isinstance(item, Mapping):
                    out[key] = _json_copy(item, depth + 1)
                else:
                    out[key] = _scalar(item)
        except _NotJSON as exc:
            if exc.key:
                exc.key = False
            else:
                exc.path.append(f"[{key!r}]")
            raise
        return out
    if isinstance(value, list | tuple):
        copied: list[Any] = []
        append = copied.append
        index = 0
        try:
            for index, item in enumerate(value):  # noqa: B007 - used by the except clause
                cls = type(item)
                if cls is str:
                    append(item if item.isascii() else _scalar(item))
                elif cls is int:
                    append(item if _INT_MIN <= item <= _INT_MAX else _scalar(item))
                elif cls is bool or item is None:
                    append(item)
                elif cls is dict or cls is list or cls is tuple or isinstance(item, Mapping):
                    append(_json_copy(item, depth + 1))
                else:
                    append(_scalar(item))
        except _NotJSON as exc:
            exc.path.append(f"[{index}]")
            raise
        return copied
    return _scalar(value)


def _plain_already(value: Any) -> bool:
    """True when orjson (the transport's encoder, when installed) proves ``value`` plain JSON.

    orjson refuses sets, bytes, objects, non-str keys, ints beyond 64 bits, lone surrogates
    and too-deep nesting, at C speed; it writes NaN and Infinity as ``null`` (where the walk
    must look), so a body holding a ``null`` is walked anyway. This keeps megabytes of
    workflow input cheap to check; anything in doubt goes to the exact walk, which also names
    the offending path.
    """
    if not HAS_ORJSON or not isinstance(value, dict | list):
        return False
    try:
        raw = dumps(value)
    except TypeError:
        return False
    return b"null" not in raw


def check_json(name: str, value: object) -> Any:
    """A plain copy of ``value`` (dicts, lists, str, int, float, bool, None) for the wire.

    Refuses what JSON cannot carry, wherever it is nested, naming its path
    (``parameters['a'][2] is a set ...``). The copy is at least shallow (a stream sends its
    body only when it is opened: replacing a top-level entry in between changes nothing).
    """
    if _plain_already(value):
        # A shallow copy: replacing a top-level entry later does not change what is sent.
        return dict(value) if isinstance(value, dict) else list(value)  # type: ignore[call-overload]
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


def require_id(name: str, value: object) -> str:
    """Check that an id argument is a non-empty string (ints are accepted and converted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string, got {value!r}")
    return check_str(name, value)


def optional_id(name: str, value: object) -> str | None:
    """:func:`require_id` for an optional id (``None`` stays ``None``)."""
    return None if value is None else require_id(name, value)
