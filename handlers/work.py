"""Staff in WeCom work chat: typed commands and card buttons, for registered members with the right role.

A text is a command (「通过 20261122-0042」) or the answer to the one question the desk asked (the
reason after 驳回 on a card). A card click acts once: the first click settles every card about its
order (or withdrawal), later clicks are told who did what and their card is updated. Each change runs
in one transaction with its audit entry and the messages it causes; the outbox is woken after commit.
"""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.pay import PayError
from flows import creators as creator_flows
from flows import desk, relay, review, texts
from flows import texts_staff as ts
from flows.format import yuan
from flows.notices import order_notice
from flows.payments import refund_order
from handlers.context import Services
from handlers.events import WorkEvent
from settings import Settings
from store import earnings, payments, staff
from store.errors import DomainError
from store.models import Order, Staff, utcnow
from store.orders import BEIJING, OrderStatus
from store.outbox import Outgoing, enqueue

log = logging.getLogger(__name__)

WorkHandler = Callable[[WorkEvent], Awaitable[None]]
REASON_TTL = dt.timedelta(minutes=10)  # the next text within this is the reason asked for
NUMBER = re.compile(r"(\d{8})-?(\d{4})")
AMOUNT = re.compile(r"[¥￥]?(\d{1,9})(?:\.(\d{1,2}))?元?")
LIST_SEPARATORS = re.compile(r"[,，、/]+")
ORDER_BUTTONS = frozenset({"approve", "reject", "claim"})
WITHDRAWAL_BUTTONS = frozenset({"wd_approve", "wd_refuse"})
CANCEL_WORDS = frozenset({"取消", "算了", "不用了"})


async def ignore(event: WorkEvent) -> None:
    """Accept and do nothing."""


class Usage(Exception):
    """Missing or malformed arguments: the answer is the command's usage line."""


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
        """Run the background job `job` now that this turn's change is committed (e.g. a payout)."""
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


# --- The router ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    action: str  # store.staff.PERMISSIONS key
    run: Callable[[Turn], Awaitable[None]]


COMMANDS: dict[str, Command] = {}
ALIASES = {"查看对话": "对话", "help": "帮助", "菜单": "帮助", "?": "帮助", "查询": "查单", "今天": "今日"}


def command(
    word: str, action: str
) -> Callable[[Callable[[Turn], Awaitable[None]]], Callable[[Turn], Awaitable[None]]]:
    """Register a command word and the permission it needs."""

    def register(run: Callable[[Turn], Awaitable[None]]) -> Callable[[Turn], Awaitable[None]]:
        COMMANDS[word] = Command(action, run)
        return run

    return register


def build(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], services: Services
) -> WorkHandler:
    """The handler /wechat/work calls once per distinct callback."""

    async def handle(event: WorkEvent) -> None:
        turn = Turn(event, settings, sessionmaker, services, utcnow())
        try:
            await dispatch(turn)
        except Exception:
            # Staff never see a traceback: an apology, and the details in the log.
            log.exception("work chat handler failed", extra={"userid": event.userid, "msg_key": event.key})
            turn.out.clear()
            turn.say(ts.SORRY)
        await turn.flush()
        for job in turn.after:
            try:
                await job()
            except Exception:
                log.exception("work chat follow-up failed", extra={"userid": event.userid})

    return handle


async def _woken(wake: Callable[[str], None], job: str) -> None:
    wake(job)


async def dispatch(turn: Turn) -> None:
    """Texts are commands or answers; card buttons act once; other events need no answer."""
    if turn.event.kind == "text":
        await on_text(turn)
    elif turn.event.kind == "event" and turn.event.name == "template_card_event":
        await on_click(turn)


def fold(word: str) -> str:
    """Width and case folded: '２０２６' is 2026 and 'OPS' is ops (only for words the desk parses)."""
    return unicodedata.normalize("NFKC", word).strip().lower()


