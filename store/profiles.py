"""What a person is called and looks like: the nickname and avatar URL on their User row.

WeChat's user/info has given almost no one's nickname or avatar since December 2021, so a nickname
may also be one the person chose (海报昵称). `avatar_url` is None until WeChat was asked, "" when it
had none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.db import upsert_insert
from store.models import User

NICKNAME_MAX = 64  # the column's length


@dataclass(frozen=True, slots=True)
class Profile:
    nickname: str  # "" when unknown
    avatar_url: str | None  # None: WeChat never asked; "": WeChat gave none

    @property
    def asked(self) -> bool:
        return self.avatar_url is not None


async def get_profile(session: AsyncSession, *, account: str, openid: str) -> Profile:
    """The person's nickname and avatar URL as we know them (nothing yet for a newcomer)."""
    row = (
        await session.execute(
            select(User.nickname, User.avatar_url).where(User.account == account, User.openid == openid)
        )
    ).first()
    return Profile(row.nickname or "", row.avatar_url) if row else Profile("", None)


async def remember_profile(
    session: AsyncSession, *, account: str, openid: str, nickname: str, avatar_url: str
) -> Profile:
    """WeChat's answer: its nickname fills an empty one (a name the person chose is kept), its avatar
    URL replaces the old one ("" when it gave none)."""
    user = await _user(session, account, openid)
    if nickname and not user.nickname:
        user.nickname = nickname[:NICKNAME_MAX]
    user.avatar_url = avatar_url[:512] if avatar_url.startswith(("https://", "http://")) else ""
    return Profile(user.nickname or "", user.avatar_url)


async def set_nickname(session: AsyncSession, *, account: str, openid: str, nickname: str) -> Profile:
    """The name the person chose to be shown by (on their poster, to their team)."""
    user = await _user(session, account, openid)
    user.nickname = nickname[:NICKNAME_MAX]
    return Profile(user.nickname, user.avatar_url)


async def _user(session: AsyncSession, account: str, openid: str) -> User:
    # The turn writes a newcomer's row only after the handler: make it here if it is not there yet.
    dialect_insert = upsert_insert(session)
    await session.execute(
        dialect_insert(User)
        .values(account=account, openid=openid)
        .on_conflict_do_nothing(index_elements=["account", "openid"])
    )
    user = await session.scalar(select(User).where(User.account == account, User.openid == openid))
    assert user is not None
    return user
