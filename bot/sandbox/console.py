"""The sandbox web console at /sandbox/: chat as several customers, see the staff work chat.

Mounted only when settings.sandbox is on. The console's API calls go through `Sandbox`, which posts
real signed, encrypted XML to this same server's /wechat/mp, exactly as WeChat would.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bot import keys
from bot.sandbox import pay_sim, robot_sim
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.state import Delivery, Sandbox, valid_openid, valid_scene
from bot.sandbox.wecom_sim import CardClosed, Push, WeComSimulator
from settings import Settings
from store.models import Staff

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_TEXT = 2000  # characters; WeChat cuts a user's text message at about this length
MAX_KEY = 128  # bytes; WeChat's limit for a menu button key
MAX_IMAGE = 10 * 1024 * 1024  # WeChat accepts pictures up to 10 MB
LONG_POLL = 10.0  # seconds a transcript request waits for something new
USERID_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # WeCom userids: 1–64 of these characters
INVITE_CODE_RE = re.compile(r"[A-Za-z0-9]{4,12}")  # a bare invite code (the poster's 邀请码), no prefix
MEDIA_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the simulator's media ids (and WeChat's)
MAX_TASK_ID = 128  # bytes; WeCom's limit for a template card's task_id
MAX_BUTTON_KEY = 1024  # bytes; WeCom's limit for a card button's key
# Formats WeChat delivers as image messages, recognised by their first bytes, not by the label.
IMAGE_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}

routes = web.RouteTableDef()


@routes.get("/")
async def root(_: web.Request) -> web.StreamResponse:
    """The demo's front door is the console."""
    raise web.HTTPFound("/sandbox/")


def setup_sandbox(app: web.Application, settings: Settings) -> None:
    """Mount the MP, WeCom and Pay simulators under /sandbox/ and the console at /sandbox/."""
    sim = MpSimulator(settings.wechat_app_id, settings.wechat_app_secret.get_secret_value())
    sandbox = Sandbox(settings, sim)
    app[keys.SANDBOX] = sandbox
    app.add_subapp("/sandbox/mp/", sim.app)
    app[keys.PAY_SIM] = pay_sim.mount(app, settings)  # WeChat Pay API + pay page at /sandbox/pay/
    # WECOM_API_BASE = <server>/sandbox/wecom/cgi-bin/: the group robot's webhook/send, and beside it
    # the app API (gettoken, message/send, message/update_template_card).
    wecom = app[keys.WECOM_SIM] = WeComSimulator.from_settings(settings)
    sandbox.attach_wecom(wecom)
    robot = robot_sim.robot_app(sandbox, settings.wecom_robot_key.get_secret_value())
    robot.add_subapp("/cgi-bin/", wecom.api)
    app.add_subapp(robot_sim.MOUNT, robot)
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


class NoQr(web.HTTPNotFound):
    """404: the picture is unknown (or not in that chat) or holds no QR code the simulator issued."""

    def __init__(self) -> None:
        message = "no QR code issued by the simulator in this picture"
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
    """A picture held by a simulator (the MP one, else WeCom's uploads), without an access token (the
    way WeChat's CDN serves them)."""
    sandbox, media_id = request.app[keys.SANDBOX], request.match_info["media_id"]
    found = sandbox.sim.media.get(media_id)
    if found is None and sandbox.wecom is not None:
        found = sandbox.wecom.media.get(media_id)
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
    if isinstance(scene, str) and INVITE_CODE_RE.fullmatch(scene.strip()):
        scene = f"inv_{scene.strip().upper()}"  # the code printed on a poster stands for its QR scene
    if not valid_scene(scene):
        raise BadInput("scene must be 1–64 letters, digits or _-.:")
    sandbox = request.app[keys.SANDBOX]
    return _delivered(await sandbox.scan_qr(_origin(request), body["openid"], scene))


@routes.get("/sandbox/api/scan-media")
async def media_qr(request: web.Request) -> web.Response:
    """?media_id=: the parametric QR code (issued by the MP simulator) in that picture, or 404.

    The console asks this for each picture in a chat, to offer 「用另一位客户扫码」 under posters."""
    media_id = request.query.get("media_id", "")
    if not MEDIA_ID_RE.fullmatch(media_id):
        raise BadInput("media_id must be 1–128 letters, digits, _ or -")
    issued = await request.app[keys.SANDBOX].media_qr(media_id)
    if issued is None:
        raise NoQr()
    return _json({"media_id": media_id, "scene": issued.scene, "url": issued.url})


@routes.post("/sandbox/api/scan-media")
async def scan_media(request: web.Request) -> web.Response:
    """{openid, media_id, as_openid?}: another customer scans the QR code in a picture of openid's chat.

    The code is read from the picture and mapped to its scene through the MP simulator's qrcodes
    (ticket -> scene); the scanner — as_openid, else the first customer the account has never heard of,
    else a new one — then sends subscribe with qrscene_<scene>, or SCAN when already following. 404
    when the picture is not in openid's chat or holds no code the simulator issued."""
    body = await _body(request)
    media_id = body.get("media_id")
    if not isinstance(media_id, str) or not MEDIA_ID_RE.fullmatch(media_id):
        raise BadInput("media_id must be 1–128 letters, digits, _ or -")
    scanner = body.get("as_openid")
    if scanner is not None and not valid_openid(scanner):
        raise BadInput("as_openid must look like o_sandbox_<name>")
    sandbox = request.app[keys.SANDBOX]
    done = await sandbox.scan_media(_origin(request), body["openid"], media_id, scanner)
    if done is None:
        raise NoQr()
    who, issued, delivery = done
    scanner_json = who.to_json() | {"following": who.openid in sandbox.following}
    return _json(_delivery(delivery) | {"scene": issued.scene, "as": scanner_json})


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


