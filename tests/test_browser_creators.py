"""Invite posters in the console: a customer's poster shows inline, and scanning it as another customer
(「用另一位客户扫码」) makes that customer follow through the poster's QR code and join the team."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot import keys
from bot.sandbox import state
from flows import texts
from posters.fonts import find_cjk_font
from posters.qr import qr_png
from posters.render import load_template, render
from tests.conftest import eventually
from tests.test_browser import console, say
from tests.test_browser import pytestmark as BROWSER
from tests.test_sandbox import Demo, serve_demo

NEEDS_FONT = pytest.mark.skipif(
    find_cjk_font() is None, reason="no CJK font for the poster (apt-get install fonts-noto-cjk)"
)
INVITER = "o_sandbox_brand_a"
NEWCOMER = "o_sandbox_xiaolu"
FOLLOWER = "o_sandbox_amu"


def browser(test: Callable[..., Any]) -> Callable[..., Any]:
    """test_browser's markers and skips (Chromium, Playwright), on one test: the recogniser's tests
    below need no browser."""
    for mark in BROWSER:
        test = mark(test)
    return test


@pytest.fixture
async def demo_app(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    async with serve_demo(tmp_path) as (base, app):
        yield f"{base}/sandbox/", app


@NEEDS_FONT
@browser
async def test_scanning_a_poster_as_another_customer_joins_the_team(
    demo_app: tuple[str, web.Application], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    url, app = demo_app
    sandbox = app[keys.SANDBOX]
    async with console(url) as (_, page):
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        columns = page.get_by_test_id("customer-column")
        inviter = columns.first
        await expect(inviter).to_have_attribute("data-openid", INVITER)
        await say(inviter, "邀请", "这是你的专属邀请海报")

        poster = inviter.locator("[data-testid=msg-bot][data-kind=image]").last
        await expect(poster.get_by_test_id("chat-image")).to_be_visible()
        assert await poster.get_by_test_id("chat-image").evaluate("img => img.naturalWidth") > 0
        scan = poster.get_by_test_id("scan-poster")
        await expect(scan).to_have_text("用另一位客户扫码", timeout=10_000)
        scene = await scan.get_attribute("data-scene")
        assert scene and scene.startswith("inv_")
        # The scene came from the picture, and it is the one of a QR code the simulator issued.
        assert scene in {str(q["scene"].get("scene_str")) for q in sandbox.sim.qrcodes.values()}

        await scan.click()
        # The second customer (小鹿, who never talked to the account) follows through the poster.
        newcomer = columns.nth(1)
        await expect(newcomer).to_have_attribute("data-openid", NEWCOMER)
        await expect(newcomer.get_by_test_id("msg-event")).to_have_text(f"扫码关注了公众号（场景 {scene}）")
        welcome = newcomer.get_by_test_id("msg-bot").filter(has_text="加入 TA 的团队")
        await expect(welcome).to_be_visible(timeout=10_000)
        await expect(welcome).to_contain_text(texts.WELCOME.splitlines()[0].split("「")[0])
        await expect(newcomer.get_by_test_id("subscribe")).to_have_text("已关注")
        joined = inviter.get_by_test_id("msg-bot").filter(has_text="加入了你的团队")
        await expect(joined).to_be_visible(timeout=10_000)
        await expect(joined).to_contain_text("🎉 新成员")

        assert NEWCOMER in sandbox.following and INVITER not in sandbox.following
        await page.screenshot(path=str(tmp_path / "sandbox-poster-scan.png"))
        assert errors == []


@browser
async def test_pictures_without_our_qr_code_offer_no_scan(demo_app: tuple[str, web.Application]) -> None:
    """A customer's own picture (a QR code of something else) gets no 「用另一位客户扫码」 button."""
    from playwright.async_api import expect

    url, _ = demo_app
    async with console(url) as (_, page):
        column = page.get_by_test_id("customer-column").first
        picture = {"name": "qr.png", "mimeType": "image/png", "buffer": qr_png("https://example.com/x")}
        async with page.expect_response(lambda r: "/sandbox/api/scan-media?" in r.url) as probed:
            await column.get_by_test_id("image-input").set_input_files(files=[picture])
        assert (await probed.value).status == 404
        shown = column.locator("[data-testid=msg-user][data-kind=image]")
        await expect(shown.get_by_test_id("chat-image")).to_be_visible(timeout=10_000)
        await expect(shown.get_by_test_id("scan-poster")).to_have_count(0)


# --- The endpoint and the scene lookup (no browser needed) --------------------------------------------


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with serve_demo(tmp_path) as (base, app), aiohttp.ClientSession() as http:
        yield Demo(base, app, http)


