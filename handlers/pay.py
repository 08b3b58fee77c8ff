"""Paying in chat: the pay QR after an order, 支付 / 余额支付, 余额, 充值, and invoices."""

from __future__ import annotations

import logging
import re

from bot.channels.pay import PayClient
from flows import texts
from flows.flash import coupon_spec, coupon_text
from flows.format import yuan
from flows.notices import quiet
from flows.paid import after_paid
from flows.payments import order_pay_request, pay_notify_url, upload_pay_qr
from flows.requirements import BEIJING
from handlers.context import Ctx, UserFacingError, refusal
from handlers.router import Router
from store import orders, payments
from store.errors import DomainError
from store.models import Coupon, Order, Payment
from store.orders import OrderStatus

log = logging.getLogger(__name__)
router = Router("pay")

DIGITS = re.compile(r"\d[\d-]*")  # what the customer meant as an order number
NUMBER = re.compile(r"\b(\d{8}-\d{4})\b")
_AMOUNT = re.compile(r"^(\d{1,6})(?:\.(\d{1,2}))?\s*元?$")


async def offer_payment(
    ctx: Ctx,
    order: Order,
    *,
    intro: str,
    minutes: int | None = None,
    payment: Payment | None = None,
    qr_media: str | None = None,
    lead: str = "",
    balance: int | None = None,
) -> None:
    """The pay QR (WeChat Pay NATIVE) and the balance option, after `intro` (order created / pay again);
    `minutes`: how long the order is held, when not the usual order_ttl_minutes (a flash sale's hold);
    `payment`: the NATIVE payment made with the order, when it was (flows.flash.grab), and `qr_media`
    its QR when that was made before the sale opened (flows.flash_slots); `lead`: a formatted text
    the same message starts with (a flash take: one message, then the QR); `balance`: the person's
    balance when the caller already read it."""
    ctx.state.data["paying"] = ctx.state.data["last_order"] = order.number
    coupon = None
    if balance is None or (order.coupon_id and order.discount_fen):
        async with ctx.read() as session:
            if balance is None:
                balance = await payments.balance_of(session, account=ctx.event.account, openid=ctx.openid)
            if order.coupon_id and order.discount_fen:
                coupon = await session.get(Coupon, order.coupon_id)
    values = {
        "number": order.number,
        "total": yuan(order.total_fen),
        "balance": yuan(balance),
        "minutes": minutes or ctx.settings.order_ttl_minutes,
        "coupon": _coupon_note(coupon, order),
        "lead": lead + "\n" if lead else "",
    }
    qr = None
    # Without WeChat Pay configured there is no QR to make: expected, so no warning (and traceback) per order.
    if payment is not None and qr_media:
        qr = payment, qr_media
    elif pay_qr_possible(ctx):
        try:
            qr = await _pay_qr(ctx, purpose="order", amount_fen=order.total_fen, order=order, fresh=payment)
        except Exception:
            log.warning("pay QR unavailable", exc_info=True, extra={"order": order.number})
    if qr is None:
        fallback = texts.ORDER_CREATED if intro == texts.ORDER_CREATED_PAY else texts.PAY_UNAVAILABLE
        ctx.say("{lead}" + fallback + "{coupon}", **values)
        return
    payment, media_id = qr
    ctx.say("{lead}" + intro + "{coupon}", link=_link(ctx, payment), **values)
    ctx.image(media_id)


def pay_qr_possible(ctx: Ctx) -> bool:
    """Whether a pay QR can be offered: WeChat Pay to ask and the MP API to upload the image."""
    return ctx.services.pay is not None and ctx.services.media is not None


def _coupon_note(coupon: Coupon | None, order: Order) -> str:
    """Which coupon the total already has off, and how much it saved ("" without one)."""
    if coupon is None:
        return ""
    what = coupon_text(coupon_spec(coupon))
    return texts.COUPON_APPLIED.format(title=coupon.title, what=what, off=yuan(order.discount_fen))


async def _pay_qr(
    ctx: Ctx, *, purpose: payments.Purpose, amount_fen: int, order: Order | None, fresh: Payment | None = None
) -> tuple[Payment, str]:
    """The payment (an order's open one is reused), its code_url from WeChat Pay, uploaded as a QR image."""
    pay, media = ctx.services.pay, ctx.services.media
    if pay is None or media is None:
        raise RuntimeError("WeChat Pay is not configured")
    notify_to = pay_notify_url(ctx.settings)
    if order is not None:
        body = ctx.fmt(texts.PAY_BODY_ORDER, number=order.number)
        payment = await order_pay_request(
            ctx.sessionmaker,
            pay,
            order,
            trade_type="NATIVE",
            body=body,
            notify_url=notify_to,
            now=ctx.now(),
            fresh=fresh,
            save=ctx.writes,  # WeChat Pay's answer is kept with this turn's commit
        )
    else:
        payment = await _topup_payment(ctx, pay, amount_fen, notify_to)
    return payment, await upload_pay_qr(media.upload_media, payment.out_trade_no, payment.code_url or "")


