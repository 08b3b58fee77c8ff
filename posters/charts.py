"""Charts drawn with Pillow: line panels, bar lists, figure tiles, stacked into one PNG 750 px wide.

Pillow rather than matplotlib: it is already how posters are drawn, with the CJK font posters.render
finds (so Chinese text never shows boxes), a picture takes tens of milliseconds instead of matplotlib's
~1 s first import and ~100 ms per figure, and a phone-sized report needs lines, bars and labels only.
Everything here is pure and blocking: callers run it in a worker thread (asyncio.to_thread).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from flows.format import count
from posters.render import _font, resolve_font

WIDTH = 750
MARGIN = 28
INK = (33, 37, 41)
MUTED = (120, 126, 134)
GRID = (228, 231, 235)
PAPER = (255, 255, 255)
TILE = (236, 242, 250)
ACCENT = (7, 193, 96)  # WeChat green
PALETTE = ((24, 119, 242), (7, 193, 96), (250, 140, 22), (235, 47, 150), (114, 46, 209))


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no reading at that point


@dataclass(frozen=True, slots=True)
class Tile:
    label: str
    value: str


class Canvas:
    """A picture built top to bottom: each block is drawn at the current height, which then grows."""

    def __init__(self, font_path: str | None, height: int) -> None:
        self.font = resolve_font(font_path)
        self.img = Image.new("RGB", (WIDTH, height), PAPER)
        self.draw = ImageDraw.Draw(self.img)
        self.y = MARGIN

    def text(self, x: int, y: int, text: str, size: int, fill: tuple[int, int, int] = INK) -> int:
        """Draw `text`; its width."""
        font = _font(self.font, size)
        self.draw.text((x, y), text, font=font, fill=fill)
        return int(self.draw.textlength(text, font=font))

    def width_of(self, text: str, size: int) -> int:
        return int(self.draw.textlength(text, font=_font(self.font, size)))

    def title(self, text: str, sub: str = "") -> None:
        self.text(MARGIN, self.y, text, 34)
        self.y += 50
        if sub:
            for line in sub.splitlines():
                self.text(MARGIN, self.y, line, 20, MUTED)
                self.y += 28
        self.y += 10

    def heading(self, text: str) -> None:
        self.draw.rectangle((MARGIN, self.y + 6, MARGIN + 5, self.y + 28), fill=ACCENT)
        self.text(MARGIN + 14, self.y, text[:34], 24)
        self.y += 42

    def tiles(self, tiles: Sequence[Tile], per_row: int = 4) -> None:
        gap = 12
        w = (WIDTH - 2 * MARGIN - gap * (per_row - 1)) // per_row
        for i, tile in enumerate(tiles):
            row, col = divmod(i, per_row)
            x, y = MARGIN + col * (w + gap), self.y + row * (96 + gap)
            self.draw.rounded_rectangle((x, y, x + w, y + 96), radius=12, fill=TILE)
            self.text(x + 14, y + 12, tile.label, 18, MUTED)
            size = 30 if self.width_of(tile.value, 30) <= w - 24 else 22
            self.text(x + 14, y + 44, tile.value, size)
        rows = (len(tiles) + per_row - 1) // per_row
        self.y += rows * (96 + gap) + 14

    def lines(self, series: Sequence[Series], xlabels: Sequence[str], height: int = 250) -> None:
        """A line chart across the width: one y axis from 0, a legend above, labels under the x axis."""
        legend_x = MARGIN
        for i, s in enumerate(series):
            colour = PALETTE[i % len(PALETTE)]
            self.draw.rectangle((legend_x, self.y + 8, legend_x + 18, self.y + 20), fill=colour)
            legend_x += 26 + self.text(legend_x + 24, self.y, s.name, 18, MUTED) + 16
        self.y += 32
        left, right, top, bottom = MARGIN + 64, WIDTH - MARGIN - 10, self.y + 8, self.y + height - 34
        peak = max((v for s in series for v in s.values if v is not None), default=0) or 1
        top_value, steps = _nice(peak)
        for k in range(steps + 1):
            y = bottom - (bottom - top) * k / steps
            self.draw.line((left, y, right, y), fill=GRID, width=1)
            label = count(round(top_value * k / steps))
            self.text(left - 10 - self.width_of(label, 16), int(y) - 10, label, 16, MUTED)
        n = max(len(xlabels), 1)
        xs = [left + (right - left) * (i + 0.5) / n for i in range(n)]
        step = max(1, (n + 5) // 6)  # at most ~6 labels, so they never overlap
        for i, label in enumerate(xlabels):
            if i == n - 1 or (i % step == 0 and n - 1 - i >= step):  # the last one, and none crowding it
                self.text(int(xs[i] - self.width_of(label, 16) / 2), bottom + 8, label, 16, MUTED)
        for i, s in enumerate(series):
            colour = PALETTE[i % len(PALETTE)]
            points = [
                (xs[j], bottom - (bottom - top) * v / top_value)
                for j, v in enumerate(s.values)
                if v is not None
            ]
            if len(points) > 1:
                self.draw.line(points, fill=colour, width=4, joint="curve")
            for x, y in points:
                self.draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=colour)
        self.y += height + 6

    def bars(self, rows: Sequence[tuple[str, float, str]]) -> None:
        """Horizontal bars: label, value, value's text; longest bar the full width."""
        peak = max((v for _, v, _ in rows), default=0) or 1
        left, right = MARGIN + 210, WIDTH - MARGIN - 120
        for i, (label, value, shown) in enumerate(rows):
            colour = PALETTE[i % len(PALETTE)]
            self.text(MARGIN, self.y + 2, _fit(self, label, 20, 200), 20)
            end = left + max(4, int((right - left) * value / peak))
            self.draw.rounded_rectangle((left, self.y + 6, end, self.y + 28), radius=6, fill=colour)
            self.text(end + 10, self.y + 2, shown, 20, MUTED)
            self.y += 38
        self.y += 10

    def note(self, text: str) -> None:
        self.text(MARGIN, self.y, text, 18, MUTED)
        self.y += 30

    def png(self) -> bytes:
        img = self.img.crop((0, 0, WIDTH, min(self.img.height, self.y + MARGIN)))
        # A 256-colour palette looks the same for flat charts and halves the encoding time (and size).
        img = img.quantize(256, method=Image.Quantize.FASTOCTREE)
        out = io.BytesIO()
        img.save(out, format="PNG", compress_level=1)
        return out.getvalue()


def _fit(canvas: Canvas, text: str, size: int, width: int) -> str:
    if canvas.width_of(text, size) <= width:
        return text
    while text and canvas.width_of(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _nice(peak: float) -> tuple[float, int]:
    """The y axis' top — the next of 1, 2, 2.5, 5 × 10^k at or above the peak — and how many steps
    divide it into round ticks (5 → 1, 2, 3, 4, 5; 2 → 0.5, 1, 1.5, 2)."""
    scale = 1.0
    while scale * 10 <= peak:
        scale *= 10
    mantissa = next(m for m in (1, 2, 2.5, 5, 10) if m * scale >= peak)
    return mantissa * scale, {1: 5, 2: 4, 2.5: 5, 5: 5, 10: 5}[mantissa]
