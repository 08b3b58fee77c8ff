"""Creators: what a binding, a commission, a refund or a withdrawal tells the people concerned.

The store (store.referrals, store.earnings) decides and records; this module words the messages and
runs the jobs that release commissions and pay withdrawals out.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts
from flows.format import rate, yuan
from flows.requirements import BEIJING
from flows.staff import staff_alert
from settings import Settings
from store import earnings, referrals
from store.creators import get_or_create
from store.errors import DomainError
from store.models import Commission, Order, Referral, User, Withdrawal
from store.outbox import Outgoing, enqueue, text

if TYPE_CHECKING:
    from bot.channels.pay import PayClient

log = logging.getLogger(__name__)
# The merchant's own problem, not the creator's: keep the request approved and retry later.
# The background jobs that move creators' money (bot.scheduler), woken by what makes money due.
RELEASE_JOB, PAYOUTS_JOB = "release-commissions", "payouts"
WAIT_FOR_MERCHANT = frozenset({"NOTENOUGH", "AMOUNT_LIMIT"})


async def display_name(session: AsyncSession, account: str, openid: str) -> str:
    """A person's nickname, or a short stand-in (WeChat rarely gives nicknames any more)."""
    nickname = await session.scalar(
        select(User.nickname).where(User.account == account, User.openid == openid)
    )
    return nickname or texts.MEMBER_FALLBACK_NAME.format(tail=openid[-4:])


def progress(settings: Settings, level: int, invites: int, team_sales_fen: int) -> str:
    """'已邀请 2 人，还差 1 人升级为二星。' — or that the top is reached."""
    gap = referrals.next_gap(level, invites, team_sales_fen, settings.levels)
    if gap is None:
        return texts.PROGRESS_TOP.format(invites=invites, level=settings.levels[level].name)
    name, people, sales = gap
    parts = [texts.PROGRESS_INVITES.format(n=people)] if people > 0 else []
    if sales > 0:
        parts.append(texts.PROGRESS_SALES.format(amount=yuan(sales)))
    return texts.PROGRESS_NEXT.format(invites=invites, gap=texts.PROGRESS_AND.join(parts), level=name)


async def level_notices(
    session: AsyncSession, settings: Settings, account: str, openid: str
) -> tuple[int, list[Outgoing]]:
    """Recompute a creator's level; an upgrade is announced once (the dedupe key names the level)."""
    old, new = await referrals.refresh_level(session, account=account, openid=openid, levels=settings.levels)
    if new <= old:
        return new, []
    level = settings.levels[new]
    message = texts.LEVEL_UP.format(level=level.name, r2=rate(level.team_bp[0]), r3=rate(level.team_bp[1]))
    return new, [text(openid, message, dedupe_key=f"level:{account}:{openid}:{new}")]


async def member_joined(
    session: AsyncSession, settings: Settings, *, account: str, inviter: str, invitee: str, invites: int
) -> list[Outgoing]:
    """The inviter hears of the newcomer, with the way to the next level."""
    level, upgrade = await level_notices(session, settings, account, inviter)
    team = await referrals.team(session, account=account, openid=inviter, depth=settings.commission_depth)
    name = await display_name(session, account, invitee)
    content = texts.NEW_MEMBER.format(
        name=name, progress=progress(settings, level, invites, team.team_sales_fen)
    )
    return [text(inviter, content, dedupe_key=f"joined:{account}:{invitee}:{inviter}"), *upgrade]


async def burst_alert(
    session: AsyncSession, settings: Settings, *, account: str, inviter: str
) -> list[Outgoing]:
    """Staff see an inviter whose invites come in a burst, with the evidence."""
    creator = await get_or_create(session, account=account, openid=inviter)
    note = await session.scalar(
        select(Referral.note)
        .where(Referral.account == account, Referral.inviter_openid == inviter, Referral.flag == "burst")
        .order_by(Referral.touched_at.desc())
        .limit(1)
    )
    content = texts.STAFF_INVITE_BURST.format(
        name=await display_name(session, account, inviter), code=creator.code, note=evidence(note)
    )
    hour = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H")
    return staff_alert(settings, content, key=f"burst:{account}:{inviter}:{hour}")


# The evidence a fraud rule records is kept as written (an audit trail); staff read it in Chinese.
_SAME_PAYER = re.compile(r"same_payer: (?P<payer>\S+) paid orders of (?P<customers>.+)")
_BURST = re.compile(
    r"burst: (?P<n>\d+) bindings within (?P<minutes>\d+) min \(limit (?P<limit>\d+)\), "
    r"(?P<first>\S+) \.\. (?P<last>\S+)"
)
_VERDICT = re.compile(r"(?P<verdict>approved|rejected) by (?P<actor>\S+) at (?P<at>\S+)")


def evidence(note: str | None) -> str:
    """A rule's evidence (and any verdict after it) in words staff read; unknown lines as they are."""
    return "；".join(_evidence_line(line) for line in (note or "").splitlines() if line.strip())


