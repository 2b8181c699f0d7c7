"""The emulator answers as real Coze does by default (issue 14), conveniences on request.

Driven with the official ``cozepy`` client where it is installed and with raw aiohttp for the
bytes (content types, header spelling, exact texts). Item 6 (shapes, key order) lives in
``test_emulator_wire.py``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from coze_async import APIError, AsyncCoze, Message
from coze_async.emulator import CHATFLOW_ID, ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio

UNKNOWN_BOT = "7499999999999999999"
BOT_NOT_FOUND = (
    f"Requested resource bot_id={UNKNOWN_BOT} does not exist. "
    "Ensure you are the correct resource identifier."
)


def _cozepy() -> Any:
    # cozepy imports authlib.jose, which forces a deprecation warning (not ours) to "always".
    with warnings.catch_warnings(record=True):
        return pytest.importorskip("cozepy")


@pytest.fixture
async def session(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(base_url=emu.url, headers=headers) as s:
        yield s


def chat_body(bot_id: str = ECHO_BOT_ID, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bot_id": bot_id,
        "user_id": "u",
        "additional_messages": [{"role": "user", "content": "你好", "content_type": "text"}],
    }
    body.update(fields)
    return body


async def post_json(
    session: aiohttp.ClientSession, path: str, body: Any
) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
    async with session.post(path, json=body) as resp:
        assert resp.content_type == "application/json"
        return resp, await resp.json()


# ----------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("stream", [False, True])
async def test_unknown_bot_is_4200(session: aiohttp.ClientSession, stream: bool) -> None:
    # A request-level error on a stream endpoint is a JSON envelope, not SSE (coze-py #78).
    resp, body = await post_json(session, "/v3/chat", chat_body(UNKNOWN_BOT, stream=stream))
    assert resp.status == 200
    assert body["code"] == 4200
    assert body["msg"] == BOT_NOT_FOUND
    assert "data" not in body


async def test_unknown_bot_creates_nothing(emu: Emulator, session: aiohttp.ClientSession) -> None:
    before = len(emu.state.conversations)
    await post_json(session, "/v3/chat", chat_body(UNKNOWN_BOT))
    assert len(emu.state.conversations) == before


async def test_accept_any_bot_lets_the_echo_bot_answer() -> None:
    async with Emulator(accept_any_bot=True) as emu, aiohttp.ClientSession() as s:
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with s.post(
            f"{emu.url}/v3/chat", json=chat_body(UNKNOWN_BOT, stream=True), headers=headers
        ) as resp:
            assert resp.content_type == "text/event-stream"
            text = (await resp.read()).decode()
        assert "你说：你好" in text.replace('","content":"', "")
        assert "event:done" in text


async def test_chatflow_unknown_bot_is_4200(session: aiohttp.ClientSession) -> None:
    body = {
        "workflow_id": CHATFLOW_ID,
        "bot_id": UNKNOWN_BOT,
        "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
    }
    _, answer = await post_json(session, "/v1/workflows/chat", body)
    assert answer["code"] == 4200
    assert answer["msg"] == BOT_NOT_FOUND


async def test_sdk_sees_4200_for_an_unknown_bot(emu: Emulator) -> None:
    async with AsyncCoze(token=emu.token, base_url=emu.url) as coze:
        with pytest.raises(APIError) as info:
            await coze.chat.create(bot_id=UNKNOWN_BOT, user_id="u", messages=[Message.user("x")])
        assert info.value.code == 4200
        with pytest.raises(APIError) as info:
            async with coze.chat.stream(
                bot_id=UNKNOWN_BOT, user_id="u", messages=[Message.user("x")]
            ) as stream:
                async for _ in stream:
                    pass
        assert info.value.code == 4200


async def test_cozepy_sees_4200_for_an_unknown_bot(emu: Emulator) -> None:
    cozepy = _cozepy()
    async with cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        question = [cozepy.Message.build_user_question_text("x")]
        with pytest.raises(cozepy.CozeAPIError) as info:
            await coze.chat.create(bot_id=UNKNOWN_BOT, user_id="u", additional_messages=question)
        assert info.value.code == 4200
        assert info.value.msg == BOT_NOT_FOUND
        with pytest.raises(cozepy.CozeAPIError) as info:
            async for _ in coze.chat.stream(
                bot_id=UNKNOWN_BOT, user_id="u", additional_messages=question
            ):
                pass
        assert info.value.code == 4200
        # The documented bot answers.
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        assert chat.bot_id == ECHO_BOT_ID


# ----------------------------------------------------------------------------- item 2

OCCUPIED = (
    "Conversation occupied: Another chat is currently active. Please wait for the ongoing chat "
    "to complete or create a new conversation to start a separate chat. Ensure only one chat "
    "runs at a time within the same conversation."
)


async def _busy_conversation(session: aiohttp.ClientSession) -> str:
    _, body = await post_json(session, "/v3/chat", chat_body())  # runs for chat_duration
    assert body["code"] == 0
    return str(body["data"]["conversation_id"])


async def test_occupied_streamed_chat_is_an_sse_error_event() -> None:
    async with (
        Emulator(chat_duration=30) as emu,
        aiohttp.ClientSession(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}
        ) as session,
    ):
        conv = await _busy_conversation(session)
        params = {"conversation_id": conv}
        async with session.post("/v3/chat", params=params, json=chat_body(stream=True)) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            assert resp.headers["X-Tt-Logid"]
            raw = await resp.read()
        expected = '{"code":4016,"msg":"' + OCCUPIED + '"}'
        assert raw == b"event:error\ndata:" + expected.encode() + b"\n\n"
        # Not streamed: the envelope, same code and text.
        async with session.post("/v3/chat", params=params, json=chat_body()) as resp:
            assert resp.content_type == "application/json"
            body = await resp.json()
        assert (body["code"], body["msg"]) == (4016, OCCUPIED)


async def test_occupied_chatflow_is_an_sse_error_event() -> None:
    async with (
        Emulator(chat_duration=30) as emu,
        aiohttp.ClientSession(
            base_url=emu.url, headers={"Authorization": f"Bearer {emu.token}"}
        ) as session,
    ):
        conv = await _busy_conversation(session)
        body = {
            "workflow_id": CHATFLOW_ID,
            "app_id": "7300000000000000001",
            "conversation_id": conv,
            "additional_messages": [{"role": "user", "content": "hi", "content_type": "text"}],
        }
        async with session.post("/v1/workflows/chat", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/event-stream"
            raw = await resp.read()
        # Chatflow streams put a space after the colon.
        assert raw.startswith(b'event: error\ndata: {"code":4016,"msg":"Conversation occupied')


async def test_cozepy_sees_the_occupied_error_event() -> None:
    cozepy = _cozepy()
    async with Emulator(chat_duration=30) as emu, cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        question = [cozepy.Message.build_user_question_text("x")]
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        # cozepy 0.20.0 raises a bare Exception for an SSE error event ("error event: {...}").
        with pytest.raises(Exception, match="4016") as info:
            async for _ in coze.chat.stream(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                conversation_id=chat.conversation_id,
                additional_messages=question,
            ):
                pass
        assert not isinstance(info.value, cozepy.CozeAPIError)
        with pytest.raises(cozepy.CozeAPIError) as api:
            await coze.chat.create(
                bot_id=ECHO_BOT_ID,
                user_id="u",
                conversation_id=chat.conversation_id,
                additional_messages=question,
            )
        assert api.value.code == 4016


# ----------------------------------------------------------------------------- item 3


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    """(private PEM, public PEM), made here."""
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _jwt(private: str, aud: str, *, kid: str = "kid-1", iss: str = "app-1") -> str:
    import secrets
    import time

    jwt = pytest.importorskip("jwt")
    now = int(time.time())
    claims = {"iss": iss, "aud": aud, "iat": now, "exp": now + 600, "jti": secrets.token_hex(16)}
    return str(jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid}))


async def _exchange(emu: Emulator, assertion: str) -> tuple[int, dict[str, Any]]:
    body = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "duration_seconds": 900}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{emu.url}/api/permission/oauth2/token",
            json=body,
            headers={"Authorization": f"Bearer {assertion}"},
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_jwt_aud_host_or_host_port(emu: Emulator, rsa_keys: tuple[str, str]) -> None:
    private, public = rsa_keys
    emu.oauth.add_jwt_app(client_id="app-1", public_key=public, kid="kid-1")
    host_port = emu.url.removeprefix("http://")
    for aud in ("127.0.0.1", host_port):
        status, body = await _exchange(emu, _jwt(private, aud))
        assert status == 200, (aud, body)
        assert body["access_token"].startswith("czs_")
    for aud in ("api.coze.cn", "127.0.0.1:1", "localhost"):
        status, body = await _exchange(emu, _jwt(private, aud))
        assert (status, body["error_message"]) == (401, "invalid jwt: aud not match"), aud
    # Acting as Coze's host: that host, bare or with the HTTPS port.
    emu.oauth.audience = "api.coze.cn"
    for aud in ("api.coze.cn", "api.coze.cn:443"):
        status, _ = await _exchange(emu, _jwt(private, aud))
        assert status == 200, aud
    status, _ = await _exchange(emu, _jwt(private, host_port))
    assert status == 401


async def test_cozepy_jwt_exchange_against_the_emulator(
    emu: Emulator, rsa_keys: tuple[str, str]
) -> None:
    cozepy = _cozepy()
    private, public = rsa_keys
    emu.oauth.add_jwt_app(client_id="app-1", public_key=public, kid="kid-1")
    # cozepy puts the base URL's netloc, "127.0.0.1:PORT", in aud.
    async with cozepy.AsyncHTTPClient() as http:
        app = _with_client(
            cozepy, cozepy.AsyncJWTOAuthApp("app-1", private, "kid-1", base_url=emu.url), http
        )
        token = await app.get_access_token(ttl=900)
        assert token.access_token.startswith("czs_")
        auth = cozepy.AsyncJWTAuth(oauth_app=app)
        coze = cozepy.AsyncCoze(auth=auth, base_url=emu.url, http_client=http)
        question = [cozepy.Message.build_user_question_text("x")]
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        assert chat.bot_id == ECHO_BOT_ID
    assert emu.oauth.exchanges["jwt"] == 2


def test_sync_cozepy_jwt_exchange_in_a_thread(rsa_keys: tuple[str, str]) -> None:
    import anyio

    cozepy = _cozepy()
    private, public = rsa_keys

    async def main() -> None:
        async with Emulator() as emu:
            emu.oauth.add_jwt_app(client_id="app-1", public_key=public, kid="kid-1")
            with cozepy.SyncHTTPClient() as http:
                app = cozepy.JWTOAuthApp("app-1", private, "kid-1", base_url=emu.url)
                app = _with_client(cozepy, app, http, sync=True)
                token = await anyio.to_thread.run_sync(lambda: app.get_access_token(ttl=900))
            assert token.access_token.startswith("czs_")

    anyio.run(main)


async def test_cli_jwt_app_registers_a_key(tmp_path: Any, rsa_keys: tuple[str, str]) -> None:
    import sys

    import anyio

    cozepy = _cozepy()
    private, public = rsa_keys
    key_file = tmp_path / "app.pem"
    key_file.write_text(public)
    cmd = [sys.executable, "-m", "coze_async.emulator", "--port", "0"]
    cmd += ["--jwt-app", f"app-1={key_file}:kid-9", "--jwt-app", f"app-2={key_file}"]
    async with await anyio.open_process(cmd, env={**_plain_env(), "PYTHONUNBUFFERED": "1"}) as p:
        assert p.stdout is not None
        seen = b""
        with anyio.fail_after(20):
            while b"Press Ctrl-C" not in seen:
                seen += await p.stdout.receive()
        banner = seen.decode()
        url = banner.splitlines()[0].removeprefix("Coze emulator listening on ")
        assert "jwt apps: app-1 (kid kid-9), app-2 (kid app-2)" in banner
        async with cozepy.AsyncHTTPClient() as http:
            for client_id, kid in (("app-1", "kid-9"), ("app-2", "app-2")):
                app = cozepy.AsyncJWTOAuthApp(client_id, private, kid, base_url=url)
                token = await _with_client(cozepy, app, http).get_access_token(ttl=900)
                assert token.access_token.startswith("czs_")
        p.terminate()
        with anyio.fail_after(20):
            assert await p.wait() == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("app-1", "--jwt-app needs CLIENT_ID=PUBLIC_KEY_FILE[:KID]"),
        ("app-1=/nonexistent/key.pem", "cannot read /nonexistent/key.pem"),
    ],
)
async def test_cli_jwt_app_errors_are_one_line(spec: str, message: str) -> None:
    import sys

    import anyio

    cmd = [sys.executable, "-m", "coze_async.emulator", "--port", "0", "--jwt-app", spec]
    with anyio.fail_after(30):
        done = await anyio.run_process(cmd, check=False, env=_plain_env())
    assert done.returncode == 1
    err = done.stderr.decode()
    assert message in err and "Traceback" not in err


def _with_client(cozepy: Any, app: Any, http: Any, *, sync: bool = False) -> Any:
    """``app`` sending through ``http`` (closed by the test): cozepy's OAuth apps otherwise
    make an httpx client of their own that nobody closes."""
    from cozepy.request import Requester

    app._requester = Requester(**{"sync_client" if sync else "async_client": http})
    return app


def _plain_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("COZE_")}


# ----------------------------------------------------------------------------- item 4

NOT_A_CHAT = (
    "The field http body provided is not a valid json or chat request. Please check your input."
)


async def _post_raw(session: aiohttp.ClientSession, path: str, data: bytes) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    async with session.post(path, data=data, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body: dict[str, Any] = await resp.json()
        return body


@pytest.mark.parametrize(
    "data",
    [
        b'{"bot_id": "7400000000000000001", "user_id": "u",',  # cut short
        b"bot_id=7400000000000000001&user_id=u",  # a form, not JSON
        b'["bot_id"]',  # JSON, not an object
        b'{"bot_id":"7400000000000000001","user_id":42}',  # user_id as a number
        b'{"bot_id":7400000000000000001,"user_id":"u"}',  # bot_id as a number
        b'{"bot_id":"7400000000000000001","user_id":"u","stream":"true"}',
        b'{"bot_id":"7400000000000000001","user_id":"u","additional_messages":{}}',
    ],
)
async def test_chat_body_not_a_chat_request(session: aiohttp.ClientSession, data: bytes) -> None:
    body = await _post_raw(session, "/v3/chat", data)
    assert (body["code"], body["msg"]) == (4000, NOT_A_CHAT)


async def test_missing_chat_fields_keep_their_own_message(session: aiohttp.ClientSession) -> None:
    body = await _post_raw(session, "/v3/chat", b'{"user_id":"u"}')
    assert body["code"] == 4000 and "bot_id" in body["msg"]
    # An empty body and a JSON null are "no fields", not a malformed body.
    for data in (b"", b"null"):
        body = await _post_raw(session, "/v3/chat", data)
        assert body["code"] == 4000 and "bot_id" in body["msg"], data


@pytest.mark.parametrize(
    "path",
    ["/v1/conversation/create", "/v1/workflow/run", "/v1/workflows/chat", "/v3/chat/cancel"],
)
async def test_other_json_endpoints_refuse_a_body_that_is_not_json(
    session: aiohttp.ClientSession, path: str
) -> None:
    body = await _post_raw(session, path, b"{not json")
    assert body["code"] == 4000
    assert body["msg"] == "Invalid request body: the body is not a valid JSON object."


async def test_cozepy_user_id_as_a_number_is_4000(emu: Emulator) -> None:
    cozepy = _cozepy()
    async with cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        question = [cozepy.Message.build_user_question_text("x")]
        with pytest.raises(cozepy.CozeAPIError) as info:
            await coze.chat.create(bot_id=ECHO_BOT_ID, user_id=42, additional_messages=question)
        assert (info.value.code, info.value.msg) == (4000, NOT_A_CHAT)


# ----------------------------------------------------------------------------- item 5


async def _oauth_token(emu: Emulator) -> str:
    code = emu.oauth.issue_code(client_id="web-app", redirect_uri="http://localhost/cb")
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "web-app",
        "redirect_uri": "http://localhost/cb",
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{emu.url}/api/permission/oauth2/token", json=body) as resp,
    ):
        token = (await resp.json())["access_token"]
    assert token.startswith("czu_")
    return str(token)


async def test_post_retrieve_refuses_oauth_tokens(emu: Emulator) -> None:
    oauth = await _oauth_token(emu)
    async with aiohttp.ClientSession(base_url=emu.url) as s:
        for token in (emu.token, oauth):
            headers = {"Authorization": f"Bearer {token}"}
            async with s.post("/v3/chat", json=chat_body(), headers=headers) as resp:
                chat = (await resp.json())["data"]
            params = {"conversation_id": chat["conversation_id"], "chat_id": chat["id"]}
            async with s.get("/v3/chat/retrieve", params=params, headers=headers) as resp:
                assert (await resp.json())["code"] == 0
            async with s.post("/v3/chat/retrieve", params=params, headers=headers) as resp:
                body = await resp.json()
            if token == oauth:
                assert (body["code"], body["msg"]) == (4100, "authentication is invalid")
            else:
                assert body["code"] == 0  # a personal token may POST


async def test_cozepy_retrieve_fails_with_an_oauth_token(emu: Emulator) -> None:
    cozepy = _cozepy()
    oauth = await _oauth_token(emu)
    question = [cozepy.Message.build_user_question_text("x")]
    async with cozepy.AsyncHTTPClient() as http:
        for token in (emu.token, oauth):
            coze = cozepy.AsyncCoze(
                auth=cozepy.AsyncTokenAuth(token), base_url=emu.url, http_client=http
            )
            chat = await coze.chat.create(
                bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question
            )
            if token == emu.token:
                got = await coze.chat.retrieve(
                    conversation_id=chat.conversation_id, chat_id=chat.id
                )
                assert got.id == chat.id
            else:
                # cozepy 0.20.0 retrieves with POST: what Coze refuses under OAuth.
                with pytest.raises(cozepy.CozeAPIError) as info:
                    await coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
                assert info.value.code == 4100


async def test_sdk_retrieves_with_get_under_oauth(emu: Emulator) -> None:
    oauth = await _oauth_token(emu)
    async with AsyncCoze(token=oauth, base_url=emu.url) as coze:
        chat = await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("x")])
        got = await coze.chat.retrieve(conversation_id=chat.conversation_id, chat_id=chat.id)
        assert got.id == chat.id
    retrieves = [r for r in emu.requests if r.path == "/v3/chat/retrieve"]
    assert [r.method for r in retrieves] == ["GET"]


# ----------------------------------------------------------------------------- item 7

LOGID_RE = re.compile(r"^(\d{14})([0-9A-F]{20})$")


def _raw_logids(resp: aiohttp.ClientResponse) -> list[bytes]:
    """The logid header's name exactly as it came over the wire (raw_headers keep case)."""
    return [name for name, _ in resp.raw_headers if name.lower() == b"x-tt-logid"]


