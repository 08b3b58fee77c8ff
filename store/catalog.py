"""The service catalog: search, facets, detail and the cards people see.

Catalog files (YAML or CSV) are checked and imported by store/catalog_import.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Row, Select, Table, bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import FlashSale, Package, Service, utcnow

if TYPE_CHECKING:
    from store.search import SearchIndex, SearchResult

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
# relevance ranks by the words searched for; without words it means the default order, engagement.
SORTS = ("relevance", "engagement", "price", "price_desc", "followers", "exposure")
LOW_STOCK = 3

# Other names people type for a platform; search indexes them with it, so that 搜 bilibili finds B站.
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
    """What a person is looking for; stored in conversation state between messages (to_dict).

    `keywords` and `tags` rank (relevance); a service must match at least one of their words, and
    with `tags` at least one of the tags (among its tags or in its title). Everything else filters.
    """

    keywords: tuple[str, ...] = ()
    platform: str | None = None
    category: str | None = None
    price_min_fen: int | None = None
    price_max_fen: int | None = None
    followers_min: int | None = None
    followers_max: int | None = None
    engagement_min_bp: int | None = None
    form: str | None = None
    sort: str = "relevance"
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}; one of {SORTS}")
        # Lists arrive from JSON and from callers; a tuple keeps the query hashable. Blank words are none.
        object.__setattr__(self, "keywords", tuple(w.strip() for w in self.keywords if w.strip()))
        object.__setattr__(self, "tags", tuple(t.strip() for t in self.tags if t.strip()))

    @property
    def effective_sort(self) -> str:
        """The order results are in: relevance needs words; without them it is by engagement."""
        if self.sort == "relevance" and not (self.keywords or self.tags):
            return "engagement"
        return self.sort

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self) | {"keywords": list(self.keywords), "tags": list(self.tags)}

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
    on_sale: bool = False  # held by a live flash sale (read by get_detail only)


@dataclass(frozen=True)
class ServiceDetail:
    card: ServiceCard
    description: str
    audience: dict[str, Any]
    cases: list[dict[str, Any]]
    packages: list[PackageView]


async def search(
    session: AsyncSession,
    query: Query,
    *,
    page: int = 1,
    per_page: int = 5,
    index: SearchIndex | None = None,
) -> tuple[list[ServiceCard], int]:
    """One page of listed services matching `query`, and how many match in all (see `find`)."""
    result = await find(session, query, page=page, per_page=per_page, index=index)
    return result.cards, result.total


async def find(
    session: AsyncSession,
    query: Query,
    *,
    page: int = 1,
    per_page: int = 5,
    index: SearchIndex | None = None,
) -> SearchResult:
    """One page of listed services for `query`, ranked (store.search); when none match, which
    condition emptied the answer and the nearest alternatives.

    With a price filter only the packages within it count: a service matches when one of them is in
    range, and its card shows the cheapest such package (so "¥X 起" agrees with the filter).
    `index` is the app's (it follows catalog changes); without one a throwaway index is built.
    """
    from store.search import SearchIndex  # the index pulls in numpy: only when someone searches

    return await (index or SearchIndex()).find(session, query, page=page, per_page=per_page)


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


# A service's card columns, what only its detail shows, and its packages' columns (prefixed p_): read as
# plain rows of the tables (Core), not ORM objects nor ORM attributes — for these reads on most turns of
# an order, the ORM's loading cost more than the statement itself.
_SERVICES, _PACKAGES, _SALES = (cast(Table, m.__table__) for m in (Service, Package, FlashSale))
_CARD = tuple(
    _SERVICES.c[key]
    for key in (
        "id",
        "code",
        "title",
        "platform",
        "category",
        "followers",
        "engagement_bp",
        "exposure",
        "tags",
        "summary",
        "cover_url",
        "forms",
        "status",
    )
)
_DETAIL = (_SERVICES.c.description, _SERVICES.c.audience, _SERVICES.c.cases)
_PACKAGE = tuple(
    _PACKAGES.c[key].label(f"p_{key}")
    for key in ("id", "position", "name", "price_fen", "deliverables", "lead_days", "stock", "requirements")
)
# Whether a live flash sale holds the package (it is then sold only through the sale): read with the
# detail, so that 下单 ① does not need a statement of its own for store.orders.not_on_flash_sale.
_ON_SALE = (
    exists()
    .where(
        _SALES.c.package_id == _PACKAGES.c.id,
        _SALES.c.status == "scheduled",
        _SALES.c.starts_at <= bindparam("now"),
        _SALES.c.ends_at > bindparam("now"),
    )
    .label("p_on_sale")
)


def _with_packages(service_id: Any, *columns: Any) -> Select[Any]:
    """A service and its packages (by position) in one statement: a row per package, or one with None."""
    return (
        select(*columns, *_PACKAGE)
        .select_from(_SERVICES.outerjoin(_PACKAGES, _PACKAGES.c.service_id == _SERVICES.c.id))
        .where(_SERVICES.c.id == service_id)
        .order_by(_PACKAGES.c.position)
    )


# Built once with bind parameters: these run for most turns of an order, and building a statement
# (and its cache key) cost about as much as running it.
_SERVICE = _with_packages(bindparam("service_id"), *_CARD, *_DETAIL, _ON_SALE)
_of_package = _PACKAGES.alias()
_SERVICE_OF_PACKAGE = _with_packages(
    select(_of_package.c.service_id).where(_of_package.c.id == bindparam("package_id")).scalar_subquery(),
    *_CARD,
)


async def _service_and_packages(
    session: AsyncSession, stmt: Select[Any], params: dict[str, Any]
) -> tuple[Row[Any] | None, list[PackageView]]:
    rows = (await session.execute(stmt, params)).all()
    service = rows[0] if rows else None
    # p_id None: the outer join found no package
    return service, [_package_view(r) for r in rows if r.p_id is not None]


async def get_detail(
    session: AsyncSession, service_id: int, *, include_unlisted: bool = False, now: dt.datetime | None = None
) -> ServiceDetail | None:
    """A service with its packages; None when missing or (unless asked) not listed. Each package's
    `on_sale` says whether a flash sale holds it at `now` (default: the current time)."""
    params = {"service_id": service_id, "now": now or utcnow()}
    service, packages = await _service_and_packages(session, _SERVICE, params)
    if service is None or (service.status != "listed" and not include_unlisted):
        return None
    return ServiceDetail(
        card=_card_of(service, packages),
        description=service.description,
        audience=service.audience,
        cases=service.cases,
        packages=packages,
    )


async def get_package(
    session: AsyncSession, package_id: int, *, include_unlisted: bool = False
) -> tuple[ServiceCard, PackageView] | None:
    """A package and its service's card; None when missing or its service is not listed."""
    service, packages = await _service_and_packages(session, _SERVICE_OF_PACKAGE, {"package_id": package_id})
    package = next((p for p in packages if p.id == package_id), None)
    if package is None or service is None or (service.status != "listed" and not include_unlisted):
        return None
    return _card_of(service, packages), package


