"""No exception the SDK raises carries a secret, anywhere in its chain (issue 12, item 1).

A hostile server answers with a malformed response (a header line over aiohttp's 8,190-byte
limit, a status line that echoes the request's ``Authorization`` header back, a body cut in
the middle of a chunk). The error raised must keep the useful part of what went wrong (the
low-level class name and message, in an ``ErrorCause``) without the token: not in ``repr``,
``str`` or the attributes of any exception reachable through ``__cause__``/``__context__``,
nor in the formatted traceback.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator

import pytest

from coze_async import (
    AsyncCoze,
    JWTAuth,
    Message,
    PermissionDeniedError,
    RetryPolicy,
    StreamInterruptedError,
    TransportError,
)
from coze_async._json import dumps
from coze_async.errors import ErrorCause
from tests._hostile import HostileServer, RawRequest, response
from tests._payloads import start_frames

pytestmark = pytest.mark.anyio

TOKEN = "pat_SECRET0123456789abcdefTOKEN"


def _reachable(exc: BaseException) -> Iterator[object]:
    """Every exception in ``exc``'s chain, and every attribute value of each (two levels)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    depth: dict[int, int] = {id(exc): 0}
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        level = depth.get(id(obj), 0)
        children: list[object] = []
        if isinstance(obj, BaseException):
            children += [obj.__cause__, obj.__context__, *obj.args]
        if level < 3 and hasattr(obj, "__dict__"):
            children += list(vars(obj).values())
        if level < 3 and hasattr(obj, "__slots__"):
            children += [getattr(obj, s, None) for s in getattr(obj, "__slots__", ())]
        for child in children:
            if child is not None and not isinstance(child, str | int | float | bool | bytes):
                depth.setdefault(id(child), level + 1)
                stack.append(child)


def _assert_no_secret(exc: BaseException, *secrets: str) -> None:
    texts = ["".join(traceback.format_exception(exc))]
    for obj in _reachable(exc):
        texts.append(repr(obj))
        texts.append(str(obj))
    for secret in secrets:
        for text in texts:
            assert secret not in text, f"secret found in: {text[:400]}"


async def _long_header(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(response(b"{}", extra="X-Big: " + "a" * 9000 + "\r\n"))
    return False


async def _echo_status(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    # A broken status line that repeats the request's Authorization header back.
    writer.write(f"HTTP/1.1 2x0 {request.headers.get('authorization')}\r\n\r\n".encode())
    return False


@pytest.mark.parametrize("respond", [_long_header, _echo_status], ids=["long-header", "echo"])
async def test_unary_transport_error_has_no_token(respond: object) -> None:
    async with (
        HostileServer(respond) as srv,  # type: ignore[arg-type]
        AsyncCoze(token=TOKEN, base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(TransportError) as info:
            await coze.chat.create(bot_id="b", user_id="u", messages=[Message.user("hi")])
    assert srv.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # it was sent
    err = info.value
    assert err.phase == "headers"
    # The useful part of the cause survives: its class name and message.
    assert isinstance(err.__cause__, ErrorCause)
    assert err.__cause__.type_name in ("ClientResponseError", "BadStatusLine", "BadHttpMessage")
    assert err.__context__ is None
    _assert_no_secret(err, TOKEN)


async def test_long_header_cause_keeps_the_reason() -> None:
    async with (
        HostileServer(_long_header) as srv,
        AsyncCoze(token=TOKEN, base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(TransportError) as info:
            await coze.conversations.create()
    assert "8190" in str(info.value) or "too long" in str(info.value).lower()


async def test_stream_open_error_has_no_token() -> None:
    async with (
        HostileServer(_long_header) as srv,
        AsyncCoze(token=TOKEN, base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(TransportError) as info:
            async with coze.chat.stream(bot_id="b", user_id="u", messages=[Message.user("x")]):
                pass
    _assert_no_secret(info.value, TOKEN)


async def test_stream_interrupted_error_has_no_token() -> None:
    async def cut_chunk(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for frame in start_frames():
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        writer.write(b"ff\r\nevent: conversation.mess")  # a chunk cut short, then EOF
        return False

    async with (
        HostileServer(cut_chunk) as srv,
        AsyncCoze(token=TOKEN, base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(StreamInterruptedError) as info:
            async with coze.chat.stream(
                bot_id="b", user_id="u", messages=[Message.user("x")]
            ) as stream:
                async for _ in stream:
                    pass
    err = info.value
    assert err.partial.chat is not None  # what arrived before the cut is kept
    assert isinstance(err.__cause__, ErrorCause)
    assert err.__context__ is None
    _assert_no_secret(err, TOKEN)


async def test_jwt_exchange_error_has_no_jwt_or_key() -> None:
    from tests.test_oauth import _pem_pair

    private, _public = _pem_pair()
    async with (
        HostileServer(_long_header) as srv,
        AsyncCoze(
            auth=JWTAuth(client_id="1234567890", private_key=private, public_key_id="kid1"),
            base_url=srv.url,
            retry=RetryPolicy.none(),
        ) as coze,
    ):
        with pytest.raises(TransportError) as info:
            await coze.conversations.create()
    sent = srv.requests[0]
    assert sent.path == "/api/permission/oauth2/token"
    jwt = sent.headers["authorization"].removeprefix("Bearer ")
    assert jwt.count(".") == 2
    err = info.value
    assert err.__context__ is None
    _assert_no_secret(err, jwt, private.splitlines()[1])


async def test_an_api_error_envelope_is_unaffected() -> None:
    """The sanitizing does not touch Coze's own answers: code, msg and logid stay."""

    async def refuse(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        body = dumps({"code": 4101, "msg": "no permission"})
        writer.write(response(body, extra="x-tt-logid: L1\r\n"))
        return False

    async with (
        HostileServer(refuse) as srv,
        AsyncCoze(token=TOKEN, base_url=srv.url, retry=RetryPolicy.none()) as coze,
    ):
        with pytest.raises(PermissionDeniedError) as info:
            await coze.conversations.create()
    assert info.value.code == 4101
    assert info.value.logid == "L1"
    _assert_no_secret(info.value, TOKEN)
