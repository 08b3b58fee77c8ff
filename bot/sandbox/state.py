"""The sandbox's WeChat client side: simulated customers talking to our own /wechat/mp webhook.

Every action goes over real HTTP with WeChat's real protocol (safe mode: AES-encrypted XML, signed
query string), so the demo and the tests exercise the same code path as production. What the bot
answers — passively in the HTTP response or later through the (simulated) MP API — lands in one
bounded transcript that the console long-polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import itertools
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

import aiohttp
import qrcode
import xmltodict
from PIL import Image
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

try:  # a dev dependency: a real decoder when installed, the recogniser below otherwise
    import zxingcpp
except ImportError:  # pragma: no cover - depends on the environment
    zxingcpp = None  # type: ignore[assignment]  # the tests also switch it off this way

if TYPE_CHECKING:
    from bot.sandbox.mp_sim import MpSimulator, SentMessage
    from bot.sandbox.wecom_sim import WeComSimulator, WorkRecord
    from settings import Settings

log = logging.getLogger(__name__)

Who = Literal["user", "bot", "system"]
Via = Literal["passive", "api", "user", "sandbox", "robot"]
_WORK_VIA: dict[str, Via] = {"bot": "api", "user": "user", "system": "sandbox"}

OPENID_RE = re.compile(r"^o_sandbox_[A-Za-z0-9_-]{1,40}$")
# Scene strings of parametric QR codes: WeChat allows 1–64 characters.
SCENE_RE = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")
# Where the console and the webhook fetch customers' pictures. Like WeChat's CDN (mmbiz.qpic.cn) it needs
# no access token, unlike the API's media/get.
MEDIA_PATH = "/sandbox/media/"

DEFAULT_CUSTOMERS: tuple[tuple[str, str], ...] = (
    ("o_sandbox_brand_a", "咖啡品牌A"),
    ("o_sandbox_xiaolu", "小鹿"),
    ("o_sandbox_amu", "阿木"),
)
EXTRA_NAMES = ("阿杰", "小白", "米粒", "大橙", "豆豆", "青青", "木子", "星星")


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a chat (customer pane) or of the staff work chat (staff pane)."""

    seq: int
    openid: str
    who: Who
    # text | image | news | template | event | notice; on the staff pane also markdown, template_card
    # and card_update (see wecom_sim.WorkRecord)
    kind: str
    payload: dict[str, Any]
    via: Via
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "openid": self.openid,
            "who": self.who,
            "kind": self.kind,
            "payload": self.payload,
            "via": self.via,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class Customer:
    openid: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"openid": self.openid, "name": self.name}


@dataclass(frozen=True, slots=True)
class IssuedQr:
    """A parametric QR code the MP simulator issued (qrcode/create), found in a picture."""

    ticket: str
    url: str
    scene: str


@dataclass(slots=True)
class Delivery:
    """What one simulated WeChat push produced: the HTTP status and the passive reply, if any."""

    status: int
    reply: Entry | None = None
    entries: list[Entry] = field(default_factory=list)


