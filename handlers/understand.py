"""Customer messages in their own words: understood into an intent, then acted on by the existing handlers.

Exact commands are routed before this (handlers/__init__): they are the most certain way to say
something and keep working as they did. Every other text reaches `on_text`, which builds a Context
from the conversation state (the last list, the service viewed, the last order, the form step, how
many messages in a row were not understood), asks `flows.understand` what it means (and the optional
language model when the local answer is not confident), and calls the handler that already does it.

```mermaid
flowchart LR
    text --> understand --> intent{intent}
    intent -->|search / refine / pick| catalog
    intent -->|order / add_to_cart| cart
    intent -->|my_orders / cancel / refund| orders
    intent -->|pay / balance / topup| pay
    intent -->|question / about / human| answers
    intent -->|unknown| suggestions["2–3 numbered suggestions (a number works next turn)"]
```
A question typed in the middle of a form (the order form, or materials being redone) is answered and
the same step asked again (`form_questions`, tried just before the forms' own answers). A sentence
that starts with a command word but lacks the command's argument (付款方式有哪些, 充值500) is
understood too (`sentences`, tried before the commands). Numbered answers (suggestions, packages)
are kept in state["choice"]; a number next turn picks one, anything else is understood afresh.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows import texts
from flows.browse import describe
from flows.engine import Form, OrderForm
from flows.format import day_time, yuan
from flows.relay import relay_state
from flows.requirements import (
    BEIJING,
    DEFAULT_PUBLISH_HOUR,
    MAX_LEAD,
    MIN_LEAD,
    InvalidInput,
    NeedsConfirmation,
)
from flows.review import ResubmitForm
from flows.understand import THRESHOLD, Vocabulary, understand
from flows.understand.load import load_vocabulary
from flows.understand.types import Context, Intent, Slots, Understanding
from handlers import basic, cart, catalog, creators, form, invite, invoices, orders, pay, relay, resubmit
from handlers.context import Ctx, UserFacingError
from handlers.router import Handler, Router, normalise
from store import catalog as store_catalog
from store.catalog import Query
from store.models import CatalogWrites, Service

log = logging.getLogger(__name__)

router = Router("understand")  # free text no command took: included last
form_questions = Router("form_understood")  # a question in a form: before the forms' answers
# 「付款后多久发布」「下单这个」「提现一百」: a sentence that starts with a command word but carries
# none of the command's argument (a number, an amount) would only get the command's usage line.
sentences = Router("understand_sentence")  # before the commands

SURE_IN_FORM = 0.85  # a request this clear (看看我的订单) is not a brand, even if it could be one
LONG_QUESTION = 30  # characters: a free-text question this long gets a person offered at once
# Intents that, said with confidence as a question in the middle of a form, are not its answer …
FORM_ASIDES = frozenset(
    {Intent.QUESTION, Intent.HUMAN, Intent.COMPLAINT, Intent.ABOUT, Intent.HELP, Intent.MY_ORDERS}
)
# … and requests that are not its answer when the step could not keep them or they are clear
# (看看我的订单, 还有多少余额).
FORM_COMMANDS = frozenset(
    {
        Intent.MY_ORDERS,
        Intent.PAY,
        Intent.BALANCE,
        Intent.TOPUP,
        Intent.REFUND,
        Intent.INVOICE,
        Intent.EARNINGS,
        Intent.TEAM,
        Intent.INVITE,
        Intent.WITHDRAW,
    }
)
# 「探店的呢」「那美食的」「换成抖音」「抖音的」 lean on the last list; 「咖啡探店」「KOL推广」 start afresh.
_FOLLOW_UP = re.compile(
    r"呢|那|换|也|再|还|只要|只看|只有|其中|里面|这些|的(吗|么|嘛|有吗|有没有)?[?？!！。~]*$"
)
# 「我要找人工」「帮我叫个客服」 ask for a person; 「人工智能科技」「客服小王」 may be a brand or a name.
_ASKS_PERSON = re.compile(r"(找|转|叫|要|联系|接|换|请|让).{0,3}(人工|客服|真人)|投诉")
_REFUND_WORDS = re.compile(
    r"(我|想|要|申请|办理|帮我|请|麻烦)*(退款|退钱|退掉|退单)(吧|了|呀|啊|一下)?|订单|单号|\d{8}-\d{4}"
)
_PROGRESS = re.compile(r"什么时候|啥时候|几时|多久|到哪|进度|怎么样|好了没|完成|做完|发了没|发布了")
_THIS = re.compile(r"这个|这家|这位|它|他家|她家|套餐")  # a question about the service on view
_STRUCTURED_STEPS = frozenset({"link", "publish_time", "mentions", "contact"})
_ARGUMENT_COMMANDS = tuple(
    normalise(w)
    for w in (
        "加购",
        "加入购物车",
        "下单",
        "立即下单",
        "购买",
        "取消订单",
        "申请退款",
        "支付",
        "付款",
        "去支付",
        "余额支付",
        "用余额支付",
        "充值",
        "开发票",
        "申请发票",
        "提现",
    )
)
_QUESTION_MARKS = re.compile(
    r"[?？吗呢么嘛]$|怎么|怎样|咋|如何|干嘛|多少|什么|啥|几时|到哪|能不能|可不可以|可以吗|是否|哪里|多久|几天"
)


# --- Understanding a message ---------------------------------------------------------------------


def context_of(ctx: Ctx) -> Context:
    """What the conversation already holds, for 便宜一点的 / 第二个 / 就要这个."""
    data = ctx.state.data
    viewing = data.get("viewing")
    return Context(
        has_list=_list_kind(ctx) in ("catalog", "orders"),  # 还有吗 / 第二个 page and pick either
        viewing=int(viewing) if viewing is not None else None,
        last_order=data.get("last_order"),
        form_step=ctx.state.step if _open_form(ctx) is not None else None,
        misunderstood=int(data.get("misunderstood", 0)),
    )


def _list_kind(ctx: Ctx) -> str | None:
    """The list shown last; while a numbered choice is open, the list shown before it."""
    kind = ctx.state.data.get("list")
    if kind == "choice":
        return ctx.state.data.get("choice", {}).get("back")
    return kind


async def interpret(ctx: Ctx, text: str) -> Understanding:
    """The message's meaning: local first, the language model only when that is unsure."""
    vocab = await _vocabularies.get(ctx)
    try:
        found = understand(text, context_of(ctx), vocab, ctx.now())
    except Exception:  # a message it trips over is a message not understood, not an apology
        log.exception("understanding failed", extra={"text": text[:100]})
        return Understanding(Intent.UNKNOWN, confidence=0.0)
    llm = ctx.services.llm
    if found.confidence >= THRESHOLD or llm is None:
        return found
    try:
        # Half the reply budget at most: the answer must still go back within WeChat's 5 seconds.
        asked = await llm.ask(text, vocab, budget_s=ctx.settings.reply_budget / 2)
    except Exception:
        log.warning("language model unavailable", exc_info=True)
        return found
    return asked if asked is not None and asked.confidence > found.confidence else found


