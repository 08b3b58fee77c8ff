"""An order's results as people see them: the text summary and the report picture.

Both come from one store.results.Report, so every figure the text states is the figure the picture
draws and the export writes. The picture is blocking work (Pillow): callers use asyncio.to_thread.
"""

from __future__ import annotations

import datetime as dt

from flows import texts
from flows.format import yuan
from flows.when import BEIJING
from posters.charts import Canvas, Series, Tile
from store.outbox import Outgoing, text
from store.results import ENGAGEMENT, LABELS, METRICS, Report

MAX_PIECES_DRAWN = 12  # a longer order's picture would be too tall to read; the text has every total


def exact(n: int) -> str:
    """Figures in reports are exact: 36000 → '36,000'."""
    return f"{n:,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def money(fen: int | None) -> str:
    """A cost per unit, always with cents: 1234 → '¥12.34'."""
    return "—" if fen is None else f"¥{fen // 100:,}.{fen % 100:02d}"


def when(at: dt.datetime | None) -> str:
    return "—" if at is None else f"{at.astimezone(BEIJING):%m-%d %H:%M}"


def summary(report: Report) -> str:
    """The short text sent with the picture: totals, rates, costs, and what to do next."""
    t = report.totals
    rates = report.rates()
    figures = {m: exact(t[m]) for m in METRICS}
    return texts.REPORT_SUMMARY.format(
        number=report.order.number,
        at=when(report.last_at),
        stage=texts.REPORT_FINAL if report.complete else texts.REPORT_SO_FAR,
        pieces=len(report.pieces),
        engagement=exact(report.engagement),
        interaction=percent(rates.interaction),
        ctr=percent(rates.ctr),
        conversion=percent(rates.conversion),
        cpm=money(rates.cpm_fen),
        cpe=money(rates.cpe_fen),
        paid=yuan(report.paid_fen),
        **figures,
    )


def final_notice(report: Report) -> list[Outgoing]:
    """To the customer, once per order: the final figures are in and the report is ready."""
    order = report.order
    content = texts.REPORT_READY.format(
        number=order.number,
        exposure=exact(report.totals["exposure"]),
        engagement=exact(report.engagement),
        interaction=percent(report.rates().interaction),
    )
    return [text(order.openid, content, dedupe_key=f"results-final:{order.id}")]


def completion_notice(report: Report) -> list[Outgoing]:
    """At completion, the report's figures so far; the same key as final_notice, so said once."""
    order = report.order
    content = texts.REPORT_AT_COMPLETION.format(
        number=order.number,
        at=when(report.last_at),
        exposure=exact(report.totals["exposure"]),
        engagement=exact(report.engagement),
        interaction=percent(report.rates().interaction),
    )
    return [text(order.openid, content, dedupe_key=f"results-final:{order.id}")]


def piece_lines(report: Report) -> str:
    """One line per piece with its current figures (for staff's confirmation and the text)."""
    out = []
    for p in report.pieces:
        now = p.current
        shown = " ".join(f"{LABELS[m]} {exact(v)}" for m, v in now.items() if v is not None)
        out.append(texts.REPORT_PIECE.format(n=p.number, title=p.title or p.url, figures=shown or "—"))
    return "\n".join(out)


def picture(report: Report, font_path: str | None) -> bytes:
    """The report picture: title, the figures as tiles, then each piece's readings over time."""
    drawn = report.pieces[:MAX_PIECES_DRAWN]
    canvas = Canvas(font_path, height=520 + 640 * len(drawn))
    order = report.order
    stage = texts.REPORT_FINAL if report.complete else texts.REPORT_SO_FAR
    canvas.title(
        texts.REPORT_PICTURE_TITLE,
        texts.REPORT_PICTURE_SUB.format(number=order.number, at=when(report.last_at), stage=stage),
    )
    t, rates = report.totals, report.rates()
    canvas.tiles(
        [
            Tile(LABELS["exposure"], exact(t["exposure"])),
            Tile(LABELS["reads"], exact(t["reads"])),
            Tile(texts.REPORT_ENGAGEMENT, exact(report.engagement)),
            Tile(texts.REPORT_INTERACTION_RATE, percent(rates.interaction)),
            Tile(LABELS["clicks"], exact(t["clicks"])),
            Tile(LABELS["conversions"], exact(t["conversions"])),
            Tile(texts.REPORT_CPM, money(rates.cpm_fen)),
            Tile(texts.REPORT_CPE, money(rates.cpe_fen)),
        ]
    )
    for p in drawn:
        canvas.heading(texts.REPORT_PIECE_HEADING.format(n=p.number, title=p.title or p.url))
        if not p.readings:
            canvas.note(texts.REPORT_PIECE_NO_DATA)
            continue
        xs = [when(r.at) for r in p.readings]
        canvas.lines(
            [Series(LABELS[m], [getattr(r, m) for r in p.readings]) for m in ("exposure", "reads")], xs
        )
        canvas.lines([Series(LABELS[m], [getattr(r, m) for r in p.readings]) for m in ENGAGEMENT], xs, 220)
    if len(report.pieces) > len(drawn):
        canvas.note(texts.REPORT_MORE_PIECES.format(n=len(report.pieces) - len(drawn)))
    canvas.note(texts.REPORT_FOOT.format(paid=yuan(report.paid_fen)))
    return canvas.png()
