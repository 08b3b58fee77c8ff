"""SharedTransactions: many short units to a commit, each told its own outcome (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.errors import DomainError
from store.models import OrderSequence
from store.writer import SharedTransactions

Maker = async_sessionmaker[AsyncSession]


def unit(day: str, *, refuse: bool = False, crash: bool = False) -> Callable[[AsyncSession], Awaitable[str]]:
    """Write one row for `day`; refuse before writing, or crash after writing."""

    async def work(session: AsyncSession) -> str:
        if refuse:
            raise DomainError("flash_sold_out")
        await session.execute(insert(OrderSequence).values(day=day, last=1))
        if crash:
            raise RuntimeError("after writing")
        return day

    return work


async def days(sm: Maker) -> list[str]:
    async with sm() as s:
        return sorted(await s.scalars(select(OrderSequence.day)))


async def test_units_at_the_same_moment_share_commits_and_each_gets_its_result(sm: Maker) -> None:
    shared = SharedTransactions(sm)
    wanted = [f"2026{n:04d}" for n in range(40)]
    results = await asyncio.gather(*(shared.run(unit(d)) for d in wanted))
    assert results == wanted and await days(sm) == wanted
    assert shared.batches < len(wanted)  # whoever waited joined the next batch


async def test_a_refusal_is_told_to_its_caller_alone(sm: Maker) -> None:
    shared = SharedTransactions(sm)
    runs = [shared.run(unit(f"2026{n:04d}", refuse=n == 3)) for n in range(8)]
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert isinstance(results[3], DomainError)
    assert await days(sm) == [f"2026{n:04d}" for n in range(8) if n != 3]
    assert shared.batches <= 2  # a refusal does not break the batch up


async def test_a_failing_unit_fails_alone_and_leaves_nothing_behind(sm: Maker) -> None:
    shared = SharedTransactions(sm)
    runs = [shared.run(unit(f"2026{n:04d}", crash=n == 5)) for n in range(8)]
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert isinstance(results[5], RuntimeError)
    assert [r for i, r in enumerate(results) if i != 5] == [f"2026{n:04d}" for n in range(8) if n != 5]
    assert await days(sm) == [f"2026{n:04d}" for n in range(8) if n != 5]  # its write undone


async def test_a_database_error_reaches_the_caller(sm: Maker) -> None:
    shared = SharedTransactions(sm)
    await shared.run(unit("20260001"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await shared.run(unit("20260001"))  # the same key again: the database refuses it
    assert await days(sm) == ["20260001"]
