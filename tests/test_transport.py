"""Envelopes, the error tree, retries, timeouts and redaction."""

from __future__ import annotations

import logging
import socket

import pytest

from coze_async import (
    APIError,
    AsyncCoze,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Message,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitError,
    RequestTooLargeError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
    TokenAuth,
    TransportError,
)
from coze_async.config import Timeouts
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator
from coze_async.errors import error_class_for
from coze_async.transport import Transport

pytestmark = pytest.mark.anyio


def _transport(base_url: str = "https://api.coze.cn") -> Transport:
    return Transport(
        base_url=base_url,
        auth=TokenAuth("pat_x"),
        timeouts=Timeouts(),
        retry=RetryPolicy(),
        session=None,
    )


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (4100, 200, AuthenticationError),
        (None, 401, AuthenticationError),
        (4101, 200, PermissionDeniedError),
        (6003, 200, PermissionDeniedError),
        (4000, 200, BadRequestError),
        (4104, 200, BadRequestError),
        (4200, 200, NotFoundError),
        (4002, 200, BadRequestError),
        (4005, 200, BadRequestError),
        (4300, 200, BadRequestError),
        (4301, 200, BadRequestError),
        (4302, 200, BadRequestError),
        (4303, 200, BadRequestError),
        (4304, 200, BadRequestError),
        (4314, 200, NotFoundError),
        (None, 404, NotFoundError),
        (4016, 200, ConflictError),
        (None, 429, RateLimitError),
        (4009, 200, RateLimitError),
        (4020, 200, RateLimitError),
        (4013, 200, RateLimitError),
        (4028, 200, QuotaExhaustedError),
        (4011, 200, QuotaExhaustedError),
        (5000, 200, ServerError),
        (None, 502, ServerError),
        (4999, 200, BadRequestError),
        (4009, 429, RateLimitError),
        (None, 418, BadRequestError),
        (7000, 200, APIError),
    ],
)
def test_error_class_table(code: int | None, status: int, cls: type[APIError]) -> None:
    assert error_class_for(code, status) is cls


def test_envelope_shapes() -> None:
    t = _transport()
    hdr = {"x-tt-logid": "L1"}
    ok = t.decode(200, hdr, b'{"code":0,"msg":"","data":{"id":"1"},"detail":{"logid":"L2"}}')
    assert ok.field("data") == {"id": "1"} and ok.logid == "L1"
    # data as a JSON-encoded string (workflow run), detail absent
    run = t.decode(200, {}, b'{"code":0,"msg":"","data":"{\\"output\\":1}","debug_url":"u"}')
    assert run.field("data") == '{"output":1}' and run.field("debug_url") == "u"
    # message modify: the result sits under "message"
    mod = t.decode(200, {}, b'{"code":0,"msg":"","message":{"id":"9"},"detail":{}}')
    assert mod.field("message") == {"id": "9"} and mod.field("data") is None
    # list with cursors at top level
    lst = t.decode(200, {}, b'{"code":0,"data":[],"first_id":"1","last_id":"2","has_more":false}')
    assert lst.field("has_more") is False
    # logid from detail when the header is missing
    err_body = b'{"code":4200,"msg":"not found","detail":{"logid":"L9"}}'
    with pytest.raises(NotFoundError) as info:
        t.decode(200, {}, err_body)
    assert info.value.logid == "L9" and info.value.msg == "not found"
    # a string code
    with pytest.raises(ServerError):
        t.decode(200, {}, b'{"code":"5000","msg":"boom"}')
    # OAuth-style error body with a 401
    with pytest.raises(AuthenticationError) as oauth:
        t.decode(401, {}, b'{"error_code":"invalid_client","error_message":"invalid jwt"}')
    assert "invalid jwt" in str(oauth.value)
    # HTML gateway page
    with pytest.raises(ServerError) as html:
        t.decode(502, {}, b"<html><head><title>502 Bad Gateway</title></head></html>")
    assert "502 Bad Gateway" in str(html.value)
    # not JSON, 200
    with pytest.raises(ResponseValidationError):
        t.decode(200, {}, b"hello")


@pytest.mark.parametrize(
    ("base_url", "hint"),
    [("https://api.coze.cn", "coze.com"), ("https://api.coze.com", "coze.cn")],
)
def test_4100_hints_at_the_other_region(base_url: str, hint: str) -> None:
    t = _transport(base_url)
    with pytest.raises(AuthenticationError) as info:
        t.decode(200, {}, b'{"code":4100,"msg":"authentication is invalid"}')
    assert hint in str(info.value)
    assert "COZE_" in str(info.value)


