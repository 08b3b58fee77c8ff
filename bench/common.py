"""What the benchmarks share: credentials, CPU pinning and accounting, the full-stack server's
settings and database, signed/encrypted callbacks as WeChat sends them, reading the replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

TOKEN = "benchtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx2c2769f8efd9abc2"
APP_SECRET = "bench-secret"
ACCOUNT = "gh_bench_account"
BRAND = "星推"
MCH_ID, PAY_KEY = "1900000109", "8934e7d15453e97507ef794cf7b0519d"  # WeChat Pay (the simulator's)


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def listen(port: int = 0, *, shared: bool = False) -> socket.socket:
    """A listening socket on 127.0.0.1. Port 0 takes a free one from the kernel's ephemeral range,
    so a bench never collides with a fixed port someone else uses. `shared` (SO_REUSEPORT): several
    server processes accept on the same port and the kernel spreads the connections over them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


# --------------------------------------------------------------------------------------------------
# The full-stack server


def bench_settings(
    workdir: Path,
    api_base: str,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    pay_base: str | None = None,
) -> Any:
    """SQLite in `workdir` and no Redis (one process), unless given a database and a Redis; WeChat
    Pay (NATIVE pay QR codes) when given the pay simulator's base."""
    from settings import load_settings

    pay = {}
    if pay_base:
        pay = {"wechatpay_mch_id": MCH_ID, "wechatpay_api_key": PAY_KEY, "wechatpay_api_base": pay_base}
    return load_settings(
        **pay,
        database_url=database_url or f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_token=TOKEN,
        wechat_aes_key=AES_KEY,
        wechat_message_mode="compat",  # the benches measure plaintext and safe mode
        wechat_api_base=api_base,
        log_format="text",
        brand=BRAND,
        redis_url=redis_url,
        sandbox=False,
    )


def prepare_database(settings: Any, *, demo_catalog: bool = False) -> None:
    """Migrate a fresh database (and load the demo catalog, as `chatorder demo` does)."""
    from bot import logs
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade

    logs.configure(settings.log_format, logging.WARNING)

    async def run() -> None:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            if demo_catalog:
                from store.catalog_import import load_demo_catalog

                async with make_sessionmaker(engine).begin() as session:
                    await load_demo_catalog(session)
        finally:
            await engine.dispose()

    asyncio.run(run())
    logs.configure(settings.log_format, logging.WARNING)  # alembic's fileConfig may have reset it


def tune_gc_like_the_product() -> None:
    """`chatorder serve/demo` call `bot.app.tune_gc()` right before `web.run_app` (bot/cli.py `_run_app`).

    `BENCH_GC_THRESHOLD=G0,G1,G2` overrides the thresholds afterwards (an experiment, not the product)."""
    import gc

    from bot.app import tune_gc

    tune_gc()
    if os.environ.get("BENCH_GC_THRESHOLD"):
        gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))


class Server:
    """Server subprocesses (`python -m <module> --serve ... --dir D [--cpu N]`) that print `PORT n [m…]`.

    With `processes` > 1 the first one picks a free port and the others join it (`--port P`, all with
    `--shared`, i.e. SO_REUSEPORT); `cpus` pins process i to cpus[i % len(cpus)] (None: not pinned)."""

    def __init__(
        self,
        module: str,
        args: list[str],
        cpu: int | None,
        *,
        processes: int = 1,
        cpus: list[int] | None = None,
    ) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix=f"{module.rsplit('.', 1)[-1]}-")
        self.procs: list[subprocess.Popen[str]] = []
        self.ports: list[int] = []
        self.port = 0
        for i in range(processes):
            cmd = [sys.executable, "-m", module, "--serve", *args, "--dir", self.dir.name]
            pin_to = cpu if processes == 1 else (cpus[i % len(cpus)] if cpus else None)
            if pin_to is not None:
                cmd += ["--cpu", str(pin_to)]
            if processes > 1:
                cmd += ["--shared", *(["--port", str(self.port)] if i else [])]
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith("PORT "):
                self.stop()
                raise RuntimeError(f"{module} server did not start (said {line!r})")
            if i == 0:
                self.ports = [int(x) for x in line.split()[1:]]  # the first is the webhook's
                self.port = self.ports[0]
                self.proc = proc
        self._wait_healthy()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy")

    def stop(self, *, keep_dir: bool = False) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # run_app shuts down cleanly on SIGTERM
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not keep_dir:
            self.dir.cleanup()


