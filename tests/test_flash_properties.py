"""The sale's stock under any interleaving: takes (some at once), payments, expiries, cancellations,
waitlist offers and late payments never sell more than the stock, nor more than the limit to anyone,
and every unit is always exactly one of available, held or paid — on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import event, func, select, text

from flows import flash as flow
from flows.notices import quiet
from settings import load_settings
from store import flash, orders, payments
from store.db import make_engine, make_sessionmaker
from store.errors import DomainError
from store.migrate import upgrade
from store.models import FlashQuota, FlashSale, FlashTake, Order, Package, Service, utcnow
from tests.conftest import HAVE_PG, HAVE_REDIS, PG_URL, REDIS_URL

T = TypeVar("T")
ACCOUNT = "gh_flash_props"
PEOPLE = [f"o_p{n}" for n in range(5)]
STOCK, LIMIT = 3, 2
_codes = itertools.count(1)


def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


class FlashMachine(RuleBasedStateMachine):
    """Random customers rushing one small sale while holds lapse, orders are paid or cancelled."""

    url = ""
    use_redis = False

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.engine = make_engine(self.url)
        if self.url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _no_fsync)
        self.sm = make_sessionmaker(self.engine)
        self.redis: Any = None
        self.gate: flash.FlashGate | None = None
        if self.use_redis:
            from redis.asyncio import Redis

            self.redis = Redis.from_url(REDIS_URL)
            self.gate = flash.FlashGate(self.redis, prefix=f"chatorder:flash:t{uuid.uuid4().hex[:6]}:")
        self.settings = load_settings(database_url=self.url, log_format="text")
        self.clock = utcnow()
        self.sale_id = self.run(self._sale())

    def run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        if self.redis is not None:
            self.run(self.redis.aclose())
        self.run(self.engine.dispose())
        self.loop.close()

    async def _sale(self) -> int:
        n = next(_codes)
        async with self.sm.begin() as s:
            service = Service(
                code=f"fs{n}", title="服务", platform="抖音", category="达人营销", status="listed"
            )
            s.add(service)
            await s.flush()
            package = Package(service_id=service.id, position=1, name="套餐", price_fen=10_000, stock=None)
            s.add(package)
            await s.flush()
            sale = FlashSale(
                code=f"prop{n}",
                title="",
                package_id=package.id,
                price_fen=1_000,
                tiers=[{"upto": 2, "price_fen": 500}],
                stock=STOCK,
                available=STOCK,
                taken=0,
                per_customer=LIMIT,
                starts_at=self.clock - dt.timedelta(minutes=1),
                ends_at=self.clock + dt.timedelta(days=1),
                hold_minutes=5,
            )
            s.add(sale)
            await s.flush()
            return sale.id

    async def _load(self) -> FlashSale:
        async with self.sm() as s:
            sale = await s.get(FlashSale, self.sale_id)
            assert sale is not None
            return sale

    async def _held(self, openid: str) -> FlashTake | None:
        async with self.sm() as s:
            return await s.scalar(
                select(FlashTake)
                .where(
                    FlashTake.sale_id == self.sale_id, FlashTake.openid == openid, FlashTake.status == "held"
                )
                .limit(1)
            )

    # --- Rules --------------------------------------------------------------------------------

    @rule(who=st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4))
    def rush(self, who: list[str]) -> None:
        """Several 抢 at once (the same person may tap twice)."""

        async def one(openid: str) -> None:
            try:
                await flow.grab(
                    self.sm, self.gate, await self._load(), account=ACCOUNT, openid=openid, now=self.clock
                )
            except DomainError as exc:
                assert exc.code in ("flash_sold_out", "flash_limit"), exc.code

        async def all_at_once() -> None:
            await asyncio.gather(*(one(p) for p in who))

        self.run(all_at_once())

    @rule(openid=st.sampled_from(PEOPLE))
    def pay_from_balance(self, openid: str) -> None:
        async def go() -> None:
            take = await self._held(openid)
            if take is None or take.order_id is None:
                return
            async with self.sm.begin() as s:
                await payments.credit(
                    s,
                    account=ACCOUNT,
                    openid=openid,
                    amount_fen=take.price_fen,
                    kind="topup",
                    key=f"t:{uuid.uuid4().hex}",
                )
            try:
                async with self.sm.begin() as s:
                    await payments.pay_with_balance(
                        s,
                        order_id=take.order_id,
                        account=ACCOUNT,
                        openid=openid,
                        notify=quiet,
                        now=self.clock,
                    )
                    await flash.mark_paid(s, take.order_id)
            except DomainError:
                pass  # lapsed meanwhile

        self.run(go())

    @rule(openid=st.sampled_from(PEOPLE))
    def cancel(self, openid: str) -> None:
        async def go() -> None:
            take = await self._held(openid)
            if take is None or take.order_id is None:
                return
            # A refusal (already paid, already lapsed) is a legal outcome of a random step.
            with contextlib.suppress(DomainError):
                async with self.sm.begin() as s:
                    await orders.cancel_order(
                        s, order_id=take.order_id, actor="customer", reason=None, notify=quiet
                    )

        self.run(go())

    @rule(openid=st.sampled_from(PEOPLE))
    def wait(self, openid: str) -> None:
        async def go() -> None:
            sale = await self._load()
            with contextlib.suppress(DomainError):  # not sold out, or already waiting: refused, legally
                async with self.sm.begin() as s:
                    await flash.join_waitlist(s, sale=sale, account=ACCOUNT, openid=openid)

        self.run(go())

    @rule(minutes=st.integers(min_value=0, max_value=7))
    def time_passes_and_the_sweep_runs(self, minutes: int) -> None:
        self.clock += dt.timedelta(minutes=minutes)
        self.run(flow.sweep(self.sm, self.settings, self.gate, self.clock))

    @rule(openid=st.sampled_from(PEOPLE))
    def late_payment(self, openid: str) -> None:
        """Money arrives for a hold that already lapsed: honoured only if a unit can still be taken."""

        async def go() -> None:
            async with self.sm() as s:
                lapsed = await s.scalar(
                    select(FlashTake).where(
                        FlashTake.sale_id == self.sale_id,
                        FlashTake.openid == openid,
                        FlashTake.status == "released",
                    )
                )
            if lapsed is None or lapsed.order_id is None:
                return
            async with self.sm.begin() as s:
                payment = await payments.create_payment(
                    s,
                    purpose="topup",
                    account=ACCOUNT,
                    openid=openid,
                    amount_fen=max(lapsed.price_fen, payments.MIN_TOPUP_FEN),
                )
                payment.order_id = lapsed.order_id
                payment.amount_fen = lapsed.price_fen
                await payments.credit(
                    s,
                    account=ACCOUNT,
                    openid=openid,
                    amount_fen=lapsed.price_fen,
                    kind="late_payment",
                    key=f"late:{payment.id}",
                )
                await s.flush()
                await flow.honour_late(s, payment, self.settings, self.clock)

        self.run(go())

    # --- What must always hold ----------------------------------------------------------------

    @invariant()
    def never_oversold_nor_over_the_limit(self) -> None:
        async def check() -> None:
            async with self.sm() as s:
                sale = await s.get(FlashSale, self.sale_id)
                assert sale is not None
                counts = dict(
                    (
                        await s.execute(
                            select(FlashTake.status, func.count())
                            .where(FlashTake.sale_id == self.sale_id)
                            .group_by(FlashTake.status)
                        )
                    ).all()
                )
                held, paid = counts.get("held", 0), counts.get("paid", 0)
                assert held + paid <= STOCK
                assert sale.available + held + paid == STOCK  # every unit is exactly somewhere
                per_person = (
                    await s.execute(
                        select(FlashTake.openid, func.count())
                        .where(FlashTake.sale_id == self.sale_id, FlashTake.status.in_(["held", "paid"]))
                        .group_by(FlashTake.openid)
                    )
                ).all()
                quotas = dict(
                    (
                        await s.execute(
                            select(FlashQuota.openid, FlashQuota.active).where(
                                FlashQuota.sale_id == self.sale_id
                            )
                        )
                    ).all()
                )
                assert sum(quotas.values()) == held + paid  # no quota without its unit
                for openid, n in per_person:
                    assert n <= LIMIT
                    assert quotas.get(openid) == n
                paid_orders = await s.scalar(
                    select(func.count())
                    .select_from(FlashTake)
                    .join(Order, Order.id == FlashTake.order_id)
                    .where(FlashTake.sale_id == self.sale_id, Order.status == "待审核")
                )
                assert paid_orders == paid
                assert await payments.check_balances(s) == []  # the ledger stays exact

        self.run(check())


def _run(url: str, use_redis: bool) -> None:
    machine = type("Machine", (FlashMachine,), {"url": url, "use_redis": use_redis})
    run_state_machine_as_test(
        machine, settings=settings(max_examples=25, stateful_step_count=20, deadline=None)
    )


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()  # an engine left open warns when its connection is collected later


def test_flash_stock_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'flash.db'}"
    asyncio.run(_migrate(url))
    _run(url, use_redis=False)


@pytest.mark.postgres
@pytest.mark.skipif(not (HAVE_PG and HAVE_REDIS), reason="needs PostgreSQL and Redis")
def test_flash_stock_on_postgres_with_redis() -> None:
    name = "chatorder_t_" + uuid.uuid4().hex[:10]

    async def admin(sql: str) -> None:
        engine = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        asyncio.run(_migrate(url))
        _run(url, use_redis=True)
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
