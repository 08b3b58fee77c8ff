"""The staff desk: what a paid order sets off (assignment, group alert, template card), the cards and
markdown staff see in WeCom, and the desk's jobs (backlog, escalation, publish reminders, daily report).

Everything is written to the outbox in the caller's transaction: channel "wecom" (app messages to
userids, "a|b" for several) and "robot" (the work group, through flows.staff.staff_alert).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts_staff as ts
from flows.format import bar, yuan
from flows.notices import order_notice
from flows.requirements import STEPS, show
from flows.staff import staff_alert
from settings import Settings
from store import orders, payments
from store import staff as desk
from store.errors import DomainError
from store.models import Order, OrderItem, Staff, User, Withdrawal
from store.orders import BEIJING, PROGRESS, OrderStatus
from store.outbox import Outgoing, enqueue, text

WECOM = "wecom"
MAX_RECIPIENT = 64  # outbox.recipient is VARCHAR(64): longer lists of userids go in several messages
ORDER_BUTTONS = ("approve", "reject", "claim")
REVIEW_BUTTONS = ("approve", "reject")
# WeCom's suggested limits for template card fields (longer text is cut off on phones).
_TITLE, _DESC, _KEY, _VALUE, _SUB = 26, 44, 5, 26, 112


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def recipient_groups(userids: Iterable[str]) -> list[str]:
    """Distinct userids joined with "|" into as few recipients as fit the outbox column."""
    groups: list[str] = []
    for userid in dict.fromkeys(u for u in userids if u):
        if groups and len(groups[-1]) + 1 + len(userid) <= MAX_RECIPIENT:
            groups[-1] += "|" + userid
        else:
            groups.append(userid)
    return groups


def to_staff(userids: Iterable[str] | str, content: str, *, dedupe_key: str | None = None) -> list[Outgoing]:
    """A text app message to one member or several."""
    ids = [userids] if isinstance(userids, str) else list(userids)
    groups = recipient_groups(ids)
    return [
        Outgoing(WECOM, group, "text", {"content": content}, f"{dedupe_key}:{n}" if dedupe_key else None)
        for n, group in enumerate(groups)
    ]


def done_label(action: str, name: str) -> str:
    """What a settled card's buttons give way to: "已通过 · 张三"."""
    return ts.CARD_DONE_LABEL.format(verb=ts.DONE_VERBS.get(action, action), name=name)


def card_update(userid: str, response_code: str, label: str) -> Outgoing:
    """Replace the buttons of the card `userid` clicked, for all who got it (a code works once, 72 h)."""
    payload = {"response_code": response_code, "atall": 1, "button": {"replace_name": _clip(label, 20)}}
    return Outgoing(WECOM, userid, "card_update", payload)


async def settled_order_card(
    session: AsyncSession, order: Order, settings: Settings, turn: CardClick, label: str
) -> Outgoing:
    """The clicked card redrawn for all who got it: the order as it is now (status, review, owner), and
    its buttons given way to `label` (WeCom's replace_text) — not a 待审核 card with a done stamp."""
    card = order_card(
        order,
        settings,
        task_id=turn.task_id,
        buttons=ORDER_BUTTONS,
        title=await items_title(session, order.id),
        customer=await customer_name(session, order),
        assignee=await member_name(session, order.assignee),
    )
    card["replace_text"] = _clip(label, 20)
    payload = {"response_code": turn.response_code, "atall": 1, "template_card": card}
    return Outgoing(WECOM, turn.userid, "card_update", payload)


@dataclass(frozen=True, slots=True)
class CardClick:
    """The click a card update answers: who clicked which card, and the code WeCom gave for it."""

    userid: str
    task_id: str
    response_code: str


def assigned_notice(order: Order, member: Staff, how: str, *, by: str = "") -> list[Outgoing]:
    """To the member an order was just given (a store.staff.Tell)."""
    content = ts.ASSIGNED_TO_YOU.format(
        number=order.number, total=yuan(order.total_fen), by=ts.ASSIGNED_BY.format(name=by) if by else ""
    )
    when = order.assigned_at.timestamp() if order.assigned_at else 0
    return to_staff(member.userid, content, dedupe_key=f"assigned:{order.id}:{member.userid}:{when}")


def published_notice(order: Order, piece: dict[str, Any]) -> list[Outgoing]:
    """To the customer: a piece of their order went live."""
    done = PROGRESS.index(OrderStatus(order.status)) + 1 if order.status in PROGRESS else 0
    content = ts.DELIVERABLE_PUBLISHED.format(
        number=order.number,
        title=f"「{piece['title']}」" if piece.get("title") else "",
        url=piece["url"],
        bar=bar(done, len(PROGRESS)),
        status=order.status,
    )
    return [text(order.openid, content, dedupe_key=f"published:{order.id}:{len(order.deliverables)}")]


