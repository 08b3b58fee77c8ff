"""Ranked search over the listed catalog, held in process and kept in step with the database.

`SearchIndex` lives on the app (one per process). Before each search it reads a cheap version of the
catalog (count and latest change of services; count and a checksum of package prices and stock) and
rebuilds what changed: the text index when a service changed, the package table when only prices or
stock did (an order). So every process follows an import made by any other, with no signal between
them and nothing in the import code. The index is built on the first search, not at start-up.

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

from store.catalog import Query, ServiceCard
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
        # services (any change), package names (shown in the text index), package prices and stock
        self._versions: tuple[tuple[Any, ...], ...] | None = None
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
        """The index as of the catalog now (one version read; a rebuild when something changed)."""
        versions = (await _services_version(session), *await _packages_version(session))
        async with self._lock:
            if self._snapshot is not None and versions == self._versions:
                return self._snapshot
            from store import ranking  # numpy and bm25s load with the first search, not at start-up

            # Read after the version: what is read is at least that new, so nothing stale is kept.
            services = await _services(session) if self._services_changed(versions) else None
            packages = await _packages(session)
            if services is not None:
                services = _with_package_names(services, packages)
            self._snapshot = await asyncio.to_thread(ranking.build, self._snapshot, services, packages)
            self._versions = versions
            self.text_builds += services is not None
            return self._snapshot

    def _services_changed(self, versions: tuple[tuple[Any, ...], ...]) -> bool:
        """Whether the text index is out of date (a service, or a package's name, changed)."""
        return self._snapshot is None or self._versions is None or self._versions[:2] != versions[:2]


def _explain(snapshot: Snapshot, query: Query, masks: dict[str, Any]) -> SearchResult:
    """Nothing matched: find the conditions to blame, and the nearest services without them."""
    present = [c for c in CONDITIONS if c in masks]
    blocked = tuple(c for c in present if len(snapshot.find(query, masks, without=(c,))))
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


def _with_package_names(services: list[Any], packages: list[Any]) -> list[dict[str, Any]]:
    """Service rows as dicts, with their packages' names (直播 1 场 finds a live-stream offer)."""
    names: dict[int, list[str]] = {}
    for package in packages:
        names.setdefault(package.service_id, []).append(package.name)
    return [dict(row._mapping, packages=" ".join(names.get(row.id, ()))) for row in services]


async def _services_version(session: AsyncSession) -> tuple[Any, ...]:
    stmt = select(func.count(Service.id), func.max(Service.id), func.max(Service.updated_at))
    return tuple((await session.execute(stmt)).one())


async def _packages_version(session: AsyncSession) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Packages have no updated_at: count and checksums of their names (indexed as text), and of
    prices and stock (an import or an order changes them)."""
    weight = Package.id % 1009 + 1  # position-dependent, so two changes rarely cancel out
    stmt = select(
        func.count(Package.id),
        func.max(Package.id),
        func.sum(func.length(Package.name) * weight),
        func.sum(Package.price_fen % 1_000_003 * weight),
        func.sum((func.coalesce(Package.stock, -1) + 2) * weight),
    )
    row = tuple((await session.execute(stmt)).one())
    return row[:3], row[3:]


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
    stmt = select(Package.service_id, Package.price_fen, Package.stock, Package.name).join(
        Service, (Service.id == Package.service_id) & (Service.status == "listed")
    )
    return list((await session.execute(stmt)).all())
