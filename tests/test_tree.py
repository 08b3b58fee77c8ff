"""The team picture: sizes for no, few and many members, "+N 人" overflow, and real CJK glyphs."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from flows import texts as tc
from posters import render as posters
from posters.fonts import find_cjk_font
from posters.tree import MAX_LEVELS, TextItem, TreeTexts, layout_tree, render_tree

NOTDEF = "\U0010ffff"  # no font maps it: drawn as the missing-glyph box
TEXTS = TreeTexts(
    title=tc.TREE_TITLE,
    summary=tc.TREE_SUMMARY,
    levels=tc.TREE_LEVELS,
    count=tc.TREE_COUNT,
    more=tc.TREE_MORE,
    level_empty=tc.TREE_LEVEL_EMPTY,
    empty=tc.TREE_EMPTY,
)


@pytest.fixture(scope="module")
def font() -> str:
    path = find_cjk_font()
    if path is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    return str(path)


def members(n: int, prefix: str = "小雨同学", note: str = "") -> list[tuple[str, str]]:
    return [(f"{prefix}{i}", note) for i in range(n)]


def picture(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def texts_of(levels: list[list[tuple[str, str]]], font: str, **kw) -> list[str]:
    return [t.text for t in layout_tree("星星", levels, texts=TEXTS, font=font, **kw).texts]


def test_no_members_says_how_to_get_some(font: str) -> None:
    img = picture(render_tree("星星", [], texts=TEXTS, font_path=font))
    assert img.width == 750 and 300 < img.height < 700
    words = "".join(texts_of([], font))
    assert "星星 的团队" in words and "共 0 人" in words and "还没有成员" in words
    assert texts_of([[], [], []], font) == texts_of([], font)  # empty levels are an empty team


def test_a_few_members_each_get_a_chip(font: str) -> None:
    levels = [members(2, note="3月2日加入"), members(1, "阿杰")]
    img = picture(render_tree("星星", levels, texts=TEXTS, font_path=font))
    words = texts_of(levels, font)
    assert img.width == 750 and img.height < 1000
    assert {"小雨同学0", "小雨同学1", "阿杰0", "3月2日加入", "一级成员", "二级成员", "共 3 人"} <= set(words)
    assert not any(w.startswith("+") for w in words)


def test_many_members_end_in_plus_n_and_the_height_is_bounded(font: str) -> None:
    levels = [members(50), members(50, "阿杰"), members(50, "微信用户")]
    png = render_tree("星星", levels, texts=TEXTS, font_path=font, totals=[50, 50, 1234])
    img = picture(png)
    words = texts_of(levels, font, totals=[50, 50, 1234])
    shown = [w for w in words if w.startswith("小雨同学")]
    assert len(shown) == 14 and "+36 人" in words  # 5 rows of 3, the last place says how many more
    assert "+1220 人" in words and "1234 人" in words and "共 1334 人" in words
    assert img.width == 750 and img.height < 2400
    taller = picture(render_tree("星星", levels, texts=TEXTS, font_path=font, max_rows=8))
    assert taller.height > img.height


def test_a_level_with_no_one_says_so(font: str) -> None:
    words = texts_of([members(3), []], font)
    assert tc.TREE_LEVEL_EMPTY in words and "0 人" in words


def test_long_names_are_cut_to_their_chip(font: str) -> None:
    layout = layout_tree("星星", [[("一个非常非常非常非常长的昵称", "")]], texts=TEXTS, font=font)
    chip = layout.boxes[0].box
    [name] = [t for t in layout.texts if t.text.startswith("一个")]
    assert name.text.endswith("…")
    assert chip[0] <= name.bbox[0] and name.bbox[2] <= chip[2]


def _drawn_alone(img: Image.Image, item: TextItem, text: str, font: str) -> bytes:
    """The picture's pixels under `item` if `text` were drawn there instead."""
    canvas = img.copy()
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(item.bbox, fill=img.getpixel((item.bbox[0] - 2, item.bbox[1] - 2)))
    draw.text(item.xy, text, font=posters._font(font, item.size), fill=item.fill, anchor=item.anchor)
    return canvas.crop(item.bbox).tobytes()


def test_cjk_glyphs_are_drawn_not_boxes(font: str) -> None:
    levels = [[("小雨", "新成员")]]
    img = picture(render_tree("星星", levels, texts=TEXTS, font_path=font))
    layout = layout_tree("星星", levels, texts=TEXTS, font=font)
    for item in layout.texts:
        assert all(posters.has_glyph(font, ch) for ch in item.text if not ch.isspace()), item.text
    [name] = [t for t in layout.texts if t.text == "小雨"]
    drawn = img.crop(name.bbox).tobytes()
    assert drawn == _drawn_alone(img, name, "小雨", font)
    assert drawn != _drawn_alone(img, name, NOTDEF * 2, font)


def test_glyphs_the_font_lacks_are_dropped(font: str) -> None:
    words = texts_of([[("小雨🌟", "")]], font)
    assert "小雨" in words and not any("🌟" in w for w in words)


def test_more_than_three_levels_is_refused(font: str) -> None:
    with pytest.raises(ValueError, match="at most 3"):
        render_tree("星星", [members(1)] * (MAX_LEVELS + 1), texts=TEXTS, font_path=font)
    with pytest.raises(ValueError, match="totals"):
        render_tree("星星", [members(5)], texts=TEXTS, font_path=font, totals=[3])
