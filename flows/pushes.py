"""Pushed results, once a day from CHATORDER_REPORT_HOUR (Beijing time):

- every order 执行中 with a new reading in the last 24 hours: its report text (daily);
- on Mondays, every customer with a paid order in the last 30 days (unless they said 退订): one
  summary of those orders;
- the work group: the operators' board picture, and the board in words with the link to the picture.

Each message's dedupe key names the day (or week), so every process may run the job and a restart
sends nothing twice. Customer messages go as customer-service messages; outside WeChat's 48-hour
window the outbox sends them through the notice template (WECHAT_NOTICE_TEMPLATE_ID).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import board, exports, texts
from flows import results as shown
from flows import texts_staff as ts
from flows.staff import staff_alert
from settings import Settings
from store import coupons, results, staff
from store.models import DeliveryStat, Order, OutboxMessage
from store.orders import BEIJING, PAID, OrderStatus
from store.outbox import Outgoing, enqueue, text

WEEK_OF = dt.timedelta(days=30)  # the weekly summary covers orders paid in this window


async def push_results(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """The day's pushes, once the report hour has come; how many messages were written."""
    local = now.astimezone(BEIJING)
    if local.hour < settings.report_hour:
        return 0
    async with sessionmaker.begin() as session:
        out = await daily_reports(session, now)
        if local.weekday() == 0:
            out += await weekly_summaries(session, now)
        out += await board_post(session, settings, now)
        await enqueue(session, *out)
    return len(out)


async def daily_reports(session: AsyncSession, now: dt.datetime) -> list[Outgoing]:
    """Orders in progress with a reading in the last 24 hours: today's report text."""
    fresh = select(DeliveryStat.order_id).where(DeliveryStat.at >= now - dt.timedelta(days=1))
    found = await session.scalars(
        select(Order).where(Order.status == OrderStatus.IN_PROGRESS, Order.id.in_(fresh)).order_by(Order.id)
    )
    day = f"{now.astimezone(BEIJING):%Y%m%d}"
    sent = await _sent(session, "results-daily:%:" + day)
    out = []
    for order in found:
        if f"results-daily:{order.id}:{day}" in sent:
            continue
        report = await results.report(session, order)
        content = texts.REPORT_DAILY.format(summary=shown.summary(report))
        out.append(text(order.openid, content, dedupe_key=f"results-daily:{order.id}:{day}"))
    return out


async def weekly_summaries(session: AsyncSession, now: dt.datetime) -> list[Outgoing]:
    """Each customer with paid orders in the last 30 days: their figures together, once a week."""
    found = await session.scalars(
        select(Order)
        .where(Order.status.in_(PAID), Order.created_at >= now - WEEK_OF)
        .order_by(Order.account, Order.openid, Order.id)
    )
    per_person: dict[tuple[str, str], list[Order]] = defaultdict(list)
    for order in found:
        per_person[(order.account, order.openid)].append(order)
    year, week, _ = now.astimezone(BEIJING).isocalendar()
    sent = await _sent(session, f"results-weekly:%:{year}W{week:02d}")
    out = []
    for (account, openid), mine in per_person.items():
        if f"results-weekly:{openid}:{year}W{week:02d}" in sent:
            continue  # this week's went out (the job runs every few minutes)
        if await coupons.opted_out(session, account=account, openid=openid):
            continue  # 退订 / 不要推送
        reports = [await results.report(session, o) for o in mine]
        exposure = sum(r.totals["exposure"] for r in reports)
        engagement = sum(r.engagement for r in reports)
        lines = "\n".join(
            texts.WEEKLY_LINE.format(
                number=r.order.number,
                status=r.order.status,
                exposure=shown.exact(r.totals["exposure"]),
                engagement=shown.exact(r.engagement),
            )
            for r in reports
        )
        content = texts.WEEKLY_SUMMARY.format(
            orders=len(mine), exposure=shown.exact(exposure), engagement=shown.exact(engagement), lines=lines
        )
        out.append(text(openid, content, dedupe_key=f"results-weekly:{openid}:{year}W{week:02d}"))
    return out


async def board_post(session: AsyncSession, settings: Settings, now: dt.datetime) -> list[Outgoing]:
    """The board to the work group beside the daily report (nothing without a group robot)."""
    key = f"board:{now.astimezone(BEIJING):%Y%m%d}"
    if not settings.wecom_robot_key.get_secret_value() or await staff.enqueued(session, f"staff:{key}"):
        return []
    figures = await board.gather(session, now)
    if not sum(figures.orders[:-1]):
        return []  # like the daily report: silent until orders were paid before today (a fresh install)
    url = exports.link(settings, "board", now, kind="board", ext="png") or ts.BOARD_NO_LINK
    hours = int(exports.LINK_TTL.total_seconds() // 3600)
    content = board.text(figures, url=url, hours=hours)
    png = await asyncio.to_thread(board.picture, figures, settings.font_path)  # CPU work: off the loop
    return board.to_group(png, dedupe_key=f"staff:{key}:picture") + staff_alert(settings, content, key=key)


async def _sent(session: AsyncSession, pattern: str) -> set[str]:
    """The dedupe keys already in the outbox matching a LIKE pattern (so work is not redone)."""
    found = await session.scalars(
        select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.like(pattern))
    )
    return {k for k in found if k}
