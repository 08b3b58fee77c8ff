"""The cart: 加购, 购物车, 数量, 删除, 清空购物车 — and 下单 / 结算, which start the order form."""

from __future__ import annotations

import re

from flows import texts
from flows.engine import OrderForm
from flows.format import CIRCLED, yuan
from handlers.context import Ctx, UserFacingError, refusals
from handlers.form import begin_order_form
from handlers.router import Router
from store import catalog, orders

router = Router("cart")

_PICK = re.compile(r"^(?:([①-⑩])|(\d{1,2}))(?:\s*[x×*]?\s*(\d{1,2}))?$")


def _package_pick(argument: str) -> tuple[int, int]:
    """'①', '2', '② 3', '1 x2' → (package position, quantity)."""
    match = _PICK.match(argument.strip())
    if not match:
        raise UserFacingError(texts.NO_VIEWING)
    position = CIRCLED.index(match.group(1)) + 1 if match.group(1) else int(match.group(2))
    return position, int(match.group(3) or 1)


async def _viewed_package(ctx: Ctx, position: int) -> tuple[catalog.ServiceCard, catalog.PackageView]:
    """Package `position` of the service the person looked at last, with the service's card."""
    service_id = ctx.state.data.get("viewing")
    if service_id is None:
        raise UserFacingError(texts.NO_VIEWING)
    async with ctx.read() as session:
        detail = await catalog.get_detail(session, int(service_id), now=ctx.now())
    if detail is None:
        raise UserFacingError(texts.NO_VIEWING)
    by_position = {p.position: p for p in detail.packages}
    package = by_position.get(position)
    if package is None:
        choices = "、".join(CIRCLED[p - 1] for p in sorted(by_position))
        raise UserFacingError(texts.NO_SUCH_PACKAGE, n=position, choices=choices)
    if package.stock == 0:
        raise UserFacingError(texts.PACKAGE_SOLD_OUT, name=f"{detail.card.title} {package.name}")
    return detail.card, package


@router.prefix("加购", "加入购物车")
async def on_add(ctx: Ctx) -> None:
    """'加购 ②' puts a package of the viewed service in the cart."""
    position, quantity = _package_pick(ctx.argument)
    package_id = (await _viewed_package(ctx, position))[1].id
    async with ctx.transaction() as session:
        with refusals():
            lines = await orders.cart_add(
                session,
                account=ctx.event.account,
                openid=ctx.openid,
                package_id=package_id,
                quantity=quantity,
            )
    ctx.say(texts.CART_ADDED, lines=len(lines), total=yuan(sum(x.subtotal_fen for x in lines)))


@router.prefix("下单", "立即下单", "购买")
async def on_buy_now(ctx: Ctx) -> None:
    """'下单 ①': straight to the order form with just this package."""
    position, quantity = _package_pick(ctx.argument)
    card, package = await _viewed_package(ctx, position)
    await begin_order_form(ctx, [(package.id, quantity)], from_cart=False, known=[(card, package)])


@router.text("购物车", "我的购物车", "看购物车")
async def on_view(ctx: Ctx) -> None:
    """The cart with its numbered lines and total."""
    async with ctx.read() as session:
        lines = await orders.cart_lines(session, account=ctx.event.account, openid=ctx.openid)
    ctx.say(render_cart(lines))


def render_cart(lines: list[orders.CartLine]) -> str:
    if not lines:
        return texts.CART_EMPTY
    body = "\n".join(
        texts.CART_LINE.format(
            n=x.line_no,
            title=x.service_title,
            package=x.package_name,
            qty=x.quantity,
            subtotal=yuan(x.subtotal_fen),
            warning=texts.CART_LINE_UNAVAILABLE
            if not x.listed
            else texts.CART_LINE_SOLD_OUT
            if x.stock == 0
            else "",
        )
        for x in lines
    )
    total = yuan(sum(x.subtotal_fen for x in lines))
    return texts.CART_HEAD.format(lines=len(lines)) + body + texts.CART_FOOT.format(total=total)


@router.prefix("数量", "改数量")
async def on_quantity(ctx: Ctx) -> None:
    """'数量 1 3' sets line 1 to 3 (0 removes it)."""
    parts = ctx.argument.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise UserFacingError(texts.CART_USAGE)
    line_no, quantity = int(parts[0]), int(parts[1])
    if quantity > 99:
        raise UserFacingError(texts.QUANTITY_INVALID)
    async with ctx.transaction() as session:
        with refusals():
            await orders.cart_set_quantity(
                session, account=ctx.event.account, openid=ctx.openid, line_no=line_no, quantity=quantity
            )
    await _show_updated(ctx)


@router.prefix("删除", "移除")
async def on_remove(ctx: Ctx) -> None:
    """'删除 2' takes line 2 out of the cart."""
    if not ctx.argument.isdigit():
        raise UserFacingError(texts.CART_USAGE)
    async with ctx.transaction() as session:
        with refusals():
            await orders.cart_remove(
                session, account=ctx.event.account, openid=ctx.openid, line_no=int(ctx.argument)
            )
    await _show_updated(ctx)


async def _show_updated(ctx: Ctx) -> None:
    async with ctx.read() as session:
        lines = await orders.cart_lines(session, account=ctx.event.account, openid=ctx.openid)
    ctx.say(texts.CART_UPDATED + render_cart(lines))


@router.text("清空购物车", "清空")
async def on_clear(ctx: Ctx) -> None:
    """Empty the cart."""
    async with ctx.transaction() as session:
        await orders.cart_clear(session, account=ctx.event.account, openid=ctx.openid)
    ctx.say(texts.CART_CLEARED)


@router.text("结算", "去结算", "买单")
async def on_checkout(ctx: Ctx) -> None:
    """Everything orderable in the cart goes into one order form."""
    if OrderForm.active(ctx.state):
        ctx.say(OrderForm(ctx.state).paused_hint().strip("\n—"))
        return
    async with ctx.read() as session:
        lines = await orders.cart_lines(session, account=ctx.event.account, openid=ctx.openid)
    orderable = [(x.package_id, x.quantity) for x in lines if x.listed and x.stock != 0]
    if not orderable:
        ctx.say(texts.CART_EMPTY)
        return
    await begin_order_form(ctx, orderable, from_cart=True)
