"""Browsing the catalog in chat: reading 筛选/排序 commands into a store Query, and showing lists."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

from flows import texts
from flows.format import count, rate, yuan
from flows.requirements import InvalidInput
from store.catalog import CATEGORIES, FORMS, PLATFORMS, Query, ServiceCard
from store.search import Alternatives

PER_PAGE = 5
SORTS = {
    "相关": "relevance",
    "相关度": "relevance",
    "默认": "relevance",
    "价格": "price",
    "价格低": "price",
    "便宜": "price",
    "价格高": "price_desc",
    "贵": "price_desc",
    "粉丝": "followers",
    "互动": "engagement",
    "互动率": "engagement",
    "曝光": "exposure",
}

_RANGE = re.compile(
    r"^(\d+(?:\.\d+)?)(万)?\s*(?:-|~|到|至)\s*(\d+(?:\.\d+)?)(万)?$|^(\d+(?:\.\d+)?)(万)?\s*(以上|以下|起)?$"
)


def _amount(number: str, wan: str | None, scale: int) -> int:
    """'1.5', '万' → 15000 × scale, exactly (no floats near money)."""
    whole, _, frac = number.partition(".")
    value = int(whole) * 100 + int((frac + "00")[:2])  # hundredths
    if wan:
        value *= 10_000
    return value * scale // 100


def _range(text: str, scale: int) -> tuple[int | None, int | None]:
    match = _RANGE.match(text.replace(" ", ""))
    if not match:
        raise InvalidInput(texts.FILTER_INVALID)
    if match.group(1):
        lo, hi = (
            _amount(match.group(1), match.group(2), scale),
            _amount(match.group(3), match.group(4), scale),
        )
        return min(lo, hi), max(lo, hi)
    value = _amount(match.group(5), match.group(6), scale)
    return (None, value) if match.group(7) == "以下" else (value, None)


def apply_filter(query: Query, argument: str) -> Query:
    """'价格 500-2000', '粉丝 1万-10万', '互动 5%', '形式 视频', '平台 小红书' → a narrower query."""
    field, _, value = argument.partition(" ")
    value = value.strip()
    if not value:
        raise InvalidInput(texts.FILTER_INVALID)
    if field in ("价格", "预算"):
        lo, hi = _range(value.replace("元", ""), 100)
        return dataclasses.replace(query, price_min_fen=lo, price_max_fen=hi)
    if field in ("粉丝", "粉丝数"):
        lo, hi = _range(value, 1)
        return dataclasses.replace(query, followers_min=lo, followers_max=hi)
    if field in ("互动", "互动率"):
        lo, _ = _range(value.rstrip("%％").replace("以上", ""), 100)
        return dataclasses.replace(query, engagement_min_bp=lo)
    if field == "形式" and value in FORMS:
        return dataclasses.replace(query, form=value)
    platform = next((p for p in PLATFORMS if p.lower() == value.lower()), None)  # b站 is B站
    if field == "平台" and platform:
        return dataclasses.replace(query, platform=platform)
    if field in ("类别", "分类") and value in CATEGORIES:
        return dataclasses.replace(query, category=value)
    raise InvalidInput(texts.FILTER_INVALID)


def sort_of(argument: str) -> str:
    sort = SORTS.get(argument.strip())
    if sort is None:
        raise InvalidInput(texts.SORT_INVALID)
    return sort


def describe(query: Query) -> str:
    """The active filters in words ('小红书 · ¥500–¥2,000 · 视频'), empty when none."""
    parts = [p for p in (query.platform, query.category, query.form, "、".join(query.tags)) if p]
    if query.price_min_fen is not None or query.price_max_fen is not None:
        parts.append(_between(query.price_min_fen, query.price_max_fen, yuan))
    if query.followers_min is not None or query.followers_max is not None:
        parts.append(_between(query.followers_min, query.followers_max, count) + "粉")
    if query.engagement_min_bp is not None:
        parts.append(f"互动 ≥{rate(query.engagement_min_bp)}")
    return " · ".join(parts)


def _between(lo: int | None, hi: int | None, show: Callable[[int], str]) -> str:
    if lo is not None and hi is not None:
        return f"{show(lo)}–{show(hi)}"
    return f"≥{show(lo)}" if lo is not None else f"≤{show(hi or 0)}"


def results(cards: list[ServiceCard], *, total: int, page: int, query: Query) -> str:
    """The numbered list of one page of results, with what can be said next."""
    pages = max(1, -(-total // PER_PAGE))
    filters = describe(query)
    head = texts.RESULTS_HEAD.format(
        total=total,
        sort=texts.SORT_NAMES[query.effective_sort],
        filters=(f"，筛选：{filters}" if filters else "")
        + (texts.RESULTS_PAGE.format(page=page, pages=pages) if pages > 1 else ""),
    )
    lines = _lines(cards)
    foot = texts.RESULTS_FOOT.format(more=texts.RESULTS_MORE if page < pages else "")
    return head + "\n".join(lines) + foot


def nearest(query: Query, found: Alternatives, blocked_by: Sequence[str]) -> str:
    """Nothing matched `query`: what did it, and the nearest services once it is let go."""
    lines = "\n".join(_lines(found.cards))
    if "keywords" in found.dropped:  # nothing has the words: show what there is (within what is left)
        filters = describe(found.query)
        where = texts.NO_RESULTS_WORDS_WHERE.format(filters=filters) if filters else ""
        return texts.NO_RESULTS_WORDS.format(words=" ".join(query.keywords), where=where, lines=lines)
    others = [texts.RELAX_WAYS[c] for c in blocked_by if c not in found.dropped]
    return texts.NO_RESULTS_BLOCKED.format(
        conditions=" · ".join(p for p in (" ".join(query.keywords), describe(query)) if p),
        relaxed="、".join(texts.RELAX_WAYS[c] for c in found.dropped),
        lines=lines,
        others=texts.NO_RESULTS_OTHERS.format(ways="、".join(others)) if others else "",
    )


def _lines(cards: Sequence[ServiceCard]) -> list[str]:
    return [_line(i, card) for i, card in enumerate(cards, start=1)]


def _line(n: int, card: ServiceCard) -> str:
    price = yuan(card.min_price_fen)
    if card.followers is None:
        return texts.RESULTS_LINE_NO_METRICS.format(
            n=n,
            title=card.title,
            platform=card.platform,
            category=card.category,
            price=price,
            availability=card.availability,
        )
    return texts.RESULTS_LINE.format(
        n=n,
        title=card.title,
        platform=card.platform,
        followers=count(card.followers),
        engagement=rate(card.engagement_bp),
        price=price,
        availability=card.availability,
    )
