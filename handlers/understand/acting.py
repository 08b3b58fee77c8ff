"""Acting on an intent: each calls the handler that already does it, as if its command was typed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable

from flows import texts
from flows.engine import OrderForm
from flows.format import day_time, yuan
from flows.requirements import (
    BEIJING,
    DEFAULT_PUBLISH_HOUR,
    MAX_LEAD,
    MIN_LEAD,
)
from flows.understand import THRESHOLD
from flows.understand.types import Intent, Slots, Understanding
from handlers import basic, cart, catalog, creators, invite, invoices, orders, pay, relay
from handlers.context import Ctx, UserFacingError
from handlers.router import Handler, normalise
from handlers.understand.fallback import (
    LONG_QUESTION,
    human_offer,
    not_understood,
    offer_choices,
    suggestions,
)
from handlers.understand.reading import list_kind, looks_like_question, open_form
from handlers.understand.searching import has_search, last_query, narrowed, query_of
from store import catalog as store_catalog

log = logging.getLogger(__name__)


# 「探店的呢」「那美食的」「换成抖音」「抖音的」 lean on the last list; 「咖啡探店」「KOL推广」 start afresh.
_FOLLOW_UP = re.compile(
    r"呢|那|换|也|再|还|只要|只看|只有|其中|里面|这些|的(吗|么|嘛|有吗|有没有)?[?？!！。~]*$"
)
_REFUND_WORDS = re.compile(
    r"(我|想|要|申请|办理|帮我|请|麻烦)*(退款|退钱|退掉|退单)(吧|了|呀|啊|一下)?|订单|单号|\d{8}-\d{4}"
)
_PROGRESS = re.compile(r"什么时候|啥时候|几时|多久|到哪|进度|怎么样|好了没|完成|做完|发了没|发布了")
_THIS = re.compile(r"这个|这家|这位|它|他家|她家|套餐")  # a question about the service on view
_ABOUT_VIEWED = {"price": texts.PRICES_OF, "timing": texts.LEADS_OF}


Action = Callable[[Ctx, Understanding, str], Awaitable[None]]


async def act(ctx: Ctx, meant: Understanding, text: str) -> None:
    """Call what does it; a guess is offered as a numbered suggestion first (「你是想找…吗？」)."""
    log.info("understood", extra={"intent": str(meant.intent), "source": meant.source})
    unsure = meant.confidence < THRESHOLD and meant.source != "choice"
    if meant.intent is Intent.UNKNOWN or (unsure and suggestions(ctx, meant)):
        await not_understood(ctx, meant, text)
        return
    ctx.state.data.pop("misunderstood", None)
    await ACTIONS[meant.intent](ctx, meant, text)


async def as_command(ctx: Ctx, command: str, handler: Handler) -> None:
    """Run an existing command handler as if `command` had been typed."""
    said = ctx.command
    ctx.command = normalise(command)
    try:
        await handler(ctx)
    finally:
        ctx.command = said


def append(ctx: Ctx, tail: str) -> None:
    last = ctx.replies[-1] if ctx.replies else None
    if last is not None and last.kind == "text":
        last.payload["content"] += tail
    else:
        ctx.say(tail.lstrip("\n"))


async def _search(ctx: Ctx, meant: Understanding, text: str) -> None:
    """Find services by what was said; nothing said yet: the platforms and categories."""
    if not has_search(meant.slots) and meant.slots.sort is None:
        await catalog.on_categories(ctx)
        return
    await catalog.show_page(ctx, query_of(meant.slots), 1)
    if len(text.strip()) >= LONG_QUESTION and looks_like_question(text):
        append(ctx, texts.OFFER_HUMAN)  # a long question may need more than a list


async def _refine(ctx: Ctx, meant: Understanding, text: str) -> None:
    """便宜一点的 / 粉丝多一点的 / 那个抖音的呢 change the last list; 还有吗 shows its next page."""
    kind, slots = list_kind(ctx), meant.slots
    if not has_search(slots) and slots.sort is None:  # 还有吗 / 换一批
        if kind in ("catalog", "orders"):
            ctx.state.data["list"] = kind
            await (catalog.on_next(ctx) if kind == "catalog" else as_command(ctx, "下一页", orders.on_page))
        else:
            ctx.say(texts.NO_LIST)
        return
    if kind != "catalog":
        await _search(ctx, meant, text)
        return
    subject = slots.platform or slots.category or slots.tags or slots.keywords or slots.form
    if subject and not _FOLLOW_UP.search(text):
        await catalog.show_page(ctx, query_of(slots), 1)  # 咖啡探店 after a list: a new search
        return
    await catalog.show_page(ctx, narrowed(last_query(ctx), slots, keep_words=True), 1)


async def _say(ctx: Ctx, text: str) -> None:
    ctx.say(text)


async def _pick(ctx: Ctx, meant: Understanding, text: str) -> None:
    """第二个: that item of the last list (services or orders)."""
    n = meant.slots.ordinal or meant.slots.package
    kind = list_kind(ctx)
    if n is None or kind not in ("catalog", "orders"):
        if n is not None and ctx.state.data.get("viewing") is not None:
            package = dataclasses.replace(meant.slots, package=n)
            await _order(ctx, dataclasses.replace(meant, slots=package), text)
            return
        raise UserFacingError(texts.NO_LIST)
    ctx.state.data["list"] = kind
    shown = ctx.state.data.get("browse" if kind == "catalog" else "orders", {})
    n = from_end(n, len(shown.get("ids" if kind == "catalog" else "numbers", [])))
    await as_command(ctx, str(n), catalog.on_pick if kind == "catalog" else orders.on_pick)


def from_end(n: int, count: int) -> int:
    """最后一个 / 倒数第二个 (flows.understand.LAST = -1, -2 …) counted on a list of `count`."""
    return count + n + 1 if n < 0 else n


async def _order(ctx: Ctx, meant: Understanding, text: str, *, to_cart: bool = False) -> None:
    """就要这个 / 我要两份: the viewed service's package (asked when there are several)."""
    viewing = ctx.state.data.get("viewing")
    if viewing is None:
        if meant.slots.ordinal is not None and list_kind(ctx) == "catalog":
            await _pick(ctx, meant, text)  # 下单第一个 from a list: its detail, with its packages
            return
        await (_search(ctx, meant, text) if has_search(meant.slots) else _say(ctx, texts.ORDER_WHAT))
        return
    quantity = max(1, min(meant.slots.quantity or 1, 99))
    position = meant.slots.package or meant.slots.ordinal  # 下单第一个 while a detail is open
    if position is not None and position < 0:  # 最后一个套餐
        packages = (await _viewed(ctx, int(viewing))).packages
        position = packages[max(position, -len(packages))].position
    if position is None:
        detail = await _viewed(ctx, int(viewing))
        if len(detail.packages) > 1:
            _ask_package(ctx, detail, dataclasses.replace(meant.slots, quantity=quantity), to_cart=to_cart)
            return
        position = detail.packages[0].position
    verb, handler = ("加购", cart.on_add) if to_cart else ("下单", cart.on_buy_now)
    await as_command(ctx, f"{verb} {position} {quantity}", handler)
    if meant.slots.when is not None and OrderForm.active(ctx.state):
        _note_publish_time(ctx, meant.slots.when)


