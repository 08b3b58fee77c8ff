"""Card buttons: act once, settle the card, update it for everyone who got it; and the reason a
button asked for (驳回, a refused withdrawal), typed as the member's next text."""

from __future__ import annotations

from typing import Any

from flows import desk
from flows import texts_staff as ts
from handlers.work import flash
from handlers.work.cards import already_done, ask, settle
from handlers.work.money import approve_withdrawal, refuse_withdrawal
from handlers.work.orders import order_action, reject
from handlers.work.turn import Turn, fold, guarded
from store import staff
from store.errors import DomainError
from store.models import Order

ORDER_BUTTONS = frozenset({"approve", "reject", "claim"})
WITHDRAWAL_BUTTONS = frozenset({"wd_approve", "wd_refuse"})
CANCEL_WORDS = frozenset({"取消", "算了", "不用了"})


async def on_click(turn: Turn) -> None:
    """A button on a card: act once, settle the card, update it for everyone who got it."""
    action, _, ref = turn.event.event_key.partition(":")
    async with turn.read() as session:
        turn.member = await staff.get_member(session, turn.userid)
    if turn.member is None:
        turn.say(ts.NOT_STAFF)
        return
    turn.word = ts.BUTTONS.get(action, "")
    if action == "flash_refresh" and ref.isdigit():  # the command room card of a flash sale
        await guarded(turn, lambda: flash.refresh(turn, int(ref)))
        return
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
        order = await order_action(turn, session, action, order)
        label = desk.done_label(action, turn.me.name)
        turn.out.append(
            await desk.settled_order_card(
                session,
                order,
                turn.settings,
                desk.CardClick(turn.userid, card.task_id, turn.event.response_code),
                label,
            )
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
