"""A simulator of the Official Account (MP) API over real HTTP, answering in Tencent's JSON shapes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import qrcode
from aiohttp import web
from wechatpy.constants import WeChatErrorCode as E
from yarl import URL

log = logging.getLogger(__name__)

TOKEN_TTL, OLD_TOKEN_GRACE = 7200, 300  # after a refresh the previous token lives 5 more minutes
_MEDIA_TYPES = {"image", "voice", "video", "thumb"}
_CUSTOM_KINDS = {"text", "image", "news"}
_QR_ACTIONS = {"QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"}
# errmsg texts as Tencent sends them (see wechat-samples/api/errors).
# fmt: off
_ERRMSG: dict[int, str] = {
    -1: "system error", 40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type", 40003: "invalid openid", 40004: "invalid media type",
    40007: "invalid media_id", 40008: "invalid message type", 40013: "invalid appid",
    40037: "invalid template_id", 41001: "access_token missing", 41005: "media data missing",
    42001: "access_token expired", 44003: "empty news data", 45009: "api freq out of limit",
    45015: "response out of time limit or subscription is canceled", 46003: "menu no exist",
    47001: "data format error",
}
# API name (as in `calls` and `fail_next`) -> method and path; handled by the method `_<name>`.
_ROUTES = {
    "token": ("GET", "token"), "custom_send": ("POST", "message/custom/send"),
    "template_send": ("POST", "message/template/send"), "qrcode": ("POST", "qrcode/create"),
    "showqrcode": ("GET", "showqrcode"), "media_upload": ("POST", "media/upload"),
    "media_get": ("GET", "media/get"), "menu_create": ("POST", "menu/create"),
    "menu_get": ("GET", "menu/get"), "user_info": ("GET", "user/info"),
    "subscribe_send": ("POST", "message/template/subscribe"),
}
# Served without a token, like Tencent's avatar CDN (thirdwx.qlogo.cn/mmopen/<id>/<size>).
_PUBLIC = {"token", "showqrcode", "avatar"}
_LANGS = {"zh_CN", "zh_TW", "en"}
# fmt: on

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Profile:
    """What user/info tells about one follower; by default nothing, like WeChat since 2021."""

    nickname: str = ""
    avatar: bytes | None = None
    avatar_id: str = ""  # a new id for each picture, as WeChat gives a new headimgurl
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One customer-service or template message the simulator accepted."""

    seq: int
    openid: str
    kind: str  # text | image | news | template | subscribe
    payload: dict[str, Any]
    at: float


class ApiError(Exception):
    """An error answered as Tencent's {"errcode", "errmsg"} body; args[0] is the errcode."""


def _error_body(errcode: int) -> dict[str, Any]:
    rid = "-".join(secrets.token_hex(4) for _ in range(3))  # Tencent's request id, for support tickets
    return {"errcode": errcode, "errmsg": f"{_ERRMSG.get(errcode, 'error')} rid: {rid}"}


