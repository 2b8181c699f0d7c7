"""AsyncPager on its own (sans-IO): laziness, stop rules and the endless-loop guard."""

from __future__ import annotations

import pytest

from coze_async import AsyncPager, Page, ResponseValidationError
from coze_async.call import Envelope

pytestmark = pytest.mark.anyio


def _pager(
    pages: dict[int, Page[int]], nexts: dict[int, int | None], calls: list[int]
) -> AsyncPager[int]:
    async def fetch(cursor: int) -> tuple[Page[int], int | None]:
        calls.append(cursor)
        return pages[cursor], nexts[cursor]

    return AsyncPager(fetch, 1, what="numbers")


async def test_nothing_is_fetched_before_iteration_and_pages_come_one_at_a_time() -> None:
    calls: list[int] = []
    pager = _pager(
        {1: Page((1, 2), True), 2: Page((3, 4), True), 3: Page((5,), False)},
        {1: 2, 2: 3, 3: 4},
        calls,
    )
    assert calls == []
    pages = pager.pages()
    first = await pages.__anext__()
    assert first.items == (1, 2) and calls == [1]
    assert [p.items async for p in pages] == [(3, 4), (5,)]
    assert calls == [1, 2, 3]  # has_more=False on page 3: no request for page 4
    # A new iteration starts over with fresh requests.
    assert [n async for n in pager] == [1, 2, 3, 4, 5]
    assert calls == [1, 2, 3, 1, 2, 3]


async def test_an_empty_page_ends_the_listing_even_if_has_more_says_otherwise() -> None:
    calls: list[int] = []
    pager = _pager({1: Page((1,), True), 2: Page((), True)}, {1: 2, 2: 3}, calls)
    assert [n async for n in pager] == [1]
    assert calls == [1, 2]


async def test_a_repeated_cursor_raises_instead_of_looping_forever() -> None:
    calls: list[int] = []
    pager = _pager({1: Page((1,), True), 2: Page((2,), True)}, {1: 2, 2: 1}, calls)
    seen = []
    with pytest.raises(ResponseValidationError, match="already fetched"):
        async for n in pager:
            seen.append(n)
    assert seen == [1, 2]
    assert calls == [1, 2]


async def test_no_next_cursor_ends_the_listing() -> None:
    calls: list[int] = []
    pager = _pager({1: Page((1,), True)}, {1: None}, calls)
    assert [n async for n in pager] == [1]
    assert len(Page((1, 2), False)) == 2


# ---------------------------------------------------------------- page-number stop rules


def _listing_env(data: dict[str, object]) -> Envelope:
    return Envelope(body={"code": 0, "msg": "", "data": data}, logid="L", http_status=200)


def test_page_items_keeps_has_more_and_total_as_sent() -> None:
    from coze_async.endpoint import page_items
    from coze_async.models.conversation import Conversation

    parse = page_items("items", Conversation, total="total_count")
    listing = parse(_listing_env({"items": [{"id": "1"}], "total_count": "7"}))
    assert [c.id for c in listing.items] == ["1"]
    assert (listing.has_more, listing.total) == (None, 7)
    listing = parse(_listing_env({"items": [], "has_more": False}))
    assert (listing.has_more, listing.total) == (False, None)


@pytest.mark.parametrize(
    ("has_more", "total", "count", "num", "expected"),
    [
        (True, 3, 1, 5, True),  # has_more wins over a total that says otherwise
        (False, 100, 10, 1, False),
        (None, 25, 10, 2, True),  # 25 > 2 x 10: a third page exists
        (None, 20, 10, 2, False),
        (None, None, 10, 1, True),  # neither: a full page means maybe more
        (None, None, 9, 1, False),  # a short page is the last
    ],
)
def test_a_numbered_listing_goes_on_as_cozepy_decides(
    has_more: bool | None, total: int | None, count: int, num: int, expected: bool
) -> None:
    from coze_async.endpoint import Listing
    from coze_async.resources._base import _more_pages

    listing = Listing(tuple(range(count)), has_more, total)
    assert _more_pages(listing, num, 10) is expected
