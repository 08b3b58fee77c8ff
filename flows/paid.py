"""What a paid order sets off (staff alert and assignment, commissions), in the payment's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from flows import creators, desk, review
from settings import Settings
from store import flash
from store.models import Order
from store.outbox import enqueue


async def after_paid(session: AsyncSession, order: Order, settings: Settings, now: dt.datetime) -> None:
    """Called once per order, right after it became 待审核 (WeChat Pay or balance)."""
    await flash.mark_paid(session, order.id)  # a flash sale's unit is sold
    await desk.order_paid(session, order, settings, now)
    await enqueue(session, *await review.materials_for_review(session, order, settings, now=now))
    await creators.order_paid(session, order, settings, now)