# --------------------------------------------------------------------------------------------------
# Callbacks as WeChat sends them, and the replies


def text_xml(openid: str, content: str, msg_id: int, now: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )


def seal_request(
    crypto: Any, xml: str, openid: str, nonce: str, now: str, mode: str
) -> tuple[Any, bytes, dict[str, str]]:
    """(URL path+query as a pre-encoded yarl.URL, body, query) of the callback WeChat would POST.

    `crypto` is a `wechatpy.crypto.WeChatCrypto`; in safe mode the body is the `<Encrypt>` envelope
    and the query carries `encrypt_type=aes` and `msg_signature`."""
    from urllib.parse import urlencode

    from yarl import URL

    from webhooks.crypto import sign

    query = {"signature": sign(TOKEN, now, nonce), "timestamp": now, "nonce": nonce, "openid": openid}
    if mode == "safe":
        sealed = crypto.encrypt_message(xml, nonce, now)
        encrypt = sealed.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
        query |= {"encrypt_type": "aes", "msg_signature": sign(TOKEN, now, nonce, encrypt)}
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
    return URL("/wechat/mp?" + urlencode(query), encoded=True), xml.encode(), query


def open_reply(crypto: Any, body: bytes, aes: bool) -> dict[str, Any] | str | None:
    """The passive reply as a dict (xmltodict), None for `success`/empty, or a string saying what is wrong.

    In safe mode the envelope's `MsgSignature` is checked and the reply decrypted."""
    import xmltodict

    text = body.decode()
    if text in ("", "success"):
        return None
    try:
        if aes:
            env = xmltodict.parse(text)["xml"]
            text = crypto.decrypt_message(text, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        return dict(xmltodict.parse(text)["xml"])
    except Exception as exc:
        return f"unreadable reply: {type(exc).__name__}"


# --------------------------------------------------------------------------------------------------
# Accounting


def proc_cpu(pid: int | list[int]) -> float:
    """CPU seconds (user + system, all threads) used so far by `pid` (or the sum over several)."""
    if isinstance(pid, list):
        return sum(proc_cpu(p) for p in pid)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------------
# A PostgreSQL database of the bench's own (created, migrated, dropped)

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


@contextlib.contextmanager
def postgres_database(prefix: str = "chatorder_bench") -> Any:
    """The URL of a new, migrated database on the PostgreSQL server of `BENCH_PG_URL`; dropped after."""
    import uuid

    from sqlalchemy import text

    from store.db import make_engine
    from store.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    async def admin(sql: str) -> None:
        engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    async def migrate() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        asyncio.run(migrate())
        logging.getLogger().setLevel(logging.WARNING)  # alembic's fileConfig may have lowered it
        yield url
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def busy_cpu() -> float:
    """CPU seconds spent busy on the whole machine so far (all CPUs; /proc/stat, minus idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError, ValueError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    import aiohttp
    import sqlalchemy
    import wechatpy

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": aiohttp.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "wechatpy": wechatpy.__version__,
        "platform": platform.platform(),
    }


def serve_with_simulator(settings: Any, sim: Any, sim_sock: socket.socket, sock: socket.socket) -> None:
    """Run the product (as `chatorder serve`: the GC policy, then run_app on `sock`) with the MP
    simulator `sim` served on `sim_sock` in the same process and loop."""
    from aiohttp import web

    from bot.app import create_app

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