class _Vocabularies:
    """The catalog's vocabulary, built once per catalog version. Building it takes milliseconds to
    seconds with the catalog's size; the version (one small query) is read again when this process
    wrote services, and otherwise at most every RECHECK seconds — an import by another process (the
    CLI, another server) is understood that much later, and a plain turn pays no query for it."""

    RECHECK = 2.0  # seconds

    def __init__(self) -> None:
        # database → (version, vocabulary, this process's writes then, monotonic time of the check)
        self._built: dict[str, tuple[tuple[Any, ...], Vocabulary, int, float]] = {}

    async def get(self, ctx: Ctx) -> Vocabulary:
        database = ctx.settings.database_url
        kept = self._built.get(database)
        fresh = kept is not None and kept[2] == CatalogWrites.count
        if kept is not None and fresh and time.monotonic() - kept[3] < self.RECHECK:
            return kept[1]
        writes = CatalogWrites.count
        async with ctx.read() as session:
            version = await _catalog_version(session)
            if kept is not None and kept[0] == version:
                self._built[database] = (version, kept[1], writes, time.monotonic())
                return kept[1]
            vocab = await load_vocabulary(session)
        self._built[database] = (version, vocab, writes, time.monotonic())
        return vocab


async def _catalog_version(session: AsyncSession) -> tuple[Any, ...]:
    listed = select(func.count(), func.max(Service.id), func.max(Service.updated_at))
    return tuple((await session.execute(listed.where(Service.status == "listed"))).one())


