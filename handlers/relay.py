"""Talking to the order's staff: 联系客服 [单号] / 人工客服, relay mode, 结束, 查看对话.

In relay mode only free text and images go to staff: commands (我的订单, 帮助 …) are routed first.
The first relayed message is acknowledged, later ones only after 30 minutes of quiet (no echo per line).
"""

from __future__ import annotations

from typing import Any

from flows import relay, texts
from flows import texts as t
from flows.engine import OrderForm
from handlers.context import Ctx, UserFacingError, refusals
from handlers.form import fetch_image
from handlers.orders import NUMBER
from handlers.router import Router, normalise
from store import orders
from store.models import Order

router = Router("relay")  # commands; tried before the form's control words and the basic commands
answers = Router("relay_answers")  # free text and images in relay mode, before the form's answers

HUMAN = {normalise(w) for w in ("人工", "客服", "人工客服", "转人工")}
END = {normalise(w) for w in ("结束", "结束对话", "退出客服", "退出", "结束客服", "不聊了")}
RESUME = {normalise(w) for w in ("继续", "接着填", "继续下单", "继续填")}


def _relay(ctx: Ctx) -> dict[str, Any] | None:
    return relay.relay_state(ctx.state, ctx.now())


async def _open_orders(ctx: Ctx) -> list[Order]:
    if not ctx.may_have_open_orders:  # most people asking for 人工 have none: no session, no query
        return []
    async with ctx.read() as session:
        return await relay.open_orders(session, account=ctx.event.account, openid=ctx.openid, now=ctx.now())


async def _start(ctx: Ctx, order: Order, first: str = "") -> None:
    """Relay mode for `order`; staff hear that the customer wants to talk (once per session)."""
    current = _relay(ctx)
    async with ctx.transaction() as session:
        if current is None or current["order_id"] != order.id:
            await relay.relay_opened(session, order=order, settings=ctx.settings, now=ctx.now())
        if first:
            await relay.customer_said(
                session,
                order=order,
                kind="text",
                content=first,
                key=ctx.event.key,
                settings=ctx.settings,
                now=ctx.now(),
            )
    relay.start_relay(ctx.state, order, ctx.now(), acked=bool(first))
    ctx.say(t.RELAY_START, number=order.number)


@router.prefix("联系客服")
async def on_contact(ctx: Ctx) -> None:
    """'联系客服' (the only open order) or '联系客服 20261122-0042 [first message]'."""
    match = NUMBER.search(ctx.argument)
    if match:
        number = match.group(1)
        async with ctx.read() as session:
            view = await orders.find_order(
                session, account=ctx.event.account, openid=ctx.openid, number=number
            )
        if view is None:
            raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
        if view.order.id not in {o.id for o in await _open_orders(ctx)}:
            raise UserFacingError(t.RELAY_NOT_OPEN, number=number, status=view.order.status)
        # What follows the number is the first message, as typed (the command is case-folded).
        said = ctx.event.text if number in ctx.event.text else ctx.argument
        first = said.split(number, 1)[-1].strip(" ，,：:")
        await _start(ctx, view.order, first)
        return
    found = await _open_orders(ctx)
    if len(found) == 1:
        await _start(ctx, found[0])
    elif found:
        await _which(ctx, found)
    else:
        ctx.say(texts.HUMAN)


@router.text(*HUMAN)
async def on_human(ctx: Ctx) -> None:
    """人工客服: straight to the order's staff when there is exactly one open order."""
    found = await _open_orders(ctx)
    if len(found) == 1:
        await _start(ctx, found[0])
        return
    hint = t.HUMAN_ORDERS_HINT.format(numbers="、".join(o.number for o in found)) if found else ""
    ctx.say(texts.HUMAN + "{hint}", hint=hint)


async def _which(ctx: Ctx, found: list[Order]) -> None:
    async with ctx.read() as session:
        titles = await relay.first_titles(session, [o.id for o in found])
    lines = "\n".join(
        t.RELAY_WHICH_LINE.format(number=o.number, status=o.status, title=titles.get(o.id, "")) for o in found
    )
    ctx.say(t.RELAY_WHICH, count=len(found), lines=lines, first=found[0].number)


@router.text(*END)
async def on_end(ctx: Ctx) -> None:
    """结束: leave relay mode (also after it timed out, so the word never falls through)."""
    ctx.say(t.RELAY_ENDED if relay.end_relay(ctx.state) else t.RELAY_NOT_ACTIVE)


@router.said(RESUME, when=lambda ctx: _relay(ctx) is not None and OrderForm.active(ctx.state))
async def on_back_to_form(ctx: Ctx) -> None:
    """继续 in relay mode with an order form under way: leave the relay, back to the form."""
    relay.end_relay(ctx.state)
    form = OrderForm(ctx.state)
    if form.at_confirm:
        ctx.say("{content}", content=texts.FORM_PAUSED_CONFIRM.strip("\n—"))
    else:
        ctx.say("{question}", question=form.prompt())


@router.prefix("查看对话", "对话记录", "聊天记录")
async def on_thread(ctx: Ctx) -> None:
    """'查看对话 20261122-0042': the messages with staff about that order."""
    match = NUMBER.search(ctx.argument)
    current = _relay(ctx)
    number = match.group(1) if match else current["number"] if current else None
    if number is None:
        found = await _open_orders(ctx)
        if len(found) != 1:
            raise UserFacingError(t.THREAD_USAGE)
        number = found[0].number
    async with ctx.read() as session:
        view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
        if view is None:
            raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
        shown = await relay.render_thread(
            session, view.order, settings=ctx.settings, now=ctx.now(), for_staff=False
        )
    ctx.say("{content}", content=shown)


@answers.when(lambda ctx: _relay(ctx) is not None and ctx.event.kind in ("text", "image"))
async def on_message(ctx: Ctx) -> None:
    """A text or picture in relay mode: kept under the order and passed to its staff."""
    current = _relay(ctx)
    assert current is not None
    image = (ctx.event.media_id, await fetch_image(ctx)) if ctx.event.kind == "image" else None
    async with ctx.transaction() as session:
        order = await relay.load_order(session, int(current["order_id"]))
        if order is not None and order.status in relay.OPEN_STATUSES:
            with refusals():
                await relay.pass_on(
                    session,
                    order=order,
                    said=ctx.event.text,
                    image=image,
                    key=ctx.event.key,
                    settings=ctx.settings,
                    now=ctx.now(),
                )
    if order is None or order.status not in relay.OPEN_STATUSES:
        relay.end_relay(ctx.state)
        ctx.say(t.RELAY_NOT_OPEN, number=current["number"], status=order.status if order else "")
    elif relay.relayed(current, ctx.now()):
        ctx.say(t.RELAY_ACK)
