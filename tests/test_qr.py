"""QR codes: posters.qr chooses qrcode's mask by its own arithmetic, so it must agree with qrcode for
any text — the same modules, the same pixels — and a reader must decode what it draws."""

from __future__ import annotations

import io

import pytest
import qrcode
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from posters.qr import _mask_0, _scores, qr_matrix, qr_png

PAY_URL = "weixin://wxpay/bizpayurl?pr=Ab12Cd3"


def _qrcode(data: str, border: int) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=border)
    code.add_data(data)
    code.make(fit=True)
    return code


TEXTS = st.one_of(
    st.text(min_size=1, max_size=400),  # any characters: byte mode, versions 1 to 14 or so
    st.text(alphabet="0123456789", min_size=1, max_size=300),  # numeric mode
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 $%*+-./:", min_size=1, max_size=300),
)


@settings(max_examples=80, deadline=None)
@given(data=TEXTS)
def test_each_masks_lost_points_are_qrcodes(data: str) -> None:
    layout, rows, cols = _mask_0(data)
    code = _qrcode(data, 0)
    theirs = []
    for mask in range(8):
        code.makeImpl(True, mask)  # how qrcode scores a mask: format and version modules light
        theirs.append(qrcode.util.lost_point(code.modules))
    assert _scores(layout, rows, cols) == theirs


@settings(max_examples=80, deadline=None)
@given(data=TEXTS, border=st.integers(min_value=0, max_value=5))
def test_the_matrix_is_qrcodes_own_with_the_mask_qrcode_chooses(data: str, border: int) -> None:
    assert qr_matrix(data, border) == _qrcode(data, border).get_matrix()


@pytest.mark.parametrize("data", [PAY_URL, "https://example.com/i/K7P2Q9?from=poster", "9" * 120])
def test_the_png_has_qrcodes_pixels(data: str) -> None:
    ours = Image.open(io.BytesIO(qr_png(data, box_size=10, border=3)))
    theirs = _qrcode(data, 3).make_image().get_image()
    assert ours.size == theirs.size
    assert ours.convert("1").tobytes() == theirs.convert("1").tobytes()


def test_a_reader_decodes_the_pay_qr() -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp not installed (pip install zxing-cpp)")
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(PAY_URL))))
    assert [b.text for b in found] == [PAY_URL]
