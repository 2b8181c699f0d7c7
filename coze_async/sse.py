"""Sans-IO, incremental Server-Sent Events decoder: bytes in, events out.

This module implements the WHATWG "event stream interpretation" algorithm
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
for the streaming Coze endpoints (chat, chatflow, workflow stream/resume). It does no I/O and
imports nothing outside the standard library, so the transport can feed it whatever chunks the
socket produces and tests can drive it with plain ``bytes``.

Spec behaviour implemented:

* lines end with CR, LF or CRLF, also when a CRLF is split across two chunks;
* ``name:value`` is split at the first colon and exactly one optional space after it is removed;
  a line without a colon is a field name with an empty value; lines starting with ``:`` are
  comments;
* ``data`` lines are joined with ``"\\n"``; ``event`` sets the type (``"message"`` by default);
  ``id`` sets the last event ID unless the value contains NUL; ``retry`` is honoured only when
  it is all ASCII digits; unknown fields are ignored;
* a blank line dispatches the event; with an empty data buffer nothing is dispatched and the
  event type is reset;
* one UTF-8 BOM at the very start of the stream is removed (also when it arrives split);
* the stream is decoded as UTF-8 with U+FFFD replacement, never raising;
* at end of stream an incomplete event is not dispatched. :meth:`SSEDecoder.close` returns it
  so the caller can attach it to an error instead of losing it silently.

Why it is fast (the decoder sits on the hot path of every streamed token): the buffer is only
searched with ``bytes.rfind``/``bytes.split`` (C loops), each byte is searched for an event
boundary once (so a single multi-megabyte line fed in small chunks stays linear), whole runs of
complete events are split into lines with one call, values are decoded one data field at a
time, recurring ``event:`` lines are looked up in a small cache instead of being parsed again,
and ``\\r`` handling only costs anything for chunks that actually contain a ``\\r``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["EventTooLarge", "SSEDecoder", "ServerSentEvent", "iter_events"]

_BOM = b"\xef\xbb\xbf"

# While the undispatched tail is below this size a new chunk is appended by concatenation (one
# small copy, the cheapest thing for ordinary events). Above it chunks are kept in a list and
# joined once when the event ends, so a huge event costs O(n) instead of O(n^2) copying.
_SPILL_BYTES = 16 * 1024

# Bounds on the ``event:`` line cache. Real streams use a dozen short event names; the caps
# only protect memory against a hostile server sending a new (or a huge) name per event.
_EVENT_CACHE_MAX = 256
_EVENT_CACHE_MAX_LINE = 256

_DEFAULT_EVENT = "message"


class EventTooLarge(ValueError):
    """One event grew past the decoder's ``max_event_bytes``; nothing more was buffered.

    ``size`` is how many bytes of the event had arrived when it was noticed (at most one chunk
    past the limit), ``limit`` the cap. The stream layer turns it into a typed stream error.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"an event of at least {size} bytes is over the {limit}-byte limit")
        self.size = size
        self.limit = limit


