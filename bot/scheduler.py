"""Periodic background jobs (reminders now; expiry and reports later), tracked like every task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    every: float  # seconds
    run: Callable[[], Awaitable[int]]  # returns how many things it did (for the log)


async def run_jobs(jobs: list[Job], stop: asyncio.Event) -> None:
    """Run each job on its own period until `stop`; a failing job is logged and tried again later."""
    await asyncio.gather(*(_loop(job, stop) for job in jobs))


async def _loop(job: Job, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            done = await job.run()
            if done:
                log.info("job ran", extra={"job": job.name, "done": done})
        except Exception:
            log.exception("job failed", extra={"job": job.name})
        try:
            await asyncio.wait_for(stop.wait(), job.every)
        except TimeoutError:
            continue
