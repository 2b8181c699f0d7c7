"""``coze.conversations.messages``: messages inside a conversation, and feedback on answers.

Wire facts: coze-api.md §3. The list is cursor-paged by message id: ``after_id`` continues
after a message in the listing's order, ``before_id`` goes back before one; each page
reports ``first_id``/``last_id``/``has_more``. Modify answers under ``message`` rather than
``data``; delete answers with the deleted message; feedback answers carry no data.

Retries: ``retrieve``, ``list``, ``update``, ``delete`` and the feedback calls are
idempotent (repeating them leaves the same state; a retried ``delete`` whose first attempt
went through answers 4005). ``create`` is not: a retry could add the message twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, Unpack

from .._validate import check_bool, check_str, kind
from ..call import CallOptions, Envelope, check_options
from ..endpoint import Endpoint, data, nothing
from ..errors import InvalidArgumentError, ResponseValidationError
from ..models.chat import ContentItem, ContentType, Message, _check_meta_data, encode_object_string
from ..models.conversation import FeedbackType
from ..models.converter import structure
from ..pagination import AsyncPager, Page
from ._base import Resource, require_id

__all__ = ["MessagesResource"]

T = TypeVar("T")

_ORDERS = ("desc", "asc")
_ROLES = ("user", "assistant")
_MAX_REASONS = 10
_MAX_REASON_LEN = 30
_MAX_COMMENT = 250

#: (before_id, after_id) of one message-list request.
_Cursor = tuple[str | None, str | None]


def _content(content: str | Sequence[ContentItem], content_type: str | None) -> tuple[str, str]:
    """``(content, content_type)`` for the wire; ContentItems become ``object_string``."""
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidArgumentError(
            f"content_type must be 'text' or 'object_string', got {kind(content_type)}"
        )
    if isinstance(content, str):
        if not content:
            raise InvalidArgumentError("content must not be empty")
        check_str("content", content)
        wire_type = content_type or ContentType.TEXT
        if wire_type not in (ContentType.TEXT, ContentType.OBJECT_STRING):
            raise InvalidArgumentError(
                f"content_type must be 'text' or 'object_string', got {content_type!r}"
            )
        if wire_type == ContentType.OBJECT_STRING:
            try:
                items = json.loads(content)
            except ValueError:
                items = None
            if (
                not isinstance(items, list)
                or not items
                or not all(isinstance(i, dict) for i in items)
            ):
                raise InvalidArgumentError(
                    "object_string content must be a JSON array of items; build it from "
                    "ContentItem objects instead"
                )
        return content, str(wire_type)
    if not isinstance(content, list | tuple):
        raise InvalidArgumentError(
            f"content must be a str or a list of ContentItem, got {kind(content)}"
        )
    if content_type not in (None, ContentType.OBJECT_STRING):
        raise InvalidArgumentError("a list of ContentItem is always sent as 'object_string'")
    return encode_object_string(list(content)), str(ContentType.OBJECT_STRING)


def _message_ids(conversation_id: str, message_id: str) -> dict[str, str]:
    return {
        "conversation_id": require_id("conversation_id", conversation_id),
        "message_id": require_id("message_id", message_id),
    }


def _optional(env: Envelope, key: str, cls: type[T]) -> T | None:
    value = env.field(key)
    return None if value is None else structure(value, cls, logid=env.logid, what=f"$.{key}")


def _message_page(env: Envelope) -> Page[Message]:
    """One page of the message list: the messages under ``data``, cursors beside them."""
    raw = env.field("data")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ResponseValidationError(
            "expected a list of messages under data",
            logid=env.logid,
            path="$.data",
            body=env.body,
        )
    items = tuple(
        Resource._stamped(structure(m, Message, logid=env.logid, what=f"$.data[{i}]"), env)
        for i, m in enumerate(raw)
    )
    # Cursors and the flag are typed too: a list or object here would become a bogus
    # cursor (or a truthy has_more) and page on garbage.
    first_id = _optional(env, "first_id", str)
    last_id = _optional(env, "last_id", str)
    has_more = _optional(env, "has_more", bool)
    return Page(
        items,
        bool(has_more),
        env.logid,
        first_id=first_id if first_id not in (None, "", "0") else None,
        last_id=last_id if last_id not in (None, "", "0") else None,
    )


def _reasons(reason_types: Sequence[str]) -> list[str]:
    if not isinstance(reason_types, list | tuple):
        raise InvalidArgumentError(
            f"reason_types must be a list of strings, got {kind(reason_types)}"
        )
    reasons = list(reason_types)
    if len(reasons) > _MAX_REASONS:
        raise InvalidArgumentError(f"reason_types: at most {_MAX_REASONS} labels")
    for index, reason in enumerate(reasons):
        if not isinstance(reason, str) or not 1 <= len(reason) <= _MAX_REASON_LEN:
            raise InvalidArgumentError(
                f"reason_types: each label must be 1-{_MAX_REASON_LEN} characters, got {reason!r}"
            )
        check_str(f"reason_types[{index}]", reason)
    return reasons


_message = data(Message)
_FEEDBACK = "/v1/conversations/{conversation_id}/messages/{message_id}/feedback"

CREATE = Endpoint("POST", "/v1/conversation/message/create", "messages.create", _message)
LIST = Endpoint(
    "POST", "/v1/conversation/message/list", "messages.list", _message_page, idempotent=True
)
RETRIEVE = Endpoint(
    "GET", "/v1/conversation/message/retrieve", "messages.retrieve", _message, idempotent=True
)
UPDATE = Endpoint(
    "POST",
    "/v1/conversation/message/modify",
    "messages.update",
    data(Message, at="message"),
    idempotent=True,
)
DELETE = Endpoint(
    "POST", "/v1/conversation/message/delete", "messages.delete", _message, idempotent=True
)
SET_FEEDBACK = Endpoint("POST", _FEEDBACK, "messages.set_feedback", nothing, idempotent=True)
DELETE_FEEDBACK = Endpoint(
    "DELETE", _FEEDBACK, "messages.delete_feedback", nothing, idempotent=True
)


class MessagesResource(Resource):
    """Create, list, retrieve, modify and delete messages; like/unlike answers."""

    async def create(
        self,
        *,
        conversation_id: str,
        content: str | Sequence[ContentItem],
        role: str = "user",
        content_type: str | None = None,
        meta_data: Mapping[str, str] | None = None,
        **options: Unpack[CallOptions],
    ) -> Message:
        """Add a message to a conversation (it joins the current section's context).

        ``content`` is text, or a list of :class:`~coze_async.ContentItem` (sent as
        ``object_string``, e.g. an uploaded file plus a question). Coze returns the message
        with an empty ``type``; it is not answered until a chat runs in the conversation.
        """
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidArgumentError(f"role must be 'user' or 'assistant', got {role!r}")
        text, kind = _content(content, content_type)
        body: dict[str, Any] = {"role": role, "content": text, "content_type": kind}
        if meta_data is not None:
            body["meta_data"] = _check_meta_data(meta_data, "meta_data")
        params = {"conversation_id": require_id("conversation_id", conversation_id)}
        return await self._send(CREATE, options, params=params, json=body)

    def list(
        self,
        *,
        conversation_id: str,
        order: str = "desc",
        chat_id: str | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        limit: int = 50,
        include_middle_message: bool | None = None,
        **options: Unpack[CallOptions],
    ) -> AsyncPager[Message]:
        """A conversation's messages, newest first (``order="asc"``: oldest first).

        Returns a lazy :class:`~coze_async.pagination.AsyncPager` fetching ``limit`` (1-50)
        messages per request. Without cursors it starts at the top of the listing and follows
        ``last_id`` (as ``after_id``) while ``has_more`` is true. ``after_id=`` starts after
        that message; ``before_id=`` alone lists what comes before that message, page by page
        towards the top of the listing (each page still in listing order); both together
        bound the listing on both sides. ``chat_id`` keeps one chat's messages. By default
        Coze lists questions and answers only; ``include_middle_message=True`` adds tool
        calls, verbose and follow-up messages.
        """
        params = {"conversation_id": require_id("conversation_id", conversation_id)}
        if not isinstance(order, str) or order not in _ORDERS:
            raise InvalidArgumentError(f"order must be 'desc' or 'asc', got {order!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
            raise InvalidArgumentError(f"limit must be an integer between 1 and 50, got {limit!r}")
        body: dict[str, Any] = {"order": order, "limit": limit}
        if chat_id is not None:
            body["chat_id"] = require_id("chat_id", chat_id)
        before = require_id("before_id", before_id) if before_id is not None else None
        after = require_id("after_id", after_id) if after_id is not None else None
        backwards = before is not None and after is None
        checked = check_options(options, method=LIST.quota)  # raises now, not mid-listing
        if include_middle_message is not None:
            body["include_middle_message"] = check_bool(
                "include_middle_message", include_middle_message
            )

        async def fetch(cursor: _Cursor) -> tuple[Page[Message], _Cursor | None]:
            page_before, page_after = cursor
            cursors = {"before_id": page_before, "after_id": page_after}
            json = {**body, **{k: v for k, v in cursors.items() if v is not None}}
            env = await self._transport.request(LIST.call(checked, params=params, json=json))
            page = LIST.parse(env)
            if backwards:
                following: _Cursor | None = (page.first_id, None) if page.first_id else None
            else:
                following = (page_before, page.last_id) if page.last_id else None
            return page, following

        what = f"messages of conversation {params['conversation_id']}"
        return AsyncPager(fetch, (before, after), what=what)

    async def retrieve(
        self, *, conversation_id: str, message_id: str, **options: Unpack[CallOptions]
    ) -> Message:
        """Get one message of a conversation."""
        params = _message_ids(conversation_id, message_id)
        return await self._send(RETRIEVE, options, params=params)

    async def update(
        self,
        *,
        conversation_id: str,
        message_id: str,
        content: str | Sequence[ContentItem] | None = None,
        content_type: str | None = None,
        meta_data: Mapping[str, str] | None = None,
        **options: Unpack[CallOptions],
    ) -> Message:
        """Modify a message's content and/or meta_data; returns the modified message.

        Coze puts the result under ``message`` instead of ``data``; this method reads it there.
        """
        if content is None and meta_data is None:
            raise InvalidArgumentError("give content= and/or meta_data= to update")
        body: dict[str, Any] = {}
        if content is not None:
            body["content"], body["content_type"] = _content(content, content_type)
        elif content_type is not None:
            raise InvalidArgumentError("content_type= needs content=")
        if meta_data is not None:
            body["meta_data"] = _check_meta_data(meta_data, "meta_data")
        params = _message_ids(conversation_id, message_id)
        return await self._send(UPDATE, options, params=params, json=body)

    async def delete(
        self, *, conversation_id: str, message_id: str, **options: Unpack[CallOptions]
    ) -> Message:
        """Delete a question or answer message; returns the deleted message.

        Deleting an answer also deletes the intermediate messages (tool calls, follow-ups...)
        of its chat.
        """
        params = _message_ids(conversation_id, message_id)
        return await self._send(DELETE, options, params=params)

    async def set_feedback(
        self,
        *,
        conversation_id: str,
        message_id: str,
        feedback_type: str,
        reason_types: Sequence[str] | None = None,
        comment: str | None = None,
        **options: Unpack[CallOptions],
    ) -> None:
        """Like or unlike a bot answer (``FeedbackType.LIKE`` / ``FeedbackType.UNLIKE``).

        ``reason_types``: up to 10 labels of up to 30 characters; ``comment``: up to 250
        characters. Setting feedback again replaces the previous one.
        """
        if feedback_type not in (FeedbackType.LIKE, FeedbackType.UNLIKE):
            raise InvalidArgumentError(
                f"feedback_type must be 'like' or 'unlike', got {feedback_type!r}"
            )
        body: dict[str, Any] = {"feedback_type": str(feedback_type)}
        if reason_types is not None:
            body["reason_types"] = _reasons(reason_types)
        if comment is not None:
            if not isinstance(comment, str) or len(comment) > _MAX_COMMENT:
                raise InvalidArgumentError(f"comment must be a string of at most {_MAX_COMMENT}")
            body["comment"] = check_str("comment", comment)
        ids = {"conversation_id": conversation_id, "message_id": message_id}
        await self._send(SET_FEEDBACK, options, ids=ids, json=body)

    async def delete_feedback(
        self, *, conversation_id: str, message_id: str, **options: Unpack[CallOptions]
    ) -> None:
        """Remove the feedback set on an answer."""
        ids = {"conversation_id": conversation_id, "message_id": message_id}
        await self._send(DELETE_FEEDBACK, options, ids=ids)
