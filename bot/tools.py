"""Clients for one-off commands (menu push, doctor), outside the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from bot.channels.mp import MpClient
from bot.channels.tokens import make_token_store
from bot.channels.wecom import WeComClient, make_wecom_token_store
from settings import Settings
from store.db import make_engine, make_sessionmaker


@asynccontextmanager
async def _shared(settings: Settings) -> AsyncIterator[tuple[aiohttp.ClientSession, Any, Any]]:
    """(http session, redis or None, sessionmaker): what a client needs to share the server's token cache."""
    engine = make_engine(settings.database_url)
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield http, redis, make_sessionmaker(engine)
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


@asynccontextmanager
async def mp_client(settings: Settings) -> AsyncIterator[MpClient]:
    """An MP client sharing the server's token cache, so a command never invalidates its token."""
    async with _shared(settings) as (http, redis, sessionmaker):
        yield MpClient(http, settings, make_token_store(settings, redis, sessionmaker))


@asynccontextmanager
async def wecom_client(settings: Settings) -> AsyncIterator[WeComClient]:
    """The WeCom app client, sharing the server's token cache likewise."""
    async with _shared(settings) as (http, redis, sessionmaker):
        yield WeComClient(http, settings, make_wecom_token_store(settings, redis, sessionmaker))
