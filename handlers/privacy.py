"""Personal data: 我的数据 (a signed download of everything we hold) and 注销 (erasure, confirmed)."""

from __future__ import annotations

import datetime as dt

from flows import privacy as flow
from flows import texts
from flows.notices import quiet
from handlers.context import Ctx, UserFacingError
from handlers.router import Router
from store import privacy
from store.turns import FlowState

router = Router("privacy")

ASKED = "erase_asked_at"  # in the conversation data: when 注销 was asked, for 确认注销


@router.text("我的数据", "导出我的数据", "下载我的数据", "导出数据")
async def on_my_data(ctx: Ctx) -> None:
    """A link, valid 24 hours, to a JSON file of everything held about the person."""
    async with ctx.transaction() as session:
        user = await flow.person(session, account=ctx.event.account, openid=ctx.openid)
    link = flow.export_link(ctx.settings, user, ctx.now())
    if link is None:
        raise UserFacingError(texts.MY_DATA_UNAVAILABLE)
    ctx.say(texts.MY_DATA_LINK, url=link, hours=int(flow.EXPORT_LINK_TTL.total_seconds() // 3600))


@router.text("注销", "注销账号", "注销账户", "删除我的数据", "删除我的信息")
async def on_erase(ctx: Ctx) -> None:
    """What 注销 deletes and keeps, the money it would give up, and how to confirm."""
    standing = await _standing(ctx)
    ctx.state.data[ASKED] = ctx.now().isoformat()
    minutes = int(flow.ERASE_CONFIRM_WITHIN.total_seconds() // 60)
    ctx.say(texts.ERASE_CONFIRM, money=flow.money_warning(standing), minutes=minutes)


@router.text("确认注销")
async def on_erase_confirmed(ctx: Ctx) -> None:
    """Erase the person, if they asked within the last few minutes and nothing stands in the way."""
    asked = ctx.state.data.pop(ASKED, None)
    if not isinstance(asked, str) or dt.datetime.fromisoformat(asked) < ctx.now() - flow.ERASE_CONFIRM_WITHIN:
        raise UserFacingError(texts.ERASE_NOT_ASKED)
    await _standing(ctx)  # re-checked: an order may have been paid since
    async with ctx.transaction() as session:
        await privacy.erase(
            session,
            account=ctx.event.account,
            openid=ctx.openid,
            notify=quiet,
            gate=ctx.services.stock_gate,
            now=ctx.now(),
        )
    ctx.state = FlowState()  # the turn writes an empty conversation in place of the erased one
    ctx.say(texts.ERASED)


async def _standing(ctx: Ctx) -> privacy.Standing:
    """The person's standing; a refusal when 注销 has to wait."""
    async with ctx.read() as session:
        standing = await privacy.standing(session, account=ctx.event.account, openid=ctx.openid)
    blocked = flow.blocked_reason(standing)
    if blocked is not None:
        raise UserFacingError(blocked[0], **blocked[1])
    return standing
