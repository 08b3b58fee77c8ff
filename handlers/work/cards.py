"""What card buttons and typed commands share: settling the cards about a subject, telling a late
clicker who already acted, and asking for a reason."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from flows import desk
from flows import texts_staff as ts
from handlers.work.turn import Turn
from store import staff
from store.models import Order


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
