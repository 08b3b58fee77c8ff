"""Async client of the Official Account (MP) API: every failure raises, nothing comes back empty."""

from __future__ import annotations

import json
import logging
import mimetypes
from typing import Any

import aiohttp
from wechatpy.constants import WeChatErrorCode
from wechatpy.exceptions import WeChatClientException

from bot.channels.http import read_capped
from bot.channels.tokens import TokenStore
from settings import Settings
from store.outbox import Outgoing

log = logging.getLogger(__name__)

NETWORK_ERROR = -2  # no answer: connection refused, reset, timeout
BAD_RESPONSE = -3  # an answer that is not the JSON WeChat documents
TIMEOUT = aiohttp.ClientTimeout(total=10)
# A WeChat avatar (headimgurl) is a 132 px JPEG of a few KB, 640 px at most: anything far bigger is not one.
MAX_AVATAR = 2 * 1024 * 1024
AVATAR_TIMEOUT = aiohttp.ClientTimeout(total=5)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_TOKEN_ERRORS = {WeChatErrorCode.INVALID_CREDENTIAL, WeChatErrorCode.EXPIRED_ACCESS_TOKEN}
_RETRYABLE = {
    WeChatErrorCode.SYSTEM_BUSY,
    WeChatErrorCode.OUT_OF_API_FREQ_LIMIT,
    WeChatErrorCode.API_MINUTE_QUOTA_REACH_LIMIT,
    NETWORK_ERROR,
    BAD_RESPONSE,
    *_TOKEN_ERRORS,  # reaching a caller means the one refresh already failed: try again later
}


class WeChatApiError(WeChatClientException):
    """An MP API call that did not succeed; `errcode` is Tencent's, or -2/-3/HTTP status."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errcode, errmsg)
        self.errcode: int = errcode
        self.errmsg: str = errmsg

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (busy, rate limit, network, 5xx)."""
        return self.errcode in _RETRYABLE or 500 <= self.errcode < 600  # HTTP 5xx


