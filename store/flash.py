"""Flash sales (秒杀): the operator's YAML, taking a unit, holds, the waitlist and the figures.

A take checks the sale's stock and the person's limit in one transaction of conditional UPDATEs (the
person's quota row first, then the sale row: every path locks them in that order, so PostgreSQL never
deadlocks on them). When Redis is configured, FlashGate answers first with the same two checks in one
Lua script, so a rush is mostly refused before the database; the database stays the truth.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import yaml
from sqlalchemy import (
    Table,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store import coupons, orders, payments
from store.db import as_loaded, per_dialect, typed_values, upsert_insert
from store.errors import DomainError
from store.models import (
    FlashPaySlot,
    FlashQuota,
    FlashReminder,
    FlashSale,
    FlashSubscription,
    FlashTake,
    FlashWaitlist,
    Order,
    Package,
    Payment,
    Service,
    User,
    utcnow,
)
from store.orders import BEIJING, PAID, Line, Notify, OrderStatus

if TYPE_CHECKING:
    from redis.asyncio import Redis

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{1,31}")
FIELDS = (
    "code",
    "title",
    "service",
    "package",
    "price",
    "tiers",
    "stock",
    "limit",
    "starts",
    "ends",
    "hold_minutes",
    "reminders",
    "remarket",
    "coupon",
)
REQUIRED = ("code", "service", "package", "price", "stock", "starts", "ends")
DEFAULT_REMINDERS = (24 * 60, 60, 0)
MAX_STOCK = 1_000_000
_MONEY = re.compile(r"^[¥￥]?\s*(\d{1,7})(?:\.(\d{1,2}))?$")
_OFFSET = re.compile(r"^(\d{1,4})\s*(h|m|d|小时|分钟|天)$")
# The money arrived for these orders: their take is sold.
_MONEY_IN = frozenset({*PAID, OrderStatus.REFUNDING, OrderStatus.REFUNDED})
_WHEN = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M")


# --- The operator's file -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileError:
    """One problem in a sale file, at a line of it."""

    line: int
    message: str


@dataclass
class SaleSpec:
    """A sale as read from the file (prices in fen, times aware UTC); `lines` maps fields to lines."""

    code: str = ""
    title: str = ""
    service: str = ""
    package: str = ""
    price_fen: int = 0
    tiers: list[tuple[int, int]] = field(default_factory=list)  # (up to position, price_fen)
    stock: int = 0
    per_customer: int = 1
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    hold_minutes: int = 5
    remind_minutes: list[int] = field(default_factory=lambda: list(DEFAULT_REMINDERS))
    remarket: list[str] = field(default_factory=list)
    coupon: dict[str, Any] = field(default_factory=dict)  # store.coupons spec, for remarketing
    lines: dict[str, int] = field(default_factory=dict)


def _fen(raw: str) -> int | None:
    match = _MONEY.match(raw.strip())
    if not match:
        return None
    fen = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    return fen if fen > 0 else None


def _when(raw: str) -> dt.datetime | None:
    """A Beijing wall-clock time, as operators write it."""
    for fmt in _WHEN:
        try:
            return dt.datetime.strptime(raw.strip(), fmt).replace(tzinfo=BEIJING).astimezone(dt.UTC)
        except ValueError:
            continue
    return None


def _offset(raw: str) -> int | None:
    """Minutes before the start: 24h, 1h, 30m, 0 / start."""
    raw = raw.strip().lower()
    if raw in ("0", "start", "开始"):
        return 0
    match = _OFFSET.match(raw)
    if not match:
        return None
    n, unit = int(match.group(1)), match.group(2)
    return n * {"h": 60, "小时": 60, "m": 1, "分钟": 1, "d": 1440, "天": 1440}[unit]


def _int(raw: str, low: int, high: int) -> int | None:
    return int(raw) if raw.strip().isdigit() and low <= int(raw) <= high else None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def parse_sale(text: str) -> tuple[SaleSpec, list[FileError]]:
    """Read a sale file; every problem is reported with its line, none is fixed silently."""
    errors: list[FileError] = []
    spec = SaleSpec()
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return spec, [
            FileError(mark.line + 1 if mark else 1, f"YAML 格式错误：{getattr(exc, 'problem', exc)}")
        ]
    if not isinstance(root, yaml.MappingNode):
        return spec, [FileError(_line(root) if root else 1, "文件应是一个映射（code: …、price: … 等）")]
    for key_node, value in root.value:
        key = str(key_node.value)
        if key not in FIELDS:
            errors.append(FileError(_line(key_node), f"未知字段 {key}（可用：{'、'.join(FIELDS)}）"))
            continue
        spec.lines[key] = _line(value)
        problem = _read_field(spec, key, value)
        if problem:
            errors.append(FileError(_line(value), f"{key}: {problem}"))
    missing = [k for k in REQUIRED if k not in spec.lines]
    if missing:
        errors.append(FileError(1, f"缺少字段：{'、'.join(missing)}"))
    errors.extend(_check_whole(spec))
    errors.sort(key=lambda e: e.line)
    return spec, errors


def _scalar(node: yaml.Node) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _read_field(spec: SaleSpec, key: str, node: yaml.Node) -> str | None:
    """Set one field from its node; the reason it is wrong, or None."""
    if key == "tiers":
        return _read_tiers(spec, node)
    if key == "coupon":
        return _read_coupon(spec, node)
    if key in ("reminders", "remarket"):
        if not isinstance(node, yaml.SequenceNode) or any(_scalar(n) is None for n in node.value):
            return "应是列表，例如 [24h, 1h, 0]" if key == "reminders" else "应是服务 code 列表"
        items = [str(n.value) for n in node.value]
        if key == "remarket":
            spec.remarket = items
            return None
        offsets = [_offset(i) for i in items]
        if any(o is None for o in offsets):
            return "提醒时间写成 24h、1h、30m 或 0（开抢时）"
        spec.remind_minutes = sorted({o for o in offsets if o is not None}, reverse=True)
        return None
    raw = _scalar(node)
    if raw is None or not raw.strip():
        return "应是一个值"
    return _read_scalar(spec, key, raw.strip())


def _read_scalar(spec: SaleSpec, key: str, raw: str) -> str | None:
    if key == "code":
        if not CODE.fullmatch(raw.lower()):
            return "2–32 位小写字母、数字、- 或 _"
        spec.code = raw.lower()
    elif key in ("title", "service", "package"):
        if len(raw) > 100:
            return "太长（最多 100 字）"
        setattr(spec, key, raw)
    elif key == "price":
        fen = _fen(raw)
        if fen is None:
            return "价格写成元，例如 9.9"
        spec.price_fen = fen
    elif key in ("stock", "limit", "hold_minutes"):
        bounds = {"stock": (1, MAX_STOCK), "limit": (1, 99), "hold_minutes": (1, 120)}[key]
        n = _int(raw, *bounds)
        if n is None:
            return f"应是 {bounds[0]}–{bounds[1]} 的整数"
        setattr(spec, {"limit": "per_customer"}.get(key, key), n)
    elif key in ("starts", "ends"):
        when = _when(raw)
        if when is None:
            return "时间写成北京时间 2026-12-08 10:00"
        setattr(spec, f"{key}_at", when)
    return None


def _read_tiers(spec: SaleSpec, node: yaml.Node) -> str | None:
    if not isinstance(node, yaml.SequenceNode):
        return "应是列表，例如 - {first: 100, price: 9.9}"
    last = 0
    for item in node.value:
        values = (
            {str(k.value): _scalar(v) for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        )
        upto = _int(values.get("first") or "", 1, MAX_STOCK)
        fen = _fen(values.get("price") or "")
        if set(values) != {"first", "price"} or upto is None or fen is None:
            return f"第 {_line(item)} 行的档位写成 {{first: 100, price: 9.9}}（前 100 单 ¥9.9）"
        if upto <= last:
            return f"第 {_line(item)} 行：first 要一档比一档大"
        spec.tiers.append((upto, fen))
        last = upto
    return None


def _read_coupon(spec: SaleSpec, node: yaml.Node) -> str | None:
    """coupon: {off: 50, min: 300, days: 7} or {percent: 10, cap: 100, days: 3} (yuan, days)."""
    usage = "写成 {off: 50, min: 300, days: 7} 或 {percent: 10, cap: 100, days: 3}"
    if not isinstance(node, yaml.MappingNode):
        return usage
    values = {str(k.value): _scalar(v) or "" for k, v in node.value}
    if not set(values) <= {"off", "percent", "cap", "min", "days"}:
        return usage
    coupon: dict[str, Any] = {"days": _int(values.get("days", "7"), 1, 365)}
    for key, name in (("off", "off_fen"), ("cap", "cap_fen"), ("min", "min_fen")):
        if key in values:
            coupon[name] = _fen(values[key])
    if "percent" in values:
        coupon["percent"] = _int(values["percent"], 1, 99)
    if any(v is None for v in coupon.values()):
        return usage
    problem = coupons.check_spec(coupon)
    if problem:
        return problem
    spec.coupon = coupon
    return None


def _check_whole(spec: SaleSpec) -> list[FileError]:
    """What only the fields together can say."""
    errors: list[FileError] = []
    if spec.starts_at and spec.ends_at and spec.ends_at <= spec.starts_at:
        errors.append(FileError(spec.lines.get("ends", 1), "ends 要晚于 starts"))
    if spec.tiers and spec.stock and spec.tiers[-1][0] >= spec.stock:
        errors.append(FileError(spec.lines.get("tiers", 1), "最后一档的 first 要小于 stock，之后按 price 卖"))
    return errors


async def create_sale(
    session: AsyncSession, spec: SaleSpec, *, now: dt.datetime
) -> tuple[FlashSale | None, list[FileError]]:
    """Check the spec against the catalog and create the sale; on any error nothing is created."""
    errors: list[FileError] = []
    if await session.scalar(select(FlashSale.id).where(FlashSale.code == spec.code)) is not None:
        errors.append(FileError(spec.lines.get("code", 1), f"code: 已有秒杀 {spec.code}"))
    package = await _package(session, spec)
    if package is None:
        errors.append(
            FileError(
                spec.lines.get("package", 1), f"package: 服务 {spec.service} 没有上架的套餐 {spec.package}"
            )
        )
    elif spec.price_fen >= package.price_fen or any(p >= package.price_fen for _, p in spec.tiers):
        errors.append(FileError(spec.lines.get("price", 1), "price: 秒杀价要低于原价"))
    known = set(await session.scalars(select(Service.code).where(Service.code.in_(spec.remarket))))
    for code in spec.remarket:
        if code not in known:
            errors.append(FileError(spec.lines.get("remarket", 1), f"remarket: 没有服务 {code}"))
    if spec.ends_at is not None and spec.ends_at <= now:
        errors.append(FileError(spec.lines.get("ends", 1), "ends: 已经过去了"))
    if errors or package is None or spec.starts_at is None or spec.ends_at is None:
        return None, errors
    sale = FlashSale(
        code=spec.code,
        title=spec.title or "",
        package_id=package.id,
        price_fen=spec.price_fen,
        tiers=[{"upto": u, "price_fen": p} for u, p in spec.tiers],
        stock=spec.stock,
        available=spec.stock,
        taken=0,
        per_customer=spec.per_customer,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        hold_minutes=spec.hold_minutes,
        remind_minutes=list(spec.remind_minutes),
        remarket=list(spec.remarket),
        coupon=dict(spec.coupon),
        status="scheduled",
        created_at=now,
    )
    session.add(sale)
    _written(session)
    await session.flush()
    return sale, []


async def _package(session: AsyncSession, spec: SaleSpec) -> Package | None:
    """The listed package named by position (1, ①) or by name."""
    stmt = (
        select(Package)
        .join(Service, Service.id == Package.service_id)
        .where(Service.code == spec.service, Service.status == "listed")
    )
    circled = "①②③④⑤⑥⑦⑧⑨⑩"
    raw = spec.package.strip()
    position = int(raw) if raw.isdigit() else (circled.index(raw) + 1 if raw and raw in circled else None)
    stmt = stmt.where(Package.position == position) if position else stmt.where(Package.name == raw)
    return await session.scalar(stmt)


async def schedule_demo_sale(session: AsyncSession, now: dt.datetime) -> FlashSale | None:
    """The demo's sale: starts three minutes after start-up with 5 units, so a newcomer watches the
    countdown, the rush, 已抢光 and 候补 in the console. None when a sale is already open."""
    if await open_sales(session, now):
        return None
    package = await session.scalar(
        select(Package)
        .join(Service, Service.id == Package.service_id)
        .where(Service.status == "listed", Package.price_fen >= 1_000)
        .order_by(Package.price_fen, Package.id)
        .limit(1)
    )
    if package is None:
        return None
    starts = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=3)
    sale = FlashSale(
        code=f"demo{starts.astimezone(BEIJING):%m%d%H%M}",
        title="",
        package_id=package.id,
        price_fen=package.price_fen // 2,
        tiers=[{"upto": 2, "price_fen": package.price_fen // 10}],
        stock=5,
        available=5,
        taken=0,
        per_customer=1,
        starts_at=starts,
        ends_at=starts + dt.timedelta(minutes=30),
        hold_minutes=2,
        remind_minutes=list(DEFAULT_REMINDERS),
        remarket=[],
        status="scheduled",
        created_at=now,
    )
    session.add(sale)
    _written(session)
    await session.flush()
    return sale


# --- Looking at sales ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SaleView:
    """A sale with what customers and staff see of it."""

    sale: FlashSale
    service_title: str
    package_name: str
    usual_fen: int
    mine: int | None = None  # units the person asked about holds or has paid (None: not asked)


def price_at(sale: FlashSale, position: int) -> int:
    """The price of the unit taken at `position` (1 = the first taken)."""
    for tier in sale.tiers:
        if position <= int(tier["upto"]):
            return int(tier["price_fen"])
    return sale.price_fen


def phase(sale: FlashSale, now: dt.datetime) -> str:
    """upcoming | live | sold_out | over | stopped."""
    if sale.status == "stopped":
        return "stopped"
    if now >= sale.ends_at:
        return "over"
    if now < sale.starts_at:
        return "upcoming"
    return "live" if sale.available > 0 else "sold_out"


async def _views(session: AsyncSession, *where: Any, person: tuple[str, str] | None = None) -> list[SaleView]:
    """`person` (account, openid): with how many units they hold in each sale, in the same query (a
    sold-out 抢 is answered from this one read)."""
    mine: Any = null()
    if person is not None:
        mine = (
            select(func.count())
            .where(
                FlashTake.sale_id == FlashSale.id,
                FlashTake.account == person[0],
                FlashTake.openid == person[1],
                FlashTake.status.in_(["held", "paid"]),
            )
            .correlate(FlashSale)
            .scalar_subquery()
        )
    stmt = (
        select(FlashSale, Service.title, Package.name, Package.price_fen, mine)
        .join(Package, Package.id == FlashSale.package_id)
        .join(Service, Service.id == Package.service_id)
        .where(*where)
        .order_by(FlashSale.starts_at, FlashSale.id)
        .execution_options(populate_existing=True)
    )
    return [SaleView(*row) for row in await session.execute(stmt)]


async def open_sales(
    session: AsyncSession, now: dt.datetime, *, person: tuple[str, str] | None = None
) -> list[SaleView]:
    """Upcoming and running sales, soonest first (what customers can see)."""
    return await _views(session, FlashSale.status == "scheduled", FlashSale.ends_at > now, person=person)


async def recent_sales(session: AsyncSession, now: dt.datetime) -> list[SaleView]:
    """Sales running now or ended (or stopped) within the last day: the command room's."""
    since = now - dt.timedelta(days=1)
    return await _views(
        session,
        FlashSale.starts_at <= now,
        FlashSale.ends_at > since,
        (FlashSale.stopped_at.is_(None)) | (FlashSale.stopped_at > since),
    )


