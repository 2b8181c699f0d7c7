"""A raw TCP HTTP server that answers whatever a test scripts: for faults no emulator makes.

It parses just enough of each request (the head and a ``Content-Length`` body) to record it,
then hands the connection to the test's ``respond`` coroutine, which writes raw bytes. The
connection is then closed, or read for the next request when ``respond`` returns True.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import attrs


@attrs.frozen
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


class HostileServer:
    """``async with HostileServer(respond) as srv``: ``srv.url``, ``srv.requests``."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self.requests: list[RawRequest] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                request = RawRequest(method, path, headers, body)
                self.requests.append(request)
                keep = await self._respond(request, writer)
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str = "application/json",
    extra: str = "",
    length: bool = True,
) -> bytes:
    """A raw HTTP/1.1 response with ``body`` (and ``extra`` header lines, CRLF-terminated)."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body
