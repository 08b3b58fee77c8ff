"""The custom menu as data: each click button stands for a text command, so both route the same way."""

from __future__ import annotations

from typing import Any

from flows import texts

# (label, click key, the command it stands for); later capabilities add their buttons here.
BUTTONS: list[tuple[str, str, str]] = [
    (texts.MENU_BROWSE, "MENU_BROWSE", "分类"),
    (texts.MENU_ORDERS, "MENU_ORDERS", "我的订单"),
]
MORE: list[tuple[str, str, str]] = [
    (texts.MENU_CART, "MENU_CART", "购物车"),
    (texts.MENU_BALANCE, "MENU_BALANCE", "余额"),
    (texts.MENU_INVITE, "MENU_INVITE", "邀请"),
    (texts.MENU_HELP, "MENU_HELP", "帮助"),
    (texts.MENU_HUMAN, "MENU_HUMAN", "人工"),
]

CLICK_COMMANDS: dict[str, str] = {key: command for _, key, command in BUTTONS + MORE}


def menu_json() -> dict[str, Any]:
    """The body of menu/create: top-level buttons plus a 更多 sub-menu (WeChat allows 3 × 5)."""
    buttons: list[dict[str, Any]] = [{"type": "click", "name": n, "key": k} for n, k, _ in BUTTONS]
    buttons.append(
        {"name": texts.MENU_MORE, "sub_button": [{"type": "click", "name": n, "key": k} for n, k, _ in MORE]}
    )
    return {"button": buttons[:3]}
