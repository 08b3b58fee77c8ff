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

from typing import Any

from flows import texts
from flows.engine import Form, OrderForm
from flows.requirements import InvalidInput, NeedsConfirmation
from flows.understand import THRESHOLD
from flows.understand.types import Intent
from handlers import form, resubmit
from handlers.context import Ctx
from handlers.router import Router, normalise
from handlers.understand.acting import act, append, from_end
from handlers.understand.fallback import count_miss, human_offer, loaded_choice
from handlers.understand.reading import ASKS_PERSON, has_words, interpret, looks_like_question, open_form

router = Router("understand")  # free text no command took: included last
form_questions = Router("form_understood")  # a question in a form: before the forms' answers
# 「付款后多久发布」「下单这个」「提现一百」: a sentence that starts with a command word but carries
# none of the command's argument (a number, an amount) would only get the command's usage line.
sentences = Router("understand_sentence")  # before the commands

SURE_IN_FORM = 0.85  # a request this clear (看看我的订单) is not a brand, even if it could be one

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
        n = None if ordinal is None else from_end(ordinal, len(options))
        if n is None or not 1 <= n <= len(options):  # 第二个 right after options means option 2
            await act(ctx, meant, ctx.event.text)
            return
    if not 1 <= n <= len(options):
        ctx.state.data.update(list="choice", choice=choice)  # still open: the right number may follow
        ctx.say(texts.CHOICE_OUT_OF_RANGE, max=len(options))
        return
    await act(ctx, loaded_choice(options[n - 1]), ctx.event.text)


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


@sentences.when(_sentence_not_command, heads=_ARGUMENT_COMMANDS, kinds=frozenset({"text"}))
async def on_sentence(ctx: Ctx) -> None:
    """Understood like any other text (in the form: a question there, or the step's answer)."""
    await (on_form_text(ctx) if open_form(ctx) is not None else on_text(ctx))


@router.when(_free_text)
async def on_text(ctx: Ctx) -> None:
    """Any other text: understood, then acted on."""
    text = ctx.event.text
    if not has_words(text):
        count_miss(ctx)
        ctx.say(texts.NOT_UNDERSTOOD_SHORT + human_offer(ctx, text))
        return
    await act(ctx, await interpret(ctx, text), text)


@form_questions.when(lambda ctx: ctx.event.kind == "text" and open_form(ctx) is not None)
async def on_form_text(ctx: Ctx) -> None:
    """In a form: a question is answered and the step asked again; anything else is the answer."""
    filling, on_answer = open_form(ctx) or (OrderForm(ctx.state), form.on_answer)
    text = ctx.event.text
    fits = _fits_step(filling, text, ctx)
    structured = filling.step is not None and filling.step.key in _STRUCTURED_STEPS
    if filling.at_confirm or not has_words(text) or (fits and structured):
        await on_answer(ctx)
        return
    meant = await interpret(ctx, text)
    if meant.intent is Intent.HELP and meant.confidence >= THRESHOLD:  # 没有链接怎么办: this step's example
        await (form.on_template(ctx) if isinstance(filling, OrderForm) else resubmit.on_example(ctx))
        return
    if meant.intent is Intent.CANCEL and not meant.slots.order_no and isinstance(filling, OrderForm):
        await form.on_cancel(ctx)  # 这个单不买了 while ordering: this order, not an earlier one
        return
    asking = looks_like_question(text) or ASKS_PERSON.search(text) is not None
    question = asking and meant.intent in FORM_ASIDES
    request = meant.intent in FORM_COMMANDS and (not fits or meant.confidence >= SURE_IN_FORM)
    if meant.confidence < THRESHOLD or not (question or request):
        await on_answer(ctx)
        return
    await act(ctx, meant, text)
    still = open_form(ctx)  # talking to staff now: they take it from here
    if still is not None and not still[0].at_confirm:
        append(ctx, texts.FORM_QUESTION_RESUME.format(prompt=still[0].prompt()))


def _fits_step(filling: Form, text: str, ctx: Ctx) -> bool:
    """Whether `text` would be kept as the step's answer. For a link, a time, a phone number that is
    the end of it (「下周五晚上可以吗？」 is a time); a brand or a selling point proves nothing by parsing."""
    step = filling.step
    if step is None or step.images:
        return False
    try:
        step.parse(text, ctx.now())
    except InvalidInput:
        return False
    except NeedsConfirmation:
        return True  # a time with an assumed part is still a time: the form asks it back
    return True