async def all_sales(session: AsyncSession) -> list[SaleView]:
    return await _views(session)


async def sale_by_code(
    session: AsyncSession, code: str, *, person: tuple[str, str] | None = None
) -> SaleView | None:
    found = await _views(session, FlashSale.code == code.strip().lower(), person=person)
    return found[0] if found else None


class FlashWrites:
    """How many transactions of this process changed a sale's stock or status (counted at commit):
    the board below refreshes at once after one of ours, and within a second after other processes'."""

    count = 0


def _written(session: AsyncSession) -> None:
    session.sync_session.info["flash_written"] = True


@event.listens_for(Session, "after_commit")
def _count_commit(session: Session) -> None:
    if session.info.pop("flash_written", False):
        FlashWrites.count += 1


@event.listens_for(Session, "after_rollback")
def _forget_rollback(session: Session) -> None:
    session.info.pop("flash_written", None)


class SaleBoard:
    """The open sales as this process last read them, and who holds units in them, for a rush's taps.

    Most of a rush is people tapping 抢 after the last unit went: they are told 已抢光 from here, with
    no query (a unit given back goes to the waitlist first, so a second's delay in seeing it takes
    nothing from anyone). Every take still goes through the database (and the Redis gate), which
    decides; someone known to hold a unit is looked up before being told anything."""

    TTL = 1.0  # seconds between reads, unless this process changed a sale meanwhile

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._views: list[SaleView] = []
        self._holders: dict[int, set[tuple[str, str]]] = {}
        self._read_at = -self.TTL
        self._version = -1
        self._refresh: asyncio.Task[None] | None = None

    async def open_sales(self, now: dt.datetime) -> list[SaleView]:
        """Upcoming and running sales, as `open_sales` reads them (at most a second old)."""
        if self._version != FlashWrites.count or time.monotonic() - self._read_at >= self.TTL:
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.create_task(self._read(), name="flash-board")
            await asyncio.shield(self._refresh)
        return [v for v in self._views if v.sale.ends_at > now]

    async def sale(self, code: str, now: dt.datetime) -> SaleView | None:
        """An open sale by code (None: not open now, as far as this board knows)."""
        code = code.strip().lower()
        return next((v for v in await self.open_sales(now) if v.sale.code == code), None)

    def mine(self, view: SaleView, account: str, openid: str) -> SaleView:
        """The view with `mine`: 0 for someone holding nothing, None (look it up) for a holder."""
        held = (account, openid) in self._holders.get(view.sale.id, ())
        return SaleView(view.sale, view.service_title, view.package_name, view.usual_fen, None if held else 0)

    def took(self, sale: FlashSale, account: str, openid: str, left: int | None) -> None:
        """A rush take of this process, seen at once without reading the sale again (during a rush
        every take would otherwise mean a read): the person now holds a unit, `left` remain."""
        self._holders.setdefault(sale.id, set()).add((account, openid))
        if left is None:
            return
        for view in self._views:
            if view.sale.id == sale.id and left < view.sale.available:
                # In place, as loaded (nothing to flush: the sale is detached): every tap holding this
                # view sees the count at once — a new ORM object per take cost a winner ~0.2 ms.
                set_committed_value(view.sale, "available", left)
        if left <= 0:  # sold out is answered from here alone: learn other processes' takes first
            self.stale()

    def stale(self) -> None:
        """Read the sales again on the next tap: the database disagreed with the board (say, no unit
        left), or this process sold the last unit (who holds one must then be complete)."""
        self._read_at = -self.TTL

    async def _read(self) -> None:
        version, started = FlashWrites.count, time.monotonic()
        async with self._sessionmaker() as session:
            views = await open_sales(session, utcnow())
            takes = await session.execute(
                select(FlashTake.sale_id, FlashTake.account, FlashTake.openid).where(
                    FlashTake.sale_id.in_([v.sale.id for v in views]),
                    FlashTake.status.in_(["held", "paid"]),  # at most the stock: small
                )
            )
            holders: dict[int, set[tuple[str, str]]] = {v.sale.id: set() for v in views}
            for sale_id, account, openid in takes:
                holders[sale_id].add((account, openid))
        self._views, self._holders = views, holders
        self._version, self._read_at = version, started