@NEEDS_FONT
async def test_scan_media_reads_the_scene_from_the_poster(
    demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = demo.sandbox
    pushed: list[dict[str, str]] = []
    build_xml = sandbox.build_xml

    def spy(openid: str, fields: dict[str, str], *, message: bool) -> str:
        pushed.append(fields)
        return build_xml(openid, fields, message=message)

    monkeypatch.setattr(sandbox, "build_xml", spy)
    await demo.post("/sandbox/api/say", {"openid": INVITER, "text": "邀请"})
    poster = await eventually(lambda: [e for e in sandbox.chat(INVITER) if e.kind == "image"])
    media_id = poster[0].payload["media_id"]
    [(ticket, qr)] = sandbox.sim.qrcodes.items()
    scene = qr["scene"]["scene_str"]

    async with demo.http.get(f"{demo.base}/sandbox/api/scan-media", params={"media_id": media_id}) as r:
        assert r.status == 200 and await r.json() == {"media_id": media_id, "scene": scene, "url": qr["url"]}
    async with demo.http.get(f"{demo.base}/sandbox/api/scan-media", params={"media_id": "nope"}) as r:
        assert r.status == 404 and "no QR code" in (await r.json())["error"]

    # Only a picture of that customer's chat, and only one holding a code the simulator issued.
    await demo.post("/sandbox/api/scan-media", {"openid": NEWCOMER, "media_id": media_id}, status=404)
    await demo.post("/sandbox/api/scan-media", {"openid": INVITER, "media_id": "nope"}, status=404)
    await demo.post("/sandbox/api/scan-media", {"openid": INVITER, "media_id": "a b"}, status=400)
    await demo.post(
        "/sandbox/api/scan-media", {"openid": INVITER, "media_id": media_id, "as_openid": "x"}, status=400
    )

    # A follower scanning sends SCAN; with no one named, the first customer never heard of subscribes.
    await demo.post("/sandbox/api/subscribe", {"openid": FOLLOWER})
    body = {"openid": INVITER, "media_id": media_id}
    scanned = await demo.post("/sandbox/api/scan-media", body | {"as_openid": FOLLOWER})
    assert scanned["scene"] == scene and scanned["as"]["openid"] == FOLLOWER
    assert pushed[-1] | {"EventKey": scene, "Event": "SCAN", "Ticket": ticket} == pushed[-1]
    joined = await demo.post("/sandbox/api/scan-media", body)
    assert joined["as"] == {"openid": NEWCOMER, "name": "小鹿", "following": True}
    assert pushed[-1]["Event"] == "subscribe" and pushed[-1]["EventKey"] == f"qrscene_{scene}"
    assert pushed[-1]["Ticket"] == ticket  # the poster's own ticket, not a stand-in
    assert any(texts.JOINED_TEAM.split("{")[0] in e["payload"]["content"] for e in joined["entries"])
    # Everyone has now talked to the account: the next scan brings a new customer.
    again = await demo.post("/sandbox/api/scan-media", body)
    assert again["as"]["openid"] not in {INVITER, NEWCOMER, FOLLOWER} and again["as"]["following"]


# --- The scene lookup without zxing-cpp -----------------------------------------------------------------

ISSUED = [f"https://weixin.qq.com/q/{secrets.token_urlsafe(18)}" for _ in range(12)]


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format=fmt)
    return out.getvalue()


@NEEDS_FONT
@pytest.mark.parametrize("template", ["default", "spring"])
def test_the_recogniser_finds_which_issued_code_a_poster_carries(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "zxingcpp", None)
    png = render(load_template(template), qr_url=ISSUED[5], nickname="小鹿", code="K7P2Q9", avatar=None)
    assert state.find_issued_qr(png, ISSUED) == ISSUED[5]
    assert state.find_issued_qr(png, ISSUED[:5] + ISSUED[6:]) is None  # not one we issued
    poster = Image.open(io.BytesIO(png))
    assert state.find_issued_qr(_png(poster, "JPEG"), ISSUED) == ISSUED[5]  # saved as a photo
    smaller = poster.resize((poster.width * 2 // 3, poster.height * 2 // 3), Image.Resampling.BILINEAR)
    assert state.find_issued_qr(_png(smaller), ISSUED) == ISSUED[5]


def test_the_recogniser_ignores_other_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "zxingcpp", None)
    assert state.find_issued_qr(qr_png(ISSUED[1]), ISSUED) == ISSUED[1]
    assert state.find_issued_qr(qr_png("https://pay.example/abc"), ISSUED) is None
    assert state.find_issued_qr(_png(Image.new("RGB", (300, 300), "white")), ISSUED) is None
    assert state.find_issued_qr(b"not a picture", ISSUED) is None
    assert state.find_issued_qr(qr_png(ISSUED[1]), []) is None