_vocabularies = _Vocabularies()  # per process; keyed by database, so tests' apps never share one


def has_words(text: str) -> bool:
    """Letters or digits of any script: a lone emoji or punctuation has none."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


# --- Routes --------------------------------------------------------------------------------------


def _free_text(ctx: Ctx) -> bool:
    return ctx.event.kind == "text" and not OrderForm.active(ctx.state)


@router.when(lambda ctx: _free_text(ctx) and ctx.state.data.get("list") == "choice")
async def on_choice(ctx: Ctx) -> None:
    """A number answering the last numbered question (a suggestion, a package); else understood anew."""
    choice: dict[str, Any] = ctx.state.data["choice"]
    options: list[dict[str, Any]] = choice.get("options", [])
    _close_choice(ctx)
    n = int(ctx.command or 0) if (ctx.command or "").isdigit() else None
    if n is None:
        if not has_words(ctx.event.text):
            await on_text(ctx)
            return
        meant = await interpret(ctx, ctx.event.text)
        ordinal = meant.slots.ordinal if meant.intent == Intent.PICK else None
        n = None if ordinal is None else _from_end(ordinal, len(options))
        if n is None or not 1 <= n <= len(options):  # 第二个 right after options means option 2
            await act(ctx, meant, ctx.event.text)
            return
    if not 1 <= n <= len(options):
        ctx.state.data.update(list="choice", choice=choice)  # still open: the right number may follow
        ctx.say(texts.CHOICE_OUT_OF_RANGE, max=len(options))
        return
    await act(ctx, _loaded(options[n - 1]), ctx.event.text)


def _close_choice(ctx: Ctx) -> None:
    choice = ctx.state.data.pop("choice", {})
    back = choice.get("back")
    if back:
        ctx.state.data["list"] = back
    else:
        ctx.state.data.pop("list", None)


def _sentence_not_command(ctx: Ctx) -> bool:
    """A command word followed by words, not by its argument (「付款方式有哪些」, 「下单这个」), or glued
    to it (「充值500」, 「取消订单20261122-0042」: the commands read their argument after a space)."""
    command = ctx.command or ""
    if ctx.event.kind != "text" or not command.startswith(_ARGUMENT_COMMANDS):
        return False
    head = max((h for h in _ARGUMENT_COMMANDS if command.startswith(h)), key=len)
    tail = command[len(head) :]
    return bool(tail.strip()) and (not tail.startswith(" ") or not any(c.isdigit() for c in tail))


@sentences.when(_sentence_not_command)
async def on_sentence(ctx: Ctx) -> None:
    """Understood like any other text (in the form: a question there, or the step's answer)."""
    await (on_form_text(ctx) if _open_form(ctx) is not None else on_text(ctx))


@router.when(_free_text)
async def on_text(ctx: Ctx) -> None:
    """Any other text: understood, then acted on."""
    text = ctx.event.text
    if not has_words(text):
        _missed(ctx)
        ctx.say(texts.NOT_UNDERSTOOD_SHORT + _human_offer(ctx, text))
        return
    await act(ctx, await interpret(ctx, text), text)


def _open_form(ctx: Ctx) -> tuple[Form, Handler] | None:
    """The form being filled in and the handler of its answers: materials being redone first (they
    are answered before a talk with staff), then the order form (unless talking to staff)."""
    if ResubmitForm.active(ctx.state):
        return ResubmitForm(ctx.state), resubmit.on_answer
    if OrderForm.active(ctx.state) and relay_state(ctx.state, ctx.now()) is None:
        return OrderForm(ctx.state), form.on_answer
    return None


@form_questions.when(lambda ctx: ctx.event.kind == "text" and _open_form(ctx) is not None)
async def on_form_text(ctx: Ctx) -> None:
    """In a form: a question is answered and the step asked again; anything else is the answer."""
    open_form, on_answer = _open_form(ctx) or (OrderForm(ctx.state), form.on_answer)
    text = ctx.event.text
    fits = _fits_step(open_form, text, ctx)
    structured = open_form.step is not None and open_form.step.key in _STRUCTURED_STEPS
    if open_form.at_confirm or not has_words(text) or (fits and structured):
        await on_answer(ctx)
        return
    meant = await interpret(ctx, text)
    if meant.intent is Intent.HELP and meant.confidence >= THRESHOLD:  # 没有链接怎么办: this step's example
        await (form.on_template(ctx) if isinstance(open_form, OrderForm) else resubmit.on_example(ctx))
        return
    if meant.intent is Intent.CANCEL and not meant.slots.order_no and isinstance(open_form, OrderForm):
        await form.on_cancel(ctx)  # 这个单不买了 while ordering: this order, not an earlier one
        return
    asking = _looks_like_question(text) or _ASKS_PERSON.search(text) is not None
    question = asking and meant.intent in FORM_ASIDES
    request = meant.intent in FORM_COMMANDS and (not fits or meant.confidence >= SURE_IN_FORM)
    if meant.confidence < THRESHOLD or not (question or request):
        await on_answer(ctx)
        return
    await act(ctx, meant, text)
    still = _open_form(ctx)  # talking to staff now: they take it from here
    if still is not None and not still[0].at_confirm:
        _append(ctx, texts.FORM_QUESTION_RESUME.format(prompt=still[0].prompt()))


def _fits_step(open_form: Form, text: str, ctx: Ctx) -> bool:
    """Whether `text` would be kept as the step's answer. For a link, a time, a phone number that is
    the end of it (「下周五晚上可以吗？」 is a time); a brand or a selling point proves nothing by parsing."""
    step = open_form.step
    if step is None or step.images:
        return False
    try:
        step.parse(text, ctx.now())
    except InvalidInput:
        return False
    except NeedsConfirmation:
        return True  # a time with an assumed part is still a time: the form asks it back
    return True


def _looks_like_question(text: str) -> bool:
    """A brand or a selling point is rarely phrased as a question; a question usually is."""
    return _QUESTION_MARKS.search(text.strip()) is not None


def _append(ctx: Ctx, tail: str) -> None:
    last = ctx.replies[-1] if ctx.replies else None
    if last is not None and last.kind == "text":
        last.payload["content"] += tail
    else:
        ctx.say(tail.lstrip("\n"))


# --- Acting on an intent -------------------------------------------------------------------------

Action = Callable[[Ctx, Understanding, str], Awaitable[None]]


async def act(ctx: Ctx, meant: Understanding, text: str) -> None:
    """Call what does it; a guess is offered as a numbered suggestion first (「你是想找…吗？」)."""
    log.info("understood", extra={"intent": str(meant.intent), "source": meant.source})
    unsure = meant.confidence < THRESHOLD and meant.source != "choice"
    if meant.intent is Intent.UNKNOWN or (unsure and _suggestions(ctx, meant)):
        await _unknown(ctx, meant, text)
        return
    ctx.state.data.pop("misunderstood", None)
    await ACTIONS[meant.intent](ctx, meant, text)


async def _as(ctx: Ctx, command: str, handler: Handler) -> None:
    """Run an existing command handler as if `command` had been typed."""
    said = ctx.command
    ctx.command = normalise(command)
    try:
        await handler(ctx)
    finally:
        ctx.command = said


def _search_words(slots: Slots) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*slots.tags, *slots.keywords)))


