"""Lazy async pagination: iterate items, or pages, of a listing that Coze serves page by page.

Two paging styles exist (coze-api.md §3): page numbers (``page_num``/``page_size`` with a
``has_more`` flag: conversations) and id cursors (``after_id``/``before_id`` answered with
``first_id``/``last_id``/``has_more``: messages). A resource supplies a *fetch* function that
gets one page for a cursor and says which cursor comes next; :class:`AsyncPager` does the
rest, the same way for both styles:

* nothing is sent until iteration starts, and each page is fetched only when needed;
* iteration stops when a page says ``has_more`` is false, when a page comes back empty, or
  when there is no next cursor;
* a server that hands back a cursor already used would make a naive loop run forever; the
  pager raises :class:`~coze_async.errors.ResponseValidationError` instead.

Every ``async for`` (over the pager or over :meth:`AsyncPager.pages`) starts again from the
first page with fresh requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import attrs

from .errors import ResponseValidationError

__all__ = ["AsyncPager", "Page"]

T = TypeVar("T")
C = TypeVar("C", bound=Hashable)


@attrs.frozen
class Page(Generic[T]):
    """One page of a listing.

    ``items`` in the order the server listed them; ``has_more`` as the server said it;
    ``logid`` of the request that fetched the page. Page-number listings set ``page_num``;
    cursor listings set ``first_id``/``last_id`` (the ids of the first and last item, which
    you can store to resume later with ``before_id=``/``after_id=``).
    """

    items: tuple[T, ...]
    has_more: bool
    logid: str | None = attrs.field(default=None, eq=False, repr=False)
    page_num: int | None = None
    first_id: str | None = None
    last_id: str | None = None
    #: How many items the whole listing holds, where the endpoint says (``total`` or
    #: ``total_count`` on Coze's page-number listings); ``None`` otherwise.
    total: int | None = None

    def __len__(self) -> int:
        return len(self.items)


class AsyncPager(Generic[T]):
    """An async iterable over a listing's items, fetching pages lazily.

    ``async for item in pager`` yields items across pages; ``async for page in
    pager.pages()`` yields :class:`Page` objects (items plus ``has_more`` and ``logid``).
    Built by resource methods such as ``coze.conversations.list(...)``; the method itself sends
    nothing, so arguments are checked at call time and requests go out during iteration.
    """

    def __init__(
        self,
        fetch: Callable[[C], Awaitable[tuple[Page[T], C | None]]],
        first: C,
        *,
        what: str = "listing",
    ) -> None:
        self._fetch: Callable[[Any], Awaitable[tuple[Page[T], Any]]] = fetch
        self._first: Hashable = first
        self._what = what

    def __repr__(self) -> str:
        return f"<AsyncPager {self._what}>"

    def pages(self) -> AsyncIterator[Page[T]]:
        """Iterate page by page (each fetched when the previous one has been consumed)."""
        return _PageIterator(self._fetch, self._first, self._what)

    def __aiter__(self) -> AsyncIterator[T]:
        return _ItemIterator(self.pages())


class _PageIterator(AsyncIterator[Page[T]]):
    def __init__(
        self,
        fetch: Callable[[Any], Awaitable[tuple[Page[T], Any]]],
        first: Hashable,
        what: str,
    ) -> None:
        self._fetch = fetch
        self._cursor: Hashable | None = first
        self._seen: set[Hashable] = set()
        self._what = what
        self._loop_error: ResponseValidationError | None = None

    async def __anext__(self) -> Page[T]:
        if self._loop_error is not None:
            error, self._loop_error = self._loop_error, None
            raise error
        cursor = self._cursor
        if cursor is None:
            raise StopAsyncIteration
        self._cursor = None  # a failed fetch ends the iteration too
        self._seen.add(cursor)
        page, following = await self._fetch(cursor)
        if page.has_more and page.items and following is not None:
            if following in self._seen:
                # Hand out this page (nothing received is lost), then refuse to go round again.
                self._loop_error = ResponseValidationError(
                    f"{self._what}: the server pointed back to a page already fetched "
                    f"(cursor {following!r}); stopping instead of looping forever",
                    logid=page.logid,
                )
            else:
                self._cursor = following
        return page


class _ItemIterator(AsyncIterator[T]):
    def __init__(self, pages: AsyncIterator[Page[T]]) -> None:
        self._pages = pages
        self._items: tuple[T, ...] = ()
        self._index = 0

    async def __anext__(self) -> T:
        while self._index >= len(self._items):
            page = await self._pages.__anext__()
            self._items, self._index = page.items, 0
        item = self._items[self._index]
        self._index += 1
        return item
