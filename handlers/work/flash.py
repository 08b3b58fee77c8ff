"""秒杀 列表 · 秒杀 查看 编码 · 秒杀 报告 编码 · 秒杀 停止 编码: flash sales from work chat (admins)."""

from __future__ import annotations

import secrets

from flows import flash as flow
from flows import texts_staff as ts
from flows.desk import WECOM
from handlers.work.turn import StaffRouter, Turn, Usage, fold, pair
from store import flash, staff
from store.errors import DomainError
from store.models import FlashSale
from store.outbox import Outgoing

router = StaffRouter("flash")


@router.command("秒杀", "flash")
async def on_flash(turn: Turn) -> None:
    """秒杀 列表 | 查看 编码 | 报告 编码 (the figures without the card) | 停止 编码."""
    action, code = pair(turn.rest)
    action, code = fold(action), fold(code)
    if action in ("", "列表"):
        async with turn.read() as session:
            turn.send(await flow.staff_list(session, turn.now))
        return
    if not code or action not in ("查看", "报告", "停止"):
        raise Usage
    if action in ("查看", "报告"):
        async with turn.read() as session:
            view = await flash.sale_by_code(session, code)
            if view is None:
                raise DomainError("flash_not_found", sale=code)
            turn.send(await flow.staff_view(session, view, turn.now))
            if action == "报告":
                return
            # The command room card: refreshed in place by its 刷新 button while the sale runs.
            task_id = f"flash-{view.sale.id}-{secrets.token_hex(6)}"
            card = await flow.room_card_now(session, view, task_id=task_id, now=turn.now)
        turn.out.append(
            Outgoing(WECOM, turn.userid, "template_card", {"template_card": card}, f"card:{task_id}")
        )
        return
    async with turn.change() as session:
        sale = await flash.stop_sale(session, code, turn.now)
    turn.say(ts.FLASH_STOPPED, code=sale.code)


async def refresh(turn: Turn, sale_id: int) -> None:
    """刷新 on the command room card: the card redrawn in place with the figures of now."""
    staff.check(turn.member, "flash")
    async with turn.read() as session:
        sale = await session.get(FlashSale, sale_id)
        view = await flash.sale_by_code(session, sale.code) if sale else None
        if view is None:
            raise DomainError("flash_not_found", sale=sale_id)
        card = await flow.room_card_now(session, view, task_id=turn.event.task_id, now=turn.now)
    payload = {"response_code": turn.event.response_code, "userids": [turn.userid], "template_card": card}
    turn.out.append(Outgoing(WECOM, turn.userid, "card_update", payload))
