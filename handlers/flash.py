"""Flash sales in chat: 秒杀 (upcoming and live), a sale opened by number, menu button or QR scene
(flash_<code>), 提醒我, 抢 (take one unit, pay within the hold) and 候补 (the waitlist once sold
out); and what the sale's remarketing gives: 我的券, 用券, 退订 / 订阅."""

from __future__ import annotations

import datetime as dt
import time

from flows import flash as flow
from flows import texts
from flows.format import yuan
from handlers import basic
from handlers.context import Ctx, UserFacingError, refusal
from handlers.pay import offer_payment, pay_qr_possible
from handlers.router import Router
from store import coupons, flash
from store.errors import DomainError
from store.flash import SaleBoard, SaleView
from store.models import Coupon

router = Router("flash")

SCENE = "flash_"
_TAPS_MAX = 50_000  # people remembered by the in-process throttle before it starts afresh


def _scene_key(ctx: Ctx) -> str | None:
    """The <code>[@<channel>] of a flash_ QR scene (subscribe / SCAN) or menu click key."""
    if ctx.event.kind != "event" or ctx.event.name not in ("subscribe", "scan", "click"):
        return None
    key = ctx.event.event_key.removeprefix("qrscene_")
    return key[len(SCENE) :] if key.startswith(SCENE) and len(key) > len(SCENE) else None


def _scene_code(ctx: Ctx) -> str | None:
    """The sale code of a flash_<code>[@<channel>] QR scene or menu click key."""
    key = _scene_key(ctx)
    return flow.scene_parts(key)[0] or None if key else None


def _scene_of(ctx: Ctx, code: str) -> str | None:
    """The QR channel this person last came through to sale `code` (None: not through a QR)."""
    remembered = ctx.state.data.get("flash_scene")
    return remembered[1] if isinstance(remembered, list) and remembered[:1] == [code] else None


def _picked(ctx: Ctx) -> bool:
    """A number answered to the list 秒杀 just showed."""
    return ctx.state.data.get("list") == "flash" and (ctx.command or "").isdigit()


async def _open_sales(ctx: Ctx, *, mine: bool = False) -> list[SaleView]:
    """`mine`: with the units this person holds in each (see _refuse). The list alone comes from the
    board when there is one: a rush sends many 秒杀 too, and stock a second old is fine to show."""
    board = ctx.services.flash_board
    if board is not None and not mine:
        return await board.open_sales(ctx.now())
    person = (ctx.event.account, ctx.openid) if mine else None
    async with ctx.read() as session:
        return await flash.open_sales(session, ctx.now(), person=person)


@router.text("秒杀", "限时秒杀", "秒杀活动")
async def on_list(ctx: Ctx) -> None:
    """Upcoming and live sales, soonest first, with their price against the usual one."""
    views = await _open_sales(ctx)
    if not views:
        ctx.say(texts.FLASH_NONE)
        return
    now = ctx.now()
    ctx.state.data["list"] = "flash"
    ctx.state.data["flash_list"] = [v.sale.code for v in views]
    lines = "\n".join(flow.sale_line(n, v, now) for n, v in enumerate(views, start=1))
    ctx.say(texts.FLASH_LIST, lines=lines)


async def _show(ctx: Ctx, code: str, *, before: str = "") -> None:
    async with ctx.read() as session:
        view = await flash.sale_by_code(session, code)
    if view is None:
        raise UserFacingError(texts.FLASH_NOT_FOUND, code=code[:32])
    ctx.state.data["flash"] = view.sale.code  # 抢 and 候补 now mean this sale
    # One message: a new follower's welcome and the sale they came for belong together.
    ctx.say((before + flow.sale_detail(view, ctx.now())).replace("{", "{{").replace("}", "}}"))


@router.when(lambda ctx: _scene_code(ctx) is not None)
async def on_scene(ctx: Ctx) -> None:
    """A poster's QR (flash_<code>) or a menu button: the sale, after the welcome for a new follower."""
    welcome = ""
    if ctx.event.name == "subscribe":
        ctx.subscribed = True
        welcome = await basic.welcome(ctx) + "\n\n"
    await _show(ctx, _scene_code(ctx) or "", before=welcome)
    if ctx.event.name != "click":  # a QR, not the menu: the report's top scenes (the last one counts)
        ctx.state.data["flash_scene"] = [ctx.state.data["flash"], flow.scene_parts(_scene_key(ctx) or "")[1]]


