"""邀请 over the real webhook: a poster whose QR is the creator's permanent inv_<code> scene, made once."""

from __future__ import annotations

import io
import re

import pytest
from aiohttp.test_utils import TestClient

from bot.sandbox.mp_sim import MpSimulator
from flows import texts
from posters.fonts import find_cjk_font
from tests.conftest import eventually
from tests.wechat import WeChat

pytestmark = pytest.mark.skipif(find_cjk_font() is None, reason="no CJK font installed (fonts-noto-cjk)")


async def test_invite_sends_a_poster_with_the_creators_qr_and_reuses_it(
    bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed")
    from PIL import Image

    sim = mp_sim[0]
    answer = await WeChat(bot).say("o_creator", "邀请")
    # The caption comes back at once in the HTTP response; the poster it points to (👇) follows by API.
    caption = answer.text
    assert caption is not None
    (image,) = await eventually(lambda: [m for m in sim.sent if m.openid == "o_creator"])
    assert image.kind == "image"
    code = re.search(r"邀请码 (\w+)", caption)
    # WeChat gave no nickname: the text ends with how to put one on the poster.
    expected = texts.INVITE_POSTER.format(code=code.group(1)) + "\n\n" + texts.POSTER_NAME_HINT
    assert code and caption == expected
    scenes = {q["scene"].get("scene_str"): q["url"] for q in sim.qrcodes.values()}
    assert f"inv_{code.group(1)}" in scenes
    _, png = sim.media[image.payload["media_id"]]
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [d.text for d in decoded] == [scenes[f"inv_{code.group(1)}"]]

    uploads, qrs = sim.calls["media_upload"], sim.calls["qrcode"]
    assert (await WeChat(bot).say("o_creator", "邀请海报")).text == caption
    again = await eventually(lambda: [m for m in sim.sent if m.openid == "o_creator"][1:])
    assert again[0].payload["media_id"] == image.payload["media_id"]
    assert (sim.calls["media_upload"], sim.calls["qrcode"]) == (uploads, qrs)  # nothing redrawn
