"""The understanding step (flows/understand): quality on the labelled sets, CPU per message, start-up
time and memory it adds, and how long the vocabulary takes to build for a large catalog.

    .venv/bin/python -m bench.understand                # everything, 20 rounds over both sets
    .venv/bin/python -m bench.understand --rounds 5     # quicker
    .venv/bin/python -m bench.understand --misses       # also list the messages read wrong

Quality: intent accuracy and slot F1 (micro, (slot, value) pairs) per intent, on
tests/data/understand/messages.jsonl (the tuned set) and heldout.jsonl (never tuned on).
CPU: time.process_time_ns() around each understand() call, every message of both sets, after one
warm-up pass; median and p99 over all calls of all rounds.
Start-up and memory: a fresh interpreter that has already imported what the server imports anyway
(aiohttp, SQLAlchemy, the catalog module) measures wall time and RSS (VmRSS) around importing
flows.understand, building the demo catalog's vocabulary (YAML parsing not counted: the server reads
the services from its database) and reading every labelled message once; median of 3 runs.
Robustness: every labelled message (small talk aside) written another way — traditional characters,
full-width forms, courtesy before, thanks after, noise after, spaces between Chinese words — and how
many then read differently (intent or any slot).
Vocabulary build: Vocabulary.build over a generated catalog of 10,000 services (800 tags).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zhconv

from flows.understand import Vocabulary, understand
from flows.understand.labelled import NOW, load, per_intent, score, slot_pairs
from flows.understand.load import demo_vocabulary

SETS = ("messages", "heldout", "heldout2", "heldout3", "heldout4", "patterns")
_STARTUP = """
import json, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
import aiohttp, sqlalchemy, yaml, store.catalog_import  # the server has these already
before, t0, c0 = rss(), time.perf_counter(), time.process_time()
import flows.understand
from flows.understand import Vocabulary
from flows.understand.labelled import load
t1, c1 = time.perf_counter(), time.process_time()
from importlib import resources
text = resources.files("store").joinpath(store.catalog_import.DEMO_CATALOG).read_text(encoding="utf-8")
specs = [s for s in store.catalog_import.parse_catalog(text, "yaml")[0] if s.status == "listed"]
t1b = time.perf_counter()  # the server reads services from its database instead of parsing YAML
vocab = Vocabulary.build(specs)
t2 = time.perf_counter()
from flows.understand import understand
from flows.understand.labelled import NOW
for name in ("messages", "heldout", "heldout2", "heldout3", "heldout4", "patterns"):
    for ex in load(name):
        understand(ex.text, ex.context, vocab, NOW)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "import_cpu_s": c1 - c0, "vocab_s": t2 - t1b, "first_pass_s": t3 - t2,
                  "rss_added_mb": rss() - before}))
