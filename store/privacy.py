"""Personal data: everything held about one person (我的数据), erasing it (注销), and the retention purge.

Erasure deletes what only describes the person (profile, conversation state, message bodies,
pictures, form answers, saved invoice titles, cart) and keeps what accounting must keep (orders,
payments, ledger and earnings entries, issued invoices), re-keyed from the openid to a random
pseudonym that links back to no one. Every function runs in the caller's transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import orders
from store.models import (
    Balance,
    CartItem,
    Commission,
    Conversation,
    Creator,
    DeliveryStat,
    EarningEntry,
    Earnings,
    FunnelEvent,
    InboundMessage,
    Invoice,
    InvoiceTitle,
    LedgerEntry,
    Material,
    Order,
    OrderEvent,
    OrderItem,
    OrderMessage,
    OutboxMessage,
    Payment,
    Referral,
    Review,
    User,
    Withdrawal,
)
from store.orders import Notify, OrderStatus, StockGate

ERASED_NOTE = "（已按保留期限删除）"  # what a purged customer message in an order's thread reads
# Orders the customer is still waiting for: erasing them would stop us from delivering or refunding.
IN_FLIGHT = frozenset(
    {OrderStatus.PENDING_REVIEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.REFUNDING}
)
OPEN_WITHDRAWALS = ("requested", "approved")


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


async def _rows(
    session: AsyncSession, model: Any, *where: ColumnElement[bool], skip: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Every row of `model` matching `where`, as JSON-ready dicts (columns in `skip` left out)."""
    found = await session.scalars(select(model).where(*where))
    columns = [c.key for c in model.__table__.columns if c.key not in skip]
    return [{name: _json(getattr(row, name)) for name in columns} for row in found]


def _of(model: Any, column: str, account: str, openid: str) -> ColumnElement[bool]:
    """Rows of `model` whose `column` names the person (within the account, where the table has one)."""
    where = getattr(model, column) == openid
    return (model.account == account) & where if "account" in model.__table__.columns else where


# What 我的数据 holds beyond orders: (key, table, the column naming the person, columns left out —
# internal keys, or bytes listed elsewhere).
_EXPORT: tuple[tuple[str, Any, str, tuple[str, ...]], ...] = (
    ("profile", User, "openid", ()),
    ("conversation", Conversation, "openid", ()),
    ("messages", InboundMessage, "sender", ("reply_xml",)),
    ("cart", CartItem, "openid", ()),
    ("payments", Payment, "openid", ("code_url", "prepay_id")),
    ("balance", Balance, "openid", ()),
    ("ledger", LedgerEntry, "openid", ()),
    ("invoice_titles", InvoiceTitle, "openid", ()),
    ("invoices", Invoice, "openid", ()),
    ("creator", Creator, "openid", ("poster_key",)),
    ("invited_by", Referral, "invitee_openid", ()),
    ("commissions", Commission, "openid", ("buyer_openid",)),
    ("earnings", Earnings, "openid", ()),
    ("earning_entries", EarningEntry, "openid", ()),
    ("withdrawals", Withdrawal, "openid", ()),
    ("materials", Material, "openid", ("data",)),  # the list; the pictures are the person's own
    ("reviews", Review, "openid", ()),
    ("funnel_steps", FunnelEvent, "openid", ()),
)


async def export(session: AsyncSession, *, account: str, openid: str) -> dict[str, Any]:
    """Everything held about the person, as one JSON-ready document."""
    document: dict[str, Any] = {
        key: await _rows(session, model, _of(model, column, account, openid), skip=skip)
        for key, model, column, skip in _EXPORT
    }
    order_ids = select(Order.id).where(Order.account == account, Order.openid == openid)
    document["orders"] = await _rows(session, Order, Order.id.in_(order_ids), skip=("source_key",))
    for key, model in (
        ("order_items", OrderItem),
        ("order_events", OrderEvent),
        ("order_threads", OrderMessage),
        ("delivery_figures", DeliveryStat),
    ):
        document[key] = await _rows(session, model, model.order_id.in_(order_ids))
    document["invited"] = await session.scalar(
        select(func.count()).where(Referral.account == account, Referral.inviter_openid == openid)
    )
    return document


@dataclass(frozen=True, slots=True)
class Standing:
    """What stands in the way of erasing a person now, and the money they would give up."""

    in_flight: list[str]  # numbers of orders still being worked on or refunded
    withdrawing_fen: int  # asked for and not paid yet
    balance_fen: int
    pending_fen: int
    available_fen: int

    @property
    def blocked(self) -> bool:
        return bool(self.in_flight) or self.withdrawing_fen > 0

    @property
    def money_fen(self) -> int:
        return self.balance_fen + self.pending_fen + max(self.available_fen, 0)


