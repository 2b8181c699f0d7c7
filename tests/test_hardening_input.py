"""Hardening (issue 12): ids in URL paths, clear-text base URLs, and bad input refused early.

Every test talks to the emulator over loopback and asserts what a user would notice: the typed
error, that its message names the argument, and that the server saw nothing (or saw exactly
the encoded path).
"""

from __future__ import annotations

import ast
import inspect
import pathlib
from collections.abc import Callable

import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ContentItem,
    InvalidArgumentError,
    Message,
    NotFoundError,
    RetryPolicy,
    Timeouts,
    ToolOutput,
)
from coze_async.emulator import ECHO_BOT_ID, Emulator

pytestmark = pytest.mark.anyio

RESOURCES = pathlib.Path(__file__).parent.parent / "coze_async" / "resources"


# -- item 2: ids in URL paths -----------------------------------------------------------------


async def test_path_ids_are_encoded_as_one_segment(coze: AsyncCoze, emu: Emulator) -> None:
    with pytest.raises(NotFoundError):
        await coze.workflows.runs.retrieve(
            workflow_id="../../../v3/chat/retrieve?x=", execute_id="e"
        )
    [seen] = emu.requests
    assert seen.method == "GET"
    # The emulator records the decoded path: the id arrived whole, inside its own segment.
    assert seen.path == "/v1/workflows/../../../v3/chat/retrieve?x=/run_histories/e"
    assert seen.raw_query == ""


@pytest.mark.parametrize("value", ["a#b", "a%2Fb", "a/b", "a?b", "a b", "é"])
async def test_path_ids_keep_reserved_characters(
    coze: AsyncCoze, emu: Emulator, value: str
) -> None:
    with pytest.raises(NotFoundError):
        await coze.workflows.node_output(workflow_id="w", execute_id=value, node_execute_uuid="u")
    [seen] = emu.requests
    assert seen.path == f"/v1/workflows/w/run_histories/{value}/execute_nodes/u"
    assert seen.raw_query == ""


@pytest.mark.parametrize("value", [".", "..", "", "  "])
async def test_dot_and_blank_path_ids_are_refused(
    coze: AsyncCoze, emu: Emulator, value: str
) -> None:
    calls = [
        ("conversation_id", coze.conversations.delete(conversation_id=value)),
        ("conversation_id", coze.conversations.clear(conversation_id=value)),
        ("conversation_id", coze.conversations.update(conversation_id=value, name="n")),
        ("workflow_id", coze.workflows.runs.retrieve(workflow_id=value, execute_id="e")),
        ("execute_id", coze.workflows.runs.retrieve(workflow_id="w", execute_id=value)),
        (
            "node_execute_uuid",
            coze.workflows.node_output(workflow_id="w", execute_id="e", node_execute_uuid=value),
        ),
        (
            "message_id",
            coze.conversations.messages.delete_feedback(conversation_id="c", message_id=value),
        ),
        (
            "message_id",
            coze.conversations.messages.set_feedback(
                conversation_id="c", message_id=value, feedback_type="like"
            ),
        ),
    ]
    for name, call in calls:
        with pytest.raises(InvalidArgumentError, match=name):
            await call
    assert emu.requests == []


async def test_dot_id_in_query_is_sent_as_data(coze: AsyncCoze, emu: Emulator) -> None:
    # In a query parameter "." is plain data (no path segment to collapse): it is sent.
    with pytest.raises(BadRequestError, match="does not exist"):
        await coze.conversations.retrieve(conversation_id="..")
    assert [r.query for r in emu.requests] == [{"conversation_id": ".."}]


def test_resources_build_paths_in_one_place() -> None:
    # No resource may format a path itself (an f-string starting with "/"): only the
    # path helper in _base.py quotes ids, so a new endpoint cannot forget to.
    offenders = []
    for file in RESOURCES.glob("*.py"):
        if file.name == "_base.py":
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if isinstance(first, ast.Constant) and str(first.value).startswith("/"):
                    offenders.append(f"{file.name}:{node.lineno}")
    assert offenders == []


# -- item 5: plain http:// to another host ----------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://api.example.test", "http://10.1.2.3:8080/", "http://[2001:db8::1]:80"]
)
async def test_clear_text_base_url_warns_once_naming_the_host(url: str) -> None:
    host = url.split("//")[1].rstrip("/").rsplit(":", 1)[0].strip("[]")
    with pytest.warns(UserWarning, match="clear text") as caught:
        client = AsyncCoze(token="pat_x", base_url=url)
    await client.aclose()
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1
    assert host in messages[0] and "clear text" in messages[0]
    assert caught[0].filename == __file__  # points at the caller's line


