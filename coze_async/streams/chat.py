"""The chat stream: ``coze.chat.stream(...)``, ``submit_tool_outputs_stream(...)`` and chatflows.

Chat framing (coze-api.md §2): ``event:`` names such as ``conversation.message.delta``, a
``done`` event last, ``error`` events carrying ``{"code", "msg"}``. A failed or
``requires_action`` chat may end without ``done``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from .._shield import run_to_completion
from ..errors import APIError, ChatFailedError, CozeError
from ..models.chat import Chat, ChatStatus, MessageType
from ..models.events import ChatEvent, ChatSnapshot, Done, MessageDelta, accumulate_chat
from ..models.wire import chat_event_from_sse
from ..sse import ServerSentEvent
from .base import EventStream

if TYPE_CHECKING:
    from ..call import Call
    from ..transport import Transport

__all__ = ["Canceller", "ChatStream"]

#: Cancels a chat at Coze: ``(conversation_id, chat_id) -> the cancelled chat``.
Canceller = Callable[[str, str], Awaitable[Chat]]


class ChatStream(EventStream[ChatEvent, ChatSnapshot]):
    """A streaming chat (``/v3/chat``, submit_tool_outputs, chatflow).

    Use it as ``async with coze.chat.stream(...) as stream: async for event in stream``.
    Views over the same cursor: iterate typed events, :meth:`text` for answer deltas,
    :attr:`snapshot` for the accumulated state, :meth:`final` for the end result, and
    :meth:`cancel` to stop the chat on Coze's side too.
    """

    def __init__(
        self,
        transport: Transport,
        call: Call,
        *,
        canceller: Canceller | None = None,
    ) -> None:
        super().__init__(transport, call, ChatSnapshot())
        self._canceller = canceller

    async def __aenter__(self) -> ChatStream:
        await super().__aenter__()
        return self

    def __aiter__(self) -> ChatStream:
        return self

    def _parse(self, sse: ServerSentEvent) -> ChatEvent:
        if sse.event == "error":
            raise self._error_event(sse)
        event = chat_event_from_sse(sse.event, sse.data)
        if type(event) is Done:
            self._finished = True
            self._queue.clear()  # nothing after done is part of this chat
        return event

    def _accumulate(self, snapshot: ChatSnapshot, event: ChatEvent) -> ChatSnapshot:
        return accumulate_chat(snapshot, event)

    def _eof_is_end(self) -> bool:
        # Coze may end a failed or requires_action chat without ``done`` (a recorded failed
        # chat does exactly that); any other early end means events were lost.
        status = self._snapshot.status
        return status in (ChatStatus.FAILED, ChatStatus.REQUIRES_ACTION)

    def _count(self) -> int:
        return self._snapshot.events

    async def text(self) -> AsyncIterator[str]:
        """Yield the answer's text deltas as they arrive (other events are consumed silently)."""
        async for event in self:
            if type(event) is MessageDelta and event.message.type in (MessageType.ANSWER, ""):
                yield event.message.content

    async def final(self) -> ChatSnapshot:
        """Drain the stream and return the final snapshot.

        Raises :class:`ChatFailedError` (with ``partial``) when the chat failed, and re-raises
        the stream's error when it ended badly.
        """
        snapshot = await self.until_done()
        if snapshot.failed and snapshot.chat is not None:
            raise ChatFailedError(snapshot.chat, logid=self._logid, partial=snapshot)
        return snapshot

    async def cancel(self, *, timeout: float = 10.0) -> Chat | None:
        """Cancel the chat on Coze's side, stop reading and release the connection.

        Closing a socket does not stop Coze from generating (and billing); this also calls
        ``/v3/chat/cancel``. If the stream is open but its first event (which carries the
        chat's id) has not been read yet, it is read first. The whole cancel runs to its end
        (at most ``timeout`` seconds) however the caller is cancelled meanwhile, by anyio or
        by plain asyncio (``asyncio.timeout``, ``task.cancel()``); the caller's cancellation
        is re-raised after it. Returns the cancelled chat, or ``None`` when there was nothing
        to cancel (the stream was never opened, or the chat had already ended) or the
        request timed out.
        """
        try:
            if self._canceller is None:
                return None
            canceller = self._canceller

            async def send() -> Chat | None:
                chat = self._snapshot.chat or await self._read_to_chat()
                if chat is None or chat.is_terminal:
                    return None
                try:
                    return await canceller(chat.conversation_id, chat.id)
                except APIError as exc:
                    if exc.code == 4104:  # already completed / failed / requires_action
                        return None
                    raise

            # Cancel while the stream is still open: the chat is certainly live on Coze's
            # side, and the connection is released right after, whatever happens.
            return await run_to_completion(send, timeout=timeout)
        finally:
            await self.aclose()

    async def _read_to_chat(self) -> Chat | None:
        """Read events until the chat object is known (Coze sends it first); None if the
        stream is not open or ends or fails before that."""
        if self._resp is None or self._finished or self._closed or self._error is not None:
            return None
        try:
            while self._snapshot.chat is None:
                await self.__anext__()
        except (StopAsyncIteration, CozeError):
            return None
        return self._snapshot.chat
