"""Store-level checks on each backend: one payment per order under a race, and erasure keeping the
books whole under a pseudonym."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from store import earnings, orders, payments, privacy
from store.models import EarningEntry, Earnings, LedgerEntry, Order, Payment, Referral, User, utcnow
from store.orders import Line, OrderStatus
from tests.factories import Maker, Recorder, add_package

ACCOUNT = "gh_store"
PHONE = "13900001111"


async def _order(sm: Maker, openid: str, *, answers: dict[str, str] | None = None) -> Order:
    package_id = await add_package(sm)
    async with sm.begin() as s:
        return await orders.create_order(
            s,
            account=ACCOUNT,
            openid=openid,
            lines=[Line(package_id, 1)],
            requirements=answers or {},
            source_key=f"src-{openid}-{package_id}",
            notify=Recorder(),
        )


async def test_two_requests_racing_for_one_order_make_one_payment(sm: Maker) -> None:
    order = await _order(sm, "o_race")

    async def ask() -> int:
        async with sm.begin() as s:
            payment, lapsed = await payments.order_payment(
                s, order_id=order.id, account=ACCOUNT, openid="o_race", trade_type="NATIVE"
            )
            assert lapsed == []
            return payment.id

    made = await asyncio.gather(*(ask() for _ in range(6)))
    assert len(set(made)) == 1
    async with sm() as s:
        assert await s.scalar(select(func.count()).where(Payment.order_id == order.id)) == 1


async def test_erasure_keeps_the_books_whole_under_a_pseudonym(sm: Maker) -> None:
    paid = await _order(sm, "o_gone", answers={"contact": f"王芳 {PHONE}"})
    unpaid = await _order(sm, "o_gone")
    async with sm.begin() as s:
        s.add(User(account=ACCOUNT, openid="o_gone", nickname="小王"))
        await payments.credit(s, account=ACCOUNT, openid="o_gone", amount_fen=30_000, kind="topup", key="t1")
        await payments.pay_with_balance(
            s, order_id=paid.id, account=ACCOUNT, openid="o_gone", notify=Recorder()
        )
        s.add(
            Referral(
                account=ACCOUNT, invitee_openid="o_friend", inviter_openid="o_gone", code="C1", source="scan"
            )
        )
        s.add(Earnings(account=ACCOUNT, openid="o_gone", available_fen=0))
    async with sm.begin() as s:
        standing = await privacy.standing(s, account=ACCOUNT, openid="o_gone")
        assert standing.in_flight == [paid.number] and standing.blocked
        for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
            await orders.transition(s, order_id=paid.id, to=to, actor="staff:t", notify=Recorder())
    async with sm.begin() as s:
        standing = await privacy.standing(s, account=ACCOUNT, openid="o_gone")
        assert not standing.blocked and standing.balance_fen == 20_000
        alias = await privacy.erase(s, account=ACCOUNT, openid="o_gone", notify=Recorder(), now=utcnow())
    async with sm() as s:
        assert await s.scalar(select(func.count()).where(User.openid == "o_gone")) == 0
        kept = {o.number: o for o in await s.scalars(select(Order).where(Order.openid == alias))}
        assert kept[paid.number].status == "已完成" and kept[unpaid.number].status == "已取消"
        assert all(o.requirements == {} for o in kept.values())
        assert await payments.balance_of(s, account=ACCOUNT, openid=alias) == 20_000
        assert await payments.check_balances(s) == [] and await earnings.check_earnings(s) == []
        entries = await s.scalar(select(func.count()).where(LedgerEntry.openid == "o_gone"))
        assert entries == 0
        assert await s.scalar(select(func.count()).where(EarningEntry.openid == "o_gone")) == 0
        assert await s.scalar(select(func.count()).where(Referral.inviter_openid == "o_gone")) == 0
        document = await privacy.export(s, account=ACCOUNT, openid="o_gone")
    assert PHONE not in str(document) and document["orders"] == []
