"""First conversation: welcome, help, about, and what is left of messages that are not text."""

from __future__ import annotations

from flows import texts
from flows.flash import coupon_text
from handlers.context import Ctx
from handlers.router import Router
from store import coupons

router = Router("basic")
fallback = Router("fallback")  # included last: what nothing else wanted


@router.event("subscribe")
async def on_subscribe(ctx: Ctx) -> None:
    """A new (or returning) follower gets the welcome."""
    ctx.subscribed = True
    ctx.say("{welcome}", welcome=await welcome(ctx))


async def welcome(ctx: Ctx) -> str:
    """The welcome of a subscribe event (every QR scene's too): a new follower also gets the first-order
    coupon when CHATORDER_NEW_FOLLOWER_COUPON_FEN is set (once per person: coupons are one per source)."""
    if ctx.known_user:
        return ctx.fmt(texts.WELCOME_BACK)
    text = ctx.fmt(texts.WELCOME)
    s = ctx.settings
    if s.new_follower_coupon_fen <= 0:
        return text
    spec = {"off_fen": s.new_follower_coupon_fen, "min_fen": s.new_follower_coupon_min_fen}
    async with ctx.transaction() as session:
        given = await coupons.issue(
            session,
            account=ctx.event.account,
            openid=ctx.openid,
            source="rule:new_follower",
            title=texts.COUPON_NEW_FOLLOWER_TITLE,
            spec={**spec, "days": s.new_follower_coupon_days},
            now=ctx.now(),
        )
    if given is None:  # followed before (and was forgotten): one coupon per person
        return text
    return (
        text
        + "\n\n"
        + texts.COUPON_NEW_FOLLOWER.format(what=coupon_text(spec), days=s.new_follower_coupon_days)
    )


@router.event("unsubscribe")
async def on_unsubscribe(ctx: Ctx) -> None:
    """Remember the unfollow; WeChat delivers no reply to it."""
    ctx.subscribed = False


def _asks_help(ctx: Ctx) -> bool:
    # With on_help's words: any of them asks for help. Of the empty command, only a lone question
    # mark does; other punctuation (。。。, ！！) normalises to it too but asks for nothing, and gets
    # the short answer of handlers/understand.
    return ctx.command != "" or (ctx.event.kind == "text" and ctx.event.text.strip() in ("?", "？"))


@router.said(("帮助", "菜单", "help", "menu", ""), when=_asks_help)
async def on_help(ctx: Ctx) -> None:
    """Everything a person can say."""
    ctx.say(texts.HELP)


@router.text("你好", "您好", "hi", "hello")
async def on_greeting(ctx: Ctx) -> None:
    """A greeting gets a greeting and one example, not the whole help (nobody asked for it)."""
    ctx.say(texts.GREETING)


@router.text("关于", "关于我们", "介绍")
async def on_about(ctx: Ctx) -> None:
    """What the account sells, and what it never sells."""
    ctx.say(texts.ABOUT)


@router.text("人工", "客服", "人工客服", "转人工")
async def on_human(ctx: Ctx) -> None:
    """Asking for a person."""
    ctx.say(texts.HUMAN)


@fallback.message("image")
async def on_image(ctx: Ctx) -> None:
    """An image outside any form."""
    ctx.say(texts.IMAGE_RECEIVED)


@fallback.message("voice")
async def on_voice(ctx: Ctx) -> None:
    """Voice is not understood yet."""
    ctx.say(texts.VOICE_UNSUPPORTED)


@router.event("view", "location", "templatesendjobfinish", "scan")
async def on_silent_event(ctx: Ctx) -> None:
    """Events that need no answer."""


@fallback.message("video", "shortvideo", "location", "link")
async def on_other(ctx: Ctx) -> None:
    """Messages we cannot use yet."""
    ctx.say(texts.OTHER_MESSAGE)


@fallback.event("click")
async def on_unknown_click(ctx: Ctx) -> None:
    """A menu button from an older menu: show what works now."""
    ctx.say(texts.HELP)
