"""What one inbound message reads and writes: the dedupe record, the person, the conversation state.

Reads happen in one round trip; writes are returned as data for the group writer, so a turn's
changes land atomically and share their commit with other people's turns.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.db import upsert_insert
from store.models import Conversation, InboundMessage, Order, OutboxMessage, User
from store.orders import OPEN_STATUSES
from store.outbox import Outgoing
from store.writer import Write


@dataclass(slots=True)
class FlowState:
    """The step a person is on. Empty flow = not in a conversation flow."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> FlowState:
        """A deep copy: handlers change nested data, and the original must show what was loaded."""
        return FlowState(self.flow, self.step, copy.deepcopy(self.data) if self.data else {})


@dataclass(slots=True)
class Snapshot:
    seen: bool  # this exact message was already handled (a WeChat retry)
    reply_xml: str | None  # the answer given then, to give again
    known_user: bool
    subscribed: bool
    state: FlowState
    # Any paid or refunding order (store.orders.OPEN_STATUSES): only then does 人工 look them up.
    # One index probe inside this read, where a look-up of its own was most of such a turn's CPU.
    has_open_orders: bool = False
    last_inbound_at: dt.datetime | None = None  # when the person's previous message was recorded
    # The state's stored JSON and its parser: the handler's copy is parsed again from it (a third of
    # a deep copy's time); None when the driver gave a decoded value.
    stored: tuple[Callable[[str], Any], str] | None = None

    def fresh_state(self) -> FlowState:
        """A copy of `state` for the turn to change: `state` must keep showing what was loaded."""
        if self.stored is None:
            return self.state.copy()
        parse, text = self.stored
        return FlowState(self.state.flow, self.state.step, parse(text) or {})


def _load_statement() -> Select[Any]:
    """The one read of a turn, built once: SQLAlchemy memoizes its cache key and caches its compiled
    form per dialect, so a turn pays neither construction nor compilation (they were most of its CPU)."""
    account: BindParameter[str] = bindparam("account")
    openid: BindParameter[str] = bindparam("openid")
    msg_key: BindParameter[str] = bindparam("msg_key")
    inbound = (
        select(literal(1).label("seen"), InboundMessage.reply_xml)
        .where(
            InboundMessage.account == account,
            InboundMessage.sender == openid,
            InboundMessage.msg_key == msg_key,
        )
        .subquery()
    )
    user = (
        select(User.subscribed, User.last_inbound_at)
        .where(User.account == account, User.openid == openid)
        .subquery()
    )
    conv = (
        select(Conversation.flow, Conversation.step, Conversation.data)
        .where(Conversation.account == account, Conversation.openid == openid)
        .subquery()
    )
    open_order = (
        select(literal(1))
        .where(
            Order.account == account,
            Order.openid == openid,
            # Literals, not an expanding IN: the statement stays compiled once.
            Order.status.in_([literal(s) for s in sorted(OPEN_STATUSES)]),
        )
        .limit(1)
    )
    return select(
        select(inbound.c.seen).scalar_subquery(),
        select(inbound.c.reply_xml).scalar_subquery(),
        select(user.c.subscribed).scalar_subquery(),
        select(conv.c.flow).scalar_subquery(),
        select(conv.c.step).scalar_subquery(),
        select(conv.c.data).scalar_subquery(),
        open_order.scalar_subquery(),
        select(user.c.last_inbound_at).scalar_subquery(),
    )


_LOAD = _load_statement()
# dialect name -> the result processors (or None) of the state's JSON and of users.last_inbound_at
_RESULT: dict[str, tuple[Any, Any]] = {}


async def load(conn: AsyncConnection, *, account: str, openid: str, msg_key: str) -> Snapshot:
    """Everything a turn needs to start, in one query."""
    params = {"account": account, "openid": openid, "msg_key": msg_key}
    row = (await conn.execute(_LOAD, params)).one()
    return _snapshot(row, conn.dialect)


