"""Staff: the registry and its roles, the audit log, assignment of paid orders, staff's actions on orders,
template cards answered once, and the figures of a day.

No WeChat here: what people are told comes from caller-supplied builders (`Notify` for customers,
`Tell` for the member an order goes to), written to the outbox in the caller's transaction. Every
action changes nothing on refusal (DomainError) and writes an AuditEntry in the same transaction.
Exactly-once rests on conditional UPDATEs (`assignee IS NULL`, `review IS NULL`, `done_by IS NULL`),
which hold on SQLite (one writer) and PostgreSQL (row locks, re-checked after a wait) alike.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from settings import Settings
from store import orders
from store.db import upsert_insert
from store.errors import DomainError
from store.models import (
    AuditEntry,
    Conversation,
    Creator,
    Order,
    OrderEvent,
    OrderItem,
    OutboxMessage,
    Package,
    Refund,
    Service,
    Staff,
    User,
    Withdrawal,
    WorkCard,
    utcnow,
)
from store.orders import BEIJING, Notify, OrderStatus
from store.outbox import Outgoing, enqueue

ROLES = ("admin", "ops", "reviewer", "finance")
# Who may do what; admins may do everything, and None means any registered member.
PERMISSIONS: dict[str, frozenset[str] | None] = {
    "lookup": None,
    "queue": None,
    "today": None,
    "help": None,
    "duty": None,
    "approve": frozenset({"reviewer"}),
    "reject": frozenset({"reviewer"}),
    "claim": frozenset({"ops"}),
    "start": frozenset({"ops"}),
    "publish": frozenset({"ops"}),
    "complete": frozenset({"ops"}),
    "reply": frozenset({"ops"}),
    "results": frozenset({"ops"}),  # 数据: record delivery figures
    "report": None,  # 报告: read an order's report
    "export": frozenset({"finance"}),  # 导出 订单 YYYY-MM: the month for accounting
    "board": None,  # 看板: the operators' figures
    "refund": frozenset({"finance"}),
    "withdrawals": frozenset({"finance"}),
    "commissions": frozenset({"finance"}),
    "assign": frozenset(),
    "staff": frozenset(),
    "flash": frozenset(),  # 秒杀 列表 / 查看 / 停止: admins
}
# An order someone is working on: it counts against their limit and shows in their queue.
OPEN: tuple[OrderStatus, ...] = (OrderStatus.PENDING_REVIEW, OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS)
WORKING: tuple[OrderStatus, ...] = (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS)
USERID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MAX_NAME = 64
MAX_URL = 500
MAX_TITLE = 100
DEMO_STAFF = ("zhangsan", "张三", ROLES)
PENDING_FLOW = "work"  # a staff member's conversation row holds at most the desk's one question

# (order, member, how: auto | claim | admin) -> messages to the member who now owns the order.
Tell = Callable[[Order, Staff, str], list[Outgoing]]


def no_tell(order: Order, member: Staff, how: str) -> list[Outgoing]:
    return []


def actor_of(userid: str) -> str:
    """How a member appears in order events and the audit log."""
    return f"staff:{userid}"


# --- Audit ---------------------------------------------------------------------------------------


async def audit(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log, in the caller's transaction."""
    session.add(AuditEntry(at=now, actor=actor, action=action, target=target, detail=detail or {}))
    await session.flush()


async def audit_trail(session: AsyncSession, target: str) -> list[AuditEntry]:
    """Everything done to `target` (order:<number>, staff:<userid>, withdrawal:<id>), oldest first."""
    stmt = select(AuditEntry).where(AuditEntry.target == target).order_by(AuditEntry.at, AuditEntry.id)
    return list(await session.scalars(stmt))


# --- Registry and roles --------------------------------------------------------------------------


def can(member: Staff, action: str) -> bool:
    """Whether the member's roles allow `action` (a key of PERMISSIONS)."""
    allowed = PERMISSIONS[action]
    return allowed is None or "admin" in member.roles or bool(allowed & set(member.roles))


