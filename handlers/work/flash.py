"""秒杀 列表 · 秒杀 查看 编码 · 秒杀 停止 编码: flash sales from work chat (admins)."""

from __future__ import annotations

from flows import flash as flow
from flows import texts_staff as ts
from handlers.work.turn import StaffRouter, Turn, Usage, fold, pair
from store import flash
from store.errors import DomainError

router = StaffRouter("flash")


@router.command("秒杀", "flash")
async def on_flash(turn: Turn) -> None:
    """秒杀 列表 | 查看 编码 | 停止 编码."""
    action, code = pair(turn.rest)
    action, code = fold(action), fold(code)
    if action in ("", "列表"):
        async with turn.read() as session:
            turn.send(await flow.staff_list(session, turn.now))
        return
    if not code or action not in ("查看", "停止"):
        raise Usage
    if action == "查看":
        async with turn.read() as session:
            view = await flash.sale_by_code(session, code)
            if view is None:
                raise DomainError("flash_not_found", sale=code)
            turn.send(await flow.staff_view(session, view, turn.now))
        return
    async with turn.change() as session:
        sale = await flash.stop_sale(session, code, turn.now)
    turn.say(ts.FLASH_STOPPED, code=sale.code)
