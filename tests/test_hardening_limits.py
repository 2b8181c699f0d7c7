"""Caps on what a server can make the client buffer, and envelopes in stream bodies.

Issue 12, item 11: one SSE event is capped (16 MiB by default, ``max_event_bytes``) and so is
a unary body (``max_response_bytes``); past the cap the typed error is raised at once, before
the rest is read. Item 13: an error envelope sent with ``Content-Type: text/event-stream``
is mapped to its API error instead of becoming an empty, incomplete stream.
"""

from __future__ import annotations

import asyncio

import pytest

from coze_async import (
    AsyncCoze,
    AuthenticationError,
    EventTooLargeError,
    InvalidArgumentError,
    Message,
    RateLimitError,
    ResponseTooLargeError,
    ResponseValidationError,
    RetryPolicy,
)
from coze_async._json import dumps
from coze_async.sse import EventTooLarge, SSEDecoder
from tests._hostile import HostileServer, RawRequest, response
from tests._payloads import DONE, delta_frames, start_frames

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class EndlessLine:
    """Streams the chat's first events, then one line that never ends (up to ``total``)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self.stopped = asyncio.Event()

    async def __call__(self, request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(SSE_HEAD)
        for frame in start_frames():
            writer.write(_chunk(frame))
        writer.write(_chunk(b"event: conversation.message.delta\ndata: "))
        piece = b"x" * (256 * 1024)
        try:
            while self.sent < self.total:
                writer.write(_chunk(piece))
                await writer.drain()
                self.sent += len(piece)
        except ConnectionError:
            pass  # the client hung up: what we measure
        finally:
            self.stopped.set()
        return False


async def _drain_stream(coze: AsyncCoze) -> None:
    async with coze.chat.stream(bot_id="b", user_id="u", messages=[Message.user("x")]) as stream:
        async for _ in stream:
            pass


async def test_endless_line_raises_at_the_cap_and_hangs_up() -> None:
    server = EndlessLine(total=512 * MiB)
    async with (
        HostileServer(server) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, max_event_bytes=2 * MiB) as coze,
    ):
        with pytest.raises(EventTooLargeError) as info:
            await _drain_stream(coze)
        await server.stopped.wait()
    err = info.value
    assert err.limit == 2 * MiB
    assert 2 * MiB < err.size < 3 * MiB  # noticed within a chunk of the limit
    assert err.partial.chat is not None  # the events before it are kept
    assert "max_event_bytes" in str(err)
    # The client hung up long before the server's 512 MiB: it never buffered them.
    assert server.sent < 64 * MiB


async def test_default_cap_is_16_mib() -> None:
    server = EndlessLine(total=512 * MiB)
    async with HostileServer(server) as srv, AsyncCoze(token="pat_x", base_url=srv.url) as coze:
        with pytest.raises(EventTooLargeError) as info:
            await _drain_stream(coze)
        await server.stopped.wait()
    assert info.value.limit == 16 * MiB
    assert server.sent < 128 * MiB


async def test_large_event_under_the_cap_is_delivered_whole() -> None:
    text = "字" * (3 * MiB // 3)  # 3 MiB of UTF-8 in one delta

    async def big(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(SSE_HEAD)
        for frame in [*start_frames(), *delta_frames(text), DONE]:
            for i in range(0, len(frame), 100_000):
                writer.write(_chunk(frame[i : i + 100_000]))
        writer.write(b"0\r\n\r\n")
        return False

    async with (
        HostileServer(big) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, max_event_bytes=4 * MiB) as coze,
        coze.chat.stream(bot_id="b", user_id="u", messages=[Message.user("x")]) as stream,
    ):
        pieces = [p async for p in stream.text()]
    assert pieces == [text]


@pytest.mark.parametrize("cap", [1, 7, 8, 9, 30, 31, 64])
def test_decoder_cap_at_every_chunk_boundary(cap: int) -> None:
    """An event of exactly ``cap`` bytes passes and one of ``cap + 1`` raises, whatever the
    chunking (split at every position, CRLF line ends too)."""
    events = [b"event: a\ndata: 0123456789\n", b"data: xyz\n", b"id: 7\ndata: 01234567890123\n"]
    for raw in events:
        size = len(raw)  # lines + their line ends, the blank line not counted
        for ending in (b"\n", b"\r\n"):
            body = (raw + b"\n").replace(b"\n", ending) * 2
            for split in range(len(body) + 1):
                decoder = SSEDecoder(max_event_bytes=cap)
                if size > cap:
                    with pytest.raises(EventTooLarge) as info:
                        decoder.feed(body[:split])
                        decoder.feed(body[split:])
                    assert info.value.limit == cap, (raw, split, ending)
                else:
                    got = decoder.feed(body[:split]) + decoder.feed(body[split:])
                    assert len(got) == 2, (raw, split, ending)


def test_cap_must_be_positive() -> None:
    with pytest.raises(InvalidArgumentError, match="max_event_bytes"):
        AsyncCoze(token="pat_x", max_event_bytes=0)
    with pytest.raises(InvalidArgumentError, match="max_response_bytes"):
        AsyncCoze(token="pat_x", max_response_bytes="1")  # type: ignore[arg-type]


# -- unary bodies ----------------------------------------------------------------------------


def _announcing(length: int):  # type: ignore[no-untyped-def]
    """A JSON answer that announces ``length`` bytes, sends one, and never sends the rest."""

    async def respond(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n{" % length
        )
        await writer.drain()
        await asyncio.Event().wait()
        return False

    return respond


async def test_unary_body_announced_over_the_cap_is_refused_unread() -> None:
    async with (
        HostileServer(_announcing(4_000_000_000)) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await coze.conversations.create()
    assert info.value.size == 4_000_000_000
    assert info.value.limit == 64 * MiB
    assert isinstance(info.value, ResponseValidationError)


async def test_chunked_unary_body_over_the_cap_stops_at_the_cap() -> None:
    sent = 0

    async def endless(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        nonlocal sent
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            while sent < 256 * MiB:
                writer.write(_chunk(b" " * (128 * 1024)))
                await writer.drain()
                sent += 128 * 1024
        except ConnectionError:
            pass
        return False

    async with (
        HostileServer(endless) as srv,
        AsyncCoze(
            token="pat_x", base_url=srv.url, retry=RetryPolicy.none(), max_response_bytes=MiB
        ) as coze,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await coze.conversations.create()
    assert MiB < info.value.size <= 2 * MiB
    assert sent < 64 * MiB


async def test_unary_body_under_the_cap_is_read() -> None:
    async def ok(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        data = {"id": "c1", "created_at": 1, "meta_data": {"k": "v" * 100_000}}
        writer.write(response(dumps({"code": 0, "msg": "", "data": data})))
        return False

    async with (
        HostileServer(ok) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, max_response_bytes=MiB) as coze,
    ):
        conv = await coze.conversations.create()
    assert conv.id == "c1"


# -- item 13: an error envelope in an event-stream body --------------------------------------


def _envelope_as_stream(code: int, msg: str, *, chunked: bool):  # type: ignore[no-untyped-def]
    async def respond(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        body = dumps({"code": code, "msg": msg})
        if chunked:
            # Whitespace first, in its own chunk: the body is still recognised as JSON.
            writer.write(
                SSE_HEAD + _chunk(b"\n") + _chunk(body[:5]) + _chunk(body[5:]) + b"0\r\n\r\n"
            )
        else:
            writer.write(
                response(body, content_type="text/event-stream", extra="x-tt-logid: LOG13\r\n")
            )
        return False

    return respond


@pytest.mark.parametrize("chunked", [False, True])
async def test_error_envelope_in_event_stream_is_mapped(chunked: bool) -> None:
    async with (
        HostileServer(_envelope_as_stream(4100, "token expired", chunked=chunked)) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(AuthenticationError) as info:
            await _drain_stream(coze)
    assert info.value.code == 4100
    assert info.value.msg == "token expired"
    if not chunked:
        assert info.value.logid == "LOG13"


async def test_rate_limit_envelope_in_event_stream() -> None:
    async with (
        HostileServer(_envelope_as_stream(4009, "too many", chunked=False)) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(RateLimitError) as info:
            await _drain_stream(coze)
    assert info.value.code == 4009


async def test_success_envelope_in_event_stream_is_a_validation_error() -> None:
    async with (
        HostileServer(_envelope_as_stream(0, "", chunked=True)) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(ResponseValidationError, match="expected an event stream"):
            await _drain_stream(coze)


async def test_workflow_stream_error_envelope_is_mapped() -> None:
    async with (
        HostileServer(_envelope_as_stream(4200, "workflow not published", chunked=True)) as srv,
        AsyncCoze(token="pat_x", base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        from coze_async import NotFoundError

        with pytest.raises(NotFoundError) as info:
            async with coze.workflows.stream(workflow_id="7") as run:
                async for _ in run:
                    pass
    assert info.value.code == 4200


async def test_oauth_token_answer_is_capped_too() -> None:
    from coze_async import JWTAuth
    from tests.test_oauth import _pem_pair

    private, _ = _pem_pair()
    async with (
        HostileServer(_announcing(3_000_000_000)) as srv,
        AsyncCoze(
            auth=JWTAuth(client_id="1234567890", private_key=private, public_key_id="k"),
            base_url=srv.url,
        ) as coze,
    ):
        with pytest.raises(ResponseTooLargeError) as info:
            await coze.conversations.create()
    assert info.value.size == 3_000_000_000
    assert srv.requests[0].path == "/api/permission/oauth2/token"
