"""Creators' earnings: commissions on paid orders, their release, refunds, reviews and withdrawals.

The ledger is append-only: every movement is one EarningEntry with a unique key, written by `_move`,
which also keeps the cached Earnings totals per bucket (pending, available, held, withdrawn). A state
change of a commission or withdrawal is claimed first with a conditional UPDATE (compare-and-set on
status and reversed_fen), so a retried or concurrent call moves money at most once; the entry key is
the second line of defence. Nothing here commits; a refusal (DomainError) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import payments, referrals
from store.db import upsert_insert
from store.errors import DomainError
from store.models import (
    Commission,
    Creator,
    EarningEntry,
    Earnings,
    Order,
    OrderEvent,
    OrderItem,
    Payment,
    Referral,
    Withdrawal,
    utcnow,
)
from store.orders import BEIJING, MAX_REASON_CHARS, OrderStatus
from store.payments import WAS_PAID, _trade_no

if TYPE_CHECKING:
    from settings import Level, Settings

BUCKETS = ("pending", "available", "held", "withdrawn")
NEVER_NEGATIVE = frozenset({"pending", "held", "withdrawn"})  # available may carry a debt
REVERSIBLE = frozenset({"pending", "review", "available"})
OPEN_WITHDRAWALS = ("requested", "approved")
MAX_DEPTH = referrals.MAX_DEPTH


class LedgerError(RuntimeError):
    """A movement the state said was covered was refused: a bug or a hand-edited table. Roll back."""


@dataclass(frozen=True, slots=True)
class CommissionLine:
    """One commission as shown to its creator."""

    commission_id: int
    order_number: str
    depth: int
    amount_fen: int
    reversed_fen: int
    status: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class EarningsView:
    """A creator's four buckets (cached totals) and their latest commissions."""

    pending_fen: int
    available_fen: int
    held_fen: int
    withdrawn_fen: int
    recent: list[CommissionLine]


class Drift(NamedTuple):
    """A cached bucket that differs from the sum of its entries (for `chatorder doctor`)."""

    account: str
    openid: str
    bucket: str
    cached: int
    summed: int


# --- The one way money moves -----------------------------------------------------------------------


def _person(account: str, openid: str) -> ColumnElement[bool]:
    return (Earnings.account == account) & (Earnings.openid == openid)


async def _add_to_total(session: AsyncSession, account: str, openid: str, bucket: str, delta: int) -> bool:
    """bucket += delta on the cached row; False if that would take a never-negative bucket below zero."""
    name = f"{bucket}_fen"
    column = getattr(Earnings, name)
    now = utcnow()
    if delta < 0 and bucket in NEVER_NEGATIVE:
        stmt = (
            update(Earnings)
            .where(_person(account, openid), column + delta >= 0)
            .values({column: column + delta, Earnings.updated_at: now})
            .returning(Earnings.openid)
            .execution_options(synchronize_session=False)
        )
        return (await session.execute(stmt)).scalar_one_or_none() is not None
    # One atomic upsert: two concurrent movements never lose one another's change.
    zero = {f"{b}_fen": 0 for b in BUCKETS}
    stmt = (
        upsert_insert(session)(Earnings)
        .values(account=account, openid=openid, updated_at=now, **(zero | {name: delta}))
        .on_conflict_do_update(
            index_elements=["account", "openid"], set_={name: column + delta, "updated_at": now}
        )
    )
    await session.execute(stmt)
    return True


async def _lock_people(session: AsyncSession, account: str, openids: Collection[str]) -> None:
    """Hold the Earnings rows of everyone a transaction will touch, in one order (by openid).

    A payment (the buyer's chain) and the release job (many chains) touch several rows each; taken in
    whatever order they come, two such transactions can deadlock on PostgreSQL. SQLite serialises
    writers, so there this is only the insert of missing rows."""
    people = sorted(set(openids))
    if not people:
        return
    zero = {f"{b}_fen": 0 for b in BUCKETS}
    for openid in people:
        stmt = upsert_insert(session)(Earnings).values(
            account=account, openid=openid, updated_at=utcnow(), **zero
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["account", "openid"]))
    await session.execute(
        select(Earnings.openid)
        .where(Earnings.account == account, Earnings.openid.in_(people))
        .order_by(Earnings.openid)
        .with_for_update()
    )


