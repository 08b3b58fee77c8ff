"""store.earnings on SQLite and PostgreSQL: commissions, release, refunds, reviews, withdrawals, ledger."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select, update

from settings import Settings, load_settings
from store import creators, earnings, orders, payments, referrals
from store.errors import DomainError
from store.models import Commission, Creator, EarningEntry, Earnings, Order, OrderItem, Withdrawal, utcnow
from store.orders import Line, OrderStatus
from tests.factories import Maker, Recorder, add_package

ACCOUNT = "gh_earn"
_ids = itertools.count(1)
SETTINGS = load_settings(
    commission_depth=3,
    freeze_days=7,
    withdraw_min_fen=10_000,
    withdraw_fee_bp=100,
    withdraw_daily_limit_fen=500_000,
)


# --- Builders --------------------------------------------------------------------------------------


async def run(sm: Maker, action: Any, **kwargs: Any) -> Any:
    """One action in its own transaction."""
    async with sm.begin() as s:
        return await action(s, **kwargs)


async def refused(sm: Maker, code: str, action: Any, **kwargs: Any) -> DomainError:
    """Expect DomainError(code) and prove that nothing changed."""
    before = await ledger(sm)
    with pytest.raises(DomainError) as info:
        await run(sm, action, **kwargs)
    assert info.value.code == code, info.value.details
    assert await ledger(sm) == before
    return info.value


async def ledger(sm: Maker) -> list[list[Any]]:
    """Every row a money action may touch."""
    tables = []
    async with sm() as s:
        for model in (Earnings, EarningEntry, Commission, Withdrawal):
            table = model.__table__
            tables.append(list(await s.execute(select(*table.columns).order_by(*table.primary_key))))
    return tables


async def chain(sm: Maker, *people: str) -> None:
    """people[0] invited people[1], who invited people[2], …"""
    for inviter, invitee in itertools.pairwise(people):
        code = (await run(sm, creators.get_or_create, account=ACCOUNT, openid=inviter)).code
        result = await run(
            sm, referrals.bind, account=ACCOUNT, invitee=invitee, code=code, source="scan", now=utcnow()
        )
        assert result.outcome == "bound"


async def set_level(sm: Maker, openid: str, level: int) -> None:
    async with sm.begin() as s:
        await creators.get_or_create(s, account=ACCOUNT, openid=openid)
        await s.execute(update(Creator).where(Creator.openid == openid).values(level=level))


ONE_LINE = ((100_000, 1, 1000),)


async def paid_order(
    sm: Maker, buyer: str, lines: Sequence[tuple[int, int, int]] = ONE_LINE, payer: str | None = None
) -> int:
    """An order of (price, quantity, commission bp) lines, paid through WeChat Pay by `payer`."""
    packages = [(await add_package(sm, price_fen=price), qty, bp) for price, qty, bp in lines]
    async with sm.begin() as s:
        order = await orders.create_order(
            s,
            account=ACCOUNT,
            openid=buyer,
            lines=[Line(p, qty) for p, qty, _ in packages],
            requirements={},
            source_key=f"src-{next(_ids)}",
            notify=Recorder(),
        )
        for package_id, _, bp in packages:  # the rate the service had when ordered
            await s.execute(
                update(OrderItem)
                .where(OrderItem.order_id == order.id, OrderItem.package_id == package_id)
                .values(commission_bp=bp)
            )
        pay = await payments.create_payment(
            s, purpose="order", account=ACCOUNT, openid=buyer, order_id=order.id
        )
        result = await payments.apply_notification(
            s,
            out_trade_no=pay.out_trade_no,
            transaction_id=f"42000{next(_ids)}",
            total_fee=pay.amount_fen,
            payer_openid=payer or buyer,
            notify=Recorder(),
        )
        assert result == "credited"
        return order.id


async def earn(sm: Maker, order_id: int, settings: Settings = SETTINGS) -> list[Commission]:
    return await run(sm, earnings.on_order_paid, order_id=order_id, settings=settings, now=utcnow())


async def complete(sm: Maker, order_id: int) -> None:
    for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
        await run(sm, orders.transition, order_id=order_id, to=to, actor="staff:t", notify=Recorder())


async def release(sm: Maker, after: dt.timedelta) -> list[Commission]:
    return await run(sm, earnings.release_due, now=utcnow() + after, freeze_days=SETTINGS.freeze_days)


FROZEN = dt.timedelta(days=7, minutes=1)


async def refund(sm: Maker, order_id: int, amount_fen: int) -> list[Commission]:
    async with sm.begin() as s:
        await payments.refund(
            s,
            order_id=order_id,
            amount_fen=amount_fen,
            destination="balance",
            actor="staff:t",
            reason="客户取消",
            notify=Recorder(),
        )
        return await earnings.settle_refunds(s, order_id=order_id, now=utcnow())


async def buckets(sm: Maker, openid: str) -> tuple[int, int, int, int]:
    """(pending, available, held, withdrawn), after checking the cache against the entries."""
    async with sm() as s:
        assert await earnings.check_earnings(s) == []
        view = await earnings.summary(s, account=ACCOUNT, openid=openid)
    return view.pending_fen, view.available_fen, view.held_fen, view.withdrawn_fen


async def commissions(sm: Maker, order_id: int) -> list[tuple[int, str, int, int, str]]:
    async with sm() as s:
        rows = await s.execute(
            select(
                Commission.depth,
                Commission.openid,
                Commission.amount_fen,
                Commission.reversed_fen,
                Commission.status,
            )
            .where(Commission.order_id == order_id)
            .order_by(Commission.depth)
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


async def cannot_withdraw(sm: Maker, code: str, openid: str, amount_fen: Any, **kw: Any) -> DomainError:
    kw.setdefault("now", utcnow())
    kw.setdefault("settings", SETTINGS)
    return await refused(
        sm, code, earnings.request_withdrawal, account=ACCOUNT, openid=openid, amount_fen=amount_fen, **kw
    )


async def withdraw(sm: Maker, openid: str, amount_fen: int, **kw: Any) -> Withdrawal:
    kw.setdefault("now", utcnow())
    kw.setdefault("settings", SETTINGS)
    return await run(
        sm, earnings.request_withdrawal, account=ACCOUNT, openid=openid, amount_fen=amount_fen, **kw
    )


# --- Commissions -----------------------------------------------------------------------------------


async def test_each_depth_earns_by_product_rate_or_level_rate(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b", "o_c", "o_buyer")
    await set_level(sm, "o_b", 1)  # 二星: team rewards 5 % / 3 %
    order_id = await paid_order(sm, "o_buyer", [(100_000, 2, 1000), (50_000, 1, 1500)])
    made = await earn(sm, order_id)
    # depth 1: (200,000 × 10 % + 50,000 × 15 %); depth 2: b at 二星 5 %; depth 3: a at 一星 1 %.
    assert [(c.depth, c.openid, c.amount_fen) for c in made] == [
        (1, "o_c", 27_500),
        (2, "o_b", 12_500),
        (3, "o_a", 2_500),
    ]
    assert [(c.base_fen, c.rate_bp) for c in made] == [(250_000, 1100), (250_000, 500), (250_000, 100)]
    assert all(c.status == "pending" and c.flag is None for c in made)
    assert await buckets(sm, "o_c") == (27_500, 0, 0, 0)
    assert await buckets(sm, "o_b") == (12_500, 0, 0, 0)
    before = await ledger(sm)
    assert await earn(sm, order_id) == []  # a retried notification creates nothing
    assert await ledger(sm) == before


@pytest.mark.parametrize(("depth", "expected"), [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (9, [1, 2, 3])])
async def test_the_depth_setting_is_capped_at_three(sm: Maker, depth: int, expected: list[int]) -> None:
    await chain(sm, "o_z", "o_a", "o_b", "o_c", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    # model_copy skips validation: a depth of 9 can only come from a bug, and is still capped.
    made = await earn(sm, order_id, SETTINGS.model_copy(update={"commission_depth": depth}))
    assert [c.depth for c in made] == expected
    assert "o_z" not in {c.openid for c in made}


async def test_nothing_without_an_inviter_and_zero_amounts_are_skipped(sm: Maker) -> None:
    lonely = await paid_order(sm, "o_lonely")
    assert await earn(sm, lonely) == []
    await chain(sm, "o_a", "o_b", "o_buyer")
    free = await paid_order(sm, "o_buyer", [(100_000, 1, 0)])  # a service without commission
    assert [c.depth for c in await earn(sm, free)] == [2]
    tiny = await paid_order(sm, "o_buyer", [(1, 1, 1000)])  # 0.1 fen rounds down to nothing
    assert await earn(sm, tiny) == []


async def test_an_unpaid_order_earns_nothing(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    package_id = await add_package(sm)
    async with sm.begin() as s:
        order = await orders.create_order(
            s,
            account=ACCOUNT,
            openid="o_buyer",
            lines=[Line(package_id, 1)],
            requirements={},
            source_key="unpaid",
            notify=Recorder(),
        )
    assert await earn(sm, order.id) == []
    with pytest.raises(DomainError) as info:
        await earn(sm, 999_999)
    assert info.value.code == "not_found"


async def test_two_workers_on_one_paid_order_pay_once(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    made = await asyncio.gather(*(earn(sm, order_id) for _ in range(4)))
    assert sorted(len(m) for m in made) == [0, 0, 0, 2]
    assert await buckets(sm, "o_b") == (10_000, 0, 0, 0)


# --- Release ---------------------------------------------------------------------------------------


async def test_release_waits_for_completion_and_the_freeze(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    await earn(sm, order_id)
    assert await release(sm, dt.timedelta(days=60)) == []  # paid but not complete
    await complete(sm, order_id)
    assert await release(sm, dt.timedelta(days=6, hours=23)) == []
    done = await release(sm, FROZEN)
    assert [(c.status, c.amount_fen) for c in done] == [("available", 10_000)] and done[0].released_at
    assert await release(sm, FROZEN) == []
    assert await buckets(sm, "o_a") == (0, 10_000, 0, 0)


async def test_two_release_workers_release_once(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b", "o_buyer")
    for _ in range(3):
        order_id = await paid_order(sm, "o_buyer")
        await earn(sm, order_id)
        await complete(sm, order_id)
    results = await asyncio.gather(*(release(sm, FROZEN) for _ in range(3)))
    assert sum(len(r) for r in results) == 6
    assert await buckets(sm, "o_b") == (0, 30_000, 0, 0)
    assert await buckets(sm, "o_a") == (0, 9_000, 0, 0)


# --- Refunds ---------------------------------------------------------------------------------------


async def test_refunds_reverse_pending_commissions_in_proportion(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b", "o_buyer")
    order_id = await paid_order(sm, "o_buyer", [(33_333, 1, 1000)])  # 3,333 and 999 fen
    await earn(sm, order_id)
    changed = await refund(sm, order_id, 10_000)  # 30.0003 % back
    assert [(c.reversed_fen, c.status) for c in changed] == [(999, "pending"), (299, "pending")]
    assert await buckets(sm, "o_b") == (3_333 - 999, 0, 0, 0)
    async with sm.begin() as s:  # settling again changes nothing
        assert await earnings.settle_refunds(s, order_id=order_id, now=utcnow()) == []
    await refund(sm, order_id, 23_333)
    assert await commissions(sm, order_id) == [
        (1, "o_b", 3_333, 3_333, "reversed"),
        (2, "o_a", 999, 999, "reversed"),
    ]
    assert await buckets(sm, "o_b") == (0, 0, 0, 0)
    assert await buckets(sm, "o_a") == (0, 0, 0, 0)


async def test_a_refund_after_withdrawal_leaves_a_debt_netted_by_later_earnings(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    first = await paid_order(sm, "o_buyer", [(200_000, 1, 1000)])
    await earn(sm, first)
    await complete(sm, first)
    await release(sm, FROZEN)
    w = await withdraw(sm, "o_a", 20_000)
    await run(sm, earnings.approve_withdrawal, withdrawal_id=w.id, actor="staff:fin", now=utcnow())
    await run(sm, earnings.mark_withdrawal_paid, withdrawal_id=w.id, payment_no="P1", now=utcnow())
    assert await buckets(sm, "o_a") == (0, 0, 0, 20_000)
    await refund(sm, first, 200_000)
    assert await buckets(sm, "o_a") == (0, -20_000, 0, 20_000)
    assert (await commissions(sm, first))[0][3:] == (20_000, "reversed")
    error = await cannot_withdraw(sm, "in_debt", "o_a", 10_000)
    assert error.details == {"debt_fen": 20_000}
    second = await paid_order(sm, "o_buyer", [(300_000, 1, 1000)])
    await earn(sm, second)
    await complete(sm, second)
    await release(sm, FROZEN)
    assert await buckets(sm, "o_a") == (0, 10_000, 0, 20_000)
    assert (await withdraw(sm, "o_a", 10_000)).status == "requested"


async def test_a_debt_that_appears_after_the_request_stops_its_approval(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    first = await paid_order(sm, "o_buyer", [(200_000, 1, 1000)])
    second = await paid_order(sm, "o_buyer", [(100_000, 1, 1000)])
    for order_id in (first, second):
        await earn(sm, order_id)
        await complete(sm, order_id)
    await release(sm, FROZEN)
    w = await withdraw(sm, "o_a", 30_000)
    await refund(sm, first, 200_000)  # clawed back while the request waits
    assert await buckets(sm, "o_a") == (0, -20_000, 30_000, 0)
    error = await refused(
        sm, "in_debt", earnings.approve_withdrawal, withdrawal_id=w.id, actor="staff:fin", now=utcnow()
    )
    assert error.details == {"withdrawal_id": w.id, "debt_fen": 20_000}
    assert (await run(sm, earnings.get_withdrawal, withdrawal_id=w.id)).status == "requested"
    refuse = earnings.refuse_withdrawal
    await run(sm, refuse, withdrawal_id=w.id, actor="staff:fin", reason="有欠款", now=utcnow())
    assert await buckets(sm, "o_a") == (0, 10_000, 0, 0)  # the held money paid the debt


async def test_a_partial_refund_of_a_released_commission_comes_out_of_available(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    await earn(sm, order_id)
    await complete(sm, order_id)
    await release(sm, FROZEN)
    await refund(sm, order_id, 25_000)
    assert await commissions(sm, order_id) == [(1, "o_a", 10_000, 2_500, "available")]
    assert await buckets(sm, "o_a") == (0, 7_500, 0, 0)


async def test_a_partly_refunded_order_still_completes_and_releases_the_rest(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    await earn(sm, order_id)
    await refund(sm, order_id, 25_000)  # a quarter back while the work goes on
    assert await buckets(sm, "o_a") == (7_500, 0, 0, 0)
    await complete(sm, order_id)
    assert await release(sm, FROZEN)
    assert await commissions(sm, order_id) == [(1, "o_a", 10_000, 2_500, "available")]
    assert await buckets(sm, "o_a") == (0, 7_500, 0, 0)


async def test_a_refund_before_the_commission_is_settled_when_it_is_made(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    order_id = await paid_order(sm, "o_buyer")
    await refund(sm, order_id, 50_000)  # the commission does not exist yet
    [made] = await earn(sm, order_id)
    assert (made.amount_fen, made.reversed_fen, made.status) == (10_000, 5_000, "pending")
    assert await buckets(sm, "o_a") == (5_000, 0, 0, 0)


# --- Reviews ---------------------------------------------------------------------------------------


async def test_someone_else_paying_holds_the_commission_for_review(sm: Maker) -> None:
    await chain(sm, "o_a", "o_buyer")
    order_id = await paid_order(sm, "o_buyer", payer="o_a")  # the inviter paid their invitee's order
    [held] = await earn(sm, order_id)
    assert (held.status, held.flag) == ("review", "same_payer")
    assert held.note is not None and "o_a" in held.note and "o_buyer" in held.note
    await complete(sm, order_id)
    assert await release(sm, FROZEN) == []
    assert await buckets(sm, "o_a") == (10_000, 0, 0, 0)
    approved = await run(
        sm, earnings.decide_review, commission_id=held.id, approve=True, actor="staff:r", now=utcnow()
    )
    assert approved.status == "pending" and "approved by staff:r" in (approved.note or "")
    with pytest.raises(DomainError) as info:
        await run(
            sm, earnings.decide_review, commission_id=held.id, approve=False, actor="staff:x", now=utcnow()
        )
    assert (info.value.code, info.value.details["status"]) == ("conflict", "pending")
    assert [c.id for c in await release(sm, FROZEN)] == [held.id]
    assert await buckets(sm, "o_a") == (0, 10_000, 0, 0)


async def test_one_payer_for_several_customers_is_flagged_and_can_be_rejected(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b")
    await chain(sm, "o_a", "o_c")
    assert (await earn(sm, await paid_order(sm, "o_b")))[0].status == "pending"
    order_id = await paid_order(sm, "o_c", payer="o_b")  # b pays for c too
    [held] = await earn(sm, order_id)
    assert held.flag == "same_payer" and "o_b, o_c" in (held.note or "")
    # b paying b's own order is now suspicious as well: b paid for two customers.
    [own] = await earn(sm, await paid_order(sm, "o_b"))
    assert own.flag == "same_payer"
    rejected = await run(
        sm, earnings.decide_review, commission_id=held.id, approve=False, actor="staff:r", now=utcnow()
    )
    assert (rejected.status, rejected.reversed_fen) == ("reversed", 10_000)
    assert await buckets(sm, "o_a") == (20_000, 0, 0, 0)


async def test_a_burst_invitee_holds_the_commissions_of_their_orders(sm: Maker) -> None:
    code = (await run(sm, creators.get_or_create, account=ACCOUNT, openid="o_a")).code
    for n in range(3):
        bursty = {"burst_count": 2, "burst_minutes": 60}
        await run(
            sm,
            referrals.bind,
            account=ACCOUNT,
            invitee=f"o_{n}",
            code=code,
            source="scan",
            now=utcnow(),
            **bursty,
        )
    [calm] = await earn(sm, await paid_order(sm, "o_0"))
    [held] = await earn(sm, await paid_order(sm, "o_2"))
    assert (calm.status, held.status, held.flag) == ("pending", "review", "burst")
    assert held.note is not None and "3 bindings" in held.note


# --- Withdrawals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bp", "fee"),
    [(10_000, 100, 100), (10_001, 100, 101), (150, 1, 1), (10_000, 0, 0), (99_999, 2000, 20_000)],
)
def test_fee_rounds_up_to_the_fen(amount: int, bp: int, fee: int) -> None:
    assert earnings.fee_for(amount, bp) == fee


async def rich(sm: Maker, openid: str = "o_a", fen: int = 100_000) -> None:
    """`openid` has `fen` available (10 % of an order of 10 × fen)."""
    await chain(sm, openid, f"{openid}_buyer")
    order_id = await paid_order(sm, f"{openid}_buyer", [(fen * 10, 1, 1000)])
    await earn(sm, order_id)
    await complete(sm, order_id)
    await release(sm, FROZEN)


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (0, "bad_amount"),
        (-5, "bad_amount"),
        (True, "bad_amount"),
        (12.5, "bad_amount"),
        (9_999, "below_minimum"),
        (100_001, "insufficient_available"),
    ],
)
async def test_bad_requests_change_nothing(sm: Maker, amount: Any, code: str) -> None:
    await rich(sm)
    await cannot_withdraw(sm, code, "o_a", amount)


async def test_nobody_with_nothing_can_withdraw(sm: Maker) -> None:
    error = await cannot_withdraw(sm, "insufficient_available", "o_new", 10_000)
    assert error.details["available_fen"] == 0


async def test_a_withdrawal_is_held_approved_once_and_paid(sm: Maker) -> None:
    await rich(sm)
    w = await withdraw(sm, "o_a", 30_000)
    assert (w.status, w.amount_fen, w.fee_fen) == ("requested", 30_000, 300)
    assert w.trade_no.startswith("WD") and len(w.trade_no) <= 32
    assert await buckets(sm, "o_a") == (0, 70_000, 30_000, 0)
    error = await cannot_withdraw(sm, "one_pending", "o_a", 10_000)
    assert error.details["withdrawal_id"] == w.id
    async with sm() as s:
        assert [x.id for x in await earnings.pending_withdrawals(s)] == [w.id]
    await run(sm, earnings.approve_withdrawal, withdrawal_id=w.id, actor="staff:fin", now=utcnow())
    error = await refused(
        sm, "conflict", earnings.approve_withdrawal, withdrawal_id=w.id, actor="staff:two", now=utcnow()
    )
    assert (error.details["status"], error.details["decided_by"]) == ("approved", "staff:fin")
    await refused(
        sm, "not_found", earnings.approve_withdrawal, withdrawal_id=9999, actor="staff:x", now=utcnow()
    )
    async with sm() as s:
        assert [x.id for x in await earnings.approved_unpaid(s)] == [w.id]
    paid = await run(
        sm, earnings.mark_withdrawal_paid, withdrawal_id=w.id, payment_no="1000018301", now=utcnow()
    )
    assert (paid.status, paid.payment_no) == ("paid", "1000018301")
    again = await run(
        sm, earnings.mark_withdrawal_paid, withdrawal_id=w.id, payment_no="1000018301", now=utcnow()
    )
    assert again.status == "paid"  # the payout job retried
    assert await buckets(sm, "o_a") == (0, 70_000, 0, 30_000)
    async with sm() as s:
        assert await earnings.approved_unpaid(s) == []


async def test_two_approvals_at_once_have_one_winner(sm: Maker) -> None:
    await rich(sm)
    w = await withdraw(sm, "o_a", 30_000)

    async def approve(actor: str) -> str:
        try:
            await run(sm, earnings.approve_withdrawal, withdrawal_id=w.id, actor=actor, now=utcnow())
        except DomainError as exc:
            return exc.code
        return "approved"

    assert sorted(await asyncio.gather(approve("staff:a"), approve("staff:b"))) == ["approved", "conflict"]


async def test_refused_and_failed_withdrawals_give_the_money_back(sm: Maker) -> None:
    await rich(sm)
    w = await withdraw(sm, "o_a", 30_000)
    refuse = {"withdrawal_id": w.id, "actor": "staff:fin", "now": utcnow()}
    await refused(sm, "bad_reason", earnings.refuse_withdrawal, reason="  ", **refuse)
    no = await run(
        sm, earnings.refuse_withdrawal, withdrawal_id=w.id, actor="staff:fin", reason="信息不符", now=utcnow()
    )
    assert (no.status, no.reason, no.decided_by) == ("refused", "信息不符", "staff:fin")
    assert await buckets(sm, "o_a") == (0, 100_000, 0, 0)
    await refused(sm, "conflict", earnings.refuse_withdrawal, reason="再拒", **refuse)
    w2 = await withdraw(sm, "o_a", 40_000)
    await refused(
        sm, "conflict", earnings.mark_withdrawal_paid, withdrawal_id=w2.id, payment_no="X", now=utcnow()
    )
    await run(sm, earnings.approve_withdrawal, withdrawal_id=w2.id, actor="staff:fin", now=utcnow())
    failed = await run(
        sm, earnings.mark_withdrawal_failed, withdrawal_id=w2.id, reason="NAME_MISMATCH", now=utcnow()
    )
    assert failed.status == "failed"
    assert await buckets(sm, "o_a") == (0, 100_000, 0, 0)
    async with sm() as s:
        kinds = await s.execute(
            select(EarningEntry.kind, func.count()).group_by(EarningEntry.kind).order_by(EarningEntry.kind)
        )
        assert {k: n for k, n in kinds} == {"commission": 1, "release": 2, "return": 4, "withdraw": 4}


async def test_the_daily_limit_counts_the_beijing_day(sm: Maker) -> None:
    await rich(sm, fen=200_000)
    limited = SETTINGS.model_copy(update={"withdraw_daily_limit_fen": 50_000})
    morning = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)  # 09:00 in Beijing
    first = await withdraw(sm, "o_a", 30_000, settings=limited, now=morning)
    await run(sm, earnings.approve_withdrawal, withdrawal_id=first.id, actor="staff:fin", now=morning)
    await run(sm, earnings.mark_withdrawal_paid, withdrawal_id=first.id, payment_no="P1", now=morning)
    late = morning + dt.timedelta(hours=14)  # 23:00 in Beijing, the same day
    error = await cannot_withdraw(sm, "over_daily_limit", "o_a", 30_000, settings=limited, now=late)
    assert error.details == {"left_fen": 20_000, "limit_fen": 50_000}
    for _ in range(2):  # a refused request does not count against the day
        w = await withdraw(sm, "o_a", 20_000, settings=limited, now=morning)
        await run(
            sm, earnings.refuse_withdrawal, withdrawal_id=w.id, actor="staff:fin", reason="重复", now=morning
        )
    next_day = morning + dt.timedelta(hours=15)  # 16:00 UTC is midnight in Beijing
    assert (await withdraw(sm, "o_a", 50_000, settings=limited, now=next_day)).status == "requested"


async def test_two_requests_at_once_never_overdraw(sm: Maker) -> None:
    await rich(sm)

    async def ask() -> str:
        try:
            await withdraw(sm, "o_a", 80_000)
        except DomainError as exc:
            return exc.code
        return "requested"

    outcomes = await asyncio.gather(ask(), ask(), ask())
    assert sorted(outcomes) == ["one_pending", "one_pending", "requested"]
    assert await buckets(sm, "o_a") == (0, 20_000, 80_000, 0)


# --- Views and the doctor --------------------------------------------------------------------------


async def test_summary_lists_the_latest_commissions(sm: Maker) -> None:
    await chain(sm, "o_a", "o_b", "o_buyer")
    numbers: list[str | None] = []
    for price in (10_000, 20_000, 30_000):
        order_id = await paid_order(sm, "o_buyer", [(price, 1, 1000)])
        await earn(sm, order_id)
        async with sm() as s:
            numbers.append(await s.scalar(select(Order.number).where(Order.id == order_id)))
    async with sm() as s:
        view = await earnings.summary(s, account=ACCOUNT, openid="o_b", limit=2)
        nobody = await earnings.summary(s, account=ACCOUNT, openid="o_nobody")
    assert (view.pending_fen, view.available_fen) == (6_000, 0)
    assert [(line.order_number, line.depth, line.amount_fen) for line in view.recent] == [
        (numbers[2], 1, 3_000),
        (numbers[1], 1, 2_000),
    ]
    assert nobody == earnings.EarningsView(0, 0, 0, 0, [])


async def test_check_earnings_finds_a_cache_that_drifted(sm: Maker) -> None:
    await rich(sm)
    async with sm.begin() as s:
        await s.execute(update(Earnings).where(Earnings.openid == "o_a").values(available_fen=1))
    async with sm() as s:
        assert await earnings.check_earnings(s) == [earnings.Drift(ACCOUNT, "o_a", "available", 1, 100_000)]
