"""The shared access-token store: one contract, run on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.tokens import DbTokenStore, RedisTokenStore, TokenStore, cache_seconds
from store.db import make_engine, make_sessionmaker
from store.models import Base

PG_URL = os.environ.get("CHATORDER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHATORDER_TEST_REDIS_URL", "redis://127.0.0.1:6379")

SessionFactory = Callable[[], async_sessionmaker[AsyncSession]]


async def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    engine = make_engine(PG_URL, connect_args={"timeout": 2})
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_URL}: {exc!r}"
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def database(kind: str, tmp_path: Path) -> AsyncIterator[SessionFactory]:
    """Fresh tables; yields a factory of sessionmakers, each on its own engine (one per 'process')."""
    engines: list[AsyncEngine] = []
    if kind == "sqlite":
        url, kwargs = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}", {}
    else:
        if reason := await _pg_reachable():
            pytest.skip(reason)
        schema = f"t_{uuid.uuid4().hex[:12]}"  # a private schema: parallel runs never meet
        url, kwargs = PG_URL, {"connect_args": {"server_settings": {"search_path": schema}}, "pool_size": 5}

    def factory() -> async_sessionmaker[AsyncSession]:
        engines.append(make_engine(url, **kwargs))
        return make_sessionmaker(engines[-1])

    factory()
    async with engines[0].begin() as conn:
        if kind == "postgresql":
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield factory
    finally:
        if kind == "postgresql":
            async with engines[0].begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        for engine in engines:
            await engine.dispose()


DB_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextlib.asynccontextmanager
async def redis_client() -> AsyncIterator[Any]:
    """A Redis client, or a skip saying why there is none."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc!r}")
    try:
        yield client
    finally:
        await client.aclose()


StoreFactory = Callable[..., TokenStore]


@pytest.fixture(params=[*DB_KINDS, pytest.param("redis", marks=pytest.mark.redis)])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of TokenStore instances sharing one backend, each as if in its own process."""
    key = f"test:mp:{uuid.uuid4().hex}"
    if request.param == "redis":
        async with redis_client() as redis:
            yield lambda **kw: RedisTokenStore(redis, key, **kw)
            await redis.delete(key, f"{key}:lock")
    else:
        async with database(request.param, tmp_path) as sessionmakers:
            yield lambda **kw: DbTokenStore(sessionmakers(), key, **kw)


class Fetcher:
    """A /token stand-in that counts calls and takes a little time, so callers overlap."""

    def __init__(self, delay: float = 0.05) -> None:
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> tuple[str, int]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return f"token-{self.calls}", 7200


class TestTokenStoreContract:
    async def test_twenty_callers_in_three_processes_fetch_once(self, make_store: StoreFactory) -> None:
        stores = [make_store() for _ in range(3)]
        fetch = Fetcher()
        tokens = await asyncio.gather(*(stores[i % 3].get(fetch) for i in range(20)))
        assert fetch.calls == 1
        assert set(tokens) == {"token-1"}

    async def test_cached_token_is_reused(self, make_store: StoreFactory) -> None:
        store, fetch = make_store(), Fetcher(0)
        assert await store.get(fetch) == await make_store().get(fetch) == "token-1"
        assert fetch.calls == 1

    async def test_invalidate_only_drops_the_token_it_names(self, make_store: StoreFactory) -> None:
        store, fetch = make_store(), Fetcher(0)
        assert await store.get(fetch) == "token-1"
        await store.invalidate("token-0")  # a stale token another worker used: keep the newer one
        assert await store.get(fetch) == "token-1"
        await store.invalidate("token-1")
        assert await store.get(fetch) == "token-2"
        assert fetch.calls == 2

    async def test_failed_fetch_releases_the_lock(self, make_store: StoreFactory) -> None:
        async def broken() -> tuple[str, int]:
            raise RuntimeError("token endpoint down")

        store = make_store()
        with pytest.raises(RuntimeError):
            await store.get(broken)
        assert await make_store().get(Fetcher(0)) == "token-1"

    async def test_lock_of_a_crashed_holder_expires(self, make_store: StoreFactory) -> None:
        dead = make_store(lock_seconds=0.2)
        assert await dead._acquire("crashed-worker")  # took the lease, then died
        fetch = Fetcher(0)
        assert await make_store(lock_seconds=0.2, poll_seconds=0.02).get(fetch) == "token-1"
        assert fetch.calls == 1


def test_cache_keeps_a_safety_margin() -> None:
    assert cache_seconds(7200) == 6900
    assert cache_seconds(100) == 50
    assert cache_seconds(1) == 1
