"""From an answer's status, headers and body to its data or the mapped error. Sans-IO.

Coze answers ``{"code": 0, "msg": "", "data": ...}``; any other code is an error, mapped to
the :class:`~coze_async.errors.APIError` subclass for the code (then the HTTP status) with
the ``logid`` to quote to Coze support. OAuth-style bodies (``error_code`` /
``error_message``) and non-JSON gateway pages are mapped too. An authentication failure
carries a hint naming the likely cause for the host in use (a token from the other region).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._json import loads
from .call import Envelope
from .errors import (
    APIError,
    AuthenticationError,
    ResponseValidationError,
    error_class_for,
    parse_code,
)

__all__ = ["auth_hint", "decode", "logid_from", "make_api_error", "text_excerpt"]

_TITLE_RE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)

#: Host suffix -> what a rejected token most likely means there.
_AUTH_HINTS = (
    (
        "coze.cn",
        "api.coze.cn rejected the token: a token issued on coze.com only works on "
        "api.coze.com (base_url=COZE_COM_BASE_URL); otherwise it is expired or revoked",
    ),
    (
        "coze.com",
        "api.coze.com rejected the token: a token issued on coze.cn only works on "
        "api.coze.cn (base_url=COZE_CN_BASE_URL); otherwise it is expired or revoked",
    ),
)
_AUTH_HINT_OTHER = "check that the token is valid, not expired, and issued for this host's region"


def auth_hint(host: str) -> str:
    """The hint an :class:`AuthenticationError` from ``host`` carries."""
    for suffix, hint in _AUTH_HINTS:
        if host.endswith(suffix):
            return hint
    return _AUTH_HINT_OTHER


def text_excerpt(raw: bytes, limit: int = 200) -> str:
    """A short, one-line excerpt of a non-JSON body (an HTML page's title, if it has one)."""
    match = _TITLE_RE.search(raw)
    text = match.group(1) if match else raw
    out = " ".join(text.decode("utf-8", "replace").split())
    return out[:limit] + ("..." if len(out) > limit else "")


def logid_from(headers: Mapping[str, str], body: Any = None) -> str | None:
    """The answer's logid: the ``X-Tt-Logid`` header, else ``detail.logid`` in the body."""
    logid = headers.get("x-tt-logid") or headers.get("X-Tt-Logid")
    if logid:
        return logid
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, dict) and isinstance(detail.get("logid"), str):
            return str(detail["logid"])
    return None


def make_api_error(
    *, code: int | None, msg: str, http_status: int, logid: str | None, body: Any, host: str
) -> APIError:
    """Build the :class:`APIError` subclass chosen from ``code`` and ``http_status``."""
    cls = error_class_for(code, http_status)
    debug_url = body.get("debug_url") if isinstance(body, dict) else None
    return cls(
        msg,
        code=code,
        logid=logid,
        http_status=http_status,
        debug_url=debug_url if isinstance(debug_url, str) else None,
        body=body,
        hint=auth_hint(host) if cls is AuthenticationError else None,
    )


def decode(status: int, headers: Mapping[str, str], raw: bytes, *, host: str) -> Envelope:
    """Decode a JSON answer; raise the mapped :class:`APIError` for an error answer.

    A success status with a body that is not JSON is a :class:`ResponseValidationError`.
    """
    try:
        body = loads(raw) if raw else None
    except ValueError:
        logid = logid_from(headers)
        text = raw.decode("utf-8", "replace")
        if status >= 400:
            excerpt = text_excerpt(raw)
            raise make_api_error(
                code=None,
                msg=f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}",
                http_status=status,
                logid=logid,
                body=text,
                host=host,
            ) from None
        raise ResponseValidationError(
            f"expected a JSON body, got: {text_excerpt(raw)!r}", logid=logid, body=text
        ) from None
    logid = logid_from(headers, body)
    code: int | None = None
    msg = f"HTTP {status}"
    if isinstance(body, dict):
        code = parse_code(body.get("code"))
        if code:
            msg = str(body.get("msg") or "")
        else:
            # OAuth-style error bodies, or a gateway error with a JSON body and no code.
            msg = str(body.get("error_message") or body.get("msg") or body.get("error_code") or msg)
    if code or status >= 400:
        raise make_api_error(
            code=code, msg=msg, http_status=status, logid=logid, body=body, host=host
        )
    return Envelope(body, logid, status)
