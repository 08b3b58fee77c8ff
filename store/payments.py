"""Money: balances and their ledger, WeChat Pay payments, refunds, expiry of unpaid orders, invoices.

Every action runs in the caller's transaction and changes nothing on refusal (DomainError). Exactly-once
rests on unique keys (ledger key, out_trade_no, transaction_id, refund_id) and conditional UPDATEs,
never on SELECT … FOR UPDATE, which SQLite ignores. Amounts are int fen.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Collection, Sequence
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, String, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import orders
from store.db import as_loaded, new_row_insert, upsert_insert
from store.errors import DomainError
from store.models import (
    Balance,
    Invoice,
    InvoiceTitle,
    LedgerEntry,
    Order,
    Payment,
    Refund,
    utcnow,
)
from store.orders import BEIJING, MAX_REASON_CHARS, PAID, Notify, OrderStatus, StockGate
from store.outbox import Outgoing, enqueue
from store.writer import Write

Purpose = Literal["order", "topup"]
Destination = Literal["balance", "wechat"]
RefundStatus = Literal["SUCCESS", "CHANGE", "REFUNDCLOSE"]

LEDGER_KINDS = frozenset({"topup", "order_payment", "refund", "late_payment"})
TRADE_TYPES = frozenset({"NATIVE", "JSAPI"})
MIN_TOPUP_FEN = 100  # ¥1
MAX_TOPUP_FEN = 5_000_000  # ¥50,000
RECONCILE_WINDOW = dt.timedelta(days=2)
# WeChat Pay keeps a code_url / prepay_id payable for 2 hours; reusing one a little less long than
# that leaves the customer time to pay it.
PREPAY_LIFETIME = dt.timedelta(hours=2) - dt.timedelta(minutes=5)
# Once paid, an order can only be refunded; these states mean "the money arrived".
WAS_PAID: frozenset[OrderStatus] = PAID | {OrderStatus.REFUNDING, OrderStatus.REFUNDED}
REFUNDABLE: frozenset[OrderStatus] = PAID | {OrderStatus.REFUNDING}
INVOICE_STATUSES = frozenset({"requested", "issued", "rejected"})
TAX_NO = re.compile(r"[0-9A-Z]{15,20}")
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _trade_no(prefix: str, now: dt.datetime) -> str:
    """prefix + Beijing yyyymmddHHMMSS + 12 random base32 chars: 28 chars, within WeChat's 32."""
    stamp = now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    return prefix + stamp + "".join(secrets.choice(_B32) for _ in range(12))


def _positive(amount_fen: int) -> None:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise DomainError("bad_amount", amount_fen=amount_fen)


# --- Balances and the ledger ---------------------------------------------------------------------


def _person(account: str, openid: str) -> ColumnElement[bool]:
    return (Balance.account == account) & (Balance.openid == openid)


_BALANCE = select(Balance.balance_fen).where(  # built once: read on every order confirmed
    Balance.account == bindparam("account"), Balance.openid == bindparam("openid")
)


async def balance_of(session: AsyncSession, *, account: str, openid: str) -> int:
    """The person's balance in fen (0 if they never had one)."""
    found = await session.scalar(_BALANCE, {"account": account, "openid": openid})
    return found or 0


