"""When money moves: apply WeChat Pay's word in one transaction with what the customer is told."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.pay import PayClient, PayError, TradeType
from bot.locks import PersonLocks
from flows import texts
from flows.creators import refund_settled
from flows.flash import honour_late
from flows.format import yuan
from flows.notices import order_notice
from flows.paid import after_paid
from flows.staff import staff_alert
from posters.qr import qr_png
from settings import Settings
from store import orders, payments
from store.db import writing
from store.errors import DomainError
from store.models import Order, Payment, Refund, utcnow
from store.orders import StockGate
from store.outbox import Outgoing, enqueue, text
from store.writer import Write

log = logging.getLogger(__name__)

REMIND_BEFORE = dt.timedelta(minutes=10)


Upload = Callable[[str, str, bytes], Awaitable[str]]  # (kind, filename, data) -> media_id


async def upload_pay_qr(upload: Upload, out_trade_no: str, code_url: str) -> str:
    """A payment's QR image, drawn off the event loop and uploaded: its media_id."""
    png = await asyncio.to_thread(qr_png, code_url)
    return await upload("image", f"pay-{out_trade_no}.png", png)


def pay_notify_url(settings: Settings) -> str:
    """Where WeChat Pay tells us a payment went through (webhooks.pay)."""
    return f"{settings.public_url}/pay/wechat/notify"


async def order_pay_request(
    sessionmaker: async_sessionmaker[AsyncSession],
    pay: PayClient,
    order: Order,
    *,
    trade_type: TradeType,
    body: str,
    notify_url: str,
    now: dt.datetime,
    fresh: Payment | None = None,
    save: list[Write] | None = None,
) -> Payment:
    """The order's payment with WeChat Pay's code_url (NATIVE) or prepay_id (JSAPI), reused while it is
    valid: a repeated 确认 / 支付 or a reloaded pay page never asks WeChat Pay for a second one.
    `fresh`: the payment made with the order in its own transaction (a flash take), asked for as is;
    `save`: where WeChat Pay's answer goes to be committed later (a chat turn's rows), instead of a
    transaction of its own."""
    payment = fresh
    if payment is None:
        async with writing(sessionmaker), sessionmaker.begin() as session:
            payment, lapsed = await payments.order_payment(
                session,
                order_id=order.id,
                account=order.account,
                openid=order.openid,
                trade_type=trade_type,
                now=now,
            )
        for out_trade_no in lapsed:
            await close_at_wechat(sessionmaker, pay, out_trade_no)
        if payment.code_url if trade_type == "NATIVE" else payment.prepay_id:
            return payment
    # Also after a crash between asking and saving: WeChat answers the same out_trade_no with the same prepay.
    answer = await pay.unified_order(
        out_trade_no=payment.out_trade_no,
        body=body,
        total_fee=payment.amount_fen,
        trade_type=trade_type,
        notify_url=notify_url,
        openid=order.openid if trade_type == "JSAPI" else None,
        product_id=payment.out_trade_no if trade_type == "NATIVE" else None,
    )
    code_url = answer["code_url"] if trade_type == "NATIVE" else None
    prepay_id = answer["prepay_id"] if trade_type == "JSAPI" else None
    if save is not None:
        save.append(payments.prepay_write(payment, code_url=code_url, prepay_id=prepay_id))
        return payment
    async with writing(sessionmaker), sessionmaker.begin() as session:
        return await payments.set_prepay(
            session, payment_id=payment.id, code_url=code_url, prepay_id=prepay_id
        )


async def close_at_wechat(
    sessionmaker: async_sessionmaker[AsyncSession], pay: PayClient, out_trade_no: str
) -> None:
    """Best effort: a lapsed pay request that WeChat Pay still held can no longer be paid."""
    try:
        await pay.close_order(out_trade_no)
    except PayError as exc:
        log.info("closing a lapsed payment failed", extra={"out_trade_no": out_trade_no, "code": exc.code})
        if exc.code == "ORDERPAID":  # paid meanwhile: its notification or the reconcile job credits it
            async with sessionmaker.begin() as session:
                await payments.reopen_payment(session, out_trade_no=out_trade_no)


async def on_pay_notification(
    sessionmaker: async_sessionmaker[AsyncSession],
    fields: dict[str, Any],
    settings: Settings,
    locks: PersonLocks | None = None,
) -> str:
    """A verified pay notification (or a reconciled query): credit once, tell the customer (and staff
    when something is off: a wrong amount, money for an order that lapsed).

    The payer's lock is held: a paid flash order starts their requirements form in their conversation,
    which a message of theirs handled meanwhile must not write over."""
    async with sessionmaker() as session:
        payment = await payments.get_payment(session, out_trade_no=fields["out_trade_no"])
    held = locks.hold(payment.account, payment.openid) if locks and payment else nullcontext()
    async with held, sessionmaker.begin() as session:
        outcome = await payments.apply_notification(
            session,
            out_trade_no=fields["out_trade_no"],
            transaction_id=fields["transaction_id"],
            total_fee=int(fields["total_fee"]),
            payer_openid=fields.get("openid"),
            notify=order_notice,
        )
        honoured = await _late_flash(session, fields["out_trade_no"], settings) if outcome == "late" else None
        if honoured is not None:  # a flash sale's hold that ran out: its own answer, nothing for staff
            await enqueue(session, *honoured)
            return outcome
        if outcome in ("credited", "late"):
            await enqueue(session, *await _money_notice(session, fields["out_trade_no"], outcome))
        if outcome == "credited":
            await _order_paid(session, fields["out_trade_no"], settings)
        if outcome in ("mismatch", "late", "unassigned"):
            await enqueue(session, *await _staff_notice(session, settings, fields, outcome))
    return outcome


