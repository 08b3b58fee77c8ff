"""Per-person locks: two messages from one person are handled one after the other.

In one process an asyncio.Lock per person is enough; with Redis (several processes) a Redis lock
is taken as well, so the state a turn reads is the state the previous turn committed.

The Redis locks are taken and given back in batches: the turns that want one while a round trip is
under way go together in the next, one script call for all of them (a lock per person as before:
`SET key token NX PX`, and a delete only by the token's owner). Two round trips of redis-py per turn
were the largest cost of a turn on several processes; now a turn pays a share of two.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

# KEYS: the locks; ARGV[1]: time to live (ms), ARGV[1 + i]: the token for KEYS[i]. 1 where taken, else 0.
_ACQUIRE = """
local taken = {}
for i, key in ipairs(KEYS) do
  taken[i] = redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1]) and 1 or 0
end
return taken
"""
# KEYS: the locks; ARGV[i]: the token KEYS[i] was taken with. A lock that expired and was taken by
# someone else since is left alone.
_RELEASE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then redis.call('DEL', key) end
end
return 0
"""
RETRY_EVERY = 0.01  # seconds between tries for a lock another process holds


class LockTimeout(Exception):
    """A person's Redis lock stayed taken longer than the timeout (its holder crashed or hangs)."""


class PersonLocks:
    def __init__(self, redis: Any | None = None, *, timeout: float = 15.0) -> None:
        self._redis = None if redis is None else _RedisLocks(redis, timeout)
        self._timeout = timeout
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

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
                    # timeout bounds how long a crashed holder blocks this person.
                    name = f"chatorder:person:{key}"
                    token = await self._redis.acquire(name)
                    try:
                        yield
                    finally:
                        await self._redis.release(name, token)
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)


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
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)


class _RedisLocks:
    def __init__(self, redis: Any, timeout: float) -> None:
        self._timeout = timeout
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._release_script = redis.register_script(_RELEASE)
        self._tokens = (f"{os.getpid()}:{id(self):x}:{n}" for n in itertools.count())
        self._try = _Batch(self._try_many)
        self._give_back = _Batch(self._release_many)

    async def acquire(self, name: str) -> str:
        """Take the lock (waiting while another process has it); returns the token to release it with."""
        token = next(self._tokens)
        give_up = time.monotonic() + self._timeout
        while not await self._try((name, token)):
            if time.monotonic() >= give_up:
                raise LockTimeout(name)
            await asyncio.sleep(RETRY_EVERY)
        return token

    async def release(self, name: str, token: str) -> None:
        await self._give_back((name, token))

    async def _try_many(self, items: list[tuple[str, str]]) -> list[bool]:
        ttl_ms = int(self._timeout * 1000)
        taken = await self._acquire_script(keys=[n for n, _ in items], args=[ttl_ms, *(t for _, t in items)])
        return [bool(x) for x in taken]

    async def _release_many(self, items: list[tuple[str, str]]) -> list[None]:
        await self._release_script(keys=[n for n, _ in items], args=[t for _, t in items])
        return [None] * len(items)
