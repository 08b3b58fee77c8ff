"""The same store code on SQLite and PostgreSQL: dedupe, state, group commit, migrations, Redis locks."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import StatementError

from bot import keys
from handlers import build_router
from handlers.context import Ctx
from handlers.router import Router
from settings import Settings
from store.db import make_engine, make_sessionmaker, read_session
from store.migrate import status, upgrade
from store.models import Conversation, InboundMessage, User
from tests import wechat
from tests.conftest import REDIS_URL, needs_redis, start_bot
from tests.wechat import WeChat, text_xml


async def test_migrations_reach_head_and_are_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade(engine)
        await upgrade(engine)
        current, head = await status(engine)
        assert current == head and head
    finally:
        await engine.dispose()


async def test_retries_and_many_people_on_each_backend(any_bot: TestClient) -> None:
    chat = WeChat(any_bot)
    people = [f"o_people_{i}" for i in range(40)]
    await asyncio.gather(*(chat.say(p, "帮助") for p in people))
    retry = text_xml("o_people_0", "帮助", msg_id=999_001)
    await asyncio.gather(*(chat.post(retry) for _ in range(3)))
    async with any_bot.app[keys.SESSIONMAKER]() as s:
        assert await s.scalar(select(func.count()).select_from(InboundMessage)) == 41
        assert await s.scalar(select(func.count()).select_from(User)) == 40
        user = await s.scalar(select(User).where(User.openid == "o_people_0"))
    assert user is not None and user.last_inbound_at is not None  # opens the 48-hour window


def _counter_router() -> Router:
    router = Router("probe")

    @router.text("加一")
    async def add_one(ctx: Ctx) -> None:
        n = int(ctx.state.data.get("n", 0))
        await asyncio.sleep(0.02)
        ctx.state.flow, ctx.state.step, ctx.state.data["n"] = "count", "next", n + 1
        ctx.say(str(n + 1))

    router.include(build_router())
    return router


async def _count_after(client: TestClient, openid: str) -> Any:
    async with client.app[keys.SESSIONMAKER]() as s:
        conv = await s.get(Conversation, (wechat.ACCOUNT, openid))
    return conv and (conv.flow, conv.step, conv.data["n"])


async def test_conversation_state_survives_restart(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    settings = make_settings(database_url=db_url)
    first = await start_bot(settings, _counter_router())
    await WeChat(first).say("o_restart", "加一")
    await first.close()
    second = await start_bot(settings, _counter_router())
    try:
        assert (await WeChat(second).say("o_restart", "加一")).text == "2"
        assert await _count_after(second, "o_restart") == ("count", "next", 2)
    finally:
        await second.close()


@needs_redis
async def test_two_processes_share_one_person_lock_through_redis(
    make_settings: Callable[..., Settings], redis_client: Any
) -> None:
    """Two app instances on one database (two workers): one person's messages still never race."""
    settings = make_settings(redis_url=REDIS_URL)
    a = await start_bot(settings, _counter_router())
    b = await start_bot(settings, _counter_router())
    try:
        await asyncio.gather(*(WeChat(x).say("o_two_workers", "加一") for x in (a, b, a, b, a, b)))
        assert await _count_after(a, "o_two_workers") == ("count", "next", 6)
    finally:
        await a.close()
        await b.close()


@needs_redis
async def test_redis_person_locks_wait_for_the_other_process_and_give_up_after_the_timeout(
    redis_client: Any,
) -> None:
    """Locks taken in batches still exclude: B waits while A (another process) holds the person."""
    from bot.locks import PersonLocks

    a, b = PersonLocks(redis_client, timeout=5), PersonLocks(redis_client, timeout=0.3)
    seen: list[str] = []

    async def turn(locks: PersonLocks, name: str, hold_for: float) -> None:
        async with locks.hold("gh", "o_shared"):
            seen.append(f"{name} in")
            await asyncio.sleep(hold_for)
            seen.append(f"{name} out")

    holder = asyncio.create_task(turn(a, "a", 0.5))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):  # A holds it longer than B's timeout
        await turn(b, "b", 0)
    await holder
    await asyncio.gather(*(turn(x, name, 0.01) for x, name in ((a, "a2"), (b, "b2"), (a, "a3"))))
    assert seen[:2] == ["a in", "a out"]
    assert all(seen[i].endswith(" in") and seen[i + 1].endswith(" out") for i in range(0, len(seen), 2))
    assert await redis_client.keys("chatorder:person:*") == []  # every lock given back