def _card_of(service: ServiceFields, packages: Sequence[PackageView | Package]) -> ServiceCard:
    min_price = min((p.price_fen for p in packages), default=0)
    return service_card(service, min_price, best_availability(p.stock for p in packages))


class ServiceFields(Protocol):
    """What a card is made from: a Service row, or the search index's copy of one."""

    @property
    def id(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def followers(self) -> int | None: ...
    @property
    def engagement_bp(self) -> int | None: ...
    @property
    def exposure(self) -> int | None: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def summary(self) -> str: ...
    @property
    def cover_url(self) -> str | None: ...
    @property
    def forms(self) -> Sequence[str]: ...


def service_card(service: ServiceFields, min_price_fen: int, avail: Availability) -> ServiceCard:
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


def _package_view(row: Row[Any]) -> PackageView:
    """A package's columns (p_…) of a row of _with_packages."""
    return PackageView(
        id=row.p_id,
        service_id=row.id,
        position=row.p_position,
        name=row.p_name,
        price_fen=row.p_price_fen,
        deliverables=row.p_deliverables,
        lead_days=row.p_lead_days,
        stock=row.p_stock,
        availability=availability(row.p_stock),
        requirements=tuple(row.p_requirements),
        on_sale=bool(getattr(row, "p_on_sale", False)),
    )
