"""Domain refusals. The store says *what* went wrong with a code; flows/texts says it to people."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the domain refused a change; nothing was changed. `code` names the rule."""

    def __init__(self, code: str, **details: Any) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details