@router.when(_picked)
async def on_pick(ctx: Ctx) -> None:
    codes = ctx.state.data.get("flash_list") or []
    n = int(ctx.command or "0")
    if not 1 <= n <= len(codes):
        raise UserFacingError(texts.FLASH_NOT_FOUND, code=n)
    await _show(ctx, codes[n - 1])


@router.prefix("秒杀 ")
async def on_open(ctx: Ctx) -> None:
    """秒杀 编号 | 秒杀 code."""
    arg = ctx.argument.strip()
    codes = ctx.state.data.get("flash_list") or []
    if arg.isdigit() and 1 <= int(arg) <= len(codes):
        arg = codes[int(arg) - 1]
    await _show(ctx, arg)


async def _chosen(ctx: Ctx, *, upcoming: bool = False, board: SaleBoard | None = None) -> SaleView:
    """The sale 抢 / 候补 / 提醒我 is about: named, opened last, or the only one running (or, for
    提醒我, the only one coming). With `board` (抢), an open sale is read from it, not the database."""
    arg = ctx.argument.strip()
    codes = ctx.state.data.get("flash_list") or []
    if arg.isdigit() and 1 <= int(arg) <= len(codes):
        arg = codes[int(arg) - 1]
    code = arg or ctx.state.data.get("flash")
    person = (ctx.event.account, ctx.openid)
    now = ctx.now()
    if code:
        view = await board.sale(code, now) if board else None
        if view is not None and board is not None:
            return board.mine(view, *person)
        async with ctx.read() as session:
            view = await flash.sale_by_code(session, code, person=person)
        if view is None:
            raise UserFacingError(texts.FLASH_NOT_FOUND, code=code[:32])
        return view
    if board is not None:
        views = [board.mine(v, *person) for v in await board.open_sales(now)]
    else:
        views = await _open_sales(ctx, mine=True)
    running = [v for v in views if (v.sale.starts_at > now) == upcoming]
    if not running:
        raise UserFacingError(texts.FLASH_NONE if upcoming else texts.FLASH_NO_LIVE)
    if len(running) > 1:
        lines = "\n".join(flow.sale_line(n, v, now) for n, v in enumerate(running, start=1))
        raise UserFacingError(texts.FLASH_WHICH.replace("{lines}", lines), code=running[0].sale.code)
    return running[0]


async def _throttled(ctx: Ctx) -> bool:
    """One 抢 per person per flash_throttle_ms: a burst of taps is answered kindly, not run."""
    millis = ctx.settings.flash_throttle_ms
    if millis <= 0:
        return False
    gate = ctx.services.flash_gate
    if gate is not None:
        return await gate.throttle(ctx.openid, millis)
    taps = ctx.services.flash_taps
    now = time.monotonic()
    last = taps.get(ctx.openid)
    if len(taps) > _TAPS_MAX:
        taps.clear()
    taps[ctx.openid] = now if last is None or now - last >= millis / 1000 else last
    return last is not None and now - last < millis / 1000


