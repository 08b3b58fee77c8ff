"""Engine and session factory. Nothing here runs at import time: the app's cleanup context calls it."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, bindparam, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.util import await_only

from store.sqlite_driver import OneHopDbapi

# Connections a process keeps open to PostgreSQL (CHATORDER_DATABASE_POOL_SIZE), opened as needed; a
# burst beyond them gets up to PG_POOL_OVERFLOW more, closed on return. Opening one costs far more
# than a turn (a server process forked, TLS tried, authentication): with 10 + 10, a flash rush opened
# ~250 per process; 64 turns in flight used at most ~34 at once.
PG_POOL_SIZE = 30
PG_POOL_OVERFLOW = 10


def make_engine(url: str, *, pool_size: int | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine for SQLite (WAL, durable commits, busy timeout) or PostgreSQL (asyncpg; `pool_size`
    connections kept, default PG_POOL_SIZE)."""
    parsed = make_url(url)
    # A failed statement's message (logged with its traceback) would otherwise carry its parameters:
    # people's answers, phone numbers, openids.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        kwargs["pool_size"] = pool_size or PG_POOL_SIZE
        kwargs.setdefault("max_overflow", PG_POOL_OVERFLOW)
        engine = create_async_engine(url, **kwargs)
        if parsed.get_driver_name() == "asyncpg" and "pool_pre_ping" not in kwargs:
            event.listen(engine.sync_engine, "checkout", _ping_asyncpg)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_driver_name() == "aiosqlite":  # at most one hop to the driver's thread per statement
        kwargs.setdefault("module", OneHopDbapi())
    # check_same_thread: OneHopDbapi runs reads on the event loop's thread (store.sqlite_driver).
    connect_args = {"timeout": 15, "check_same_thread": False}
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _ping_asyncpg(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Every checkout proves the connection alive (one round trip), else the pool opens another.

    `pool_pre_ping` does the same in three on asyncpg (BEGIN, the ping, ROLLBACK: SQLAlchemy wraps it
    in a transaction for PgBouncer's transaction mode, which we do not use): two more on every checkout,
    so a one-statement read took six."""
    try:
        await_only(dbapi_conn.driver_connection.fetchrow(";"))
    except Exception as exc:  # closed by the server, a restart, a network cut: this one is gone
        raise DisconnectionError(repr(exc)) from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; synchronous=FULL keeps every commit durable
    # (the group committer amortises the fsync across many messages instead of weakening it).
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.close()


def upsert_insert(bind: AsyncSession | str) -> Any:
    """The backend's INSERT, which knows ON CONFLICT (PostgreSQL's, else SQLite's): pass a session or a
    dialect name, then call it with the table."""
    name = bind if isinstance(bind, str) else bind.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


def per_dialect(build: Callable[[Callable[..., Any]], Any]) -> dict[str, Any]:
    """A statement built once for each backend's INSERT (ON CONFLICT is dialect syntax), by name."""
    return {name: build(upsert_insert(name)) for name in ("postgresql", "sqlite")}


def typed_values(table: Table, keys: Sequence[str]) -> dict[str, Any]:
    """VALUES for a statement built once and run per row: each key bound by its own name, with its
    column's type (so dates and JSON are converted as the ORM would)."""
    return {key: bindparam(key, type_=table.c[key].type) for key in keys}


def new_row_insert(table: Table, keys: Sequence[str], *, unique: str) -> dict[str, Any]:
    """Per backend (store.db.per_dialect): INSERT of `keys` that skips a row whose `unique` column is
    already taken (no row comes back then: no IntegrityError, no SAVEPOINT), RETURNING every column."""
    return per_dialect(
        lambda insert: (
            insert(table)
            .values(typed_values(table, keys))
            .on_conflict_do_nothing(index_elements=[unique])
            .returning(*table.c)
        )
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# Per sessionmaker, the same engine in AUTOCOMMIT for its reads (keyed weakly by the sessionmaker: the
# value refers to the engine, so keying by the engine would keep it alive).
_AUTOCOMMIT: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


def read_session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """A session that only reads: no autoflush (an object changed for display is never written, as
    when the read's transaction was rolled back), and an explicit flush or commit raises.

    On PostgreSQL it runs outside a transaction. Under READ COMMITTED each statement sees what was
    committed before it started either way, and a one-statement read is then two round trips (the
    checkout's ping, the SELECT) instead of four (BEGIN and ROLLBACK around it)."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    if engine.dialect.name != "postgresql":
        session = sessionmaker(autoflush=False)
    else:
        bind = _AUTOCOMMIT.get(sessionmaker)
        if bind is None:
            bind = _AUTOCOMMIT[sessionmaker] = engine.execution_options(isolation_level="AUTOCOMMIT")
        session = sessionmaker(bind=bind, autoflush=False)
    session.sync_session.info["read_only"] = True
    return session


@event.listens_for(Session, "before_flush")
def _reads_do_not_write(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get("read_only"):
        raise RuntimeError("a read session was asked to write")


_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def writing(bind: AsyncEngine | async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Around a write transaction that runs often under load (group commits, flash takes, outbox
    records): on SQLite, one of them at a time in this process. SQLite has a single writer, and a
    second one does not queue: it sleeps in SQLite's busy handler (1, 2, 5 … up to 100 ms a try),
    which during a rush turned a few milliseconds of waiting into seconds. Elsewhere, nothing."""
    engine = bind if isinstance(bind, AsyncEngine) else bind.kw["bind"]
    if engine.dialect.name != "sqlite":
        yield
        return
    lock = _WRITERS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITERS[engine.sync_engine] = asyncio.Lock()
    async with lock:
        yield


_Loaded = TypeVar("_Loaded")


def as_loaded(session: AsyncSession, model: type[_Loaded], values: Mapping[Any, Any]) -> _Loaded:
    """A row just written (every column, from RETURNING) as the session's ORM object, as if loaded:
    what INSERT/UPDATE … RETURNING an entity gives, without the ORM's DML machinery. The object is
    filled as the ORM's loader fills one, straight into its __dict__, not through the instrumented
    __init__ (an order: 4 µs against 19; no column here is mutable-tracked). When the session already
    holds that row, its object is brought up to date and returned instead."""
    obj: _Loaded = inspect(model).class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    if inspect(obj).key in session.identity_map:
        return session.sync_session.merge(obj, load=False)
    session.add(obj)
    return obj
