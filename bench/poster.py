"""Poster rendering: the first (uncached) render, then N renders with the background cached; then the
team picture (posters/tree.py) of 3 levels × 50 members, the same way.

.venv/bin/python -m bench.poster                  # 200 renders of each after one warm-up
.venv/bin/python -m bench.poster -n 1000 --template spring --font /path/to/font.ttc
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from flows import texts as tc
from posters import render as posters
from posters.tree import TreeTexts, render_tree

URL = "http://weixin.qq.com/q/02AbCdEfGhIjKl10000003"


def _avatar() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (132, 132), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--renders", type=int, default=200)
    parser.add_argument("--template", default="default")
    parser.add_argument("--font", default=None, help="a CJK font file (default: found on the system)")
    args = parser.parse_args(argv)

    spec = posters.load_template(args.template)
    avatar = _avatar()

    def once(i: int) -> float:
        t = time.perf_counter()
        posters.render(
            spec,
            qr_url=f"{URL}{i:04d}",
            nickname=f"小明同学{i}",
            code=f"C{i:05d}",
            avatar=avatar,
            font_path=args.font,
        )
        return (time.perf_counter() - t) * 1000

    _report(
        f"poster render, template {args.template!r}, {args.renders} renders, background cached",
        once,
        args.renders,
    )

    texts = TreeTexts(
        tc.TREE_TITLE,
        tc.TREE_SUMMARY,
        tc.TREE_LEVELS,
        tc.TREE_COUNT,
        tc.TREE_MORE,
        tc.TREE_LEVEL_EMPTY,
        tc.TREE_EMPTY,
    )

    def tree(i: int) -> float:
        levels = [[(f"成员{level}-{i}-{n}", "3月2日加入") for n in range(50)] for level in range(3)]
        t = time.perf_counter()
        render_tree(f"小明同学{i}", levels, texts=texts, totals=[50, 50, 50], font_path=args.font)
        return (time.perf_counter() - t) * 1000

    print()
    _report(f"team picture, 3 levels x 50 members, {args.renders} renders", tree, args.renders)


def _report(title: str, once: Callable[[int], float], renders: int) -> None:
    first = once(0)  # uncached: background, fixed texts, font loading
    once(1)  # warm-up
    times = [once(i) for i in range(2, renders + 2)]
    rows = [
        ("first (uncached)", first),
        ("mean", statistics.fmean(times)),
        ("p50", statistics.median(times)),
        ("p99", _percentile(times, 99)),
        ("max", max(times)),
    ]
    print(title)
    print(f"{'':<18}{'ms':>9}")
    for label, ms in rows:
        print(f"{label:<18}{ms:>9.2f}")


if __name__ == "__main__":
    main()
