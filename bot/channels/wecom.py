"""Async client of the WeCom (企业微信) app API: app messages, images, template cards and their updates.

wechatpy has no template-card support, so the card messages and `update_template_card` are ours. Every
failure raises WeComApiError (a WeChatApiError), which the outbox dispatcher retries or gives up on.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.mp import WeChatApiError
from bot.channels.tokens import DbTokenStore, RedisTokenStore, TokenStore
from settings import Settings
from store.outbox import Outgoing

log = logging.getLogger(__name__)

NETWORK_ERROR = -2  # no answer: connection refused, reset, timeout
BAD_RESPONSE = -3  # an answer that is not the JSON WeCom documents
TIMEOUT = aiohttp.ClientTimeout(total=10)
# 40014 invalid access_token, 42001 expired, 40001 invalid credential: refresh the token once.
TOKEN_ERRORS = {40014, 42001, 40001}
# -1 system busy, 45009 frequency limit, 45033 too many concurrent calls; token errors once refreshed.
_RETRYABLE = {-1, 45009, 45033, *TOKEN_ERRORS}


class WeComApiError(WeChatApiError):
    """A WeCom API call that did not succeed; `errcode` is Tencent's, or -2/-3/HTTP status."""

    @property
    def retryable(self) -> bool:
        return self.errcode in _RETRYABLE or super().retryable


@dataclass(frozen=True, slots=True)
class Sent:
    """What message/send answers: the msgid, and for interactive cards a one-time response_code."""

    msgid: str
    response_code: str = ""
    invalid_users: tuple[str, ...] = ()


# Told of each interactive card the outbox delivered: (task_id, what message/send answered).
CardSent = Callable[[str, Sent], Awaitable[None]]


