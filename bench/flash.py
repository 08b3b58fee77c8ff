"""A flash-sale rush through the real webhook (safe mode): N `抢` from P customers for S units, limit 1,
against plain `帮助` through the same server in the same run.

    .venv/bin/python -m bench.flash                   # 20,000 抢 from 5,000 customers for 500 units
    .venv/bin/python -m bench.flash --quick           # 2,000 from 500 for 50
    BENCH_REDIS_URL=redis://127.0.0.1:6379/10 \
    .venv/bin/python -m bench.flash --processes 2 --database postgres   # + the Redis gate

The server is `bot.app.create_app` on a fresh SQLite database (one process, pinned to one CPU when
there are two); what goes out by API (pay orders, the pay QR's upload, messages) goes to the MP
simulator in a process of its own, pinned beside the load generator: WeChat's side of a take is not
the server's CPU (its CPU is reported apart, `simulator_cpu_ms_per_message`). This process is the
load generator (aiohttp, fixed concurrency, requests sealed before the clock starts). After the run
the database is read: how many units are held, whether any was oversold or sold over the limit.
Results go to bench/results/flash-<time>.json (see docs/benchmarks.md).

With `--processes 2 --database postgres` two server processes share the port (SO_REUSEPORT) on a
fresh PostgreSQL database of the bench's own (`BENCH_PG_URL`, dropped after) with Redis
(`--redis-url`, default `BENCH_REDIS_URL`; that one Redis database is flushed before the run), so
the Redis Lua gate stands in front of the database. The catalog and the sale are created once, by
this process; the MP simulator runs in a process of its own that both servers call. Nothing is
pinned: the servers, the simulator and this generator share the CPUs, as in bench/webhook.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    MCH_ID,
    PAY_KEY,
    REDIS_URL,
    RESULTS,
    ROOT,
    TOKEN,
    Server,
    bench_settings,
    listen,
    machine,
    open_reply,
    pct,
    pin,
    postgres_database,
    prepare_database,
    proc_cpu,
    seal_request,
    text_xml,
    tune_gc_like_the_product,
)

FIRST_MSG_ID = 8_000_000_000_000_000_000
CODE = "rush"


def serve(workdir: Path, args: argparse.Namespace) -> None:
    """One server calling the simulator at --api-base: alone on a fresh SQLite database it prepares
    (catalog and sale), or one of several on a database the orchestrator prepared (--database-url)."""
    from aiohttp import web

    from bot import logs
    from bot.app import create_app

    shared_db = args.database_url is not None
    redis_url = args.redis_url if shared_db else None
    settings = bench_settings(
        workdir, args.api_base, database_url=args.database_url, redis_url=redis_url, pay_base=args.pay_base
    )
    if not shared_db:
        prepare_database(settings, demo_catalog=True)
        asyncio.run(_sale(settings, args.stock))
    logs.configure(settings.log_format, logging.WARNING)
    sock = listen(args.port, shared=args.shared)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    tune_gc_like_the_product()
    web.run_app(create_app(settings), sock=sock, print=None, access_log=None)


def serve_simulator() -> None:
    """WeChat's side for every server: the MP simulator (one token issuer, as WeChat is) and the
    WeChat Pay simulator, on two ports of one process."""
    from aiohttp import web

    from bot.sandbox.mp_sim import MpSimulator
    from bot.sandbox.pay_sim import PaySimulator

    logging.basicConfig(level=logging.WARNING)
    sims = [
        (MpSimulator(APP_ID, APP_SECRET).app, listen()),
        (PaySimulator(APP_ID, MCH_ID, PAY_KEY).app, listen()),
    ]
    print("PORT " + " ".join(str(sock.getsockname()[1]) for _, sock in sims), flush=True)

    async def run() -> None:
        for app, sock in sims:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()  # until stopped

    asyncio.run(run())


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
                hold_minutes=60,  # no hold may lapse during the run: the count is of units held
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
            # No passive reply: a take (its answer goes by API with the pay QR), or a turn past the
            # reply budget (CHATORDER_REPLY_BUDGET: its answer goes by API too).
            content = str(reply.get("Content", "")) if isinstance(reply, dict) else "by API"
            # What each kind of answer says (flows/texts.py: HELP, FLASH_HAVE_*, FLASH_TAKEN,
            # FLASH_SOLD_OUT, FLASH_THROTTLED, flash_limit); 帮助 mentions 抢光 too, so it comes first.
            words = ("直接说需求", "已经抢到", "抢到了", "手慢了", "别急", "每人限")
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


def _measured(pids: list[int], run: Any, simulator: int | None = None) -> dict[str, Any]:
    """Run a phase and add the servers' CPU per message (user + system from /proc, summed over the
    server processes: unlike wall time, not skewed by a busy machine) to its figures."""
    before, sim_before = proc_cpu(pids), proc_cpu(simulator) if simulator else 0.0
    result: dict[str, Any] = asyncio.run(run)
    per = 1000 / result["requests"]
    result["server_cpu_ms_per_message"] = round((proc_cpu(pids) - before) * per, 3)
    if simulator:
        result["simulator_cpu_ms_per_message"] = round((proc_cpu(simulator) - sim_before) * per, 3)
    return result


# Winners offered WeChat Pay: a prepay order came back (its code_url became the pay QR they were sent).
PAY_OFFERED = "SELECT count(*) FROM payments WHERE code_url IS NOT NULL AND order_id IS NOT NULL"
# Pay slots made before the rush (flows/flash_slots.py): the bench waits for them, as a sale announced
# ahead would have them; the winners' pay QRs come from them.
SLOTS_READY = "SELECT count(*) FROM flash_pay_slots WHERE media_id IS NOT NULL"
HELD = "SELECT count(*) FROM flash_takes WHERE status IN ('held', 'paid')"
MOST = (
    "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM flash_takes "
    "WHERE status IN ('held', 'paid') GROUP BY openid) AS per"
)


def _count_postgres(url: str, stock: int) -> dict[str, Any]:
    """The same figures as _count, read from the PostgreSQL database both servers wrote."""
    from sqlalchemy import text

    from store.db import make_engine

    async def read() -> dict[str, Any]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                held = int(await conn.scalar(text(HELD)) or 0)
                most = int(await conn.scalar(text(MOST)) or 0)
                orders = int(await conn.scalar(text("SELECT count(*) FROM orders")) or 0)
                offered = int(await conn.scalar(text(PAY_OFFERED)) or 0)
                available = await conn.scalar(
                    text(f"SELECT available FROM flash_sales WHERE code = '{CODE}'")
                )
        finally:
            await engine.dispose()
        return {**_outcome(stock, held, most, orders, offered), "available": available}

    return asyncio.run(read())


def _count(db: Path, stock: int) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        held = conn.execute(HELD).fetchone()[0]
        most = conn.execute(MOST).fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        offered = conn.execute(PAY_OFFERED).fetchone()[0]
    return _outcome(stock, held, most, orders, offered)


def _outcome(stock: int, held: int, most: int, orders: int, offered: int) -> dict[str, Any]:
    oversold = max(0, held - stock)
    return {
        "held": held,
        "oversold": oversold,
        "most_per_customer": most,
        "orders": orders,
        "pay_offered": offered,
    }


def _simulator() -> tuple[subprocess.Popen[str], list[str]]:
    """The simulators' process, and what the servers are told: --api-base (MP) and --pay-base."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.flash", "--simulate"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"simulator did not start (said {line!r})")
    mp, pay = line.split()[1:]
    return proc, ["--api-base", f"http://127.0.0.1:{mp}/cgi-bin/", "--pay-base", f"http://127.0.0.1:{pay}/"]


