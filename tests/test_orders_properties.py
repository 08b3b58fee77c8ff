"""Properties of store.orders: the state machine keeps its event chain; concurrent buyers never oversell."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store import orders, payments
from store.db import make_engine, make_sessionmaker
from store.errors import DomainError
from store.migrate import upgrade
from store.models import Order, OrderEvent, OrderItem, OutboxMessage, Package, Service
from store.orders import PAID, TRANSITIONS, Line, OrderStatus
from store.outbox import Outgoing
from tests.conftest import needs_redis

T = TypeVar("T")
Maker = async_sessionmaker[AsyncSession]
ACCOUNT = "gh_props"
OWNER = "o_owner"
_keys = itertools.count(1)


def notify(order: Order, frm: str | None, to: str, reason: str | None) -> list[Outgoing]:
    return [Outgoing("mp", order.openid, "text", {"content": f"{frm} → {to}"})]


async def add_package(sm: Maker, stock: int | None) -> int:
    async with sm.begin() as s:
        n = next(_keys)
        service = Service(
            code=f"p{n}", title=f"服务{n}", platform="抖音", category="达人营销", status="listed"
        )
        s.add(service)
        await s.flush()
        package = Package(service_id=service.id, position=1, name="套餐", price_fen=100, stock=stock)
        s.add(package)
        await s.flush()
        return package.id


async def migrated(url: str) -> None:
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()


# --- (a) the state machine of one order ----------------------------------------------------------

STOCK, QUANTITY = 3, 2


def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


class Seen(NamedTuple):
    status: str
    updated_at: dt.datetime
    refund_reason: str | None
    reserved: bool
    stock: int | None
    events: list[tuple[str | None, str]]
    outbox: int


class OrderMachine(RuleBasedStateMachine):
    """Random customer and staff actions on one order, checked against the TRANSITIONS table."""

    def __init__(self, url: str) -> None:
        super().__init__()
        # Hypothesis drives rules synchronously: one private loop per example, closed in teardown.
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(url)
        # Hundreds of tiny commits: skip the fsync that db.py rightly insists on in production.
        event.listen(self.engine.sync_engine, "connect", _no_fsync)
        self.sm = make_sessionmaker(self.engine)
        self.package_id = self.run(add_package(self.sm, STOCK))
        self.order_id = self.run(self._place()).id
        self.status = OrderStatus.PENDING_PAYMENT
        self.before_refund = OrderStatus.PENDING_REVIEW  # where 退款中 was entered from, last time
        self.seen = self.run(self._read())

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()

    async def _place(self) -> Order:
        async with self.sm.begin() as s:
            return await orders.create_order(
                s,
                account=ACCOUNT,
                openid=OWNER,
                lines=[Line(self.package_id, QUANTITY)],
                requirements={},
                source_key=f"machine-{next(_keys)}",
                notify=notify,
            )

    async def _read(self) -> Seen:
        """Everything an action may change, in one read."""
        async with self.sm() as s:
            row = (
                await s.execute(
                    select(
                        Order.status, Order.updated_at, Order.refund_reason, OrderItem.reserved, Package.stock
                    )
                    .join(OrderItem, OrderItem.order_id == Order.id)
                    .join(Package, Package.id == OrderItem.package_id)
                    .where(Order.id == self.order_id)
                )
            ).one()
            events = await s.execute(
                select(OrderEvent.from_status, OrderEvent.to_status)
                .where(OrderEvent.order_id == self.order_id)
                .order_by(OrderEvent.id)
            )
            outbox = await s.scalar(select(func.count()).select_from(OutboxMessage))
            return Seen(*row, [(e.from_status, e.to_status) for e in events], outbox or 0)

    def attempt(self, action: Callable[[AsyncSession], Awaitable[Order]], to: OrderStatus, ok: bool) -> None:
        """Run an action; if the model says it must succeed it does (one event), else nothing changes."""
        before = self.seen

        async def go() -> Order:
            async with self.sm.begin() as s:
                return await action(s)

        try:
            order = self.run(go())
        except DomainError:
            assert not ok, f"{self.status} → {to} refused"
            self.seen = self.run(self._read())
            assert self.seen == before
            return
        assert ok, f"{self.status} → {to} allowed"
        assert order.status == to
        if to == OrderStatus.REFUNDING:
            self.before_refund = self.status
        self.status = to
        self.seen = self.run(self._read())
        assert self.seen.events[:-1] == before.events  # exactly one new event, appended
        assert self.seen.events[-1] == (before.status, to)

    @rule(to=st.sampled_from(OrderStatus))
    def staff_moves(self, to: OrderStatus) -> None:
        self.attempt(
            lambda s: orders.transition(s, order_id=self.order_id, to=to, actor="staff:t", notify=notify),
            to,
            to in TRANSITIONS[self.status],
        )

    @rule()
    def pay(self) -> None:
        to = OrderStatus.PENDING_REVIEW
        ok = self.status == OrderStatus.PENDING_PAYMENT
        self.attempt(lambda s: orders.mark_paid(s, order_id=self.order_id, notify=notify), to, ok)

    @rule()
    def cancel(self) -> None:
        to, ok = OrderStatus.CANCELLED, self.status == OrderStatus.PENDING_PAYMENT
        self.attempt(
            lambda s: orders.cancel_order(
                s, order_id=self.order_id, actor="system", reason="超时", notify=notify
            ),
            to,
            ok,
        )

    @rule(owner=st.booleans(), reason=st.text(max_size=205))
    def refund(self, owner: bool, reason: str) -> None:
        ok = owner and self.status in PAID and 1 <= len(reason.strip()) <= orders.MAX_REASON_CHARS
        openid = OWNER if owner else "o_stranger"
        self.attempt(
            lambda s: orders.request_refund(
                s, order_id=self.order_id, openid=openid, reason=reason, notify=notify
            ),
            OrderStatus.REFUNDING,
            ok,
        )

    @rule(reason=st.sampled_from(["", "已按约定发布", "x" * 201]))
    def staff_declines_the_refund(self, reason: str) -> None:
        """退款中 goes back to exactly the paid state it came from, and nowhere else."""
        ok = self.status == OrderStatus.REFUNDING and bool(reason) and len(reason) <= orders.MAX_REASON_CHARS
        to = self.before_refund if ok else self.status
        self.attempt(
            lambda s: payments.decline_refund(
                s, order_id=self.order_id, actor="staff:t", reason=reason, notify=notify
            ),
            to,
            ok,
        )

    @invariant()
    def the_event_chain_is_continuous(self) -> None:
        seen = self.seen
        assert seen.status in set(OrderStatus) and seen.status == self.status
        assert seen.events[0] == (None, OrderStatus.PENDING_PAYMENT)
        for (_, previous_to), (frm, _) in itertools.pairwise(seen.events):
            assert frm == previous_to
        assert seen.events[-1][1] == seen.status

    @invariant()
    def stock_is_either_held_or_back(self) -> None:
        held = self.seen.reserved
        assert held == (self.status != OrderStatus.CANCELLED)
        assert self.seen.stock == STOCK - (QUANTITY if held else 0)


def test_order_state_machine(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'machine.db'}"
    asyncio.run(migrated(url))
    run_state_machine_as_test(
        lambda: OrderMachine(url),
        settings=settings(max_examples=40, stateful_step_count=15, deadline=None),
    )


# --- (b) concurrent buyers against limited stock -------------------------------------------------


@pytest.fixture
async def race_db(db_url: str) -> AsyncIterator[Maker]:
    """One migrated database per test function (on each backend), shared by all examples."""
    engine = make_engine(db_url)
    await upgrade(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def buy(sm: Maker, package_id: int, quantity: int) -> int | str:
    """One buyer in their own session and transaction: the quantity reserved, or the refusal's code."""
    try:
        async with sm.begin() as s:
            await orders.create_order(
                s,
                account=ACCOUNT,
                openid=f"o_buyer_{next(_keys)}",
                lines=[Line(package_id, quantity)],
                requirements={},
                source_key=f"race-{next(_keys)}",
                notify=notify,
            )
    except DomainError as exc:
        return exc.code
    return quantity


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.integers(0, 5), quantities=st.lists(st.integers(1, 2), min_size=1, max_size=20))
async def test_concurrent_buyers_never_oversell(race_db: Maker, stock: int, quantities: list[int]) -> None:
    package_id = await add_package(race_db, stock)
    results = await asyncio.gather(*(buy(race_db, package_id, q) for q in quantities))
    async with race_db() as s:
        final = await s.scalar(select(Package.stock).where(Package.id == package_id))
        held = await s.scalar(
            select(func.coalesce(func.sum(OrderItem.quantity), 0)).where(
                OrderItem.package_id == package_id, OrderItem.reserved.is_(True)
            )
        )
    sold = sum(r for r in results if isinstance(r, int))
    assert held == sold <= stock
    assert final == stock - sold >= 0
    refused = [q for q, r in zip(quantities, results, strict=True) if not isinstance(r, int)]
    assert all(r == "sold_out" for r in results if not isinstance(r, int))
    # Stock only falls here, so a refused buyer really could not have been served.
    assert all(final < q for q in refused)