async def test_logid_format_is_beijing_time_and_20_hex() -> None:
    from coze_async.emulator.wire import new_logid

    before = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
    logids = {new_logid() for _ in range(200)}
    after = datetime.now(timezone(timedelta(hours=8)))
    assert len(logids) == 200
    for logid in logids:
        match = LOGID_RE.match(logid)
        assert match, logid
        stamp = datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(
            tzinfo=timezone(timedelta(hours=8))
        )
        assert before <= stamp <= after


async def test_logid_header_is_spelled_as_coze_spells_it(emu: Emulator) -> None:
    auth = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(base_url=emu.url) as s:
        requests = [
            s.post("/v3/chat", json=chat_body(), headers=auth),  # JSON envelope
            s.post("/v3/chat", json=chat_body(stream=True), headers=auth),  # SSE
            s.post("/v3/chat", json=chat_body()),  # 4100
            s.get("/v3/no-such-route", headers=auth),  # 404 from routing
            s.post("/api/permission/oauth2/token", json={}),  # OAuth error body
            s.get("/v3/chat", headers=auth),  # 405 from routing
            s.post(
                "/v3/chat",
                json=chat_body(),
                headers={**auth, "x-coze-emulator-fault": "html-502"},
            ),
        ]
        for pending in requests:
            async with pending as resp:
                await resp.read()
                assert _raw_logids(resp) == [b"X-Tt-Logid"], (resp.url, resp.raw_headers)
                assert LOGID_RE.match(resp.headers["X-Tt-Logid"])