def _has_search(slots: Slots) -> bool:
    return bool(
        slots.platform
        or slots.category
        or slots.tags
        or slots.keywords
        or slots.form
        or slots.price_min_fen is not None
        or slots.price_max_fen is not None
        or slots.followers_min is not None
        or slots.followers_max is not None
    )


def _last_query(ctx: Ctx) -> Query:
    saved = ctx.state.data.get("browse", {}).get("query")
    return Query.from_dict(saved) if saved else Query()


def query_of(slots: Slots) -> Query:
    """A fresh search from what the message said."""
    return _narrowed(Query(), slots, keep_words=False)


def _narrowed(query: Query, slots: Slots, *, keep_words: bool) -> Query:
    """`query` with every condition the message named replaced by the named one."""
    changes: dict[str, Any] = {}
    if slots.tags or slots.keywords or not keep_words:
        changes.update(tags=slots.tags, keywords=slots.keywords)  # ranked by the search, not all required
    for name in ("platform", "category", "form"):
        value = getattr(slots, name)
        if value and (name != "platform" or value in store_catalog.PLATFORMS):
            changes[name] = value
    # A budget or a follower range said again replaces the old one whole: 「3000以内的」 after
    # 「2万左右」 is ≤ ¥3,000, not ¥16,000–¥3,000.
    for low, high in (("price_min_fen", "price_max_fen"), ("followers_min", "followers_max")):
        if getattr(slots, low) is not None or getattr(slots, high) is not None:
            changes.update({low: getattr(slots, low), high: getattr(slots, high)})
    if slots.sort in store_catalog.SORTS:
        changes["sort"] = slots.sort
    return dataclasses.replace(query, **changes)


