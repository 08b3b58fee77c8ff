"""Where the vocabulary comes from: the listed services in the database, or the packaged demo catalog.

Kept apart from understand() so that the understanding step itself stays pure (no I/O).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog_import import DEMO_CATALOG, parse_catalog
from store.models import Service

from .vocab import Vocabulary


@dataclass(frozen=True, slots=True)
class _Words:
    title: str
    platform: str
    category: str
    forms: tuple[str, ...]
    tags: tuple[str, ...]


async def load_vocabulary(session: AsyncSession) -> Vocabulary:
    """The vocabulary of the listed services; rebuild it when the catalog changes (imports).

    Built in a worker thread: a few ms for the demo catalog, about half a second for 10,000
    services, which the event loop should not wait for."""
    rows = await session.execute(
        select(Service.title, Service.platform, Service.category, Service.forms, Service.tags).where(
            Service.status == "listed"
        )
    )
    services = [_Words(t, p, c, tuple(f or ()), tuple(g or ())) for t, p, c, f, g in rows]
    return await asyncio.to_thread(Vocabulary.build, services)


def demo_vocabulary() -> Vocabulary:
    """The vocabulary of the packaged demo catalog (tests, the labelled set, the benchmark)."""
    text = resources.files("store").joinpath(DEMO_CATALOG).read_text(encoding="utf-8")
    specs, errors = parse_catalog(text, "yaml")
    if errors:
        raise ValueError("the packaged demo catalog is broken: " + "; ".join(map(str, errors)))
    return Vocabulary.build(s for s in specs if s.status == "listed")
