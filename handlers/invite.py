"""邀请: a creator's personal poster — their name, avatar, invite code and permanent parametric QR code.

A poster is drawn once per creator, template, QR URL, name and avatar, and reused while WeChat keeps
the uploaded image (3 days); a change of any of them draws a new one. WeChat's profile (user/info) is
asked when a poster has to be drawn and the last one is more than a day old, or it never was: at most
once a day. Since 2021 WeChat gives almost no one's nickname, so 「海报昵称 <名字>」 lets the creator
choose the name printed on the poster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass

from flows import texts
from flows import texts as tc
from handlers.context import Ctx, MediaApi, UserFacingError
from handlers.router import Router
from posters.render import load_template, render
from store import creators, profiles
from store.models import Creator
from store.profiles import Profile

log = logging.getLogger(__name__)
router = Router("invite")

PROFILE_REFRESH = dt.timedelta(days=1)
NAME_MAX = 12
_NAME_COMMAND = re.compile(r"^\s*海报昵称[\s:：]*")


@dataclass(frozen=True, slots=True)
class Poster:
    media_id: str
    code: str
    named: bool  # False: the template's fallback name is printed instead of the creator's


@router.text("邀请", "邀请好友", "邀请海报", "推广海报", "海报")
async def on_invite(ctx: Ctx) -> None:
    """The creator's poster, with a hint to name it when WeChat gave no nickname."""
    poster = await make_poster(ctx)
    hint = "" if poster.named else "\n\n" + tc.POSTER_NAME_HINT
    ctx.say(texts.INVITE_POSTER + hint, code=poster.code)  # the caption points down at the poster: first
    ctx.image(poster.media_id)


@router.prefix("海报昵称")
async def on_poster_name(ctx: Ctx) -> None:
    """海报昵称 <名字>: the name printed on the creator's poster, then the poster redrawn with it."""
    typed = _NAME_COMMAND.sub("", ctx.event.text or ctx.argument)
    if not typed.strip():
        await _show_name(ctx)
        return
    name = parse_poster_name(typed)
    if name is None:
        raise UserFacingError(tc.POSTER_NAME_BAD)
    async with ctx.transaction() as session:
        await profiles.set_nickname(session, account=ctx.event.account, openid=ctx.openid, nickname=name)
    try:
        poster = await make_poster(ctx)
    except UserFacingError:  # the name is kept: the next 邀请 draws it
        ctx.say(tc.POSTER_NAME_SAVED, name=name)
        return
    ctx.image(poster.media_id)
    ctx.say(tc.POSTER_NAME_SET, name=name)


async def _show_name(ctx: Ctx) -> None:
    async with ctx.read() as session:
        profile = await profiles.get_profile(session, account=ctx.event.account, openid=ctx.openid)
    if profile.nickname:
        ctx.say(tc.POSTER_NAME_CURRENT, name=profile.nickname)
    else:
        ctx.say(tc.POSTER_NAME_HOW)


def parse_poster_name(text: str) -> str | None:
    """A name for the poster: 1–12 characters with at least one letter or digit, spaces squeezed."""
    name = " ".join(unicodedata.normalize("NFC", text).split())
    if not 1 <= len(name) <= NAME_MAX or not all(ch.isprintable() for ch in name):
        return None
    if not any(unicodedata.category(ch)[0] in "LN" for ch in name):
        return None  # only emoji or punctuation: the poster would show nothing readable
    return name


def poster_key(template: str, qr_url: str, profile: Profile) -> str:
    """What a poster was drawn from: the template by name, the rest as one digest (the column is short).

    The avatar counts by its URL: WeChat gives a new headimgurl when the picture changes."""
    parts = (qr_url, profile.nickname, profile.avatar_url or "")
    return f"{template}:{hashlib.sha256(chr(31).join(parts).encode()).hexdigest()[:32]}"


async def make_poster(ctx: Ctx) -> Poster:
    """The creator's poster as uploaded media: the cached one if nothing changed, else a new one."""
    api = ctx.services.media
    if api is None:
        raise UserFacingError(texts.INVITE_UNAVAILABLE)
    # Short transactions only: no database write lock may be held across WeChat API calls.
    async with ctx.transaction() as session:
        creator = await creators.get_or_create(session, account=ctx.event.account, openid=ctx.openid)
        profile = await profiles.get_profile(session, account=ctx.event.account, openid=ctx.openid)
    try:
        qr_url = creator.qr_url or str((await api.create_qrcode(f"inv_{creator.code}"))["url"])
        template = ctx.settings.poster_template
        media_id = creators.cached_poster(creator, poster_key(template, qr_url, profile), ctx.now())
        if media_id is None:
            if _profile_due(creator, profile, ctx.now()):
                profile = await _refresh_profile(ctx, api, profile)
            key = poster_key(template, qr_url, profile)
            media_id = creators.cached_poster(creator, key, ctx.now())
            media_id = media_id or await _draw(ctx, api, creator, qr_url, profile, key)
    except Exception:
        log.warning("invite poster failed", exc_info=True, extra={"openid": ctx.openid})
        raise UserFacingError(texts.INVITE_UNAVAILABLE) from None
    return Poster(media_id, creator.code, named=bool(profile.nickname))


def _profile_due(creator: Creator, profile: Profile, now: dt.datetime) -> bool:
    # Asked only on the way to drawing a poster, and each drawing is remembered: once a day at most.
    last = creator.poster_uploaded_at
    return not profile.asked or last is None or now - last >= PROFILE_REFRESH


async def _refresh_profile(ctx: Ctx, api: MediaApi, known: Profile) -> Profile:
    try:
        info = await api.user_info(ctx.openid)
    except Exception:  # a poster with what we know beats no poster
        log.warning("user/info failed; drawing with the stored profile", exc_info=True)
        return known
    async with ctx.transaction() as session:
        return await profiles.remember_profile(
            session,
            account=ctx.event.account,
            openid=ctx.openid,
            nickname=str(info.get("nickname") or ""),
            avatar_url=str(info.get("headimgurl") or ""),
        )


async def _draw(ctx: Ctx, api: MediaApi, creator: Creator, qr_url: str, profile: Profile, key: str) -> str:
    avatar = await api.fetch_avatar(profile.avatar_url) if profile.avatar_url else None
    png = await asyncio.to_thread(
        _render,
        ctx.settings.poster_template,
        qr_url,
        profile.nickname,
        creator.code,
        avatar,
        ctx.settings.font_path,
    )
    media_id = await api.upload_media("image", f"invite-{creator.code}.png", png)
    async with ctx.transaction() as session:
        await creators.remember_poster(
            session,
            account=ctx.event.account,
            openid=ctx.openid,
            qr_url=qr_url,
            key=key,
            media_id=media_id,
            now=ctx.now(),
        )
    return media_id


def _render(
    template: str, qr_url: str, nickname: str, code: str, avatar: bytes | None, font_path: str | None
) -> bytes:
    # In a worker thread: reading the template and drawing are both blocking work.
    spec = load_template(template)
    return render(spec, qr_url=qr_url, nickname=nickname, code=code, avatar=avatar, font_path=font_path)
