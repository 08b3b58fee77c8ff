"""The labelled customer messages (tests/data/understand/*.jsonl) and how understand() is scored on them.

Each line: {"text", "context"?: Context fields, "intent", "slots": Slots fields (money in fen)}.
Intent accuracy is per message; slot F1 is micro-averaged over (slot, value) pairs, each tag and
keyword counting as one pair. `when` is left out: dates are judged by flows.when's own tests.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .core import understand
from .types import Context, Intent, Slots, Understanding
from .vocab import Vocabulary

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=BEIJING)  # the fixed "now" of the labelled sets
DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "understand"
_SCORED = tuple(f.name for f in fields(Slots) if f.name != "when")

Pair = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    context: Context
    intent: Intent
    slots: frozenset[Pair]


@dataclass(slots=True)
class Score:
    total: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    true_pos: Counter[str] = field(default_factory=Counter)
    false_pos: Counter[str] = field(default_factory=Counter)
    false_neg: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[Example, Understanding]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.right.values()) / max(1, sum(self.total.values()))

    def intent_accuracy(self, intent: str) -> float:
        return self.right[intent] / max(1, self.total[intent])

    def f1(self, intent: str | None = None) -> float:
        keys = [intent] if intent else list(self.total)
        tp = sum(self.true_pos[k] for k in keys)
        fp = sum(self.false_pos[k] for k in keys)
        fn = sum(self.false_neg[k] for k in keys)
        return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def load(name: str) -> list[Example]:
    """messages or heldout."""
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [_example(json.loads(line)) for line in f if line.strip()]


def _example(row: dict[str, Any]) -> Example:
    return Example(
        text=row["text"],
        context=Context(**row.get("context", {})),
        intent=Intent(row["intent"]),
        slots=frozenset(_pairs(row.get("slots", {}))),
    )


def _pairs(values: dict[str, Any]) -> Iterator[Pair]:
    for name in _SCORED:
        value = values.get(name)
        if isinstance(value, list | tuple):
            yield from ((name, item) for item in value)
        elif value is not None:
            yield name, value


def slot_pairs(slots: Slots) -> frozenset[Pair]:
    return frozenset(_pairs({name: getattr(slots, name) for name in _SCORED}))


def score(examples: Iterable[Example], vocab: Vocabulary, now: dt.datetime = NOW) -> Score:
    result = Score()
    for ex in examples:
        got = understand(ex.text, ex.context, vocab, now)
        key = ex.intent.value
        result.total[key] += 1
        predicted = slot_pairs(got.slots)
        result.true_pos[key] += len(predicted & ex.slots)
        result.false_pos[key] += len(predicted - ex.slots)
        result.false_neg[key] += len(ex.slots - predicted)
        if got.intent is ex.intent:
            result.right[key] += 1
        if got.intent is not ex.intent or predicted != ex.slots:
            result.misses.append((ex, got))
    return result


def per_intent(result: Score) -> dict[str, tuple[int, float, float]]:
    """intent → (messages, accuracy, slot F1)."""
    by: dict[str, tuple[int, float, float]] = defaultdict(lambda: (0, 0.0, 0.0))
    for intent in sorted(result.total, key=lambda k: -result.total[k]):
        by[intent] = (result.total[intent], result.intent_accuracy(intent), result.f1(intent))
    return dict(by)
