"""Excel exports behind signed, expiring links (chat cannot carry files).

A link names a scope — one order (`o42`), a customer's paid orders (`u7`), a month for accounting
(`m2026-12`), or the operators' board picture (`board`) — and is signed with a key derived from the
app secrets, like material links. What it shows is built when the link is opened, from the figures
as they are then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.when import BEIJING
from settings import Settings
from store import orders, results
from store.models import Commission, Order, Payment, Refund, User
from store.results import ENGAGEMENT, LABELS, METRICS, Report

if TYPE_CHECKING:  # openpyxl (and the numpy it pulls in) loads only when a workbook is built
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

LINK_TTL = dt.timedelta(hours=24)
SCOPE = re.compile(r"(o\d{1,18}|u\d{1,18}|m\d{4}-\d{2}|board)")
COUNT, RATE, MONEY, WHEN = "#,##0", "0.00%", '"¥"#,##0.00', "yyyy-mm-dd hh:mm"
HEAD_COLOUR = "E8F5EE"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- Links ---------------------------------------------------------------------------------------


def _key(settings: Settings) -> bytes:
    """Derived from the app secrets under its own label: never configured or logged on its own."""
    secrets = settings.wecom_secret.get_secret_value() + "\n" + settings.wechat_app_secret.get_secret_value()
    if not secrets.strip():
        return b""
    return hmac.new(b"chatorder:export-links:v1", secrets.encode(), hashlib.sha256).digest()


def _signature(key: bytes, scope: str, exp: int) -> str:
    return hmac.new(key, f"export:{scope}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]


def link(
    settings: Settings, scope: str, now: dt.datetime, *, kind: str = "exports", ext: str = "xlsx"
) -> str | None:
    """A download link for `scope`, valid LINK_TTL; None where no secret is configured to sign it."""
    key = _key(settings)
    if not key:
        return None
    exp = int((now + LINK_TTL).timestamp())
    return f"{settings.public_url}/files/{kind}/{scope}.{ext}?exp={exp}&sig={_signature(key, scope, exp)}"


def link_is_valid(settings: Settings, scope: str, exp: str, sig: str, now: dt.datetime) -> bool:
    key = _key(settings)
    if not key or not SCOPE.fullmatch(scope) or not exp.isdigit() or int(exp) < now.timestamp():
        return False
    return hmac.compare_digest(_signature(key, scope, int(exp)), sig)


# --- What a workbook holds -----------------------------------------------------------------------


@dataclass
class OrderSheet:
    report: Report
    title: str  # the order's lines, e.g. 「小鹿爱咖啡 图文笔记 等 2 项」


async def order_sheets(session: AsyncSession, found: Sequence[Order]) -> list[OrderSheet]:
    titles = await orders.first_items(session, [o.id for o in found])
    sheets = []
    for order in found:
        first, lines = titles.get(order.id, ("", 0))
        title = first if lines <= 1 else f"{first} 等 {lines} 项"
        sheets.append(OrderSheet(await results.report(session, order), title))
    return sheets


async def scope_sheets(session: AsyncSession, scope: str) -> list[OrderSheet] | None:
    """The orders a customer's scope covers (None: no such order or person)."""
    if scope.startswith("o"):
        order = await session.get(Order, int(scope[1:]))
        return None if order is None else await order_sheets(session, [order])
    user = await session.get(User, int(scope[1:]))
    if user is None:
        return None
    query = (
        select(Order)
        .where(Order.account == user.account, Order.openid == user.openid, Order.status.in_(orders.PAID))
        .order_by(Order.created_at, Order.id)
    )
    return await order_sheets(session, list(await session.scalars(query)))


async def customer_scope(session: AsyncSession, account: str, openid: str) -> tuple[str, int] | None:
    """The scope of a customer's paid orders and how many there are (None: none)."""
    user_id = await session.scalar(select(User.id).where(User.account == account, User.openid == openid))
    paid = await session.scalar(
        select(func.count(Order.id)).where(
            Order.account == account, Order.openid == openid, Order.status.in_(orders.PAID)
        )
    )
    return None if user_id is None or not paid else (f"u{user_id}", int(paid))