@routes.get("/sandbox/api/staff")
async def list_staff(request: web.Request) -> web.Response:
    """Staff members to act as: the registered ones, then any userid the work chat has seen."""
    found: dict[str, str] = {}
    try:
        async with request.app[keys.SESSIONMAKER]() as session:
            rows = await session.execute(select(Staff.userid, Staff.name).where(Staff.active.is_(True)))
            found = {userid: name for userid, name in rows}
    except SQLAlchemyError as exc:  # a database without the staff table yet: list what the chat saw
        log.info("sandbox staff list without the staff table: %r", exc)
    for userid in request.app[keys.SANDBOX].staff_members():
        found.setdefault(userid, userid)
    staff = [{"userid": u, "name": n} for u, n in found.items()]
    return _json({"staff": staff, "configured": _wecom_ready(request)})


@routes.post("/sandbox/api/staff/say")
async def staff_say(request: web.Request) -> web.Response:
    """A staff member types in the work chat: a real encrypted callback to /wechat/work."""
    body = await _staff_body(request)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadInput("text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadInput(f"text must be at most {MAX_TEXT} characters")
    wecom = request.app[keys.WECOM_SIM]
    return _pushed(await wecom.say(_origin(request), body["userid"], text))


@routes.post("/sandbox/api/staff/click")
async def staff_click(request: web.Request) -> web.Response:
    """A staff member taps a card button: a template_card_event callback to /wechat/work."""
    body = await _staff_body(request)
    task_id, key = body.get("task_id"), body.get("key")
    if not isinstance(task_id, str) or not task_id or len(task_id.encode()) > MAX_TASK_ID:
        raise BadInput(f"task_id must be a non-empty string of at most {MAX_TASK_ID} bytes")
    if not isinstance(key, str) or not key or len(key.encode()) > MAX_BUTTON_KEY:
        raise BadInput(f"key must be a non-empty string of at most {MAX_BUTTON_KEY} bytes")
    wecom = request.app[keys.WECOM_SIM]
    try:
        push = await wecom.click(_origin(request), body["userid"], task_id, key)
    except CardClosed as exc:
        raise BadInput(str(exc)) from None
    return _pushed(push)


async def _staff_body(request: web.Request) -> dict[str, Any]:
    if not _wecom_ready(request):
        raise BadInput("WECOM_CORP_ID, WECOM_TOKEN and WECOM_AES_KEY must be set to act as staff")
    body = await _body(request, openid=False)
    if not isinstance(body.get("userid"), str) or not USERID_RE.fullmatch(body["userid"]):
        raise BadInput("userid must be 1–64 letters, digits or _.@-")
    return body


def _wecom_ready(request: web.Request) -> bool:
    s = request.app[keys.SETTINGS]
    return bool(s.wecom_corp_id and s.wecom_token.get_secret_value() and s.wecom_aes_key.get_secret_value())


def _pushed(push: Push) -> web.Response:
    return _json({"ok": push.ok, "status": push.status, "attempts": push.attempts})


@routes.get("/sandbox/api/transcript")
async def transcript(request: web.Request) -> web.Response:
    """Entries newer than ?after=<seq>; waits up to ?wait= seconds (default 10) for something new."""
    after = int(_number(request, "after", 0))
    wait = min(_number(request, "wait", LONG_POLL), 25.0)
    sandbox = request.app[keys.SANDBOX]
    await sandbox.wait_for_change(after, wait)
    return _json(sandbox.since(after) | {"menu": current_menu(sandbox)})


def current_menu(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The menu pushed to the simulator or, until one is, the one `chatorder menu push` would push."""
    if sandbox.sim.menu is not None:
        return menu_tree(sandbox.sim.menu)
    from handlers.menu import menu_json  # the bot's own menu definition; imported late, it is optional

    return menu_tree(menu_json())


def menu_tree(menu: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A pushed custom menu as WeChat shows it: up to 3 buttons, each a CLICK (name, key) or a sub-menu
    (name, sub: [{name, key}]). Buttons of other types (view, miniprogram) keep their names, no key."""
    if not menu:
        return []
    buttons = (menu.get("menu") or menu).get("button") or []
    return [_menu_button(b) for b in buttons[:3] if isinstance(b, dict)]


def _menu_button(button: dict[str, Any]) -> dict[str, Any]:
    name = str(button.get("name", ""))
    subs = [b for b in button.get("sub_button") or [] if isinstance(b, dict)][:5]
    if subs:
        return {"name": name, "sub": [_menu_button(b) for b in subs]}
    key = button.get("key") if button.get("type") == "click" else None
    return {"name": name, "key": str(key) if key else None}


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
    return _json(_delivery(delivery))


def _delivery(delivery: Delivery) -> dict[str, Any]:
    return {"ok": True, "status": delivery.status, "entries": [e.to_json() for e in delivery.entries]}


def _json(data: Any) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, ensure_ascii=False))
