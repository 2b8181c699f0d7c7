"""``coze.conversations``: create, retrieve, list, rename, delete and clear conversations.

Wire facts: coze-api.md §3. Conversations are only visible to their creator (the token's
owner); another user's conversation id answers 4002 like an unknown one.

Retries: ``retrieve`` and ``list`` are idempotent. ``update`` (a PUT of the name) and
``delete`` are idempotent too: repeating them leaves the same state, so timeouts and gateway
errors are retried. The one visible consequence: if a ``delete`` reached Coze but its answer
was lost, the retry answers 4002 (:class:`~coze_async.errors.BadRequestError`) although the
conversation is gone. ``create`` and ``clear`` are not idempotent (a retry would create a
second conversation or section), so they retry only what never reached the server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._validate import check_str
from ..config import Timeouts
from ..errors import InvalidArgumentError, ResponseValidationError
from ..models.chat import Message, _check_meta_data
from ..models.conversation import Conversation, Section
from ..models.converter import structure
from ..pagination import AsyncPager, Page
from ..transport import Envelope, Transport
from ._base import Options, Resource, check_messages, path, require_id
from .messages import MessagesResource

__all__ = ["ConversationsResource"]

_SORT_ORDERS = ("ASC", "DESC")
_MAX_NAME = 100
_MAX_PAGE_SIZE = 50


def _check_name(name: str) -> str:
    check_str("name", name)
    if len(name) > _MAX_NAME:
        raise InvalidArgumentError(f"name: at most {_MAX_NAME} characters, got {len(name)}")
    return name


class ConversationsResource(Resource):
    """The conversation API; ``.messages`` is the message API (:class:`MessagesResource`)."""

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.messages = MessagesResource(transport)
        """Messages in conversations (:class:`~coze_async.resources.messages.MessagesResource`)."""

    def _conversation(self, env: Envelope) -> Conversation:
        conv = structure(env.field("data"), Conversation, logid=env.logid, what="$.data")
        return self._stamped(conv, env)

    async def create(
        self,
        *,
        bot_id: str | None = None,
        name: str | None = None,
        messages: Sequence[Message] | None = None,
        meta_data: Mapping[str, str] | None = None,
        connector_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Conversation:
        """Create a conversation, optionally seeded with ``messages``.

        Give ``bot_id`` to be able to :meth:`list` it later (Coze lists conversations per bot).
        ``connector_id`` is the channel: ``"1024"`` (API, Coze's default) or ``"999"`` (Chat
        SDK). Not retried once it may have reached Coze: a retry would create a second one.
        """
        body: dict[str, Any] = {}
        if bot_id is not None:
            body["bot_id"] = require_id("bot_id", bot_id)
        if name is not None:
            body["name"] = _check_name(name)
        if messages is not None:
            body["messages"] = check_messages(messages)
        if meta_data is not None:
            body["meta_data"] = _check_meta_data(meta_data, "meta_data")
        if connector_id is not None:
            body["connector_id"] = require_id("connector_id", connector_id)
        env = await self._transport.request(
            self._call(
                "POST",
                "/v1/conversation/create",
                endpoint="conversations.create",
                json=body,
                idempotent=False,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeouts=timeouts,
            )
        )
        return self._conversation(env)

    async def retrieve(
        self,
        *,
        conversation_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Conversation:
        """Get one conversation (``GET /v1/conversation/retrieve``)."""
        env = await self._transport.request(
            self._call(
                "GET",
                "/v1/conversation/retrieve",
                endpoint="conversations.retrieve",
                params={"conversation_id": require_id("conversation_id", conversation_id)},
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
            )
        )
        return self._conversation(env)

    def list(
        self,
        *,
        bot_id: str,
        sort_order: str = "DESC",
        connector_id: str | None = None,
        page_size: int = 50,
        page_num: int = 1,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> AsyncPager[Conversation]:
        """The caller's conversations with ``bot_id``, newest first (``sort_order="ASC"``: oldest).

        Returns a lazy :class:`~coze_async.pagination.AsyncPager`: ``async for c in ...``
        fetches ``page_size`` (1-50) conversations per request, starting at ``page_num``, and
        stops when Coze says there are no more; ``.pages()`` iterates page by page. Nothing is
        sent before iteration starts; bad arguments raise here.
        """
        bot = require_id("bot_id", bot_id)
        if not isinstance(sort_order, str) or sort_order not in _SORT_ORDERS:
            raise InvalidArgumentError(f"sort_order must be 'ASC' or 'DESC', got {sort_order!r}")
        _check_int("page_size", page_size, 1, _MAX_PAGE_SIZE)
        _check_int("page_num", page_num, 1, None)
        connector = require_id("connector_id", connector_id) if connector_id is not None else None
        Options.check(extra_headers, extra_query, None, timeouts)  # raises now, not mid-listing

        async def fetch(num: int) -> tuple[Page[Conversation], int | None]:
            params = {
                "bot_id": bot,
                "page_num": str(num),
                "page_size": str(page_size),
                "sort_order": sort_order,
            }
            if connector is not None:
                params["connector_id"] = connector
            env = await self._transport.request(
                self._call(
                    "GET",
                    "/v1/conversations",
                    endpoint="conversations.list",
                    params=params,
                    idempotent=True,
                    extra_headers=extra_headers,
                    extra_query=extra_query,
                    extra_body=None,
                    timeouts=timeouts,
                )
            )
            data = env.field("data")
            if not isinstance(data, dict):
                raise ResponseValidationError(
                    "expected an object with has_more and conversations under data",
                    logid=env.logid,
                    path="$.data",
                    body=env.body,
                )
            raw = data.get("conversations") or []
            if not isinstance(raw, list):
                raise ResponseValidationError(
                    "expected a list under data.conversations",
                    logid=env.logid,
                    path="$.data.conversations",
                    body=env.body,
                )
            items = tuple(
                self._stamped(
                    structure(c, Conversation, logid=env.logid, what=f"$.data.conversations[{i}]"),
                    env,
                )
                for i, c in enumerate(raw)
            )
            flag = data.get("has_more")
            has_more = (
                None
                if flag is None
                else structure(flag, bool, logid=env.logid, what="$.data.has_more")
            )
            page = Page(items, bool(has_more), env.logid, page_num=num)
            return page, num + 1

        return AsyncPager(fetch, page_num, what=f"conversations of bot {bot}")

    async def update(
        self,
        *,
        conversation_id: str,
        name: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Conversation:
        """Rename a conversation (``PUT /v1/conversations/{id}``); returns it updated."""
        env = await self._transport.request(
            self._call(
                "PUT",
                path("/v1/conversations/{conversation_id}", conversation_id=conversation_id),
                endpoint="conversations.update",
                json={"name": _check_name(name)},
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeouts=timeouts,
            )
        )
        return self._conversation(env)

    async def delete(
        self,
        *,
        conversation_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        """Delete a conversation and all its messages, permanently (creator only)."""
        await self._transport.request(
            self._call(
                "DELETE",
                path("/v1/conversations/{conversation_id}", conversation_id=conversation_id),
                endpoint="conversations.delete",
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
            )
        )

    async def clear(
        self,
        *,
        conversation_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Section:
        """Clear the conversation's context: start a new section and return it.

        Earlier messages stay listable but the bot no longer sees them; the next chat in this
        conversation runs in the new section (``chat.section_id == section.id``).
        """
        env = await self._transport.request(
            self._call(
                "POST",
                path("/v1/conversations/{conversation_id}/clear", conversation_id=conversation_id),
                endpoint="conversations.clear",
                idempotent=False,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeouts=timeouts,
            )
        )
        section = structure(env.field("data"), Section, logid=env.logid, what="$.data")
        return self._stamped(section, env)


def _check_int(name: str, value: int, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value}")
