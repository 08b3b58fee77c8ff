"""dedupe → dispatch → respond within WeChat's 5 seconds, for one inbound event.

WeChat waits 5 s for an answer, then retries the same message up to 3 times. We give a handler
`reply_budget` seconds: answered in time, the reply goes back passively in the HTTP response;
otherwise the webhook says `success` and the reply travels later as a customer-service message.
A retry that arrives while the first attempt is still running joins it instead of running again;
a retry after it finished gets the answer stored with the message.

Nothing acknowledged is lost (README, "Failure model"): a turn that fails before it is committed
(the database or the lock unreachable) answers NotTaken, which the webhook turns into a non-200 so
that WeChat sends the message again. A turn that fails after the webhook already said `success`
(it outlived the reply budget) is run again here, with backoff, until it commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from wechatpy.replies import ArticlesReply, ImageReply, TextReply

from bot.locks import PersonLocks
from bot.metrics import Metrics
from handlers import turn as turns
from handlers.context import Ctx, Reply, Services
from handlers.events import Event
from handlers.router import Router
from settings import Settings
from store import funnel
from store import turns as store_turns
from store.models import utcnow
from store.outbox import Outgoing
from store.writer import GroupWriter

log = logging.getLogger(__name__)

# How long a late waiter keeps waiting for a commit already under way before saying `success`.
COMMIT_GRACE = 0.5
# Pauses between runs of an acknowledged turn that failed (about 4 minutes in all).
LATE_RETRIES = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 60.0, 90.0)


class NotTaken(Exception):
    """The turn was neither handled nor recorded: the webhook must not acknowledge it."""


@dataclass(slots=True)
class _Turn:
    event: Event
    answer: asyncio.Future[str | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    late: bool = False  # the webhook already answered `success`: replies must go by API
    committing: bool = False


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        writer: GroupWriter,
        router: Router,
        locks: PersonLocks,
        metrics: Metrics,
        services: Services | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._sessionmaker = sessionmaker
        self._writer = writer
        self._router = router
        self._locks = locks
        self._metrics = metrics
        self._services = services or Services()
        self._stmts = store_turns.TurnStatements(engine.dialect.name)
        self._reader = store_turns.TurnReader(engine)
        self._inflight: dict[tuple[str, str, str], _Turn] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, event: Event) -> str | None:
        """The passive reply XML for this event, or None to answer `success`."""
        key = (event.account, event.openid, event.key)
        turn = self._inflight.get(key)
        if turn is None:
            turn = self._inflight[key] = _Turn(event)
            task = asyncio.create_task(self._process(key, turn), name=f"turn:{event.key}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._metrics.duplicates.inc()
        return await self._wait(turn, self._settings.reply_budget)

    async def _wait(self, turn: _Turn, budget: float) -> str | None:
        if await _ready(turn.answer, budget):
            return turn.answer.result()
        if turn.committing and await _ready(turn.answer, COMMIT_GRACE):
            return turn.answer.result()
        turn.late = True
        return None

    async def drain(self) -> None:
        """Let turns under way finish (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._reader.close()

    async def _process(self, key: tuple[str, str, str], turn: _Turn) -> None:
        try:
            await self._run_until_taken(turn)
        finally:
            if not turn.answer.done():
                turn.answer.set_result(None)
            self._inflight.pop(key, None)

    async def _run_until_taken(self, turn: _Turn) -> None:
        ev = turn.event
        for pause in (*LATE_RETRIES, None):
            try:
                async with self._locks.hold(ev.account, ev.openid):
                    await self._run(turn)
                return
            except Exception as exc:
                self._metrics.handler_errors.inc()
                if turn.answer.done():  # committed; what failed came after
                    log.exception("turn failed after its commit", extra={"msg_key": ev.key})
                    return
                if not turn.late:
                    # Nobody was told `success` yet: the webhook answers non-200 and WeChat resends.
                    log.warning("turn not taken", extra={"msg_key": ev.key, "error": repr(exc)})
                    turn.answer.set_exception(NotTaken(type(exc).__name__))
                    return
                if pause is None:
                    log.exception(
                        "acknowledged turn given up", extra={"openid": ev.openid, "msg_key": ev.key}
                    )
                    return
                # Already acknowledged: only we can make it happen now (a rerun is deduplicated).
                log.warning("acknowledged turn failed, running it again", extra={"msg_key": ev.key})
                await asyncio.sleep(pause)

    async def _run(self, turn: _Turn) -> None:
        ev = turn.event
        snap = await self._reader.load(account=ev.account, openid=ev.openid, msg_key=ev.key)
        if snap.seen:
            self._metrics.duplicates.inc()
            turn.answer.set_result(snap.reply_xml)
            return
        self._metrics.message_in(ev.name)
        ctx = Ctx(
            event=ev,
            settings=self._settings,
            sessionmaker=self._sessionmaker,
            known_user=snap.known_user,
            subscribed=snap.subscribed,
            state=snap.fresh_state(),
            command=turns.command_of(ev.kind, ev.name, ev.text, ev.event_key),
            services=self._services,
            may_have_open_orders=snap.has_open_orders,
        )
        route = await turns.run(self._router, ctx, snap.state)
        if route.endswith(":error"):
            self._metrics.handler_errors.inc()
        at = utcnow()
        record = store_turns.TurnRecord(
            account=ev.account,
            openid=ev.openid,
            msg_key=ev.key,
            msg_type=ev.name,
            content=ev.text or ev.event_key or ev.media_id or None,
            at=at,
            subscribed=ctx.subscribed,
            touch_user=store_turns.touches_user(snap, subscribed=ctx.subscribed, at=at),
            state=ctx.state if ctx.state != snap.state else None,
            outbox=list(ctx.later),
        )
        passive = not turn.late and _passive_first(ctx.replies)
        if passive:
            # The first answer in the HTTP response, the rest by API after it (a winner's text, then
            # its pay QR): what they say arrives at once, and a turn spends one API send fewer.
            record.reply_xml = render(ctx.replies[0], ev)
            record.outbox[:0] = self._by_api(ev, ctx.replies)[1:]
            turn.committing = True
        else:
            record.outbox[:0] = self._by_api(ev, ctx.replies)
        # The outbox dispatcher is woken only by commits that gave it something to send.
        if ev.kind == "event" and ev.name == "subscribe":
            ctx.mark("followed")
        rows = [
            *store_turns.writes(self._stmts, record),
            *funnel.writes(ev.account, ev.openid, ctx.steps, record.at),
            *ctx.writes,
        ]
        await self._writer.write(rows, notify=bool(record.outbox))
        for callback in ctx.on_commit:
            callback()
        if passive and turn.late:
            # The commit outlived the grace period: the person gets the answer by API instead (after
            # the rest of the turn's replies, already committed: the one case they are not in order).
            await self._writer.write(
                store_turns.reply_went_by_api(self._stmts, record, self._by_api(ev, ctx.replies)[:1])
            )
            record.reply_xml = None
        mode = "passive" if record.reply_xml else "outbox" if ctx.replies else "none"
        self._metrics.reply(mode)
        turn.answer.set_result(record.reply_xml)

    @staticmethod
    def _by_api(ev: Event, replies: list[Reply]) -> list[Outgoing]:
        return [
            Outgoing("mp", ev.openid, r.kind, r.payload, dedupe_key=f"r:{ev.openid}:{ev.key}:{i}")
            for i, r in enumerate(replies)
        ]


def _passive_first(replies: list[Reply]) -> bool:
    """Whether the first reply can go back in the HTTP response whole (the rest then go by API)."""
    if not replies:
        return False
    first = replies[0]
    return first.kind in ("text", "image") or (first.kind == "news" and len(replies) == 1)


async def _ready(fut: asyncio.Future[str | None], within: float) -> bool:
    """Wait up to `within` seconds for `fut` without ever cancelling it (what shield + wait_for did, with one
    timer and one future instead of two tasks' worth of callbacks: this runs for every request)."""
    if fut.done():
        return True
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(within, wake)
    fut.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        fut.remove_done_callback(wake)
    return fut.done()


def render(reply: Reply, ev: Event) -> str:
    """A passive reply as WeChat's XML (from our account to the person)."""
    common = {"source": ev.account, "target": ev.openid, "time": int(time.time())}
    if reply.kind == "text":
        return str(TextReply(content=reply.payload["content"], **common).render())
    if reply.kind == "image":
        return str(ImageReply(media_id=reply.payload["media_id"], **common).render())
    if reply.kind == "news":
        return str(ArticlesReply(articles=reply.payload["articles"][:1], **common).render())
    raise ValueError(f"cannot render a passive {reply.kind} reply")