async def _topup_payment(ctx: Ctx, pay: PayClient, amount_fen: int, notify_url: str) -> Payment:
    """Each 充值 is a new payment: the amount is the customer's choice every time."""
    async with ctx.transaction() as session:
        payment = await payments.create_payment(
            session, purpose="topup", account=ctx.event.account, openid=ctx.openid, amount_fen=amount_fen
        )
    answer = await pay.unified_order(
        out_trade_no=payment.out_trade_no,
        body=ctx.fmt(texts.PAY_BODY_TOPUP, number=""),
        total_fee=amount_fen,
        trade_type="NATIVE",
        notify_url=notify_url,
        product_id=payment.out_trade_no,
    )
    ctx.writes.append(payments.prepay_write(payment, code_url=answer["code_url"]))
    return payment


def _link(ctx: Ctx, payment: Payment) -> str:
    """The JSAPI pay page (opened inside WeChat) when we have a public HTTPS address; in the sandbox,
    the simulator's pay page stands in for scanning the code with a phone."""
    base = ctx.settings.public_url
    if ctx.settings.sandbox:
        return texts.PAY_LINK.format(url=f"{base}/sandbox/pay/page/{payment.out_trade_no}")
    if base.startswith("https://") and payment.order_id is not None:
        return texts.PAY_LINK.format(url=f"{base}/pay/page/{payment.out_trade_no}")
    return ""


async def _unpaid(ctx: Ctx, command: str) -> Order:
    """The order named in the command, or the one just created; it must still be 待支付."""
    match = NUMBER.search(ctx.command or "")
    named = DIGITS.search(ctx.command or "")
    if match is None and named:
        raise UserFacingError(texts.ORDER_NOT_FOUND, number=named.group(0)[:30])  # never another order
    number = match.group(1) if match else ctx.state.data.get("paying")
    if not number:
        raise UserFacingError(texts.PAY_NO_ORDER)
    async with ctx.read() as session:
        view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
    if view is None:
        raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
    if view.order.status != OrderStatus.PENDING_PAYMENT:
        raise UserFacingError(texts.PAY_NOT_NEEDED, number=number, status=view.order.status)
    return view.order


@router.prefix("支付", "付款", "去支付", when=lambda ctx: "余额" not in (ctx.command or ""))
async def on_pay(ctx: Ctx) -> None:
    """'支付 20261122-0042' (or just 支付 after ordering): the pay QR again (the same payment while valid)."""
    order = await _unpaid(ctx, "支付")
    await offer_payment(ctx, order, intro=texts.PAY_AGAIN)


@router.prefix("余额支付", "用余额支付", "用余额付")
async def on_pay_by_balance(ctx: Ctx) -> None:
    """Pay an unpaid order from the balance, atomically (never negative, never twice)."""
    order = await _unpaid(ctx, "余额支付")
    try:
        async with ctx.transaction() as session:
            paid = await payments.pay_with_balance(
                session, order_id=order.id, account=ctx.event.account, openid=ctx.openid, notify=quiet
            )
            await after_paid(session, paid, ctx.settings, ctx.now(), state=ctx.state)
            balance = await payments.balance_of(session, account=ctx.event.account, openid=ctx.openid)
    except DomainError as exc:
        if exc.code != "insufficient_balance":
            raise refusal(exc) from None
        short = max(100, exc.details.get("needed", 0) - exc.details.get("balance", 0))
        raise UserFacingError(
            texts.BALANCE_SHORT,
            needed=yuan(exc.details.get("needed", 0)),
            balance=yuan(exc.details.get("balance", 0)),
            topup=-(-short // 100),
        ) from None
    ctx.state.data.pop("paying", None)
    ctx.say(texts.PAID_BY_BALANCE, total=yuan(order.total_fen), number=order.number, balance=yuan(balance))


@router.text("余额", "我的余额", "查余额", "钱包")
async def on_balance(ctx: Ctx) -> None:
    """The balance and its latest movements."""
    async with ctx.read() as session:
        balance = await payments.balance_of(session, account=ctx.event.account, openid=ctx.openid)
        entries = await payments.recent_entries(
            session, account=ctx.event.account, openid=ctx.openid, limit=5
        )
    lines = [
        texts.BALANCE_ENTRY.format(
            at=f"{e.created_at.astimezone(BEIJING):%m-%d %H:%M}",
            amount=("+" if e.amount_fen > 0 else "") + yuan(e.amount_fen),
            what=texts.LEDGER_KINDS.get(e.kind, e.kind) + (f" {e.note}" if e.note else ""),
        )
        for e in entries
    ]
    ctx.say(texts.BALANCE, balance=yuan(balance), entries="\n".join(lines) or texts.BALANCE_NO_ENTRIES)


@router.prefix("充值")
async def on_topup(ctx: Ctx) -> None:
    """'充值 500': a pay QR that credits the balance when paid."""
    match = _AMOUNT.match(ctx.argument.replace(",", "").replace("，", ""))
    if not match:
        raise UserFacingError(texts.TOPUP_USAGE)
    fen = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if not 100 <= fen <= 5_000_000:
        raise UserFacingError(texts.TOPUP_USAGE)
    try:
        payment, media_id = await _pay_qr(ctx, purpose="topup", amount_fen=fen, order=None)
    except DomainError:
        raise UserFacingError(texts.TOPUP_USAGE) from None
    except Exception:
        log.warning("top-up QR unavailable", exc_info=True)
        raise UserFacingError(texts.TOPUP_UNAVAILABLE) from None
    ctx.say(texts.TOPUP_QR, amount=yuan(fen), link=_link(ctx, payment))
    ctx.image(media_id)