# ----------------------------------------------------------------------------- item 8

COZE_TEXTS = {
    4000: NOT_A_CHAT,
    4016: OCCUPIED,
    4100: "authentication is invalid",
    4101: (
        "The token you entered is incorrect. Please double-check and try again. For more "
        "information, refer to https://coze.com/docs/developer_guides/authentication"
    ),
    5000: (
        "We're currently experiencing server issues. Please try your request again after a "
        "short delay. If the problem persists, contact our support team."
    ),
}


@pytest.mark.parametrize("code", sorted(COZE_TEXTS))
async def test_error_texts_are_coze_s(session: aiohttp.ClientSession, code: int) -> None:
    headers = {"x-coze-emulator-fault": f"json-error={code}"}
    async with session.post("/v3/chat", json=chat_body(), headers=headers) as resp:
        body = await resp.json()
    assert (body["code"], body["msg"]) == (code, COZE_TEXTS[code])


async def test_mid_stream_5000_uses_coze_s_text(session: aiohttp.ClientSession) -> None:
    headers = {"x-coze-emulator-fault": "error-at=2"}
    async with session.post("/v3/chat", json=chat_body(stream=True), headers=headers) as resp:
        raw = (await resp.read()).decode()
    last = raw.strip().split("\n\n")[-1]
    assert last == "event:error\ndata:" + json.dumps(
        {"code": 5000, "msg": COZE_TEXTS[5000]}, separators=(",", ":"), ensure_ascii=False
    )


