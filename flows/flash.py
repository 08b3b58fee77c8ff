"""Flash sales around the store: how a sale reads, the sweep of holds, and a payment after its hold."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts
from flows import texts_staff as ts
from flows.format import yuan
from flows.notices import quiet
from flows.paid import after_paid
from flows.requirements import BEIJING
from flows.staff import staff_alert
from settings import Settings
from store import coupons, flash, payments
from store.errors import DomainError
from store.flash import FlashGate, SaleView
from store.models import Coupon, FlashSale, Order, Payment, Service
from store.outbox import Outgoing, enqueue, text
from store.writer import shared_transactions

log = logging.getLogger(__name__)


# --- How a sale reads ----------------------------------------------------------------------------


def wait_text(until: dt.datetime, now: dt.datetime) -> str:
    """「2 小时 13 分 」: how long until `until`, to the minute."""
    minutes = int((until - now).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return texts.FLASH_WAIT_DAYS.format(d=days, h=hours)
    if hours:
        return (
            texts.FLASH_WAIT_HOURS.format(h=hours, m=mins)
            if mins
            else texts.FLASH_WAIT_WHOLE_HOURS.format(h=hours)
        )
    return texts.FLASH_WAIT_MINUTES.format(m=mins) if mins else texts.FLASH_WAIT_NOW


def clock(at: dt.datetime, now: dt.datetime) -> str:
    """Beijing time, with the date unless it is today."""
    local, today = at.astimezone(BEIJING), now.astimezone(BEIJING).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%m-%d %H:%M}"


def price_text(sale: FlashSale) -> str:
    """「前 100 单 ¥9.9，之后 ¥19.9」 or just the price."""
    if not sale.tiers:
        return yuan(sale.price_fen)
    parts = [texts.FLASH_TIER.format(upto=t["upto"], price=yuan(int(t["price_fen"]))) for t in sale.tiers]
    parts.append(texts.FLASH_TIER_THEN.format(price=yuan(sale.price_fen)))
    return texts.FLASH_PRICE_JOIN.join(parts)


def state_text(sale: FlashSale, now: dt.datetime) -> str:
    phase = flash.phase(sale, now)
    if phase == "upcoming":
        return texts.FLASH_STATE_UPCOMING.format(
            wait=wait_text(sale.starts_at, now), at=clock(sale.starts_at, now)
        )
    if phase == "live":
        return texts.FLASH_STATE_LIVE.format(left=sale.available)
    if phase == "sold_out":
        return texts.FLASH_STATE_SOLD_OUT
    return texts.FLASH_STATE_OVER


def title_of(view: SaleView) -> str:
    return view.sale.title or f"{view.service_title} {view.package_name}"


def sale_line(n: int, view: SaleView, now: dt.datetime) -> str:
    return texts.FLASH_LINE.format(
        n=n,
        title=title_of(view),
        price=price_text(view.sale),
        usual=yuan(view.usual_fen),
        state=state_text(view.sale, now),
    )


def sale_detail(view: SaleView, now: dt.datetime) -> str:
    sale = view.sale
    action = {
        "upcoming": texts.FLASH_ACTION_UPCOMING,
        "live": texts.FLASH_ACTION_LIVE,
        "sold_out": texts.FLASH_ACTION_SOLD_OUT,
    }.get(flash.phase(sale, now), texts.FLASH_ACTION_OVER)
    return texts.FLASH_DETAIL.format(
        title=title_of(view),
        service=view.service_title,
        package=view.package_name,
        price=price_text(sale),
        usual=yuan(view.usual_fen),
        stock=sale.stock,
        limit=sale.per_customer,
        start=clock(sale.starts_at, now),
        end=clock(sale.ends_at, now),
        state=state_text(sale, now),
        action=action.format(hold=sale.hold_minutes),
    )


# flash_<code>@<channel>: posters and groups told apart (WeChat's scene_str is at most 64 characters).
CHANNEL = re.compile(r"[0-9A-Za-z\u4e00-\u9fff_-]{1,20}")
TOP_SCENES = 5


def scene_parts(key: str) -> tuple[str, str]:
    """(sale code, channel) of a scene's `<code>[@<channel>]`. A channel that is not 1–20 letters,
    digits, CJK, - or _ counts as the plain QR's (""): a mistyped poster still opens the sale."""
    code, _, channel = key.partition("@")
    return code, channel if CHANNEL.fullmatch(channel) else ""


