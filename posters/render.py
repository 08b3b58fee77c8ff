"""Invite posters: a template (data) + a creator's nickname, avatar, code and QR URL -> PNG bytes.

Pure and CPU-bound (no DB, no network): call ``render`` through ``asyncio.to_thread``. The
background of a spec (gradient, soft shapes, card) and the template's fixed texts are drawn once
and cached, so a repeated render only draws the nickname, the code, the avatar and the QR.
Fonts are cached and shared between threads: safe on CPython with the GIL (Pillow holds it while
FreeType works); a free-threaded build needs Pillow >= 12.2, which locks each font.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from PIL import Image, ImageColor, ImageDraw, ImageFilter, ImageFont, ImageOps

from posters.fonts import INSTALL_HINT, find_cjk_font
from posters.qr import qr_matrix

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ELLIPSIS = "…"
SHAPE_KINDS = ("circle", "ellipse", "rounded_rect")
# Supersampling factor for the anti-aliased edges of circles (avatar mask, ring).
_AA = 4

Colour = tuple[int, int, int, int]


class TemplateError(ValueError):
    """A poster template that cannot be used, with the field that is wrong."""


class FontMissingError(RuntimeError):
    """No font with Chinese glyphs: posters would show boxes."""


@dataclass(frozen=True)
class Shape:
    kind: str  # circle | ellipse | rounded_rect
    box: tuple[int, int, int, int]
    fill: Colour
    blur: int = 0
    radius: int = 0


@dataclass(frozen=True)
class Background:
    top: Colour
    bottom: Colour
    shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class TextSlot:
    xy: tuple[int, int]
    size: int
    color: Colour
    text: str = ""
    anchor: str = "mm"
    stroke: int = 0
    max_width: int | None = None
    fallback: str = ""


@dataclass(frozen=True)
class QrSlot:
    box: tuple[int, int, int]  # x, y, side
    quiet_zone: int = 4  # modules of white around the code
    color: Colour = (0, 0, 0, 255)


@dataclass(frozen=True)
class AvatarSlot:
    center: tuple[int, int]
    diameter: int
    ring_color: Colour = (255, 255, 255, 255)
    ring_width: int = 0
    placeholder: Colour = (220, 220, 220, 255)


@dataclass(frozen=True)
class PosterSpec:
    name: str
    size: tuple[int, int]
    background: Background
    title: TextSlot
    slogan: TextSlot
    nickname: TextSlot
    code: TextSlot
    footer: TextSlot
    qr: QrSlot
    avatar: AvatarSlot


# --------------------------------------------------------------------------------------------------
# Templates


def load_template(name: str = "default", *, directory: Path | str | None = None) -> PosterSpec:
    """The template ``<directory>/<name>.json`` (default: posters/templates) as a validated spec."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TemplateError(f"template name {name!r}: use 1-64 characters of A-Z a-z 0-9 _ -")
    path = Path(directory or TEMPLATES) / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"template {name!r}: no file {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TemplateError(f"template {name!r}: cannot read {path}: {e}") from None
    return parse_template(data, name=name)