class MpClient:
    """The Official Account API on a shared aiohttp session, with the token from a TokenStore."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings, tokens: TokenStore) -> None:
        self._http = http
        self._settings = settings
        self._tokens = tokens
        self._base = settings.wechat_api_base

    async def send_text(self, openid: str, content: str) -> None:
        """A customer-service text (only within 48 h of the person's last message)."""
        await self._custom(openid, "text", {"content": content})

    async def send_image(self, openid: str, media_id: str) -> None:
        """A customer-service image, by the media_id of an upload."""
        await self._custom(openid, "image", {"media_id": media_id})

    async def send_news(self, openid: str, articles: list[dict[str, Any]]) -> None:
        """A customer-service link card (title, description, url, picurl)."""
        await self._custom(openid, "news", {"articles": articles})

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any], url: str | None = None
    ) -> None:
        """A template message: the only kind that reaches a person outside the 48-hour window."""
        body: dict[str, Any] = {"touser": openid, "template_id": template_id, "data": data}
        if url:
            body["url"] = url
        await self._call("POST", "message/template/send", json_body=body)

    async def send_subscribe(self, openid: str, payload: dict[str, Any]) -> None:
        """A one-time subscription message (一次性订阅消息): one send per consent the person gave on
        the subscribemsg page; reaches them outside the 48-hour window. Payload: template_id, scene,
        title, data {"content": {"value"}}, url (optional)."""
        await self._call("POST", "message/template/subscribe", json_body={"touser": openid, **payload})

    async def upload_media(self, kind: str, filename: str, data: bytes) -> str:
        """Upload temporary media (kept 3 days by WeChat) and return its media_id."""
        form = aiohttp.FormData()
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        form.add_field("media", data, filename=filename, content_type=content_type)
        body = await self._call("POST", "media/upload", params={"type": kind}, form=form)
        return _field(body, "media_id")

    async def get_media(self, media_id: str) -> bytes:
        """The bytes of temporary media (e.g. an image a person sent)."""
        result = await self._call("GET", "media/get", params={"media_id": media_id}, raw=True)
        assert isinstance(result, bytes)
        return result

    async def create_qrcode(
        self, scene_str: str, *, permanent: bool = True, expire_seconds: int = 2592000
    ) -> dict[str, Any]:
        """A parametric QR code for `scene_str`: {"ticket", "url"} (+ "expire_seconds" if temporary)."""
        if not 1 <= len(scene_str) <= 64:
            raise ValueError("scene_str must be 1 to 64 characters (WeChat's limit)")
        body: dict[str, Any] = {
            "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene_str}},
        }
        if not permanent:
            body["expire_seconds"] = expire_seconds
        answer = await self._call("POST", "qrcode/create", json_body=body)
        result = {"ticket": _field(answer, "ticket"), "url": _field(answer, "url")}
        if "expire_seconds" in answer:
            result["expire_seconds"] = answer["expire_seconds"]
        return result

    async def user_info(self, openid: str) -> dict[str, Any]:
        """The follower's profile (user/info); "nickname" and "headimgurl" are "" when WeChat gives none.

        Since December 2021 WeChat leaves both out for almost everyone: callers must cope without."""
        if not openid:
            raise ValueError("user_info needs an openid")
        body = await self._call("GET", "user/info", params={"openid": openid, "lang": "zh_CN"})
        for name in ("nickname", "headimgurl"):
            value = body.get(name)
            body[name] = value.strip() if isinstance(value, str) else ""
        return body

    async def fetch_avatar(self, url: str) -> bytes | None:
        """The picture at a headimgurl (no token: it is a public CDN), or None if it is not one.

        Never raises: a poster is drawn with a placeholder rather than not at all."""
        if not url.startswith(("https://", "http://")):
            return None
        try:
            async with self._http.get(url, timeout=AVATAR_TIMEOUT, allow_redirects=True) as resp:
                status, data = resp.status, await read_capped(resp, MAX_AVATAR)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.info("avatar download failed: %r", exc)
            return None
        if status != 200 or len(data) > MAX_AVATAR or not _is_image(data):
            log.info("avatar ignored: HTTP %s, %d bytes, image=%s", status, len(data), _is_image(data))
            return None
        return data

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu."""
        await self._call("POST", "menu/create", json_body=menu)

    async def check_credentials(self) -> None:
        """Obtain (or reuse) an access token: proves the AppID, secret and IP whitelist work."""
        await self._token()

    async def send(self, msg: Outgoing) -> None:
        """Deliver one outbox message by its kind."""
        p = msg.payload
        match msg.kind:
            case "text":
                await self.send_text(msg.recipient, p["content"])
            case "image":
                await self.send_image(msg.recipient, p["media_id"])
            case "news":
                await self.send_news(msg.recipient, p["articles"])
            case "template":
                await self.send_template(msg.recipient, p["template_id"], p["data"], p.get("url"))
            case "subscribe":
                await self.send_subscribe(msg.recipient, p)
            case _:
                raise ValueError(f"mp cannot send kind {msg.kind!r}")

    async def _custom(self, openid: str, kind: str, content: dict[str, Any]) -> None:
        body = {"touser": openid, "msgtype": kind, kind: content}
        await self._call("POST", "message/custom/send", json_body=body)

    async def _fetch_token(self) -> tuple[str, int]:
        params = {
            "grant_type": "client_credential",
            "appid": self._settings.wechat_app_id,
            "secret": self._settings.wechat_app_secret.get_secret_value(),
        }
        body = await self._request("GET", "token", params=params)
        assert isinstance(body, dict)
        return _field(body, "access_token"), int(body.get("expires_in", 7200))

    async def _token(self) -> str:
        try:
            return await self._tokens.get(self._fetch_token)
        except TimeoutError as exc:
            raise WeChatApiError(NETWORK_ERROR, str(exc)) from exc

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
        raw: bool = False,
    ) -> Any:
        for attempt in (1, 2):
            token = await self._token()
            query = {**(params or {}), "access_token": token}
            try:
                return await self._request(
                    method, path, params=query, json_body=json_body, form=form, raw=raw
                )
            except WeChatApiError as exc:
                if exc.errcode not in _TOKEN_ERRORS or attempt == 2:
                    raise
                # Drop only the token we used: another worker may already have stored a newer one.
                log.info("access token rejected (%s); refreshing once", exc.errcode)
                await self._tokens.invalidate(token)
        raise AssertionError("unreachable")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str],
        json_body: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
        raw: bool = False,
    ) -> Any:
        data: Any = form
        headers = {}
        if json_body is not None:
            # WeChat shows \uXXXX escapes literally, so Chinese must go as raw UTF-8 (as wechatpy does).
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._http.request(
                method, self._base + path, params=params, data=data, headers=headers, timeout=TIMEOUT
            ) as resp:
                if resp.status >= 400:
                    raise WeChatApiError(resp.status, f"HTTP {resp.status} from {path}")
                payload = await resp.read()
                if raw and not _is_json(resp.content_type):
                    return payload
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WeChatApiError(NETWORK_ERROR, f"{path}: {exc!r}") from exc
        return _parse(path, payload)


def _is_json(content_type: str) -> bool:
    # Errors of media/get come back as JSON labelled text/plain.
    return content_type in ("application/json", "text/plain")


def _is_image(data: bytes | bytearray) -> bool:
    # By the first bytes, not the Content-Type: a CDN error page often says image/jpeg.
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _parse(path: str, payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except ValueError:
        raise WeChatApiError(BAD_RESPONSE, f"{path}: answer is not JSON") from None
    if not isinstance(body, dict):
        raise WeChatApiError(BAD_RESPONSE, f"{path}: answer is not a JSON object")
    errcode = body.get("errcode", 0)
    if errcode:
        raise WeChatApiError(int(errcode), str(body.get("errmsg", "")))
    return body


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise WeChatApiError(BAD_RESPONSE, f"answer has no {name!r}")
    return value