def pair(text: str) -> tuple[str, str]:
    """The first word and the rest of the line (any run of spaces, full-width ones too, separates)."""
    parts = text.split(None, 1)
    return (parts[0] if parts else ""), (parts[1].strip() if len(parts) > 1 else "")


def split_command(text: str) -> tuple[str, str]:
    """'通过 20261122-0042' → ('通过', '20261122-0042'); also when the number sticks to the word.
    What follows the command keeps its exact characters: reasons and replies reach customers."""
    head, rest = pair(text)
    head = fold(head)
    word = ALIASES.get(head, head)
    if word not in COMMANDS:
        for known in sorted([*COMMANDS, *ALIASES], key=len, reverse=True):
            if head.startswith(known) and len(head) > len(known):
                return ALIASES.get(known, known), f"{head[len(known) :]} {rest}".strip()
    return word, rest


async def on_text(turn: Turn) -> None:
    """A command, or the answer to the question the desk asked this member."""
    text = turn.event.text.strip()
    async with turn.read() as session:
        turn.member = await staff.get_member(session, turn.userid)
        question = None
        if turn.member is not None:
            question = await staff.pending_question(session, account=turn.account, userid=turn.userid)
    if turn.member is None:
        turn.say(ts.NOT_STAFF)
        return
    turn.word, turn.rest = split_command(text)
    # Only a command typed as its own word interrupts a question: "回复太慢" is a reason, not 回复.
    first = fold(pair(text)[0])
    if question is not None and ALIASES.get(first, first) not in COMMANDS and _fresh(question, turn.now):
        await guarded(turn, lambda: answer(turn, question, text))
        return
    found = COMMANDS.get(turn.word)
    if found is None:
        turn.send(_unknown(turn.word, text))
        return
    await guarded(turn, lambda: _run(turn, found))


async def _run(turn: Turn, found: Command) -> None:
    staff.check(turn.member, found.action)
    await found.run(turn)


def _unknown(word: str, text: str) -> str:
    """A typo gets the usage line of the command it resembles; anything else the command list."""
    close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.5)
    if close and word:
        return ts.DID_YOU_MEAN.format(word=word, usage=ts.USAGE[close[0]])
    return ts.UNKNOWN.format(text=text[:20])


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


def _fresh(question: dict[str, Any], now: dt.datetime) -> bool:
    try:
        return now - dt.datetime.fromisoformat(str(question.get("at"))) <= REASON_TTL
    except ValueError:
        return False


# --- Card buttons -------------------------------------------------------------------------------------


async def on_click(turn: Turn) -> None:
    """A button on a card: act once, settle the card, update it for everyone who got it."""
    action, _, ref = turn.event.event_key.partition(":")
    async with turn.read() as session:
        turn.member = await staff.get_member(session, turn.userid)
    if turn.member is None:
        turn.say(ts.NOT_STAFF)
        return
    turn.word = ts.BUTTONS.get(action, "")
    if not ref.isdigit() or action not in ORDER_BUTTONS | WITHDRAWAL_BUTTONS:
        turn.say(ts.CARD_UNKNOWN)
        return
    click = click_withdrawal if action in WITHDRAWAL_BUTTONS else click_order
    await guarded(turn, lambda: click(turn, action, int(ref)))


async def click_order(turn: Turn, action: str, order_id: int) -> None:
    staff.check(turn.member, action)
    subject = f"order:{order_id}"
    async with turn.change() as session:
        card = await staff.get_card(session, turn.event.task_id)
        order = await session.get(Order, order_id)
        if card is None or card.subject != subject or order is None:
            turn.say(ts.CARD_UNKNOWN)
            return
        if card.done_by is not None:
            await already_done(turn, session, card.task_id, turn.event.response_code)
            return
        if action == "reject":
            await ask(turn, session, "reject", order_id, number=order.number)
            turn.say(ts.REJECT_ASK, number=order.number)
            return
        if card.task_id not in await settle(turn, session, subject, action):
            await already_done(turn, session, card.task_id, turn.event.response_code)
            return
        await order_action(turn, session, action, order)
        turn.out.append(
            desk.card_update(turn.userid, turn.event.response_code, desk.done_label(action, turn.me.name))
        )


