"""Group commit: many small independent writes share one transaction and one fsync.

A per-message SQLite commit costs about a millisecond (the fsync), which caps a webhook near
1,000 msg/s. Callers still wait for *their* commit before answering, so nothing acknowledged is
ever lost; they just share the fsync with whoever else is waiting at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from store.db import writing
from store.errors import DomainError

log = logging.getLogger(__name__)

Write = tuple[Executable, dict[str, Any]]


@dataclass(slots=True)
class _Unit:
    writes: Sequence[Write]
    notify: bool = True
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupWriter:
    """Queue of write units; one background task commits whatever is waiting, in one transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 256,
        after_commit: Callable[[], Awaitable[None] | None] | None = None,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._after_commit = after_commit
        self._queue: asyncio.Queue[_Unit] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last: _Unit | None = None
        self.batches = 0
        self.units = 0

    async def write(self, writes: Sequence[Write], *, notify: bool = True) -> None:
        """Return once `writes` are committed; raise if their transaction failed.

        `after_commit` runs after a commit that carried at least one unit written with `notify`.
        """
        if not writes:
            return
        unit = self._last = _Unit(writes, notify)
        self._queue.put_nowait(unit)
        self._ensure_running()
        # No shield: if the caller is cancelled, `done` is cancelled with it, and the unit is still
        # committed with its batch (_settle skips futures already done). shield cost a future and
        # two callbacks per turn.
        await unit.done

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-writer")

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        if self._last is not None and self._task and not self._task.done():
            await asyncio.gather(self._last.done, return_exceptions=True)  # units settle in order
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[_Unit]) -> None:
        try:
            async with writing(self._engine), self._engine.begin() as conn:
                await _execute_grouped(conn, [w for unit in batch for w in unit.writes])
        except BaseException as exc:
            # One bad unit (a duplicate key from another process, a row the driver cannot bind) must
            # not fail the others, nor end this task with their callers waiting.
            await _failed(batch, exc, self._commit, "group commit")
            return
        self.batches += 1
        self.units += len(batch)
        for unit in batch:
            _settle(unit.done, None, None)
        if self._after_commit and any(unit.notify for unit in batch):
            result = self._after_commit()
            if result is not None:
                await result


class _Waited(Protocol):
    @property
    def done(self) -> asyncio.Future[Any]: ...


W = TypeVar("W", bound=_Waited)


async def _failed(
    batch: list[W], exc: BaseException, commit: Callable[[list[W]], Awaitable[None]], what: str
) -> None:
    """A batch's transaction failed. Cancelled (shutdown): its callers are cancelled too, nobody waits
    forever. Any error, not only the database's: one unit's caller gets it; several units run again
    one per transaction, so only the unit that caused it fails."""
    if not isinstance(exc, Exception):
        for unit in batch:
            unit.done.cancel()
        raise exc
    if len(batch) == 1:
        _settle(batch[0].done, None, exc)
        return
    log.warning("%s of %d units failed (%s); running them one by one", what, len(batch), exc)
    for unit in batch:
        await commit([unit])


def _settle(done: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    """A caller's outcome; one whose caller was cancelled is committed (or refused) all the same."""
    if done.done():
        return
    if exc is None:
        done.set_result(value)
    else:
        done.set_exception(exc)


async def _execute_grouped(conn: AsyncConnection, writes: list[Write]) -> None:
    """Run writes with the same statement as one executemany, in order of first appearance."""
    groups: dict[int, tuple[Executable, list[dict[str, Any]]]] = {}
    for stmt, params in writes:
        groups.setdefault(id(stmt), (stmt, []))[1].append(params)
    for stmt, params_list in groups.values():
        await conn.execute(stmt, params_list)


# --- Shared transactions: short units of work, many to a commit --------------------------------------

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[T]]


@dataclass(slots=True)
class _Job:
    work: Work[Any]
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class SharedTransactions:
    """Units of work that each run a few statements, run back to back in one transaction, one commit.

    For a burst of the same small transaction (a flash sale's takes): on SQLite one writer at a time
    holds the write lock, and a transaction of its own per unit held it across a thread hop for BEGIN
    and another for COMMIT, with the whole event loop's other work run between — so units queued
    behind the lock for far longer than their statements took. Here whoever waits meanwhile joins
    the next batch. Each caller gets its own unit's result or exception once the batch is committed.

    A unit refusing (DomainError) must leave nothing changed: its caller is told, the others go on.
    Any other error fails the batch's transaction; the batch is then run again one unit per
    transaction, so it fails only the unit that caused it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = 64) -> None:
        self._sessionmaker = sessionmaker
        self._max_batch = max_batch
        self._queue: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def run(self, work: Work[T]) -> T:
        """`work`'s result (or exception), once the transaction it ran in is committed."""
        job = _Job(work)
        self._queue.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="shared-transactions")
        result: T = await job.done
        return result

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            await self._commit(batch)

    async def _commit(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            async with writing(self._sessionmaker), self._sessionmaker.begin() as session:
                for job in batch:
                    try:
                        outcomes.append((job, await job.work(session), None))
                    except DomainError as exc:
                        outcomes.append((job, None, exc))
        except BaseException as exc:
            await _failed(batch, exc, self._commit, "shared transaction")
            return
        self.batches += 1
        for job, value, refused in outcomes:
            _settle(job.done, value, refused)


_SHARED: weakref.WeakKeyDictionary[Any, SharedTransactions] = weakref.WeakKeyDictionary()


def shared_transactions(sessionmaker: async_sessionmaker[AsyncSession]) -> SharedTransactions:
    """This process's SharedTransactions for the sessionmaker's database (made on first use)."""
    engine = sessionmaker.kw["bind"].sync_engine
    found = _SHARED.get(engine)
    if found is None:
        found = _SHARED[engine] = SharedTransactions(sessionmaker)
    return found
