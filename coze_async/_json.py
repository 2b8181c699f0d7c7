"""JSON helpers: ``orjson`` when the ``speedups`` extra is installed, the stdlib otherwise.

Everything that decodes or encodes JSON on a hot path goes through these two names so that
the optional accelerator is picked up automatically and in exactly one place.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["HAS_ORJSON", "dumps", "loads"]

try:  # pragma: no cover - which branch runs depends on the installed extras
    import orjson as _orjson

    HAS_ORJSON = True
except ImportError:  # pragma: no cover
    _orjson = None  # type: ignore[assignment]
    HAS_ORJSON = False


if _orjson is not None:
    _orjson_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps

    def loads(data: str | bytes | bytearray | memoryview) -> Any:
        """Decode JSON text (``orjson``)."""
        return _orjson_loads(data)

    def dumps(obj: Any) -> bytes:
        """Encode compact UTF-8 JSON (``orjson``); non-ASCII is written as is, like Coze."""
        return _orjson_dumps(obj)

else:  # pragma: no cover
    _decoder = json.JSONDecoder()
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def loads(data: str | bytes | bytearray | memoryview) -> Any:
        """Decode JSON text (stdlib)."""
        if not isinstance(data, str):
            data = bytes(data).decode("utf-8")
        return _decoder.decode(data)

    def dumps(obj: Any) -> bytes:
        """Encode compact UTF-8 JSON (stdlib); non-ASCII is written as is, like Coze."""
        return _encoder.encode(obj).encode("utf-8")
