"""The SQLite driver (store.sqlite_driver): reads run on the event loop, a transaction's first write and
its commit on the driver's thread — so a writer waiting for SQLite's lock never stops the loop that
the lock's holder needs to commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import make_engine, make_sessionmaker


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _count(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as session:
        return int(await session.scalar(text("SELECT count(*) FROM notes")) or 0)


async def test_a_writer_waiting_for_the_lock_leaves_the_loop_to_the_lock_holder(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as first:
        await first.execute(text("INSERT INTO notes (body) VALUES ('first')"))  # holds the write lock now
        assert await _count(sessions) == 0  # a read neither waits for it nor sees the uncommitted row

        async def second_writer() -> None:
            async with sessions.begin() as second:
                await second.execute(text("INSERT INTO notes (body) VALUES ('second')"))
                await second.execute(text("UPDATE notes SET body = body || '!' WHERE body = 'second'"))

        waiting = asyncio.create_task(second_writer())
        await asyncio.sleep(0.05)  # the second writer is now waiting for the lock
        assert not waiting.done()  # (had it waited on the loop, it would have failed with "locked")
        await first.commit()  # ... which needs this loop: it must be free
        await asyncio.wait_for(waiting, 10)
    async with sessions() as session:
        bodies = (await session.scalars(text("SELECT body FROM notes ORDER BY id"))).all()
    assert bodies == ["first", "second!"]


async def test_statements_after_a_transactions_first_write_see_its_own_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await session.execute(text("INSERT INTO notes (body) VALUES ('a')"))
        await session.execute(text("INSERT INTO notes (body) VALUES ('b')"))  # runs on the loop
        assert await session.scalar(text("SELECT count(*) FROM notes")) == 2
        assert await _count(sessions) == 0  # not committed yet: others do not see them
    assert await _count(sessions) == 2


async def test_a_failed_read_on_the_loop_is_the_usual_database_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from sqlalchemy.exc import OperationalError

    async with sessions() as session:
        with pytest.raises(OperationalError, match="no such table"):
            await session.execute(text("SELECT * FROM missing"))
        assert await session.scalar(text("SELECT count(*) FROM notes")) == 0  # the session still works
