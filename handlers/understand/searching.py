"""A search from what a message said: the catalog query it names, and that query in words."""

from __future__ import annotations

import dataclasses
from typing import Any

from flows.browse import describe
from flows.understand.types import Slots
from handlers.context import Ctx
from store import catalog as store_catalog
from store.catalog import Query

SEARCH_SLOTS = (
    "platform",
    "category",
    "tags",
    "keywords",
    "form",
    "price_min_fen",
    "price_max_fen",
    "followers_min",
    "followers_max",
)


def search_words(slots: Slots) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*slots.tags, *slots.keywords)))


def has_search(slots: Slots) -> bool:
    return bool(
        slots.platform
        or slots.category
        or slots.tags
        or slots.keywords
        or slots.form
        or slots.price_min_fen is not None
        or slots.price_max_fen is not None
        or slots.followers_min is not None
        or slots.followers_max is not None
    )


def last_query(ctx: Ctx) -> Query:
    saved = ctx.state.data.get("browse", {}).get("query")
    return Query.from_dict(saved) if saved else Query()


def query_of(slots: Slots) -> Query:
    """A fresh search from what the message said."""
    return narrowed(Query(), slots, keep_words=False)


def narrowed(query: Query, slots: Slots, *, keep_words: bool) -> Query:
    """`query` with every condition the message named replaced by the named one."""
    changes: dict[str, Any] = {}
    if slots.tags or slots.keywords or not keep_words:
        changes.update(tags=slots.tags, keywords=slots.keywords)  # ranked by the search, not all required
    for name in ("platform", "category", "form"):
        value = getattr(slots, name)
        if value and (name != "platform" or value in store_catalog.PLATFORMS):
            changes[name] = value
    # A budget or a follower range said again replaces the old one whole: 「3000以内的」 after
    # 「2万左右」 is ≤ ¥3,000, not ¥16,000–¥3,000.
    for low, high in (("price_min_fen", "price_max_fen"), ("followers_min", "followers_max")):
        if getattr(slots, low) is not None or getattr(slots, high) is not None:
            changes.update({low: getattr(slots, low), high: getattr(slots, high)})
    if slots.sort in store_catalog.SORTS:
        changes["sort"] = slots.sort
    return dataclasses.replace(query, **changes)


def search_label(slots: Slots) -> str:
    """「小红书 · 达人营销 · ≤¥3,000 · 美食」: the conditions of a search in words."""
    search = dataclasses.replace(Slots(), **{k: getattr(slots, k) for k in SEARCH_SLOTS})
    return " · ".join(p for p in (describe(query_of(search)), *search_words(search)) if p)
