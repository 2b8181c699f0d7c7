"""``coze.chat``: the v3 chat API (coze-api.md §2).

One :class:`~coze_async.endpoint.Endpoint` per operation; ``create``, ``stream`` and
``create_and_poll`` send one :class:`~coze_async.requests.ChatRequest`, built once per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import anyio

from .._validate import check_str, kind
from ..call import CallOptions, Envelope
from ..endpoint import Endpoint, data, streamed
from ..errors import (
    APIError,
    ChatFailedError,
    ChatPollTimeoutError,
    InvalidArgumentError,
    ResponseValidationError,
)
from ..models.chat import Chat, ChatPoll, ChatStatus, Message, ToolOutput
from ..models.converter import structure
from ..requests import ChatCreateParams, ChatRequest, split
from ..streaming import ChatStream
from ._base import Resource, poll_deadline, require_id

__all__ = ["ChatMessages", "ChatResource"]


class ChatMessages(list[Message]):
    """The messages of a chat (a ``list``), with the call's ``logid``."""

    logid: str | None = None


def _messages(env: Envelope) -> ChatMessages:
    items = env.field("data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ResponseValidationError(
            "expected a list of messages under data", logid=env.logid, body=env.body
        )
    out = ChatMessages(
        structure(item, Message, logid=env.logid, what=f"$.data[{i}]")
        for i, item in enumerate(items)
    )
    out.logid = env.logid
    return out


_chat = data(Chat)
CREATE = Endpoint("POST", "/v3/chat", "chat.create", _chat)
STREAM = Endpoint("POST", "/v3/chat", "chat.stream", streamed)
RETRIEVE = Endpoint("GET", "/v3/chat/retrieve", "chat.retrieve", _chat, idempotent=True)
MESSAGES = Endpoint("GET", "/v3/chat/message/list", "chat.messages", _messages, idempotent=True)
CANCEL = Endpoint("POST", "/v3/chat/cancel", "chat.cancel", _chat, idempotent=True)
SUBMIT_TOOL_OUTPUTS = Endpoint(
    "POST", "/v3/chat/submit_tool_outputs", "chat.submit_tool_outputs", _chat
)
SUBMIT_TOOL_OUTPUTS_STREAM = Endpoint(
    "POST", "/v3/chat/submit_tool_outputs", "chat.submit_tool_outputs_stream", streamed
)

_ACTIVE = (ChatStatus.CREATED, ChatStatus.IN_PROGRESS)


def _chat_ids(conversation_id: str, chat_id: str) -> dict[str, str]:
    return {
        "conversation_id": require_id("conversation_id", conversation_id),
        "chat_id": require_id("chat_id", chat_id),
    }


def _tool_outputs(tool_outputs: Sequence[ToolOutput], stream: bool) -> dict[str, Any]:
    if not isinstance(tool_outputs, list | tuple):
        raise InvalidArgumentError(
            f"tool_outputs must be a list of ToolOutput, got {kind(tool_outputs)}"
        )
    items = list(tool_outputs)
    if not items:
        raise InvalidArgumentError("tool_outputs must not be empty")
    out = []
    for index, t in enumerate(items):
        if not isinstance(t, ToolOutput):
            raise InvalidArgumentError(
                f"tool_outputs[{index}] must be a ToolOutput, got {type(t).__name__}"
            )
        out.append(
            {
                "tool_call_id": require_id(f"tool_outputs[{index}].tool_call_id", t.tool_call_id),
                "output": check_str(f"tool_outputs[{index}].output", t.output),
            }
        )
    return {"tool_outputs": out, "stream": stream}


