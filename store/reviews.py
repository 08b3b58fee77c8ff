"""Reviews: one 1–5 score (and an optional comment) per completed order, and what a service's show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.errors import DomainError
from store.models import Order, OrderItem, Package, Review
from store.orders import OrderStatus

MAX_COMMENT = 200
OPEN_FOR = dt.timedelta(days=30)  # a completed order can be reviewed this long after it last changed


async def unreviewed(session: AsyncSession, *, account: str, openid: str, now: dt.datetime) -> list[Order]:
    """The person's completed orders not yet reviewed (newest first), completed within OPEN_FOR."""
    reviewed = select(Review.order_id)
    query = (
        select(Order)
        .where(
            Order.account == account,
            Order.openid == openid,
            Order.status == OrderStatus.COMPLETED,
            Order.updated_at >= now - OPEN_FOR,
            Order.id.not_in(reviewed),
        )
        .order_by(Order.updated_at.desc(), Order.id.desc())
    )
    return list(await session.scalars(query))


async def add(session: AsyncSession, order: Order, *, score: int, comment: str, now: dt.datetime) -> Review:
    """Keep the review; refused for an order not completed, a score outside 1–5, or a second review."""
    if order.status != OrderStatus.COMPLETED:
        raise DomainError("not_reviewable", number=order.number, status=order.status)
    if not 1 <= score <= 5:
        raise DomainError("bad_score", score=score)
    review = Review(
        order_id=order.id,
        account=order.account,
        openid=order.openid,
        score=score,
        comment=comment.strip()[:MAX_COMMENT] or None,
        at=now,
    )
    try:
        async with session.begin_nested():  # the unique order_id decides between two at once
            session.add(review)
    except IntegrityError:
        raise DomainError("already_reviewed", number=order.number) from None
    return review


async def of_order(session: AsyncSession, order_id: int) -> Review | None:
    return await session.scalar(select(Review).where(Review.order_id == order_id))


@dataclass(frozen=True, slots=True)
class ServiceReviews:
    average: float
    count: int
    latest: list[str]  # the latest comments, newest first


_OF_SERVICE = Review.order_id.in_(
    select(OrderItem.order_id)
    .join(Package, Package.id == OrderItem.package_id)
    .where(Package.service_id == bindparam("service_id"))
)
# Built once: every service detail shown reads them.
_SCORE = select(func.avg(Review.score), func.count(Review.id)).where(_OF_SERVICE)
_COMMENTS = (
    select(Review.comment)
    .where(_OF_SERVICE, Review.comment.is_not(None))
    .order_by(Review.at.desc(), Review.id.desc())
    .limit(bindparam("latest"))
)


async def for_service(session: AsyncSession, service_id: int, *, latest: int = 3) -> ServiceReviews | None:
    """The average and count of the reviews of orders that bought the service, and its latest comments."""
    row = (await session.execute(_SCORE, {"service_id": service_id})).one()
    if not row[1]:
        return None
    comments = await session.scalars(_COMMENTS, {"service_id": service_id, "latest": latest})
    return ServiceReviews(float(row[0]), int(row[1]), [c for c in comments if c])