async def recent_entries(
    session: AsyncSession, *, account: str, openid: str, limit: int = 5
) -> list[LedgerEntry]:
    """The person's latest ledger entries, newest first."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.account == account, LedgerEntry.openid == openid)
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def _add_entry(
    session: AsyncSession, *, account: str, openid: str, amount_fen: int, kind: str, key: str, **refs: Any
) -> int | None:
    """Append a ledger entry; None if `key` was already applied (ON CONFLICT: no SAVEPOINT needed)."""
    if kind not in LEDGER_KINDS:
        raise DomainError("bad_kind", kind=kind)
    stmt = (
        upsert_insert(session)(LedgerEntry)
        .values(
            account=account,
            openid=openid,
            amount_fen=amount_fen,
            kind=kind,
            key=key,
            created_at=utcnow(),
            **refs,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(LedgerEntry.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def credit(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    amount_fen: int,
    kind: str,
    key: str,
    order_id: int | None = None,
    payment_id: int | None = None,
    note: str | None = None,
) -> bool:
    """Add money to a balance once per `key`; False if that key was already applied (nothing changes)."""
    _positive(amount_fen)
    refs = {"order_id": order_id, "payment_id": payment_id, "note": note}
    if (
        await _add_entry(
            session, account=account, openid=openid, amount_fen=amount_fen, kind=kind, key=key, **refs
        )
        is None
    ):
        return False
    now = utcnow()
    # One atomic upsert: two concurrent credits never lose one another's addition.
    stmt = (
        upsert_insert(session)(Balance)
        .values(account=account, openid=openid, balance_fen=amount_fen, updated_at=now)
        .on_conflict_do_update(
            index_elements=["account", "openid"],
            set_={"balance_fen": Balance.balance_fen + amount_fen, "updated_at": now},
        )
    )
    await session.execute(stmt)
    return True


async def _move_balance(session: AsyncSession, account: str, openid: str, delta: int) -> int | None:
    """balance += delta unless it would go below zero; the new balance, or None if refused."""
    stmt = (
        update(Balance)
        .where(_person(account, openid), Balance.balance_fen + delta >= 0)
        .values(balance_fen=Balance.balance_fen + delta, updated_at=utcnow())
        .returning(Balance.balance_fen)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def debit(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    amount_fen: int,
    kind: str,
    key: str,
    order_id: int | None = None,
    payment_id: int | None = None,
    note: str | None = None,
) -> bool:
    """Take money from a balance once per `key`; False if that key was already applied (nothing changes)."""
    _positive(amount_fen)
    # The conditional UPDATE is the guard: of two debits racing for one balance, the second
    # re-checks against the first's result (PostgreSQL) or waits for SQLite's write lock.
    if await _move_balance(session, account, openid, -amount_fen) is None:
        balance = await balance_of(session, account=account, openid=openid)
        raise DomainError("insufficient_balance", balance=balance, needed=amount_fen)
    refs = {"order_id": order_id, "payment_id": payment_id, "note": note}
    if (
        await _add_entry(
            session, account=account, openid=openid, amount_fen=-amount_fen, kind=kind, key=key, **refs
        )
        is None
    ):
        await _move_balance(session, account, openid, amount_fen)  # exact: we still hold the row
        return False
    return True


async def check_balances(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """Every (account, openid, cached, summed) whose cached balance differs from the sum of its entries."""
    rows = await session.execute(select(Balance.account, Balance.openid, Balance.balance_fen))
    cached = {(a, o): int(fen) for a, o, fen in rows}
    summed_rows = await session.execute(
        select(LedgerEntry.account, LedgerEntry.openid, func.sum(LedgerEntry.amount_fen)).group_by(
            LedgerEntry.account, LedgerEntry.openid
        )
    )
    summed = {(a, o): int(total) for a, o, total in summed_rows}
    return [
        (account, openid, cached.get((account, openid), 0), summed.get((account, openid), 0))
        for account, openid in sorted(cached.keys() | summed.keys())
        if cached.get((account, openid), 0) != summed.get((account, openid), 0)
    ]


# --- Orders and their money ----------------------------------------------------------------------


async def order_due(session: AsyncSession, order: Order) -> int:
    """What is still to pay for the order: its total while unpaid, else nothing."""
    return order.total_fen if order.status == OrderStatus.PENDING_PAYMENT else 0


async def _order(session: AsyncSession, order_id: int | None) -> Order:
    order = None if order_id is None else await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise DomainError("not_found", order_id=order_id)
    return order


def _own(order: Order, account: str, openid: str) -> None:
    if (order.account, order.openid) != (account, openid):
        raise DomainError("not_yours", order_id=order.id)


def _payable(order: Order, now: dt.datetime) -> None:
    """Refuse an order that cannot take money now."""
    if order.status in WAS_PAID:
        raise DomainError("already_paid", order_id=order.id, status=order.status)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise DomainError("not_payable", order_id=order.id, status=order.status)
    if order.expires_at is not None and order.expires_at <= now:
        raise DomainError("expired", order_id=order.id, expires_at=order.expires_at)


async def _hold_order(
    session: AsyncSession, order_id: int, statuses: Collection[OrderStatus], *where: ColumnElement[bool]
) -> Order | None:
    """Claim the order's row while it is in `statuses` (a no-op UPDATE); None if it is not.

    Until commit no one else changes the order: PostgreSQL holds the row lock, SQLite the write lock.
    Checks that follow see the latest committed state, so two actions never both act on a stale one."""
    stmt = (
        update(Order)
        .where(Order.id == order_id, Order.status.in_([str(s) for s in statuses]), *where)
        .values(status=Order.status)
        .returning(Order)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


def _unexpired(now: dt.datetime) -> ColumnElement[bool]:
    return or_(Order.expires_at.is_(None), Order.expires_at > now)


async def pay_with_balance(
    session: AsyncSession,
    *,
    order_id: int,
    account: str,
    openid: str,
    notify: Notify,
    now: dt.datetime | None = None,
) -> Order:
    """The owner pays an unpaid, unexpired order from their balance (待支付 → 待审核)."""
    now = now or utcnow()
    order = await _order(session, order_id)
    _own(order, account, openid)
    _payable(order, now)
    if await _hold_order(session, order_id, [OrderStatus.PENDING_PAYMENT], _unexpired(now)) is None:
        _payable(await _order(session, order_id), now)  # changed meanwhile: say how
        raise DomainError("conflict", order_id=order_id)
    due = await order_due(session, order)
    if due > 0:
        applied = await debit(
            session,
            account=account,
            openid=openid,
            amount_fen=due,
            kind="order_payment",
            key=f"pay:{order_id}",
            order_id=order_id,
        )
        if not applied:
            raise DomainError("already_paid", order_id=order_id, status=order.status)
    return await orders.mark_paid(session, order_id=order_id, actor=f"customer:{openid}", notify=notify)


# --- WeChat Pay: payments and notifications ------------------------------------------------------


async def create_payment(
    session: AsyncSession,
    *,
    purpose: Purpose,
    account: str,
    openid: str,
    amount_fen: int | None = None,
    trade_type: str = "NATIVE",
    order_id: int | None = None,
    now: dt.datetime | None = None,
) -> Payment:
    """A new WeChat Pay attempt: for the person's unpaid order (its total), or a top-up of ¥1–¥50,000."""
    now = now or utcnow()
    if trade_type not in TRADE_TYPES:
        raise DomainError("bad_trade_type", trade_type=trade_type)
    if purpose == "order":
        order = await _order(session, order_id)
        _own(order, account, openid)
        _payable(order, now)
        if amount_fen is not None and amount_fen != order.total_fen:
            raise DomainError("bad_amount", amount_fen=amount_fen, expected=order.total_fen)
        amount_fen = order.total_fen
        _positive(amount_fen)
    elif purpose == "topup":
        if amount_fen is None or not MIN_TOPUP_FEN <= amount_fen <= MAX_TOPUP_FEN:
            raise DomainError(
                "bad_amount", amount_fen=amount_fen, min_fen=MIN_TOPUP_FEN, max_fen=MAX_TOPUP_FEN
            )
        _positive(amount_fen)
        order_id = None
    else:
        raise DomainError("bad_purpose", purpose=purpose)
    return await _insert_payment(
        session,
        purpose=purpose,
        order_id=order_id,
        account=account,
        openid=openid,
        amount_fen=amount_fen,
        trade_type=trade_type,
        now=now,
    )


