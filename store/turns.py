"""What one inbound message reads and writes: the dedupe record, the person, the conversation state.

Reads happen in one round trip; writes are returned as data for the group writer, so a turn's
changes land atomically and share their commit with other people's turns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, Update, bindparam, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from store.models import Conversation, InboundMessage, OutboxMessage, User
from store.outbox import Outgoing
from store.writer import Write


@dataclass(slots=True)
class FlowState:
    """The step a person is on. Empty flow = not in a conversation flow."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> FlowState:
        return FlowState(self.flow, self.step, dict(self.data))


@dataclass(slots=True)
class Snapshot:
    seen: bool  # this exact message was already handled (a WeChat retry)
    reply_xml: str | None  # the answer given then, to give again
    known_user: bool
    subscribed: bool
    state: FlowState


async def load(conn: AsyncConnection, *, account: str, openid: str, msg_key: str) -> Snapshot:
    """Everything a turn needs to start, in one query."""
    inbound = (
        select(literal(1).label("seen"), InboundMessage.reply_xml)
        .where(
            InboundMessage.account == account,
            InboundMessage.sender == openid,
            InboundMessage.msg_key == msg_key,
        )
        .subquery()
    )
    user = select(User.subscribed).where(User.account == account, User.openid == openid).subquery()
    conv = (
        select(Conversation.flow, Conversation.step, Conversation.data)
        .where(Conversation.account == account, Conversation.openid == openid)
        .subquery()
    )
    stmt = select(
        select(inbound.c.seen).scalar_subquery(),
        select(inbound.c.reply_xml).scalar_subquery(),
        select(user.c.subscribed).scalar_subquery(),
        select(conv.c.flow).scalar_subquery(),
        select(conv.c.step).scalar_subquery(),
        select(conv.c.data).scalar_subquery(),
    )
    row = (await conn.execute(stmt)).one()
    data = Conversation.__table__.c.data.type.result_processor(conn.dialect, None)
    state_data = (data(row[5]) if data and isinstance(row[5], str) else row[5]) or {}
    return Snapshot(
        seen=row[0] is not None,
        reply_xml=row[1],
        known_user=row[2] is not None,
        subscribed=bool(row[2]) if row[2] is not None else True,
        state=FlowState(row[3], row[4], state_data),
    )


class TurnStatements:
    """Statements built once per dialect and reused, so the group writer can batch them."""

    def __init__(self, dialect: str) -> None:
        dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        inbound = dialect_insert(InboundMessage).on_conflict_do_nothing(
            index_elements=["account", "sender", "msg_key"]
        )
        user = dialect_insert(User)
        user = user.on_conflict_do_update(
            index_elements=["account", "openid"],
            set_={
                "last_seen_at": user.excluded.last_seen_at,
                "last_inbound_at": user.excluded.last_inbound_at,
                "subscribed": user.excluded.subscribed,
            },
        )
        conv = dialect_insert(Conversation)
        conv = conv.on_conflict_do_update(
            index_elements=["account", "openid"],
            set_={
                "flow": conv.excluded.flow,
                "step": conv.excluded.step,
                "data": conv.excluded.data,
                "version": Conversation.version + 1,
                "updated_at": conv.excluded.updated_at,
            },
        )
        self.inbound: Insert = inbound
        self.user: Insert = user
        self.conversation: Insert = conv
        self.outbox: Insert = insert(OutboxMessage)
        self.forget_reply: Update = (
            update(InboundMessage)
            .where(
                InboundMessage.account == bindparam("b_account"),
                InboundMessage.sender == bindparam("b_sender"),
                InboundMessage.msg_key == bindparam("b_msg_key"),
            )
            .values(reply_xml=None)
        )


@dataclass(slots=True)
class TurnRecord:
    """What a finished turn persists."""

    account: str
    openid: str
    msg_key: str
    msg_type: str
    content: str | None
    at: dt.datetime
    subscribed: bool
    reply_xml: str | None = None
    state: FlowState | None = None  # None = unchanged
    outbox: list[Outgoing] = field(default_factory=list)


def writes(stmts: TurnStatements, rec: TurnRecord) -> list[Write]:
    """The rows of one turn, for the group writer."""
    out: list[Write] = [
        (
            stmts.inbound,
            {
                "account": rec.account,
                "sender": rec.openid,
                "msg_key": rec.msg_key,
                "msg_type": rec.msg_type,
                "content": rec.content,
                "received_at": rec.at,
                "reply_xml": rec.reply_xml,
            },
        ),
        (
            stmts.user,
            {
                "account": rec.account,
                "openid": rec.openid,
                "first_seen_at": rec.at,
                "last_seen_at": rec.at,
                "last_inbound_at": rec.at,
                "subscribed": rec.subscribed,
            },
        ),
    ]
    if rec.state is not None:
        s = rec.state
        out.append(
            (
                stmts.conversation,
                {
                    "account": rec.account,
                    "openid": rec.openid,
                    "flow": s.flow,
                    "step": s.step,
                    "data": s.data,
                    "version": 0,
                    "updated_at": rec.at,
                },
            )
        )
    out.extend((stmts.outbox, {**m.row(), "status": "pending", "attempts": 0}) for m in rec.outbox)
    return out


def reply_went_by_api(stmts: TurnStatements, rec: TurnRecord, messages: list[Outgoing]) -> list[Write]:
    """The passive reply came too late: send it by API, and let a retry get `success`, not a copy."""
    key = {"b_account": rec.account, "b_sender": rec.openid, "b_msg_key": rec.msg_key}
    out: list[Write] = [(stmts.forget_reply, key)]
    out.extend((stmts.outbox, {**m.row(), "status": "pending", "attempts": 0}) for m in messages)
    return out
