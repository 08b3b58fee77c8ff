"""When money moves: apply WeChat Pay's word in one transaction with what the customer is told."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts
from flows.format import yuan
from flows.notices import order_notice
from store import payments
from store.models import Order
from store.orders import StockGate
from store.outbox import Outgoing, enqueue, text

REMIND_BEFORE = dt.timedelta(minutes=10)


async def on_pay_notification(sessionmaker: async_sessionmaker[AsyncSession], fields: dict[str, Any]) -> str:
    """A verified pay notification (or a reconciled query): credit once, tell the customer."""
    async with sessionmaker.begin() as session:
        outcome = await payments.apply_notification(
            session,
            out_trade_no=fields["out_trade_no"],
            transaction_id=fields["transaction_id"],
            total_fee=int(fields["total_fee"]),
            payer_openid=fields.get("openid"),
            notify=order_notice,
        )
        if outcome in ("credited", "late"):
            enqueue(session, *await _money_notice(session, fields["out_trade_no"], outcome))
    return outcome


async def _money_notice(session: AsyncSession, out_trade_no: str, outcome: str) -> list[Outgoing]:
    """Top-ups and late payments have no order state change to announce them."""
    payment = await payments.get_payment(session, out_trade_no=out_trade_no)
    if payment is None:
        return []
    balance = await payments.balance_of(session, account=payment.account, openid=payment.openid)
    key = f"money:{payment.out_trade_no}:{outcome}"
    if payment.purpose == "topup" and outcome == "credited":
        content = texts.TOPUP_CREDITED.format(amount=yuan(payment.amount_fen), balance=yuan(balance))
    elif outcome == "late" and payment.order_id is not None:
        order = await session.get(Order, payment.order_id)
        number = order.number if order else ""
        content = texts.LATE_PAYMENT_CREDITED.format(number=number, total=yuan(payment.amount_fen))
    else:
        return []
    return [text(payment.openid, content, dedupe_key=key)]


async def on_refund_notification(
    sessionmaker: async_sessionmaker[AsyncSession], fields: dict[str, Any]
) -> str:
    """A decrypted refund notification: settle the refund once (the order moves on when fully refunded)."""
    async with sessionmaker.begin() as session:
        return await payments.apply_refund_notification(
            session,
            out_refund_no=fields["out_refund_no"],
            refund_id=fields.get("refund_id", ""),
            refund_status=fields.get("refund_status", ""),
            refund_fee=int(fields.get("refund_fee", 0)),
            notify=order_notice,
        )


def payment_reminder(order: Order) -> list[Outgoing]:
    minutes = int(REMIND_BEFORE.total_seconds() // 60)
    content = texts.PAYMENT_REMINDER.format(number=order.number, minutes=minutes)
    return [text(order.openid, content, dedupe_key=f"pay-reminder:{order.id}")]


async def remind_unpaid(sessionmaker: async_sessionmaker[AsyncSession], now: dt.datetime) -> int:
    """One reminder, REMIND_BEFORE the order lapses."""
    async with sessionmaker.begin() as session:
        return await payments.remind_expiring(
            session, now=now, within=REMIND_BEFORE, notify_reminder=payment_reminder
        )


async def expire_unpaid(
    sessionmaker: async_sessionmaker[AsyncSession], now: dt.datetime, gate: StockGate | None
) -> int:
    """Cancel what lapsed unpaid; the stock goes back on sale."""
    async with sessionmaker.begin() as session:
        return await payments.expire_unpaid(
            session, now=now, notify=order_notice, gate=gate, reason=texts.EXPIRED_REASON
        )
