"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the samples go.

    .venv/bin/python -m bench.webhook --mode plain --stack full \\
        --profile bench/results/prof --profile-format txt --profile-args=--gil
    .venv/bin/python -m bench.profile bench/results/prof/full-plain.txt [--top 30] [--match sqlalchemy]

Prints, per thread, the share of samples; then the functions with the most *inclusive* samples
(on the stack at all) and the most *self* samples (at the top of the stack), and the share of
samples by top-level package (of the innermost frame).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def parse(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread, frames outermost first, samples)."""
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        body, _, count = line.rpartition(" ")
        frames = body.split(";")
        thread = frames[0] if frames[0].startswith("thread") else "-"
        if thread != "-":
            frames = frames[1:]
        stacks.append((thread, frames, int(count)))
    return stacks


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    return f"{m['func']} ({m['file']})" if m else frame


def _package(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return "?"
    f = m["file"]
    if f.startswith("<"):
        return f
    head = f.split("/")[0]
    return head.removesuffix(".py")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile")
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", help="only stacks with a frame containing this text")
    args = p.parse_args(argv)
    stacks = parse(args.profile)
    if args.match:
        stacks = [s for s in stacks if any(args.match in f for f in s[1])]
    total = sum(n for _, _, n in stacks) or 1
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for thread, frames, n in stacks:
        name = re.sub(r"\(\d+\)", "", thread.split(":", 1)[-1]).strip()
        threads[re.sub(r"-\d+", "-N", name)] += n
        for fr in {_name(f) for f in frames}:
            inclusive[fr] += n
        if frames:
            own[_name(frames[-1])] += n
            packages[_package(frames[-1])] += n

    def show(title: str, counter: Counter[str], top: int) -> None:
        print(f"\n{title}")
        for key, n in counter.most_common(top):
            print(f"  {100 * n / total:5.1f}%  {key}")

    print(f"{total} samples in {args.profile}")
    show("threads", threads, 10)
    show("top of stack, by package", packages, 15)
    show("inclusive", inclusive, args.top)
    show("self", own, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
