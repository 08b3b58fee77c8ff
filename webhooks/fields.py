"""The one place per endpoint where a parsed XML dict becomes typed values, or BadRequest.

What arrives is a dict from `guard.parse_xml`: any field may be missing, repeated (a list), nested
(a dict) or absurd, even in a correctly signed request. Each endpoint reads only what comes out of
here, so a hostile value is refused with a 4xx before it reaches a handler or SQL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from handlers.events import Event, WorkEvent
from webhooks.guard import BadRequest

MAX_ID = 64  # users.openid, inbound_messages.account/sender
MAX_KEY = 200  # inbound_messages.msg_key; a button key alone may be 1024 bytes
MAX_NAME = 32  # inbound_messages.msg_type
_DIGITS = re.compile(r"\d{1,20}")
_ID = re.compile(r"[\x21-\x7e]+")  # openids, userids, account ids: printable ASCII, no spaces
# CreateTime: seconds since 1970; anything past 2100 is not a clock, and would overflow datetime.
LAST_TIME = 4_102_444_800
MAX_FEN = 10**12  # ¥10 billion: no notification carries more; larger would overflow BIGINT maths


def _flat(fields: Mapping[str, Any]) -> None:
    """A repeated top-level element is never WeChat's: refuse the document rather than guess."""
    for name, value in fields.items():
        if isinstance(value, list):
            raise BadRequest(f"<{name}> repeated")


def text(fields: Mapping[str, Any], name: str, *, required: bool = False, limit: int | None = None) -> str:
    """A leaf's text ('' when absent); BadRequest when nested, repeated, too long or required and empty."""
    value = fields.get(name)
    if value is None:
        if required:
            raise BadRequest(f"<{name}> missing")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"<{name}> is not text")
    if limit is not None and len(value) > limit:
        raise BadRequest(f"<{name}> longer than {limit}")
    return value


def _ident(fields: Mapping[str, Any], name: str, limit: int = MAX_ID) -> str:
    value = text(fields, name, required=True, limit=limit)
    if not _ID.fullmatch(value):
        raise BadRequest(f"<{name}> is not an id")
    return value


def _create_time(fields: Mapping[str, Any]) -> tuple[int, dt.datetime]:
    value = text(fields, "CreateTime", required=True)
    if not _DIGITS.fullmatch(value) or not 0 < int(value) < LAST_TIME:
        raise BadRequest("<CreateTime> is not a time")
    return int(value), dt.datetime.fromtimestamp(int(value), dt.UTC)


def _msg_id(fields: Mapping[str, Any]) -> str:
    value = text(fields, "MsgId", required=True)
    if not _DIGITS.fullmatch(value):
        raise BadRequest("<MsgId> is not a number")
    return value


def _name(value: str, what: str) -> str:
    name = value.strip().lower()
    if not name or len(name) > MAX_NAME:
        raise BadRequest(f"<{what}> empty or longer than {MAX_NAME}")
    return name


def dedupe_key(key: str) -> str:
    """The key as stored: long button keys and task ids are shortened with a digest, still unique."""
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 41] + ":" + hashlib.sha1(key.encode()).hexdigest()


def mp_event(fields: Mapping[str, Any]) -> Event:
    """An Official Account message or event, from the decrypted `<xml>`."""
    _flat(fields)
    kind = _name(text(fields, "MsgType", required=True), "MsgType")
    account, openid = _ident(fields, "ToUserName"), _ident(fields, "FromUserName")
    stamp, created = _create_time(fields)
    event_key = text(fields, "EventKey").strip()
    if kind == "event":
        name = _name(text(fields, "Event", required=True), "Event")
        if name == "subscribe" and event_key.startswith("qrscene_"):
            event_key = event_key[len("qrscene_") :]  # followed through a parametric QR code
        key = f"ev:{stamp}:{name}:{event_key}"
    else:
        name = kind
        key = f"msg:{_msg_id(fields)}"
    return Event(
        account=account,
        openid=openid,
        kind=kind,
        name=name,
        key=dedupe_key(key),
        created_at=created,
        text=text(fields, "Content").strip() if kind == "text" else "",
        event_key=event_key,
        media_id=text(fields, "MediaId"),
        pic_url=text(fields, "PicUrl") if kind == "image" else "",
        raw=dict(fields),
    )


def work_event(fields: Mapping[str, Any]) -> WorkEvent:
    """A WeCom message or event, from the decrypted `<xml>` (nested card fields are kept in `raw`)."""
    _flat(fields)
    kind = _name(text(fields, "MsgType", required=True), "MsgType")
    # inbound_messages.account is "wecom:<corp id>"
    corp_id, userid = _ident(fields, "ToUserName", MAX_ID - 6), _ident(fields, "FromUserName")
    stamp, created = _create_time(fields)
    event_key, task_id = text(fields, "EventKey").strip(), text(fields, "TaskId").strip()
    if kind == "event":
        name = _name(text(fields, "Event", required=True), "Event")
        key = f"ev:{stamp}:{name}:{event_key}:{task_id}"
    else:
        name = kind
        key = f"msg:{_msg_id(fields)}"
    return WorkEvent(
        corp_id=corp_id,
        agent_id=text(fields, "AgentID").strip(),
        userid=userid,
        kind=kind,
        name=name,
        key=dedupe_key(key),
        created_at=created,
        text=text(fields, "Content").strip() if kind == "text" else "",
        event_key=event_key,
        task_id=task_id,
        response_code=text(fields, "ResponseCode").strip(),
        media_id=text(fields, "MediaId"),
        raw=dict(fields),
    )


# WeChat Pay v2 field lengths (the API reference), which are also our columns' widths.
_PAY_LIMITS = {
    "out_trade_no": 32,
    "transaction_id": 32,
    "out_refund_no": 32,
    "refund_id": 32,
    "openid": 128,
    "appid": 32,
    "mch_id": 32,
}
_PAY_AMOUNTS = ("total_fee", "cash_fee", "refund_fee", "settlement_total_fee", "settlement_refund_fee")


def pay_fields(fields: Mapping[str, Any]) -> dict[str, str | None]:
    """A WeChat Pay v2 notification (or decrypted req_info): every field is one leaf of text, ids fit
    their columns and amounts are fen. BadRequest otherwise (answered FAIL)."""
    out: dict[str, str | None] = {}
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"<{name}> is repeated or nested")
        out[name] = value
    for name, limit in _PAY_LIMITS.items():
        if len(out.get(name) or "") > limit:
            raise BadRequest(f"<{name}> longer than {limit}")
    for name in _PAY_AMOUNTS:
        value = out.get(name)
        if value and (not _DIGITS.fullmatch(value) or int(value) > MAX_FEN):
            raise BadRequest(f"<{name}> is not an amount in fen")
    return out
