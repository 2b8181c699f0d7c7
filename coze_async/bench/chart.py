"""Charts of a load run with the standard library only: a terminal sparkline and a PNG.

The PNG is the fallback of the report figure when matplotlib (the ``plot`` extra) is not
installed: per second, stacked bars of accepted (blue), rejected for quota (orange) and
otherwise failed (purple) requests, a black line at the plan's per-second quota, a grey
dashed line at the per-minute quota's per-second average, and a legend. Text uses a 5x7
bitmap font with lower case, drawn at twice its size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import attrs

from .figure import ACCEPTED, FAILED, QUOTA, QUOTA_AVERAGE, REJECTED, FigureData, _span

__all__ = ["DrawnChart", "render_png_chart", "sparkline", "write_png_chart"]

_BLOCKS = " ▁▂▃▄▅▆▇█"

# A 5x8 cell per character (7 rows plus one for descenders): one byte per row, top first,
# the low 5 bits left to right, as 16 hex digits.
_FONT: dict[str, str] = {
    "0": "0e11131519110e00",
    "1": "040c040404040e00",
    "2": "0e11010204081f00",
    "3": "1e01010e01011e00",
    "4": "02060a121f020200",
    "5": "1f101e0101110e00",
    "6": "0608101e11110e00",
    "7": "1f01020408080800",
    "8": "0e11110e11110e00",
    "9": "0e11110f01020c00",
    "a": "00000e010f110f00",
    "b": "10101e1111111e00",
    "c": "00000e1010110e00",
    "d": "01010f1111110f00",
    "e": "00000e111f100e00",
    "f": "0609081c08080800",
    "g": "00000f11110f010e",
    "h": "1010161911111100",
    "i": "04000c0404040e00",
    "j": "020006020202120c",
    "k": "1010121418141200",
    "l": "0c04040404040e00",
    "m": "00001a1515151500",
    "n": "0000161911111100",
    "o": "00000e1111110e00",
    "p": "00001e11111e1010",
    "q": "00000f11110f0101",
    "r": "0000161910101000",
    "s": "00000e100e011e00",
    "t": "08081c0808090600",
    "u": "0000111111130d00",
    "v": "00001111110a0400",
    "w": "0000111115150a00",
    "x": "0000110a040a1100",
    "y": "00001111110f010e",
    "z": "00001f0204081f00",
    "A": "0e11111f11111100",
    "B": "1e11111e11111e00",
    "C": "0e11101010110e00",
    "D": "1e11111111111e00",
    "E": "1f10101e10101f00",
    "F": "1f10101e10101000",
    "G": "0e11101711110f00",
    "H": "1111111f11111100",
    "I": "0e04040404040e00",
    "J": "0702020202120c00",
    "K": "1112141814121100",
    "L": "1010101010101f00",
    "M": "111b151511111100",
    "N": "1111191513111100",
    "O": "0e11111111110e00",
    "P": "1e11111e10101000",
    "Q": "0e11111115120d00",
    "R": "1e11111e14121100",
    "S": "0f10100e01011e00",
    "T": "1f04040404040400",
    "U": "1111111111110e00",
    "V": "11111111110a0400",
    "W": "1111111515150a00",
    "X": "11110a040a111100",
    "Y": "11110a0404040400",
    "Z": "1f01020408101f00",
    ".": "00000000000c0c00",
    ",": "00000000000c0408",
    ":": "000c0c000c0c0000",
    "/": "0101020408101000",
    "-": "0000001f00000000",
    "_": "0000000000001f00",
    "(": "0204080808040200",
    ")": "0804020202040800",
    "%": "1919020408131300",
    "=": "00001f001f000000",
    "+": "0004041f04040000",
    ">": "0804020102040800",
}
_BLANK = "0000000000000000"

Colour = tuple[int, int, int]
_WHITE: Colour = (255, 255, 255)
_TEXT: Colour = (40, 40, 40)
_GRID: Colour = (225, 225, 225)


def _rgb(hex_colour: str) -> Colour:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def sparkline(values: Sequence[int], limit: float | None = None) -> str:
    """One block character per value, scaled to the larger of the maximum and ``limit``."""
    if not values:
        return ""
    top = max(max(values), limit or 0, 1)
    return "".join(_BLOCKS[min(8, round(v / top * 8))] for v in values)


@attrs.frozen
class DrawnChart:
    """What :func:`write_png_chart` drew: per series, the value of each second's bar."""

    bars: dict[str, list[int]]
    lines: dict[str, float]
    legend: list[str]
    size: tuple[int, int]


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(_WHITE) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, colour: Colour) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(colour) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, colour: Colour = _TEXT, scale: int = 2) -> int:
        """Draw ``text`` with its top left at ``(x, y)``; return the x after it."""
        for ch in text:
            glyph = _FONT.get(ch) or _FONT.get(ch.lower()) or _BLANK
            for row in range(8):
                bits = int(glyph[row * 2 : row * 2 + 2], 16)
                for col in range(5):
                    if bits & (0x10 >> col):
                        px, py = x + col * scale, y + row * scale
                        self.rect(px, py, px + scale, py + scale, colour)
            x += 6 * scale
        return x

    @staticmethod
    def text_width(text: str, scale: int = 2) -> int:
        return len(text) * 6 * scale

    def png(self) -> bytes:
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * self.width * 3 : (y + 1) * self.width * 3])
            for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def _nice_step(top: float) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if top / step <= 6:
            return step
    return int(top // 5) or 1


def write_png_chart(
    path: Path, data: FigureData, *, width: int = 900, height: int = 480
) -> DrawnChart:
    """Write the requests-per-second chart of ``data`` to ``path`` (a PNG); say what it drew."""
    png, drawn = render_png_chart(data, width=width, height=height)
    path.write_bytes(png)
    return drawn


def render_png_chart(
    data: FigureData, *, width: int = 900, height: int = 480
) -> tuple[bytes, DrawnChart]:
    """The chart of :func:`write_png_chart` as PNG bytes, with what it drew."""
    canvas = _Canvas(width, height)
    left, right, top_margin, bottom = 80, 20, 108, 56
    plot_w, plot_h = width - left - right, height - top_margin - bottom
    stacks = [a + r + f for a, r, f in zip(data.accepted, data.rejected, data.failed, strict=True)]
    top = max([*stacks, data.quota or 0, data.quota_average or 0, 1]) * 1.15
    step = _nice_step(top)

    def y_of(value: float) -> int:
        return top_margin + plot_h - round(value / top * plot_h)

    tick = 0
    while tick <= top:
        y = y_of(tick)
        canvas.rect(left, y, left + plot_w, y + 1, _GRID)
        label = str(tick)
        canvas.text(left - 10 - canvas.text_width(label), y - 7, label)
        tick += step
    span = max(1.0, sum(data.widths))
    scale_x = plot_w / span
    series = ((ACCEPTED, data.accepted), (REJECTED, data.rejected), (FAILED, data.failed))
    for k, w in enumerate(data.widths):
        x0 = left + round((k + w * 0.15) * scale_x)
        x1 = max(x0 + 1, left + round((k + w * 0.85) * scale_x))
        base = 0
        for (_, colour), values in series:
            if values[k]:
                canvas.rect(x0, y_of(base + values[k]), x1, y_of(base), _rgb(colour))
                base += values[k]
    label_every = max(1, round(data.seconds / 10))
    for k in range(0, data.seconds, label_every):
        label = str(k)
        x = left + round((k + 0.5) * scale_x) - canvas.text_width(label) // 2
        canvas.text(x, top_margin + plot_h + 8, label)
    xlabel = "second of the run"
    if data.omitted > 0:
        xlabel += f" (last {_span(data.omitted)}, after the deadline, not drawn)"
    canvas.text(left + (plot_w - canvas.text_width(xlabel)) // 2, height - 24, xlabel)
    lines: dict[str, float] = {}
    if data.quota_average is not None:
        y = y_of(data.quota_average)
        for x in range(left, left + plot_w, 14):
            canvas.rect(x, y - 1, min(x + 8, left + plot_w), y + 1, _rgb(QUOTA_AVERAGE[1]))
        lines[QUOTA_AVERAGE[0]] = data.quota_average
    if data.quota is not None:
        y = y_of(data.quota)
        canvas.rect(left, y - 1, left + plot_w, y + 2, _rgb(QUOTA[1]))
        lines[QUOTA[0]] = data.quota
    canvas.rect(left, top_margin, left + 2, top_margin + plot_h, _TEXT)
    canvas.rect(left, top_margin + plot_h, left + plot_w, top_margin + plot_h + 2, _TEXT)
    title = data.title.removeprefix("coze-async bench: ")
    canvas.text(left, 10, title[: (width - left) // 12])
    canvas.text(left, 30, "requests per second", _TEXT)
    # The legend: a swatch and a name per series (first row) and per line (second row).
    legend: list[str] = []
    rows = [[ACCEPTED, REJECTED, FAILED], []]
    rows[1] += [QUOTA] if data.quota is not None else []
    rows[1] += [QUOTA_AVERAGE] if data.quota_average is not None else []
    for row, (y, entries) in enumerate(zip((54, 76), rows, strict=True)):
        x = left
        for name, colour in entries:
            if row:
                canvas.rect(x, y + 6, x + 18, y + 9, _rgb(colour))
            else:
                canvas.rect(x, y, x + 18, y + 14, _rgb(colour))
            x = canvas.text(x + 24, y, name) + 24
            legend.append(name)
    return canvas.png(), DrawnChart(
        bars={name: list(values) for (name, _), values in series},
        lines=lines,
        legend=legend,
        size=(width, height),
    )
