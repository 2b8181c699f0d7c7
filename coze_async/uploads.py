"""File uploads: what to send, described without I/O, and the multipart body it streams as.

``coze.files.upload(file=...)`` turns whatever the caller passed (a path, bytes, a binary file
object or a ``(filename, content)`` pair) into an :class:`UploadFile`. The transport asks it
for a fresh :class:`MultipartBody` on every attempt: an async iterator of chunks read from
disk in a worker thread, so a 500 MB file never sits in memory, with its exact length known up
front (sent as ``Content-Length``) whenever the source can tell its size.

The body is ``multipart/form-data`` with one part named ``file`` (coze-api.md §5); extra form
fields (``extra_body=``) come before it. This module does not import aiohttp: the transport
hands the body to aiohttp as a plain async iterable.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
from collections.abc import Mapping
from typing import IO, Any, Final, TypeAlias

import anyio
import attrs

from ._json import dumps
from ._validate import check_str
from .errors import CozeError, InvalidArgumentError

__all__ = ["CHUNK_SIZE", "MAX_UPLOAD_BYTES", "FileInput", "MultipartBody", "UploadFile"]

#: Bytes read from the source per chunk (one worker-thread hop each).
CHUNK_SIZE: Final = 256 * 1024
#: Coze's upload limit (coze-api.md §5): 512 MB per file.
MAX_UPLOAD_BYTES: Final = 512 * 1024 * 1024

#: What ``files.upload(file=...)`` accepts.
FileInput: TypeAlias = (
    str
    | os.PathLike[str]
    | bytes
    | bytearray
    | memoryview
    | IO[bytes]
    | tuple[str, bytes | bytearray | memoryview | IO[bytes]]
)

_DEFAULT_NAME: Final = "file"


def _guess_type(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


#: Control characters (CR and LF above all) would end a line of the part's header block.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: A media type as the part's ``Content-Type`` header: ``type/subtype`` with parameters.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;.*)?")


def _check_filename(filename: object) -> str:
    if not isinstance(filename, str) or not filename.strip():
        raise InvalidArgumentError(f"filename must be a non-empty string, got {filename!r}")
    if _CONTROL.search(filename):
        raise InvalidArgumentError(
            f"filename {filename!r} holds a control character (CR, LF, NUL...)"
        )
    check_str("filename", filename)
    return filename


def _check_content_type(content_type: object) -> str:
    if not isinstance(content_type, str) or not content_type:
        raise InvalidArgumentError("content_type must be a non-empty string")
    check_str("content_type", content_type)
    # The value becomes a header line of the multipart part: CR/LF would inject headers.
    if _CONTROL.search(content_type) or not _MEDIA_TYPE.fullmatch(content_type):
        raise InvalidArgumentError(
            f"content_type {content_type!r} is not a media type such as 'image/png' "
            "(no CR, LF or other control characters)"
        )
    return content_type


def _is_binary_reader(value: object) -> bool:
    return callable(getattr(value, "read", None)) and not isinstance(value, io.TextIOBase)


@attrs.frozen(kw_only=True)
class UploadFile:
    """One file to upload as the ``file`` part of a multipart body. Build with :meth:`of`.

    ``size`` is the number of bytes that will be sent, or ``None`` for a stream that cannot
    tell (a pipe, a socket); ``replayable`` says whether the body can be produced again for a
    retry (a non-seekable stream can be read only once).
    """

    filename: str
    content_type: str
    size: int | None
    replayable: bool
    _path: str | None = None
    _data: bytes | None = None
    _stream: IO[bytes] | None = None
    _start: int = 0
    _head: bytes = b""
    _spent: list[bool] = attrs.field(factory=lambda: [False], eq=False, repr=False)

    @classmethod
    def of(
        cls,
        file: FileInput,
        *,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> UploadFile:
        """Describe ``file`` for upload; does blocking I/O (stat, a first read for streams).

        Raises :class:`InvalidArgumentError` for a missing path, a directory, a text-mode file,
        anything else that is not a file, and an empty file (Coze answers 4300 to those).
        """
        if filename is not None:
            _check_filename(filename)
        if content_type is not None:
            _check_content_type(content_type)
        if isinstance(file, tuple):
            if len(file) != 2:
                raise InvalidArgumentError("a file tuple must be (filename, content)")
            name, content = file
            if isinstance(content, tuple | str | os.PathLike):
                raise InvalidArgumentError(
                    "in a (filename, content) pair, content must be bytes or a binary file object"
                )
            return cls.of(
                content, filename=filename or _check_filename(name), content_type=content_type
            )
        if isinstance(file, str | os.PathLike):
            return cls._of_path(os.fspath(file), filename, content_type)
        if isinstance(file, bytes | bytearray | memoryview):
            data = bytes(file)
            name = filename or _DEFAULT_NAME
            cls._refuse_empty(len(data), name)
            return cls(
                filename=name,
                content_type=content_type or _guess_type(name),
                size=len(data),
                replayable=True,
                data=data,
            )
        if isinstance(file, io.TextIOBase):
            raise InvalidArgumentError("the file object is open in text mode; open it with 'rb'")
        if _is_binary_reader(file):
            return cls._of_stream(file, filename, content_type)
        raise InvalidArgumentError(
            "file must be a path, bytes, a binary file object (opened 'rb') or a "
            f"(filename, bytes) pair, got {type(file).__name__}"
        )

    @staticmethod
    def _refuse_empty(size: int, name: str) -> None:
        if size == 0:
            raise InvalidArgumentError(
                f"{name!r} is empty: Coze refuses empty files (code 4300), so nothing was sent"
            )

    @classmethod
    def _of_path(cls, path: str, filename: str | None, content_type: str | None) -> UploadFile:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InvalidArgumentError(f"no such file: {path!r}") from None
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read {path!r}: {exc.strerror}") from None
        except (UnicodeError, ValueError):
            # A lone surrogate or a NUL byte: no file system can name such a path.
            raise InvalidArgumentError(f"file: {path!r} is not a valid path") from None
        if not os.path.isfile(path):
            raise InvalidArgumentError(f"{path!r} is not a regular file")
        name = filename or _check_filename(os.path.basename(path) or _DEFAULT_NAME)
        cls._refuse_empty(st.st_size, name)
        return cls(
            filename=name,
            content_type=content_type or _guess_type(name),
            size=st.st_size,
            replayable=True,
            path=path,
        )

    @classmethod
    def _of_stream(
        cls, stream: IO[bytes], filename: str | None, content_type: str | None
    ) -> UploadFile:
        raw_name = getattr(stream, "name", None)
        guessed = os.path.basename(raw_name) if isinstance(raw_name, str) else ""
        name = filename or _check_filename(guessed or _DEFAULT_NAME)
        ctype = content_type or _guess_type(name)
        mode = getattr(stream, "mode", "b")
        if isinstance(mode, str) and "b" not in mode:
            raise InvalidArgumentError(f"{name!r} is open in text mode; open it with 'rb'")
        start = _tell(stream)
        if start is not None:
            end = _end_of(stream, start)
            size = max(0, end - start)
            cls._refuse_empty(size, name)
            return cls(
                filename=name,
                content_type=ctype,
                size=size,
                replayable=True,
                stream=stream,
                start=start,
            )
        # Not seekable: read one chunk now to refuse an empty stream before anything is sent.
        head = stream.read(CHUNK_SIZE)
        if not isinstance(head, bytes | bytearray):
            raise InvalidArgumentError(f"{name!r} is not a binary file object (read gave text)")
        cls._refuse_empty(len(head), name)
        return cls(
            filename=name,
            content_type=ctype,
            size=None,
            replayable=False,
            stream=stream,
            head=bytes(head),
        )

    async def open(self, fields: Mapping[str, Any] | None = None) -> MultipartBody:
        """A fresh body for one attempt; ``fields`` become extra form fields before the file.

        The caller must :meth:`MultipartBody.close` it once the attempt is over.
        """
        if self._spent[0] and not self.replayable:
            raise CozeError(
                f"{self.filename!r} is a non-seekable stream that was already sent once; it "
                "cannot be sent again"
            )
        self._spent[0] = True
        boundary = "coze-async-" + secrets.token_hex(16)
        preamble = _encode_fields(fields, boundary) + _file_part_head(
            self.filename, self.content_type, boundary
        )
        epilogue = f"\r\n--{boundary}--\r\n".encode()
        reader: _Reader
        if self._data is not None:
            reader = _BytesReader(self._data)
        elif self._stream is not None and not self.replayable:
            reader = _StreamReader(self._stream, self._head)
        else:
            try:
                if self._path is not None:
                    reader = await anyio.to_thread.run_sync(_PathReader, self._path)
                else:
                    assert self._stream is not None
                    reader = await anyio.to_thread.run_sync(
                        _SeekableReader, self._stream, self._start
                    )
            except OSError as exc:
                raise InvalidArgumentError(
                    f"cannot read {self.filename!r} for upload: {exc}"
                ) from exc
        length = None if reader.size is None else len(preamble) + reader.size + len(epilogue)
        return MultipartBody(
            content_type=f"multipart/form-data; boundary={boundary}",
            length=length,
            preamble=preamble,
            reader=reader,
            epilogue=epilogue,
        )


def _tell(stream: IO[bytes]) -> int | None:
    seekable = getattr(stream, "seekable", None)
    try:
        if callable(seekable) and not seekable():
            return None
        return stream.tell()
    except (OSError, AttributeError, ValueError):
        return None


def _end_of(stream: IO[bytes], start: int) -> int:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        end = stream.seek(0, os.SEEK_END)
        stream.seek(start)
        return end


def _quote(value: str) -> str:
    # The HTML form encoding of names in Content-Disposition (RFC 7578 §4.2 points to it).
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _encode_fields(fields: Mapping[str, Any] | None, boundary: str) -> bytes:
    out = b""
    for name, value in (fields or {}).items():
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"form field names must be non-empty strings: {name!r}")
        text = value if isinstance(value, str) else dumps(value).decode()
        out += (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
            f"{text}\r\n"
        ).encode()
    return out


def _file_part_head(filename: str, content_type: str, boundary: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{_quote(filename)}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


class _Reader:
    """Produces the file's bytes in chunks; ``read`` runs in a worker thread."""

    size: int | None = None
    #: True when ``read`` does no blocking I/O (bytes in memory).
    in_memory = False

    def read(self) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader opened (never the caller's own file object)."""


class _BytesReader(_Reader):
    in_memory = True

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.size = len(data)

    def read(self) -> bytes:
        chunk = self._data[self._pos : self._pos + CHUNK_SIZE]
        self._pos += len(chunk)
        return chunk


class _BoundedReader(_Reader):
    """Reads exactly ``size`` bytes from a file, failing if it ends early."""

    def __init__(self, file: IO[bytes], size: int, name: str) -> None:
        self._file = file
        self._left = size
        self._name = name
        self.size = size

    def read(self) -> bytes:
        if self._left <= 0:
            return b""
        chunk = self._file.read(min(CHUNK_SIZE, self._left))
        if not chunk:
            raise OSError(f"{self._name} ended {self._left} bytes early (was it truncated?)")
        self._left -= len(chunk)
        return bytes(chunk)


class _PathReader(_BoundedReader):
    def __init__(self, path: str) -> None:
        file = open(path, "rb")  # noqa: SIM115 - closed by close(), after the attempt
        try:
            size = os.fstat(file.fileno()).st_size
        except BaseException:
            file.close()
            raise
        super().__init__(file, size, repr(path))

    def close(self) -> None:
        self._file.close()


class _SeekableReader(_BoundedReader):
    def __init__(self, stream: IO[bytes], start: int) -> None:
        stream.seek(start)
        super().__init__(stream, _end_of(stream, start) - start, "the file object")


class _StreamReader(_Reader):
    def __init__(self, stream: IO[bytes], head: bytes) -> None:
        self._stream = stream
        self._head: bytes | None = head

    def read(self) -> bytes:
        if self._head is not None:
            head, self._head = self._head, None
            return head
        chunk = self._stream.read(CHUNK_SIZE)
        if not isinstance(chunk, bytes | bytearray):
            raise OSError("the file object returned text, not bytes")
        return bytes(chunk)


class MultipartBody:
    """One attempt's request body: an async iterator of ``bytes`` chunks.

    ``content_type`` carries the boundary; ``length`` is the exact byte count (``None`` for a
    source of unknown size, which is then sent chunked). Reads happen in a worker thread.
    """

    def __init__(
        self,
        *,
        content_type: str,
        length: int | None,
        preamble: bytes,
        reader: _Reader,
        epilogue: bytes,
    ) -> None:
        self.content_type = content_type
        self.length = length
        self._preamble: bytes | None = preamble
        self._reader = reader
        self._epilogue: bytes | None = epilogue
        self._closed = False
        #: Bytes of the file (not the framing) handed out so far.
        self.sent = 0

    def __aiter__(self) -> MultipartBody:
        return self

    async def __anext__(self) -> bytes:
        if self._preamble is not None:
            preamble, self._preamble = self._preamble, None
            return preamble
        if not self._closed and self._epilogue is not None:
            reader = self._reader
            if reader.in_memory:
                chunk = reader.read()
            else:
                chunk = await anyio.to_thread.run_sync(reader.read)
            if chunk:
                self.sent += len(chunk)
                return chunk
            epilogue, self._epilogue = self._epilogue, None
            return epilogue
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop producing chunks and close the file if this body opened it. Idempotent."""
        if not self._closed:
            self._closed = True
            self._reader.close()
