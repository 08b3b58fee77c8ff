"""What a paid order sets off (staff alert and assignment, commissions), in the payment's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from flows import creators, desk, review
from settings import Settings
from store import catalog, flash
from store.models import Order
from store.outbox import enqueue
from store.turns import FlowState


async def after_paid(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    now: dt.datetime,
    *,
    state: FlowState | None = None,
) -> None:
    """Called once per order, right after it became 待审核 (WeChat Pay or balance).

    `state`: the payer's flow state when this runs in their own turn (see review.ask_requirements)."""
    flash_order = await flash.mark_paid(session, order.id)  # a flash sale's unit is sold
    await desk.order_paid(session, order, settings, now)
    keys = await _unanswered(session, order) if flash_order else []
    if keys:  # reviewers get the materials once the customer has given them
        await review.ask_requirements(session, order, keys, settings=settings, now=now, state=state)
    else:
        await enqueue(session, *await review.materials_for_review(session, order, settings, now=now))
    await creators.order_paid(session, order, settings, now)


async def _unanswered(session: AsyncSession, order: Order) -> list[str]:
    """A flash order's package requirements (taken in one tap, it has no answers yet)."""
    if order.requirements:
        return []
    found = await flash.sale_of_order(session, order.id)
    package = await catalog.get_package(session, found[1].package_id) if found else None
    return list(package[1].requirements) if package else []
