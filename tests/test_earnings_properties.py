"""Properties of store.earnings: whatever orders, refunds, time and withdrawals do, the ledger adds up."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from settings import load_settings
from store import creators, earnings, orders, payments, referrals
from store.db import make_engine, make_sessionmaker
from store.errors import DomainError
from store.migrate import upgrade
from store.models import (
    Commission,
    Creator,
    EarningEntry,
    Earnings,
    Order,
    OrderEvent,
    OrderItem,
    Withdrawal,
    utcnow,
)
from store.orders import Line, OrderStatus
from tests.factories import Recorder, add_package

T = TypeVar("T")
PEOPLE = [f"p{n}" for n in range(5)]
FREEZE_DAYS = 3
_ids = itertools.count(1)
FORWARD = {
    OrderStatus.PENDING_REVIEW: OrderStatus.ASSIGNED,
    OrderStatus.ASSIGNED: OrderStatus.IN_PROGRESS,
    OrderStatus.IN_PROGRESS: OrderStatus.COMPLETED,
}
# Refusals a request may meet in a random history; anything else is a bug.
WITHDRAW_REFUSALS = {"in_debt", "one_pending", "insufficient_available", "over_daily_limit"}

people = st.sampled_from(PEOPLE)


def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


class LedgerMachine(RuleBasedStateMachine):
    """Random buyers in a random referral forest; every step is checked against the ledger's sums."""

    def __init__(self, url: str) -> None:
        super().__init__()
        # Hypothesis drives rules synchronously: one private loop per example, closed in teardown.
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(url)
        event.listen(self.engine.sync_engine, "connect", _no_fsync)
        self.sm = make_sessionmaker(self.engine)
        self.account = f"gh_prop{next(_ids)}"  # examples share the database, not the account
        self.clock = utcnow()
        self.settings = load_settings(
            commission_depth=3, withdraw_min_fen=100, withdraw_fee_bp=100, withdraw_daily_limit_fen=60_000
        )
        self.packages = [self.run(add_package(self.sm, price_fen=p)) for p in (999, 25_000)]
        self.orders: list[int] = []
        self.withdrawals: list[int] = []

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    async def doctor(self) -> None:
        async with self.sm() as s:
            assert await earnings.check_earnings(s) == []

    def act(self, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self.sm.begin() as s:
                return await action(s)

        return self.run(go())

    def teardown(self) -> None:
        self.run(self.doctor())
        self.run(self.engine.dispose())
        self.loop.close()

    # --- the world -----------------------------------------------------------------------------

    @initialize(
        depth=st.integers(1, 3),
        edges=st.lists(st.tuples(people, people), min_size=2, max_size=8),
        levels=st.lists(st.integers(0, 4), min_size=len(PEOPLE), max_size=len(PEOPLE)),
    )
    def forest(self, depth: int, edges: list[tuple[str, str]], levels: list[int]) -> None:
        self.settings = self.settings.model_copy(update={"commission_depth": depth})
        for invitee, inviter in edges:
            self.bind(invitee, inviter)
        for who, level in zip(PEOPLE, levels, strict=True):
            self.set_level(who, level)

    @rule(invitee=people, inviter=people)
    def bind(self, invitee: str, inviter: str) -> None:
        async def go(s: AsyncSession) -> str:
            code = (await creators.get_or_create(s, account=self.account, openid=inviter)).code
            result = await referrals.bind(
                s, account=self.account, invitee=invitee, code=code, source="scan", now=self.clock
            )
            return result.outcome

        assert self.act(go) in {"bound", "already", "taken", "self", "cycle"}

    def set_level(self, who: str, level: int) -> None:
        async def go(s: AsyncSession) -> None:
            await creators.get_or_create(s, account=self.account, openid=who)
            await s.execute(
                update(Creator)
                .where(Creator.account == self.account, Creator.openid == who)
                .values(level=level)
            )

        self.act(go)

    @rule(
        buyer=people,
        package=st.integers(0, 1),
        qty=st.integers(1, 3),
        bp=st.sampled_from([0, 500, 1000, 3000]),
        odd_payer=st.integers(0, 9),
        replay=st.booleans(),
        fate=st.sampled_from(["paid", "completed", "released"]),
    )
    def order(
        self, buyer: str, package: int, qty: int, bp: int, odd_payer: int, replay: bool, fate: str
    ) -> None:
        """A paid order and its commissions; now and then someone else pays. The order may be completed
        and even aged past the freeze at once: Hypothesis enables a random subset of rules per example,
        so long chains of separate rules would be rare."""
        payer = PEOPLE[(PEOPLE.index(buyer) + 1) % len(PEOPLE)] if odd_payer == 0 else buyer

        async def go(s: AsyncSession) -> int:
            order = await orders.create_order(
                s,
                account=self.account,
                openid=buyer,
                lines=[Line(self.packages[package], qty)],
                requirements={},
                source_key=f"prop-{next(_ids)}",
                notify=Recorder(),
            )
            await s.execute(update(OrderItem).where(OrderItem.order_id == order.id).values(commission_bp=bp))
            pay = await payments.create_payment(
                s, purpose="order", account=self.account, openid=buyer, order_id=order.id
            )
            await payments.apply_notification(
                s,
                out_trade_no=pay.out_trade_no,
                transaction_id=f"tx{next(_ids)}",
                total_fee=pay.amount_fen,
                payer_openid=payer,
                notify=Recorder(),
            )
            await earnings.on_order_paid(s, order_id=order.id, settings=self.settings, now=self.clock)
            return order.id

        order_id = self.act(go)
        self.orders.append(order_id)
        if replay:
            again = self.act(
                lambda s: earnings.on_order_paid(s, order_id=order_id, settings=self.settings, now=self.clock)
            )
            assert again == []
        if fate != "paid":
            self.complete(0)
        if fate == "released":
            self.release(FREEZE_DAYS)

    def recent(self, pick: int) -> int:
        """One of the last few orders: refunds and completions meet the same orders more often."""
        return self.orders[-1 - pick % len(self.orders)]

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 3))
    def complete(self, pick: int) -> None:
        """Staff take an order through to 已完成, on the fake clock."""
        order_id = self.recent(pick)

        async def go(s: AsyncSession) -> None:
            for _ in FORWARD:
                status = await s.scalar(select(Order.status).where(Order.id == order_id))
                to = FORWARD.get(OrderStatus(status))
                if to is None:
                    return
                await orders.transition(s, order_id=order_id, to=to, actor="staff:t", notify=Recorder())
                await s.execute(
                    update(OrderEvent)
                    .where(OrderEvent.order_id == order_id, OrderEvent.to_status == to)
                    .values(at=self.clock)
                )

        self.act(go)

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 10**6), quarters=st.integers(1, 4))
    def refund(self, pick: int, quarters: int) -> None:
        """Give back a quarter … all of what is left of any order, then settle its commissions (twice)."""
        order_id = self.orders[pick % len(self.orders)]

        async def go(s: AsyncSession) -> None:
            left = await payments.paid_for(s, order_id) - await payments.refunded(s, order_id)
            if left <= 0:
                return
            try:
                await payments.refund(
                    s,
                    order_id=order_id,
                    amount_fen=max(1, left * quarters // 4),
                    destination="balance",
                    actor="staff:t",
                    reason="退款",
                    notify=Recorder(),
                )
            except DomainError as exc:
                assert exc.code == "not_refundable"
                return
            await earnings.settle_refunds(s, order_id=order_id, now=self.clock)
            assert await earnings.settle_refunds(s, order_id=order_id, now=self.clock) == []

        self.act(go)

    @rule(days=st.sampled_from([0, 4, 8]))
    def release(self, days: int) -> None:
        """Time passes; the release job runs (twice: the second finds nothing)."""
        self.clock += dt.timedelta(days=days, minutes=1)
        self.act(lambda s: earnings.release_due(s, now=self.clock, freeze_days=FREEZE_DAYS))
        assert self.act(lambda s: earnings.release_due(s, now=self.clock, freeze_days=FREEZE_DAYS)) == []

    @rule(pick=st.integers(0, 10**6), approve=st.booleans())
    def review(self, pick: int, approve: bool) -> None:
        held = self.run(self.scalars(select(Commission.id).where(Commission.status == "review")))
        if not held:
            return
        commission_id = held[pick % len(held)]
        self.act(
            lambda s: earnings.decide_review(
                s, commission_id=commission_id, approve=approve, actor="staff:r", now=self.clock
            )
        )

    @rule(
        rank=st.integers(0, len(PEOPLE) - 1),
        quarters=st.integers(1, 5),
        then=st.sampled_from([(), ("approve",), ("approve", "pay"), ("refuse",), ("approve", "fail")]),
    )
    def withdraw(self, rank: int, quarters: int, then: tuple[str, ...]) -> None:
        """The rank-th richest asks for a quarter … all (or a bit more) of what is available; staff may
        decide at once (Hypothesis enables a random subset of rules per example, so chains help)."""

        async def go(s: AsyncSession) -> Withdrawal:
            richest = await s.execute(
                select(Earnings.openid, Earnings.available_fen)
                .where(Earnings.account == self.account)
                .order_by(Earnings.available_fen.desc(), Earnings.openid)
            )
            ranked = [*richest, *((p, 0) for p in PEOPLE)]
            who, available = ranked[rank]
            amount = max(100, available * quarters // 4)
            return await earnings.request_withdrawal(
                s, account=self.account, openid=who, amount_fen=amount, settings=self.settings, now=self.clock
            )

        try:
            w = self.act(go)
        except DomainError as exc:
            assert exc.code in WITHDRAW_REFUSALS, exc
            return
        self.withdrawals.append(w.id)
        for what in then:
            self.decide(0, what)

    @precondition(lambda self: self.withdrawals)
    @rule(pick=st.integers(0, 3), what=st.sampled_from(["approve", "refuse", "pay", "fail"]))
    def decide(self, pick: int, what: str) -> None:
        """Staff (or the payout job) act on a recent withdrawal; a wrong state is a conflict."""
        withdrawal_id = self.withdrawals[-1 - pick % len(self.withdrawals)]
        now = self.clock
        actions: dict[str, Callable[[AsyncSession], Awaitable[Withdrawal]]] = {
            "approve": lambda s: earnings.approve_withdrawal(
                s, withdrawal_id=withdrawal_id, actor="f", now=now
            ),
            "refuse": lambda s: earnings.refuse_withdrawal(
                s, withdrawal_id=withdrawal_id, actor="f", reason="不符", now=now
            ),
            "pay": lambda s: earnings.mark_withdrawal_paid(
                s, withdrawal_id=withdrawal_id, payment_no=f"P{withdrawal_id}", now=now
            ),
            "fail": lambda s: earnings.mark_withdrawal_failed(
                s, withdrawal_id=withdrawal_id, reason="失败", now=now
            ),
        }
        try:
            self.act(actions[what])
        except DomainError as exc:
            # A debt clawed back after the request holds its approval until it is settled.
            assert exc.code == "conflict" or (what, exc.code) == ("approve", "in_debt"), exc

    # --- what must always hold -----------------------------------------------------------------

    async def scalars(self, stmt: Any) -> list[Any]:
        async with self.sm() as s:
            return list(await s.scalars(stmt.where(Commission.account == self.account)))

    async def read(self) -> tuple[list[Any], ...]:
        """The account's cached totals, entries (grouped), commissions and withdrawals: four queries."""
        a = self.account
        async with self.sm() as s:
            cached = await s.execute(
                select(
                    Earnings.openid,
                    Earnings.pending_fen,
                    Earnings.available_fen,
                    Earnings.held_fen,
                    Earnings.withdrawn_fen,
                ).where(Earnings.account == a)
            )
            e = EarningEntry
            entries = await s.execute(
                select(e.openid, e.bucket, e.kind, e.commission_id, func.count(), func.sum(e.amount_fen))
                .where(e.account == a)
                .group_by(e.openid, e.bucket, e.kind, e.commission_id)
            )
            c = Commission
            commissions = await s.execute(
                select(c.openid, c.buyer_openid, c.depth, c.amount_fen, c.reversed_fen, c.released_at).where(
                    c.account == a
                )
            )
            w = Withdrawal
            withdrawals = await s.execute(select(w.openid, w.amount_fen, w.status).where(w.account == a))
            return list(cached), list(entries), list(commissions), list(withdrawals)

    @invariant()
    def the_ledger_adds_up(self) -> None:
        cached_rows, entries, commissions, withdrawals = self.run(self.read())
        cached = {who: dict(zip(earnings.BUCKETS, totals, strict=True)) for who, *totals in cached_rows}
        summed: dict[tuple[str, str], int] = {}
        for who, bucket, kind, commission_id, n, total in entries:
            summed[(who, bucket)] = summed.get((who, bucket), 0) + total
            # One credit per commission and one release (two legs); clawback keys carry their target.
            if kind in ("commission", "release"):
                assert n == 1, (commission_id, kind, n)
        for who, buckets in cached.items():  # every cached bucket is the sum of its entries
            assert all(total == summed.get((who, b), 0) for b, total in buckets.items()), (who, buckets)
        earned = sum(t for _, _, kind, _, _, t in entries if kind in ("commission", "clawback"))
        assert earned == sum(c.amount_fen - c.reversed_fen for c in commissions)
        assert all(c.depth <= self.settings.commission_depth <= 3 for c in commissions)
        assert all(c.openid != c.buyer_openid for c in commissions)
        for who in PEOPLE:
            mine = [c for c in commissions if c.openid == who]
            asked = [w for w in withdrawals if w.openid == who]
            got = cached.get(who, dict.fromkeys(earnings.BUCKETS, 0))
            assert min(got["pending"], got["held"], got["withdrawn"]) >= 0
            assert got["pending"] == sum(c.amount_fen - c.reversed_fen for c in mine if c.released_at is None)
            assert got["held"] == sum(w.amount_fen for w in asked if w.status in ("requested", "approved"))
            assert got["withdrawn"] == sum(w.amount_fen for w in asked if w.status == "paid")
            released = sum(c.amount_fen - c.reversed_fen for c in mine if c.released_at is not None)
            taken = sum(w.amount_fen for w in asked if w.status in ("requested", "approved", "paid"))
            assert got["available"] == released - taken


def test_the_ledger_always_adds_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"

    async def migrate() -> None:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    run_state_machine_as_test(
        lambda: LedgerMachine(url),
        settings=settings(max_examples=50, stateful_step_count=30, deadline=None),
    )
