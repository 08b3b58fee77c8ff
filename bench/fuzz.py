"""Hostile, correctly signed requests against a running server: status counts, and every 5xx.

    .venv/bin/python -m bench.fuzz                        # 10,000 requests at a `chatorder serve` it starts
    .venv/bin/python -m bench.fuzz --requests 50000 --seed 7 --concurrency 32
    .venv/bin/python -m bench.fuzz --url http://127.0.0.1:8080   # a server already running with the
                                                          # settings `--print-env` shows

Requests come from bench/hostile.py: valid documents for the four endpoints (`/wechat/mp`,
`/wechat/work`, `/pay/wechat/notify`, `/pay/wechat/refund-notify`) with 1-4 random mutations
(fields repeated, nested, dropped, absurd), sometimes a whole-body attack (DTD, entities, UTF-16 and
UTF-32 bodies, wrong root, truncation, garbage), sometimes a replayed timestamp or a plaintext body
in safe mode, and a few left valid. Every one is signed (and encrypted) with the server's keys.
The target is 0 answers ≥ 500; the exit status is 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import hostile
from bench.common import ROOT
from bench.hostile import Keys, Request

KEYS = Keys()
PORT = 18540


def draw(rng: random.Random, n: int) -> tuple[str, str, Request]:
    """The n-th request: (endpoint, what was done to it, request)."""
    endpoint = hostile.ENDPOINTS[n % len(hostile.ENDPOINTS)]
    muts: list[hostile.Mutation] = []
    if rng.random() > 0.04:  # a few stay valid: the server must still work under the storm
        for _ in range(rng.randint(1, 4)):
            value = rng.choice(hostile.ABSURD) if rng.random() < 0.7 else _junk(rng)
            muts.append((rng.choice(hostile.OPERATIONS), rng.randint(0, 20), value))
    op = rng.choice(hostile.BODY_OPERATIONS) if rng.random() < 0.15 else None
    label = "+".join(m[0] for m in muts) or "valid"
    label += f"|{op}" if op else ""
    if endpoint == "/wechat/mp":
        doc = (
            hostile.mp_text(
                KEYS, f"o_fuzz_{n % 500}", rng.choice(["帮助", "搜 咖啡", "1", "余额"]), 7_000_000 + n
            )
            if rng.random() < 0.7
            else hostile.mp_event(KEYS, f"o_fuzz_{n % 500}", rng.choice(["subscribe", "CLICK", "SCAN"]), "k")
        )
        xml = hostile.to_xml(hostile.mutate(doc, muts))
        ts, plain = _stamp(rng), rng.random() < 0.03
        label += "|old" if ts is not None else ""
        label += "|plaintext" if plain else ""
        body: str | bytes = hostile.transform(xml, op) if op else xml
        return endpoint, label, hostile.mp_request(KEYS, body, timestamp=ts, encrypt=not plain)
    if endpoint == "/wechat/work":
        doc = hostile.work_text(KEYS, f"fuzz{n % 50}", rng.choice(["帮助", "待办", "今日"]), 8_000_000 + n)
        xml = hostile.to_xml(hostile.mutate(doc, muts))
        ts = _stamp(rng)
        label += "|old" if ts is not None else ""
        return (
            endpoint,
            label,
            hostile.work_request(KEYS, hostile.transform(xml, op) if op else xml, timestamp=ts),
        )
    if endpoint == "/pay/wechat/notify":
        doc = hostile.pay_result(KEYS, f"fuzz-{n}", f"42{n:026d}", rng.randint(1, 10**6))
        return endpoint, label, hostile.pay_request(KEYS, hostile.mutate(doc, muts), op)
    inner = hostile.mutate(hostile.refund_result(KEYS, f"RF{n}", rng.randint(1, 10**6)), muts)
    inner_op = rng.choice(hostile.BODY_OPERATIONS) if rng.random() < 0.05 else None
    label += f"|req_info:{inner_op}" if inner_op else ""
    return endpoint, label, hostile.refund_request(KEYS, inner, op, inner_op=inner_op)


def _stamp(rng: random.Random) -> int | None:
    """Mostly now; sometimes a replay from long ago or a clock far ahead."""
    if rng.random() < 0.05:
        return int(time.time()) + rng.choice([-30 * 86400, -3600, -301, 301, 86400])
    return None


def _junk(rng: random.Random) -> str:
    alphabet = "abc<>&;]]!?-_0123456789 \t\n中文😀\u0000\u202e"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


async def run(url: str, count: int, concurrency: int, seed: int) -> dict[str, Any]:
    import aiohttp

    rng = random.Random(seed)
    requests = [draw(rng, n) for n in range(count)]
    statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    server_errors: list[dict[str, Any]] = []
    failures = collections.Counter[str]()
    queue: asyncio.Queue[tuple[str, str, Request]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            endpoint, label, req = queue.get_nowait()
            try:
                async with session.post(
                    url + req.path, data=req.body, headers={"Content-Type": "text/xml"}
                ) as r:
                    status, text = r.status, await r.text(errors="replace")
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures[type(exc).__name__] += 1
                continue
            statuses[endpoint][status] += 1
            if status >= 500:
                server_errors.append(
                    {"endpoint": endpoint, "what": label, "status": status, "body": text[:200]}
                )

    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return {
        "requests": count,
        "seconds": round(time.perf_counter() - started, 1),
        "statuses": {e: dict(sorted(c.items())) for e, c in statuses.items()},
        "server_errors": server_errors,
        "transport_failures": dict(failures),
    }


def start_server(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """`chatorder serve` on a fresh SQLite database with the fuzz keys (WeChat APIs point nowhere)."""
    env = (
        os.environ
        | KEYS.env()
        | {
            "CHATORDER_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'fuzz.db'}",
            "CHATORDER_PORT": str(port),
            "CHATORDER_LOG_FORMAT": "json",
            "WECHAT_API_BASE": "http://127.0.0.1:9/cgi-bin/",
            "WECOM_API_BASE": "http://127.0.0.1:9/cgi-bin/",
            "WECHATPAY_API_BASE": "http://127.0.0.1:9/",
        }
    )
    chatorder = [sys.executable, "-m", "bot"]
    subprocess.run([*chatorder, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen([*chatorder, "serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"chatorder serve did not start: see {workdir / 'server.log'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="a running server (default: start `chatorder serve` on --port)")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--print-env", action="store_true", help="the settings the server needs, then exit")
    args = parser.parse_args(argv)
    if args.print_env:
        print("\n".join(f"{k}={v}" for k, v in KEYS.env().items()))
        return 0
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        proc = None if args.url else start_server(args.port, Path(tmp))
        url = args.url or f"http://127.0.0.1:{args.port}"
        try:
            result = asyncio.run(run(url, args.requests, args.concurrency, args.seed))
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                result["healthy_after"] = r.status == 200
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
                log = (Path(tmp) / "server.log").read_text(errors="replace")
                result["server_log_errors"] = sum(
                    1 for line in log.splitlines() if '"level": "error"' in line or "Traceback" in line
                )
    _print(result)
    return 0 if not result["server_errors"] else 1


def _print(result: dict[str, Any]) -> None:
    print(f"{result['requests']} hostile requests in {result['seconds']} s")
    for endpoint, counts in sorted(result["statuses"].items()):
        print(f"  {endpoint:28} " + "  ".join(f"{s}: {n}" for s, n in counts.items()))
    total = sum(n for counts in result["statuses"].values() for s, n in counts.items() if s >= 500)
    print(f"5xx: {total}")
    for err in result["server_errors"][:20]:
        print(f"  {err}")
    if result["transport_failures"]:
        print(f"transport failures: {result['transport_failures']}")
    errors = result.get("server_log_errors", "?")
    print(f"healthy after: {result.get('healthy_after')}; server log error lines: {errors}")


if __name__ == "__main__":
    raise SystemExit(main())
