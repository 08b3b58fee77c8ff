"""Ranked search over the listed catalog, held in process and kept in step with the database.

`SearchIndex` lives on the app (one per process). Before each search it reads a cheap version of the
catalog (the latest updated_at of services and of packages, and a checksum of the packages with
little or no stock: index look-ups), and rebuilds what changed: the text index when a service changed, the
package table when a package did, availability when stock did (an order). So every process follows
an import made by any other, with no signal between them and nothing in the import code. The index
is built on the first search, not at start-up.

updated_at is stamped when a change is flushed, not when it commits: an import that commits after a
later-stamped change was already seen would go unnoticed until the next change. Imports are rare
and not run concurrently, so this is accepted; stock, which many orders change at once, is read
directly instead.

When nothing matches, the answer says which condition did it (each one is relaxed alone) and shows
the nearest alternatives: the cheapest above a budget, the closest follower count, or the same
search without the platform, the category …
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import LOW_STOCK, Query, ServiceCard
from store.models import Package, Service

if TYPE_CHECKING:
    from store.ranking import Snapshot

# The conditions a query can hold, in the order they are relaxed when nothing matches: a budget or an
# audience size is more often a preference than the platform, the kind of service or the words.
CONDITIONS = ("price", "followers", "engagement", "form", "platform", "category", "tags", "keywords")
# The Query fields each condition is made of (cleared to relax it).
_FIELDS: dict[str, tuple[str, ...]] = {
    "price": ("price_min_fen", "price_max_fen"),
    "followers": ("followers_min", "followers_max"),
    "engagement": ("engagement_min_bp",),
    "form": ("form",),
    "platform": ("platform",),
    "category": ("category",),
    "tags": ("tags",),
    "keywords": ("keywords",),
}
ALTERNATIVES = 3  # how many nearest services are shown when nothing matches


@dataclass(frozen=True)
class Alternatives:
    """What matches once `dropped` conditions are let go (nearest to the original first)."""

    dropped: tuple[str, ...]  # names from CONDITIONS
    query: Query  # the original query without them
    total: int
    cards: list[ServiceCard]  # at most ALTERNATIVES


@dataclass(frozen=True)
class SearchResult:
    cards: list[ServiceCard]  # this page
    total: int  # matching services in all
    # When total is 0: the conditions that each, alone, emptied the answer (letting go of any one of
    # them finds something), in CONDITIONS order; empty when no single one does.
    blocked_by: tuple[str, ...] = ()
    # When total is 0: what to show instead (dropping blocked_by[0], or several conditions when no
    # single one suffices); None only when nothing at all is listed.
    alternatives: Alternatives | None = None


def relax(query: Query, dropped: Sequence[str]) -> Query:
    """`query` without the conditions named in `dropped`."""
    cleared: dict[str, Any] = {}
    for name in dropped:
        for field in _FIELDS[name]:
            cleared[field] = () if field in ("keywords", "tags") else None
    return dataclasses.replace(query, **cleared)


class SearchIndex:
    """The catalog's search index for one process; rebuilt lazily when the catalog changes."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        # the latest change of services, of packages; a checksum of the packages low or sold out
        self._versions: tuple[Any, ...] = ()
        self._lock = asyncio.Lock()
        self.text_builds = 0  # how often the text index was (re)built: for tests and the benchmark

    async def find(self, session: AsyncSession, query: Query, *, page: int, per_page: int) -> SearchResult:
        snapshot = await self.current(session)
        masks = snapshot.conditions(query)
        hits = snapshot.find(query, masks)
        if len(hits):
            start = (max(page, 1) - 1) * per_page
            return SearchResult(snapshot.cards(hits, start, start + per_page), len(hits))
        return _explain(snapshot, query, masks)

    async def current(self, session: AsyncSession) -> Snapshot:
        """The index as of the catalog now: one query of index look-ups, a rebuild when something changed."""
        versions = tuple((await session.execute(_VERSIONS)).one())
        async with self._lock:
            if self._snapshot is None or versions[:2] != self._versions[:2]:
                await self._rebuild(session, versions, await _low_stock(session))
            elif versions != self._versions:
                from store import ranking

                self._snapshot = ranking.with_stock(self._snapshot, await _low_stock(session))
                self._versions = versions
            assert self._snapshot is not None  # built above
            return self._snapshot

    async def _rebuild(self, session: AsyncSession, versions: tuple[Any, ...], low: Sequence[Any]) -> None:
        from store import ranking  # numpy and bm25s load with the first search, not at start-up

        # Read after the versions: what is read is at least that new, so nothing stale is kept.
        text_changed = self._versions[:1] != versions[:1]
        services = await _services(session) if text_changed else None
        packages = await _packages(session)
        # The build is CPU work (seconds for a large catalog): off the event loop.
        self._snapshot = await asyncio.to_thread(ranking.build, self._snapshot, services, packages, low)
        self._versions = versions
        self.text_builds += text_changed


def _explain(snapshot: Snapshot, query: Query, masks: dict[str, Any]) -> SearchResult:
    """Nothing matched: find the conditions to blame, and the nearest services without them."""
    present = [c for c in CONDITIONS if c in masks]
    blocked = tuple(c for c in present if snapshot.any_match(query, masks, without=(c,)))
    attempts = [blocked[:1]] if blocked else []
    attempts += [tuple(c for c in present if c != "keywords"), tuple(present)]
    for dropped in attempts:
        if not dropped:
            continue
        hits = snapshot.find(query, masks, without=dropped)
        if len(hits):
            cards = snapshot.cards(hits, 0, ALTERNATIVES)
            alternatives = Alternatives(dropped, relax(query, dropped), len(hits), cards)
            return SearchResult([], 0, blocked, alternatives)
    return SearchResult([], 0)


# Every change goes through SQLAlchemy, which stamps updated_at: a service added or changed (an
# import, staff), a package added, re-priced or deleted (store.models: _price_changed,
# _package_deleted); both columns are indexed, so these are two index look-ups. Stock changes with
# every order and only matters at LOW_STOCK or below (availability): a checksum over that range of
# the stock index says when to read those packages again.
_LOW = Package.stock <= LOW_STOCK
_VERSIONS = select(
    select(func.max(Service.updated_at)).scalar_subquery(),
    select(func.max(Package.updated_at)).scalar_subquery(),
    select(func.sum(Package.id * (Package.stock + 2))).where(_LOW).scalar_subquery(),
)
_LOW_STOCK = select(Package.id, Package.stock).where(_LOW).order_by(Package.id)


async def _low_stock(session: AsyncSession) -> list[tuple[int, int]]:
    return [(r.id, r.stock) for r in await session.execute(_LOW_STOCK)]


async def _services(session: AsyncSession) -> list[Any]:
    stmt = (
        select(
            Service.id,
            Service.code,
            Service.title,
            Service.platform,
            Service.category,
            Service.forms,
            Service.tags,
            Service.summary,
            Service.description,
            Service.followers,
            Service.engagement_bp,
            Service.exposure,
            Service.cover_url,
        )
        .where(Service.status == "listed")
        .order_by(Service.id)
    )
    return list((await session.execute(stmt)).all())


async def _packages(session: AsyncSession) -> list[Any]:
    stmt = select(Package.id, Package.service_id, Package.price_fen).join(
        Service, (Service.id == Package.service_id) & (Service.status == "listed")
    )
    return list((await session.execute(stmt)).all())
