"""The order form in chat: start it, answer step by step, 返回/取消/模板/继续, confirm into an order."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flows import texts
from flows.engine import OrderForm
from flows.format import yuan
from flows.notices import quiet
from flows.requirements import STEPS, InvalidInput, show
from handlers.context import Ctx, UserFacingError, refusals
from handlers.pay import offer_payment
from handlers.router import Router
from store import catalog, orders
from store.db import writing
from store.errors import DomainError

log = logging.getLogger(__name__)

router = Router("form")  # control words, tried before every other command
answers = Router("form_answers")  # anything else while a form is open, tried after the commands


def _in_form(ctx: Ctx) -> bool:
    return OrderForm.active(ctx.state)


async def begin_order_form(
    ctx: Ctx,
    lines: list[tuple[int, int]],
    *,
    from_cart: bool,
    known: Sequence[tuple[catalog.ServiceCard, catalog.PackageView]] = (),
) -> None:
    """Ask for the union of the packages' requirements, one at a time. `known`: packages the caller
    has just read with catalog.get_detail in this turn (with their flash-sale flag), not read again."""
    have = {package.id: (card, package) for card, package in known}
    if all(p in have for p, _ in lines):
        with refusals():  # a package on a live flash sale is sold only through the sale
            _not_on_sale([have[p] for p, _ in lines])
        keys = [k for p, _ in lines for k in have[p][1].requirements]
    else:
        keys = await _requirements(ctx, [p for p, _ in lines])
    form = OrderForm.begin(ctx.state, keys, lines=[list(x) for x in lines], from_cart=from_cart)
    ctx.mark("started")
    steps = len(form.keys)
    intro = texts.FORM_START.format(lines=len(lines), steps=steps, minutes=max(1, (steps + 1) // 2))
    ctx.say(intro + await _next_question(ctx, form))


def _not_on_sale(packages: list[tuple[catalog.ServiceCard, catalog.PackageView]]) -> None:
    """orders.not_on_flash_sale, answered by what get_detail read."""
    live = next((f"{card.title} {package.name}" for card, package in packages if package.on_sale), None)
    if live is not None:
        raise DomainError("flash_package", name=live)


async def _requirements(ctx: Ctx, package_ids: list[int]) -> list[str]:
    """The packages' requirement keys, after refusing any held by a live flash sale."""
    keys: list[str] = []
    async with ctx.read() as session:
        with refusals():  # a package on a live flash sale is sold only through the sale
            await orders.not_on_flash_sale(session, package_ids, ctx.now())
        for package_id in package_ids:
            found = await catalog.get_package(session, package_id)
            if found:
                keys.extend(found[1].requirements)
    return keys


async def _next_question(ctx: Ctx, form: OrderForm) -> str:
    return await _summary(ctx, form) if form.at_confirm else form.prompt()


async def _summary(ctx: Ctx, form: OrderForm) -> str:
    lines, total = [], 0
    async with ctx.read() as session:
        for package_id, quantity in form.lines:
            found = await catalog.get_package(session, package_id)
            if found is None:
                continue
            card, package = found
            subtotal = package.price_fen * quantity
            total += subtotal
            lines.append(
                texts.CONFIRM_LINE.format(
                    title=card.title, package=package.name, qty=quantity, subtotal=yuan(subtotal)
                )
            )
    shown = [
        texts.CONFIRM_ANSWER.format(label=STEPS[k].label, value=show(k, form.answers.get(k)))
        for k in form.keys
    ]
    return ctx.fmt(texts.CONFIRM, lines="\n".join(lines), total=yuan(total), answers="\n".join(shown))


@router.said(("返回", "上一步", "回到上一步"), when=_in_form)
async def on_back(ctx: Ctx) -> None:
    """One step back, to change an answer."""
    form = OrderForm(ctx.state)
    prefix = "" if form.back() else texts.FORM_FIRST_STEP
    ctx.say(prefix + await _next_question(ctx, form))


@router.said(("取消", "放弃", "不要了", "算了", "取消下单"), when=_in_form)
async def on_cancel(ctx: Ctx) -> None:
    """Abandon the form; the cart stays (and is only mentioned when something is in it)."""
    OrderForm(ctx.state).end()
    async with ctx.read() as session:
        kept = await orders.cart_lines(session, account=ctx.event.account, openid=ctx.openid)
    ctx.say(texts.FORM_CANCELLED if kept else texts.FORM_CANCELLED_NO_CART)


@router.said(("模板", "示例", "例子", "范例"), when=_in_form)
async def on_template(ctx: Ctx) -> None:
    """An example answer for the current step."""
    form = OrderForm(ctx.state)
    ctx.say(form.example(ctx.now()) + "\n\n" + form.prompt() if form.step else await _summary(ctx, form))


@router.text("继续", "接着填", "继续下单", "继续填")
async def on_resume(ctx: Ctx) -> None:
    """Back to where the form was left."""
    if not _in_form(ctx):
        ctx.say(texts.FORM_NOTHING_TO_RESUME)
        return
    ctx.say(await _next_question(ctx, OrderForm(ctx.state)))