async def test_bad_token_over_the_wire(emu: Emulator) -> None:
    async with AsyncCoze(token="pat_wrong", base_url=emu.url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.chat.retrieve(conversation_id="1", chat_id="2")
    assert info.value.code == 4100
    assert info.value.logid is not None and len(info.value.logid) == 34
    assert "pat_wrong" not in str(info.value)


async def test_idempotent_call_retries_502(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(APIError):  # the chat does not exist, but we got past the 502
        await coze.chat.retrieve(
            conversation_id="1", chat_id="2", extra_headers={FAULT_HEADER: "html-502;times=1"}
        )
    assert len([r for r in emu.requests if r.path == "/v3/chat/retrieve"]) == 2


async def test_chat_is_not_retried_on_502_but_is_on_rate_limit(
    coze: AsyncCoze, emu: Emulator
) -> None:
    with pytest.raises(ServerError):
        await coze.chat.create(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("a")],
            extra_headers={FAULT_HEADER: "html-502;times=1"},
        )
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 1
    chat = await coze.chat.create(
        bot_id=ECHO_BOT_ID,
        user_id="u",
        messages=[Message.user("a")],
        extra_headers={FAULT_HEADER: "json-error=4009;times=1"},
    )
    assert chat.id
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 3


async def test_retry_unsafe_opt_in(emu: Emulator) -> None:
    async with AsyncCoze(
        token=emu.token, base_url=emu.url, retry=RetryPolicy(retry_unsafe=True)
    ) as client:
        chat = await client.chat.create(
            bot_id=ECHO_BOT_ID,
            user_id="u",
            messages=[Message.user("a")],
            extra_headers={FAULT_HEADER: "http-status=503;times=1"},
        )
    assert chat.id
    assert len([r for r in emu.requests if r.path == "/v3/chat"]) == 2


async def test_retries_are_bounded(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(RateLimitError) as info:
        await coze.chat.retrieve(
            conversation_id="1", chat_id="2", extra_headers={FAULT_HEADER: "json-error=4009"}
        )
    assert info.value.code == 4009
    assert len([r for r in emu.requests if r.path == "/v3/chat/retrieve"]) == 3  # 1 + 2 retries


async def test_connect_error_is_retried_then_typed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    async with AsyncCoze(
        token="pat_x", base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_retries=1)
    ) as client:
        with pytest.raises(TransportError) as info:
            await client.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")])
    assert info.value.phase == "connect"


async def test_request_too_large_sends_nothing(coze: AsyncCoze, emu: Emulator) -> None:
    huge = "字" * (6 * 1024 * 1024)  # 18 MB of UTF-8
    with pytest.raises(RequestTooLargeError) as info:
        await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user(huge)])
    assert info.value.limit == 15 * 1024 * 1024
    assert info.value.size > info.value.limit
    assert emu.requests == []


async def test_token_never_in_repr_or_logs(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    secret = emu.token
    caplog.set_level(logging.DEBUG, logger="coze_async")
    async with AsyncCoze(token=secret, base_url=emu.url) as client:
        assert secret not in repr(client)
        assert secret not in repr(client._auth)
        async with client.chat.stream(
            bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("hi")]
        ) as stream:
            await stream.final()
        with pytest.raises(APIError) as info:
            await client.chat.retrieve(conversation_id="1", chat_id="2")
    assert caplog.records, "debug logging is on"
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert secret not in str(info.value)
    assert any("logid=" in r.getMessage() for r in caplog.records)


async def test_env_token_and_base(monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> None:
    monkeypatch.setenv("COZE_API_TOKEN", emu.token)
    monkeypatch.setenv("COZE_API_BASE", emu.url)
    async with AsyncCoze() as client:
        assert client.base_url == emu.url
        chat = await client.chat.create(
            bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("a")]
        )
    assert chat.logid


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from coze_async import InvalidArgumentError

    monkeypatch.delenv("COZE_API_TOKEN", raising=False)
    with pytest.raises(InvalidArgumentError, match="COZE_API_TOKEN"):
        AsyncCoze()


async def test_default_base_url_is_cn(monkeypatch: pytest.MonkeyPatch) -> None:
    from coze_async import COZE_CN_BASE_URL

    monkeypatch.delenv("COZE_API_BASE", raising=False)
    async with AsyncCoze(token="pat_x") as client:
        assert client.base_url == COZE_CN_BASE_URL


async def test_caller_owned_session_is_not_closed(emu: Emulator) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
        async with AsyncCoze(token=emu.token, base_url=emu.url, session=session) as client:
            # The session's own total=0.5 must not cut a stream that outlives it.
            async with client.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                messages=[Message.user("一二三四五六七八九十")],
                extra_headers={FAULT_HEADER: "latency=0.1"},
            ) as stream:
                snap = await stream.final()
            assert "一二三四五六七八九十" in snap.text
        assert not session.closed
