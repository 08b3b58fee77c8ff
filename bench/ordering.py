"""Ordering under load: N customers each complete a whole order in chat, all at once, in safe mode.

    .venv/bin/python -m bench.ordering                      # 500 customers, all at once
    .venv/bin/python -m bench.ordering --quick              # 50 customers, a smoke test
    .venv/bin/python -m bench.ordering --customers 200 --concurrency 50 --rounds 3
    .venv/bin/python -m bench.ordering --think 1.5-4        # 1.5–4 s reading/typing before each message
    .venv/bin/python -m bench.ordering --show 2             # also print two customers' transcripts
    .venv/bin/python -m bench.ordering --profile bench/results/prof-ordering   # py-spy (raw, --gil)

Three kinds of process (see docs/benchmarks.md):

* the server: ``python -m bench.ordering --serve``, pinned to one CPU: ``bot.app.create_app`` on a
  fresh, migrated SQLite database with the demo catalog, after ``bot.app.tune_gc()``, as
  ``chatorder demo`` does. The MP API base points at a ``bot.sandbox.mp_sim.MpSimulator`` served
  on a second port of the same process (media downloads and customer-service messages go there);
  a bench-only long-poll on that port lets the load generator see replies that went by API;
* the load generator: a ``multiprocessing`` process pinned to the other CPU. Every simulated
  customer is a task that sends one signed, encrypted message, waits for the answer (decrypted
  and checked, or fetched from the simulator when the webhook said ``success``), reads it like a
  person and sends the next: search → pick 1 → ``下单 ①`` → one answer per form step (chosen by
  the step's prompt, flows.texts.ASK_*) → ``确认`` → ``我的订单``. By default the next message goes
  the instant the answer arrived (zero think time: the issue's figure); ``--think LO-HI`` makes each
  customer pause a seeded, uniformly drawn LO–HI seconds before every message, as people read and type;
* this process: starts the others, counts the orders in the database afterwards, prints and
  writes ``bench/results/ordering-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ACCOUNT,
    AES_KEY,
    APP_ID,
    APP_SECRET,
    RESULTS,
    ROOT,
    TOKEN,
    Server,
    bench_settings,
    busy_cpu,
    listen,
    machine,
    open_reply,
    pct,
    pin,
    prepare_database,
    proc_cpu,
    seal_request,
    serve_with_simulator,
    text_xml,
)

FIRST_MSG_ID = 8_000_000_000_000_000_000
MEASURED_PREFIX, WARM_PREFIX = "oOrder", "oWarm"

# (what the customer searches, which result, which package). Customers take them in turn. Every one
# of these packages has unlimited stock in store/demo_catalog.yaml, so every customer can order;
# together they ask every kind of form step (flows.texts.ASK_*).
SCENARIOS: list[tuple[str, str, str]] = [
    ("搜 咖啡", "1", "下单 ①"),  # brand, link, selling points, publish time, images
    ("搜 课程", "1", "下单 ①"),  # contact
    ("搜 信息流投放", "1", "下单 ①"),  # brand, link, audience, selling points, contact
    ("搜 竞品分析", "1", "下单 ①"),  # brand, link, notes
    ("搜 科技前线观察", "1", "下单 ①"),  # brand, link, copy, publish time, images
    ("搜 阿森聊游戏", "1", "下单 ②"),  # brand, link, selling points, publish time, mentions
]
STEP = re.compile(r"第 (\d+)/(\d+) 步：")


def answers() -> dict[str, str]:
    """Form prompt (flows.texts.ASK_*) -> a valid answer."""
    from flows import texts

    when = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=5)
    return {
        texts.ASK_BRAND: texts.EXAMPLE_BRAND,
        texts.ASK_LINK: texts.EXAMPLE_LINK,
        texts.ASK_SELLING_POINTS: texts.EXAMPLE_SELLING_POINTS,
        texts.ASK_COPY: texts.EXAMPLE_COPY,
        texts.ASK_PUBLISH_TIME: f"{when.month}月{when.day}日 19:00",
        texts.ASK_MENTIONS: texts.EXAMPLE_MENTIONS,
        texts.ASK_IMAGES: "跳过",
        texts.ASK_AUDIENCE: texts.EXAMPLE_AUDIENCE,
        texts.ASK_CONTACT: texts.EXAMPLE_CONTACT,
        texts.ASK_NOTES: "无",
    }


# --------------------------------------------------------------------------------------------------
# Server (run as `python -m bench.ordering --serve --dir D --cpu N`)


def serve(workdir: Path) -> None:

    from bot.sandbox.mp_sim import MpSimulator

    sim = MpSimulator(APP_ID, APP_SECRET)
    sim_sock = listen()
    settings = bench_settings(workdir, f"http://127.0.0.1:{sim_sock.getsockname()[1]}/cgi-bin/")
    prepare_database(settings, demo_catalog=True)
    _bench_routes(sim)
    sock = listen()
    print(f"PORT {sock.getsockname()[1]} {sim_sock.getsockname()[1]}", flush=True)

    serve_with_simulator(settings, sim, sim_sock, sock)


def _bench_routes(sim: Any) -> None:
    """On the simulator's port: GET /bench/inbox?openid=&after=&wait= (long-poll for what was sent to
    one person by API, after sequence number `after`) and GET /bench/stats."""
    from aiohttp import web

    by_openid: dict[str, list[Any]] = {}
    wakers: dict[str, asyncio.Event] = {}

    def sent(msg: Any) -> None:
        by_openid.setdefault(msg.openid, []).append(msg)
        if (ev := wakers.get(msg.openid)) is not None:
            ev.set()

    sim.listeners.append(sent)

    async def inbox(request: web.Request) -> web.Response:
        openid, after = request.query["openid"], int(request.query.get("after", 0))
        deadline = time.monotonic() + float(request.query.get("wait", 10))
        while True:
            found = [m for m in by_openid.get(openid, []) if m.seq > after]
            left = deadline - time.monotonic()
            if found or left <= 0:
                break
            ev = wakers.setdefault(openid, asyncio.Event())
            ev.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), left)
        return web.json_response(
            [{"seq": m.seq, "kind": m.kind, "content": _content(m.kind, m.payload)} for m in found]
        )

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response({"calls": dict(sim.calls), "sent": len(sim.sent)})

    sim.app.router.add_get("/bench/inbox", inbox)
    sim.app.router.add_get("/bench/stats", stats)


def _content(kind: str, payload: dict[str, Any]) -> str:
    if kind == "text":
        return str(payload.get("content", ""))
    if kind == "news":
        articles = payload.get("articles", [])
        return "\n".join(f"{a.get('title', '')}\n{a.get('description', '')}" for a in articles)
    return f"[{kind}]"


# --------------------------------------------------------------------------------------------------
# Load generator (a multiprocessing child)


@dataclass(slots=True)
class Said:
    kind: str  # search | pick | start | step | confirm | orders
    latency_ms: float
    by: str  # passive | api | none


@dataclass
class Conversation:
    openid: str
    scenario: int
    said: list[Said] = field(default_factory=list)
    outcome: str = "unfinished"  # ordered | sold_out | failed: <why>
    order_number: str | None = None
    steps: int = 0
    seconds: float = 0.0
    transcript: list[tuple[str, str]] = field(default_factory=list)


class Failed(Exception):
    """A conversation went off script (the bench counts it as an error)."""


class Chat:
    """The WeChat side for one customer: every message signed and encrypted, every answer decrypted."""

    def __init__(self, gen: Generator, openid: str, first_msg_id: int) -> None:
        self.gen, self.openid, self.next_id, self.last_seq = gen, openid, first_msg_id, 0
        # Each customer's pauses are their own seeded sequence: the same run again thinks alike.
        self.rng = random.Random(f"{gen.cfg.get('seed', 1)}:{openid}")

    async def say(self, text: str, kind: str, conv: Conversation, want: Callable[[str], bool]) -> str:
        import aiohttp

        g = self.gen
        think = g.cfg.get("think")
        if think:  # reading the last answer and typing this message; not part of the latency
            await asyncio.sleep(self.rng.uniform(*think))
        msg_id, self.next_id = self.next_id, self.next_id + 1
        now = str(int(time.time()))
        t0 = time.perf_counter()
        url, body, _ = seal_request(
            g.crypto, text_xml(self.openid, text, msg_id, now), self.openid, f"m{msg_id}", now, "safe"
        )
        try:
            async with g.session.post(url, data=body, headers=g.headers) as r:
                status, raw = r.status, await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(f"{kind}: {type(exc).__name__}") from exc
        if status != 200:
            raise Failed(f"{kind}: http {status}")
        reply = open_reply(g.crypto, raw, aes=True)
        if isinstance(reply, str):
            raise Failed(f"{kind}: {reply}")
        if reply is not None:
            if reply.get("ToUserName") != self.openid or reply.get("FromUserName") != ACCOUNT:
                raise Failed(f"{kind}: reply addressed wrongly")
            answer, by = _passive_text(reply), "passive"
        else:  # the webhook said `success`: the answer travels by the MP API (the simulator)
            answer, by = await self._by_api(want), "api"
        conv.said.append(Said(kind, (time.perf_counter() - t0) * 1000, by))
        if g.keep_transcripts:
            conv.transcript.append((text, answer))
        if not want(answer):
            raise Failed(f"{kind}: unexpected answer")
        return answer

    async def _by_api(self, want: Callable[[str], bool]) -> str:
        g = self.gen
        got: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            params = {"openid": self.openid, "after": str(self.last_seq), "wait": "10"}
            async with g.sim_session.get("/bench/inbox", params=params) as r:
                msgs = await r.json()
            for m in msgs:
                self.last_seq = max(self.last_seq, m["seq"])
                got.append(m["content"])
            if got and want("\n".join(got)):
                break
        return "\n".join(got)


def _passive_text(reply: dict[str, Any]) -> str:
    if reply.get("MsgType") == "text":
        return str(reply.get("Content", ""))
    if reply.get("MsgType") == "news":
        items = (reply.get("Articles") or {}).get("item") or []
        items = items if isinstance(items, list) else [items]
        return "\n".join(f"{a.get('Title', '')}\n{a.get('Description', '')}" for a in items)
    return f"[{reply.get('MsgType')}]"


class Generator:
    def __init__(self, cfg: dict[str, Any]) -> None:
        from wechatpy.crypto import WeChatCrypto

        self.cfg = cfg
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
        self.headers = {"Content-Type": "text/xml"}
        self.answers = answers()
        self.keep_transcripts = False
        self.session: Any = None
        self.sim_session: Any = None

    async def order(self, openid: str, index: int, scenario: int) -> Conversation:
        """One person's whole order, each message sent after the previous answer arrived."""
        from flows import texts

        conv = Conversation(openid, scenario)
        chat = Chat(self, openid, FIRST_MSG_ID + index * 100)
        search, pick, start = SCENARIOS[scenario]
        t0 = time.perf_counter()
        try:
            await chat.say(search, "search", conv, lambda a: "找到" in a and "1. " in a)
            await chat.say(pick, "pick", conv, lambda a: "【" in a and "下单 ①" in a)
            form_or_done = lambda a: bool(STEP.search(a)) or "请确认" in a or "已售罄" in a  # noqa: E731
            answer = await chat.say(start, "start", conv, form_or_done)
            if "已售罄" in answer:
                conv.outcome = "sold_out"
                return conv
            while "请确认" not in answer:
                if conv.steps >= 12:
                    raise Failed("step: the form does not end")
                steps = list(STEP.finditer(answer))
                prompt = answer[steps[-1].end() :]
                reply = next((a for p, a in self.answers.items() if prompt.startswith(p)), None)
                if reply is None:
                    raise Failed("step: unknown prompt")
                conv.steps += 1
                answer = await chat.say(reply, "step", conv, form_or_done)
            done = await chat.say("确认", "confirm", conv, lambda a: "已生成" in a or "抢完" in a)
            if "已生成" not in done:
                conv.outcome = "sold_out"
                return conv
            found = re.search(r"订单 (\d{8}-\d{4}) 已生成", done)
            conv.order_number = found.group(1) if found else None
            number = conv.order_number or "?"
            await chat.say("我的订单", "orders", conv, lambda a: number in a and texts.NO_ORDERS not in a)
            conv.outcome = "ordered"
        except Failed as exc:
            conv.outcome = f"failed: {exc}"
        finally:
            conv.seconds = time.perf_counter() - t0
        return conv

    async def crowd(self, prefix: str, first: int, count: int, concurrency: int) -> list[Conversation]:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> Conversation:
            async with gate:
                return await self.order(f"{prefix}{i:06d}", first + i, i % len(SCENARIOS))

        return await asyncio.gather(*(one(i) for i in range(count)))