class MpSimulator:
    """Stands in for api.weixin.qq.com: tokens, messages, QR codes, media, menus and profiles (with
    their avatar pictures), with fault injection."""

    def __init__(self, app_id: str, app_secret: str) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self.sent: list[SentMessage] = []
        self.listeners: list[Callable[[SentMessage], None]] = []
        self.media: dict[str, tuple[str, bytes]] = {}
        self.menu: dict[str, Any] | None = None
        self.calls: collections.Counter[str] = collections.Counter()
        self.qrcodes: dict[str, dict[str, Any]] = {}  # ticket -> answer + {"scene": {"scene_str"}}
        self.profiles: dict[str, Profile] = {}  # openid -> what user/info answers
        # Tests clear the gate to hold sends in flight (e.g. to crash a worker mid-send).
        self.gate = asyncio.Event()
        self.gate.set()
        self.stalled = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._failures: dict[str, collections.deque[int]] = collections.defaultdict(collections.deque)
        self._closed_windows: set[str] = set()
        self._seq = itertools.count(1)
        self.app = web.Application()
        for api, (method, path) in _ROUTES.items():
            self.app.router.add_route(method, f"/cgi-bin/{path}", self._wrap(api, getattr(self, f"_{api}")))
        self.app.router.add_get("/mmopen/{avatar_id}/{size}", self._wrap("avatar", self._avatar))
        # One-time subscription consents (一次性订阅消息): (openid, template_id, scene) -> sends left.
        self.consents: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.app.router.add_get("/mp/subscribemsg", self._subscribe_page)

    def fail_next(self, api: str, errcode: int, times: int = 1) -> None:
        """Answer the next `times` calls of `api` with `errcode` (500 means an HTTP 500)."""
        self._failures[api].extend([errcode] * times)

    def set_profile(
        self,
        openid: str,
        *,
        nickname: str = "",
        avatar_png: bytes | None = None,
        subscribed: bool = True,
    ) -> None:
        """What user/info answers for `openid`: a nickname, and a headimgurl serving `avatar_png`.

        Any image bytes do for `avatar_png` (JPEG, PNG…); each call gives the picture a new URL."""
        avatar_id = secrets.token_urlsafe(24) if avatar_png else ""
        self.profiles[openid] = Profile(nickname, avatar_png, avatar_id, subscribed)

    def expire_tokens(self) -> None:
        """Make every issued token expire now: its next use answers 42001."""
        self._tokens = dict.fromkeys(self._tokens, time.time())

    def window_closed(self, openid: str) -> None:
        """The person has not written for 48 h: customer-service sends answer 45015."""
        self._closed_windows.add(openid)

    def window_opened(self, openid: str) -> None:
        """The person wrote again, which reopens the 48-hour window."""
        self._closed_windows.discard(openid)

    def _wrap(self, api: str, handler: Handler) -> Handler:
        async def view(request: web.Request) -> web.StreamResponse:
            self.calls[api] += 1
            try:
                if self._failures[api]:
                    raise ApiError(self._failures[api].popleft())
                if api not in _PUBLIC:
                    self._check_token(request.query.get("access_token"))
                return await handler(request)
            except ApiError as exc:
                if exc.args[0] == 500:
                    return web.Response(status=500, text="500 Internal Server Error")
                return web.json_response(_error_body(exc.args[0]))

        return view

    def _check_token(self, token: str | None) -> None:
        expiry = self._tokens.get(token or "")
        if expiry is None or expiry <= time.time():
            bad = E.INVALID_CREDENTIAL if token else E.MISSING_ACCESS_TOKEN
            raise ApiError(bad if expiry is None else E.EXPIRED_ACCESS_TOKEN)

    async def _json(self, request: web.Request) -> dict[str, Any]:
        with contextlib.suppress(ValueError):
            body = json.loads(await request.read())
            if isinstance(body, dict):
                return body
        raise ApiError(47001)  # data format error

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            raise ApiError(E.INVALID_CREDENTIAL_TYPE)
        if q.get("appid") != self.app_id:
            raise ApiError(E.INVALID_APP_ID)
        if not secrets.compare_digest(q.get("secret", "").encode(), self._secret.encode()):
            raise ApiError(E.INVALID_CREDENTIAL)  # the token doc: 40001 = wrong AppSecret
        now = time.time()
        self._tokens = {t: min(exp, now + OLD_TOKEN_GRACE) for t, exp in self._tokens.items() if exp > now}
        token = secrets.token_urlsafe(48)
        self._tokens[token] = now + TOKEN_TTL
        return web.json_response({"access_token": token, "expires_in": TOKEN_TTL})

    async def _accept(self, openid: str, kind: str, payload: dict[str, Any]) -> SentMessage:
        self.stalled += 1
        try:
            await self.gate.wait()
        finally:  # aiohttp cancels the handler when the caller hangs up
            self.stalled -= 1
        msg = SentMessage(next(self._seq), openid, kind, payload, time.time())
        self.sent.append(msg)
        for listener in list(self.listeners):
            try:
                listener(msg)
            except Exception:
                log.exception("sandbox listener failed")
        return msg

    async def _custom_send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        openid, kind = str(body.get("touser") or ""), body.get("msgtype")
        if not openid:
            raise ApiError(E.INVALID_OPENID)
        if kind not in _CUSTOM_KINDS or not isinstance(body.get(kind), dict):
            raise ApiError(E.INVALID_MESSAGE_TYPE)
        if kind == "news" and not body["news"].get("articles"):
            raise ApiError(44003)
        if kind == "image" and body["image"].get("media_id") not in self.media:
            raise ApiError(E.INVALID_MEDIA_ID)
        if openid in self._closed_windows:
            raise ApiError(E.OUT_OF_RESPONSE_TIME_LIMIT)
        await self._accept(openid, kind, body[kind])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        openid = str(body.get("touser") or "")
        if not openid:
            raise ApiError(E.INVALID_OPENID)
        if not body.get("template_id"):
            raise ApiError(E.INVALID_TEMPLATE)
        payload: dict[str, Any] = {k: body[k] for k in ("template_id", "url", "data") if k in body}
        msg = await self._accept(openid, "template", payload)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": 200228000 + msg.seq})

    def grant_subscription(self, openid: str, template_id: str, scene: str) -> None:
        """The person tapped 允许 on the authorisation page: one subscribe send becomes possible."""
        self.consents[(openid, template_id, scene)] += 1

    async def _subscribe_page(self, request: web.Request) -> web.StreamResponse:
        """mp.weixin.qq.com/mp/subscribemsg?action=get_confirm…: WeChat's authorisation page. The real
        page knows who is looking; here the console (or a test) says so with `openid`, and `decline`."""
        q = request.query
        needed = ("action", "appid", "scene", "template_id", "redirect_url", "openid")
        if q.get("action") != "get_confirm" or any(not q.get(k) for k in needed) or q["appid"] != self.app_id:
            raise web.HTTPBadRequest(text="bad subscribemsg request")
        action = "cancel" if q.get("decline") else "confirm"
        if action == "confirm":
            self.grant_subscription(q["openid"], q["template_id"], q["scene"])
        back = {k: q[k] for k in ("openid", "template_id", "scene")} | {"action": action}
        back["reserved"] = q.get("reserved", "")
        target = URL(q["redirect_url"]).update_query(back)
        raise web.HTTPFound(str(target))

    async def _subscribe_send(self, request: web.Request) -> web.Response:
        """message/template/subscribe: one send per consent (43101 without one)."""
        body = await self._json(request)
        openid, template_id = str(body.get("touser") or ""), str(body.get("template_id") or "")
        key = (openid, template_id, str(body.get("scene", "")))
        if not openid:
            raise ApiError(E.INVALID_OPENID)
        if self.consents[key] <= 0 or not isinstance(body.get("data"), dict):
            raise ApiError(43101)  # the user refused (or never accepted) this subscription
        self.consents[key] -= 1
        fields = ("template_id", "scene", "title", "url", "data")
        payload: dict[str, Any] = {k: body[k] for k in fields if k in body}
        await self._accept(openid, "subscribe", payload)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _qrcode(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if body.get("action_name") not in _QR_ACTIONS:
            raise ApiError(47001)
        ticket, code = secrets.token_urlsafe(60), secrets.token_urlsafe(18)
        answer: dict[str, Any] = {"ticket": ticket, "url": f"https://weixin.qq.com/q/{code}"}
        if not body["action_name"].startswith("QR_LIMIT"):
            answer["expire_seconds"] = int(body.get("expire_seconds", 60))
        self.qrcodes[ticket] = {**answer, "scene": body.get("action_info", {}).get("scene", {})}
        return web.json_response(answer)

    async def _showqrcode(self, request: web.Request) -> web.Response:
        if (found := self.qrcodes.get(request.query.get("ticket", ""))) is None:
            raise web.HTTPNotFound()
        png = await asyncio.to_thread(_png, found["url"])  # drawing is CPU work: keep it off the loop
        return web.Response(body=png, content_type="image/png")

    async def _media_upload(self, request: web.Request) -> web.Response:
        kind = request.query.get("type", "")
        if kind not in _MEDIA_TYPES:
            raise ApiError(E.INVALID_MEDIA_TYPE)
        field = (await request.post()).get("media")
        if not isinstance(field, web.FileField):
            raise ApiError(E.MISSING_MEDIA_DATA)
        media_id = secrets.token_urlsafe(48)
        self.media[media_id] = (field.content_type or "application/octet-stream", field.file.read())
        return web.json_response({"type": kind, "media_id": media_id, "created_at": int(time.time())})

    async def _media_get(self, request: web.Request) -> web.Response:
        media_id = request.query.get("media_id", "")
        if media_id not in self.media:
            raise ApiError(E.INVALID_MEDIA_ID)
        content_type, data = self.media[media_id]
        headers = {"Content-disposition": f'attachment; filename="{media_id}"'}
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def _user_info(self, request: web.Request) -> web.Response:
        openid = request.query.get("openid", "")
        if not openid or len(openid) > 64:
            raise ApiError(E.INVALID_OPENID)
        profile = self.profiles.get(openid, Profile())
        lang = request.query.get("lang", "zh_CN")
        if not profile.subscribed:  # an unsubscribed person: WeChat tells only that
            return web.json_response({"subscribe": 0, "openid": openid, "tagid_list": []})
        answer: dict[str, Any] = {
            "subscribe": 1,
            "openid": openid,
            "language": lang if lang in _LANGS else "zh_CN",
            "subscribe_time": int(time.time()) - 86400,
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
            "qr_scene": 0,
            "qr_scene_str": "",
        }
        if profile.nickname:
            answer["nickname"] = profile.nickname
        if profile.avatar_id:
            # Absolute, on this simulator wherever it is mounted (the sandbox puts it under /sandbox/mp/).
            root = request.path[: -len("cgi-bin/user/info")]
            answer["headimgurl"] = str(request.url.origin()) + f"{root}mmopen/{profile.avatar_id}/132"
        # WeChat sends Chinese as raw UTF-8, not \uXXXX escapes.
        return web.json_response(answer, dumps=lambda v: json.dumps(v, ensure_ascii=False))

    async def _avatar(self, request: web.Request) -> web.Response:
        wanted = request.match_info["avatar_id"]
        found = next((p.avatar for p in self.profiles.values() if p.avatar_id == wanted and p.avatar), None)
        if found is None:
            raise web.HTTPNotFound()
        content_type = "image/png" if found.startswith(b"\x89PNG") else "image/jpeg"
        return web.Response(body=found, content_type=content_type)

    async def _menu_create(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        if not isinstance(body.get("button"), list) or not body["button"]:
            raise ApiError(47001)
        self.menu = body
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _menu_get(self, request: web.Request) -> web.Response:
        if self.menu is None:
            raise ApiError(E.MENU_NO_EXIST)
        return web.json_response({"menu": self.menu})


def _png(url: str) -> bytes:
    buf = io.BytesIO()
    qrcode.make(url).save(buf)
    return buf.getvalue()