def scene_lines(scenes: list[flash.SceneFigures], f: flash.Figures) -> str:
    """The report's top QR scenes: the first five, then the rest together as 其他, then the takes
    that came another way (the list, a menu button, a reminder)."""
    if not scenes:
        return ts.FLASH_SCENES_NONE
    lines = [
        _scene_line(s.scene or ts.FLASH_SCENE_DEFAULT, s.takes, s.paid, s.revenue_fen)
        for s in scenes[:TOP_SCENES]
    ]
    rest = scenes[TOP_SCENES:]
    if rest:
        lines.append(
            _scene_line(
                ts.FLASH_SCENE_OTHER.format(n=len(rest)),
                sum(s.takes for s in rest),
                sum(s.paid for s in rest),
                sum(s.revenue_fen for s in rest),
            )
        )
    elsewhere = f.held + f.paid + f.released - sum(s.takes for s in scenes)
    if elsewhere > 0:
        lines.append(ts.FLASH_SCENE_ELSEWHERE.format(takes=elsewhere))
    return ts.FLASH_SCENES.format(lines="\n".join(lines))


def _scene_line(name: str, takes: int, paid: int, revenue_fen: int) -> str:
    return ts.FLASH_SCENE_LINE.format(name=name, takes=takes, paid=paid, revenue=yuan(revenue_fen))


async def staff_view(session: AsyncSession, view: SaleView, now: dt.datetime) -> str:
    """The figures staff and operators read (秒杀 查看, flash report)."""
    sale = view.sale
    f = await flash.figures(session, sale)
    scenes = scene_lines(await flash.scene_figures(session, sale), f)
    return (
        ts.FLASH_REPORT.format(
            code=sale.code,
            title=title_of(view),
            phase=ts.FLASH_PHASES[flash.phase(sale, now)],
            start=clock(sale.starts_at, now),
            end=clock(sale.ends_at, now),
            price=price_text(sale),
            stock=f.stock,
            available=f.available,
            held=f.held,
            paid=f.paid,
            released=f.released,
            revenue=yuan(f.revenue_fen),
            takers=f.takers,
            buyers=f.buyers,
            conversion=f.conversion_pct,
            waitlist=f.waitlist,
            served=f.waitlist_served,
            limit=sale.per_customer,
        )
        + (
            ts.FLASH_REMARKETED.format(**sale.remarket_stats)
            if sale.remarketed_at and sale.remarket_stats
            else ""
        )
        + scenes
    )


async def staff_list(session: AsyncSession, now: dt.datetime) -> str:
    views = await flash.all_sales(session)
    if not views:
        return ts.FLASH_NONE
    lines = [
        ts.FLASH_LIST_LINE.format(
            code=v.sale.code,
            title=title_of(v),
            phase=ts.FLASH_PHASES[flash.phase(v.sale, now)],
            available=v.sale.available,
            stock=v.sale.stock,
            start=clock(v.sale.starts_at, now),
        )
        for v in views
    ]
    return ts.FLASH_LIST.format(lines="\n".join(lines))


# --- The rush ------------------------------------------------------------------------------------


