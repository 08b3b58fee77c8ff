"""The staff context: one callback from one member, the staff router, and the one error path."""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import desk, texts
from flows import texts_staff as ts
from flows.format import yuan
from handlers.context import Services
from handlers.events import WorkEvent
from handlers.router import Route, Routes
from settings import Settings
from store import staff
from store.errors import DomainError
from store.models import Order, Staff, utcnow
from store.outbox import Outgoing, enqueue

log = logging.getLogger(__name__)

NUMBER = re.compile(r"(\d{8})-?(\d{4})")


class Usage(Exception):
    """Missing or malformed arguments: the answer is the command's usage line."""


def fold(word: str) -> str:
    """Width and case folded: '２０２６' is 2026 and 'OPS' is ops (only for words the desk parses)."""
    return unicodedata.normalize("NFKC", word).strip().lower()


def pair(text: str) -> tuple[str, str]:
    """The first word and the rest of the line (any run of spaces, full-width ones too, separates)."""
    parts = text.split(None, 1)
    return (parts[0] if parts else ""), (parts[1].strip() if len(parts) > 1 else "")


@dataclass
class Turn:
    """One callback from one member: who they are, what they typed, and what goes back."""

    event: WorkEvent
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    services: Services
    now: dt.datetime
    member: Staff | None = None
    word: str = ""  # the command word, as registered
    rest: str = ""  # what follows it
    out: list[Outgoing] = field(default_factory=list)
    after: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    @property
    def userid(self) -> str:
        return self.event.userid

    @property
    def account(self) -> str:
        return f"wecom:{self.event.corp_id}"

    @property
    def actor(self) -> str:
        return staff.actor_of(self.userid)

    @property
    def me(self) -> Staff:
        """The member acting (registered and allowed: checked before any command runs)."""
        assert self.member is not None
        return self.member

    def say(self, template: str, **values: Any) -> None:
        """Reply with a texts_staff template."""
        self.send(template.format(brand=self.settings.brand, **values))

    def send(self, content: str) -> None:
        """Reply with a text already written."""
        self.out += desk.to_staff(self.userid, content)

    def args(self) -> tuple[str, str]:
        """The order number typed first, and the rest of the line; Usage without a number."""
        parts = self.rest.split(None, 1)
        match = NUMBER.fullmatch(fold(parts[0])) if parts else None
        if match is None:
            raise Usage
        return f"{match[1]}-{match[2]}", parts[1].strip() if len(parts) > 1 else ""

    def wake_later(self, job: str) -> None:
        """Run the background job `job` once this turn's change is committed (e.g. a payout)."""
        wake = self.services.wake_job
        if wake is not None:
            self.after.append(lambda: _woken(wake, job))

    def hand_out_later(self) -> None:
        """Someone may have room now: hand out the backlog once this turn's change is committed."""
        self.after.append(lambda: desk.hand_out_backlog(self.sessionmaker, self.settings, utcnow()))

    @asynccontextmanager
    async def change(self, customer: tuple[str, str] | None = None) -> AsyncIterator[AsyncSession]:
        """One transaction: the change, its audit entry and the messages it causes commit together.

        A change that writes a customer's conversation holds their lock (taken before the transaction,
        as their own turns do), so a message of theirs handled meanwhile cannot write over it.
        """
        locks = self.services.locks
        mark = len(self.out)
        try:
            async with (
                locks.hold(*customer) if customer and locks else nullcontext(),
                self.sessionmaker.begin() as session,
            ):
                yield session
                await enqueue(session, *self.out)
        except BaseException:
            del self.out[mark:]  # a refusal: what the change would have said is not said
            raise
        self.out.clear()
        self.wake()

    async def customer_of(self, *, number: str = "", order_id: int = 0) -> tuple[str, str] | None:
        """The (account, openid) of an order's customer, or None when there is no such order."""
        async with self.sessionmaker() as session:
            where = Order.number == number if number else Order.id == order_id
            found = (await session.execute(select(Order.account, Order.openid).where(where))).first()
        return (found[0], found[1]) if found else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def flush(self) -> None:
        """Write what is left to say (answers to reads and refusals)."""
        if self.out:
            async with self.sessionmaker.begin() as session:
                await enqueue(session, *self.out)
            self.out.clear()
            self.wake()

    def wake(self) -> None:
        if self.services.wake_outbox is not None:
            self.services.wake_outbox()


StaffHandler = Callable[[Turn], Awaitable[None]]


class StaffRouter(Routes[Turn]):
    """Staff commands: a command word (typed first on the line) and the permission it needs."""

    def __init__(self, name: str) -> None:
        super().__init__(name, key=_word)
        self.words: list[str] = []  # every command word, in the order registered

    def command(self, word: str, action: str) -> Callable[[StaffHandler], StaffHandler]:
        """Register a command word and the permission it needs (store.staff.PERMISSIONS key)."""

        def register(run: StaffHandler) -> StaffHandler:
            async def checked(turn: Turn) -> None:
                staff.check(turn.member, action)
                await run(turn)

            self.words.append(word)
            matches: Callable[[Turn], bool] = lambda turn: turn.word == word  # noqa: E731
            self.add(Route(f"{self.name}.{run.__name__}", matches, checked, frozenset((word,))))
            return run

        return register

    def include(self, *routers: StaffRouter) -> None:
        super().include(*routers)
        for router in routers:
            self.words.extend(router.words)


def _word(turn: Turn) -> str | None:
    return turn.word


async def guarded(turn: Turn, run: Callable[[], Awaitable[None]]) -> None:
    """The one error path: a refusal or a usage line becomes the reply; nothing was changed."""
    try:
        await run()
    except Usage:
        turn.say(ts.USAGE_LINE, usage=ts.USAGE.get(turn.word, ts.HELP))
    except DomainError as exc:
        turn.send(await refusal(turn, exc))


async def refusal(turn: Turn, exc: DomainError) -> str:
    """The member's sentence for a store refusal."""
    if exc.code == "not_staff":
        return ts.NOT_STAFF.format(brand=turn.settings.brand)
    if exc.code == "forbidden":
        needed = [ts.ROLE_NAMES[r] for r in exc.details.get("roles", ())] + [ts.ROLE_NAMES["admin"]]
        mine = desk.role_names(turn.member.roles) if turn.member else ts.NOBODY
        return ts.FORBIDDEN.format(
            command=turn.word, roles=ts.FORBIDDEN_OR.join(needed), mine=mine or ts.NOBODY
        )
    template = ts.DOMAIN_ERRORS.get(exc.code) or texts.STAFF_ERRORS.get(exc.code)
    if template is None:
        return ts.REFUSED.format(code=exc.code)
    values = dict(exc.details)
    if values.get("assignee"):
        async with turn.read() as session:
            values["assignee"] = await desk.member_name(session, values["assignee"])
    for key in ("refundable", "amount_fen", "balance", "needed", "debt_fen"):
        if isinstance(values.get(key), int):
            values[key] = yuan(values[key])
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        log.warning("refusal %s could not be worded with %s", exc.code, sorted(values))
        return ts.REFUSED.format(code=exc.code)


async def _woken(wake: Callable[[str], None], job: str) -> None:
    wake(job)
