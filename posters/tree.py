"""A creator's team as a picture: the creator on top, then up to three levels of members.

    png = render_tree(
        "小雨",
        [[("阿杰", "3月2日加入"), ("微信用户a1b2", "")], [("小美", "")]],  # level 1, level 2, …
        texts=TreeTexts(...),  # the sentences, from flows.texts
        totals=[2, 37],  # real head counts, when only the first members of a level are passed
        font_path=settings.font_path,
    )

Each member is (name, note): the name is shown (a nickname, or a masked id the caller chose), the note
in small grey type under it ("" for none). A level shows at most `max_rows` rows of chips; a level with
more members ends with a "+N 人" chip, N counted from `totals`. Pure and CPU-bound (no DB, no network):
call it through ``asyncio.to_thread``. About 40 ms for 3 × 50 members (bench/poster.py).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw

from posters.render import AvatarSlot, _draw_avatar, _font, clean_nickname, fit_text, resolve_font

MAX_LEVELS = 3  # commission depth never exceeds three levels (the law); neither does the picture

Colour = tuple[int, int, int]
Member = tuple[str, str]  # (name, note)

WIDTH = 750
PAD = 40
RAIL_X = 58  # the vertical line the levels hang from
CHIPS_X = 88
COLUMNS = 3
GAP = 14
CHIP_H = 76
HEADER_H = 230
PAGE: Colour = (247, 247, 248)
INK: Colour = (51, 51, 51)
MUTED: Colour = (150, 150, 150)
WHITE: Colour = (255, 255, 255)
TOP: Colour = (255, 106, 77)
BOTTOM: Colour = (255, 180, 92)
LEVEL_COLOURS: tuple[Colour, ...] = ((255, 106, 77), (255, 143, 61), (240, 176, 40))
CHIP_FILLS: tuple[Colour, ...] = ((255, 238, 233), (255, 241, 228), (253, 245, 222))


@dataclass(frozen=True, slots=True)
class TreeTexts:
    """The words on the picture (flows.texts.TREE_*); {name} and {count} are filled in."""

    title: str  # "{name} 的团队"
    summary: str  # "共 {count} 人"
    levels: tuple[str, ...]  # ("一级成员", "二级成员", "三级成员")
    count: str  # "{count} 人"
    more: str  # "+{count} 人"
    level_empty: str  # "暂无成员"
    empty: str  # the whole team is empty


@dataclass(frozen=True, slots=True)
class TextItem:
    """One piece of text as placed: where, how big, and the box it covers on the picture."""

    xy: tuple[int, int]
    text: str
    size: int
    fill: Colour
    anchor: str
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Box:
    box: tuple[int, int, int, int]
    fill: Colour
    radius: int = 0


@dataclass(frozen=True, slots=True)
class TreeLayout:
    size: tuple[int, int]
    boxes: tuple[Box, ...]
    texts: tuple[TextItem, ...]
    rail: tuple[int, int] | None  # y from, y to of the vertical line, None when there are no levels
    dots: tuple[tuple[int, int, Colour], ...]  # level markers on the rail: x, y, colour
    root: AvatarSlot
    root_name: str


def render_tree(
    root_name: str,
    levels: Sequence[Sequence[Member]],
    *,
    texts: TreeTexts,
    totals: Sequence[int] | None = None,
    font_path: str | None = None,
    root_avatar: bytes | None = None,
    max_rows: int = 5,
) -> bytes:
    """The team picture as a PNG, 750 px wide and as tall as the team needs (FontMissingError without
    a CJK font; ValueError for more than three levels or totals smaller than the members given)."""
    font = resolve_font(font_path)
    plan = layout_tree(root_name, levels, texts=texts, totals=totals, font=font, max_rows=max_rows)
    img = _header(plan.size[1]).copy()
    draw = ImageDraw.Draw(img)
    if plan.rail:
        draw.line((RAIL_X, plan.rail[0], RAIL_X, plan.rail[1]), fill=(225, 225, 228), width=3)
    for x, y, colour in plan.dots:
        draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=colour, outline=WHITE, width=3)
    for b in plan.boxes:
        draw.rounded_rectangle(b.box, radius=b.radius, fill=b.fill)
    _draw_avatar(img, plan.root, root_avatar, plan.root_name, font)
    for t in plan.texts:
        draw.text(t.xy, t.text, font=_font(font, t.size), fill=t.fill, anchor=t.anchor)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def layout_tree(
    root_name: str,
    levels: Sequence[Sequence[Member]],
    *,
    texts: TreeTexts,
    font: str,
    totals: Sequence[int] | None = None,
    max_rows: int = 5,
) -> TreeLayout:
    """Where everything goes (pure geometry and text fitting; `font` is a font file path)."""
    if len(levels) > MAX_LEVELS:
        raise ValueError(f"a team picture shows at most {MAX_LEVELS} levels, not {len(levels)}")
    counts = list(totals) if totals is not None else [len(level) for level in levels]
    if len(counts) != len(levels) or any(c < len(level) for c, level in zip(counts, levels, strict=True)):
        raise ValueError("totals must give one count per level, at least the members passed")
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    p = _Placer(font)
    name = clean_nickname(root_name, font) or "?"
    p.text((PAD + 150, 112), texts.title.format(name=name), 40, WHITE, "lm", max_width=WIDTH - PAD - 190)
    p.text((PAD + 150, 166), texts.summary.format(count=sum(counts)), 26, WHITE, "lm")
    root = AvatarSlot(center=(PAD + 64, 132), diameter=112, ring_width=5, placeholder=(255, 201, 184, 255))
    y = HEADER_H + 36
    if sum(counts) == 0:
        return p.done(y + _empty(p, texts.empty, y), None, (), root, name)
    dots: list[tuple[int, int, Colour]] = []
    rail_top = y
    for i, (members, count) in enumerate(zip(levels, counts, strict=True)):
        colour = LEVEL_COLOURS[i]
        dots.append((RAIL_X, y + 18, colour))
        label = texts.levels[i] if i < len(texts.levels) else str(i + 1)
        p.text((CHIPS_X, y + 18), label, 30, INK, "lm")
        p.text((WIDTH - PAD, y + 18), texts.count.format(count=count), 26, colour, "rm")
        y += 52
        if count == 0:
            p.text((CHIPS_X, y + 14), texts.level_empty, 24, MUTED, "lm")
            y += 60
            continue
        y = _chips(p, y, i, members, count, max_rows, texts.more)
    return p.done(y + 8, (rail_top + 18, dots[-1][1]), tuple(dots), root, name)


def _chips(
    p: _Placer, y: int, level: int, members: Sequence[Member], count: int, max_rows: int, more: str
) -> int:
    """One level's members as chips from `y`, the last saying "+N 人" if not all fit; returns the next y."""
    chip_w = (WIDTH - PAD - CHIPS_X - GAP * (COLUMNS - 1)) // COLUMNS
    shown = members[: COLUMNS * max_rows]
    if count > len(shown):  # the last place says how many more there are
        shown = shown[: min(len(shown), COLUMNS * max_rows - 1)]
    cells: list[Member | None] = [*shown, *([None] if count > len(shown) else [])]
    for j, cell in enumerate(cells):
        x0 = CHIPS_X + (j % COLUMNS) * (chip_w + GAP)
        y0 = y + (j // COLUMNS) * (CHIP_H + GAP)
        box = (x0, y0, x0 + chip_w, y0 + CHIP_H)
        if cell is None:
            p.boxes.append(Box(box, WHITE, 16))
            label = more.format(count=count - len(shown))
            p.text((x0 + chip_w // 2, y0 + CHIP_H // 2), label, 26, LEVEL_COLOURS[level], "mm")
        else:
            p.boxes.append(Box(box, CHIP_FILLS[level], 16))
            p.member(box, cell)
    rows = -(-len(cells) // COLUMNS)
    return y + rows * (CHIP_H + GAP) - GAP + 40


class _Placer:
    """Collects boxes and fitted texts while the layout walks down the picture."""

    def __init__(self, font: str) -> None:
        self.font = font
        self.boxes: list[Box] = []
        self.texts: list[TextItem] = []

    def text(
        self, xy: tuple[int, int], text: str, size: int, fill: Colour, anchor: str, *, max_width: int = 0
    ) -> None:
        face = _font(self.font, size)
        if max_width:
            text = fit_text(text, face, max_width)
        # Pillow types the box as floats; FreeType measures whole pixels.
        left, top, right, bottom = (int(v) for v in face.getbbox(text, anchor=anchor))
        x, y = xy
        self.texts.append(TextItem(xy, text, size, fill, anchor, (x + left, y + top, x + right, y + bottom)))

    def member(self, box: tuple[int, int, int, int], member: Member) -> None:
        x0, y0, x1, y1 = box
        name = clean_nickname(member[0], self.font, 26) or "?"
        note = clean_nickname(member[1], self.font, 20)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        inner = x1 - x0 - 24
        self.text((cx, cy - 11 if note else cy), name, 26, INK, "mm", max_width=inner)
        if note:
            self.text((cx, cy + 21), note, 20, MUTED, "mm", max_width=inner)

    def done(
        self,
        height: int,
        rail: tuple[int, int] | None,
        dots: tuple[tuple[int, int, Colour], ...],
        root: AvatarSlot,
        name: str,
    ) -> TreeLayout:
        return TreeLayout((WIDTH, height), tuple(self.boxes), tuple(self.texts), rail, dots, root, name)


def _empty(p: _Placer, sentence: str, y: int) -> int:
    """The empty-team sentence wrapped in a white card; returns the card's height."""
    face = _font(p.font, 28)
    lines, line = [], ""
    for ch in sentence:  # Chinese wraps between any two characters
        if face.getlength(line + ch) > WIDTH - 2 * PAD - 64 and line:
            lines.append(line)
            line = ""
        line += ch
    lines.append(line)
    height = 48 + 44 * len(lines)
    p.boxes.append(Box((PAD, y, WIDTH - PAD, y + height), WHITE, 24))
    for k, text in enumerate(lines):
        p.text((WIDTH // 2, y + 24 + 44 * k + 22), text, 28, MUTED, "mm")
    return height + 40


@functools.lru_cache(maxsize=32)
def _header(height: int) -> Image.Image:
    """The page with its gradient header band, per height (teams of one size look alike)."""
    img = Image.new("RGB", (WIDTH, height), PAGE)
    mask = Image.linear_gradient("L").resize((WIDTH, HEADER_H), Image.Resampling.BILINEAR)
    band = Image.composite(
        Image.new("RGB", (WIDTH, HEADER_H), BOTTOM), Image.new("RGB", (WIDTH, HEADER_H), TOP), mask
    )
    img.paste(band, (0, 0))
    return img


__all__ = ["MAX_LEVELS", "Member", "TextItem", "TreeLayout", "TreeTexts", "layout_tree", "render_tree"]
