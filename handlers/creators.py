"""Creators in chat: joining a team through an invite QR, 收益, 团队 and 提现."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re

from flows import creators as flow
from flows import texts
from flows.format import rate, yuan
from flows.requirements import BEIJING
from handlers import basic
from handlers.context import Ctx, UserFacingError, refusal
from handlers.router import Router
from posters.tree import TreeTexts, render_tree
from store import earnings, referrals
from store.errors import DomainError
from store.outbox import enqueue

log = logging.getLogger(__name__)
router = Router("creators")

TREE_MEMBERS = 15  # per level on the picture; the rest show as "+N 人"
TREE_TEXTS = TreeTexts(
    title=texts.TREE_TITLE,
    summary=texts.TREE_SUMMARY,
    levels=texts.TREE_LEVELS,
    count=texts.TREE_COUNT,
    more=texts.TREE_MORE,
    level_empty=texts.TREE_LEVEL_EMPTY,
    empty=texts.TREE_EMPTY,
)

_AMOUNT = re.compile(r"^[¥￥]?\s*(\d{1,7})(?:\.(\d{1,2}))?\s*元?$")


def _invite_scene(ctx: Ctx) -> bool:
    """A subscribe or SCAN event whose QR scene is someone's invite (inv_<code>)."""
    return (
        ctx.event.kind == "event"
        and ctx.event.name in ("subscribe", "scan")
        and "inv_" in ctx.event.event_key
    )


@router.event("subscribe", "scan", when=_invite_scene)
async def on_invite_scan(ctx: Ctx) -> None:
    """Bind the newcomer to the inviter by the operator's policy; a bad or unknown code is simply ignored."""
    subscribing = ctx.event.name == "subscribe"
    if subscribing:
        ctx.subscribed = True
    code = referrals.parse_code(ctx.event.event_key)
    outcome, inviter = await _bind(ctx, code) if code else ("unknown_code", "")
    lines = [await basic.welcome(ctx)] if subscribing else []
    if outcome in ("bound", "rebound"):
        lines.append(ctx.fmt(texts.JOINED_TEAM, inviter=inviter))
    elif outcome == "self":
        lines.append(ctx.fmt(texts.OWN_INVITE))
    if lines:  # one message: the welcome and the team it joined belong together
        ctx.say("\n\n".join(lines).replace("{", "{{").replace("}", "}}"))


async def _bind(ctx: Ctx, code: str) -> tuple[str, str]:
    """(outcome, the inviter's display name when bound)."""
    account, s = ctx.event.account, ctx.settings
    inviter_name = ""
    async with ctx.transaction() as session:
        result = await referrals.bind(
            session,
            account=account,
            invitee=ctx.openid,
            code=code,
            source="subscribe" if ctx.event.name == "subscribe" else "scan",
            now=ctx.now(),
            policy=s.referral_policy,
            rebind_days=s.referral_rebind_days,
            new_user=not ctx.known_user,
            burst_count=s.invite_burst_count,
            burst_minutes=s.invite_burst_minutes,
        )
        if result.outcome in ("bound", "rebound") and result.inviter:
            joined = await flow.member_joined(
                session,
                s,
                account=account,
                inviter=result.inviter,
                invitee=ctx.openid,
                invites=result.invites,
            )
            await enqueue(session, *joined)
            inviter_name = await flow.display_name(session, account, result.inviter)
        if result.flagged and result.inviter:
            await enqueue(
                session, *await flow.burst_alert(session, s, account=account, inviter=result.inviter)
            )
    log.info("invite scan", extra={"outcome": result.outcome, "code": code})
    return result.outcome, inviter_name


@router.text("收益", "我的收益", "佣金", "我的佣金", "收入")
async def on_earnings(ctx: Ctx) -> None:
    """Pending, available, held and withdrawn totals, and the latest commissions with their orders."""
    async with ctx.read() as session:
        view = await earnings.summary(session, account=ctx.event.account, openid=ctx.openid, limit=5)
    s = ctx.settings
    lines = [
        texts.EARNINGS_LINE.format(
            date=f"{c.created_at.astimezone(BEIJING):%m月%d日}",
            number=c.order_number,
            kind=texts.COMMISSION_KINDS[c.depth],
            amount=yuan(c.amount_fen),
            status=texts.EARNINGS_STATUS.get(c.status, c.status)
            + (
                texts.EARNINGS_PART_REVERSED.format(amount=yuan(c.reversed_fen))
                if 0 < c.reversed_fen < c.amount_fen
                else ""
            ),
        )
        for c in view.recent
    ]
    recent = "\n".join([texts.EARNINGS_RECENT, *lines]) if lines else texts.EARNINGS_NONE
    if view.available_fen < 0:
        recent = texts.EARNINGS_DEBT + "\n" + recent
    ctx.say(
        texts.EARNINGS,
        available=yuan(view.available_fen),
        pending=yuan(view.pending_fen),
        held=yuan(view.held_fen),
        withdrawn=yuan(view.withdrawn_fen),
        days=s.freeze_days,
        recent=recent,
        minimum=yuan(s.withdraw_min_fen),
        fee=rate(s.withdraw_fee_bp),
    )


