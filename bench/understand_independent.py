"""The understanding step on a labelled file it was not tuned on (an independent measurement).

    .venv/bin/python -m bench.understand_independent          # tests/data/understand/independent.jsonl
    .venv/bin/python -m bench.understand_independent path/to/set.jsonl --misses

Same line format as the tuned sets ({"text", "context"?, "intent", "slots"}). Prints intent accuracy
overall and per intent, precision / recall / F1 per slot type (each tag or keyword one value), the
most frequent confusion pairs (expected → got), and with --misses every message read differently.
Unlike flows.understand.labelled, `when` is scored too: a label with a date only ("2026-12-18")
matches any time that day, a label with a time ("2026-12-18T19:00") must match to the minute.
Slot counts are taken over every message, whatever intent was chosen.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from flows.understand import Context, Intent, Slots, Understanding, Vocabulary, understand
from flows.understand.labelled import NOW
from flows.understand.load import demo_vocabulary

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "data" / "understand" / "independent.jsonl"
SLOT_NAMES = tuple(f.name for f in fields(Slots))
Pair = tuple[str, Any]


def _label_pairs(slots: dict[str, Any]) -> set[Pair]:
    return set(_pairs(slots))


def _pairs(values: dict[str, Any]) -> Iterator[Pair]:
    for name in SLOT_NAMES:
        value = values.get(name)
        if isinstance(value, list | tuple):
            yield from ((name, item) for item in value)
        elif value is not None:
            yield name, value


def _got_pairs(slots: Slots, labelled: set[Pair]) -> set[Pair]:
    """The predicted pairs, `when` written the way its label is (date only or to the minute)."""
    wanted = {v for k, v in labelled if k == "when"}
    out: set[Pair] = set()
    for name, value in _pairs({n: getattr(slots, n) for n in SLOT_NAMES}):
        if name == "when" and isinstance(value, dt.datetime):
            local = value.astimezone(NOW.tzinfo)
            day, minute = local.strftime("%Y-%m-%d"), local.strftime("%Y-%m-%dT%H:%M")
            value = day if day in wanted else minute
        out.add((name, value))
    return out


def evaluate(path: Path, vocab: Vocabulary) -> dict[str, Any]:
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses: list[tuple[dict[str, Any], Understanding, set[Pair], set[Pair]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        got = understand(row["text"], Context(**row.get("context", {})), vocab, NOW)
        want = _label_pairs(row.get("slots", {}))
        have = _got_pairs(got.slots, want)
        total[row["intent"]] += 1
        if got.intent is Intent(row["intent"]):
            right[row["intent"]] += 1
        else:
            confusion[(row["intent"], got.intent.value)] += 1
        for name, _ in have & want:
            tp[name] += 1
        for name, _ in have - want:
            fp[name] += 1
        for name, _ in want - have:
            fn[name] += 1
        if got.intent is not Intent(row["intent"]) or have != want:
            misses.append((row, got, want - have, have - want))
    return {
        "total": total,
        "right": right,
        "confusion": confusion,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "misses": misses,
    }


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)


def report(res: dict[str, Any], show_misses: bool) -> None:
    total, right = res["total"], res["right"]
    n = sum(total.values())
    print(f"{n} messages, intent accuracy {sum(right.values()) / n:.1%}")
    for intent, count in total.most_common():
        print(f"    {intent:12} {count:4}  {right[intent] / count:6.1%}")
    tp, fp, fn = res["tp"], res["fp"], res["fn"]
    p, r, f = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    print(f"slots (micro, every slot type): precision {p:.1%}, recall {r:.1%}, F1 {f:.1%}")
    for left_out in (("when",), ("when", "keywords")):
        kept = [k for k in set(tp) | set(fp) | set(fn) if k not in left_out]
        p, r, f = _prf(sum(tp[k] for k in kept), sum(fp[k] for k in kept), sum(fn[k] for k in kept))
        print(f"    without {' and '.join(left_out)}: precision {p:.1%}, recall {r:.1%}, F1 {f:.1%}")
    print(f"    {'slot':16} {'labelled':>8} {'predicted':>9} {'P':>7} {'R':>7} {'F1':>7}")
    for name in sorted(set(tp) | set(fp) | set(fn), key=lambda k: -(tp[k] + fn[k])):
        p, r, f = _prf(tp[name], fp[name], fn[name])
        print(f"    {name:16} {tp[name] + fn[name]:8} {tp[name] + fp[name]:9} {p:7.1%} {r:7.1%} {f:7.1%}")
    print("confusion pairs (expected → got):")
    for (want, got), count in res["confusion"].most_common(25):
        print(f"    {count:3}  {want} → {got}")
    if show_misses:
        for row, got, missing, extra in res["misses"]:
            ctx = f" {row['context']}" if row.get("context") else ""
            read = f"{row['intent']} → {got.intent.value}"
            print(f"  {row['text']!r}{ctx}: {read} -{sorted(missing)} +{sorted(extra)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args(argv)
    report(evaluate(args.path, demo_vocabulary()), args.misses)


if __name__ == "__main__":
    main()
