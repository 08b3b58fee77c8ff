"""Money on time: a commission is released when its freeze ends (at once with a freeze of 0 days), and
an approved withdrawal is paid out when it is approved, not at the next poll."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from bot import keys
from bot.scheduler import Job, Scheduler, seconds_until
from flows.creators import RELEASE_JOB, release_commissions
from flows.notices import order_notice
from store import earnings, orders, staff
from store.models import Commission, Earnings, Order, Withdrawal, utcnow
from store.orders import OrderStatus
from tests.conftest import eventually
from tests.test_creators import code_of, follow
from tests.test_paying import order_course, pay_sim, payment_of  # noqa: F401  (fixture)
from tests.test_work_chat import Office, office  # noqa: F401  (fixture)
from tests.wechat import ACCOUNT

CREATOR = "o_timing_creator"


@pytest.fixture
def office_settings() -> dict[str, Any]:
    return {"freeze_days": 0}


async def paid_order(office: Office) -> Order:  # noqa: F811
    """The invited customer orders the course and pays it with their own WeChat."""
    await follow(office.client, office.customer.openid, f"inv_{await code_of(office.client, CREATOR)}")
    number = await order_course(office.customer)
    await office.pay.pay((await payment_of(office.client, number)).out_trade_no, office.customer.openid)
    async with office.sessionmaker() as s:
        order = await s.scalar(select(Order).where(Order.number == number))
    assert order is not None and order.status == "待审核"
    return order


async def commission_status(office: Office) -> list[str]:  # noqa: F811
    async with office.sessionmaker() as s:
        return list(await s.scalars(select(Commission.status).where(Commission.openid == CREATOR)))


async def test_with_no_freeze_the_commission_is_available_as_the_order_completes(
    office: Office,  # noqa: F811
) -> None:
    order = await paid_order(office)
    assert await eventually(lambda: commission_status(office)) == ["pending"]
    for userid, said in (("lishen", "通过"), ("wangfang", "开始"), ("wangfang", "完成")):
        await office.say(userid, f"{said} {order.number}")
    # The 10-minute job ran at start-up and would not run again for minutes: completion woke it.
    assert await eventually(lambda: _available(office)) == ["available"]
    heard = await eventually(
        lambda: [m for m in office.customer.sim.sent if m.openid == CREATOR and "可提现" in str(m.payload)]
    )
    assert "¥29.90" in str(heard[0].payload)


async def _available(office: Office) -> list[str] | None:  # noqa: F811
    found = await commission_status(office)
    return found if found == ["available"] else None


async def test_an_approved_withdrawal_is_paid_out_at_once(office: Office) -> None:  # noqa: F811
    settings = office.client.app[keys.SETTINGS]
    async with office.sessionmaker.begin() as s:
        await staff.add_member(s, userid="zhaocai", name="赵财", roles=["finance"], actor="cli", now=utcnow())
        s.add(Earnings(account=ACCOUNT, openid=CREATOR, available_fen=50_000))
        await s.flush()
        w = await earnings.request_withdrawal(
            s, account=ACCOUNT, openid=CREATOR, amount_fen=20_000, settings=settings, now=utcnow()
        )
    await office.say("zhaocai", f"提现 通过 {w.id}")
    # The payout job polls every 5 minutes; the approval woke it.
    await eventually(lambda: office.pay.transferred(CREATOR) == 19_800)
    async with office.sessionmaker() as s:
        assert await s.scalar(select(Withdrawal.status).where(Withdrawal.id == w.id)) == "paid"


async def test_a_frozen_commission_is_due_to_the_minute(office: Office) -> None:  # noqa: F811
    """With a freeze of 3 days the release job sleeps until completion + 3 days (an injected clock)."""
    order = await paid_order(office)
    await eventually(lambda: commission_status(office))
    settings = office.client.app[keys.SETTINGS].model_copy(update={"freeze_days": 3})
    sm = office.sessionmaker
    async with sm.begin() as s:
        for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
            await orders.transition(s, order_id=order.id, to=to, actor="staff:test", notify=order_notice)
    async with sm() as s:
        completed = (await s.get(Order, order.id, populate_existing=True)).updated_at  # type: ignore[union-attr]
        due = await earnings.next_release_at(s, freeze_days=3)
    assert due is not None and abs(due - (completed + dt.timedelta(days=3))) < dt.timedelta(seconds=1)

    now = [due - dt.timedelta(hours=5)]

    async def next_due() -> dt.datetime | None:
        async with sm() as s:
            return await earnings.next_release_at(s, freeze_days=3)

    job = Job(RELEASE_JOB, 600, lambda: release_commissions(sm, settings, now[0]), next_due)
    scheduler = Scheduler([job], clock=lambda: now[0])
    assert await scheduler.delay(job) == 600  # hours away: the period caps the sleep
    now[0] = due - dt.timedelta(seconds=90)
    assert await scheduler.delay(job) == pytest.approx(90)
    assert await job.run() == 0  # a minute early: still frozen
    now[0] = due
    assert await scheduler.delay(job) == 0
    assert await job.run() == 1 and await commission_status(office) == ["available"]
    assert await scheduler.delay(job) == 600  # nothing else waits


def test_the_sleep_is_never_negative_nor_longer_than_the_period() -> None:
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert seconds_until(None, now, 600) == 600
    assert seconds_until(now - dt.timedelta(days=1), now, 600) == 0
    assert seconds_until(now + dt.timedelta(seconds=30), now, 600) == 30


async def test_a_woken_job_runs_again_without_waiting_for_its_period() -> None:
    runs: list[int] = []

    async def run() -> int:
        runs.append(1)
        return 0

    scheduler = Scheduler([Job("slow", 3600, run)])
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await eventually(lambda: len(runs) == 1)
    scheduler.wake("slow")
    scheduler.wake("unknown")  # a job this process does not run: nothing happens
    await eventually(lambda: len(runs) == 2)
    stop.set()
    await task
