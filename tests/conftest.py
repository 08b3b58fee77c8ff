"""Shared fixtures: settings, databases (SQLite always, PostgreSQL/Redis when reachable), the MP simulator,
and the real app served over HTTP."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.sandbox.mp_sim import MpSimulator
from handlers.router import Router
from settings import Settings, load_settings
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from tests import wechat

# Official protocol samples, kept in the repository (provenance: tests/fixtures/wechat/SOURCES.md).
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "wechat"
PG_URL = os.environ.get("CHATORDER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHATORDER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


HAVE_PG = _reachable(5432)
HAVE_REDIS = _reachable(6379)
needs_pg = pytest.mark.skipif(not HAVE_PG, reason="PostgreSQL is not running on 127.0.0.1:5432")
needs_redis = pytest.mark.skipif(not HAVE_REDIS, reason="Redis is not running on 127.0.0.1:6379")


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    if not HAVE_PG:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    from sqlalchemy import text

    name = "chatorder_t_" + uuid.uuid4().hex[:10]
    admin = make_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    await admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database on each backend, as a session factory."""
    engine = make_engine(db_url)
    await upgrade(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def lite(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated SQLite database, for logic that does not depend on the backend."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'lite.db'}")
    await upgrade(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def redis_client() -> AsyncIterator[Any]:
    if not HAVE_REDIS:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def office_settings() -> dict[str, Any]:
    """Settings of tests/test_work_chat's office beyond WeCom and WeChat Pay (a module may override it)."""
    return {}


@pytest.fixture
async def mp_sim() -> AsyncIterator[tuple[MpSimulator, str]]:
    """The MP API simulator on a real port: (simulator, api base URL)."""
    sim = MpSimulator(wechat.APP_ID, "test-secret")
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    yield sim, str(server.make_url("/cgi-bin/"))
    await server.close()


@pytest.fixture
def make_settings(tmp_path: Path, mp_sim: tuple[MpSimulator, str]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "wechat_app_id": wechat.APP_ID,
            "wechat_app_secret": "test-secret",
            "wechat_token": wechat.TOKEN,
            "wechat_aes_key": wechat.AES_KEY,
            "wechat_api_base": mp_sim[1],
            "log_format": "text",
            # Pushed results depend on the hour and the weekday (Monday summaries): a test that reads a
            # customer's next message must not get one. Tests of the pushes call them with their own clock.
            "pushes": False,
        }
        return load_settings(**(values | overrides))

    return make


async def start_bot(settings: Settings, router: Router | None = None) -> TestClient:
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    client = TestClient(TestServer(create_app(settings, router=router), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def bot(make_settings: Callable[..., Settings]) -> AsyncIterator[TestClient]:
    """The real app on a real port, SQLite, talking to the MP simulator."""
    client = await start_bot(make_settings())
    yield client
    await client.close()


@pytest.fixture
async def any_bot(make_settings: Callable[..., Settings], db_url: str) -> AsyncIterator[TestClient]:
    """The real app on each database backend."""
    client = await start_bot(make_settings(database_url=db_url))
    yield client
    await client.close()


@pytest.fixture
def chat(bot: TestClient) -> wechat.WeChat:
    return wechat.WeChat(bot)


async def eventually(check: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll until check() is truthy (background work such as the outbox)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