async def stop_sale(session: AsyncSession, code: str, now: dt.datetime) -> FlashSale:
    """Stop a sale: nothing more can be taken (holds already made can still be paid)."""
    sale = await session.scalar(
        update(FlashSale)
        .where(FlashSale.code == code.strip().lower(), FlashSale.status == "scheduled")
        .values(status="stopped", stopped_at=now)
        .returning(FlashSale)
    )
    if sale is None:
        view = await sale_by_code(session, code)
        raise DomainError("flash_not_found" if view is None else "flash_stopped", sale=code)
    _written(session)
    return sale


# --- Taking a unit -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taken:
    take: FlashTake
    order: Order
    left: int | None = None  # units still available right after this take (None: not from stock)
    payment: Payment | None = None  # its WeChat Pay payment, when made in the take's transaction
    qr_media: str | None = None  # that payment's QR, when made before the sale opened (a pay slot)
    balance_fen: int | None = None  # the buyer's balance, read with the take (for the pay offer)


# A take's statements, built once (per dialect for the upsert) on the tables, not the mapped classes:
# a rush runs them hundreds of times a second, building them was most of their cost, and the ORM's
# bulk DML path (an entity's INSERT/UPDATE with parameters) made a new cache key per run on top.
_QUOTAS = cast(Table, FlashQuota.__table__)
_SALES = cast(Table, FlashSale.__table__)


