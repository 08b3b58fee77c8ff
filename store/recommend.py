"""「猜你喜欢」: item-to-item co-occurrence over what customers paid for, filled by tag and platform.

Two services are related when the same customers bought both (cosine of their buyer sets, so a
best-seller is not related to everything). A person's candidates are scored by their relation to
what the person bought (or is looking at); when that gives fewer than k — a new service, a new
customer — services sharing tags or the platform fill in, then the best-sellers. Only listed
services with something left in stock are ever recommended, and never what the person already has.

The ranking (`rank`) is pure, so bench/recommend.py measures it offline on a generated history.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import ServiceCard, _card_of
from store.models import Order, OrderItem, Package, Service
from store.orders import PAID

K = 5


@dataclass(frozen=True, slots=True)
class Item:
    """What filling by similarity needs to know of a service."""

    id: int
    platform: str
    tags: frozenset[str]


@dataclass
class Model:
    """Buyers per service and the pair counts of services bought by the same customer."""

    buyers: Counter[int]
    pairs: dict[int, Counter[int]]

    @classmethod
    def fit(cls, baskets: Iterable[Collection[int]]) -> Model:
        buyers: Counter[int] = Counter()
        pairs: dict[int, Counter[int]] = defaultdict(Counter)
        for basket in baskets:
            items = set(basket)
            buyers.update(items)
            for a in items:
                for b in items:
                    if a != b:
                        pairs[a][b] += 1
        return cls(buyers, dict(pairs))

    def related(self, item: int, other: int) -> float:
        together = self.pairs.get(item, Counter())[other]
        return together / math.sqrt(self.buyers[item] * self.buyers[other]) if together else 0.0


def rank(
    model: Model,
    seeds: Collection[int],
    items: Mapping[int, Item],
    *,
    k: int = K,
    exclude: Collection[int] = (),
) -> list[int]:
    """The k best services for someone who bought (or is viewing) `seeds`, among `items` (the eligible)."""
    skip = set(seeds) | set(exclude)
    score: dict[int, float] = defaultdict(float)
    for seed in seeds:
        for other in model.pairs.get(seed, {}):
            if other in items and other not in skip:
                score[other] += model.related(seed, other)
    chosen = [i for i, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))][:k]
    if len(chosen) < k:  # fill: shared tags / the platform of the seeds, best-sellers first
        tags = set().union(*(items[s].tags for s in seeds if s in items)) if seeds else set()
        platforms = {items[s].platform for s in seeds if s in items}

        def likeness(i: int) -> tuple[int, int, int, int]:
            item = items[i]
            return (-len(item.tags & tags), -(item.platform in platforms), -model.buyers[i], i)

        rest = sorted((i for i in items if i not in skip and i not in chosen), key=likeness)
        chosen += rest[: k - len(chosen)]
    return chosen


def popular(
    model: Model, items: Mapping[int, Item], *, k: int = K, exclude: Collection[int] = ()
) -> list[int]:
    """The baseline: best-sellers the person does not have."""
    ranked = sorted((i for i in items if i not in exclude), key=lambda i: (-model.buyers[i], i))
    return ranked[:k]


# --- From the database ---------------------------------------------------------------------------


async def baskets(session: AsyncSession) -> dict[tuple[str, str], set[int]]:
    """Per customer, the services of their paid orders."""
    rows = await session.execute(
        select(Order.account, Order.openid, Package.service_id)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Package, Package.id == OrderItem.package_id)
        .where(Order.status.in_(PAID))
    )
    out: dict[tuple[str, str], set[int]] = defaultdict(set)
    for account, openid, service_id in rows:
        out[(account, openid)].add(service_id)
    return out


async def eligible(session: AsyncSession) -> dict[int, tuple[Service, list[Package]]]:
    """Listed services with at least one package not sold out."""
    services = await session.scalars(select(Service).where(Service.status == "listed"))
    found = {s.id: s for s in services}
    if not found:
        return {}
    packages = await session.scalars(
        select(Package)
        .where(Package.service_id.in_(found), or_(Package.stock.is_(None), Package.stock > 0))
        .order_by(Package.position)
    )
    with_stock: dict[int, tuple[Service, list[Package]]] = {}
    for p in packages:
        with_stock.setdefault(p.service_id, (found[p.service_id], []))[1].append(p)
    return with_stock


# The fitted model per database, kept while no order was paid or changed since (its key): fitting
# reads every paid order, which a search that finds nothing should not do each time.
_fitted: dict[str, tuple[tuple[int, Any], dict[tuple[str, str], set[int]], Model]] = {}


async def _model(session: AsyncSession) -> tuple[dict[tuple[str, str], set[int]], Model]:
    paid = select(func.count(Order.id), func.max(Order.updated_at)).where(Order.status.in_(PAID))
    count, last = (await session.execute(paid)).one()
    key = (int(count), last)
    bind = session.get_bind()
    where = str(bind.engine.url)
    cached = _fitted.get(where)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    bought = await baskets(session)
    model = Model.fit(bought.values())
    _fitted[where] = (key, bought, model)
    return bought, model


async def for_person(
    session: AsyncSession, *, account: str, openid: str, viewing: int | None = None, k: int = K
) -> list[ServiceCard]:
    """「猜你喜欢」 for a person: from what they bought (and what they are looking at)."""
    bought, model = await _model(session)
    available = await eligible(session)
    items = {i: Item(i, s.platform, frozenset(s.tags)) for i, (s, _) in available.items()}
    mine = bought.get((account, openid), set())
    seeds = mine | ({viewing} if viewing else set())
    ids = rank(model, seeds, items, k=k, exclude=mine)
    return [_card_of(*available[i]) for i in ids]