def _snapshot(row: Any, dialect: Any) -> Snapshot:
    try:
        data, when = _RESULT[dialect.name]
    except KeyError:
        data, when = _RESULT[dialect.name] = (
            Conversation.__table__.c.data.type.result_processor(dialect, None),
            User.__table__.c.last_inbound_at.type.dialect_impl(dialect).result_processor(dialect, None),
        )
    stored = (data, row[5]) if data and isinstance(row[5], str) else None
    state_data = (data(row[5]) if stored else row[5]) or {}
    return Snapshot(
        seen=row[0] is not None,
        reply_xml=row[1],
        known_user=row[2] is not None,
        subscribed=bool(row[2]) if row[2] is not None else True,
        state=FlowState(row[3], row[4], state_data),
        has_open_orders=row[6] is not None,
        last_inbound_at=when(row[7]) if when else row[7],
        stored=stored,
    )


def _snapshot_columns() -> str:
    """`load`'s columns for the row of keys `k` (account, openid, msg_key), as correlated subqueries."""
    # Declarative types __table__ as any FromClause; these models are plain tables.
    m, u, c, o = (cast(Table, model.__table__) for model in (InboundMessage, User, Conversation, Order))
    person_u = f"u.{u.c.account.name} = k.account AND u.{u.c.openid.name} = k.openid"
    person_c = f"c.{c.c.account.name} = k.account AND c.{c.c.openid.name} = k.openid"
    message = (
        f"m.{m.c.account.name} = k.account AND m.{m.c.sender.name} = k.openid"
        f" AND m.{m.c.msg_key.name} = k.msg_key"
    )
    person_o = f"o.{o.c.account.name} = k.account AND o.{o.c.openid.name} = k.openid"
    open_statuses = ", ".join("'" + s.replace("'", "''") + "'" for s in sorted(OPEN_STATUSES))
    return (
        f"k.i,"
        f" (SELECT 1 FROM {m.name} m WHERE {message}),"
        f" (SELECT m.{m.c.reply_xml.name} FROM {m.name} m WHERE {message}),"
        f" (SELECT u.{u.c.subscribed.name} FROM {u.name} u WHERE {person_u}),"
        f" (SELECT c.{c.c.flow.name} FROM {c.name} c WHERE {person_c}),"
        f" (SELECT c.{c.c.step.name} FROM {c.name} c WHERE {person_c}),"
        f" (SELECT c.{c.c.data.name} FROM {c.name} c WHERE {person_c}),"
        f" (SELECT 1 FROM {o.name} o WHERE {person_o} AND o.{o.c.status.name} IN ({open_statuses}) LIMIT 1),"
        f" (SELECT u.{u.c.last_inbound_at.name} FROM {u.name} u WHERE {person_u})"
    )


def _batch_sql(n: int) -> str:
    """`load` for n turns in one SQLite statement: row i answers the i-th (account, openid, msg_key)."""
    keys = ", ".join(["(?, ?, ?, ?)"] * n)
    # One row holding a JSON array of rows: the driver fetches a single row, so it takes the GIL back
    # once per read rather than once per turn (each of those waits for the busy event loop to yield it).
    return (
        f"WITH k(i, account, openid, msg_key) AS (VALUES {keys})"
        f" SELECT json_group_array(json_array({_snapshot_columns()})) FROM k"
    )


# The same for PostgreSQL (asyncpg): one statement text for every batch size (arrays, not n rows of
# parameters), so asyncpg prepares it once per connection.
_PG_BATCH_SQL = (
    f"SELECT {_snapshot_columns()} FROM unnest($1::text[], $2::text[], $3::text[])"
    f" WITH ORDINALITY AS k(account, openid, msg_key, i)"
)


