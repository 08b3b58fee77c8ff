"""Typed application keys: the one place that says what lives on the aiohttp app."""

from __future__ import annotations

from aiohttp import ClientSession, web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.mp import MpClient
from bot.channels.pay import PayClient
from bot.channels.wecom import WeComClient
from bot.locks import PersonLocks
from bot.metrics import Metrics
from bot.outbox import OutboxDispatcher
from bot.sandbox.pay_sim import PaySimulator
from bot.sandbox.state import Sandbox
from bot.sandbox.wecom_sim import WeComSimulator
from bot.scheduler import Scheduler
from settings import Settings
from store.search import SearchIndex
from webhooks.pipeline import Pipeline

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", async_sessionmaker[AsyncSession])
REDIS: web.AppKey[Redis | None] = web.AppKey("redis")  # None in single-process mode
HTTP = web.AppKey("http", ClientSession)
METRICS = web.AppKey("metrics", Metrics)
MP = web.AppKey("mp", MpClient)
OUTBOX = web.AppKey("outbox", OutboxDispatcher)
PIPELINE = web.AppKey("pipeline", Pipeline)
SEARCH = web.AppKey("search", SearchIndex)  # the catalog's ranked search (store.search)
LOCKS = web.AppKey("locks", PersonLocks)  # customers' per-person locks (also taken by staff changes)
SCHEDULER = web.AppKey("scheduler", Scheduler)  # background jobs; `wake(name)` runs one now
SANDBOX = web.AppKey("sandbox", Sandbox)
PAY_SIM = web.AppKey("pay_sim", PaySimulator)  # only when the sandbox is on
PAY: web.AppKey[PayClient | None] = web.AppKey("pay")  # None where WeChat Pay is not configured
WECOM: web.AppKey[WeComClient | None] = web.AppKey("wecom")  # None where WECOM_CORP_ID/SECRET are unset
WECOM_SIM = web.AppKey("wecom_sim", WeComSimulator)  # only when the sandbox is on
