"""From follow to help, over real HTTP in safe mode, with the MP simulator standing in for Tencent."""

from __future__ import annotations

from flows import texts
from handlers.menu import CLICK_COMMANDS
from tests.wechat import WeChat


def brand(text: str) -> str:
    return text.format(brand="星推")


async def test_subscribe_then_help(chat: WeChat) -> None:
    welcome = await chat.event("o_alice", "subscribe")
    assert welcome.text == brand(texts.WELCOME)
    help_ = await chat.say("o_alice", "帮助")
    assert help_.text == brand(texts.HELP)


async def test_a_lone_emoji_gets_one_friendly_line_not_the_help(chat: WeChat) -> None:
    answer = await chat.say("o_bob", "🙂")
    assert answer.text == texts.NOT_UNDERSTOOD_SHORT


async def test_help_matches_loosely(chat: WeChat) -> None:
    for said in ("帮助！", " 菜单 ", "HELP"):
        assert (await chat.say("o_carol", said)).text == brand(texts.HELP)


async def test_menu_click_routes_like_the_text(chat: WeChat) -> None:
    key = next(k for k, command in CLICK_COMMANDS.items() if command == "我的订单")
    assert (await chat.event("o_dan", "CLICK", key)).text == texts.NO_ORDERS


def test_the_menu_fits_wechat_limits() -> None:
    """WeChat refuses a menu with more than 3 buttons, 5 sub-buttons each, or long labels."""
    from handlers.menu import menu_json

    buttons = menu_json()["button"]
    assert len(buttons) <= 3
    for b in buttons:
        assert len(b["name"]) <= 4 and len(b.get("sub_button", [])) <= 5
        assert all(len(s["name"]) <= 8 for s in b.get("sub_button", []))


async def test_returning_follower_is_welcomed_back(chat: WeChat) -> None:
    # Distinct CreateTimes: an event's dedupe key is (sender, CreateTime, event, key).
    await chat.event("o_erin", "subscribe", at=1_700_000_000)
    await chat.event("o_erin", "unsubscribe", at=1_700_000_060)
    again = await chat.event("o_erin", "subscribe", at=1_700_000_120)
    assert again.text == brand(texts.WELCOME_BACK)
