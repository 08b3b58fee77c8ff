"""Staff in WeCom work chat: typed commands and card buttons, for registered members with the right role.

A text is a command (「通过 20261122-0042」) or the answer to the one question the desk asked (the
reason after 驳回 on a card). A card click acts once: the first click settles every card about its
order (or withdrawal), later clicks are told who did what and their card is updated. Each change runs
in one transaction with its audit entry and the messages it causes; the outbox is woken after commit.

Commands: one StaffRouter per module, included here. `dispatch` runs a callback; `turn` is the staff
context (and the one error path); `cards` the card helpers buttons and commands share; `clicks` the
buttons and the answers to the question a button asked.
"""

from __future__ import annotations

from handlers.work import commissions, flash, money, orders, people, replies, report, results
from handlers.work.turn import StaffRouter


def build_router() -> StaffRouter:
    """Every staff command, each with the permission it needs (a word names one command)."""
    root = StaffRouter("work")
    root.include(
        report.router,  # 帮助 · 待办 · 今日
        orders.router,  # 查单 · 通过 · 驳回 · 接单 · 分配 · 开始 · 发布 · 完成
        results.router,  # 数据 · 报告 · 导出 · 看板
        replies.router,  # 对话 · 回复 · 快捷回复
        money.router,  # 退款 · 拒绝退款 · 提现
        commissions.router,  # 佣金 (held by a fraud rule)
        people.router,  # 上班 · 下班 · 员工
        flash.router,  # 秒杀 列表 · 查看 · 停止
    )
    return root
