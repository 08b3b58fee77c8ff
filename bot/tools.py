"""Clients for one-off commands (menu push, doctor), outside the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from bot.channels.mp import MpClient
from bot.channels.tokens import make_token_store
from settings import Settings
from store.db import make_engine, make_sessionmaker


@asynccontextmanager
async def mp_client(settings: Settings) -> AsyncIterator[MpClient]:
    """An MP client sharing the server's token cache, so a command never invalidates its token."""
    engine = make_engine(settings.database_url)
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            yield MpClient(http, settings, make_token_store(settings, redis, make_sessionmaker(engine)))
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
