"""The emulator's workflow metadata routes, over raw HTTP (issue 13).

``GET /v1/workflows/{workflow_id}`` and ``GET /v1/workflows`` (coze-api-more.md §5): the
``workflow_detail`` object with string times, input/output parameters only on request, the
list's page parameters and filters, 4200 for an unknown id and 4000 for bad query values.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from coze_async.emulator import (
    CHATFLOW_ID,
    ECHO_WORKFLOW_ID,
    QA_WORKFLOW_ID,
    STREAM_WORKFLOW_ID,
    Emulator,
    Workflow,
)
from coze_async.emulator.workflows import Script

pytestmark = pytest.mark.anyio

DETAIL_KEYS = [
    "workflow_id",
    "workflow_name",
    "description",
    "icon_url",
    "app_id",
    "created_at",
    "updated_at",
    "creator",
]


@pytest.fixture
async def session(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(base_url=emu.url, headers=headers) as s:
        yield s


async def _get(session: aiohttp.ClientSession, path: str, **params: Any) -> dict[str, Any]:
    async with session.get(path, params=params) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert resp.headers["X-Tt-Logid"]
        body: dict[str, Any] = await resp.json()
        return body


async def test_retrieve_without_input_output(session: aiohttp.ClientSession) -> None:
    body = await _get(session, f"/v1/workflows/{ECHO_WORKFLOW_ID}")
    assert body["code"] == 0 and body["msg"] == ""
    data = body["data"]
    assert list(data) == ["workflow_detail"]
    detail = data["workflow_detail"]
    assert list(detail) == DETAIL_KEYS
    assert detail["workflow_id"] == ECHO_WORKFLOW_ID
    assert detail["workflow_name"] == "echo"
    assert detail["app_id"] == "0"
    # Times are numeric strings at Coze (get_workflow_info).
    assert isinstance(detail["created_at"], str) and detail["created_at"].isdigit()
    assert isinstance(detail["updated_at"], str) and detail["updated_at"].isdigit()
    assert set(detail["creator"]) == {"id", "name"}


async def test_retrieve_with_input_output(session: aiohttp.ClientSession) -> None:
    body = await _get(session, f"/v1/workflows/{STREAM_WORKFLOW_ID}", include_input_output="true")
    data = body["data"]
    assert list(data) == ["workflow_detail", "input", "output"]
    topic = data["input"]["parameters"]["topic"]
    assert topic == {
        "type": "string",
        "required": False,
        "description": "What the joke is about.",
        "default_value": "电影",
    }
    assert set(data["output"]["parameters"]["output"]) == {
        "type",
        "required",
        "description",
        "default_value",
    }
    off = await _get(session, f"/v1/workflows/{STREAM_WORKFLOW_ID}", include_input_output="false")
    assert list(off["data"]) == ["workflow_detail"]


async def test_retrieve_unknown_workflow_is_4200(session: aiohttp.ClientSession) -> None:
    body = await _get(session, "/v1/workflows/7999999999999999999")
    assert body["code"] == 4200
    assert "7999999999999999999" in body["msg"]
    assert "data" not in body


async def test_retrieve_bad_bool_is_4000(session: aiohttp.ClientSession) -> None:
    body = await _get(session, f"/v1/workflows/{ECHO_WORKFLOW_ID}", include_input_output="yes")
    assert body["code"] == 4000


async def test_retrieve_needs_a_token(emu: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{emu.url}/v1/workflows/{ECHO_WORKFLOW_ID}") as resp,
    ):
        assert (await resp.json())["code"] == 4100


async def test_registered_workflow_is_retrievable(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    class Named(Workflow):
        name = "named"
        description = "A test workflow."
        app_id = "7400000000000000123"

        def start(self, script: Script) -> None:
            script.end({"output": "ok"})

    emu.add_workflow("7500000000000000777", Named())
    detail = (await _get(session, "/v1/workflows/7500000000000000777"))["data"]["workflow_detail"]
    assert detail["workflow_name"] == "named"
    assert detail["app_id"] == "7400000000000000123"


async def test_list_pages_and_has_more(emu: Emulator, session: aiohttp.ClientSession) -> None:
    total = len(emu.workflows.workflows)
    seen: list[str] = []
    page_num = 1
    while True:
        body = await _get(
            session, "/v1/workflows", workspace_id="ws", page_num=page_num, page_size=2
        )
        assert body["code"] == 0
        data = body["data"]
        assert list(data) == ["items", "has_more"]
        assert all(list(item) == DETAIL_KEYS for item in data["items"])
        seen += [item["workflow_id"] for item in data["items"]]
        if not data["has_more"]:
            break
        page_num += 1
    assert len(seen) == total == len(set(seen))
    assert ECHO_WORKFLOW_ID in seen and CHATFLOW_ID in seen
    # Default page size is 10: every built-in on one page.
    body = await _get(session, "/v1/workflows", workspace_id="ws", page_num=1)
    assert len(body["data"]["items"]) == min(total, 10)


async def test_list_filters(session: aiohttp.ClientSession) -> None:
    async def ids(**params: Any) -> list[str]:
        body = await _get(session, "/v1/workflows", workspace_id="ws", page_num=1, **params)
        assert body["code"] == 0, body
        return [item["workflow_id"] for item in body["data"]["items"]]

    assert await ids(workflow_mode="chatflow") == [CHATFLOW_ID]
    workflows = await ids(workflow_mode="workflow")
    assert CHATFLOW_ID not in workflows and QA_WORKFLOW_ID in workflows
    assert await ids(app_id="7400000000000000123") == []
    assert len(await ids(app_id="0")) == len(await ids())
    assert await ids(publish_status="unpublished_draft") == []
    assert await ids(publish_status="all") == await ids()
    # cozepy sends unset values as absent; empty strings count as absent too.
    assert await ids(workflow_mode="", app_id="") == await ids()


@pytest.mark.parametrize(
    "params",
    [
        {"page_num": 1},  # no workspace_id
        {"workspace_id": "ws"},  # no page_num
        {"workspace_id": "ws", "page_num": 0},
        {"workspace_id": "ws", "page_num": "x"},
        {"workspace_id": "ws", "page_num": 1, "page_size": 0},
        {"workspace_id": "ws", "page_num": 1, "page_size": 31},
        {"workspace_id": "ws", "page_num": 1, "workflow_mode": "agent"},
        {"workspace_id": "ws", "page_num": 1, "publish_status": "gone"},
    ],
)
async def test_list_bad_query_is_4000(
    session: aiohttp.ClientSession, params: dict[str, Any]
) -> None:
    body = await _get(session, "/v1/workflows", **params)
    assert body["code"] == 4000, body
    assert "data" not in body


async def test_cozepy_retrieves_and_lists_workflows() -> None:
    with warnings.catch_warnings(record=True):
        cozepy = pytest.importorskip("cozepy")
    async with Emulator() as emu, cozepy.AsyncHTTPClient() as http:
        coze = cozepy.AsyncCoze(
            auth=cozepy.AsyncTokenAuth(emu.token), base_url=emu.url, http_client=http
        )
        info = await coze.workflows.retrieve(workflow_id=QA_WORKFLOW_ID)
        assert info.workflow_detail.workflow_name == "weather_qa"
        assert info.workflow_detail.created_at is not None  # "1718…" parsed as an int
        assert info.workflow_detail.creator is not None
        # cozepy's default page_size (100) is over the documented maximum of 30; and it
        # sends a WorkflowMode member as "WorkflowMode.CHATFLOW" (str() of the enum on
        # Python 3.11+), so the plain string is passed.
        pages = await coze.workflows.list(workspace_id="ws", workflow_mode="chatflow", page_size=30)
        names = [item.workflow_id async for item in pages]
        assert names == [CHATFLOW_ID]
