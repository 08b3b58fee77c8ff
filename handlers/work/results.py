"""Results: 数据 (record a piece's figures) · 报告 (the order's report as the customer sees it) ·
导出 订单 YYYY-MM (the month for accounting) · 看板 (the operators' figures)."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy.ext.asyncio import AsyncSession

from flows import board, desk, exports, ratings, texts
from flows import recommend as suggested
from flows import results as shown
from flows import texts_staff as ts
from handlers.work.turn import StaffRouter, Turn, Usage, fold
from store import coupons, recommend, results, staff
from store.models import Order
from store.orders import OrderStatus
from store.outbox import Outgoing, text
from store.results import BadFigures, Report

router = StaffRouter("results")


@router.command("数据", "results")
async def on_results(turn: Turn) -> None:
    """数据 <单号> [第N条] [最终] 曝光 1.2万 …: one more reading of a piece (never overwrites one)."""
    number, rest = turn.args()
    if not rest:
        raise Usage
    try:
        reading = results.parse_reading(rest)
    except BadFigures as exc:
        turn.say(ts.RESULTS_BAD, part=str(exc)[:40], usage=ts.USAGE["数据"])
        return
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        piece = results.which_piece(order, reading.piece)
        await results.record(
            session,
            order,
            piece=piece,
            figures=reading.figures,
            final=reading.final,
            by=turn.actor,
            at=turn.now,
        )
        await staff.audit(
            session,
            actor=turn.actor,
            action="results",
            target=f"order:{order.number}",
            now=turn.now,
            detail={"piece": piece, "final": reading.final, **reading.figures},
        )
        report = await results.report(session, order)
        if report.complete and reading.final:
            turn.out += shown.final_notice(report)
        turn.say(
            ts.RESULTS_RECORDED,
            number=number,
            piece=piece,
            count=len(report.pieces[piece - 1].readings),
            final=ts.RESULTS_FINAL_MARK if reading.final else "",
            figures=shown.piece_lines(report),
            next=_next_step(report),
        )


def _next_step(report: Report) -> str:
    number = report.order.number
    if report.complete:
        done = report.order.status == OrderStatus.COMPLETED
        return (ts.RESULTS_NEXT_DONE_COMPLETED if done else ts.RESULTS_NEXT_DONE).format(number=number)
    if any(p.final for p in report.pieces):
        left = [p for p in report.pieces if not p.final]
        return ts.RESULTS_NEXT_MORE.format(left=len(left), pieces="、".join(f"第{p.number}条" for p in left))
    return ts.RESULTS_NEXT_SO_FAR.format(number=number)


async def after_completion(session: AsyncSession, order: Order) -> list[Outgoing]:
    """What the customer hears after 完成 besides the status: the report if there are figures
    (unless the final-figures notice already said it), the one ask for a review, 「猜你喜欢」."""
    report = await results.report(session, order)
    out = shown.completion_notice(report) if report.has_data else []
    out += ratings.ask(order)
    if await coupons.opted_out(session, account=order.account, openid=order.openid):
        return out  # 退订: no suggestions pushed
    liked = await recommend.for_person(session, account=order.account, openid=order.openid, k=3)
    if liked:
        content = texts.RECOMMEND_AFTER_COMPLETION.format(lines=suggested.bullets(liked))
        out.append(text(order.openid, content, dedupe_key=f"recommend-after:{order.id}"))
    return out


@router.command("报告", "report")
async def on_report(turn: Turn) -> None:
    """报告 <单号>: the customer's report text, and each piece's current figures."""
    number, _ = turn.args()
    async with turn.read() as session:
        turn.send(await report_text(session, await desk.order_by_number(session, number)))


async def report_text(session: AsyncSession, order: Order) -> str:
    report = await results.report(session, order)
    if not report.has_data:
        return texts.REPORT_NO_DATA.format(number=order.number)
    return shown.summary(report) + "\n\n" + shown.piece_lines(report)


MONTH = re.compile(r"(?:订单\s*)?(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?")


@router.command("导出", "export")
async def on_export(turn: Turn) -> None:
    """导出 订单 2026-12 (finance): the month's orders, payments, refunds and commissions in Excel."""
    found = MONTH.fullmatch(fold(turn.rest))
    if found is None or not 1 <= int(found[2]) <= 12:
        raise Usage
    month = f"{found[1]}-{int(found[2]):02d}"
    url = exports.link(turn.settings, f"m{month}", turn.now)
    if url is None:
        turn.say(ts.EXPORT_UNAVAILABLE)
        return
    turn.say(ts.EXPORT_MONTH, month=month, url=url, hours=int(exports.LINK_TTL.total_seconds() // 3600))


@router.command("看板", "board")
async def on_board(turn: Turn) -> None:
    """看板: the operators' picture, and the figures in words with a signed link to the picture (which
    still works should the picture's upload fail)."""
    async with turn.read() as session:
        figures = await board.gather(session, turn.now)
    png = await asyncio.to_thread(board.picture, figures, turn.settings.font_path)  # CPU work: off the loop
    turn.out.append(board.to_member(turn.userid, png))
    url = exports.link(turn.settings, "board", turn.now, kind="board", ext="png")
    hours = int(exports.LINK_TTL.total_seconds() // 3600)
    turn.send(board.text(figures, url=url or ts.BOARD_NO_LINK, hours=hours))
