"""Handlers: one Router per module, included here in order (first match wins)."""

from __future__ import annotations

from handlers import basic, cart, catalog, faq, form, invite, invoices, orders, pay
from handlers.router import Router


def build_router() -> Router:
    """First match wins: the form's control words, then commands, then a form's answers,
    then numbers picked from the last list, FAQ keywords, and the catch-alls."""
    root = Router("root")
    root.include(
        form.router,
        basic.router,
        catalog.router,
        cart.router,
        orders.router,
        pay.router,
        invoices.router,
        invite.router,
        form.answers,
        catalog.picks,
        orders.picks,
        faq.router,
        basic.fallback,
    )
    return root