def _note_publish_time(ctx: Ctx, when: dt.datetime) -> None:
    """「就要这个，下周五晚上发」: the time is kept for the publish time step, asked back there for 对."""
    order_form = OrderForm(ctx.state)
    now = ctx.now().astimezone(BEIJING)
    at = when.astimezone(BEIJING)
    assumed = ""
    if (at.hour, at.minute) == (0, 0):  # a day without a clock: the evening, said so when asked back
        at = at.replace(hour=DEFAULT_PUBLISH_HOUR)
        assumed = texts.TIME_ASSUMED_CLOCK.format(clock=f"{at:%H:%M}")
    if "publish_time" not in order_form.keys or not now + MIN_LEAD <= at <= now + MAX_LEAD:
        return  # the step asks, and says why such a time will not do
    plain = order_form.prompt() if order_form.step else ""
    question = texts.TIME_CONFIRM.format(when=day_time(at), assumed=assumed)
    order_form.note("publish_time", at.isoformat(timespec="minutes"), question)
    last = ctx.replies[-1] if ctx.replies else None
    if last is not None and last.kind == "text":
        content = texts.ORDER_WHEN_NOTED.format(when=day_time(at)) + last.payload["content"]
        if plain and order_form.step and order_form.step.key == "publish_time":  # asked right away
            content = content.replace(plain, order_form.prompt())
        last.payload["content"] = content


