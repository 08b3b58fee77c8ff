"""Properties of store.payments: whatever customers, staff and WeChat Pay do, money is conserved."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store import orders, payments
from store.db import make_engine, make_sessionmaker
from store.errors import DomainError
from store.migrate import upgrade
from store.models import Balance, LedgerEntry, Order, Package, Payment, Refund, Service, utcnow
from store.orders import PAID, PROGRESS, Line, OrderStatus
from store.outbox import Outgoing

T = TypeVar("T")
PEOPLE = ("o_ann", "o_ben", "o_cai")
PRICE = 1_000
_runs = itertools.count(1)
_S = OrderStatus
UNPAID = frozenset({_S.PENDING_PAYMENT})
REFUNDABLE = PAID | {_S.REFUNDING}
WAS_PAID = PAID | {_S.REFUNDING, _S.REFUNDED}
HOW_MUCH = ("rest", "half", "one", "over", "fixed")  # a refund's amount, relative to what is left


def notify(order: Order, frm: str | None, to: str, reason: str | None) -> list[Outgoing]:
    return [Outgoing("mp", order.openid, "text", {"content": f"{frm} → {to}"})]


def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


async def migrated(url: str) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()


@dataclass
class Model:
    """What we expect of one order."""

    openid: str
    total: int
    status: OrderStatus = _S.PENDING_PAYMENT
    wechat_payment: int | None = None  # the payment that paid it, if WeChat did
    refunded: int = 0  # succeeded refunds
    pending: int = 0  # WeChat refunds not yet answered


class MoneyMachine(RuleBasedStateMachine):
    """Top-ups, balance and WeChat payments, refunds, cancellations and expiries by a few customers.

    After every step, over this run's account:
      1. every cached balance equals the sum of its person's ledger entries (check_balances() is empty),
         no balance is negative, and Σ ledger entries == Σ balances;
      2. conservation — Σ amount of paid WeChat payments (money in)
           == Σ balances
            + Σ over orders ever paid (status in PAID, 退款中, 已退款) of (total_fen − succeeded refunds)
            + Σ succeeded WeChat refunds (money out);
         a pending WeChat refund still counts as held by its order;
      3. nothing counted twice: each paid payment either paid its order (no ledger entry) or has exactly
         one ledger entry (top-up or late payment); each paid order was paid exactly once
         (one WeChat payment or one pay:<order> entry); refunds of an order never exceed what it was paid;
      4. balances, order states, money in and money out equal an independent model of the rules.
    """

    def __init__(self, template: Path) -> None:
        super().__init__()
        # Hypothesis drives rules synchronously: one private loop per example, closed in teardown.
        self.loop = asyncio.new_event_loop()
        # A fresh copy of a migrated database per example: expiry sweeps every order in it.
        db = template.with_name(f"money_{next(_runs)}.db")
        shutil.copyfile(template, db)
        self.engine = make_engine(f"sqlite+aiosqlite:///{db}")
        event.listen(self.engine.sync_engine, "connect", _no_fsync)
        self.sm = make_sessionmaker(self.engine)
        self.account = "gh_money"
        self.package_id = self.run(self._add_package())
        self.balances = dict.fromkeys(PEOPLE, 0)
        self.orders: dict[int, Model] = {}
        self.order_ids: list[int] = []
        self.payments: list[Payment] = []
        self.applied: set[int] = set()
        self.refunds: list[Refund] = []
        self.money_in = 0
        self.wechat_out = 0

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    async def _add_package(self) -> int:
        async with self.sm.begin() as s:
            service = Service(
                code=self.account, title="课程", platform="知识服务", category="课程", status="listed"
            )
            s.add(service)
            await s.flush()
            package = Package(service_id=service.id, position=1, name="一节", price_fen=PRICE)
            s.add(package)
            await s.flush()
            return package.id

    def act(self, action: Callable[..., Awaitable[T]], **kwargs: Any) -> T | str:
        """Run an action in its own transaction: its result, or the refusal's code."""

        async def go() -> T:
            async with self.sm.begin() as s:
                return await action(s, **kwargs)

        try:
            return self.run(go())
        except DomainError as exc:
            return exc.code

    def pick(self, items: list[T], n: int) -> T:
        return items[n % len(items)]

    def choose(self, n: int, prefer: bool, statuses: frozenset[OrderStatus]) -> tuple[int, Model]:
        """The n-th order; with `prefer`, among those in `statuses` when there are any (more useful steps)."""
        wanted = [i for i in self.order_ids if self.orders[i].status in statuses]
        order_id = self.pick(wanted if prefer and wanted else self.order_ids, n)
        return order_id, self.orders[order_id]

    # --- rules -----------------------------------------------------------------------------------

    @initialize()
    def everyone_has_money_and_an_order(self) -> None:
        # A head start, so that paying and refunding are reached in most examples, not only in a few.
        for who in PEOPLE:
            self.create_topup(who, 3_000, pay_now=True)
            self.place_order(who, 1)
        self.create_order_payment(0, prefer=False, pay_now=True)  # ann's order, paid through WeChat
        self.pay_from_balance(1, prefer=False, owner=True)  # ben's, paid from his balance
        self.create_order_payment(2, prefer=False, pay_now=False)  # cai's QR code, not yet scanned

    @rule(who=st.sampled_from(PEOPLE), qty=st.integers(1, 3))
    def place_order(self, who: str, qty: int) -> None:
        order = self.act(
            orders.create_order,
            account=self.account,
            openid=who,
            lines=[Line(self.package_id, qty)],
            requirements={},
            source_key=f"{self.account}-{len(self.order_ids)}",
            notify=notify,
        )
        assert isinstance(order, Order)
        self.orders[order.id] = Model(who, PRICE * qty)
        self.order_ids.append(order.id)

    @rule(who=st.sampled_from(PEOPLE), fen=st.sampled_from([100, 550, 3_000, 10_000]), pay_now=st.booleans())
    def create_topup(self, who: str, fen: int, pay_now: bool) -> None:
        payment = self.act(
            payments.create_payment, purpose="topup", account=self.account, openid=who, amount_fen=fen
        )
        assert isinstance(payment, Payment)
        self.payments.append(payment)
        if pay_now:
            self.wechat_notifies(len(self.payments) - 1, wrong_fee=False)

    @precondition(lambda self: self.order_ids)
    @rule(n=st.integers(0, 50), prefer=st.booleans(), pay_now=st.booleans())
    def create_order_payment(self, n: int, prefer: bool, pay_now: bool) -> None:
        order_id, model = self.choose(n, prefer, UNPAID)
        got = self.act(
            payments.create_payment,
            purpose="order",
            account=self.account,
            openid=model.openid,
            order_id=order_id,
        )
        if model.status != _S.PENDING_PAYMENT:
            assert got == ("not_payable" if model.status == _S.CANCELLED else "already_paid")
            return
        assert isinstance(got, Payment) and got.amount_fen == model.total
        self.payments.append(got)
        if pay_now:
            self.wechat_notifies(len(self.payments) - 1, wrong_fee=False)

    def _too_late(self, payment: Payment) -> bool:
        """Not yet notified, and its order no longer waits for it."""
        model = self.orders.get(payment.order_id or 0)
        return payment.id not in self.applied and model is not None and model.status != _S.PENDING_PAYMENT

    @precondition(lambda self: self.payments)
    @rule(n=st.integers(0, 50), wrong_fee=st.booleans(), late=st.booleans())
    def wechat_notifies(self, n: int, wrong_fee: bool, late: bool = False) -> None:
        too_late = [p for p in self.payments if self._too_late(p)]
        payment = self.pick(too_late if late and too_late else self.payments, n)
        outcome = self.act(
            payments.apply_notification,
            out_trade_no=payment.out_trade_no,
            transaction_id=f"42{payment.id:010d}",
            total_fee=payment.amount_fen + (1 if wrong_fee else 0),
            payer_openid=payment.openid,
            notify=notify,
        )
        if payment.id in self.applied:
            assert outcome == "duplicate"
            return
        if wrong_fee:
            assert outcome == "mismatch"
            return
        self.applied.add(payment.id)
        self.money_in += payment.amount_fen
        model = self.orders.get(payment.order_id or 0)
        if model is not None and model.status == _S.PENDING_PAYMENT:
            assert outcome == "credited"
            model.status, model.wechat_payment = _S.PENDING_REVIEW, payment.id
            return
        assert outcome == ("credited" if payment.purpose == "topup" else "late")
        self.balances[payment.openid] += payment.amount_fen

    @precondition(lambda self: self.order_ids)
    @rule(n=st.integers(0, 50), prefer=st.booleans(), owner=st.booleans())
    def pay_from_balance(self, n: int, prefer: bool, owner: bool) -> None:
        order_id, model = self.choose(n, prefer, UNPAID)
        who = model.openid if owner else next(p for p in PEOPLE if p != model.openid)
        got = self.act(
            payments.pay_with_balance, order_id=order_id, account=self.account, openid=who, notify=notify
        )
        if not owner:
            expected = "not_yours"
        elif model.status != _S.PENDING_PAYMENT:
            expected = "not_payable" if model.status == _S.CANCELLED else "already_paid"
        elif self.balances[who] < model.total:
            expected = "insufficient_balance"
        else:
            assert isinstance(got, Order) and got.status == _S.PENDING_REVIEW
            self.balances[who] -= model.total
            model.status = _S.PENDING_REVIEW
            return
        assert got == expected

    @precondition(lambda self: self.order_ids)
    @rule(n=st.integers(0, 50), prefer=st.booleans(), how=st.sampled_from(HOW_MUCH), to_wechat=st.booleans())
    def staff_refund(self, n: int, prefer: bool, how: str, to_wechat: bool) -> None:
        order_id, model = self.choose(n, prefer, REFUNDABLE)
        left = model.total - model.refunded - model.pending
        fen = {"rest": left, "half": left // 2, "one": 1, "over": left + 1, "fixed": PRICE}[how] or 1
        got = self.act(
            payments.refund,
            order_id=order_id,
            amount_fen=fen,
            destination="wechat" if to_wechat else "balance",
            actor="staff:t",
            reason="退款",
            notify=notify,
        )
        if model.status not in REFUNDABLE:
            assert got == "not_refundable"
        elif to_wechat and model.wechat_payment is None:
            assert got == "no_wechat_payment"
        elif fen > left:
            assert got == "refund_exceeds"
        else:
            assert isinstance(got, Refund)
            if fen == left:  # only a refund of everything left ends the order
                model.status = _S.REFUNDING
            if to_wechat:
                assert got.status == "pending"
                model.pending += fen
                self.refunds.append(got)
            else:
                assert got.status == "succeeded"
                self.balances[model.openid] += fen
                self._refund_done(model, fen)

    def _refund_done(self, model: Model, fen: int) -> None:
        model.refunded += fen
        if model.refunded == model.total:
            model.status = _S.REFUNDED

    @precondition(lambda self: self.refunds)
    @rule(n=st.integers(0, 50), success=st.booleans())
    def wechat_refund_notifies(self, n: int, success: bool) -> None:
        row = self.pick(self.refunds, n)
        outcome = self.act(
            payments.apply_refund_notification,
            out_refund_no=row.out_refund_no,
            refund_id=f"50{row.id:010d}",
            refund_status="SUCCESS" if success else "REFUNDCLOSE",
            refund_fee=row.amount_fen,
            notify=notify,
        )
        if row.status != "pending":
            assert outcome == "duplicate"
            return
        model = self.orders[row.order_id]
        model.pending -= row.amount_fen
        row.status = "succeeded" if success else "failed"
        assert outcome == ("done" if success else "failed")
        if success:
            self.wechat_out += row.amount_fen
            self._refund_done(model, row.amount_fen)

    @precondition(lambda self: self.order_ids)
    @rule(n=st.integers(0, 50))
    def customer_cancels(self, n: int) -> None:
        order_id = self.pick(self.order_ids, n)
        model = self.orders[order_id]
        got = self.act(
            orders.cancel_order,
            order_id=order_id,
            actor=f"customer:{model.openid}",
            reason="不要了",
            notify=notify,
        )
        if model.status == _S.PENDING_PAYMENT:
            assert isinstance(got, Order)
            model.status = _S.CANCELLED
        else:
            assert got == "not_cancellable"

    @precondition(lambda self: any(m.status == _S.PENDING_PAYMENT for m in self.orders.values()))
    @rule()
    def time_runs_out(self) -> None:
        later = utcnow() + orders.ORDER_TTL + dt.timedelta(minutes=1)
        cancelled = self.act(payments.expire_unpaid, now=later, notify=notify, reason="超时未支付")
        unpaid = [m for m in self.orders.values() if m.status == _S.PENDING_PAYMENT]
        assert cancelled == len(unpaid)
        for model in unpaid:
            model.status = _S.CANCELLED

    @precondition(lambda self: self.order_ids)
    @rule(n=st.integers(0, 50), prefer=st.booleans())
    def staff_progress(self, n: int, prefer: bool) -> None:
        order_id, model = self.choose(n, prefer, PAID)
        if model.status not in PAID or model.status == _S.COMPLETED:
            return
        to = PROGRESS[PROGRESS.index(model.status) + 1]
        got = self.act(orders.transition, order_id=order_id, to=to, actor="staff:t", notify=notify)
        assert isinstance(got, Order)
        model.status = to

    # --- invariants ------------------------------------------------------------------------------

    async def _sums(self, s: AsyncSession) -> dict[str, Any]:
        mine_balance = Balance.account == self.account
        balances = {
            o: int(f)
            for o, f in await s.execute(select(Balance.openid, Balance.balance_fen).where(mine_balance))
        }
        ledger = await s.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.account == self.account
            )
        )
        money_in = await s.scalar(
            select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
                Payment.account == self.account, Payment.status == "paid"
            )
        )
        succeeded = (
            select(Refund.order_id, Refund.destination, func.sum(Refund.amount_fen))
            .join(Order, Order.id == Refund.order_id)
            .where(Order.account == self.account, Refund.status == "succeeded")
            .group_by(Refund.order_id, Refund.destination)
        )
        refunds: dict[int, int] = {}
        wechat_out = 0
        for order_id, destination, fen in await s.execute(succeeded):
            refunds[order_id] = refunds.get(order_id, 0) + int(fen)
            wechat_out += int(fen) if destination == "wechat" else 0
        ever_paid = [str(x) for x in WAS_PAID]
        rows = await s.execute(
            select(Order.id, Order.status, Order.total_fen).where(Order.account == self.account)
        )
        statuses, held = {}, 0
        for order_id, status, total in rows:
            statuses[order_id] = status
            if status in ever_paid:
                assert 0 <= refunds.get(order_id, 0) <= total
                held += total - refunds.get(order_id, 0)
        return {
            "balances": balances,
            "ledger": int(ledger or 0),
            "money_in": int(money_in or 0),
            "wechat_out": wechat_out,
            "held": held,
            "statuses": statuses,
        }

    @invariant()
    def money_is_conserved_and_matches_the_model(self) -> None:
        async def read() -> tuple[list[Any], dict[str, Any]]:
            async with self.sm() as s:
                return await payments.check_balances(s), await self._sums(s)

        mismatches, got = self.run(read())
        assert mismatches == []
        assert all(fen >= 0 for fen in got["balances"].values())
        assert got["ledger"] == sum(got["balances"].values())
        assert got["money_in"] == sum(got["balances"].values()) + got["held"] + got["wechat_out"]
        assert {p: got["balances"].get(p, 0) for p in PEOPLE} == self.balances
        assert got["statuses"] == {i: str(m.status) for i, m in self.orders.items()}
        assert (got["money_in"], got["wechat_out"]) == (self.money_in, self.wechat_out)

    @invariant()
    def nothing_is_counted_twice(self) -> None:
        async def read() -> tuple[list[Any], dict[int, int], dict[int, int]]:
            async with self.sm() as s:
                paid = list(
                    await s.execute(
                        select(Payment.id, Payment.purpose, Payment.order_id, Payment.flag).where(
                            Payment.account == self.account, Payment.status == "paid"
                        )
                    )
                )
                per_payment = await s.execute(
                    select(LedgerEntry.payment_id, func.count())
                    .where(LedgerEntry.account == self.account, LedgerEntry.payment_id.is_not(None))
                    .group_by(LedgerEntry.payment_id)
                )
                by_balance = await s.execute(
                    select(LedgerEntry.order_id, func.count())
                    .where(LedgerEntry.account == self.account, LedgerEntry.kind == "order_payment")
                    .group_by(LedgerEntry.order_id)
                )
                return paid, dict(per_payment.all()), dict(by_balance.all())

        paid, entries, by_balance = self.run(read())
        paid_orders: dict[int, int] = {order_id: n for order_id, n in by_balance.items()}
        for payment_id, purpose, order_id, flag in paid:
            paid_an_order = purpose == "order" and flag != "late_payment"
            assert entries.get(payment_id, 0) == (0 if paid_an_order else 1)
            if paid_an_order:
                paid_orders[order_id] = paid_orders.get(order_id, 0) + 1
        expected = {i: 1 for i, m in self.orders.items() if m.status in WAS_PAID}
        assert paid_orders == expected


def test_money_is_conserved_whatever_happens(tmp_path: Path) -> None:
    template = tmp_path / "template.db"
    asyncio.run(migrated(f"sqlite+aiosqlite:///{template}"))
    run_state_machine_as_test(
        lambda: MoneyMachine(template),
        settings=settings(max_examples=30, stateful_step_count=30, deadline=None),
    )