async def new_order_payment(
    session: AsyncSession, order: Order, *, trade_type: str, now: dt.datetime
) -> Payment:
    """The first payment of an order placed in this very transaction (a flash take's): nothing to
    re-read or close, so one statement instead of order_payment's five."""
    return await _insert_payment(
        session,
        purpose="order",
        order_id=order.id,
        account=order.account,
        openid=order.openid,
        amount_fen=order.total_fen,
        trade_type=trade_type,
        now=now,
    )


async def unassigned_payment(
    session: AsyncSession, *, amount_fen: int, trade_type: str, now: dt.datetime
) -> Payment:
    """A payment made ahead for an order that does not exist yet (a flash sale position's pay QR):
    no order and no person until `assign_payment` gives it both."""
    _positive(amount_fen)
    return await _insert_payment(
        session,
        purpose="order",
        order_id=None,
        account="",
        openid="",
        amount_fen=amount_fen,
        trade_type=trade_type,
        now=now,
    )


async def assign_payment(
    session: AsyncSession, payment_id: int, order: Order, *, made_after: dt.datetime
) -> Payment | None:
    """Give an unassigned payment to `order` (its person, its total), if still open, of the order's
    amount and made after `made_after` (WeChat Pay honours it long enough); None when it cannot be."""
    params = {
        "b_id": payment_id,
        "b_order_id": order.id,
        "b_account": order.account,
        "b_openid": order.openid,
        "b_amount_fen": order.total_fen,
        "b_made_after": made_after,
    }
    row = (await session.execute(_ASSIGN_PAYMENT, params)).one_or_none()
    return None if row is None else as_loaded(session, Payment, row._mapping)


