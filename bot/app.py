"""The application factory: settings in, a wired aiohttp app out. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy import text

from bot import keys
from bot.channels.mp import MpClient
from bot.channels.tokens import make_token_store
from bot.locks import PersonLocks
from bot.logs import request_id_middleware
from bot.metrics import Metrics
from bot.outbox import OutboxDispatcher
from bot.scheduler import Job, run_jobs
from flows.reminders import remind_abandoned_forms
from handlers import build_router
from handlers.context import Services
from handlers.router import Router
from settings import Settings
from store.db import make_engine, make_sessionmaker
from store.models import utcnow
from store.orders import StockGate
from store.writer import GroupWriter
from webhooks import mp as mp_webhook
from webhooks.crypto import MpCrypto
from webhooks.pipeline import Pipeline

log = logging.getLogger(__name__)


ROUTER = web.AppKey("router", Router)


def create_app(settings: Settings, *, router: Router | None = None) -> web.Application:
    """`router` defaults to every handler of the product; tests pass their own to add probes."""
    app = web.Application(middlewares=[request_id_middleware])
    app[keys.SETTINGS] = settings
    app[ROUTER] = router or build_router()
    app[keys.METRICS] = Metrics()
    app.cleanup_ctx.extend([_database, _redis, _http, _services])
    mp_webhook.setup(
        app,
        MpCrypto(
            settings.wechat_token.get_secret_value(),
            settings.wechat_aes_key.get_secret_value(),
            settings.wechat_app_id,
        ),
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if settings.sandbox:
        from bot.sandbox.console import setup_sandbox  # only imported when the sandbox is on

        setup_sandbox(app, settings)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = make_engine(app[keys.SETTINGS].database_url)
    app[keys.ENGINE] = engine
    app[keys.SESSIONMAKER] = make_sessionmaker(engine)
    yield
    await engine.dispose()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    url = app[keys.SETTINGS].redis_url
    if not url:
        app[keys.REDIS] = None
        yield
        return
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    app[keys.REDIS] = client
    yield
    await client.aclose()


async def _http(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[keys.HTTP] = session
        yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    """MP client, outbox dispatcher, group writer and the inbound pipeline, with their background tasks."""
    settings, sessionmaker = app[keys.SETTINGS], app[keys.SESSIONMAKER]
    tokens = make_token_store(settings, app[keys.REDIS], sessionmaker)
    mp = MpClient(app[keys.HTTP], settings, tokens)
    outbox = OutboxDispatcher(
        sessionmaker, mp, settings, worker_id=_worker_id(), observe=app[keys.METRICS].outbox_outcome
    )
    writer = GroupWriter(app[keys.ENGINE], after_commit=outbox.wake)
    app[keys.MP], app[keys.OUTBOX] = mp, outbox
    locks = PersonLocks(app[keys.REDIS])
    app[keys.PIPELINE] = Pipeline(
        settings=settings,
        engine=app[keys.ENGINE],
        sessionmaker=sessionmaker,
        writer=writer,
        router=app[ROUTER],
        locks=locks,
        metrics=app[keys.METRICS],
        services=Services(
            media=mp,
            stock_gate=StockGate(app[keys.REDIS]) if app[keys.REDIS] is not None else None,
            wake_outbox=outbox.wake,
        ),
    )
    app[keys.METRICS].track_outbox_depth(outbox.depth)
    jobs = [
        Job("form-reminders", 60, lambda: remind_abandoned_forms(sessionmaker, locks, utcnow())),
    ]
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(outbox.run_forever(stop), name="outbox"),
        asyncio.create_task(run_jobs(jobs, stop), name="jobs"),
    ]
    yield
    await app[keys.PIPELINE].drain()
    await writer.close()
    stop.set()
    outbox.wake()
    await asyncio.gather(*tasks, return_exceptions=True)


def tune_gc() -> None:
    """Process-wide GC policy for a server (call once, before serving).

    Every request makes many short-lived objects; the default thresholds run collections often
    enough to dominate the p99 latency (docs/benchmarks.md). Objects alive at start never die: freeze them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def healthz(request: web.Request) -> web.Response:
    """200 when the database (and Redis, when configured) answer; 503 otherwise."""
    checks: dict[str, str] = {}
    try:
        async with request.app[keys.ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if (redis := request.app[keys.REDIS]) is not None:
        try:
            await redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[keys.METRICS].render()
    return web.Response(
        body=body, content_type="text/plain", charset="utf-8", headers={"X-Format": "prometheus"}
    )
