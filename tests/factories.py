"""Small builders shared by the store tests: a recording Notify and a listed package."""

from __future__ import annotations

import itertools

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import Order, Package, Service
from store.outbox import Outgoing

Maker = async_sessionmaker[AsyncSession]
_codes = itertools.count(1)


class Recorder:
    """A Notify that remembers its calls and asks for one text message per change."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None, str, str | None]] = []

    def __call__(self, order: Order, frm: str | None, to: str, reason: str | None) -> list[Outgoing]:
        self.calls.append((order.id, frm, to, reason))
        return [Outgoing("mp", order.openid, "text", {"content": f"{order.number}: {frm} → {to}"})]


async def add_package(
    sm: Maker, *, stock: int | None = None, price_fen: int = 10_000, status: str = "listed", code: str = ""
) -> int:
    """A service with one package (position 1); returns the package id."""
    async with sm.begin() as s:
        service = Service(
            code=code or f"svc{next(_codes)}",
            title="小红书美妆达人",
            platform="小红书",
            category="达人营销",
            status=status,
        )
        s.add(service)
        await s.flush()
        package = Package(
            service_id=service.id, position=1, name="1 篇图文", price_fen=price_fen, stock=stock
        )
        s.add(package)
        await s.flush()
        return package.id
