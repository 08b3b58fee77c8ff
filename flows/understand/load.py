"""Where the vocabulary comes from: the listed services in the database, or the packaged demo catalog.

Kept apart from understand() so that the understanding step itself stays pure (no I/O).
"""

from __future__ import annotations

from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog_import import DEMO_CATALOG, parse_catalog
from store.models import Service

from .vocab import Vocabulary


async def load_vocabulary(session: AsyncSession) -> Vocabulary:
    """The vocabulary of the listed services; rebuild it when the catalog changes (imports)."""
    services = (await session.scalars(select(Service).where(Service.status == "listed"))).all()
    return Vocabulary.build(services)


def demo_vocabulary() -> Vocabulary:
    """The vocabulary of the packaged demo catalog (tests, the labelled set, the benchmark)."""
    text = resources.files("store").joinpath(DEMO_CATALOG).read_text(encoding="utf-8")
    specs, errors = parse_catalog(text, "yaml")
    if errors:
        raise ValueError("the packaged demo catalog is broken: " + "; ".join(map(str, errors)))
    return Vocabulary.build(s for s in specs if s.status == "listed")
