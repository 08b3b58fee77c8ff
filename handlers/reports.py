"""Results for customers: 报告 <单号> (the report text and picture) · 导出 <单号>|全部 (an Excel link) ·
评分 [单号] 1–5 [评价] (the review of a completed order) · 推荐 (「猜你喜欢」)."""

from __future__ import annotations

import asyncio
import logging
import re

from flows import desk, exports, ratings, texts
from flows import recommend as suggested
from flows import results as shown
from handlers.context import Ctx, UserFacingError, refusals
from handlers.router import Router
from store import orders, recommend, results, reviews
from store.catalog import ServiceCard
from store.models import Order
from store.results import Report

log = logging.getLogger(__name__)
router = Router("reports")

NUMBER = re.compile(r"(\d{8})-?(\d{4})")
ALL_WORDS = ("全部", "所有", "全部订单", "所有订单", "all")


async def _own(ctx: Ctx, command: str) -> Order:
    """The customer's own order named after the command (someone else's is as if it did not exist)."""
    match = NUMBER.search(_after(ctx, command))
    if not match:
        raise UserFacingError(texts.ORDER_USAGE, command=command)
    number = f"{match[1]}-{match[2]}"
    async with ctx.read() as session:
        view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
    if view is None:
        raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
    return view.order


@router.prefix("报告", "数据报告", "查看报告")
async def on_report(ctx: Ctx) -> None:
    """报告 <单号>: the summary, then the picture (the text alone if the picture cannot be made)."""
    order = await _own(ctx, "报告")
    async with ctx.read() as session:
        report = await results.report(session, order)
    if not report.has_data:
        ctx.say(texts.REPORT_NO_DATA, number=order.number)
        return
    media_id = await report_picture(ctx, report)
    ctx.say(shown.summary(report) + ("" if media_id else "\n" + texts.REPORT_PICTURE_UNAVAILABLE))
    if media_id:
        ctx.image(media_id)


async def report_picture(ctx: Ctx, report: Report) -> str | None:
    """The report picture drawn in a worker thread and uploaded; None when that fails."""
    api = ctx.services.media
    if api is None:
        return None
    try:
        png = await asyncio.to_thread(shown.picture, report, ctx.settings.font_path)
        return await api.upload_media("image", f"report-{report.order.number}.png", png)
    except Exception:  # the text still carries every figure
        log.warning("report picture failed", exc_info=True, extra={"order": report.order.number})
        return None


@router.prefix("导出")
async def on_export(ctx: Ctx) -> None:
    """导出 <单号> or 导出 全部: a signed link to an Excel workbook, valid for a day."""
    if _after(ctx, "导出").strip().lower() in ALL_WORDS:
        async with ctx.read() as session:
            mine = await exports.customer_scope(session, ctx.event.account, ctx.openid)
        if mine is None:
            raise UserFacingError(texts.EXPORT_NOTHING)
        (scope, count), what = mine, texts.EXPORT_WHAT_ALL
    else:
        order = await _own(ctx, "导出")
        scope, count, what = f"o{order.id}", 1, texts.EXPORT_WHAT_ONE.format(number=order.number)
    url = exports.link(ctx.settings, scope, ctx.now())
    if url is None:
        raise UserFacingError(texts.EXPORT_UNAVAILABLE)
    hours = int(exports.LINK_TTL.total_seconds() // 3600)
    ctx.say(texts.EXPORT_LINK, what=what, orders=count, url=url, hours=hours)


def _is_rating(ctx: Ctx) -> bool:
    """评分 / 打分 …, or 评价 followed by a score or an order number (「评价一下这个达人」 is not one)."""
    command = ctx.command or ""
    if command.startswith(("评分", "打分")):
        return True
    rest = command.removeprefix("评价")
    return rest != command and (NUMBER.search(rest) is not None or ratings.parse(rest) is not None)


def _after(ctx: Ctx, word: str) -> str:
    """What follows the command word, with or without a space (「导出全部」, 「报告20261207-0001」)."""
    command = ctx.command or ""
    for prefix in (word, *PREFIXES.get(word, ())):
        if command.startswith(prefix):
            return command[len(prefix) :].strip()
    return ctx.argument


PREFIXES = {"报告": ("数据报告", "查看报告")}


@router.prefix("评分", "打分", "评价", when=_is_rating)
async def on_rate(ctx: Ctx) -> None:
    """评分 [单号] 1–5 [评价]: the review of a completed order (the only one waiting, if no number)."""
    argument = ctx.event.text.strip() if ctx.event.text else ctx.argument
    argument = re.sub(r"^\s*(评分|评价|打分)\s*", "", argument)
    typed = NUMBER.search(argument)
    if typed:
        argument = (argument[: typed.start()] + " " + argument[typed.end() :]).strip()
    parsed = ratings.parse(argument)
    if parsed is None:
        raise UserFacingError(texts.REVIEW_USAGE)
    score, comment = parsed
    async with ctx.transaction() as session:
        waiting = await reviews.unreviewed(
            session, account=ctx.event.account, openid=ctx.openid, now=ctx.now()
        )
        if typed:
            view = await orders.find_order(
                session, account=ctx.event.account, openid=ctx.openid, number=f"{typed[1]}-{typed[2]}"
            )
            if view is None:
                raise UserFacingError(texts.ORDER_NOT_FOUND, number=f"{typed[1]}-{typed[2]}")
            order = view.order
        elif len(waiting) == 1:
            order = waiting[0]
        elif not waiting:
            raise UserFacingError(texts.REVIEW_NOTHING)
        else:
            numbers = "、".join(o.number for o in waiting[:5])
            raise UserFacingError(
                texts.REVIEW_WHICH, n=len(waiting), numbers=numbers, example=waiting[0].number
            )
        with refusals():
            review = await reviews.add(session, order, score=score, comment=comment, now=ctx.now())
        owner = await desk.member_name(session, order.assignee)
        for message in ratings.low_score_alert(ctx.settings, order, review, owner):
            ctx.send_later(message)
    ctx.say(ratings.thanks(review))


@router.text("推荐", "猜你喜欢", "为你推荐", "推荐服务")
async def on_recommend(ctx: Ctx) -> None:
    """推荐: 「猜你喜欢」 from what the person bought (and is looking at); numbers open a service."""
    viewing = ctx.state.data.get("viewing")
    async with ctx.read() as session:
        cards = await recommend.for_person(
            session,
            account=ctx.event.account,
            openid=ctx.openid,
            viewing=viewing if isinstance(viewing, int) else None,
        )
    if not cards:
        ctx.say(texts.RECOMMEND_NONE)
        return
    remember_list(ctx, cards)
    ctx.say(texts.RECOMMEND_HEAD + suggested.numbered(cards) + texts.RECOMMEND_FOOT)


def remember_list(ctx: Ctx, cards: list[ServiceCard]) -> None:
    """The numbers the person replies with open these services (as after a search)."""
    ctx.state.data.setdefault("browse", {})["ids"] = [c.id for c in cards]
    ctx.state.data["list"] = "catalog"
