"""Test stand-ins for WeCom: credentials, the simulator on a real port, the app with a probe handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.sandbox.wecom_sim import WeComSimulator
from handlers.events import WorkEvent
from handlers.work.dispatch import WorkHandler
from settings import Settings
from store.db import make_engine
from store.migrate import upgrade

CORP_ID = "ww0123456789abcdef"
AGENT_ID = "1000002"
SECRET = "wecom-test-secret"
TOKEN = "worktoken"
AES_KEY = "ZGVtby13ZWNvbS10ZXN0LWtleS0zMi1ieXRlcyEhISE"  # 43 characters, 32 bytes


def settings(make_settings: Callable[..., Settings], api_base: str, **overrides: Any) -> Settings:
    """Test settings with the WeCom app configured and its API pointing at `api_base`."""
    values: dict[str, Any] = {
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": AGENT_ID,
        "wecom_secret": SECRET,
        "wecom_token": TOKEN,
        "wecom_aes_key": AES_KEY,
        "wecom_api_base": api_base,
    }
    return make_settings(**(values | overrides))


def simulator(**overrides: Any) -> WeComSimulator:
    values: dict[str, Any] = {
        "corp_id": CORP_ID,
        "agent_id": AGENT_ID,
        "secret": SECRET,
        "token": TOKEN,
        "aes_key": AES_KEY,
        "reply_timeout": 3.0,
    }
    return WeComSimulator(**(values | overrides))


@asynccontextmanager
async def serve(sim: WeComSimulator) -> AsyncIterator[str]:
    """The simulator's API on a real port; yields its base URL (…/cgi-bin/)."""
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/cgi-bin/"))
    finally:
        await sim.close()
        await server.close()


@dataclass
class Probe:
    """A work handler that records what it was given and can be told to fail."""

    events: list[WorkEvent] = field(default_factory=list)
    failures: int = 0

    async def __call__(self, event: WorkEvent) -> None:
        self.events.append(event)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler failed on purpose")


async def start(settings: Settings, handler: WorkHandler | None = None) -> TestClient:
    """The real app on a real port, with `handler` behind /wechat/work."""
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    client = TestClient(TestServer(create_app(settings, work_handler=handler), host="127.0.0.1"))
    await client.start_server()
    return client


def base_url(client: TestClient) -> str:
    return str(client.make_url("/")).rstrip("/")
