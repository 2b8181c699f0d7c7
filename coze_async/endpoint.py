"""Declarative endpoints: each Coze endpoint is one constant; a method is its signature. Sans-IO.

An :class:`Endpoint` says everything the SDK needs to know about one endpoint: method, path
template, the quota endpoint name the limiter maps to buckets, whether it is idempotent
(what may be retried), its body limit, and how its answer becomes the method's result
(``parse``; :func:`data` structures a model out of the envelope). :meth:`Endpoint.call`
fills the path (each id encoded as exactly one segment), checks the per-call options and
builds the :class:`~coze_async.call.Call`. A typical unary method is then::

    async def retrieve(self, *, conversation_id: str, **options: Unpack[CallOptions]):
        return await self._send(RETRIEVE, options, params={"conversation_id": ...})
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import attrs

from ._validate import require_id
from .call import DEFAULT_MAX_BODY, Call, Envelope, Options, check_options
from .errors import InvalidArgumentError, ResponseValidationError
from .models.converter import structure
from .uploads import UploadFile

__all__ = [
    "Endpoint",
    "Listing",
    "data",
    "fill_path",
    "nothing",
    "page_items",
    "stamped",
    "streamed",
]

T = TypeVar("T")
M = TypeVar("M")

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill_path(template: str, ids: Mapping[str, object]) -> str:
    """The request path for ``template`` with each ``{name}`` replaced by its id, encoded.

    The one place that puts caller values into URL paths: each id is checked like any id
    (:func:`~coze_async._validate.require_id`) and percent-encoded as exactly one segment, so
    ``/``, ``?``, ``#`` and ``%2F`` stay data. ``.`` and ``..`` are refused, since URL
    libraries collapse those segments even when they arrive encoded (``DELETE
    /v1/conversations/..`` would become ``DELETE /v1/``).
    """
    names = _PLACEHOLDER.findall(template)
    if sorted(names) != sorted(ids):
        raise TypeError(f"path {template!r} takes ids {names}, got {sorted(ids)}")

    def segment(match: re.Match[str]) -> str:
        name = match.group(1)
        value = require_id(name, ids[name])
        if value in (".", ".."):
            raise InvalidArgumentError(
                f"{name} must be a real id, got {value!r} (a '.' or '..' path segment)"
            )
        return quote(value, safe="")

    return _PLACEHOLDER.sub(segment, template)


def stamped(obj: M, env: Envelope) -> M:
    """``obj`` with the call's ``logid`` and, where the model has it, ``quota_wait``."""
    changes: dict[str, Any] = {}
    fields = attrs.fields_dict(type(obj)) if attrs.has(type(obj)) else {}  # type: ignore[arg-type]
    if env.logid is not None and "logid" in fields:
        changes["logid"] = env.logid
    if env.quota_wait and "quota_wait" in fields:
        changes["quota_wait"] = env.quota_wait
    return attrs.evolve(obj, **changes) if changes else obj  # type: ignore[misc]


def data(model: type[M], at: str | None = "data") -> Callable[[Envelope], M]:
    """A ``parse`` that structures ``model`` from the envelope's ``at`` key (``None``: the
    whole body) and stamps it with the call's logid and quota wait."""
    where = "$" if at is None else f"$.{at}"

    def parse(env: Envelope) -> M:
        value = env.body if at is None else env.field(at)
        return stamped(structure(value, model, logid=env.logid, what=where), env)

    return parse


@attrs.frozen
class Listing(Generic[M]):
    """One page as :func:`page_items` parses it: the items, and ``has_more`` / ``total`` as
    the server sent them (``None`` when it did not)."""

    items: tuple[M, ...]
    has_more: bool | None = None
    total: int | None = None


def page_items(
    items: str, model: type[M], *, total: str | None = None
) -> Callable[[Envelope], Listing[M]]:
    """A ``parse`` for one page of a listing: the ``model`` items under ``data.<items>`` (each
    stamped), the page's ``has_more`` and, when ``total`` names it, the total count
    (``total``, ``total_count``... whichever key the endpoint uses)."""

    def parse(env: Envelope) -> Listing[M]:
        data = env.field("data")
        if not isinstance(data, dict):
            raise ResponseValidationError(
                f"expected an object with {items} under data",
                logid=env.logid,
                path="$.data",
                body=env.body,
            )
        raw = data.get(items) or []
        if not isinstance(raw, list):
            raise ResponseValidationError(
                f"expected a list under data.{items}",
                logid=env.logid,
                path=f"$.data.{items}",
                body=env.body,
            )
        found = tuple(
            stamped(structure(c, model, logid=env.logid, what=f"$.data.{items}[{i}]"), env)
            for i, c in enumerate(raw)
        )
        flag = data.get("has_more")
        more = (
            None if flag is None else structure(flag, bool, logid=env.logid, what="$.data.has_more")
        )
        count = None
        if total is not None and data.get(total) is not None:
            count = structure(data[total], int, logid=env.logid, what=f"$.data.{total}")
        return Listing(found, more, count)

    return parse


def streamed(env: Envelope) -> Envelope:
    """The ``parse`` of a stream endpoint: its answer is read by the stream, not parsed."""
    return env


def nothing(env: Envelope) -> None:
    """The ``parse`` of an endpoint whose answer carries nothing to return."""
    return None


@attrs.frozen
class Endpoint(Generic[T]):
    """One Coze endpoint, declared once (see the module docstring)."""

    method: str
    path: str
    quota: str
    parse: Callable[[Envelope], T]
    idempotent: bool = False
    max_body: int = DEFAULT_MAX_BODY

    def call(
        self,
        options: Mapping[str, Any] | Options,
        *,
        ids: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        upload: UploadFile | None = None,
    ) -> Call:
        """The :class:`Call` for this endpoint: path filled, options checked."""
        checked = check_options(options, method=self.quota)
        return Call(
            method=self.method,
            path=fill_path(self.path, ids or {}),
            endpoint=self.quota,
            params=params,
            json=json,
            idempotent=self.idempotent,
            max_body=self.max_body,
            upload=upload,
            # The checked options, field for field (Options and Call share their names).
            **attrs.asdict(checked, recurse=False),
        )
