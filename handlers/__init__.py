"""Handlers: one Router per module, included here in order (first match wins)."""

from __future__ import annotations

from handlers import basic
from handlers.router import Router


def build_router() -> Router:
    """The order matters: specific commands first, the catch-alls of `basic` last."""
    root = Router("root")
    root.include(basic.router)
    return root