def parse_template(data: Any, *, name: str = "template") -> PosterSpec:
    """A spec from a template's JSON data; TemplateError names the template and the bad field."""
    p = _Parser(name)
    if not isinstance(data, dict):
        p.fail("", "must be a JSON object")
    size = p.ints(data, "size", 2, minimum=1)
    bg = p.obj(data, "background")
    shapes = []
    for i, raw in enumerate(p.get(bg, "shapes", "background", list, default=[])):
        where = f"background.shapes[{i}]"
        if not isinstance(raw, dict):
            p.fail(where, "must be an object")
        kind = p.get(raw, "kind", where, str)
        if kind not in SHAPE_KINDS:
            p.fail(f"{where}.kind", f"must be one of {', '.join(SHAPE_KINDS)}, not {kind!r}")
        shapes.append(
            Shape(
                kind=kind,
                box=_four(p.ints(raw, "box", 4, where=where)),
                fill=p.colour(raw, "fill", where),
                blur=p.get(raw, "blur", where, int, default=0, minimum=0),
                radius=p.get(raw, "radius", where, int, default=0, minimum=0),
            )
        )
    background = Background(
        top=p.colour(bg, "top", "background"),
        bottom=p.colour(bg, "bottom", "background"),
        shapes=tuple(shapes),
    )
    title = p.text_slot(data, "title", needs_text=True)
    slogan = p.text_slot(data, "slogan", needs_text=True)
    footer = p.text_slot(data, "footer", needs_text=True)
    nickname = p.text_slot(data, "nickname")
    if nickname.max_width is None:
        p.fail("nickname.max_width", "is required (the nickname is truncated to fit it)")
    code = p.text_slot(data, "code")
    if code.text and "{code}" not in code.text:
        p.fail("code.text", "must contain {code}")
    q = p.obj(data, "qr")
    x, y, side = p.ints(q, "box", 3, where="qr", minimum=0)
    qr = QrSlot(
        box=(x, y, side),
        quiet_zone=p.get(q, "quiet_zone", "qr", int, default=4, minimum=1),
        color=p.colour(q, "color", "qr", default="#000000"),
    )
    if side < 64 or x + side > size[0] or y + side > size[1]:
        p.fail("qr.box", f"[{x}, {y}, {side}] must be at least 64 px and lie inside the {size} poster")
    a = p.obj(data, "avatar")
    cx, cy = p.ints(a, "center", 2, where="avatar")
    avatar = AvatarSlot(
        center=(cx, cy),
        diameter=p.get(a, "diameter", "avatar", int, minimum=8),
        ring_color=p.colour(a, "ring_color", "avatar", default="#FFFFFF"),
        ring_width=p.get(a, "ring_width", "avatar", int, default=0, minimum=0),
        placeholder=p.colour(a, "placeholder", "avatar", default="#DCDCDC"),
    )
    return PosterSpec(
        name=str(data.get("name", name)),
        size=(size[0], size[1]),
        background=background,
        title=title,
        slogan=slogan,
        nickname=nickname,
        code=code,
        footer=footer,
        qr=qr,
        avatar=avatar,
    )


_MISSING = object()


def _four(v: tuple[int, ...]) -> tuple[int, int, int, int]:
    a, b, c, d = v
    return (a, b, c, d)