def _quota_up_statement(insert: Any) -> Any:
    stmt = insert(_QUOTAS).values(
        sale_id=bindparam("b_sale_id"), account=bindparam("b_account"), openid=bindparam("b_openid"), active=1
    )
    return stmt.on_conflict_do_update(
        index_elements=["sale_id", "account", "openid"],
        set_={"active": _QUOTAS.c.active + 1},
        where=_QUOTAS.c.active < bindparam("b_limit"),
    ).returning(_QUOTAS.c.active)


_QUOTA_UP = per_dialect(_quota_up_statement)
_QUOTA_DOWN = (
    update(_QUOTAS)
    .where(
        _QUOTAS.c.sale_id == bindparam("b_sale_id"),
        _QUOTAS.c.account == bindparam("b_account"),
        _QUOTAS.c.openid == bindparam("b_openid"),
        _QUOTAS.c.active > 0,
    )
    .values(active=_QUOTAS.c.active - 1)
)
_POSITION = update(_SALES).where(_SALES.c.id == bindparam("b_sale_id")).values(taken=_SALES.c.taken + 1)
# status: a sale stopped after the caller read it is not taken from
_FROM_STOCK = _POSITION.where(_SALES.c.available >= 1, _SALES.c.status == literal("scheduled")).values(
    available=_SALES.c.available - 1
)
_NEXT_POSITION = {
    from_stock: stmt.returning(_SALES.c.taken, _SALES.c.available)
    for from_stock, stmt in ((False, _POSITION), (True, _FROM_STOCK))
}


_TAKE_VALUES = (
    "sale_id",
    "account",
    "openid",
    "position",
    "price_fen",
    "order_id",
    "via",
    "status",
    "created_at",
    "expires_at",
    "scene",
)
_TAKES = cast(Table, FlashTake.__table__)  # declarative types __table__ as any FromClause
_NEW_TAKE = insert(_TAKES).values(typed_values(_TAKES, _TAKE_VALUES)).returning(_TAKES.c.id)


async def _quota_up(session: AsyncSession, sale: FlashSale, account: str, openid: str) -> bool:
    """One more unit for the person unless they are at the limit (one atomic upsert)."""
    stmt = _QUOTA_UP[session.get_bind().dialect.name]
    params = {"b_sale_id": sale.id, "b_account": account, "b_openid": openid, "b_limit": sale.per_customer}
    return (await session.execute(stmt, params)).scalar_one_or_none() is not None


async def _quota_down(session: AsyncSession, sale_id: int, account: str, openid: str) -> None:
    await session.execute(_QUOTA_DOWN, {"b_sale_id": sale_id, "b_account": account, "b_openid": openid})


async def _next_position(session: AsyncSession, sale_id: int, *, from_stock: bool) -> tuple[int, int] | None:
    """Hand out the next position; from_stock also takes a unit of what is available (None: none left).
    (position, units available after it)."""
    row = (await session.execute(_NEXT_POSITION[from_stock], {"b_sale_id": sale_id})).one_or_none()
    return None if row is None else (row[0], row[1])


async def precheck(session: AsyncSession, sale: FlashSale, *, account: str, openid: str) -> int:
    """What a take would say, by reading only: 1 worth trying, 0 none left, -1 at the limit. The
    take's conditional UPDATEs still decide; this only spares the write for the obvious refusals."""
    available = await session.scalar(select(FlashSale.available).where(FlashSale.id == sale.id))
    mine = await session.scalar(
        select(FlashQuota.active).where(
            FlashQuota.sale_id == sale.id, FlashQuota.account == account, FlashQuota.openid == openid
        )
    )
    if (mine or 0) >= sale.per_customer:
        return -1
    return 1 if (available or 0) > 0 else 0