# --- (c) the Redis gate --------------------------------------------------------------------------


@needs_redis
async def test_gate_lets_exactly_the_stock_through(redis_client: Any) -> None:
    gate = orders.StockGate(redis_client)
    loads = 0

    async def loader() -> int:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)  # let other reservations race the first load
        return 10

    results = await asyncio.gather(*(gate.reserve(7, 1, loader) for _ in range(100)))
    assert results.count(True) == 10
    assert int(await redis_client.get("chatorder:stock:7")) == 0
    await asyncio.gather(*(gate.release(7, 1) for _ in range(3)))
    assert sum(await asyncio.gather(*(gate.reserve(7, 1, loader) for _ in range(10)))) == 3
    assert loads >= 1


@needs_redis
async def test_gated_orders_never_oversell(redis_client: Any, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}")
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    try:
        package_id = await add_package(sm, 10)
        gate = orders.StockGate(redis_client)

        async def gated_buy(i: int) -> bool:
            try:
                async with sm.begin() as s:
                    await orders.create_order(
                        s,
                        account=ACCOUNT,
                        openid=f"o_{i}",
                        lines=[Line(package_id, 1)],
                        requirements={},
                        source_key=f"gated-{i}",
                        notify=notify,
                        gate=gate,
                    )
            except DomainError as exc:
                assert exc.code == "sold_out"
                return False
            return True

        results = await asyncio.gather(*(gated_buy(i) for i in range(40)))
        async with sm() as s:
            assert await s.scalar(select(Package.stock).where(Package.id == package_id)) == 0
        assert results.count(True) == 10
        assert int(await redis_client.get(f"chatorder:stock:{package_id}")) == 0
    finally:
        await engine.dispose()
