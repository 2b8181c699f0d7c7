"""Every public method of the messages and files resources takes the five per-call options
and they reach the wire (the emulator's recorded request); an unknown keyword is refused by
name before anything is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from coze_async import AsyncCoze, BadRequestError, Message, RateLimitError, RetryPolicy, Timeouts
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator
from coze_async.errors import TransportTimeoutError

pytestmark = pytest.mark.anyio


@attrs.frozen
class Setup:
    """A conversation with one answered chat, and an uploaded file."""

    conversation_id: str
    question_id: str
    answer_id: str
    file_id: str


async def _setup(coze: AsyncCoze) -> Setup:
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user("你好")]
    ) as stream:
        snap = await stream.final()
    assert snap.chat is not None
    cid = snap.chat.conversation_id
    question, answer = sorted(
        [m async for m in coze.conversations.messages.list(conversation_id=cid)],
        key=lambda m: m.type != "question",
    )
    file = await coze.files.upload(file=("a.txt", b"hello"))
    return Setup(cid, question.id, answer.id, file.id)


Invoke = Callable[[AsyncCoze, Setup, dict[str, Any]], Awaitable[object]]


async def _list(coze: AsyncCoze, s: Setup, kw: dict[str, Any]) -> object:
    return [
        m async for m in coze.conversations.messages.list(conversation_id=s.conversation_id, **kw)
    ]


def _ids(s: Setup) -> dict[str, str]:
    return {"conversation_id": s.conversation_id, "message_id": s.question_id}


def _answer(s: Setup) -> dict[str, str]:
    return {"conversation_id": s.conversation_id, "message_id": s.answer_id}


METHODS: dict[str, Invoke] = {
    "messages.create": lambda coze, s, kw: coze.conversations.messages.create(
        conversation_id=s.conversation_id, content="再来一条", **kw
    ),
    "messages.list": _list,
    "messages.retrieve": lambda coze, s, kw: coze.conversations.messages.retrieve(**_ids(s), **kw),
    "messages.update": lambda coze, s, kw: coze.conversations.messages.update(
        **_ids(s), content="改过了", **kw
    ),
    "messages.delete": lambda coze, s, kw: coze.conversations.messages.delete(**_ids(s), **kw),
    "messages.set_feedback": lambda coze, s, kw: coze.conversations.messages.set_feedback(
        **_answer(s), feedback_type="like", **kw
    ),
    "messages.delete_feedback": lambda coze, s, kw: coze.conversations.messages.delete_feedback(
        **_answer(s), **kw
    ),
    "files.upload": lambda coze, s, kw: coze.files.upload(file=("b.txt", b"world"), **kw),
    "files.retrieve": lambda coze, s, kw: coze.files.retrieve(file_id=s.file_id, **kw),
}


def test_the_table_covers_every_public_method() -> None:
    coze = AsyncCoze(token="pat_test")
    for group, resource in (("messages", coze.conversations.messages), ("files", coze.files)):
        public = {n for n in dir(type(resource)) if not n.startswith("_")}
        assert public == {m.split(".")[1] for m in METHODS if m.startswith(group + ".")}


@pytest.fixture(params=sorted(METHODS))
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _sent(coze: AsyncCoze, emu: Emulator, method: str, kw: dict[str, Any]) -> list[Any]:
    """Run ``method`` with options ``kw``; the requests it sent."""
    s = await _setup(coze)
    start = len(emu.requests)
    await METHODS[method](coze, s, kw)
    return emu.requests[start:]


async def test_extra_headers_reach_the_wire(coze: AsyncCoze, emu: Emulator, method: str) -> None:
    sent = await _sent(coze, emu, method, {"extra_headers": {"X-House-Probe": "yes"}})
    assert sent and all(r.headers.get("x-house-probe") == "yes" for r in sent)


async def test_extra_query_reaches_the_wire(coze: AsyncCoze, emu: Emulator, method: str) -> None:
    sent = await _sent(coze, emu, method, {"extra_query": {"house_probe": "q"}})
    assert sent and all(r.query.get("house_probe") == "q" for r in sent)


async def test_extra_body_reaches_the_wire(coze: AsyncCoze, emu: Emulator, method: str) -> None:
    if method == "files.upload":
        # The emulator does not record multipart bodies; an extra form field named "file"
        # is a second file part, which it refuses (4301): the field went out.
        with pytest.raises(BadRequestError) as info:
            await _sent(coze, emu, method, {"extra_body": {"file": "b"}})
        assert info.value.code == 4301
        return
    sent = await _sent(coze, emu, method, {"extra_body": {"house_probe": "b"}})
    # An extra top-level JSON key, also on GET and DELETE.
    assert sent and all(r.json.get("house_probe") == "b" for r in sent)


async def test_timeouts_apply_to_the_call(coze: AsyncCoze, emu: Emulator, method: str) -> None:
    # The client's read timeout (10 s) would wait out the slow answer; the call's does not.
    with pytest.raises(TransportTimeoutError):
        await _sent(
            coze,
            emu,
            method,
            {
                "extra_headers": {FAULT_HEADER: "slow-headers=2"},
                "timeouts": Timeouts(read=0.2),
                "retry": RetryPolicy.none(),
            },
        )


async def test_retry_overrides_the_clients_policy(
    coze: AsyncCoze, emu: Emulator, method: str
) -> None:
    # The client (max_retries=2) would retry a 4013; the call's policy does not.
    fault = {"extra_headers": {FAULT_HEADER: "json-error=4013;times=1"}}
    s = await _setup(coze)
    start = len(emu.requests)
    with pytest.raises(RateLimitError):
        await METHODS[method](coze, s, {**fault, "retry": RetryPolicy.none()})
    assert len(emu.requests) - start == 1
    # And without it, the client's policy retries: the second attempt succeeds.
    emu.fault_counter.reset()
    start = len(emu.requests)
    await METHODS[method](coze, s, fault)
    assert len(emu.requests) - start == 2


async def test_an_unknown_keyword_is_refused_by_name(
    coze: AsyncCoze, emu: Emulator, method: str
) -> None:
    s = await _setup(coze)
    start = len(emu.requests)
    with pytest.raises(TypeError, match="'extra_header'"):
        await METHODS[method](coze, s, {"extra_header": {"a": "b"}})
    assert len(emu.requests) == start  # refused before anything was sent


def test_a_listing_refuses_an_unknown_keyword_up_front() -> None:
    coze = AsyncCoze(token="pat_test")
    with pytest.raises(TypeError, match="'extra_header'"):
        coze.conversations.messages.list(conversation_id="c1", extra_header={"a": "b"})  # type: ignore[call-arg]


def test_the_oauth_package_keeps_its_public_names() -> None:
    import coze_async
    from coze_async import oauth

    assert set(oauth.__all__) == {
        "DEVICE_GRANT_TYPE",
        "JWT_GRANT_TYPE",
        "AuthorizeRequest",
        "DeviceCode",
        "DeviceOAuth",
        "JWTAuth",
        "OAuthToken",
        "PKCEOAuth",
        "code_challenge",
    }
    for name in ("AuthorizeRequest", "DeviceCode", "DeviceOAuth", "JWTAuth", "OAuthToken"):
        assert getattr(coze_async, name) is getattr(oauth, name)


async def test_an_oauth_connect_failure_is_mapped_by_the_http_seam() -> None:
    from coze_async import DeviceOAuth
    from coze_async.errors import TransportError

    flow = DeviceOAuth(client_id="dev-app", base_url="http://127.0.0.1:1", timeout=5)
    with pytest.raises(TransportError) as info:
        await flow.request_code()
    assert info.value.phase == "connect"
    assert info.value.__context__ is None  # no aiohttp exception (with its headers) chained