class ChatResource(Resource):
    """The chat API: create, stream, retrieve, list messages, cancel, tool outputs.

    Every method takes the per-call options (:class:`~coze_async.call.CallOptions`:
    ``extra_headers``, ``extra_query``, ``extra_body``, ``timeouts``, ``retry``).
    """

    async def create(self, **params: Unpack[ChatCreateParams]) -> Chat:
        """Start a chat without streaming; returns the chat (usually ``in_progress``).

        Takes the chat's fields (:class:`~coze_async.requests.ChatParams`) and the per-call
        options. Poll it with :meth:`retrieve` or use :meth:`create_and_poll`. Not retried
        after it may have reached the server: a retried chat would be a second, billed chat.
        """
        request, options = split(params, ChatRequest, method="create")
        return await self._create(request, options)

    async def _create(self, request: ChatRequest, options: CallOptions) -> Chat:
        body = request.to_body(stream=False)
        return await self._send(CREATE, options, params=request.query(), json=body)

    def stream(self, **params: Unpack[ChatCreateParams]) -> ChatStream:
        """Start a streaming chat. Nothing is sent until ``async with`` / ``async for``.

        Takes the chat's fields (:class:`~coze_async.requests.ChatParams`) and the per-call
        options. Arguments are checked now, so a bad argument raises here, before anything
        is sent. ``stream.cancel()`` cancels the chat at Coze.
        """
        request, options = split(params, ChatRequest, method="stream")
        call = STREAM.call(options, params=request.query(), json=request.to_body(stream=True))
        return ChatStream(self._transport, call, canceller=self._cancel_for_stream)

    async def _cancel_for_stream(self, conversation_id: str, chat_id: str) -> Chat:
        return await self.cancel(conversation_id=conversation_id, chat_id=chat_id)

    async def retrieve(
        self, *, conversation_id: str, chat_id: str, **options: Unpack[CallOptions]
    ) -> Chat:
        """Get a chat's current state (``GET /v3/chat/retrieve``)."""
        return await self._send(RETRIEVE, options, params=_chat_ids(conversation_id, chat_id))

    async def messages(
        self, *, conversation_id: str, chat_id: str, **options: Unpack[CallOptions]
    ) -> ChatMessages:
        """List a chat's messages (all but the user's query): answers, tool calls, follow-ups."""
        return await self._send(MESSAGES, options, params=_chat_ids(conversation_id, chat_id))

    async def cancel(
        self, *, conversation_id: str, chat_id: str, **options: Unpack[CallOptions]
    ) -> Chat:
        """Cancel a ``created``/``in_progress`` chat (4104 -> ``BadRequestError`` otherwise)."""
        return await self._send(CANCEL, options, json=_chat_ids(conversation_id, chat_id))

    async def submit_tool_outputs(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        tool_outputs: Sequence[ToolOutput],
        **options: Unpack[CallOptions],
    ) -> Chat:
        """Answer a ``requires_action`` chat's tool calls without streaming."""
        ids = _chat_ids(conversation_id, chat_id)
        body = _tool_outputs(tool_outputs, stream=False)
        return await self._send(SUBMIT_TOOL_OUTPUTS, options, params=ids, json=body)

    def submit_tool_outputs_stream(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        tool_outputs: Sequence[ToolOutput],
        **options: Unpack[CallOptions],
    ) -> ChatStream:
        """Answer a ``requires_action`` chat's tool calls and stream the rest of the chat."""
        ids = _chat_ids(conversation_id, chat_id)
        body = _tool_outputs(tool_outputs, stream=True)
        call = SUBMIT_TOOL_OUTPUTS_STREAM.call(options, params=ids, json=body)
        return ChatStream(self._transport, call, canceller=self._cancel_for_stream)

    async def create_and_poll(
        self,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = 300.0,
        **params: Unpack[ChatCreateParams],
    ) -> ChatPoll:
        """Create a chat, poll it until it leaves ``created``/``in_progress``, list its messages.

        Takes the chat's fields (:class:`~coze_async.requests.ChatParams`) and the per-call
        options, which every call it makes (create, retrieve, cancel, messages) carries.

        * completed / requires_action -> :class:`ChatPoll` with the chat and its messages;
        * failed -> :class:`ChatFailedError` carrying ``last_error`` (e.g. 4028, quota used up);
        * past ``timeout`` seconds -> the chat is cancelled and :class:`ChatPollTimeoutError`
          is raised with its last state.
        """
        request, options = split(params, ChatRequest, method="create_and_poll")
        deadline = poll_deadline(poll_interval, timeout)
        chat = await self._create(request, options)
        while chat.status in _ACTIVE:
            now = anyio.current_time()
            if deadline is not None and now >= deadline:
                chat = await self._cancel_on_deadline(chat, options)
                if chat.status in (*_ACTIVE, "canceled"):
                    raise ChatPollTimeoutError(
                        f"chat {chat.id} did not finish within {timeout} s; it was cancelled",
                        chat=chat,
                        logid=chat.logid,
                    )
                break
            wait = poll_interval if deadline is None else min(poll_interval, deadline - now)
            await anyio.sleep(wait)
            chat = await self.retrieve(
                conversation_id=chat.conversation_id, chat_id=chat.id, **options
            )
        if chat.status == ChatStatus.FAILED:
            raise ChatFailedError(chat, logid=chat.logid)
        found = await self.messages(
            conversation_id=chat.conversation_id, chat_id=chat.id, **options
        )
        return ChatPoll(chat=chat, messages=tuple(found))

    async def _cancel_on_deadline(self, chat: Chat, options: CallOptions) -> Chat:
        ids = {"conversation_id": chat.conversation_id, "chat_id": chat.id}
        try:
            return await self.cancel(**ids, **options)
        except APIError as exc:
            if exc.code != 4104:
                raise
            # It finished between the last poll and the cancel: use its real final state.
            return await self.retrieve(**ids, **options)