class _Parser:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, field: str, problem: str) -> NoReturn:
        where = f"field {field!r} " if field else ""
        raise TemplateError(f"template {self.name!r}: {where}{problem}")

    def get(
        self,
        obj: dict,
        key: str,
        where: str,
        kind: type[Any],
        *,
        default: Any = _MISSING,
        minimum: int | None = None,
    ) -> Any:
        field = f"{where}.{key}" if where else key
        if key not in obj:
            if default is _MISSING:
                self.fail(field, "is missing")
            return default
        value = obj[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(field, f"must be an integer, not {value!r}")
        if not isinstance(value, kind):
            self.fail(field, f"must be a {kind.__name__}, not {value!r}")
        if minimum is not None and value < minimum:
            self.fail(field, f"must be at least {minimum}, not {value!r}")
        return value

    def obj(self, data: dict, key: str) -> dict:
        return self.get(data, key, "", dict)

    def ints(
        self, obj: dict, key: str, n: int, *, where: str = "", minimum: int | None = None
    ) -> tuple[int, ...]:
        field = f"{where}.{key}" if where else key
        value = self.get(obj, key, where, list)
        if len(value) != n or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            self.fail(field, f"must be a list of {n} integers, not {value!r}")
        if minimum is not None and any(v < minimum for v in value):
            self.fail(field, f"values must be at least {minimum}, not {value!r}")
        return tuple(value)

    def colour(self, obj: dict, key: str, where: str, *, default: Any = _MISSING) -> Colour:
        value = self.get(obj, key, where, str, default=default)
        try:
            rgba = ImageColor.getcolor(value, "RGBA")
        except ValueError:
            self.fail(f"{where}.{key}", f"must be a colour like #RRGGBB or #RRGGBBAA, not {value!r}")
        # getcolor gives an int only for single-band modes; "RGBA" is always four bands.
        assert isinstance(rgba, tuple)
        r, g, b, a = rgba
        return (r, g, b, a)

    def text_slot(self, data: dict, key: str, *, needs_text: bool = False) -> TextSlot:
        slot = self.obj(data, key)
        text = self.get(slot, "text", key, str, default=_MISSING if needs_text else "")
        if needs_text and not text.strip():
            self.fail(f"{key}.text", "must not be empty")
        max_width = self.get(slot, "max_width", key, int, default=None, minimum=1)
        return TextSlot(
            xy=self.ints(slot, "xy", 2, where=key),  # type: ignore[arg-type]
            size=self.get(slot, "size", key, int, minimum=6),
            color=self.colour(slot, "color", key),
            text=text,
            anchor=self.get(slot, "anchor", key, str, default="mm"),
            stroke=self.get(slot, "stroke", key, int, default=0, minimum=0),
            max_width=max_width,
            fallback=self.get(slot, "fallback", key, str, default=""),
        )


# --------------------------------------------------------------------------------------------------
# Rendering


def render(
    spec: PosterSpec,
    *,
    qr_url: str,
    nickname: str,
    code: str,
    avatar: bytes | None = None,
    font_path: str | None = None,
) -> bytes:
    """The poster as PNG bytes. ValueError for a bad code or URL; FontMissingError without a CJK font."""
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise ValueError(f"invite code {code!r}: use 1-32 characters of A-Z a-z 0-9 _ -")
    if not isinstance(qr_url, str) or not qr_url.strip():
        raise ValueError("qr_url must be a non-empty string")
    font = resolve_font(font_path)

    img = _base(spec, font).copy()
    draw = ImageDraw.Draw(img)
    name = clean_nickname(nickname or "", font, spec.nickname.size) or spec.nickname.fallback
    _draw_avatar(img, spec.avatar, avatar, name, font)
    name = fit_text(name, _font(font, spec.nickname.size), spec.nickname.max_width or spec.size[0])
    _text(draw, spec.nickname, name, font)
    if spec.code.text:
        _text(draw, spec.code, spec.code.text.replace("{code}", code), font)
    _draw_qr(img, spec.qr, qr_url)

    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


_found_fonts: dict[str | None, str] = {}


def resolve_font(font_path: str | None = None) -> str:
    """The CJK font file to draw with, or FontMissingError saying how to install one.

    A font found is remembered (finding one may run fc-list); a missing one is looked for again."""
    if font_path in _found_fonts:
        return _found_fonts[font_path]
    found = find_cjk_font(font_path)
    if found is None:
        if font_path:
            raise FontMissingError(f"font {font_path!r} not found; {INSTALL_HINT}")
        raise FontMissingError(f"no font with Chinese glyphs found; {INSTALL_HINT}")
    _found_fonts[font_path] = str(found)
    return str(found)


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    """The font at `size`; in a collection (.ttc) the Simplified Chinese face when there is one."""
    if path.lower().endswith((".ttc", ".otc")):
        for index in range(16):
            try:
                face = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            family = face.getname()[0] or ""
            if " SC" in family or family.endswith("SC") or "Hans" in family:
                return face
    try:
        return ImageFont.truetype(path, size)
    except OSError as e:
        raise FontMissingError(f"cannot load font {path!r}: {e}; {INSTALL_HINT}") from None


@functools.lru_cache(maxsize=8)
def _notdef_mask(path: str, size: int) -> tuple[tuple[int, int], bytes]:
    return _glyph_mask(_font(path, size), "\U0010ffff")


def _glyph_mask(font: ImageFont.FreeTypeFont, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(ch)
    return mask.size, bytes(mask)


@functools.lru_cache(maxsize=4096)
def has_glyph(path: str, ch: str, size: int = 32) -> bool:
    """Whether the font draws `ch` as a real glyph rather than its missing-glyph box (.notdef)."""
    return _glyph_mask(_font(path, size), ch) != _notdef_mask(path, size)


def clean_nickname(nickname: str, font_path: str, size: int = 32) -> str:
    """The nickname without control characters and characters the font lacks (e.g. emoji)."""
    kept = [
        ch
        for ch in nickname
        if ch.isprintable() and ch != "\ufe0f" and ch != "\u200d" and has_glyph(font_path, ch, size)
    ]
    return " ".join("".join(kept).split())


def fit_text(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> str:
    """`text`, or its longest prefix + … that fits in `max_width` pixels."""
    if font.getlength(text) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid].rstrip() + ELLIPSIS) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


def _text(draw: ImageDraw.ImageDraw, slot: TextSlot, text: str, font_path: str) -> None:
    if not text:
        return
    draw.text(
        slot.xy,
        text,
        font=_font(font_path, slot.size),
        fill=slot.color,
        anchor=slot.anchor,
        stroke_width=slot.stroke,
        stroke_fill=slot.color if slot.stroke else None,
    )


@functools.lru_cache(maxsize=16)
def background(spec: PosterSpec) -> Image.Image:
    """The spec's background (gradient and shapes), drawn once per spec. Do not modify it."""
    w, h = spec.size
    bg = spec.background
    mask = Image.linear_gradient("L").resize((w, h), Image.Resampling.BILINEAR)
    img = Image.composite(
        Image.new("RGBA", (w, h), bg.bottom), Image.new("RGBA", (w, h), bg.top), mask
    ).convert("RGBA")
    for shape in bg.shapes:
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        if shape.kind == "rounded_rect":
            d.rounded_rectangle(shape.box, radius=shape.radius, fill=shape.fill)
        else:  # circle, ellipse: the box says which
            d.ellipse(shape.box, fill=shape.fill)
        if shape.blur:
            layer = layer.filter(ImageFilter.GaussianBlur(shape.blur))
        img = Image.alpha_composite(img, layer)
    return img.convert("RGB")


@functools.lru_cache(maxsize=16)
def _base(spec: PosterSpec, font_path: str) -> Image.Image:
    """The background with the template's fixed texts (title, slogan, footer)."""
    img = background(spec).copy()
    draw = ImageDraw.Draw(img)
    for slot in (spec.title, spec.slogan, spec.footer):
        _text(draw, slot, slot.text, font_path)
    return img


def _circle_mask(diameter: int) -> Image.Image:
    big = Image.new("L", (diameter * _AA, diameter * _AA), 0)
    ImageDraw.Draw(big).ellipse((0, 0, diameter * _AA - 1, diameter * _AA - 1), fill=255)
    return big.resize((diameter, diameter), Image.Resampling.LANCZOS)


_circle_mask_cached = functools.lru_cache(maxsize=8)(_circle_mask)


def _draw_avatar(img: Image.Image, slot: AvatarSlot, avatar: bytes | None, name: str, font: str) -> None:
    d, ring = slot.diameter, slot.ring_width
    cx, cy = slot.center
    face: Image.Image | None = None
    if avatar:
        try:
            with Image.open(io.BytesIO(avatar)) as src:
                upright = ImageOps.exif_transpose(src)
                face = ImageOps.fit(upright.convert("RGB"), (d, d), Image.Resampling.LANCZOS)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            log.warning("poster avatar unreadable, drawing the placeholder: %s", e)
    if ring:
        outer = d + 2 * ring
        disc = Image.new("RGB", (outer, outer), slot.ring_color[:3])
        img.paste(disc, (cx - outer // 2, cy - outer // 2), _circle_mask_cached(outer))
    if face is None:  # a placeholder disc with the nickname's first character
        face = Image.new("RGB", (d, d), slot.placeholder[:3])
        if name:
            ImageDraw.Draw(face).text(
                (d // 2, d // 2), name[0], font=_font(font, max(8, d // 2)), fill="white", anchor="mm"
            )
    img.paste(face, (cx - d // 2, cy - d // 2), _circle_mask_cached(d))


def _draw_qr(img: Image.Image, slot: QrSlot, data: str) -> None:
    x, y, side = slot.box
    matrix = qr_matrix(data, slot.quiet_zone)
    n = len(matrix)
    scale = side // n
    if scale < 2:
        raise ValueError(f"qr_url too long: {n} modules do not fit crisply in a {side} px box")
    dark = slot.color[:3]
    pixels = bytes(v for row in matrix for cell in row for v in (dark if cell else (255, 255, 255)))
    code = Image.frombytes("RGB", (n, n), pixels).resize((n * scale, n * scale), Image.Resampling.NEAREST)
    img.paste((255, 255, 255), (x, y, x + side, y + side))  # the whole box white: a wider quiet zone
    offset = (side - n * scale) // 2
    img.paste(code, (x + offset, y + offset))


__all__ = [
    "FontMissingError",
    "PosterSpec",
    "TemplateError",
    "background",
    "fit_text",
    "has_glyph",
    "load_template",
    "parse_template",
    "render",
    "resolve_font",
]
