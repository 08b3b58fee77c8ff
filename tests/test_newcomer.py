"""What a newcomer runs into first: the demo's port, its front door, the CLI's own help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.demo import demo_settings, prepare_demo
from tests.test_sandbox import serve_demo


def test_a_taken_port_is_said_plainly_without_a_traceback(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "bot", "demo", "--port", str(port), "--var", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode != 0
    assert f"port {port}" in run.stderr and "--port" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert "/sandbox/" not in run.stdout  # no console URL printed for a server that never started


async def test_the_demo_front_door_leads_to_the_console(tmp_path: Path) -> None:
    async with (
        serve_demo(tmp_path) as (base, _),
        aiohttp.ClientSession() as http,
        http.get(f"{base}/", allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        assert resp.headers["Location"] == "/sandbox/"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT", "WECOM", "CHATORDER_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


async def test_doctor_after_the_demo_says_wechat_settings_are_for_a_real_account(tmp_path: Path) -> None:
    await prepare_demo(demo_settings(var_dir=tmp_path / "var"))  # what `chatorder demo` leaves behind
    plain = _cli("doctor", cwd=tmp_path)
    assert plain.returncode == 1 and "WECHAT_APP_ID" in plain.stdout
    assert "only to serve a real Official Account" in plain.stdout and "doctor --demo" in plain.stdout
    demo = _cli("doctor", "--demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout
    assert demo.stdout.strip().endswith("all good") and "✗" not in demo.stdout


def test_the_cli_describes_itself_and_says_what_went_wrong_in_plain_words(tmp_path: Path) -> None:
    assert _cli("--version", cwd=tmp_path).stdout.startswith("chatorder ")
    top = _cli("--help", cwd=tmp_path).stdout
    commands = ["demo", "serve", "db", "catalog", "menu", "doctor", "refund", "staff", "withdrawals"]
    for name in commands:
        assert name in top
        assert _cli(name, "--help", cwd=tmp_path).stdout.count("\n") > 3  # a description, not just usage
    assert "(default: 8080)" in _cli("demo", "--help", cwd=tmp_path).stdout
    assert "(default: balance)" in _cli("refund", "--help", cwd=tmp_path).stdout
    missing = _cli("catalog", "import", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr and "Errno" not in missing.stderr
    assert _cli("db", "upgrade", cwd=tmp_path).returncode == 0
    refund = _cli("refund", "20261122-0042", "--reason", "test", cwd=tmp_path)
    assert refund.returncode == 1
    assert "order 20261122-0042 not found" in refund.stderr and "{" not in refund.stderr
