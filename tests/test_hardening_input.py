"""Hardening (issue 12): ids in URL paths, clear-text base URLs, and bad input refused early.

Every test talks to the emulator over loopback and asserts what a user would notice: the typed
error, that its message names the argument, and that the server saw nothing (or saw exactly
the encoded path).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from coze_async import AsyncCoze, BadRequestError, InvalidArgumentError, NotFoundError
from coze_async.emulator import Emulator

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
