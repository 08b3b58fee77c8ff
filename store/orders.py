"""Orders: the state machine, order numbers, stock reservations, the cart and customers' materials.

Every action takes the caller's session and changes nothing on refusal (DomainError). Messages to
people come from a caller-supplied `notify` and go to the outbox in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import ColumnElement, Select, Table, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from store import coupons
from store.db import as_loaded, new_row_insert, per_dialect, upsert_insert
from store.errors import DomainError
from store.models import (
    CartItem,
    Coupon,
    FlashSale,
    Material,
    Order,
    OrderEvent,
    OrderItem,
    OrderSequence,
    Package,
    Service,
    utcnow,
)
from store.outbox import Outgoing, enqueue

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


class OrderStatus(StrEnum):
    """An order's state; the value is what is stored and shown."""

    PENDING_PAYMENT = "待支付"
    PENDING_REVIEW = "待审核"
    ASSIGNED = "已分配"
    IN_PROGRESS = "执行中"
    COMPLETED = "已完成"
    CANCELLED = "已取消"
    REFUNDING = "退款中"
    REFUNDED = "已退款"


_S = OrderStatus  # short name for the literal table below
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_PAYMENT: frozenset({_S.PENDING_REVIEW, _S.CANCELLED}),
    _S.PENDING_REVIEW: frozenset({_S.ASSIGNED, _S.REFUNDING}),
    _S.ASSIGNED: frozenset({_S.IN_PROGRESS, _S.REFUNDING}),
    _S.IN_PROGRESS: frozenset({_S.COMPLETED, _S.REFUNDING}),
    _S.COMPLETED: frozenset({_S.REFUNDING}),
    _S.REFUNDING: frozenset({_S.REFUNDED}),
    _S.CANCELLED: frozenset(),  # terminal
    _S.REFUNDED: frozenset(),  # terminal
}
PAID: frozenset[OrderStatus] = frozenset({_S.PENDING_REVIEW, _S.ASSIGNED, _S.IN_PROGRESS, _S.COMPLETED})
# Customers talk to staff about paid orders, including one being refunded (flows.relay).
OPEN_STATUSES: frozenset[str] = frozenset({*PAID, _S.REFUNDING})
# The steps of the progress bar shown to customers, in order.
PROGRESS: tuple[OrderStatus, ...] = (
    _S.PENDING_PAYMENT,
    _S.PENDING_REVIEW,
    _S.ASSIGNED,
    _S.IN_PROGRESS,
    _S.COMPLETED,
)

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
ORDER_TTL = dt.timedelta(minutes=30)
MAX_QUANTITY = 99
MAX_REASON_CHARS = 200
MAX_MATERIAL_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# (order, from, to, reason) -> messages, written to the outbox in the transaction of the change.
Notify = Callable[[Order, str | None, str, str | None], list[Outgoing]]
StockLoader = Callable[[], Awaitable[int | None]]


@dataclass(frozen=True, slots=True)
class Line:
    """One package and how many, as asked for."""

    package_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its lines, its history and its customer's images (metadata only)."""

    order: Order
    items: list[OrderItem]
    events: list[OrderEvent]
    materials: list[tuple[int, str, int]]  # (id, content_type, size)


@dataclass(frozen=True, slots=True)
class CartLine:
    """A cart line as shown, with today's price, stock and whether it can still be ordered."""

    line_no: int
    package_id: int
    service_title: str
    platform: str
    package_name: str
    unit_price_fen: int
    quantity: int
    subtotal_fen: int
    stock: int | None
    listed: bool


# --- Order numbers -------------------------------------------------------------------------------