def _at_confirm(ctx: Ctx) -> bool:
    return _in_form(ctx) and OrderForm(ctx.state).at_confirm


@router.said(("确认", "确认下单", "确定", "提交"), when=_at_confirm)
async def on_confirm(ctx: Ctx) -> None:
    """Create the order (stock reserved atomically); the form ends."""
    form = OrderForm(ctx.state)
    try:
        # On SQLite, in turn with the group commits (store.db.writing) instead of sleeping in SQLite's
        # busy handler when both want the single write lock: that sleep was the slow tail of 确认.
        async with writing(ctx.sessionmaker), ctx.transaction() as session:
            order = await orders.create_order(
                session,
                account=ctx.event.account,
                openid=ctx.openid,
                lines=[orders.Line(p, q) for p, q in form.lines],
                requirements=dict(form.answers),
                source_key=f"order:{ctx.event.account}:{ctx.openid}:{ctx.event.key}",
                notify=quiet,
                material_ids=form.answers.get("ref_images", []),
                gate=ctx.services.stock_gate,
                coupon=ctx.state.data.get("coupon"),  # chosen with 用券; else the best one
            )
            if form.data.get("from_cart"):
                await orders.cart_clear(
                    session,
                    account=ctx.event.account,
                    openid=ctx.openid,
                    package_ids=[p for p, _ in form.lines],
                )
    except DomainError as exc:
        if exc.code != "sold_out":
            raise
        await _drop_sold_out(ctx, form, exc)
        return
    form.end()
    await offer_payment(ctx, order, intro=texts.ORDER_CREATED_PAY)


async def _drop_sold_out(ctx: Ctx, form: OrderForm, exc: DomainError) -> None:
    """Take what sold out meanwhile off the form, and show the rest to confirm again."""
    keep = []
    async with ctx.read() as session:
        for package_id, quantity in form.lines:
            found = await catalog.get_package(session, package_id)
            if found and (found[1].stock is None or found[1].stock >= quantity):
                keep.append([package_id, quantity])
    names = "、".join(exc.details.get("packages", [])) or "部分套餐"
    if not keep:
        form.end()
        raise UserFacingError(texts.DOMAIN_ERRORS["sold_out"], names=names)
    form.data["lines"] = keep
    ctx.say(texts.ORDER_SOLD_OUT.format(names=names) + "\n\n" + await _summary(ctx, form))


@router.said(("",), when=lambda ctx: _in_form(ctx) and ctx.event.kind == "text")
async def on_only_punctuation(ctx: Ctx) -> None:
    """？？？ while a form is open is an answer to check (and refuse), not the help command '?'."""
    await on_answer(ctx)


@answers.when(lambda ctx: _in_form(ctx) and ctx.event.kind == "text")
async def on_answer(ctx: Ctx) -> None:
    """The answer to the current step: kept and on to the next, or re-asked with the reason."""
    form = OrderForm(ctx.state)
    if form.at_confirm:
        ctx.say(await _summary(ctx, form))
        return
    try:
        form.answer(ctx.event.text, ctx.now())
    except InvalidInput as exc:
        ctx.say(ctx.fmt(exc.text, **exc.values) + "\n\n" + form.prompt())
        return
    ctx.say(await _next_question(ctx, form))


async def fetch_image(ctx: Ctx) -> bytes:
    """The picture the person just sent, downloaded from WeChat (as the order form does it)."""
    if ctx.services.media is None:
        raise UserFacingError(texts.IMAGE_DOWNLOAD_FAILED)
    try:
        return await ctx.services.media.get_media(ctx.event.media_id)
    except Exception:
        log.warning("media download failed", exc_info=True, extra={"media_id": ctx.event.media_id})
        raise UserFacingError(texts.IMAGE_DOWNLOAD_FAILED) from None


async def keep_image(ctx: Ctx, data: bytes) -> int:
    """Keep the picture as the person's material (checked by its bytes); returns its id."""
    async with ctx.transaction() as session:
        try:
            return await orders.save_material(
                session,
                account=ctx.event.account,
                openid=ctx.openid,
                media_id=ctx.event.media_id,
                content_type="",
                data=data,
            )
        except DomainError as exc:
            raise UserFacingError(texts.DOMAIN_ERRORS.get(exc.code, texts.IMAGE_BAD)) from None


@answers.when(lambda ctx: _in_form(ctx) and ctx.event.kind == "image")
async def on_image(ctx: Ctx) -> None:
    """A picture for an image step: downloaded, checked and kept as the order's material."""
    form = OrderForm(ctx.state)
    step = form.step
    if step is None or not step.images:
        ctx.say(texts.IMAGE_NOT_NOW + "\n\n" + await _next_question(ctx, form))
        return
    material_id = await keep_image(ctx, await fetch_image(ctx))
    try:
        n = form.add_image(material_id)
    except InvalidInput as exc:
        raise UserFacingError(exc.text, **exc.values) from None
    ctx.say(texts.IMAGE_SAVED, n=n)
