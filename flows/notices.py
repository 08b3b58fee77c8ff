"""Messages to a customer when their order changes state (written to the outbox with the change)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows import texts
from flows.format import bar, yuan
from flows.requirements import BEIJING
from store.models import Order
from store.orders import PAID, PROGRESS, OrderStatus
from store.outbox import Outgoing, text


def order_notice(order: Order, frm: str | None, to: str, reason: str | None) -> list[Outgoing]:
    """A short status message for changes the customer did not make themselves."""
    if frm == OrderStatus.REFUNDING and to in PAID:  # a refund request turned down
        content = texts.REFUND_DECLINED.format(number=order.number, reason=reason or "", status=to)
        # A request may be made and turned down more than once: each answer is its own message.
        return [
            text(order.openid, content, dedupe_key=f"order:{order.id}:refund-declined:{order.updated_at}")
        ]
    template = texts.ORDER_NOTICES.get(to)
    if template is None or frm is None:
        return []
    done = PROGRESS.index(to) + 1 if to in PROGRESS else 0
    content = template.format(
        number=order.number,
        total=yuan(order.total_fen),
        bar=bar(done, len(PROGRESS)),
        reason=f"（{reason}）" if reason else "",
    )
    return [text(order.openid, content, dedupe_key=f"order:{order.id}:{to}:{frm}")]


def quiet(order: Order, frm: str | None, to: str, reason: str | None) -> list[Outgoing]:
    """For changes the customer made in chat: the passive reply already says it."""
    return []


def notice_payload(content: str, template_id: str, now: dt.datetime) -> dict[str, Any]:
    """The notice template (WECHAT_NOTICE_TEMPLATE_ID: first, keyword1, keyword2, remark), laid out
    exactly as the outbox's 45015 fallback does it."""
    when = now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")
    data = {
        "first": {"value": content or texts.NOTICE_TITLE},
        "keyword1": {"value": texts.NOTICE_TITLE},
        "keyword2": {"value": when},
        "remark": {"value": texts.NOTICE_REMARK},
    }
    return {"template_id": template_id, "data": data}
