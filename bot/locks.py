"""Per-person locks: two messages from one person are handled one after the other.

In one process an asyncio.Lock per person is enough; with Redis (several processes) a Redis lock
is taken as well, so the state a turn reads is the state the previous turn committed.

Redis is an accelerator, not the source of truth: when it cannot be reached the lock falls back to
the database — a PostgreSQL session advisory lock on a small pool of its own, or, on SQLite (one
process), the asyncio lock alone. The turn then runs as it would have; nothing waits for Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

# Connections for advisory locks, apart from the turns' own pool: a turn holding its lock connection
# must still find one to read and write with. More people than this wait for a lock connection.
ADVISORY_POOL = 16


def redis_unreachable(exc: BaseException) -> bool:
    """Redis is down or unreachable (as opposed to a lock held too long by someone else)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


class PersonLocks:
    def __init__(
        self, redis: Any | None = None, *, engine: AsyncEngine | None = None, timeout: float = 15.0
    ) -> None:
        self._redis = redis
        self._engine = engine
        self._timeout = timeout
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        self._advisory: AsyncEngine | None = None
        self.fallbacks = 0  # turns that ran under the database lock because Redis was unreachable

    @asynccontextmanager
    async def hold(self, account: str, openid: str) -> AsyncIterator[None]:
        key = f"{account}:{openid}"
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                if self._redis is None:
                    yield
                else:
                    async with self._cross_process(self._redis, key):
                        yield
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    @asynccontextmanager
    async def _cross_process(self, redis: Any, key: str) -> AsyncIterator[None]:
        # timeout bounds how long a crashed holder blocks this person.
        lock = redis.lock(f"chatorder:person:{key}", timeout=self._timeout, blocking_timeout=self._timeout)
        try:
            acquired = await lock.acquire()
        except Exception as exc:
            if not redis_unreachable(exc):
                raise
            log.warning("redis unreachable: person lock taken in the database", extra={"error": repr(exc)})
            self.fallbacks += 1
            async with self._database_lock(key):
                yield
            return
        if not acquired:  # held by another turn for longer than `timeout`
            raise TimeoutError(f"person lock {key} not acquired in {self._timeout} s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except Exception as exc:  # expired or Redis gone: it expires by itself
                log.warning("person lock not released", extra={"error": repr(exc)})

    @asynccontextmanager
    async def _database_lock(self, key: str) -> AsyncIterator[None]:
        if self._engine is None or self._engine.dialect.name != "postgresql":
            yield  # SQLite: one process, and the asyncio lock is held
            return
        if self._advisory is None:
            self._advisory = create_async_engine(
                self._engine.url, pool_size=ADVISORY_POOL, max_overflow=0, pool_pre_ping=True
            )
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        async with self._advisory.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": number})
            await conn.commit()
            try:
                yield
            finally:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": number})
                    await conn.commit()
                except Exception:
                    # Never give a connection that may still hold the lock back to the pool:
                    # closing it makes PostgreSQL release every lock of that session.
                    await conn.invalidate()
                    raise

    async def close(self) -> None:
        if self._advisory is not None:
            await self._advisory.dispose()
            self._advisory = None
