"""邀请: a creator's personal poster with their invite code and a permanent parametric QR code."""

from __future__ import annotations

import asyncio
import logging

from flows import texts
from handlers.context import Ctx, UserFacingError
from handlers.router import Router
from posters.render import load_template, render
from store import creators

log = logging.getLogger(__name__)
router = Router("invite")

TEMPLATE = "default"


@router.text("邀请", "邀请好友", "邀请海报", "推广海报", "海报")
async def on_invite(ctx: Ctx) -> None:
    """The poster: drawn once per creator, template and QR, then reused while WeChat keeps the image."""
    api = ctx.services.media
    if api is None:
        raise UserFacingError(texts.INVITE_UNAVAILABLE)
    # Short transactions only: no database write lock may be held across WeChat API calls.
    async with ctx.transaction() as session:
        creator = await creators.get_or_create(session, account=ctx.event.account, openid=ctx.openid)
    code, qr_url = creator.code, creator.qr_url
    try:
        if qr_url is None:
            qr_url = str((await api.create_qrcode(f"inv_{code}", permanent=True))["url"])
        key = f"{TEMPLATE}:{qr_url}"
        media_id = creators.cached_poster(creator, key, ctx.now())
        if media_id is None:
            png = await asyncio.to_thread(
                render,
                load_template(TEMPLATE),
                qr_url=qr_url,
                nickname="",
                code=code,
                font_path=ctx.settings.font_path,
            )
            media_id = await api.upload_media("image", f"invite-{code}.png", png)
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
    except Exception:
        log.warning("invite poster failed", exc_info=True, extra={"openid": ctx.openid})
        raise UserFacingError(texts.INVITE_UNAVAILABLE) from None
    ctx.image(media_id)
    ctx.say(texts.INVITE_POSTER, code=code)
