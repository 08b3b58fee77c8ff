"""A test stand-in for WeChat's servers: builds signed (and encrypted) callbacks, reads replies."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

from bot.sandbox.state import parse_reply
from webhooks.crypto import sign

TOKEN = "testtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
ACCOUNT = "gh_test_account"

_msg_ids = itertools.count(6054768590064713728)


def text_xml(openid: str, content: str, *, msg_id: int | None = None, at: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{at or int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id or next(_msg_ids)}</MsgId></xml>"
    )


def event_xml(openid: str, event: str, key: str = "", *, at: int | None = None) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{at or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


@dataclass
class Answer:
    status: int
    body: str
    reply: dict[str, Any] | None  # the decrypted passive reply's <xml>, None for `success`
    xml: str | None = None  # that reply as WeChat reads it

    @property
    def text(self) -> str | None:
        return None if self.reply is None else self.reply.get("Content")

    @property
    def message(self) -> tuple[str, dict[str, Any]] | None:
        """The passive reply as (kind, payload), shaped like the MP send API's JSON."""
        return None if self.xml is None else parse_reply(self.xml)


class WeChat:
    """Posts callbacks the way WeChat does, in plain, compatible or safe mode."""

    def __init__(self, client: TestClient, *, mode: str = "safe", token: str = TOKEN) -> None:
        self.client = client
        self.mode = mode
        self.token = token
        self.crypto = WeChatCrypto(token, AES_KEY, APP_ID)

    def request(self, xml: str) -> tuple[dict[str, str], str]:
        ts, nonce = str(int(time.time())), "nonce" + str(next(_msg_ids))[-6:]
        query = {"timestamp": ts, "nonce": nonce, "signature": sign(self.token, ts, nonce), "openid": "x"}
        if self.mode == "plain":
            return query, xml
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
        encrypt = envelope["Encrypt"]
        if self.mode == "safe":
            return (
                query,
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
            )
        return query, xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")

    async def post(self, xml: str, *, query: dict[str, str] | None = None, body: str | None = None) -> Answer:
        q, b = self.request(xml)
        resp = await self.client.post(
            "/wechat/mp", params=query or q, data=(body if body is not None else b).encode()
        )
        return await self._answer(resp.status, await resp.text(), query or q)

    async def _answer(self, status: int, body: str, query: dict[str, str]) -> Answer:
        if status != 200 or body in ("", "success"):
            return Answer(status, body, None)
        if query.get("encrypt_type") == "aes":
            envelope = xmltodict.parse(body)["xml"]
            plain = self.crypto.decrypt_message(
                body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )
            return Answer(status, body, xmltodict.parse(plain)["xml"], plain)
        return Answer(status, body, xmltodict.parse(body)["xml"], body)

    async def say(self, openid: str, content: str) -> Answer:
        return await self.post(text_xml(openid, content))

    async def event(self, openid: str, event: str, key: str = "", *, at: int | None = None) -> Answer:
        return await self.post(event_xml(openid, event, key, at=at))