def check(member: Staff | None, action: str) -> Staff:
    """The member, if registered, active and allowed to do `action`; else a refusal."""
    if member is None or not member.active:
        raise DomainError("not_staff")
    if not can(member, action):
        raise DomainError("forbidden", action=action, roles=sorted(PERMISSIONS[action] or ()))
    return member


async def get_member(session: AsyncSession, userid: str) -> Staff | None:
    """An active member by WeCom userid (removed members are None)."""
    member = await session.get(Staff, userid, populate_existing=True)
    return member if member is not None and member.active else None


async def find_member(session: AsyncSession, who: str) -> Staff | None:
    """An active member by userid, or by name when exactly one member has it."""
    who = who.strip().lstrip("@")
    if (member := await get_member(session, who)) is not None:
        return member
    named = list(await session.scalars(select(Staff).where(Staff.name == who, Staff.active.is_(True))))
    return named[0] if len(named) == 1 else None


def _roles(roles: Iterable[str]) -> list[str]:
    wanted = {r.strip().lower() for r in roles if r.strip()}
    if not wanted or not wanted <= set(ROLES):
        raise DomainError("bad_roles", roles=",".join(sorted(wanted)))
    return sorted(wanted, key=ROLES.index)


async def add_member(
    session: AsyncSession,
    *,
    userid: str,
    name: str,
    roles: Iterable[str],
    skills: Iterable[str] = (),
    max_open: int | None = None,
    on_duty: bool = True,
    actor: str,
    now: dt.datetime,
) -> Staff:
    """Register a member, or update (and reactivate) one registered before."""
    if not USERID.fullmatch(userid):
        raise DomainError("bad_userid", userid=userid)
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise DomainError("bad_name", max_chars=MAX_NAME)
    if max_open is not None and max_open < 1:
        raise DomainError("bad_max_open", max_open=max_open)
    values = {
        "name": name,
        "roles": _roles(roles),
        "skills": sorted({s.strip() for s in skills if s.strip()}),
        "max_open": max_open,
        "on_duty": on_duty,
        "active": True,
    }
    stmt = (
        upsert_insert(session)(Staff)
        .values(userid=userid, created_at=now, **values)
        .on_conflict_do_update(index_elements=["userid"], set_=values)
        .returning(Staff)
    )
    member: Staff = (await session.scalars(stmt, execution_options={"populate_existing": True})).one()
    detail = {k: v for k, v in values.items() if k != "active"}
    await audit(session, actor=actor, action="staff_add", target=f"staff:{userid}", now=now, detail=detail)
    return member


