"""The one cattrs converter, configured in one place.

Responses are structured leniently: unknown keys are ignored, enum-like fields are plain
``str`` (an unknown status is kept, never a crash), ids arrive as int or string and become
``str``, timestamps arrive as int or numeric string and become ``int``. Requests are exact:
:func:`unstructure_request` drops ``None`` so that nothing the caller did not set is sent.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs
from cattrs.errors import ClassValidationError

from ..errors import ResponseValidationError

__all__ = ["converter", "structure", "unstructure_request"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=False)


def _structure_str(value: Any, _type: Any) -> str:
    # Ids are int64 rendered as strings, but some payloads send numbers; accept both.
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _structure_int(value: Any, _type: Any) -> int:
    # Timestamps and counters: int, float or numeric string ("1718592898").
    if isinstance(value, bool):
        raise TypeError("expected an integer, got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        return int(value.strip() or "0")
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_bool(value: Any, _type: Any) -> bool:
    # Flags (is_finish, node_is_finish...): a JSON bool, 0/1, or "true"/"false". Registered
    # explicitly: bool is an int subclass, so it would otherwise dispatch to the int hook.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise TypeError(f"expected a boolean, got {value!r}")


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(bool, _structure_bool)


def structure(data: Any, cls: type[T], *, logid: str | None = None, what: str = "$") -> T:
    """Structure ``data`` into ``cls``; a shape error becomes :class:`ResponseValidationError`.

    The error message lists every offending path (cattrs ``transform_error``), so a broken
    answer is diagnosable without a debugger.
    """
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, TypeError, ValueError, KeyError) as exc:
        if isinstance(exc, ClassValidationError):
            paths = cattrs.transform_error(exc, path=what)
        else:
            paths = [f"{exc} @ {what}"]
        raise ResponseValidationError(
            f"unexpected {cls.__name__} shape: " + "; ".join(paths),
            logid=logid,
            path=what,
            body=data,
        ) from exc


def unstructure_request(obj: Any) -> Any:
    """Unstructure a request value, dropping ``None`` everywhere (None means "omit")."""
    raw = converter.unstructure(obj)
    return _drop_none(raw)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value
