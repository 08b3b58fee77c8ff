"""Commissions a fraud rule held (finance): 佣金 lists them with the evidence; 佣金 放行|驳回 编号."""

from __future__ import annotations

from flows import creators as creator_flows
from flows import texts
from flows import texts_staff as ts
from flows.format import yuan
from handlers.work.turn import StaffRouter, Turn, Usage, fold, pair
from store import earnings, staff
from store.errors import DomainError

router = StaffRouter("commissions")
RELEASE, REJECT = ("放行", "通过", "批准"), ("驳回", "拒绝")


@router.command("佣金", "commissions")
async def on_commissions(turn: Turn) -> None:
    """佣金 [待审]: what waits; 佣金 放行|驳回 <编号>: decide one."""
    verb, rest = pair(turn.rest)
    verb = fold(verb)
    if verb in ("", "待审", "列表", "暂扣"):
        await list_held(turn)
        return
    ref = fold(rest).lstrip("#")
    if verb not in RELEASE + REJECT or not ref.isdigit():
        raise Usage
    await decide(turn, int(ref), approve=verb in RELEASE)


async def list_held(turn: Turn) -> None:
    async with turn.read() as session:
        held = await earnings.held_for_review(session)
        lines = [
            ts.COMMISSION_LINE.format(
                id=c.id,
                number=number,
                amount=yuan(c.amount_fen),
                kind=texts.COMMISSION_KINDS[c.depth],
                who=await creator_flows.display_name(session, c.account, c.openid),
                rule=texts.STAFF_FLAG_RULES.get(c.flag or "", c.flag or "—"),
                evidence=creator_flows.evidence(c.note) or "—",
            )
            for c, number in held
        ]
    if not lines:
        turn.say(ts.COMMISSIONS_NONE)
        return
    turn.say(ts.COMMISSIONS_HEAD, n=len(lines), lines="\n".join(lines))


async def decide(turn: Turn, commission_id: int, *, approve: bool) -> None:
    async with turn.change() as session:
        try:
            c = await earnings.decide_review(
                session, commission_id=commission_id, approve=approve, actor=turn.actor, now=turn.now
            )
        except DomainError as exc:
            raise _worded(exc, commission_id) from None
        action = "commission_release" if approve else "commission_reject"
        await staff.audit(
            session,
            actor=turn.actor,
            action=action,
            target=f"commission:{c.id}",
            now=turn.now,
            detail={"amount_fen": c.amount_fen, "order_id": c.order_id},
        )
        who = await creator_flows.display_name(session, c.account, c.openid)
        done = ts.COMMISSION_RELEASED if approve else ts.COMMISSION_REJECTED
        turn.say(done, id=c.id, amount=yuan(c.amount_fen), who=who)
    if approve:
        turn.wake_later(creator_flows.RELEASE_JOB)  # back to pending: due now if its order completed long ago


def _worded(exc: DomainError, commission_id: int) -> DomainError:
    if exc.code == "not_found":
        return DomainError("commission_not_found", id=commission_id)
    if exc.code == "conflict":
        status = str(exc.details.get("status"))
        return DomainError(
            "commission_decided", id=commission_id, status=ts.COMMISSION_STATES.get(status, status)
        )
    return exc