async def click_withdrawal(turn: Turn, action: str, withdrawal_id: int) -> None:
    staff.check(turn.member, "withdrawals")
    async with turn.change() as session:
        card = await staff.get_card(session, turn.event.task_id)
        if card is None or card.subject != f"withdrawal:{withdrawal_id}":
            turn.say(ts.CARD_UNKNOWN)
            return
        if card.done_by is not None:
            await already_done(turn, session, card.task_id, turn.event.response_code)
            return
        if action == "wd_refuse":
            await ask(turn, session, "wd_refuse", withdrawal_id)
            turn.say(ts.WITHDRAWAL_ASK, id=withdrawal_id)
            return
        await approve_withdrawal(
            turn, session, withdrawal_id, task_id=card.task_id, response_code=turn.event.response_code
        )


async def settle(turn: Turn, session: AsyncSession, subject: str, action: str) -> list[str]:
    """Settle the open cards about `subject` as done by this member; the task ids settled now."""
    return await staff.settle_cards(session, subject=subject, userid=turn.userid, action=action, now=turn.now)


async def already_done(turn: Turn, session: AsyncSession, task_id: str, response_code: str) -> None:
    """A card someone already acted on: say who did what, and update the clicker's card to show it."""
    card = await staff.get_card(session, task_id)
    if card is None or card.done_by is None or card.done_action is None:
        turn.say(ts.CARD_UNKNOWN)
        return
    name = await desk.member_name(session, card.done_by)
    kind, _, ref = card.subject.partition(":")
    if kind == "order":
        order = await session.get(Order, int(ref))
        subject = ts.CARD_SUBJECT_ORDER.format(number=order.number if order else ref)
    else:
        subject = ts.CARD_SUBJECT_WITHDRAWAL.format(id=ref)
    turn.say(ts.CARD_DONE, subject=subject, name=name, verb=ts.DONE_VERBS.get(card.done_action, ""))
    if response_code:
        turn.out.append(desk.card_update(turn.userid, response_code, desk.done_label(card.done_action, name)))


async def ask(turn: Turn, session: AsyncSession, kind: str, ref: int, **extra: Any) -> None:
    """Ask for a reason: this member's next text (within REASON_TTL) answers it."""
    data = {
        "kind": kind,
        "id": ref,
        "task_id": turn.event.task_id,
        "response_code": turn.event.response_code,
        "at": turn.now.isoformat(),
        **extra,
    }
    await staff.ask_question(session, account=turn.account, userid=turn.userid, data=data, now=turn.now)


async def answer(turn: Turn, question: dict[str, Any], text: str) -> None:
    """The reason for a 驳回 (or a refused withdrawal) clicked on a card; 取消 drops it."""
    kind, ref = str(question.get("kind")), int(question.get("id", 0))
    card = {
        "task_id": str(question.get("task_id", "")),
        "response_code": str(question.get("response_code", "")),
    }
    if fold(text) in CANCEL_WORDS:
        async with turn.change() as session:
            await staff.drop_question(session, account=turn.account, userid=turn.userid)
            turn.say(ts.CANCELLED)
        return
    turn.word = ts.BUTTONS.get(kind, "")
    customer = await turn.customer_of(order_id=ref) if kind == "reject" else None
    try:
        async with turn.change(customer) as session:
            await staff.drop_question(session, account=turn.account, userid=turn.userid)
            if kind == "reject":
                staff.check(turn.member, "reject")
                order = await session.get(Order, ref)
                if order is None:
                    raise DomainError("not_found", number=question.get("number", ref))
                await reject(turn, session, order, text, **card)
            else:
                staff.check(turn.member, "withdrawals")
                await refuse_withdrawal(turn, session, ref, text, **card)
    except DomainError as exc:
        if exc.code != "bad_reason":  # a reason too long may be sent again; anything else ends the question
            async with turn.change() as session:
                await staff.drop_question(session, account=turn.account, userid=turn.userid)
        raise