# --- Facts shown about an order ----------------------------------------------------------------------


async def items_title(session: AsyncSession, order_id: int, *, first_only: bool = False) -> str:
    """'小鹿爱咖啡 1 篇图文笔记' or '小鹿爱咖啡 1 篇图文笔记 等 3 项' (only the first: `first_only`)."""
    rows = list(
        await session.execute(
            select(OrderItem.service_title, OrderItem.package_name)
            .where(OrderItem.order_id == order_id)
            .order_by(OrderItem.id)
        )
    )
    if not rows:
        return ""
    first = f"{rows[0].service_title} {rows[0].package_name}"
    return first if len(rows) == 1 or first_only else ts.ITEMS_MORE.format(first=first, n=len(rows))


async def customer_name(session: AsyncSession, order: Order) -> str:
    """The customer's nickname, or the tail of their openid."""
    nickname = await session.scalar(
        select(User.nickname).where(User.account == order.account, User.openid == order.openid)
    )
    return nickname or ts.CUSTOMER_FALLBACK.format(tail=order.openid[-4:])


async def member_name(session: AsyncSession, userid: str | None) -> str:
    """A member's name (removed members too), the userid if unknown, or 未分配."""
    if not userid:
        return ts.UNASSIGNED
    member = await session.get(Staff, userid)
    return member.name if member is not None else userid


def publish_when(order: Order) -> str:
    when = desk.publish_time(order)
    return "" if when is None else f"{when.astimezone(BEIJING):%m-%d %H:%M}"


# --- A paid order ------------------------------------------------------------------------------------


async def order_paid(session: AsyncSession, order: Order, settings: Settings, now: dt.datetime) -> None:
    """Right after payment: assign it if someone can take it, alert the group, send the card."""
    await desk.assign(session, order, settings, now, notify=order_notice, tell=assigned_notice)
    order = await session.get(Order, order.id, populate_existing=True) or order
    title = await items_title(session, order.id)
    alert = ts.PAID_ALERT.format(
        number=order.number,
        total=yuan(order.total_fen),
        items=title,
        customer=await customer_name(session, order),
        assignee=await member_name(session, order.assignee),
    )
    await enqueue(session, *staff_alert(settings, alert, key=f"paid:{order.id}"))
    buttons = REVIEW_BUTTONS if order.assignee else ORDER_BUTTONS
    await send_order_card(session, order, settings, now, buttons=buttons)


async def card_recipients(
    session: AsyncSession, order: Order, buttons: Sequence[str], *, with_assignee: bool = True
) -> list[str]:
    """Who gets an order's card: reviewers (and admins) on duty, its owner, and, while nobody owns it
    and 接单 is offered, the ops members on duty."""
    wanted = [m.userid for m in await desk.members_with(session, "reviewer", on_duty=True)]
    if order.assignee:
        if with_assignee:
            wanted.append(order.assignee)
    elif "claim" in buttons:
        wanted += [m.userid for m in await desk.members_with(session, "ops", on_duty=True)]
    return list(dict.fromkeys(wanted))


async def send_order_card(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    now: dt.datetime,
    *,
    buttons: Sequence[str] = ORDER_BUTTONS,
    with_assignee: bool = True,
    to: Sequence[str] | None = None,
) -> list[str]:
    """A button card about the order to the staff concerned (or to `to`); the task ids (one per group)."""
    recipients = (
        list(to)
        if to is not None
        else await card_recipients(session, order, buttons, with_assignee=with_assignee)
    )
    facts = {
        "title": await items_title(session, order.id),
        "customer": await customer_name(session, order),
        "assignee": await member_name(session, order.assignee),
    }
    task_ids = []
    for group in recipient_groups(recipients):
        task_id = f"order-{order.id}-{secrets.token_hex(6)}"
        card = order_card(order, settings, task_id=task_id, buttons=buttons, **facts)
        await desk.add_card(
            session, task_id=task_id, subject=f"order:{order.id}", recipients=group.split("|"), now=now
        )
        await enqueue(
            session, Outgoing(WECOM, group, "template_card", {"template_card": card}, f"card:{task_id}")
        )
        task_ids.append(task_id)
    return task_ids