async def grab(
    sessionmaker: async_sessionmaker[AsyncSession],
    gate: FlashGate | None,
    sale: FlashSale,
    *,
    account: str,
    openid: str,
    now: dt.datetime,
    holds_none: bool = False,
    scene: str | None = None,
    trade_type: str | None = None,
) -> flash.Taken:
    """抢: the Redis gate first (when configured: most of a rush is refused there), then the database,
    which decides; Redis is brought back in line with whatever the database refused. `holds_none`:
    the person is known to hold no unit, so without Redis the take is tried at once. `trade_type`:
    the order's WeChat Pay payment is made in the same transaction (saves the winner a transaction),
    or for NATIVE given from the position's pay slot, made before the sale with its QR."""
    if sale.available <= 0:  # `sale` was just read: sold out needs no more queries, nor Redis
        raise DomainError("flash_sold_out", limit=sale.per_customer)
    verdict = 1
    if gate is not None or not holds_none:
        async with sessionmaker() as session:
            if gate is not None:
                verdict = await gate.take(session, sale, openid)
            else:  # reads first: most of a rush is refused without taking SQLite's write lock
                verdict = await flash.precheck(session, sale, account=account, openid=openid)
    if verdict != 1:
        raise DomainError("flash_sold_out" if verdict == 0 else "flash_limit", limit=sale.per_customer)

    async def take(session: AsyncSession) -> flash.Taken:
        # A refusal (DomainError) from the take leaves nothing changed; after it, one would not.
        taken = await flash.take(
            session, sale=sale, account=account, openid=openid, now=now, notify=quiet, scene=scene
        )
        if trade_type is None:
            return taken
        # The pay offer's balance, read here: a winner's answer then needs no session of its own.
        balance = await payments.balance_of(session, account=account, openid=openid)
        taken = dataclasses.replace(taken, balance_fen=balance)
        hold = dt.timedelta(minutes=sale.hold_minutes)
        if trade_type == "NATIVE" and (ready := await flash.claim_slot(session, taken, now=now, hold=hold)):
            return dataclasses.replace(taken, payment=ready[0], qr_media=ready[1])
        try:
            paying = await payments.new_order_payment(session, taken.order, trade_type=trade_type, now=now)
        except DomainError as exc:
            raise RuntimeError("the take's payment could not be made") from exc  # undo the take too
        return dataclasses.replace(taken, payment=paying)

    try:
        # Takes at the same moment share a transaction (each refusal leaves the others alone).
        return await shared_transactions(sessionmaker).run(take)
    except BaseException as exc:
        if gate is not None:
            await gate.undo(sale.id, openid, exc.code if isinstance(exc, DomainError) else "error")
        raise


# --- The sweep: holds that ran out, orders paid or cancelled -------------------------------------


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    gate: FlashGate | None,
    now: dt.datetime,
) -> int:
    """Settle every due hold, each in its own transaction: a unit given back goes to the waitlist first."""
    async with sessionmaker() as session:
        due = await flash.due_releases(session, now)
    done = 0
    hold = dt.timedelta(minutes=settings.flash_waitlist_hold_minutes)
    for take_id in due:
        try:
            async with sessionmaker.begin() as session:
                released = await flash.settle(session, take_id, now=now, notify=quiet, waitlist_hold=hold)
                if released is not None:
                    await enqueue(session, *await _release_notices(session, released, now))
        except DomainError:
            log.info("flash hold settled elsewhere", extra={"take": take_id})
            continue
        if released is not None and gate is not None:
            to = released.offered.take.openid if released.offered else ""
            await gate.give_back(released.sale.id, released.take.openid, to)
        done += 1
    if gate is not None:
        await _heal(sessionmaker, gate, now)
    return done


async def _heal(sessionmaker: async_sessionmaker[AsyncSession], gate: FlashGate, now: dt.datetime) -> None:
    async with sessionmaker() as session:
        for view in await flash.open_sales(session, now):
            await gate.heal(view.sale.id, view.sale.available)


async def _release_notices(
    session: AsyncSession, released: flash.Released, now: dt.datetime
) -> list[Outgoing]:
    view = await flash.sale_by_code(session, released.sale.code)
    title = title_of(view) if view else released.sale.code
    out: list[Outgoing] = []
    lost = await session.get(Order, released.take.order_id) if released.take.order_id else None
    # Only when this sweep cancelled it: an order the generic expiry cancelled was announced by it.
    if lost is not None and released.lapsed_here:
        content = texts.FLASH_HOLD_EXPIRED.format(
            title=title, hold=released.sale.hold_minutes, number=lost.number
        )
        out.append(text(released.take.openid, content, dedupe_key=f"flash:expired:{released.take.id}"))
    if released.offered is not None:
        got = released.offered
        content = texts.FLASH_WAITLIST_OFFER.format(
            title=title,
            number=got.order.number,
            price=yuan(got.take.price_fen),
            deadline=clock(got.take.expires_at, now),
        )
        out.append(text(got.take.openid, content, dedupe_key=f"flash:offer:{got.take.id}"))
    return out


# --- 提醒我: reminders and the one-time subscription -----------------------------------------------


def _signature(settings: Settings, sale_id: int, openid: str) -> str:
    secret = settings.wechat_app_secret.get_secret_value().encode()
    return hmac.new(secret, f"flash:{sale_id}:{openid}".encode(), hashlib.sha256).hexdigest()[:16]


