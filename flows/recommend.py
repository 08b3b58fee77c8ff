"""「猜你喜欢」 as people read it: a numbered list (numbers open the service), or bullets in a notice."""

from __future__ import annotations

from flows import texts
from flows.format import yuan
from store.catalog import ServiceCard


def numbered(cards: list[ServiceCard]) -> str:
    lines = [
        texts.RECOMMEND_LINE.format(
            n=n, title=c.title, platform=c.platform, price=yuan(c.min_price_fen), availability=c.availability
        )
        for n, c in enumerate(cards, start=1)
    ]
    return "\n".join(lines)


def bullets(cards: list[ServiceCard]) -> str:
    return "\n".join(
        texts.RECOMMEND_BULLET.format(title=c.title, platform=c.platform, price=yuan(c.min_price_fen))
        for c in cards
    )
