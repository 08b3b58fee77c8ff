"""CPU per turn, in one process, without HTTP: a steady measure when the machine is too busy for msgs/s.

    .venv/bin/python -m bench.turncost                    # the webhook bench's mix, then each text alone
    .venv/bin/python -m bench.turncost --turns 8000 --profile bench/results/turns.prof

`bot.app.create_app` on a fresh, migrated SQLite database (as `bench.webhook --serve full`), started
with aiohttp's `AppRunner` (no socket), after `bot.app.tune_gc()`. Each message is parsed with the
product's own `parse_mp` + `Event.from_message` and handed to the pipeline, `--concurrency` turns in
flight, from `--people` openids (all known: one warm-up turn each first). The figure is process CPU
(`time.process_time`, every thread: the event loop and the SQLite driver threads) over the turns, so
other people's load on the machine changes it far less than it changes throughput. Wall time is shown
too. Every reply is compared with the text the webhook bench expects.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import ACCOUNT, bench_settings, prepare_database, text_xml, tune_gc_like_the_product
from bench.webhook import MIX, expected_texts

FIRST_MSG_ID = 8_000_000_000_000_000_000


async def _run(args: argparse.Namespace, settings: Any) -> int:
    from aiohttp import web

    from bot import keys
    from bot.app import create_app

    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    pipeline = runner.app[keys.PIPELINE]
    parse = _event_parser()
    expected = expected_texts()
    now = str(int(time.time()))
    next_id = FIRST_MSG_ID
    wrong = 0

    def events(texts: list[str], count: int) -> list[tuple[str, Any]]:
        nonlocal next_id
        out = []
        for i in range(count):
            said = texts[i % len(texts)]
            xml = text_xml(f"oTurn{i % args.people:07d}", said, next_id, now)
            next_id += 1
            out.append((said, parse(xml.encode())))
        return out

    async def drive(batch: list[tuple[str, Any]]) -> tuple[float, float]:
        nonlocal wrong
        pos = 0

        async def worker() -> None:
            nonlocal pos, wrong
            while pos < len(batch):
                said, ev = batch[pos]
                pos += 1
                reply = await pipeline.handle(ev)
                if reply is None or f"<![CDATA[{expected[said]}]]>" not in reply or ACCOUNT not in reply:
                    wrong += 1

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return time.process_time() - cpu0, time.perf_counter() - wall0

    try:
        await drive(events(["帮助"], args.people))  # every person known, as in the webhook bench
        await drive(events([s for s, _ in MIX], 2000))  # warm caches
        mix = [s for s, _ in MIX]
        runs: list[tuple[str, list[str]]] = [("mix", mix)]
        if not args.mix_only:
            runs += [(said, [said]) for said in dict.fromkeys(mix)]
        prof = cProfile.Profile() if args.profile else None
        print(f"{'texts':10} {'turns':>6} {'cpu µs/turn':>11} {'wall µs/turn':>12}")
        for label, texts in runs:
            batch = events(texts, args.turns)
            if prof is not None and label == "mix":
                prof.enable()
            cpu, wall = await drive(batch)
            if prof is not None and label == "mix":
                prof.disable()
            n = len(batch)
            print(f"{label:10} {n:6d} {cpu / n * 1e6:11.0f} {wall / n * 1e6:12.0f}")
        if prof is not None:
            prof.dump_stats(args.profile)
            print(f"profile (mix, main thread): {args.profile}")
    finally:
        await runner.cleanup()
    if wrong:
        print(f"WRONG replies: {wrong}")
    return 1 if wrong else 0


def _event_parser() -> Callable[[bytes], Any]:
    """The webhook's own XML → Event path (older builds had another; kept to compare with them)."""
    try:
        from webhooks.fields import mp_event
        from webhooks.guard import parse_xml

        return lambda raw: mp_event(parse_xml(raw))
    except ImportError:
        from handlers.events import Event
        from webhooks.guard import parse_mp  # type: ignore[attr-defined]

        return lambda raw: Event.from_message(parse_mp(raw))  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.turncost", description=__doc__.split("\n")[0])
    p.add_argument("--turns", type=int, default=8000, help="turns per measurement (default 8000)")
    p.add_argument("--concurrency", type=int, default=64, help="turns in flight (default 64)")
    p.add_argument("--people", type=int, default=2000, help="distinct openids (default 2000)")
    p.add_argument("--mix-only", action="store_true", help="only the mix, not each text alone")
    p.add_argument("--profile", metavar="FILE", help="cProfile the mix's turns (main thread) into FILE")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="turncost-") as d:
        settings = bench_settings(Path(d), "http://127.0.0.1:9/cgi-bin/")
        prepare_database(settings)
        tune_gc_like_the_product()
        return asyncio.run(_run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
