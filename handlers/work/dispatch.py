"""One callback from /wechat/work: texts are commands (or answers), card buttons act once."""

from __future__ import annotations

import datetime as dt
import difflib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts_staff as ts
from handlers.context import Services
from handlers.events import WorkEvent
from handlers.work import build_router
from handlers.work.clicks import answer, on_click
from handlers.work.turn import Turn, fold, guarded, pair
from settings import Settings
from store import staff
from store.models import utcnow

log = logging.getLogger(__name__)

WorkHandler = Callable[[WorkEvent], Awaitable[None]]
REASON_TTL = dt.timedelta(minutes=10)  # the next text within this is the reason asked for
ALIASES = {"查看对话": "对话", "help": "帮助", "菜单": "帮助", "?": "帮助", "查询": "查单", "今天": "今日"}
ROUTER = build_router()


def build(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], services: Services
) -> WorkHandler:
    """The handler /wechat/work calls once per distinct callback."""

    async def handle(event: WorkEvent) -> None:
        turn = Turn(event, settings, sessionmaker, services, utcnow())
        try:
            await dispatch(turn)
        except Exception:
            # Staff never see a traceback: an apology, and the details in the log.
            log.exception("work chat handler failed", extra={"userid": event.userid, "msg_key": event.key})
            turn.out.clear()
            turn.say(ts.SORRY)
        await turn.flush()
        for job in turn.after:
            try:
                await job()
            except Exception:
                log.exception("work chat follow-up failed", extra={"userid": event.userid})

    return handle


async def dispatch(turn: Turn) -> None:
    """Texts are commands or answers; card buttons act once; other events need no answer."""
    if turn.event.kind == "text":
        await on_text(turn)
    elif turn.event.kind == "event" and turn.event.name == "template_card_event":
        await on_click(turn)


def split_command(text: str) -> tuple[str, str]:
    """'通过 20261122-0042' → ('通过', '20261122-0042'); also when the number sticks to the word.
    What follows the command keeps its exact characters: reasons and replies reach customers."""
    head, rest = pair(text)
    head = fold(head)
    word = ALIASES.get(head, head)
    if word not in ROUTER.words:
        for known in sorted([*ROUTER.words, *ALIASES], key=len, reverse=True):
            if head.startswith(known) and len(head) > len(known):
                return ALIASES.get(known, known), f"{head[len(known) :]} {rest}".strip()
    return word, rest


async def on_text(turn: Turn) -> None:
    """A command, or the answer to the question the desk asked this member."""
    text = turn.event.text.strip()
    async with turn.read() as session:
        turn.member = await staff.get_member(session, turn.userid)
        question = None
        if turn.member is not None:
            question = await staff.pending_question(session, account=turn.account, userid=turn.userid)
    if turn.member is None:
        turn.say(ts.NOT_STAFF)
        return
    turn.word, turn.rest = split_command(text)
    # Only a command typed as its own word interrupts a question: "回复太慢" is a reason, not 回复.
    first = fold(pair(text)[0])
    if question is not None and ALIASES.get(first, first) not in ROUTER.words and _fresh(question, turn.now):
        await guarded(turn, lambda: answer(turn, question, text))
        return
    route = ROUTER.resolve(turn)  # the command's permission is checked first (StaffRouter.command)
    if route is None:
        turn.send(_unknown(turn.word, text))
        return
    await guarded(turn, lambda: route.handler(turn))


def _unknown(word: str, text: str) -> str:
    """A typo gets the usage line of the command it resembles; anything else the command list."""
    close = difflib.get_close_matches(word, ROUTER.words, n=1, cutoff=0.5)
    if close and word:
        return ts.DID_YOU_MEAN.format(word=word, usage=ts.USAGE[close[0]])
    return ts.UNKNOWN.format(text=text[:20])


def _fresh(question: dict[str, Any], now: dt.datetime) -> bool:
    try:
        return now - dt.datetime.fromisoformat(str(question.get("at"))) <= REASON_TTL
    except ValueError:
        return False
