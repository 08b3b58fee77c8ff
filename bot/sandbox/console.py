"""The sandbox web console at /sandbox/: chat as several customers, see the staff work chat.

Mounted only when settings.sandbox is on. The console's API calls go through `Sandbox`, which posts
real signed, encrypted XML to this same server's /wechat/mp, exactly as WeChat would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from bot import keys
from bot.sandbox import pay_sim, robot_sim
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.state import Delivery, Sandbox, valid_openid, valid_scene
from settings import Settings

STATIC = Path(__file__).parent / "static"
MAX_TEXT = 2000  # characters; WeChat cuts a user's text message at about this length
MAX_KEY = 128  # bytes; WeChat's limit for a menu button key
MAX_IMAGE = 10 * 1024 * 1024  # WeChat accepts pictures up to 10 MB
LONG_POLL = 10.0  # seconds a transcript request waits for something new
# Formats WeChat delivers as image messages, recognised by their first bytes, not by the label.
IMAGE_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}

routes = web.RouteTableDef()


def setup_sandbox(app: web.Application, settings: Settings) -> None:
    """Mount the MP API simulator at /sandbox/mp/ and the console at /sandbox/."""
    sim = MpSimulator(settings.wechat_app_id, settings.wechat_app_secret.get_secret_value())
    sandbox = Sandbox(settings, sim)
    app[keys.SANDBOX] = sandbox
    app.add_subapp("/sandbox/mp/", sim.app)
    app[keys.PAY_SIM] = pay_sim.mount(app, settings)  # WeChat Pay API + pay page at /sandbox/pay/
    # The staff work group's robot (WECOM_API_BASE = <server>/sandbox/wecom/cgi-bin/).
    app.add_subapp(robot_sim.MOUNT, robot_sim.robot_app(sandbox, settings.wecom_robot_key.get_secret_value()))
    app.add_routes(routes)
    app.router.add_static("/sandbox/static/", STATIC, name="sandbox-static")

    async def release(_: web.Application) -> None:
        # Open long-polls would otherwise hold the shutdown for up to LONG_POLL seconds.
        sandbox.release_waiters()

    async def close(_: web.Application) -> None:
        await sandbox.close()

    app.on_shutdown.append(release)
    app.on_cleanup.append(close)


class BadInput(web.HTTPBadRequest):
    """400 with a JSON body that says what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(
            text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json"
        )


@routes.get("/sandbox")
async def to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/sandbox/")


@routes.get("/sandbox/")
async def console_page(request: web.Request) -> web.FileResponse:
    """The console page itself (static HTML + ES modules)."""
    return web.FileResponse(STATIC / "console.html", headers={"Cache-Control": "no-cache"})


@routes.get("/sandbox/media/{media_id}")
async def media(request: web.Request) -> web.Response:
    """A picture held by the simulator, without an access token (the way WeChat's CDN serves them)."""
    found = request.app[keys.SANDBOX].sim.media.get(request.match_info["media_id"])
    if found is None:
        raise web.HTTPNotFound()
    content_type, data = found
    return web.Response(body=data, content_type=content_type, headers={"Cache-Control": "max-age=3600"})


@routes.get("/sandbox/api/customers")
async def list_customers(request: web.Request) -> web.Response:
    """Simulated customers plus the menu the bot pushed (for the quick chips)."""
    sandbox = request.app[keys.SANDBOX]
    return _json(
        {
            "customers": sandbox.customer_list(),
            "menu": current_menu(sandbox),
            "brand": sandbox.settings.brand,
        }
    )


@routes.post("/sandbox/api/customers")
async def add_customer(request: web.Request) -> web.Response:
    """A new simulated customer (name optional)."""
    body = await _body(request, openid=False)
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name.strip()) <= 20):
        raise BadInput("name must be 1–20 characters")
    customer = request.app[keys.SANDBOX].add_customer(name.strip() if name else None)
    return _json(customer.to_json())


@routes.post("/sandbox/api/say")
async def say(request: web.Request) -> web.Response:
    """The customer sends a text message."""
    body = await _body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadInput("text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadInput(f"text must be at most {MAX_TEXT} characters")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.say(_origin(request), body["openid"], text))


@routes.post("/sandbox/api/click")
async def click(request: web.Request) -> web.Response:
    """The customer taps a menu button (CLICK event)."""
    body = await _body(request)
    key = body.get("key")
    if not isinstance(key, str) or not key or len(key.encode()) > MAX_KEY:
        raise BadInput(f"key must be a non-empty string of at most {MAX_KEY} bytes")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.click(_origin(request), body["openid"], key))


