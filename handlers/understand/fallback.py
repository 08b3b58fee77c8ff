"""Not understood: a short answer with numbered suggestions drawn from the message, and a person
offered after two misses in a row or for a long question."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flows import texts
from flows.understand.types import Intent, Slots, Understanding
from handlers.context import Ctx
from handlers.understand.reading import list_kind
from handlers.understand.searching import SEARCH_SLOTS, has_search, search_label

LONG_QUESTION = 30  # characters: a free-text question this long gets a person offered at once


def count_miss(ctx: Ctx) -> int:
    n = int(ctx.state.data.get("misunderstood", 0)) + 1
    ctx.state.data["misunderstood"] = n
    return n


def human_offer(ctx: Ctx, text: str) -> str:
    """A person is offered after two misses in a row, or for a long question."""
    long = len(text.strip()) >= LONG_QUESTION
    return texts.OFFER_HUMAN if long or int(ctx.state.data.get("misunderstood", 0)) >= 2 else ""


async def not_understood(ctx: Ctx, meant: Understanding, text: str) -> None:
    """A short answer with suggestions drawn from the message, numbered for the next turn."""
    count_miss(ctx)
    offer = human_offer(ctx, text)
    found = suggestions(ctx, meant)
    if not found and _gibberish(text):
        ctx.say(texts.NOT_UNDERSTOOD_SHORT + offer)
        return
    options = (found + _DEFAULTS)[: 2 if offer else 3]
    lines = "\n".join(
        texts.NOT_UNDERSTOOD_OPTION.format(n=i, label=label) for i, (label, _) in enumerate(options, start=1)
    )
    offer_choices(ctx, [u for _, u in options])
    ctx.say(texts.NOT_UNDERSTOOD + offer, options=lines)


def _gibberish(text: str) -> bool:
    """「asdfgh」「哈哈哈哈」「嗯？」「测试」: no Chinese, or at most two different characters of it.
    These get one friendly line; 「帮我推荐」「今天天气真好」 get suggestions."""
    chinese = {c for c in text if "\u4e00" <= c <= "\u9fff"}
    return len(chinese) <= 2


def suggestions(ctx: Ctx, meant: Understanding) -> list[tuple[str, Understanding]]:
    """What the message itself points at: the intent guessed, a search by the words recognised,
    an order named."""
    slots, found = meant.slots, []
    guessed = _guessed(ctx, meant)
    if guessed:
        found.append((guessed, dataclasses.replace(meant, confidence=1.0)))
    if has_search(slots) and meant.intent not in (Intent.SEARCH, Intent.REFINE):
        search = dataclasses.replace(Slots(), **{k: getattr(slots, k) for k in SEARCH_SLOTS})
        label = texts.SUGGEST_SEARCH.format(what=search_label(slots))
        found.append((label, Understanding(Intent.SEARCH, search)))
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
    if meant.intent in (Intent.SEARCH, Intent.REFINE) and has_search(slots):
        return texts.SUGGEST_SEARCH.format(what=search_label(slots))
    if meant.intent is Intent.PICK and (slots.ordinal or 0) > 0 and list_kind(ctx) in ("catalog", "orders"):
        return texts.SUGGEST_PICK.format(n=slots.ordinal)
    if meant.intent in (Intent.ORDER, Intent.ADD_TO_CART) and ctx.state.data.get("viewing") is not None:
        return texts.SUGGEST_ORDER_VIEWED if meant.intent is Intent.ORDER else texts.SUGGEST_CART_VIEWED
    if meant.intent is Intent.MY_ORDERS:
        return texts.SUGGEST_MY_ORDERS
    return None


_DEFAULTS = [
    (texts.SUGGEST_BROWSE, Understanding(Intent.SEARCH)),
    (texts.SUGGEST_HOWTO, Understanding(Intent.QUESTION, Slots(topic="howto"))),
    (texts.SUGGEST_HUMAN, Understanding(Intent.HUMAN)),
]


def offer_choices(ctx: Ctx, options: list[Understanding]) -> None:
    """Remember numbered options: a number next turn picks one (the list shown before stays)."""
    back = list_kind(ctx)
    ctx.state.data["choice"] = {"back": back, "options": [_dumped(u) for u in options]}
    ctx.state.data["list"] = "choice"


def _dumped(meant: Understanding) -> dict[str, Any]:
    slots = {
        k: list(v) if isinstance(v, tuple) else v.isoformat() if isinstance(v, dt.datetime) else v
        for k, v in ((f.name, getattr(meant.slots, f.name)) for f in dataclasses.fields(Slots))
        if v not in (None, ())
    }
    return {"intent": str(meant.intent), "slots": slots}


def loaded_choice(data: dict[str, Any]) -> Understanding:
    slots: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else dt.datetime.fromisoformat(v) if k == "when" else v
        for k, v in data.get("slots", {}).items()
    }
    return Understanding(Intent(data["intent"]), Slots(**slots), source="choice")