async def standing(session: AsyncSession, *, account: str, openid: str) -> Standing:
    """Orders in flight, withdrawals under way and money held for the person."""
    in_flight = await session.scalars(
        select(Order.number)
        .where(
            Order.account == account, Order.openid == openid, Order.status.in_([str(s) for s in IN_FLIGHT])
        )
        .order_by(Order.id)
    )
    withdrawing = await session.scalar(
        select(func.coalesce(func.sum(Withdrawal.amount_fen), 0)).where(
            Withdrawal.account == account,
            Withdrawal.openid == openid,
            Withdrawal.status.in_(OPEN_WITHDRAWALS),
        )
    )
    balance = await session.scalar(
        select(Balance.balance_fen).where(Balance.account == account, Balance.openid == openid)
    )
    earned = (
        await session.execute(
            select(Earnings.pending_fen, Earnings.available_fen).where(
                Earnings.account == account, Earnings.openid == openid
            )
        )
    ).first()
    return Standing(
        in_flight=list(in_flight),
        withdrawing_fen=int(withdrawing or 0),
        balance_fen=int(balance or 0),
        pending_fen=int(earned.pending_fen) if earned else 0,
        available_fen=int(earned.available_fen) if earned else 0,
    )


def pseudonym() -> str:
    """A fresh random stand-in for an erased openid: keeps accounting rows apart, names no one."""
    return "erased_" + secrets.token_hex(12)


# Columns that hold the person's openid in rows accounting keeps: re-keyed to the pseudonym.
_REKEY: tuple[tuple[Any, str], ...] = (
    (Order, "openid"),
    (Payment, "openid"),
    (Payment, "payer_openid"),
    (LedgerEntry, "openid"),
    (Balance, "openid"),
    (Invoice, "openid"),
    (Commission, "openid"),
    (Commission, "buyer_openid"),
    (Earnings, "openid"),
    (EarningEntry, "openid"),
    (Withdrawal, "openid"),
    (Referral, "invitee_openid"),  # their inviter keeps the invite they earned
    (Review, "openid"),  # the score stays in the service's average; the comment is erased below
    (FunnelEvent, "openid"),  # the operators' counts stay right; nothing else in those rows
)
# Rows that only describe the person: deleted.
_DELETE: tuple[tuple[Any, str], ...] = (
    (User, "openid"),
    (Conversation, "openid"),
    (Material, "openid"),
    (CartItem, "openid"),
    (InvoiceTitle, "openid"),
    (OutboxMessage, "recipient"),
    # As a creator: the invite code stops binding, and their invitees are free to be invited again.
    (Creator, "openid"),
    (Referral, "inviter_openid"),
)


async def erase(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    notify: Notify,
    gate: StockGate | None = None,
    now: dt.datetime,
) -> str:
    """Erase the person (see the module docstring); unpaid orders are cancelled first. The pseudonym."""
    unpaid = await session.scalars(
        select(Order.id).where(
            Order.account == account, Order.openid == openid, Order.status == OrderStatus.PENDING_PAYMENT
        )
    )
    for order_id in list(unpaid):
        await orders.cancel_order(
            session, order_id=order_id, actor="system", reason="注销", notify=notify, gate=gate
        )
    order_ids = select(Order.id).where(Order.account == account, Order.openid == openid)
    await session.execute(
        update(Order).where(Order.id.in_(order_ids)).values(requirements={}, refund_reason=None)
    )
    author, alias = f"customer:{openid}", pseudonym()
    await session.execute(
        update(OrderMessage)
        .where(OrderMessage.order_id.in_(order_ids), OrderMessage.author == author)
        .values(content="", author=f"customer:{alias}")
    )
    await session.execute(
        update(OrderEvent).where(OrderEvent.actor == author).values(actor=f"customer:{alias}")
    )
    await session.execute(
        update(InboundMessage)
        .where(InboundMessage.account == account, InboundMessage.sender == openid)
        .values(content=None, reply_xml=None, sender=alias)
    )
    await session.execute(
        update(Review).where(Review.account == account, Review.openid == openid).values(comment=None)
    )
    for model, column in _DELETE:
        await session.execute(
            delete(model)
            .where(_of(model, column, account, openid))
            .execution_options(synchronize_session=False)
        )
    for model, column in _REKEY:
        await session.execute(
            update(model)
            .where(_of(model, column, account, openid))
            .values({column: alias})
            .execution_options(synchronize_session=False)
        )
    return alias


async def purge_before(session: AsyncSession, *, cutoff: dt.datetime) -> int:
    """The retention purge: bodies of messages received and pictures kept before `cutoff`. How many."""
    bodies = await session.execute(
        update(InboundMessage)
        .where(InboundMessage.received_at < cutoff, InboundMessage.content.is_not(None))
        .values(content=None, reply_xml=None)
    )
    threads = await session.execute(
        update(OrderMessage)
        .where(OrderMessage.at < cutoff, OrderMessage.direction == "in", OrderMessage.content != ERASED_NOTE)
        .values(content=ERASED_NOTE)
    )
    pictures = await session.execute(delete(Material).where(Material.created_at < cutoff))
    return sum(_count(r) for r in (bodies, threads, pictures))


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
