"""The application factory: settings in, a wired aiohttp app out. Nothing is created at import time."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import files, keys, paypage, subscribe_page
from bot.channels.llm import LlmClient
from bot.channels.mp import MpClient
from bot.channels.pay import PayClient
from bot.channels.robot import RobotClient
from bot.channels.tokens import make_token_store
from bot.channels.wecom import WeComClient, make_wecom_token_store
from bot.locks import PersonLocks
from bot.logs import request_id_middleware
from bot.metrics import Metrics
from bot.outbox import OutboxDispatcher
from bot.reconcile import reconcile
from bot.scheduler import Job, Scheduler
from flows import desk, flash_slots
from flows.creators import PAYOUTS_JOB, RELEASE_JOB, pay_out, release_commissions
from flows.flash import command_room
from flows.flash import gauges as flash_gauges
from flows.flash import remarket as flash_remarket
from flows.flash import remind as flash_remind
from flows.flash import sweep as flash_sweep
from flows.payments import expire_unpaid, on_pay_notification, on_refund_notification, remind_unpaid
from flows.privacy import purge_retained
from flows.pushes import push_results
from flows.reminders import remind_abandoned_forms
from handlers import build_router
from handlers.context import Services
from handlers.router import Router
from handlers.work import dispatch as staff_dispatch
from settings import Settings
from store.db import make_engine, make_sessionmaker
from store.earnings import next_release_at
from store.flash import FlashGate, SaleBoard
from store.models import utcnow
from store.orders import StockGate
from store.payments import payments_to_reconcile
from store.search import SearchIndex
from store.writer import GroupWriter
from webhooks import mp as mp_webhook
from webhooks import pay as pay_webhook
from webhooks import work as work_webhook
from webhooks.crypto import MpCrypto
from webhooks.pipeline import Pipeline

log = logging.getLogger(__name__)


ROUTER = web.AppKey("router", Router)
# A payment still 'created' this long after it was made is asked about (its notification may be lost).
RECONCILE_AFTER = dt.timedelta(minutes=5)


def create_app(
    settings: Settings,
    *,
    router: Router | None = None,
    work_handler: staff_dispatch.WorkHandler | None = None,
) -> web.Application:
    """`router` defaults to every handler of the product, `work_handler` (staff in WeCom) to
    `staff_desk(app)`; tests pass their own to add probes."""
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
            mode=settings.wechat_message_mode,
            replay_window=settings.replay_window_seconds,
        ),
    )
    work_webhook.setup(app, crypto=_work_crypto(settings), handle=work_handler or staff_desk(app))
    paypage.setup(app)
    subscribe_page.setup(app)
    files.setup(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    pay_webhook.setup(
        app,
        apply=lambda fields: _money_moved(
            app, partial(on_pay_notification, settings=settings, locks=app[keys.LOCKS]), fields
        ),
        apply_refund=lambda fields: _money_moved(app, on_refund_notification, fields),
        settings=settings,
    )
    if settings.sandbox:
        from bot.sandbox.console import setup_sandbox  # only imported when the sandbox is on

        setup_sandbox(app, settings)
    return app


def staff_desk(app: web.Application) -> staff_dispatch.WorkHandler:
    """What handles staff messages and card clicks from /wechat/work."""
    return lambda event: staff_dispatch.build(
        app[keys.SETTINGS],
        app[keys.SESSIONMAKER],
        Services(
            pay=app[keys.PAY],
            wake_outbox=app[keys.OUTBOX].wake,
            locks=app[keys.LOCKS],
            wake_job=app[keys.SCHEDULER].wake,
        ),
    )(event)


def _llm(app: web.Application) -> LlmClient | None:
    """The optional language model, when CHATORDER_LLM_BASE_URL and CHATORDER_LLM_MODEL are set."""
    settings = app[keys.SETTINGS]
    if not (settings.llm_base_url and settings.llm_model):
        return None
    return LlmClient(app[keys.HTTP], settings)


def _work_crypto(settings: Settings) -> work_webhook.WorkCrypto | None:
    """WeCom callback crypto, or None (/wechat/work answers 503) until all three values are set."""
    token, aes_key = settings.wecom_token.get_secret_value(), settings.wecom_aes_key.get_secret_value()
    if not (token and aes_key and settings.wecom_corp_id):
        return None
    try:
        return work_webhook.WorkCrypto(
            token, aes_key, settings.wecom_corp_id, replay_window=settings.replay_window_seconds
        )
    except ValueError as exc:
        log.error("/wechat/work is off: %s", exc)
        return None


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
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

    # Short timeouts: when Redis is unreachable a turn falls back to the database at once (bot/locks.py)
    # instead of waiting on a dead socket until WeChat gives up.
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    app[keys.REDIS] = client
    yield
    await client.aclose()


async def _http(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[keys.HTTP] = session
        yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    """API clients, outbox dispatcher, group writer and the inbound pipeline, with their background tasks."""
    settings, sessionmaker = app[keys.SETTINGS], app[keys.SESSIONMAKER]
    tokens = make_token_store(settings, app[keys.REDIS], sessionmaker)
    mp = MpClient(app[keys.HTTP], settings, tokens)
    # The outbox is woken by the commits that give it something to send, and records what it sent
    # in the same group commits.
    writer = GroupWriter(app[keys.ENGINE], after_commit=lambda: outbox.wake())
    outbox = OutboxDispatcher(
        sessionmaker,
        mp,
        settings,
        worker_id=_worker_id(),
        observe=app[keys.METRICS].outbox_outcome,
        records=writer,
    )
    if settings.wecom_robot_key.get_secret_value():
        outbox.register("robot", RobotClient(app[keys.HTTP], settings).send)
    wecom = app[keys.WECOM] = _wecom_client(app)
    if wecom is not None:
        outbox.register("wecom", wecom.send)
    app[keys.MP], app[keys.OUTBOX] = mp, outbox
    pay = app[keys.PAY] = PayClient(app[keys.HTTP], settings) if settings.wechatpay_mch_id else None
    redis = app[keys.REDIS]
    gate = StockGate(redis) if redis is not None else None
    flash_gate = FlashGate(redis) if redis is not None else None
    locks = app[keys.LOCKS] = PersonLocks(redis, engine=app[keys.ENGINE])
    scheduler = app[keys.SCHEDULER] = Scheduler(_jobs(app, gate, flash_gate))
    app[keys.SEARCH] = SearchIndex()  # empty until the first search
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
            pay=pay,
            stock_gate=gate,
            flash_gate=flash_gate,
            flash_board=SaleBoard(sessionmaker),
            wake_outbox=outbox.wake,
            wake_job=scheduler.wake,
            llm=_llm(app),
            search=app[keys.SEARCH],
        ),
    )
    app[keys.METRICS].track_outbox_depth(outbox.depth)
    app[keys.METRICS].track_flash(lambda: flash_gauges(sessionmaker, utcnow()))
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(outbox.run_forever(stop), name="outbox"),
        asyncio.create_task(scheduler.run(stop), name="jobs"),
    ]
    yield
    await app[keys.PIPELINE].drain()
    stop.set()
    outbox.wake()
    await asyncio.gather(*tasks, return_exceptions=True)
    await writer.close()  # after the outbox: it records its last sends through the writer
    await locks.close()


def _jobs(app: web.Application, gate: StockGate | None, flash_gate: FlashGate | None) -> list[Job]:
    """The background jobs. Money jobs sleep until their data says something is due, and are woken
    by the change that makes something due (a completed order, an approved withdrawal)."""
    settings, sessionmaker, pay, locks = (
        app[keys.SETTINGS],
        app[keys.SESSIONMAKER],
        app[keys.PAY],
        app[keys.LOCKS],
    )

    async def next_release() -> dt.datetime | None:
        async with sessionmaker() as session:
            return await next_release_at(session, freeze_days=settings.freeze_days)

    jobs = [
        Job("form-reminders", 60, lambda: remind_abandoned_forms(sessionmaker, locks, utcnow())),
        Job("payment-reminders", 60, lambda: remind_unpaid(sessionmaker, utcnow())),
        Job("expire-unpaid", 30, lambda: expire_unpaid(sessionmaker, utcnow(), gate)),
        # Flash sales: holds that ran out (to the waitlist first), reminders, remarketing, the command room.
        Job("flash-holds", 5, lambda: flash_sweep(sessionmaker, settings, flash_gate, utcnow())),
        Job("flash-reminders", 10, lambda: flash_remind(sessionmaker, settings, utcnow())),
        Job("flash-remarketing", 60, lambda: flash_remarket(sessionmaker, settings, utcnow())),
        Job("flash-room", 20, lambda: command_room(sessionmaker, settings, utcnow())),
        Job("staff-backlog", 60, lambda: desk.hand_out_backlog(sessionmaker, settings, utcnow())),
        Job("staff-escalate", 60, lambda: desk.escalate_waiting(sessionmaker, settings, utcnow())),
        Job("publish-reminders", 300, lambda: desk.remind_publish(sessionmaker, settings, utcnow())),
        Job("daily-report", 300, lambda: desk.daily_report(sessionmaker, settings, utcnow())),
        Job("retention", 3600, lambda: purge_retained(sessionmaker, settings, utcnow())),
        # The period is a safety net (another process completed an order); the due time rules.
        Job(RELEASE_JOB, 600, lambda: release_commissions(sessionmaker, settings, utcnow()), next_release),
    ]
    if settings.pushes:
        jobs.append(Job("results-pushes", 300, lambda: push_results(sessionmaker, settings, utcnow())))
    if pay is not None:
        jobs.append(Job("reconcile-payments", 300, lambda: _reconcile(app, pay)))
        # Each position's pay order and QR, made before a sale opens (the rush's winners only take one).
        upload = app[keys.MP].upload_media
        jobs.append(
            Job(
                "flash-pay-slots",
                30,
                lambda: flash_slots.prepare(sessionmaker, pay, upload, settings, utcnow()),
            )
        )
        # Woken by each approval; the period retries payouts WeChat Pay asked us to try again later.
        jobs.append(Job(PAYOUTS_JOB, 300, lambda: pay_out(sessionmaker, pay, settings, utcnow())))
    return jobs


def _wecom_client(app: web.Application) -> WeComClient | None:
    """The WeCom app API client, when WECOM_CORP_ID and WECOM_SECRET are set."""
    settings = app[keys.SETTINGS]
    if not (settings.wecom_corp_id and settings.wecom_secret.get_secret_value()):
        return None
    tokens = make_wecom_token_store(settings, app[keys.REDIS], app[keys.SESSIONMAKER])
    return WeComClient(app[keys.HTTP], settings, tokens)


async def _money_moved(
    app: web.Application,
    apply: Callable[[async_sessionmaker[AsyncSession], dict[str, Any]], Awaitable[str]],
    fields: dict[str, Any],
) -> str:
    """A pay or refund notification, applied in one transaction; what it tells people goes out now."""
    outcome = await apply(app[keys.SESSIONMAKER], fields)
    app[keys.OUTBOX].wake()
    return outcome


async def _reconcile(app: web.Application, pay: PayClient) -> int:
    """Ask WeChat Pay about payments whose notification never came (it can be lost)."""
    notification = partial(on_pay_notification, settings=app[keys.SETTINGS], locks=app[keys.LOCKS])
    async with app[keys.SESSIONMAKER]() as session:
        due = await payments_to_reconcile(session, older_than=RECONCILE_AFTER, now=utcnow())
    return await reconcile(
        query=pay.order_query,
        pending=[(p.out_trade_no, p.amount_fen) for p in due],
        apply=lambda fields: _money_moved(app, notification, fields),
    )


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
