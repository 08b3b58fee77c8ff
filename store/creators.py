"""Creators: the invite code each gets on first asking, and what their poster was made from."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from store.db import upsert_insert
from store.models import Creator, utcnow

# No 0/O, 1/I/L: people read the code off a poster and type it.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
POSTER_MEDIA_LIFETIME = dt.timedelta(days=2, hours=12)  # temporary media lives 3 days at WeChat


def new_code(length: int = 6) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


async def get_or_create(session: AsyncSession, *, account: str, openid: str) -> Creator:
    """The person's creator record, with a unique invite code made the first time."""
    found = await session.get(Creator, (account, openid))
    if found is not None:
        return found
    dialect_insert = upsert_insert(session)
    for _ in range(8):  # 31^6 codes: a collision is rare, and retried with another
        # DO NOTHING on either key: the same person asking twice at once, or a code already taken.
        stmt = (
            dialect_insert(Creator)
            .values(account=account, openid=openid, code=new_code(), created_at=utcnow())
            .on_conflict_do_nothing()
        )
        await session.execute(stmt)
        found = await session.get(Creator, (account, openid), populate_existing=True)
        if found is not None:
            return found
    raise RuntimeError("could not find a free invite code")


def cached_poster(creator: Creator, key: str, now: dt.datetime) -> str | None:
    """The media id of the poster made from `key`, while WeChat still keeps it."""
    fresh = (
        creator.poster_uploaded_at is not None and now - creator.poster_uploaded_at < POSTER_MEDIA_LIFETIME
    )
    return creator.poster_media_id if fresh and creator.poster_key == key else None


async def remember_poster(
    session: AsyncSession,
    *,
    account: str,
    openid: str,
    qr_url: str,
    key: str,
    media_id: str,
    now: dt.datetime,
) -> None:
    """Keep the creator's QR URL and the poster just uploaded, to reuse both."""
    creator = await session.get(Creator, (account, openid))
    if creator is not None:
        creator.qr_url = qr_url
        creator.poster_key, creator.poster_media_id, creator.poster_uploaded_at = key, media_id, now
