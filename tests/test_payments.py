"""store.payments on SQLite and PostgreSQL: balances, payments, notifications, refunds, expiry, invoices."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
from typing import Any

import pytest
from sqlalchemy import func, select, update

from store import orders, payments
from store.errors import DomainError
from store.models import (
    Balance,
    Invoice,
    InvoiceTitle,
    LedgerEntry,
    Order,
    OrderEvent,
    OutboxMessage,
    Package,
    Payment,
    Refund,
    utcnow,
)
from store.orders import Line, OrderStatus
from store.outbox import Outgoing
from tests.factories import Maker, Recorder, add_package

ACCOUNT = "gh_pay"
ALICE, BOB = "o_alice", "o_bob"
_ids = itertools.count(1)


async def place(sm: Maker, package_id: int, *, openid: str = ALICE, qty: int = 1, **kw: Any) -> Order:
    async with sm.begin() as s:
        return await orders.create_order(
            s,
            account=ACCOUNT,
            openid=openid,
            lines=[Line(package_id, qty)],
            requirements={},
            source_key=f"src-{next(_ids)}",
            notify=Recorder(),
            **kw,
        )


async def run(sm: Maker, action: Any, **kwargs: Any) -> Any:
    """One action in its own transaction."""
    async with sm.begin() as s:
        return await action(s, **kwargs)


async def attempt(sm: Maker, action: Any, **kwargs: Any) -> Any:
    """Like run, but a refusal is returned as its code (for races)."""
    try:
        return await run(sm, action, **kwargs)
    except DomainError as exc:
        return exc.code


async def snapshot(sm: Maker) -> dict[str, Any]:
    """Every row money actions may touch, to prove that a refusal or a replay changed nothing."""
    async with sm() as s:
        tables: dict[str, Any] = {}
        for model in (
            Balance,
            LedgerEntry,
            Payment,
            Refund,
            InvoiceTitle,
            Invoice,
            OrderEvent,
            OutboxMessage,
        ):
            cols = [c for c in model.__table__.columns if c.name not in ("updated_at",)]
            tables[model.__tablename__] = list(
                await s.execute(select(*cols).order_by(*model.__table__.primary_key))
            )
        tables["orders"] = list(
            await s.execute(select(Order.id, Order.status, Order.payment_reminded_at).order_by(Order.id))
        )
        tables["stock"] = list(await s.execute(select(Package.id, Package.stock).order_by(Package.id)))
    return tables


async def refused(sm: Maker, code: str, action: Any, **kwargs: Any) -> DomainError:
    """Run an action, expect DomainError(code) and prove nothing changed."""
    before = await snapshot(sm)
    with pytest.raises(DomainError) as info:
        await run(sm, action, **kwargs)
    assert info.value.code == code, info.value.details
    assert await snapshot(sm) == before
    return info.value


async def balance(sm: Maker, openid: str = ALICE) -> int:
    async with sm() as s:
        return await payments.balance_of(s, account=ACCOUNT, openid=openid)


async def status_of(sm: Maker, order_id: int) -> str:
    async with sm() as s:
        return (await s.scalar(select(Order.status).where(Order.id == order_id))) or ""


async def check(sm: Maker) -> None:
    async with sm() as s:
        assert await payments.check_balances(s) == []


async def new_payment(sm: Maker, **kw: Any) -> Payment:
    kw.setdefault("account", ACCOUNT)
    kw.setdefault("openid", ALICE)
    return await run(sm, payments.create_payment, **kw)


async def notified(sm: Maker, payment: Payment, *, txn: str = "", fee: int | None = None, **kw: Any) -> str:
    return await run(
        sm,
        payments.apply_notification,
        out_trade_no=payment.out_trade_no,
        transaction_id=txn or f"42000{payment.id:08d}",
        total_fee=payment.amount_fen if fee is None else fee,
        payer_openid=payment.openid,
        notify=kw.get("notify", Recorder()),
    )


async def topup(sm: Maker, amount_fen: int, openid: str = ALICE) -> Payment:
    payment = await new_payment(sm, purpose="topup", openid=openid, amount_fen=amount_fen)
    assert await notified(sm, payment) == "credited"
    return payment


async def paid_by_wechat(sm: Maker, package_id: int, openid: str = ALICE) -> tuple[Order, Payment]:
    order = await place(sm, package_id, openid=openid)
    payment = await new_payment(sm, purpose="order", openid=openid, order_id=order.id)
    assert await notified(sm, payment) == "credited"
    return order, payment


# --- Balances ------------------------------------------------------------------------------------


async def test_credit_and_debit_apply_each_key_once_and_keep_the_cached_total(sm: Maker) -> None:
    who = {"account": ACCOUNT, "openid": ALICE}
    assert await run(sm, payments.credit, amount_fen=1_000, kind="topup", key="k1", **who) is True
    assert await run(sm, payments.credit, amount_fen=1_000, kind="topup", key="k1", **who) is False
    assert await run(sm, payments.debit, amount_fen=300, kind="order_payment", key="k2", **who) is True
    assert await run(sm, payments.debit, amount_fen=300, kind="order_payment", key="k2", **who) is False
    assert await balance(sm) == 700
    error = await refused(
        sm, "insufficient_balance", payments.debit, amount_fen=701, kind="order_payment", key="k3", **who
    )
    assert error.details == {"balance": 700, "needed": 701}
    await refused(
        sm,
        "insufficient_balance",
        payments.debit,
        **(who | {"openid": BOB}),
        amount_fen=1,
        kind="order_payment",
        key="k4",
    )
    for bad in (0, -5):
        await refused(sm, "bad_amount", payments.credit, amount_fen=bad, kind="topup", key="k5", **who)
        await refused(sm, "bad_amount", payments.debit, amount_fen=bad, kind="topup", key="k5", **who)
    await refused(sm, "bad_kind", payments.credit, amount_fen=1, kind="gift", key="k6", **who)
    async with sm() as s:
        entries = await payments.recent_entries(s, **who)
        assert [(e.amount_fen, e.kind, e.key) for e in entries] == [
            (-300, "order_payment", "k2"),
            (1_000, "topup", "k1"),
        ]
        assert await payments.recent_entries(s, **who, limit=1) == entries[:1]
    await check(sm)


async def test_check_balances_reports_a_cached_total_that_drifted(lite: Maker) -> None:
    await run(lite, payments.credit, account=ACCOUNT, openid=ALICE, amount_fen=500, kind="topup", key="t")
    async with lite.begin() as s:
        await s.execute(update(Balance).values(balance_fen=499))
        s.add(LedgerEntry(account=ACCOUNT, openid=BOB, amount_fen=7, kind="topup", key="orphan"))
    async with lite() as s:
        assert await payments.check_balances(s) == [(ACCOUNT, ALICE, 499, 500), (ACCOUNT, BOB, 0, 7)]


async def test_concurrent_credits_of_one_key_count_once(sm: Maker) -> None:
    who = {"account": ACCOUNT, "openid": ALICE}
    results = await asyncio.gather(
        *(attempt(sm, payments.credit, amount_fen=100, kind="topup", key="same", **who) for _ in range(10))
    )
    assert results.count(True) == 1 and results.count(False) == 9
    assert await balance(sm) == 100
    await check(sm)


# --- Paying from the balance ---------------------------------------------------------------------


async def test_pay_with_balance_debits_once_and_marks_the_order_paid(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=3_000)
    await topup(sm, 5_000)
    order = await place(sm, package_id)
    async with sm() as s:
        assert await payments.order_due(s, order) == 3_000
    notify = Recorder()
    who = {"order_id": order.id, "account": ACCOUNT, "openid": ALICE}
    paid = await run(sm, payments.pay_with_balance, notify=notify, **who)
    assert paid.status == OrderStatus.PENDING_REVIEW
    assert notify.calls == [(order.id, "待支付", "待审核", None)]
    assert await balance(sm) == 2_000
    async with sm() as s:
        assert await payments.order_due(s, paid) == 0
        entry = (await payments.recent_entries(s, account=ACCOUNT, openid=ALICE, limit=1))[0]
        assert (entry.amount_fen, entry.kind, entry.key, entry.order_id) == (
            -3_000,
            "order_payment",
            f"pay:{order.id}",
            order.id,
        )
        actors = list(await s.scalars(select(OrderEvent.actor).where(OrderEvent.order_id == order.id)))
        assert actors[-1] == f"customer:{ALICE}"
    error = await refused(sm, "already_paid", payments.pay_with_balance, notify=Recorder(), **who)
    assert error.details["status"] == OrderStatus.PENDING_REVIEW
    await check(sm)


async def test_pay_with_balance_refusals_change_nothing(lite: Maker) -> None:
    package_id = await add_package(lite, price_fen=3_000)
    await topup(lite, 2_000)
    order = await place(lite, package_id)
    args: dict[str, Any] = {"order_id": order.id, "account": ACCOUNT, "notify": Recorder()}
    error = await refused(lite, "insufficient_balance", payments.pay_with_balance, openid=ALICE, **args)
    assert error.details == {"balance": 2_000, "needed": 3_000}
    await refused(lite, "not_yours", payments.pay_with_balance, openid=BOB, **args)
    later = utcnow() + orders.ORDER_TTL + dt.timedelta(seconds=1)
    await topup(lite, 2_000)
    await refused(lite, "expired", payments.pay_with_balance, openid=ALICE, now=later, **args)
    await refused(
        lite,
        "not_found",
        payments.pay_with_balance,
        order_id=999,
        account=ACCOUNT,
        openid=ALICE,
        notify=Recorder(),
    )
    await run(lite, orders.cancel_order, order_id=order.id, actor="system", reason="超时", notify=Recorder())
    await refused(lite, "not_payable", payments.pay_with_balance, openid=ALICE, **args)
    assert await balance(lite) == 4_000


async def test_two_orders_racing_for_one_balance_never_both_succeed(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=1_000)
    await topup(sm, 1_500)
    first, second = await place(sm, package_id), await place(sm, package_id)
    results = await asyncio.gather(
        *(
            attempt(
                sm, payments.pay_with_balance, order_id=o.id, account=ACCOUNT, openid=ALICE, notify=Recorder()
            )
            for o in (first, second)
        )
    )
    codes = sorted(r if isinstance(r, str) else "paid" for r in results)
    assert codes == ["insufficient_balance", "paid"]
    assert await balance(sm) == 500
    statuses = sorted([await status_of(sm, first.id), await status_of(sm, second.id)])
    assert statuses == sorted([OrderStatus.PENDING_PAYMENT, OrderStatus.PENDING_REVIEW])
    await check(sm)


async def test_one_order_paid_from_the_balance_twice_at_once_is_debited_once(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=1_000)
    await topup(sm, 5_000)
    order = await place(sm, package_id)
    results = await asyncio.gather(
        *(
            attempt(
                sm,
                payments.pay_with_balance,
                order_id=order.id,
                account=ACCOUNT,
                openid=ALICE,
                notify=Recorder(),
            )
            for _ in range(5)
        )
    )
    assert sum(isinstance(r, Order) for r in results) == 1
    assert {r for r in results if isinstance(r, str)} <= {"already_paid", "conflict"}
    assert await balance(sm) == 4_000
    await check(sm)


# --- WeChat Pay ----------------------------------------------------------------------------------


async def test_create_payment_for_an_order_and_a_topup(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=2_500)
    order = await place(sm, package_id)
    pay = await new_payment(sm, purpose="order", order_id=order.id, trade_type="JSAPI")
    assert (pay.purpose, pay.amount_fen, pay.order_id, pay.status, pay.trade_type) == (
        "order",
        2_500,
        order.id,
        "created",
        "JSAPI",
    )
    assert re.fullmatch(r"CO\d{14}[A-Z2-7]{12}", pay.out_trade_no) and len(pay.out_trade_no) <= 32
    top = await new_payment(sm, purpose="topup", amount_fen=100, order_id=order.id)
    assert (top.purpose, top.amount_fen, top.order_id, top.trade_type) == ("topup", 100, None, "NATIVE")
    assert top.out_trade_no != pay.out_trade_no
    updated = await run(
        sm, payments.set_prepay, payment_id=top.id, code_url="weixin://wxpay/bizpayurl?pr=abc"
    )
    assert updated.code_url == "weixin://wxpay/bizpayurl?pr=abc" and updated.prepay_id is None
    updated = await run(sm, payments.set_prepay, payment_id=pay.id, prepay_id="wx2026")
    assert updated.prepay_id == "wx2026"


async def test_the_prepay_answer_updates_the_payment_the_session_already_holds(sm: Maker) -> None:
    order = await place(sm, await add_package(sm, price_fen=2_500))
    async with sm.begin() as session:
        payment = await payments.create_payment(
            session, purpose="order", account=ACCOUNT, openid=ALICE, order_id=order.id
        )
        updated = await payments.set_prepay(session, payment_id=payment.id, code_url="weixin://pr=held")
        assert updated is payment and payment.code_url == "weixin://pr=held"
    async with sm() as session:
        assert (
            await session.scalar(select(Payment.code_url).where(Payment.id == payment.id))
            == "weixin://pr=held"
        )


async def test_create_payment_refusals_change_nothing(lite: Maker) -> None:
    package_id = await add_package(lite, price_fen=2_500)
    order = await place(lite, package_id)
    base: dict[str, Any] = {"account": ACCOUNT, "openid": ALICE}
    for fen in (None, 99, 5_000_001):
        await refused(lite, "bad_amount", payments.create_payment, purpose="topup", amount_fen=fen, **base)
    await refused(lite, "bad_purpose", payments.create_payment, purpose="gift", amount_fen=100, **base)
    await refused(
        lite,
        "bad_trade_type",
        payments.create_payment,
        purpose="topup",
        amount_fen=100,
        trade_type="APP",
        **base,
    )
    await refused(
        lite,
        "not_yours",
        payments.create_payment,
        purpose="order",
        order_id=order.id,
        account=ACCOUNT,
        openid=BOB,
    )
    await refused(
        lite, "bad_amount", payments.create_payment, purpose="order", order_id=order.id, amount_fen=1, **base
    )
    await refused(lite, "not_found", payments.create_payment, purpose="order", order_id=None, **base)
    later = utcnow() + dt.timedelta(hours=1)
    await refused(
        lite, "expired", payments.create_payment, purpose="order", order_id=order.id, now=later, **base
    )
    await run(lite, orders.mark_paid, order_id=order.id, notify=Recorder())
    await refused(lite, "already_paid", payments.create_payment, purpose="order", order_id=order.id, **base)
    await refused(lite, "not_found", payments.set_prepay, payment_id=404, code_url="x")


async def test_the_same_notification_twenty_times_credits_once(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=2_500)
    order = await place(sm, package_id)
    pay = await new_payment(sm, purpose="order", order_id=order.id)
    notify = Recorder()
    assert await notified(sm, pay, txn="4200001", notify=notify) == "credited"
    after = await snapshot(sm)
    for _ in range(19):
        assert await notified(sm, pay, txn="4200001", notify=notify) == "duplicate"
    assert await snapshot(sm) == after
    assert notify.calls == [(order.id, "待支付", "待审核", None)]
    async with sm() as s:
        row = await s.get_one(Payment, pay.id)
        assert (row.status, row.transaction_id, row.payer_openid, row.flag) == (
            "paid",
            "4200001",
            ALICE,
            None,
        )
        assert row.paid_at is not None
        actors = list(await s.scalars(select(OrderEvent.actor).where(OrderEvent.order_id == order.id)))
        assert actors == [f"customer:{ALICE}", "wechatpay"]
    assert await status_of(sm, order.id) == OrderStatus.PENDING_REVIEW


@pytest.mark.parametrize("purpose", ["order", "topup"])
async def test_twenty_concurrent_notifications_credit_exactly_once(sm: Maker, purpose: str) -> None:
    package_id = await add_package(sm, price_fen=2_500)
    if purpose == "order":
        order = await place(sm, package_id)
        pay = await new_payment(sm, purpose="order", order_id=order.id)
    else:
        pay = await new_payment(sm, purpose="topup", amount_fen=2_500)
    args = {
        "out_trade_no": pay.out_trade_no,
        "transaction_id": "4200009",
        "total_fee": 2_500,
        "payer_openid": ALICE,
        "notify": Recorder(),
    }
    results = await asyncio.gather(*(attempt(sm, payments.apply_notification, **args) for _ in range(20)))
    assert results.count("credited") == 1 and results.count("duplicate") == 19
    async with sm() as s:
        events = await s.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.to_status == "待审核")
        )
    assert (events, await balance(sm)) == ((1, 0) if purpose == "order" else (0, 2_500))
    await check(sm)


async def test_a_wrong_amount_is_flagged_not_credited(sm: Maker) -> None:
    pay = await new_payment(sm, purpose="topup", amount_fen=10_000)
    assert await notified(sm, pay, fee=1) == "mismatch"
    assert await notified(sm, pay, fee=1) == "mismatch"
    async with sm() as s:
        row = await s.get_one(Payment, pay.id)
        assert (row.status, row.flag, row.transaction_id) == ("created", "amount_mismatch", None)
        assert await s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert await balance(sm) == 0
    # The true notification still counts (and the flag stays for staff to see).
    assert await notified(sm, pay) == "credited"
    assert await balance(sm) == 10_000


async def test_money_for_a_cancelled_order_goes_to_the_balance_with_a_flag(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=2_500, stock=3)
    order = await place(sm, package_id)
    pay = await new_payment(sm, purpose="order", order_id=order.id)
    await run(sm, orders.cancel_order, order_id=order.id, actor="system", reason="超时", notify=Recorder())
    notify = Recorder()
    assert await notified(sm, pay, notify=notify) == "late"
    assert notify.calls == []  # no order changed; the caller tells the customer from the outcome
    assert await status_of(sm, order.id) == OrderStatus.CANCELLED
    assert await balance(sm) == 2_500
    async with sm() as s:
        row = await s.get_one(Payment, pay.id)
        assert (row.status, row.flag) == ("paid", "late_payment")
        entry = (await payments.recent_entries(s, account=ACCOUNT, openid=ALICE))[0]
        assert (entry.kind, entry.key, entry.amount_fen, entry.payment_id) == (
            "late_payment",
            f"late:{pay.id}",
            2_500,
            pay.id,
        )
    after = await snapshot(sm)
    assert await notified(sm, pay) == "duplicate"
    assert await snapshot(sm) == after
    await check(sm)


async def test_a_second_payment_of_a_paid_order_goes_to_the_balance(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=2_500)
    order = await place(sm, package_id)
    first = await new_payment(sm, purpose="order", order_id=order.id)
    second = await new_payment(sm, purpose="order", order_id=order.id)
    assert await notified(sm, first) == "credited"
    assert await notified(sm, second) == "late"
    assert await balance(sm) == 2_500
    assert await status_of(sm, order.id) == OrderStatus.PENDING_REVIEW


async def test_unknown_or_replayed_transaction_changes_nothing(sm: Maker) -> None:
    pay = await new_payment(sm, purpose="topup", amount_fen=1_000)
    other = await new_payment(sm, purpose="topup", amount_fen=1_000)
    assert await notified(sm, pay, txn="T1") == "credited"
    before = await snapshot(sm)
    outcome = await run(
        sm,
        payments.apply_notification,
        out_trade_no="CO-nonexistent",
        transaction_id="T2",
        total_fee=1_000,
        payer_openid=ALICE,
        notify=Recorder(),
    )
    assert outcome == "unknown"
    # The transaction id of the first payment reported for another one: already seen.
    assert await notified(sm, other, txn="T1") == "duplicate"
    assert await snapshot(sm) == before


async def test_payments_to_reconcile(lite: Maker) -> None:
    now = utcnow()
    made = {}
    for name, age in {"fresh": 1, "due": 10, "old": 60 * 24 * 3}.items():
        made[name] = await new_payment(
            lite, purpose="topup", amount_fen=100, now=now - dt.timedelta(minutes=age)
        )
    paid = await new_payment(lite, purpose="topup", amount_fen=100, now=now - dt.timedelta(minutes=10))
    await notified(lite, paid)
    async with lite() as s:
        found = await payments.payments_to_reconcile(s, older_than=dt.timedelta(minutes=5), now=now)
    assert [p.id for p in found] == [made["due"].id]


# --- Refunds -------------------------------------------------------------------------------------


async def test_partial_then_full_refund_to_the_balance(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=10_000)
    order, _ = await paid_by_wechat(sm, package_id)
    notify = Recorder()
    args: dict[str, Any] = {
        "order_id": order.id,
        "destination": "balance",
        "actor": "staff:wang",
        "notify": notify,
    }
    part = await run(sm, payments.refund, amount_fen=3_000, reason="少发一条", **args)
    assert (part.status, part.destination, part.amount_fen) == ("succeeded", "balance", 3_000)
    assert re.fullmatch(r"RF\d{14}[A-Z2-7]{12}", part.out_refund_no)
    assert await status_of(sm, order.id) == OrderStatus.PENDING_REVIEW  # a partial refund: work goes on
    assert await balance(sm) == 3_000
    error = await refused(sm, "refund_exceeds", payments.refund, amount_fen=7_001, reason="多退", **args)
    assert error.details["refundable"] == 7_000
    rest = await run(sm, payments.refund, amount_fen=7_000, reason="取消合作", **args)
    assert rest.status == "succeeded"
    assert await status_of(sm, order.id) == OrderStatus.REFUNDED
    assert [c[1:3] for c in notify.calls] == [("待审核", "退款中"), ("退款中", "已退款")]
    assert await balance(sm) == 10_000
    async with sm() as s:
        keys = [e.key for e in await payments.recent_entries(s, account=ACCOUNT, openid=ALICE)]
    assert keys[:2] == [f"refund:{rest.id}", f"refund:{part.id}"]
    await refused(sm, "not_refundable", payments.refund, amount_fen=1, reason="再退", **args)
    await check(sm)


async def test_refund_of_a_balance_paid_order(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=4_000)
    await topup(sm, 4_000)
    order = await place(sm, package_id)
    await run(
        sm, payments.pay_with_balance, order_id=order.id, account=ACCOUNT, openid=ALICE, notify=Recorder()
    )
    assert await balance(sm) == 0
    args: dict[str, Any] = {
        "order_id": order.id,
        "actor": "staff:li",
        "reason": "档期冲突",
        "notify": Recorder(),
    }
    await refused(sm, "no_wechat_payment", payments.refund, amount_fen=100, destination="wechat", **args)
    await run(sm, payments.refund, amount_fen=4_000, destination="balance", **args)
    assert await balance(sm) == 4_000
    assert await status_of(sm, order.id) == OrderStatus.REFUNDED


async def test_refund_refusals_change_nothing(lite: Maker) -> None:
    package_id = await add_package(lite, price_fen=4_000)
    unpaid = await place(lite, package_id)
    order, _ = await paid_by_wechat(lite, package_id)
    args: dict[str, Any] = {"actor": "staff:li", "notify": Recorder()}
    ok: dict[str, Any] = {"order_id": order.id, "destination": "balance", "reason": "退款"}
    await refused(
        lite, "not_refundable", payments.refund, **(ok | {"order_id": unpaid.id}), amount_fen=1, **args
    )
    await refused(lite, "not_found", payments.refund, **(ok | {"order_id": 999}), amount_fen=1, **args)
    await refused(lite, "bad_amount", payments.refund, **ok, amount_fen=0, **args)
    await refused(
        lite, "bad_destination", payments.refund, **(ok | {"destination": "cash"}), amount_fen=1, **args
    )
    await refused(lite, "bad_reason", payments.refund, **(ok | {"reason": "  "}), amount_fen=1, **args)
    await refused(lite, "refund_exceeds", payments.refund, **ok, amount_fen=4_001, **args)
    assert await status_of(lite, order.id) == OrderStatus.PENDING_REVIEW


async def test_wechat_refund_is_pending_until_its_notification(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=6_000)
    order, pay = await paid_by_wechat(sm, package_id)
    args: dict[str, Any] = {
        "order_id": order.id,
        "destination": "wechat",
        "actor": "staff:wang",
        "notify": Recorder(),
    }
    row = await run(sm, payments.refund, amount_fen=6_000, reason="取消", **args)
    assert (row.status, row.payment_id, row.destination) == ("pending", pay.id, "wechat")
    assert await status_of(sm, order.id) == OrderStatus.REFUNDING
    await refused(sm, "refund_exceeds", payments.refund, amount_fen=1, reason="再退", **args)

    def note(**kw: Any) -> dict[str, Any]:
        return {
            "out_refund_no": row.out_refund_no,
            "refund_id": "5030001",
            "refund_status": "SUCCESS",
            "refund_fee": 6_000,
            "notify": notify,
        } | kw

    notify = Recorder()
    before = await snapshot(sm)
    assert await run(sm, payments.apply_refund_notification, **note(refund_fee=5_999)) == "mismatch"
    assert await run(sm, payments.apply_refund_notification, **note(out_refund_no="RF-nope")) == "unknown"
    assert await snapshot(sm) == before
    assert await run(sm, payments.apply_refund_notification, **note()) == "done"
    assert notify.calls == [(order.id, "退款中", "已退款", None)]
    after = await snapshot(sm)
    assert await run(sm, payments.apply_refund_notification, **note()) == "duplicate"
    assert await snapshot(sm) == after
    async with sm() as s:
        done = await s.get_one(Refund, row.id)
        assert (done.status, done.refund_id) == ("succeeded", "5030001") and done.done_at is not None
    assert await status_of(sm, order.id) == OrderStatus.REFUNDED
    assert await balance(sm) == 0  # the money went back through WeChat, not to the balance


async def test_a_closed_wechat_refund_fails_and_can_be_asked_again(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=6_000)
    order, _ = await paid_by_wechat(sm, package_id)
    args: dict[str, Any] = {
        "order_id": order.id,
        "destination": "wechat",
        "actor": "staff:wang",
        "notify": Recorder(),
    }
    first = await run(sm, payments.refund, amount_fen=2_000, reason="部分", **args)
    outcome = await run(
        sm,
        payments.apply_refund_notification,
        out_refund_no=first.out_refund_no,
        refund_id="503-closed",
        refund_status="REFUNDCLOSE",
        refund_fee=2_000,
        notify=Recorder(),
    )
    assert outcome == "failed"
    assert await status_of(sm, order.id) == OrderStatus.PENDING_REVIEW
    again = await run(
        sm, payments.refund, amount_fen=6_000, reason="全部", **args
    )  # the failed one is not counted
    assert again.status == "pending"


async def test_concurrent_wechat_refund_notifications_finish_the_order_once(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=6_000)
    order, _ = await paid_by_wechat(sm, package_id)
    args: dict[str, Any] = {
        "order_id": order.id,
        "destination": "wechat",
        "actor": "staff:wang",
        "notify": Recorder(),
    }
    halves = [await run(sm, payments.refund, amount_fen=3_000, reason="分两次", **args) for _ in range(2)]
    results = await asyncio.gather(
        *(
            attempt(
                sm,
                payments.apply_refund_notification,
                out_refund_no=r.out_refund_no,
                refund_id=f"503-{r.id}",
                refund_status="SUCCESS",
                refund_fee=3_000,
                notify=Recorder(),
            )
            for r in halves
            for _ in range(3)
        )
    )
    assert sorted(results) == ["done", "done"] + ["duplicate"] * 4
    assert await status_of(sm, order.id) == OrderStatus.REFUNDED


# --- Expiry --------------------------------------------------------------------------------------


def reminder(order: Order) -> list[Outgoing]:
    return [Outgoing("mp", order.openid, "text", {"content": f"{order.number} 即将过期"})]


async def test_reminder_is_sent_once_and_only_near_expiry(sm: Maker) -> None:
    package_id = await add_package(sm)
    soon = await place(sm, package_id, expires_in=dt.timedelta(minutes=5))
    later = await place(sm, package_id, expires_in=dt.timedelta(hours=5))
    now = utcnow()
    args: dict[str, Any] = {"now": now, "within": dt.timedelta(minutes=10), "notify_reminder": reminder}
    results = await asyncio.gather(*(run(sm, payments.remind_expiring, **args) for _ in range(3)))
    assert sorted(results) == [0, 0, 1]
    assert await run(sm, payments.remind_expiring, **args) == 0
    async with sm() as s:
        texts = list(
            await s.scalars(
                select(OutboxMessage.payload).where(
                    OutboxMessage.payload["content"].as_string().like("%即将过期")
                )
            )
        )
        reminded = {i: at for i, at in await s.execute(select(Order.id, Order.payment_reminded_at))}
    assert texts == [{"content": f"{soon.number} 即将过期"}]
    assert reminded[soon.id] is not None and reminded[later.id] is None


async def test_expiry_cancels_once_and_releases_stock(sm: Maker) -> None:
    package_id = await add_package(sm, stock=5)
    stale = await place(sm, package_id, qty=2, expires_in=dt.timedelta(minutes=1))
    fresh = await place(sm, package_id, qty=1)
    paid = await place(sm, package_id, qty=1, expires_in=dt.timedelta(minutes=1))
    await run(sm, orders.mark_paid, order_id=paid.id, notify=Recorder())
    notify = Recorder()
    now = utcnow() + dt.timedelta(minutes=2)
    assert await run(sm, payments.expire_unpaid, now=now, notify=notify, reason="超时未支付") == 1
    assert notify.calls == [(stale.id, "待支付", "已取消", "超时未支付")]
    assert await run(sm, payments.expire_unpaid, now=now, notify=notify, reason="超时未支付") == 0
    assert [await status_of(sm, o.id) for o in (stale, fresh, paid)] == ["已取消", "待支付", "待审核"]
    async with sm() as s:
        assert await s.scalar(select(Package.stock).where(Package.id == package_id)) == 3
        actor = await s.scalar(select(OrderEvent.actor).where(OrderEvent.to_status == "已取消"))
    assert actor == "system"


async def test_two_expiry_workers_cancel_each_order_once(sm: Maker) -> None:
    package_id = await add_package(sm, stock=10)
    placed = [await place(sm, package_id, qty=1, expires_in=dt.timedelta(seconds=1)) for _ in range(6)]
    now = utcnow() + dt.timedelta(minutes=1)
    counts = await asyncio.gather(
        *(run(sm, payments.expire_unpaid, now=now, notify=Recorder(), reason="超时") for _ in range(2))
    )
    assert sum(counts) == len(placed)
    async with sm() as s:
        assert await s.scalar(select(Package.stock).where(Package.id == package_id)) == 10
        cancels = await s.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.to_status == "已取消")
        )
    assert cancels == len(placed)


async def test_expiry_racing_a_payment_notification_never_loses_money(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=1_000)
    order = await place(sm, package_id, expires_in=dt.timedelta(seconds=1))
    pay = await new_payment(sm, purpose="order", order_id=order.id)
    now = utcnow() + dt.timedelta(minutes=1)
    outcome, cancelled = await asyncio.gather(
        notified(sm, pay), run(sm, payments.expire_unpaid, now=now, notify=Recorder(), reason="超时")
    )
    status = await status_of(sm, order.id)
    if outcome == "credited":
        assert (status, cancelled, await balance(sm)) == ("待审核", 0, 0)
    else:
        assert (outcome, status, cancelled, await balance(sm)) == ("late", "已取消", 1, 1_000)


# --- Invoices ------------------------------------------------------------------------------------


async def complete(sm: Maker, order_id: int) -> None:
    for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
        await run(sm, orders.transition, order_id=order_id, to=to, actor="staff:wang", notify=Recorder())


async def test_invoice_titles(sm: Maker) -> None:
    who = {"account": ACCOUNT, "openid": ALICE}
    company = await run(
        sm, payments.save_invoice_title, title=" 上海某某科技有限公司 ", tax_no="91310000mA1k2b3c4d", **who
    )
    assert (company.title, company.tax_no) == ("上海某某科技有限公司", "91310000MA1K2B3C4D")
    personal = await run(sm, payments.save_invoice_title, title="张三", tax_no="", **who)
    assert personal.tax_no is None
    again = await run(
        sm, payments.save_invoice_title, title="上海某某科技有限公司", tax_no="913100000000000000", **who
    )
    assert (again.id, again.tax_no) == (company.id, "913100000000000000")
    for bad in ("123", "91310000MA1K2B3C4D-", "9131000 0MA1K2B3C4", "9" * 21):
        await refused(sm, "bad_tax_no", payments.save_invoice_title, title="某公司", tax_no=bad, **who)
    for bad in ("张", " ", "长" * 101):
        await refused(sm, "bad_title", payments.save_invoice_title, title=bad, tax_no="", **who)
    async with sm() as s:
        assert [t.title for t in await payments.invoice_titles(s, **who)] == ["上海某某科技有限公司", "张三"]
        assert await payments.invoice_titles(s, account=ACCOUNT, openid=BOB) == []


async def test_invoice_of_a_completed_order_once_for_what_was_kept(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=8_000)
    order, _ = await paid_by_wechat(sm, package_id)
    who = {"account": ACCOUNT, "openid": ALICE}
    header = await run(
        sm, payments.save_invoice_title, title="上海某某科技有限公司", tax_no="91310000MA1K2B3C4D", **who
    )
    bobs = await run(sm, payments.save_invoice_title, account=ACCOUNT, openid=BOB, title="李四", tax_no="")
    ask: dict[str, Any] = {"order_id": order.id, "title_id": header.id}
    await refused(sm, "not_invoiceable", payments.request_invoice, **ask, **who)  # not completed yet
    await complete(sm, order.id)
    await refused(sm, "not_invoiceable", payments.request_invoice, **ask, account=ACCOUNT, openid=BOB)
    await refused(sm, "not_found", payments.request_invoice, order_id=order.id, title_id=bobs.id, **who)
    await refused(sm, "not_found", payments.request_invoice, order_id=999, title_id=header.id, **who)
    invoice = await run(sm, payments.request_invoice, **ask, **who)
    assert (invoice.amount_fen, invoice.title, invoice.tax_no, invoice.status) == (
        8_000,
        "上海某某科技有限公司",
        "91310000MA1K2B3C4D",
        "requested",
    )
    error = await refused(sm, "invoice_exists", payments.request_invoice, **ask, **who)
    assert error.details["invoice_id"] == invoice.id

    await refused(sm, "url_required", payments.set_invoice_status, invoice_id=invoice.id, status="issued")
    await refused(sm, "bad_status", payments.set_invoice_status, invoice_id=invoice.id, status="lost")
    await refused(sm, "not_found", payments.set_invoice_status, invoice_id=999, status="rejected")
    issued = await run(
        sm, payments.set_invoice_status, invoice_id=invoice.id, status="issued", url="https://e.invoice/1.pdf"
    )
    assert (issued.status, issued.url) == ("issued", "https://e.invoice/1.pdf")
    await refused(
        sm, "illegal_transition", payments.set_invoice_status, invoice_id=invoice.id, status="rejected"
    )
    async with sm() as s:
        assert [i.id for i in await payments.invoices_of(s, **who)] == [invoice.id]
        assert await payments.invoices_of(s, account=ACCOUNT, openid=BOB) == []


async def test_invoice_amount_is_what_was_paid_minus_refunds(lite: Maker) -> None:
    package_id = await add_package(lite, price_fen=8_000)
    order, _ = await paid_by_wechat(lite, package_id)
    await complete(lite, order.id)
    # A refund that failed leaves the order completed and is not subtracted; one that did not is.
    async with lite.begin() as s:
        s.add(
            Refund(
                out_refund_no="RF-x",
                order_id=order.id,
                amount_fen=500,
                destination="wechat",
                status="failed",
                actor="t",
            )
        )
        s.add(
            Refund(
                out_refund_no="RF-y",
                order_id=order.id,
                amount_fen=300,
                destination="balance",
                status="succeeded",
                actor="t",
            )
        )
    header = await run(
        lite, payments.save_invoice_title, account=ACCOUNT, openid=ALICE, title="张三", tax_no=""
    )
    invoice = await run(
        lite, payments.request_invoice, account=ACCOUNT, openid=ALICE, order_id=order.id, title_id=header.id
    )
    assert invoice.amount_fen == 7_700


async def test_a_declined_refund_request_puts_the_order_back_where_it_was(sm: Maker) -> None:
    package_id = await add_package(sm, price_fen=6_000)
    order, _ = await paid_by_wechat(sm, package_id)
    for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS):
        await run(sm, orders.transition, order_id=order.id, to=to, actor="staff:wang", notify=Recorder())
    ask = {"order_id": order.id, "openid": ALICE, "reason": "不想要了", "notify": Recorder()}
    await run(sm, orders.request_refund, **ask)
    notify = Recorder()
    decline = {"order_id": order.id, "actor": "staff:fin", "notify": notify}
    await refused(sm, "bad_reason", payments.decline_refund, reason=" ", **decline)
    back = await run(sm, payments.decline_refund, reason="笔记已按约定发布", **decline)
    assert back.status == OrderStatus.IN_PROGRESS and back.refund_reason is None
    assert notify.calls == [(order.id, "退款中", "执行中", "笔记已按约定发布")]
    await refused(sm, "not_refunding", payments.decline_refund, reason="再拒", **decline)

    # Asked again, and a WeChat refund is under way: its result decides, not a decline.
    await run(sm, orders.request_refund, **ask)
    wechat = {"destination": "wechat", "actor": "staff:fin", "notify": Recorder()}
    await run(sm, payments.refund, order_id=order.id, amount_fen=6_000, reason="同意", **wechat)
    await refused(sm, "refund_under_way", payments.decline_refund, reason="又不退了", **decline)
