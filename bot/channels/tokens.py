"""The access-token cache shared by every process, refreshed once under a cross-process lock.

Each call to WeChat's /token endpoint issues a new token and starts the 5-minute countdown of the old
one, and the endpoint has a daily quota: N workers refreshing at once invalidate each other's tokens
and burn the quota. So one holder of a lease fetches; the others wait for its result.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from settings import Settings
from store.db import upsert_insert
from store.models import KeyValue, utcnow

Fetch = Callable[[], Awaitable[tuple[str, int]]]

# Refresh this long before Tencent's expiry, so a token never dies between our read and our call.
SAFETY_MARGIN = 300
LOCK_SECONDS = 15.0  # longer than one /token request (10 s timeout) plus its bookkeeping
POLL_SECONDS = 0.05
# How long a process reuses the token it last read without asking the store again. Safe: a token
# replaced by another process stays valid at WeChat for 5 more minutes, and one WeChat rejects is
# dropped here at once (`invalidate`).
MEMO_SECONDS = 30.0


def cache_seconds(expires_in: int) -> int:
    """How long to keep a token that WeChat says lives `expires_in` seconds."""
    if expires_in > 2 * SAFETY_MARGIN:
        return expires_in - SAFETY_MARGIN
    return max(1, expires_in // 2)


class TokenStore(ABC):
    """A shared access token: `get` returns a valid one, fetching it once across all processes."""

    def __init__(self, *, lock_seconds: float = LOCK_SECONDS, poll_seconds: float = POLL_SECONDS) -> None:
        self._local = asyncio.Lock()  # single-flight inside this process
        self._lock_seconds = lock_seconds
        self._poll_seconds = poll_seconds
        self._memo: tuple[str, float] | None = None  # (token, monotonic deadline)

    async def get(self, fetch: Fetch) -> str:
        """The cached token, or a fresh one fetched by exactly one caller across processes."""
        if self._memo is not None and time.monotonic() < self._memo[1]:
            return self._memo[0]  # every message sent asked the store before: one query each
        token = await self._read()
        if not token:
            async with self._local:
                token = await self._read() or await self._refresh(fetch)
        self._memo = (token, time.monotonic() + MEMO_SECONDS)
        return token

    async def invalidate(self, token: str) -> None:
        """Forget `token` if it is still the cached one (a newer token is left alone)."""
        if self._memo is not None and self._memo[0] == token:
            self._memo = None
        await self._drop(token)

    @abstractmethod
    async def _drop(self, token: str) -> None:
        """Delete `token` from the store if it is still the one stored."""

    @abstractmethod
    async def _read(self) -> str | None: ...

    @abstractmethod
    async def _acquire(self, owner: str) -> bool: ...

    @abstractmethod
    async def _release(self, owner: str) -> None: ...

    @abstractmethod
    async def _write(self, token: str, ttl: int) -> None: ...

    async def _refresh(self, fetch: Fetch) -> str:
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_seconds * 2
        while time.monotonic() < deadline:
            if await self._acquire(owner):
                try:
                    # Someone may have stored a token between our read and our lease.
                    if token := await self._read():
                        return token
                    token, expires_in = await fetch()
                    await self._write(token, cache_seconds(expires_in))
                    return token
                finally:
                    await self._release(owner)
            await asyncio.sleep(self._poll_seconds)
            if token := await self._read():
                return token
        raise TimeoutError("no access token: another process holds the refresh lock and stored none")


_CAS_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore(TokenStore):
    """Token under `key`, refresh lease under `key:lock` (SET NX PX)."""

    def __init__(self, redis: Any, key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._redis = redis
        self._key = key
        self._lock_key = f"{key}:lock"

    async def _drop(self, token: str) -> None:
        await self._redis.eval(_CAS_DELETE, 1, self._key, token)

    async def _read(self) -> str | None:
        value = await self._redis.get(self._key)
        return value.decode() if isinstance(value, bytes) else value

    async def _acquire(self, owner: str) -> bool:
        return bool(await self._redis.set(self._lock_key, owner, nx=True, px=int(self._lock_seconds * 1000)))

    async def _release(self, owner: str) -> None:
        await self._redis.eval(_CAS_DELETE, 1, self._lock_key, owner)

    async def _write(self, token: str, ttl: int) -> None:
        await self._redis.set(self._key, token, ex=ttl)


class DbTokenStore(TokenStore):
    """Token in KeyValue row `key`, refresh lease in row `lock:<key>` taken by a conditional upsert.

    INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now is one atomic statement on SQLite and
    PostgreSQL alike, so the lease never depends on row locks (which SQLite does not have).
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], key: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessionmaker = sessionmaker
        self._key = key
        self._lock_key = f"lock:{key}"

    async def _drop(self, token: str) -> None:
        await self._delete(self._key, token)

    async def _read(self) -> str | None:
        stmt = select(KeyValue.value).where(KeyValue.name == self._key, KeyValue.expires_at > utcnow())
        async with self._sessionmaker() as session:
            return (await session.execute(stmt)).scalar_one_or_none()

    async def _acquire(self, owner: str) -> bool:
        now = utcnow()
        until = now + dt.timedelta(seconds=self._lock_seconds)
        async with self._sessionmaker() as session, session.begin():
            stmt = upsert_insert(session)(KeyValue).values(name=self._lock_key, value=owner, expires_at=until)
            stmt = stmt.on_conflict_do_update(
                index_elements=[KeyValue.name],
                set_={"value": owner, "expires_at": until},
                where=KeyValue.expires_at < now,
            ).returning(KeyValue.value)
            return (await session.execute(stmt)).scalar_one_or_none() == owner

    async def _release(self, owner: str) -> None:
        await self._delete(self._lock_key, owner)

    async def _write(self, token: str, ttl: int) -> None:
        until = utcnow() + dt.timedelta(seconds=ttl)
        async with self._sessionmaker() as session, session.begin():
            stmt = upsert_insert(session)(KeyValue).values(name=self._key, value=token, expires_at=until)
            stmt = stmt.on_conflict_do_update(
                index_elements=[KeyValue.name], set_={"value": token, "expires_at": until}
            )
            await session.execute(stmt)

    async def _delete(self, name: str, value: str) -> None:
        async with self._sessionmaker() as session, session.begin():
            await session.execute(delete(KeyValue).where(KeyValue.name == name, KeyValue.value == value))


def make_token_store(
    settings: Settings, redis: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> TokenStore:
    """Redis when configured (many processes), else the database (one machine)."""
    key = f"wechat:mp:{settings.wechat_app_id}:access_token"
    if redis is not None:
        return RedisTokenStore(redis, key)
    return DbTokenStore(sessionmaker, key)