# --- Workbooks (blocking: run in a worker thread) --------------------------------------------------

SUMMARY_HEAD = (
    ("订单号", 16, None),
    ("状态", 8, None),
    ("内容", 28, None),
    ("实付", 12, MONEY),
    ("发布条数", 9, COUNT),
    *((LABELS[m], 11, COUNT) for m in METRICS),
    ("互动", 11, COUNT),
    ("互动率", 9, RATE),
    ("点击率", 9, RATE),
    ("千次曝光成本", 13, MONEY),
    ("单次互动成本", 13, MONEY),
    ("最近统计", 17, WHEN),
)
READING_HEAD = (
    ("第几条", 8, None),
    ("标题", 24, None),
    ("链接", 36, None),
    ("统计时间", 17, WHEN),
    *((LABELS[m], 11, COUNT) for m in METRICS),
    ("互动", 11, COUNT),
    ("最终", 6, None),
)


def _local(at: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: Beijing time, naive."""
    return None if at is None else at.astimezone(BEIJING).replace(tzinfo=None)


def _fen(fen: int | None) -> float | None:
    return None if fen is None else fen / 100


def _table(
    ws: Worksheet, head: Sequence[tuple[str, int, str | None]], rows: Sequence[Sequence[Any]], at: int = 1
) -> int:
    """A header row and rows at row `at`, with number formats and column widths; the next free row."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    fill = PatternFill("solid", fgColor=HEAD_COLOUR)
    for col, (name, width, _) in enumerate(head, start=1):
        cell = ws.cell(row=at, column=col, value=name)
        cell.font, cell.fill = Font(bold=True), fill
        cell.alignment = Alignment(horizontal="center")
        ws.column_dimensions[get_column_letter(col)].width = max(
            width, ws.column_dimensions[get_column_letter(col)].width or 0
        )
    for r, row in enumerate(rows, start=at + 1):
        for col, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=col, value=value)
            fmt = head[col - 1][2]
            if fmt and value is not None:
                cell.number_format = fmt
    ws.freeze_panes = f"A{at + 1}"
    return at + len(rows) + 2


def _summary_row(sheet: OrderSheet) -> list[Any]:
    rep = sheet.report
    t, rates = rep.totals, rep.rates()
    return [
        rep.order.number,
        rep.order.status,
        sheet.title,
        _fen(rep.paid_fen),
        len(rep.pieces),
        *(t[m] for m in METRICS),
        rep.engagement,
        rates.interaction,
        rates.ctr,
        _fen(rates.cpm_fen),
        _fen(rates.cpe_fen),
        _local(rep.last_at),
    ]


