"""Background jobs, tracked like every task: each runs on its period, or sooner — at the next due time
its data names (`next_due`), or at once when something wakes it (`Scheduler.wake`).

Every process runs every job; the jobs claim their work with conditional UPDATEs and unique keys, so
a wake-up in one process and the timer of another never do a thing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from store.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: float  # seconds: the longest sleep between two runs
    run: Callable[[], Awaitable[int]]  # returns how many things it did (for the log)
    # When the earliest thing the job knows of falls due (None: nothing waits), read after each run.
    next_due: Callable[[], Awaitable[dt.datetime | None]] | None = None


def seconds_until(due: dt.datetime | None, now: dt.datetime, longest: float) -> float:
    """How long to sleep before `due` (no time if it has passed), never longer than `longest`."""
    if due is None:
        return longest
    return min(longest, max(0.0, (due - now).total_seconds()))


class Scheduler:
    """Runs jobs until stopped; `wake(name)` runs one again now (e.g. after the change it acts on)."""

    def __init__(self, jobs: list[Job], *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.jobs = jobs
        self._clock = clock
        self._wakeups = {job.name: asyncio.Event() for job in jobs}

    def wake(self, name: str) -> None:
        """Run the job `name` as soon as it is not running (a no-op for a job that is not scheduled)."""
        if (wakeup := self._wakeups.get(name)) is not None:
            wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Each job in its own loop until `stop`; a failing job is logged and tried again later."""
        await asyncio.gather(*(self._loop(job, stop) for job in self.jobs))

    async def delay(self, job: Job) -> float:
        """Seconds until the job should run again, from its data when it can tell."""
        if job.next_due is None:
            return job.every
        try:
            due = await job.next_due()
        except Exception:
            log.exception("job's next due time unknown", extra={"job": job.name})
            return job.every
        return seconds_until(due, self._clock(), job.every)

    async def _loop(self, job: Job, stop: asyncio.Event) -> None:
        wakeup = self._wakeups[job.name]
        while not stop.is_set():
            wakeup.clear()  # a wake-up during the run below runs it once more
            try:
                done = await job.run()
                if done:
                    log.info("job ran", extra={"job": job.name, "done": done})
            except Exception:
                log.exception("job failed", extra={"job": job.name})
            await _first_of(stop, wakeup, seconds=await self.delay(job))


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    """Wait until one of `events` is set or `seconds` have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