# --- What buttons and commands share ----------------------------------------------------------------------


async def order_action(turn: Turn, session: AsyncSession, action: str, order: Order) -> Order:
    """通过 or 接单 on an order (a card button or a typed command)."""
    if action == "approve":
        return await staff.approve(
            session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now
        )
    order = await staff.claim(session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now)
    if order.review is None:  # the review card was settled by this claim: reviewers get a fresh one
        await desk.send_order_card(
            session, order, turn.settings, turn.now, buttons=desk.REVIEW_BUTTONS, with_assignee=False
        )
    return order


async def reject(
    turn: Turn,
    session: AsyncSession,
    order: Order,
    reason: str,
    *,
    task_id: str = "",
    response_code: str = "",
) -> None:
    """Send the materials back to the customer with the reason (flows.review asks them to redo them)."""
    if order.review == "approved":
        raise DomainError("already_approved", number=order.number)
    settled = await settle(turn, session, f"order:{order.id}", "reject")
    if task_id and task_id not in settled:
        card = await staff.get_card(session, task_id)
        if card is not None and card.done_by is not None:
            await already_done(turn, session, task_id, response_code)
            return
    await review.send_back(
        session, order, reason=reason, actor=turn.actor, settings=turn.settings, now=turn.now
    )
    if task_id in settled and response_code:
        turn.out.append(desk.card_update(turn.userid, response_code, desk.done_label("reject", turn.me.name)))
    turn.say(ts.REJECTED, number=order.number, reason=reason.strip())


async def decided(session: AsyncSession, exc: DomainError, withdrawal_id: int) -> DomainError:
    """earnings' refusals, worded for a withdrawal."""
    if exc.code == "not_found":
        return DomainError("withdrawal_not_found", id=withdrawal_id)
    if exc.code == "conflict":
        status = ts.WITHDRAWAL_STATES.get(str(exc.details.get("status")), str(exc.details.get("status")))
        return DomainError("withdrawal_decided", id=withdrawal_id, status=status)
    return exc


async def approve_withdrawal(
    turn: Turn, session: AsyncSession, withdrawal_id: int, *, task_id: str = "", response_code: str = ""
) -> None:
    """批准: the payout job pays it; the creator is told."""
    subject = f"withdrawal:{withdrawal_id}"
    if task_id and task_id not in await settle(turn, session, subject, "wd_approve"):
        await already_done(turn, session, task_id, response_code)
        return
    try:
        w = await earnings.approve_withdrawal(
            session, withdrawal_id=withdrawal_id, actor=turn.actor, now=turn.now
        )
    except DomainError as exc:
        raise await decided(session, exc, withdrawal_id) from None
    if not task_id:
        await settle(turn, session, subject, "wd_approve")
    turn.wake_later(creator_flows.PAYOUTS_JOB)
    turn.out += creator_flows.withdrawal_notice(w)
    detail = {"amount_fen": w.amount_fen, "fee_fen": w.fee_fen}
    await staff.audit(
        session, actor=turn.actor, action="withdrawal_approve", target=subject, now=turn.now, detail=detail
    )
    who = await creator_flows.display_name(session, w.account, w.openid)
    if response_code:
        turn.out.append(
            desk.card_update(turn.userid, response_code, desk.done_label("wd_approve", turn.me.name))
        )
    else:
        turn.say(ts.WITHDRAWAL_APPROVED, id=w.id, amount=yuan(w.amount_fen - w.fee_fen), who=who)


