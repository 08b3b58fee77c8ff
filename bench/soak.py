"""Soak: mixed traffic — whole orders in chat, payments, staff actions — at half the measured
throughput for a while, watching the server's memory, errors and outbox.

    .venv/bin/python -m bench.soak                          # calibrate 30 s, then 10 minutes
    .venv/bin/python -m bench.soak --minutes 3 --rate 0.5   # a fixed rate (journeys per second)

One *journey* is what a customer and the staff do for one order: the whole order conversation
(bench/ordering.py's customer: search → pick → 下单 → every form step → 确认 → 我的订单), paying it
on the WeChat Pay simulator's page (which sends the signed notification to /pay/wechat/notify, as
WeChat Pay does), and a staff member approving it from WeCom work chat (`通过 <单号>`, a signed and
encrypted callback to /wechat/work), then the customer asking `我的订单` again.

The server (`--serve`, a subprocess) is `bot.app.create_app` on SQLite with the demo catalog and demo
staff, its MP, WeCom and WeChat Pay APIs pointing at the sandbox simulators on ports of its own.
First journeys run back to back at a fixed concurrency for `--calibrate` seconds: that is the
measured throughput; the soak then starts journeys at half that rate. Every 15 s it samples the
server's RSS, the outbox depth (/metrics) and the errors so far; it prints a summary and writes
bench/results/soak-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    BRAND,
    MCH_ID,
    PAY_KEY,
    RESULTS,
    TOKEN,
    Server,
    listen,
    prepare_database,
)

CORP_ID, AGENT_ID, WECOM_SECRET = "ww0123456789abcdef", "1000002", "soak-wecom-secret"
WECOM_TOKEN, WECOM_AES = "worktoken", "ZGVtby13ZWNvbS10ZXN0LWtleS0zMi1ieXRlcyEhISE"
SAMPLE_EVERY = 15.0


# --- the server -----------------------------------------------------------------------------------


def serve(workdir: Path) -> None:
    from aiohttp import web

    from bench.common import tune_gc_like_the_product
    from bot.app import create_app
    from settings import load_settings

    sock, mp_sock, pay_sock, wecom_sock = listen(), listen(), listen(), listen()
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'soak.db'}",
        public_url=base,
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_token=TOKEN,
        wechat_aes_key=AES_KEY,
        wechat_api_base=f"http://127.0.0.1:{mp_sock.getsockname()[1]}/cgi-bin/",
        wecom_corp_id=CORP_ID,
        wecom_agent_id=AGENT_ID,
        wecom_secret=WECOM_SECRET,
        wecom_token=WECOM_TOKEN,
        wecom_aes_key=WECOM_AES,
        wecom_api_base=f"http://127.0.0.1:{wecom_sock.getsockname()[1]}/cgi-bin/",
        wechatpay_mch_id=MCH_ID,
        wechatpay_api_key=PAY_KEY,
        wechatpay_api_base=f"http://127.0.0.1:{pay_sock.getsockname()[1]}/",
        log_format="text",
        brand=BRAND,
        redis_url=None,
        sandbox=False,
    )
    prepare_database(settings, demo_catalog=True)
    _demo_staff(settings.database_url)
    # The simulators keep everything they were sent: they run in a process of their own, so the RSS
    # measured is the server's alone.
    ports = " ".join(str(x.getsockname()[1]) for x in (sock, mp_sock, pay_sock, wecom_sock))
    sims = multiprocessing.get_context("fork").Process(
        target=_run_simulators, args=(mp_sock, pay_sock, wecom_sock), daemon=True
    )
    sims.start()
    for sim_sock in (mp_sock, pay_sock, wecom_sock):
        sim_sock.close()  # the simulators' process has them
    print(f"PORT {ports}", flush=True)
    tune_gc_like_the_product()
    app = create_app(settings)
    web.run_app(app, sock=sock, print=None, access_log=None)


def _run_simulators(mp_sock: Any, pay_sock: Any, wecom_sock: Any) -> None:
    from aiohttp import web

    from bench.ordering import _bench_routes
    from bot.sandbox.mp_sim import MpSimulator
    from bot.sandbox.pay_sim import PaySimulator
    from bot.sandbox.wecom_sim import WeComSimulator

    mp = MpSimulator(APP_ID, APP_SECRET)
    _bench_routes(mp)
    pay = PaySimulator(APP_ID, MCH_ID, PAY_KEY)
    wecom = WeComSimulator(corp_id=CORP_ID, agent_id=AGENT_ID, secret=WECOM_SECRET)

    async def run() -> None:
        for sim_app, sock in ((mp.app, mp_sock), (pay.app, pay_sock), (wecom.app, wecom_sock)):
            runner = web.AppRunner(sim_app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()  # until the server process ends

    asyncio.run(run())


def _demo_staff(url: str) -> None:
    from store.db import make_engine, make_sessionmaker
    from store.staff import ensure_demo_staff

    async def run() -> None:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                await ensure_demo_staff(session)
        finally:
            await engine.dispose()

    asyncio.run(run())


# --- the load -------------------------------------------------------------------------------------


class Load:
    def __init__(self, server: Server) -> None:
        from bench.ordering import Generator
        from bot.sandbox.wecom_sim import WeComSimulator
        from store.staff import DEMO_STAFF

        self.server = server
        self.db = Path(server.dir.name) / "soak.db"
        self.gen = Generator({})
        self.staff = DEMO_STAFF[0]
        self.wecom = WeComSimulator(
            corp_id=CORP_ID, agent_id=AGENT_ID, secret=WECOM_SECRET, token=WECOM_TOKEN, aes_key=WECOM_AES
        )
        self.base = f"http://127.0.0.1:{server.ports[0]}"
        self.pay_base = f"http://127.0.0.1:{server.ports[2]}"
        self.started = 0
        self.outcomes: dict[str, int] = {}
        self.errors: list[str] = []
        self.seconds: list[float] = []
        self.pay_session: Any = None

    async def journey(self, n: int) -> None:
        from bench.ordering import SCENARIOS

        t0 = time.perf_counter()
        outcome = "done"
        try:
            conv = await self.gen.order(f"oSoak{n:07d}", 50_000 + n, n % len(SCENARIOS))
            if conv.outcome == "sold_out":
                outcome = "sold_out"
                return
            if conv.outcome != "ordered" or not conv.order_number:
                raise JourneyError(f"order: {conv.outcome}")
            await self._pay(conv.order_number)
            await self._wait(_PAID, conv.order_number, "the payment was not applied")
            push = await self.wecom.post(
                self.base, self.wecom.text_xml(self.staff, f"通过 {conv.order_number}")
            )
            if push.status != 200:
                raise JourneyError(f"staff: http {push.status}")
            await self._wait(_APPROVED, conv.order_number, "staff approval not applied")
        except JourneyError as exc:
            outcome = "error"
            self.errors.append(str(exc))
        except Exception as exc:  # the bench must keep going; the error is counted
            outcome = "error"
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if outcome == "done":
                self.seconds.append(time.perf_counter() - t0)

    async def _pay(self, number: str) -> None:
        out_trade_no = await asyncio.to_thread(self._query_one, _PAYMENT, number)
        if not out_trade_no:
            raise JourneyError("pay: no payment for the order")
        async with self.pay_session.post(f"{self.pay_base}/page/{out_trade_no}/pay", data={}) as r:
            page = await r.text()
        if r.status != 200 or "商户已确认收到通知" not in page:
            raise JourneyError(f"pay: notification not acknowledged (http {r.status})")

    async def _wait(self, sql: str, number: str, what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._query_one, sql, number):
                return
            await asyncio.sleep(0.2)
        raise JourneyError(what)

    def _query_one(self, sql: str, number: str) -> Any:
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)) as con:
            row = con.execute(sql, (number,)).fetchone()
        return row[0] if row else None


_PAYMENT = (
    "SELECT p.out_trade_no FROM payments p JOIN orders o ON o.id = p.order_id"
    " WHERE o.number = ? ORDER BY p.id DESC LIMIT 1"
)
_PAID = "SELECT 1 FROM orders WHERE number = ? AND status != '待支付'"
_APPROVED = "SELECT 1 FROM orders WHERE number = ? AND review = 'approved'"


class JourneyError(Exception):
    """A journey step got an answer it should not have (counted as an error in the report)."""


async def calibrate(load: Load, seconds: float, concurrency: int) -> float:
    """Journeys per second with `concurrency` of them always under way."""
    stop = time.monotonic() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            load.started += 1
            await load.journey(load.started)
            done += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.monotonic() - t0)


async def soak(load: Load, rate: float, minutes: float) -> list[dict[str, Any]]:
    samples: list[dict[str, Any]] = []
    tasks: set[asyncio.Task[None]] = set()
    end = time.monotonic() + minutes * 60
    next_sample = time.monotonic()
    t0 = time.monotonic()
    while time.monotonic() < end:
        load.started += 1
        task = asyncio.create_task(load.journey(load.started))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if time.monotonic() >= next_sample:
            samples.append(await sample(load, time.monotonic() - t0, len(tasks)))
            next_sample += SAMPLE_EVERY
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    await asyncio.sleep(2)  # let the outbox drain what the last journeys caused
    samples.append(await sample(load, time.monotonic() - t0, 0))
    return samples


def _rss_kb(pid: int) -> int:
    found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) if found else 0


async def sample(load: Load, at: float, in_flight: int) -> dict[str, Any]:
    rss_kb = _rss_kb(load.server.proc.pid)
    async with load.gen.session.get("/metrics") as r:
        metrics = await r.text()
    depth = re.search(r"^chatorder_outbox_depth (\S+)$", metrics, re.M)
    s = {
        "t": round(at),
        "rss_mb": round(rss_kb / 1024, 1),
        "outbox_depth": float(depth.group(1)) if depth else None,
        "journeys": dict(load.outcomes),
        "in_flight": in_flight,
        "errors": len(load.errors),
    }
    print(json.dumps(s), flush=True)
    return s


async def run(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    import aiohttp

    load = Load(server)
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(
            load.base, connector=aiohttp.TCPConnector(limit=0), timeout=timeout
        ) as load.gen.session,
        aiohttp.ClientSession(f"http://127.0.0.1:{server.ports[1]}", timeout=timeout) as load.gen.sim_session,
        aiohttp.ClientSession(timeout=timeout) as load.pay_session,
    ):
        rate = args.rate
        measured = None
        if rate is None:
            measured = await calibrate(load, args.calibrate, args.concurrency)
            rate = measured / 2
            how = f"at concurrency {args.concurrency}; soaking at {rate:.2f}/s"
            print(f"measured {measured:.2f} journeys/s {how}", flush=True)
        calibration = {"outcomes": dict(load.outcomes), "errors": list(load.errors)}
        load.outcomes, load.errors, load.seconds = {}, [], []
        samples = await soak(load, rate, args.minutes)
        await load.wecom.close()
    rss = [s["rss_mb"] for s in samples]
    baseline = rss[min(1, len(rss) - 1)]  # after the first 15 s: imports and caches are warm
    return {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "minutes": args.minutes,
        "measured_journeys_per_s": measured,
        "rate_journeys_per_s": rate,
        "calibration": calibration,
        "journeys": load.outcomes,
        "errors": len(load.errors),
        "error_kinds": _kinds(load.errors),
        "journey_seconds_p50": statistics.median(load.seconds) if load.seconds else None,
        "journey_seconds_p95": statistics.quantiles(load.seconds, n=20)[-1]
        if len(load.seconds) > 1
        else None,
        "rss_mb_first": rss[0],
        "rss_mb_baseline": baseline,
        "rss_mb_max": max(rss),
        "rss_mb_end": rss[-1],
        "rss_growth_pct": round((rss[-1] - baseline) / baseline * 100, 1),
        "outbox_depth_max": max((s["outbox_depth"] or 0) for s in samples),
        "outbox_depth_end": samples[-1]["outbox_depth"],
        "samples": samples,
    }


def _kinds(errors: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in errors:
        out[e[:80]] = out.get(e[:80], 0) + 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="journeys per second (default: half the calibrated rate)")
    parser.add_argument("--calibrate", type=float, default=30.0, help="seconds of calibration")
    parser.add_argument("--concurrency", type=int, default=8, help="journeys under way while calibrating")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.dir)
        return 0
    server = Server("bench.soak", [], None)
    try:
        result = asyncio.run(run(args, server))
    finally:
        server.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"written to {path}")
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
