"""Shared plumbing for resources: sending a declared endpoint, paging, argument checks."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio

from .._validate import (
    check_number,
    check_str,
    kind,
    require_id,
)
from ..call import CallOptions, check_options
from ..endpoint import Endpoint, stamped
from ..errors import InvalidArgumentError
from ..models.chat import Message, _check_meta_data
from ..pagination import AsyncPager, Page
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


def check_str_map(name: str, value: Mapping[str, str] | None) -> dict[str, str] | None:
    """Check a ``map<string,string>`` argument (keys and values must be str) and copy it."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(f"{name} must be a mapping of str to str, got {kind(value)}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidArgumentError(f"{name}[{k!r}]: keys and values must be strings")
        check_str(f"{name} key {k!r}", k)
        check_str(f"{name}[{k!r}]", v)
    return dict(value)


def poll_deadline(poll_interval: float, timeout: float | None) -> float | None:
    """Check a poll loop's arguments and return its deadline (``anyio.current_time()`` based)."""
    check_number("poll_interval", poll_interval, positive=True)
    if timeout is not None:
        check_number("timeout", timeout, positive=True)
    return None if timeout is None else anyio.current_time() + timeout


def check_messages(
    messages: Sequence[Message] | None,
    *,
    limit: int = 100,
    text_only: bool = False,
    query_last: bool = False,
) -> list[dict[str, Any]]:
    """Check a ``messages=`` argument and return its wire form (``additional_messages``).

    Chats take up to 100 messages, text or multimodal (a files-only message must sit next to a
    plain-text one, else Coze answers 4000); chatflows take up to 50 text messages ending with
    the user's query (``text_only``, ``query_last``). Errors name the offending index.
    """
    if messages is None:
        messages = []
    if not isinstance(messages, list | tuple):
        raise InvalidArgumentError(
            f"messages must be a list of Message, e.g. [Message.user('hi')], got {kind(messages)}"
        )
    items = list(messages)
    if query_last and not items:
        raise InvalidArgumentError("messages must hold at least the user's query")
    if len(items) > limit:
        raise InvalidArgumentError(f"messages: at most {limit} messages allowed, got {len(items)}")
    for index, m in enumerate(items):
        if not isinstance(m, Message):
            raise InvalidArgumentError(
                f"messages[{index}] must be a Message (use Message.user(...)), "
                f"got {type(m).__name__}"
            )
        if not isinstance(m.role, str) or m.role not in ("user", "assistant"):
            raise InvalidArgumentError(f"messages[{index}].role must be 'user' or 'assistant'")
        check_str(f"messages[{index}].content", m.content)
        check_str(f"messages[{index}].content_type", m.content_type)
        check_str(f"messages[{index}].type", m.type)
        if m.meta_data is not None:
            _check_meta_data(m.meta_data, f"messages[{index}].meta_data")
        if m.type == "question" and m.role != "user":
            raise InvalidArgumentError(f"messages[{index}]: type 'question' needs role 'user'")
        if m.content_type not in ("text", "object_string"):
            raise InvalidArgumentError(
                f"messages[{index}].content_type must be 'text' or 'object_string'"
            )
        if text_only and m.content_type != "text":
            raise InvalidArgumentError(f"messages[{index}]: chatflows take text messages only")
        if not m.content:
            raise InvalidArgumentError(f"messages[{index}].content must not be empty")
        if m.is_object_string:
            try:
                parsed = json.loads(m.content)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list) or not all(isinstance(i, dict) for i in parsed):
                raise InvalidArgumentError(
                    f"messages[{index}].content: object_string content must be a JSON array of "
                    "items; build it with Message.user([ContentItem...])"
                )
    if not text_only:
        for index, m in enumerate(items):
            if m.is_object_string and not any(i.get("type") == "text" for i in m.content_items()):
                neighbours = items[max(0, index - 1) : index] + items[index + 1 : index + 2]
                if not any(n.content_type == "text" for n in neighbours):
                    raise InvalidArgumentError(
                        f"messages[{index}]: a message with only files/images must be next to "
                        "a plain-text message"
                    )
    if query_last and items[-1].role != "user":
        raise InvalidArgumentError("messages: the last message must be the user's query")
    return [m.to_request() for m in items]


def check_int(name: str, value: int, low: int, high: int | None) -> None:
    """Check an integer argument within ``[low, high]`` (``high=None``: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value}")


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
        endpoint: Endpoint[tuple[tuple[T, ...], bool]],
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
            found, more = endpoint.parse(env)
            return Page(found, more, env.logid, page_num=num), num + 1

        return AsyncPager(fetch, first, what=what)