async def refuse_withdrawal(
    turn: Turn,
    session: AsyncSession,
    withdrawal_id: int,
    reason: str,
    *,
    task_id: str = "",
    response_code: str = "",
) -> None:
    """拒绝: the money goes back to the creator's balance; they are told why."""
    subject = f"withdrawal:{withdrawal_id}"
    settled = await settle(turn, session, subject, "wd_refuse")
    if task_id and task_id not in settled:
        card = await staff.get_card(session, task_id)
        if card is not None and card.done_by is not None:
            await already_done(turn, session, task_id, response_code)
            return
    try:
        w = await earnings.refuse_withdrawal(
            session, withdrawal_id=withdrawal_id, actor=turn.actor, reason=reason, now=turn.now
        )
    except DomainError as exc:
        raise await decided(session, exc, withdrawal_id) from None
    turn.out += creator_flows.withdrawal_notice(w)
    detail = {"amount_fen": w.amount_fen, "reason": w.reason}
    await staff.audit(
        session, actor=turn.actor, action="withdrawal_refuse", target=subject, now=turn.now, detail=detail
    )
    if task_id in settled and response_code:
        turn.out.append(
            desk.card_update(turn.userid, response_code, desk.done_label("wd_refuse", turn.me.name))
        )
    turn.say(ts.WITHDRAWAL_REFUSED, id=w.id, reason=w.reason or reason)


# --- Commands ------------------------------------------------------------------------------------------


@command("帮助", "help")
async def on_help(turn: Turn) -> None:
    """帮助: every command."""
    turn.send(ts.HELP)


@command("查单", "lookup")
async def on_lookup(turn: Turn) -> None:
    """查单 <单号>: the order as staff see it."""
    number, _ = turn.args()
    async with turn.read() as session:
        turn.send(await desk.order_detail(session, await desk.order_by_number(session, number)))


@command("对话", "lookup")
async def on_thread(turn: Turn) -> None:
    """对话 <单号>: what the customer and staff said about the order."""
    number, _ = turn.args()
    async with turn.read() as session:
        order = await desk.order_by_number(session, number)
        turn.send(
            await relay.render_thread(session, order, settings=turn.settings, now=turn.now, for_staff=True)
        )


@command("待办", "queue")
async def on_queue(turn: Turn) -> None:
    """待办: my open orders (and, for reviewers, what waits for review)."""
    async with turn.read() as session:
        turn.send(await desk.queue_text(session, turn.me, turn.now))


@command("今日", "today")
async def on_today(turn: Turn) -> None:
    """今日: today's figures so far."""
    async with turn.read() as session:
        turn.send(await desk.today(session, turn.now))


@command("通过", "approve")
async def on_approve(turn: Turn) -> None:
    """通过 <单号>: the materials are fine."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await settle(turn, session, f"order:{order.id}", "approve")
        order = await order_action(turn, session, "approve", order)
        if order.assignee:
            after = ts.APPROVED_OWNED.format(assignee=await desk.member_name(session, order.assignee))
        else:
            after = ts.APPROVED_WAITING.format(number=number)
        turn.say(ts.APPROVED, number=number, next=after)


@command("驳回", "reject")
async def on_reject(turn: Turn) -> None:
    """驳回 <单号> <原因>: the customer is asked to redo their materials."""
    number, reason = turn.args()
    if not reason:
        raise Usage
    async with turn.change(await turn.customer_of(number=number)) as session:
        await reject(turn, session, await desk.order_by_number(session, number), reason)


@command("接单", "claim")
async def on_claim(turn: Turn) -> None:
    """接单 <单号>: take an order nobody owns."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await settle(turn, session, f"order:{order.id}", "claim")
        order = await order_action(turn, session, "claim", order)
        ready = order.status == OrderStatus.ASSIGNED
        turn.say(
            ts.CLAIMED,
            number=number,
            next=(ts.CLAIMED_READY if ready else ts.CLAIMED_WAITING).format(number=number),
        )


