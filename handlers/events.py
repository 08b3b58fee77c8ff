"""The one shape every inbound WeChat message or event takes once the webhook has parsed it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """A message or event from one person. `key` is the dedupe key WeChat's retries share.
    Built from a callback's fields by webhooks/fields.py, the one place they are checked."""

    account: str  # our Official Account (ToUserName)
    openid: str
    kind: str  # text | image | voice | video | location | link | event
    name: str  # for events: subscribe, unsubscribe, scan, click, view, …; else equals kind
    key: str  # msg:<MsgId> or ev:<CreateTime>:<event>:<EventKey>
    created_at: dt.datetime
    text: str = ""
    event_key: str = ""  # click key, QR scene (without "qrscene_")
    media_id: str = ""
    pic_url: str = ""
    raw: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class WorkEvent:
    """A message or event from a staff member in WeCom work chat, once /wechat/work has parsed it.

    `key` is the dedupe key WeCom's retries share: msg:<MsgId>, or for events
    ev:<CreateTime>:<Event>:<EventKey>:<TaskId> (two clicks on one card differ in CreateTime).
    """

    corp_id: str  # ToUserName
    agent_id: str
    userid: str  # FromUserName: the staff member's WeCom userid
    kind: str  # text | image | voice | event | …
    name: str  # for events: template_card_event, enter_agent, click, …; else equals kind
    key: str
    created_at: dt.datetime
    text: str = ""
    event_key: str = ""  # the button's key on a template_card_event, or a menu click key
    task_id: str = ""  # the card's task id
    response_code: str = ""  # one-time code to update that card (72 h)
    media_id: str = ""
    raw: dict[str, Any] | None = None
