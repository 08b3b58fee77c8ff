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
    # An exact-command route: it can match only when the router's key (the command) is one of these.
    only: frozenset[str] | None = None


class Routes(Generic[C]):
    """Routes are tried in the order they were registered; included routers follow their position.

    With a `key` (the context's command), routes tied to command words are tried only for their
    words: the routes a turn tries are remembered per command word, and any other text shares one
    list — the same first match as trying every route, without a hundred predicates per turn."""

    def __init__(self, name: str, key: Callable[[C], str | None] | None = None) -> None:
        self.name = name
        self.routes: list[Route[C]] = []
        self._key = key
        self._words: set[str] = set()
        self._tried: dict[str | None, list[Route[C]]] = {}

    def add(self, route: Route[C]) -> None:
        self.routes.append(route)
        self._words.update(route.only or ())
        self._tried.clear()

    def when(
        self, predicate: Callable[[C], bool], *, only: frozenset[str] | None = None
    ) -> Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]:
        def register(handler: Callable[[C], Awaitable[None]]) -> Callable[[C], Awaitable[None]]:
            self.add(Route(f"{self.name}.{handler.__name__}", predicate, handler, only))
            return handler

        return register

    def include(self, *routers: Self) -> None:
        for router in routers:
            for route in router.routes:
                self.add(route)

    def resolve(self, ctx: C) -> Route[C] | None:
        return next((r for r in self._to_try(ctx) if r.matches(ctx)), None)

    def _to_try(self, ctx: C) -> list[Route[C]]:
        if self._key is None:
            return self.routes
        word = self._key(ctx)
        if word not in self._words:
            word = None  # no command word: only the routes tied to none may match
        tried = self._tried.get(word)
        if tried is None:
            tried = self._tried[word] = [r for r in self.routes if r.only is None or word in r.only]
        return tried


class Router(Routes[Ctx]):
    """Customers' turns: commands, menu clicks, events and messages."""

    def __init__(self, name: str) -> None:
        super().__init__(name, key=_command)

    def text(self, *words: str) -> Callable[[Handler], Handler]:
        """Exact commands, typed or sent by a menu button mapped to the same command."""
        wanted = frozenset(normalise(w) for w in words)
        return self.when(lambda ctx: ctx.command in wanted, only=wanted)

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


def _command(ctx: Ctx) -> str | None:
    return ctx.command