async def _insert_payment(session: AsyncSession, *, now: dt.datetime, **fields: Any) -> Payment:
    """A new payment (status created) of `fields` under a fresh out_trade_no."""
    values = {**fields, "status": "created", "created_at": now}
    for _ in range(3):  # 60 random bits: a collision is astronomically rare, but never an error
        stmt = _NEW_PAYMENT[session.get_bind().dialect.name]
        row = (await session.execute(stmt, {"out_trade_no": _trade_no("CO", now), **values})).one_or_none()
        if row is not None:
            return as_loaded(session, Payment, row._mapping)
    raise DomainError("conflict", purpose=fields["purpose"])


async def order_payment(
    session: AsyncSession,
    *,
    order_id: int,
    account: str,
    openid: str,
    trade_type: str,
    now: dt.datetime | None = None,
) -> tuple[Payment, list[str]]:
    """The order's open payment of `trade_type` while WeChat Pay still honours it, else a new one.

    Also returns the out_trade_no of every open payment that lapsed and was closed here, for the
    caller to close at WeChat Pay. The order's row is held first, so a retried 确认 and a reloaded
    pay page racing for one order end with one payment."""
    now = now or utcnow()
    order = await _order(session, order_id)
    _own(order, account, openid)
    _payable(order, now)
    if await _hold_order(session, order_id, [OrderStatus.PENDING_PAYMENT]) is None:
        _payable(await _order(session, order_id), now)
        raise DomainError("conflict", order_id=order_id)
    open_payments = list(
        await session.scalars(
            select(Payment)
            .where(
                Payment.order_id == order_id,
                Payment.purpose == "order",
                Payment.trade_type == trade_type,
                Payment.status == "created",
            )
            .order_by(Payment.id.desc())
            .execution_options(populate_existing=True)
        )
    )
    valid = [p for p in open_payments if p.created_at > now - PREPAY_LIFETIME]
    keep = valid[0] if valid and valid[0].amount_fen == order.total_fen else None
    lapsed = [p for p in open_payments if p is not keep]
    if lapsed:
        await session.execute(
            update(Payment)
            .where(Payment.id.in_([p.id for p in lapsed]), Payment.status == "created")
            .values(status="closed")
            .execution_options(synchronize_session=False)
        )
    if keep is None:
        keep = await create_payment(
            session,
            purpose="order",
            account=account,
            openid=openid,
            order_id=order_id,
            trade_type=trade_type,
            now=now,
        )
    return keep, [p.out_trade_no for p in lapsed]


async def reopen_payment(session: AsyncSession, *, out_trade_no: str) -> None:
    """A payment we closed that WeChat Pay says was paid: open again, so reconciliation credits it."""
    await session.execute(
        update(Payment)
        .where(Payment.out_trade_no == out_trade_no, Payment.status == "closed")
        .values(status="created")
        .execution_options(synchronize_session=False)
    )


async def set_prepay(
    session: AsyncSession, *, payment_id: int, code_url: str | None = None, prepay_id: str | None = None
) -> Payment:
    """Remember what WeChat Pay answered to the unified order (the QR code URL or the JSAPI prepay id)."""
    if code_url is None and prepay_id is None:
        raise ValueError("set_prepay needs a code_url or a prepay_id")
    params = {"b_id": payment_id, "b_code_url": code_url, "b_prepay_id": prepay_id}
    row = (await session.execute(_SET_PREPAY, params)).one_or_none()
    if row is None:
        raise DomainError("not_found", payment_id=payment_id)
    return as_loaded(session, Payment, row._mapping)


def prepay_write(payment: Payment, *, code_url: str | None = None, prepay_id: str | None = None) -> Write:
    """set_prepay as a row for a commit already on its way (a chat turn's own): `payment` holds the
    values at once. Losing the row to a crash costs one more unified order for the same out_trade_no,
    which WeChat Pay answers with the same code_url / prepay_id."""
    if code_url is None and prepay_id is None:
        raise ValueError("prepay_write needs a code_url or a prepay_id")
    payment.code_url = code_url or payment.code_url
    payment.prepay_id = prepay_id or payment.prepay_id
    return _SAVE_PREPAY, {"b_id": payment.id, "b_code_url": code_url, "b_prepay_id": prepay_id}