def order_card(
    order: Order,
    settings: Settings,
    *,
    task_id: str,
    buttons: Sequence[str],
    title: str,
    customer: str,
    assignee: str,
) -> dict[str, Any]:
    """A WeCom button_interaction card: the order at a glance, and its buttons (key action:<order id>)."""
    rows = [(ts.CARD_SERVICE, title), (ts.CARD_CUSTOMER, customer), (ts.CARD_ASSIGNEE, assignee)]
    if when := publish_when(order):
        rows.append((ts.CARD_PUBLISH, when))
    style = {"approve": 1, "reject": 2, "claim": 1}
    return {
        "card_type": "button_interaction",
        "source": {"desc": ts.CARD_SOURCE.format(brand=settings.brand)},
        "main_title": {
            "title": _clip(ts.CARD_TITLE.format(number=order.number, total=yuan(order.total_fen)), _TITLE),
            "desc": _clip(
                ts.CARD_DESC.format(status=order.status, review=ts.REVIEW_STATES.get(order.review)), _DESC
            ),
        },
        "sub_title_text": _clip(title, _SUB),
        "horizontal_content_list": [
            {"keyname": _clip(k, _KEY), "value": _clip(v or ts.NOBODY, _VALUE)} for k, v in rows
        ],
        "task_id": task_id,
        "button_list": [
            {"text": ts.BUTTONS[b], "style": style.get(b, 1), "key": f"{b}:{order.id}"} for b in buttons
        ],
    }


def withdrawal_card(withdrawal: Withdrawal, settings: Settings, *, task_id: str, who: str) -> dict[str, Any]:
    """A card to approve or refuse one withdrawal (keys wd_approve:<id>, wd_refuse:<id>)."""
    at = f"{withdrawal.created_at.astimezone(BEIJING):%m-%d %H:%M}"
    rows = [
        (ts.WITHDRAWAL_CARD_WHO, who),
        (ts.WITHDRAWAL_CARD_NET, yuan(withdrawal.amount_fen - withdrawal.fee_fen)),
        (ts.WITHDRAWAL_CARD_FEE, yuan(withdrawal.fee_fen)),
    ]
    return {
        "card_type": "button_interaction",
        "source": {"desc": ts.CARD_SOURCE.format(brand=settings.brand)},
        "main_title": {
            "title": _clip(
                ts.WITHDRAWAL_CARD_TITLE.format(id=withdrawal.id, amount=yuan(withdrawal.amount_fen)), _TITLE
            ),
            "desc": ts.WITHDRAWAL_CARD_DESC.format(at=at),
        },
        "horizontal_content_list": [{"keyname": k, "value": _clip(v, _VALUE)} for k, v in rows],
        "task_id": task_id,
        "button_list": [
            {"text": ts.BUTTONS["wd_approve"], "style": 1, "key": f"wd_approve:{withdrawal.id}"},
            {"text": ts.BUTTONS["wd_refuse"], "style": 2, "key": f"wd_refuse:{withdrawal.id}"},
        ],
    }


async def withdrawal_card_message(
    session: AsyncSession,
    withdrawal: Withdrawal,
    userid: str,
    settings: Settings,
    now: dt.datetime,
    *,
    who: str,
) -> Outgoing:
    """One withdrawal's card for the member who asked for the list (remembered as a WorkCard)."""
    task_id = f"wd-{withdrawal.id}-{secrets.token_hex(6)}"
    card = withdrawal_card(withdrawal, settings, task_id=task_id, who=who)
    await desk.add_card(
        session, task_id=task_id, subject=f"withdrawal:{withdrawal.id}", recipients=[userid], now=now
    )
    return Outgoing(WECOM, userid, "template_card", {"template_card": card}, f"card:{task_id}")


# --- Jobs: each takes (sessionmaker, settings, now) and returns how many things it did -------------------


async def catch_up_cards(session: AsyncSession, settings: Settings, now: dt.datetime, member: Staff) -> int:
    """A reviewer coming on duty gets the cards of the orders waiting for review that reached nobody
    (paid while no one was on duty) or not them; how many were sent."""
    if not desk.can(member, "approve"):
        return 0
    waiting = {f"order:{o.id}": o for o in await desk.pending_reviews(session)}
    missing = await desk.without_open_card(session, member.userid, list(waiting))
    for subject in missing:
        order = waiting[subject]
        buttons = ORDER_BUTTONS if order.assignee is None else REVIEW_BUTTONS
        await send_order_card(session, order, settings, now, buttons=buttons, to=[member.userid])
    return len(missing)


