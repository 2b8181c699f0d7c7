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

from collections.abc import Mapping
from typing import Any

import anyio
import attrs

from ..config import Timeouts
from ..models.converter import structure
from ..models.file import File
from ..transport import Envelope
from ..uploads import MAX_UPLOAD_BYTES, FileInput, UploadFile
from ._base import Resource, require_id

__all__ = ["FilesResource"]


class FilesResource(Resource):
    """Upload files for multimodal messages and workflow inputs; retrieve their metadata."""

    def _file(self, env: Envelope) -> File:
        file = structure(env.field("data"), File, logid=env.logid, what="$.data")
        return self._stamped(file, env)

    async def upload(
        self,
        *,
        file: FileInput,
        filename: str | None = None,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
    ) -> File:
        """Upload ``file`` and return its :class:`~coze_async.File` (``id``, ``bytes``...).

        ``file`` is a path (``str`` or ``pathlib.Path``), ``bytes``, a binary file object
        (opened ``"rb"``; it is read from its current position and left open), or a
        ``(filename, bytes_or_file_object)`` pair. The content is streamed in chunks, never
        loaded whole into memory. ``filename`` overrides the name Coze records (default: the
        path's or file object's name, else ``"file"``); ``content_type`` overrides the type
        guessed from the name. ``extra_body`` keys are sent as extra form fields.

        Raises :class:`~coze_async.errors.InvalidArgumentError` for a missing or empty file and
        :class:`~coze_async.errors.RequestTooLargeError` above 512 MB, before sending anything.
        """
        # Describing the source stats the file (or reads a stream's first chunk): off the loop.
        upload = await anyio.to_thread.run_sync(
            lambda: UploadFile.of(file, filename=filename, content_type=content_type)
        )
        call = self._call(
            "POST",
            "/v1/files/upload",
            endpoint="files.upload",
            upload=upload,
            idempotent=False,
            max_body=MAX_UPLOAD_BYTES,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeouts=timeouts or attrs.evolve(self._transport.timeouts, total=None),
        )
        return self._file(await self._transport.request(call))

    async def retrieve(
        self,
        *,
        file_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        timeouts: Timeouts | None = None,
    ) -> File:
        """Get an uploaded file's metadata (``GET /v1/files/retrieve``); 4200 if unknown."""
        env = await self._transport.request(
            self._call(
                "GET",
                "/v1/files/retrieve",
                endpoint="files.retrieve",
                params={"file_id": require_id("file_id", file_id)},
                idempotent=True,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=None,
                timeouts=timeouts,
            )
        )
        return self._file(env)