@command("分配", "assign")
async def on_assign(turn: Turn) -> None:
    """分配 <单号> <成员> (admins): give the order to someone (by name or userid)."""
    number, who = turn.args()
    if not who:
        raise Usage
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        to = await staff.find_member(session, who)
        if to is None:
            raise DomainError("no_member", who=who)
        order, previous = await staff.reassign(
            session,
            order_id=order.id,
            member=turn.me,
            to=to,
            notify=order_notice,
            now=turn.now,
            tell=lambda o, m, how: desk.assigned_notice(o, m, how, by=turn.me.name),
        )
        if previous and previous not in (turn.userid, to.userid):
            away = ts.REASSIGNED_AWAY.format(number=number, by=turn.me.name, name=to.name)
            turn.out += desk.to_staff(previous, away)
        turn.say(ts.ASSIGNED, number=number, name=to.name)


@command("开始", "start")
async def on_start(turn: Turn) -> None:
    """开始 <单号>: 已分配 → 执行中."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await staff.start(session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now)
        turn.say(ts.STARTED, number=number)


@command("发布", "publish")
async def on_publish(turn: Turn) -> None:
    """发布 <单号> <链接> [标题]: a published piece; the customer gets the link."""
    number, rest = turn.args()
    url, title = pair(rest)
    if not url:
        raise Usage
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        title = title.strip() or await desk.items_title(session, order.id, first_only=True)
        order, piece = await staff.publish(
            session, order_id=order.id, member=turn.me, url=url, title=title, now=turn.now
        )
        turn.out += desk.published_notice(order, piece)
        turn.say(ts.PUBLISHED, number=number, url=piece["url"])


@command("完成", "complete")
async def on_complete(turn: Turn) -> None:
    """完成 <单号>: 执行中 → 已完成 (the owner has room for the next one)."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await staff.complete(session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now)
        turn.say(ts.COMPLETED, number=number)
    turn.hand_out_later()
    turn.wake_later(creator_flows.RELEASE_JOB)  # a freeze of 0 days releases its commissions now


def fen_of(word: str) -> int | None:
    """'100' → 10000, '99.5' → 9950, '¥12.34' → 1234; None if it is not an amount."""
    match = AMOUNT.fullmatch(fold(word))
    if match is None:
        return None
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


def refund_args(rest: str) -> tuple[int | None, str, str]:
    """'[金额] 原因 [原路]' → (fen or None for all that is left, destination, reason)."""
    words = rest.split()
    destination = "balance"
    if words and words[-1] in ("原路", "原路退回", "微信"):
        destination = "wechat"
        words.pop()
    amount = fen_of(words[0]) if words else None
    if amount is not None:
        words.pop(0)
    if not words:
        raise Usage
    return amount, destination, " ".join(words)


@command("退款", "refund")
async def on_refund(turn: Turn) -> None:
    """退款 <单号> [金额] <原因> [原路] (finance): to the balance, or back through WeChat Pay."""
    number, rest = turn.args()
    amount, destination, reason = refund_args(rest)
    target = f"order:{number}"
    # refund_order runs its own transactions and calls WeChat Pay: no transaction is held around it.
    try:
        made = await refund_order(
            turn.sessionmaker,
            turn.services.pay,
            number=number,
            amount_fen=amount,
            destination=destination,
            actor=turn.actor,
            reason=reason,
            notify_url=f"{turn.settings.public_url}/pay/wechat/refund-notify",
        )
    except PayError as exc:
        async with turn.change() as session:
            detail = {"amount_fen": amount, "destination": destination, "reason": reason, "error": exc.code}
            await staff.audit(
                session, actor=turn.actor, action="refund_failed", target=target, now=turn.now, detail=detail
            )
            turn.say(ts.REFUND_REFUSED, number=number, reason=exc.message or exc.code)
        return
    async with turn.change() as session:
        detail = {
            "amount_fen": made.amount_fen,
            "destination": made.destination,
            "reason": reason,
            "out_refund_no": made.out_refund_no,
        }
        await staff.audit(
            session, actor=turn.actor, action="refund", target=target, now=turn.now, detail=detail
        )
        done = ts.REFUNDED_TO_BALANCE if made.destination == "balance" else ts.REFUND_ASKED
        turn.say(done, number=number, amount=yuan(made.amount_fen))
    turn.hand_out_later()