async def test_clear_text_warning_once_with_jwt_auth_bound_to_the_client() -> None:
    from coze_async.oauth import JWTAuth

    from .test_oauth import _pem_pair

    auth = JWTAuth(client_id="c", private_key=_pem_pair()[0], public_key_id="k")
    with pytest.warns(UserWarning, match="clear text") as caught:
        client = AsyncCoze(auth=auth, base_url="http://api.example.test")
    await client.aclose()
    assert len([w for w in caught if "clear text" in str(w.message)]) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1",
        "http://127.9.9.9",
        "http://localhost:8080",
        "http://[::1]:9",
        "https://api.coze.cn",
        "https://api.example.test",
    ],
)
async def test_loopback_and_https_do_not_warn(url: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = AsyncCoze(token="pat_x", base_url=url)
    await client.aclose()


async def test_emulator_client_does_not_warn(emu: Emulator) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with AsyncCoze(token=emu.token, base_url=emu.url) as client:
            await client.conversations.create()
    assert len(emu.requests) == 1


@pytest.mark.parametrize("url", ["http://", "https://:80", "https://api.coze.cn:port", 123])
def test_base_url_without_a_host_is_refused(url: object) -> None:
    with pytest.raises(InvalidArgumentError, match="base_url"):
        AsyncCoze(token="pat_x", base_url=url)  # type: ignore[arg-type]


# -- item 12: bad input raises InvalidArgumentError naming the argument, nothing is sent --------

BAD = "\ud800"  # a lone surrogate: not encodable as UTF-8


def _chat_kw(**kw: object) -> dict[str, object]:
    return {"bot_id": ECHO_BOT_ID, "user_id": "u", "messages": [Message.user("hi")], **kw}


#: (argument named in the error, keyword arguments of chat.create / chat.stream).
CHAT_CASES: list[tuple[str, dict[str, object]]] = [
    ("parameters", {"parameters": {1: "x"}}),
    ("parameters", {"parameters": {"a": object()}}),
    ("parameters", {"parameters": {"a": {"b": [1, {2, 3}]}}}),
    ("parameters", {"parameters": {"a": {"b": {7: "k"}}}}),
    ("parameters", {"parameters": {"a": float("nan")}}),
    ("parameters", {"parameters": {"a": 2**70}}),
    ("parameters", {"parameters": {"a": BAD}}),
    ("parameters", {"parameters": "a=1"}),
    ("custom_variables", {"custom_variables": {"a": 1}}),
    ("custom_variables", {"custom_variables": {"a": BAD}}),
    ("custom_variables", {"custom_variables": ["a"]}),
    ("meta_data", {"meta_data": {"a": 1}}),
    ("meta_data", {"meta_data": "m"}),
    ("meta_data", {"meta_data": {"k": BAD}}),
    ("extra_params", {"extra_params": {"latitude": 1.5}}),
    ("shortcut_command", {"shortcut_command": {"command_id": "1", "x": object()}}),
    ("shortcut_command", {"shortcut_command": "cmd"}),
    ("extra_body", {"extra_body": {"a": object()}}),
    ("extra_body", {"extra_body": {1: "a"}}),
    ("extra_body", {"extra_body": "raw"}),
    ("extra_body", {"extra_body": {"a": [BAD]}}),
    ("messages", {"messages": 123}),
    ("messages", {"messages": Message.user("hi")}),
    ("messages[0].content", {"messages": [Message(role="user", content=123)]}),  # type: ignore[arg-type]
    ("messages[1].content", {"messages": [Message.user("a"), Message(role="user", content=BAD)]}),
    ("messages[0].meta_data", {"messages": [Message(role="user", content="a", meta_data=5)]}),  # type: ignore[arg-type]
    ("auto_save_history", {"auto_save_history": "no"}),
    ("auto_save_history", {"auto_save_history": 1}),
    ("enable_card", {"enable_card": "yes"}),
    ("enable_card", {"enable_card": 0}),
    ("extra_headers", {"extra_headers": {"X-A": "b\r\nX-Injected: 1"}}),
    ("extra_headers", {"extra_headers": {"X-A\r\nX-B": "c"}}),
    ("extra_headers", {"extra_headers": {"X A": "c"}}),
    ("extra_headers", {"extra_headers": {"X-A": "c\x00"}}),
    ("extra_headers", {"extra_headers": {"X-A": "c\n"}}),
    ("extra_headers", {"extra_headers": {1: "c"}}),
    ("extra_headers", {"extra_headers": {"X-A": 1}}),
    ("extra_headers", {"extra_headers": {"X-A": BAD}}),
    ("extra_headers", {"extra_headers": "X-A: 1"}),
    ("extra_query", {"extra_query": {"a": object()}}),
    ("extra_query", {"extra_query": {"a": True}}),
    ("extra_query", {"extra_query": {1: "a"}}),
    ("extra_query", {"extra_query": {"a": BAD}}),
    ("extra_query", {"extra_query": "a=1"}),
    ("timeouts", {"timeouts": "5"}),
    ("timeouts", {"timeouts": 5}),
    ("user_id", {"user_id": BAD}),
    ("user_id", {"user_id": None}),
    ("bot_id", {"bot_id": True}),
    ("bot_id", {"bot_id": 1.5}),
    ("conversation_id", {"conversation_id": []}),
    ("publish_status", {"publish_status": 1}),
    ("bot_version", {"bot_version": BAD}),
]


@pytest.mark.parametrize("method", ["create", "stream"])
@pytest.mark.parametrize(("name", "kw"), CHAT_CASES)
async def test_chat_bad_arguments(
    coze: AsyncCoze, emu: Emulator, method: str, name: str, kw: dict[str, object]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        result = getattr(coze.chat, method)(**_chat_kw(**kw))
        if inspect.isawaitable(result):
            await result
    assert name in str(info.value)
    assert emu.requests == []


def _calls() -> list[tuple[str, str, Callable[[AsyncCoze], object]]]:
    chat, conv, msgs, wf, files = "chat", "conversations", "messages", "workflows", "files"
    ok_tool = ToolOutput(tool_call_id="t", output="o")
    img = ContentItem.of_image(file_url="https://x/y.png")
    return [
        # chat
        (chat, "chat_id", lambda c: c.chat.retrieve(conversation_id="c", chat_id=1.5)),  # type: ignore[arg-type]
        (chat, "conversation_id", lambda c: c.chat.messages(conversation_id=BAD, chat_id="x")),
        (chat, "timeouts", lambda c: c.chat.cancel(conversation_id="c", chat_id="x", timeouts="5")),  # type: ignore[arg-type]
        (
            chat,
            "tool_outputs",
            lambda c: c.chat.submit_tool_outputs(
                conversation_id="c",
                chat_id="x",
                tool_outputs=ok_tool,  # type: ignore[arg-type]
            ),
        ),
        (
            chat,
            "tool_outputs",
            lambda c: c.chat.submit_tool_outputs(
                conversation_id="c",
                chat_id="x",
                tool_outputs=None,  # type: ignore[arg-type]
            ),
        ),
        (
            chat,
            "tool_outputs[1]",
            lambda c: c.chat.submit_tool_outputs_stream(
                conversation_id="c",
                chat_id="x",
                tool_outputs=[ok_tool, "x"],  # type: ignore[list-item]
            ),
        ),
        (
            chat,
            "poll_interval",
            lambda c: c.chat.create_and_poll(**_chat_kw(poll_interval="1")),  # type: ignore[arg-type]
        ),
        (
            chat,
            "poll_interval",
            lambda c: c.chat.create_and_poll(**_chat_kw(poll_interval=float("nan"))),  # type: ignore[arg-type]
        ),
        (
            chat,
            "timeout",
            lambda c: c.chat.create_and_poll(**_chat_kw(timeout="9")),
        ),  # type: ignore[arg-type]
        (
            chat,
            "parameters",
            lambda c: c.chat.create_and_poll(**_chat_kw(parameters={"a": {1, 2}})),  # type: ignore[arg-type]
        ),
        # conversations
        (conv, "name", lambda c: c.conversations.create(name=1)),  # type: ignore[arg-type]
        (conv, "name", lambda c: c.conversations.create(name=BAD)),
        (conv, "messages", lambda c: c.conversations.create(messages=123)),  # type: ignore[arg-type]
        (conv, "meta_data", lambda c: c.conversations.create(meta_data={"a": 1})),  # type: ignore[dict-item]
        (conv, "bot_id", lambda c: c.conversations.create(bot_id=True)),  # type: ignore[arg-type]
        (conv, "extra_body", lambda c: c.conversations.create(extra_body={"a": b"x"})),
        (conv, "extra_headers", lambda c: c.conversations.create(extra_headers={"A": "\r"})),
        (conv, "page_size", lambda c: c.conversations.list(bot_id="b", page_size=0)),
        (conv, "page_size", lambda c: c.conversations.list(bot_id="b", page_size=True)),
        (conv, "page_size", lambda c: c.conversations.list(bot_id="b", page_size="10")),  # type: ignore[arg-type]
        (conv, "page_num", lambda c: c.conversations.list(bot_id="b", page_num=0)),
        (conv, "sort_order", lambda c: c.conversations.list(bot_id="b", sort_order=1)),  # type: ignore[arg-type]
        (conv, "extra_query", lambda c: c.conversations.list(bot_id="b", extra_query={"a": None})),  # type: ignore[dict-item]
        (conv, "name", lambda c: c.conversations.update(conversation_id="c", name=None)),  # type: ignore[arg-type]
        (conv, "timeouts", lambda c: c.conversations.delete(conversation_id="c", timeouts=1)),  # type: ignore[arg-type]
        # messages
        (
            msgs,
            "content",
            lambda c: c.conversations.messages.create(conversation_id="c", content=None),
        ),  # type: ignore[arg-type]
        (
            msgs,
            "content",
            lambda c: c.conversations.messages.create(conversation_id="c", content=123),
        ),  # type: ignore[arg-type]
        (
            msgs,
            "content",
            lambda c: c.conversations.messages.create(conversation_id="c", content=BAD),
        ),
        (
            msgs,
            "content",
            lambda c: c.conversations.messages.create(conversation_id="c", content=[img, "x"]),  # type: ignore[list-item]
        ),
        (
            msgs,
            "role",
            lambda c: c.conversations.messages.create(conversation_id="c", content="a", role=1),
        ),  # type: ignore[arg-type]
        (
            msgs,
            "content_type",
            lambda c: c.conversations.messages.create(
                conversation_id="c", content="a", content_type=1
            ),  # type: ignore[arg-type]
        ),
        (msgs, "limit", lambda c: c.conversations.messages.list(conversation_id="c", limit="10")),  # type: ignore[arg-type]
        (
            msgs,
            "include_middle_message",
            lambda c: c.conversations.messages.list(
                conversation_id="c", include_middle_message="yes"
            ),  # type: ignore[arg-type]
        ),
        (msgs, "order", lambda c: c.conversations.messages.list(conversation_id="c", order=[])),  # type: ignore[arg-type]
        (
            msgs,
            "content",
            lambda c: c.conversations.messages.update(
                conversation_id="c", message_id="m", content=1
            ),  # type: ignore[arg-type]
        ),
        (
            msgs,
            "meta_data",
            lambda c: c.conversations.messages.update(
                conversation_id="c", message_id="m", meta_data=[]
            ),  # type: ignore[arg-type]
        ),
        (
            msgs,
            "reason_types",
            lambda c: c.conversations.messages.set_feedback(
                conversation_id="c", message_id="m", feedback_type="like", reason_types=[BAD]
            ),
        ),
        (
            msgs,
            "reason_types",
            lambda c: c.conversations.messages.set_feedback(
                conversation_id="c",
                message_id="m",
                feedback_type="like",
                reason_types=5,  # type: ignore[arg-type]
            ),
        ),
        (
            msgs,
            "comment",
            lambda c: c.conversations.messages.set_feedback(
                conversation_id="c", message_id="m", feedback_type="like", comment=BAD
            ),
        ),
        (
            msgs,
            "feedback_type",
            lambda c: c.conversations.messages.set_feedback(
                conversation_id="c",
                message_id="m",
                feedback_type=["like"],  # type: ignore[arg-type]
            ),
        ),
        # workflows
        (wf, "parameters", lambda c: c.workflows.run(workflow_id="w", parameters={1: 2})),  # type: ignore[dict-item]
        (wf, "parameters", lambda c: c.workflows.run(workflow_id="w", parameters={"a": object()})),
        (
            wf,
            "parameters",
            lambda c: c.workflows.run_async(workflow_id="w", parameters={"a": [1, {"b": {1}}]}),
        ),
        (wf, "parameters", lambda c: c.workflows.stream(workflow_id="w", parameters=BAD)),
        (wf, "parameters", lambda c: c.workflows.run(workflow_id="w", parameters=[1])),  # type: ignore[arg-type]
        (wf, "ext", lambda c: c.workflows.run(workflow_id="w", ext={"a": 1})),  # type: ignore[dict-item]
        (wf, "check_ids", lambda c: c.workflows.stream(workflow_id="w", check_ids="no")),  # type: ignore[arg-type]
        (
            wf,
            "interrupt_type",
            lambda c: c.workflows.resume(
                workflow_id="w",
                event_id="e",
                interrupt_type="2",
                resume_data="a",  # type: ignore[arg-type]
            ),
        ),
        (
            wf,
            "resume_data",
            lambda c: c.workflows.resume_stream(
                workflow_id="w", event_id="e", interrupt_type=2, resume_data=BAD
            ),
        ),
        (
            wf,
            "resume_data",
            lambda c: c.workflows.resume(
                workflow_id="w",
                event_id="e",
                interrupt_type=2,
                resume_data=None,  # type: ignore[arg-type]
            ),
        ),
        (
            wf,
            "messages",
            lambda c: c.workflows.chat(workflow_id="w", bot_id="b", messages=123),  # type: ignore[arg-type]
        ),
        (
            wf,
            "parameters",
            lambda c: c.workflows.chat(
                workflow_id="w",
                bot_id="b",
                messages=[Message.user("q")],
                parameters={1: 1},  # type: ignore[dict-item]
            ),
        ),
        (
            wf,
            "poll_interval",
            lambda c: c.workflows.run_and_wait(workflow_id="w", poll_interval="1"),  # type: ignore[arg-type]
        ),
        (wf, "timeouts", lambda c: c.workflows.stream(workflow_id="w", timeouts="5")),  # type: ignore[arg-type]
        # files
        (
            files,
            "content_type",
            lambda c: c.files.upload(file=b"x", content_type="text/plain\r\nX-Evil: 1"),
        ),
        (files, "content_type", lambda c: c.files.upload(file=b"x", content_type="text/plain\n")),
        (files, "content_type", lambda c: c.files.upload(file=b"x", content_type=5)),  # type: ignore[arg-type]
        (files, "content_type", lambda c: c.files.upload(file=b"x", content_type=BAD)),
        (files, "filename", lambda c: c.files.upload(file=b"x", filename="a\r\nb.txt")),
        (files, "filename", lambda c: c.files.upload(file=b"x", filename=BAD)),
        (files, "filename", lambda c: c.files.upload(file=("a\nb", b"x"))),
        (files, "file", lambda c: c.files.upload(file="/tmp/" + BAD)),
        (files, "file", lambda c: c.files.upload(file="/tmp/a\x00b")),
        (files, "extra_body", lambda c: c.files.upload(file=b"x", extra_body={"a": object()})),
        (files, "extra_headers", lambda c: c.files.upload(file=b"x", extra_headers={"A": "\n"})),
        (files, "timeouts", lambda c: c.files.upload(file=b"x", timeouts="5")),  # type: ignore[arg-type]
        (files, "file_id", lambda c: c.files.retrieve(file_id=None)),  # type: ignore[arg-type]
    ]


CALLS = _calls()


@pytest.mark.parametrize(
    ("name", "call"),
    [(name, call) for _, name, call in CALLS],
    ids=[f"{group}-{name}-{i}" for i, (group, name, _) in enumerate(CALLS)],
)
async def test_every_method_refuses_bad_arguments(
    coze: AsyncCoze, emu: Emulator, name: str, call: Callable[[AsyncCoze], object]
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        result = call(coze)
        if inspect.isawaitable(result):
            await result
    assert name in str(info.value)
    assert emu.requests == []


MODEL_CASES: list[tuple[str, Callable[[], object]]] = [
    ("content", lambda: Message.user(None)),  # type: ignore[arg-type]
    ("content", lambda: Message.user(123)),  # type: ignore[arg-type]
    ("content", lambda: Message.user(b"hi")),  # type: ignore[arg-type]
    ("content", lambda: Message.user(BAD)),
    ("content", lambda: Message.user("a" + BAD + "b")),
    ("content", lambda: Message.assistant(None)),  # type: ignore[arg-type]
    ("content", lambda: Message.user([ContentItem.of_image(file_url="u"), 5])),  # type: ignore[list-item]
    ("meta_data", lambda: Message.user("x", meta_data="m")),  # type: ignore[arg-type]
    ("meta_data", lambda: Message.user("x", meta_data={"k": BAD})),
    ("text", lambda: ContentItem.of_text(BAD)),
    ("file_id", lambda: ContentItem.of_image(file_id=123)),  # type: ignore[arg-type]
    ("file_url", lambda: ContentItem.of_file(file_url=BAD)),
    ("file_id", lambda: ContentItem.of_audio(file_id="")),
    ("tool_call_id", lambda: ToolOutput(tool_call_id=None, output="o")),  # type: ignore[arg-type]
    ("output", lambda: ToolOutput(tool_call_id="t", output=1)),  # type: ignore[arg-type]
    ("output", lambda: ToolOutput(tool_call_id="t", output=BAD)),
    ("connect", lambda: Timeouts(connect=-1)),
    ("read", lambda: Timeouts(read="5")),  # type: ignore[arg-type]
    ("total", lambda: Timeouts(total=True)),
    ("pool", lambda: Timeouts(pool=float("nan"))),
    ("max_retries", lambda: RetryPolicy(max_retries=-1)),
    ("max_retries", lambda: RetryPolicy(max_retries="2")),  # type: ignore[arg-type]
    ("max_retries", lambda: RetryPolicy(max_retries=True)),
    ("initial_backoff", lambda: RetryPolicy(initial_backoff="1")),  # type: ignore[arg-type]
    ("max_backoff", lambda: RetryPolicy(max_backoff=-0.5)),
    ("deadline", lambda: RetryPolicy(deadline=-1)),
    ("retry_unsafe", lambda: RetryPolicy(retry_unsafe="yes")),  # type: ignore[arg-type]
    ("retry_statuses", lambda: RetryPolicy(retry_statuses="500")),  # type: ignore[arg-type]
    ("rate_limit_codes", lambda: RetryPolicy(rate_limit_codes={"4009"})),  # type: ignore[arg-type]
    ("timeouts", lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", timeouts="5")),  # type: ignore[arg-type]
    ("retry", lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", retry=2)),  # type: ignore[arg-type]
    (
        "connection_limit",
        lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", connection_limit="9"),  # type: ignore[arg-type]
    ),
    (
        "acquire_timeout",
        lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", acquire_timeout="1"),  # type: ignore[arg-type]
    ),
    ("token", lambda: AsyncCoze(token=123, base_url="http://127.0.0.1:1")),  # type: ignore[arg-type]
    ("plan", lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", plan="free")),  # type: ignore[arg-type]
    ("limiter", lambda: AsyncCoze(token="t", base_url="http://127.0.0.1:1", limiter=1)),  # type: ignore[arg-type]
    ("token", lambda: AsyncCoze(token="a\r\nb", base_url="http://127.0.0.1:1")),
]


@pytest.mark.parametrize(("name", "build"), MODEL_CASES)
def test_constructors_refuse_bad_arguments(name: str, build: Callable[[], object]) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        build()
    assert name in str(info.value)


async def test_good_free_form_json_is_sent_as_given(coze: AsyncCoze, emu: Emulator) -> None:
    params = {"a": [1, 2.5, True, None, {"b": "é"}], "n": -(2**63), "t": ("x", "y")}
    async with coze.chat.stream(
        **_chat_kw(parameters=params, extra_headers={"X-Trace": "abc\tdef"})  # type: ignore[arg-type]
    ) as stream:
        await stream.final()
    [seen] = emu.requests
    assert seen.json["parameters"] == {**params, "t": ["x", "y"]}
    assert seen.headers["X-Trace"] == "abc\tdef"


async def test_the_caller_may_change_parameters_after_stream(
    coze: AsyncCoze, emu: Emulator
) -> None:
    # Checked and copied when stream() is called: what is sent is what was checked.
    params: dict[str, object] = {"a": 1}
    stream = coze.chat.stream(**_chat_kw(parameters=params))  # type: ignore[arg-type]
    params["a"] = object()
    async with stream:
        await stream.final()
    assert emu.requests[0].json["parameters"] == {"a": 1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, "parameters has the key 1 (int)"),
        ({"a": {"b": [1, {2, 3}]}}, "parameters['a']['b'][1] is a set"),
        ({"a": [{"k": float("inf")}]}, "parameters['a'][0]['k'] is inf"),
        ({"a": ["ok", "x" + BAD]}, "parameters['a'][1] holds a lone surrogate"),
        ({"a": {"b": {7: "k"}}}, "parameters['a']['b'] has the key 7 (int)"),
    ],
)
async def test_json_errors_name_the_path(
    coze: AsyncCoze, emu: Emulator, value: object, message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        coze.workflows.stream(workflow_id="w", parameters=value)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert emu.requests == []


async def test_a_value_that_contains_itself_is_refused(coze: AsyncCoze, emu: Emulator) -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(InvalidArgumentError, match=r"parameters.*nested more than"):
        await coze.workflows.run(workflow_id="w", parameters=loop)
    assert emu.requests == []