class TurnReader:
    """Runs `load` for the pipeline.

    On SQLite and PostgreSQL, reads are grouped like the writes: the turns that want a snapshot while a
    read is under way wait for the next one, and each read answers all of them with one statement
    (`_batch_sql`, `_PG_BATCH_SQL`) on a connection of the reader's own, through the driver itself.
    On SQLite a turn pays a fraction of one hop to the driver's thread, where a pooled SQLAlchemy
    execute takes five (cursor, execute, fetch, close, reset on return) and each hop is a thread
    switch; on PostgreSQL a fraction of one round trip, where a pooled read took three (pre-ping,
    SELECT, rollback) and 64 turns in flight kept opening overflow connections. The SELECT runs
    outside any transaction (aiosqlite only opens one for DML; asyncpg used directly autocommits), so
    each read sees everything committed before it started, exactly like a fresh pooled connection; a
    turn's read always starts after it asked (and so after the previous turn of that person
    committed). Other drivers use `load`.
    """

    MAX_BATCH = 64

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        driver = (engine.dialect.name, engine.dialect.driver)
        self._sqlite = driver == ("sqlite", "aiosqlite")
        self._postgres = driver == ("postgresql", "asyncpg")
        self._conn: AsyncConnection | None = None
        self._driver: Any = None
        self._sql: dict[int, str] = {}
        self._queue: list[tuple[tuple[str, str, str], asyncio.Future[Snapshot]]] = []
        self._task: asyncio.Task[None] | None = None

    async def load(self, *, account: str, openid: str, msg_key: str) -> Snapshot:
        if not (self._sqlite or self._postgres):
            async with self._engine.connect() as conn:
                return await load(conn, account=account, openid=openid, msg_key=msg_key)
        fut: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self._queue.append(((account, openid, msg_key), fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="turn-reader")
        return await fut  # a cancelled caller cancels `fut`; the batch then skips it

    async def _run(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.MAX_BATCH], self._queue[self.MAX_BATCH :]
            try:
                rows = await self._read([key for key, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            except BaseException:
                for _, fut in batch:
                    fut.cancel()
                raise
            dialect = self._engine.dialect
            for row in rows:
                fut = batch[row[0]][1]
                if fut.done():
                    continue
                try:
                    fut.set_result(_snapshot(row[1:], dialect))
                except Exception as exc:  # one unreadable row fails its turn, not the batch's others
                    fut.set_exception(exc)
            for _, fut in batch:
                if not fut.done():  # cannot happen: one row per key
                    fut.set_exception(RuntimeError("turn snapshot missing from its batch"))

    async def _read(self, keys: list[tuple[str, str, str]]) -> list[Any]:
        """One row per key: (index into keys, then `load`'s columns)."""
        if self._driver is None:
            conn = await self._engine.connect()
            self._conn, self._driver = conn, (await conn.get_raw_connection()).driver_connection
        if self._postgres:
            accounts, openids, msg_keys = (list(column) for column in zip(*keys, strict=True))
            rows = await self._driver.fetch(_PG_BATCH_SQL, accounts, openids, msg_keys)
            return [(row[0] - 1, *row[1:]) for row in rows]  # ORDINALITY counts from 1
        n = len(keys)
        sql = self._sql.get(n) or self._sql.setdefault(n, _batch_sql(n))
        params = [v for i, key in enumerate(keys) for v in (i, *key)]
        return list(json.loads((await self._driver.execute_fetchall(sql, params))[0][0]))

    async def close(self) -> None:
        """Give the connection back (before the engine is disposed); a later load opens it again."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            await conn.close()


class TurnStatements:
    """Statements built once per dialect and reused, so the group writer can batch them."""

    def __init__(self, dialect: str) -> None:
        dialect_insert = upsert_insert(dialect)
        inbound = dialect_insert(InboundMessage).on_conflict_do_nothing(
            index_elements=["account", "sender", "msg_key"]
        )
        user = dialect_insert(User)
        user = user.on_conflict_do_update(
            index_elements=["account", "openid"],
            set_={
                "last_seen_at": user.excluded.last_seen_at,
                "last_inbound_at": user.excluded.last_inbound_at,
                "subscribed": user.excluded.subscribed,
            },
        )
        conv = dialect_insert(Conversation)
        conv = conv.on_conflict_do_update(
            index_elements=["account", "openid"],
            set_={
                "flow": conv.excluded.flow,
                "step": conv.excluded.step,
                "data": conv.excluded.data,
                "version": Conversation.version + 1,
                "updated_at": conv.excluded.updated_at,
            },
        )
        self.inbound: Insert = inbound
        self.user: Insert = user
        self.conversation: Insert = conv
        self.outbox: Insert = insert(OutboxMessage)
        self.forget_reply: Update = (
            update(InboundMessage)
            .where(
                InboundMessage.account == bindparam("b_account"),
                InboundMessage.sender == bindparam("b_sender"),
                InboundMessage.msg_key == bindparam("b_msg_key"),
            )
            .values(reply_xml=None)
        )


# A person's users row (last_seen_at, last_inbound_at) is rewritten at most this often while they chat:
# the 48-hour window for customer-service messages then ends up to this much early, never late.
USER_TOUCH_EVERY = dt.timedelta(seconds=60)


def touches_user(snap: Snapshot, *, subscribed: bool, at: dt.datetime) -> bool:
    """Whether a turn writes the person's users row (new person, subscription changed, or due)."""
    last = snap.last_inbound_at
    return (
        not snap.known_user or subscribed != snap.subscribed or last is None or at - last >= USER_TOUCH_EVERY
    )


@dataclass(slots=True)
class TurnRecord:
    """What a finished turn persists."""

    account: str
    openid: str
    msg_key: str
    msg_type: str
    content: str | None
    at: dt.datetime
    subscribed: bool
    # Whether the users row is written: False when the person is known, their subscription unchanged
    # and their last message recorded less than USER_TOUCH_EVERY ago (see `touches_user`).
    touch_user: bool = True
    reply_xml: str | None = None
    state: FlowState | None = None  # None = unchanged
    outbox: list[Outgoing] = field(default_factory=list)


def writes(stmts: TurnStatements, rec: TurnRecord) -> list[Write]:
    """The rows of one turn, for the group writer."""
    out: list[Write] = [
        (
            stmts.inbound,
            {
                "account": rec.account,
                "sender": rec.openid,
                "msg_key": rec.msg_key,
                "msg_type": rec.msg_type,
                "content": rec.content,
                "received_at": rec.at,
                "reply_xml": rec.reply_xml,
            },
        ),
    ]
    if rec.touch_user:
        out.append(
            (
                stmts.user,
                {
                    "account": rec.account,
                    "openid": rec.openid,
                    "first_seen_at": rec.at,
                    "last_seen_at": rec.at,
                    "last_inbound_at": rec.at,
                    "subscribed": rec.subscribed,
                },
            )
        )
    if rec.state is not None:
        s = rec.state
        out.append(
            (
                stmts.conversation,
                {
                    "account": rec.account,
                    "openid": rec.openid,
                    "flow": s.flow,
                    "step": s.step,
                    "data": s.data,
                    "version": 0,
                    "updated_at": rec.at,
                },
            )
        )
    out.extend((stmts.outbox, {**m.row(), "status": "pending", "attempts": 0}) for m in rec.outbox)
    return out


def reply_went_by_api(stmts: TurnStatements, rec: TurnRecord, messages: list[Outgoing]) -> list[Write]:
    """The passive reply came too late: send it by API, and let a retry get `success`, not a copy."""
    key = {"b_account": rec.account, "b_sender": rec.openid, "b_msg_key": rec.msg_key}
    out: list[Write] = [(stmts.forget_reply, key)]
    out.extend((stmts.outbox, {**m.row(), "status": "pending", "attempts": 0}) for m in messages)
    return out
