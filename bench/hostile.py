"""Hostile but correctly signed requests for the four callback endpoints (bench/fuzz.py, the tests).

A request starts from a valid document for its endpoint and goes through a list of mutations — a
field repeated, nested, dropped, made absurd; a DTD added; the body re-encoded as UTF-16/UTF-32;
the root renamed; the document cut short — then is signed (and encrypted) with the right keys, as
someone holding the keys, or replaying a signed URL, could send it. The server must answer every
one of them without a 5xx, and change nothing unless the result is still a valid request.

Mutations are plain data (`Mutation`) so that the fuzzer draws them with `random` and the property
test with hypothesis (which then shrinks a failure to its smallest form).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from wechatpy.crypto import RefundCrypto, WeChatCrypto
from wechatpy.pay.utils import calculate_signature
from wechatpy.work.crypto import WeChatCrypto as WorkCrypto

from webhooks.crypto import sign

# A document: its elements in order; a value is text, a list (the element repeated) or a dict (nested).
Value = str | list[Any] | dict[str, Any]
Doc = list[tuple[str, Value]]

ENDPOINTS = ("/wechat/mp", "/wechat/work", "/pay/wechat/notify", "/pay/wechat/refund-notify")


@dataclass(frozen=True)
class Keys:
    """The secrets of the deployment under test (the fuzzer's server and the tests use the same)."""

    mp_token: str = "fuzztoken"
    mp_aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    app_id: str = "wx2c2769f8efd9abc2"
    account: str = "gh_fuzz_account"
    work_token: str = "worktoken"
    work_aes_key: str = "ZGVtby13ZWNvbS10ZXN0LWtleS0zMi1ieXRlcyEhISE"
    corp_id: str = "ww0123456789abcdef"
    agent_id: str = "1000002"
    mch_id: str = "1900000109"
    pay_key: str = "8934e7d15453e97507ef794cf7b0519d"

    def env(self) -> dict[str, str]:
        """The settings a server needs to accept these requests (as environment variables)."""
        return {
            "WECHAT_APP_ID": self.app_id,
            "WECHAT_APP_SECRET": "fuzz-secret",
            "WECHAT_TOKEN": self.mp_token,
            "WECHAT_AES_KEY": self.mp_aes_key,
            "WECOM_CORP_ID": self.corp_id,
            "WECOM_AGENT_ID": self.agent_id,
            "WECOM_SECRET": "fuzz-wecom-secret",
            "WECOM_TOKEN": self.work_token,
            "WECOM_AES_KEY": self.work_aes_key,
            "WECHATPAY_MCH_ID": self.mch_id,
            "WECHATPAY_API_KEY": self.pay_key,
        }


# --- valid documents --------------------------------------------------------------------------------


def mp_text(keys: Keys, openid: str, content: str, msg_id: int) -> Doc:
    return [
        ("ToUserName", keys.account),
        ("FromUserName", openid),
        ("CreateTime", str(int(time.time()))),
        ("MsgType", "text"),
        ("Content", content),
        ("MsgId", str(msg_id)),
    ]


def mp_event(keys: Keys, openid: str, event: str, key: str) -> Doc:
    return [
        ("ToUserName", keys.account),
        ("FromUserName", openid),
        ("CreateTime", str(int(time.time()))),
        ("MsgType", "event"),
        ("Event", event),
        ("EventKey", key),
    ]


def work_text(keys: Keys, userid: str, content: str, msg_id: int) -> Doc:
    return [
        ("ToUserName", keys.corp_id),
        ("FromUserName", userid),
        ("CreateTime", str(int(time.time()))),
        ("MsgType", "text"),
        ("Content", content),
        ("MsgId", str(msg_id)),
        ("AgentID", keys.agent_id),
    ]


def pay_result(keys: Keys, out_trade_no: str, transaction_id: str, fee: int) -> Doc:
    return [
        ("appid", keys.app_id),
        ("mch_id", keys.mch_id),
        ("nonce_str", secrets.token_hex(16)),
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("openid", "o_fuzz_payer"),
        ("trade_type", "NATIVE"),
        ("bank_type", "OTHERS"),
        ("total_fee", str(fee)),
        ("cash_fee", str(fee)),
        ("transaction_id", transaction_id),
        ("out_trade_no", out_trade_no),
        ("time_end", "20261122152550"),
    ]


def refund_result(keys: Keys, out_refund_no: str, fee: int) -> Doc:
    """The decrypted `req_info` of a refund notification."""
    return [
        ("out_refund_no", out_refund_no),
        ("out_trade_no", "fuzz-trade"),
        ("refund_id", "50000000382019052709732678859"),
        ("transaction_id", "4200000540202005267407409907"),
        ("total_fee", str(fee)),
        ("refund_fee", str(fee)),
        ("refund_status", "SUCCESS"),
        ("success_time", "2026-11-22 15:30:00"),
    ]


# --- mutations --------------------------------------------------------------------------------------

# A mutation: (operation, field index, value). The index picks a field modulo the document's length.
Mutation = tuple[str, int, str]
OPERATIONS = ("repeat", "nest", "drop", "set", "add", "empty")
# Whole-body transformations, applied after the document is serialized (and before it is signed).
BODY_OPERATIONS = ("dtd", "entity", "utf16_dtd", "utf32_dtd", "utf16", "wrong_root", "truncate", "garbage")
ABSURD = (
    "",
    " ",
    "-1",
    "0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "１２３",
    "x" * 300,
    "😀" * 40,
    "\u202e\u0000",
    "]]>",
    "<b>",
    "&amp;",
    "qrscene_" + "9" * 300,
    "SUCCESS",
    "FAIL",
    "event",
    "text",
)


def mutate(doc: Doc, mutations: list[Mutation]) -> Doc:
    out = list(doc)
    for op, index, value in mutations:
        if not out:
            out.append(("xml", value))
            continue
        i = index % len(out)
        name, old = out[i]
        if op == "repeat":
            out.insert(i + 1, (name, old if isinstance(old, str) else value))
        elif op == "nest":
            out[i] = (name, {"item": old if isinstance(old, str) else value, "Other": value})
        elif op == "drop":
            del out[i]
        elif op == "set":
            out[i] = (name, value)
        elif op == "add":
            out.insert(i, (value[:20].strip("<>&]!\"' ").replace(" ", "_") or "Extra", value))
        elif op == "empty":
            out[i] = (name, "")
    return out


def _element(name: str, value: Value) -> str:
    tag = name if _valid_tag(name) else "Bad"
    if isinstance(value, dict):
        return f"<{tag}>" + "".join(_element(k, v) for k, v in value.items()) + f"</{tag}>"
    if isinstance(value, list):
        return "".join(_element(name, v) for v in value)
    return f"<{tag}><![CDATA[{value.replace(']]>', ']]]]><![CDATA[>')}]]></{tag}>"


def _valid_tag(name: str) -> bool:
    return (
        bool(name) and (name[0].isalpha() or name[0] == "_") and all(c.isalnum() or c in "_-." for c in name)
    )


def to_xml(doc: Doc, root: str = "xml") -> str:
    # Repeated names stay separate elements: that is the "repeated element" case itself.
    return f"<{root}>" + "".join(_element(k, v) for k, v in doc) + f"</{root}>"


def transform(xml: str, op: str) -> bytes:
    """One whole-body attack on serialized XML."""
    if op == "dtd":
        return ('<?xml version="1.0"?><!DOCTYPE xml [<!ELEMENT xml ANY>]>' + xml).encode()
    if op == "entity":
        bomb = '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        return (bomb + xml.replace("<xml>", "<xml><Bomb>&b;</Bomb>", 1)).encode()
    if op == "utf16_dtd":
        head = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY x "y">]>'
        return (head + xml.replace("<xml>", "<xml><X>&x;</X>", 1)).encode("utf-16")
    if op == "utf32_dtd":
        head = '<?xml version="1.0" encoding="UTF-32"?><!DOCTYPE xml [<!ENTITY x "y">]>'
        return (head + xml.replace("<xml>", "<xml><X>&x;</X>", 1)).encode("utf-32")
    if op == "dtd_after_root":  # the root first (no prolog), a declaration and its entity inside it
        return xml.replace("<xml>", '<xml><!DOCTYPE xml [<!ENTITY x "y">]><X>&x;</X>', 1).encode()
    if op == "cp037_dtd":  # an ASCII declaration switching to a single-byte encoding a byte search misses
        head = '<!DOCTYPE xml [<!ENTITY x "y">]>' + xml.replace("<xml>", "<xml><X>&x;</X>", 1)
        return b'<?xml version="1.0" encoding="cp037"?>' + head.encode("cp037", "xmlcharrefreplace")
    if op == "utf16":
        return ('<?xml version="1.0" encoding="UTF-16"?>' + xml).encode("utf-16")
    if op == "wrong_root":
        return xml.replace("<xml>", "<root>", 1).replace("</xml>", "</root>").encode()
    if op == "truncate":
        return xml[: max(1, len(xml) // 2)].encode()
    return b"\x00\xff<<xml>" + xml.encode()[::-1]


# --- signing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str  # with the query string
    body: bytes


def mp_request(
    keys: Keys, body: bytes | str, *, timestamp: int | None = None, encrypt: bool = True
) -> Request:
    """An Official Account callback in safe mode: `body` is the plaintext message, encrypted and signed
    (when it is not UTF-8 text it is sent as the envelope itself, signed)."""
    ts, nonce = str(timestamp if timestamp is not None else int(time.time())), secrets.token_hex(5)
    query = {"signature": sign(keys.mp_token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o_fuzz"}
    if not encrypt:
        data = body.encode() if isinstance(body, str) else body
        return Request("/wechat/mp?" + urlencode(query), data)
    if isinstance(body, bytes):  # a hostile envelope
        query |= {"encrypt_type": "aes", "msg_signature": sign(keys.mp_token, ts, nonce, "")}
        return Request("/wechat/mp?" + urlencode(query), body)
    crypto = WeChatCrypto(keys.mp_token, keys.mp_aes_key, keys.app_id)
    sealed = crypto.encrypt_message(body, nonce, ts)
    encrypt_text = sealed.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    query |= {"encrypt_type": "aes", "msg_signature": sign(keys.mp_token, ts, nonce, encrypt_text)}
    envelope = (
        f"<xml><ToUserName><![CDATA[{keys.account}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt_text}]]></Encrypt></xml>"
    )
    return Request("/wechat/mp?" + urlencode(query), envelope.encode())


def work_request(keys: Keys, body: bytes | str, *, timestamp: int | None = None) -> Request:
    """A WeCom callback: the plaintext encrypted and signed; bytes are sent as the envelope itself."""
    ts, nonce = str(timestamp if timestamp is not None else int(time.time())), secrets.token_hex(5)
    if isinstance(body, bytes):
        query = {"msg_signature": sign(keys.work_token, ts, nonce, ""), "timestamp": ts, "nonce": nonce}
        return Request("/wechat/work?" + urlencode(query), body)
    crypto = WorkCrypto(keys.work_token, keys.work_aes_key, keys.corp_id)
    sealed = crypto.encrypt_message(body, nonce, ts)
    encrypt_text = sealed.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    query = {"msg_signature": sign(keys.work_token, ts, nonce, encrypt_text), "timestamp": ts, "nonce": nonce}
    envelope = (
        f"<xml><ToUserName><![CDATA[{keys.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt_text}]]>"
        f"</Encrypt><AgentID><![CDATA[{keys.agent_id}]]></AgentID></xml>"
    )
    return Request("/wechat/work?" + urlencode(query), envelope.encode())


def _signed(keys: Keys, doc: Doc) -> Doc:
    """`doc` with the sign a verifier computes over it, repeated and nested values included: as
    someone holding the API key would sign it."""
    fields: dict[str, Any] = {}
    for name, value in doc:
        if name in fields:
            old = fields[name]
            fields[name] = [*old, value] if isinstance(old, list) else [old, value]
        else:
            fields[name] = value
    return [*doc, ("sign", calculate_signature(fields, keys.pay_key))]


def pay_request(keys: Keys, doc: Doc, op: str | None = None) -> Request:
    xml = to_xml(_signed(keys, doc))
    return Request("/pay/wechat/notify", transform(xml, op) if op else xml.encode())


def refund_request(keys: Keys, inner: Doc, op: str | None = None, *, inner_op: str | None = None) -> Request:
    """A refund notification whose `req_info` is `inner` encrypted under md5(API key)."""
    inner_xml = to_xml(inner, root="root")
    plain = transform(inner_xml.replace("<root>", "<xml>", 1), inner_op) if inner_op else inner_xml.encode()
    key = hashlib.md5(keys.pay_key.encode()).hexdigest().encode()
    req_info = RefundCrypto(key).encrypt(plain)
    outer: Doc = [
        ("return_code", "SUCCESS"),
        ("appid", keys.app_id),
        ("mch_id", keys.mch_id),
        ("nonce_str", secrets.token_hex(16)),
        ("req_info", req_info.decode()),
    ]
    xml = to_xml(outer)
    return Request("/pay/wechat/refund-notify", transform(xml, op) if op else xml.encode())
