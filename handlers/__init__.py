"""Handlers: one Router per module, included here in order (first match wins)."""

from __future__ import annotations

from handlers import (
    basic,
    cart,
    catalog,
    creators,
    faq,
    flash,
    form,
    invite,
    invoices,
    orders,
    pay,
    privacy,
    relay,
    reports,
    resubmit,
)
from handlers.router import Router


def build_router() -> Router:
    """First match wins: the form's control words, then commands, then a form's answers,
    then numbers picked from the last list, FAQ keywords, and the catch-alls."""
    root = Router("root")
    root.include(
        resubmit.router,  # materials sent back: its control words first while redoing them
        relay.router,  # 联系客服 / 人工客服 / 结束 / 查看对话, before the form's 继续 and basic's 人工
        form.router,
        creators.router,  # before basic: a subscribe through an invite QR binds, then welcomes
        flash.router,  # 秒杀 · 抢 · 候补; before basic: a flash_<code> QR scene opens its sale
        basic.router,
        catalog.router,
        cart.router,
        orders.router,
        pay.router,
        invoices.router,
        invite.router,
        privacy.router,  # 我的数据, 注销, 确认注销
        reports.router,  # 报告 · 导出 · 评分 · 推荐
        resubmit.answers,  # answers to the steps being redone
        relay.answers,  # free text and images in relay mode go to the order's staff
        form.answers,
        catalog.picks,
        orders.picks,
        faq.router,
        basic.fallback,
    )
    return root