@routes.post("/sandbox/api/subscribe")
async def subscribe(request: web.Request) -> web.Response:
    """The customer follows the account, optionally by scanning a parametric QR code."""
    body = await _body(request)
    scene = body.get("scene") or None
    if scene is not None and not valid_scene(scene):
        raise BadInput("scene must be 1–64 letters, digits or _-.:")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.subscribe(_origin(request), body["openid"], scene))


@routes.post("/sandbox/api/scan")
async def scan(request: web.Request) -> web.Response:
    """The customer scans a parametric QR code (subscribe with qrscene_ if new, else SCAN)."""
    body = await _body(request)
    scene = body.get("scene")
    if not valid_scene(scene):
        raise BadInput("scene must be 1–64 letters, digits or _-.:")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.scan_qr(_origin(request), body["openid"], scene))


@routes.post("/sandbox/api/unsubscribe")
async def unsubscribe(request: web.Request) -> web.Response:
    """The customer unfollows the account."""
    body = await _body(request)
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.unsubscribe(_origin(request), body["openid"]))


@routes.post("/sandbox/api/image")
async def send_image(request: web.Request) -> web.Response:
    """The customer sends a picture (multipart: openid, file)."""
    if not request.content_type.startswith("multipart/"):
        raise BadInput("send multipart/form-data with fields openid and file")
    openid: str | None = None
    data: bytes | None = None
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "openid":
            openid = (await part.read(decode=True)).decode("utf-8", "replace").strip()
        elif part.name == "file":
            data = await _read_limited(part)
    if not valid_openid(openid):
        raise BadInput("openid must look like o_sandbox_<name>")
    assert openid is not None
    if not data:
        raise BadInput("file is missing or empty")
    content_type = sniff_image(data)
    if content_type is None:
        raise BadInput("file must be a JPEG, PNG or GIF picture")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.send_image(_origin(request), openid, data, content_type))


@routes.get("/sandbox/api/transcript")
async def transcript(request: web.Request) -> web.Response:
    """Entries newer than ?after=<seq>; waits up to ?wait= seconds (default 10) for something new."""
    after = int(_number(request, "after", 0))
    wait = min(_number(request, "wait", LONG_POLL), 25.0)
    sandbox = request.app[keys.SANDBOX]
    await sandbox.wait_for_change(after, wait)
    return _json(sandbox.since(after) | {"menu": current_menu(sandbox)})


def current_menu(sandbox: Sandbox) -> list[dict[str, str]]:
    """The menu pushed to the simulator or, until one is, the one `chatorder menu push` would push."""
    if sandbox.sim.menu is not None:
        return menu_clicks(sandbox.sim.menu)
    from handlers.menu import menu_json  # the bot's own menu definition; imported late, it is optional

    return menu_clicks(menu_json())


def menu_clicks(menu: dict[str, Any] | None) -> list[dict[str, str]]:
    """The CLICK buttons of a pushed custom menu, flattened: [{name, key}]."""
    if not menu:
        return []
    buttons = (menu.get("menu") or menu).get("button") or []
    found: list[dict[str, str]] = []
    for button in buttons:
        for b in [button, *(button.get("sub_button") or [])]:
            if b.get("type") == "click" and b.get("key"):
                found.append({"name": str(b.get("name", b["key"])), "key": str(b["key"])})
    return found


def sniff_image(data: bytes) -> str | None:
    """The image's content type from its first bytes, or None if it is not one WeChat accepts."""
    return next((ct for magic, ct in IMAGE_MAGIC.items() if data.startswith(magic)), None)


async def _read_limited(part: BodyPartReader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk():
        size += len(chunk)
        if size > MAX_IMAGE:
            raise BadInput(f"file must be at most {MAX_IMAGE // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(request: web.Request, *, openid: bool = True) -> dict[str, Any]:
    """The JSON object body; with `openid`, it must name a sandbox customer."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    if openid and not valid_openid(body.get("openid")):
        raise BadInput("openid must look like o_sandbox_<name>")
    return body


def _number(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadInput(f"{name} must be a number") from None
    if not 0 <= value < 2**53:  # also refuses nan
        raise BadInput(f"{name} must be a non-negative number")
    return value


def _origin(request: web.Request) -> str:
    return str(request.url.origin())


def _delivered(delivery: Delivery) -> web.Response:
    return _json({"ok": True, "status": delivery.status, "entries": [e.to_json() for e in delivery.entries]})


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False))