async def test_cozepy_reads_coze_s_texts(emu: Emulator) -> None:
    cozepy = _cozepy()
    question = [cozepy.Message.build_user_question_text("x")]
    async with cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth("not-a-token"), base_url=emu.url, http_client=http
        )
        with pytest.raises(cozepy.CozeAPIError) as info:
            await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u", additional_messages=question)
        assert (info.value.code, info.value.msg) == (4100, COZE_TEXTS[4100])


# ----------------------------------------------------------------------------- item 1: callers


def test_bench_cli_and_benchmarks_use_the_documented_ids() -> None:
    """They keep the ids literal (the SDK must not import the emulator to learn them): the
    literals must stay the emulator's documented ids, now that other ids answer 4200."""
    import importlib.util
    from pathlib import Path

    from coze_async import cli
    from coze_async.bench import runner
    from coze_async.emulator import STREAM_WORKFLOW_ID

    assert runner._EMU_BOT_ID == ECHO_BOT_ID
    assert runner._EMU_WORKFLOW_ID == STREAM_WORKFLOW_ID
    assert cli._ECHO_BOT_ID == ECHO_BOT_ID
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "e2e.py"
    spec = importlib.util.spec_from_file_location("_e2e_ids", path)
    assert spec is not None and spec.loader is not None
    e2e = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(e2e)
    assert e2e.ECHO_BOT_ID == ECHO_BOT_ID