async def _search(ctx: Ctx, meant: Understanding, text: str) -> None:
    """Find services by what was said; nothing said yet: the platforms and categories."""
    if not _has_search(meant.slots) and meant.slots.sort is None:
        await catalog.on_categories(ctx)
        return
    await catalog.show_page(ctx, query_of(meant.slots), 1)
    if len(text.strip()) >= LONG_QUESTION and _looks_like_question(text):
        _append(ctx, texts.OFFER_HUMAN)  # a long question may need more than a list


async def _refine(ctx: Ctx, meant: Understanding, text: str) -> None:
    """便宜一点的 / 粉丝多一点的 / 那个抖音的呢 change the last list; 还有吗 shows its next page."""
    kind, slots = _list_kind(ctx), meant.slots
    if not _has_search(slots) and slots.sort is None:  # 还有吗 / 换一批
        if kind in ("catalog", "orders"):
            ctx.state.data["list"] = kind
            await (catalog.on_next(ctx) if kind == "catalog" else _as(ctx, "下一页", orders.on_page))
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
    await catalog.show_page(ctx, _narrowed(_last_query(ctx), slots, keep_words=True), 1)


async def _say(ctx: Ctx, text: str) -> None:
    ctx.say(text)


async def _pick(ctx: Ctx, meant: Understanding, text: str) -> None:
    """第二个: that item of the last list (services or orders)."""
    n = meant.slots.ordinal or meant.slots.package
    kind = _list_kind(ctx)
    if n is None or kind not in ("catalog", "orders"):
        if n is not None and ctx.state.data.get("viewing") is not None:
            package = dataclasses.replace(meant.slots, package=n)
            await _order(ctx, dataclasses.replace(meant, slots=package), text)
            return
        raise UserFacingError(texts.NO_LIST)
    ctx.state.data["list"] = kind
    shown = ctx.state.data.get("browse" if kind == "catalog" else "orders", {})
    n = _from_end(n, len(shown.get("ids" if kind == "catalog" else "numbers", [])))
    await _as(ctx, str(n), catalog.on_pick if kind == "catalog" else orders.on_pick)


def _from_end(n: int, count: int) -> int:
    """最后一个 / 倒数第二个 (flows.understand.LAST = -1, -2 …) counted on a list of `count`."""
    return count + n + 1 if n < 0 else n


async def _order(ctx: Ctx, meant: Understanding, text: str, *, to_cart: bool = False) -> None:
    """就要这个 / 我要两份: the viewed service's package (asked when there are several)."""
    viewing = ctx.state.data.get("viewing")
    if viewing is None:
        if meant.slots.ordinal is not None and _list_kind(ctx) == "catalog":
            await _pick(ctx, meant, text)  # 下单第一个 from a list: its detail, with its packages
            return
        await (_search(ctx, meant, text) if _has_search(meant.slots) else _say(ctx, texts.ORDER_WHAT))
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
    await _as(ctx, f"{verb} {position} {quantity}", handler)
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
    _offer(ctx, [Understanding(intent, dataclasses.replace(kept, package=p.position)) for p in packages])
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
    await _as(ctx, f"取消订单 {_order_no(ctx, meant)}", orders.on_cancel)