def _phases(
    pids: list[int],
    port: int,
    args: argparse.Namespace,
    slots_ready: Callable[[], int],
    simulator: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Once the sale's pay slots are made, the rush; then as many plain 帮助 through the same servers."""
    count, people = args.count, args.people
    waited = _wait_for_slots(slots_ready, min(args.stock, people))
    rush = _measured(pids, _fire(port, "抢", count, people, args.concurrency, FIRST_MSG_ID), simulator)
    help_ = _measured(
        pids, _fire(port, "帮助", count, people, args.concurrency, FIRST_MSG_ID + count), simulator
    )
    rush["slots_ready_after_s"] = waited
    return rush, help_


def _wait_for_slots(ready: Callable[[], int], wanted: int, within: float = 300.0) -> float:
    """Seconds until `wanted` pay slots are made (the server's job makes them at start-up)."""
    t0 = time.perf_counter()
    while ready() < wanted:
        if time.perf_counter() - t0 > within:
            raise SystemExit(f"pay slots not made within {within:.0f} s")
        time.sleep(0.2)
    return round(time.perf_counter() - t0, 1)


def _sqlite_scalar(db: Path, query: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(query).fetchone()[0])


def _postgres_scalar(url: str, query: str) -> int:
    from sqlalchemy import text

    from store.db import make_engine

    async def read() -> int:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return int(await conn.scalar(text(query)) or 0)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _run_sqlite(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    cpus = (0, 1) if (os.cpu_count() or 1) >= 2 else (None, None)
    sim, bases = _simulator()
    if cpus[1] is not None:  # WeChat's side runs beside the load generator, not on the server's CPU
        os.sched_setaffinity(sim.pid, {cpus[1]})
    try:
        server = Server("bench.flash", ["--stock", str(args.stock), *bases], cpus[0])
        try:
            pin(cpus[1])
            ready = functools.partial(_sqlite_scalar, Path(server.dir.name) / "bench.db", SLOTS_READY)
            rush, help_ = _phases(server.pids, server.port, args, ready, sim.pid)
        finally:
            server.stop(keep_dir=True)
    finally:
        _stop(sim)
    outcome = _count(Path(server.dir.name) / "bench.db", args.stock)
    server.dir.cleanup()
    return rush, help_, outcome


def _run_postgres(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Several servers on one fresh PostgreSQL database with the Redis gate; the sale made once."""
    import redis

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()  # only the bench's own Redis database: the gate's counters start from the sale
    with postgres_database("chatorder_flash") as url, contextlib.ExitStack() as stack:
        settings = bench_settings(Path("."), "http://127.0.0.1:9/cgi-bin/", database_url=url)
        prepare_database(settings, demo_catalog=True)
        asyncio.run(_sale(settings, args.stock))
        sim, bases = _simulator()
        stack.callback(_stop, sim)
        serve = ["--database-url", url, "--redis-url", args.redis_url, *bases]
        server = Server("bench.flash", serve, None, processes=args.processes)
        stack.callback(server.stop)  # before the simulator, and before the database is dropped
        ready = functools.partial(_postgres_scalar, url, SLOTS_READY)
        rush, help_ = _phases(server.pids, server.port, args, ready, sim.pid)
        stack.close()  # the servers have finished their last writes before the count
        outcome = _count_postgres(url, args.stock)
    lefts = [int(client.get(k) or 0) for k in client.scan_iter("chatorder:flash:*:left")]
    outcome["redis_left"] = lefts[0] if len(lefts) == 1 else lefts
    client.flushdb()
    client.close()
    return rush, help_, outcome


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.flash")
    parser.add_argument("--quick", action="store_true", help="2,000 抢 from 500 customers for 50 units")
    parser.add_argument("--stock", type=int)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat it all (a fresh server each time); medians at the end"
    )
    parser.add_argument("--processes", type=int, default=1, help="server processes sharing the port")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="one process on SQLite, or a fresh PostgreSQL database (BENCH_PG_URL) with the Redis gate",
    )
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help=f"Redis with --database postgres ({REDIS_URL})"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    parser.add_argument("--pay-base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.count, args.people, stock = (2_000, 500, 50) if args.quick else (20_000, 5_000, 500)
    args.stock = stock = args.stock or stock
    if args.simulate:
        serve_simulator()
        return 0
    if args.serve:
        pin(args.cpu)
        serve(args.dir, args)
        return 0
    if args.database == "sqlite" and args.processes > 1:
        parser.error("several processes need a shared database: add --database postgres")
    run = _run_postgres if args.database == "postgres" else _run_sqlite
    results = [_round(args, run) for _ in range(args.rounds)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"flash-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    saved = results[0] if len(results) == 1 else {"rounds": results}
    path.write_text(json.dumps(saved, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(saved, ensure_ascii=False, indent=2))
    ok = all(
        r["outcome"]["held"] == min(args.stock, args.people)
        and r["outcome"]["oversold"] == 0
        and r["outcome"]["most_per_customer"] <= 1
        for r in results
    )
    print(_verdict(args, results, ok), file=sys.stderr)
    return 0 if ok else 1


def _round(args: argparse.Namespace, run: Any) -> dict[str, Any]:
    rush, help_, outcome = run(args)
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "processes": args.processes,
        "database": args.database,
        "stock": args.stock,
        "people": args.people,
        "rush": rush,
        "help": help_,
        "outcome": outcome,
        "rush_vs_help": round(rush["per_second"] / help_["per_second"], 2),
        "rush_vs_help_cpu": round(help_["server_cpu_ms_per_message"] / rush["server_cpu_ms_per_message"], 2),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def _verdict(args: argparse.Namespace, results: list[dict[str, Any]], exact: bool) -> str:
    """One line: the medians against issue 13's targets, and whether every round sold exactly."""
    ratio = statistics.median(r["rush_vs_help"] for r in results)
    cpu = statistics.median(r["rush_vs_help_cpu"] for r in results)
    p99 = statistics.median(r["rush"]["p99_ms"] for r in results)
    met = ratio >= 0.8 and p99 < 100
    where = f"{args.processes} process{'es' if args.processes > 1 else ''}, {args.database}"
    rounds = f", median of {len(results)}" if len(results) > 1 else ""
    return (
        f"[{where}{rounds}] rush/help {ratio:.2f} (CPU {cpu:.2f}; target ≥ 0.80) · p99 {p99:.0f} ms "
        f"(target < 100 ms) · {'met' if met else 'NOT met'} · "
        + ("exact: held = stock, 0 oversold, ≤ 1 each" if exact else "FAILED: held/oversold/limit")
    )


if __name__ == "__main__":
    sys.exit(main())