@command("拒绝退款", "refund")
async def on_decline_refund(turn: Turn) -> None:
    """拒绝退款 <单号> <原因> (finance): the order goes back to where it was; the customer hears why."""
    number, reason = turn.args()
    if not reason:
        raise Usage
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        order = await payments.decline_refund(
            session, order_id=order.id, actor=turn.actor, reason=reason, notify=order_notice
        )
        await staff.audit(
            session,
            actor=turn.actor,
            action="refund_decline",
            target=f"order:{number}",
            now=turn.now,
            detail={"reason": reason, "back_to": order.status},
        )
        turn.say(ts.REFUND_DECLINED, number=number, status=order.status)


@command("回复", "reply")
async def on_reply(turn: Turn) -> None:
    """回复 <单号> <内容|#快捷回复>: to the customer, kept in the order's thread (flows.relay)."""
    number, content = turn.args()
    if not content:
        raise Usage
    async with turn.change(await turn.customer_of(number=number)) as session:
        order = await desk.order_by_number(session, number)
        await relay.staff_reply(
            session, order=order, userid=turn.userid, content=content, settings=turn.settings, now=turn.now
        )
        turn.say(ts.REPLY_SENT, number=number)


@command("快捷回复", "reply")
async def on_quick_replies(turn: Turn) -> None:
    """快捷回复 [添加|删除 …]: the member's canned replies (flows.relay)."""
    async with turn.change() as session:
        turn.send(await relay.on_quick_reply_command(session, turn.userid, turn.rest))


@command("提现", "withdrawals")
async def on_withdrawals(turn: Turn) -> None:
    """提现 · 提现 通过 <编号> · 提现 拒绝 <编号> <原因> (finance)."""
    verb, rest = pair(turn.rest)
    if not verb:
        await list_withdrawals(turn)
        return
    ref, reason = pair(rest)
    ref = fold(ref).lstrip("#")
    if not ref.isdigit() or fold(verb) not in ("通过", "批准", "拒绝", "驳回"):
        raise Usage
    withdrawal_id = int(ref)
    async with turn.change() as session:
        if fold(verb) in ("通过", "批准"):
            await approve_withdrawal(turn, session, withdrawal_id)
        elif reason.strip():
            await refuse_withdrawal(turn, session, withdrawal_id, reason)
        else:
            raise Usage


async def list_withdrawals(turn: Turn) -> None:
    """The requests waiting for a decision, each with a card to approve or refuse it."""
    async with turn.change() as session:
        waiting = await earnings.pending_withdrawals(session)
        if not waiting:
            turn.say(ts.WITHDRAWALS_NONE)
            return
        lines, cards = [], []
        for w in waiting[: ts.WITHDRAWALS_SHOWN]:
            who = await creator_flows.display_name(session, w.account, w.openid)
            lines.append(
                ts.WITHDRAWAL_LINE.format(
                    id=w.id,
                    amount=yuan(w.amount_fen),
                    net=yuan(w.amount_fen - w.fee_fen),
                    who=who,
                    at=f"{w.created_at.astimezone(BEIJING):%m-%d %H:%M}",
                )
            )
            cards.append(
                await desk.withdrawal_card_message(session, w, turn.userid, turn.settings, turn.now, who=who)
            )
        turn.say(ts.WITHDRAWALS_HEAD, n=len(waiting), lines="\n".join(lines))
        turn.out += cards