async def _refund(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A refund of an order: asked for with the reason the message gives when it names the order
    itself; otherwise the reason is asked for (nothing is asked of staff on a guess)."""
    number = _order_no(ctx, meant)
    if not number:
        ctx.say(texts.FAQ["refund"])
        return
    reason = _refund_reason(text) if meant.slots.order_no else ""
    await _as(ctx, f"申请退款 {number} {reason}".strip(), orders.on_refund)


def _refund_reason(text: str) -> str:
    """「20261122-0042 要退款，活动延期了」 → 「活动延期了」; empty when nothing but the request is left."""
    rest = _REFUND_WORDS.sub(" ", text)
    rest = re.sub(r"[\s，,。.！!？?：:；;、~]+", " ", rest).strip()
    return rest if sum(c.isalnum() for c in rest) >= 2 else ""


async def _invoice(ctx: Ctx, meant: Understanding, text: str) -> None:
    if meant.slots.order_no:
        await _as(ctx, f"开发票 {meant.slots.order_no}", invoices.on_request)
        return
    await invoices.on_invoices(ctx)


async def _pay(ctx: Ctx, meant: Understanding, text: str) -> None:
    await _as(ctx, f"支付 {_order_no(ctx, meant)}".strip(), pay.on_pay)


def _amount(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}" + (f".{fen % 100:02d}" if fen % 100 else "")


async def _topup(ctx: Ctx, meant: Understanding, text: str) -> None:
    await _as(ctx, f"充值 {_amount(meant.slots.amount_fen)}".strip(), pay.on_topup)


async def _withdraw(ctx: Ctx, meant: Understanding, text: str) -> None:
    await _as(ctx, f"提现 {_amount(meant.slots.amount_fen)}".strip(), creators.on_withdraw)


async def _question(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A known topic gets its answer (a price question about services also lists them by price)."""
    slots = meant.slots
    answer = texts.FAQ.get(slots.topic or "")
    if answer is None:
        ctx.say(texts.FAQ_OTHER)
        return
    viewing = ctx.state.data.get("viewing")
    about_viewed = viewing is not None and _THIS.search(text) and _open_form(ctx) is None
    if slots.topic in ("price", "timing") and about_viewed:
        detail = await _viewed(ctx, int(viewing or 0))  # 这个(博主)多少钱 / 这个多久能发: the one on view
        _ask_package(ctx, detail, slots, to_cart=False, head=_ABOUT_VIEWED[slots.topic or ""])
        return
    if slots.topic == "price" and _has_search(slots):
        query = dataclasses.replace(query_of(slots), sort="price")
        await catalog.show_page(ctx, query, 1, prefix=texts.FAQ_PRICE_LIST)
        return
    ctx.say(answer + _human_offer(ctx, text))


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


# --- Not understood ------------------------------------------------------------------------------


def _missed(ctx: Ctx) -> int:
    n = int(ctx.state.data.get("misunderstood", 0)) + 1
    ctx.state.data["misunderstood"] = n
    return n


def _human_offer(ctx: Ctx, text: str) -> str:
    """A person is offered after two misses in a row, or for a long question."""
    long = len(text.strip()) >= LONG_QUESTION
    return texts.OFFER_HUMAN if long or int(ctx.state.data.get("misunderstood", 0)) >= 2 else ""


async def _unknown(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A short answer with suggestions drawn from the message, numbered for the next turn."""
    _missed(ctx)
    offer = _human_offer(ctx, text)
    found = _suggestions(ctx, meant)
    if not found and _gibberish(text):
        ctx.say(texts.NOT_UNDERSTOOD_SHORT + offer)
        return
    options = (found + _DEFAULTS)[: 2 if offer else 3]
    lines = "\n".join(
        texts.NOT_UNDERSTOOD_OPTION.format(n=i, label=label) for i, (label, _) in enumerate(options, start=1)
    )
    _offer(ctx, [u for _, u in options])
    ctx.say(texts.NOT_UNDERSTOOD + offer, options=lines)


def _gibberish(text: str) -> bool:
    """「asdfgh」「哈哈哈哈」「嗯？」「测试」: no Chinese, or at most two different characters of it.
    These get one friendly line; 「帮我推荐」「今天天气真好」 get suggestions."""
    chinese = {c for c in text if "\u4e00" <= c <= "\u9fff"}
    return len(chinese) <= 2


def _suggestions(ctx: Ctx, meant: Understanding) -> list[tuple[str, Understanding]]:
    """What the message itself points at: the intent guessed, a search by the words recognised,
    an order named."""
    slots, found = meant.slots, []
    guessed = _guessed(ctx, meant)
    if guessed:
        found.append((guessed, dataclasses.replace(meant, confidence=1.0)))
    if _has_search(slots) and meant.intent not in (Intent.SEARCH, Intent.REFINE):
        search = dataclasses.replace(Slots(), **{k: getattr(slots, k) for k in _SEARCH_SLOTS})
        found.append((texts.SUGGEST_SEARCH.format(what=_what(slots)), Understanding(Intent.SEARCH, search)))
    if slots.order_no:
        found.append(
            (
                texts.SUGGEST_ORDER.format(number=slots.order_no),
                Understanding(Intent.MY_ORDERS, Slots(order_no=slots.order_no)),
            )
        )
    return found


def _guessed(ctx: Ctx, meant: Understanding) -> str | None:
    """A label for the intent guessed, when it is something one can offer to do."""
    slots = meant.slots
    if meant.intent in (Intent.SEARCH, Intent.REFINE) and _has_search(slots):
        return texts.SUGGEST_SEARCH.format(what=_what(slots))
    if meant.intent is Intent.PICK and (slots.ordinal or 0) > 0 and _list_kind(ctx) in ("catalog", "orders"):
        return texts.SUGGEST_PICK.format(n=slots.ordinal)
    if meant.intent in (Intent.ORDER, Intent.ADD_TO_CART) and ctx.state.data.get("viewing") is not None:
        return texts.SUGGEST_ORDER_VIEWED if meant.intent is Intent.ORDER else texts.SUGGEST_CART_VIEWED
    if meant.intent is Intent.MY_ORDERS:
        return texts.SUGGEST_MY_ORDERS
    return None


def _what(slots: Slots) -> str:
    """「小红书 · 达人营销 · ≤¥3,000 · 美食」: the conditions of a search in words."""
    search = dataclasses.replace(Slots(), **{k: getattr(slots, k) for k in _SEARCH_SLOTS})
    return " · ".join(p for p in (describe(query_of(search)), *_search_words(search)) if p)


_ABOUT_VIEWED = {"price": texts.PRICES_OF, "timing": texts.LEADS_OF}
_SEARCH_SLOTS = (
    "platform",
    "category",
    "tags",
    "keywords",
    "form",
    "price_min_fen",
    "price_max_fen",
    "followers_min",
    "followers_max",
)
_DEFAULTS = [
    (texts.SUGGEST_BROWSE, Understanding(Intent.SEARCH)),
    (texts.SUGGEST_HOWTO, Understanding(Intent.QUESTION, Slots(topic="howto"))),
    (texts.SUGGEST_HUMAN, Understanding(Intent.HUMAN)),
]


def _offer(ctx: Ctx, options: list[Understanding]) -> None:
    """Remember numbered options: a number next turn picks one (the list shown before stays)."""
    back = _list_kind(ctx)
    ctx.state.data["choice"] = {"back": back, "options": [_dumped(u) for u in options]}
    ctx.state.data["list"] = "choice"


def _dumped(meant: Understanding) -> dict[str, Any]:
    slots = {
        k: list(v) if isinstance(v, tuple) else v.isoformat() if isinstance(v, dt.datetime) else v
        for k, v in ((f.name, getattr(meant.slots, f.name)) for f in dataclasses.fields(Slots))
        if v not in (None, ())
    }
    return {"intent": str(meant.intent), "slots": slots}


def _loaded(data: dict[str, Any]) -> Understanding:
    slots: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else dt.datetime.fromisoformat(v) if k == "when" else v
        for k, v in data.get("slots", {}).items()
    }
    return Understanding(Intent(data["intent"]), Slots(**slots), source="choice")


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
    Intent.UNKNOWN: _unknown,
}
