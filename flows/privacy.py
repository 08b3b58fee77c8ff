"""Personal data: the signed download of everything held about a person (我的数据), erasure (注销)
with its confirmation window, and the retention job.

Money rule of 注销 (README "Personal data"): it waits while an order is being worked on or refunded
and while a withdrawal is under way; money the person still has with us (balance, available or
pending commission) is shown with what to do about it before they confirm, and confirming gives
it up — the amounts stay in the anonymised ledger, so the books still add up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts
from flows.format import yuan
from settings import Settings
from store import privacy
from store.db import upsert_insert
from store.models import User

EXPORT_LINK_TTL = dt.timedelta(hours=24)
ERASE_CONFIRM_WITHIN = dt.timedelta(minutes=5)


def _key(settings: Settings) -> bytes:
    """Derived from the app secrets (a label of its own), so it is never configured or logged."""
    secrets = settings.wecom_secret.get_secret_value() + "\n" + settings.wechat_app_secret.get_secret_value()
    if not secrets.strip():
        return b""
    return hmac.new(b"chatorder:personal-data:v1", secrets.encode(), hashlib.sha256).digest()


def _signature(key: bytes, user: User, exp: int) -> str:
    # The openid is signed too: a link stays bound to that person even if the row id is reused.
    message = f"mydata:{user.id}:{user.account}:{user.openid}:{exp}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def export_link(settings: Settings, user: User, now: dt.datetime) -> str | None:
    """The download link of the person's data, valid EXPORT_LINK_TTL; None without a secret to sign it."""
    key = _key(settings)
    if not key:
        return None
    exp = int((now + EXPORT_LINK_TTL).timestamp())
    return f"{settings.public_url}/files/mydata/{user.id}?exp={exp}&sig={_signature(key, user, exp)}"


def export_link_is_valid(settings: Settings, user: User, exp: str, sig: str, now: dt.datetime) -> bool:
    """The signature matches this person and the link has not expired."""
    key = _key(settings)
    if not key or not exp.isdigit() or int(exp) < now.timestamp():
        return False
    return hmac.compare_digest(_signature(key, user, int(exp)), sig)


async def person(session: AsyncSession, *, account: str, openid: str) -> User:
    """The person's User row (made now for someone whose first turn is not committed yet)."""
    dialect_insert = upsert_insert(session)
    await session.execute(
        dialect_insert(User)
        .values(account=account, openid=openid)
        .on_conflict_do_nothing(index_elements=["account", "openid"])
    )
    found = await session.scalar(select(User).where(User.account == account, User.openid == openid))
    if found is None:  # pragma: no cover - the insert above makes it
        raise LookupError("user row missing")
    return found


def money_warning(standing: privacy.Standing) -> str:
    """What the person would give up by confirming 注销 ("" when nothing)."""
    parts = [
        template.format(amount=yuan(fen))
        for template, fen in (
            (texts.ERASE_MONEY_BALANCE, standing.balance_fen),
            (texts.ERASE_MONEY_AVAILABLE, standing.available_fen),
            (texts.ERASE_MONEY_PENDING, standing.pending_fen),
        )
        if fen > 0
    ]
    if not parts:
        return ""
    return texts.ERASE_MONEY.format(total=yuan(standing.money_fen), parts="、".join(parts))


def blocked_reason(standing: privacy.Standing) -> tuple[str, dict[str, str]] | None:
    """Why 注销 must wait (the text and its values), or None."""
    if standing.in_flight:
        return texts.ERASE_BLOCKED_ORDERS, {"numbers": "、".join(standing.in_flight)}
    if standing.withdrawing_fen > 0:
        return texts.ERASE_BLOCKED_WITHDRAWAL, {"amount": yuan(standing.withdrawing_fen)}
    return None


async def purge_retained(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: dt.datetime
) -> int:
    """Job: message bodies and pictures older than CHATORDER_RETENTION_DAYS are purged."""
    async with sessionmaker.begin() as session:
        return await privacy.purge_before(session, cutoff=now - dt.timedelta(days=settings.retention_days))
