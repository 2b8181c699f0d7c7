"""The three errors the lowest modules raise (argument checks, model structuring).

They live apart from :mod:`coze_async.errors` only so that the models can raise them while
``errors`` refers to the models (``ChatFailedError.chat`` is a ``Chat``) without an import
circle; ``coze_async.errors`` re-exports them and they present themselves as its classes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CozeError", "InvalidArgumentError", "ResponseValidationError"]


class CozeError(Exception):
    """Base class of every error raised by ``coze_async``."""

    __module__ = "coze_async.errors"

    logid: str | None = None

    def __str__(self) -> str:
        text = super().__str__()
        return text or type(self).__name__


class InvalidArgumentError(CozeError, ValueError):
    """An argument is invalid; raised before anything is sent. The message names it."""

    __module__ = "coze_async.errors"


class ResponseValidationError(CozeError):
    """The server's answer does not have the documented shape.

    ``path`` names where (e.g. ``$.data.usage.token_count``) when known; ``body`` is the raw
    text or decoded JSON so nothing received is lost.
    """

    __module__ = "coze_async.errors"

    def __init__(
        self, message: str, *, logid: str | None = None, path: str | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.logid = logid
        self.path = path
        self.body = body
