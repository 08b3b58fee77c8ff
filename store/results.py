"""Delivery results: the figures of each published piece over time, and what an order's report adds up.

Staff record a reading whenever they have one (`数据 …` in work chat, or a CSV/Excel file); every reading
is a new DeliveryStat row, never an update. A piece's current figures are, per metric, its latest
reading that gave that metric; an order's totals are the sum over its pieces. Rates are derived from
those totals and what the customer paid (integer fen; a rate with a zero denominator is None).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import payments
from store.errors import DomainError
from store.models import DeliveryStat, Order
from store.orders import OrderStatus

METRICS = ("exposure", "reads", "likes", "comments", "favorites", "shares", "clicks", "conversions")
ENGAGEMENT = ("likes", "comments", "favorites", "shares")  # 互动 = 点赞 + 评论 + 收藏 + 转发
# The words staff (and import headers) use for each metric; the first is the one shown.
WORDS: dict[str, tuple[str, ...]] = {
    "exposure": ("曝光", "展现", "曝光量", "exposure", "impressions"),
    "reads": ("阅读", "播放", "浏览", "阅读量", "播放量", "reads", "views"),
    "likes": ("点赞", "赞", "点赞数", "likes"),
    "comments": ("评论", "评论数", "comments"),
    "favorites": ("收藏", "收藏数", "favorites", "saves"),
    "shares": ("转发", "分享", "转发数", "shares"),
    "clicks": ("点击", "点击量", "clicks"),
    "conversions": ("转化", "转化数", "conversions"),
}
LABELS = {m: words[0] for m, words in WORDS.items()}
_BY_WORD = {w: m for m, words in WORDS.items() for w in words}
UNITS = {"": 1, "万": 10_000, "w": 10_000, "千": 1_000, "k": 1_000, "亿": 100_000_000}
MAX_FIGURE = 10**12  # more than any platform shows; a typo beyond it is refused
FINAL_WORDS = ("最终", "终", "final")
RECORDABLE = (OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED)

_WORD = "|".join(sorted((re.escape(w) for w in _BY_WORD), key=len, reverse=True))
_PAIR = re.compile(rf"({_WORD})\s*[:：=]?\s*(\d[\d,]*(?:\.\d+)?)\s*(万|w|千|k|亿)?(?![a-z])", re.IGNORECASE)
_PIECE = re.compile(r"第\s*(\d{1,3})\s*[条篇个]|#(\d{1,3})\b")


class BadFigures(ValueError):
    """What was typed is not a list of 「指标 数字」 pairs (the reason says which part)."""


def parse_count(number: str, unit: str = "") -> int:
    """'1.2' '万' → 12000, '3' 'k' → 3000, '8,000' → 8000; a fraction of one is refused."""
    value = float(number.replace(",", "")) * UNITS[unit.lower()]
    whole = round(value)
    if abs(value - whole) > 1e-6 or whole > MAX_FIGURE:
        raise BadFigures(number + unit)
    return whole


def parse_figures(text: str) -> dict[str, int]:
    """「曝光 1.2万 阅读 8000 点赞 530」 → {exposure: 12000, reads: 8000, likes: 530}.

    Every part must be a known metric with a number; a repeated metric or anything left over is an
    error, so a typo is answered rather than half-recorded."""
    text = unicodedata.normalize("NFKC", text)
    figures: dict[str, int] = {}
    rest = _PAIR.sub(" ", text)
    if rest.strip(" ,，、;；。"):
        raise BadFigures(rest.strip())
    for word, number, unit in _PAIR.findall(text):
        metric = _BY_WORD[word.lower()]
        if metric in figures:
            raise BadFigures(word)
        figures[metric] = parse_count(number, unit or "")
    if not figures:
        raise BadFigures(text)
    return figures


@dataclass(frozen=True, slots=True)
class Reading:
    """What a `数据` line says: which piece (None: the only one), final or not, the figures."""

    piece: int | None
    final: bool
    figures: dict[str, int]


def parse_reading(text: str) -> Reading:
    """「第2条 最终 曝光 1.2万 点赞 530」 → Reading(2, True, {…}); BadFigures when it is not one."""
    text = unicodedata.normalize("NFKC", text).strip()
    piece = None
    found = _PIECE.search(text)
    if found:
        piece = int(found[1] or found[2])
        text = text[: found.start()] + " " + text[found.end() :]
    words = text.split()
    final = any(w.lower() in FINAL_WORDS for w in words)
    text = " ".join(w for w in words if w.lower() not in FINAL_WORDS)
    return Reading(piece, final, parse_figures(text))


def which_piece(order: Order, piece: int | None) -> int:
    """The 1-based piece a reading is for: the one named, or the only one published."""
    count = len(order.deliverables)
    if count == 0:
        raise DomainError("no_pieces", number=order.number)
    if piece is None:
        if count > 1:
            raise DomainError("which_piece", number=order.number, count=count)
        return 1
    if not 1 <= piece <= count:
        raise DomainError("no_such_piece", number=order.number, piece=piece, count=count)
    return piece


async def record(
    session: AsyncSession,
    order: Order,
    *,
    piece: int,
    figures: dict[str, int],
    final: bool,
    by: str,
    at: dt.datetime,
) -> DeliveryStat:
    """Append one reading (the caller has checked the piece with which_piece)."""
    if order.status not in RECORDABLE:
        raise DomainError("no_results_yet", number=order.number, status=order.status)
    stat = DeliveryStat(order_id=order.id, piece=piece, at=at, final=final, recorded_by=by, **figures)
    session.add(stat)
    await session.flush()
    return stat


async def readings(session: AsyncSession, order_id: int) -> list[DeliveryStat]:
    """Every reading of an order, oldest first."""
    query = select(DeliveryStat).where(DeliveryStat.order_id == order_id)
    return list(await session.scalars(query.order_by(DeliveryStat.at, DeliveryStat.id)))


@dataclass
class PieceResult:
    """One published piece: its title and link, its readings, its current figures."""

    number: int
    title: str
    url: str
    readings: list[DeliveryStat] = field(default_factory=list)

    @property
    def current(self) -> dict[str, int | None]:
        """Per metric, the latest reading that gave it."""
        now: dict[str, int | None] = dict.fromkeys(METRICS)
        for r in self.readings:
            for m in METRICS:
                value = getattr(r, m)
                if value is not None:
                    now[m] = value
        return now

    @property
    def final(self) -> bool:
        return any(r.final for r in self.readings)


@dataclass
class Report:
    """An order's results: pieces, totals and rates (what the picture, the text and the export show)."""

    order: Order
    pieces: list[PieceResult]
    paid_fen: int

    @property
    def has_data(self) -> bool:
        return any(p.readings for p in self.pieces)

    @property
    def complete(self) -> bool:
        """Every published piece has its final reading."""
        return bool(self.pieces) and all(p.final for p in self.pieces)

    @property
    def last_at(self) -> dt.datetime | None:
        times = [r.at for p in self.pieces for r in p.readings]
        return max(times) if times else None

    @property
    def totals(self) -> dict[str, int]:
        sums = dict.fromkeys(METRICS, 0)
        for p in self.pieces:
            for m, v in p.current.items():
                sums[m] += v or 0
        return sums

    @property
    def engagement(self) -> int:
        totals = self.totals
        return sum(totals[m] for m in ENGAGEMENT)

    def rates(self) -> Rates:
        t = self.totals
        exposure, engagement = t["exposure"], self.engagement
        return Rates(
            interaction=ratio(engagement, exposure),
            ctr=ratio(t["clicks"], exposure),
            conversion=ratio(t["conversions"], t["clicks"]),
            cpm_fen=round(self.paid_fen * 1000 / exposure) if exposure else None,
            cpe_fen=round(self.paid_fen / engagement) if engagement else None,
        )


@dataclass(frozen=True, slots=True)
class Rates:
    interaction: float | None  # engagement / exposure
    ctr: float | None  # clicks / exposure
    conversion: float | None  # conversions / clicks
    cpm_fen: int | None  # paid per thousand exposures
    cpe_fen: int | None  # paid per engagement


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


async def report(session: AsyncSession, order: Order) -> Report:
    """The order's pieces with their readings, and what was paid for it (less what was refunded)."""
    pieces = [
        PieceResult(i, str(d.get("title") or ""), str(d.get("url") or ""))
        for i, d in enumerate(order.deliverables, start=1)
    ]
    for r in await readings(session, order.id):
        if 1 <= r.piece <= len(pieces):
            pieces[r.piece - 1].readings.append(r)
    back = await payments.refunded(session, order.id, statuses=("succeeded",))
    return Report(order, pieces, order.total_fen - back)


async def with_results(session: AsyncSession, order_ids: Sequence[int]) -> set[int]:
    """Which of these orders have at least one reading."""
    if not order_ids:
        return set()
    query = select(DeliveryStat.order_id).where(DeliveryStat.order_id.in_(order_ids)).distinct()
    return set(await session.scalars(query))
