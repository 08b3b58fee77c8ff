"""Per-person locks: two messages from one person are handled one after the other.

In one process an asyncio.Lock per person is enough; with Redis (several processes) a Redis lock
is taken as well, so the state a turn reads is the state the previous turn committed.

Redis is an accelerator, not the source of truth: when it cannot be reached the lock falls back to
the database — a PostgreSQL session advisory lock on a small pool of its own, or, on SQLite (one
process), the asyncio lock alone. The turn then runs as it would have; nothing waits for Redis.

The Redis locks are taken and given back in batches: the turns that want one or give one back while a
round trip is under way go together in the next, one script call for all of them (a lock per person
as before: `SET key token NX PX`, and a delete only by the token's owner). Two round trips of redis-py
per turn were the largest cost of a turn on several processes; now a turn pays a share of two, and
takes and give-backs share one.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from store.db import make_engine

log = logging.getLogger(__name__)

# Connections for advisory locks, apart from the turns' own pool: a turn holding its lock connection
# must still find one to read and write with. More people than this wait for a lock connection.
ADVISORY_POOL = 16
RETRY_EVERY = 0.01  # seconds between tries for a Redis lock another process holds

# KEYS: the locks; ARGV[1]: time to live (ms); ARGV[1 + i]: '+' then the token to take KEYS[i] with,
# or '-' then the token to give it back with (deleted only if still ours: a lock that expired and was
# taken by someone else since is left alone). Gives back first, so a lock freed and wanted in the same
# call is taken. One character per key, '1' where taken, else '0' (one string: redis-py parses each
# element of an array reply in Python).
_TAKE_AND_GIVE = """
local done = {}
for i, key in ipairs(KEYS) do
  local op, token = string.sub(ARGV[i + 1], 1, 1), string.sub(ARGV[i + 1], 2)
  done[i] = '0'
  if op == '-' and redis.call('GET', key) == token then redis.call('DEL', key) end
end
for i, key in ipairs(KEYS) do
  if string.sub(ARGV[i + 1], 1, 1) == '+' then
    if redis.call('SET', key, string.sub(ARGV[i + 1], 2), 'NX', 'PX', ARGV[1]) then done[i] = '1' end
  end
end
return table.concat(done)
"""


def redis_unreachable(exc: BaseException) -> bool:
    """Redis is down or unreachable (as opposed to a lock held too long by someone else)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


class PersonLocks:
    def __init__(
        self, redis: Any | None = None, *, engine: AsyncEngine | None = None, timeout: float = 15.0
    ) -> None:
        self._redis = None if redis is None else _RedisLocks(redis, timeout)
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
    async def _cross_process(self, redis: _RedisLocks, key: str) -> AsyncIterator[None]:
        name = f"chatorder:person:{key}"
        try:
            token = await redis.acquire(name)
        except Exception as exc:
            if not redis_unreachable(exc):
                raise
            log.warning("redis unreachable: person lock taken in the database", extra={"error": repr(exc)})
            self.fallbacks += 1
            async with self._database_lock(key):
                yield
            return
        if token is None:  # held by another turn for longer than `timeout`
            raise TimeoutError(f"person lock {key} not acquired in {self._timeout} s")
        try:
            yield
        finally:
            try:
                await redis.release(name, token)
            except Exception as exc:  # expired or Redis gone: it expires by itself
                log.warning("person lock not released", extra={"error": repr(exc)})

    @asynccontextmanager
    async def _database_lock(self, key: str) -> AsyncIterator[None]:
        if self._engine is None or self._engine.dialect.name != "postgresql":
            yield  # SQLite: one process, and the asyncio lock is held
            return
        if self._advisory is None:
            url = self._engine.url.render_as_string(hide_password=False)
            self._advisory = make_engine(url, pool_size=ADVISORY_POOL, max_overflow=0)
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


class _Batch:
    """Calls `run(items)` for everything queued while the previous call was under way."""

    def __init__(self, run: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        self._run = run
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, item: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="redis-locks")
        return await fut

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} answers for {len(batch)} locks")
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            except BaseException:  # cancelled: nobody may wait forever
                for _, fut in batch:
                    fut.cancel()
                raise
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)


class _RedisLocks:
    """Person locks in Redis, taken and given back in batches (one script call per batch)."""

    def __init__(self, redis: Any, timeout: float) -> None:
        self._timeout = timeout  # also the locks' time to live: bounds how long a crashed holder blocks
        self._script = redis.register_script(_TAKE_AND_GIVE)
        mine = f"{os.getpid()}:{id(self):x}:"  # this process and lock set; a counter makes each unique
        self._tokens = (mine + str(n) for n in itertools.count())
        self._batch = _Batch(self._run_many)

    async def acquire(self, name: str) -> str | None:
        """Take the lock (waiting while another process has it): the token to release it with, or None
        if it stayed taken for `timeout`. Raises what Redis raises when it cannot be reached."""
        token = next(self._tokens)
        give_up = time.monotonic() + self._timeout
        while not await self._batch((name, "+" + token)):
            if time.monotonic() >= give_up:
                return None
            await asyncio.sleep(RETRY_EVERY)
        return token

    async def release(self, name: str, token: str) -> None:
        await self._batch((name, "-" + token))

    async def _run_many(self, items: list[tuple[str, str]]) -> list[bool]:
        ttl_ms = int(self._timeout * 1000)
        done = await self._script(keys=[n for n, _ in items], args=[ttl_ms, *(op for _, op in items)])
        flags = done.decode() if isinstance(done, bytes) else done  # as the client decodes replies
        return [flag == "1" for flag in flags]
