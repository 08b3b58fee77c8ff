"""QR codes: the module matrix and a PNG (pure and CPU-bound: call through asyncio.to_thread).

qrcode encodes (data, error correction, layout); what we do faster is its choice of mask. qrcode builds
the whole matrix nine times (each of the eight masks, scored with Python loops, then the chosen one):
most of a pay QR's 4 ms. Here it is built once with mask 0, the other masks are derived by flipping the
data modules, and the eight are scored by qrcode's own penalty rules computed on whole-matrix integers
(one bit per module) — the same choice, the same matrix (tests/test_qr.py holds this against qrcode
for any text), in about a quarter of the time.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M
from qrcode.util import mask_func

_ASCII = bytes.maketrans(b"\x00\x01", b"01")
# The 1:1:3:1:1 finder-like run with four light modules after it, and its mirror (qrcode's rule 3).
_FINDER = (1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0)


def _bits(lines: Iterable[Sequence[bool]]) -> int:
    """A matrix as one integer, line after line, with a light gap bit between lines (so no run or
    pattern spans two lines); every matrix of a side has the same length, so bits line up."""
    return int(b"0".join(bytes(line).translate(_ASCII) for line in lines), 2)


@dataclass(frozen=True)
class _Layout:
    """Where a version's modules are, as bit sets (rows, then columns: rules 1 and 3 read both ways)."""

    side: int
    valid: tuple[int, int]  # every module
    fixed: tuple[int, int]  # dark function modules as scored (format and version modules light)
    data: tuple[int, int]  # the data modules
    masks: tuple[tuple[int, int], ...]  # data modules each mask flips
    formats: tuple[int, ...]  # rows: dark function modules as drawn with each mask (its format bits)


class _Probe(qrcode.QRCode):
    """Records the matrix just before the data goes in: what is None there is a data module."""

    seen: list[list[bool | None]]

    def map_data(self, data: object, mask_pattern: int) -> None:
        self.seen = [row[:] for row in self.modules]
        super().map_data(data, mask_pattern)


def _both(cells: list[list[bool]]) -> tuple[int, int]:
    return _bits(cells), _bits(zip(*cells, strict=True))


@functools.cache
def _layout(version: int) -> _Layout:
    probe = _Probe(version=version, error_correction=ERROR_CORRECT_M)
    probe.add_data("")
    probe.makeImpl(True, 0)
    seen = probe.seen
    side = len(seen)
    data = [[cell is None for cell in row] for row in seen]
    formats = []
    for mask in range(8):
        probe.makeImpl(False, mask)
        formats.append(_bits([[bool(cell) for cell in row] for row in probe.seen]))
    masks = []
    for mask in range(8):
        flips = mask_func(mask)
        masks.append(_both([[data[r][c] and flips(r, c) for c in range(side)] for r in range(side)]))
    return _Layout(
        side=side,
        valid=_both([[True] * side for _ in range(side)]),
        fixed=_both([[bool(cell) for cell in row] for row in seen]),
        data=_both(data),
        masks=tuple(masks),
        formats=tuple(formats),
    )


def _runs(line: int, valid: int) -> int:
    """Rule 1: each run of five or more same-coloured modules in a line costs its length - 2."""
    lost = 0
    for same in (line, line ^ valid):  # dark, then light
        fives = same & (same >> 1) & (same >> 2) & (same >> 3) & (same >> 4)
        lost += fives.bit_count() + 2 * (fives & ~(fives << 1)).bit_count()  # windows, + 2 a run
    return lost


def _finders(line: int, valid: int) -> int:
    """Rule 3: 40 for each finder-like pattern in a line."""
    light = line ^ valid
    shifted = [(line >> j, light >> j) for j in range(len(_FINDER))]
    one, other = -1, -1
    for j, dark in enumerate(_FINDER):
        one &= shifted[j][0] if dark else shifted[j][1]
        other &= shifted[-1 - j][0] if dark else shifted[-1 - j][1]
    return 40 * (one.bit_count() + other.bit_count())


def _lost(rows: int, cols: int, layout: _Layout) -> int:
    """qrcode.util.lost_point of the matrix, from its bits."""
    valid, side = layout.valid, layout.side
    lost = _runs(rows, valid[0]) + _runs(cols, valid[1])
    stride = side + 1
    down = ~(rows ^ (rows >> stride)) & valid[0] & (valid[0] >> stride)
    across = ~(rows ^ (rows >> 1)) & valid[0] & (valid[0] >> 1)
    lost += 3 * (down & (down >> 1) & across).bit_count()  # rule 2: every 2×2 block of one colour
    lost += _finders(rows, valid[0]) + _finders(cols, valid[1])
    percent = float(rows.bit_count()) / (side**2)  # rule 4, in qrcode's own arithmetic
    return lost + int(abs(percent * 100 - 50) / 5) * 10


def _mask_0(data: str) -> tuple[_Layout, int, int]:
    """qrcode's matrix of `data` (error correction M) with mask 0 and its format bits, as bits."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, mask_pattern=0)
    code.add_data(data)
    code.make(fit=True)
    rows, cols = _both(code.modules)
    return _layout(code.version), rows, cols


def _scores(layout: _Layout, rows: int, cols: int) -> list[int]:
    """qrcode's lost points of each mask, from the matrix with mask 0."""
    plain = ((rows & layout.data[0]) ^ layout.masks[0][0], (cols & layout.data[1]) ^ layout.masks[0][1])
    scored = [[layout.fixed[i] | plain[i] ^ flips[i] for i in (0, 1)] for flips in layout.masks]
    return [_lost(r, c, layout) for r, c in scored]


def _matrix_bits(data: str) -> tuple[_Layout, int]:
    """The QR code of `data` with the mask qrcode would choose, as row bits."""
    layout, rows, cols = _mask_0(data)
    scores = _scores(layout, rows, cols)
    best = scores.index(min(scores))  # the first of equals, as qrcode
    rows ^= layout.masks[0][0] ^ layout.masks[best][0] ^ layout.formats[0] ^ layout.formats[best]
    return layout, rows


def _lines(layout: _Layout, rows: int) -> list[int]:
    """Each row's modules as an integer, its first module the highest bit."""
    side = layout.side
    full = (1 << side) - 1
    return [(rows >> (side - 1 - r) * (side + 1)) & full for r in range(side)]


def qr_matrix(data: str, border: int = 4) -> list[list[bool]]:
    """The module matrix of `data` with a light quiet zone `border` modules wide (True is dark)."""
    layout, rows = _matrix_bits(data)
    side, width = layout.side, layout.side + 2 * border
    quiet = [[False] * width for _ in range(border)]
    edge = [False] * border
    lines = [edge + [ch == "1" for ch in f"{line:0{side}b}"] + edge for line in _lines(layout, rows)]
    return quiet + lines + [row[:] for row in quiet]


def qr_png(data: str, *, box_size: int = 10, border: int = 3) -> bytes:
    """A crisp black-on-white QR code of `data` as PNG: the module matrix as a 1-bit image (one byte
    per eight modules, white set) scaled up without smoothing — the pixels of qrcode's own image."""
    layout, rows = _matrix_bits(data)
    width = layout.side + 2 * border
    octets = (width + 7) // 8
    white = (1 << (8 * octets)) - 1
    shift = 8 * octets - width + border  # from a line's last module to the row's last bit
    blank = white.to_bytes(octets, "big") * border
    body = b"".join((white ^ (line << shift)).to_bytes(octets, "big") for line in _lines(layout, rows))
    image = Image.frombytes("1", (width, width), blank + body + blank)
    image = image.resize((width * box_size, width * box_size), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
