"""Shared plumbing for resources: the escape hatches every call accepts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import anyio
import attrs

from ..config import Timeouts
from ..errors import InvalidArgumentError
from ..transport import DEFAULT_MAX_BODY, Call, Envelope, Transport

__all__ = ["Resource", "check_str_map", "poll_deadline", "require_id"]

T = TypeVar("T")


def require_id(name: str, value: object) -> str:
    """Check that an id argument is a non-empty string (ints are accepted and converted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_str_map(name: str, value: Mapping[str, str] | None) -> dict[str, str] | None:
    """Check a ``map<string,string>`` argument (keys and values must be str) and copy it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping of str to str")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"{name}[{k!r}]: keys and values must be strings")
    return dict(value)


def poll_deadline(poll_interval: float, timeout: float | None) -> float | None:
    """Check a poll loop's arguments and return its deadline (``anyio.current_time()`` based)."""
    if poll_interval <= 0:
        raise InvalidArgumentError("poll_interval must be > 0")
    if timeout is not None and timeout <= 0:
        raise InvalidArgumentError("timeout must be > 0 or None")
    return None if timeout is None else anyio.current_time() + timeout


class Resource:
    """Base of the resource classes: holds the transport and builds :class:`Call` objects."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @staticmethod
    def _call(
        method: str,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotent: bool,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, str] | None,
        extra_body: Mapping[str, Any] | None,
        timeouts: Timeouts | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> Call:
        return Call(
            method=method,
            path=path,
            endpoint=endpoint,
            params=params,
            json=json,
            idempotent=idempotent,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
            max_body=max_body,
        )

    @staticmethod
    def _stamped(obj: T, env: Envelope) -> T:
        """``obj`` with the call's ``logid`` and, where the model has it, ``quota_wait``."""
        changes: dict[str, Any] = {}
        if env.logid is not None:
            changes["logid"] = env.logid
        if env.quota_wait and "quota_wait" in attrs.fields_dict(type(obj)):  # type: ignore[arg-type]
            changes["quota_wait"] = env.quota_wait
        return attrs.evolve(obj, **changes) if changes else obj  # type: ignore[misc]

    @staticmethod
    def _with_logid(obj: T, logid: str | None) -> T:
        return attrs.evolve(obj, logid=logid) if logid is not None else obj  # type: ignore[misc]
