"""The sandbox's WeChat client side: simulated customers talking to our own /wechat/mp webhook.

Every action goes over real HTTP with WeChat's real protocol (safe mode: AES-encrypted XML, signed
query string), so the demo and the tests exercise the same code path as production. What the bot
answers — passively in the HTTP response or later through the (simulated) MP API — lands in one
bounded transcript that the console long-polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

if TYPE_CHECKING:
    from bot.sandbox.mp_sim import MpSimulator, SentMessage
    from settings import Settings

log = logging.getLogger(__name__)

Who = Literal["user", "bot", "system"]
Via = Literal["passive", "api", "user", "sandbox", "robot"]

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
    kind: str  # text | image | news | template | event | notice (+ WeCom kinds on the staff pane)
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
        self._changed = asyncio.Event()
        self._closed = False
        self._session: aiohttp.ClientSession | None = None
        sim.listeners.append(self._on_api_send)

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

    async def subscribe(self, base_url: str, openid: str, scene: str | None = None) -> Delivery:
        """The customer follows the account, through a parametric QR code when `scene` is given."""
        payload: dict[str, Any] = {"event": "subscribe"}
        fields = {"MsgType": "event", "Event": "subscribe", "EventKey": ""}
        if scene:
            payload["scene"] = scene
            fields |= {"EventKey": f"qrscene_{scene}", "Ticket": self._ticket(scene)}
        self.record(openid, "user", "event", payload, "user")
        self.following.add(openid)
        return await self._push(base_url, openid, fields, message=False)

    async def scan_qr(self, base_url: str, openid: str, scene: str) -> Delivery:
        """What scanning a parametric QR code sends: subscribe for a newcomer, SCAN for a follower."""
        if openid in self.following:
            return await self.scan(base_url, openid, scene)
        return await self.subscribe(base_url, openid, scene)

    async def scan(self, base_url: str, openid: str, scene: str) -> Delivery:
        """An existing follower scans a parametric QR code (SCAN event: EventKey has no prefix)."""
        self.record(openid, "user", "event", {"event": "SCAN", "scene": scene}, "user")
        fields = {"MsgType": "event", "Event": "SCAN", "EventKey": scene, "Ticket": self._ticket(scene)}
        return await self._push(base_url, openid, fields, message=False)

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


def valid_scene(value: object) -> bool:
    return isinstance(value, str) and bool(SCENE_RE.match(value))
