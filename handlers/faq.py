"""Common questions answered by keyword (prices, refunds, timing, invoices, payment, honesty)."""

from __future__ import annotations

from flows import texts
from handlers.context import Ctx
from handlers.router import Router

router = Router("faq")


def _answer(text: str) -> str | None:
    return next((answer for words, answer in texts.FAQ if any(w in text for w in words)), None)


@router.when(lambda ctx: ctx.event.kind == "text" and _answer(ctx.event.text) is not None)
async def on_question(ctx: Ctx) -> None:
    """A question with a known keyword gets its answer."""
    ctx.say(_answer(ctx.event.text) or "")
