"""Redoing materials the reviewer sent back: answers step by step, 不变, 返回/模板/继续, 取消 → staff."""

from __future__ import annotations

import logging

from flows import texts
from flows import texts as t
from flows.engine import OrderForm
from flows.relay import load_order, relay_state, start_relay
from flows.requirements import InvalidInput
from flows.review import (
    ResubmitForm,
    apply_resubmission,
    asking,
    awaiting_resubmission,
    declined,
    keys_sent_back,
)
from handlers.context import Ctx, UserFacingError
from handlers.form import fetch_image, keep_image
from handlers.orders import NUMBER
from handlers.router import Router, normalise
from store import orders

log = logging.getLogger(__name__)

router = Router("resubmit")  # control words while redoing, tried before the order form's
answers = Router("resubmit_answers")  # anything else while redoing, tried before relay and form answers

CANCEL = {normalise(w) for w in ("取消", "放弃", "算了", "不改了", "找客服", "问客服")}
BACK = {normalise(w) for w in ("返回", "上一步", "回到上一步")}
EXAMPLE = {normalise(w) for w in ("模板", "示例", "例子", "范例")}
RESUME = {normalise(w) for w in ("继续", "接着填", "继续填")}
KEEP = {normalise(w) for w in t.RESUBMIT_KEEP_WORDS}


def _redoing(ctx: Ctx, words: set[str] | None = None) -> bool:
    return ResubmitForm.active(ctx.state) and (words is None or ctx.command in words)


def _ask(ctx: Ctx, before: str, form: ResubmitForm) -> None:
    ctx.say("{before}{question}", before=before, question=form.prompt())


@router.said(CANCEL, when=_redoing)
async def on_cancel(ctx: Ctx) -> None:
    """Rather talk to staff: the flow ends, the customer is put through to the order's staff."""
    form = ResubmitForm(ctx.state)
    order_id, number = form.order_id, form.number
    form.finish()
    async with ctx.transaction() as session:
        order = await load_order(session, order_id)
        if order is not None:
            await declined(session, order=order, settings=ctx.settings, now=ctx.now())
    if order is not None:
        start_relay(ctx.state, order, ctx.now())
    ctx.say(t.RESUBMIT_CANCELLED + "{resume}", number=number, resume=_paused_hint(ctx))


@router.said(BACK, when=_redoing)
async def on_back(ctx: Ctx) -> None:
    """One step back, to change an answer just given."""
    form = ResubmitForm(ctx.state)
    _ask(ctx, "" if form.back() else texts.FORM_FIRST_STEP, form)


@router.said(EXAMPLE, when=_redoing)
async def on_example(ctx: Ctx) -> None:
    """An example answer for the current step."""
    form = ResubmitForm(ctx.state)
    _ask(ctx, form.example(ctx.now()) + "\n\n", form)


@router.said(RESUME, when=_redoing)
async def on_resume(ctx: Ctx) -> None:
    """Back to the step being redone (after asking something else)."""
    form = ResubmitForm(ctx.state)
    _ask(ctx, t.RESUBMIT_FOR_ORDER.format(number=form.number), form)


@router.prefix("重新提交", "补充资料")
async def on_restart(ctx: Ctx) -> None:
    """'重新提交 20261122-0042': redo the materials after having said 取消."""
    match = NUMBER.search(ctx.argument)
    if not match:
        raise UserFacingError(t.RESUBMIT_USAGE)
    async with ctx.read() as session:
        view = await orders.find_order(
            session, account=ctx.event.account, openid=ctx.openid, number=match.group(1)
        )
        order = view.order if view else None
        if order is None or not awaiting_resubmission(order, ctx.openid):
            raise UserFacingError(t.RESUBMIT_NOTHING, number=match.group(1))
        keys = await keys_sent_back(session, order)
    ResubmitForm.start(ctx.state, order, keys, fresh=not order.review_note)
    ctx.say("{content}", content=asking(order, keys, order.review_note or ""))


@answers.when(lambda ctx: _redoing(ctx) and ctx.event.kind == "text")
async def on_answer(ctx: Ctx) -> None:
    """The new answer to the step being redone (or 不变), then the next step or the end."""
    form = ResubmitForm(ctx.state)
    if ctx.command in KEEP and not form.fresh:  # first answers have nothing to keep
        form.keep()
    else:
        try:
            form.answer(ctx.event.text, ctx.now())
        except InvalidInput as exc:
            _ask(ctx, ctx.fmt(exc.text, **exc.values) + "\n\n", form)
            return
    if not form.at_confirm:
        _ask(ctx, "", form)
        return
    await _finish(ctx, form)


@answers.when(lambda ctx: _redoing(ctx) and ctx.event.kind == "image")
async def on_image(ctx: Ctx) -> None:
    """A picture for an image step being redone."""
    form = ResubmitForm(ctx.state)
    step = form.step
    if step is None or not step.images:
        _ask(ctx, texts.IMAGE_NOT_NOW + "\n\n", form)
        return
    material_id = await keep_image(ctx, await fetch_image(ctx))
    try:
        n = form.add_image(material_id)
    except InvalidInput as exc:
        raise UserFacingError(exc.text, **exc.values) from None
    ctx.say(texts.IMAGE_SAVED, n=n)


async def _finish(ctx: Ctx, form: ResubmitForm) -> None:
    """Update the order and send it back to review; then resume whatever the person was doing."""
    number, fresh = form.number, form.fresh
    async with ctx.transaction() as session:
        order = await apply_resubmission(
            session,
            order_id=form.order_id,
            openid=ctx.openid,
            answers=dict(form.answers),
            settings=ctx.settings,
            now=ctx.now(),
        )
    form.finish()
    done = (t.REQUIREMENTS_DONE if fresh else t.RESUBMIT_DONE) if order is not None else t.RESUBMIT_NOT_NEEDED
    ctx.say(done + "{resume}", number=number, resume=_resume(ctx))


def _resume(ctx: Ctx) -> str:
    """What the person was doing before, asked again (or how to get back to it)."""
    if ResubmitForm.active(ctx.state):  # another order's materials were sent back meanwhile
        form = ResubmitForm(ctx.state)
        return t.RESUBMIT_RESUME.format(
            question=t.RESUBMIT_FOR_ORDER.format(number=form.number) + form.prompt()
        )
    if OrderForm.active(ctx.state):
        form_ = OrderForm(ctx.state)
        if form_.at_confirm or relay_state(ctx.state, ctx.now()) is not None:
            return _paused_hint(ctx)
        return t.RESUBMIT_RESUME.format(question=form_.prompt())
    return ""


def _paused_hint(ctx: Ctx) -> str:
    return OrderForm(ctx.state).paused_hint() if OrderForm.active(ctx.state) else ""