async def remove_member(session: AsyncSession, *, userid: str, actor: str, now: dt.datetime) -> list[str]:
    """Deactivate a member (the audit trail keeps them); their orders not yet started go back to be
    handed out. Returns the numbers of orders still theirs (已分配/执行中), for an admin to reassign."""
    stmt = (
        update(Staff)
        .where(Staff.userid == userid, Staff.active.is_(True))
        .values(active=False, on_duty=False)
        .returning(Staff.userid)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise DomainError("no_member", who=userid)
    released = await session.scalars(
        update(Order)
        .where(Order.assignee == userid, Order.status == OrderStatus.PENDING_REVIEW)
        .values(assignee=None, assigned_at=None)
        .returning(Order.number)
        .execution_options(synchronize_session=False)
    )
    kept = await session.scalars(
        select(Order.number).where(Order.assignee == userid, Order.status.in_(WORKING)).order_by(Order.id)
    )
    numbers = list(kept)
    detail = {"released": sorted(released), "kept": numbers}
    await audit(session, actor=actor, action="staff_remove", target=f"staff:{userid}", now=now, detail=detail)
    return numbers


async def set_duty(
    session: AsyncSession, *, userid: str, on_duty: bool, actor: str, now: dt.datetime
) -> Staff:
    """Put a member on or off duty: only members on duty are given new orders."""
    stmt = (
        update(Staff)
        .where(Staff.userid == userid, Staff.active.is_(True))
        .values(on_duty=on_duty)
        .returning(Staff)
    )
    member = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if member is None:
        raise DomainError("no_member", who=userid)
    action = "duty_on" if on_duty else "duty_off"
    await audit(session, actor=actor, action=action, target=f"staff:{userid}", now=now)
    return member


async def list_members(session: AsyncSession, *, include_removed: bool = False) -> list[tuple[Staff, int]]:
    """Members with how many open orders each has, active ones first, by name."""
    stmt = select(Staff).order_by(Staff.active.desc(), Staff.name, Staff.userid)
    if not include_removed:
        stmt = stmt.where(Staff.active.is_(True))
    members = list(await session.scalars(stmt))
    counts = await open_counts(session, [m.userid for m in members])
    return [(m, counts.get(m.userid, 0)) for m in members]


async def members_with(session: AsyncSession, *roles: str, on_duty: bool | None = None) -> list[Staff]:
    """Active members having any of `roles` (admins always count), optionally only those on duty."""
    stmt = select(Staff).where(Staff.active.is_(True)).order_by(Staff.created_at, Staff.userid)
    if on_duty is not None:
        stmt = stmt.where(Staff.on_duty.is_(on_duty))
    wanted = {"admin", *roles}
    return [m for m in await session.scalars(stmt) if wanted & set(m.roles)]


async def ensure_demo_staff(session: AsyncSession) -> bool:
    """The demo's one member (张三, every role) on first start; False if already there."""
    userid, name, roles = DEMO_STAFF
    if await session.get(Staff, userid) is not None:
        return False
    await add_member(session, userid=userid, name=name, roles=roles, actor="demo", now=utcnow())
    return True


# --- Assignment ----------------------------------------------------------------------------------


async def open_counts(session: AsyncSession, userids: Collection[str] | None = None) -> dict[str, int]:
    """Open orders per assignee."""
    stmt = (
        select(Order.assignee, func.count())
        .where(Order.assignee.is_not(None), Order.status.in_(OPEN))
        .group_by(Order.assignee)
    )
    if userids is not None:
        stmt = stmt.where(Order.assignee.in_(list(userids)))
    return {str(userid): int(n) for userid, n in await session.execute(stmt)}


async def order_categories(session: AsyncSession, order_id: int) -> set[str]:
    """The catalog categories of an order's lines (达人营销, 课程 …)."""
    stmt = (
        select(Service.category)
        .join(Package, Package.service_id == Service.id)
        .join(OrderItem, OrderItem.package_id == Package.id)
        .where(OrderItem.order_id == order_id)
    )
    return set(await session.scalars(stmt))


def _limit(member: Staff, settings: Settings) -> int:
    return member.max_open if member.max_open is not None else settings.staff_max_open


async def _candidates(session: AsyncSession, categories: set[str]) -> list[Staff]:
    """On-duty ops (or admins) with every skill the order needs (no skills = any), next in turn first."""
    members = await members_with(session, "ops", on_duty=True)
    fit = [m for m in members if not m.skills or categories <= set(m.skills)]
    # Round-robin: whoever was given an order longest ago (or never) goes first.
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(fit, key=lambda m: (m.last_assigned_at or never, m.created_at, m.userid))


async def _take_turn(session: AsyncSession, member: Staff, settings: Settings, now: dt.datetime) -> bool:
    """Hold the member's row, then check their room: two orders assigned at once never overfill anyone."""
    before = member.last_assigned_at
    stmt = (
        update(Staff)
        .where(Staff.userid == member.userid, Staff.active.is_(True), Staff.on_duty.is_(True))
        .values(last_assigned_at=now)
        .returning(Staff.max_open)
        .execution_options(synchronize_session=False)
    )
    held = (await session.execute(stmt)).one_or_none()
    if held is None:  # went off duty or was removed meanwhile
        return False
    member.max_open = held.max_open
    # Counted after the hold: a concurrent assignment to this member has committed or waits for us.
    if (await open_counts(session, [member.userid])).get(member.userid, 0) < _limit(member, settings):
        return True
    await session.execute(
        update(Staff)
        .where(Staff.userid == member.userid)
        .values(last_assigned_at=before)
        .execution_options(synchronize_session=False)
    )
    return False


async def _set_assignee(
    session: AsyncSession, order_id: int, userid: str, now: dt.datetime, *extra: ColumnElement[bool]
) -> Order | None:
    """The claim itself: of two concurrent claims of one order exactly one sets the assignee."""
    stmt = (
        update(Order)
        .where(Order.id == order_id, *extra)
        .values(assignee=userid, assigned_at=now)
        .returning(Order)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


async def _assigned_if_approved(session: AsyncSession, order: Order, *, actor: str, notify: Notify) -> Order:
    """待审核 → 已分配 once the order is both approved and owned (whichever came second moves it)."""
    if order.status == OrderStatus.PENDING_REVIEW and order.review == "approved" and order.assignee:
        return await orders.transition(
            session, order_id=order.id, to=OrderStatus.ASSIGNED, actor=actor, notify=notify
        )
    return order


async def assign(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    now: dt.datetime,
    *,
    notify: Notify,
    tell: Tell = no_tell,
) -> str | None:
    """Give a paid, unowned order to the next on-duty member with the skill and room for it.

    Returns their userid, or None when nobody can take it now (it stays in the backlog)."""
    if order.assignee is not None or order.status != OrderStatus.PENDING_REVIEW:
        return None
    for member in await _candidates(session, await order_categories(session, order.id)):
        if not await _take_turn(session, member, settings, now):
            continue
        unowned = (Order.assignee.is_(None), Order.status == OrderStatus.PENDING_REVIEW)
        taken = await _set_assignee(session, order.id, member.userid, now, *unowned)
        if taken is None:  # claimed by hand meanwhile
            return None
        await audit(
            session,
            actor="system",
            action="assign",
            target=f"order:{taken.number}",
            now=now,
            detail={"to": member.userid, "how": "auto"},
        )
        await enqueue(session, *tell(taken, member, "auto"))
        await _assigned_if_approved(session, taken, actor="system", notify=notify)
        return member.userid
    return None


async def hand_out(
    session: AsyncSession,
    settings: Settings,
    now: dt.datetime,
    *,
    notify: Notify,
    tell: Tell = no_tell,
    limit: int = 50,
) -> int:
    """Assign the backlog (paid orders nobody owns), oldest first, as far as members have room."""
    if not await members_with(session, "ops", on_duty=True):
        return 0
    stmt = (
        select(Order)
        .where(Order.status == OrderStatus.PENDING_REVIEW, Order.assignee.is_(None))
        .order_by(Order.updated_at, Order.id)
        .limit(limit)
        # Several workers (PostgreSQL) each take different orders; SQLite has one writer anyway.
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    handed = 0
    for order in list(await session.scalars(stmt)):
        if await assign(session, order, settings, now, notify=notify, tell=tell) is not None:
            handed += 1
    return handed


# --- Staff's actions on orders -------------------------------------------------------------------


async def _hold(session: AsyncSession, order_id: int) -> Order:
    """Lock the order's row for this transaction (a no-op UPDATE), then read it as it is now."""
    stmt = update(Order).where(Order.id == order_id).values(status=Order.status).returning(Order)
    order = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if order is None:
        raise DomainError("not_found", order_id=order_id)
    return order


def _owner_or_admin(order: Order, member: Staff) -> None:
    if order.assignee != member.userid and "admin" not in member.roles:
        raise DomainError("not_yours", number=order.number, assignee=order.assignee or "")


async def approve(
    session: AsyncSession, *, order_id: int, member: Staff, notify: Notify, now: dt.datetime
) -> Order:
    """通过: the customer's materials are fine; with an owner the order moves on to 已分配."""
    check(member, "approve")
    stmt = (
        update(Order)
        .where(
            Order.id == order_id,
            Order.status == OrderStatus.PENDING_REVIEW,
            or_(Order.review.is_(None), Order.review == "resubmit"),
        )
        .values(review="approved")
        .returning(Order)
    )
    order = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if order is None:
        current = await _hold(session, order_id)
        if current.review == "approved":
            raise DomainError("already_approved", number=current.number)
        raise DomainError("not_reviewable", number=current.number, status=current.status)
    await audit(
        session, actor=actor_of(member.userid), action="approve", target=f"order:{order.number}", now=now
    )
    return await _assigned_if_approved(session, order, actor=actor_of(member.userid), notify=notify)


async def claim(
    session: AsyncSession, *, order_id: int, member: Staff, notify: Notify, now: dt.datetime
) -> Order:
    """接单: take an order nobody owns yet; of two members claiming at once exactly one gets it."""
    check(member, "claim")
    unowned = (Order.assignee.is_(None), Order.status == OrderStatus.PENDING_REVIEW)
    order = await _set_assignee(session, order_id, member.userid, now, *unowned)
    if order is None:
        current = await _hold(session, order_id)
        if current.assignee == member.userid:
            raise DomainError("already_yours", number=current.number)
        if current.assignee:
            raise DomainError("taken", number=current.number, assignee=current.assignee)
        raise DomainError("not_claimable", number=current.number, status=current.status)
    await audit(
        session, actor=actor_of(member.userid), action="claim", target=f"order:{order.number}", now=now
    )
    return await _assigned_if_approved(session, order, actor=actor_of(member.userid), notify=notify)


async def reassign(
    session: AsyncSession,
    *,
    order_id: int,
    member: Staff,
    to: Staff,
    notify: Notify,
    now: dt.datetime,
    tell: Tell = no_tell,
) -> tuple[Order, str | None]:
    """分配 (admins): give an open order to `to`; returns the order and who had it before."""
    check(member, "assign")
    if not to.active:
        raise DomainError("no_member", who=to.userid)
    before = await _hold(session, order_id)
    if before.status not in OPEN:
        raise DomainError("not_assignable", number=before.number, status=before.status)
    previous = before.assignee
    if previous == to.userid:
        raise DomainError("already_assigned", number=before.number, assignee=to.userid)
    order = await _set_assignee(session, order_id, to.userid, now)
    assert order is not None  # held above
    detail = {"to": to.userid, "from": previous, "how": "admin"}
    await audit(
        session,
        actor=actor_of(member.userid),
        action="assign",
        target=f"order:{order.number}",
        now=now,
        detail=detail,
    )
    await enqueue(session, *tell(order, to, "admin"))
    return await _assigned_if_approved(session, order, actor=actor_of(member.userid), notify=notify), previous


async def _advance(
    session: AsyncSession,
    *,
    order_id: int,
    member: Staff,
    action: str,
    frm: OrderStatus,
    to: OrderStatus,
    notify: Notify,
    now: dt.datetime,
) -> Order:
    check(member, action)
    order = await _hold(session, order_id)
    _owner_or_admin(order, member)
    if order.status != frm:
        raise DomainError(f"cannot_{action}", number=order.number, status=order.status)
    changed = await orders.transition(
        session, order_id=order.id, to=to, actor=actor_of(member.userid), notify=notify
    )
    await audit(
        session, actor=actor_of(member.userid), action=action, target=f"order:{order.number}", now=now
    )
    return changed


async def start(
    session: AsyncSession, *, order_id: int, member: Staff, notify: Notify, now: dt.datetime
) -> Order:
    """开始: 已分配 → 执行中 (the owner, or an admin)."""
    return await _advance(
        session,
        order_id=order_id,
        member=member,
        action="start",
        frm=OrderStatus.ASSIGNED,
        to=OrderStatus.IN_PROGRESS,
        notify=notify,
        now=now,
    )


async def complete(
    session: AsyncSession, *, order_id: int, member: Staff, notify: Notify, now: dt.datetime
) -> Order:
    """完成: 执行中 → 已完成 (the owner, or an admin)."""
    return await _advance(
        session,
        order_id=order_id,
        member=member,
        action="complete",
        frm=OrderStatus.IN_PROGRESS,
        to=OrderStatus.COMPLETED,
        notify=notify,
        now=now,
    )


async def publish(
    session: AsyncSession, *, order_id: int, member: Staff, url: str, title: str, now: dt.datetime
) -> tuple[Order, dict[str, Any]]:
    """发布: add a published piece (link) to the order's deliverables; returns the order and the piece."""
    check(member, "publish")
    url, title = url.strip(), title.strip()[:MAX_TITLE]
    if not url.startswith(("http://", "https://")) or len(url) > MAX_URL or "." not in url.split("//", 1)[1]:
        raise DomainError("bad_url", url=url[:80])
    # Held first: two links published at once both end up in the list.
    order = await _hold(session, order_id)
    _owner_or_admin(order, member)
    if order.status not in (*WORKING, OrderStatus.COMPLETED):
        raise DomainError("not_publishable", number=order.number, status=order.status)
    piece = {"at": now.isoformat(timespec="seconds"), "title": title, "url": url}
    order.deliverables = [*order.deliverables, piece]
    await session.flush()
    await audit(
        session,
        actor=actor_of(member.userid),
        action="publish",
        target=f"order:{order.number}",
        now=now,
        detail=piece,
    )
    return order, piece


# --- Template cards ------------------------------------------------------------------------------


async def add_card(
    session: AsyncSession, *, task_id: str, subject: str, recipients: Sequence[str], now: dt.datetime
) -> WorkCard:
    """Remember a card sent to staff (subject order:<id> or withdrawal:<id>)."""
    card = WorkCard(task_id=task_id, subject=subject, recipients=list(recipients), created_at=now)
    session.add(card)
    await session.flush()
    return card


async def without_open_card(session: AsyncSession, userid: str, subjects: Sequence[str]) -> list[str]:
    """Those of `subjects` about which `userid` holds no open card (recipients are a JSON list: checked
    here rather than in SQL, the same on SQLite and PostgreSQL)."""
    stmt = select(WorkCard.subject, WorkCard.recipients).where(
        WorkCard.subject.in_(subjects), WorkCard.done_by.is_(None)
    )
    held = {subject for subject, recipients in await session.execute(stmt) if userid in (recipients or [])}
    return [s for s in subjects if s not in held]


async def get_card(session: AsyncSession, task_id: str) -> WorkCard | None:
    return await session.get(WorkCard, task_id, populate_existing=True)


async def settle_cards(
    session: AsyncSession, *, subject: str, userid: str, action: str, now: dt.datetime
) -> list[str]:
    """Mark every open card about `subject` as done by `userid`; the task ids settled now.

    WHERE done_by IS NULL: of two clicks at once (or a click and a typed command) one settles them."""
    stmt = (
        update(WorkCard)
        .where(WorkCard.subject == subject, WorkCard.done_by.is_(None))
        .values(done_by=userid, done_action=action, done_at=now)
        .returning(WorkCard.task_id)
        .execution_options(synchronize_session=False)
    )
    return list(await session.scalars(stmt))


async def settled_card(session: AsyncSession, subject: str) -> WorkCard | None:
    """The card about `subject` settled first (who did what), if any."""
    stmt = (
        select(WorkCard)
        .where(WorkCard.subject == subject, WorkCard.done_by.is_not(None))
        .order_by(WorkCard.done_at, WorkCard.task_id)
        .limit(1)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


# --- Queues, jobs' selections and figures --------------------------------------------------------


async def queue_of(session: AsyncSession, userid: str) -> list[Order]:
    """The member's open orders, oldest first."""
    stmt = (
        select(Order)
        .where(Order.assignee == userid, Order.status.in_(OPEN))
        .order_by(Order.updated_at, Order.id)
    )
    return list(await session.scalars(stmt))


async def pending_reviews(session: AsyncSession, *, limit: int = 20) -> list[Order]:
    """Paid orders whose materials nobody has reviewed yet, oldest first."""
    stmt = (
        select(Order)
        .where(Order.status == OrderStatus.PENDING_REVIEW, Order.review.is_(None))
        .order_by(Order.updated_at, Order.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def backlog_size(session: AsyncSession) -> int:
    """Paid orders nobody owns yet."""
    stmt = select(func.count()).where(Order.status == OrderStatus.PENDING_REVIEW, Order.assignee.is_(None))
    return int(await session.scalar(stmt) or 0)


def _paid_at() -> Any:
    """When the order became 待审核 (its payment), as a correlated scalar subquery."""
    return (
        select(func.max(OrderEvent.at))
        .where(OrderEvent.order_id == Order.id, OrderEvent.to_status == OrderStatus.PENDING_REVIEW)
        .scalar_subquery()
    )


async def waiting_too_long(session: AsyncSession, *, now: dt.datetime, after: dt.timedelta) -> list[int]:
    """Ids of 待审核 orders paid longer than `after` ago, not escalated yet, and not waiting on the
    customer (materials sent back)."""
    stmt = (
        select(Order.id)
        .where(
            Order.status == OrderStatus.PENDING_REVIEW,
            Order.escalated_at.is_(None),
            or_(Order.review.is_(None), Order.review != "resubmit"),
            _paid_at() <= now - after,
        )
        .order_by(Order.id)
    )
    return list(await session.scalars(stmt))


async def mark_escalated(session: AsyncSession, *, order_id: int, now: dt.datetime) -> Order | None:
    """Record the one escalation of an order; None if another worker (or an action) got there first."""
    stmt = (
        update(Order)
        .where(
            Order.id == order_id,
            Order.status == OrderStatus.PENDING_REVIEW,
            Order.escalated_at.is_(None),
        )
        .values(escalated_at=now)
        .returning(Order)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


def publish_time(order: Order) -> dt.datetime | None:
    """The scheduled publish time from the order form (ISO, Beijing), if any and readable."""
    value = (order.requirements or {}).get("publish_time")
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=BEIJING)


async def publish_due(session: AsyncSession, *, now: dt.datetime, within: dt.timedelta) -> list[int]:
    """Ids of owned orders in work whose publish time falls within `within` from now, not reminded yet."""
    stmt = select(Order).where(
        Order.status.in_(WORKING), Order.assignee.is_not(None), Order.publish_reminded_at.is_(None)
    )
    due = []
    for order in await session.scalars(stmt):
        when = publish_time(order)
        if when is not None and now < when <= now + within:
            due.append(order.id)
    return sorted(due)


async def mark_publish_reminded(session: AsyncSession, *, order_id: int, now: dt.datetime) -> Order | None:
    """Record the one reminder; None if it was already sent (or the order left work)."""
    stmt = (
        update(Order)
        .where(Order.id == order_id, Order.status.in_(WORKING), Order.publish_reminded_at.is_(None))
        .values(publish_reminded_at=now)
        .returning(Order)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()


async def enqueued(session: AsyncSession, dedupe_key: str) -> bool:
    """Whether a message with this dedupe key was already written to the outbox."""
    found = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key))
    return found is not None


def beijing_day(now: dt.datetime, days_back: int = 0) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the Beijing calendar day `days_back` days before `now`'s, as aware datetimes."""
    local = now.astimezone(BEIJING).date() - dt.timedelta(days=days_back)
    start = dt.datetime(local.year, local.month, local.day, tzinfo=BEIJING)
    return start, start + dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Figures:
    """A period's money and growth, and the queues as they are now."""

    start: dt.datetime
    end: dt.datetime
    gmv_fen: int  # paid in the period, less refunds made in it (not failed)
    paid_orders: int  # orders paid in the period
    completed: int  # orders completed in the period
    new_customers: int  # people seen for the first time in the period
    new_creators: int  # creators who got their invite code in the period
    by_state: dict[str, int] = field(default_factory=dict)  # open orders per state, now
    pending_reviews: int = 0  # 待审核 with materials not reviewed, now
    pending_withdrawals: int = 0  # withdrawals waiting for a decision, now

    @property
    def quiet(self) -> bool:
        """Nothing happened in the period and nothing waits."""
        moved = (self.gmv_fen, self.paid_orders, self.completed, self.new_customers, self.new_creators)
        return not any(moved) and not any(self.by_state.values()) and not self.pending_withdrawals


async def figures(session: AsyncSession, *, start: dt.datetime, end: dt.datetime) -> Figures:
    """The figures of [start, end): GMV, orders, new customers and creators, and what waits now."""

    def within(column: Any) -> list[ColumnElement[bool]]:
        return [column >= start, column < end]

    paid_ids = (
        select(OrderEvent.order_id)
        .where(OrderEvent.to_status == OrderStatus.PENDING_REVIEW, *within(OrderEvent.at))
        .distinct()
    )
    paid = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Order.total_fen), 0)).where(Order.id.in_(paid_ids))
        )
    ).one()
    refunded = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.status != "failed", *within(Refund.created_at)
        )
    )
    completed = await session.scalar(
        select(func.count(func.distinct(OrderEvent.order_id))).where(
            OrderEvent.to_status == OrderStatus.COMPLETED, *within(OrderEvent.at)
        )
    )
    customers = await session.scalar(
        select(func.count()).select_from(User).where(*within(User.first_seen_at))
    )
    creators = await session.scalar(
        select(func.count()).select_from(Creator).where(*within(Creator.created_at))
    )
    states = (*OPEN, OrderStatus.REFUNDING)
    by_state = dict.fromkeys([str(s) for s in states], 0)
    rows = await session.execute(
        select(Order.status, func.count()).where(Order.status.in_(states)).group_by(Order.status)
    )
    by_state.update({str(status): int(n) for status, n in rows})
    reviews = await session.scalar(
        select(func.count()).where(Order.status == OrderStatus.PENDING_REVIEW, Order.review.is_(None))
    )
    withdrawals = await session.scalar(
        select(func.count()).select_from(Withdrawal).where(Withdrawal.status == "requested")
    )
    return Figures(
        start=start,
        end=end,
        gmv_fen=int(paid[1]) - int(refunded or 0),
        paid_orders=int(paid[0]),
        completed=int(completed or 0),
        new_customers=int(customers or 0),
        new_creators=int(creators or 0),
        by_state=by_state,
        pending_reviews=int(reviews or 0),
        pending_withdrawals=int(withdrawals or 0),
    )


