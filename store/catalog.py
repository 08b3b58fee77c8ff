"""The service catalog: search, facets, detail and the cards people see.

Catalog files (YAML or CSV) are checked and imported by store/catalog_import.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, bindparam, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store.models import Package, Service

PLATFORMS = ("抖音", "快手", "小红书", "B站", "微博", "视频号", "知识服务", "全平台")
CATEGORIES = ("达人营销", "广告投放", "内容制作", "数据分析", "课程", "咨询")
FORMS = ("图文", "视频", "直播", "音频", "线上课", "报告")
REQUIREMENT_KEYS = (
    "brand",
    "link",
    "selling_points",
    "copy",
    "publish_time",
    "mentions",
    "ref_images",
    "audience",
    "contact",
    "notes",
)
STATUSES = ("draft", "listed", "unlisted")
DEFAULT_COMMISSION_BP = 1000  # 10 % to the buyer's inviter when the catalog says nothing
SORTS = ("engagement", "price", "price_desc", "followers", "exposure")
LOW_STOCK = 3

# Other names people type for a platform; they go into search_text so that 搜 bilibili finds B站.
PLATFORM_ALIASES: dict[str, tuple[str, ...]] = {
    "抖音": ("douyin", "tiktok"),
    "快手": ("kuaishou",),
    "小红书": ("红书", "xhs", "rednote"),
    "B站": ("bilibili", "哔哩哔哩", "b站"),
    "微博": ("weibo",),
    "视频号": ("微信视频号", "微信"),
}


class Availability(StrEnum):
    AVAILABLE = "可下单"
    LOW = "库存紧张"
    SOLD_OUT = "已售罄"


_RANK = {Availability.SOLD_OUT: 0, Availability.LOW: 1, Availability.AVAILABLE: 2}
_BY_RANK = {rank: value for value, rank in _RANK.items()}


def availability(stock: int | None) -> Availability:
    """可下单 when unlimited or plenty, 库存紧张 at LOW_STOCK or fewer, 已售罄 at 0."""
    if stock is None or stock > LOW_STOCK:
        return Availability.AVAILABLE
    return Availability.LOW if stock > 0 else Availability.SOLD_OUT


def best_availability(stocks: Iterable[int | None]) -> Availability:
    """A service is as available as its most available package."""
    return max((availability(s) for s in stocks), key=_RANK.__getitem__, default=Availability.SOLD_OUT)


# --- Search --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What a person is looking for; stored in conversation state between messages (to_dict)."""

    keywords: tuple[str, ...] = ()
    platform: str | None = None
    category: str | None = None
    price_min_fen: int | None = None
    price_max_fen: int | None = None
    followers_min: int | None = None
    followers_max: int | None = None
    engagement_min_bp: int | None = None
    form: str | None = None
    sort: str = "engagement"

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}; one of {SORTS}")
        # Lists arrive from JSON and from callers; a tuple keeps the query hashable.
        object.__setattr__(self, "keywords", tuple(self.keywords))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self) | {"keywords": list(self.keywords)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Query:
        """The inverse of to_dict; unknown keys (from older state) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ServiceCard:
    id: int
    code: str
    title: str
    platform: str
    category: str
    followers: int | None
    engagement_bp: int | None
    exposure: int | None
    min_price_fen: int
    availability: Availability
    tags: tuple[str, ...]
    summary: str
    cover_url: str | None
    forms: tuple[str, ...]


@dataclass(frozen=True)
class PackageView:
    id: int
    service_id: int
    position: int
    name: str
    price_fen: int
    deliverables: str
    lead_days: int
    stock: int | None
    availability: Availability
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class ServiceDetail:
    card: ServiceCard
    description: str
    audience: dict[str, Any]
    cases: list[dict[str, Any]]
    packages: list[PackageView]


async def search(
    session: AsyncSession, query: Query, *, page: int = 1, per_page: int = 5
) -> tuple[list[ServiceCard], int]:
    """One page of listed services matching `query`, and how many match in all.

    With a price filter only the packages within it count: a service matches when one of them is in
    range, and its card shows the cheapest such package (so "¥X 起" agrees with the filter).
    """
    stats = _package_stats(query)
    conditions = [Service.status == "listed", *_conditions(session, query)]
    matching = select(Service.id).join(stats, stats.c.service_id == Service.id).where(*conditions)
    total = await session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    stmt = (
        select(Service, stats.c.min_price, stats.c.rank)
        .join(stats, stats.c.service_id == Service.id)
        .where(*conditions)
        .order_by(*_order(query.sort, stats))
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    )
    rows = (await session.execute(stmt)).all()
    return [_card(s, min_price, _BY_RANK[rank]) for s, min_price, rank in rows], total


def _package_stats(query: Query) -> Subquery:
    """Per service: the cheapest package and the best availability rank (of packages in price range)."""
    rank = case(
        (or_(Package.stock.is_(None), Package.stock > LOW_STOCK), _RANK[Availability.AVAILABLE]),
        (Package.stock > 0, _RANK[Availability.LOW]),
        else_=_RANK[Availability.SOLD_OUT],
    )
    stmt = select(
        Package.service_id.label("service_id"),
        func.min(Package.price_fen).label("min_price"),
        func.max(rank).label("rank"),
    ).group_by(Package.service_id)
    if query.price_min_fen is not None:
        stmt = stmt.where(Package.price_fen >= query.price_min_fen)
    if query.price_max_fen is not None:
        stmt = stmt.where(Package.price_fen <= query.price_max_fen)
    return stmt.subquery("package_stats")


def _conditions(session: AsyncSession, query: Query) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        # search_text is stored lower-cased, so a lower-cased LIKE behaves the same on both backends.
        Service.search_text.contains(word.lower(), autoescape=True)
        for word in (k.strip() for k in query.keywords)
        if word
    ]
    if query.platform:
        conditions.append(Service.platform == query.platform)
    if query.category:
        conditions.append(Service.category == query.category)
    if query.followers_min is not None:
        conditions.append(Service.followers >= query.followers_min)
    if query.followers_max is not None:
        conditions.append(Service.followers <= query.followers_max)
    if query.engagement_min_bp is not None:
        conditions.append(Service.engagement_bp >= query.engagement_min_bp)
    if query.form:
        conditions.append(_has_form(session, query.form))
    return conditions


def _has_form(session: AsyncSession, form: str) -> ColumnElement[bool]:
    """forms (a JSON list) contains `form`, compared element by element rather than as JSON text."""
    # Both functions yield a column named "value": SQLite's json_each and PostgreSQL's set function.
    fn = func.json_each if session.get_bind().dialect.name == "sqlite" else func.json_array_elements_text
    elements = fn(Service.forms).table_valued("value")
    return exists(select(1).select_from(elements).where(elements.c.value == form))


def _order(sort: str, stats: Subquery) -> tuple[Any, ...]:
    metric = {
        "engagement": Service.engagement_bp,
        "followers": Service.followers,
        "exposure": Service.exposure,
    }
    if sort in metric:
        column = metric[sort]
        # "IS NULL" sorts false before true on both backends: NULLs last without NULLS LAST syntax.
        return column.is_(None), column.desc(), Service.id
    if sort == "price":
        return stats.c.min_price.asc(), Service.id
    return stats.c.min_price.desc(), Service.id


async def facets(session: AsyncSession) -> dict[str, dict[str, int]]:
    """How many listed services each platform and category has (non-zero, in the canonical order)."""
    result: dict[str, dict[str, int]] = {}
    for name, column, order in (
        ("platform", Service.platform, PLATFORMS),
        ("category", Service.category, CATEGORIES),
    ):
        stmt = (
            select(column, func.count())
            .where(Service.status == "listed", exists().where(Package.service_id == Service.id))
            .group_by(column)
        )
        counts: dict[str, int] = {key: n for key, n in (await session.execute(stmt)).all()}
        result[name] = {key: counts[key] for key in sorted(counts, key=_canonical(order))}
    return result


def _canonical(order: tuple[str, ...]) -> Any:
    return lambda key: (order.index(key) if key in order else len(order), key)


def _with_packages(service_id: Any) -> Select[Service, Package]:
    """A service and its packages (by position) in one statement: a row per package, or one with None."""
    return (
        select(Service, Package)
        .outerjoin(Package, Package.service_id == Service.id)
        .where(Service.id == service_id)
        .order_by(Package.position)
    )


# Built once with bind parameters: these run for most turns of an order, and building a statement
# (and its cache key) cost about as much as running it.
_SERVICE = _with_packages(bindparam("service_id"))
_of_package = aliased(Package)
_SERVICE_OF_PACKAGE = _with_packages(
    select(_of_package.service_id).where(_of_package.id == bindparam("package_id")).scalar_subquery()
)


async def _service_and_packages(
    session: AsyncSession, stmt: Select[Service, Package], params: dict[str, int]
) -> tuple[Service | None, list[Package]]:
    rows = (await session.execute(stmt, params)).all()
    service = rows[0][0] if rows else None
    return service, [p for _, p in rows if p is not None]  # None: the outer join found no package


async def get_detail(
    session: AsyncSession, service_id: int, *, include_unlisted: bool = False
) -> ServiceDetail | None:
    """A service with its packages; None when missing or (unless asked) not listed."""
    service, packages = await _service_and_packages(session, _SERVICE, {"service_id": service_id})
    if service is None or (service.status != "listed" and not include_unlisted):
        return None
    return ServiceDetail(
        card=_card_of(service, packages),
        description=service.description,
        audience=service.audience,
        cases=service.cases,
        packages=[_package_view(p) for p in packages],
    )


async def get_package(
    session: AsyncSession, package_id: int, *, include_unlisted: bool = False
) -> tuple[ServiceCard, PackageView] | None:
    """A package and its service's card; None when missing or its service is not listed."""
    service, packages = await _service_and_packages(session, _SERVICE_OF_PACKAGE, {"package_id": package_id})
    package = next((p for p in packages if p.id == package_id), None)
    if package is None or service is None or (service.status != "listed" and not include_unlisted):
        return None
    return _card_of(service, packages), _package_view(package)


def _card_of(service: Service, packages: Sequence[Package]) -> ServiceCard:
    min_price = min((p.price_fen for p in packages), default=0)
    return _card(service, min_price, best_availability(p.stock for p in packages))


def _card(service: Service, min_price_fen: int, avail: Availability) -> ServiceCard:
    return ServiceCard(
        id=service.id,
        code=service.code,
        title=service.title,
        platform=service.platform,
        category=service.category,
        followers=service.followers,
        engagement_bp=service.engagement_bp,
        exposure=service.exposure,
        min_price_fen=min_price_fen,
        availability=avail,
        tags=tuple(service.tags),
        summary=service.summary,
        cover_url=service.cover_url,
        forms=tuple(service.forms),
    )


def _package_view(package: Package) -> PackageView:
    return PackageView(
        id=package.id,
        service_id=package.service_id,
        position=package.position,
        name=package.name,
        price_fen=package.price_fen,
        deliverables=package.deliverables,
        lead_days=package.lead_days,
        stock=package.stock,
        availability=availability(package.stock),
        requirements=tuple(package.requirements),
    )
