"""Reading a customer's free text: its context in the conversation, its meaning, and the catalog's
vocabulary it is read with."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.engine import Form, OrderForm
from flows.relay import relay_state
from flows.review import ResubmitForm
from flows.understand import THRESHOLD, Vocabulary, understand
from flows.understand.load import load_vocabulary
from flows.understand.types import Context, Intent, Understanding
from handlers import form, resubmit
from handlers.context import Ctx
from handlers.router import Handler
from store.models import CatalogWrites, Service

log = logging.getLogger(__name__)


# 「我要找人工」「帮我叫个客服」 ask for a person; 「人工智能科技」「客服小王」 may be a brand or a name.
ASKS_PERSON = re.compile(r"(找|转|叫|要|联系|接|换|请|让).{0,3}(人工|客服|真人)|投诉")
_QUESTION_MARKS = re.compile(
    r"[?？吗呢么嘛]$|怎么|怎样|咋|如何|干嘛|多少|什么|啥|几时|到哪|能不能|可不可以|可以吗|是否|哪里|多久|几天"
)


def context_of(ctx: Ctx) -> Context:
    """What the conversation already holds, for 便宜一点的 / 第二个 / 就要这个."""
    data = ctx.state.data
    viewing = data.get("viewing")
    return Context(
        has_list=list_kind(ctx) in ("catalog", "orders"),  # 还有吗 / 第二个 page and pick either
        viewing=int(viewing) if viewing is not None else None,
        last_order=data.get("last_order"),
        form_step=ctx.state.step if open_form(ctx) is not None else None,
        misunderstood=int(data.get("misunderstood", 0)),
    )


def list_kind(ctx: Ctx) -> str | None:
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


def open_form(ctx: Ctx) -> tuple[Form, Handler] | None:
    """The form being filled in and the handler of its answers: materials being redone first (they
    are answered before a talk with staff), then the order form (unless talking to staff)."""
    if ResubmitForm.active(ctx.state):
        return ResubmitForm(ctx.state), resubmit.on_answer
    if OrderForm.active(ctx.state) and relay_state(ctx.state, ctx.now()) is None:
        return OrderForm(ctx.state), form.on_answer
    return None


def looks_like_question(text: str) -> bool:
    """A brand or a selling point is rarely phrased as a question; a question usually is."""
    return _QUESTION_MARKS.search(text.strip()) is not None
