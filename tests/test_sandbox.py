"""The sandbox over real HTTP: console API → signed, encrypted XML → /wechat/mp → transcript."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import xmltodict
from aiohttp import web
from pydantic import SecretStr
from wechatpy.crypto import WeChatCrypto

from bot import keys
from bot.app import create_app
from bot.demo import DEMO_ROBOT_KEY, demo_settings, prepare_demo
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.state import Sandbox
from flows import texts

XIAOLU = "o_sandbox_xiaolu"
AMU = "o_sandbox_amu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_png() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\xc8\x78\x50" * 2 for _ in range(2)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass
class Demo:
    base: str
    app: web.Application
    http: aiohttp.ClientSession

    @property
    def sandbox(self) -> Sandbox:
        return self.app[keys.SANDBOX]

    async def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        async with self.http.post(self.base + path, json=body) as resp:
            assert resp.status == status, await resp.text()
            return await resp.json()

    async def transcript(self, after: int = 0, wait: float = 0) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/sandbox/api/transcript?after={after}&wait={wait}") as resp:
            assert resp.status == 200
            return await resp.json()

    async def bot_lines(self, openid: str, *, at_least: int = 1) -> list[dict[str, Any]]:
        """The bot's lines to one customer, waiting (briefly) for replies sent through the API."""
        for _ in range(50):
            lines = [
                e for e in (await self.transcript())["entries"] if e["openid"] == openid and e["who"] == "bot"
            ]
            if len(lines) >= at_least:
                return lines
            await asyncio.sleep(0.1)
        raise AssertionError(f"no bot reply to {openid}: {(await self.transcript())['entries']}")


@asynccontextmanager
async def serve_demo(var_dir: Path) -> AsyncIterator[tuple[str, web.Application]]:
    """What `chatorder demo` runs — migrated SQLite, create_app, sandbox on — on a free real port.

    A real port, not a test server: the console posts to its own /wechat/mp over HTTP, and the demo's
    WECHAT_API_BASE must name that port before the app is built.
    """
    port = free_port()
    settings = demo_settings(port=port, var_dir=var_dir)
    await prepare_demo(settings)
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with serve_demo(tmp_path) as (base, app), aiohttp.ClientSession() as http:
        yield Demo(base, app, http)


async def test_say_help_gets_the_help_text_back(demo: Demo) -> None:
    answer = await demo.post("/sandbox/api/say", {"openid": XIAOLU, "text": "帮助"})
    assert answer["ok"] and answer["status"] == 200

    entries = (await demo.transcript())["entries"]
    mine = [e for e in entries if e["openid"] == XIAOLU]
    assert mine[0]["who"] == "user" and mine[0]["payload"] == {"content": "帮助"} and mine[0]["via"] == "user"
    replies = await demo.bot_lines(XIAOLU)
    help_text = texts.HELP.format(brand=demo.app[keys.SETTINGS].brand)
    assert any(r["kind"] == "text" and r["payload"]["content"] == help_text for r in replies)
    # Other customers' chats are untouched.
    assert not [e for e in entries if e["openid"] == AMU]


async def test_transcript_after_returns_only_newer_entries(demo: Demo) -> None:
    await demo.post("/sandbox/api/say", {"openid": XIAOLU, "text": "帮助"})
    first = await demo.transcript()
    assert first["last_seq"] >= 2
    assert (await demo.transcript(after=first["last_seq"]))["entries"] == []

    await demo.post("/sandbox/api/say", {"openid": AMU, "text": "关于"})
    newer = (await demo.transcript(after=first["last_seq"]))["entries"]
    assert newer and all(e["seq"] > first["last_seq"] for e in newer)
    assert newer[0]["openid"] == AMU and newer[0]["who"] == "user"