# A payment's two writes under load (every pay QR), built once and run without the ORM's DML path.
_PAYMENTS = cast(Table, Payment.__table__)  # declarative types __table__ as any FromClause
_PAYMENT_VALUES = (
    "out_trade_no",
    "purpose",
    "order_id",
    "account",
    "openid",
    "amount_fen",
    "trade_type",
    "status",
    "created_at",
)
_NEW_PAYMENT = new_row_insert(_PAYMENTS, _PAYMENT_VALUES, unique="out_trade_no")
_SAVE_PREPAY = (
    update(_PAYMENTS)
    .where(_PAYMENTS.c.id == bindparam("b_id"))
    .values(
        code_url=func.coalesce(bindparam("b_code_url", type_=String), _PAYMENTS.c.code_url),
        prepay_id=func.coalesce(bindparam("b_prepay_id", type_=String), _PAYMENTS.c.prepay_id),
    )
)
_SET_PREPAY = _SAVE_PREPAY.returning(*_PAYMENTS.c)
# A flash rush's winner takes it (store.flash.claim_slot): built once, in Core, off the ORM's DML path.
_ASSIGN_PAYMENT = (
    update(_PAYMENTS)
    .where(
        _PAYMENTS.c.id == bindparam("b_id"),
        _PAYMENTS.c.order_id.is_(None),
        _PAYMENTS.c.status == "created",
        _PAYMENTS.c.amount_fen == bindparam("b_amount_fen"),
        _PAYMENTS.c.created_at > bindparam("b_made_after"),
        _PAYMENTS.c.code_url.is_not(None),
    )
    .values(order_id=bindparam("b_order_id"), account=bindparam("b_account"), openid=bindparam("b_openid"))
    .returning(*_PAYMENTS.c)
)


async def _claim(
    session: AsyncSession, payment_id: int, transaction_id: str, payer_openid: str | None
) -> Payment | None:
    """Mark the payment paid if nobody did yet; of concurrent notifications exactly one gets it."""
    stmt = (
        update(Payment)
        .where(Payment.id == payment_id, Payment.status != "paid")
        .values(status="paid", transaction_id=transaction_id, payer_openid=payer_openid, paid_at=utcnow())
        .returning(Payment)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


async def apply_notification(
    session: AsyncSession,
    *,
    out_trade_no: str,
    transaction_id: str,
    total_fee: int,
    payer_openid: str | None,
    notify: Notify,
) -> str:
    """Apply a WeChat Pay "paid" notification once: credited | duplicate | unknown | mismatch | late |
    unassigned (a payment made ahead for a flash position that was never given to an order)."""
    payment = await session.scalar(
        select(Payment).where(Payment.out_trade_no == out_trade_no).execution_options(populate_existing=True)
    )
    if payment is None:
        return "unknown"
    if payment.status == "paid":
        return "duplicate"
    if await session.scalar(select(Payment.id).where(Payment.transaction_id == transaction_id)) is not None:
        return "duplicate"
    if total_fee != payment.amount_fen:
        # Not credited: staff look at the flag; WeChat keeps retrying, which changes nothing more.
        await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status != "paid")
            .values(flag="amount_mismatch")
            .execution_options(synchronize_session=False)
        )
        return "mismatch"
    # A payment we closed or marked failed can still be paid: accept it rather than lose the money.
    paid = await _claim(session, payment.id, transaction_id, payer_openid)
    if paid is None:
        return "duplicate"
    if paid.purpose == "topup":
        await credit(
            session,
            account=paid.account,
            openid=paid.openid,
            amount_fen=paid.amount_fen,
            kind="topup",
            key=f"topup:{paid.id}",
            payment_id=paid.id,
        )
        return "credited"
    # No expiry check: an order still 待支付 when the money arrives is simply paid.
    if paid.order_id is not None and await _hold_order(session, paid.order_id, [OrderStatus.PENDING_PAYMENT]):
        await orders.mark_paid(session, order_id=paid.order_id, actor="wechatpay", notify=notify)
        return "credited"
    if paid.order_id is None:  # made ahead for a flash sale and never given out: nobody was shown it
        paid.flag = "unassigned"  # kept and flagged for staff (refund by hand), never credited to nobody
        await session.flush()
        return "unassigned"
    # Cancelled (e.g. expired) or already paid another way: the money is kept in the customer's balance.
    await credit(
        session,
        account=paid.account,
        openid=paid.openid,
        amount_fen=paid.amount_fen,
        kind="late_payment",
        key=f"late:{paid.id}",
        order_id=paid.order_id,
        payment_id=paid.id,
    )
    paid.flag = "late_payment"
    await session.flush()
    return "late"


async def payments_to_reconcile(
    session: AsyncSession, *, older_than: dt.timedelta, now: dt.datetime
) -> list[Payment]:
    """Unconfirmed payments old enough to ask WeChat Pay about, from the last two days, oldest first."""
    stmt = (
        select(Payment)
        .where(
            Payment.status == "created",
            Payment.created_at < now - older_than,
            Payment.created_at >= now - RECONCILE_WINDOW,
            # Made ahead and not given out (a flash position's): nobody was shown it, nothing to ask.
            or_(Payment.order_id.is_not(None), Payment.purpose != "order"),
        )
        .order_by(Payment.created_at, Payment.id)
    )
    return list(await session.scalars(stmt))


