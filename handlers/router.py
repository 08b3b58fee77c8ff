"""Decorator routers: one per handlers/ module, included in order in one place (first match wins).

`Routes` is the mechanism over any context; `Router` routes customers' turns (handlers/__init__),
`handlers.work.turn.StaffRouter` staff commands in work chat (handlers/work/__init__).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from handlers.context import Ctx

C = TypeVar("C")
Handler = Callable[[Ctx], Awaitable[None]]
Predicate = Callable[[Ctx], bool]

_TRAILING = re.compile(r"[\s。！!？?～~，,、.]+$")


def normalise(text: str) -> str:
    """Fold width and case, squeeze spaces, drop trailing punctuation: '帮助！' and '帮 助' match '帮助'."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = _TRAILING.sub("", text)
    return re.sub(r"\s+", " ", text)


@dataclass(frozen=True, slots=True)
class Route(Generic[C]):
    name: str
    matches: Callable[[C], bool]
    handler: Callable[[C], Awaitable[None]]


class Routes(Generic[C]):
    """Routes are tried in the order they were registered; included routers follow their position."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route[C]] = []

    def when(
        self, predicate: Callable[[C], bool]
    ) -> Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]:
        def register(handler: Callable[[C], Awaitable[None]]) -> Callable[[C], Awaitable[None]]:
            self.routes.append(Route(f"{self.name}.{handler.__name__}", predicate, handler))
            return handler

        return register

    def include(self, *routers: Self) -> None:
        for router in routers:
            self.routes.extend(router.routes)

    def resolve(self, ctx: C) -> Route[C] | None:
        return next((r for r in self.routes if r.matches(ctx)), None)


class Router(Routes[Ctx]):
    """Customers' turns: commands, menu clicks, events and messages."""

    def text(self, *words: str) -> Callable[[Handler], Handler]:
        """Exact commands, typed or sent by a menu button mapped to the same command."""
        wanted = {normalise(w) for w in words}
        return self.when(lambda ctx: ctx.command in wanted)

    def prefix(self, *words: str) -> Callable[[Handler], Handler]:
        """Commands with an argument, e.g. '搜 咖啡': the argument is in ctx.argument."""
        heads = tuple(normalise(w) for w in words)
        return self.when(lambda ctx: ctx.command is not None and ctx.command.startswith(heads))

    def event(self, *names: str) -> Callable[[Handler], Handler]:
        return self.when(lambda ctx: ctx.event.kind == "event" and ctx.event.name in names)

    def message(self, *kinds: str) -> Callable[[Handler], Handler]:
        return self.when(lambda ctx: ctx.event.kind in kinds)

    def fallback(self) -> Callable[[Handler], Handler]:
        return self.when(lambda ctx: True)
