"""The one cattrs converter, configured in one place.

Responses are structured leniently: unknown keys are ignored, enum-like fields are plain
``str`` (an unknown status is kept, never a crash), ids arrive as int or string and become
``str``, timestamps arrive as int or numeric string and become ``int``. Requests are exact:
:func:`unstructure_request` drops ``None`` so that nothing the caller did not set is sent.

Lenient is not shapeless: where a model (or a map) is expected the JSON must be an object,
and where a list is expected it must be an array. Anything else raises, naming the path and
the JSON type received (``$.data.usage: expected an object, got str``), instead of silently
becoming a default-filled model (cattrs alone would turn ``"usage": "lots"`` into
``Usage(0, 0, 0)`` and a list into a default ``Message``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_sequence,
    list_structure_factory,
    mapping_structure_factory,
)
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from .._errors_base import ResponseValidationError

__all__ = ["converter", "json_type", "structure", "unstructure_request"]

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


def json_type(value: Any) -> str:
    """The name of ``value``'s type as a reader of the JSON would say it (``null`` for None)."""
    return "null" if value is None else type(value).__name__


class _ShapeError(TypeError):
    """A JSON value of the wrong kind (e.g. a string where an object is expected)."""


Hook = Callable[[Any, Any], Any]


def _guarded(inner: Hook, accept: type | tuple[type, ...], expected: str) -> Hook:
    def hook(value: Any, type_: Any) -> Any:
        # One isinstance per structured object: cheap next to the generated field code.
        if not isinstance(value, accept):
            raise _ShapeError(f"expected {expected}, got {json_type(value)}")
        return inner(value, type_)

    return hook


def _attrs_hook(cls: Any, conv: cattrs.Converter) -> Hook:
    return _guarded(make_dict_structure_fn(cls, conv), dict, "an object")


def _mapping_hook(type_: Any, conv: cattrs.Converter) -> Hook:
    return _guarded(mapping_structure_factory(type_, conv), dict, "an object")


def _sequence_hook(type_: Any, conv: cattrs.Converter) -> Hook:
    origin = getattr(type_, "__origin__", type_)
    if origin is tuple:
        inner = homogenous_tuple_structure_factory(type_, conv)
    else:
        inner = list_structure_factory(type_, conv)
    # A JSON array only: a str or an object would otherwise be iterated char by char / by key.
    return _guarded(inner, (list, tuple), "a list")


def _is_sequence(type_: Any) -> bool:
    # Homogeneous tuples (tuple[X, ...]) and lists; fixed-size tuples keep cattrs' own hook.
    args: tuple[Any, ...] = getattr(type_, "__args__", ())
    origin = getattr(type_, "__origin__", None)
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    return origin is list and is_sequence(type_)


converter.register_structure_hook_factory(attrs.has, _attrs_hook)
converter.register_structure_hook_factory(is_mapping, _mapping_hook)
converter.register_structure_hook_factory(_is_sequence, _sequence_hook)


def _format(exc: BaseException, type_: Any) -> str:
    # Our hooks' messages already say what was expected and what arrived; keep them whole.
    if isinstance(exc, _ShapeError) or (
        isinstance(exc, TypeError | ValueError) and str(exc).startswith("expected ")
    ):
        return str(exc)
    return format_exception(exc, type_)


def structure(data: Any, cls: type[T], *, logid: str | None = None, what: str = "$") -> T:
    """Structure ``data`` into ``cls``; a shape error becomes :class:`ResponseValidationError`.

    The error message lists every offending path with what was expected and what arrived
    (``$.data.usage: expected an object, got str``), so a broken answer is diagnosable
    without a debugger; ``path`` is the first offending path.
    """
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, ClassValidationError):
            problems = cattrs.transform_error(exc, path=what, format_exception=_format)
            # transform_error renders "message @ path"; lead with the path instead.
            located = [p.rpartition(" @ ") for p in problems]
            paths = [f"{where}: {msg}" if sep else where for msg, sep, where in located]
            first = located[0][2] if located and located[0][1] else what
        else:
            paths = [f"{what}: {_format(exc, cls)}"]
            first = what
        raise ResponseValidationError(
            f"unexpected {cls.__name__} shape: " + "; ".join(paths),
            logid=logid,
            path=first,
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
