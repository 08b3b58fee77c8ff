"""The staff desk on SQLite and PostgreSQL: assignment, backlog, atomic claims, escalation, publish
reminders, the daily report's figures, role refusals and the audit trail."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from sqlalchemy import select

from flows import desk
from flows import texts_staff as ts
from flows.format import yuan
from flows.notices import order_notice
from flows.paid import after_paid
from settings import Settings, load_settings
from store import orders, staff
from store.errors import DomainError
from store.models import (
    AuditEntry,
    Creator,
    Order,
    OrderEvent,
    OutboxMessage,
    Package,
    Refund,
    Service,
    User,
    Withdrawal,
    WorkCard,
    utcnow,
)
from store.orders import BEIJING, Line
from tests.factories import Maker

ACCOUNT = "gh_desk"
_seq = itertools.count(1)


def desk_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"wecom_robot_key": "robot-key", "staff_max_open": 10, "log_format": "text"}
    return load_settings(**(values | overrides))


async def add_service(sm: Maker, category: str = "达人营销", price_fen: int = 100_000) -> int:
    """A listed service of `category` with one package; the package id."""
    async with sm.begin() as s:
        service = Service(
            code=f"desk{next(_seq)}",
            title=f"{category}服务",
            platform="小红书",
            category=category,
            status="listed",
        )
        s.add(service)
        await s.flush()
        package = Package(service_id=service.id, position=1, name="标准套餐", price_fen=price_fen)
        s.add(package)
        await s.flush()
        return package.id


async def pay(
    sm: Maker,
    settings: Settings,
    package_id: int,
    *,
    openid: str = "o_buyer",
    requirements: dict[str, Any] | None = None,
) -> Order:
    """An order placed and paid, with what payment sets off (flows.paid.after_paid), in one transaction."""
    async with sm.begin() as s:
        order = await orders.create_order(
            s,
            account=ACCOUNT,
            openid=openid,
            lines=[Line(package_id, 1)],
            requirements=requirements or {},
            source_key=f"desk:{next(_seq)}",
            notify=order_notice,
        )
        order = await orders.mark_paid(s, order_id=order.id, notify=order_notice)
        await after_paid(s, order, settings, utcnow())
        return order


async def register(sm: Maker, userid: str, *roles: str, **values: Any) -> None:
    async with sm.begin() as s:
        await staff.add_member(
            s,
            userid=userid,
            name=values.pop("name", userid.upper()),
            roles=roles,
            actor="cli",
            now=utcnow(),
            **values,
        )


async def member(sm: Maker, userid: str) -> Any:
    async with sm() as s:
        found = await staff.get_member(s, userid)
    assert found is not None
    return found


async def fresh(sm: Maker, order_id: int) -> Order:
    async with sm() as s:
        order = await s.get(Order, order_id)
    assert order is not None
    return order


async def outbox(sm: Maker, **where: Any) -> list[OutboxMessage]:
    async with sm() as s:
        stmt = select(OutboxMessage).filter_by(**where).order_by(OutboxMessage.id)
        return list(await s.scalars(stmt))


async def audit_of(sm: Maker, target: str) -> list[tuple[str, str]]:
    async with sm() as s:
        return [(e.actor, e.action) for e in await staff.audit_trail(s, target)]


# --- Assignment ------------------------------------------------------------------------------------


async def test_round_robin_among_three_respects_skills_and_limits(sm: Maker) -> None:
    settings = desk_settings()
    marketing, course = await add_service(sm, "达人营销"), await add_service(sm, "课程")
    await register(sm, "amy", "ops", skills=["达人营销"], max_open=1)
    await register(sm, "bob", "ops", max_open=2)  # no skills: any category
    await register(sm, "cat", "ops", skills=["课程"])
    got = [(await pay(sm, settings, marketing)).id for _ in range(4)]
    owners = [(await fresh(sm, i)).assignee for i in got]
    # amy first (never assigned), bob next; amy is then full (1), bob takes one more (2); then nobody.
    assert owners == ["amy", "bob", "bob", None]
    lesson = await pay(sm, settings, course)
    assert (await fresh(sm, lesson.id)).assignee == "cat"  # the only one with the skill and room
    async with sm() as s:
        assert await staff.open_counts(s) == {"amy": 1, "bob": 2, "cat": 1}
    told = [m.recipient for m in await outbox(sm, channel="wecom", kind="text")]
    assert told == ["amy", "bob", "bob", "cat"]  # each owner heard of each new order once


async def test_equal_members_take_turns(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    for userid in ("d1", "d2", "d3"):
        await register(sm, userid, "ops")
    got = [(await pay(sm, settings, package)).id for _ in range(6)]
    assert [(await fresh(sm, i)).assignee for i in got] == ["d1", "d2", "d3", "d1", "d2", "d3"]


async def test_backlog_is_handed_out_when_someone_comes_on_duty_or_frees_up(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "eve", "ops", max_open=1, on_duty=False)
    first, second = await pay(sm, settings, package), await pay(sm, settings, package)
    assert (await fresh(sm, first.id)).assignee is None
    assert await desk.hand_out_backlog(sm, settings, utcnow()) == 0  # nobody on duty: both wait
    async with sm.begin() as s:
        await staff.set_duty(s, userid="eve", on_duty=True, actor="staff:eve", now=utcnow())
    assert await desk.hand_out_backlog(sm, settings, utcnow()) == 1  # her limit is one: the oldest
    assert (await fresh(sm, first.id)).assignee == "eve"
    assert (await fresh(sm, second.id)).assignee is None
    # She works it through; done, she has room, and the second order is hers (never forgotten).
    eve = await member(sm, "eve")
    async with sm.begin() as s:
        await staff.approve(s, order_id=first.id, member=await _admin(sm), notify=order_notice, now=utcnow())
        await staff.start(s, order_id=first.id, member=eve, notify=order_notice, now=utcnow())
        await staff.complete(s, order_id=first.id, member=eve, notify=order_notice, now=utcnow())
    assert await desk.hand_out_backlog(sm, settings, utcnow()) == 1
    assert (await fresh(sm, second.id)).assignee == "eve"
    assert await desk.hand_out_backlog(sm, settings, utcnow()) == 0


async def _admin(sm: Maker) -> Any:
    async with sm() as s:
        found = await staff.get_member(s, "root")
    if found is None:
        await register(sm, "root", "admin", on_duty=False)
        return await member(sm, "root")
    return found


async def test_two_concurrent_claims_give_the_order_one_owner(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "fay", "ops", on_duty=False)
    await register(sm, "gus", "ops", on_duty=False)
    order = await pay(sm, settings, package)  # nobody on duty: unowned

    async def claim(userid: str) -> str:
        who = await member(sm, userid)
        try:
            async with sm.begin() as s:
                await staff.claim(s, order_id=order.id, member=who, notify=order_notice, now=utcnow())
        except DomainError as exc:
            return exc.code
        return "ok"

    results = await asyncio.gather(claim("fay"), claim("gus"), claim("fay"), claim("gus"))
    assert results.count("ok") == 1
    assert set(results) <= {"ok", "taken", "already_yours"}
    owner = (await fresh(sm, order.id)).assignee
    assert owner in ("fay", "gus")
    assert await audit_of(sm, f"order:{order.number}") == [(f"staff:{owner}", "claim")]


async def test_approval_and_ownership_in_either_order_make_it_assigned(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "rev", "reviewer")
    await register(sm, "hal", "ops", on_duty=False)
    reviewer, hal = await member(sm, "rev"), await member(sm, "hal")
    one, two = await pay(sm, settings, package), await pay(sm, settings, package)
    async with sm.begin() as s:  # approved first: stays 待审核 until someone owns it
        approved = await staff.approve(s, order_id=one.id, member=reviewer, notify=order_notice, now=utcnow())
        assert (approved.status, approved.review) == ("待审核", "approved")
        claimed = await staff.claim(s, order_id=one.id, member=hal, notify=order_notice, now=utcnow())
        assert claimed.status == "已分配"
    async with sm.begin() as s:  # owned first, then approved
        await staff.claim(s, order_id=two.id, member=hal, notify=order_notice, now=utcnow())
        assert (
            await staff.approve(s, order_id=two.id, member=reviewer, notify=order_notice, now=utcnow())
        ).status == "已分配"
    with pytest.raises(DomainError) as refused:
        async with sm.begin() as s:
            await staff.approve(s, order_id=two.id, member=reviewer, notify=order_notice, now=utcnow())
    assert refused.value.code == "already_approved"
    async with sm() as s:
        events = list(
            await s.scalars(select(OrderEvent).where(OrderEvent.order_id == two.id).order_by(OrderEvent.id))
        )
    assert [(e.to_status, e.actor) for e in events][-1] == ("已分配", "staff:rev")
    notices = [
        m.payload["content"]
        for m in await outbox(sm, channel="mp")
        if "已安排专人负责" in m.payload["content"]
    ]
    assert len(notices) == 2  # each customer told once


# --- Cards and alerts --------------------------------------------------------------------------------


async def test_a_paid_order_alerts_the_group_and_cards_the_staff_on_duty(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "rev", "reviewer", name="李审")
    await register(sm, "ops1", "ops", name="王芳")
    await register(sm, "away", "reviewer", on_duty=False)
    order = await pay(sm, settings, package)
    robot = await outbox(sm, channel="robot")
    assert [m.dedupe_key for m in robot] == [f"staff:paid:{order.id}"]
    assert order.number in robot[0].payload["content"] and "王芳" in robot[0].payload["content"]
    cards = await outbox(sm, channel="wecom", kind="template_card")
    assert len(cards) == 1 and cards[0].recipient == "rev|ops1"  # reviewers on duty and the owner
    card = cards[0].payload["template_card"]
    assert card["card_type"] == "button_interaction"
    assert [b["key"] for b in card["button_list"]] == [f"approve:{order.id}", f"reject:{order.id}"]
    assert order.number in card["main_title"]["title"]
    async with sm() as s:
        rows = list(await s.scalars(select(WorkCard)))
    assert [(r.task_id, r.subject, r.recipients) for r in rows] == [
        (card["task_id"], f"order:{order.id}", ["rev", "ops1"])
    ]


async def test_an_unowned_order_offers_claim_to_ops_on_duty(sm: Maker) -> None:
    settings = desk_settings(staff_max_open=1)
    package = await add_service(sm)
    await register(sm, "ops1", "ops")
    await pay(sm, settings, package)  # ops1 is now full
    second = await pay(sm, settings, package)
    card = (await outbox(sm, channel="wecom", kind="template_card"))[-1]
    assert card.recipient == "ops1"
    keys = [b["key"] for b in card.payload["template_card"]["button_list"]]
    assert keys == [f"approve:{second.id}", f"reject:{second.id}", f"claim:{second.id}"]


async def test_settling_a_card_has_one_winner(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "r1", "reviewer")
    await register(sm, "r2", "reviewer")
    order = await pay(sm, settings, package)

    async def settle(userid: str) -> list[str]:
        async with sm.begin() as s:
            return await staff.settle_cards(
                s, subject=f"order:{order.id}", userid=userid, action="approve", now=utcnow()
            )

    won = await asyncio.gather(settle("r1"), settle("r2"))
    assert sorted(len(w) for w in won) == [0, 1]
    async with sm() as s:
        card = await staff.settled_card(s, f"order:{order.id}")
    assert card is not None and card.done_by in ("r1", "r2") and card.done_action == "approve"


# --- Jobs ----------------------------------------------------------------------------------------------


async def test_a_waiting_order_is_escalated_once(sm: Maker) -> None:
    settings = desk_settings(escalate_minutes=30)
    package = await add_service(sm)
    await register(sm, "boss", "admin", on_duty=False)
    order = await pay(sm, settings, package)
    now = utcnow()
    assert await desk.escalate_waiting(sm, settings, now + dt.timedelta(minutes=10)) == 0
    assert await desk.escalate_waiting(sm, settings, now + dt.timedelta(minutes=31)) == 1
    assert await desk.escalate_waiting(sm, settings, now + dt.timedelta(minutes=45)) == 0
    alerts = [m for m in await outbox(sm, channel="robot") if m.dedupe_key == f"staff:escalate:{order.id}"]
    assert len(alerts) == 1 and order.number in alerts[0].payload["content"]
    texts = [m for m in await outbox(sm, channel="wecom", kind="text") if m.recipient == "boss"]
    assert len(texts) == 1 and "待审核" in texts[0].payload["content"]
    assert (await fresh(sm, order.id)).escalated_at is not None


async def test_an_order_waiting_on_the_customer_is_not_escalated(sm: Maker) -> None:
    settings = desk_settings(escalate_minutes=30)
    order = await pay(sm, settings, await add_service(sm))
    async with sm.begin() as s:
        row = await s.get(Order, order.id)
        assert row is not None
        row.review = "resubmit"
    assert await desk.escalate_waiting(sm, settings, utcnow() + dt.timedelta(hours=2)) == 0


async def test_publish_reminder_goes_to_the_owner_once(sm: Maker) -> None:
    settings = desk_settings(publish_remind_hours=2)
    package = await add_service(sm)
    await register(sm, "ivy", "ops", "reviewer")
    ivy = await member(sm, "ivy")
    soon = (utcnow() + dt.timedelta(minutes=90)).astimezone(BEIJING).isoformat(timespec="minutes")
    later = (utcnow() + dt.timedelta(days=3)).astimezone(BEIJING).isoformat(timespec="minutes")
    due = await pay(sm, settings, package, requirements={"publish_time": soon})
    not_yet = await pay(sm, settings, package, requirements={"publish_time": later})
    assert await desk.remind_publish(sm, settings, utcnow()) == 0  # 待审核: not in work yet
    async with sm.begin() as s:
        for order in (due, not_yet):
            await staff.approve(s, order_id=order.id, member=ivy, notify=order_notice, now=utcnow())
    assert await desk.remind_publish(sm, settings, utcnow()) == 1
    assert await desk.remind_publish(sm, settings, utcnow()) == 0
    reminders = [
        m for m in await outbox(sm, channel="wecom") if (m.dedupe_key or "").startswith("publish-reminder")
    ]
    assert [m.recipient for m in reminders] == ["ivy"]
    assert due.number in reminders[0].payload["content"]


async def test_daily_report_figures_equal_the_database(sm: Maker) -> None:
    settings = desk_settings(report_hour=9)
    package = await add_service(sm, price_fen=120_000)
    now = utcnow()
    today, _ = staff.beijing_day(now)
    yesterday = today - dt.timedelta(hours=12)
    paid = [await pay(sm, settings, package, openid=f"o_{i}") for i in range(3)]
    async with sm.begin() as s:
        s.add_all(
            [
                User(account=ACCOUNT, openid="o_new1", first_seen_at=now),
                User(account=ACCOUNT, openid="o_new2", first_seen_at=now),
                User(account=ACCOUNT, openid="o_old", first_seen_at=yesterday),
                Creator(account=ACCOUNT, openid="o_new1", code="NEW001", created_at=now),
                Creator(account=ACCOUNT, openid="o_old", code="OLD001", created_at=yesterday),
                Refund(
                    out_refund_no="RFDESK1",
                    order_id=paid[0].id,
                    amount_fen=20_000,
                    destination="balance",
                    status="succeeded",
                    actor="staff:x",
                    created_at=now,
                ),
                Refund(
                    out_refund_no="RFDESK2",
                    order_id=paid[1].id,
                    amount_fen=5_000,
                    destination="wechat",
                    status="failed",
                    actor="staff:x",
                    created_at=now,
                ),
                Withdrawal(
                    trade_no="WDDESK1", account=ACCOUNT, openid="o_old", amount_fen=10_000, fee_fen=100
                ),
            ]
        )
    async with sm() as s:
        fig = await staff.figures(s, start=today, end=today + dt.timedelta(days=1))
        # The same figures, counted the plain way from the rows themselves.
        events = list(await s.scalars(select(OrderEvent)))
        paid_ids = {e.order_id for e in events if e.to_status == "待审核" and today <= e.at}
        all_orders = list(await s.scalars(select(Order)))
        refunds = [
            r for r in await s.scalars(select(Refund)) if r.status != "failed" and r.created_at >= today
        ]
        users = [u for u in await s.scalars(select(User)) if u.first_seen_at >= today]
        creators = [c for c in await s.scalars(select(Creator)) if c.created_at >= today]
        withdrawals = [w for w in await s.scalars(select(Withdrawal)) if w.status == "requested"]
    assert fig.gmv_fen == sum(o.total_fen for o in all_orders if o.id in paid_ids) - sum(
        r.amount_fen for r in refunds
    )
    assert fig.gmv_fen == 3 * 120_000 - 20_000
    assert fig.paid_orders == len(paid_ids) == 3
    assert fig.new_customers == len(users) == 2
    assert fig.new_creators == len(creators) == 1
    assert fig.pending_reviews == sum(1 for o in all_orders if o.status == "待审核" and o.review is None) == 3
    assert fig.pending_withdrawals == len(withdrawals) == 1
    assert fig.by_state == {
        s: sum(1 for o in all_orders if o.status == s) for s in ("待审核", "已分配", "执行中", "退款中")
    }

    # The report goes out once a day, from the report hour on, about the day before.
    tomorrow = today + dt.timedelta(days=1)
    assert await desk.daily_report(sm, settings, tomorrow + dt.timedelta(hours=8)) == 0
    assert await desk.daily_report(sm, settings, tomorrow + dt.timedelta(hours=9, minutes=1)) == 1
    assert await desk.daily_report(sm, settings, tomorrow + dt.timedelta(hours=15)) == 0
    reports = [
        m for m in await outbox(sm, channel="robot") if (m.dedupe_key or "").startswith("staff:report:")
    ]
    assert [m.dedupe_key for m in reports] == [f"staff:report:{tomorrow:%Y%m%d}"]
    assert yuan(fig.gmv_fen) in reports[0].payload["content"]
    async with sm() as s:
        assert await desk.today(s, now) == ts.TODAY.format(
            time=f"{now.astimezone(BEIJING):%H:%M}",
            **desk.figures_values(await staff.figures(s, start=today, end=now)),
        )


# --- Roles and the audit trail ------------------------------------------------------------------------


async def test_roles_refuse_and_change_nothing(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "rev", "reviewer", on_duty=False)
    await register(sm, "opz", "ops", on_duty=False)
    await register(sm, "fin", "finance", on_duty=False)
    order = await pay(sm, settings, package)
    rev, opz, fin = await member(sm, "rev"), await member(sm, "opz"), await member(sm, "fin")
    attempts = [
        (staff.claim, rev),  # a reviewer may not claim
        (staff.approve, opz),  # ops may not approve
        (staff.approve, fin),
        (staff.start, fin),
    ]
    for action, who in attempts:
        with pytest.raises(DomainError) as refused:
            async with sm.begin() as s:
                await action(s, order_id=order.id, member=who, notify=order_notice, now=utcnow())
        assert refused.value.code == "forbidden"
    with pytest.raises(DomainError) as refused:
        async with sm.begin() as s:
            await staff.reassign(s, order_id=order.id, member=opz, to=rev, notify=order_notice, now=utcnow())
    assert refused.value.code == "forbidden"  # only admins reassign
    async with sm.begin() as s:
        await staff.remove_member(s, userid="opz", actor="cli", now=utcnow())
        removed = await staff.get_member(s, "opz")
    assert removed is None  # a removed member is no one to the desk
    with pytest.raises(DomainError) as refused:
        staff.check(removed, "queue")
    assert refused.value.code == "not_staff"
    after = await fresh(sm, order.id)
    assert (after.status, after.assignee, after.review) == ("待审核", None, None)
    assert await audit_of(sm, f"order:{order.number}") == []


async def test_every_step_is_audited_with_who_and_when(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "jo", "ops", "reviewer")
    jo = await member(sm, "jo")
    order = await pay(sm, settings, package)  # jo is on duty: it is assigned to jo
    async with sm.begin() as s:
        await staff.approve(s, order_id=order.id, member=jo, notify=order_notice, now=utcnow())
        await staff.start(s, order_id=order.id, member=jo, notify=order_notice, now=utcnow())
        await staff.publish(
            s, order_id=order.id, member=jo, url="https://www.xiaohongshu.com/x", title="笔记", now=utcnow()
        )
        await staff.complete(s, order_id=order.id, member=jo, notify=order_notice, now=utcnow())
    trail = await audit_of(sm, f"order:{order.number}")
    assert trail == [
        ("system", "assign"),
        ("staff:jo", "approve"),
        ("staff:jo", "start"),
        ("staff:jo", "publish"),
        ("staff:jo", "complete"),
    ]
    done = await fresh(sm, order.id)
    assert done.status == "已完成" and [d["url"] for d in done.deliverables] == [
        "https://www.xiaohongshu.com/x"
    ]
    async with sm() as s:
        events = select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        moves = [(e.to_status, e.actor) for e in await s.scalars(events)]
        entries = list(
            await s.scalars(select(AuditEntry).where(AuditEntry.target == f"order:{order.number}"))
        )
    assert moves[-3:] == [("已分配", "staff:jo"), ("执行中", "staff:jo"), ("已完成", "staff:jo")]
    assert all(e.at is not None and e.at <= utcnow() for e in entries)


async def test_only_the_owner_or_an_admin_moves_an_order_on(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "kim", "ops", "reviewer")
    order = await pay(sm, settings, package)  # kim owns it
    await register(sm, "lee", "ops", on_duty=False)
    kim, lee = await member(sm, "kim"), await member(sm, "lee")
    async with sm.begin() as s:
        await staff.approve(s, order_id=order.id, member=kim, notify=order_notice, now=utcnow())
    with pytest.raises(DomainError) as refused:
        async with sm.begin() as s:
            await staff.start(s, order_id=order.id, member=lee, notify=order_notice, now=utcnow())
    assert (refused.value.code, refused.value.details["assignee"]) == ("not_yours", "kim")
    boss = await _admin(sm)
    async with sm.begin() as s:
        moved, previous = await staff.reassign(
            s, order_id=order.id, member=boss, to=lee, notify=order_notice, now=utcnow()
        )
    assert (moved.assignee, previous) == ("lee", "kim")
    assert await audit_of(sm, f"order:{order.number}") == [
        ("system", "assign"),
        ("staff:kim", "approve"),
        ("staff:root", "assign"),
    ]


async def test_a_quiet_day_sends_no_report(sm: Maker) -> None:
    settings = desk_settings(report_hour=0)
    assert await desk.daily_report(sm, settings, utcnow()) == 0
    assert await outbox(sm, channel="robot") == []