def make_wecom_token_store(
    settings: Settings, redis: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> TokenStore:
    """The app's token, shared like the MP one (each app of a corp has its own secret and token)."""
    key = f"wecom:{settings.wecom_corp_id}:{settings.wecom_agent_id}:access_token"
    if redis is not None:
        return RedisTokenStore(redis, key)
    return DbTokenStore(sessionmaker, key)


class WeComClient:
    """The WeCom app API on a shared aiohttp session, with the token from a TokenStore."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings, tokens: TokenStore) -> None:
        self._http = http
        self._settings = settings
        self._tokens = tokens
        self._base = settings.wecom_api_base
        agent = settings.wecom_agent_id
        # WeCom's JSON carries agentid as a number.
        self.agent_id: int | str = int(agent) if agent.isdigit() else agent
        # The send's response_code is the only way to update a card nobody clicked (e.g. taken by a
        # typed command); whoever needs it (the staff desk) sets this hook.
        self.on_card_sent: CardSent | None = None

    async def send_text(self, touser: str, content: str) -> Sent:
        """A text app message to one userid or several ("a|b|c")."""
        return await self._send(touser, "text", {"content": content})

    async def send_markdown(self, touser: str, content: str) -> Sent:
        """A markdown app message (WeCom's subset: headings, bold, links, <font color>)."""
        return await self._send(touser, "markdown", {"content": content})

    async def send_image(self, touser: str, media_id: str) -> Sent:
        """An image app message, by the media_id of an upload (media/upload)."""
        return await self._send(touser, "image", {"media_id": media_id})

    async def upload_media(self, kind: str, filename: str, data: bytes) -> str:
        """Upload temporary media (WeCom keeps it 3 days) and return its media_id."""
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        def form() -> aiohttp.FormData:  # a FormData is spent by one request: one per attempt
            made = aiohttp.FormData()
            made.add_field("media", data, filename=filename, content_type=content_type)
            return made

        body = await self._call("media/upload", query={"type": kind}, form=form)
        media_id = body.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeComApiError(BAD_RESPONSE, "media/upload: answer has no media_id")
        return media_id

    async def send_template_card(self, touser: str, card: dict[str, Any]) -> Sent:
        """A template card; button cards answer with a response_code for update_template_card."""
        return await self._send(touser, "template_card", card)

    async def update_template_card(
        self,
        *,
        response_code: str,
        userids: list[str] | None = None,
        atall: bool = False,
        replace_name: str | None = None,
        template_card: dict[str, Any] | None = None,
    ) -> None:
        """Change a sent card once per response_code (72 h): its buttons to `replace_name`, or the whole card.

        Without `userids` every recipient's copy is updated (atall), so all see who acted.
        """
        if (replace_name is None) == (template_card is None):
            raise ValueError("give exactly one of replace_name and template_card")
        body: dict[str, Any] = {"agentid": self.agent_id, "response_code": response_code}
        if userids and not atall:
            body["userids"] = list(userids)
        else:
            body["atall"] = 1
        if template_card is not None:
            body["template_card"] = template_card
        else:
            body["button"] = {"replace_name": replace_name}
        await self._call("message/update_template_card", body)

    async def check_credentials(self) -> None:
        """Obtain (or reuse) an access token: proves the CorpID, secret and IP whitelist work."""
        await self._token()

    async def send(self, msg: Outgoing) -> None:
        """Deliver one outbox message of channel 'wecom' by its kind."""
        p = msg.payload
        match msg.kind:
            case "text":
                await self.send_text(msg.recipient, p["content"])
            case "markdown":
                await self.send_markdown(msg.recipient, p["content"])
            case "image":
                # A picture drawn by us travels in the outbox as base64 and is uploaded when sent:
                # a media_id lives 3 days, longer than any retry, but not than a queued message.
                media_id = p.get("media_id") or await self.upload_media(
                    "image", p.get("filename") or "image.png", base64.b64decode(p["base64"])
                )
                await self.send_image(msg.recipient, media_id)
            case "template_card":
                card = p["template_card"]
                await self._card_sent(
                    str(card.get("task_id") or ""), await self.send_template_card(msg.recipient, card)
                )
            case "card_update":
                await self.update_template_card(
                    response_code=p["response_code"],
                    userids=p.get("userids"),
                    atall=bool(p.get("atall")),
                    replace_name=(p.get("button") or {}).get("replace_name"),
                    template_card=p.get("template_card"),
                )
            case _:
                raise ValueError(f"wecom cannot send kind {msg.kind!r}")

    async def _card_sent(self, task_id: str, sent: Sent) -> None:
        if self.on_card_sent is None or not sent.response_code:
            return
        try:
            await self.on_card_sent(task_id, sent)
        except Exception:
            # The card is delivered: raising would make the outbox send it a second time.
            log.exception("on_card_sent failed for task %s", task_id)

    async def _send(self, touser: str, kind: str, content: dict[str, Any]) -> Sent:
        if not touser:
            raise ValueError("no recipient")
        body = {"touser": touser, "msgtype": kind, "agentid": self.agent_id, kind: content}
        answer = await self._call("message/send", body)
        invalid = tuple(u for u in str(answer.get("invaliduser") or "").split("|") if u)
        if invalid:
            # Partly delivered is still delivered: retrying would repeat it to the others.
            log.warning("wecom message/send: unknown or out-of-scope users %s", "|".join(invalid))
        return Sent(str(answer.get("msgid", "")), str(answer.get("response_code") or ""), invalid)

    async def _fetch_token(self) -> tuple[str, int]:
        params = {
            "corpid": self._settings.wecom_corp_id,
            "corpsecret": self._settings.wecom_secret.get_secret_value(),
        }
        body = await self._request("GET", "gettoken", params=params)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComApiError(BAD_RESPONSE, "gettoken: answer has no access_token")
        return token, int(body.get("expires_in", 7200))

    async def _token(self) -> str:
        try:
            return await self._tokens.get(self._fetch_token)
        except TimeoutError as exc:
            raise WeComApiError(NETWORK_ERROR, str(exc)) from exc

    async def _call(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            token = await self._token()
            params = {"access_token": token, **(query or {})}
            try:
                return await self._request(
                    "POST", path, params=params, json_body=body, form=form() if form else None
                )
            except WeComApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                # Drop only the token we used: another worker may already have stored a newer one.
                log.info("wecom access token rejected (%s); refreshing once", exc.errcode)
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
    ) -> dict[str, Any]:
        data: bytes | aiohttp.FormData | None = form
        headers: dict[str, str] = {}
        if json_body is not None:
            # Chinese goes as raw UTF-8: \uXXXX escapes would be shown literally.
            data = json.dumps(json_body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._http.request(
                method, self._base + path, params=params, data=data, headers=headers, timeout=TIMEOUT
            ) as resp:
                if resp.status >= 400:
                    raise WeComApiError(resp.status, f"HTTP {resp.status} from {path}")
                payload = await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WeComApiError(NETWORK_ERROR, f"{path}: {exc!r}") from exc
        return _parse(path, payload)


def _parse(path: str, payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except ValueError:
        raise WeComApiError(BAD_RESPONSE, f"{path}: answer is not JSON") from None
    if not isinstance(body, dict):
        raise WeComApiError(BAD_RESPONSE, f"{path}: answer is not a JSON object")
    errcode = body.get("errcode", 0)
    if errcode:
        raise WeComApiError(int(errcode), str(body.get("errmsg", "")))
    return body