"""


@dataclass
class Service:
    title: str
    platform: str
    category: str
    forms: tuple[str, ...]
    tags: tuple[str, ...]


def _percentile(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def quality(vocab: Vocabulary, show_misses: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SETS:
        result = score(load(name), vocab)
        out[name] = {
            "messages": sum(result.total.values()),
            "accuracy": round(result.accuracy, 4),
            "slot_f1": round(result.f1(), 4),
            "per_intent": {k: [n, round(a, 3), round(f, 3)] for k, (n, a, f) in per_intent(result).items()},
        }
        if show_misses:
            for ex, got in result.misses:
                missing = sorted(ex.slots - slot_pairs(got.slots))
                extra = sorted(slot_pairs(got.slots) - ex.slots)
                print(f"  [{name}] {ex.text!r}: {ex.intent.value} → {got.intent.value} -{missing} +{extra}")
    return out


# Ways of writing the same thing: the reading of a labelled message should not change.
VARIANTS: dict[str, Callable[[str], str]] = {
    "traditional": lambda t: str(zhconv.convert(t, "zh-tw")),
    "full-width": lambda t: "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t),
    "courtesy before": lambda t: "你好，麻烦问下，" + t,
    "thanks after": lambda t: t + "，谢谢",
    "noise after": lambda t: t + "～～😊",
    "spaces between Chinese words": lambda t: re.sub(r"(?<=[\u4e00-\u9fff])(?=[\u4e00-\u9fff])", " ", t),
}
_SMALL_TALK = {"greeting", "thanks", "unknown"}


def robustness(vocab: Vocabulary) -> dict[str, int]:
    """How many labelled messages read differently when written another way (of how many)."""
    examples = [ex for name in SETS for ex in load(name) if ex.intent.value not in _SMALL_TALK]
    changed = dict.fromkeys(VARIANTS, 0)
    for ex in examples:
        plain = understand(ex.text, ex.context, vocab, NOW)
        for name, variant in VARIANTS.items():
            other = understand(variant(ex.text), ex.context, vocab, NOW)
            changed[name] += (other.intent, other.slots) != (plain.intent, plain.slots)
    return {"messages": len(examples), **changed}


def cpu(vocab: Vocabulary, rounds: int) -> dict[str, float]:
    examples = [ex for name in SETS for ex in load(name)]
    for ex in examples:
        understand(ex.text, ex.context, vocab, NOW)
    times: list[int] = []
    for _ in range(rounds):
        for ex in examples:
            start = time.process_time_ns()
            understand(ex.text, ex.context, vocab, NOW)
            times.append(time.process_time_ns() - start)
    return {
        "calls": len(times),
        "median_ms": round(statistics.median(times) / 1e6, 4),
        "p99_ms": round(_percentile(times, 99) / 1e6, 4),
        "max_ms": round(max(times) / 1e6, 4),
    }


def startup() -> dict[str, float]:
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", _STARTUP], check=True, capture_output=True).stdout)
        for _ in range(3)
    ]
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def big_catalog(n: int = 10_000, n_tags: int = 800) -> list[Service]:
    rnd = random.Random(7)
    syllables = (
        "咖啡 探店 美食 穿搭 数码 母婴 家居 旅行 健身 美妆 护肤 汽车 游戏 宠物 烘焙 茶饮 户外 读书 职场 亲子"
    )
    base = syllables.split()
    tags = [f"{rnd.choice(base)}{rnd.choice(base)}{i}" for i in range(n_tags)] + base
    platforms = ("抖音", "快手", "小红书", "B站", "微博", "视频号")
    return [
        Service(
            title=f"{rnd.choice(base)}博主{i}",
            platform=rnd.choice(platforms),
            category="达人营销",
            forms=("图文", "视频"),
            tags=tuple(rnd.sample(tags, 4)),
        )
        for i in range(n)
    ]


def build_time() -> dict[str, float]:
    services = big_catalog()
    start = time.perf_counter()
    vocab = Vocabulary.build(services)
    built = time.perf_counter() - start
    examples = load("messages")
    times = []
    for ex in examples:
        t = time.process_time_ns()
        understand(ex.text, ex.context, vocab, NOW)
        times.append(time.process_time_ns() - t)
    return {
        "services": len(services),
        "phrases": len(vocab.phrases),
        "build_s": round(built, 3),
        "p99_ms_with_it": round(_percentile(times, 99) / 1e6, 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--misses", action="store_true")
    args = parser.parse_args(argv)
    vocab = demo_vocabulary()
    results = {
        "quality": quality(vocab, args.misses),
        "robustness": robustness(vocab),
        "cpu": cpu(vocab, args.rounds),
        "startup": startup(),
        "big_catalog": build_time(),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    for name in SETS:
        q = results["quality"][name]
        print(
            f"{name}: {q['messages']} messages, "
            f"intent accuracy {q['accuracy']:.1%}, slot F1 {q['slot_f1']:.1%}"
        )
        for intent, (n, acc, f1) in q["per_intent"].items():
            print(f"    {intent:12} {n:4}  {acc:6.1%}  {f1:6.1%}")
    print("messages read differently when written another way:", results["robustness"])
    print("cpu per message:", results["cpu"])
    print("start-up:", results["startup"])
    print("10,000-service vocabulary:", results["big_catalog"])


if __name__ == "__main__":
    main()