def _evidence_line(line: str) -> str:
    if m := _SAME_PAYER.fullmatch(line):
        customers = [c.strip() for c in m["customers"].split(",") if c.strip()]
        return texts.EVIDENCE_SAME_PAYER.format(
            payer=m["payer"], n=len(customers), customers="、".join(customers)
        )
    if m := _BURST.fullmatch(line):
        return texts.EVIDENCE_BURST.format(
            n=m["n"], minutes=m["minutes"], limit=m["limit"], first=_when(m["first"]), last=_when(m["last"])
        )
    if m := _VERDICT.fullmatch(line):
        verb = texts.EVIDENCE_VERDICTS[m["verdict"]]
        return texts.EVIDENCE_VERDICT.format(actor=m["actor"], at=_when(m["at"]), verb=verb)
    return line


def _when(iso: str) -> str:
    try:
        at = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return f"{at.astimezone(BEIJING):%m-%d %H:%M}"


# --- Commissions -----------------------------------------------------------------------------------


async def order_paid(session: AsyncSession, order: Order, settings: Settings, now: dt.datetime) -> None:
    """A paid order: a waiting binding becomes real (policy first_paid), then commissions are recorded."""
    bound = await referrals.confirm_on_paid(session, account=order.account, invitee=order.openid, now=now)
    if bound is not None:
        invites = await referrals.invites_of(session, account=order.account, openid=bound.inviter_openid)
        await enqueue(
            session,
            *await member_joined(
                session,
                settings,
                account=order.account,
                inviter=bound.inviter_openid,
                invitee=order.openid,
                invites=invites,
            ),
        )
    made = await earnings.on_order_paid(session, order_id=order.id, settings=settings, now=now)
    await enqueue(session, *commission_notices(made, order, settings))
    await enqueue(session, *flag_alerts(made, order, settings))


def commission_notices(made: Sequence[Commission], order: Order, settings: Settings) -> list[Outgoing]:
    notices = []
    for c in made:
        content = texts.COMMISSION_EARNED.format(
            who=texts.COMMISSION_WHO[c.depth],
            number=order.number,
            amount=yuan(c.amount_fen),
            kind=texts.COMMISSION_KINDS[c.depth],
            days=settings.freeze_days,
        )
        if c.status == "review":
            content += texts.COMMISSION_HELD
        notices.append(text(c.openid, content, dedupe_key=f"commission:{c.id}"))
    return notices


def flag_alerts(made: Sequence[Commission], order: Order, settings: Settings) -> list[Outgoing]:
    """One alert per order whose commissions a fraud rule holds, with the rule's evidence."""
    held = [c for c in made if c.status == "review"]
    if not held:
        return []
    content = texts.STAFF_COMMISSION_FLAG.format(
        number=order.number,
        total=yuan(order.total_fen),
        rule=texts.STAFF_FLAG_RULES.get(held[0].flag or "", held[0].flag),
        note=evidence(held[0].note),
        amounts="、".join(f"{yuan(c.amount_fen)}（{texts.COMMISSION_KINDS[c.depth]}）" for c in held),
    )
    return staff_alert(settings, content, key=f"flag:{order.id}")


async def refund_settled(session: AsyncSession, order_id: int, now: dt.datetime) -> None:
    """After any refund of an order: take back the matching share of its commissions, and say so."""
    changed = await earnings.settle_refunds(session, order_id=order_id, now=now)
    if not changed:
        return
    order = await session.get(Order, order_id)
    number = order.number if order else "—"
    for c in changed:
        view = await earnings.summary(session, account=c.account, openid=c.openid, limit=0)
        content = texts.COMMISSION_CLAWBACK.format(number=number, amount=yuan(c.reversed_fen))
        if view.available_fen < 0:
            content += "\n" + texts.COMMISSION_DEBT.format(available=yuan(view.available_fen))
        await enqueue(session, text(c.openid, content, dedupe_key=f"clawback:{c.id}:{c.reversed_fen}"))


