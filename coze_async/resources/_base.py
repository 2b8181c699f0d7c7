"""Shared plumbing for resources: sending a declared endpoint, paging, argument checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import anyio

from .._validate import (
    check_number,
    require_id,
)
from ..call import CallOptions, check_options
from ..endpoint import Endpoint, Listing, stamped
from ..errors import InvalidArgumentError
from ..pagination import AsyncPager, Page
from ..requests import check_messages, check_str_map
from ..transport import Transport
from ..uploads import UploadFile

__all__ = [
    "Resource",
    "check_int",
    "check_messages",
    "check_str_map",
    "poll_deadline",
    "require_id",
]

T = TypeVar("T")


def poll_deadline(poll_interval: float, timeout: float | None) -> float | None:
    """Check a poll loop's arguments and return its deadline (``anyio.current_time()`` based)."""
    check_number("poll_interval", poll_interval, positive=True)
    if timeout is not None:
        check_number("timeout", timeout, positive=True)
    return None if timeout is None else anyio.current_time() + timeout


def check_int(name: str, value: int, low: int, high: int | None) -> None:
    """Check an integer argument within ``[low, high]`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value}")


def _more_pages(listing: Listing[Any], num: int, size: int) -> bool:
    """Whether a page-number listing goes on after page ``num``: ``has_more`` when the server
    sent it; else whether ``total`` counts items beyond this page; else whether the page came
    back full (the rules cozepy follows, so both SDKs read the same listing alike)."""
    if listing.has_more is not None:
        return listing.has_more
    if listing.total is not None:
        return listing.total > num * size
    return len(listing.items) >= size


class Resource:
    """Base of the resource classes: holds the transport and builds :class:`Call` objects."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def _send(
        self,
        endpoint: Endpoint[T],
        options: CallOptions,
        *,
        ids: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        upload: UploadFile | None = None,
    ) -> T:
        """Send ``endpoint``'s call and return its parsed answer."""
        call = endpoint.call(options, ids=ids, params=params, json=json, upload=upload)
        return endpoint.parse(await self._transport.request(call))

    _stamped = staticmethod(stamped)

    def _numbered_pages(
        self,
        endpoint: Endpoint[Listing[T]],
        options: CallOptions,
        params: Mapping[str, str],
        *,
        page: tuple[int, int],
        what: str,
    ) -> AsyncPager[T]:
        """A lazy pager over a page-number listing, from ``page = (page_num, page_size)``
        (``endpoint.parse``: see :func:`~coze_async.endpoint.page_items`). The options are
        checked now, so a bad one raises here rather than mid-listing."""
        checked = check_options(options, method=endpoint.quota)
        first, size = page

        async def fetch(num: int) -> tuple[Page[T], int | None]:
            query = {**params, "page_num": str(num), "page_size": str(size)}
            env = await self._transport.request(endpoint.call(checked, params=query))
            listing = endpoint.parse(env)
            more = _more_pages(listing, num, size)
            page = Page(listing.items, more, env.logid, page_num=num, total=listing.total)
            return page, num + 1

        return AsyncPager(fetch, first, what=what)