async def take(
    session: AsyncSession,
    *,
    sale: FlashSale,
    account: str,
    openid: str,
    now: dt.datetime,
    notify: Notify,
    via: str = "rush",
    hold: dt.timedelta | None = None,
    from_stock: bool = True,
    price_fen: int | None = None,
    scene: str | None = None,
) -> Taken:
    """Take one unit for the person: their limit and the stock in one transaction, then an order on hold.

    `from_stock=False`: the unit is one just given back (offered to the waitlist), not taken from
    what is available; `price_fen`: a late payment keeps the price it paid. Refusals (DomainError)
    leave nothing changed."""
    if phase(sale, now) in ("upcoming", "over", "stopped"):
        raise DomainError(f"flash_{phase(sale, now)}", sale=sale.code)
    if not await _quota_up(session, sale, account, openid):
        raise DomainError("flash_limit", limit=sale.per_customer)
    if via != "rush":  # a rush's takes reach this process's board through SaleBoard.took
        _written(session)
    found = await _next_position(session, sale.id, from_stock=from_stock)
    if found is None:
        await _quota_down(session, sale.id, account, openid)  # exact: we still hold the row
        raise DomainError("flash_sold_out", sale=sale.code)
    position, left = found
    price = price_fen or price_at(sale, position)
    hold = hold or dt.timedelta(minutes=sale.hold_minutes)
    order = await orders.create_order(
        session,
        account=account,
        openid=openid,
        lines=[Line(sale.package_id, 1)],
        requirements={},
        source_key=f"flash:{sale.id}:{position}",
        notify=notify,
        expires_in=hold,
        unit_prices={sale.package_id: price},
        now=now,
        new_key=True,  # positions are handed out once (the UPDATE above)
        reminded=True,  # a hold is minutes long and its reply already says until when
    )
    values = {
        "sale_id": sale.id,
        "account": account,
        "openid": openid,
        "position": position,
        "price_fen": price,
        "order_id": order.id,
        "via": via,
        "status": "held",
        "created_at": now,
        "expires_at": now + hold,
        "scene": scene,
    }
    take_id = (await session.execute(_NEW_TAKE, values)).scalar_one()
    row = as_loaded(session, FlashTake, {"id": take_id, "released_at": None, **values})
    return Taken(row, order, left if from_stock else None)


async def sale_of_order(session: AsyncSession, order_id: int) -> tuple[FlashTake, FlashSale] | None:
    found = (
        await session.execute(
            select(FlashTake, FlashSale)
            .join(FlashSale, FlashSale.id == FlashTake.sale_id)
            .where(FlashTake.order_id == order_id)
        )
    ).first()
    return None if found is None else (found[0], found[1])


