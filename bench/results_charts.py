"""Report and board pictures: render times (the target is ≤ 200 ms each) and sizes.

.venv/bin/python -m bench.results_charts            # 100 renders of each after one warm-up
.venv/bin/python -m bench.results_charts -n 300 --pieces 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from flows.board import picture as board_picture
from flows.board import sample_board
from flows.results import picture
from store.models import DeliveryStat, Order
from store.results import PieceResult, Report

START = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def sample_report(pieces: int, readings: int) -> Report:
    """An order with `pieces` published notes, each read `readings` times (24 h apart), growing."""
    order = Order(number="20261201-0001", status="已完成", total_fen=299_900, deliverables=[])
    results = []
    for p in range(1, pieces + 1):
        rows = [
            DeliveryStat(
                piece=p,
                at=START + dt.timedelta(hours=24 * (r + 1)),
                final=r == readings - 1,
                exposure=8000 * p * (r + 1),
                reads=5000 * p * (r + 1),
                likes=300 * (r + 1),
                comments=20 * (r + 1),
                favorites=60 * (r + 1),
                shares=9 * (r + 1),
                clicks=150 * (r + 1),
                conversions=6 * (r + 1),
            )
            for r in range(readings)
        ]
        results.append(
            PieceResult(p, f"第{p}篇 探店笔记｜秋冬新品", f"https://www.xiaohongshu.com/{p}", rows)
        )
    return Report(order, results, order.total_fen)


def timed(render: object, n: int) -> tuple[list[float], list[float], int]:
    """Wall-clock and CPU milliseconds per render (CPU time is what a busy machine does not inflate)."""
    assert callable(render)
    size = len(render())  # warm-up: fonts loaded, caches filled
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        render()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--renders", type=int, default=100)
    parser.add_argument("--pieces", type=int, default=3)
    parser.add_argument("--readings", type=int, default=3)
    parser.add_argument("--font", default=None, help="a CJK font file (default: the one posters find)")
    args = parser.parse_args(argv)
    cases = {
        f"report, {args.pieces} pieces × {args.readings} readings": lambda: picture(
            sample_report(args.pieces, args.readings), args.font
        ),
        "report, 1 piece × 1 reading": lambda: picture(sample_report(1, 1), args.font),
    }
    cases["operators' board (14 days)"] = lambda: board_picture(sample_board(), args.font)
    print(f"{'picture':40} {'wall mean':>9} {'p50':>7} {'p99':>7} {'cpu mean':>9} {'p99':>7}  size")
    for name, render in cases.items():
        wall, cpu, size = timed(render, args.renders)
        print(
            f"{name:40} {statistics.mean(wall):7.1f}ms {statistics.median(wall):5.1f}ms {_p99(wall):5.1f}ms"
            f" {statistics.mean(cpu):7.1f}ms {_p99(cpu):5.1f}ms  {size // 1024} KB"
        )


def _p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.99 * (len(values) - 1)))]


if __name__ == "__main__":
    main()
