"""A simulator of WeCom (企业微信) over real HTTP: the app API on one side, staff members on the other.

API side (qyapi.weixin.qq.com/cgi-bin/): gettoken, message/send (text, markdown, template_card) and
message/update_template_card, in Tencent's JSON shapes, with fault injection. Staff side: a staff member
types a text or clicks a card button, and the simulator posts the callback to the app's /wechat/work
exactly as WeCom does (AES-encrypted XML, msg_signature/timestamp/nonce in the query), retrying a
callback that fails or takes longer than 5 s, 3 attempts in all.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy.work.crypto import WeChatCrypto

from bot.sandbox import labels
from settings import Settings

log = logging.getLogger(__name__)

TOKEN_TTL = 7200
CODE_TTL = 72 * 3600  # a response_code may update its card once, within 72 hours
INTERACTIVE = {"button_interaction", "vote_interaction", "multiple_interaction"}
CARD_TYPES = {"text_notice", "news_notice", *INTERACTIVE}
# errmsg texts in Tencent's wording (WeCom's global error code table).
# fmt: off
_ERRMSG: dict[int, str] = {
    -1: "system busy", 40001: "invalid credential", 40008: "invalid message type",
    40013: "invalid corpid", 40014: "invalid access_token", 40056: "invalid agentid",
    40058: "invalid parameter", 41001: "access_token missing", 42001: "access_token expired",
    44004: "empty content", 45009: "api freq out of limit", 47001: "data format error",
    81013: "user & party & tag all invalid", 40004: "invalid media type", 40007: "invalid media_id",
    41005: "media data missing",
}
# API name (as in `calls` and `fail_next`) -> method and path (under cgi-bin/); handled by `_<name>`.
_ROUTES = {
    "gettoken": ("GET", "gettoken"), "send": ("POST", "message/send"),
    "update_card": ("POST", "message/update_template_card"), "media_upload": ("POST", "media/upload"),
}
# fmt: on
_XML = {"Content-Type": "text/xml; charset=utf-8"}

Who = Literal["bot", "user", "system"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class WorkRecord:
    """One thing that happened in the work chat, for listeners such as the sandbox's staff pane.

    kinds: text | markdown | template_card (from the app, who="bot"); card_update (who="bot", userid is
    "a|b"); text | event (from a staff member, who="user"); notice (who="system").
    """

    userid: str
    who: Who
    kind: str
    payload: dict[str, Any]


@dataclass(slots=True)
class CardView:
    """One recipient's copy of a template card: as sent, or as updated since."""

    task_id: str
    userid: str
    msgid: str
    card: dict[str, Any]
    replace_name: str | None = None  # set by an update: the buttons give way to this label


@dataclass(slots=True)
class _Code:
    task_id: str
    userid: str | None  # the clicker; None for the code message/send issued
    expires: float
    used: bool = False


@dataclass(frozen=True, slots=True)
class AppMessage:
    """One message/send the simulator accepted."""

    seq: int
    msgid: str
    touser: tuple[str, ...]
    kind: str  # text | markdown | template_card
    payload: dict[str, Any]  # the body's `text` / `markdown` / `template_card` object
    response_code: str = ""


@dataclass(frozen=True, slots=True)
class CardClick:
    """A button tap the simulator sent as a template_card_event, with the code it issued."""

    userid: str
    task_id: str
    key: str
    response_code: str


@dataclass(frozen=True, slots=True)
class Push:
    """What posting one callback to /wechat/work came to: the last HTTP status and attempts made."""

    status: int
    attempts: int
    body: str = ""
    response_code: str = ""  # for a click: the code the app may use to update the card

    @property
    def ok(self) -> bool:
        return self.status == 200


class ApiError(Exception):
    """An error answered as Tencent's {"errcode", "errmsg"} body; args[0] is the errcode."""


class CardClosed(Exception):
    """A click on a card whose buttons an update has already replaced."""