async def hand_out_backlog(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Paid orders nobody owns go to whoever is on duty with the skill and room, oldest first."""
    async with sessionmaker.begin() as session:
        return await desk.hand_out(session, settings, now, notify=order_notice, tell=assigned_notice)


async def escalate_waiting(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Orders in 待审核 longer than CHATORDER_ESCALATE_MINUTES: once each, to the group and the admins."""
    after = dt.timedelta(minutes=settings.escalate_minutes)
    async with sessionmaker.begin() as session:
        due = await desk.waiting_too_long(session, now=now, after=after)
        admins = [m.userid for m in await desk.members_with(session)]
        escalated = 0
        for order_id in due:
            order = await desk.mark_escalated(session, order_id=order_id, now=now)
            if order is None:
                continue
            paid_at = order.updated_at if order.updated_at else now
            values = {
                "number": order.number,
                "total": yuan(order.total_fen),
                "minutes": max(settings.escalate_minutes, int((now - paid_at).total_seconds() // 60)),
                "waiting": ts.WAITING_REVIEW if order.review is None else ts.WAITING_OWNER,
                "assignee": await member_name(session, order.assignee),
            }
            await enqueue(
                session,
                *staff_alert(settings, ts.ESCALATION_ALERT.format(**values), key=f"escalate:{order.id}"),
            )
            await enqueue(
                session,
                *to_staff(admins, ts.ESCALATION_TEXT.format(**values), dedupe_key=f"escalate:{order.id}"),
            )
            escalated += 1
        return escalated


async def remind_publish(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Once per order, CHATORDER_PUBLISH_REMIND_HOURS before its publish time: a text to its owner."""
    within = dt.timedelta(hours=settings.publish_remind_hours)
    async with sessionmaker.begin() as session:
        reminded = 0
        for order_id in await desk.publish_due(session, now=now, within=within):
            order = await desk.mark_publish_reminded(session, order_id=order_id, now=now)
            when = desk.publish_time(order) if order is not None else None
            if order is None or when is None or order.assignee is None:
                continue
            hours = max(1, round((when - now).total_seconds() / 3600))
            content = ts.PUBLISH_REMINDER.format(number=order.number, when=publish_when(order), hours=hours)
            await enqueue(
                session, *to_staff(order.assignee, content, dedupe_key=f"publish-reminder:{order.id}")
            )
            reminded += 1
        return reminded


def figures_values(fig: desk.Figures) -> dict[str, Any]:
    """The figures as the texts show them."""
    return {
        "gmv": yuan(fig.gmv_fen),
        "paid": fig.paid_orders,
        "completed": fig.completed,
        "customers": fig.new_customers,
        "creators": fig.new_creators,
        "reviews": fig.pending_reviews,
        "assigned": fig.by_state.get(OrderStatus.ASSIGNED, 0),
        "working": fig.by_state.get(OrderStatus.IN_PROGRESS, 0),
        "refunding": fig.by_state.get(OrderStatus.REFUNDING, 0),
        "withdrawals": fig.pending_withdrawals,
    }


async def today(session: AsyncSession, now: dt.datetime) -> str:
    """今日: the figures of the Beijing day so far."""
    start, _ = desk.beijing_day(now)
    fig = await desk.figures(session, start=start, end=now)
    return ts.TODAY.format(time=f"{now.astimezone(BEIJING):%H:%M}", **figures_values(fig))


async def daily_report(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Once per Beijing day, from CHATORDER_REPORT_HOUR on: the previous day's figures to the work group."""
    local = now.astimezone(BEIJING)
    key = f"report:{local:%Y%m%d}"
    if local.hour < settings.report_hour or not settings.wecom_robot_key.get_secret_value():
        return 0
    async with sessionmaker.begin() as session:
        if await desk.enqueued(session, f"staff:{key}"):
            return 0
        start, end = desk.beijing_day(now, days_back=1)
        fig = await desk.figures(session, start=start, end=end)
        if fig.quiet:  # nothing happened and nothing waits: no post (a fresh install stays silent)
            return 0
        content = ts.REPORT.format(day=f"{start:%m月%d日}", **figures_values(fig))
        await enqueue(session, *staff_alert(settings, content, key=key))
    return 1


async def order_by_number(session: AsyncSession, number: str) -> Order:
    """An order by its number, or not_found."""
    found = await orders.order_by_number(session, number)
    if found is None:
        raise DomainError("not_found", number=number)
    return found


# --- What staff read -----------------------------------------------------------------------------------


async def _who(session: AsyncSession, actor: str) -> str:
    kind, _, ref = actor.partition(":")
    if kind == "staff":
        return await member_name(session, ref)
    return ts.ACTOR_NAMES.get(kind, actor)


def _answer(key: str, value: Any) -> str:
    # Staff call the customer: the phone number is shown whole (customers see it masked).
    if key == "contact" and isinstance(value, dict):
        return f"{value.get('name', '')} {value.get('phone', '')}".strip()
    return show(key, value)


async def order_detail(session: AsyncSession, order: Order) -> str:
    """查单: the order as staff see it — lines, answers, owner, review, deliverables, recent history."""
    view = await orders.get_order(session, order.id)
    if view is None:
        raise DomainError("not_found", number=order.number)
    order = view.order
    lines = "\n".join(
        ts.DETAIL_LINE.format(
            title=i.service_title,
            package=i.package_name,
            qty=i.quantity,
            subtotal=yuan(i.unit_price_fen * i.quantity),
        )
        for i in view.items
    )
    answers = "".join(
        ts.DETAIL_ANSWER.format(label=STEPS[k].label, value=_answer(k, order.requirements[k]))
        for k in STEPS
        if k in order.requirements and k != "ref_images"
    )
    pieces = "\n".join(
        ts.DETAIL_DELIVERABLE.format(title=d.get("title", ""), url=d["url"]) for d in order.deliverables
    )
    timeline = [
        ts.DETAIL_EVENT.format(
            at=f"{e.at.astimezone(BEIJING):%m-%d %H:%M}",
            to=e.to_status,
            who=await _who(session, e.actor),
            reason=f"：{e.reason}" if e.reason else "",
        )
        for e in view.events[-ts.DETAIL_EVENTS :]
    ]
    back = await payments.refunded(session, order.id, statuses=("succeeded",))
    return ts.ORDER_DETAIL.format(
        number=order.number,
        status=order.status,
        total=yuan(order.total_fen),
        refunded=ts.DETAIL_REFUNDED.format(amount=yuan(back)) if back else "",
        customer=await customer_name(session, order),
        assignee=await member_name(session, order.assignee),
        review=ts.REVIEW_STATES.get(order.review, order.review),
        lines=lines,
        answers=answers,
        materials=ts.DETAIL_MATERIALS.format(n=len(view.materials)) if view.materials else "",
        deliverables=ts.DETAIL_DELIVERABLES.format(items=pieces) if pieces else "",
        note=ts.DETAIL_NOTE.format(note=order.review_note)
        if order.review == "resubmit" and order.review_note
        else "",
        timeline="\n".join(timeline),
    )


async def queue_text(session: AsyncSession, member: Staff, now: dt.datetime) -> str:
    """待办: the member's open orders; reviewers also see what waits for review, admins the backlog."""
    mine = await desk.queue_of(session, member.userid)
    lines = []
    for i, o in enumerate(mine, start=1):
        when = publish_when(o)
        lines.append(
            ts.QUEUE_LINE.format(
                i=i,
                number=o.number,
                status=o.status,
                total=yuan(o.total_fen),
                title=await items_title(session, o.id),
                when=ts.QUEUE_PUBLISH.format(when=when) if when else "",
            )
        )
    reply = ts.QUEUE_HEAD.format(n=len(mine), lines="\n".join(lines)) if mine else ts.QUEUE_EMPTY
    if desk.can(member, "approve") and (waiting := await desk.pending_reviews(session)):
        review_lines = [
            ts.QUEUE_REVIEW_LINE.format(
                i=i,
                number=o.number,
                total=yuan(o.total_fen),
                minutes=int((now - o.updated_at).total_seconds() // 60),
            )
            for i, o in enumerate(waiting, start=1)
        ]
        reply += ts.QUEUE_REVIEWS.format(n=len(waiting), lines="\n".join(review_lines))
    if desk.can(member, "assign") and (backlog := await desk.backlog_size(session)):
        reply += ts.QUEUE_BACKLOG.format(n=backlog)
    return reply


async def staff_list_text(session: AsyncSession, settings: Settings) -> str:
    """员工 列表: who is registered, their roles, duty and load."""
    members = await desk.list_members(session)
    if not members:
        return ts.STAFF_NONE
    lines = [
        ts.STAFF_LINE.format(
            name=m.name,
            userid=m.userid,
            roles=role_names(m.roles),
            duty=ts.DUTY_ON if m.on_duty else ts.DUTY_OFF,
            open=n,
            limit=m.max_open or settings.staff_max_open,
            skills=ts.STAFF_SKILLS.format(skills="、".join(m.skills)) if m.skills else "",
        )
        for m, n in members
    ]
    return ts.STAFF_LIST.format(n=len(members), lines="\n".join(lines))


def role_names(roles: Iterable[str]) -> str:
    return "、".join(ts.ROLE_NAMES.get(r, r) for r in roles)