async def _viewed(ctx: Ctx, service_id: int) -> store_catalog.ServiceDetail:
    async with ctx.read() as session:
        detail = await store_catalog.get_detail(session, service_id)
    if detail is None:
        raise UserFacingError(texts.NO_VIEWING)
    return detail


def _ask_package(
    ctx: Ctx, detail: store_catalog.ServiceDetail, slots: Slots, *, to_cart: bool, head: str = ""
) -> None:
    """Which package: numbered; the number is the answer next turn (quantity and time are kept)."""
    intent = Intent.ADD_TO_CART if to_cart else Intent.ORDER
    packages = detail.packages
    lines = "\n".join(
        texts.WHICH_PACKAGE_LINE.format(
            n=i,
            name=p.name,
            price=yuan(p.price_fen),
            lead=texts.LEAD_DAYS.format(days=p.lead_days) if p.lead_days else texts.LEAD_NOW,
        )
        for i, p in enumerate(packages, start=1)
    )
    kept = Slots(quantity=slots.quantity, when=slots.when)
    options = [Understanding(intent, dataclasses.replace(kept, package=p.position)) for p in packages]
    offer_choices(ctx, options)
    ctx.say(head or texts.WHICH_PACKAGE, title=detail.card.title, count=len(packages), packages=lines)


async def _add_to_cart(ctx: Ctx, meant: Understanding, text: str) -> None:
    await _order(ctx, meant, text, to_cart=True)


def _order_no(ctx: Ctx, meant: Understanding) -> str:
    return meant.slots.order_no or ctx.state.data.get("last_order") or ""


async def _my_orders(ctx: Ctx, meant: Understanding, text: str) -> None:
    """我的订单: the list; 订单到哪了 / 什么时候完成: the order named or talked about last, else how
    orders go, with the list."""
    asking = _PROGRESS.search(text) is not None
    number = meant.slots.order_no or (ctx.state.data.get("last_order") if asking else None)
    if number:
        await orders.show_order(ctx, number)
        return
    await orders.show_orders(ctx, None, 1)
    last = ctx.replies[-1] if ctx.replies else None
    if asking and last is not None and last.kind == "text":
        last.payload["content"] = texts.FAQ["progress"] + "\n\n" + last.payload["content"]


async def _cancel(ctx: Ctx, meant: Understanding, text: str) -> None:
    await as_command(ctx, f"取消订单 {_order_no(ctx, meant)}", orders.on_cancel)


