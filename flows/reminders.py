"""One reminder for a form left half-filled — an order, or materials sent back (once, through the outbox)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.locks import PersonLocks
from flows.engine import Form, OrderForm
from flows.review import ResubmitForm
from store.models import Conversation
from store.outbox import enqueue, text
from store.turns import FlowState

FORMS: dict[str, type[Form]] = {OrderForm.name: OrderForm, ResubmitForm.name: ResubmitForm}
IDLE = dt.timedelta(minutes=30)
# Forms idle for longer than this are not reminded any more (the person has moved on).
HORIZON = dt.timedelta(days=1)


async def remind_abandoned_forms(
    sessionmaker: async_sessionmaker[AsyncSession], locks: PersonLocks, now: dt.datetime
) -> int:
    """Remind everyone whose order form has been idle for IDLE; returns how many were reminded."""
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Conversation.account, Conversation.openid).where(
                    Conversation.flow.in_(list(FORMS)),
                    Conversation.updated_at < now - IDLE,
                    Conversation.updated_at > now - HORIZON,
                )
            )
        ).all()
    reminded = 0
    for account, openid in rows:
        async with locks.hold(account, openid):  # the person's own messages wait meanwhile
            reminded += await _remind(sessionmaker, account, openid, now)
    return reminded


async def _remind(
    sessionmaker: async_sessionmaker[AsyncSession], account: str, openid: str, now: dt.datetime
) -> int:
    async with sessionmaker.begin() as session:
        conv = await session.get(Conversation, (account, openid))
        if conv is None or conv.flow not in FORMS or conv.updated_at >= now - IDLE:
            return 0
        state = FlowState(conv.flow, conv.step, dict(conv.data))
        form = FORMS[conv.flow](state)
        if form.data.get("reminded"):
            return 0
        form.data["reminded"] = True
        changed = await session.execute(
            update(Conversation)
            .where(
                Conversation.account == account,
                Conversation.openid == openid,
                Conversation.version == conv.version,
            )
            .values(data=state.data, version=conv.version + 1)
        )
        if changed.rowcount != 1:  # type: ignore[attr-defined]
            return 0
        await enqueue(
            session,
            text(openid, form.reminder(), dedupe_key=f"form-reminder:{account}:{openid}:{conv.version}"),
        )
    return 1
