"""Engine and session factory. Nothing here runs at import time: the app's cleanup context calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from store.sqlite_driver import OneHopDbapi


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for SQLite (WAL, durable commits, busy timeout) or PostgreSQL (asyncpg)."""
    parsed = make_url(url)
    # A failed statement's message (logged with its traceback) would otherwise carry its parameters:
    # people's answers, phone numbers, openids.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_driver_name() == "aiosqlite":  # one hop to the driver's thread per statement
        kwargs.setdefault("module", OneHopDbapi())
    engine = create_async_engine(url, connect_args={"timeout": 15}, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; synchronous=FULL keeps every commit durable
    # (the group committer amortises the fsync across many messages instead of weakening it).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
