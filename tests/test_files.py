"""File uploads over real sockets: sources, streaming memory, limits, errors, use in chats."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import tracemalloc
from pathlib import Path

import aiohttp
import pytest

from coze_async import (
    AsyncCoze,
    BadRequestError,
    ContentItem,
    File,
    InvalidArgumentError,
    Message,
    NotFoundError,
    RequestTooLargeError,
)
from coze_async.emulator import ECHO_BOT_ID, FAULT_HEADER, Emulator

pytestmark = pytest.mark.anyio

MB = 1024 * 1024


def _uploads(emu: Emulator) -> list:  # type: ignore[type-arg]
    return [r for r in emu.requests if r.path == "/v1/files/upload"]


async def test_upload_a_path_then_retrieve_it(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "报告.txt"
    path.write_bytes("季度报告\n".encode() * 100)
    uploaded = await coze.files.upload(file=path)
    assert isinstance(uploaded, File)
    assert uploaded.file_name == "报告.txt"
    assert uploaded.bytes == path.stat().st_size
    assert uploaded.created_at is not None and uploaded.created_at > 1_700_000_000
    assert uploaded.logid is not None
    record = emu.state.files[uploaded.id]
    assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.content_type == "text/plain"
    headers = _uploads(emu)[-1].headers
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(headers["Content-Length"]) > uploaded.bytes  # sized, not chunked

    again = await coze.files.retrieve(file_id=uploaded.id)
    assert again == uploaded and again.logid is not None
    assert await coze.files.upload(file=str(path)) != uploaded  # a new file each time


async def test_upload_accepts_bytes_pairs_and_file_objects(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    raw = await coze.files.upload(file=b"hello")
    assert (raw.file_name, raw.bytes) == ("file", 5)
    pair = await coze.files.upload(file=("notes.md", b"# title"))
    assert (pair.file_name, pair.bytes) == ("notes.md", 7)
    assert emu.state.files[pair.id].content_type == "text/markdown"
    renamed = await coze.files.upload(file=b"{}", filename="data.json", content_type="text/x-json")
    assert renamed.file_name == "data.json"
    assert emu.state.files[renamed.id].content_type == "text/x-json"

    buffer = io.BytesIO(b"skip:payload")
    buffer.seek(5)  # read from the current position, like any file API
    part = await coze.files.upload(file=("part.bin", buffer))
    assert part.bytes == len(b"payload")
    assert emu.state.files[part.id].head == b"payload"

    path = tmp_path / "doc.csv"
    path.write_bytes(b"a,b\n1,2\n")
    with path.open("rb") as handle:
        from_handle = await coze.files.upload(file=handle)
        assert not handle.closed  # the caller's file object is left open
    assert (from_handle.file_name, from_handle.bytes) == ("doc.csv", 8)


async def test_upload_streams_a_pipe_of_unknown_size(coze: AsyncCoze, emu: Emulator) -> None:
    payload = os.urandom(3 * MB)
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(payload)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        with os.fdopen(read_fd, "rb") as reader:
            uploaded = await coze.files.upload(file=reader, filename="stream.bin")
    finally:
        feeder.join()
    assert uploaded.bytes == len(payload)
    assert emu.state.files[uploaded.id].sha256 == hashlib.sha256(payload).hexdigest()
    assert "Content-Length" not in _uploads(emu)[-1].headers  # size unknown: sent chunked


async def test_empty_and_missing_files_are_refused_before_sending(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for source in (empty, b"", ("x.txt", b""), io.BytesIO()):
        with pytest.raises(InvalidArgumentError, match="empty"):
            await coze.files.upload(file=source)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no such file"):
        await coze.files.upload(file=tmp_path / "missing.pdf")
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        await coze.files.upload(file=tmp_path)
    with empty.open("r") as text, pytest.raises(InvalidArgumentError, match="text mode"):
        await coze.files.upload(file=text)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        await coze.files.upload(file=12)  # type: ignore[arg-type]
    assert emu.requests == []


async def test_50_mb_upload_is_streamed_not_buffered(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(MB)
    with path.open("wb") as out:
        for i in range(50):
            chunk = block[i:] + block[:i]
            out.write(chunk)
            digest.update(chunk)
    await coze.files.upload(file=b"warm-up")  # connection and lazy imports outside the window

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        uploaded = await coze.files.upload(file=path)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    print(f"\npeak Python heap growth uploading 50 MB: {peak / MB:.2f} MB")
    assert uploaded.bytes == 50 * MB
    assert emu.state.files[uploaded.id].sha256 == digest.hexdigest()
    # Client and emulator together (both in this process) stay far below the file's size.
    assert peak < 8 * MB, f"peak growth {peak / MB:.1f} MB while uploading 50 MB"


async def test_over_512_mb_is_refused_before_sending(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as out:
        out.truncate(512 * MB + 1)  # sparse: no disk space used
    with pytest.raises(RequestTooLargeError) as info:
        await coze.files.upload(file=path)
    assert info.value.limit == 512 * MB
    assert info.value.size == 512 * MB + 1
    assert emu.requests == []


async def test_upload_errors_are_typed(tmp_path: Path) -> None:
    async with (
        Emulator(max_upload_bytes=1000) as emu,
        AsyncCoze(token=emu.token, base_url=emu.url) as coze,
    ):
        cases = [
            ({"file": ("big.txt", b"x" * 1001)}, 4302),
            ({"file": ("setup.exe", b"MZ\x90\x00")}, 4303),
            ({"file": ("photo.png", b"GIF89a not a png")}, 4304),
            # A second part named "file" (here an extra form field): more than one file.
            ({"file": ("a.txt", b"a"), "extra_body": {"file": "b"}}, 4301),
            # The emulator refuses an empty file (the SDK never sends one): the code maps too.
            ({"file": b"x", "extra_headers": {FAULT_HEADER: "json-error=4300"}}, 4300),
        ]
        for kwargs, code in cases:
            with pytest.raises(BadRequestError) as info:
                await coze.files.upload(**kwargs)  # type: ignore[arg-type]
            assert info.value.code == code, kwargs
            assert info.value.logid is not None
        assert emu.state.files == {}

        with pytest.raises(NotFoundError) as missing:
            await coze.files.retrieve(file_id="7000000000000000000")
        assert missing.value.code == 4200

        other = emu.add_token()
        mine = await coze.files.upload(file=("ok.png", b"\x89PNG\r\n\x1a\n...."))
        async with AsyncCoze(token=other, base_url=emu.url) as theirs:
            with pytest.raises(NotFoundError):
                await theirs.files.retrieve(file_id=mine.id)
            with pytest.raises(BadRequestError) as foreign:
                await theirs.chat.create(
                    bot_id=ECHO_BOT_ID,
                    user_id="b",
                    messages=[
                        Message.user(
                            [ContentItem.of_text("?"), ContentItem.of_image(file_id=mine.id)]
                        )
                    ],
                )
            assert foreign.value.code == 4000


async def test_the_emulator_answers_4300_and_4301_on_the_wire(emu: Emulator) -> None:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession() as session:
        empty = aiohttp.FormData()
        empty.add_field("file", b"", filename="empty.txt")
        async with session.post(f"{emu.url}/v1/files/upload", data=empty, headers=headers) as r:
            assert (await r.json())["code"] == 4300
        two = aiohttp.FormData()
        two.add_field("file", b"a", filename="a.txt")
        two.add_field("file", b"b", filename="b.txt")
        async with session.post(f"{emu.url}/v1/files/upload", data=two, headers=headers) as r:
            body = await r.json()
            assert body["code"] == 4301 and r.headers["x-tt-logid"] == body["detail"]["logid"]


async def test_a_retried_upload_sends_the_whole_file_again(
    coze: AsyncCoze, emu: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "retry.txt"
    path.write_bytes(b"0123456789" * 10_000)
    uploaded = await coze.files.upload(
        file=path, extra_headers={FAULT_HEADER: "json-error=4009;times=1"}
    )
    assert len(_uploads(emu)) == 2  # rejected for rate, then retried
    assert uploaded.bytes == 100_000
    assert emu.state.files[uploaded.id].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_the_echo_bot_acknowledges_an_uploaded_file(coze: AsyncCoze, tmp_path: Path) -> None:
    pdf = tmp_path / "季度报告.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + b"0" * 100)
    uploaded = await coze.files.upload(file=pdf)
    content = [ContentItem.of_text("总结一下"), ContentItem.of_file(file_id=uploaded.id)]
    async with coze.chat.stream(
        bot_id=ECHO_BOT_ID, user_id="u", messages=[Message.user(content)]
    ) as stream:
        snap = await stream.final()
    label = f"file_id={uploaded.id} name=季度报告.pdf bytes={uploaded.bytes}"
    assert snap.text == f"你说：总结一下 [附件: file {label}]"
    # Also through a stored message: the next chat answers the conversation's last question.
    assert snap.chat is not None
    conv_id = snap.chat.conversation_id
    await coze.conversations.messages.create(
        conversation_id=conv_id,
        content=[ContentItem.of_text("再看这个"), ContentItem.of_image(file_id=uploaded.id)],
    )
    poll = await coze.chat.create_and_poll(
        bot_id=ECHO_BOT_ID, user_id="u", conversation_id=conv_id, poll_interval=0.02
    )
    assert "name=季度报告.pdf" in poll.text and "再看这个" in poll.text