@router.text("团队", "我的团队", "团队成员")
async def on_team(ctx: Ctx) -> None:
    """Members per level, this month's team sales, top members — and the team as a tree image."""
    account, s = ctx.event.account, ctx.settings
    month = ctx.now().astimezone(BEIJING).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    async with ctx.read() as session:
        team = await referrals.team(
            session,
            account=account,
            openid=ctx.openid,
            depth=s.commission_depth,
            since=month.astimezone(dt.UTC),
        )
    counts = [*team.counts, 0, 0, 0]
    if not counts[0]:
        ctx.say(texts.TEAM_EMPTY)
        return
    async with ctx.transaction() as session:
        level, upgrade = await flow.level_notices(session, s, account, ctx.openid)
        await enqueue(session, *upgrade)
        me = await flow.display_name(session, account, ctx.openid)
    top = "\n".join(
        texts.TEAM_TOP_LINE.format(rank=i, name=_name(m), amount=yuan(m.sales_fen))
        for i, m in enumerate(team.top, start=1)
    )
    ctx.say(
        texts.TEAM,
        level=s.levels[level].name,
        d1=counts[0],
        d2=counts[1],
        d3=counts[2],
        month=yuan(team.sales_since_fen),
        total=yuan(team.team_sales_fen),
        top=texts.TEAM_TOP.format(lines=top) if top else "",
        progress=flow.progress(s, level, counts[0], team.team_sales_fen),
    )
    await _tree_image(ctx, me, team)


def _name(member: referrals.Member) -> str:
    return member.nickname or texts.MEMBER_FALLBACK_NAME.format(tail=member.openid[-4:])


async def _tree_image(ctx: Ctx, me: str, team: referrals.Team) -> None:
    """The team drawn as a tree (best effort: the text above already says everything)."""
    api = ctx.services.media
    if api is None:
        return
    levels = [
        [(_name(m), yuan(m.sales_fen) if m.sales_fen else "") for m in ms[:TREE_MEMBERS]]
        for ms in team.by_depth
    ]
    try:
        png = await asyncio.to_thread(
            render_tree, me, levels, texts=TREE_TEXTS, totals=team.counts, font_path=ctx.settings.font_path
        )
        media_id = await api.upload_media("image", f"team-{ctx.openid[-6:]}.png", png)
    except Exception:
        log.warning("team tree image failed", exc_info=True)
        return
    ctx.image(media_id)


def parse_amount(text: str) -> int | None:
    """'100', '¥99.5', '200元' → fen; None for anything else."""
    found = _AMOUNT.match(text.strip())
    if not found:
        return None
    return int(found.group(1)) * 100 + int((found.group(2) or "0").ljust(2, "0"))


@router.prefix("提现")
async def on_withdraw(ctx: Ctx) -> None:
    """'提现 100': the amount leaves the available balance and waits, held, for staff approval."""
    s = ctx.settings
    amount = parse_amount(ctx.argument)
    if amount is None:
        async with ctx.read() as session:
            view = await earnings.summary(session, account=ctx.event.account, openid=ctx.openid, limit=0)
        raise UserFacingError(
            texts.WITHDRAW_USAGE,
            available=yuan(view.available_fen),
            minimum=yuan(s.withdraw_min_fen),
            fee=rate(s.withdraw_fee_bp),
            limit=yuan(s.withdraw_daily_limit_fen),
        )
    try:
        async with ctx.transaction() as session:
            w = await earnings.request_withdrawal(
                session,
                account=ctx.event.account,
                openid=ctx.openid,
                amount_fen=amount,
                settings=s,
                now=ctx.now(),
            )
            await enqueue(session, *await flow.withdrawal_requested(session, w, s))
    except DomainError as exc:
        raise _money_refusal(exc) from None
    ctx.say(
        texts.WITHDRAW_REQUESTED,
        amount=yuan(w.amount_fen),
        fee=yuan(w.fee_fen),
        net=yuan(w.amount_fen - w.fee_fen),
    )


def _money_refusal(exc: DomainError) -> UserFacingError:
    """A store refusal whose details are amounts in fen, shown as yuan."""
    details = {k: yuan(v) if isinstance(v, int) and k.endswith("fen") else v for k, v in exc.details.items()}
    details = {k.removesuffix("_fen"): v for k, v in details.items()}
    return refusal(DomainError(exc.code, **details))