def customer_workbook(sheets: Sequence[OrderSheet]) -> bytes:
    """汇总 (one row per order and a 合计 row), then a sheet per order with every reading."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "汇总"
    rows = [_summary_row(s) for s in sheets]
    if len(sheets) > 1:
        total: list[Any] = ["合计", "", "", sum(r[3] or 0 for r in rows), sum(r[4] for r in rows)]
        total += [sum(r[5 + i] for r in rows) for i in range(len(METRICS) + 1)]
        rows.append(total)
    _table(ws, SUMMARY_HEAD, rows)
    for sheet in sheets:
        _order_sheet(wb.create_sheet(sheet.report.order.number), sheet)
    return _save(wb)


def _order_sheet(ws: Worksheet, sheet: OrderSheet) -> None:
    from openpyxl.styles import Font

    rep = sheet.report
    readings = [
        [
            p.number,
            p.title,
            p.url,
            _local(r.at),
            *(getattr(r, m) for m in METRICS),
            sum(getattr(r, m) or 0 for m in ENGAGEMENT),
            "是" if r.final else "",
        ]
        for p in rep.pieces
        for r in p.readings
    ]
    ws.append([f"订单 {rep.order.number} · {rep.order.status} · {sheet.title}"])
    ws["A1"].font = Font(bold=True, size=13)
    _table(ws, READING_HEAD, readings, at=3)


MONTH_SHEETS: dict[str, tuple[tuple[str, int, str | None], ...]] = {
    "订单": (
        ("订单号", 16, None),
        ("状态", 8, None),
        ("下单时间", 17, WHEN),
        ("内容", 30, None),
        ("金额", 12, MONEY),
    ),
    "付款": (
        ("商户单号", 24, None),
        ("订单号", 16, None),
        ("用途", 8, None),
        ("方式", 8, None),
        ("金额", 12, MONEY),
        ("付款时间", 17, WHEN),
        ("微信支付单号", 30, None),
    ),
    "退款": (
        ("退款单号", 24, None),
        ("订单号", 16, None),
        ("去向", 8, None),
        ("状态", 10, None),
        ("金额", 12, MONEY),
        ("申请时间", 17, WHEN),
        ("完成时间", 17, WHEN),
        ("原因", 30, None),
    ),
    "佣金": (
        ("订单号", 16, None),
        ("层级", 6, COUNT),
        ("计佣金额", 12, MONEY),
        ("比例", 8, RATE),
        ("佣金", 12, MONEY),
        ("已冲回", 12, MONEY),
        ("状态", 10, None),
        ("产生时间", 17, WHEN),
    ),
}


async def month_rows(session: AsyncSession, month: str) -> dict[str, list[list[Any]]]:
    """The month's (Beijing time) orders, payments, refunds and commissions, for accounting."""
    year, mon = int(month[:4]), int(month[5:7])
    start = dt.datetime(year, mon, 1, tzinfo=BEIJING)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=BEIJING)
    found = list(
        await session.scalars(
            select(Order).where(Order.created_at >= start, Order.created_at < end).order_by(Order.id)
        )
    )
    titles = await orders.first_items(session, [o.id for o in found])
    pays = list(
        await session.scalars(
            select(Payment)
            .where(Payment.status == "paid", Payment.paid_at >= start, Payment.paid_at < end)
            .order_by(Payment.paid_at)
        )
    )
    refunds = list(
        await session.scalars(
            select(Refund).where(Refund.created_at >= start, Refund.created_at < end).order_by(Refund.id)
        )
    )
    commissions = list(
        await session.scalars(
            select(Commission)
            .where(Commission.created_at >= start, Commission.created_at < end)
            .order_by(Commission.id)
        )
    )
    ids = {p.order_id for p in pays if p.order_id} | {r.order_id for r in refunds}
    ids |= {c.order_id for c in commissions}
    numbers: dict[int, str] = {}
    if ids:
        found_numbers = await session.execute(select(Order.id, Order.number).where(Order.id.in_(ids)))
        numbers = {order_id: number for order_id, number in found_numbers}
    return {
        "订单": [
            [o.number, o.status, _local(o.created_at), titles.get(o.id, ("", 0))[0], _fen(o.total_fen)]
            for o in found
        ],
        "付款": [
            [
                p.out_trade_no,
                numbers.get(p.order_id or 0, ""),
                p.purpose,
                p.trade_type,
                _fen(p.amount_fen),
                _local(p.paid_at),
                p.transaction_id,
            ]
            for p in pays
        ],
        "退款": [
            [
                r.out_refund_no,
                numbers.get(r.order_id, ""),
                r.destination,
                r.status,
                _fen(r.amount_fen),
                _local(r.created_at),
                _local(r.done_at),
                r.reason,
            ]
            for r in refunds
        ],
        "佣金": [
            [
                numbers.get(c.order_id, ""),
                c.depth,
                _fen(c.base_fen),
                c.rate_bp / 10000,
                _fen(c.amount_fen),
                _fen(c.reversed_fen),
                c.status,
                _local(c.created_at),
            ]
            for c in commissions
        ],
    }


def month_workbook(rows: dict[str, list[list[Any]]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for name, head in MONTH_SHEETS.items():
        _table(wb.create_sheet(name), head, rows[name])
    return _save(wb)


def _save(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
