"""What a newcomer runs into first: the demo's port, its front door, the CLI's own help."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

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
