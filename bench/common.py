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


def pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


# --------------------------------------------------------------------------------------------------
# The full-stack server


def bench_settings(workdir: Path, api_base: str) -> Any:
    from settings import load_settings

    return load_settings(
        database_url=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_token=TOKEN,
        wechat_aes_key=AES_KEY,
        wechat_message_mode="compat",  # the benches measure plaintext and safe mode
        wechat_api_base=api_base,
        log_format="text",
        brand=BRAND,
        redis_url=None,
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
    """A server subprocess (`python -m <module> --serve ... --dir D [--cpu N]`) that prints `PORT n [m…]`."""

    def __init__(self, module: str, args: list[str], cpu: int | None) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix=f"{module.rsplit('.', 1)[-1]}-")
        cmd = [sys.executable, "-m", module, "--serve", *args, "--dir", self.dir.name]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{module} server did not start (said {line!r})")
        self.ports = [int(x) for x in line.split()[1:]]  # the first is the webhook's
        self.port = self.ports[0]
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy")

    def stop(self, *, keep_dir: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # run_app shuts down cleanly on SIGTERM
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
