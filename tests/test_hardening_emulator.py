"""Issue 12, item 4: the emulator checks the token before reading a body, and caps bodies.

A hostile client talks to the emulator over a raw loopback socket: it sends the request
head with a huge ``Content-Length`` (or a chunked body that never ends) and only a few body
bytes. The answer must arrive anyway, which proves the emulator did not wait for (or keep)
the body. Coze's limits (coze-api.md §3.4, §5): 15 MB per request, 20 MB for workflow APIs,
512 MB per upload.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from coze_async.emulator import LOGID_HEADER, Emulator

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


async def _raw(
    emu: Emulator,
    path: str,
    *,
    token: str | None,
    content_length: int | None,
    body: bytes,
    content_type: str = "application/json",
    chunked: list[bytes] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Send a request head and ``body`` (or ``chunked`` chunks, never the last one) and
    return the answer's status, headers and JSON body, without ever finishing the body."""
    host, port = emu.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Type: {content_type}"]
        if token is not None:
            head.append(f"Authorization: Bearer {token}")
        if content_length is not None:
            head.append(f"Content-Length: {content_length}")
        if chunked is not None:
            head.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        for chunk in chunked or ():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        await writer.drain()
        # The rest of the body is never sent: only an emulator that answers without it
        # (and without waiting for it) passes within the timeout.
        async with asyncio.timeout(10):
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            payload = await reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, json.loads(payload)
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v3/chat", "application/json"),
        ("/v1/workflow/run", "application/json"),
        ("/v1/conversation/create", "application/json"),
        ("/v1/files/upload", "multipart/form-data; boundary=x"),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_unauthenticated_huge_post_is_answered_before_its_body(
    emu: Emulator, path: str, content_type: str, token: str | None
) -> None:
    status, headers, envelope = await _raw(
        emu,
        path,
        token=token,
        content_length=600 * MB,
        body=b'{"bot_id":',
        content_type=content_type,
    )
    assert (status, envelope["code"]) == (200, 4100)
    assert envelope["msg"] == "authentication is invalid"
    assert envelope["detail"]["logid"] == headers[LOGID_HEADER.lower()]
    # Recorded (tests can count refused requests), but no byte of the body was kept.
    (recorded,) = emu.requests
    assert (recorded.path, recorded.body, recorded.json) == (path, b"", None)


async def test_unauthenticated_chunked_post_is_answered_before_its_body(emu: Emulator) -> None:
    status, _, envelope = await _raw(
        emu, "/v3/chat", token=None, content_length=None, body=b"", chunked=[b"{" * 1024]
    )
    assert (status, envelope["code"]) == (200, 4100)
    assert emu.requests[0].body == b""


async def test_unauthenticated_bodies_are_not_kept(emu: Emulator) -> None:
    # Eight 4 MB POSTs with a wrong token, sent whole by a normal client: the emulator
    # answers each, and keeps none of the 32 MB.
    body = b'{"bot_id":"' + b"x" * (4 * MB) + b'"}'
    async with aiohttp.ClientSession() as session:
        for _ in range(8):
            headers = {"Authorization": "Bearer wrong", "Content-Type": "application/json"}
            data = io.BytesIO(body)
            async with session.post(emu.url + "/v3/chat", data=data, headers=headers) as resp:
                assert (await resp.json())["code"] == 4100
    assert len(emu.requests) == 8
    assert sum(len(r.body) for r in emu.requests) == 0


@pytest.mark.parametrize(
    ("path", "limit_mb"),
    [
        ("/v3/chat", 15),
        ("/v1/conversation/create", 15),
        ("/v3/chat/submit_tool_outputs", 15),
        ("/v1/workflow/run", 20),
        ("/v1/workflow/stream_run", 20),
        ("/v1/workflows/chat", 20),
    ],
)
async def test_oversized_body_is_refused_from_its_content_length(
    emu: Emulator, path: str, limit_mb: int
) -> None:
    status, headers, envelope = await _raw(
        emu, path, token=emu.token, content_length=limit_mb * MB + 1, body=b'{"a":'
    )
    assert status == 413
    assert envelope["code"] == 4000
    assert f"{limit_mb} MB" in envelope["msg"]
    assert envelope["detail"]["logid"] == headers[LOGID_HEADER.lower()]
    assert emu.requests[0].body == b""


