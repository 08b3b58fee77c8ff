"""看板: the operators' figures — GMV and paid orders over 14 days, the funnel today and for 7 days,
average order value, repeat customers, top services and creators — as a text and a picture.

Days are Beijing days. An order counts on the day it was paid (its OrderEvent to 待审核), at its
total; refunds do not change GMV here (they are in the month's export).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows import texts_staff as ts
from flows.format import yuan
from posters.charts import Canvas, Series, Tile
from store import funnel
from store.models import Commission, Creator, Order, OrderEvent, OrderItem
from store.orders import BEIJING, PAID, OrderStatus
from store.outbox import Outgoing

DAYS = 14
TOP = 5
FILENAME = "board.png"
ROBOT_MAX_BYTES = 2 * 1024 * 1024  # the group robot refuses bigger pictures


@dataclass
class Board:
    days: list[dt.date]
    gmv_fen: list[int]  # per day
    orders: list[int]  # paid orders per day
    funnel_today: dict[str, int]
    funnel_week: dict[str, int]
    buyers: int  # customers with a paid order, ever
    repeat: int  # … with two or more
    top_services: list[tuple[str, int]]  # title, GMV fen (14 days)
    top_creators: list[tuple[str, int]]  # invite code, commission fen (14 days)

    @property
    def aov_fen(self) -> int:
        return sum(self.gmv_fen) // sum(self.orders) if sum(self.orders) else 0


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=BEIJING)


async def gather(session: AsyncSession, now: dt.datetime) -> Board:
    today = now.astimezone(BEIJING).date()
    days = [today - dt.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    start, end = _day_start(days[0]), _day_start(today + dt.timedelta(days=1))
    paid = (
        select(Order.id, Order.total_fen, OrderEvent.at)
        .join(OrderEvent, OrderEvent.order_id == Order.id)
        .where(
            OrderEvent.to_status == OrderStatus.PENDING_REVIEW, OrderEvent.at >= start, OrderEvent.at < end
        )
    )
    gmv, orders = dict.fromkeys(days, 0), dict.fromkeys(days, 0)
    paid_ids = []
    for order_id, total, at in await session.execute(paid):
        day = at.astimezone(BEIJING).date()
        gmv[day] += total
        orders[day] += 1
        paid_ids.append(order_id)
    per_buyer = (
        select(Order.openid, func.count(Order.id).label("n"))
        .where(Order.status.in_(PAID))
        .group_by(Order.account, Order.openid)
        .subquery()
    )
    buyers = int(await session.scalar(select(func.count()).select_from(per_buyer)) or 0)
    repeat = int(
        await session.scalar(select(func.count()).select_from(per_buyer).where(per_buyer.c.n >= 2)) or 0
    )
    services: list[tuple[str, int]] = []
    if paid_ids:
        revenue = func.sum(OrderItem.unit_price_fen * OrderItem.quantity)
        found = await session.execute(
            select(OrderItem.service_title, revenue)
            .where(OrderItem.order_id.in_(paid_ids))
            .group_by(OrderItem.service_title)
            .order_by(revenue.desc())
            .limit(TOP)
        )
        services = [(str(t), int(f)) for t, f in found]
    creators = await session.execute(
        select(Creator.code, func.sum(Commission.amount_fen).label("fen"))
        .join(Creator, (Creator.account == Commission.account) & (Creator.openid == Commission.openid))
        .where(Commission.created_at >= start, Commission.created_at < end, Commission.depth == 1)
        .group_by(Creator.code)
        .order_by(func.sum(Commission.amount_fen).desc())
        .limit(TOP)
    )
    return Board(
        days=days,
        gmv_fen=[gmv[d] for d in days],
        orders=[orders[d] for d in days],
        funnel_today=await funnel.counts(session, start=_day_start(today), end=end),
        funnel_week=await funnel.counts(session, start=_day_start(today - dt.timedelta(days=6)), end=end),
        buyers=buyers,
        repeat=repeat,
        top_services=services,
        top_creators=[(str(c), int(f)) for c, f in creators],
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def funnel_line(counts: dict[str, int]) -> str:
    return " → ".join(f"{ts.FUNNEL_STEPS[s]} {counts[s]}" for s in funnel.STEPS)


def text(board: Board, *, url: str, hours: int) -> str:
    """The reply: the figures in words (the picture at `url` shows the same and the trend)."""
    top = "、".join(f"{t} {yuan(f)}" for t, f in board.top_services[:3]) or "—"
    return ts.BOARD_TEXT.format(
        gmv_today=yuan(board.gmv_fen[-1]),
        orders_today=board.orders[-1],
        gmv=yuan(sum(board.gmv_fen)),
        orders=sum(board.orders),
        days=DAYS,
        aov=yuan(board.aov_fen),
        repeat=board.repeat,
        buyers=board.buyers,
        repeat_share=_share(board.repeat, board.buyers),
        today=funnel_line(board.funnel_today),
        week=funnel_line(board.funnel_week),
        paid_share=_share(
            board.funnel_week["paid"], board.funnel_week["followed"] or board.funnel_week["searched"]
        ),
        top=top,
        url=url,
        hours=hours,
    )


def picture(board: Board, font_path: str | None) -> bytes:
    """The board as a picture (blocking: run it in a worker thread)."""
    canvas = Canvas(font_path, height=2600)
    canvas.title(ts.BOARD_TITLE, ts.BOARD_SUB.format(day=f"{board.days[-1]:%Y-%m-%d}", days=DAYS))
    canvas.tiles(
        [
            Tile(ts.BOARD_GMV_TODAY, yuan(board.gmv_fen[-1])),
            Tile(ts.BOARD_ORDERS_TODAY, str(board.orders[-1])),
            Tile(ts.BOARD_GMV_DAYS.format(days=DAYS), yuan(sum(board.gmv_fen))),
            Tile(ts.BOARD_AOV, yuan(board.aov_fen)),
            Tile(ts.BOARD_ORDERS_DAYS.format(days=DAYS), str(sum(board.orders))),
            Tile(ts.BOARD_BUYERS, str(board.buyers)),
            Tile(ts.BOARD_REPEAT, str(board.repeat)),
            Tile(ts.BOARD_REPEAT_SHARE, _share(board.repeat, board.buyers)),
        ]
    )
    xs = [f"{d:%m-%d}" for d in board.days]
    canvas.heading(ts.BOARD_GMV_CHART)
    canvas.lines([Series(ts.BOARD_GMV_SERIES, [f / 100 for f in board.gmv_fen])], xs, 230)
    canvas.heading(ts.BOARD_ORDERS_CHART)
    canvas.lines([Series(ts.BOARD_ORDERS_SERIES, board.orders)], xs, 200)
    for title, counts in (
        (ts.BOARD_FUNNEL_TODAY, board.funnel_today),
        (ts.BOARD_FUNNEL_WEEK, board.funnel_week),
    ):
        canvas.heading(title)
        first = counts[funnel.STEPS[0]] or max(counts.values()) or 1
        canvas.bars(
            [
                (ts.FUNNEL_STEPS[s], counts[s], f"{counts[s]}（{_share(counts[s], first)}）")
                for s in funnel.STEPS
            ]
        )
    canvas.heading(ts.BOARD_TOP_SERVICES)
    if board.top_services:
        canvas.bars([(t, f, yuan(f)) for t, f in board.top_services])
    else:
        canvas.note(ts.BOARD_NONE)
    canvas.heading(ts.BOARD_TOP_CREATORS)
    if board.top_creators:
        canvas.bars([(c, f, yuan(f)) for c, f in board.top_creators])
    else:
        canvas.note(ts.BOARD_NONE)
    return canvas.png()


def to_member(userid: str, png: bytes) -> Outgoing:
    """The picture as a WeCom app image (uploaded by the WeCom client when the outbox sends it)."""
    payload = {"filename": FILENAME, "base64": base64.b64encode(png).decode()}
    return Outgoing("wecom", userid, "image", payload)


def to_group(png: bytes, *, dedupe_key: str) -> list[Outgoing]:
    """The picture as a group-robot image (nothing if it is too big for the robot)."""
    if len(png) > ROBOT_MAX_BYTES:
        return []
    payload = {"base64": base64.b64encode(png).decode(), "md5": hashlib.md5(png).hexdigest()}
    return [Outgoing("robot", "group", "image", payload, dedupe_key=dedupe_key)]


def sample_board() -> Board:
    """A plausible fortnight, for the benchmark and the README's picture."""
    days = [dt.date(2026, 12, 7) - dt.timedelta(days=13 - i) for i in range(DAYS)]
    orders = [3, 5, 4, 6, 8, 7, 9, 6, 10, 12, 9, 11, 14, 13]
    return Board(
        days=days,
        gmv_fen=[n * 86_000 + i * 7_300 for i, n in enumerate(orders)],
        orders=orders,
        funnel_today={
            "followed": 120,
            "searched": 64,
            "viewed": 41,
            "started": 22,
            "ordered": 17,
            "paid": 13,
        },
        funnel_week={
            "followed": 760,
            "searched": 402,
            "viewed": 260,
            "started": 131,
            "ordered": 98,
            "paid": 77,
        },
        buyers=212,
        repeat=47,
        top_services=[("小鹿爱咖啡", 1_240_000), ("阿杰探店", 860_000), ("抖音运营实战课", 420_000)],
        top_creators=[("K7Q2M", 96_000), ("A3Z9P", 61_000)],
    )