async def mark_paid(session: AsyncSession, order_id: int) -> bool:
    """The hold's order was paid: the unit is sold (once)."""
    stmt = (
        update(FlashTake)
        .where(FlashTake.order_id == order_id, FlashTake.status == "held")
        .values(status="paid")
        .returning(FlashTake.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# --- Pay slots: each position's WeChat Pay order and QR, made before the rush ---------------------

# How long before its start a sale's pay slots are made (within WeChat Pay's two hours for a code_url).
PREPARE_AHEAD = dt.timedelta(minutes=10)
SLOT_BATCH = 50  # slots opened per transaction (each then costs a pay call and an upload)
# The opening rush's positions at most: a bigger stock is not taken in one burst, and each slot is a
# pay order and an upload against WeChat's quotas.
SLOT_MAX = 1000


@dataclass(frozen=True, slots=True)
class OpenSlot:
    """A slot whose payment exists but whose code_url and QR are still to be made."""

    id: int
    position: int
    payment: Payment


async def sales_to_prepare(session: AsyncSession, now: dt.datetime) -> list[FlashSale]:
    """Scheduled sales starting within PREPARE_AHEAD (or running) with positions still without a slot
    (the first `stock`, at most SLOT_MAX)."""
    made = (
        select(func.count())
        .select_from(FlashPaySlot)
        .where(FlashPaySlot.sale_id == FlashSale.id)
        .scalar_subquery()
    )
    stmt = select(FlashSale).where(
        FlashSale.status == "scheduled",
        FlashSale.starts_at <= now + PREPARE_AHEAD,
        FlashSale.ends_at > now,
        made < case((FlashSale.stock < SLOT_MAX, FlashSale.stock), else_=SLOT_MAX),
    )
    return list(await session.scalars(stmt))


async def open_slots(session: AsyncSession, sale: FlashSale, *, now: dt.datetime) -> list[OpenSlot]:
    """Up to SLOT_BATCH new slots for the sale's first positions (`stock`, at most SLOT_MAX) that have
    none, each with an unassigned payment at its position's price. Another process opening the same
    position wins or loses on the unique key; the loser's payment, never shown to WeChat Pay, is removed."""
    have = set(await session.scalars(select(FlashPaySlot.position).where(FlashPaySlot.sale_id == sale.id)))
    missing = [p for p in range(1, min(sale.stock, SLOT_MAX) + 1) if p not in have][:SLOT_BATCH]
    opened = []
    for position in missing:
        payment = await payments.unassigned_payment(
            session, amount_fen=price_at(sale, position), trade_type="NATIVE", now=now
        )
        stmt = (
            upsert_insert(session)(FlashPaySlot)
            .values(sale_id=sale.id, position=position, payment_id=payment.id, created_at=now)
            .on_conflict_do_nothing(index_elements=["sale_id", "position"])
            .returning(FlashPaySlot.id)
        )
        slot_id = (await session.execute(stmt)).scalar_one_or_none()
        if slot_id is None:
            await session.execute(delete(Payment).where(Payment.id == payment.id))
            continue
        opened.append(OpenSlot(slot_id, position, payment))
    return opened


async def unfinished_slots(session: AsyncSession, *, older_than: dt.datetime) -> list[OpenSlot]:
    """Slots opened before `older_than` whose QR was never made (a crash between): to finish again."""
    stmt = (
        select(FlashPaySlot.id, FlashPaySlot.position, Payment)
        .join(Payment, Payment.id == FlashPaySlot.payment_id)
        .where(
            FlashPaySlot.media_id.is_(None),
            FlashPaySlot.created_at < older_than,
            Payment.order_id.is_(None),
            Payment.status == "created",
        )
    )
    return [
        OpenSlot(slot_id, position, payment) for slot_id, position, payment in await session.execute(stmt)
    ]


async def slot_ready(session: AsyncSession, slot_id: int, *, code_url: str, media_id: str) -> None:
    """The slot's code_url (from WeChat Pay) and QR (uploaded) are made: it can be given out."""
    slot = await session.get(FlashPaySlot, slot_id)
    if slot is None:
        return
    await payments.set_prepay(session, payment_id=slot.payment_id, code_url=code_url)
    slot.media_id = media_id


_SLOT_OF = select(FlashPaySlot.payment_id, FlashPaySlot.media_id).where(
    FlashPaySlot.sale_id == bindparam("b_sale_id"),
    FlashPaySlot.position == bindparam("b_position"),
    FlashPaySlot.media_id.is_not(None),
)


async def claim_slot(
    session: AsyncSession, taken: Taken, *, now: dt.datetime, hold: dt.timedelta
) -> tuple[Payment, str] | None:
    """The take's position's ready-made payment, given to its order, and the QR's media_id — or None
    (no slot, or one WeChat Pay would no longer honour for the whole hold): the caller makes one."""
    params = {"b_sale_id": taken.take.sale_id, "b_position": taken.take.position}
    found = (await session.execute(_SLOT_OF, params)).one_or_none()
    if found is None:
        return None
    made_after = now + hold - payments.PREPAY_LIFETIME
    paying = await payments.assign_payment(session, found.payment_id, taken.order, made_after=made_after)
    return None if paying is None else (paying, str(found.media_id))


async def close_slots(session: AsyncSession, now: dt.datetime) -> list[str]:
    """Payments of slots never given out, of sales that are over or stopped: closed here; their
    out_trade_no for the caller to close at WeChat Pay."""
    over = select(FlashSale.id).where(or_(FlashSale.status == "stopped", FlashSale.ends_at <= now))
    unused = select(FlashPaySlot.payment_id).where(FlashPaySlot.sale_id.in_(over))
    stmt = (
        update(Payment)
        .where(Payment.id.in_(unused), Payment.order_id.is_(None), Payment.status == "created")
        .values(status="closed")
        .returning(Payment.out_trade_no)
        .execution_options(synchronize_session=False)
    )
    return list(await session.scalars(stmt))


# --- Giving a unit back --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Released:
    """A unit given back: the person who lost it, and who was offered it from the waitlist (if anyone)."""

    take: FlashTake
    sale: FlashSale
    offered: Taken | None
    lapsed_here: bool = False  # this sweep cancelled the unpaid order (else the customer or expiry did)


async def due_releases(session: AsyncSession, now: dt.datetime, limit: int = 200) -> list[int]:
    """Held takes whose hold ran out or whose order was cancelled or paid: the sweep settles them."""
    stmt = (
        select(FlashTake.id)
        .join(Order, Order.id == FlashTake.order_id)
        .where(
            FlashTake.status == "held",
            (FlashTake.expires_at <= now) | (Order.status != OrderStatus.PENDING_PAYMENT),
        )
        .order_by(FlashTake.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def settle(
    session: AsyncSession, take_id: int, *, now: dt.datetime, notify: Notify, waitlist_hold: dt.timedelta
) -> Released | None:
    """Settle one due take: paid → sold; expired or cancelled → released (to the waitlist first).

    The order is cancelled before the take row is touched, in the same order a payment locks them
    (order, then take), so a payment arriving now and this never deadlock."""
    found = await session.get(FlashTake, take_id, populate_existing=True)
    if found is None or found.status != "held" or found.order_id is None:
        return None
    order = await session.get(Order, found.order_id, populate_existing=True)
    if order is None:
        return None
    if order.status in _MONEY_IN:
        await mark_paid(session, order.id)
        return None
    lapsed_here = order.status == OrderStatus.PENDING_PAYMENT
    if lapsed_here:
        if found.expires_at > now:
            return None
        await orders.cancel_order(
            session, order_id=order.id, actor="system", reason="秒杀保留超时", notify=notify
        )
    flipped = await session.scalar(
        update(FlashTake)
        .where(FlashTake.id == take_id, FlashTake.status == "held")
        .values(status="released", released_at=now)
        .returning(FlashTake)
    )
    if flipped is None:
        return None
    _written(session)
    sale = await session.get(FlashSale, flipped.sale_id, populate_existing=True)
    assert sale is not None
    await _quota_down(session, sale.id, flipped.account, flipped.openid)
    offered = await _offer_waitlist(session, sale, now=now, notify=notify, hold=waitlist_hold)
    if offered is None:
        await session.execute(
            update(FlashSale)
            .where(FlashSale.id == sale.id)
            .values(available=FlashSale.available + 1)
            .execution_options(synchronize_session=False)
        )
    await session.refresh(sale)
    return Released(flipped, sale, offered, lapsed_here)


async def _offer_waitlist(
    session: AsyncSession, sale: FlashSale, *, now: dt.datetime, notify: Notify, hold: dt.timedelta
) -> Taken | None:
    """Give the unit just released to the first person waiting who may still have one."""
    if phase(sale, now) not in ("live", "sold_out"):
        return None
    waiting = await session.scalars(
        select(FlashWaitlist)
        .where(FlashWaitlist.sale_id == sale.id, FlashWaitlist.status == "waiting")
        .order_by(FlashWaitlist.id)
        .limit(20)
    )
    for entry in list(waiting):
        claimed = await session.scalar(
            update(FlashWaitlist)
            .where(FlashWaitlist.id == entry.id, FlashWaitlist.status == "waiting")
            .values(status="offered", offered_at=now)
            .returning(FlashWaitlist.id)
        )
        if claimed is None:
            continue
        try:
            return await take(
                session,
                sale=sale,
                account=entry.account,
                openid=entry.openid,
                now=now,
                notify=notify,
                via="waitlist",
                hold=hold,
                from_stock=False,
                scene=entry.scene,
            )
        except DomainError:
            continue  # at their limit meanwhile: the next person waiting
    return None


async def join_waitlist(
    session: AsyncSession, *, sale: FlashSale, account: str, openid: str, scene: str | None = None
) -> int:
    """候补: queue the person (once); their place in the queue (1 = next offered)."""
    stmt = (
        upsert_insert(session)(FlashWaitlist)
        .values(
            sale_id=sale.id,
            account=account,
            openid=openid,
            status="waiting",
            created_at=utcnow(),
            scene=scene,
        )
        .on_conflict_do_nothing(index_elements=["sale_id", "account", "openid"])
    )
    await session.execute(stmt)
    mine = await session.scalar(
        select(FlashWaitlist.id).where(
            FlashWaitlist.sale_id == sale.id,
            FlashWaitlist.account == account,
            FlashWaitlist.openid == openid,
            FlashWaitlist.status == "waiting",
        )
    )
    if mine is None:
        raise DomainError("flash_waitlist_done", sale=sale.code)
    ahead = await session.scalar(
        select(func.count())
        .select_from(FlashWaitlist)
        .where(FlashWaitlist.sale_id == sale.id, FlashWaitlist.status == "waiting", FlashWaitlist.id <= mine)
    )
    return int(ahead or 1)


@dataclass(frozen=True, slots=True)
class Holding:
    """A unit the person holds or has paid, with its order's number (to pay it by)."""

    status: str  # held | paid
    expires_at: dt.datetime
    number: str | None


_HELD_BY = (
    select(FlashTake.status, FlashTake.expires_at, Order.number)
    .outerjoin(Order, Order.id == FlashTake.order_id)
    .where(
        FlashTake.sale_id == bindparam("sale_id"),
        FlashTake.account == bindparam("account"),
        FlashTake.openid == bindparam("openid"),
        FlashTake.status.in_([literal("held"), literal("paid")]),
    )
    .order_by(FlashTake.id)
)  # built once: a rush's takers tap again and again


async def held_by(session: AsyncSession, *, sale_id: int, account: str, openid: str) -> list[Holding]:
    """The person's units in the sale that are held or paid, oldest first, in one query."""
    rows = await session.execute(_HELD_BY, {"sale_id": sale_id, "account": account, "openid": openid})
    return [Holding(*row) for row in rows]


async def takes_since(session: AsyncSession, sale_id: int, since: dt.datetime) -> int:
    """Units taken since `since` (orders per minute, in the command room)."""
    found = await session.scalar(
        select(func.count())
        .select_from(FlashTake)
        .where(FlashTake.sale_id == sale_id, FlashTake.created_at >= since)
    )
    return int(found or 0)


# --- 提醒我: subscriptions and reminders -----------------------------------------------------------


async def subscribe(
    session: AsyncSession, *, sale: FlashSale, account: str, openid: str, now: dt.datetime
) -> FlashSubscription:
    """Subscribe the person to the sale's reminders (again: the same subscription)."""
    await session.execute(
        upsert_insert(session)(FlashSubscription)
        .values(sale_id=sale.id, account=account, openid=openid, created_at=now, consent="none")
        .on_conflict_do_nothing(index_elements=["sale_id", "account", "openid"])
    )
    found = await session.scalar(
        select(FlashSubscription).where(
            FlashSubscription.sale_id == sale.id,
            FlashSubscription.account == account,
            FlashSubscription.openid == openid,
        )
    )
    assert found is not None  # just inserted, or there already
    return found


async def record_consent(session: AsyncSession, *, sale_id: int, openid: str, now: dt.datetime) -> bool:
    """WeChat's redirect after 允许 on the authorisation page: one subscribe send may be made."""
    stmt = (
        update(FlashSubscription)
        .where(FlashSubscription.sale_id == sale_id, FlashSubscription.openid == openid)
        .values(consent="granted", consent_at=now)
        .returning(FlashSubscription.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder to send now: to whom, how (message | subscribe | unreachable), for which offset."""

    sale: FlashSale
    subscription: FlashSubscription
    offset_minutes: int
    how: str


def due_offsets(sale: FlashSale, now: dt.datetime) -> list[int]:
    """The sale's reminders whose time has come and that still make sense (before the start, or the
    start reminder while the sale runs)."""
    if phase(sale, now) not in ("upcoming", "live"):
        return []
    return [
        m
        for m in sale.remind_minutes
        if sale.starts_at - dt.timedelta(minutes=m) <= now and (m == 0 or now < sale.starts_at)
    ]


async def claim_reminders(session: AsyncSession, now: dt.datetime, budget: int) -> list[Reminder]:
    """Up to `budget` reminders due now, each claimed once (a row per subscription and offset) with
    how it can reach the person: a message inside their 48-hour window, else their one-time consent.
    A subscription gets only the reminders still ahead when it was made — the times its 提醒我 reply
    listed — not, at once, every one that had passed."""
    claimed: list[Reminder] = []
    window = now - dt.timedelta(hours=48)
    for view in await open_sales(session, now):
        for offset in due_offsets(view.sale, now):
            if len(claimed) >= budget:
                return claimed
            sent = select(FlashReminder.subscription_id).where(FlashReminder.offset_minutes == offset)
            rows = await session.execute(
                select(FlashSubscription, User.last_inbound_at)
                .outerjoin(
                    User,
                    (User.account == FlashSubscription.account) & (User.openid == FlashSubscription.openid),
                )
                .where(
                    FlashSubscription.sale_id == view.sale.id,
                    FlashSubscription.created_at < view.sale.starts_at - dt.timedelta(minutes=offset),
                    FlashSubscription.id.not_in(sent),
                )
                .order_by(FlashSubscription.id)
                .limit(budget - len(claimed))
            )
            for sub, last_in in rows:
                how = "message" if last_in is not None and last_in > window else "unreachable"
                if how == "unreachable" and sub.consent == "granted":
                    how = "subscribe"
                if await _claim_reminder(session, sub, offset, how, now):
                    claimed.append(Reminder(view.sale, sub, offset, how))
    return claimed


async def _claim_reminder(
    session: AsyncSession, sub: FlashSubscription, offset: int, how: str, now: dt.datetime
) -> bool:
    inserted = await session.execute(
        upsert_insert(session)(FlashReminder)
        .values(subscription_id=sub.id, offset_minutes=offset, how=how, at=now)
        .on_conflict_do_nothing(index_elements=["subscription_id", "offset_minutes"])
        .returning(FlashReminder.id)
    )
    if inserted.scalar_one_or_none() is None:
        return False  # another process sent it
    if how == "subscribe":  # one send per consent
        await session.execute(
            update(FlashSubscription)
            .where(FlashSubscription.id == sub.id)
            .values(consent="used")
            .execution_options(synchronize_session=False)
        )
    return True


# --- Remarketing -------------------------------------------------------------------------------


async def due_remarketing(session: AsyncSession, now: dt.datetime, after: dt.timedelta) -> list[FlashSale]:
    """Sales that ended `after` ago (or more, within a day) and were not remarketed yet."""
    ended = func.coalesce(FlashSale.stopped_at, FlashSale.ends_at)
    stmt = select(FlashSale).where(
        FlashSale.remarketed_at.is_(None),
        FlashSale.starts_at <= now,
        (FlashSale.ends_at <= now - after) | (FlashSale.stopped_at <= now - after),
        ended > now - dt.timedelta(days=1),
    )
    return list(await session.scalars(stmt))


async def claim_remarketing(session: AsyncSession, sale_id: int, now: dt.datetime) -> bool:
    """Once per sale, whichever process gets here first."""
    stmt = (
        update(FlashSale)
        .where(FlashSale.id == sale_id, FlashSale.remarketed_at.is_(None))
        .values(remarketed_at=now)
        .returning(FlashSale.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def remarketing_audience(
    session: AsyncSession, sale_id: int
) -> list[tuple[str, str, dt.datetime | None]]:
    """(account, openid, last message to us) of who subscribed or took a unit and did not buy."""
    subscribed = select(FlashSubscription.account, FlashSubscription.openid).where(
        FlashSubscription.sale_id == sale_id
    )
    took = select(FlashTake.account, FlashTake.openid).where(FlashTake.sale_id == sale_id)
    people = {tuple(r) for r in await session.execute(subscribed)} | {
        tuple(r) for r in await session.execute(took)
    }
    bought = {
        tuple(r)
        for r in await session.execute(
            select(FlashTake.account, FlashTake.openid).where(
                FlashTake.sale_id == sale_id, FlashTake.status == "paid"
            )
        )
    }
    found = []
    for account, openid in sorted(people - bought):
        last = await session.scalar(
            select(User.last_inbound_at).where(User.account == account, User.openid == openid)
        )
        found.append((account, openid, last))
    return found


# --- Figures -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    stock: int
    available: int
    held: int
    paid: int
    released: int
    takers: int
    buyers: int
    revenue_fen: int
    waitlist: int
    waitlist_served: int

    @property
    def conversion_pct(self) -> int:
        """Who took a unit and paid, in percent of those who took one."""
        return 100 * self.buyers // self.takers if self.takers else 0


async def figures(session: AsyncSession, sale: FlashSale) -> Figures:
    rows = await session.execute(
        select(FlashTake.status, func.count(), func.coalesce(func.sum(FlashTake.price_fen), 0))
        .where(FlashTake.sale_id == sale.id)
        .group_by(FlashTake.status)
    )
    by = {status: (int(n), int(fen)) for status, n, fen in rows}
    takers = await session.scalar(
        select(func.count(func.distinct(FlashTake.openid))).where(FlashTake.sale_id == sale.id)
    )
    buyers = await session.scalar(
        select(func.count(func.distinct(FlashTake.openid))).where(
            FlashTake.sale_id == sale.id, FlashTake.status == "paid"
        )
    )
    waiting = await session.execute(
        select(FlashWaitlist.status, func.count())
        .where(FlashWaitlist.sale_id == sale.id)
        .group_by(FlashWaitlist.status)
    )
    wait = {status: int(n) for status, n in waiting}
    return Figures(
        stock=sale.stock,
        available=sale.available,
        held=by.get("held", (0, 0))[0],
        paid=by.get("paid", (0, 0))[0],
        released=by.get("released", (0, 0))[0],
        takers=int(takers or 0),
        buyers=int(buyers or 0),
        revenue_fen=by.get("paid", (0, 0))[1],
        waitlist=wait.get("waiting", 0),
        waitlist_served=wait.get("offered", 0),
    )


@dataclass(frozen=True, slots=True)
class SceneFigures:
    """What one QR channel of a sale brought: units taken (released ones too), paid, revenue."""

    scene: str  # the channel; "" the plain flash_<code>
    takes: int
    paid: int
    revenue_fen: int


async def scene_figures(session: AsyncSession, sale: FlashSale) -> list[SceneFigures]:
    """Every QR channel that brought a take, most takes first (takes not through a QR left out)."""
    paid = FlashTake.status == "paid"
    stmt = (
        select(
            FlashTake.scene,
            func.count(),
            func.coalesce(func.sum(case((paid, 1), else_=0)), 0),
            func.coalesce(func.sum(case((paid, FlashTake.price_fen), else_=0)), 0),
        )
        .where(FlashTake.sale_id == sale.id, FlashTake.scene.is_not(None))
        .group_by(FlashTake.scene)
    )
    rows = [SceneFigures(str(s), int(n), int(p), int(f)) for s, n, p, f in await session.execute(stmt)]
    return sorted(rows, key=lambda r: (-r.takes, -r.paid, r.scene))


# --- The Redis gate ------------------------------------------------------------------------------


class FlashGate:
    """Redis in front of the database for a rush: stock and the person's limit in one Lua call."""

    # -2: not loaded; -1: at the limit; 0: none left; 1: taken.
    _TAKE = """
    local left = redis.call('GET', KEYS[1])
    if not left then return -2 end
    local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
    if mine >= tonumber(ARGV[2]) then return -1 end
    if tonumber(left) <= 0 then return 0 end
    redis.call('DECR', KEYS[1])
    redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
    return 1
    """
    # ARGV: available, then openid/count pairs. Only the first loader of a burst writes (NX).
    _LOAD = """
    if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
    redis.call('DEL', KEYS[2])
    for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
    redis.call('SET', KEYS[1], ARGV[1])
    return 1
    """
    # ARGV: who gives the unit back, who gets it instead ('' = back to everyone).
    _GIVE = """
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') > 0 then
        redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
    end
    if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) else redis.call('INCR', KEYS[1]) end
    return 1
    """

    # The database said sold out: none left; at the limit: the unit goes back, the count stays.
    _UNDO = """
    if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
    if ARGV[2] == 'flash_limit' then redis.call('INCR', KEYS[1]) return 1 end
    if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') > 0 then
        redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
    end
    if ARGV[2] == 'flash_sold_out' then redis.call('SET', KEYS[1], 0) else redis.call('INCR', KEYS[1]) end
    return 1
    """

    def __init__(self, redis: Redis, *, prefix: str = "chatorder:flash:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(self._TAKE)
        self._load = redis.register_script(self._LOAD)
        self._give = redis.register_script(self._GIVE)
        self._undo = redis.register_script(self._UNDO)

    def _keys(self, sale_id: int) -> list[str]:
        return [f"{self._prefix}{sale_id}:left", f"{self._prefix}{sale_id}:per"]

    async def take(self, session: AsyncSession, sale: FlashSale, openid: str) -> int:
        """1 taken, 0 none left, -1 at the limit (loading the counters from the database once)."""
        for _ in range(3):
            result = int(await self._take(keys=self._keys(sale.id), args=[openid, sale.per_customer]))
            if result != -2:
                return result
            quotas = await session.execute(
                select(FlashQuota.openid, FlashQuota.active).where(FlashQuota.sale_id == sale.id)
            )
            available = await session.scalar(select(FlashSale.available).where(FlashSale.id == sale.id))
            pairs = [str(v) for row in quotas for v in row]
            await self._load(keys=self._keys(sale.id), args=[available or 0, *pairs])
        return 0

    async def undo(self, sale_id: int, openid: str, refusal: str) -> None:
        """The database refused what Redis allowed: make Redis agree with the refusal's reason."""
        await self._undo(keys=self._keys(sale_id), args=[openid, refusal])

    async def heal(self, sale_id: int, available: int) -> None:
        """Redis says none left but the database has some (a give-back lost in a crash): reload."""
        left = await self._redis.get(self._keys(sale_id)[0])
        if left is not None and int(left) <= 0 < available:
            await self.forget(sale_id)

    async def give_back(self, sale_id: int, openid: str, to: str = "") -> None:
        await self._give(keys=self._keys(sale_id), args=[openid, to])

    async def forget(self, sale_id: int) -> None:
        await self._redis.delete(*self._keys(sale_id))

    async def throttle(self, openid: str, millis: int) -> bool:
        """True when the person already tried within `millis` (one SET NX PX)."""
        return not await self._redis.set(f"{self._prefix}throttle:{openid}", 1, nx=True, px=millis)
