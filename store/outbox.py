"""Writing messages to the outbox, inside the caller's transaction (the dispatcher lives in bot/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from store.db import upsert_insert
from store.models import OutboxMessage


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one person. `payload` follows the shape of WeChat's send APIs without `touser`:
    text {"content"}, image {"media_id"} or {"media_ref"}, news {"articles": [...]},
    template {"template_id", "url", "data"}."""

    channel: str
    recipient: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "recipient": self.recipient,
            "kind": self.kind,
            "payload": self.payload,
            "dedupe_key": self.dedupe_key,
        }


def text(recipient: str, content: str, *, dedupe_key: str | None = None) -> Outgoing:
    return Outgoing("mp", recipient, "text", {"content": content}, dedupe_key)


async def enqueue(session: AsyncSession, *messages: Outgoing) -> None:
    """Add messages to the caller's transaction; they are sent only if it commits.

    A message whose dedupe_key is already in the outbox is skipped, so the same notice caused by a
    resent notification (or a retried job) goes out once.
    """
    if not messages:
        return
    session.info["outbox"] = True  # the caller may wake the dispatcher after its commit (queued())
    dialect_insert = upsert_insert(session)
    stmt = dialect_insert(OutboxMessage).on_conflict_do_nothing(index_elements=["dedupe_key"])
    await session.execute(stmt, [{**m.row(), "status": "pending", "attempts": 0} for m in messages])


def queued(session: AsyncSession) -> bool:
    """Whether `enqueue` added messages in this session (then the dispatcher is worth waking)."""
    return bool(session.info.pop("outbox", False))
