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
from typing import Any, Unpack

from .._validate import check_str
from ..call import CallOptions
from ..endpoint import Endpoint, data, nothing, page_items
from ..errors import InvalidArgumentError
from ..models.chat import Message, _check_meta_data
from ..models.conversation import Conversation, Section
from ..pagination import AsyncPager
from ..transport import Transport
from ._base import Resource, check_int, check_messages, require_id
from .messages import MessagesResource

__all__ = ["ConversationsResource"]

_SORT_ORDERS = ("ASC", "DESC")
_MAX_NAME = 100
_MAX_PAGE_SIZE = 50

_conversation = data(Conversation)
CREATE = Endpoint("POST", "/v1/conversation/create", "conversations.create", _conversation)
RETRIEVE = Endpoint(
    "GET", "/v1/conversation/retrieve", "conversations.retrieve", _conversation, idempotent=True
)
LIST = Endpoint(
    "GET",
    "/v1/conversations",
    "conversations.list",
    page_items("conversations", Conversation),
    idempotent=True,
)
UPDATE = Endpoint(
    "PUT",
    "/v1/conversations/{conversation_id}",
    "conversations.update",
    _conversation,
    idempotent=True,
)
DELETE = Endpoint(
    "DELETE",
    "/v1/conversations/{conversation_id}",
    "conversations.delete",
    nothing,
    idempotent=True,
)
CLEAR = Endpoint(
    "POST", "/v1/conversations/{conversation_id}/clear", "conversations.clear", data(Section)
)


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

    async def create(
        self,
        *,
        bot_id: str | None = None,
        name: str | None = None,
        messages: Sequence[Message] | None = None,
        meta_data: Mapping[str, str] | None = None,
        connector_id: str | None = None,
        **options: Unpack[CallOptions],
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
        return await self._send(CREATE, options, json=body)

    async def retrieve(
        self, *, conversation_id: str, **options: Unpack[CallOptions]
    ) -> Conversation:
        """Get one conversation (``GET /v1/conversation/retrieve``)."""
        params = {"conversation_id": require_id("conversation_id", conversation_id)}
        return await self._send(RETRIEVE, options, params=params)

    def list(
        self,
        *,
        bot_id: str,
        sort_order: str = "DESC",
        connector_id: str | None = None,
        page_size: int = 50,
        page_num: int = 1,
        **options: Unpack[CallOptions],
    ) -> AsyncPager[Conversation]:
        """The caller's conversations with ``bot_id``, newest first (``sort_order="ASC"``: oldest).

        Returns a lazy :class:`~coze_async.pagination.AsyncPager`: ``async for c in ...``
        fetches ``page_size`` (1-50) conversations per request, starting at ``page_num``, and
        stops when Coze says there are no more; ``.pages()`` iterates page by page. Nothing is
        sent before iteration starts; bad arguments raise here.
        """
        params = {"bot_id": require_id("bot_id", bot_id), "sort_order": sort_order}
        if not isinstance(sort_order, str) or sort_order not in _SORT_ORDERS:
            raise InvalidArgumentError(f"sort_order must be 'ASC' or 'DESC', got {sort_order!r}")
        check_int("page_size", page_size, 1, _MAX_PAGE_SIZE)
        check_int("page_num", page_num, 1, None)
        if connector_id is not None:
            params["connector_id"] = require_id("connector_id", connector_id)
        what = f"conversations of bot {params['bot_id']}"
        return self._numbered_pages(LIST, options, params, page=(page_num, page_size), what=what)

    async def update(
        self, *, conversation_id: str, name: str, **options: Unpack[CallOptions]
    ) -> Conversation:
        """Rename a conversation (``PUT /v1/conversations/{id}``); returns it updated."""
        return await self._send(
            UPDATE,
            options,
            ids={"conversation_id": conversation_id},
            json={"name": _check_name(name)},
        )

    async def delete(self, *, conversation_id: str, **options: Unpack[CallOptions]) -> None:
        """Delete a conversation and all its messages, permanently (creator only)."""
        await self._send(DELETE, options, ids={"conversation_id": conversation_id})

    async def clear(self, *, conversation_id: str, **options: Unpack[CallOptions]) -> Section:
        """Clear the conversation's context: start a new section and return it.

        Earlier messages stay listable but the bot no longer sees them; the next chat in this
        conversation runs in the new section (``chat.section_id == section.id``).
        """
        return await self._send(CLEAR, options, ids={"conversation_id": conversation_id})
