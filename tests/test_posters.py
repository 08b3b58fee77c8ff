"""Invite posters: size, a QR that decodes to the URL, real CJK glyphs (never boxes), truncation,
the avatar circle, and clear refusals for bad codes and templates."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image, ImageDraw

from posters import render as posters
from posters.fonts import find_cjk_font
from posters.render import FontMissingError, TemplateError, fit_text, load_template, render

URL = "http://weixin.qq.com/q/02AbCdEfGhIjKl10000003"
AVATAR_RGB = (30, 120, 200)
NOTDEF = "\U0010ffff"  # a code point no font maps: drawn as the font's missing-glyph box


@pytest.fixture(scope="module")
def font() -> str:
    path = find_cjk_font()
    if path is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    return str(path)


@pytest.fixture(scope="module")
def spec():
    return load_template("default")


def poster(spec, font: str, **kw) -> Image.Image:
    args = {"qr_url": URL, "nickname": "小明同学", "code": "AB12cd", "font_path": font} | kw
    return Image.open(io.BytesIO(render(spec, **args))).convert("RGB")


def avatar_png(size=(200, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, AVATAR_RGB).save(out, format="PNG")
    return out.getvalue()


def with_text(spec, font: str, text: str) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The poster's base (background + fixed texts) with `text` drawn in the nickname slot."""
    img = posters._base(spec, font).copy()
    draw = ImageDraw.Draw(img)
    slot = spec.nickname
    f = posters._font(font, slot.size)
    draw.text(slot.xy, text, font=f, fill=slot.color, anchor=slot.anchor)
    return img, draw.textbbox(slot.xy, text, font=f, anchor=slot.anchor)


def test_png_is_750_by_1334(spec, font):
    png = render(spec, qr_url=URL, nickname="小明", code="AB12cd", font_path=font)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png)).size == (750, 1334)


@pytest.mark.parametrize(
    "url", [URL, "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH47joAAAAAAAAAAS5o"]
)
def test_qr_decodes_to_the_url(spec, font, url):
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp not installed (pip install zxing-cpp)")
    found = zxingcpp.read_barcodes(poster(spec, font, qr_url=url))
    assert [b.text for b in found] == [url]
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode


def test_font_has_real_glyphs_for_the_nickname(font):
    nickname = "小明同学"
    f = posters._font(font, 40)
    box = f.getmask(NOTDEF)
    for ch in nickname:
        glyph = f.getmask(ch)
        assert (glyph.size, bytes(glyph)) != (box.size, bytes(box)), f"{ch!r} draws as the missing-glyph box"
        assert posters.has_glyph(font, ch)
    assert not posters.has_glyph(font, NOTDEF)
    try:
        from fontTools.ttLib import TTCollection, TTFont
    except ImportError:
        return  # the Pillow comparison above stands in for the cmap check
    if font.lower().endswith((".ttc", ".otc")):
        with TTCollection(font, lazy=True) as faces:
            face = next(face for face in faces if face["name"].getBestFamilyName() == f.getname()[0])
            cmap = face.getBestCmap()
    else:
        with TTFont(font, lazy=True) as face:
            cmap = face.getBestCmap()
    assert all(ord(ch) in cmap for ch in nickname)


def test_poster_draws_the_nickname_glyphs_not_boxes(spec, font):
    img = poster(spec, font, nickname="小明同学")
    real, bbox = with_text(spec, font, "小明同学")
    boxes, _ = with_text(spec, font, NOTDEF * 4)
    assert img.crop(bbox).tobytes() == real.crop(bbox).tobytes()
    assert img.crop(bbox).tobytes() != boxes.crop(bbox).tobytes()


def test_glyphs_the_font_lacks_are_dropped_not_boxed(spec, font):
    with_emoji = poster(spec, font, nickname="小明🌟同学\u200b\x07")
    assert with_emoji.tobytes() == poster(spec, font, nickname="小明同学").tobytes()


def test_empty_nickname_uses_the_fallback(spec, font):
    img = poster(spec, font, nickname="  ")
    real, bbox = with_text(spec, font, spec.nickname.fallback)
    assert img.crop(bbox).tobytes() == real.crop(bbox).tobytes()


def test_long_nickname_is_truncated_to_its_width(spec, font):
    long = "一个非常非常非常非常非常非常非常非常长的昵称" * 2
    f = posters._font(font, spec.nickname.size)
    fitted = fit_text(long, f, spec.nickname.max_width)
    assert fitted.endswith("…") and long.startswith(fitted[:-1])
    one_more = fitted[:-1] + long[len(fitted) - 1] + "…"
    assert f.getlength(fitted) <= spec.nickname.max_width < f.getlength(one_more)
    img = poster(spec, font, nickname=long)
    real, bbox = with_text(spec, font, fitted)
    assert bbox[2] - bbox[0] <= spec.nickname.max_width + 4
    assert img.crop(bbox).tobytes() == real.crop(bbox).tobytes()
    assert fit_text("小明", f, spec.nickname.max_width) == "小明"


def test_avatar_is_cropped_to_a_circle(spec, font):
    img = poster(spec, font, avatar=avatar_png())
    (cx, cy), r = spec.avatar.center, spec.avatar.diameter // 2
    assert img.getpixel((cx, cy)) == AVATAR_RGB
    assert img.getpixel((cx, cy - r + 8)) == AVATAR_RGB
    # The square's corner lies outside the circle (and its ring): not the avatar.
    assert img.getpixel((cx + r - 3, cy + r - 3)) != AVATAR_RGB
    without = poster(spec, font)
    assert without.getpixel((cx, cy)) != AVATAR_RGB


def test_unreadable_avatar_draws_the_placeholder(spec, font):
    assert poster(spec, font, avatar=b"not an image").tobytes() == poster(spec, font).tobytes()


@pytest.mark.parametrize("code", ["", "a" * 33, "ab c", "邀请", "a/b", "abc\n", "a.b", None])
def test_bad_code_refused(spec, font, code):
    with pytest.raises(ValueError, match="invite code"):
        render(spec, qr_url=URL, nickname="小明", code=code, font_path=font)


@pytest.mark.parametrize("code", ["a", "A" * 32, "inv_AB-12"])
def test_good_codes_accepted(spec, font, code):
    assert poster(spec, font, code=code).size == (750, 1334)


def test_missing_font_is_a_clear_error(spec):
    with pytest.raises(FontMissingError, match="fonts-noto-cjk"):
        render(spec, qr_url=URL, nickname="小明", code="AB12cd", font_path="/nonexistent/font.ttc")


def test_template_with_a_missing_field_refused(tmp_path):
    data = json.loads(posters.TEMPLATES.joinpath("default.json").read_text(encoding="utf-8"))
    del data["qr"]
    (tmp_path / "spring.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TemplateError, match=r"template 'spring': field 'qr' is missing"):
        load_template("spring", directory=tmp_path)
    data = json.loads(posters.TEMPLATES.joinpath("default.json").read_text(encoding="utf-8"))
    del data["nickname"]["max_width"]
    data["title"]["color"] = "teal-ish"
    with pytest.raises(TemplateError, match=r"'title.color' must be a colour"):
        posters.parse_template(data, name="x")


@pytest.mark.parametrize("name", ["../default", "nope", ""])
def test_unknown_or_unsafe_template_name_refused(name):
    with pytest.raises(TemplateError, match="template"):
        load_template(name)


def test_background_is_cached_per_spec(spec):
    assert posters.background(spec) is posters.background(spec)
    assert posters.background(spec).size == (750, 1334)