# --- Refunds -------------------------------------------------------------------------------------


def _paid_wechat(order_id: int) -> Sequence[ColumnElement[bool]]:
    """Paid WeChat payments that paid this order (a late payment went to the balance instead)."""
    return (
        Payment.order_id == order_id,
        Payment.purpose == "order",
        Payment.status == "paid",
        or_(Payment.flag.is_(None), Payment.flag != "late_payment"),
    )


async def paid_for(session: AsyncSession, order_id: int) -> int:
    """What was paid for the order: its WeChat payments plus its balance payment."""
    wechat = await session.scalar(
        select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(*_paid_wechat(order_id))
    )
    from_balance = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(LedgerEntry.key == f"pay:{order_id}")
    )
    return int(wechat or 0) - int(from_balance or 0)


async def refunded(
    session: AsyncSession, order_id: int, *, statuses: Collection[str] = ("pending", "succeeded")
) -> int:
    """The sum of the order's refunds in `statuses` (by default all that were not refused)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.order_id == order_id, Refund.status.in_(list(statuses))
        )
    )
    return int(total or 0)


async def _wechat_payment(session: AsyncSession, order_id: int) -> tuple[Payment, int] | None:
    """The order's latest paid WeChat payment and how much of it is not yet refunded."""
    payment = await session.scalar(
        select(Payment).where(*_paid_wechat(order_id)).order_by(Payment.id.desc()).limit(1)
    )
    if payment is None:
        return None
    back = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.payment_id == payment.id, Refund.status != "failed"
        )
    )
    return payment, payment.amount_fen - int(back or 0)


async def _finish_if_refunded(session: AsyncSession, order_id: int, *, actor: str, notify: Notify) -> None:
    """退款中 → 已退款 once the refunds that went through add up to what was paid."""
    order = await _order(session, order_id)
    done = await refunded(session, order_id, statuses=("succeeded",))
    if order.status == OrderStatus.REFUNDING and done >= await paid_for(session, order_id):
        await orders.transition(
            session, order_id=order_id, to=OrderStatus.REFUNDED, actor=actor, notify=notify
        )


