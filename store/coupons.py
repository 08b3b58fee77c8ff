"""Coupons: amount off or percent off with a cap, a minimum spend, a validity window, one per person
per source; the best one is applied when an order is placed, and comes back when the order is
cancelled or refunded while it is still valid. Amounts are int fen; an order never drops below ¥0.01.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import upsert_insert
from store.errors import DomainError
from store.models import Coupon, MarketingOptOut


def check_spec(spec: dict[str, Any]) -> str | None:
    """Why a coupon spec is wrong, or None: {off_fen} or {percent, cap_fen}, min_fen, days."""
    off, percent = int(spec.get("off_fen", 0)), int(spec.get("percent", 0))
    if (off > 0) == (percent > 0):
        return "写 off（减多少元）或 percent（打几折，1–99）其中一个"
    if not 0 <= percent <= 99:
        return "percent 应是 1–99"
    if not 1 <= int(spec.get("days", 7)) <= 365:
        return "days 应是 1–365"
    return None


async def issue(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    source: str,
    title: str,
    spec: dict[str, Any],
    now: dt.datetime,
) -> Coupon | None:
    """Give the person the coupon of `source` once; None if they already had it."""
    stmt = (
        upsert_insert(session)(Coupon)
        .values(
            account=account,
            openid=openid,
            source=source,
            title=title,
            off_fen=int(spec.get("off_fen", 0)),
            percent=int(spec.get("percent", 0)),
            cap_fen=spec.get("cap_fen"),
            min_fen=int(spec.get("min_fen", 0)),
            valid_from=now,
            valid_until=now + dt.timedelta(days=int(spec.get("days", 7))),
            status="available",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["account", "openid", "source"])
        .returning(Coupon)
    )
    return (await session.scalars(stmt)).one_or_none()


def discount(coupon: Coupon, subtotal_fen: int) -> int:
    """What the coupon takes off `subtotal_fen` (0 below its minimum spend); at least ¥0.01 is left."""
    if subtotal_fen < max(coupon.min_fen, 2):
        return 0
    off = coupon.off_fen if coupon.off_fen else subtotal_fen * coupon.percent // 100
    if coupon.cap_fen is not None and not coupon.off_fen:
        off = min(off, coupon.cap_fen)
    return max(0, min(off, subtotal_fen - 1))


async def usable(session: AsyncSession, *, account: str, openid: str, now: dt.datetime) -> list[Coupon]:
    """The person's coupons that can be used now, soonest to expire first."""
    stmt = (
        select(Coupon)
        .where(
            Coupon.account == account,
            Coupon.openid == openid,
            Coupon.status == "available",
            Coupon.valid_from <= now,
            Coupon.valid_until > now,
        )
        .order_by(Coupon.valid_until, Coupon.id)
    )
    return list(await session.scalars(stmt))


async def mine(session: AsyncSession, *, account: str, openid: str) -> list[Coupon]:
    stmt = (
        select(Coupon)
        .where(Coupon.account == account, Coupon.openid == openid)
        .order_by(Coupon.status, Coupon.valid_until.desc(), Coupon.id)
    )
    return list(await session.scalars(stmt))


async def best(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    subtotal_fen: int,
    now: dt.datetime,
    prefer: int | None = None,
) -> tuple[Coupon, int] | None:
    """The coupon to use on `subtotal_fen`: the one chosen with 用券 if it applies, else the best."""
    found = [
        (c, discount(c, subtotal_fen)) for c in await usable(session, account=account, openid=openid, now=now)
    ]
    found = [(c, d) for c, d in found if d > 0]
    chosen = [x for x in found if x[0].id == prefer]
    if chosen:
        return chosen[0]
    return max(found, key=lambda x: x[1], default=None)


async def use(session: AsyncSession, coupon: Coupon, order_id: int) -> None:
    """Mark the coupon used on the order (a conditional UPDATE: one coupon, one order)."""
    stmt = (
        update(Coupon)
        .where(Coupon.id == coupon.id, Coupon.status == "available")
        .values(status="used", order_id=order_id)
        .returning(Coupon.id)
        .execution_options(synchronize_session=False)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise DomainError("conflict", coupon_id=coupon.id)


async def give_back(session: AsyncSession, order_id: int, now: dt.datetime) -> None:
    """The order was cancelled or refunded: its coupon is usable again while still valid."""
    await session.execute(
        update(Coupon)
        .where(Coupon.order_id == order_id, Coupon.status == "used", Coupon.valid_until > now)
        .values(status="available", order_id=None)
        .execution_options(synchronize_session=False)
    )


# --- 退订 / 订阅 ------------------------------------------------------------------------------------


async def opt_out(session: AsyncSession, *, account: str, openid: str, now: dt.datetime) -> None:
    await session.execute(
        upsert_insert(session)(MarketingOptOut)
        .values(account=account, openid=openid, at=now)
        .on_conflict_do_nothing(index_elements=["account", "openid"])
    )


async def opt_in(session: AsyncSession, *, account: str, openid: str) -> None:
    await session.execute(
        delete(MarketingOptOut).where(MarketingOptOut.account == account, MarketingOptOut.openid == openid)
    )


async def opted_out(session: AsyncSession, *, account: str, openid: str) -> bool:
    found = await session.scalar(
        select(MarketingOptOut.openid).where(
            MarketingOptOut.account == account, MarketingOptOut.openid == openid
        )
    )
    return found is not None
