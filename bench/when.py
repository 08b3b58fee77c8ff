"""find_when (flows/when.py): CPU time per message over a mix of messages with and without a time,
and the import time it adds (cn2an included).

.venv/bin/python -m bench.when            # 2,000 rounds over the mix after one warm-up round
.venv/bin/python -m bench.when -n 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import statistics
import sys
import time

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
MESSAGES = (
    # with a time, as customers write it
    "明天下午三点",
    "下周五晚上7点",
    "下周五晚上",
    "12月20号晚上",
    "20号",
    "后天上午10点半",
    "下个月3号",
    "2026-12-20 19:00",
    "１２/２０ １９：００",
    "最好是周五晚上九点左右发，可以吗",
    # without one: what most messages are
    "我想在小红书找美食达人推广咖啡，预算3000以内",
    "有没有抖音的探店达人",
    "便宜一点的",
    "退款怎么退？",
    "好的谢谢",
    "3.83 复制打开抖音，看看【小鹿的作品】 https://v.douyin.com/iRNBho6u/ aAa:/",
)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--rounds", type=int, default=2000)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    when = importlib.import_module("flows.when")
    imported = time.perf_counter() - started
    find_when = when.find_when

    for text in MESSAGES:  # warm-up: regex caches, cn2an's first calls
        find_when(text, NOW)
    times = []
    for _ in range(args.rounds):
        for text in MESSAGES:
            t0 = time.process_time_ns()
            find_when(text, NOW)
            times.append((time.process_time_ns() - t0) / 1000)
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds × {len(MESSAGES)} messages")
    print(f"import flows.when (with cn2an): {imported * 1000:.0f} ms")
    print(
        f"find_when CPU per message: median {statistics.median(times):.1f} µs, "
        f"p99 {_percentile(times, 99):.1f} µs, max {max(times):.1f} µs"
    )


if __name__ == "__main__":
    main()
