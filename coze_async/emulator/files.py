"""File routes (coze-api.md §5): a streamed multipart upload and retrieve.

The upload is read part by part, in chunks, straight from the socket: only the size, a
SHA-256 digest and the first 512 bytes are kept (:class:`~coze_async.emulator.state.FileRecord`),
so a 500 MB upload costs the emulator no more memory than a small one. The whole body is
read before answering, even when it will be refused, so the client never sees its
connection cut while still sending; the exceptions are decided before the handler runs: a
request without a valid token (4100) and one whose ``Content-Length`` already declares more
than ``Emulator.max_upload_bytes`` plus room for the multipart framing (4302) are answered
at once, and their bodies are never read (aiohttp discards what still arrives).

Error codes, checked in this order once the body is read: 4000 not ``multipart/form-data`` or
no part named ``file``; 4301 more than one ``file`` part; 4304 a file part without a file name;
4300 an empty file; 4302 larger than ``Emulator.max_upload_bytes`` (512 MB by default); 4303 an
executable type (``.exe``, ``.dll``, ``.so``, ...); 4304 an image or PDF whose first bytes do
not match its extension. ``retrieve`` answers 4200 for an unknown file and for another user's.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from aiohttp import BodyPartReader, web

from .host import Host, Route
from .state import FileRecord, new_id
from .wire import ApiError

__all__ = ["FilesAPI"]

_CHUNK: Final = 256 * 1024
_HEAD: Final = 512
_UNSUPPORTED: Final = frozenset(
    {".exe", ".dll", ".so", ".dylib", ".msi", ".bat", ".cmd", ".com", ".scr", ".apk", ".dmg"}
)
#: Extension -> accepted leading bytes, for the formats whose content the emulator checks.
_MAGIC: Final[dict[str, tuple[bytes, ...]]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".pdf": (b"%PDF-",),
    ".webp": (b"RIFF",),
}


class FilesAPI:
    """Handlers for ``/v1/files/*``, bound to one :class:`~coze_async.emulator.Emulator`."""

    def __init__(self, emu: Host) -> None:
        self.emu = emu
        self.state = emu.state

    def routes(self) -> list[Route]:
        """``(method, path, handler, requires_auth)``; ``upload`` reads its own body."""
        return [
            ("POST", "/v1/files/upload", self.upload, True),
            ("GET", "/v1/files/retrieve", self.retrieve, True),
        ]

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/files/upload`` (multipart, one part named ``file``) -> File."""
        if request.content_type != "multipart/form-data":
            await request.release()
            raise ApiError(4000, "Invalid request: the body must be multipart/form-data.")
        reader = await request.multipart()
        files: list[FileRecord] = []
        nameless = False
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name != "file":
                await part.release()  # other form fields are accepted and ignored
                continue
            if part.filename is None:
                nameless = True
            files.append(await self._receive(part))
        if not files:
            raise ApiError(4000, "Invalid parameter file: a part named 'file' is required.")
        if len(files) > 1:
            raise ApiError(4301)
        record = files[0]
        if nameless:
            raise ApiError(4304, "The file is invalid: the part has no file name.")
        if record.size == 0:
            raise ApiError(4300)
        limit = self.emu.max_upload_bytes
        if record.size > limit:
            raise ApiError(
                4302, f"The file exceeds the maximum allowed size ({record.size} > {limit} bytes)."
            )
        ext = os.path.splitext(record.file_name)[1].lower()
        if ext in _UNSUPPORTED:
            raise ApiError(4303, f"The file type is not supported: {ext}.")
        magic = _MAGIC.get(ext)
        if magic is not None and not record.head.startswith(magic):
            raise ApiError(4304, f"The file is invalid: its content is not a {ext[1:]} file.")
        record.creator_id = self.emu.context(request).user_id
        self.state.files[record.id] = record
        return self.emu.ok(request, record.to_json())

    @staticmethod
    async def _receive(part: BodyPartReader) -> FileRecord:
        """Read one part to the end, keeping only its size, digest and first bytes."""
        digest = hashlib.sha256()
        size = 0
        head = b""
        while True:
            chunk = await part.read_chunk(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
            if len(head) < _HEAD:
                head += chunk[: _HEAD - len(head)]
        return FileRecord(
            id=new_id(),
            file_name=part.filename or "",
            size=size,
            creator_id="",
            sha256=digest.hexdigest(),
            content_type=part.headers.get("Content-Type", "application/octet-stream"),
            head=head,
        )

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/files/retrieve?file_id=`` -> File (4200 unless the caller uploaded it)."""
        file_id = request.query.get("file_id") or ""
        if not file_id:
            raise ApiError(4000, "Invalid parameter file_id: file_id is required.")
        record = self.state.files.get(file_id)
        if record is None or record.creator_id != self.emu.context(request).user_id:
            raise ApiError(4200, f"File {file_id} was not found.")
        return self.emu.ok(request, record.to_json())
