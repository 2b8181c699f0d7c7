"""OAuth against the emulator over real sockets: JWT service apps, PKCE and device code."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import anyio
import pytest

from coze_async import (
    COZE_CN_BASE_URL,
    AccessDeniedError,
    AsyncCoze,
    AuthenticationError,
    AuthorizationPendingError,
    DeviceOAuth,
    ExpiredTokenError,
    InvalidArgumentError,
    InvalidClientError,
    InvalidGrantError,
    JWTAuth,
    Message,
    MissingExtraError,
    OAuthError,
    OAuthToken,
    PKCEOAuth,
    RetryPolicy,
)
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator

pytestmark = pytest.mark.anyio

CLIENT_ID = "1170000000001"
KID = "kid-cn-0001"
JWT_PATH = "/api/permission/oauth2/token"


class FakeClock:
    """Unix time that moves only when the test says so; shared by client and emulator."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def _pem_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

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


@pytest.fixture(scope="session")
def keys() -> tuple[str, str]:
    return _pem_pair()


@pytest.fixture(scope="session")
def other_keys() -> tuple[str, str]:
    return _pem_pair()


@pytest.fixture
async def emu(keys: tuple[str, str]) -> AsyncIterator[Emulator]:
    async with Emulator() as server:
        server.oauth.add_jwt_app(client_id=CLIENT_ID, public_key=keys[1], kid=KID)
        yield server


@pytest.fixture
def clock(emu: Emulator) -> FakeClock:
    fake = FakeClock()
    emu.oauth.clock = fake
    return fake


def jwt_auth(keys: tuple[str, str], **kw: object) -> JWTAuth:
    args: dict[str, object] = {
        "client_id": CLIENT_ID,
        "private_key": keys[0],
        "public_key_id": KID,
    }
    args.update(kw)
    return JWTAuth(**args)  # type: ignore[arg-type]


def token_requests(emu: Emulator) -> list[str]:
    """The bearer of every token-endpoint request, in order."""
    return [r.headers.get("Authorization", "") for r in emu.requests if r.path == JWT_PATH]


# ---------------------------------------------------------------------------- JWT


async def test_the_jwt_carries_coze_claims_and_a_fresh_jti(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    import jwt

    auth = jwt_auth(keys, base_url=emu.url, session_name="user-42")
    first, second = auth.build_jwt(), auth.build_jwt()
    header = jwt.get_unverified_header(first)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": KID}
    claims = jwt.decode(first, keys[1], algorithms=["RS256"], audience="127.0.0.1")
    assert claims["iss"] == CLIENT_ID
    assert claims["aud"] == "127.0.0.1"  # the base URL's host name only, no port
    assert claims["session_name"] == "user-42"
    assert isinstance(claims["iat"], int) and claims["exp"] > claims["iat"]
    assert len(claims["jti"]) >= 32
    assert (
        jwt.decode(second, keys[1], algorithms=["RS256"], audience="127.0.0.1")["jti"]
        != (claims["jti"])
    )


async def test_the_default_audience_is_the_cn_api_host(keys: tuple[str, str]) -> None:
    auth = jwt_auth(keys)
    assert auth.base_url == COZE_CN_BASE_URL
    assert auth.audience == "api.coze.cn"


async def test_exchange_sends_the_jwt_grant_and_caches_the_token(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys, base_url=emu.url, ttl=1200)
    before = int(time.time())
    token = await auth.get_token()
    assert token.access_token.startswith("czs_")
    assert token.refresh_token is None
    # expires_in is an absolute Unix timestamp, not a duration.
    assert before + 1200 <= token.expires_in <= int(time.time()) + 1201
    assert await auth.token() == token.access_token
    assert emu.oauth.exchanges["jwt"] == 1
    (request,) = [r for r in emu.requests if r.path == JWT_PATH]
    assert request.json == {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "duration_seconds": 1200,
    }  # no scope key when none was given
    assert request.headers["Authorization"].startswith("Bearer ey")


async def test_scope_is_sent_when_given(emu: Emulator, keys: tuple[str, str]) -> None:
    scope = {"account_permission": {"permission_list": ["Connector.botChat"]}}
    await jwt_auth(keys, base_url=emu.url, scope=scope).token()
    (request,) = [r for r in emu.requests if r.path == JWT_PATH]
    assert request.json["scope"] == scope


async def test_async_coze_hands_its_base_url_to_jwt_auth_and_chats(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys)  # no base_url: the client's is used, and aud follows it
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        assert auth.base_url == emu.url
        result = await coze.chat.create_and_poll(
            bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("早上好")], poll_interval=0.02
        )
        assert "早上好" in result.text
        stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("hi")])
        async with stream:
            snapshot = await stream.final()
        assert "hi" in snapshot.text
    assert emu.oauth.exchanges["jwt"] == 1