async def release_commissions(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Job: commissions of completed orders past the freeze become available; one message per person."""
    async with sessionmaker.begin() as session:
        released = await earnings.release_due(session, now=now, freeze_days=settings.freeze_days)
        per_person: dict[tuple[str, str], int] = {}
        for c in released:
            key = (c.account, c.openid)
            per_person[key] = per_person.get(key, 0) + c.amount_fen - c.reversed_fen
        for (account, openid), amount in per_person.items():
            view = await earnings.summary(session, account=account, openid=openid, limit=0)
            content = texts.COMMISSIONS_RELEASED.format(
                amount=yuan(amount), available=yuan(view.available_fen)
            )
            first = min(c.id for c in released if (c.account, c.openid) == (account, openid))
            await enqueue(session, text(openid, content, dedupe_key=f"released:{first}"))
            # Completed team sales count towards levels: an upgrade they earned is announced now.
            await enqueue(session, *(await level_notices(session, settings, account, openid))[1])
    return len(released)


# --- Withdrawals -----------------------------------------------------------------------------------


def _amounts(w: Withdrawal) -> dict[str, str]:
    return {"amount": yuan(w.amount_fen), "fee": yuan(w.fee_fen), "net": yuan(w.amount_fen - w.fee_fen)}


async def withdrawal_requested(session: AsyncSession, w: Withdrawal, settings: Settings) -> list[Outgoing]:
    """Finance hear of a new request (the creator's own reply is the passive answer)."""
    view = await earnings.summary(session, account=w.account, openid=w.openid, limit=0)
    content = texts.STAFF_WITHDRAW_REQUESTED.format(
        id=w.id,
        name=await display_name(session, w.account, w.openid),
        available=yuan(view.available_fen),
        **_amounts(w),
    )
    return staff_alert(settings, content, key=f"withdrawal:{w.id}")


def withdrawal_notice(w: Withdrawal) -> list[Outgoing]:
    """The creator is told at each step: approved, paid, refused, failed."""
    reason = w.reason or ""
    if w.status == "failed":
        reason = texts.WITHDRAW_FAILURE_REASONS.get(reason, texts.WITHDRAW_FAILURE_DEFAULT)
    template = {
        "approved": texts.WITHDRAW_APPROVED,
        "paid": texts.WITHDRAW_PAID,
        "refused": texts.WITHDRAW_REFUSED,
        "failed": texts.WITHDRAW_FAILED,
    }.get(w.status)
    if template is None:
        return []
    content = template.format(reason=reason, **_amounts(w))
    return [text(w.openid, content, dedupe_key=f"withdrawal:{w.id}:{w.status}")]


async def decide_withdrawal(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    withdrawal_id: int,
    approve: bool,
    actor: str,
    reason: str = "",
    now: dt.datetime,
) -> Withdrawal:
    """Approve (the payout job pays it) or refuse (the money goes back) a request; the creator is told."""
    async with sessionmaker.begin() as session:
        if approve:
            w = await earnings.approve_withdrawal(session, withdrawal_id=withdrawal_id, actor=actor, now=now)
        else:
            w = await earnings.refuse_withdrawal(
                session, withdrawal_id=withdrawal_id, actor=actor, reason=reason, now=now
            )
        await enqueue(session, *withdrawal_notice(w))
    return w


async def pay_out(
    sessionmaker: async_sessionmaker[AsyncSession], pay: PayClient, settings: Settings, now: dt.datetime
) -> int:
    """Job: approved withdrawals are transferred to the creator's WeChat wallet.

    No transaction is held across the API call. A retry uses the same partner_trade_no, which WeChat
    Pay answers with the first result, so a payout whose answer was lost is never paid twice.
    """
    from bot.channels.pay import PayError

    async with sessionmaker() as session:
        due = [
            (w.id, w.trade_no, w.openid, w.amount_fen - w.fee_fen)
            for w in await earnings.approved_unpaid(session)
        ]
    paid = 0
    for withdrawal_id, trade_no, openid, net in due:
        try:
            answer = await pay.transfer(
                partner_trade_no=trade_no,
                openid=openid,
                amount_fen=net,
                desc=texts.PAYOUT_DESC.format(brand=settings.brand),
            )
        except PayError as exc:
            if exc.retryable or exc.code in WAIT_FOR_MERCHANT:
                log.warning("payout will be retried", extra={"withdrawal": withdrawal_id, "code": exc.code})
                if exc.code in WAIT_FOR_MERCHANT:
                    await _merchant_short(sessionmaker, settings, withdrawal_id, exc.code, now)
                continue
            await _payout_failed(sessionmaker, settings, withdrawal_id, exc.code, str(exc), now)
            continue
        async with sessionmaker.begin() as session:
            w = await earnings.mark_withdrawal_paid(
                session, withdrawal_id=withdrawal_id, payment_no=str(answer.get("payment_no", "")), now=now
            )
            await enqueue(session, *withdrawal_notice(w))
        paid += 1
    return paid


async def _merchant_short(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    withdrawal_id: int,
    code: str,
    now: dt.datetime,
) -> None:
    """Our merchant account cannot pay right now: the request stays approved and staff are told (daily)."""
    content = texts.STAFF_PAYOUT_WAITING.format(id=withdrawal_id, code=code)
    async with sessionmaker.begin() as session:
        day = now.astimezone(BEIJING).strftime("%Y%m%d")
        await enqueue(session, *staff_alert(settings, content, key=f"payout-waiting:{withdrawal_id}:{day}"))


async def _payout_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    withdrawal_id: int,
    code: str,
    message: str,
    now: dt.datetime,
) -> None:
    try:
        async with sessionmaker.begin() as session:
            w = await earnings.mark_withdrawal_failed(
                session, withdrawal_id=withdrawal_id, reason=code, now=now
            )
            await enqueue(session, *withdrawal_notice(w))
            content = texts.STAFF_PAYOUT_FAILED.format(
                id=w.id, amount=yuan(w.amount_fen), code=code, reason=message
            )
            await enqueue(session, *staff_alert(settings, content, key=f"payout-failed:{w.id}"))
    except DomainError:
        log.warning("payout failure not recorded", exc_info=True, extra={"withdrawal": withdrawal_id})
