"""Money: 退款 · 拒绝退款 (finance) and creators' withdrawals (提现, and their card buttons)."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.pay import PayError
from flows import creators as creator_flows
from flows import desk
from flows import texts_staff as ts
from flows.format import yuan
from flows.notices import order_notice
from flows.payments import refund_order
from handlers.work.cards import already_done, settle
from handlers.work.turn import StaffRouter, Turn, Usage, fold, pair
from store import earnings, payments, staff
from store.errors import DomainError
from store.orders import BEIJING

AMOUNT = re.compile(r"[¥￥]?(\d{1,9})(?:\.(\d{1,2}))?元?")

router = StaffRouter("money")


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


@router.command("退款", "refund")
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


@router.command("拒绝退款", "refund")
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
    turn.wake_later(creator_flows.RELEASE_JOB)  # back to 已完成: its commissions may be due now


@router.command("提现", "withdrawals")
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