async def test_a_bound_jwt_auth_refuses_a_client_for_another_host(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys)
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        await coze.conversations.create()
        with pytest.raises(InvalidArgumentError, match="host-bound"):
            AsyncCoze(auth=auth, base_url="https://api.coze.com")


async def test_1000_concurrent_calls_share_one_exchange_also_around_an_expiry(
    emu: Emulator, keys: tuple[str, str], clock: FakeClock
) -> None:
    auth = jwt_auth(keys, clock=clock, ttl=900)
    failures: list[BaseException] = []

    async def call(coze: AsyncCoze) -> None:
        try:
            await coze.conversations.create()
        except Exception as exc:
            failures.append(exc)

    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(call, coze)
        assert failures == []
        assert emu.oauth.exchanges["jwt"] == 1
        assert len(token_requests(emu)) == 1

        clock.now += 890  # inside the refresh margin of the 900 s token: time to refresh
        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(call, coze)
    assert failures == []
    assert emu.oauth.exchanges["jwt"] == 2
    assert len(token_requests(emu)) == 2


async def test_tokens_expiring_mid_load_fail_no_call(
    emu: Emulator, keys: tuple[str, str], clock: FakeClock
) -> None:
    emu.oauth.token_ttl = 30
    # The emulator's clock runs 10 s ahead of the client's, more than the client's refresh
    # margin (3 s for a 30 s token): every lifetime ends with calls whose token the client
    # still trusts but the emulator has expired. They must be refreshed and retried.
    emu.oauth.clock = lambda: clock.now + 10
    auth = jwt_auth(keys, clock=clock)
    done = 0
    failures: list[BaseException] = []

    async def worker(coze: AsyncCoze) -> None:
        nonlocal done
        for _ in range(40):
            try:
                await coze.conversations.create()
            except Exception as exc:
                failures.append(exc)
            done += 1
            clock.now += 0.1  # time passes while the other calls are in flight

    async with AsyncCoze(auth=auth, base_url=emu.url) as coze, anyio.create_task_group() as tg:
        for _ in range(25):
            tg.start_soon(worker, coze)
    assert done == 1000
    assert failures == []
    assert emu.oauth.exchanges["jwt"] >= 4  # 100 s of calls, tokens good for ~20 s of them
    sent = [r for r in emu.requests if r.path == "/v1/conversation/create"]
    assert len(sent) > 1000  # some were refused with 4100 and retried with a fresh token


async def test_real_time_expiry_under_load(emu: Emulator, keys: tuple[str, str]) -> None:
    emu.oauth.token_ttl = 1  # real seconds: a few lifetimes pass during the load
    auth = jwt_auth(keys)
    failures: list[BaseException] = []
    calls = 0

    async def worker(coze: AsyncCoze) -> None:
        nonlocal calls
        while emu.oauth.exchanges["jwt"] < 3:
            try:
                await coze.conversations.create()
            except Exception as exc:
                failures.append(exc)
            calls += 1

    with anyio.fail_after(30):
        async with AsyncCoze(auth=auth, base_url=emu.url) as coze, anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(worker, coze)
    assert calls > 0
    assert failures == []


async def test_a_revoked_token_is_refreshed_once_and_the_calls_retried(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys)
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        await coze.conversations.create()
        old = await auth.token()
        emu.oauth.revoke(old)  # e.g. revoked by an admin: Coze answers 4100
        seen = len(emu.requests)
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(coze.conversations.create)
        # A chat (not idempotent) is safe to retry too: the server refused it before acting.
        await coze.chat.create(bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("a")])
        assert await auth.token() != old
    assert emu.oauth.exchanges["jwt"] == 2  # one refresh for all 100 failures
    rejected = [r for r in emu.requests[seen:] if r.headers.get("Authorization") == f"Bearer {old}"]
    assert 1 <= len(rejected) <= 100