def _error_body(errcode: int) -> dict[str, Any]:
    hint = f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    return {"errcode": errcode, "errmsg": f"{_ERRMSG.get(errcode, 'error')}, {hint}"}


@dataclass(slots=True)
class _Staff:
    """The simulated staff side: crypto and per-user clocks for callbacks."""

    crypto: WeChatCrypto | None
    last_create: dict[str, int] = field(default_factory=dict)
    msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(int(time.time()) * 1000))


class WeComSimulator:
    """Stands in for qyapi.weixin.qq.com and for the staff members' WeCom apps."""

    def __init__(
        self,
        *,
        corp_id: str,
        agent_id: str,
        secret: str,
        token: str = "",
        aes_key: str = "",
        reply_timeout: float = 5.0,
        attempts: int = 3,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = secret
        self._token = token
        self.reply_timeout = reply_timeout
        self.attempts = attempts
        self.messages: list[AppMessage] = []
        self.clicks: list[CardClick] = []
        self.cards: dict[tuple[str, str], CardView] = {}  # (task_id, userid) -> that user's copy
        self.listeners: list[Callable[[WorkRecord], None]] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.seen: dict[str, None] = {}  # userids in order of first appearance (recipients, actors)
        self.media: dict[str, tuple[str, bytes]] = {}  # media_id -> (content type, bytes) of uploads
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._failures: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
        self._seq = itertools.count(1)
        self._staff = _Staff(WeChatCrypto(token, aes_key, corp_id) if aes_key else None)
        self._session: aiohttp.ClientSession | None = None
        # Routes relative to cgi-bin/, so that the sandbox can mount them beside the group robot.
        self.api = web.Application()
        for api, (method, path) in _ROUTES.items():
            self.api.router.add_route(method, f"/{path}", self._wrap(api, getattr(self, f"_{api}")))
        self._root: web.Application | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WeComSimulator:
        return cls(
            corp_id=settings.wecom_corp_id,
            agent_id=settings.wecom_agent_id,
            secret=settings.wecom_secret.get_secret_value(),
            token=settings.wecom_token.get_secret_value(),
            aes_key=settings.wecom_aes_key.get_secret_value(),
        )

    @property
    def app(self) -> web.Application:
        """A standalone server (API under /cgi-bin/), e.g. for a TestServer; not with the sandbox mount."""
        if self._root is None:
            self._root = web.Application()
            self._root.add_subapp("/cgi-bin/", self.api)
        return self._root

    # --- fault injection and inspection ----------------------------------------------------------

    def fail_next(self, api: str, errcode: int, times: int = 1) -> None:
        """Answer the next `times` calls of `api` (gettoken | send | update_card | media_upload) with
        `errcode` (500 means an HTTP 500)."""
        self._failures[api].extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Make every issued token expire now: its next use answers 42001."""
        self._tokens = dict.fromkeys(self._tokens, time.time())

    def card(self, task_id: str, userid: str) -> CardView | None:
        """The card `userid` sees for `task_id`, as updated so far."""
        return self.cards.get((task_id, userid))

    def sent_to(self, userid: str) -> list[AppMessage]:
        """Messages that reached `userid`, oldest first."""
        return [m for m in self.messages if userid in m.touser]

    # --- API side ---------------------------------------------------------------------------------

    def _wrap(self, api: str, handler: Handler) -> Handler:
        async def view(request: web.Request) -> web.StreamResponse:
            self.calls[api] += 1
            try:
                if self._failures[api]:
                    raise ApiError(self._failures[api].popleft())
                if api != "gettoken":
                    self._check_token(request.query.get("access_token"))
                return await handler(request)
            except ApiError as exc:
                if exc.args[0] == 500:
                    return web.Response(status=500, text="500 Internal Server Error")
                return web.json_response(_error_body(exc.args[0]))

        return view

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise ApiError(41001)
        expiry = self._tokens.get(token)
        if expiry is None:
            raise ApiError(40014)
        if expiry <= time.time():
            raise ApiError(42001)

    async def _gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != self.corp_id:
            raise ApiError(40013)
        if not secrets.compare_digest(q.get("corpsecret", "").encode(), self._secret.encode()):
            raise ApiError(40001)
        now = time.time()
        # Within its lifetime WeCom hands out the same token again (unlike the MP API).
        live = [(t, exp) for t, exp in self._tokens.items() if exp > now]
        if live:
            token, expiry = max(live, key=lambda te: te[1])
        else:
            token, expiry = secrets.token_urlsafe(48), now + TOKEN_TTL
            self._tokens[token] = expiry
        return _ok({"access_token": token, "expires_in": int(expiry - now)})

    async def _json(self, request: web.Request) -> dict[str, Any]:
        with contextlib.suppress(ValueError):
            body = json.loads(await request.read())
            if isinstance(body, dict):
                return body
        raise ApiError(47001)

    def _check_agent(self, body: dict[str, Any]) -> None:
        if str(body.get("agentid", "")) != str(self.agent_id):
            raise ApiError(40056)

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self._check_agent(body)
        kind = body.get("msgtype")
        content = body.get(kind) if isinstance(kind, str) else None
        if kind not in ("text", "markdown", "image", "template_card") or not isinstance(content, dict):
            raise ApiError(40008)
        users = tuple(u for u in str(body.get("touser") or "").split("|") if u)
        if not users:
            raise ApiError(81013)
        if kind == "template_card":
            _check_card(content)
        elif kind == "image":
            if content.get("media_id") not in self.media:
                raise ApiError(40007)  # invalid media_id
        elif not str(content.get("content") or "").strip():
            raise ApiError(44004)
        msg = self._accept(users, kind, copy.deepcopy(content))
        answer: dict[str, Any] = {"msgid": msg.msgid}
        if msg.response_code:
            answer["response_code"] = msg.response_code
        return _ok(answer)

    def _accept(self, users: tuple[str, ...], kind: str, content: dict[str, Any]) -> AppMessage:
        task_id = str(content.get("task_id") or "")
        code = ""
        if kind == "template_card" and content["card_type"] in INTERACTIVE:
            code = self._issue_code(task_id, None)
        msg = AppMessage(next(self._seq), "sim" + secrets.token_hex(12), users, kind, content, code)
        self.messages.append(msg)
        for userid in users:
            self.seen.setdefault(userid, None)
            if kind == "template_card":
                self.cards[(task_id, userid)] = CardView(task_id, userid, msg.msgid, copy.deepcopy(content))
                payload = {"template_card": content, "task_id": task_id, "msgid": msg.msgid}
            elif kind == "image":
                payload = {"media_id": content["media_id"]}
            else:
                payload = {"content": content["content"]}
            self._emit(WorkRecord(userid, "bot", kind, payload))
        return msg

    async def _media_upload(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        if kind not in ("image", "voice", "video", "file"):
            raise ApiError(40004)  # invalid media type
        field = (await request.post()).get("media")
        if not isinstance(field, web.FileField):
            raise ApiError(41005)  # media data missing
        data = field.file.read()
        if not data:
            raise ApiError(41005)
        media_id = "wx" + secrets.token_urlsafe(32)
        self.media[media_id] = (field.content_type or "application/octet-stream", data)
        return _ok({"type": kind, "media_id": media_id, "created_at": str(int(time.time()))})

    def _issue_code(self, task_id: str, userid: str | None) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(task_id, userid, time.time() + CODE_TTL)
        return code

    async def _update_card(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        self._check_agent(body)
        code = self._codes.get(str(body.get("response_code") or ""))
        if code is None or code.used or code.expires <= time.time():
            raise ApiError(40058)  # unknown, already used or older than 72 h
        button, card = body.get("button"), body.get("template_card")
        if isinstance(card, dict):
            _check_card(card)
        elif not isinstance(button, dict) or not str(button.get("replace_name") or "").strip():
            raise ApiError(40058)
        recipients = [uid for (task, uid) in self.cards if task == code.task_id]
        if body.get("atall"):
            targets = recipients
        else:
            targets = [u for u in body.get("userids") or [] if u in recipients]
            if not body.get("userids"):
                raise ApiError(40058)
        code.used = True
        for userid in targets:
            view = self.cards[(code.task_id, userid)]
            if isinstance(card, dict):
                # A card redrawn with replace_text shows that text where its buttons were: closed.
                closed = str(card.get("replace_text") or "") or None
                view.card, view.replace_name = copy.deepcopy(card), closed
            else:
                view.replace_name = str(button["replace_name"])  # type: ignore[index]
        payload: dict[str, Any] = {"task_id": code.task_id, "userids": targets}
        payload |= {"template_card": card} if isinstance(card, dict) else {"button": button}
        self._emit(WorkRecord("|".join(targets), "bot", "card_update", payload))
        invalid = sorted(set(body.get("userids") or []) - set(recipients))
        return _ok({"invaliduser": invalid})

    def _emit(self, record: WorkRecord) -> None:
        for listener in list(self.listeners):
            try:
                listener(record)
            except Exception:
                log.exception("wecom simulator listener failed")

    # --- staff side ------------------------------------------------------------------------------

    async def say(self, base_url: str, userid: str, text: str) -> Push:
        """`userid` sends the app a text message (a command such as 「接单 20261122-0042」)."""
        self.seen.setdefault(userid, None)
        self._emit(WorkRecord(userid, "user", "text", {"content": text}))
        return await self.deliver(base_url, userid, self.text_xml(userid, text))

    async def click(self, base_url: str, userid: str, task_id: str, key: str) -> Push:
        """`userid` taps the button `key` on the card `task_id`: a template_card_event callback."""
        view = self.cards.get((task_id, userid))
        if view is not None and view.replace_name is not None:
            raise CardClosed(labels.CARD_ALREADY_HANDLED)
        self.seen.setdefault(userid, None)
        card_type = str(view.card.get("card_type")) if view else "button_interaction"
        code = self._issue_code(task_id, userid)
        self.clicks.append(CardClick(userid, task_id, key, code))
        name = _button_text(view.card, key) if view else key
        payload = {"event": "template_card_event", "task_id": task_id, "key": key, "button": name}
        self._emit(WorkRecord(userid, "user", "event", payload))
        plain = self.click_xml(userid, task_id, key, code, card_type=card_type)
        push = await self.deliver(base_url, userid, plain)
        return Push(push.status, push.attempts, push.body, code)

    def text_xml(self, userid: str, text: str) -> str:
        """The plaintext WeCom encrypts for a staff member's text message."""
        fields = {"MsgType": "text", "Content": text, "MsgId": str(next(self._staff.msg_ids))}
        return self._xml(userid, fields)

    def click_xml(
        self, userid: str, task_id: str, key: str, code: str, *, card_type: str = "button_interaction"
    ) -> str:
        """The plaintext WeCom encrypts for a button click on a template card."""
        fields = {
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": key,
            "TaskId": task_id,
            "CardType": card_type,
            "ResponseCode": code,
        }
        return self._xml(userid, fields)

    def _xml(self, userid: str, fields: dict[str, str]) -> str:
        # Events are deduplicated by CreateTime: keep each user's strictly increasing, so two quick
        # clicks are two events, as they are on a phone.
        now = max(int(time.time()), self._staff.last_create.get(userid, 0) + 1)
        self._staff.last_create[userid] = now
        parts = {"ToUserName": self.corp_id, "FromUserName": userid, "CreateTime": str(now), **fields}
        parts["AgentID"] = str(self.agent_id)
        numbers = {"CreateTime", "MsgId", "AgentID"}
        body = "".join(
            f"<{k}>{v}</{k}>" if k in numbers else f"<{k}><![CDATA[{_cdata(v)}]]></{k}>"
            for k, v in parts.items()
        )
        return f"<xml>{body}</xml>"

    def envelope(self, plain: str) -> tuple[dict[str, str], str]:
        """Query string and body of one callback, freshly signed (each retry gets its own nonce)."""
        if self._staff.crypto is None:
            raise RuntimeError("WECOM_AES_KEY is not set: the simulator cannot encrypt callbacks")
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        sealed = xmltodict.parse(self._staff.crypto.encrypt_message(plain, nonce, timestamp))["xml"]
        query = {"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        return query, body

    async def post(self, base_url: str, plain: str) -> Push:
        """One attempt: post `plain` encrypted to <base_url>/wechat/work."""
        query, body = self.envelope(plain)
        url = base_url.rstrip("/") + "/wechat/work"
        async with (
            asyncio.timeout(self.reply_timeout),
            self._client().post(url, params=query, data=body.encode(), headers=_XML) as resp,
        ):
            return Push(resp.status, 1, await resp.text())

    async def deliver(self, base_url: str, userid: str, plain: str) -> Push:
        """Post a callback the way WeCom does: retried (same XML) on a timeout or an error status."""
        status, text, attempt = 0, "", 0
        for attempt in range(1, self.attempts + 1):
            try:
                push = await self.post(base_url, plain)
            except (TimeoutError, aiohttp.ClientError) as exc:
                log.info("wecom callback to %s failed (attempt %d): %r", base_url, attempt, exc)
                continue
            status, text = push.status, push.body
            if status == 200:
                return Push(status, attempt, text)
            if status < 500:  # refused (forged, unreadable): sending it again changes nothing
                break
        if status:
            note = labels.WORK_CALLBACK_FAILED.format(status=status, attempts=attempt)
        else:
            note = labels.WORK_CALLBACK_UNREACHABLE.format(attempts=self.attempts, seconds=self.reply_timeout)
        self._emit(WorkRecord(userid, "system", "notice", {"text": note}))
        return Push(status, attempt, text)

    async def verify_url(self, base_url: str) -> bool:
        """What WeCom does when the callback URL is saved: GET with an encrypted echostr, expecting it
        back decrypted."""
        if self._staff.crypto is None:
            raise RuntimeError("WECOM_AES_KEY is not set")
        timestamp, nonce, echo = str(int(time.time())), secrets.token_hex(5), str(secrets.randbits(63))
        sealed = xmltodict.parse(self._staff.crypto.encrypt_message(echo, nonce, timestamp))["xml"]
        query = {"msg_signature": sealed["MsgSignature"], "timestamp": timestamp, "nonce": nonce}
        url = base_url.rstrip("/") + "/wechat/work"
        async with self._client().get(url, params=query | {"echostr": sealed["Encrypt"]}) as resp:
            answer = await resp.text()
        return resp.status == 200 and answer == echo

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _check_card(card: dict[str, Any]) -> None:
    """What WeCom refuses in a template_card: unknown type; an interactive card without task_id or keys."""
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise ApiError(40058)
    if card_type in INTERACTIVE and not card.get("task_id"):
        raise ApiError(40058)
    if card_type == "button_interaction":
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
            raise ApiError(40058)
        if not all(isinstance(b, dict) and b.get("text") and b.get("key") for b in buttons):
            raise ApiError(40058)


def _button_text(card: dict[str, Any], key: str) -> str:
    for button in card.get("button_list") or []:
        if isinstance(button, dict) and button.get("key") == key:
            return str(button.get("text") or key)
    return key


def _ok(fields: dict[str, Any]) -> web.Response:
    return web.json_response({"errcode": 0, "errmsg": "ok", **fields})


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside CDATA; split it the standard way.
    return value.replace("]]>", "]]]]><![CDATA[>")
