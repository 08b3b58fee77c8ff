"""The funnel: new followers → searched → viewed a service → started an order → ordered → paid.

The first four steps are FunnelEvent rows, written with the turn that took them (webhooks.pipeline
adds them to the turn's writes; handlers mark a step with ctx.mark). The last two come from the
orders' own append-only history (OrderEvent: created, then paid). Each step counts people, not
events: someone who searched five times is one searcher.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Insert, distinct, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import FunnelEvent, Order, OrderEvent
from store.orders import OrderStatus
from store.writer import Write

MARKED = ("followed", "searched", "viewed", "started")
STEPS = (*MARKED, "ordered", "paid")
_INSERT: Insert = insert(FunnelEvent)


def writes(account: str, openid: str, steps: list[str], at: dt.datetime) -> list[Write]:
    """The turn's steps as rows for the group writer (each step once per turn)."""
    rows: list[dict[str, Any]] = [
        {"account": account, "openid": openid, "step": step, "at": at} for step in dict.fromkeys(steps)
    ]
    return [(_INSERT, row) for row in rows if row["step"] in MARKED]


async def counts(session: AsyncSession, *, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """People at each step between start and end."""
    marked = await session.execute(
        select(FunnelEvent.step, func.count(distinct(FunnelEvent.openid)))
        .where(FunnelEvent.at >= start, FunnelEvent.at < end)
        .group_by(FunnelEvent.step)
    )
    out = dict.fromkeys(STEPS, 0) | {step: int(n) for step, n in marked}
    for step, where in (
        ("ordered", OrderEvent.from_status.is_(None)),
        ("paid", OrderEvent.to_status == OrderStatus.PENDING_REVIEW),
    ):
        out[step] = int(
            await session.scalar(
                select(func.count(distinct(Order.openid)))
                .join(OrderEvent, OrderEvent.order_id == Order.id)
                .where(where, OrderEvent.at >= start, OrderEvent.at < end)
            )
            or 0
        )
    return out