class Sandbox:
    """Simulated customers + transcript; acts like WeChat's servers towards our webhook."""

    def __init__(
        self,
        settings: Settings,
        sim: MpSimulator,
        *,
        max_entries: int = 2000,
        reply_timeout: float = 5.0,
        attempts: int = 3,
    ) -> None:
        self.settings = settings
        self.sim = sim
        self.app_id = settings.wechat_app_id
        self._token = settings.wechat_token.get_secret_value()
        aes_key = settings.wechat_aes_key.get_secret_value()
        self._crypto = WeChatCrypto(self._token, aes_key, self.app_id) if aes_key else None
        # The Official Account's original id (gh_…), as WeChat puts it in ToUserName.
        self.account = "gh_" + hashlib.sha1(self.app_id.encode()).hexdigest()[:12]
        # WeChat gives our server 5 s per attempt and tries 3 times in all, with the same MsgId.
        self.reply_timeout = reply_timeout
        self.attempts = attempts
        self.entries: deque[Entry] = deque(maxlen=max_entries)
        self.staff: deque[Entry] = deque(maxlen=max_entries)
        self.customers: dict[str, Customer] = {o: Customer(o, n) for o, n in DEFAULT_CUSTOMERS}
        self.following: set[str] = set()  # openids that follow the account, as far as the sandbox saw
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._msg_ids = itertools.count(int(time.time()) * 1000)
        self._last_create: dict[str, int] = {}
        # media id -> (the QR code found in it, or None, and how many codes were issued when looked)
        self._media_qr: dict[str, tuple[IssuedQr | None, int]] = {}
        self._changed = asyncio.Event()
        self._closed = False
        self._session: aiohttp.ClientSession | None = None
        self.wecom: WeComSimulator | None = None
        sim.listeners.append(self._on_api_send)

    def attach_wecom(self, wecom: WeComSimulator) -> None:
        """Show the WeCom simulator's work chat (app messages, cards, staff actions) in the staff pane."""
        self.wecom = wecom
        wecom.listeners.append(self._on_work)

    def _on_work(self, record: WorkRecord) -> None:
        self.add_staff_entry(
            record.kind, dict(record.payload), userid=record.userid, who=record.who, via=_WORK_VIA[record.who]
        )

    def staff_members(self) -> list[str]:
        """Userids the work chat has seen (recipients and actors), in order of appearance."""
        return list(self.wecom.seen) if self.wecom is not None else []

    @property
    def last_seq(self) -> int:
        return self._last_seq

    def _record(self, target: deque[Entry], **fields: Any) -> Entry:
        entry = Entry(seq=next(self._seq), at=time.time(), **fields)
        target.append(entry)
        self._last_seq = entry.seq
        # Wake every long-poll waiting on the old event; later waiters get a fresh one.
        self._changed.set()
        self._changed = asyncio.Event()
        return entry

    def record(self, openid: str, who: Who, kind: str, payload: dict[str, Any], via: Via) -> Entry:
        """Append a line to a customer's chat (registering the customer if new)."""
        self.customer(openid)
        return self._record(self.entries, openid=openid, who=who, kind=kind, payload=payload, via=via)

    def add_staff_entry(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        userid: str = "",
        who: Who = "bot",
        via: Via = "api",
    ) -> Entry:
        """Append a line to the staff pane (WeCom app messages, robot posts, staff actions)."""
        return self._record(self.staff, openid=userid, who=who, kind=kind, payload=payload, via=via)

    def since(self, after: int) -> dict[str, Any]:
        """Everything newer than `after` (a seq), for the console."""
        return {
            "last_seq": self._last_seq,
            "entries": [e.to_json() for e in self.entries if e.seq > after],
            "staff": [e.to_json() for e in self.staff if e.seq > after],
            "customers": self.customer_list(),
        }

    def customer_list(self) -> list[dict[str, Any]]:
        return [c.to_json() | {"following": c.openid in self.following} for c in self.customers.values()]

    async def wait_for_change(self, after: int, seconds: float) -> None:
        """Return when something newer than `after` exists, on close, or after `seconds`."""
        if self._last_seq > after or self._closed or seconds <= 0:
            return
        event = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    def chat(self, openid: str) -> list[Entry]:
        """One customer's lines, oldest first (handy in tests)."""
        return [e for e in self.entries if e.openid == openid]

    def _on_api_send(self, sent: SentMessage) -> None:
        self.record(sent.openid, "bot", sent.kind, dict(sent.payload), "api")

    def customer(self, openid: str, name: str | None = None) -> Customer:
        """The customer with this openid, created on first sight."""
        found = self.customers.get(openid)
        if found is None:
            found = Customer(openid, name or openid.removeprefix("o_sandbox_"))
            self.customers[openid] = found
            self._changed.set()
            self._changed = asyncio.Event()
        return found

    def add_customer(self, name: str | None = None) -> Customer:
        """A new simulated customer with a fresh openid (the console's 添加客户 button)."""
        taken = {c.name for c in self.customers.values()}
        if not name:
            name = next((n for n in EXTRA_NAMES if n not in taken), f"客户{len(self.customers) + 1}")
        openid = f"o_sandbox_{secrets.token_hex(4)}"
        return self.customer(openid, name)

    async def say(self, base_url: str, openid: str, text: str) -> Delivery:
        """The customer sends a text message."""
        self.record(openid, "user", "text", {"content": text}, "user")
        return await self._push(base_url, openid, {"MsgType": "text", "Content": text}, message=True)

    async def click(self, base_url: str, openid: str, key: str) -> Delivery:
        """The customer taps a CLICK button of the custom menu."""
        self.record(openid, "user", "event", {"event": "CLICK", "key": key}, "user")
        fields = {"MsgType": "event", "Event": "CLICK", "EventKey": key}
        return await self._push(base_url, openid, fields, message=False)

    async def subscribe(
        self, base_url: str, openid: str, scene: str | None = None, *, ticket: str | None = None
    ) -> Delivery:
        """The customer follows the account, through a parametric QR code when `scene` is given
        (`ticket`: the code's real ticket when known, else a stand-in derived from the scene)."""
        payload: dict[str, Any] = {"event": "subscribe"}
        fields = {"MsgType": "event", "Event": "subscribe", "EventKey": ""}
        if scene:
            payload["scene"] = scene
            fields |= {"EventKey": f"qrscene_{scene}", "Ticket": ticket or self._ticket(scene)}
        self.record(openid, "user", "event", payload, "user")
        self.following.add(openid)
        return await self._push(base_url, openid, fields, message=False)

    async def scan_qr(self, base_url: str, openid: str, scene: str, *, ticket: str | None = None) -> Delivery:
        """What scanning a parametric QR code sends: subscribe for a newcomer, SCAN for a follower."""
        if openid in self.following:
            return await self.scan(base_url, openid, scene, ticket=ticket)
        return await self.subscribe(base_url, openid, scene, ticket=ticket)

    async def scan(self, base_url: str, openid: str, scene: str, *, ticket: str | None = None) -> Delivery:
        """An existing follower scans a parametric QR code (SCAN event: EventKey has no prefix)."""
        self.record(openid, "user", "event", {"event": "SCAN", "scene": scene}, "user")
        fields = {
            "MsgType": "event",
            "Event": "SCAN",
            "EventKey": scene,
            "Ticket": ticket or self._ticket(scene),
        }
        return await self._push(base_url, openid, fields, message=False)

    async def media_qr(self, media_id: str) -> IssuedQr | None:
        """The parametric QR code in picture `media_id`, found the way a phone finds it: the picture is
        read (see `find_issued_qr`) and the URL in it is looked up among the codes the MP simulator
        issued, which map ticket -> scene as WeChat's servers do. None: no such picture, or no code of
        ours in it (a payment QR, a photo…)."""
        found = self.sim.media.get(media_id)
        if found is None:
            return None
        by_url = {str(q.get("url")): (ticket, q) for ticket, q in self.sim.qrcodes.items()}
        cached = self._media_qr.get(media_id)
        # A picture does not change; only a code issued since the last look could newly match.
        if cached is not None and (cached[0] is not None or cached[1] == len(by_url)):
            return cached[0]
        url = await asyncio.to_thread(find_issued_qr, found[1], list(by_url))
        issued = None
        if url is not None:
            ticket, answer = by_url[url]
            scene = answer.get("scene") or {}
            name = scene.get("scene_str") or scene.get("scene_id")
            issued = IssuedQr(ticket, url, str(name)) if name not in (None, "") else None
        self._media_qr[media_id] = (issued, len(by_url))
        return issued

    def shown_to(self, openid: str, media_id: str) -> bool:
        """Whether the picture is in this customer's chat (sent by them or to them)."""
        return any(e.kind == "image" and e.payload.get("media_id") == media_id for e in self.chat(openid))

    def newcomer(self, besides: str) -> Customer:
        """Someone else to scan with: the first customer, other than `besides`, the account has never
        heard of (not following, nothing in their chat); a new customer when there is none."""
        active = {e.openid for e in self.entries}
        fresh = (
            c
            for c in self.customers.values()
            if c.openid != besides and c.openid not in self.following and c.openid not in active
        )
        return next(fresh, None) or self.add_customer()

    async def scan_media(
        self, base_url: str, openid: str, media_id: str, scanner: str | None = None
    ) -> tuple[Customer, IssuedQr, Delivery] | None:
        """Another customer (`scanner`, else a newcomer) scans the QR code in a picture of `openid`'s
        chat: subscribe with qrscene_<scene> if they do not follow yet, else SCAN — with the real
        ticket. None when the picture is not in that chat or holds no code the simulator issued."""
        if not self.shown_to(openid, media_id):
            return None
        issued = await self.media_qr(media_id)
        if issued is None:
            return None
        who = self.customer(scanner) if scanner else self.newcomer(openid)
        delivery = await self.scan_qr(base_url, who.openid, issued.scene, ticket=issued.ticket)
        return who, issued, delivery

    async def unsubscribe(self, base_url: str, openid: str) -> Delivery:
        """The customer unfollows; WeChat ignores any reply to this event."""
        self.record(openid, "user", "event", {"event": "unsubscribe"}, "user")
        self.following.discard(openid)
        fields = {"MsgType": "event", "Event": "unsubscribe", "EventKey": ""}
        return await self._push(base_url, openid, fields, message=False)

    async def send_image(self, base_url: str, openid: str, data: bytes, content_type: str) -> Delivery:
        """The customer sends a picture: stored as simulator media, pushed with PicUrl and MediaId."""
        media_id = f"sbx_user_{secrets.token_hex(8)}"
        self.sim.media[media_id] = (content_type, data)
        pic_url = f"{base_url.rstrip('/')}{MEDIA_PATH}{media_id}"
        self.record(openid, "user", "image", {"media_id": media_id, "picurl": pic_url}, "user")
        fields = {"MsgType": "image", "PicUrl": pic_url, "MediaId": media_id}
        return await self._push(base_url, openid, fields, message=True)

    def _ticket(self, scene: str) -> str:
        return "sbx_ticket_" + hashlib.sha1(f"{self.app_id}:{scene}".encode()).hexdigest()[:24]

    def _create_time(self, openid: str) -> int:
        # Events are deduplicated by FromUserName + CreateTime; keep a customer's times strictly
        # increasing so two quick taps in the console are two events, as they are on a phone.
        now = max(int(time.time()), self._last_create.get(openid, 0) + 1)
        self._last_create[openid] = now
        return now

    def build_xml(self, openid: str, fields: dict[str, str], *, message: bool) -> str:
        """The plain XML WeChat would push for this customer (MsgId only on messages)."""
        parts = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": str(self._create_time(openid)),
            **fields,
        }
        if message:
            parts["MsgId"] = str(next(self._msg_ids))
        body = "".join(
            f"<{k}>{v}</{k}>" if k in ("CreateTime", "MsgId") else f"<{k}><![CDATA[{_cdata(v)}]]></{k}>"
            for k, v in parts.items()
        )
        return f"<xml>{body}</xml>"

    def _envelope(self, openid: str, plain: str) -> tuple[dict[str, str], str]:
        """Query string and body of one push, as WeChat sends it in safe (or plain) mode."""
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(5)
        signer = WeChatSigner()
        signer.add_data(self._token, timestamp, nonce)
        query = {"signature": signer.signature, "timestamp": timestamp, "nonce": nonce, "openid": openid}
        if self._crypto is None:
            return query, plain
        sealed = xmltodict.parse(self._crypto.encrypt_message(plain, nonce, timestamp))["xml"]
        query |= {"encrypt_type": "aes", "msg_signature": sealed["MsgSignature"]}
        body = (
            f"<xml><ToUserName><![CDATA[{self.account}]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
        )
        return query, body

    async def _push(self, base_url: str, openid: str, fields: dict[str, str], *, message: bool) -> Delivery:
        plain = self.build_xml(openid, fields, message=message)
        url = base_url.rstrip("/") + "/wechat/mp"
        session = self._client()
        status = 0
        for attempt in range(1, self.attempts + 1):
            # Each retry is signed afresh but carries the same XML (same MsgId / CreateTime).
            query, body = self._envelope(openid, plain)
            try:
                async with (
                    asyncio.timeout(self.reply_timeout),
                    session.post(url, params=query, data=body.encode(), headers=_XML) as resp,
                ):
                    status = resp.status
                    raw = await resp.text()
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.info("sandbox push to %s failed (attempt %d): %r", url, attempt, exc)
                continue
            if status != 200:
                note = self._notice(openid, f"该公众号暂时无法提供服务，请稍后再试（HTTP {status}）")
                return Delivery(status, None, [note])
            reply = self._passive(openid, raw, query)
            return Delivery(status, reply, [reply] if reply else [])
        waited = f"{self.attempts} 次推送都没有在 {self.reply_timeout:g} 秒内得到回复"
        return Delivery(status, None, [self._notice(openid, f"该公众号暂时无法提供服务：{waited}")])

    def _passive(self, openid: str, raw: str, query: dict[str, str]) -> Entry | None:
        """Decrypt and record a passive reply; '' and 'success' mean "nothing to say now"."""
        text = raw.strip()
        if not text or text == "success":
            return None
        try:
            plain = text
            if self._crypto is not None and "<Encrypt>" in text:
                sealed = xmltodict.parse(text)["xml"]
                plain = self._crypto.decrypt_message(
                    text, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
                )
            kind, payload = parse_reply(plain)
        except Exception as exc:  # a broken reply is a finding to show, not a crash
            log.warning("sandbox could not read a passive reply: %r", exc)
            return self._notice(openid, f"无法解析被动回复：{exc}")
        return self.record(openid, "bot", kind, payload, "passive")

    def _notice(self, openid: str, text: str) -> Entry:
        """A grey line in the chat: what the phone would show when the account fails to answer."""
        return self.record(openid, "system", "notice", {"text": text}, "sandbox")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Release long-polls and the HTTP session."""
        self._closed = True
        self._changed.set()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._on_api_send in self.sim.listeners:
            self.sim.listeners.remove(self._on_api_send)
        if self.wecom is not None:
            if self._on_work in self.wecom.listeners:
                self.wecom.listeners.remove(self._on_work)
            await self.wecom.close()

    def release_waiters(self) -> None:
        """Wake every long-poll now (on shutdown), so the server does not wait for them."""
        self._closed = True
        self._changed.set()


_XML = {"Content-Type": "text/xml; charset=utf-8"}


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it the standard way.
    return value.replace("]]>", "]]]]><![CDATA[>")


def parse_reply(xml: str) -> tuple[str, dict[str, Any]]:
    """A passive reply as (kind, payload) in the same shapes as the MP send API's JSON."""
    data = xmltodict.parse(xml)["xml"]
    msg_type = data.get("MsgType")
    if msg_type == "text":
        return "text", {"content": data.get("Content") or ""}
    if msg_type == "image":
        return "image", {"media_id": (data.get("Image") or {}).get("MediaId", "")}
    if msg_type == "news":
        items = (data.get("Articles") or {}).get("item") or []
        if isinstance(items, dict):
            items = [items]
        return "news", {"articles": [_article(i) for i in items]}
    if msg_type == "transfer_customer_service":
        return "notice", {"text": "已转接人工客服"}
    return str(msg_type or "unknown"), {k: v for k, v in data.items() if isinstance(v, str)}


