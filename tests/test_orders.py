"""store.orders on SQLite and PostgreSQL: numbers, creation, transitions, stock, refunds, cart, materials."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from store import orders
from store.errors import DomainError
from store.models import (
    CartItem,
    Material,
    Order,
    OrderEvent,
    OrderItem,
    OrderSequence,
    OutboxMessage,
    Package,
    Service,
)
from store.orders import Line, OrderStatus
from tests.conftest import needs_redis
from tests.factories import Maker, Recorder, add_package

ACCOUNT = "gh_test"
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 60
GIF = b"GIF89a" + b"\0" * 60
WEBP = b"RIFF\x40\0\0\0WEBPVP8 " + b"\0" * 60


async def stock_of(sm: Maker, package_id: int) -> int | None:
    async with sm() as s:
        return await s.scalar(select(Package.stock).where(Package.id == package_id))


async def snapshot(sm: Maker) -> dict[str, Any]:
    """Everything an order action may touch, to prove that a refusal changed nothing."""
    async with sm() as s:
        counts = {
            m.__tablename__: await s.scalar(select(func.count()).select_from(m))
            for m in (Order, OrderItem, OrderEvent, OutboxMessage, CartItem, Material)
        }
        counts["stock"] = list(await s.execute(select(Package.id, Package.stock).order_by(Package.id)))
        counts["seq"] = list(await s.execute(select(OrderSequence.day, OrderSequence.last)))
        counts["status"] = list(await s.execute(select(Order.id, Order.status).order_by(Order.id)))
        counts["reserved"] = list(
            await s.execute(select(OrderItem.id, OrderItem.reserved).order_by(OrderItem.id))
        )
        counts["attached"] = list(
            await s.execute(select(Material.id, Material.order_id).order_by(Material.id))
        )
    return counts


async def place(sm: Maker, lines: list[Line], *, key: str, openid: str = "o_alice", **kw: Any) -> Order:
    kw.setdefault("notify", Recorder())
    async with sm.begin() as s:
        return await orders.create_order(
            s,
            account=ACCOUNT,
            openid=openid,
            lines=lines,
            requirements={"brief": "新品"},
            source_key=key,
            **kw,
        )


async def refused(sm: Maker, code: str, action: Any, **kwargs: Any) -> DomainError:
    """Run an action in its own transaction, expect DomainError(code) and prove nothing changed."""
    before = await snapshot(sm)
    with pytest.raises(DomainError) as info:
        async with sm.begin() as s:
            await action(s, **kwargs)
    assert info.value.code == code, info.value.details
    assert await snapshot(sm) == before
    return info.value


# --- Numbers -------------------------------------------------------------------------------------


async def test_numbers_are_sequential_per_beijing_day(sm: Maker) -> None:
    late = dt.datetime(2026, 11, 21, 15, 59, tzinfo=dt.UTC)  # 23:59 in Beijing
    midnight = dt.datetime(2026, 11, 21, 16, 0, tzinfo=dt.UTC)  # 00:00 on the 22nd in Beijing
    async with sm.begin() as s:
        got = [await orders.next_number(s, t) for t in (late, midnight, midnight, late, midnight)]
    assert got == ["20261121-0001", "20261122-0001", "20261122-0002", "20261121-0002", "20261122-0003"]


async def test_fifty_concurrent_orders_get_unique_gapless_numbers_and_never_oversell(sm: Maker) -> None:
    package_id = await add_package(sm, stock=30)
    now = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC)

    async def buy(i: int) -> str:
        try:
            return (await place(sm, [Line(package_id, 1)], key=f"k{i}", openid=f"o_{i}", now=now)).number
        except DomainError as exc:
            return exc.code

    results = await asyncio.gather(*(buy(i) for i in range(50)))
    numbers = sorted(r for r in results if r != "sold_out")
    # sold_out is decided before a number is drawn, so the 30 winners hold 0001..0030 with no gap.
    assert numbers == [f"20261122-{n:04d}" for n in range(1, 31)]
    assert results.count("sold_out") == 20
    assert await stock_of(sm, package_id) == 0


# --- Creating ------------------------------------------------------------------------------------


async def test_create_order_snapshots_reserves_and_notifies(sm: Maker) -> None:
    limited = await add_package(sm, stock=5, price_fen=12_345)
    unlimited = await add_package(sm, price_fen=100)
    async with sm.begin() as s:
        mine = await orders.save_material(
            s, account=ACCOUNT, openid="o_alice", media_id="m1", content_type="image/png", data=PNG
        )
        theirs = await orders.save_material(
            s, account=ACCOUNT, openid="o_bob", media_id="m2", content_type="image/png", data=PNG
        )
    notify = Recorder()
    order = await place(
        sm, [Line(limited, 2), Line(unlimited, 3)], key="k1", notify=notify, material_ids=[mine, theirs]
    )
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert order.total_fen == 2 * 12_345 + 3 * 100
    assert order.expires_at is not None and order.expires_at - order.created_at == dt.timedelta(minutes=30)
    assert notify.calls == [(order.id, None, "待支付", None)]
    assert await stock_of(sm, limited) == 3 and await stock_of(sm, unlimited) is None
    async with sm() as s:
        view = await orders.get_order(s, order.id)
        outbox = list(await s.scalars(select(OutboxMessage)))
    assert view is not None
    assert [(i.package_id, i.quantity, i.unit_price_fen, i.reserved) for i in view.items] == [
        (limited, 2, 12_345, True),
        (unlimited, 3, 100, False),
    ]
    assert view.items[0].service_title == "小红书美妆达人" and view.items[0].package_name == "1 篇图文"
    assert [(e.actor, e.from_status, e.to_status) for e in view.events] == [
        ("customer:o_alice", None, "待支付")
    ]
    assert view.materials == [(mine, "image/png", len(PNG))]  # bob's image is not attachable
    assert [(m.recipient, m.payload["content"]) for m in outbox] == [
        ("o_alice", f"{order.number}: None → 待支付")
    ]


async def test_same_source_key_returns_the_first_order_and_changes_nothing(sm: Maker) -> None:
    package_id = await add_package(sm, stock=5)
    first = await place(sm, [Line(package_id, 1)], key="confirm-1")
    before = await snapshot(sm)
    notify = Recorder()
    again = await place(sm, [Line(package_id, 3)], key="confirm-1", notify=notify)
    assert again.id == first.id and again.number == first.number
    assert notify.calls == []
    assert await snapshot(sm) == before


async def test_concurrent_retries_of_one_confirmation_make_one_order(sm: Maker) -> None:
    package_id = await add_package(sm, stock=5)
    results = await asyncio.gather(*(place(sm, [Line(package_id, 2)], key="retry") for _ in range(8)))
    assert len({o.id for o in results}) == 1
    assert await stock_of(sm, package_id) == 3  # losers gave their reservation back
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == 1
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
        assert await s.scalar(select(OrderSequence.last)) == 1  # and their number


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("empty", "cart_empty"),
        ("zero", "bad_quantity"),
        ("too_many", "bad_quantity"),
        ("merged_too_many", "bad_quantity"),
        ("unknown", "not_found"),
        ("unlisted", "not_found"),
    ],
)
async def test_create_order_refusals_change_nothing(lite: Maker, case: str, code: str) -> None:
    ok = await add_package(lite, stock=5)
    hidden = await add_package(lite, stock=5, status="unlisted")
    lines = {
        "empty": [],
        "zero": [Line(ok, 0)],
        "too_many": [Line(ok, 100)],
        "merged_too_many": [Line(ok, 50), Line(ok, 50)],
        "unknown": [Line(ok, 1), Line(9999, 1)],
        "unlisted": [Line(ok, 1), Line(hidden, 1)],
    }[case]
    await refused(
        lite,
        code,
        orders.create_order,
        account=ACCOUNT,
        openid="o_alice",
        lines=lines,
        requirements={},
        source_key="k",
        notify=Recorder(),
    )


@pytest.mark.parametrize("caller_commits", [False, True])
async def test_sold_out_line_undoes_the_other_lines_reservations(sm: Maker, caller_commits: bool) -> None:
    plenty = await add_package(sm, stock=5)
    scarce = await add_package(sm, stock=1)
    before = await snapshot(sm)
    notify = Recorder()
    async with sm.begin() as s:
        with pytest.raises(DomainError) as info:
            await orders.create_order(
                s,
                account=ACCOUNT,
                openid="o_alice",
                lines=[Line(plenty, 2), Line(scarce, 2)],
                requirements={},
                source_key="k",
                notify=notify,
            )
        if not caller_commits:
            await s.rollback()
        # else: the caller swallowed the refusal and its transaction commits what is left
    assert info.value.code == "sold_out"
    assert info.value.details["package_ids"] == [scarce]
    assert info.value.details["name"] == "小红书美妆达人 1 篇图文"
    assert notify.calls == []
    assert await snapshot(sm) == before


async def test_rollback_of_the_callers_transaction_leaves_no_outbox_row(sm: Maker) -> None:
    package_id = await add_package(sm, stock=3)
    before = await snapshot(sm)
    notify = Recorder()
    with pytest.raises(RuntimeError):
        async with sm.begin() as s:
            await orders.create_order(
                s,
                account=ACCOUNT,
                openid="o_alice",
                lines=[Line(package_id, 1)],
                requirements={},
                source_key="k",
                notify=notify,
            )
            raise RuntimeError("the caller fails after create_order")
    assert len(notify.calls) == 1  # the message was produced, and went down with the transaction
    assert await snapshot(sm) == before


# --- Transitions ---------------------------------------------------------------------------------


async def test_staff_walk_an_order_to_completion_with_one_event_each(sm: Maker) -> None:
    package_id = await add_package(sm)
    order = await place(sm, [Line(package_id, 1)], key="k")
    notify = Recorder()
    async with sm.begin() as s:
        await orders.mark_paid(s, order_id=order.id, notify=notify)
    for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
        async with sm.begin() as s:
            changed = await orders.transition(s, order_id=order.id, to=to, actor="staff:wang", notify=notify)
        assert changed.status == to and changed.updated_at >= order.updated_at
    assert notify.calls == [
        (order.id, "待支付", "待审核", None),
        (order.id, "待审核", "已分配", None),
        (order.id, "已分配", "执行中", None),
        (order.id, "执行中", "已完成", None),
    ]
    async with sm() as s:
        view = await orders.get_order(s, order.id)
        assert await s.scalar(select(func.count()).select_from(OutboxMessage)) == 5
    assert view is not None
    assert [(e.from_status, e.to_status, e.actor) for e in view.events][1:] == [
        ("待支付", "待审核", "system"),
        ("待审核", "已分配", "staff:wang"),
        ("已分配", "执行中", "staff:wang"),
        ("执行中", "已完成", "staff:wang"),
    ]


async def test_illegal_transition_is_refused_and_changes_nothing(sm: Maker) -> None:
    package_id = await add_package(sm)
    order = await place(sm, [Line(package_id, 1)], key="k")
    error = await refused(
        sm,
        "illegal_transition",
        orders.transition,
        order_id=order.id,
        to=OrderStatus.COMPLETED,
        actor="staff:wang",
        notify=Recorder(),
    )
    assert error.details == {"frm": "待支付", "to": "已完成"}
    await refused(sm, "not_found", orders.mark_paid, order_id=424242, notify=Recorder())


async def test_a_double_clicked_button_changes_the_order_once(sm: Maker) -> None:
    package_id = await add_package(sm)
    order = await place(sm, [Line(package_id, 1)], key="k")

    async def click() -> str:
        try:
            async with sm.begin() as s:
                await orders.mark_paid(s, order_id=order.id, actor="staff:wang", notify=Recorder())
        except DomainError as exc:
            return exc.code
        return "ok"

    results = await asyncio.gather(*(click() for _ in range(6)))
    assert results.count("ok") == 1
    assert set(results) <= {"ok", "conflict", "illegal_transition"}
    async with sm() as s:
        events = list(await s.scalars(select(OrderEvent.to_status).order_by(OrderEvent.id)))
    assert events == ["待支付", "待审核"]


# --- Cancelling and refunds ----------------------------------------------------------------------


async def test_cancel_releases_the_reserved_stock_exactly_once(sm: Maker) -> None:
    limited = await add_package(sm, stock=4)
    unlimited = await add_package(sm)
    order = await place(sm, [Line(limited, 3), Line(unlimited, 2)], key="k")
    assert await stock_of(sm, limited) == 1
    notify = Recorder()
    async with sm.begin() as s:
        cancelled = await orders.cancel_order(
            s, order_id=order.id, actor="customer:o_alice", reason="不想要了", notify=notify
        )
    assert cancelled.status == OrderStatus.CANCELLED
    assert notify.calls == [(order.id, "待支付", "已取消", "不想要了")]
    assert await stock_of(sm, limited) == 4 and await stock_of(sm, unlimited) is None
    await refused(
        sm,
        "not_cancellable",
        orders.cancel_order,
        order_id=order.id,
        actor="system",
        reason=None,
        notify=notify,
    )
    assert await stock_of(sm, limited) == 4


async def test_concurrent_cancels_release_once(sm: Maker) -> None:
    package_id = await add_package(sm, stock=2)
    order = await place(sm, [Line(package_id, 2)], key="k")

    async def cancel() -> str:
        try:
            async with sm.begin() as s:
                await orders.cancel_order(
                    s, order_id=order.id, actor="system", reason="超时", notify=Recorder()
                )
        except DomainError as exc:
            return exc.code
        return "ok"

    results = await asyncio.gather(*(cancel() for _ in range(5)))
    assert results.count("ok") == 1
    assert await stock_of(sm, package_id) == 2


async def test_cancel_through_transition_also_releases_stock(lite: Maker) -> None:
    package_id = await add_package(lite, stock=1)
    order = await place(lite, [Line(package_id, 1)], key="k")
    async with lite.begin() as s:
        await orders.transition(
            s, order_id=order.id, to=OrderStatus.CANCELLED, actor="system", notify=Recorder()
        )
    assert await stock_of(lite, package_id) == 1


async def test_paid_order_cannot_be_cancelled(lite: Maker) -> None:
    package_id = await add_package(lite, stock=1)
    order = await place(lite, [Line(package_id, 1)], key="k")
    async with lite.begin() as s:
        await orders.mark_paid(s, order_id=order.id, notify=Recorder())
    await refused(
        lite,
        "not_cancellable",
        orders.cancel_order,
        order_id=order.id,
        actor="system",
        reason=None,
        notify=Recorder(),
    )


async def test_refund_only_by_the_owner_from_a_paid_state(sm: Maker) -> None:
    package_id = await add_package(sm, stock=2)
    order = await place(sm, [Line(package_id, 1)], key="k")
    args: dict[str, Any] = {"order_id": order.id, "notify": Recorder()}
    await refused(sm, "not_refundable", orders.request_refund, openid="o_alice", reason="不需要了", **args)
    async with sm.begin() as s:
        await orders.mark_paid(s, order_id=order.id, notify=Recorder())
    await refused(sm, "not_yours", orders.request_refund, openid="o_mallory", reason="给我退", **args)
    await refused(sm, "bad_reason", orders.request_refund, openid="o_alice", reason="   ", **args)
    await refused(sm, "bad_reason", orders.request_refund, openid="o_alice", reason="长" * 201, **args)
    notify = Recorder()
    async with sm.begin() as s:
        refunding = await orders.request_refund(
            s, order_id=order.id, openid="o_alice", reason=" 档期冲突 ", notify=notify
        )
    assert refunding.status == OrderStatus.REFUNDING and refunding.refund_reason == "档期冲突"
    assert notify.calls == [(order.id, "待审核", "退款中", "档期冲突")]
    await refused(sm, "not_refundable", orders.request_refund, openid="o_alice", reason="再退一次", **args)
    async with sm.begin() as s:
        done = await orders.transition(
            s, order_id=order.id, to=OrderStatus.REFUNDED, actor="staff:wang", notify=Recorder()
        )
    assert done.status == OrderStatus.REFUNDED
    assert await stock_of(sm, package_id) == 1  # a paid order's stock was used, not released


# --- Queries -------------------------------------------------------------------------------------


async def test_list_find_and_get_orders(sm: Maker) -> None:
    package_id = await add_package(sm)
    t0 = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.UTC)
    placed = [
        await place(sm, [Line(package_id, 1)], key=f"k{i}", now=t0 + dt.timedelta(minutes=i))
        for i in range(7)
    ]
    await place(sm, [Line(package_id, 1)], key="bob", openid="o_bob")
    async with sm.begin() as s:
        await orders.mark_paid(s, order_id=placed[2].id, notify=Recorder())
    async with sm() as s:
        first, total = await orders.order_page(s, account=ACCOUNT, openid="o_alice")
        second, _ = await orders.order_page(s, account=ACCOUNT, openid="o_alice", page=2)
        paid, paid_total = await orders.order_page(
            s, account=ACCOUNT, openid="o_alice", status=OrderStatus.PENDING_REVIEW
        )
        mine = await orders.find_order(s, account=ACCOUNT, openid="o_alice", number=placed[0].number)
        not_mine = await orders.find_order(s, account=ACCOUNT, openid="o_bob", number=placed[0].number)
        missing = await orders.get_order(s, 424242)
    assert total == 7
    assert [o.id for o in first + second] == [o.id for o in reversed(placed)]
    assert len(first) == 5 and len(second) == 2
    assert (paid_total, [o.id for o in paid]) == (1, [placed[2].id])
    assert mine is not None and mine.order.id == placed[0].id and len(mine.items) == 1
    assert not_mine is None and missing is None


# --- Cart ----------------------------------------------------------------------------------------


async def test_cart_add_merges_numbers_lines_and_caps_quantity(sm: Maker) -> None:
    a = await add_package(sm, stock=3, price_fen=1_000)
    b = await add_package(sm, price_fen=250)
    who = {"account": ACCOUNT, "openid": "o_alice"}
    async with sm.begin() as s:
        await orders.cart_add(s, **who, package_id=a)
        await orders.cart_add(s, **who, package_id=b, quantity=4)
        lines = await orders.cart_add(s, **who, package_id=a, quantity=2)
    assert [(x.line_no, x.package_id, x.quantity, x.subtotal_fen, x.stock, x.listed) for x in lines] == [
        (1, a, 3, 3_000, 3, True),
        (2, b, 4, 1_000, None, True),
    ]
    await refused(sm, "bad_quantity", orders.cart_add, **who, package_id=a, quantity=97)
    await refused(sm, "bad_quantity", orders.cart_add, **who, package_id=a, quantity=0)
    await refused(sm, "not_found", orders.cart_add, **who, package_id=9999)


async def test_cart_refuses_unlisted_but_shows_it_once_there(lite: Maker) -> None:
    a = await add_package(lite, code="gone")
    hidden = await add_package(lite, status="unlisted")
    who = {"account": ACCOUNT, "openid": "o_alice"}
    await refused(lite, "not_found", orders.cart_add, **who, package_id=hidden)
    async with lite.begin() as s:
        await orders.cart_add(s, **who, package_id=a)
        service = await s.scalar(select(Service).where(Service.code == "gone"))
        assert service is not None
        service.status = "unlisted"
    async with lite() as s:
        lines = await orders.cart_lines(s, **who)
    assert [x.listed for x in lines] == [False]


async def test_cart_set_quantity_remove_and_clear(sm: Maker) -> None:
    ids = [await add_package(sm) for _ in range(3)]
    who = {"account": ACCOUNT, "openid": "o_alice"}
    async with sm.begin() as s:
        for package_id in ids:
            await orders.cart_add(s, **who, package_id=package_id)
        await orders.cart_add(s, account=ACCOUNT, openid="o_bob", package_id=ids[0])
        lines = await orders.cart_set_quantity(s, **who, line_no=2, quantity=7)
        assert [x.quantity for x in lines] == [1, 7, 1]
        lines = await orders.cart_set_quantity(s, **who, line_no=1, quantity=0)
        assert [(x.line_no, x.package_id) for x in lines] == [(1, ids[1]), (2, ids[2])]
    await refused(sm, "cart_line", orders.cart_remove, **who, line_no=3)
    await refused(sm, "bad_quantity", orders.cart_set_quantity, **who, line_no=1, quantity=100)
    async with sm.begin() as s:
        lines = await orders.cart_remove(s, **who, line_no=2)
        assert [x.package_id for x in lines] == [ids[1]]
        await orders.cart_add(s, **who, package_id=ids[2])
        await orders.cart_clear(s, **who, package_ids=[ids[1]])
        assert [x.package_id for x in await orders.cart_lines(s, **who)] == [ids[2]]
        await orders.cart_clear(s, **who)
        assert await orders.cart_lines(s, **who) == []
        assert len(await orders.cart_lines(s, account=ACCOUNT, openid="o_bob")) == 1


# --- Materials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "kind"), [(JPEG, "jpeg"), (PNG, "png"), (GIF, "gif"), (WEBP, "webp")])
async def test_material_type_comes_from_the_bytes(lite: Maker, data: bytes, kind: str) -> None:
    async with lite.begin() as s:
        material_id = await orders.save_material(
            s, account=ACCOUNT, openid="o_alice", media_id="m", content_type="image/jpeg", data=data
        )
        material = await s.get(Material, material_id)
    assert material is not None and material.content_type == f"image/{kind}" and material.size == len(data)


async def test_the_same_media_twice_is_saved_once(lite: Maker) -> None:
    async with lite.begin() as s:
        first = await orders.save_material(
            s, account=ACCOUNT, openid="o_alice", media_id="m1", content_type="image/png", data=PNG
        )
    async with lite.begin() as s:
        again = await orders.save_material(
            s, account=ACCOUNT, openid="o_alice", media_id="m1", content_type="image/png", data=PNG
        )
        other = await orders.save_material(
            s, account=ACCOUNT, openid="o_bob", media_id="m1", content_type="image/png", data=PNG
        )
    assert again == first != other


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<?php system($_GET['c']); ?>", "bad_image"),  # claims to be a JPEG
        (b"", "bad_image"),
        (b"RIFF\0\0\0\0WAVEfmt ", "bad_image"),
        (JPEG + b"\0" * orders.MAX_MATERIAL_BYTES, "image_too_large"),
    ],
)
async def test_material_refusals(lite: Maker, data: bytes, code: str) -> None:
    await refused(
        lite,
        code,
        orders.save_material,
        account=ACCOUNT,
        openid="o_alice",
        media_id="m",
        content_type="image/jpeg",
        data=data,
    )


# --- Redis gate ----------------------------------------------------------------------------------


@needs_redis
async def test_gate_refusal_never_touches_the_database(lite: Maker, redis_client: Any) -> None:
    package_id = await add_package(lite, stock=5)
    gate = orders.StockGate(redis_client)
    await redis_client.set(f"chatorder:stock:{package_id}", 0)  # the gate believes it is sold out
    await refused(
        lite,
        "sold_out",
        orders.create_order,
        account=ACCOUNT,
        openid="o_alice",
        lines=[Line(package_id, 1)],
        requirements={},
        source_key="k",
        notify=Recorder(),
        gate=gate,
    )


@needs_redis
async def test_gate_reservation_is_released_when_the_database_refuses(lite: Maker, redis_client: Any) -> None:
    scarce = await add_package(lite, stock=1)
    gate = orders.StockGate(redis_client)
    key = f"chatorder:stock:{scarce}"
    await redis_client.set(key, 5)  # stale: the database is the source of truth
    with pytest.raises(DomainError, match="sold_out"):
        await place(lite, [Line(scarce, 2)], key="k", gate=gate)
    assert int(await redis_client.get(key)) == 5
    order = await place(lite, [Line(scarce, 1)], key="k2", gate=gate)
    assert int(await redis_client.get(key)) == 4
    async with lite.begin() as s:
        await orders.cancel_order(
            s, order_id=order.id, actor="system", reason=None, notify=Recorder(), gate=gate
        )
    assert int(await redis_client.get(key)) == 5 and await stock_of(lite, scarce) == 1


@needs_redis
async def test_gate_loads_from_the_database_and_forgets(lite: Maker, redis_client: Any) -> None:
    package_id = await add_package(lite, stock=2)
    gate = orders.StockGate(redis_client)
    await place(lite, [Line(package_id, 2)], key="k1", gate=gate)
    assert int(await redis_client.get(f"chatorder:stock:{package_id}")) == 0
    with pytest.raises(DomainError, match="sold_out"):
        await place(lite, [Line(package_id, 1)], key="k2", gate=gate)
    async with lite.begin() as s:  # a catalog import restocks, then forgets the counter
        package = await s.get(Package, package_id)
        assert package is not None
        package.stock = 3
    await gate.forget(package_id)
    await place(lite, [Line(package_id, 1)], key="k3", gate=gate)
    assert int(await redis_client.get(f"chatorder:stock:{package_id}")) == 2
