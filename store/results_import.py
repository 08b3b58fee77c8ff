"""Delivery figures from a file (`chatorder results import FILE.csv|.xlsx`), all or nothing.

One row is one reading of one piece. Columns (a header row; Chinese or English names, any order):

    单号 (order) · 第几条 (piece, may be empty when the order has one piece) · 时间 (at: 2026-12-08 20:00,
    Beijing time; empty = now) · 最终 (final: 是/yes/1 or empty) · and any of the metrics:
    曝光 阅读 点赞 评论 收藏 转发 点击 转化
    (exposure reads likes comments favorites shares clicks conversions)

A figure may be written 12000, 12,000, 1.2万 or 12k. Every problem is reported with its line; one bad
row and nothing is written, so fixing the file and running it again is safe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import results
from store.errors import DomainError
from store.models import Order
from store.orders import BEIJING
from store.outbox import Outgoing, enqueue
from store.results import METRICS, WORDS, BadFigures, Report, parse_count

COLUMNS: dict[str, tuple[str, ...]] = {
    "order": ("单号", "订单号", "订单", "order", "number"),
    "piece": ("第几条", "条", "第n条", "piece"),
    "at": ("时间", "统计时间", "at", "time"),
    "final": ("最终", "final"),
    **WORDS,
}
_BY_NAME = {unicodedata.normalize("NFKC", n).lower(): key for key, names in COLUMNS.items() for n in names}
YES = {"是", "yes", "y", "1", "true", "最终", "√"}
NO = {"", "否", "no", "n", "0", "false"}
TIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass
class Row:
    line: int
    number: str
    piece: int | None
    at: dt.datetime | None
    final: bool
    figures: dict[str, int]


@dataclass
class ImportResult:
    readings: int = 0
    orders: set[str] = field(default_factory=set)
    ready: list[str] = field(default_factory=list)  # orders whose final figures are now all in


def read_table(data: bytes, suffix: str) -> list[tuple[int, list[Any]]]:
    """The file's rows with their line numbers (header included); ValueError for an unreadable file."""
    if suffix == ".csv":
        text = data.decode("utf-8-sig")
        return [(i, row) for i, row in enumerate(csv.reader(io.StringIO(text)), start=1)]
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    except Exception as exc:
        raise ValueError(f"not an Excel workbook ({exc})") from None
    return [(i, list(row)) for i, row in enumerate(sheet.iter_rows(values_only=True), start=1)]


def parse_rows(table: list[tuple[int, list[Any]]]) -> tuple[list[Row], list[RowError]]:
    """Rows checked on their own (the database checks come in apply)."""
    table = [(i, row) for i, row in table if any(_cell(v) for v in row)]
    if not table:
        return [], [RowError(1, "the file is empty; the first row must name the columns")]
    head_line, head = table[0]
    keys = [_BY_NAME.get(unicodedata.normalize("NFKC", _cell(v)).lower()) for v in head]
    unknown = [_cell(v) for v, k in zip(head, keys, strict=True) if k is None and _cell(v)]
    errors = [RowError(head_line, f"unknown column(s): {', '.join(unknown)}")] if unknown else []
    if "order" not in keys:
        errors.append(RowError(head_line, "no order column (单号)"))
    if not any(k in METRICS for k in keys):
        errors.append(RowError(head_line, "no figure columns (曝光, 阅读, 点赞 …)"))
    if errors:
        return [], errors
    rows = []
    for line, values in table[1:]:
        cells = {k: _cell(v) for k, v in zip(keys, values, strict=False) if k}
        try:
            rows.append(_row(line, cells))
        except ValueError as exc:
            errors.append(RowError(line, str(exc)))
    return rows, errors


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _row(line: int, cells: dict[str, str]) -> Row:
    number = cells.get("order", "")
    if not number:
        raise ValueError("the order number (单号) is empty")
    piece_text = cells.get("piece", "").removeprefix("第").removesuffix("条")
    if piece_text and not piece_text.isdigit():
        raise ValueError(f"piece {cells['piece']!r} is not a number")
    final_text = cells.get("final", "").lower()
    if final_text not in YES | NO:
        raise ValueError(f"final {cells['final']!r}: write 是 or leave it empty")
    figures: dict[str, int] = {}
    for metric in METRICS:
        text = unicodedata.normalize("NFKC", cells.get(metric, "")).replace(" ", "")
        if not text:
            continue
        unit = text[-1].lower() if text[-1].lower() in ("万", "w", "千", "k", "亿") else ""
        try:
            figures[metric] = parse_count(text[: len(text) - len(unit)], unit)
        except (BadFigures, ValueError):
            raise ValueError(f"{WORDS[metric][0]} {text!r} is not a count") from None
    if not figures:
        raise ValueError("no figures in this row")
    return Row(
        line,
        number,
        int(piece_text) if piece_text else None,
        _when(cells.get("at", "")),
        final_text in YES,
        figures,
    )


def _when(text: str) -> dt.datetime | None:
    if not text:
        return None
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    raise ValueError(f"time {text!r}: write it like 2026-12-08 20:00")


async def apply(
    session: AsyncSession,
    rows: Iterable[Row],
    *,
    by: str,
    now: dt.datetime,
    notice: Callable[[Report], list[Outgoing]],
) -> tuple[ImportResult, list[RowError]]:
    """Record every row in the caller's transaction; with any error the caller rolls back.

    `notice(report) -> list[Outgoing]` tells a customer their final figures are in (once per order)."""
    result, errors = ImportResult(), []
    touched: dict[int, Order] = {}
    final_orders: set[int] = set()
    for row in rows:
        order = await session.scalar(select(Order).where(Order.number == row.number))
        if order is None:
            errors.append(RowError(row.line, f"no order {row.number}"))
            continue
        at = row.at or now
        if at > now + dt.timedelta(minutes=5):
            errors.append(RowError(row.line, f"time {at:%Y-%m-%d %H:%M} is in the future"))
            continue
        try:
            piece = results.which_piece(order, row.piece)
            await results.record(
                session, order, piece=piece, figures=row.figures, final=row.final, by=by, at=at
            )
        except DomainError as exc:
            errors.append(RowError(row.line, _explain(exc)))
            continue
        touched[order.id] = order
        if row.final:
            final_orders.add(order.id)
        result.readings += 1
        result.orders.add(order.number)
    if errors:
        return result, errors
    messages: list[Outgoing] = []
    for order_id in final_orders:
        report = await results.report(session, touched[order_id])
        if report.complete:
            result.ready.append(report.order.number)
            messages += notice(report)
    await enqueue(session, *messages)
    return result, []


def _explain(exc: DomainError) -> str:
    d = exc.details
    return {
        "no_pieces": f"order {d.get('number')} has no published piece yet (发布 it first)",
        "which_piece": f"order {d.get('number')} has {d.get('count')} pieces: say which one (第几条)",
        "no_such_piece": f"order {d.get('number')} has {d.get('count')} piece(s), not {d.get('piece')}",
        "no_results_yet": f"order {d.get('number')} is {d.get('status')}: only orders in progress or done",
    }.get(exc.code, exc.code)