async def test_a_stream_with_a_revoked_token_is_retried_before_the_headers(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys)
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        emu.oauth.revoke(await auth.token())
        stream = coze.chat.stream(bot_id=ECHO_BOT_ID, user_id="u1", messages=[Message.user("x")])
        async with stream:
            snapshot = await stream.final()
    assert "x" in snapshot.text
    assert emu.oauth.exchanges["jwt"] == 2


async def test_a_second_rejection_is_final(emu: Emulator) -> None:
    class StubbornAuth:
        """Refreshable in name only: hands out the same bad token again."""

        invalidations = 0

        async def token(self) -> str:
            return "czs_bad"

        async def invalidate(self, token: str) -> None:
            self.invalidations += 1

    auth = StubbornAuth()
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        with pytest.raises(AuthenticationError) as info:
            await coze.conversations.create()
    assert info.value.code == 4100
    assert auth.invalidations == 1
    assert len([r for r in emu.requests if r.path == "/v1/conversation/create"]) == 2


async def test_a_fixed_token_rejected_with_4100_is_not_retried(emu: Emulator) -> None:
    async with AsyncCoze(auth="pat_wrong", base_url=emu.url) as coze:
        with pytest.raises(AuthenticationError):
            await coze.conversations.create()
    assert len(emu.requests) == 1


async def test_a_replayed_jwt_is_refused(emu: Emulator, keys: tuple[str, str]) -> None:
    auth = jwt_auth(keys, base_url=emu.url)
    assertion = auth.build_jwt()
    token = await auth.exchange(assertion=assertion)
    assert token.access_token.startswith("czs_")
    with pytest.raises(InvalidClientError) as info:
        await auth.exchange(assertion=assertion)
    err = info.value
    assert err.error_code == "invalid_client"
    assert err.http_status == 401
    assert err.logid
    assert "jti" in str(err) and "only once" in str(err)
    assert assertion not in str(err)
    assert emu.oauth.exchanges["jwt"] == 1