class ServerSentEvent:
    """One dispatched server-sent event.

    Read-only by convention (a plain ``__slots__`` class rather than a frozen attrs class
    because one is built per streamed token and construction cost matters).

    Attributes:
        event: the event type; ``"message"`` when the event had no (or an empty) ``event:``
            field.
        data: the ``data:`` lines joined with ``"\\n"``.
        id: the last event ID buffer at dispatch time. Per the spec it persists across events
            until the server sends another ``id:``; ``None`` if the stream never sent one.
        retry: the reconnection time in milliseconds carried by a ``retry:`` field of *this*
            event, else ``None``.
    """

    __slots__ = ("data", "event", "id", "retry")
    __match_args__ = ("event", "data", "id", "retry")

    event: str
    data: str
    id: str | None
    retry: int | None

    def __init__(
        self,
        event: str = _DEFAULT_EVENT,
        data: str = "",
        id: str | None = None,
        retry: int | None = None,
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(event={self.event!r}, data={self.data!r}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (
            self.event == other.event
            and self.data == other.data
            and self.id == other.id
            and self.retry == other.retry
        )

    def __hash__(self) -> int:
        return hash((self.event, self.data, self.id, self.retry))


class SSEDecoder:
    """Incremental event-stream decoder (sans-IO).

    Feed it the response body chunk by chunk with :meth:`feed`; each call returns the events
    that chunk completed. Call :meth:`close` at end of stream. Chunks may be split anywhere,
    including inside a CRLF, a UTF-8 BOM or a multibyte character.
    """

    __slots__ = (
        "_bom_head",
        "_closed",
        "_cr_pending",
        "_event_cache",
        "_last_event_id",
        "_max",
        "_parts",
        "_parts_len",
        "_reconnection_time",
        "_special",
        "_tail",
    )

    def __init__(self, *, max_event_bytes: int | None = None) -> None:
        if max_event_bytes is not None and max_event_bytes < 1:
            raise ValueError("max_event_bytes must be >= 1 or None")
        # The cap as a number that is never exceeded when there is none: one compare per feed.
        self._max = max_event_bytes if max_event_bytes is not None else float("inf")
        # Undispatched bytes after the last blank line (always starts at a line start).
        self._tail = b""
        # Used instead of ``_tail`` while an event is larger than _SPILL_BYTES.
        self._parts: list[bytes] | None = None
        self._parts_len = 0
        # Stream-start bytes held back while they could still be the start of a BOM;
        # ``None`` once the BOM question has been settled.
        self._bom_head: bytes | None = b""
        # The previous chunk ended with CR: a LF at the start of the next chunk belongs to it.
        self._cr_pending = False
        self._closed = False
        # One flag for "this chunk needs the slow preparation path" keeps the per-chunk check
        # for the common case to a single attribute test plus a C memchr for ``\r``.
        self._special = True
        self._last_event_id: str | None = None
        self._reconnection_time: int | None = None
        self._event_cache: dict[bytes, str] = {}

    @property
    def last_event_id(self) -> str | None:
        """The last event ID string as of the last dispatch (blank line), or ``None``.

        This is what a client sends back as ``Last-Event-ID`` when it reconnects.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The most recent valid ``retry:`` value (ms) in the stream so far, or ``None``.

        Unlike :attr:`ServerSentEvent.retry` this also reflects ``retry:`` fields sent in blocks
        without data, which dispatch no event (a common way to set the reconnection delay). It
        is updated when the block carrying the field ends with its blank line.
        """
        return self._reconnection_time

    @property
    def pending_bytes(self) -> int:
        """Number of received bytes not yet dispatched (diagnostics)."""
        held = len(self._bom_head) if self._bom_head is not None else 0
        if self._parts is not None:
            return held + self._parts_len
        return held + len(self._tail)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Add ``chunk`` to the stream and return the events it completed (maybe none).

        Raises:
            RuntimeError: if called after :meth:`close`.
        """
        if self._special or type(chunk) is not bytes or b"\r" in chunk:
            chunk = self._prepare(chunk)
        if self._parts is not None:
            return self._feed_spilled(chunk)
        tail = self._tail
        if tail:
            data = tail + chunk
            # The blank line may begin with the last byte we already held; everything before
            # it was searched by an earlier call and holds no event boundary.
            end = data.rfind(b"\n\n", len(tail) - 1)
        else:
            data = chunk
            end = data.rfind(b"\n\n")
        if end < 0:
            if len(data) > self._max:
                raise self._too_large(len(data))
            if len(data) > _SPILL_BYTES:
                self._parts = [data]
                self._parts_len = len(data)
                self._tail = b""
            else:
                self._tail = data
            return []
        if end + 1 > self._max:
            # The completed events together pass the cap: is one of them too large alone?
            self._check_events(data, end)
        if end + 2 == len(data):
            # The chunk ends exactly at an event boundary (typical when the server flushes
            # once per event): split it as is. The extra empty string after the final LF acts
            # as one more blank line, which is a no-op, and two slices are saved.
            self._tail = b""
            return self._parse(data.split(b"\n"))
        self._tail = data[end + 2 :]
        if len(self._tail) > self._max:
            raise self._too_large(len(self._tail))
        # Keep the LF that ends the last line: split() then yields a final empty string, which
        # is the blank line that dispatches the last event.
        return self._parse(data[: end + 1].split(b"\n"))

    def close(self) -> ServerSentEvent | None:
        """Signal end of stream; return the incomplete pending event, if any.

        Per the spec an event not terminated by a blank line is *not* dispatched. It is
        returned here instead (including a final line that lacks its line terminator) so the
        caller can report it. It is returned when a data line, a ``retry:``, an event type other
        than ``"message"`` or an ID different from :attr:`last_event_id` is pending; otherwise
        the result is ``None``.
        After ``close()``, :meth:`feed` raises ``RuntimeError``; closing twice returns ``None``.
        """
        if self._closed:
            return None
        self._closed = True
        self._special = True
        head = self._bom_head or b""
        rest = head + (b"".join(self._parts) if self._parts is not None else self._tail)
        self._bom_head = None
        self._tail = b""
        self._parts = None
        self._parts_len = 0
        if not rest:
            return None
        lines = rest.split(b"\n")
        if not lines[-1]:
            # ``rest`` ended with a line terminator: the empty remainder is not a blank line.
            lines.pop()
        # No blank line follows these lines (the tail never holds one, except leading blank
        # lines, which have nothing to dispatch), so nothing is dispatched here and the
        # stream-level state must not move: the pending event is handed back instead.
        last_event_id = self._last_event_id
        reconnection_time = self._reconnection_time
        pending: list[ServerSentEvent] = []
        self._parse(lines, pending)
        self._last_event_id = last_event_id
        self._reconnection_time = reconnection_time
        return pending[0] if pending else None

    # -- internals -------------------------------------------------------------------------

    def _too_large(self, size: int) -> EventTooLarge:
        # Drop what was buffered: the stream is unusable past this point anyway.
        self._tail = b""
        self._parts = None
        self._parts_len = 0
        return EventTooLarge(size, int(self._max))

    def _check_events(self, data: bytes, end: int) -> None:
        """Raise if one event in ``data[:end]`` (complete events, LF-normalised) is too long.

        Only reached when the completed region as a whole is over the cap, which ordinary
        streams never are, so the per-event hot path pays nothing for the cap.
        """
        start = 0
        while start < end:
            stop = data.find(b"\n\n", start, end + 1)
            if stop < 0:
                stop = end
            if stop + 1 - start > self._max:
                raise self._too_large(stop + 1 - start)
            start = stop + 2

    def _prepare(self, chunk: bytes) -> bytes:
        """Slow path: closed check, non-bytes input, BOM, CR / CRLF normalisation to LF."""
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() called after close()")
        if type(chunk) is not bytes:
            # bytearray / memoryview: slices of them are unhashable (event cache) or lack
            # bytes methods, so work on a bytes copy.
            chunk = bytes(chunk)
        head = self._bom_head
        if head is not None:
            head += chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                # Could still become a BOM: hold the bytes until it is decided.
                self._bom_head = head
                return b""
            self._bom_head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if self._cr_pending and chunk:
            self._cr_pending = False
            if chunk[:1] == b"\n":
                # Second half of a CRLF whose CR ended the previous chunk (already a LF).
                chunk = chunk[1:]
        if b"\r" in chunk:
            # CR and LF never occur inside a multibyte UTF-8 sequence, so rewriting line ends
            # on raw bytes is safe. CRLF first, so that it becomes one LF and not two.
            self._cr_pending = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self._special = self._bom_head is not None or self._cr_pending
        return chunk

    def _feed_spilled(self, chunk: bytes) -> list[ServerSentEvent]:
        """Feed while a large event is being accumulated in ``_parts`` (linear time)."""
        parts = self._parts
        assert parts is not None
        # Only the new bytes are searched, plus a blank line that straddles the boundary.
        end = chunk.rfind(b"\n\n")
        if end < 0:
            if chunk[:1] == b"\n" and parts[-1][-1:] == b"\n":
                end = -1
            else:
                if chunk:
                    parts.append(chunk)
                    self._parts_len += len(chunk)
                    if self._parts_len > self._max:
                        raise self._too_large(self._parts_len)
                return []
        if end >= 0:
            parts.append(chunk[: end + 1])
        region = b"".join(parts)
        if len(region) > self._max:
            self._check_events(region, len(region) - 1)
        # What follows the last blank line holds no further "\n\n" (rfind found the last
        # one), so it completes no event: just keep it, spilling again if it is large.
        rest = chunk[end + 2 :]
        if len(rest) > self._max:
            raise self._too_large(len(rest))
        if len(rest) > _SPILL_BYTES:
            self._parts = [rest]
            self._parts_len = len(rest)
        else:
            self._parts = None
            self._parts_len = 0
            self._tail = rest
        return self._parse(region.split(b"\n"))

    def _parse(
        self, lines: list[bytes], pending: list[ServerSentEvent] | None = None
    ) -> list[ServerSentEvent]:
        """Interpret complete lines and return the events they dispatch.

        This is the hot loop, hence the inlined field handling and the local aliases.
        :meth:`feed` only passes runs of lines that end with a blank line, so the event type
        and data buffers never need to survive between calls, and at the end the ID buffer is
        the last event ID. :meth:`close` passes a ``pending`` list to receive the unfinished
        event instead.
        """
        out: list[ServerSentEvent] = []
        emit = out.append
        cache = self._event_cache
        sse = ServerSentEvent
        default_event = _DEFAULT_EVENT
        id_buffer = self._last_event_id
        event = default_event
        # The data buffer: ``data`` holds the first line, ``more`` all lines once there are
        # two or more (multi-line data is rare, so the common case builds no list).
        data: bytes | None = None
        more: list[bytes] | None = None
        retry: int | None = None
        for line in lines:
            if not line:
                # Blank line: dispatch (if there is data), then reset the per-event buffers.
                if data is not None:
                    if more is not None:
                        data = b"\n".join(more)
                        more = None
                    try:
                        text = data.decode()
                    except UnicodeDecodeError:
                        text = data.decode("utf-8", "replace")
                    emit(sse(event, text, id_buffer, retry))
                    data = None
                event = default_event
                retry = None
            elif line[:5] == b"data:" or line == b"data":
                # A bare "data" line (no colon) is an empty data line: line[5:] is b"".
                value = line[6:] if line[5:6] == b" " else line[5:]
                if data is None:
                    data = value
                elif more is None:
                    more = [data, value]
                else:
                    more.append(value)
            else:
                cached = cache.get(line)
                if cached is not None:
                    event = cached
                    continue
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"event":
                    event = value.decode("utf-8", "replace") or default_event
                    if len(cache) < _EVENT_CACHE_MAX and len(line) <= _EVENT_CACHE_MAX_LINE:
                        cache[line] = event
                elif name == b"id" and b"\0" not in value:
                    id_buffer = value.decode("utf-8", "replace")
                elif name == b"retry" and value.isdigit():
                    # bytes.isdigit() is ASCII-only and False for b"", as the spec wants.
                    retry = int(value)
                    self._reconnection_time = retry
                # Any other name, including "" (a comment line), is ignored.
        if pending is not None and (
            data is not None
            or event != default_event
            or retry is not None
            or id_buffer != self._last_event_id
        ):
            if more is not None:
                data = b"\n".join(more)
            text = data.decode("utf-8", "replace") if data is not None else ""
            pending.append(sse(event, text, id_buffer, retry))
        self._last_event_id = id_buffer
        return out


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of byte chunks, yielding events as they complete.

    An incomplete final event is discarded, as the spec requires; use :class:`SSEDecoder`
    directly to get hold of it via :meth:`SSEDecoder.close`.
    """
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    decoder.close()
