"""A flash-sale rush through the real webhook (safe mode): N `抢` from P customers for S units, limit 1,
against plain `帮助` through the same server in the same run.

    .venv/bin/python -m bench.flash                   # 20,000 抢 from 5,000 customers for 500 units
    .venv/bin/python -m bench.flash --quick           # 2,000 from 500 for 50

The server is `bot.app.create_app` on a fresh SQLite database (one process, pinned to one CPU when
there are two), with the MP simulator in-process for what goes out by API; this process is the
load generator (aiohttp, fixed concurrency, requests sealed before the clock starts). After the run
the database is read: how many units are held, whether any was oversold or sold over the limit.
Results go to bench/results/flash-<time>.json (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    RESULTS,
    TOKEN,
    Server,
    bench_settings,
    listen,
    machine,
    open_reply,
    pct,
    pin,
    prepare_database,
    seal_request,
    text_xml,
    tune_gc_like_the_product,
)

FIRST_MSG_ID = 8_000_000_000_000_000_000
CODE = "rush"


def serve(workdir: Path, stock: int) -> None:
    from aiohttp import web

    from bot.app import create_app
    from bot.sandbox.mp_sim import MpSimulator

    sim = MpSimulator(APP_ID, APP_SECRET)
    sim_sock = listen()
    settings = bench_settings(workdir, f"http://127.0.0.1:{sim_sock.getsockname()[1]}/cgi-bin/")
    prepare_database(settings, demo_catalog=True)
    asyncio.run(_sale(settings, stock))
    sock = listen()
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    async def simulator(_app: web.Application) -> Any:
        runner = web.AppRunner(sim.app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sim_sock).start()
        yield
        await runner.cleanup()

    tune_gc_like_the_product()
    app = create_app(settings)
    app.cleanup_ctx.append(simulator)
    web.run_app(app, sock=sock, print=None, access_log=None)


async def _sale(settings: Any, stock: int) -> None:
    from sqlalchemy import select

    from store.db import make_engine, make_sessionmaker
    from store.models import FlashSale, Package, utcnow

    engine = make_engine(settings.database_url)
    now = utcnow()
    async with make_sessionmaker(engine).begin() as session:
        package = await session.scalar(select(Package).order_by(Package.price_fen.desc()).limit(1))
        assert package is not None
        session.add(
            FlashSale(
                code=CODE,
                title="",
                package_id=package.id,
                price_fen=max(1, package.price_fen // 10),
                tiers=[],
                stock=stock,
                available=stock,
                taken=0,
                per_customer=1,
                starts_at=now - dt.timedelta(minutes=1),
                ends_at=now + dt.timedelta(hours=2),
                hold_minutes=5,
                remind_minutes=[],
                remarket=[],
                status="scheduled",
                created_at=now,
            )
        )
    await engine.dispose()


async def _fire(
    port: int, word: str, count: int, people: int, concurrency: int, start: int
) -> dict[str, Any]:
    import aiohttp
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    now = str(int(time.time()))
    sealed = []
    for n in range(count):
        openid = f"o_rush_{n % people:05d}"
        xml = text_xml(openid, word, start + n, now)
        sealed.append(seal_request(crypto, xml, openid, f"n{start + n}", now, "safe")[:2])
    latencies: list[float] = []
    replies: dict[str, int] = {}
    queue = iter(sealed)
    base = f"http://127.0.0.1:{port}"

    async def worker(http: aiohttp.ClientSession) -> None:
        for url, body in queue:
            t0 = time.perf_counter()
            async with http.post(base + str(url), data=body) as resp:
                raw = await resp.read()
            latencies.append(time.perf_counter() - t0)
            reply = open_reply(crypto, raw, True)
            content = str(reply.get("Content", "")) if isinstance(reply, dict) else "no passive reply"
            words = ("可以这样跟我说", "已经抢到", "抢到了", "抢光", "别急", "每人限")
            kind = next((k for k in words if k in content), content[:12])
            replies[kind] = replies.get(kind, 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "word": word,
        "requests": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "replies": replies,
    }


def _cpu_seconds(pid: int) -> float:
    """The server's user + system CPU so far (Linux /proc): unlike wall time, not skewed by a busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measured(pid: int, run: Any) -> dict[str, Any]:
    """Run a phase and add the server's CPU per message to its figures."""
    before = _cpu_seconds(pid)
    result: dict[str, Any] = asyncio.run(run)
    result["server_cpu_ms_per_message"] = round((_cpu_seconds(pid) - before) * 1000 / result["requests"], 3)
    return result


def _count(db: Path, stock: int) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        held = conn.execute("SELECT count(*) FROM flash_takes WHERE status IN ('held', 'paid')").fetchone()[0]
        most = conn.execute(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM flash_takes "
            "WHERE status IN ('held', 'paid') GROUP BY openid)"
        ).fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    return {"held": held, "oversold": max(0, held - stock), "most_per_customer": most, "orders": orders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.flash")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stock", type=int)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    count, people, stock = (2_000, 500, 50) if args.quick else (20_000, 5_000, 500)
    stock = args.stock or stock
    if args.serve:
        pin(args.cpu)
        serve(args.dir, stock)
        return 0
    cpus = (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)
    server = Server("bench.flash", ["--stock", str(stock)], cpus[0])
    try:
        pin(cpus[1])
        rush = _measured(
            server.proc.pid, _fire(server.port, "抢", count, people, args.concurrency, FIRST_MSG_ID)
        )
        help_ = _measured(
            server.proc.pid, _fire(server.port, "帮助", count, people, args.concurrency, FIRST_MSG_ID + count)
        )
    finally:
        server.stop(keep_dir=True)
    outcome = _count(Path(server.dir.name) / "bench.db", stock)
    server.dir.cleanup()
    result = {
        "machine": machine(),
        "stock": stock,
        "people": people,
        "rush": rush,
        "help": help_,
        "outcome": outcome,
        "rush_vs_help": round(rush["per_second"] / help_["per_second"], 2),
        "rush_vs_help_cpu": round(help_["server_cpu_ms_per_message"] / rush["server_cpu_ms_per_message"], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"flash-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    ok = (
        outcome["held"] == min(stock, people)
        and outcome["oversold"] == 0
        and outcome["most_per_customer"] <= 1
    )
    print("OK" if ok else "FAILED: held/oversold/limit", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