# --- A member's pending question (the reason asked for after 驳回 on a card) ---------------------


async def pending_question(session: AsyncSession, *, account: str, userid: str) -> dict[str, Any] | None:
    """What the desk asked this member and is waiting for (flow "work" of their conversation)."""
    row = await session.get(Conversation, (account, userid), populate_existing=True)
    if row is None or row.flow != PENDING_FLOW or not row.data:
        return None
    return dict(row.data)


async def ask_question(
    session: AsyncSession, *, account: str, userid: str, data: dict[str, Any], now: dt.datetime
) -> None:
    """Remember that the member's next text answers `data` (one question at a time; a new one replaces it)."""
    values = {"flow": PENDING_FLOW, "step": str(data.get("kind", "")), "data": data, "updated_at": now}
    stmt = (
        upsert_insert(session)(Conversation)
        .values(account=account, openid=userid, version=0, **values)
        .on_conflict_do_update(
            index_elements=["account", "openid"], set_={**values, "version": Conversation.version + 1}
        )
    )
    await session.execute(stmt)


async def drop_question(session: AsyncSession, *, account: str, userid: str) -> None:
    """Forget the member's pending question."""
    await session.execute(
        update(Conversation)
        .where(
            Conversation.account == account, Conversation.openid == userid, Conversation.flow == PENDING_FLOW
        )
        .values(flow=None, step=None, data={}, version=Conversation.version + 1)
        .execution_options(synchronize_session=False)
    )
