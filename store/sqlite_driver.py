"""SQLAlchemy's aiosqlite adapter with one trip to the driver's thread per statement instead of four.

SQLAlchemy runs a statement on aiosqlite as four hand-offs to aiosqlite's thread: create a cursor,
execute, fetch all rows, close the cursor. Each is a thread switch through the GIL, and on the
ordering benchmark these switches were a fifth of the server's CPU. Here a statement is one function
run on that thread (cursor, execute, fetch, close: the same sqlite3 calls, in the same order) whose
results SQLAlchemy then reads from memory, as it does already (it always fetches everything up front).

A statement that cannot wait for another writer's lock (see `_cannot_wait`) skips even that hop and
runs on the event loop's thread: the connection is opened with check_same_thread=False, and
SQLAlchemy never runs two operations on one connection at once (each is awaited, under the adapter's
`_execute_mutex`), so the sqlite3 connection is still used by one thread at a time.

Used by `store.db.make_engine` for `sqlite+aiosqlite` URLs through create_engine's `module=` (the
DBAPI object), so the dialect, its SQL and its type handling are SQLAlchemy's own, unchanged. A
rollback with no transaction open (after a session that only read) is skipped instead of sent.
It relies on what SQLAlchemy's adapter itself relies on in aiosqlite: `Connection._execute(fn, ...)`
(run fn on the connection's thread) and `Connection._conn` / `_connection` (the sqlite3 connection).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Outcome = tuple[Any, list[Any], int, int | None]  # description, rows, rowcount, lastrowid


def _execute(conn: Any, operation: str, parameters: Any) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.execute(operation, () if parameters is None else parameters)
        return _outcome(cursor)
    finally:
        cursor.close()


def _executemany(conn: Any, operation: str, seq_of_parameters: Sequence[Any]) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq_of_parameters)
        return _outcome(cursor)
    finally:
        cursor.close()


def _outcome(cursor: Any) -> _Outcome:
    description = cursor.description
    rows = cursor.fetchall() if description else []
    return description, rows, cursor.rowcount, cursor.lastrowid


def _cannot_wait(conn: Any, operation: str) -> bool:
    """Whether the statement can run right here, on the event loop, instead of on the driver's thread.

    Only what never waits for another writer: a SELECT (in WAL mode readers take no lock a writer
    holds), or any statement in a transaction that has already written (it holds SQLite's write lock
    until its commit). Such a statement takes microseconds, and the trip to the thread and back cost
    ~45 µs of CPU by itself. A transaction's first write may wait for another writer's lock (in
    SQLite's busy handler, sleeping) and a commit syncs to disk: both still go to the thread, so the
    loop never sleeps on a lock held by one of its own coroutines."""
    return conn.in_transaction or operation[:6].upper() == "SELECT"


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement runs in one hop; rows, description and counts are kept."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: nothing to open or close
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1  # sqlite3's default; the rows are in memory already

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        """Accepted and ignored: rows are fetched whole, so a batch size changes nothing (DB-API asks
        that it be settable)."""

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(_execute, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            return await_(self._run(_executemany, operation, seq_of_parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, fn: Callable[[Any, str, Any], _Outcome], operation: str, parameters: Any) -> None:
        conn: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            raw = conn._conn
            if _cannot_wait(raw, operation):
                outcome = fn(raw, operation, parameters)
            else:
                outcome = await conn._execute(fn, raw, operation, parameters)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        return None

    def close(self) -> None:
        self._rows.clear()


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneHopCursor

    def rollback(self) -> None:
        # A session that only read has nothing to roll back (sqlite3 opens a transaction for DML only),
        # yet closing it and returning its connection to the pool each asked for one: two hops per read.
        raw = self._connection._connection
        if raw is not None and not raw.in_transaction:
            return
        super().rollback()


class OneHopDbapi(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self) -> None:
        import sqlite3

        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        connection = super().connect(*arg, **kw)
        connection.__class__ = _Connection  # same layout; only the cursor class differs
        return connection