async def _move(
    session: AsyncSession,
    account: str,
    openid: str,
    bucket: str,
    delta: int,
    *,
    kind: str,
    key: str,
    commission_id: int | None = None,
    withdrawal_id: int | None = None,
) -> bool:
    """Append one entry and apply it to the cached total, once per `key` (False: already applied)."""
    if bucket not in BUCKETS or delta == 0:
        raise ValueError(f"bad movement {bucket} {delta}")
    if await session.scalar(select(EarningEntry.id).where(EarningEntry.key == key)) is not None:
        return False
    # The total first: its conditional UPDATE is the guard, and it holds the row until commit.
    if not await _add_to_total(session, account, openid, bucket, delta):
        raise LedgerError(f"{account}/{openid}: {bucket} cannot move by {delta} ({key})")
    stmt = (
        upsert_insert(session)(EarningEntry)
        .values(
            account=account,
            openid=openid,
            bucket=bucket,
            amount_fen=delta,
            kind=kind,
            key=key,
            commission_id=commission_id,
            withdrawal_id=withdrawal_id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(EarningEntry.id)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        # A concurrent twin wrote the key first: undo ours exactly (we still hold the row).
        await _add_to_total(session, account, openid, bucket, -delta)
        return False
    return True


async def _transfer(
    session: AsyncSession,
    account: str,
    openid: str,
    frm: str,
    to: str,
    amount: int,
    *,
    kind: str,
    key: str,
    **refs: Any,
) -> bool:
    """Move `amount` from one bucket to another: two entries, `<key>:from` and `<key>:to`."""
    if amount == 0:
        return False
    if not await _move(session, account, openid, frm, -amount, kind=kind, key=f"{key}:from", **refs):
        return False
    await _move(session, account, openid, to, amount, kind=kind, key=f"{key}:to", **refs)
    return True


# --- Commissions -----------------------------------------------------------------------------------


async def _direct(session: AsyncSession, order_id: int) -> tuple[int, int, int]:
    """(base, rate, amount) of the depth-1 commission: each line at its own service's rate."""
    rows = await session.execute(
        select(OrderItem.unit_price_fen, OrderItem.quantity, OrderItem.commission_bp).where(
            OrderItem.order_id == order_id
        )
    )
    base = weighted = 0
    for price, quantity, bp in rows:
        base += price * quantity
        weighted += price * quantity * bp
    return base, (weighted // base if base else 0), weighted // 10_000


def _team_rate(levels: Sequence[Level], level: int, depth: int) -> int:
    return levels[max(0, min(level, len(levels) - 1))].team_bp[depth - 2]


async def _fraud(session: AsyncSession, order: Order) -> tuple[str | None, str | None]:
    """(flag, evidence) that holds the order's commissions for review, or (None, None)."""
    payers = await session.scalars(
        select(Payment.payer_openid)
        .where(
            Payment.order_id == order.id,
            Payment.purpose == "order",
            Payment.status == "paid",
            Payment.payer_openid.is_not(None),
        )
        .distinct()
    )
    for payer in list(payers):
        customers = await session.scalars(
            select(Payment.openid)
            .where(
                Payment.account == order.account,
                Payment.payer_openid == payer,
                Payment.purpose == "order",
                Payment.status == "paid",
            )
            .distinct()
        )
        paid_for = sorted(set(customers) | {order.openid})
        if payer != order.openid or len(paid_for) >= 2:
            return "same_payer", f"same_payer: {payer} paid orders of {', '.join(paid_for)}"
    referral = await session.get(Referral, (order.account, order.openid), populate_existing=True)
    if referral is not None and referral.flag == "burst":
        return "burst", referral.note
    return None, None


async def _add_commission(session: AsyncSession, **values: Any) -> Commission | None:
    """Insert a commission unless (order_id, depth) has one (None: an earlier call made it)."""
    stmt = (
        upsert_insert(session)(Commission)
        .values(reversed_fen=0, **values)
        .on_conflict_do_nothing(index_elements=["order_id", "depth"])
        .returning(Commission)
    )
    return (await session.scalars(stmt)).one_or_none()


async def _shares(
    session: AsyncSession, order: Order, chain: Sequence[str], levels: Sequence[Level]
) -> list[tuple[int, str, int, int, int]]:
    """(depth, beneficiary, base, rate, amount) of each share of the order; zero amounts are left out."""
    rows = await session.execute(
        select(Creator.openid, Creator.level).where(
            Creator.account == order.account, Creator.openid.in_(chain)
        )
    )
    level_of = {openid: level for openid, level in rows}
    shares = []
    for depth, beneficiary in enumerate(chain, start=1):
        if beneficiary == order.openid:  # binding forbids it; never pay anyone for their own order
            continue
        if depth == 1:
            base, rate, amount = await _direct(session, order.id)
        else:
            base, rate = order.total_fen, _team_rate(levels, level_of.get(beneficiary, 0), depth)
            amount = base * rate // 10_000
        if amount > 0:
            shares.append((depth, beneficiary, base, rate, amount))
    return shares


async def on_order_paid(
    session: AsyncSession, *, order_id: int, settings: Settings, now: dt.datetime
) -> list[Commission]:
    """Commissions of a paid order for the buyer's inviter chain; a second call creates none."""
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise DomainError("not_found", order_id=order_id)
    if order.status not in WAS_PAID:
        return []
    depth = max(1, min(settings.commission_depth, MAX_DEPTH))  # never more than 3, whatever is passed
    chain = await referrals.inviters(session, account=order.account, openid=order.openid, depth=depth)
    if not chain:
        return []
    flag, note = await _fraud(session, order)
    shares = await _shares(session, order, chain, settings.levels)
    await _lock_people(session, order.account, [share[1] for share in shares])
    made: list[Commission] = []
    for d, beneficiary, base, rate, amount in shares:
        commission = await _add_commission(
            session,
            order_id=order.id,
            account=order.account,
            openid=beneficiary,
            buyer_openid=order.openid,
            depth=d,
            base_fen=base,
            rate_bp=rate,
            amount_fen=amount,
            status="review" if flag else "pending",
            flag=flag,
            note=note,
            created_at=now,
        )
        if commission is None:  # made by an earlier (or a concurrent) call
            continue
        key = f"commission:{commission.id}"
        await _move(
            session,
            order.account,
            beneficiary,
            "pending",
            amount,
            kind="commission",
            key=key,
            commission_id=commission.id,
        )
        made.append(commission)
    if made and await payments.refunded(session, order.id, statuses=("succeeded",)) > 0:
        await settle_refunds(session, order_id=order.id, now=now)  # a refund got here before us
    return made


def _completed_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """The commission's order is 已完成 now, and was completed at or before `cutoff`."""
    done = OrderStatus.COMPLETED
    return and_(
        select(Order.id).where(Order.id == Commission.order_id, Order.status == done).exists(),
        select(OrderEvent.id)
        .where(
            OrderEvent.order_id == Commission.order_id, OrderEvent.to_status == done, OrderEvent.at <= cutoff
        )
        .exists(),
    )


async def next_release_at(session: AsyncSession, *, freeze_days: int) -> dt.datetime | None:
    """When the earliest pending commission of a completed order falls due (None: none waits)."""
    done = OrderStatus.COMPLETED
    completed_at = await session.scalar(
        select(func.min(OrderEvent.at))
        .join(Commission, Commission.order_id == OrderEvent.order_id)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(Commission.status == "pending", Order.status == done, OrderEvent.to_status == done)
    )
    return None if completed_at is None else completed_at + dt.timedelta(days=freeze_days)


async def release_due(session: AsyncSession, *, now: dt.datetime, freeze_days: int) -> list[Commission]:
    """Pending commissions of orders completed at least `freeze_days` ago → available."""
    due = _completed_before(now - dt.timedelta(days=freeze_days))
    rows = (
        await session.execute(
            select(Commission.id, Commission.account, Commission.openid)
            .where(Commission.status == "pending", due)
            .order_by(Commission.id)
        )
    ).all()
    for account in sorted({row.account for row in rows}):
        await _lock_people(session, account, [row.openid for row in rows if row.account == account])
    ids = [row.id for row in rows]
    released: list[Commission] = []
    for commission_id in ids:
        # WHERE status = 'pending': of two workers only one releases it; reversed_fen is read atomically.
        stmt = (
            update(Commission)
            .where(Commission.id == commission_id, Commission.status == "pending", due)
            .values(status="available", released_at=now)
            .returning(Commission)
        )
        c = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
        if c is None:
            continue
        await _transfer(
            session,
            c.account,
            c.openid,
            "pending",
            "available",
            c.amount_fen - c.reversed_fen,
            kind="release",
            key=f"release:{c.id}",
            commission_id=c.id,
        )
        released.append(c)
    return released


async def _get_commission(session: AsyncSession, commission_id: int) -> Commission:
    found = await session.get(Commission, commission_id, populate_existing=True)
    if found is None:
        raise DomainError("not_found", commission_id=commission_id)
    return found


async def _reverse(
    session: AsyncSession,
    commission_id: int,
    *,
    target_of: Callable[[Commission], int],
    allowed: Collection[str],
    prefix: str,
) -> Commission | None:
    """Raise reversed_fen to target_of(commission) and take the difference back from its bucket.

    Compare-and-set on (status, reversed_fen): a release or another refund in between is seen on the
    next try, so the money comes out of the bucket it really sits in. None if there is nothing to do."""
    for _ in range(8):
        c = await _get_commission(session, commission_id)
        old_status, old_reversed, target = c.status, c.reversed_fen, min(target_of(c), c.amount_fen)
        if old_status not in allowed or target <= old_reversed:
            return None
        stmt = (
            update(Commission)
            .where(
                Commission.id == commission_id,
                Commission.status == old_status,
                Commission.reversed_fen == old_reversed,
            )
            .values(reversed_fen=target, status="reversed" if target == c.amount_fen else old_status)
            .returning(Commission)
        )
        done = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
        if done is None:
            continue
        bucket = "available" if old_status == "available" else "pending"  # review money waits in pending
        await _move(
            session,
            done.account,
            done.openid,
            bucket,
            old_reversed - target,
            kind="clawback",
            key=f"{prefix}:{commission_id}:{target}",
            commission_id=commission_id,
        )
        return done
    raise DomainError("conflict", commission_id=commission_id)


async def settle_refunds(session: AsyncSession, *, order_id: int, now: dt.datetime) -> list[Commission]:
    """After a refund of the order changed: reverse each commission in proportion to what went back.

    Only refunds that went through count (a pending WeChat refund may still fail); a released
    commission is taken from `available`, which may go negative: a debt netted by later earnings."""
    paid = await payments.paid_for(session, order_id)
    back = await payments.refunded(session, order_id, statuses=("succeeded",))
    if paid <= 0 or back <= 0:
        return []
    rows = (
        await session.execute(
            select(Commission.id, Commission.account, Commission.openid)
            .where(Commission.order_id == order_id, Commission.status.in_(REVERSIBLE))
            .order_by(Commission.id)
        )
    ).all()
    if rows:
        await _lock_people(session, rows[0].account, [row.openid for row in rows])
    changed: list[Commission] = []
    for commission_id in [row.id for row in rows]:
        done = await _reverse(
            session,
            commission_id,
            target_of=lambda c: c.amount_fen if back >= paid else c.amount_fen * back // paid,
            allowed=REVERSIBLE,
            prefix="clawback",
        )
        if done is not None:
            changed.append(done)
    return changed


async def decide_review(
    session: AsyncSession, *, commission_id: int, approve: bool, actor: str, now: dt.datetime
) -> Commission:
    """Staff decide a commission held by a fraud rule: approve → pending, reject → reversed."""
    c = await _get_commission(session, commission_id)
    if c.status != "review":
        raise DomainError("conflict", commission_id=commission_id, status=c.status)
    verdict = f"{'approved' if approve else 'rejected'} by {actor} at {now.isoformat()}"
    note = f"{c.note}\n{verdict}" if c.note else verdict
    if approve:
        stmt = (
            update(Commission)
            .where(Commission.id == commission_id, Commission.status == "review")
            .values(status="pending", note=note)
            .returning(Commission)
        )
        done = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    else:
        done = await _reverse(
            session, commission_id, target_of=lambda c: c.amount_fen, allowed={"review"}, prefix="reject"
        )
        if done is not None:
            done.note = note
            await session.flush()
    if done is None:  # decided (or refunded in full) meanwhile
        c = await _get_commission(session, commission_id)
        raise DomainError("conflict", commission_id=commission_id, status=c.status)
    return done


async def held_for_review(session: AsyncSession, *, limit: int = 20) -> list[tuple[Commission, str]]:
    """Commissions a fraud rule holds, oldest first, with their order's number."""
    stmt = (
        select(Commission, Order.number)
        .join(Order, Order.id == Commission.order_id)
        .where(Commission.status == "review")
        .order_by(Commission.id)
        .limit(limit)
    )
    return [(c, number) for c, number in (await session.execute(stmt)).all()]


# --- Withdrawals -----------------------------------------------------------------------------------


def fee_for(amount_fen: int, fee_bp: int) -> int:
    """The withdrawal fee: amount × fee_bp, rounded up to the fen, at least 1 fen when there is a fee."""
    if fee_bp <= 0:
        return 0
    return max(1, -(-amount_fen * fee_bp // 10_000))


async def _hold_earnings(session: AsyncSession, account: str, openid: str) -> Earnings | None:
    """Claim the person's Earnings row (a no-op UPDATE) so that the checks below cannot race."""
    stmt = (
        update(Earnings)
        .where(_person(account, openid))
        .values(available_fen=Earnings.available_fen)
        .returning(Earnings)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


async def _requested_today(session: AsyncSession, account: str, openid: str, now: dt.datetime) -> int:
    """The sum of today's (Beijing day) requests that were not refused or failed."""
    start = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    total = await session.scalar(
        select(func.coalesce(func.sum(Withdrawal.amount_fen), 0)).where(
            Withdrawal.account == account,
            Withdrawal.openid == openid,
            Withdrawal.created_at >= start,
            Withdrawal.status.not_in(["refused", "failed"]),
        )
    )
    return int(total or 0)


async def _check_request(
    session: AsyncSession, account: str, openid: str, amount_fen: int, settings: Settings, now: dt.datetime
) -> None:
    """Refuse a request the rules forbid; run while holding the person's Earnings row."""
    held = await _hold_earnings(session, account, openid)
    available = held.available_fen if held is not None else 0
    if available < 0:
        raise DomainError("in_debt", debt_fen=-available)
    open_one = await session.scalar(
        select(Withdrawal)
        .where(
            Withdrawal.account == account,
            Withdrawal.openid == openid,
            Withdrawal.status.in_(OPEN_WITHDRAWALS),
        )
        .limit(1)
    )
    if open_one is not None:
        raise DomainError(
            "one_pending", withdrawal_id=open_one.id, status=open_one.status, amount_fen=open_one.amount_fen
        )
    if amount_fen > available:
        raise DomainError("insufficient_available", available_fen=available, amount_fen=amount_fen)
    today = await _requested_today(session, account, openid, now)
    if today + amount_fen > settings.withdraw_daily_limit_fen:
        left = max(settings.withdraw_daily_limit_fen - today, 0)
        raise DomainError("over_daily_limit", left_fen=left, limit_fen=settings.withdraw_daily_limit_fen)


async def request_withdrawal(
    session: AsyncSession, *, account: str, openid: str, amount_fen: int, settings: Settings, now: dt.datetime
) -> Withdrawal:
    """Ask to be paid `amount_fen` from the available bucket: it moves to held until paid or returned."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen <= 0:
        raise DomainError("bad_amount", amount_fen=amount_fen)
    if amount_fen < settings.withdraw_min_fen:
        raise DomainError("below_minimum", min_fen=settings.withdraw_min_fen, amount_fen=amount_fen)
    fee = fee_for(amount_fen, settings.withdraw_fee_bp)
    if fee >= amount_fen:
        raise DomainError("bad_amount", amount_fen=amount_fen, fee_fen=fee)
    await _check_request(session, account, openid, amount_fen, settings, now)
    values = {"account": account, "openid": openid, "amount_fen": amount_fen, "fee_fen": fee}
    for _ in range(3):  # 60 random bits: a collision is astronomically rare, but never an error
        stmt = (
            upsert_insert(session)(Withdrawal)
            .values(trade_no=_trade_no("WD", now), status="requested", created_at=now, **values)
            .on_conflict_do_nothing(index_elements=["trade_no"])
            .returning(Withdrawal)
        )
        made = (await session.scalars(stmt)).one_or_none()
        if made is not None:
            await _shift(session, made, "available", "held", kind="withdraw")
            return made
    raise DomainError("conflict", openid=openid)


async def get_withdrawal(session: AsyncSession, withdrawal_id: int) -> Withdrawal | None:
    """A withdrawal by id, freshly read."""
    return await session.get(Withdrawal, withdrawal_id, populate_existing=True)


async def _decide(session: AsyncSession, withdrawal_id: int, frm: str, to: str, **values: Any) -> Withdrawal:
    """frm → to with a conditional UPDATE; of two deciders one wins, the other gets `conflict`."""
    stmt = (
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal_id, Withdrawal.status == frm)
        .values(status=to, **values)
        .returning(Withdrawal)
    )
    done = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if done is not None:
        return done
    found = await get_withdrawal(session, withdrawal_id)
    if found is None:
        raise DomainError("not_found", withdrawal_id=withdrawal_id)
    raise DomainError(
        "conflict",
        withdrawal_id=withdrawal_id,
        status=found.status,
        decided_by=found.decided_by,
        decided_at=found.decided_at,
    )


async def _shift(session: AsyncSession, w: Withdrawal, frm: str, to: str, *, kind: str) -> None:
    """Move the withdrawal's amount between buckets, once per (kind, withdrawal)."""
    await _transfer(
        session,
        w.account,
        w.openid,
        frm,
        to,
        w.amount_fen,
        kind=kind,
        key=f"{kind}:{w.id}",
        withdrawal_id=w.id,
    )


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        raise DomainError("bad_reason", max_chars=MAX_REASON_CHARS)
    return reason


async def approve_withdrawal(
    session: AsyncSession, *, withdrawal_id: int, actor: str, now: dt.datetime
) -> Withdrawal:
    """Staff approve a request (requested → approved); the payout job pays it.

    A refund clawed back after the request may have left a debt: paying out now would pay money the
    creator owes, so approval waits (refusing returns the held amount, which nets the debt).
    """
    w = await get_withdrawal(session, withdrawal_id)
    if w is not None and w.status == "requested":
        held = await _hold_earnings(session, w.account, w.openid)
        if held is not None and held.available_fen < 0:
            raise DomainError("in_debt", withdrawal_id=withdrawal_id, debt_fen=-held.available_fen)
    return await _decide(session, withdrawal_id, "requested", "approved", decided_by=actor, decided_at=now)


async def refuse_withdrawal(
    session: AsyncSession, *, withdrawal_id: int, actor: str, reason: str, now: dt.datetime
) -> Withdrawal:
    """Staff refuse a request (requested → refused); the money goes back to available."""
    w = await _decide(
        session,
        withdrawal_id,
        "requested",
        "refused",
        decided_by=actor,
        decided_at=now,
        reason=_reason(reason),
    )
    await _shift(session, w, "held", "available", kind="return")
    return w


async def mark_withdrawal_paid(
    session: AsyncSession, *, withdrawal_id: int, payment_no: str, now: dt.datetime
) -> Withdrawal:
    """The transfer went through (approved → paid): held → withdrawn. The same payment again is a no-op."""
    found = await get_withdrawal(session, withdrawal_id)
    if found is not None and found.status == "paid" and found.payment_no == payment_no:
        return found  # the payout job retried after a crash
    w = await _decide(session, withdrawal_id, "approved", "paid", payment_no=payment_no, paid_at=now)
    await _shift(session, w, "held", "withdrawn", kind="payout")
    return w


async def mark_withdrawal_failed(
    session: AsyncSession, *, withdrawal_id: int, reason: str, now: dt.datetime
) -> Withdrawal:
    """The transfer was refused by WeChat Pay (approved → failed): the money goes back to available."""
    w = await _decide(session, withdrawal_id, "approved", "failed", reason=_reason(reason))
    await _shift(session, w, "held", "available", kind="return")
    return w


async def pending_withdrawals(session: AsyncSession, status: str = "requested") -> list[Withdrawal]:
    """Withdrawals in `status`, oldest first (staff's queue)."""
    stmt = (
        select(Withdrawal).where(Withdrawal.status == status).order_by(Withdrawal.created_at, Withdrawal.id)
    )
    return list(await session.scalars(stmt))


async def approved_unpaid(session: AsyncSession) -> list[Withdrawal]:
    """Approved withdrawals still to pay out, oldest first (for the payout job)."""
    return await pending_withdrawals(session, "approved")


# --- Views -----------------------------------------------------------------------------------------


async def summary(session: AsyncSession, *, account: str, openid: str, limit: int = 5) -> EarningsView:
    """The four bucket totals and the latest `limit` commissions, newest first."""
    row = await session.get(Earnings, (account, openid), populate_existing=True)
    stmt = (
        select(Commission, Order.number)
        .join(Order, Order.id == Commission.order_id)
        .where(Commission.account == account, Commission.openid == openid)
        .order_by(Commission.created_at.desc(), Commission.id.desc())
        .limit(limit)
    )
    recent = [
        CommissionLine(c.id, number, c.depth, c.amount_fen, c.reversed_fen, c.status, c.created_at)
        for c, number in await session.execute(stmt)
    ]
    if row is None:
        return EarningsView(0, 0, 0, 0, recent)
    return EarningsView(row.pending_fen, row.available_fen, row.held_fen, row.withdrawn_fen, recent)


async def check_earnings(session: AsyncSession) -> list[Drift]:
    """Every cached bucket that differs from the sum of its entries (empty = the ledger is sound)."""
    cached: dict[tuple[str, str, str], int] = {}
    columns = [getattr(Earnings, f"{b}_fen") for b in BUCKETS]
    for account, openid, *totals in await session.execute(
        select(Earnings.account, Earnings.openid, *columns)
    ):
        for bucket, total in zip(BUCKETS, totals, strict=True):
            cached[(account, openid, bucket)] = int(total)
    summed_rows = await session.execute(
        select(
            EarningEntry.account, EarningEntry.openid, EarningEntry.bucket, func.sum(EarningEntry.amount_fen)
        ).group_by(EarningEntry.account, EarningEntry.openid, EarningEntry.bucket)
    )
    summed = {(a, o, b): int(total) for a, o, b, total in summed_rows}
    return [
        Drift(*key, cached.get(key, 0), summed.get(key, 0))
        for key in sorted(cached.keys() | summed.keys())
        if cached.get(key, 0) != summed.get(key, 0)
    ]