async def refund(
    session: AsyncSession,
    *,
    order_id: int,
    amount_fen: int,
    destination: Destination,
    actor: str,
    reason: str,
    notify: Notify,
) -> Refund:
    """Give back all or part of what was paid for an order, to the balance (at once) or through WeChat Pay."""
    _positive(amount_fen)
    if destination not in ("balance", "wechat"):
        raise DomainError("bad_destination", destination=destination)
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        raise DomainError("bad_reason", max_chars=MAX_REASON_CHARS)
    order = await _order(session, order_id)
    if order.status not in REFUNDABLE:
        raise DomainError("not_refundable", order_id=order_id, status=order.status)
    # Held from here on: two refunds of one order never both pass the sum check below.
    held = await _hold_order(session, order_id, REFUNDABLE)
    if held is None:
        raise DomainError(
            "not_refundable", order_id=order_id, status=(await _order(session, order_id)).status
        )
    order = held
    left = refundable = await paid_for(session, order_id) - await refunded(session, order_id)
    payment_id = None
    if destination == "wechat":
        found = await _wechat_payment(session, order_id)
        if found is None:
            raise DomainError("no_wechat_payment", order_id=order_id)
        payment_id, refundable = found[0].id, min(refundable, found[1])
    if amount_fen > refundable:
        raise DomainError("refund_exceeds", refundable=max(refundable, 0), amount_fen=amount_fen)
    # Only a refund of everything left ends the order; after a partial one the work goes on.
    if amount_fen == left and order.status != OrderStatus.REFUNDING:
        await orders.transition(
            session, order_id=order_id, to=OrderStatus.REFUNDING, actor=actor, reason=reason, notify=notify
        )
    row = Refund(
        out_refund_no=_trade_no("RF", utcnow()),
        order_id=order_id,
        payment_id=payment_id,
        amount_fen=amount_fen,
        destination=destination,
        status="pending",
        reason=reason,
        actor=actor,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    if destination == "balance":
        await credit(
            session,
            account=order.account,
            openid=order.openid,
            amount_fen=amount_fen,
            kind="refund",
            key=f"refund:{row.id}",
            order_id=order_id,
            note=reason,
        )
        row.status, row.done_at = "succeeded", utcnow()
        await session.flush()
        await _finish_if_refunded(session, order_id, actor=actor, notify=notify)
    return row


async def decline_refund(
    session: AsyncSession, *, order_id: int, actor: str, reason: str, notify: Notify
) -> Order:
    """Staff turn down a refund request: the order goes back to where it was, the customer hears why.

    Not while a WeChat refund of it is under way (its result would be orphaned); refunds that went
    through stay (a partial refund was already given)."""
    order = await _hold_order(session, order_id, [OrderStatus.REFUNDING])
    if order is None:
        found = await _order(session, order_id)
        raise DomainError("not_refunding", number=found.number, status=found.status)
    if await refunded(session, order_id, statuses=("pending",)) > 0:
        raise DomainError("refund_under_way", number=order.number)
    return await orders.reopen(session, order_id=order_id, actor=actor, reason=reason, notify=notify)


async def apply_refund_notification(
    session: AsyncSession,
    *,
    out_refund_no: str,
    refund_id: str,
    refund_status: RefundStatus,
    refund_fee: int,
    notify: Notify,
) -> str:
    """Apply WeChat Pay's refund result once: done | duplicate | unknown | mismatch | failed."""
    row = await session.scalar(
        select(Refund).where(Refund.out_refund_no == out_refund_no).execution_options(populate_existing=True)
    )
    if row is None:
        return "unknown"
    if row.status != "pending":
        return "duplicate"
    if await session.scalar(select(Refund.id).where(Refund.refund_id == refund_id)) is not None:
        return "duplicate"
    if refund_status not in ("SUCCESS", "CHANGE", "REFUNDCLOSE"):
        raise DomainError("bad_refund_status", refund_status=refund_status)
    if refund_fee != row.amount_fen:
        return "mismatch"
    # The order first, then the refund: two refunds of one order finishing together both see each other.
    await _hold_order(session, row.order_id, [OrderStatus.REFUNDING])
    status = "succeeded" if refund_status == "SUCCESS" else "failed"
    stmt = (
        update(Refund)
        .where(Refund.id == row.id, Refund.status == "pending")
        .values(status=status, refund_id=refund_id, done_at=utcnow())
        .returning(Refund.id)
        .execution_options(synchronize_session=False)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        return "duplicate"
    if status == "failed":
        return "failed"
    await _finish_if_refunded(session, row.order_id, actor="wechatpay", notify=notify)
    return "done"


# --- Expiry of unpaid orders ---------------------------------------------------------------------


async def remind_expiring(
    session: AsyncSession,
    *,
    now: dt.datetime,
    within: dt.timedelta,
    notify_reminder: Callable[[Order], list[Outgoing]],
) -> int:
    """Remind once about each unpaid order that lapses within `within`; how many were reminded."""
    due = await session.scalars(
        select(Order.id)
        .where(
            Order.status == OrderStatus.PENDING_PAYMENT,
            Order.expires_at > now,
            Order.expires_at <= now + within,
            Order.payment_reminded_at.is_(None),
        )
        .order_by(Order.id)
    )
    reminded = 0
    for order_id in list(due):
        # WHERE payment_reminded_at IS NULL: of two workers only one sends the reminder.
        stmt = (
            update(Order)
            .where(
                Order.id == order_id,
                Order.status == OrderStatus.PENDING_PAYMENT,
                Order.payment_reminded_at.is_(None),
            )
            .values(payment_reminded_at=now)
            .returning(Order)
        )
        order = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
        if order is not None:
            await enqueue(session, *notify_reminder(order))
            reminded += 1
    await session.flush()
    return reminded


async def expire_unpaid(
    session: AsyncSession, *, now: dt.datetime, notify: Notify, reason: str, gate: StockGate | None = None
) -> int:
    """Cancel every unpaid order whose time ran out, releasing its stock; how many were cancelled."""
    due = await session.scalars(
        select(Order.id)
        .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)
        .order_by(Order.id)  # the same order in every worker, so two never deadlock (PostgreSQL)
    )
    cancelled = 0
    for order_id in list(due):
        # Re-checked under the hold: another worker or a payment may have got there first.
        if (
            await _hold_order(session, order_id, [OrderStatus.PENDING_PAYMENT], Order.expires_at <= now)
            is None
        ):
            continue
        await orders.cancel_order(
            session, order_id=order_id, actor="system", reason=reason, notify=notify, gate=gate
        )
        cancelled += 1
    return cancelled


# --- Invoices ------------------------------------------------------------------------------------


async def save_invoice_title(
    session: AsyncSession, *, account: str, openid: str, title: str, tax_no: str
) -> InvoiceTitle:
    """Save an invoice header (the same title again updates its tax number)."""
    title, tax_no = title.strip(), tax_no.strip().upper()
    if not 2 <= len(title) <= 100:
        raise DomainError("bad_title", min_chars=2, max_chars=100)
    if tax_no and not TAX_NO.fullmatch(tax_no):
        raise DomainError("bad_tax_no", tax_no=tax_no)
    stmt = (
        upsert_insert(session)(InvoiceTitle)
        .values(account=account, openid=openid, title=title, tax_no=tax_no or None, created_at=utcnow())
        .on_conflict_do_update(index_elements=["account", "openid", "title"], set_={"tax_no": tax_no or None})
        .returning(InvoiceTitle)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one()


async def invoice_titles(session: AsyncSession, *, account: str, openid: str) -> list[InvoiceTitle]:
    """The person's saved invoice headers, oldest first."""
    stmt = (
        select(InvoiceTitle)
        .where(InvoiceTitle.account == account, InvoiceTitle.openid == openid)
        .order_by(InvoiceTitle.id)
    )
    return list(await session.scalars(stmt))


async def request_invoice(
    session: AsyncSession, *, account: str, openid: str, order_id: int, title_id: int
) -> Invoice:
    """Ask for an invoice of the person's completed order, once, for what was paid and not refunded."""
    order = await _order(session, order_id)
    if (order.account, order.openid) != (account, openid) or order.status != OrderStatus.COMPLETED:
        raise DomainError("not_invoiceable", order_id=order_id)
    header = await session.get(InvoiceTitle, title_id)
    if header is None or (header.account, header.openid) != (account, openid):
        raise DomainError("not_found", title_id=title_id)
    amount = await paid_for(session, order_id) - await refunded(session, order_id)
    if amount <= 0:
        raise DomainError("not_invoiceable", order_id=order_id)
    now = utcnow()
    stmt = (
        upsert_insert(session)(Invoice)
        .values(
            order_id=order_id,
            account=account,
            openid=openid,
            title=header.title,
            tax_no=header.tax_no,
            amount_fen=amount,
            status="requested",
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(Invoice)
    )
    invoice = (await session.scalars(stmt)).one_or_none()
    if invoice is None:
        existing = await session.scalar(select(Invoice.id).where(Invoice.order_id == order_id))
        raise DomainError("invoice_exists", order_id=order_id, invoice_id=existing)
    return invoice


async def set_invoice_status(
    session: AsyncSession, *, invoice_id: int, status: str, url: str | None = None, note: str | None = None
) -> Invoice:
    """Staff issue (with the e-invoice URL) or reject an invoice; an issued invoice stays issued."""
    if status not in INVOICE_STATUSES:
        raise DomainError("bad_status", status=status)
    if status == "issued" and not url:
        raise DomainError("url_required", invoice_id=invoice_id)
    invoice = await session.get(Invoice, invoice_id, populate_existing=True)
    if invoice is None:
        raise DomainError("not_found", invoice_id=invoice_id)
    if invoice.status == "issued" and status != "issued":
        raise DomainError("illegal_transition", frm=invoice.status, to=status)
    invoice.status, invoice.updated_at = status, utcnow()
    if url is not None:
        invoice.url = url
    if note is not None:
        invoice.note = note
    await session.flush()
    return invoice


async def invoices_of(session: AsyncSession, *, account: str, openid: str) -> list[Invoice]:
    """The person's invoices, newest first."""
    stmt = (
        select(Invoice)
        .where(Invoice.account == account, Invoice.openid == openid)
        .order_by(Invoice.id.desc())
    )
    return list(await session.scalars(stmt))


async def invoices_with_orders(
    session: AsyncSession, *, account: str, openid: str
) -> list[tuple[Invoice, str]]:
    """The person's invoices with the number of the order each belongs to, newest first."""
    stmt = (
        select(Invoice, Order.number)
        .join(Order, Order.id == Invoice.order_id)
        .where(Invoice.account == account, Invoice.openid == openid)
        .order_by(Invoice.id.desc())
    )
    return [(invoice, number) for invoice, number in (await session.execute(stmt)).all()]


async def get_payment(session: AsyncSession, *, out_trade_no: str) -> Payment | None:
    """A payment by our trade number."""
    return await session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no))


async def get_refund(session: AsyncSession, *, out_refund_no: str) -> Refund | None:
    """A refund by our refund number."""
    return await session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no))
