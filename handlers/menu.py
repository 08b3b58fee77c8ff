"""The custom menu as data: each click button stands for a text command, so both route the same way."""

from __future__ import annotations

from typing import Any

from flows import texts

Button = tuple[str, str, str]  # (label, click key, the command it stands for)

# WeChat allows 3 top-level buttons with up to 5 sub-buttons each.
BROWSE: Button = (texts.MENU_BROWSE, "MENU_BROWSE", "分类")
MINE: list[Button] = [
    (texts.MENU_ORDERS, "MENU_ORDERS", "我的订单"),
    (texts.MENU_CART, "MENU_CART", "购物车"),
    (texts.MENU_BALANCE, "MENU_BALANCE", "余额"),
    (texts.MENU_EARNINGS, "MENU_EARNINGS", "收益"),
    (texts.MENU_TEAM, "MENU_TEAM", "团队"),
]
MORE: list[Button] = [
    (texts.MENU_FLASH, "MENU_FLASH", "秒杀"),
    (texts.MENU_INVITE, "MENU_INVITE", "邀请"),
    (texts.MENU_HELP, "MENU_HELP", "帮助"),
    (texts.MENU_HUMAN, "MENU_HUMAN", "人工"),
]

CLICK_COMMANDS: dict[str, str] = {key: command for _, key, command in [BROWSE, *MINE, *MORE]}


def _sub_menu(name: str, buttons: list[Button]) -> dict[str, Any]:
    return {"name": name, "sub_button": [{"type": "click", "name": n, "key": k} for n, k, _ in buttons]}


def menu_json() -> dict[str, Any]:
    """The body of menu/create: 找服务, then 我的 and 更多 sub-menus."""
    label, key, _ = BROWSE
    return {
        "button": [
            {"type": "click", "name": label, "key": key},
            _sub_menu(texts.MENU_MINE, MINE),
            _sub_menu(texts.MENU_MORE, MORE),
        ]
    }
