"""Talking with customers about an order: 对话 · 回复 · 快捷回复 (flows.relay keeps the thread)."""

from __future__ import annotations

from flows import desk, relay
from flows import texts_staff as ts
from handlers.work.turn import StaffRouter, Turn, Usage

router = StaffRouter("replies")


@router.command("对话", "lookup")
async def on_thread(turn: Turn) -> None:
    """对话 <单号>: what the customer and staff said about the order."""
    number, _ = turn.args()
    async with turn.read() as session:
        order = await desk.order_by_number(session, number)
        turn.send(
            await relay.render_thread(session, order, settings=turn.settings, now=turn.now, for_staff=True)
        )


@router.command("回复", "reply")
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


@router.command("快捷回复", "reply")
async def on_quick_replies(turn: Turn) -> None:
    """快捷回复 [添加|删除 …]: the member's canned replies (flows.relay)."""
    async with turn.change() as session:
        turn.send(await relay.on_quick_reply_command(session, turn.userid, turn.rest))
