"""Per-person locks: two messages from one person are handled one after the other.

In one process an asyncio.Lock per person is enough; with Redis (several processes) a Redis lock
is taken as well, so the state a turn reads is the state the previous turn committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


class PersonLocks:
    def __init__(self, redis: Any | None = None, *, timeout: float = 15.0) -> None:
        self._redis = redis
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
                    async with self._redis.lock(
                        f"chatorder:person:{key}", timeout=self._timeout, blocking_timeout=self._timeout
                    ):
                        yield
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)