# One atomic upsert: two writers never read the same `last` (no read-then-write race).
_NEXT_NUMBER = per_dialect(
    lambda insert: (
        insert(OrderSequence.__table__)
        .values(day=bindparam("day"), last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": OrderSequence.__table__.c.last + 1})
        .returning(OrderSequence.__table__.c.last)
    )
)


async def next_number(session: AsyncSession, now: dt.datetime) -> str:
    """The next order number of `now`'s Beijing day, e.g. 20261122-0042."""
    day = now.astimezone(BEIJING).strftime("%Y%m%d")
    stmt = _NEXT_NUMBER[session.get_bind().dialect.name]
    last = (await session.execute(stmt, {"day": day})).scalar_one()
    return f"{day}-{last:04d}"


async def _give_back_number(session: AsyncSession, number: str) -> None:
    """Undo next_number; exact, because our upsert still holds the sequence row (or SQLite's write lock)."""
    day, last = number.split("-")
    await session.execute(
        update(OrderSequence)
        .where(OrderSequence.day == day, OrderSequence.last == int(last))
        .values(last=OrderSequence.last - 1)
        .execution_options(synchronize_session=False)
    )


# --- Stock ---------------------------------------------------------------------------------------


# Redis is unreachable: the gate steps aside and the database decides alone.
GATE_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class StockGate:
    """A Redis counter in front of the database stock, so a flash sale is refused before the DB."""

    # -2: not loaded yet; 0: not enough; 1: taken. A negative counter means unlimited.
    _RESERVE = """
    local v = redis.call('GET', KEYS[1])
    if not v then return -2 end
    v = tonumber(v)
    if v < 0 then return 1 end
    local q = tonumber(ARGV[1])
    if v < q then return 0 end
    redis.call('DECRBY', KEYS[1], q)
    return 1
    """
    # A forgotten key stays absent: the next reserve reloads it from the database.
    _RELEASE = """
    local v = redis.call('GET', KEYS[1])
    if v and tonumber(v) >= 0 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
    return -1
    """

    def __init__(self, redis: Redis, *, prefix: str = "chatorder:stock:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._reserve = redis.register_script(self._RESERVE)
        self._release = redis.register_script(self._RELEASE)

    def _key(self, package_id: int) -> str:
        return f"{self._prefix}{package_id}"

    async def forget_all(self) -> int:
        """Drop every counter (after a catalog import changed stock): each reloads from the database."""
        keys = [key async for key in self._redis.scan_iter(match=f"{self._prefix}*")]
        return int(await self._redis.delete(*keys)) if keys else 0

    async def reserve(self, package_id: int, qty: int, db_stock_loader: StockLoader) -> bool:
        """Take `qty` units if there are enough (loading the counter from the DB the first time)."""
        key = self._key(package_id)
        for _ in range(3):
            result = int(await self._reserve(keys=[key], args=[qty]))
            if result != -2:
                return result == 1
            stock = await db_stock_loader()
            # NX: of several processes loading at once, the first wins and the others' loads are dropped.
            await self._redis.set(key, -1 if stock is None else stock, nx=True)
        return False  # forgotten again and again while we loaded: refusing is the safe answer

    async def release(self, package_id: int, qty: int) -> None:
        """Give back `qty` units taken by reserve."""
        await self._release(keys=[self._key(package_id)], args=[qty])

    async def forget(self, package_id: int) -> None:
        """Drop the counter (e.g. after a catalog import) so that it is reloaded from the database."""
        await self._redis.delete(self._key(package_id))


async def _db_stock(session: AsyncSession, package_id: int) -> int | None:
    return await session.scalar(select(Package.stock).where(Package.id == package_id))


async def _take_db_stock(session: AsyncSession, package_id: int, qty: int) -> bool:
    """The source of truth: a conditional UPDATE that never takes more than there is."""
    stmt = (
        update(Package)
        .where(Package.id == package_id, Package.stock >= qty)
        .values(stock=Package.stock - qty)
        .returning(Package.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def _give_back_db_stock(session: AsyncSession, taken: dict[int, int]) -> None:
    for package_id, qty in taken.items():
        await session.execute(
            update(Package)
            .where(Package.id == package_id)
            .values(stock=Package.stock + qty)
            .execution_options(synchronize_session=False)
        )


def _sold_out(rows: dict[int, Row[Any]], short: list[int]) -> DomainError:
    names = [f"{rows[p].title} {rows[p].name}" for p in short]
    return DomainError("sold_out", package_ids=short, packages=names, name="、".join(names))


async def _reserve_db(
    session: AsyncSession, wanted: dict[int, int], rows: dict[int, Row[Any]]
) -> dict[int, int]:
    """Take stock for every limited line, all or nothing; returns {package_id: qty taken}."""
    taken: dict[int, int] = {}
    short: list[int] = []
    # Sorted: every order locks package rows in the same order, so two orders never deadlock (PostgreSQL).
    for package_id, qty in sorted(wanted.items()):
        if rows[package_id].stock is None:
            continue
        if await _take_db_stock(session, package_id, qty):
            taken[package_id] = qty
        else:
            short.append(package_id)
    if short:
        # Undo here rather than in a SAVEPOINT: pysqlite commits a SAVEPOINT opened as a
        # transaction's first statement, and the caller may catch the refusal and commit.
        await _give_back_db_stock(session, taken)
        raise _sold_out(rows, short)
    return taken


async def _reserve_gate(
    gate: StockGate | None, session: AsyncSession, wanted: dict[int, int], rows: dict[int, Row[Any]]
) -> dict[int, int]:
    """Ask the Redis gate first; a refusal raises sold_out before the database is touched."""
    if gate is None:
        return {}
    taken: dict[int, int] = {}
    short: list[int] = []
    for package_id, qty in sorted(wanted.items()):
        if rows[package_id].stock is None:
            continue
        try:
            ok = await gate.reserve(package_id, qty, partial(_db_stock, session, package_id))
        except GATE_DOWN:
            # Redis unreachable: the database's conditional UPDATE alone decides (it always does).
            await _release_gate(gate, taken)
            return {}
        if ok:
            taken[package_id] = qty
        else:
            short.append(package_id)
    if short:
        await _release_gate(gate, taken)
        raise _sold_out(rows, short)
    return taken


async def _release_gate(gate: StockGate | None, taken: dict[int, int]) -> None:
    if gate is not None:
        for package_id, qty in taken.items():
            try:
                await gate.release(package_id, qty)
            except GATE_DOWN:  # the counter is then low until it is reloaded: it refuses, never oversells
                log.warning(
                    "stock gate unreachable: counter not given back", extra={"package_id": package_id}
                )


# --- Creating an order ---------------------------------------------------------------------------


def _check_quantity(quantity: int, *, allow_zero: bool = False) -> None:
    if not (0 if allow_zero else 1) <= quantity <= MAX_QUANTITY:
        raise DomainError("bad_quantity", quantity=quantity, max=MAX_QUANTITY)


def _wanted(lines: Sequence[Line]) -> dict[int, int]:
    """{package_id: quantity}, lines of the same package merged."""
    if not lines:
        raise DomainError("cart_empty")
    wanted: dict[int, int] = {}
    for line in lines:
        _check_quantity(line.quantity)
        wanted[line.package_id] = wanted.get(line.package_id, 0) + line.quantity
    for quantity in wanted.values():
        _check_quantity(quantity)
    return wanted


# The reads of placing and listing orders, built once with bind parameters on the tables (Core): building
# a statement (and its cache key), or going through the ORM's loading, cost about as much as running it.
_TABLES = {m: cast(Table, m.__table__) for m in (Package, Service, FlashSale, Coupon, Order, OrderItem)}
_PKG, _SVC, _SALE, _CPN = (_TABLES[m].c for m in (Package, Service, FlashSale, Coupon))
_LIVE = (
    (_SALE.status == "scheduled") & (_SALE.starts_at <= bindparam("now")) & (_SALE.ends_at > bindparam("now"))
)
_ORDERABLE = (
    select(
        _PKG.id,
        _PKG.name,
        _PKG.price_fen,
        _PKG.stock,
        _SVC.title,
        _SVC.platform,
        _SVC.status,
        _SVC.commission_bp,
        # In the same statement (each one saved is a round trip and its ORM overhead, per order):
        # whether a live flash sale holds the package, and whether the person has any coupon to try.
        exists().where(_SALE.package_id == _PKG.id, _LIVE).label("on_sale"),
        exists()
        .where(
            _CPN.account == bindparam("account"),
            _CPN.openid == bindparam("openid"),
            _CPN.status == "available",
        )
        .label("has_coupon"),
    )
    .select_from(_TABLES[Package].join(_TABLES[Service], _SVC.id == _PKG.service_id))
    .where(_PKG.id.in_(bindparam("package_ids", expanding=True)))
)
_BY_SOURCE_KEY = select(Order).where(Order.source_key == bindparam("source_key"))
_ID_BY_SOURCE_KEY = select(_TABLES[Order].c.id).where(_TABLES[Order].c.source_key == bindparam("source_key"))


async def _orderable(
    session: AsyncSession, package_ids: Collection[int], *, account: str, openid: str, now: dt.datetime
) -> dict[int, Row[*tuple[Any, ...]]]:
    """Package and service columns of listed packages (and on_sale, has_coupon); anything else is
    not_found."""
    params = {"package_ids": list(package_ids), "account": account, "openid": openid, "now": now}
    rows = {r.id: r for r in await session.execute(_ORDERABLE, params) if r.status == "listed"}
    missing = sorted(set(package_ids) - rows.keys())
    if missing:
        raise DomainError("not_found", package_ids=missing)
    return rows


def _not_on_sale(rows: dict[int, Row[Any]]) -> None:
    """not_on_flash_sale for rows read by _orderable."""
    live = next((rows[p] for p in sorted(rows) if rows[p].on_sale), None)
    if live is not None:
        raise DomainError("flash_package", name=f"{live.title} {live.name}")


class _Priced:
    """A package row with another price (a flash sale's) and no stock of its own to take."""

    def __init__(self, row: Row[Any], price_fen: int) -> None:
        self._row, self.price_fen, self.stock = row, price_fen, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def _priced(row: Row[Any], price_fen: int) -> Any:
    return _Priced(row, price_fen)


_LIVE_SALE = (
    select(Service.title, Package.name)
    .select_from(FlashSale)
    .join(Package, Package.id == FlashSale.package_id)
    .join(Service, Service.id == Package.service_id)
    .where(
        FlashSale.package_id.in_(bindparam("package_ids", expanding=True)),
        FlashSale.status == "scheduled",
        FlashSale.starts_at <= bindparam("now"),
        FlashSale.ends_at > bindparam("now"),
    )
    .limit(1)
)


async def not_on_flash_sale(session: AsyncSession, package_ids: Collection[int], now: dt.datetime) -> None:
    """While a package is on a flash sale it is sold only through the sale (so its limit holds):
    refused by the cart, the order form and the order itself."""
    live = (await session.execute(_LIVE_SALE, {"package_ids": list(package_ids), "now": now})).first()
    if live is not None:
        raise DomainError("flash_package", name=f"{live.title} {live.name}")


async def _by_source_key(session: AsyncSession, source_key: str) -> Order | None:
    return await session.scalar(_BY_SOURCE_KEY, {"source_key": source_key})


async def create_order(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    lines: Sequence[Line],
    requirements: dict[str, Any],
    source_key: str,
    notify: Notify,
    expires_in: dt.timedelta = ORDER_TTL,
    material_ids: Sequence[int] = (),
    actor: str | None = None,
    gate: StockGate | None = None,
    now: dt.datetime | None = None,
    unit_prices: dict[int, int] | None = None,
    coupon: int | None = None,
    new_key: bool = False,
    reminded: bool = False,
) -> Order:
    """Place an order (待支付), reserving stock; the same source_key again returns the first order.

    `unit_prices`: a flash sale's order, whose price and stock are the sale's (taken by store.flash), so
    the package's stock is not touched; any other order of a package on a live sale is refused.
    Other orders take the person's best coupon off (or `coupon`, the one they chose with 用券).
    `new_key`: the caller just made source_key unique (a flash position), so no earlier order is
    looked for (a conflict would still be caught by the insert); `reminded`: no "10 minutes left"
    reminder (a flash hold's reply already says until when)."""
    # The id first: an order placed again is rare, and loading an ORM object for nothing costs.
    if not new_key and await session.scalar(_ID_BY_SOURCE_KEY, {"source_key": source_key}) is not None:
        existing = await _by_source_key(session, source_key)
        if existing is not None:
            return existing
    now = now or utcnow()
    wanted = _wanted(lines)
    rows = await _orderable(session, wanted, account=account, openid=openid, now=now)
    if unit_prices is None:
        _not_on_sale(rows)
    else:
        rows = {p: _priced(r, unit_prices[p]) for p, r in rows.items()}
    gated = {} if unit_prices is not None else await _reserve_gate(gate, session, wanted, rows)
    try:
        order = await _place(
            session,
            account=account,
            openid=openid,
            wanted=wanted,
            rows=rows,
            requirements=requirements,
            source_key=source_key,
            now=now,
            expires_in=expires_in,
            reserve=unit_prices is None,
            reminded=reminded,
        )
    except BaseException:
        await _release_gate(gate, gated)
        raise
    if order is None:  # lost a race with a retry of the same source_key
        await _release_gate(gate, gated)
        first = await _by_source_key(session, source_key)
        if first is None:  # ON CONFLICT skipped the insert, so the row exists; kept for the type checker
            raise DomainError("conflict", source_key=source_key)
        return first
    if unit_prices is None and any(r.has_coupon for r in rows.values()):
        order = await _apply_coupon(session, order, prefer=coupon, now=now)
    await _attach_materials(session, order, material_ids)
    event = {
        "order_id": order.id,
        "at": order.created_at,
        "actor": actor or f"customer:{openid}",
        "from_status": None,
        "to_status": OrderStatus.PENDING_PAYMENT,
        "reason": None,
    }
    await session.execute(_EVENT, event)
    await enqueue(session, *notify(order, None, OrderStatus.PENDING_PAYMENT, None))
    await session.flush()
    return order


async def _apply_coupon(
    session: AsyncSession, order: Order, *, prefer: int | None, now: dt.datetime
) -> Order:
    found = await coupons.best(
        session,
        account=order.account,
        openid=order.openid,
        subtotal_fen=order.total_fen,
        now=now,
        prefer=prefer,
    )
    if found is None:
        return order
    coupon, off = found
    await coupons.use(session, coupon, order.id)
    stmt = (
        update(Order)
        .where(Order.id == order.id)
        .values(total_fen=Order.total_fen - off, discount_fen=off, coupon_id=coupon.id)
        .returning(Order)
    )
    return (await session.scalars(stmt, execution_options={"populate_existing": True})).one()


async def _place(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    wanted: dict[int, int],
    rows: dict[int, Row[Any]],
    requirements: dict[str, Any],
    source_key: str,
    now: dt.datetime,
    expires_in: dt.timedelta,
    reserve: bool = True,
    reminded: bool = False,
) -> Order | None:
    """Reserve stock, number and insert the order with its items; None if source_key was taken meanwhile."""
    taken = await _reserve_db(session, wanted, rows) if reserve else {}
    number = await next_number(session, now)
    total = sum(rows[p].price_fen * q for p, q in wanted.items())
    values = {
        "number": number,
        "account": account,
        "openid": openid,
        "status": OrderStatus.PENDING_PAYMENT,
        "total_fen": total,
        "requirements": requirements,
        "deliverables": [],
        "source_key": source_key,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + expires_in,
        "payment_reminded_at": now if reminded else None,
    }
    stmt = _NEW_ORDER[session.get_bind().dialect.name]
    row = (await session.execute(stmt, values)).one_or_none()
    if row is None:
        await _give_back_db_stock(session, taken)
        await _give_back_number(session, number)
        return None
    order = as_loaded(session, Order, row._mapping)
    items = [
        {
            "order_id": order.id,
            "package_id": p,
            "service_title": rows[p].title,
            "platform": rows[p].platform,
            "package_name": rows[p].name,
            "unit_price_fen": rows[p].price_fen,
            "quantity": q,
            "reserved": p in taken,
            "commission_bp": rows[p].commission_bp,
        }
        for p, q in wanted.items()
    ]
    await session.execute(_ITEM, items)
    return order


# Placing an order, built once (bind parameters typed by their columns). The order comes back as an
# ORM object (callers and notices use it); its items and first event are plain rows, inserted without
# the unit of work.
_ORDERS = cast(Table, Order.__table__)  # declarative types __table__ as any FromClause
_ORDER_VALUES = (
    "number",
    "account",
    "openid",
    "status",
    "total_fen",
    "requirements",
    "deliverables",
    "source_key",
    "created_at",
    "updated_at",
    "expires_at",
    "payment_reminded_at",
)
_NEW_ORDER = new_row_insert(_ORDERS, _ORDER_VALUES, unique="source_key")  # no SAVEPOINT: see _reserve_db


# Declarative types __table__ as any FromClause; these models are plain tables.
_ITEM = insert(cast(Table, OrderItem.__table__))
_EVENT = insert(cast(Table, OrderEvent.__table__))


async def _attach_materials(session: AsyncSession, order: Order, material_ids: Sequence[int]) -> None:
    """Link the person's own, still unattached images to the order; others' ids are ignored."""
    if not material_ids:
        return
    await session.execute(
        update(Material)
        .where(
            Material.id.in_(material_ids),
            Material.account == order.account,
            Material.openid == order.openid,
            Material.order_id.is_(None),
        )
        .values(order_id=order.id)
        .execution_options(synchronize_session=False)
    )


# --- Changing state ------------------------------------------------------------------------------


async def _load(session: AsyncSession, order_id: int) -> Order:
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise DomainError("not_found", order_id=order_id)
    return order


async def _apply(
    session: AsyncSession,
    order: Order,
    to: OrderStatus,
    *,
    actor: str,
    reason: str | None,
    notify: Notify,
    gate: StockGate | None = None,
    values: dict[str, Any] | None = None,
    back: bool = False,
) -> Order:
    """The one place a status changes: table check, conditional UPDATE, event, stock, outbox.

    `back`: 退款中 returns to the paid state it came from (reopen), which the table cannot express."""
    frm, to = OrderStatus(order.status), OrderStatus(to)
    if to not in TRANSITIONS[frm] and not (back and frm is OrderStatus.REFUNDING and to in PAID):
        raise DomainError("illegal_transition", frm=frm, to=to)
    now = utcnow()
    # WHERE status = frm: of two concurrent changes (a double-clicked card button) only one applies.
    stmt = (
        update(Order)
        .where(Order.id == order.id, Order.status == frm)
        .values(status=to, updated_at=now, **(values or {}))
        .returning(Order)
    )
    changed = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if changed is None:
        raise DomainError("conflict", order_id=order.id, frm=frm, to=to)
    session.add(
        OrderEvent(order_id=changed.id, at=now, actor=actor, from_status=frm, to_status=to, reason=reason)
    )
    if to is OrderStatus.CANCELLED:
        await _release_stock(session, changed.id, gate)
    if to in (OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        await coupons.give_back(session, changed.id, now)
    await enqueue(session, *notify(changed, frm, to, reason))
    await session.flush()
    return changed


async def _release_stock(session: AsyncSession, order_id: int, gate: StockGate | None) -> None:
    """Give back exactly what the order reserved; the reserved flag flips once, so never twice."""
    stmt = (
        update(OrderItem)
        .where(OrderItem.order_id == order_id, OrderItem.reserved.is_(True))
        .values(reserved=False)
        .returning(OrderItem.package_id, OrderItem.quantity)
        .execution_options(synchronize_session=False)
    )
    taken = {r.package_id: r.quantity for r in await session.execute(stmt)}
    await _give_back_db_stock(session, taken)
    await _release_gate(gate, taken)


async def transition(
    session: AsyncSession,
    *,
    order_id: int,
    to: OrderStatus,
    actor: str,
    reason: str | None = None,
    notify: Notify,
) -> Order:
    """Move an order to `to` if TRANSITIONS allows it, recording who and why."""
    order = await _load(session, order_id)
    values = {"refund_reason": reason} if to == OrderStatus.REFUNDING and reason else None
    return await _apply(session, order, to, actor=actor, reason=reason, notify=notify, values=values)


async def cancel_order(
    session: AsyncSession,
    *,
    order_id: int,
    actor: str,
    reason: str | None,
    notify: Notify,
    gate: StockGate | None = None,
) -> Order:
    """Cancel an unpaid order and give back the stock it reserved."""
    order = await _load(session, order_id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise DomainError("not_cancellable", status=order.status)
    return await _apply(
        session, order, OrderStatus.CANCELLED, actor=actor, reason=reason, notify=notify, gate=gate
    )


async def request_refund(
    session: AsyncSession, *, order_id: int, openid: str, reason: str, notify: Notify
) -> Order:
    """The owner asks for a refund of a paid order (→ 退款中)."""
    order = await _load(session, order_id)
    if order.openid != openid:
        raise DomainError("not_yours", order_id=order_id)
    if order.status not in PAID:
        raise DomainError("not_refundable", status=order.status)
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        raise DomainError("bad_reason", max_chars=MAX_REASON_CHARS)
    return await _apply(
        session,
        order,
        OrderStatus.REFUNDING,
        actor=f"customer:{openid}",
        reason=reason,
        notify=notify,
        values={"refund_reason": reason},
    )


async def reopen(session: AsyncSession, *, order_id: int, actor: str, reason: str, notify: Notify) -> Order:
    """A refund turned down: 退款中 → the paid state the order was in before it (callers check refunds)."""
    order = await _load(session, order_id)
    if order.status != OrderStatus.REFUNDING:
        raise DomainError("not_refunding", number=order.number, status=order.status)
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        raise DomainError("bad_reason", max_chars=MAX_REASON_CHARS)
    before = await session.scalar(
        select(OrderEvent.from_status)
        .where(OrderEvent.order_id == order_id, OrderEvent.to_status == OrderStatus.REFUNDING)
        .order_by(OrderEvent.id.desc())
        .limit(1)
    )
    return await _apply(
        session,
        order,
        OrderStatus(before or OrderStatus.PENDING_REVIEW),
        actor=actor,
        reason=reason,
        notify=notify,
        values={"refund_reason": None},
        back=True,
    )


async def mark_paid(session: AsyncSession, *, order_id: int, actor: str = "system", notify: Notify) -> Order:
    """待支付 → 待审核 once the payment is confirmed."""
    order = await _load(session, order_id)
    return await _apply(session, order, OrderStatus.PENDING_REVIEW, actor=actor, reason=None, notify=notify)


# --- Queries -------------------------------------------------------------------------------------


def _count_statement(by_status: bool) -> Select[Any]:
    where = [Order.account == bindparam("account"), Order.openid == bindparam("openid")]
    if by_status:
        where.append(Order.status == bindparam("status"))
    return select(func.count()).select_from(Order).where(*where)


_COUNT = {by_status: _count_statement(by_status) for by_status in (False, True)}


@dataclass(frozen=True, slots=True)
class ListedOrder:
    """An order as a list shows it: its first line's title and how many lines it has."""

    id: int
    number: str
    status: str
    total_fen: int
    first_title: str | None  # None: an order without lines
    lines: int


async def order_page(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    status: OrderStatus | None = None,
    page: int = 1,
    per_page: int = 5,
) -> tuple[list[ListedOrder], int]:
    """list_orders and first_items in one statement (我的订单 on every order): plain rows, the total
    counted by a window over the same query."""
    params = {"account": account, "openid": openid, "status": status, "limit": per_page}
    rows = (
        await session.execute(_PAGE[status is not None], params | {"offset": (max(page, 1) - 1) * per_page})
    ).all()
    # past the last page the window has no row to count on
    total = rows[0].total if rows else await session.scalar(_COUNT[status is not None], params) or 0
    found = [ListedOrder(r.id, r.number, r.status, r.total_fen, r.first_title, r.lines) for r in rows]
    return found, total


def _page_statement(by_status: bool) -> Select[Any]:
    o, i = _TABLES[Order].c, _TABLES[OrderItem].c
    where = [o.account == bindparam("account"), o.openid == bindparam("openid")]
    if by_status:
        where.append(o.status == bindparam("status"))
    first = select(i.service_title).where(i.order_id == o.id).order_by(i.id).limit(1)
    lines = select(func.count()).select_from(_TABLES[OrderItem]).where(i.order_id == o.id)
    return (
        select(
            o.id,
            o.number,
            o.status,
            o.total_fen,
            first.scalar_subquery().label("first_title"),
            lines.scalar_subquery().label("lines"),
            func.count().over().label("total"),
        )
        .where(*where)
        .order_by(o.created_at.desc(), o.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_PAGE = {by_status: _page_statement(by_status) for by_status in (False, True)}


_FIRST_ITEMS = (
    select(OrderItem.order_id, OrderItem.service_title)
    .where(OrderItem.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(OrderItem.order_id, OrderItem.id)
)


async def first_items(session: AsyncSession, order_ids: Collection[int]) -> dict[int, tuple[str, int]]:
    """For each order: the title of its first line and how many lines it has (for lists)."""
    rows = await session.execute(_FIRST_ITEMS, {"order_ids": list(order_ids)})
    found: dict[int, tuple[str, int]] = {}
    for order_id, title in rows:
        first, n = found.get(order_id, (title, 0))
        found[order_id] = (first, n + 1)
    return found


async def _view(session: AsyncSession, order: Order) -> OrderView:
    items = await session.scalars(
        select(OrderItem).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
    )
    events = await session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    )
    materials = await session.execute(
        select(Material.id, Material.content_type, Material.size)
        .where(Material.order_id == order.id)
        .order_by(Material.id)
    )
    return OrderView(order, list(items), list(events), [(m.id, m.content_type, m.size) for m in materials])


async def find_order(session: AsyncSession, *, account: str, openid: str, number: str) -> OrderView | None:
    """The person's own order by its number (someone else's is None, as if it did not exist)."""
    order = await session.scalar(
        select(Order).where(Order.account == account, Order.openid == openid, Order.number == number)
    )
    return None if order is None else await _view(session, order)


async def get_order(session: AsyncSession, order_id: int) -> OrderView | None:
    """Any order by id, for staff."""
    order = await session.get(Order, order_id, populate_existing=True)
    return None if order is None else await _view(session, order)


# --- Cart ----------------------------------------------------------------------------------------


async def cart_lines(session: AsyncSession, *, account: str, openid: str) -> list[CartLine]:
    """The person's cart in the order things were added, numbered from 1."""
    stmt = (
        select(
            CartItem.package_id,
            CartItem.quantity,
            Package.name,
            Package.price_fen,
            Package.stock,
            Service.title,
            Service.platform,
            Service.status,
        )
        .join(Package, Package.id == CartItem.package_id)
        .join(Service, Service.id == Package.service_id)
        .where(CartItem.account == account, CartItem.openid == openid)
        .order_by(CartItem.added_at, CartItem.id)
    )
    return [
        CartLine(
            line_no=n,
            package_id=r.package_id,
            service_title=r.title,
            platform=r.platform,
            package_name=r.name,
            unit_price_fen=r.price_fen,
            quantity=r.quantity,
            subtotal_fen=r.price_fen * r.quantity,
            stock=r.stock,
            listed=r.status == "listed",
        )
        for n, r in enumerate(await session.execute(stmt), start=1)
    ]


async def cart_add(
    session: AsyncSession, *, account: str, openid: str, package_id: int, quantity: int = 1
) -> list[CartLine]:
    """Put a listed package in the cart, or add to the quantity already there (at most 99)."""
    _check_quantity(quantity)
    _not_on_sale(await _orderable(session, [package_id], account=account, openid=openid, now=utcnow()))
    # One upsert: two quick 加购 of the same package never make two lines or lose an addition.
    stmt = upsert_insert(session)(CartItem).values(
        account=account, openid=openid, package_id=package_id, quantity=quantity, added_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["account", "openid", "package_id"],
        set_={"quantity": CartItem.quantity + quantity},
        where=CartItem.quantity + quantity <= MAX_QUANTITY,
    ).returning(CartItem.id)
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        raise DomainError("bad_quantity", quantity=quantity, max=MAX_QUANTITY)
    return await cart_lines(session, account=account, openid=openid)


async def _cart_line(session: AsyncSession, account: str, openid: str, line_no: int) -> CartLine:
    lines = await cart_lines(session, account=account, openid=openid)
    if not 1 <= line_no <= len(lines):
        raise DomainError("cart_line", n=line_no, lines=len(lines))
    return lines[line_no - 1]


def _cart_item(account: str, openid: str, package_id: int) -> ColumnElement[bool]:
    return (CartItem.account == account) & (CartItem.openid == openid) & (CartItem.package_id == package_id)


async def cart_set_quantity(
    session: AsyncSession, *, account: str, openid: str, line_no: int, quantity: int
) -> list[CartLine]:
    """Set line `line_no` to `quantity` (0 removes it)."""
    _check_quantity(quantity, allow_zero=True)
    line = await _cart_line(session, account, openid, line_no)
    where = _cart_item(account, openid, line.package_id)
    if quantity == 0:
        await session.execute(delete(CartItem).where(where).execution_options(synchronize_session=False))
    else:
        await session.execute(
            update(CartItem)
            .where(where)
            .values(quantity=quantity)
            .execution_options(synchronize_session=False)
        )
    return await cart_lines(session, account=account, openid=openid)


async def cart_remove(session: AsyncSession, *, account: str, openid: str, line_no: int) -> list[CartLine]:
    """Take line `line_no` out of the cart."""
    return await cart_set_quantity(session, account=account, openid=openid, line_no=line_no, quantity=0)


async def cart_clear(
    session: AsyncSession, *, account: str, openid: str, package_ids: Collection[int] | None = None
) -> None:
    """Empty the cart, or only the given packages (those just ordered)."""
    stmt = delete(CartItem).where(CartItem.account == account, CartItem.openid == openid)
    if package_ids is not None:
        stmt = stmt.where(CartItem.package_id.in_(package_ids))
    await session.execute(stmt.execution_options(synchronize_session=False))


# --- Materials -----------------------------------------------------------------------------------


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes really are (by magic number), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def save_material(
    session: AsyncSession, *, account: str, openid: str, media_id: str, content_type: str, data: bytes
) -> int:
    """Keep an image a person sent; the same WeChat media again returns the same id.

    `content_type` is what the sender claimed; only the bytes' magic number decides."""
    existing = await session.scalar(
        select(Material.id)
        .where(Material.account == account, Material.openid == openid, Material.media_id == media_id)
        .order_by(Material.id)
        .limit(1)
    )
    if existing is not None:
        return existing
    if len(data) > MAX_MATERIAL_BYTES:
        raise DomainError("image_too_large", size=len(data), max_bytes=MAX_MATERIAL_BYTES)
    detected = sniff_image(data)
    if detected is None:
        raise DomainError("bad_image", claimed=content_type)
    material = Material(
        account=account, openid=openid, media_id=media_id, content_type=detected, size=len(data), data=data
    )
    session.add(material)
    await session.flush()
    return material.id


async def order_by_number(session: AsyncSession, number: str) -> Order | None:
    """Any order by its number (for staff and operators; customers use find_order)."""
    return await session.scalar(select(Order).where(Order.number == number))