def subscribe_link(settings: Settings, sale: FlashSale, openid: str) -> str:
    """WeChat's one-time subscription authorisation page for this sale's reminders; `reserved` carries
    the sale and a signature, checked when WeChat redirects back with the person's openid."""
    query = {
        "action": "get_confirm",
        "appid": settings.wechat_app_id,
        "scene": str(sale.id % 10_000),
        "template_id": settings.wechat_subscribe_template_id,
        "redirect_url": f"{settings.public_url}/flash/subscribe",
        "reserved": f"{sale.id}.{_signature(settings, sale.id, openid)}",
    }
    if settings.sandbox:  # the simulator's page cannot know who is looking, as WeChat's does
        query["openid"] = openid
    return f"{settings.wechat_subscribe_url}?{urlencode(query)}#wechat_redirect"


def consent_sale(settings: Settings, reserved: str, openid: str) -> int | None:
    """The sale id of a genuine redirect (our signature for this openid), else None."""
    sale_id, _, signature = reserved.partition(".")
    if not sale_id.isdigit():
        return None
    good = _signature(settings, int(sale_id), openid)
    return int(sale_id) if hmac.compare_digest(good, signature) else None


def reminder_times(sale: FlashSale, now: dt.datetime) -> list[dt.datetime]:
    return [
        sale.starts_at - dt.timedelta(minutes=m)
        for m in sale.remind_minutes
        if sale.starts_at - dt.timedelta(minutes=m) > now
    ]


async def remind(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime) -> int:
    """Each due reminder once: a customer-service message inside the 48-hour window, else the one
    subscribe send the person consented to; flash_reminders_per_run at most per run (rate limit)."""
    async with sessionmaker.begin() as session:
        due = await flash.claim_reminders(session, now, settings.flash_reminders_per_run)
        out: list[Outgoing] = []
        for reminder in due:
            out += await _reminder_message(session, settings, reminder, now)
        await enqueue(session, *out)
    return len(out)


async def _reminder_message(
    session: AsyncSession, settings: Settings, reminder: flash.Reminder, now: dt.datetime
) -> list[Outgoing]:
    if reminder.how == "unreachable":
        return []
    sale, sub = reminder.sale, reminder.subscription
    view = await flash.sale_by_code(session, sale.code)
    if view is None:
        return []
    values = {
        "title": title_of(view),
        "price": price_text(sale),
        "usual": yuan(view.usual_fen),
        "left": sale.available,
        "wait": wait_text(sale.starts_at, now),
        "at": clock(sale.starts_at, now),
    }
    template = texts.FLASH_REMIND_START if reminder.offset_minutes == 0 else texts.FLASH_REMIND_BEFORE
    content = template.format(**values)
    key = f"flash:remind:{sub.id}:{reminder.offset_minutes}"
    if reminder.how == "message":
        return [text(sub.openid, content, dedupe_key=key)]
    payload = {
        "template_id": settings.wechat_subscribe_template_id,
        "scene": str(sale.id % 10_000),
        "title": texts.FLASH_REMIND_TITLE,
        "data": {"content": {"value": content}},
    }
    return [Outgoing("mp", sub.openid, "subscribe", payload, dedupe_key=key)]


# --- Remarketing: thirty minutes after the end ----------------------------------------------------


def coupon_spec(coupon: Coupon) -> dict[str, Any]:
    """A person's coupon as the spec coupon_text reads."""
    return {
        "off_fen": coupon.off_fen,
        "percent": coupon.percent,
        "cap_fen": coupon.cap_fen,
        "min_fen": coupon.min_fen,
    }


def coupon_text(spec: dict[str, Any]) -> str:
    """「满 ¥300 减 ¥50」 / 「9 折（最多减 ¥100）」."""
    if spec.get("off_fen"):
        text_ = texts.COUPON_OFF.format(off=yuan(int(spec["off_fen"])))
    else:
        text_ = texts.COUPON_PERCENT.format(rate=f"{(100 - int(spec['percent'])) / 10:g}")
        if spec.get("cap_fen"):
            text_ += texts.COUPON_CAP.format(cap=yuan(int(spec["cap_fen"])))
    if spec.get("min_fen"):
        text_ = texts.COUPON_MIN.format(min=yuan(int(spec["min_fen"]))) + text_
    return text_


