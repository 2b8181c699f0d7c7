"""``coze.chat``: the v3 chat API (coze-api.md §2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from .._validate import check_bool, check_json_object, check_str, kind
from ..config import Timeouts
from ..errors import (
    APIError,
    ChatFailedError,
    ChatPollTimeoutError,
    InvalidArgumentError,
    ResponseValidationError,
)
from ..models.chat import Chat, ChatPoll, ChatStatus, Message, ToolOutput, _check_meta_data
from ..models.converter import structure
from ..streaming import ChatStream
from ..transport import Call, Envelope
from ._base import Resource, check_messages, check_str_map, poll_deadline, require_id

__all__ = ["ChatMessages", "ChatResource"]

_PUBLISH_STATUSES = ("published_online", "unpublished_draft")
_EXTRA_PARAM_KEYS = frozenset({"latitude", "longitude"})


class ChatMessages(list[Message]):
    """The messages of a chat (a ``list``), with the call's ``logid``."""

    logid: str | None = None


class ChatResource(Resource):
    """The chat API: create, stream, retrieve, list messages, cancel, tool outputs."""

    def _chat_body(
        self,
        *,
        bot_id: str,
        user_id: str,
        messages: Sequence[Message] | None,
        stream: bool,
        custom_variables: Mapping[str, str] | None,
        auto_save_history: bool,
        meta_data: Mapping[str, str] | None,
        extra_params: Mapping[str, str] | None,
        parameters: Mapping[str, Any] | None,
        shortcut_command: Mapping[str, Any] | None,
        enable_card: bool | None,
        publish_status: str | None,
        bot_version: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "bot_id": require_id("bot_id", bot_id),
            "user_id": require_id("user_id", user_id),
            "stream": stream,
            "auto_save_history": check_bool("auto_save_history", auto_save_history),
            "additional_messages": check_messages(messages),
        }
        if not stream and not auto_save_history:
            raise InvalidArgumentError(
                "auto_save_history=False needs stream=True (Coze answers 4007 otherwise)"
            )
        if custom_variables is not None:
            body["custom_variables"] = check_str_map("custom_variables", custom_variables)
        if meta_data is not None:
            body["meta_data"] = _check_meta_data(meta_data, "meta_data")
        if extra_params is not None:
            checked = check_str_map("extra_params", extra_params) or {}
            unknown = set(checked) - _EXTRA_PARAM_KEYS
            if unknown:
                raise InvalidArgumentError(
                    f"extra_params only accepts latitude and longitude, got {sorted(unknown)}"
                )
            body["extra_params"] = checked
        if parameters is not None:
            body["parameters"] = check_json_object("parameters", parameters)
        if shortcut_command is not None:
            command = check_json_object("shortcut_command", shortcut_command)
            if not command.get("command_id"):
                raise InvalidArgumentError("shortcut_command needs a command_id")
            body["shortcut_command"] = command
        if enable_card is not None:
            body["enable_card"] = check_bool("enable_card", enable_card)
        if publish_status is not None:
            if not isinstance(publish_status, str) or publish_status not in _PUBLISH_STATUSES:
                raise InvalidArgumentError(
                    f"publish_status must be one of {_PUBLISH_STATUSES}, got {publish_status!r}"
                )
            body["publish_status"] = publish_status
        if bot_version is not None:
            if publish_status == "unpublished_draft":
                raise InvalidArgumentError(
                    "bot_version cannot be combined with publish_status='unpublished_draft'"
                )
            body["bot_version"] = require_id("bot_version", bot_version)
        return body

    def _chat_call(
        self,
        *,
        stream: bool,
        conversation_id: str | None,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, str] | None,
        extra_body: Mapping[str, Any] | None,
        timeouts: Timeouts | None,
        **fields: Any,
    ) -> Call:
        # ``fields`` go to _chat_body, whose explicit parameters reject any unknown name.
        params = (
            {"conversation_id": require_id("conversation_id", conversation_id)}
            if conversation_id is not None
            else None
        )
        return self._call(
            "POST",
            "/v3/chat",
            endpoint="chat.stream" if stream else "chat.create",
            params=params,
            json=self._chat_body(stream=stream, **fields),
            idempotent=False,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )

    @staticmethod
    def _chat_ids(conversation_id: str, chat_id: str) -> dict[str, str]:
        return {
            "conversation_id": require_id("conversation_id", conversation_id),
            "chat_id": require_id("chat_id", chat_id),
        }

    def _chat_result(self, env: Envelope) -> Chat:
        chat = structure(env.field("data"), Chat, logid=env.logid, what="$.data")
        return self._stamped(chat, env)

    async def create(
        self,
        *,
        bot_id: str,
        user_id: str,
        messages: Sequence[Message] | None = None,
        conversation_id: str | None = None,
        custom_variables: Mapping[str, str] | None = None,
        auto_save_history: bool = True,
        meta_data: Mapping[str, str] | None = None,
        extra_params: Mapping[str, str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        shortcut_command: Mapping[str, Any] | None = None,
        enable_card: bool | None = None,
        publish_status: str | None = None,
        bot_version: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Chat:
        """Start a chat without streaming; returns the chat (usually ``in_progress``).

        Poll it with :meth:`retrieve` or use :meth:`create_and_poll`. Not retried after it may
        have reached the server: a retried chat would be a second, billed chat.
        """
        call = self._chat_call(
            stream=False,
            conversation_id=conversation_id,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
            bot_id=bot_id,
            user_id=user_id,
            messages=messages,
            custom_variables=custom_variables,
            auto_save_history=auto_save_history,
            meta_data=meta_data,
            extra_params=extra_params,
            parameters=parameters,
            shortcut_command=shortcut_command,
            enable_card=enable_card,
            publish_status=publish_status,
            bot_version=bot_version,
        )
        return self._chat_result(await self._transport.request(call))

    def stream(
        self,
        *,
        bot_id: str,
        user_id: str,
        messages: Sequence[Message] | None = None,
        conversation_id: str | None = None,
        custom_variables: Mapping[str, str] | None = None,
        auto_save_history: bool = True,
        meta_data: Mapping[str, str] | None = None,
        extra_params: Mapping[str, str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        shortcut_command: Mapping[str, Any] | None = None,
        enable_card: bool | None = None,
        publish_status: str | None = None,
        bot_version: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> ChatStream:
        """Start a streaming chat. Nothing is sent until ``async with`` / ``async for``.

        Arguments are checked now, so a bad argument raises here, before anything is sent.
        """
        call = self._chat_call(
            stream=True,
            conversation_id=conversation_id,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
            bot_id=bot_id,
            user_id=user_id,
            messages=messages,
            custom_variables=custom_variables,
            auto_save_history=auto_save_history,
            meta_data=meta_data,
            extra_params=extra_params,
            parameters=parameters,
            shortcut_command=shortcut_command,
            enable_card=enable_card,
            publish_status=publish_status,
            bot_version=bot_version,
        )
        return ChatStream(self._transport, call, canceller=self._cancel_for_stream)

    async def _cancel_for_stream(self, conversation_id: str, chat_id: str) -> Chat:
        return await self.cancel(conversation_id=conversation_id, chat_id=chat_id)

    async def retrieve(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Chat:
        """Get a chat's current state (``GET /v3/chat/retrieve``)."""
        env = await self._transport.request(
            self._call(
                "GET",
                "/v3/chat/retrieve",
                endpoint="chat.retrieve",
                params=self._chat_ids(conversation_id, chat_id),
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
            )
        )
        return self._chat_result(env)

    async def messages(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> ChatMessages:
        """List a chat's messages (all but the user's query): answers, tool calls, follow-ups."""
        env = await self._transport.request(
            self._call(
                "GET",
                "/v3/chat/message/list",
                endpoint="chat.messages",
                params=self._chat_ids(conversation_id, chat_id),
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
            )
        )
        data = env.field("data")
        if data is None:
            data = []
        if not isinstance(data, list):
            raise ResponseValidationError(
                "expected a list of messages under data", logid=env.logid, body=env.body
            )
        out = ChatMessages(
            structure(item, Message, logid=env.logid, what=f"$.data[{i}]")
            for i, item in enumerate(data)
        )
        out.logid = env.logid
        return out

    async def cancel(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Chat:
        """Cancel a ``created``/``in_progress`` chat (4104 -> ``BadRequestError`` otherwise)."""
        env = await self._transport.request(
            self._call(
                "POST",
                "/v3/chat/cancel",
                endpoint="chat.cancel",
                json=self._chat_ids(conversation_id, chat_id),
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeouts=timeouts,
            )
        )
        return self._chat_result(env)

    def _tool_outputs_call(
        self,
        stream: bool,
        conversation_id: str,
        chat_id: str,
        tool_outputs: Sequence[ToolOutput],
        *,
        extra_headers: Mapping[str, str] | None,
        extra_query: Mapping[str, str] | None,
        extra_body: Mapping[str, Any] | None,
        timeouts: Timeouts | None,
    ) -> Call:
        return self._call(
            "POST",
            "/v3/chat/submit_tool_outputs",
            endpoint="chat.submit_tool_outputs_stream" if stream else "chat.submit_tool_outputs",
            params=self._chat_ids(conversation_id, chat_id),
            json={"tool_outputs": self._tool_outputs(tool_outputs), "stream": stream},
            idempotent=False,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )

    @staticmethod
    def _tool_outputs(tool_outputs: Sequence[ToolOutput]) -> list[dict[str, str]]:
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
                    "tool_call_id": require_id(
                        f"tool_outputs[{index}].tool_call_id", t.tool_call_id
                    ),
                    "output": check_str(f"tool_outputs[{index}].output", t.output),
                }
            )
        return out

    async def submit_tool_outputs(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        tool_outputs: Sequence[ToolOutput],
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> Chat:
        """Answer a ``requires_action`` chat's tool calls without streaming."""
        call = self._tool_outputs_call(
            False,
            conversation_id,
            chat_id,
            tool_outputs,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return self._chat_result(await self._transport.request(call))

    def submit_tool_outputs_stream(
        self,
        *,
        conversation_id: str,
        chat_id: str,
        tool_outputs: Sequence[ToolOutput],
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> ChatStream:
        """Answer a ``requires_action`` chat's tool calls and stream the rest of the chat."""
        call = self._tool_outputs_call(
            True,
            conversation_id,
            chat_id,
            tool_outputs,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts,
        )
        return ChatStream(self._transport, call, canceller=self._cancel_for_stream)

    async def create_and_poll(
        self,
        *,
        bot_id: str,
        user_id: str,
        messages: Sequence[Message] | None = None,
        conversation_id: str | None = None,
        custom_variables: Mapping[str, str] | None = None,
        meta_data: Mapping[str, str] | None = None,
        extra_params: Mapping[str, str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        shortcut_command: Mapping[str, Any] | None = None,
        enable_card: bool | None = None,
        publish_status: str | None = None,
        bot_version: str | None = None,
        poll_interval: float = 1.0,
        timeout: float | None = 300.0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ChatPoll:
        """Create a chat, poll it until it leaves ``created``/``in_progress``, list its messages.

        * completed / requires_action -> :class:`ChatPoll` with the chat and its messages;
        * failed -> :class:`ChatFailedError` carrying ``last_error`` (e.g. 4028, quota used up);
        * past ``timeout`` seconds -> the chat is cancelled and :class:`ChatPollTimeoutError`
          is raised with its last state.
        """
        deadline = poll_deadline(poll_interval, timeout)
        chat = await self.create(
            bot_id=bot_id,
            user_id=user_id,
            messages=messages,
            conversation_id=conversation_id,
            custom_variables=custom_variables,
            meta_data=meta_data,
            extra_params=extra_params,
            parameters=parameters,
            shortcut_command=shortcut_command,
            enable_card=enable_card,
            publish_status=publish_status,
            bot_version=bot_version,
            extra_headers=extra_headers,
        )
        while chat.status in (ChatStatus.CREATED, ChatStatus.IN_PROGRESS):
            now = anyio.current_time()
            if deadline is not None and now >= deadline:
                chat = await self._cancel_on_deadline(chat, extra_headers)
                if chat.status in (ChatStatus.CREATED, ChatStatus.IN_PROGRESS, "canceled"):
                    raise ChatPollTimeoutError(
                        f"chat {chat.id} did not finish within {timeout} s; it was cancelled",
                        chat=chat,
                        logid=chat.logid,
                    )
                break
            wait = poll_interval if deadline is None else min(poll_interval, deadline - now)
            await anyio.sleep(wait)
            chat = await self.retrieve(
                conversation_id=chat.conversation_id, chat_id=chat.id, extra_headers=extra_headers
            )
        if chat.status == ChatStatus.FAILED:
            raise ChatFailedError(chat, logid=chat.logid)
        found = await self.messages(
            conversation_id=chat.conversation_id, chat_id=chat.id, extra_headers=extra_headers
        )
        return ChatPoll(chat=chat, messages=tuple(found))

    async def _cancel_on_deadline(
        self, chat: Chat, extra_headers: Mapping[str, str] | None
    ) -> Chat:
        try:
            return await self.cancel(
                conversation_id=chat.conversation_id, chat_id=chat.id, extra_headers=extra_headers
            )
        except APIError as exc:
            if exc.code != 4104:
                raise
            # It finished between the last poll and the cancel: use its real final state.
            return await self.retrieve(
                conversation_id=chat.conversation_id, chat_id=chat.id, extra_headers=extra_headers
            )
