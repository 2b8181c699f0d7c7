"""Configuration: base URLs, timeouts and the retry policy.

These are plain frozen values so that one ``AsyncCoze`` can be configured once and shared by
every task; per-call overrides build a new value with :func:`attrs.evolve`.
"""

from __future__ import annotations

import ipaddress
import math
import warnings
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import InvalidArgumentError
from .retry import DEFAULT_RATE_LIMIT_CODES, DEFAULT_RETRY_STATUSES, RetryPolicy

__all__ = [
    "COZE_CN_BASE_URL",
    "COZE_COM_BASE_URL",
    "DEFAULT_RATE_LIMIT_CODES",
    "DEFAULT_RETRY_STATUSES",
    "RetryPolicy",
    "Timeouts",
]

#: The China API host (coze.cn). This SDK's default, overridable by ``COZE_API_BASE``.
COZE_CN_BASE_URL = "https://api.coze.cn"
#: The global API host (coze.com). Tokens are region-bound: a coze.com token fails on the CN host.
COZE_COM_BASE_URL = "https://api.coze.com"


class _CheckedURL(str):
    """A base URL :func:`check_base_url` has already accepted (and warned about, if needed).

    ``AsyncCoze`` checks its URL and then hands it to its auth (``JWTAuth.bind_base_url``),
    which checks it again; marking the value keeps that second check from warning twice.
    """

    __slots__ = ()


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; InvalidArgumentError unless it is http(s).

    A plain ``http://`` URL to a host other than this machine (127.0.0.0/8, ::1,
    ``localhost``) is accepted with a :class:`UserWarning`: the bearer token would then travel
    in clear text. Loopback (the emulator) and ``https://`` do not warn.
    """
    if isinstance(base_url, _CheckedURL):
        return base_url
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise InvalidArgumentError(
            f"base_url must start with http:// or https://, got {base_url!r}"
        )
    url = base_url.rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidArgumentError(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if not host:
        raise InvalidArgumentError(f"base_url {base_url!r} has no host")
    if parts.scheme == "http" and not is_loopback_host(host):
        warnings.warn(
            f"base_url {url!r} uses plain http:// to {host}: the API token travels in clear "
            "text and can be read on the way; use https://",
            UserWarning,
            stacklevel=3,
        )
    return _CheckedURL(url)


def _positive_or_none(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(
            f"Timeouts.{attribute.name} must be a number of seconds or None, "
            f"got {type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(
            f"Timeouts.{attribute.name} must be a positive number or None, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class Timeouts:
    """Timeouts in seconds; ``None`` disables one.

    ``read`` is the longest gap allowed between two reads from the socket (including the wait
    for response headers), so a stream that keeps producing events never times out while a
    stalled one does. ``total`` bounds a whole unary call and is never applied to streams: a
    long answer must not be cut off by a wall-clock limit (aiohttp's default ``total=300``
    would do exactly that). ``pool`` bounds the wait for a free connection from the pool.
    """

    connect: float | None = attrs.field(default=5.0, validator=_positive_or_none)
    read: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    total: float | None = attrs.field(default=120.0, validator=_positive_or_none)
    pool: float | None = attrs.field(default=None, validator=_positive_or_none)