async def remarket(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Once per sale, flash_remarket_after_minutes after it ended: people who subscribed or took a unit
    but did not buy get one message with the sale's coupon, only inside their 48-hour window and never
    after 退订; the others are counted."""
    after = dt.timedelta(minutes=settings.flash_remarket_after_minutes)
    sent = 0
    async with sessionmaker() as session:
        due = [s.id for s in await flash.due_remarketing(session, now, after)]
    for sale_id in due:
        async with sessionmaker.begin() as session:
            if not await flash.claim_remarketing(session, sale_id, now):
                continue
            sale = await session.get(FlashSale, sale_id)
            assert sale is not None
            stats, out = await _remarket_sale(session, sale, now)
            sale.remarket_stats = stats
            await enqueue(session, *out)
            sent += stats["sent"]
    return sent


async def _remarket_sale(
    session: AsyncSession, sale: FlashSale, now: dt.datetime
) -> tuple[dict[str, int], list[Outgoing]]:
    view = await flash.sale_by_code(session, sale.code)
    titles = [t for t in await session.scalars(select(Service.title).where(Service.code.in_(sale.remarket)))]
    stats = {"sent": 0, "outside": 0, "opted_out": 0}
    out: list[Outgoing] = []
    window = now - dt.timedelta(hours=48)
    for account, openid, last_in in await flash.remarketing_audience(session, sale.id):
        if await coupons.opted_out(session, account=account, openid=openid):
            stats["opted_out"] += 1
            continue
        if last_in is None or last_in <= window:
            stats["outside"] += 1
            continue
        if sale.coupon:
            await coupons.issue(
                session,
                account=account,
                openid=openid,
                source=f"flash:{sale.code}",
                title=texts.COUPON_FAN_TITLE,
                spec=sale.coupon,
                now=now,
            )
        content = texts.FLASH_REMARKET.format(
            title=title_of(view) if view else sale.code,
            coupon=texts.FLASH_REMARKET_COUPON.format(
                coupon=coupon_text(sale.coupon), days=sale.coupon.get("days", 7)
            )
            if sale.coupon
            else "",
            services="、".join(f"「{t}」" for t in titles) or texts.FLASH_REMARKET_ANY,
        )
        out.append(text(openid, content, dedupe_key=f"flash:remarket:{sale.id}:{openid}"))
        stats["sent"] += 1
    return stats, out


# --- The command room: the staff group sees the sale without typing -------------------------------

ALERT_AT = (50, 90, 100)  # percent of the stock taken; 100 is 「已抢光」


async def command_room(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Alerts at 50 %, 90 % and sold out, a short post every flash_room_minutes while a sale runs, and
    the report once it ended, to the staff group. Outbox keys make each of them go out once."""
    sent = 0
    async with sessionmaker.begin() as session:
        for view in await flash.recent_sales(session, now):
            out = await _room_messages(session, settings, view, now)
            await enqueue(session, *out)
            sent += len(out)
    return sent


async def _room_messages(
    session: AsyncSession, settings: Settings, view: SaleView, now: dt.datetime
) -> list[Outgoing]:
    sale = view.sale
    phase = flash.phase(sale, now)
    if phase in ("over", "stopped"):
        report = ts.FLASH_ENDED + await staff_view(session, view, now)
        return staff_alert(settings, report, key=f"flash:{sale.id}:report")
    if phase == "upcoming":
        return []
    f = await flash.figures(session, sale)
    pct = 100 * (f.stock - f.available) // f.stock
    out: list[Outgoing] = []
    for at in ALERT_AT:
        if pct >= at:
            template = ts.FLASH_ALERT_SOLD_OUT if at == 100 else ts.FLASH_ALERT
            content = template.format(code=sale.code, pct=at, available=f.available, stock=f.stock)
            out += staff_alert(settings, content, key=f"flash:{sale.id}:alert:{at}")
    every = settings.flash_room_minutes
    if every > 0:
        minute = int(now.timestamp() // 60) // every
        per_min = await flash.takes_since(session, sale.id, now - dt.timedelta(minutes=1))
        content = ts.FLASH_ROOM.format(
            code=sale.code,
            available=f.available,
            stock=f.stock,
            held=f.held,
            paid=f.paid,
            per_min=per_min,
            conversion=f.conversion_pct,
        )
        out += staff_alert(settings, content, key=f"flash:{sale.id}:post:{minute}")
    return out


def room_card(
    view: SaleView, f: flash.Figures, per_min: int, *, task_id: str, now: dt.datetime
) -> dict[str, Any]:
    """The command room as a WeCom card: the sale's figures now, and 刷新 (key flash_refresh:<id>),
    answered by redrawing this card in place (update_template_card with the click's response_code)."""
    sale = view.sale
    rows = [
        (ts.FLASH_CARD_LEFT, f"{f.available}/{f.stock}"),
        (ts.FLASH_CARD_HELD, str(f.held)),
        (ts.FLASH_CARD_PAID, f"{f.paid} · {yuan(f.revenue_fen)}"),
        (ts.FLASH_CARD_RATE, str(per_min)),
        (ts.FLASH_CARD_CONVERSION, f"{f.takers}→{f.buyers} · {f.conversion_pct}%"),
    ]
    return {
        "card_type": "button_interaction",
        "source": {"desc": ts.FLASH_CARD_SOURCE},
        "main_title": {
            "title": ts.FLASH_CARD_TITLE.format(code=sale.code)[:26],
            "desc": ts.FLASH_CARD_DESC.format(
                phase=ts.FLASH_PHASES[flash.phase(sale, now)], at=clock(now, now)
            )[:44],
        },
        "sub_title_text": title_of(view)[:112],
        "horizontal_content_list": [{"keyname": k, "value": v[:26]} for k, v in rows],
        "task_id": task_id,
        "button_list": [{"text": ts.FLASH_CARD_REFRESH, "style": 1, "key": f"flash_refresh:{sale.id}"}],
    }


async def room_card_now(
    session: AsyncSession, view: SaleView, *, task_id: str, now: dt.datetime
) -> dict[str, Any]:
    f = await flash.figures(session, view.sale)
    per_min = await flash.takes_since(session, view.sale.id, now - dt.timedelta(minutes=1))
    return room_card(view, f, per_min, task_id=task_id, now=now)


async def gauges(
    sessionmaker: async_sessionmaker[AsyncSession], now: dt.datetime
) -> list[tuple[str, flash.Figures, int]]:
    """(code, figures, takes in the last minute) of every sale running now, for /metrics."""
    found = []
    async with sessionmaker() as session:
        for view in await flash.open_sales(session, now):
            if view.sale.starts_at <= now:
                figures = await flash.figures(session, view.sale)
                rate = await flash.takes_since(session, view.sale.id, now - dt.timedelta(minutes=1))
                found.append((view.sale.code, figures, rate))
    return found


# --- Money for a hold that had run out -----------------------------------------------------------


async def honour_late(
    session: AsyncSession, payment: Payment, settings: Settings, now: dt.datetime
) -> list[Outgoing] | None:
    """A payment for a flash order whose hold ran out (already credited to the balance as a late
    payment): if a unit can still be taken, take it at the price paid and pay it from that balance;
    else say the money waits in the balance. None when the order was not a flash sale's."""
    found = await flash.sale_of_order(session, payment.order_id) if payment.order_id else None
    if found is None:
        return None
    take, sale = found
    old = await session.get(Order, payment.order_id)
    number = old.number if old else ""
    try:
        taken = await flash.take(
            session,
            sale=sale,
            account=payment.account,
            openid=payment.openid,
            now=now,
            notify=quiet,
            via="late",
            price_fen=take.price_fen,
            scene=take.scene,
        )
    except DomainError as exc:
        log.info("late flash payment kept in the balance", extra={"order": number, "why": exc.code})
        content = texts.FLASH_LATE_TO_BALANCE.format(number=number, total=yuan(payment.amount_fen))
        return [text(payment.openid, content, dedupe_key=f"flash:late:{payment.out_trade_no}")]
    # The late payment was just credited to the balance at this very price: paying from it cannot fail.
    paid = await payments.pay_with_balance(
        session,
        order_id=taken.order.id,
        account=payment.account,
        openid=payment.openid,
        notify=quiet,
        now=now,
    )
    await after_paid(session, paid, settings, now)
    content = texts.FLASH_LATE_HONOURED.format(
        number=number, total=yuan(payment.amount_fen), new_number=paid.number
    )
    return [text(payment.openid, content, dedupe_key=f"flash:late:{payment.out_trade_no}")]