async def test_oversized_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    emu: Emulator,
) -> None:
    # No Content-Length: the emulator reads until the 15 MB limit is passed, then answers
    # at once, though the body has not ended (its last chunk is never sent).
    chunks = [b" " * MB] * 16
    status, _, envelope = await _raw(
        emu, "/v3/chat", token=emu.token, content_length=None, body=b"", chunked=chunks
    )
    assert (status, envelope["code"]) == (413, 4000)
    assert "15 MB" in envelope["msg"]
    assert emu.requests[0].body == b""


async def test_bodies_within_the_limits_are_read(emu: Emulator) -> None:
    # 16 MB is over the chat limit but within the workflow one: the run is handled (and
    # refused for its parameters, not for its size).
    body = json.dumps({"workflow_id": "1", "parameters": {"x": "y" * (16 * MB)}}).encode()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"}
        url = emu.url + "/v1/workflow/run"
        async with session.post(url, data=io.BytesIO(body), headers=headers) as resp:
            assert resp.status == 200
            envelope = await resp.json()
        assert envelope["code"] != 0
        assert "MB" not in envelope["msg"]
        async with session.post(
            emu.url + "/v3/chat", data=io.BytesIO(body), headers=headers
        ) as resp:
            assert resp.status == 413
    assert len(emu.requests[0].body) == len(body)
    assert emu.requests[1].body == b""


async def test_oversized_upload_is_refused_from_its_content_length(emu: Emulator) -> None:
    status, _, envelope = await _raw(
        emu,
        "/v1/files/upload",
        token=emu.token,
        content_length=emu.max_upload_bytes + 2 * MB,
        body=b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
    )
    assert (status, envelope["code"]) == (200, 4302)
    assert emu.requests[0].body == b""


async def test_oversized_chunked_upload_is_streamed_then_refused() -> None:
    # Without a Content-Length the size is known only at the end: the upload is read in
    # chunks (never kept whole) and refused with 4302.
    async def multipart() -> AsyncIterator[bytes]:
        # A generator body has no length, so aiohttp sends it chunked.
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(3):
            yield b"z" * MB
        yield b"\r\n--x--\r\n"

    async with Emulator(max_upload_bytes=1 * MB) as emu:
        async with aiohttp.ClientSession() as session:
            headers = {
                "Authorization": f"Bearer {emu.token}",
                "Content-Type": "multipart/form-data; boundary=x",
            }
            url = emu.url + "/v1/files/upload"
            async with session.post(url, data=multipart(), headers=headers) as resp:
                assert "Content-Length" not in resp.request_info.headers
                envelope = await resp.json()
        assert envelope["code"] == 4302
        assert emu.requests[0].body == b""


async def test_quota_is_decided_at_arrival_not_after_a_slow_headers_fault() -> None:
    """A call delayed by ``slow-headers`` is counted when it arrived: the call that came
    after it in the same window is the one rejected, never the earlier one."""
    from coze_async.emulator import FAULT_HEADER
    from coze_async.ratelimit import Plan

    plan = Plan.custom(chat_qps=1, workflow_qps=50, upload_qps=10, model_rpm=600)
    async with Emulator(plan=plan) as emu, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {emu.token}"}

        async def retrieve(extra: dict[str, str]) -> Any:
            async with http.get(
                f"{emu.url}/v3/chat/retrieve",
                params={"conversation_id": "c", "chat_id": "x"},
                headers={**auth, **extra},
            ) as resp:
                return await resp.json()

        first = asyncio.create_task(retrieve({FAULT_HEADER: "slow-headers=0.3"}))
        while not emu.requests:  # noqa: ASYNC110 (the emulator has no event for arrivals)
            await asyncio.sleep(0)
        second = await retrieve({})
        first_answer = await first
    assert second["code"] == 4009  # over the 1-per-second window
    assert first_answer["code"] != 4009  # it arrived first: it had the slot