@needs_redis
async def test_a_lock_given_back_and_wanted_in_one_round_trip_is_taken(redis_client: Any) -> None:
    """Take-backs and takes share the script call: the give-back goes first, and only by its owner."""
    from bot.locks import _RedisLocks

    locks = _RedisLocks(redis_client, timeout=5)
    first = await locks.acquire("chatorder:person:gh:o_x")
    assert first is not None
    script, calls = locks._script, []

    async def counted(**kwargs: Any) -> Any:
        calls.append(kwargs["keys"])
        return await script(**kwargs)

    locks._script = counted
    # Another process's stale give-back (wrong token) and this process's release, then a new take,
    # all queued while no round trip runs: one call answers them in order of effect.
    stale = asyncio.create_task(locks.release("chatorder:person:gh:o_x", "someone-else"))
    mine = asyncio.create_task(locks.release("chatorder:person:gh:o_x", first))
    again = asyncio.create_task(locks.acquire("chatorder:person:gh:o_x"))
    await asyncio.wait_for(asyncio.gather(stale, mine), timeout=2)
    second = await asyncio.wait_for(again, timeout=2)
    assert second not in (None, first)
    assert len(calls) == 1  # taken at the first try, in the same call that freed it
    assert await redis_client.get("chatorder:person:gh:o_x") == second.encode()
    await locks.release("chatorder:person:gh:o_x", second)
    assert await redis_client.keys("chatorder:person:*") == []


async def test_a_lock_batch_answered_wrongly_fails_its_callers_instead_of_stranding_them() -> None:
    """Callers of one lock round trip each get an answer, or an error — never a wait without end."""
    from bot.locks import _Batch

    async def short(items: list[Any]) -> list[Any]:
        return items[:-1]  # one answer missing

    batch = _Batch(short)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(batch(n) for n in range(3)), return_exceptions=True), timeout=2
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_migrations_match_the_models(db_url: str) -> None:
    """A model changed without a migration would show up here as a difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from store.models import Base

    engine = make_engine(db_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_times_in_one_batch_come_back_as_written_in_utc(db_url: str) -> None:
    """UTCDateTime binds the last datetime once for all the columns carrying it: each row must still
    get its own times, a zone other than UTC is converted, and a naive time is refused."""
    engine = make_engine(db_url)
    shanghai = dt.timezone(dt.timedelta(hours=8))
    base = dt.datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=dt.UTC)
    rows = []
    for i in range(6):
        at = base + dt.timedelta(seconds=i)  # one object in two columns, as a turn's rows have
        later = (at + dt.timedelta(minutes=1)).astimezone(shanghai)
        rows.append(
            {
                "account": "gh_t",
                "openid": f"o_t{i}",
                "first_seen_at": at,
                "last_seen_at": at,
                "last_inbound_at": later if i % 2 else None,
            }
        )
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(insert(User), rows)
        async with engine.connect() as conn:
            got = (
                await conn.execute(
                    select(User.openid, User.first_seen_at, User.last_seen_at, User.last_inbound_at)
                    .where(User.account == "gh_t")
                    .order_by(User.openid)
                )
            ).all()
        assert [tuple(r) for r in got] == [
            (r["openid"], r["first_seen_at"], r["last_seen_at"], r["last_inbound_at"]) for r in rows
        ]
        assert all(r.first_seen_at.tzinfo == dt.UTC for r in got)
        with pytest.raises(StatementError, match="naive datetime refused"):
            async with engine.begin() as conn:
                naive = base.replace(tzinfo=None)
                await conn.execute(
                    insert(User), [{"account": "gh_t", "openid": "o_naive", "first_seen_at": naive}]
                )
    finally:
        await engine.dispose()


async def test_a_read_session_refuses_to_write_and_sees_each_new_commit(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await upgrade(engine)
        sm = make_sessionmaker(engine)
        async with read_session(sm) as reading:
            reading.add(User(account="gh_a", openid="o_reader"))
            with pytest.raises(RuntimeError, match="read session"):
                await reading.flush()
        async with read_session(sm) as reading:
            assert await reading.scalar(select(func.count()).select_from(User)) == 0
            async with sm.begin() as writing:  # committed while the read session is open
                writing.add(User(account="gh_a", openid="o_writer"))
            # Each statement of a read sees what was committed before it (READ COMMITTED, as before).
            assert await reading.scalar(select(User.openid)) == "o_writer"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_connections_the_server_dropped_are_replaced_at_checkout(pg_url: str) -> None:
    """A PostgreSQL restart or an idle-connection reaper leaves dead connections in the pool: the
    checkout's ping finds them, and reads and writes go on with new ones instead of failing."""
    engine, admin = make_engine(pg_url, pool_size=3), make_engine(pg_url)
    try:
        await upgrade(engine)
        sm = make_sessionmaker(engine)
        async with read_session(sm) as a, read_session(sm) as b:  # two pooled connections
            assert await a.scalar(select(func.count()).select_from(User)) == 0
            assert await b.scalar(select(func.count()).select_from(User)) == 0
        async with admin.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert killed and killed >= 2
        async with read_session(sm) as reading:
            assert await reading.scalar(select(func.count()).select_from(User)) == 0
        async with sm.begin() as writing:
            writing.add(User(account="gh_a", openid="o_after"))
        async with read_session(sm) as reading:
            assert await reading.scalar(select(User.openid)) == "o_after"
    finally:
        await engine.dispose()
        await admin.dispose()