async def test_long_poll_wakes_when_something_happens(demo: Demo) -> None:
    last = (await demo.transcript())["last_seq"]
    waiting = asyncio.create_task(demo.transcript(after=last, wait=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    demo.sandbox.add_staff_entry("text", {"content": "🆕 新订单"}, via="robot")
    answer = await asyncio.wait_for(waiting, 3)
    assert [e["payload"] for e in answer["staff"]] == [{"content": "🆕 新订单"}]


async def test_long_poll_times_out_empty(demo: Demo) -> None:
    last = (await demo.transcript())["last_seq"]
    answer = await demo.transcript(after=last, wait=0.3)
    assert answer["entries"] == [] and answer["staff"] == []


async def test_subscribe_with_scene_and_click_reach_the_webhook(demo: Demo) -> None:
    await demo.post("/sandbox/api/subscribe", {"openid": AMU, "scene": "K7P2Q9"})
    await demo.post("/sandbox/api/click", {"openid": AMU, "key": "MENU_HELP"})
    await demo.post("/sandbox/api/unsubscribe", {"openid": AMU})
    events = [e["payload"] for e in (await demo.transcript())["entries"] if e["kind"] == "event"]
    assert events == [
        {"event": "subscribe", "scene": "K7P2Q9"},
        {"event": "CLICK", "key": "MENU_HELP"},
        {"event": "unsubscribe"},
    ]
    help_text = texts.HELP.format(brand=demo.app[keys.SETTINGS].brand)
    assert help_text in [r["payload"].get("content") for r in await demo.bot_lines(AMU, at_least=2)]
    # The webhook accepted every push (a refused signature would show as a red notice).
    assert not [e for e in (await demo.transcript())["entries"] if e["who"] == "system"]


async def test_image_is_stored_and_served_without_a_token(demo: Demo) -> None:
    png = tiny_png()
    form = aiohttp.FormData()
    form.add_field("openid", XIAOLU)
    form.add_field("file", png, filename="ref.png", content_type="image/png")
    async with demo.http.post(demo.base + "/sandbox/api/image", data=form) as resp:
        assert resp.status == 200, await resp.text()
    user = next(e for e in (await demo.transcript())["entries"] if e["kind"] == "image")
    assert user["who"] == "user"
    assert demo.sandbox.sim.media[user["payload"]["media_id"]] == ("image/png", png)
    async with demo.http.get(user["payload"]["picurl"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert await resp.read() == png


async def test_bad_input_is_a_400_with_a_reason(demo: Demo) -> None:
    cases: list[tuple[str, Any, str]] = [
        ("/sandbox/api/say", {"openid": "someone", "text": "hi"}, "openid"),
        ("/sandbox/api/say", {"openid": XIAOLU, "text": "   "}, "text"),
        ("/sandbox/api/say", {"openid": XIAOLU, "text": "x" * 2001}, "text"),
        ("/sandbox/api/say", ["not", "an", "object"], "JSON object"),
        ("/sandbox/api/click", {"openid": XIAOLU}, "key"),
        ("/sandbox/api/subscribe", {"openid": XIAOLU, "scene": "空 格"}, "scene"),
        ("/sandbox/api/scan", {"openid": XIAOLU}, "scene"),
    ]
    for path, body, word in cases:
        answer = await demo.post(path, body, status=400)
        assert word in answer["error"], (path, answer)

    async with demo.http.post(demo.base + "/sandbox/api/say", data=b"{nope") as resp:
        assert resp.status == 400 and "JSON" in (await resp.json())["error"]
    form = aiohttp.FormData()
    form.add_field("openid", XIAOLU)
    form.add_field("file", b"MZ not a picture", filename="x.exe")
    async with demo.http.post(demo.base + "/sandbox/api/image", data=form) as resp:
        assert resp.status == 400 and "JPEG" in (await resp.json())["error"]
    async with demo.http.get(demo.base + "/sandbox/api/transcript?after=abc") as resp:
        assert resp.status == 400
    # Nothing was pushed to the webhook for any of them.
    assert (await demo.transcript())["entries"] == []


async def test_customers_and_adding_one(demo: Demo) -> None:
    async with demo.http.get(demo.base + "/sandbox/api/customers") as resp:
        listed = await resp.json()
    names = [c["name"] for c in listed["customers"]]
    assert names[:3] == ["咖啡品牌A", "小鹿", "阿木"]
    # No menu pushed yet: the console offers the one `chatorder menu push` would create.
    # As WeChat shows it: three buttons, 更多 opening a sub-menu that holds 使用帮助.
    assert len(listed["menu"]) == 3
    more = next(b for b in listed["menu"] if b["name"] == texts.MENU_MORE)
    assert {"name": texts.MENU_HELP, "key": "MENU_HELP"} in more["sub"]

    added = await demo.post("/sandbox/api/customers", {"name": "米粒"})
    assert added["name"] == "米粒" and added["openid"].startswith("o_sandbox_")
    await demo.post("/sandbox/api/say", {"openid": added["openid"], "text": "帮助"})
    assert await demo.bot_lines(added["openid"])


async def test_api_sends_land_in_the_customers_chat(demo: Demo) -> None:
    """What the bot sends through the (simulated) MP API shows up as a bot line, via=api."""
    async with demo.http.get(
        demo.base + "/sandbox/mp/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": demo.sandbox.app_id, "secret": _secret(demo)},
    ) as resp:
        token = (await resp.json())["access_token"]
    body = {"touser": AMU, "msgtype": "text", "text": {"content": "📣 订单已发布"}}
    async with demo.http.post(
        demo.base + "/sandbox/mp/cgi-bin/message/custom/send", params={"access_token": token}, json=body
    ) as resp:
        assert (await resp.json())["errcode"] == 0
    line = (await demo.transcript())["entries"][-1]
    assert (line["openid"], line["who"], line["via"], line["payload"]) == (
        AMU,
        "bot",
        "api",
        {"content": "📣 订单已发布"},
    )


async def test_the_console_page_and_its_assets_are_served(demo: Demo) -> None:
    async with demo.http.get(demo.base + "/sandbox/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        page = await resp.text()
    assert "chatorder 沙盒" in page and "员工消息将在这里出现" in page
    for asset in ("console.js", "console.css"):
        async with demo.http.get(f"{demo.base}/sandbox/static/{asset}") as resp:
            assert resp.status == 200


def _secret(demo: Demo) -> str:
    return demo.app[keys.SETTINGS].wechat_app_secret.get_secret_value()


async def test_a_push_signed_with_the_wrong_token_is_refused_and_shown(demo: Demo) -> None:
    """The webhook really checks what the sandbox signs: a wrong token gets a 4xx, shown as a notice."""
    settings = demo.app[keys.SETTINGS].model_copy(update={"wechat_token": SecretStr("not-the-token")})
    forger = Sandbox(settings, demo.sandbox.sim)
    try:
        delivery = await forger.say(demo.base, XIAOLU, "帮助")
    finally:
        await forger.close()
    assert 400 <= delivery.status < 500
    assert [e.kind for e in delivery.entries] == ["notice"]
    assert "暂时无法提供服务" in delivery.entries[0].payload["text"]


async def test_a_slow_answer_is_retried_with_the_same_msg_id(tmp_path: Path) -> None:
    """Like WeChat: 3 attempts, each given `reply_timeout`, all carrying the same message."""
    settings = demo_settings(port=1, var_dir=tmp_path)
    crypto = WeChatCrypto(
        settings.wechat_token.get_secret_value(),
        settings.wechat_aes_key.get_secret_value(),
        settings.wechat_app_id,
    )
    seen: list[str] = []

    async def slow_webhook(request: web.Request) -> web.Response:
        q = request.query
        plain = crypto.decrypt_message(await request.text(), q["msg_signature"], q["timestamp"], q["nonce"])
        seen.append(xmltodict.parse(plain)["xml"]["MsgId"])
        await asyncio.sleep(1)
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/wechat/mp", slow_webhook)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sandbox = Sandbox(settings, MpSimulator(settings.wechat_app_id, "secret"), reply_timeout=0.2)
    try:
        port = runner.addresses[0][1]
        delivery = await sandbox.say(f"http://127.0.0.1:{port}", XIAOLU, "在吗")
    finally:
        await sandbox.close()
        await runner.cleanup()
    assert len(seen) == 3 and len(set(seen)) == 1
    assert [e.kind for e in delivery.entries] == ["notice"]
    assert [e.who for e in sandbox.chat(XIAOLU)] == ["user", "system"]


async def test_scanning_a_qr_code_subscribes_a_newcomer_and_scans_for_a_follower(demo: Demo) -> None:
    # The code printed on a poster is accepted as it is: it stands for the poster's QR scene.
    await demo.post("/sandbox/api/scan", {"openid": AMU, "scene": "K7P2Q9"})
    await demo.post("/sandbox/api/scan", {"openid": AMU, "scene": "inv_K7P2Q9"})
    events = [e.payload for e in demo.sandbox.chat(AMU) if e.kind == "event"]
    assert events == [{"event": "subscribe", "scene": "inv_K7P2Q9"}, {"event": "SCAN", "scene": "inv_K7P2Q9"}]
    customers = {c["openid"]: c for c in (await demo.transcript())["customers"]}
    assert customers[AMU]["following"] and not customers[XIAOLU]["following"]


async def test_the_board_picture_shows_in_the_staff_pane(demo: Demo) -> None:
    """看板 in the work chat: the picture is uploaded to the WeCom simulator and served to the console."""
    await demo.post("/sandbox/api/staff/say", {"userid": "zhangsan", "text": "看板"})
    images: list[dict[str, Any]] = []
    for _ in range(100):
        images = [e for e in (await demo.transcript())["staff"] if e["kind"] == "image"]
        if images:
            break
        await asyncio.sleep(0.1)
    assert images and images[0]["openid"] == "zhangsan"
    async with demo.http.get(f"{demo.base}/sandbox/media/{images[0]['payload']['media_id']}") as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")


async def test_the_group_robot_takes_a_picture_with_its_md5(demo: Demo) -> None:
    png = tiny_png()
    url = f"{demo.base}/sandbox/wecom/cgi-bin/webhook/send?key={DEMO_ROBOT_KEY}"
    picture = {"base64": base64.b64encode(png).decode(), "md5": hashlib.md5(png).hexdigest()}
    wrong = picture | {"md5": hashlib.md5(b"other").hexdigest()}
    for image, errcode in ((wrong, 301019), ({"base64": "%%%", "md5": ""}, 40009), (picture, 0)):
        async with demo.http.post(url, json={"msgtype": "image", "image": image}) as resp:
            assert (await resp.json())["errcode"] == errcode
    [shown] = [e for e in (await demo.transcript())["staff"] if e["kind"] == "image"]
    assert shown["via"] == "robot"
    async with demo.http.get(f"{demo.base}/sandbox/media/{shown['payload']['media_id']}") as resp:
        assert await resp.read() == png