def generator_main(cfg: dict[str, Any], conn: Any) -> None:
    pin(cfg["cpu"])
    try:
        conn.send(("result", asyncio.run(_generate(cfg, conn))))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


async def _generate(cfg: dict[str, Any], conn: Any) -> dict[str, Any]:
    import aiohttp

    g = Generator(cfg)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    base, sim_base = f"http://127.0.0.1:{cfg['port']}", f"http://127.0.0.1:{cfg['sim_port']}"
    async with (
        aiohttp.ClientSession(base, connector=connector, timeout=timeout) as g.session,
        aiohttp.ClientSession(sim_base, timeout=timeout) as g.sim_session,
    ):
        # Warm-up: a few whole orders (other people) so caches and connections are warm; no pauses.
        think, cfg["think"] = cfg["think"], None
        warm = await g.crowd(WARM_PREFIX, 0, cfg["warmup_customers"], cfg["warmup_customers"] or 1)
        cfg["think"] = think
        g.keep_transcripts = True
        conn.send(("measure", None))
        cpu_srv0, cpu_gen0, cpu_all0 = proc_cpu(cfg["server_pid"]), time.process_time(), busy_cpu()
        start = time.perf_counter()
        convs = await g.crowd(MEASURED_PREFIX, 10_000, cfg["customers"], cfg["concurrency"])
        wall = time.perf_counter() - start
        cpu_srv, cpu_gen = proc_cpu(cfg["server_pid"]) - cpu_srv0, time.process_time() - cpu_gen0
        cpu_other = busy_cpu() - cpu_all0 - cpu_srv - cpu_gen
        conn.send(("measured", None))
        async with g.sim_session.get("/bench/stats") as r:
            sim_stats = await r.json()
        async with g.session.get("/metrics") as r:
            metrics = await r.text()
    summary = _summarise(convs, warm, wall, cpu_srv, cpu_gen, cpu_other, sim_stats, metrics, cfg["show"])
    summary["think_s"] = cfg["think"]
    return summary