async def test_a_kid_of_the_other_region_gives_a_typed_error_that_explains(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    # A key registered for the app on the other region: unknown to this host.
    auth = jwt_auth(keys, public_key_id="kid-com-9999")
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        with pytest.raises(InvalidClientError) as info:
            await coze.conversations.create()
    err = info.value
    assert isinstance(err, AuthenticationError)  # what a wrong-region token gives too
    assert err.http_status == 401
    assert err.error_code == "invalid_client"
    assert err.error_message == "invalid jwt: kid not been registred"
    text = str(err)
    assert "the JWT's kid is not registered on 127.0.0.1" in text
    assert "coze.cn" in text and "api.coze.com" in text
    assert "public_key_id" in text and "base_url" in text
    assert err.logid is not None and err.logid in text
    assert len(token_requests(emu)) == 1  # the exchange failed; no API call was sent
    assert [r.path for r in emu.requests] == [JWT_PATH]


async def test_a_jwt_for_another_audience_is_refused_with_a_hint(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    wrong = jwt_auth(keys, base_url=emu.url, audience="api.coze.com")
    with pytest.raises(InvalidClientError, match="aud"):
        await wrong.token()
    # A base_url that is a proxy in front of Coze: aud stays the real host.
    emu.oauth.audience = "api.coze.cn"
    proxied = jwt_auth(keys, base_url=emu.url, audience="api.coze.cn")
    assert (await proxied.token()).startswith("czs_")


async def test_a_jwt_signed_with_another_key_is_refused(
    emu: Emulator, keys: tuple[str, str], other_keys: tuple[str, str]
) -> None:
    auth = jwt_auth(other_keys, base_url=emu.url)
    with pytest.raises(InvalidClientError, match="signature"):
        await auth.token()


async def test_an_expired_jwt_is_refused(emu: Emulator, keys: tuple[str, str]) -> None:
    auth = jwt_auth(keys, base_url=emu.url, clock=lambda: time.time() - 3600)
    with pytest.raises(InvalidClientError, match="clock"):
        await auth.exchange(assertion=auth.build_jwt())


async def test_a_client_id_that_does_not_own_the_kid_is_refused(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys, base_url=emu.url, client_id="1170000000999")
    with pytest.raises(InvalidClientError, match="client_id is not the app"):
        await auth.token()


async def test_the_emulator_without_pyjwt_names_the_extra(
    emu: Emulator, keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = jwt_auth(keys, base_url=emu.url)
    assertion = auth.build_jwt()
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(OAuthError) as info:
        await auth.exchange(assertion=assertion)
    assert info.value.error_code == "internal_error"
    assert info.value.http_status == 500
    assert "coze-async[jwt]" in str(info.value)


async def test_a_failed_exchange_fails_every_waiter_once_then_is_tried_again(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys, base_url=emu.url, public_key_id="nope")
    results = await asyncio.gather(*(auth.token() for _ in range(50)), return_exceptions=True)
    assert all(isinstance(r, InvalidClientError) for r in results)
    assert len(token_requests(emu)) == 1
    with pytest.raises(InvalidClientError):
        await auth.token()
    assert len(token_requests(emu)) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_exchange(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    # The token endpoint answers slowly, so both waiters are parked on the same exchange.
    async with aiohttp.ClientSession(headers={FAULT_HEADER: "slow-headers=0.1"}) as session:
        auth = jwt_auth(keys, base_url=emu.url, session=session)
        first = asyncio.ensure_future(auth.token())
        second = asyncio.ensure_future(auth.token())
        await asyncio.sleep(0)  # let both start waiting
        first.cancel()
        token = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await auth.token() == token
    assert emu.oauth.exchanges["jwt"] == 1


async def test_missing_extra_names_it(
    keys: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)  # as if PyJWT were not installed
    with pytest.raises(MissingExtraError) as info:
        jwt_auth(keys)
    assert "pip install 'coze-async[jwt]'" in str(info.value)
    assert info.value.extra == "jwt"
    assert isinstance(info.value, ImportError)


async def test_bad_arguments_are_refused_without_echoing_the_key() -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----"
    with pytest.raises(InvalidArgumentError) as info:
        JWTAuth(client_id=CLIENT_ID, private_key=secret, public_key_id=KID)
    assert "c2VjcmV0" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    for ttl in (0, 86400, 1.5):
        with pytest.raises(InvalidArgumentError, match="ttl"):
            JWTAuth(client_id=CLIENT_ID, private_key=secret, public_key_id=KID, ttl=ttl)  # type: ignore[arg-type]


async def test_reprs_errors_and_logs_never_show_secrets(
    emu: Emulator, keys: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="coze_async")
    auth = jwt_auth(keys)
    async with AsyncCoze(auth=auth, base_url=emu.url) as coze:
        await coze.conversations.create()
        token = await auth.get_token()
        emu.oauth.revoke(token.access_token)
        await coze.conversations.create()  # a 4100, a refresh and a retry, all logged
        fresh = await auth.get_token()
        texts = [repr(auth), str(auth), repr(coze), str(coze), repr(token), str(fresh)]
    body = "".join(keys[0].splitlines()[1:-1])
    for text in [*texts, caplog.text]:
        for secret in (token.access_token, fresh.access_token, body[:40]):
            assert secret not in text
    assert "czs_***" in repr(auth)
    assert "czs_***" in repr(token)


async def test_auth_accepts_a_string_or_an_async_callable(emu: Emulator) -> None:
    async with AsyncCoze(auth=emu.token, base_url=emu.url) as coze:
        await coze.conversations.create()
        assert emu.token not in repr(coze)

    async def from_vault() -> str:
        return emu.token

    async with AsyncCoze(auth=from_vault, base_url=emu.url) as coze:
        await coze.conversations.create()
    with pytest.raises(InvalidArgumentError, match="callable"):
        AsyncCoze(auth=42, base_url=emu.url)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- PKCE


async def _follow_authorize(url: str) -> dict[str, str]:
    """Play the browser: the emulator consents at once and redirects with a code."""
    async with aiohttp.ClientSession() as session, session.get(url, allow_redirects=False) as r:
        assert r.status == 302
        location = r.headers["Location"]
    assert location.startswith("https://app.example/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_authorize_url_carries_an_s256_challenge_of_the_verifier() -> None:
    oauth = PKCEOAuth(client_id="pkce-app")
    req = oauth.authorize_url(redirect_uri="https://app.example/callback", state="st-1")
    parts = urlsplit(req.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://www.coze.cn/api/permission/oauth2/authorize"
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expected = base64.urlsafe_b64encode(hashlib.sha256(req.code_verifier.encode()).digest())
    assert query == {
        "response_type": "code",
        "client_id": "pkce-app",
        "redirect_uri": "https://app.example/callback",
        "state": "st-1",
        "code_challenge": expected.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    assert "=" not in query["code_challenge"]
    assert 43 <= len(req.code_verifier) <= 128
    assert req.code_verifier not in repr(req)
    com = PKCEOAuth(client_id="pkce-app", base_url="https://api.coze.com")
    assert com.authorize_url(redirect_uri="x").url.startswith("https://www.coze.com/")


@pytest.mark.parametrize("method", ["S256", "plain"])
async def test_pkce_code_exchange_and_refresh(emu: Emulator, method: str) -> None:
    oauth = PKCEOAuth(client_id="pkce-app", base_url=emu.url)
    redirect = "https://app.example/callback"
    req = oauth.authorize_url(redirect_uri=redirect, code_challenge_method=method)  # type: ignore[arg-type]
    query = await _follow_authorize(req.url)
    assert query["state"] == req.state
    token = await oauth.exchange_code(
        code=query["code"], redirect_uri=redirect, code_verifier=req.code_verifier
    )
    assert token.access_token.startswith("czu_")
    assert token.refresh_token and token.expires_in > time.time()
    async with AsyncCoze(auth=token.access_token, base_url=emu.url) as coze:
        await coze.conversations.create()

    with pytest.raises(InvalidGrantError):  # a code is single-use
        await oauth.exchange_code(
            code=query["code"], redirect_uri=redirect, code_verifier=req.code_verifier
        )

    renewed = await oauth.refresh(refresh_token=token.refresh_token)
    assert renewed.access_token != token.access_token
    assert renewed.refresh_token not in (None, token.refresh_token)
    with pytest.raises(InvalidGrantError) as info:  # the old refresh token was rotated out
        await oauth.refresh(refresh_token=token.refresh_token)
    assert info.value.http_status == 400
    assert token.refresh_token not in str(info.value)
    assert emu.oauth.exchanges["authorization_code"] == 1
    assert emu.oauth.exchanges["refresh_token"] == 1


async def test_pkce_refuses_a_wrong_verifier(emu: Emulator) -> None:
    oauth = PKCEOAuth(client_id="pkce-app", base_url=emu.url)
    req = oauth.authorize_url(redirect_uri="https://app.example/callback")
    code = (await _follow_authorize(req.url))["code"]
    with pytest.raises(InvalidGrantError, match="code_verifier"):
        await oauth.exchange_code(
            code=code, redirect_uri="https://app.example/callback", code_verifier="x" * 64
        )


async def test_a_web_app_sends_its_secret(emu: Emulator) -> None:
    emu.oauth.add_web_app(client_id="web-app", client_secret="s3cret")
    code = emu.oauth.issue_code(client_id="web-app", redirect_uri="https://w.example/cb")
    without = PKCEOAuth(client_id="web-app", base_url=emu.url)
    with pytest.raises(OAuthError) as info:
        await without.exchange_code(
            code=code, redirect_uri="https://w.example/cb", code_verifier=None
        )
    assert info.value.error_code == "invalid_request"
    assert info.value.error_message == "invalid request: client_secret"
    code = emu.oauth.issue_code(client_id="web-app", redirect_uri="https://w.example/cb")
    web = PKCEOAuth(client_id="web-app", base_url=emu.url, client_secret="s3cret")
    token = await web.exchange_code(
        code=code, redirect_uri="https://w.example/cb", code_verifier=None
    )
    assert token.refresh_token is not None
    assert (await web.refresh(refresh_token=token.refresh_token)).access_token.startswith("czu_")


# ---------------------------------------------------------------------------- device code


@pytest.fixture
def fast_device(emu: Emulator) -> DeviceOAuth:
    emu.oauth.device_interval = 0.01  # seconds: polling does not hold the test up
    return DeviceOAuth(client_id="device-app", base_url=emu.url)


def _poll_times(emu: Emulator) -> list[float]:
    return [
        r.at
        for r in emu.requests
        if r.path == JWT_PATH and r.json and r.json.get("grant_type", "").endswith("device_code")
    ]


async def test_device_flow_pending_then_slow_down_then_success(
    emu: Emulator, fast_device: DeviceOAuth
) -> None:
    code = await fast_device.request_code()
    assert code.interval == 0.01 and code.expires_in == 300
    assert code.verification_url.endswith(f"?user_code={code.user_code}")
    assert code.device_code not in repr(code)
    emu.oauth.script_device(code.user_code, ["authorization_pending", "slow_down"])
    emu.oauth.approve_device(code.user_code)
    token = await fast_device.poll(code=code, slow_down_step=0.2)
    assert token.access_token.startswith("czu_") and token.refresh_token
    times = _poll_times(emu)
    assert len(times) == 3  # pending, slow_down, then the token
    # After slow_down the wait grew by slow_down_step (0.01 -> 0.21 s).
    assert times[2] - times[1] >= 0.2
    async with AsyncCoze(auth=token.access_token, base_url=emu.url) as coze:
        await coze.conversations.create()
    renewed = await fast_device.refresh(refresh_token=token.refresh_token)
    assert renewed.access_token != token.access_token


async def test_device_flow_waits_while_pending(emu: Emulator, fast_device: DeviceOAuth) -> None:
    code = await fast_device.request_code()
    emu.oauth.script_device(code.user_code, ["authorization_pending"] * 5)
    emu.oauth.approve_device(code.user_code)
    await fast_device.poll(code=code)
    assert len(_poll_times(emu)) == 6


async def test_device_flow_denied(emu: Emulator, fast_device: DeviceOAuth) -> None:
    code = await fast_device.request_code()
    emu.oauth.deny_device(code.user_code)
    with pytest.raises(AccessDeniedError) as info:
        await fast_device.poll(code=code)
    assert info.value.error_code == "access_denied"
    assert "declined" in str(info.value)


async def test_device_flow_expired_at_the_server(emu: Emulator, fast_device: DeviceOAuth) -> None:
    code = await fast_device.request_code()
    emu.oauth.expire_device(code.user_code)
    with pytest.raises(ExpiredTokenError) as info:
        await fast_device.poll(code=code)
    assert info.value.error_code == "expired_token"
    assert info.value.http_status == 400


async def test_device_flow_stops_when_the_code_expires_locally(
    emu: Emulator, fast_device: DeviceOAuth
) -> None:
    emu.oauth.device_expires_in = 0
    code = await fast_device.request_code()
    with pytest.raises(ExpiredTokenError, match="expired"):
        await fast_device.poll(code=code)
    assert _poll_times(emu) == []  # no poll after the code's own deadline


async def test_device_flow_gives_up_after_timeout(emu: Emulator, fast_device: DeviceOAuth) -> None:
    code = await fast_device.request_code()
    with pytest.raises(AuthorizationPendingError) as info:
        await fast_device.poll(code=code, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert info.value.error_code == "authorization_pending"
    assert len(_poll_times(emu)) >= 1


async def test_device_flow_can_be_approved_from_a_browser(
    emu: Emulator, fast_device: DeviceOAuth
) -> None:
    code = await fast_device.request_code()
    async with aiohttp.ClientSession() as session:
        async with session.get(code.verification_url) as page:
            assert page.status == 200
            assert code.user_code in await page.text()
        async with session.get(code.verification_url + "&decision=approve") as answer:
            assert answer.status == 200
    token = await fast_device.poll(code=code)
    assert isinstance(token, OAuthToken)


async def test_oauth_errors_map_from_the_error_body(emu: Emulator) -> None:
    device = DeviceOAuth(client_id="device-app", base_url=emu.url)
    with pytest.raises(OAuthError) as info:
        await device.refresh(refresh_token="never-issued")
    assert type(info.value) is InvalidGrantError
    assert info.value.code is None  # no envelope code: OAuth bodies have error_code instead
    assert str(info.value).startswith("[invalid_grant, http_status=400] invalid grant:")


async def test_retry_policy_does_not_repeat_a_refused_exchange(
    emu: Emulator, keys: tuple[str, str]
) -> None:
    auth = jwt_auth(keys, public_key_id="nope")
    async with AsyncCoze(auth=auth, base_url=emu.url, retry=RetryPolicy(max_retries=3)) as coze:
        with pytest.raises(InvalidClientError):
            await coze.chat.retrieve(conversation_id="1", chat_id="2")
    assert len(token_requests(emu)) == 1
