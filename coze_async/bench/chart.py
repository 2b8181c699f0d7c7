"""Charts of a load run: a terminal sparkline and a small PNG, with the standard library only.

The PNG is a bar per second of accepted requests, a red line at the plan's per-second quota
and, where the plan also has a per-minute limit, an orange dashed line at its per-second
average. Drawing it takes a few dozen lines of rasterising; a plotting library would have
made ``coze-async bench --plot`` need an extra install on the fresh machine it is meant for.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["sparkline", "write_png_chart"]

_BLOCKS = " ▁▂▃▄▅▆▇█"

# 3x5 pixel glyphs, one string of 15 "0"/"1" per character, row by row.
_GLYPHS: dict[str, str] = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
    "/": "001001010100100",
    ".": "000000000000010",
    " ": "000000000000000",
    "A": "010101111101101",
    "C": "011100100100011",
    "D": "110101101101110",
    "E": "111100110100111",
    "I": "111010010010111",
    "L": "100100100100111",
    "M": "101111111101101",
    "N": "110101101101101",
    "O": "010101101101010",
    "P": "110101110100100",
    "Q": "010101101111011",
    "R": "110101110101101",
    "S": "011100010001110",
    "T": "111010010010010",
    "U": "101101101101111",
    "W": "101101111111101",
}

_WHITE = (255, 255, 255)
_BLACK = (40, 40, 40)
_GREY = (225, 225, 225)
_BAR = (66, 133, 244)
_OVER = (219, 68, 55)
_RED = (219, 68, 55)
_ORANGE = (244, 160, 0)


def sparkline(values: Sequence[int], limit: float | None = None) -> str:
    """One block character per value, scaled to the larger of the maximum and ``limit``."""
    if not values:
        return ""
    top = max(max(values), limit or 0, 1)
    return "".join(_BLOCKS[min(8, round(v / top * 8))] for v in values)


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(_WHITE) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, text: str, color: tuple[int, int, int], scale: int = 2) -> None:
        for i, ch in enumerate(text.upper()):
            glyph = _GLYPHS.get(ch, _GLYPHS[" "])
            ox = x + i * 4 * scale
            for k, bit in enumerate(glyph):
                if bit == "1":
                    px, py = ox + (k % 3) * scale, y + (k // 3) * scale
                    self.rect(px, py, px + scale, py + scale, color)

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
    path: Path,
    accepted: Sequence[int],
    *,
    limit: float | None = None,
    average_limit: float | None = None,
    width: int = 800,
    height: int = 400,
) -> None:
    """Write the accepted-per-second chart to ``path`` (a PNG of ``width`` x ``height``).

    Bars over ``limit`` are drawn red, so a run that broke the quota shows it at a glance.
    """
    canvas = _Canvas(width, height)
    left, right, top_margin, bottom = 70, 20, 40, 50
    plot_w, plot_h = width - left - right, height - top_margin - bottom
    top = max([*accepted, limit or 0, average_limit or 0, 1]) * 1.15
    step = _nice_step(top)

    def y_of(value: float) -> int:
        return top_margin + plot_h - round(value / top * plot_h)

    tick = 0
    while tick <= top:
        y = y_of(tick)
        canvas.rect(left, y, left + plot_w, y + 1, _GREY)
        label = str(tick)
        canvas.text(left - 10 - len(label) * 8, y - 5, label, _BLACK)
        tick += step
    n = max(1, len(accepted))
    slot = plot_w / n
    bar_w = max(1, round(slot * 0.7))
    for i, value in enumerate(accepted):
        x = left + round(i * slot + (slot - bar_w) / 2)
        color = _OVER if limit is not None and value > limit else _BAR
        canvas.rect(x, y_of(value), x + bar_w, y_of(0), color)
    label_every = max(1, round(n / 10))
    for i in range(0, n, label_every):
        label = str(i)
        x = left + round((i + 0.5) * slot) - len(label) * 4
        canvas.text(x, top_margin + plot_h + 10, label, _BLACK)
    canvas.text(left + plot_w // 2 - 24, height - 20, "SECOND", _BLACK)
    if average_limit is not None:
        y = y_of(average_limit)
        for x in range(left, left + plot_w, 12):
            canvas.rect(x, y - 1, min(x + 7, left + plot_w), y + 1, _ORANGE)
    if limit is not None:
        y = y_of(limit)
        canvas.rect(left, y - 1, left + plot_w, y + 2, _RED)
    canvas.rect(left, top_margin, left + 2, top_margin + plot_h, _BLACK)
    canvas.rect(left, top_margin + plot_h, left + plot_w, top_margin + plot_h + 2, _BLACK)
    title = "ACCEPTED REQUESTS PER SECOND"
    if limit is not None:
        title += f"   QUOTA {limit:g}/S"
    canvas.text(left, 12, title, _BLACK)
    path.write_bytes(canvas.png())
