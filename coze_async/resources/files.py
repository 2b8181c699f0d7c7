"""``coze.files``: upload a file (multipart, streamed from disk) and look one up.

Wire facts: coze-api.md §5. One part named ``file``; at most 512 MB (checked before sending,
:class:`~coze_async.errors.RequestTooLargeError`); an empty file is refused locally. An
uploaded file's ``id`` goes into multimodal messages as ``file_id``
(``ContentItem.of_file(file_id=...)`` / ``ContentItem.of_image(file_id=...)``).

Uploads are not idempotent (a retry after the body reached Coze would store a second copy),
so they are retried only when nothing reached the server; every attempt reads the source from
its start again. A non-seekable stream (a pipe) is never retried. Uploads have no total
timeout by default (a large file on a slow link takes long); the connect and read timeouts
still apply.
"""

from __future__ import annotations

from typing import Unpack

import anyio
import attrs

from ..call import CallOptions
from ..endpoint import Endpoint, data
from ..models.file import File
from ..uploads import MAX_UPLOAD_BYTES, FileInput, UploadFile
from ._base import Resource, require_id

__all__ = ["FilesResource"]

UPLOAD = Endpoint("POST", "/v1/files/upload", "files.upload", data(File), max_body=MAX_UPLOAD_BYTES)
RETRIEVE = Endpoint("GET", "/v1/files/retrieve", "files.retrieve", data(File), idempotent=True)


class FilesResource(Resource):
    """Upload files for multimodal messages and workflow inputs; retrieve their metadata."""

    async def upload(
        self,
        *,
        file: FileInput,
        filename: str | None = None,
        content_type: str | None = None,
        **options: Unpack[CallOptions],
    ) -> File:
        """Upload ``file`` and return its :class:`~coze_async.File` (``id``, ``bytes``...).

        ``file`` is a path (``str`` or ``pathlib.Path``), ``bytes``, a binary file object
        (opened ``"rb"``; it is read from its current position and left open), or a
        ``(filename, bytes_or_file_object)`` pair. The content is streamed in chunks, never
        loaded whole into memory. ``filename`` overrides the name Coze records (default: the
        path's or file object's name, else ``"file"``); ``content_type`` overrides the type
        guessed from the name. ``extra_body`` keys are sent as extra form fields. Without
        ``timeouts=``, the client's timeouts apply with no total (wall-clock) limit.

        Raises :class:`~coze_async.errors.InvalidArgumentError` for a missing or empty file and
        :class:`~coze_async.errors.RequestTooLargeError` above 512 MB, before sending anything.
        """
        # Describing the source stats the file (or reads a stream's first chunk): off the loop.
        upload = await anyio.to_thread.run_sync(
            lambda: UploadFile.of(file, filename=filename, content_type=content_type)
        )
        if options.get("timeouts") is None:
            options["timeouts"] = attrs.evolve(self._transport.timeouts, total=None)
        return await self._send(UPLOAD, options, upload=upload)

    async def retrieve(self, *, file_id: str, **options: Unpack[CallOptions]) -> File:
        """Get an uploaded file's metadata (``GET /v1/files/retrieve``); 4200 if unknown."""
        params = {"file_id": require_id("file_id", file_id)}
        return await self._send(RETRIEVE, options, params=params)