def _article(item: dict[str, Any]) -> dict[str, str]:
    return {
        "title": item.get("Title") or "",
        "description": item.get("Description") or "",
        "url": item.get("Url") or "",
        "picurl": item.get("PicUrl") or "",
    }


def valid_openid(value: object) -> bool:
    return isinstance(value, str) and bool(OPENID_RE.match(value))


def valid_scene(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(SCENE_RE.match(value))


# --- Reading QR codes in pictures ---------------------------------------------------------------------

MAX_QR_PIXELS = 4_000_000  # larger pictures are not searched
_FINDER = (1, 1, 3, 1, 1)  # a finder pattern crossed through its centre: dark, light, dark ×3, light, dark
_QR_LEVELS = (ERROR_CORRECT_M, ERROR_CORRECT_L, ERROR_CORRECT_Q, ERROR_CORRECT_H)


def find_issued_qr(data: bytes, issued: Iterable[str]) -> str | None:
    """Which of the `issued` URLs the QR code in the picture `data` encodes, if any.

    A phone decodes the code on a poster and WeChat's servers map its URL to a ticket and a scene; the
    sandbox does the same. zxing-cpp decodes the picture when it is installed (it is only a dev
    dependency). Without it a small recogniser in Pillow and qrcode (both runtime dependencies) stands
    in: it decodes nothing in general but, since the simulator knows every URL it issued, samples the
    module grid of each upright code it finds (through the three finder patterns) and tells which
    issued URL's code is drawn there. That is exact for what the bot sends (crisp, upright, whole-pixel
    modules) and survives JPEG and rescaling; a tilted photo of a poster needs zxing-cpp. Reading the
    picture, rather than remembering which code the bot created before which upload, keeps it right
    when a poster is redrawn from a cached QR URL, and never pins an unrelated picture (a payment QR
    code) to a scene."""
    urls = list(issued)
    if not urls:
        return None
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_QR_PIXELS:
            return None
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if zxingcpp is not None:
        found = zxingcpp.read_barcodes(
            image.convert("L"), formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
        texts = {r.text for r in found}
        return next((u for u in urls if u in texts), None)
    return recognise_issued_qr(image, urls)


def recognise_issued_qr(image: Image.Image, urls: Iterable[str]) -> str | None:
    """The URL among `urls` whose QR code is drawn upright in `image` (≤ 2 % of modules off), if any."""
    grey = image.convert("L")
    w, h = grey.size
    dark = grey.point(lambda v: 1 if v < 128 else 0).tobytes()
    finders = _finder_centres(dark, w, h)
    # Three finders of one code: top-left, top-right on its row, bottom-left as far below.
    layouts = [
        (tl, tr[0] - tl[0])
        for tl, tr, bl in itertools.permutations(finders, 3)
        if tr[0] - tl[0] > 10 * tl[2]
        and abs(tr[1] - tl[1]) < tl[2]
        and abs(bl[0] - tl[0]) < tl[2]
        and abs(bl[1] - tl[1] - (tr[0] - tl[0])) < 2 * tl[2]
    ]
    if not layouts:
        return None
    for url in urls:
        for matrix in _qr_matrices(url):
            n = len(matrix)
            for (x, y, unit), span in layouts:
                module = span / (n - 7)  # finder centres are 3.5 modules in from the edges
                if abs(module - unit) > unit / 4:
                    continue
                if _misses(dark, w, h, x, y, module, matrix) <= n * n // 50:
                    return url
    return None


def _finder_centres(dark: bytes, w: int, h: int) -> list[tuple[float, float, float]]:
    """(x, y, module size) of each finder pattern: rows whose dark/light runs go 1:1:3:1:1, stacked."""
    stacks: list[list[float]] = []  # [Σx, Σy, Σunit, rows, last row]
    for y in range(h):
        runs: list[tuple[int, int, int]] = []  # (start, length, dark)
        x = 0
        for value, same in itertools.groupby(dark[y * w : (y + 1) * w]):
            n = sum(1 for _ in same)
            runs.append((x, n, value))
            x += n
        for i in range(len(runs) - 4):
            sizes = [r[1] for r in runs[i : i + 5]]
            unit = sum(sizes) / 7
            off = (abs(size - k * unit) > unit / 2 for size, k in zip(sizes, _FINDER, strict=True))
            if not runs[i][2] or any(off):
                continue
            cx = runs[i + 2][0] + sizes[2] / 2
            stack = next((s for s in stacks if abs(s[0] / s[3] - cx) < unit and 0 < y - s[4] <= 2), None)
            if stack is None:
                stacks.append([cx, y, unit, 1, y])
            else:
                stack[:] = [stack[0] + cx, stack[1] + y, stack[2] + unit, stack[3] + 1, y]
    # The centre square is 3 modules tall: a real finder is crossed by about 3 × unit rows.
    return [(s[0] / s[3], s[1] / s[3] + 0.5, s[2] / s[3]) for s in stacks if s[3] >= 2 * s[2] / s[3]]


def _misses(
    dark: bytes, w: int, h: int, x: float, y: float, module: float, matrix: tuple[tuple[bool, ...], ...]
) -> int:
    """How many modules of `matrix` differ from the picture, sampled at their centres from the
    top-left finder's centre (x, y)."""
    x0, y0 = x - 3.5 * module, y - 3.5 * module
    misses = 0
    for i, row in enumerate(matrix):
        py = int(y0 + (i + 0.5) * module)
        for j, cell in enumerate(row):
            px = int(x0 + (j + 0.5) * module)
            misses += (0 <= px < w and 0 <= py < h and dark[py * w + px] == 1) != cell
    return misses


@functools.lru_cache(maxsize=512)
def _qr_matrices(url: str) -> tuple[tuple[tuple[bool, ...], ...], ...]:
    """The module grid (no quiet zone) of `url`'s QR code at each error-correction level."""
    grids = []
    for level in _QR_LEVELS:
        code = qrcode.QRCode(error_correction=level, border=0)
        code.add_data(url)
        code.make(fit=True)
        grids.append(tuple(tuple(row) for row in code.get_matrix()))
    return tuple(grids)