@command("上班", "duty")
async def on_duty(turn: Turn) -> None:
    """上班: new orders are handed to me again (and the backlog at once)."""
    async with turn.change() as session:
        await staff.set_duty(session, userid=turn.userid, on_duty=True, actor=turn.actor, now=turn.now)
        turn.say(ts.ON_DUTY)
    turn.hand_out_later()


@command("下班", "duty")
async def off_duty(turn: Turn) -> None:
    """下班: no new orders for me; my open ones stay mine."""
    async with turn.change() as session:
        await staff.set_duty(session, userid=turn.userid, on_duty=False, actor=turn.actor, now=turn.now)
        open_now = (await staff.open_counts(session, [turn.userid])).get(turn.userid, 0)
        turn.say(ts.OFF_DUTY, n=open_now)


@command("员工", "staff")
async def on_staff(turn: Turn) -> None:
    """员工 列表 / 添加 / 移除 / 值班 (admins)."""
    verb, rest = pair(turn.rest)
    sub = {
        "列表": staff_list,
        "添加": staff_add,
        "移除": staff_remove,
        "删除": staff_remove,
        "值班": staff_duty,
    }.get(fold(verb) or "列表")
    if sub is None:
        raise Usage
    await sub(turn, rest)


async def staff_list(turn: Turn, rest: str) -> None:
    async with turn.read() as session:
        turn.send(await desk.staff_list_text(session, turn.settings))


def roles_of(text: str) -> list[str]:
    """'运营,审核' or 'ops,reviewer' → ['ops', 'reviewer'] (the store refuses unknown ones)."""
    return [ts.ROLE_WORDS.get(w, w) for w in LIST_SEPARATORS.split(text) if w]


async def staff_add(turn: Turn, rest: str) -> None:
    parts = rest.split()
    if len(parts) not in (3, 4):
        raise Usage
    userid, name, roles = parts[:3]
    skills = LIST_SEPARATORS.split(parts[3]) if len(parts) == 4 else []
    async with turn.change() as session:
        member = await staff.add_member(
            session,
            userid=userid,
            name=name,
            roles=roles_of(roles),
            skills=skills,
            actor=turn.actor,
            now=turn.now,
        )
        skill_text = ts.STAFF_SKILLS.format(skills="、".join(member.skills)) if member.skills else ""
        turn.say(
            ts.STAFF_ADDED,
            name=member.name,
            userid=member.userid,
            roles=desk.role_names(member.roles),
            skills=skill_text,
        )
    turn.hand_out_later()


async def staff_remove(turn: Turn, rest: str) -> None:
    if not rest:
        raise Usage
    async with turn.change() as session:
        member = await staff.find_member(session, rest)
        if member is None:
            raise DomainError("no_member", who=rest)
        if member.userid == turn.userid:
            turn.say(ts.REMOVE_SELF)
            return
        kept = await staff.remove_member(session, userid=member.userid, actor=turn.actor, now=turn.now)
        tail = ts.STAFF_REMOVED_KEPT.format(n=len(kept), numbers="、".join(kept)) if kept else ""
        turn.send(ts.STAFF_REMOVED.format(name=member.name, userid=member.userid) + tail)
    turn.hand_out_later()


async def staff_duty(turn: Turn, rest: str) -> None:
    parts = rest.rsplit(None, 1)
    who, state = (parts[0], parts[1]) if len(parts) == 2 else ("", rest)
    on_duty = ts.DUTY_WORDS.get(fold(state))
    if not who or on_duty is None:
        raise Usage
    async with turn.change() as session:
        member = await staff.find_member(session, who.strip())
        if member is None:
            raise DomainError("no_member", who=who.strip())
        await staff.set_duty(session, userid=member.userid, on_duty=on_duty, actor=turn.actor, now=turn.now)
        turn.say(ts.DUTY_SET, name=member.name, state=ts.DUTY_ON if on_duty else ts.DUTY_OFF)
    if on_duty:
        turn.hand_out_later()