def _summarise(
    convs: list[Conversation],
    warm: list[Conversation],
    wall: float,
    cpu_srv: float,
    cpu_gen: float,
    cpu_other: float,
    sim_stats: dict[str, Any],
    metrics: str,
    show: int,
) -> dict[str, Any]:
    said = [s for c in convs for s in c.said]
    lat = sorted(s.latency_ms for s in said)
    outcomes = Counter("failed" if c.outcome.startswith("failed") else c.outcome for c in convs)
    failures = Counter(c.outcome.removeprefix("failed: ") for c in convs if c.outcome.startswith("failed"))
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in ("search", "pick", "start", "step", "confirm", "orders"):
        xs = sorted(s.latency_ms for s in said if s.kind == kind)
        if xs:
            by_kind[kind] = {
                "messages": len(xs),
                "p50_ms": round(pct(xs, 50), 1),
                "p99_ms": round(pct(xs, 99), 1),
            }
    conv_s = sorted(c.seconds for c in convs)
    replies = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^chatorder_replies_total\{mode="(\w+)"\} (\S+)$', metrics, re.M)
    }
    return {
        "customers": len(convs),
        "wall_s": round(wall, 3),
        "messages": len(said),
        "msgs_per_s": round(len(said) / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(pct(lat, 50), 1),
        "p90_ms": round(pct(lat, 90), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else 0.0,
        "orders_created": outcomes.get("ordered", 0),
        "sold_out": outcomes.get("sold_out", 0),
        "errors": outcomes.get("failed", 0) + outcomes.get("unfinished", 0),
        "error_kinds": dict(failures),
        "replies_by_api": sum(s.by == "api" for s in said),
        "form_steps_per_order": round(statistics.mean(c.steps for c in convs), 2) if convs else 0.0,
        "conversation_p50_s": round(pct(conv_s, 50), 2),
        "conversation_max_s": round(conv_s[-1], 2) if conv_s else 0.0,
        "by_kind": by_kind,
        "server_cpu_pct": round(100 * cpu_srv / wall, 1) if wall > 0 else 0.0,
        # What to compare between builds on a busy machine (others' load moves it far less than wall time).
        "server_cpu_ms_per_msg": round(1000 * cpu_srv / len(said), 3) if said else 0.0,
        "generator_cpu_pct": round(100 * cpu_gen / wall, 1) if wall > 0 else 0.0,
        "other_cpu_pct": round(100 * max(cpu_other, 0.0) / wall, 1) if wall > 0 else 0.0,
        "warmup_customers": len(warm),
        "warmup_errors": sum(c.outcome != "ordered" for c in warm),
        "server_replies": replies,
        "simulator": sim_stats,
        "transcripts": [
            {"openid": c.openid, "outcome": c.outcome, "chat": c.transcript}
            for c in (convs[:show] + [c for c in convs if c.outcome.startswith("failed")][:3])
        ],
    }


# --------------------------------------------------------------------------------------------------
# Orchestration


def count_orders(db: Path) -> dict[str, int]:
    """Orders in the database after the run (read-only), measured customers only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        sql = "SELECT status, count(*) FROM orders WHERE openid LIKE ? GROUP BY status"
        rows = con.execute(sql, (MEASURED_PREFIX + "%",)).fetchall()
    return {str(status): int(n) for status, n in rows}


def bench_one(args: argparse.Namespace, cpus: tuple[int | None, int | None]) -> dict[str, Any]:
    server = Server("bench.ordering", [], cpus[0])
    spy: subprocess.Popen[bytes] | None = None
    try:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        cfg = {
            "port": server.ports[0],
            "sim_port": server.ports[1],
            "server_pid": server.proc.pid,
            "customers": args.customers,
            "concurrency": args.concurrency,
            "warmup_customers": args.warmup_customers,
            "show": args.show,
            "cpu": cpus[1],
            "think": args.think,
            "seed": args.seed,
        }
        gen = ctx.Process(target=generator_main, args=(cfg, child), name="bench-customers")
        gen.start()
        while True:
            if not parent.poll(900):
                raise RuntimeError("load generator stopped answering")
            kind, payload = parent.recv()
            if kind == "measure" and args.profile:
                out = Path(args.profile) / f"ordering-{dt.datetime.now():%H%M%S}.txt"
                out.parent.mkdir(parents=True, exist_ok=True)
                spy = subprocess.Popen(
                    [
                        *(str(Path(sys.executable).with_name("py-spy")), "record"),
                        *("--pid", str(server.proc.pid), "--rate", "250", "--format", "raw"),
                        *("--output", str(out), "--threads", "--gil"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=out.with_suffix(".log").open("wb"),
                )
            elif kind == "measured" and spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
                spy.wait(60)
                print(f"profile: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
            elif kind == "result":
                result = payload
                break
            elif kind == "error":
                raise RuntimeError(f"load generator failed: {payload}")
        gen.join(30)
        server.stop(keep_dir=True)
        result["orders_in_db"] = count_orders(Path(server.dir.name) / "bench.db")
        return result
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        server.stop()


def _think(value: str) -> list[float]:
    """'1.5-4' → [1.5, 4.0]; one number is a fixed pause."""
    lo, _, hi = value.partition("-")
    try:
        pause = [float(lo), float(hi or lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds as LO-HI, e.g. 1.5-4, not {value!r}") from None
    if not 0 <= pause[0] <= pause[1]:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI, not {value!r}")
    return pause


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ordering", description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=500, help="customers, one order each (default 500)")
    p.add_argument(
        "--concurrency", type=int, help="customers chatting at the same time (default: all of them at once)"
    )
    p.add_argument("--quick", action="store_true", help="50 customers, 5 warm-up customers: a smoke test")
    p.add_argument("--warmup-customers", type=int, default=20, help="orders before the clock (default 20)")
    p.add_argument("--rounds", type=int, default=1, help="repeat on a fresh server; medians are reported")
    p.add_argument(
        "--think",
        type=_think,
        metavar="LO-HI",
        help="seconds each customer reads and types before every message, drawn uniformly (e.g. 1.5-4); "
        "default: none, the next message goes the instant the answer arrives",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the think times (default 1)")
    p.add_argument("--show", type=int, default=0, metavar="N", help="print N customers' transcripts")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to CPUs")
    p.add_argument("--profile", metavar="DIR", help="py-spy (raw, --gil) the server during the measured run")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.serve:
        pin(args.cpu)
        serve(args.dir)
        return 0
    if args.quick:
        args.customers, args.warmup_customers = min(args.customers, 50), 5
    args.concurrency = args.concurrency or args.customers
    cpus: tuple[int | None, int | None] = (None, None)
    if not args.no_pin and (multiprocessing.cpu_count() or 1) >= 2:
        cpus = (0, 1)

    runs = []
    for n in range(1, args.rounds + 1):
        thinking = f", {args.think[0]:g}–{args.think[1]:g} s think time" if args.think else ", no think time"
        print(
            f"… round {n}: {args.customers} customers, {args.concurrency} at a time{thinking} "
            f"(after {args.warmup_customers} warm-up orders)",
            flush=True,
        )
        runs.append(bench_one(args, cpus))

    print()
    print(
        f"{'round':5} {'wall s':>7} {'msgs':>6} {'msgs/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'orders':>6} {'in db':>6} {'errors':>6} {'by api':>6} {'srv cpu':>7} {'ms/msg':>6} {'gen cpu':>7} "
        f"{'other':>6}"
    )
    for n, x in enumerate(runs, 1):
        print(
            f"{n:5d} {x['wall_s']:7.2f} {x['messages']:6d} {x['msgs_per_s']:7.0f} {x['p50_ms']:7.1f} "
            f"{x['p99_ms']:7.1f} {x['max_ms']:7.0f} {x['orders_created']:6d} "
            f"{sum(x['orders_in_db'].values()):6d} {x['errors']:6d} {x['replies_by_api']:6d} "
            f"{x['server_cpu_pct']:6.0f}% {x['server_cpu_ms_per_msg']:6.3f} {x['generator_cpu_pct']:6.0f}% "
            f"{x['other_cpu_pct']:5.0f}%"
        )
        if x["sold_out"]:
            print(f"      sold out: {x['sold_out']}")
        if x["error_kinds"]:
            print(f"      errors: {x['error_kinds']}")
        if x["warmup_errors"]:
            print(f"      warm-up orders that did not complete: {x['warmup_errors']}")
        if x["other_cpu_pct"] > 15:
            print("      note: other processes used the CPUs during this run; numbers are not comparable")
    last = runs[-1]
    print("\nper message kind (last round):")
    for kind, k in last["by_kind"].items():
        print(f"  {kind:8} {k['messages']:6d} messages  p50 {k['p50_ms']:7.1f} ms  p99 {k['p99_ms']:7.1f} ms")
    print(
        f"conversation: p50 {last['conversation_p50_s']:.2f} s, slowest {last['conversation_max_s']:.2f} s; "
        f"{last['form_steps_per_order']:.2f} form steps per order; server replies {last['server_replies']}"
    )
    for t in last["transcripts"][: args.show + 3]:
        print(f"\n--- {t['openid']} ({t['outcome']})")
        for said, answer in t["chat"]:
            print(f"> {said}\n{answer}")
    medians: dict[str, Any] = {}
    if args.rounds > 1:
        for key in (
            "wall_s",
            "msgs_per_s",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "server_cpu_pct",
            "server_cpu_ms_per_msg",
        ):
            medians[key] = round(statistics.median(r[key] for r in runs), 2)
        print(
            f"\nmedians over {args.rounds} rounds: wall {medians['wall_s']:.2f} s, "
            f"{medians['msgs_per_s']:.0f} msgs/s, p50 {medians['p50_ms']:.1f} ms, "
            f"p99 {medians['p99_ms']:.1f} ms, {medians['server_cpu_ms_per_msg']:.3f} ms server CPU/message"
        )
    p99 = medians.get("p99_ms", last["p99_ms"])
    cpu = medians.get("server_cpu_ms_per_msg", last["server_cpu_ms_per_msg"])
    how = f"{args.think[0]:g}–{args.think[1]:g} s think time" if args.think else "no think time"
    print(
        f"\n[{args.customers} at once, {how}] server CPU {cpu:.3f} ms/msg (target ≤ 1 ms: "
        f"{'met' if cpu <= 1 else 'not met'}) · p99 {p99:.0f} ms (target < 300 ms: "
        f"{'met' if p99 < 300 else 'not met'})"
    )
    report = {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "customers": args.customers,
            "concurrency": args.concurrency,
            "warmup_customers": args.warmup_customers,
            "scenarios": SCENARIOS,
            "mode": "safe",
            "gc_policy": "bot.app.tune_gc()",
            "pinned": cpus,
            "rounds": args.rounds,
            "think_s": args.think,
            "seed": args.seed,
        },
        "runs": runs,
        "medians": medians,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"ordering-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"results: {out.relative_to(ROOT)}")
    bad = sum(r["errors"] for r in runs) + sum(
        sum(r["orders_in_db"].values()) != r["orders_created"] for r in runs
    )
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
