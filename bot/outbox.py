"""The outbox dispatcher: claims due messages, sends them, and records each result at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy import Row, Table, Update, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.mp import MpClient, WeChatApiError
from flows.notices import notice_payload
from settings import Settings
from store.db import writing
from store.models import OutboxMessage, utcnow
from store.outbox import Outgoing
from store.writer import GroupWriter

log = logging.getLogger(__name__)

Sender = Callable[[Outgoing], Awaitable[None]]
Observer = Callable[[str, str], None]  # (channel, outcome: sent | template | retry | failed)

_OUTBOX = cast(Table, OutboxMessage.__table__)
Claimed = Row[Any]  # an outbox row as claimed (every column), read by attribute like the model


@functools.cache
def _record_statement(columns: frozenset[str]) -> Update:
    """A result written while the lease is ours: the UPDATE for one set of columns, built once."""
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.claimed_by == bindparam("b_by"))
        .values(claimed_by=None, claimed_until=None, **{c: bindparam(f"b_{c}") for c in sorted(columns)})
    )


@functools.cache
def _claim_statement(channels: tuple[str, ...], batch: int) -> Update:
    """Claim a batch of due rows: one UPDATE, built once (a claim runs for nearly every message sent,
    each turn wakes it)."""
    c = _OUTBOX.c
    due = or_(
        (c.status == "pending") & (c.next_attempt_at <= bindparam("b_now")),
        (c.status == "sending") & (c.claimed_until < bindparam("b_now")),
    )
    ids = (
        select(c.id)
        .where(c.channel.in_(channels), due)
        .order_by(c.next_attempt_at, c.id)
        .limit(batch)
        .with_for_update(skip_locked=True)  # rendered on PostgreSQL only; SQLite serialises writers
    )
    return (
        update(_OUTBOX)
        .where(c.id.in_(ids.scalar_subquery()))
        .values(
            status="sending",
            claimed_by=bindparam("b_by"),
            claimed_until=bindparam("b_until"),
            attempts=c.attempts + 1,
        )
        .returning(*_OUTBOX.c)
    )


MAX_ATTEMPTS = 8
RATE_LIMIT_WAIT = 60.0  # 45009: the quota is counted per minute at best, so retry no sooner
SEND_TIMEOUT = 25.0  # one send: token refresh + retried call, each under the 10 s HTTP timeout
SEND_CONCURRENCY = 8  # people sent to at once by one worker (each person's messages stay in order)


class OutboxDispatcher:
    """Delivers outbox rows with leases, retries and backoff; safe with many workers on one database.

    A worker claims a small batch by setting status 'sending', claimed_by and claimed_until (PostgreSQL:
    SELECT … FOR UPDATE SKIP LOCKED inside the UPDATE; SQLite: the same single UPDATE, atomic because
    SQLite has one writer). Each result is recorded right after its send, only while the worker still
    holds the lease. If a worker dies, its lease expires and another worker claims the rows again.

    A batch goes out to several people at once (up to SEND_CONCURRENCY), each person's messages one
    after the other in the order they were written: a winner's text before its pay QR, while WeChat's
    tens of milliseconds per call are spent on many people instead of queueing them all behind each
    other (a rush's 500 winners, a sale's reminders).

    At-least-once, not exactly-once: WeChat's send APIs take no idempotency key, so a message whose
    HTTP request was in flight when its worker died may have been delivered without being recorded,
    and is sent again. Only those can repeat — at most one per person being sent to — because every
    other row of the batch is either recorded already or was never sent.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: Sender | MpClient,
        settings: Settings,
        *,
        worker_id: str,
        lease_seconds: float = 30,
        batch: int = 20,
        backoff_base: float = 1.0,
        backoff_cap: float = 600.0,
        observe: Observer | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        rng: random.Random | None = None,
        records: GroupWriter | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        # Results go into the turns' group commits when given (a rush's sends are recorded many to a
        # transaction); alone, each in its own.
        self._records = records
        self._settings = settings
        self.worker_id = worker_id
        self._lease = dt.timedelta(seconds=lease_seconds)
        # Start a send only with this much lease left, so its result is recorded before anyone reclaims it.
        self._guard = dt.timedelta(seconds=min(SEND_TIMEOUT, lease_seconds / 2))
        self._batch = batch
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._observe = observe
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._sending = asyncio.Semaphore(SEND_CONCURRENCY)
        # One sender per channel; 'wecom' and 'robot' senders are registered here when they exist.
        self.senders: dict[str, Sender] = {}
        self.register("mp", send.send if isinstance(send, MpClient) else send)

    def register(self, channel: str, sender: Sender) -> None:
        """Deliver messages of `channel` with `sender`."""
        self.senders[channel] = sender

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def depth(self) -> int:
        """Messages not yet delivered or given up (pending or being sent)."""
        stmt = select(func.count()).where(OutboxMessage.status.in_(("pending", "sending")))
        async with self._sessionmaker() as session:
            return int((await session.execute(stmt)).scalar_one())

    async def run_forever(self, stop: asyncio.Event, poll_seconds: float = 1.0) -> None:
        """Deliver until `stop` is set; a full batch is followed at once by the next one."""
        while not stop.is_set():
            self._wake.clear()  # before the round, so a wake() during it is not lost
            try:
                if await self.run_once() >= self._batch:
                    continue
            except Exception:
                log.exception("outbox round failed; retrying after the poll interval")
            waiters = [asyncio.ensure_future(e.wait()) for e in (self._wake, stop)]
            await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def run_once(self) -> int:
        """Claim one batch of due messages, send each and record it; returns how many were sent."""
        queues: dict[tuple[str, str], list[Claimed]] = {}
        for row in await self._claim():  # in the order written
            queues.setdefault((row.channel, row.recipient), []).append(row)
        return sum(await asyncio.gather(*(self._deliver_in_order(rows) for rows in queues.values())))

    async def _deliver_in_order(self, rows: list[Claimed]) -> int:
        """One person's messages of the batch, one after the other."""
        sent = 0
        async with self._sending:
            for i, row in enumerate(rows):
                if row.claimed_until is not None and self._clock() + self._guard > row.claimed_until:
                    # Too little lease left to send and record: hand the rest back, not race a new owner.
                    await self._release([r.id for r in rows[i:]])
                    break
                sent += await self._deliver(row)
        return sent

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        params = {"b_now": now, "b_by": self.worker_id, "b_until": now + self._lease}
        stmt = _claim_statement(tuple(self.senders), self._batch)
        async with writing(self._sessionmaker), self._sessionmaker() as session, session.begin():
            rows = list(await session.execute(stmt, params))
        return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))

    async def _deliver(self, row: Claimed) -> int:
        msg = Outgoing(row.channel, row.recipient, row.kind, row.payload, row.dedupe_key)
        try:
            await self.senders[row.channel](msg)
        except WeChatApiError as exc:
            return await self._on_api_error(row, msg, exc)
        except (KeyError, TypeError, ValueError) as exc:
            await self._fail(row, f"bad payload: {exc!r}")
        except Exception as exc:
            log.exception("outbox %s: unexpected error", row.id)
            await self._retry(row, repr(exc))
        else:
            await self._record(row, status="sent", sent_at=self._clock(), last_error=None)
            self._note(row, "sent")
            return 1
        return 0

    async def _on_api_error(self, row: Claimed, msg: Outgoing, exc: WeChatApiError) -> int:
        if exc.errcode == 45015 and row.channel == "mp":
            return await self._fallback_template(row, msg)
        if exc.retryable:
            await self._retry(row, str(exc), rate_limited=exc.errcode == 45009)
        else:
            await self._fail(row, str(exc))
        return 0

    async def _fallback_template(self, row: Claimed, msg: Outgoing) -> int:
        """Outside the 48-hour window only a template message reaches the person."""
        template_id = self._settings.wechat_notice_template_id
        if not template_id:
            await self._fail(
                row, "45015: outside the 48-hour window and WECHAT_NOTICE_TEMPLATE_ID is not set"
            )
            return 0
        notice = Outgoing(msg.channel, msg.recipient, "template", self._notice(msg, template_id))
        try:
            await self.senders[row.channel](notice)
        except WeChatApiError as exc:
            if exc.retryable:
                await self._retry(row, f"45015, template fallback: {exc}", rate_limited=exc.errcode == 45009)
            else:
                await self._fail(row, f"45015, template fallback: {exc}")
            return 0
        note = f"45015: sent as template {template_id}"
        await self._record(row, status="sent", sent_at=self._clock(), last_error=note)
        self._note(row, "template")
        return 1

    def _notice(self, msg: Outgoing, template_id: str) -> dict[str, Any]:
        text = msg.payload.get("content") if msg.kind == "text" else None
        return notice_payload(text or "", template_id, self._clock())

    async def _retry(self, row: Claimed, error: str, *, rate_limited: bool = False) -> None:
        if row.attempts >= MAX_ATTEMPTS:
            await self._fail(row, f"gave up after {row.attempts} attempts: {error}")
            return
        delay = self._backoff(row.attempts, rate_limited)
        due = self._clock() + dt.timedelta(seconds=delay)
        await self._record(row, status="pending", next_attempt_at=due, last_error=error)
        self._note(row, "retry")

    def _backoff(self, attempts: int, rate_limited: bool) -> float:
        """Exponential with jitter (so workers do not retry in step); 45009 waits at least a minute."""
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempts - 1))
        delay = self._rng.uniform(ceiling / 2, ceiling)
        return max(delay, RATE_LIMIT_WAIT) if rate_limited else delay

    async def _fail(self, row: Claimed, error: str) -> None:
        log.warning("outbox %s to %s failed: %s", row.id, row.recipient, error)
        await self._record(row, status="failed", last_error=error)
        self._note(row, "failed")

    async def _record(self, row: Claimed, **values: Any) -> None:
        """Write the result, but only while this worker still owns the lease."""
        params = {"b_id": row.id, "b_by": self.worker_id, **{f"b_{k}": v for k, v in values.items()}}
        stmt = _record_statement(frozenset(values))
        if self._records is not None:
            await self._records.write([(stmt, params)], notify=False)
            return
        async with writing(self._sessionmaker), self._sessionmaker() as session, session.begin():
            await session.execute(stmt, params)

    async def _release(self, ids: list[int]) -> None:
        stmt = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == self.worker_id)
            .values(
                status="pending", claimed_by=None, claimed_until=None, attempts=OutboxMessage.attempts - 1
            )
            .execution_options(synchronize_session=False)
        )
        async with writing(self._sessionmaker), self._sessionmaker() as session, session.begin():
            await session.execute(stmt)

    def _note(self, row: Claimed, outcome: str) -> None:
        if self._observe is not None:
            self._observe(row.channel, outcome)