@router.text("抢", "抢购", "马上抢", "立即抢购")
@router.prefix("抢 ")
async def on_grab(ctx: Ctx) -> None:
    """Take one unit: the Redis gate first (when configured), then the database, which decides."""
    board = ctx.services.flash_board
    view = await _chosen(ctx, board=board)  # from this process's board: no query
    ctx.state.data["flash"] = view.sale.code
    sale, now = view.sale, ctx.now()
    if flash.phase(sale, now) in ("upcoming", "over", "stopped"):
        raise refusal(DomainError(f"flash_{flash.phase(sale, now)}"))
    if sale.available <= 0 and view.mine == 0:
        # Most of a rush: gone, to someone holding none — said from the board, asking neither Redis
        # nor the database (a unit given back goes to the waitlist first: a second's delay costs nobody).
        ctx.say(texts.FLASH_SOLD_OUT)
        return
    if await _throttled(ctx):  # a burst of taps costs no take (the first tap got the answer)
        ctx.say(texts.FLASH_THROTTLED)
        return
    if view.mine is None:  # the board saw them take one: what they hold decides, in one read
        mine = await _held(ctx, view)
        if len(mine) >= sale.per_customer:
            _say_held(ctx, view, mine)
            return
    try:
        taken = await flow.grab(
            ctx.sessionmaker,
            ctx.services.flash_gate,
            sale,
            account=ctx.event.account,
            openid=ctx.openid,
            now=now,
            holds_none=board is not None and view.mine == 0,
            scene=_scene_of(ctx, sale.code),
            trade_type="NATIVE" if pay_qr_possible(ctx) else None,  # the pay QR's payment, made with the take
        )
    except DomainError as exc:
        if board is not None and exc.code == "flash_sold_out" and sale.available > 0:
            board.stale()  # the board still counted units: read it again
        await _refuse(ctx, view, exc.code, exc)
        return
    if board is not None:
        board.took(sale, ctx.event.account, ctx.openid, taken.left)
    lead = ctx.fmt(
        texts.FLASH_TAKEN,
        position=taken.take.position,
        price=yuan(taken.take.price_fen),
        deadline=flow.clock(taken.take.expires_at, now),
        hold=sale.hold_minutes,
    )
    await offer_payment(
        ctx,
        taken.order,
        intro=texts.FLASH_PAY,
        minutes=sale.hold_minutes,
        payment=taken.payment,
        qr_media=taken.qr_media,
        lead=lead,
        balance=taken.balance_fen,
    )


async def _refuse(ctx: Ctx, view: SaleView, code: str, exc: DomainError | None = None) -> None:
    """Sold out (with 候补) or at the limit: to someone who already has one, what they have."""
    if code not in ("flash_sold_out", "flash_limit"):
        raise refusal(exc or DomainError(code))
    # Most of a rush: sold out to someone holding nothing, known from the read that found the sale.
    if code == "flash_sold_out" and view.mine is not None and view.mine < view.sale.per_customer:
        ctx.say(texts.FLASH_SOLD_OUT)
        return
    mine = await _held(ctx, view)
    if code == "flash_sold_out" and len(mine) < view.sale.per_customer:
        ctx.say(texts.FLASH_SOLD_OUT)
        return
    _say_held(ctx, view, mine)


async def _held(ctx: Ctx, view: SaleView) -> list[flash.Holding]:
    """The person's units in the sale, held or paid (the database's word, not the board's)."""
    async with ctx.read() as session:
        return await flash.held_by(
            session, sale_id=view.sale.id, account=ctx.event.account, openid=ctx.openid
        )


def _say_held(ctx: Ctx, view: SaleView, mine: list[flash.Holding]) -> None:
    """At the limit: the unpaid unit to pay (with its deadline), or that they have theirs."""
    unpaid = next((t for t in mine if t.status == "held"), None)
    number = unpaid.number if unpaid else None
    if unpaid is not None and number:
        ctx.state.data["paying"] = number
        deadline = flow.clock(unpaid.expires_at, ctx.now())
        ctx.say(texts.FLASH_HAVE_UNPAID, limit=view.sale.per_customer, number=number, deadline=deadline)
    else:
        ctx.say(texts.FLASH_HAVE_PAID, limit=view.sale.per_customer)


@router.text("提醒我", "开抢提醒", "提醒")
@router.prefix("提醒我 ")
async def on_remind_me(ctx: Ctx) -> None:
    """提醒我: reminders before the start (by default 24 h, 1 h and at the start); when some fall
    outside the 48-hour window, the reply carries WeChat's one-time subscription authorisation link."""
    view = await _chosen(ctx, upcoming=True)
    sale, now = view.sale, ctx.now()
    phase = flash.phase(sale, now)
    if phase in ("live", "sold_out"):
        ctx.say(texts.FLASH_REMIND_LIVE)
        return
    if phase != "upcoming":
        ctx.say(texts.FLASH_REMIND_OVER)
        return
    ctx.state.data["flash"] = sale.code
    async with ctx.transaction() as session:
        await flash.subscribe(session, sale=sale, account=ctx.event.account, openid=ctx.openid, now=now)
    times = flow.reminder_times(sale, now)
    labels = [texts.FLASH_REMIND_AT if at == sale.starts_at else flow.clock(at, now) for at in times] or [
        texts.FLASH_REMIND_AT
    ]
    reply = ctx.fmt(texts.FLASH_REMIND_SET, title=flow.title_of(view), times="、".join(labels))
    beyond = [at for at in times if at > now + dt.timedelta(hours=48)]  # this message opens 48 h
    if beyond and ctx.settings.wechat_subscribe_template_id:
        reply += ctx.fmt(texts.FLASH_REMIND_LINK, link=flow.subscribe_link(ctx.settings, sale, ctx.openid))
    ctx.say(reply.replace("{", "{{").replace("}", "}}"))


