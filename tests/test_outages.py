"""Nothing accepted is lost when Redis or the database fail: a real Redis of the test's own is killed
mid-load; a database read fails once.

Each message of a person adds one to a counter in their conversation state, so the final counter
says exactly how many messages were handled: fewer is a loss, more a double.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from handlers.context import Ctx
from handlers.router import Router
from settings import Settings
from store.models import Conversation, InboundMessage
from tests import wechat
from tests.conftest import eventually, start_bot
from tests.wechat import WeChat, text_xml

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PEOPLE, MESSAGES = 12, 8


def _free_port() -> int:
    """A free port in CHATORDER_TEST_PORTS (e.g. 18500-18599; an OS-chosen one when unset)."""
    low, _, high = os.environ.get("CHATORDER_TEST_PORTS", "").partition("-")
    for port in range(int(low), int(high) + 1) if low and high else [0]:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port for redis-server")


class OwnRedis:
    """A throwaway redis-server on a free port, which the test may kill and start again."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL, as a crash: no goodbye to the clients
            self.proc.wait()
            self.proc = None


@contextmanager
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
def redis_server() -> Iterator[OwnRedis]:
    with own_redis() as redis:
        yield redis


def counting_router() -> Router:
    router = Router("count")

    @router.text("加一")
    async def add_one(ctx: Ctx) -> None:
        n = int(ctx.state.data.get("n", 0))
        await asyncio.sleep(0.02)  # a turn holds the person's lock for a while: Redis dies under it
        ctx.state.data["n"] = n + 1
        ctx.say(str(n + 1))

    return router


@pytest.fixture
async def counting_bot(
    make_settings: Callable[..., Settings], db_url: str, redis_server: OwnRedis
) -> AsyncIterator[TestClient]:
    client = await start_bot(
        make_settings(database_url=db_url, redis_url=redis_server.url), counting_router()
    )
    yield client
    await client.close()


async def deliver(chat: WeChat, xml: str) -> int:
    """Post as WeChat does: the same message again while the answer is not a 200 (3 retries)."""
    status = 0
    for attempt in range(4):
        status = (await chat.post(xml)).status
        if status == 200:
            break
        await asyncio.sleep(0.2 * (attempt + 1))
    return status


async def test_redis_killed_mid_load_loses_and_doubles_nothing(
    counting_bot: TestClient, redis_server: OwnRedis
) -> None:
    chat = WeChat(counting_bot)
    msg_ids = iter(range(880_000_000, 881_000_000))

    async def person(i: int) -> list[int]:
        statuses = []
        for _ in range(MESSAGES):
            statuses.append(await deliver(chat, text_xml(f"o_outage_{i}", "加一", msg_id=next(msg_ids))))
        return statuses

    load = asyncio.gather(*(person(i) for i in range(PEOPLE)))
    await asyncio.sleep(0.15)  # turns are under way, holding Redis locks
    redis_server.kill()
    await asyncio.sleep(0.8)  # customers keep writing while Redis is down
    health = await counting_bot.get("/healthz")
    assert health.status == 503 and (await health.json())["status"] == "degraded"
    redis_server.start()
    statuses = await load

    assert all(s == 200 for per in statuses for s in per)
    async with counting_bot.app[keys.SESSIONMAKER]() as s:
        convs = (await s.scalars(select(Conversation).where(Conversation.account == wechat.ACCOUNT))).all()
        counters = {c.openid: c.data["n"] for c in convs}
        handled = await s.scalar(select(func.count()).select_from(InboundMessage))
    assert counters == {f"o_outage_{i}": MESSAGES for i in range(PEOPLE)}
    assert handled == PEOPLE * MESSAGES
    assert counting_bot.app[keys.LOCKS].fallbacks > 0  # the outage was really met mid-load


async def test_a_message_the_database_could_not_take_is_not_acknowledged(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is briefly unreachable: the first delivery gets a non-200 (WeChat sends it again),
    the retry is handled, once."""
    from store.turns import TurnReader

    client = await start_bot(make_settings(), counting_router())
    real_load, failures = TurnReader.load, [1]

    async def flaky_load(self: TurnReader, **key: str) -> object:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionRefusedError("database is restarting")
        return await real_load(self, **key)

    monkeypatch.setattr(TurnReader, "load", flaky_load)
    try:
        chat, xml = WeChat(client), text_xml("o_db_blip", "加一", msg_id=881_500_000)
        first = await chat.post(xml)
        assert first.status == 503 and first.body != "success"
        again = await chat.post(xml)
        assert (again.status, again.text) == (200, "1")
        async with client.app[keys.SESSIONMAKER]() as s:
            conv = await s.get(Conversation, (wechat.ACCOUNT, "o_db_blip"))
        assert conv is not None and conv.data["n"] == 1
    finally:
        await client.close()


async def test_an_acknowledged_turn_that_fails_to_commit_is_run_again(
    make_settings: Callable[..., Settings],
    mp_sim: tuple[MpSimulator, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow turn was already answered `success` when its commit failed: WeChat will not resend it,
    so the process runs it again, and the person gets exactly one answer."""
    from store.writer import GroupWriter

    router = counting_router()

    @router.text("慢加一")
    async def slow_add_one(ctx: Ctx) -> None:
        await asyncio.sleep(0.3)  # longer than the reply budget: the webhook says `success` first
        ctx.state.data["n"] = int(ctx.state.data.get("n", 0)) + 1
        ctx.say(f"慢 {ctx.state.data['n']}")

    client = await start_bot(make_settings(reply_budget=0.1), router)
    real_write, failures = GroupWriter.write, [1]

    async def flaky_write(self: GroupWriter, writes: Any, *, notify: bool = True) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionResetError("database connection lost")
        await real_write(self, writes, notify=notify)

    monkeypatch.setattr(GroupWriter, "write", flaky_write)
    try:
        first = await WeChat(client).post(text_xml("o_late", "慢加一", msg_id=881_600_000))
        assert (first.status, first.body) == (200, "success")
        sim = mp_sim[0]
        sent = await eventually(lambda: [m for m in sim.sent if m.openid == "o_late"], within=10)
        assert [m.payload["content"] for m in sent] == ["慢 1"]
        async with client.app[keys.SESSIONMAKER]() as s:
            conv = await s.get(Conversation, (wechat.ACCOUNT, "o_late"))
        assert conv is not None and conv.data["n"] == 1
    finally:
        await client.close()