async def _late_flash(session: AsyncSession, out_trade_no: str, settings: Settings) -> list[Outgoing] | None:
    payment = await payments.get_payment(session, out_trade_no=out_trade_no)
    return None if payment is None else await honour_late(session, payment, settings, utcnow())


async def _order_paid(session: AsyncSession, out_trade_no: str, settings: Settings) -> None:
    payment = await payments.get_payment(session, out_trade_no=out_trade_no)
    if payment is not None and payment.purpose == "order" and payment.order_id is not None:
        order = await session.get(Order, payment.order_id)
        if order is not None:
            await after_paid(session, order, settings, utcnow())


async def _staff_notice(
    session: AsyncSession, settings: Settings, fields: dict[str, Any], outcome: str
) -> list[Outgoing]:
    """The evidence staff need to sort out a payment that could not simply be credited."""
    payment = await payments.get_payment(session, out_trade_no=fields["out_trade_no"])
    if payment is None:
        return []
    order = await session.get(Order, payment.order_id) if payment.order_id else None
    number = order.number if order else "—"
    values = {
        "number": number,
        "out_trade_no": payment.out_trade_no,
        "transaction_id": fields["transaction_id"],
    }
    if outcome == "mismatch":
        content = texts.STAFF_PAY_MISMATCH.format(
            expected=yuan(payment.amount_fen), got=yuan(int(fields["total_fee"])), **values
        )
    elif outcome == "unassigned":
        payer = fields.get("openid") or "—"
        content = texts.STAFF_UNASSIGNED_PAYMENT.format(total=yuan(payment.amount_fen), payer=payer, **values)
    else:
        content = texts.STAFF_LATE_PAYMENT.format(total=yuan(payment.amount_fen), **values)
    return staff_alert(settings, content, key=f"{outcome}:{fields['transaction_id']}")


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
    """A decrypted refund notification: settle the refund once, and tell the customer it is on its way."""
    async with sessionmaker.begin() as session:
        outcome = await payments.apply_refund_notification(
            session,
            out_refund_no=fields["out_refund_no"],
            refund_id=fields.get("refund_id", ""),
            refund_status=fields.get("refund_status", ""),
            refund_fee=int(fields.get("refund_fee", 0)),
            notify=order_notice,
        )
        if outcome == "done":
            refund = await payments.get_refund(session, out_refund_no=fields["out_refund_no"])
            if refund is not None:
                await enqueue(session, *await _refund_notice(session, refund))
                await refund_settled(session, refund.order_id, utcnow())
    return outcome


async def _refund_notice(session: AsyncSession, refund: Refund) -> list[Outgoing]:
    order = await session.get(Order, refund.order_id)
    if order is None:
        return []
    if refund.destination == "balance":
        balance = await payments.balance_of(session, account=order.account, openid=order.openid)
        content = texts.REFUNDED_TO_BALANCE.format(
            number=order.number, amount=yuan(refund.amount_fen), balance=yuan(balance)
        )
    else:
        content = texts.REFUNDED_TO_WECHAT.format(number=order.number, amount=yuan(refund.amount_fen))
    return [text(order.openid, content, dedupe_key=f"refund:{refund.out_refund_no}")]


async def refund_order(
    sessionmaker: async_sessionmaker[AsyncSession],
    pay: PayClient | None,
    *,
    number: str,
    amount_fen: int | None,
    destination: str,
    actor: str,
    reason: str,
    notify_url: str,
) -> Refund:
    """Refund all that is left (or `amount_fen`) of an order; a WeChat refund is then asked of WeChat Pay."""
    async with sessionmaker.begin() as session:
        order = await orders.order_by_number(session, number)
        if order is None:
            raise DomainError("not_found", number=number)
        if amount_fen is None:
            amount_fen = await payments.paid_for(session, order.id) - await payments.refunded(
                session, order.id
            )
        made = await payments.refund(
            session,
            order_id=order.id,
            amount_fen=amount_fen,
            destination=destination,  # type: ignore[arg-type]
            actor=actor,
            reason=reason,
            notify=order_notice,
        )
        if made.status == "succeeded":
            await enqueue(session, *await _refund_notice(session, made))
            await refund_settled(session, order.id, utcnow())
    if destination == "wechat":
        await _ask_wechat(sessionmaker, pay, made, notify_url)
    return made


async def _ask_wechat(
    sessionmaker: async_sessionmaker[AsyncSession], pay: PayClient | None, made: Refund, notify_url: str
) -> None:
    """The refund API call; if WeChat Pay refuses it, the refund is closed (and no longer counted)."""
    async with sessionmaker() as session:
        payment = await session.get(Payment, made.payment_id) if made.payment_id else None
    try:
        if pay is None or payment is None:
            raise PayError("NOT_CONFIGURED", "WeChat Pay is not configured")
        await pay.refund(
            out_trade_no=payment.out_trade_no,
            out_refund_no=made.out_refund_no,
            total_fee=payment.amount_fen,
            refund_fee=made.amount_fen,
            notify_url=notify_url,
        )
    except PayError:
        async with sessionmaker.begin() as session:
            await payments.apply_refund_notification(
                session,
                out_refund_no=made.out_refund_no,
                refund_id="",
                refund_status="REFUNDCLOSE",
                refund_fee=made.amount_fen,
                notify=order_notice,
            )
        raise


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