@router.text("候补", "排队", "候补排队")
async def on_waitlist(ctx: Ctx) -> None:
    """候补 once sold out: the next unit given back is offered to the first in line."""
    view = await _chosen(ctx)
    sale, now = view.sale, ctx.now()
    phase = flash.phase(sale, now)
    if phase == "live":
        ctx.say(texts.FLASH_WAITLIST_NOT_NEEDED)
        return
    if phase != "sold_out":
        raise refusal(DomainError(f"flash_{phase}"))
    try:
        async with ctx.transaction() as session:
            place = await flash.join_waitlist(
                session,
                sale=sale,
                account=ctx.event.account,
                openid=ctx.openid,
                scene=_scene_of(ctx, sale.code),
            )
    except DomainError as exc:
        raise refusal(exc) from None
    ctx.say(texts.FLASH_WAITLIST_JOINED, place=place, hold=ctx.settings.flash_waitlist_hold_minutes)


# --- Coupons and marketing consent (what the sale's remarketing gives) ----------------------------


@router.text("我的券", "优惠券", "我的优惠券", "券")
async def on_my_coupons(ctx: Ctx) -> None:
    """我的券: numbered, with what each takes off and until when."""
    async with ctx.read() as session:
        found = await coupons.mine(session, account=ctx.event.account, openid=ctx.openid)
    if not found:
        ctx.say(texts.COUPONS_NONE)
        return
    now = ctx.now()
    ctx.state.data["coupons"] = [c.id for c in found]
    lines = [
        texts.COUPON_LINE.format(
            n=n, title=c.title, what=flow.coupon_text(flow.coupon_spec(c)), state=_state(c, now)
        )
        for n, c in enumerate(found, start=1)
    ]
    ctx.say(texts.COUPONS, lines="\n".join(lines))


def _state(c: Coupon, now: dt.datetime) -> str:
    if c.status == "used":
        return texts.COUPON_USED
    if c.valid_until <= now:
        return texts.COUPON_EXPIRED
    return texts.COUPON_VALID.format(until=flow.clock(c.valid_until, now))


@router.prefix("用券")
async def on_use_coupon(ctx: Ctx) -> None:
    """用券 N: the next order uses coupon N of 我的券 (if it applies; else the best one)."""
    ids = ctx.state.data.get("coupons") or []
    arg = ctx.argument.strip()
    if not arg.isdigit() or not 1 <= int(arg) <= len(ids):
        raise UserFacingError(texts.COUPON_PICK)
    async with ctx.read() as session:
        usable = await coupons.usable(session, account=ctx.event.account, openid=ctx.openid, now=ctx.now())
    chosen = next((c for c in usable if c.id == ids[int(arg) - 1]), None)
    if chosen is None:
        raise UserFacingError(texts.COUPON_PICK)
    ctx.state.data["coupon"] = chosen.id
    ctx.say(texts.COUPON_CHOSEN, n=int(arg), what=flow.coupon_text(flow.coupon_spec(chosen)))


@router.text("退订", "取消订阅", "不要推送")
async def on_opt_out(ctx: Ctx) -> None:
    """退订: no more remarketing (reminders the person asked for with 提醒我 still come)."""
    async with ctx.transaction() as session:
        await coupons.opt_out(session, account=ctx.event.account, openid=ctx.openid, now=ctx.now())
    ctx.say(texts.MARKETING_OFF)


@router.text("订阅", "恢复订阅")
async def on_opt_in(ctx: Ctx) -> None:
    async with ctx.transaction() as session:
        await coupons.opt_in(session, account=ctx.event.account, openid=ctx.openid)
    ctx.say(texts.MARKETING_ON)
