"""/wechat/work over real HTTP, posted by the WeCom simulator exactly as WeCom posts callbacks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot import keys
from bot.sandbox.wecom_sim import WeComSimulator
from handlers.events import WorkEvent
from settings import Settings
from store.outbox import Outgoing, enqueue
from tests import wecom
from tests.conftest import eventually
from tests.test_sandbox import Demo, serve_demo


@dataclass
class Env:
    sim: WeComSimulator
    client: TestClient
    probe: wecom.Probe

    @property
    def base(self) -> str:
        return wecom.base_url(self.client)

    async def post_raw(self, query: dict[str, str], body: bytes) -> tuple[int, str]:
        resp = await self.client.post("/wechat/work", params=query, data=body)
        return resp.status, await resp.text()


@pytest.fixture
async def env(make_settings: Callable[..., Settings]) -> AsyncIterator[Env]:
    sim = wecom.simulator()
    async with wecom.serve(sim) as api_base:
        probe = wecom.Probe()
        client = await wecom.start(wecom.settings(make_settings, api_base), probe)
        try:
            yield Env(sim, client, probe)
        finally:
            await client.close()


async def test_retries_are_deduplicated_on_each_backend(
    make_settings: Callable[..., Settings], db_url: str
) -> None:
    """The claim is one INSERT … ON CONFLICT DO NOTHING: the same on SQLite and PostgreSQL."""
    sim = wecom.simulator()
    async with wecom.serve(sim) as api_base:
        probe = wecom.Probe()
        client = await wecom.start(wecom.settings(make_settings, api_base, database_url=db_url), probe)
        try:
            text = sim.text_xml("wangfang", "我的任务")
            click = sim.click_xml("wangfang", "t-1", "approve", "code-1")
            results = await asyncio.gather(*(sim.post(wecom.base_url(client), x) for x in (text, click) * 3))
            # A delivery that arrives while another is being handled is told to come back (503), so
            # that a failure of the first is not acknowledged by the second; once done, retries get 200.
            assert {p.status for p in results} <= {200, 503} and 200 in {p.status for p in results}
            again = [await sim.post(wecom.base_url(client), x) for x in (text, click)]
            assert [p.status for p in again] == [200, 200]
            assert sorted(e.name for e in probe.events) == ["template_card_event", "text"]
        finally:
            await client.close()


async def test_url_verification_echoes_the_decrypted_echostr(env: Env) -> None:
    assert await env.sim.verify_url(env.base)


async def test_text_reaches_the_handler_once_when_retried_three_times(env: Env) -> None:
    plain = env.sim.text_xml("wangfang", "接单 20261122-0042")
    pushes = [await env.sim.post(env.base, plain) for _ in range(3)]  # each signed afresh, same MsgId
    assert [(p.status, p.body) for p in pushes] == [(200, "")] * 3
    [event] = env.probe.events
    assert (event.userid, event.kind, event.text) == ("wangfang", "text", "接单 20261122-0042")
    assert (event.corp_id, event.agent_id) == (wecom.CORP_ID, wecom.AGENT_ID)
    assert event.key.startswith("msg:")


async def test_card_click_is_parsed_with_task_response_code_and_key(env: Env) -> None:
    push = await env.sim.click(env.base, "wangfang", "order-42-review", "approve")
    assert push.ok and push.response_code
    [event] = env.probe.events
    assert (event.kind, event.name, event.userid) == ("event", "template_card_event", "wangfang")
    assert (event.task_id, event.event_key, event.response_code) == (
        "order-42-review",
        "approve",
        push.response_code,
    )
    assert event.key == f"ev:{int(event.created_at.timestamp())}:template_card_event:approve:order-42-review"
    assert event.raw is not None and event.raw["CardType"] == "button_interaction"


async def test_a_double_click_is_two_events_for_the_desk_to_settle(env: Env) -> None:
    """Two taps have different CreateTimes: both reach the handler (the card action decides once)."""
    first = await env.sim.click(env.base, "wangfang", "order-42-review", "approve")
    second = await env.sim.click(env.base, "wangfang", "order-42-review", "approve")
    assert first.ok and second.ok and first.response_code != second.response_code
    assert len({e.key for e in env.probe.events}) == 2


async def test_forged_signature_is_refused_and_the_handler_not_called(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = env.sim.envelope(env.sim.text_xml("wangfang", "退款 20261122-0042"))
    with caplog.at_level(logging.WARNING, logger="webhooks.work"):
        status, text = await env.post_raw(query | {"msg_signature": "0" * 40}, body.encode())
    assert (status, text) == (403, "forbidden")
    assert any("wecom callback refused" in r.getMessage() for r in caplog.records)
    # Signed with another app's token and key: refused too.
    intruder = wecom.simulator(token="not-our-token", aes_key="a" * 43)
    query, body = intruder.envelope(intruder.text_xml("wangfang", "退款 20261122-0042"))
    assert (await env.post_raw(query, body.encode()))[0] == 403
    assert env.probe.events == []


async def test_malformed_callbacks_get_400(env: Env) -> None:
    for plain in (
        "not xml at all",
        "<xml><MsgType>text</MsgType></xml>",
        '<!DOCTYPE x [<!ENTITY a "b">]><xml/>',
    ):
        query, body = env.sim.envelope(plain)
        assert (await env.post_raw(query, body.encode()))[0] == 400, plain
    query, _ = env.sim.envelope(env.sim.text_xml("wangfang", "x"))
    assert (await env.post_raw(query, b"<xml><Encrypt>"))[0] == 400
    assert env.probe.events == []


async def test_handler_failure_is_not_acknowledged_and_the_retry_is_processed(env: Env) -> None:
    env.probe.failures = 1
    push = await env.sim.say(env.base, "wangfang", "我的任务")
    assert (push.status, push.attempts) == (200, 2)
    assert [e.text for e in env.probe.events] == ["我的任务", "我的任务"]
    # Settled now: one more retry changes nothing.
    plain_key = env.probe.events[0].key
    assert (await env.sim.post(env.base, env.sim.text_xml("wangfang", "我的任务"))).ok
    assert [e.key for e in env.probe.events].count(plain_key) == 2


async def test_a_retry_during_a_failing_first_attempt_is_not_acknowledged(
    make_settings: Callable[..., Settings],
) -> None:
    """WeCom retries while the first delivery is still being handled, and that one then fails: the
    retry must not have been answered 200 (it would be the last word), so a later one runs it."""
    handled: list[str] = []

    async def slow_then_fail(event: WorkEvent) -> None:
        await asyncio.sleep(0.3)
        handled.append(event.key)
        if len(handled) == 1:
            raise RuntimeError("the first attempt fails")

    sim = wecom.simulator()
    async with wecom.serve(sim) as api_base:
        client = await wecom.start(wecom.settings(make_settings, api_base), slow_then_fail)
        try:
            base, plain = wecom.base_url(client), sim.text_xml("wangfang", "我的任务")
            first = asyncio.create_task(sim.post(base, plain))
            await asyncio.sleep(0.1)
            retry = await sim.post(base, plain)
            assert retry.status == 503 and (await first).status == 503
            assert (await sim.post(base, plain)).status == 200
            assert len(handled) == 2 and len(set(handled)) == 1
            assert (await sim.post(base, plain)).status == 200 and len(handled) == 2
        finally:
            await client.close()


async def test_oversized_body_gets_413(env: Env) -> None:
    query, _ = env.sim.envelope(env.sim.text_xml("wangfang", "x"))
    status, _ = await env.post_raw(query, b"<xml>" + b"a" * 70_000 + b"</xml>")
    assert status == 413
    assert env.probe.events == []


async def test_without_wecom_settings_the_callback_answers_503(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    client = await wecom.start(make_settings(), wecom.Probe())
    try:
        with caplog.at_level(logging.ERROR, logger="webhooks.work"):
            assert (await client.post("/wechat/work", data=b"<xml/>")).status == 503
            assert (await client.get("/wechat/work")).status == 503
        assert any("WECOM_TOKEN" in r.getMessage() for r in caplog.records)
    finally:
        await client.close()


# --- the sandbox's staff pane, through the demo's real callback ---------------------------------


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with serve_demo(tmp_path) as (base, app), aiohttp.ClientSession() as http:
        yield Demo(base, app, http)


async def test_staff_types_and_clicks_in_the_sandbox(demo: Demo) -> None:
    sim = demo.sandbox.wecom
    assert sim is not None
    answer = await demo.post("/sandbox/api/staff/say", {"userid": "wangfang", "text": "帮助"})
    assert answer == {"ok": True, "status": 200, "attempts": 1}
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "新订单待审核"},
        "task_id": "sbx-task-1",
        "button_list": [
            {"text": "通过", "style": 1, "key": "approve"},
            {"text": "驳回", "style": 2, "key": "reject"},
        ],
    }
    async with demo.app[keys.SESSIONMAKER].begin() as session:
        await enqueue(session, Outgoing("wecom", "wangfang", "template_card", {"template_card": card}))
    demo.app[keys.OUTBOX].wake()
    await eventually(lambda: sim.card("sbx-task-1", "wangfang") is not None)
    clicked = await demo.post(
        "/sandbox/api/staff/click", {"userid": "wangfang", "task_id": "sbx-task-1", "key": "approve"}
    )
    assert clicked["ok"]

    staff = (await demo.transcript())["staff"]
    kinds = [(e["who"], e["kind"], e["openid"]) for e in staff]
    assert ("user", "text", "wangfang") in kinds and ("bot", "template_card", "wangfang") in kinds
    event = next(e for e in staff if e["kind"] == "event")
    assert event["payload"] == {
        "event": "template_card_event",
        "task_id": "sbx-task-1",
        "key": "approve",
        "button": "通过",
    }
    listed = await (await demo.http.get(demo.base + "/sandbox/api/staff")).json()
    assert {"userid": "wangfang", "name": "wangfang"} in listed["staff"] and listed["configured"]


async def test_sandbox_staff_endpoints_refuse_bad_input(demo: Demo) -> None:
    await demo.post("/sandbox/api/staff/say", {"userid": "王 芳", "text": "hi"}, status=400)
    await demo.post("/sandbox/api/staff/say", {"userid": "wangfang", "text": " "}, status=400)
    await demo.post("/sandbox/api/staff/click", {"userid": "wangfang", "task_id": "", "key": "a"}, status=400)


async def test_demo_robot_and_app_api_share_the_wecom_mount(demo: Demo) -> None:
    """The group robot (webhook/send) and the app API both answer under /sandbox/wecom/cgi-bin/."""
    base = demo.base + "/sandbox/wecom/cgi-bin/"
    async with demo.http.get(base + "gettoken", params={"corpid": "x", "corpsecret": "y"}) as resp:
        assert (await resp.json())["errcode"] == 40013
    async with demo.http.post(base + "webhook/send", params={"key": "wrong"}, json={}) as resp:
        assert (await resp.json())["errcode"] == 93000