async def _refund(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A refund of an order: asked for with the reason the message gives when it names the order
    itself; otherwise the reason is asked for (nothing is asked of staff on a guess)."""
    number = _order_no(ctx, meant)
    if not number:
        ctx.say(texts.FAQ["refund"])
        return
    reason = _refund_reason(text) if meant.slots.order_no else ""
    await as_command(ctx, f"申请退款 {number} {reason}".strip(), orders.on_refund)


def _refund_reason(text: str) -> str:
    """「20261122-0042 要退款，活动延期了」 → 「活动延期了」; empty when nothing but the request is left."""
    rest = _REFUND_WORDS.sub(" ", text)
    rest = re.sub(r"[\s，,。.！!？?：:；;、~]+", " ", rest).strip()
    return rest if sum(c.isalnum() for c in rest) >= 2 else ""


async def _invoice(ctx: Ctx, meant: Understanding, text: str) -> None:
    if meant.slots.order_no:
        await as_command(ctx, f"开发票 {meant.slots.order_no}", invoices.on_request)
        return
    await invoices.on_invoices(ctx)


async def _pay(ctx: Ctx, meant: Understanding, text: str) -> None:
    await as_command(ctx, f"支付 {_order_no(ctx, meant)}".strip(), pay.on_pay)


def _amount(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}" + (f".{fen % 100:02d}" if fen % 100 else "")


async def _topup(ctx: Ctx, meant: Understanding, text: str) -> None:
    await as_command(ctx, f"充值 {_amount(meant.slots.amount_fen)}".strip(), pay.on_topup)


async def _withdraw(ctx: Ctx, meant: Understanding, text: str) -> None:
    await as_command(ctx, f"提现 {_amount(meant.slots.amount_fen)}".strip(), creators.on_withdraw)


async def _question(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A known topic gets its answer (a price question about services also lists them by price)."""
    slots = meant.slots
    answer = texts.FAQ.get(slots.topic or "")
    if answer is None:
        ctx.say(texts.FAQ_OTHER)
        return
    viewing = ctx.state.data.get("viewing")
    about_viewed = viewing is not None and _THIS.search(text) and open_form(ctx) is None
    if slots.topic in ("price", "timing") and about_viewed:
        detail = await _viewed(ctx, int(viewing or 0))  # 这个(博主)多少钱 / 这个多久能发: the one on view
        _ask_package(ctx, detail, slots, to_cart=False, head=_ABOUT_VIEWED[slots.topic or ""])
        return
    if slots.topic == "price" and has_search(slots):
        query = dataclasses.replace(query_of(slots), sort="price")
        await catalog.show_page(ctx, query, 1, prefix=texts.FAQ_PRICE_LIST)
        return
    ctx.say(answer + human_offer(ctx, text))


async def _complaint(ctx: Ctx, meant: Understanding, text: str) -> None:
    """Unhappy: an apology, and a person at once."""
    await relay.on_human(ctx)
    if ctx.replies and ctx.replies[-1].kind == "text":
        ctx.replies[-1].payload["content"] = texts.COMPLAINT_SORRY + ctx.replies[-1].payload["content"]


def _plain(handler: Handler) -> Action:
    async def run(ctx: Ctx, meant: Understanding, text: str) -> None:
        await handler(ctx)

    return run


def _text(answer: str) -> Action:
    async def run(ctx: Ctx, meant: Understanding, text: str) -> None:
        ctx.say(answer)

    return run


ACTIONS: dict[Intent, Action] = {
    Intent.SEARCH: _search,
    Intent.REFINE: _refine,
    Intent.PICK: _pick,
    Intent.ORDER: _order,
    Intent.ADD_TO_CART: _add_to_cart,
    Intent.PAY: _pay,
    Intent.MY_ORDERS: _my_orders,
    Intent.CANCEL: _cancel,
    Intent.REFUND: _refund,
    Intent.INVOICE: _invoice,
    Intent.BALANCE: _plain(pay.on_balance),
    Intent.TOPUP: _topup,
    Intent.QUESTION: _question,
    Intent.ABOUT: _plain(basic.on_about),
    Intent.HUMAN: _plain(relay.on_human),
    Intent.COMPLAINT: _complaint,
    Intent.INVITE: _plain(invite.on_invite),
    Intent.EARNINGS: _plain(creators.on_earnings),
    Intent.TEAM: _plain(creators.on_team),
    Intent.WITHDRAW: _withdraw,
    Intent.GREETING: _text(texts.GREETING),
    Intent.THANKS: _text(texts.THANKS),
    Intent.HELP: _plain(basic.on_help),
    Intent.UNKNOWN: not_understood,
}
