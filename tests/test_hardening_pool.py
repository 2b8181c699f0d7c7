"""Pooled connections the server already closed are never used (issue 12, item 16).

The server here closes every connection right after its answer, without ``Connection:
close`` (as some proxies and load balancers do). A request written on such a connection is
lost; a chat must never be retried when it may have reached the server, so the only way to
make every call succeed is to notice the close before writing: the pool polls an idle socket
before handing it out and opens a fresh connection instead.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from coze_async import AsyncCoze, InvalidArgumentError, Message, RetryPolicy, TransportError
from coze_async._http import peer_closed
from coze_async._json import dumps
from tests._hostile import HostileServer, RawRequest, response
from tests._payloads import chat_obj

pytestmark = pytest.mark.anyio


async def _answer_then_close(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    body = {"code": 0, "msg": "", "data": chat_obj("in_progress")}
    writer.write(response(dumps(body)))  # keep-alive by default, then closed all the same
    return False


async def test_fifty_sequential_chats_on_closing_connections_all_succeed() -> None:
    async with (
        HostileServer(_answer_then_close) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url) as coze,
    ):
        for _ in range(50):
            chat = await coze.chat.create(bot_id="b", user_id="u", messages=[Message.user("x")])
            assert chat.status == "in_progress"
    # Every chat was sent exactly once: none lost, none resent.
    assert [r.path for r in srv.requests] == ["/v3/chat"] * 50
    assert srv.connections == 50


async def test_idempotent_calls_too() -> None:
    async with (
        HostileServer(_answer_then_close) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        for _ in range(20):
            await coze.chat.retrieve(conversation_id="c", chat_id="x")
    assert len(srv.requests) == 20


async def test_a_live_keep_alive_connection_is_still_reused() -> None:
    async def keep(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        body = {"code": 0, "msg": "", "data": chat_obj("in_progress")}
        writer.write(response(dumps(body)))
        return True  # read the next request on the same connection

    async with HostileServer(keep) as srv, AsyncCoze(token="pat_x", base_url=srv.url) as coze:
        for _ in range(10):
            await coze.chat.create(bot_id="b", user_id="u", messages=[Message.user("x")])
    assert len(srv.requests) == 10
    assert srv.connections == 1


async def test_a_chat_the_server_may_have_received_is_not_resent() -> None:
    """The server reads the request, then hangs up without answering: the chat may have
    started, so it fails with TransportError and is sent once only."""

    async def hang_up(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        return False

    async with (
        HostileServer(hang_up) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy(max_retries=3)) as coze,
    ):
        with pytest.raises(TransportError) as info:
            await coze.chat.create(bot_id="b", user_id="u", messages=[Message.user("x")])
    assert info.value.phase == "headers"
    assert len(srv.requests) == 1


def test_peer_closed_sees_an_unprocessed_fin() -> None:
    a, b = socket.socketpair()
    try:
        assert not peer_closed(a)
        b.close()
        assert peer_closed(a)
    finally:
        a.close()


async def test_an_auth_callable_returning_a_header_breaking_token() -> None:
    async def bad_token() -> str:
        return "pat_x\r\nX-Injected: 1"

    async with (
        HostileServer(_answer_then_close) as srv,
        AsyncCoze(auth=bad_token, base_url=srv.url) as coze,
    ):
        with pytest.raises(InvalidArgumentError, match="token returned by auth") as info:
            await coze.chat.create(bot_id="b", user_id="u", messages=[Message.user("x")])
    assert "X-Injected" not in str(info.value)  # never echoed
    assert srv.requests == []
