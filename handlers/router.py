"""Decorator routers: one per handlers/ module, included in order in one place (first match wins).

`Routes` is the mechanism over any context; `Router` routes customers' turns (handlers/__init__),
`handlers.work.turn.StaffRouter` staff commands in work chat (handlers/work/__init__).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from handlers.context import Ctx

C = TypeVar("C")
Handler = Callable[[Ctx], Awaitable[None]]
Predicate = Callable[[Ctx], bool]

_TRAILING = re.compile(r"[\s。！!？?～~，,、.]+$")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Fold width and case, squeeze spaces, drop trailing punctuation: '帮助！' and '帮 助' match '帮助'."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = _TRAILING.sub("", text)
    return _SPACES.sub(" ", text)


@dataclass(frozen=True, slots=True)
class Route(Generic[C]):
    name: str
    matches: Callable[[C], bool]
    handler: Callable[[C], Awaitable[None]]
    # What the route can match at all (the predicate still decides), so a turn tries only the routes
    # that may: exact command words, command prefixes, event kinds. None: no such limit.
    only: frozenset[str] | None = None
    heads: tuple[str, ...] | None = None
    kinds: frozenset[str] | None = None

    def may_match(self, kind: str | None, word: str | None, exact: bool) -> bool:
        """Whether a turn of this kind and command can match (`exact`: the command is a known word)."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.only is not None:
            return exact and word in self.only
        if self.heads is not None:
            if word is None:
                return False
            if exact:
                return word.startswith(self.heads)
            # Any other text shares a list per first character: a head can only match text it begins.
            return any(head[:1] in ("", word[:1]) for head in self.heads)
        return True


class Routes(Generic[C]):
    """Routes are tried in the order they were registered; included routers follow their position.

    With a `key` (the context's command) and a `kind` (its event kind), a turn tries only the routes
    its kind and command may match (`Route.may_match`): the list is remembered per kind and command
    word, and per kind and first character for any other text — the same first match as trying
    every route, without a hundred predicates per turn."""

    MAX_LISTS = 4096  # distinct (kind, word or first character) lists kept; then they start again

    def __init__(
        self,
        name: str,
        key: Callable[[C], str | None] | None = None,
        kind: Callable[[C], str] | None = None,
    ) -> None:
        self.name = name
        self.routes: list[Route[C]] = []
        self._key = key
        self._kind = kind
        self._words: set[str] = set()
        self._tried: dict[tuple[str | None, str | None, bool], list[Route[C]]] = {}

    def add(self, route: Route[C]) -> None:
        self.routes.append(route)
        self._words.update(route.only or ())
        self._tried.clear()

    def when(
        self,
        predicate: Callable[[C], bool],
        *,
        only: frozenset[str] | None = None,
        heads: tuple[str, ...] | None = None,
        kinds: frozenset[str] | None = None,
    ) -> Callable[[Callable[[C], Awaitable[None]]], Callable[[C], Awaitable[None]]]:
        def register(handler: Callable[[C], Awaitable[None]]) -> Callable[[C], Awaitable[None]]:
            self.add(Route(f"{self.name}.{handler.__name__}", predicate, handler, only, heads, kinds))
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
        kind = self._kind(ctx) if self._kind is not None else None
        word = self._key(ctx)
        exact = word in self._words
        slot = (kind, word if exact or word is None else word[:1], exact)
        tried = self._tried.get(slot)
        if tried is None:
            if len(self._tried) >= self.MAX_LISTS:
                self._tried.clear()
            tried = self._tried[slot] = [r for r in self.routes if r.may_match(kind, word, exact)]
        return tried


class Router(Routes[Ctx]):
    """Customers' turns: commands, menu clicks, events and messages."""

    def __init__(self, name: str) -> None:
        super().__init__(name, key=_command, kind=_kind)

    def text(self, *words: str) -> Callable[[Handler], Handler]:
        """Exact commands, typed or sent by a menu button mapped to the same command."""
        wanted = frozenset(normalise(w) for w in words)
        return self.when(lambda ctx: ctx.command in wanted, only=wanted)

    def said(self, words: Iterable[str], when: Predicate) -> Callable[[Handler], Handler]:
        """Exact commands that mean something only in a situation (返回 in a form, 下一页 in a list)."""
        wanted = frozenset(normalise(w) for w in words)
        return self.when(lambda ctx: ctx.command in wanted and when(ctx), only=wanted)

    def prefix(self, *words: str, when: Predicate | None = None) -> Callable[[Handler], Handler]:
        """Commands with an argument, e.g. '搜 咖啡': the argument is in ctx.argument. `when`: a further
        condition on the command or the situation (say, 退款 followed by an order number)."""
        heads = tuple(normalise(w) for w in words)

        def matches(ctx: Ctx) -> bool:
            return ctx.command is not None and ctx.command.startswith(heads) and (when is None or when(ctx))

        return self.when(matches, heads=heads)

    def event(self, *names: str, when: Predicate | None = None) -> Callable[[Handler], Handler]:
        """Events by name; `when`: a further condition (a QR scene's key, say)."""
        wanted = frozenset(names)

        def matches(ctx: Ctx) -> bool:
            return ctx.event.kind == "event" and ctx.event.name in wanted and (when is None or when(ctx))

        return self.when(matches, kinds=frozenset({"event"}))

    def message(self, *kinds: str) -> Callable[[Handler], Handler]:
        return self.when(lambda ctx: ctx.event.kind in kinds, kinds=frozenset(kinds))

    def fallback(self) -> Callable[[Handler], Handler]:
        return self.when(lambda ctx: True)


def _command(ctx: Ctx) -> str | None:
    return ctx.command


def _kind(ctx: Ctx) -> str:
    return ctx.event.kind
