"""The outbox dispatcher over the MP simulator, on SQLite and PostgreSQL: retries, leases, crashes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.channels.mp import MpClient
from bot.channels.tokens import DbTokenStore
from bot.outbox import MAX_ATTEMPTS, SEND_CONCURRENCY, OutboxDispatcher
from bot.sandbox.mp_sim import MpSimulator
from store.models import OutboxMessage, utcnow
from store.outbox import Outgoing, enqueue, text
from tests.test_mp_client import APP_ID, APP_SECRET, ServerFactory, make_settings
from tests.test_tokens import DB_KINDS, SessionFactory, database


class Clock:
    """A settable clock, so backoff and lease expiry need no sleeping."""

    def __init__(self) -> None:
        # A little ahead of real time, so that rows enqueued during the test are already due.
        self.now = utcnow() + dt.timedelta(seconds=60)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class Env:
    """The simulator, a database and a factory of dispatchers sharing them."""

    def __init__(self, sim: MpSimulator, server: TestServer, http: aiohttp.ClientSession, db: SessionFactory):
        self.sim, self.server, self.http, self.db = sim, server, http, db
        self.sm = db()
        self.clock = Clock()

    def dispatcher(self, worker_id: str = "w1", *, template_id: str = "", **kwargs: Any) -> OutboxDispatcher:
        """A dispatcher with its own engine and MP client, as a separate process would have."""
        settings = make_settings(self.server, wechat_notice_template_id=template_id)
        sm = self.db()
        client = MpClient(self.http, settings, DbTokenStore(sm, "mp-token"))
        kwargs.setdefault("clock", self.clock)
        return OutboxDispatcher(sm, client, settings, worker_id=worker_id, rng=random.Random(7), **kwargs)

    async def enqueue(self, *messages: Outgoing) -> None:
        async with self.sm() as session, session.begin():
            await enqueue(session, *messages)

    async def rows(self) -> list[OutboxMessage]:
        async with self.sm() as session:
            return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


@pytest.fixture(params=DB_KINDS)
async def env(
    request: pytest.FixtureRequest, tmp_path: Path, aiohttp_server: ServerFactory
) -> AsyncIterator[Env]:
    sim = MpSimulator(APP_ID, APP_SECRET)
    server = await aiohttp_server(sim.app)
    async with aiohttp.ClientSession() as http, database(request.param, tmp_path) as db:
        yield Env(sim, server, http, db)
        sim.gate.set()  # let any held request finish before the server closes


async def test_delivers_in_order_and_records_sent(env: Env) -> None:
    await env.enqueue(*(text("o_alice", f"m{i}") for i in range(3)))
    assert await env.dispatcher().run_once() == 3
    assert [m.payload["content"] for m in env.sim.sent] == ["m0", "m1", "m2"]
    rows = await env.rows()
    assert {(r.status, r.attempts, r.claimed_by) for r in rows} == {("sent", 1, None)}
    assert all(r.sent_at is not None for r in rows)
    assert await env.dispatcher().depth() == 0


async def test_token_expiry_mid_send_refreshes_once_and_delivers(env: Env) -> None:
    d = env.dispatcher()
    await env.enqueue(text("o_alice", "first"))
    await d.run_once()
    env.sim.expire_tokens()
    await env.enqueue(text("o_alice", "second"))
    assert await d.run_once() == 1
    assert [m.payload["content"] for m in env.sim.sent] == ["first", "second"]
    assert env.sim.calls["token"] == 2


@pytest.mark.parametrize(("errcode", "min_wait"), [(-1, 0.5), (45009, 60.0), (500, 0.5)])
async def test_transient_error_is_retried_with_backoff(env: Env, errcode: int, min_wait: float) -> None:
    d = env.dispatcher()
    await env.enqueue(text("o_alice", "hi"))
    env.sim.fail_next("custom_send", errcode)
    assert await d.run_once() == 0
    [row] = await env.rows()
    assert (row.status, row.attempts) == ("pending", 1)
    wait = (row.next_attempt_at - env.clock.now).total_seconds()
    assert min_wait <= wait <= max(min_wait, 1.0)
    assert await d.run_once() == 0  # not due yet
    env.clock.advance(wait)
    assert await d.run_once() == 1
    assert [m.payload["content"] for m in env.sim.sent] == ["hi"]
    [row] = await env.rows()
    assert (row.status, row.attempts) == ("sent", 2)


async def test_gives_up_after_max_attempts(env: Env) -> None:
    d = env.dispatcher()
    await env.enqueue(text("o_alice", "hi"))
    env.sim.fail_next("custom_send", -1, times=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS):
        assert await d.run_once() == 0
        env.clock.advance(3600)
    [row] = await env.rows()
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert "gave up after 8 attempts" in (row.last_error or "")
    assert await d.run_once() == 0


async def test_permanent_error_fails_at_once(env: Env) -> None:
    await env.enqueue(text("o_ghost", "hi"))
    env.sim.fail_next("custom_send", 40003)  # invalid openid
    assert await env.dispatcher().run_once() == 0
    [row] = await env.rows()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "40003" in (row.last_error or "")


async def test_outside_48h_window_falls_back_to_template(env: Env) -> None:
    env.sim.window_closed("o_alice")
    await env.enqueue(text("o_alice", "您的订单已完成"))
    assert await env.dispatcher(template_id="TPL_NOTICE").run_once() == 1
    [sent] = env.sim.sent
    assert (sent.openid, sent.kind, sent.payload["template_id"]) == ("o_alice", "template", "TPL_NOTICE")
    assert sent.payload["data"]["first"] == {"value": "您的订单已完成"}
    assert set(sent.payload["data"]) == {"first", "keyword1", "keyword2", "remark"}
    [row] = await env.rows()
    assert row.status == "sent"
    assert (row.last_error or "").startswith("45015: sent as template")


async def test_outside_48h_window_without_template_fails_clearly(env: Env) -> None:
    env.sim.window_closed("o_alice")
    await env.enqueue(text("o_alice", "hi"))
    assert await env.dispatcher().run_once() == 0
    [row] = await env.rows()
    assert row.status == "failed"
    assert "WECHAT_NOTICE_TEMPLATE_ID" in (row.last_error or "")
    assert env.sim.sent == []


async def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def test_several_people_are_sent_to_at_once_each_in_order(env: Env) -> None:
    people = [f"o_p{n}" for n in range(10)]
    await env.enqueue(*(text(p, f"{p}:{i}") for i in range(2) for p in people))  # written interleaved
    env.sim.gate.clear()  # WeChat is slow: every send stays in flight until it answers
    run = asyncio.create_task(env.dispatcher().run_once())
    await _wait_for(lambda: env.sim.stalled == SEND_CONCURRENCY)  # several people at once
    await asyncio.sleep(0.05)
    assert env.sim.stalled == SEND_CONCURRENCY  # and never more
    env.sim.gate.set()
    assert await run == 20
    for p in people:  # each person's second message only after their first
        assert [m.payload["content"] for m in env.sim.sent if m.openid == p] == [f"{p}:0", f"{p}:1"]
    assert {r.status for r in await env.rows()} == {"sent"}


async def test_worker_killed_mid_send_is_resumed_without_loss(env: Env) -> None:
    await env.enqueue(*(text("o_alice", f"m{i}") for i in range(3)))
    env.sim.gate.clear()  # WeChat stalls: the first send stays in flight
    crashed = asyncio.create_task(env.dispatcher("w1").run_once())
    await _wait_for(lambda: env.sim.stalled == 1)
    crashed.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    assert {r.status for r in await env.rows()} == {"sending"}
    env.sim.gate.set()
    await _wait_for(lambda: env.sim.stalled == 0)

    other = env.dispatcher("w2")
    assert await other.run_once() == 0  # w1's lease still holds
    env.clock.advance(31)
    assert await other.run_once() == 3
    rows = await env.rows()
    assert {(r.status, r.claimed_by) for r in rows} == {("sent", None)}
    counts = collections.Counter(m.payload["content"] for m in env.sim.sent)
    # Only the message in flight at the crash may repeat (here aiohttp dropped it on the hang-up).
    assert counts["m1"] == counts["m2"] == 1
    assert 1 <= counts["m0"] <= 2


async def test_send_accepted_but_not_recorded_repeats_only_that_message(env: Env) -> None:
    await env.enqueue(*(text("o_alice", f"m{i}") for i in range(3)))
    crashed = asyncio.create_task(env.dispatcher("w1").run_once())
    # The worker dies just after WeChat accepted m0 and before it could record the result.
    env.sim.listeners.append(lambda msg: crashed.cancel())
    with contextlib.suppress(asyncio.CancelledError):
        await crashed
    env.sim.listeners.clear()
    env.clock.advance(31)
    assert await env.dispatcher("w2").run_once() == 3
    counts = collections.Counter(m.payload["content"] for m in env.sim.sent)
    assert counts == {"m0": 2, "m1": 1, "m2": 1}  # the documented at-least-once window: one message


async def test_expired_lease_of_a_silent_worker_is_taken_over(env: Env) -> None:
    await env.enqueue(*(text("o_alice", f"m{i}") for i in range(3)))
    assert len(await env.dispatcher("w1")._claim()) == 3  # claimed, then the process died
    other = env.dispatcher("w2")
    env.clock.advance(29)
    assert await other.run_once() == 0
    env.clock.advance(2)
    assert await other.run_once() == 3
    assert sorted(m.payload["content"] for m in env.sim.sent) == ["m0", "m1", "m2"]


async def test_short_lease_hands_back_rows_it_cannot_finish(env: Env) -> None:
    await env.enqueue(*(text("o_alice", f"m{i}") for i in range(2)))
    times = iter([env.clock.now])  # the claim sees t0; every later look sees t0 + 6 s

    def slow_clock() -> dt.datetime:
        return next(times, env.clock.now + dt.timedelta(seconds=6))

    d = env.dispatcher("w1", lease_seconds=10, clock=slow_clock)
    assert await d.run_once() == 0  # under half the 10 s lease left: no send is started
    assert {(r.status, r.attempts, r.claimed_by) for r in await env.rows()} == {("pending", 0, None)}
    assert await env.dispatcher("w2").run_once() == 2
    assert len(env.sim.sent) == 2


async def test_two_dispatchers_send_200_messages_exactly_once(env: Env) -> None:
    await env.enqueue(*(text(f"o_{i % 7}", f"m{i}") for i in range(200)))
    workers = [env.dispatcher(f"w{i}", clock=utcnow) for i in (1, 2)]

    async def drain(d: OutboxDispatcher) -> int:
        sent = 0
        while True:
            n = await d.run_once()
            sent += n
            if n == 0 and await d.depth() == 0:
                return sent
            if n == 0:
                await asyncio.sleep(0.01)

    totals = await asyncio.gather(*(drain(d) for d in workers))
    assert sum(totals) == 200
    contents = [m.payload["content"] for m in env.sim.sent]
    assert len(contents) == 200
    assert set(contents) == {f"m{i}" for i in range(200)}
    assert {r.status for r in await env.rows()} == {"sent"}


async def test_run_forever_wakes_on_enqueue(env: Env) -> None:
    d = env.dispatcher(clock=utcnow)
    stop = asyncio.Event()
    task = asyncio.create_task(d.run_forever(stop, poll_seconds=30))
    await asyncio.sleep(0.05)
    await env.enqueue(text("o_alice", "fast"))
    d.wake()
    await _wait_for(lambda: len(env.sim.sent) == 1, seconds=2)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_other_channels_wait_for_their_sender(env: Env) -> None:
    await env.enqueue(Outgoing("wecom", "staff_1", "text", {"content": "新订单"}))
    d = env.dispatcher()
    assert await d.run_once() == 0
    assert await d.depth() == 1
    got: list[Outgoing] = []

    async def wecom(msg: Outgoing) -> None:
        got.append(msg)

    d.register("wecom", wecom)
    assert await d.run_once() == 1
    assert got[0].recipient == "staff_1"
