"""WeComClient and the 'wecom' outbox channel against the WeCom simulator over real HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import keys
from bot.channels.tokens import DbTokenStore
from bot.channels.wecom import Sent, WeComApiError, WeComClient
from bot.sandbox.wecom_sim import WeComSimulator
from settings import Settings
from store.models import KeyValue, OutboxMessage
from store.outbox import Outgoing, enqueue
from tests import wecom
from tests.conftest import eventually


def review_card(task_id: str) -> dict[str, Any]:
    """A button card as the staff desk builds it (the full WeCom template_card object)."""
    return {
        "card_type": "button_interaction",
        "main_title": {"title": "新订单待审核", "desc": "20261122-0042"},
        "sub_title_text": "小红书探店 × 1，¥1,200.00",
        "horizontal_content_list": [{"keyname": "客户", "value": "咖啡品牌A"}],
        "task_id": task_id,
        "button_list": [
            {"text": "通过", "style": 1, "key": "approve"},
            {"text": "驳回", "style": 2, "key": "reject"},
        ],
    }


@dataclass
class Env:
    sim: WeComSimulator
    client: TestClient
    probe: wecom.Probe

    @property
    def base(self) -> str:
        return wecom.base_url(self.client)

    @property
    def wecom(self) -> WeComClient:
        found = self.client.server.app[keys.WECOM]
        assert found is not None
        return found

    async def enqueue(self, *messages: Outgoing) -> None:
        async with self.client.server.app[keys.SESSIONMAKER].begin() as session:
            await enqueue(session, *messages)
        self.client.server.app[keys.OUTBOX].wake()

    async def statuses(self) -> list[str]:
        async with self.client.server.app[keys.SESSIONMAKER]() as session:
            rows = await session.execute(select(OutboxMessage.status).order_by(OutboxMessage.id))
            return list(rows.scalars())


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


async def test_text_markdown_and_card_go_out_through_the_outbox(env: Env) -> None:
    await env.enqueue(
        Outgoing("wecom", "wangfang", "text", {"content": "你好"}),
        Outgoing("wecom", "wangfang|lisi", "markdown", {"content": "**新订单** 20261122-0042"}),
        Outgoing("wecom", "wangfang|lisi", "template_card", {"template_card": review_card("t-1")}),
    )
    await eventually(lambda: len(env.sim.messages) == 3)
    text, markdown, card = env.sim.messages
    assert (text.touser, text.kind, text.payload) == (("wangfang",), "text", {"content": "你好"})
    assert (markdown.touser, markdown.kind) == (("wangfang", "lisi"), "markdown")
    assert card.kind == "template_card" and card.payload == review_card("t-1") and card.response_code
    assert [m.kind for m in env.sim.sent_to("lisi")] == ["markdown", "template_card"]
    await eventually(lambda: _all_sent(env))
    assert env.sim.calls["gettoken"] == 1


async def test_an_image_is_uploaded_then_sent_through_the_outbox(env: Env) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # bytes, not text: must arrive unchanged
    payload = {"filename": "board.png", "base64": base64.b64encode(png).decode()}
    env.sim.fail_next("media_upload", 40014)  # a rejected token on the upload: refreshed, uploaded once
    await env.enqueue(Outgoing("wecom", "wangfang", "image", payload))
    await eventually(lambda: env.sim.sent_to("wangfang"))
    [image] = env.sim.sent_to("wangfang")
    assert image.kind == "image" and env.sim.media[image.payload["media_id"]] == ("image/png", png)
    assert len(env.sim.media) == 1 and env.sim.calls["media_upload"] == 2
    await eventually(lambda: _all_sent(env))


async def test_an_image_of_unknown_media_or_an_empty_upload_is_refused(env: Env) -> None:
    with pytest.raises(WeComApiError) as unknown:
        await env.wecom.send_image("wangfang", "no-such-media")
    assert unknown.value.errcode == 40007 and not env.sim.messages
    with pytest.raises(WeComApiError) as empty:
        await env.wecom.upload_media("image", "board.png", b"")
    assert empty.value.errcode == 41005 and not env.sim.media


async def _all_sent(env: Env) -> bool:
    return set(await env.statuses()) == {"sent"}


async def test_a_click_code_updates_the_card_for_everyone(env: Env) -> None:
    await env.enqueue(
        Outgoing("wecom", "wangfang|lisi", "template_card", {"template_card": review_card("t-2")})
    )
    await eventually(lambda: env.sim.card("t-2", "lisi") is not None)
    push = await env.sim.click(env.base, "wangfang", "t-2", "approve")
    [event] = env.probe.events
    assert event.response_code == push.response_code

    update = {"response_code": event.response_code, "atall": 1, "button": {"replace_name": "已通过 · 王芳"}}
    await env.enqueue(Outgoing("wecom", "wangfang", "card_update", update))
    await eventually(lambda: all(env.sim.card("t-2", u).replace_name for u in ("wangfang", "lisi")))  # type: ignore[union-attr]
    assert env.sim.card("t-2", "lisi").replace_name == "已通过 · 王芳"  # type: ignore[union-attr]
    # The card is settled: its buttons cannot be clicked any more.
    with pytest.raises(Exception, match="已处理"):
        await env.sim.click(env.base, "lisi", "t-2", "reject")


async def test_the_send_response_code_is_handed_to_the_hook(env: Env) -> None:
    got: list[tuple[str, str]] = []

    async def keep(task_id: str, sent: Sent) -> None:
        got.append((task_id, sent.response_code))
        raise RuntimeError("a failing hook must not resend the card")

    env.wecom.on_card_sent = keep
    await env.enqueue(Outgoing("wecom", "wangfang", "template_card", {"template_card": review_card("t-6")}))
    await eventually(lambda: _all_sent(env))
    assert got == [("t-6", env.sim.messages[0].response_code)] and len(env.sim.messages) == 1
    await env.wecom.update_template_card(response_code=got[0][1], replace_name="已由 lisi 接单")
    assert env.sim.card("t-6", "wangfang").replace_name == "已由 lisi 接单"  # type: ignore[union-attr]


async def test_update_replaces_the_whole_card_for_some_users(env: Env) -> None:
    sent = await env.wecom.send_template_card("wangfang|lisi", review_card("t-3"))
    done = review_card("t-3") | {"card_type": "text_notice", "main_title": {"title": "已驳回（李四）"}}
    del done["button_list"]
    await env.wecom.update_template_card(
        response_code=sent.response_code, userids=["lisi"], template_card=done
    )
    assert env.sim.card("t-3", "lisi").card["main_title"]["title"] == "已驳回（李四）"  # type: ignore[union-attr]
    assert env.sim.card("t-3", "wangfang").card == review_card("t-3")  # type: ignore[union-attr]


async def test_a_reused_response_code_is_refused(env: Env) -> None:
    await env.wecom.send_template_card("wangfang", review_card("t-4"))
    push = await env.sim.click(env.base, "wangfang", "t-4", "reject")
    await env.wecom.update_template_card(response_code=push.response_code, replace_name="已驳回")
    with pytest.raises(WeComApiError) as refused:
        await env.wecom.update_template_card(response_code=push.response_code, replace_name="已驳回")
    assert refused.value.errcode == 40058 and not refused.value.retryable
    # Through the outbox the row fails at once instead of retrying for hours.
    update = {"response_code": push.response_code, "button": {"replace_name": "again"}}
    await env.enqueue(Outgoing("wecom", "wangfang", "card_update", update))
    await eventually(lambda: _has_status(env, "failed"))


async def _has_status(env: Env, status: str) -> bool:
    return status in await env.statuses()


async def test_expired_token_is_refreshed_once(env: Env) -> None:
    await env.wecom.send_text("wangfang", "一")
    env.sim.expire_tokens()
    await env.wecom.send_text("wangfang", "二")
    assert env.sim.calls["gettoken"] == 2 and env.sim.calls["send"] == 3
    env.sim.fail_next("send", 40014)  # invalid access_token: refresh, then the call goes through
    await env.wecom.send_text("wangfang", "三")
    assert [m.payload["content"] for m in env.sim.messages] == ["一", "二", "三"]
    assert env.sim.calls["gettoken"] == 3


async def test_a_second_rejection_after_the_refresh_is_raised_and_retryable(env: Env) -> None:
    env.sim.fail_next("send", 42001, times=2)
    with pytest.raises(WeComApiError) as failed:
        await env.wecom.send_text("wangfang", "x")
    assert failed.value.errcode == 42001 and failed.value.retryable
    assert env.sim.calls["gettoken"] == 2


async def test_token_lives_in_the_shared_store_under_its_own_name(env: Env) -> None:
    await env.wecom.send_text("wangfang", "hi")
    name = f"wecom:{wecom.CORP_ID}:{wecom.AGENT_ID}:access_token"
    async with env.client.server.app[keys.SESSIONMAKER]() as session:
        names = set((await session.execute(select(KeyValue.name))).scalars())
    assert name in names and not any(n.startswith("wechat:mp") for n in names)


@pytest.mark.parametrize(
    ("errcode", "retryable"), [(45009, True), (-1, True), (81013, False), (40008, False)]
)
async def test_api_errors_map_like_the_mp_client(env: Env, errcode: int, retryable: bool) -> None:
    env.sim.fail_next("send", errcode)
    with pytest.raises(WeComApiError) as failed:
        await env.wecom.send_markdown("wangfang", "x")
    assert (failed.value.errcode, failed.value.retryable) == (errcode, retryable)


async def test_wrong_secret_and_bad_payloads(env: Env, make_settings: Callable[..., Settings]) -> None:
    app = env.client.server.app
    settings = wecom.settings(make_settings, app[keys.SETTINGS].wecom_api_base, wecom_secret="wrong")
    intruder = WeComClient(app[keys.HTTP], settings, DbTokenStore(app[keys.SESSIONMAKER], "other"))
    with pytest.raises(WeComApiError) as failed:
        await intruder.check_credentials()
    assert failed.value.errcode == 40001
    with pytest.raises(ValueError, match="cannot send"):
        await env.wecom.send(Outgoing("wecom", "wangfang", "news", {}))
    with pytest.raises(WeComApiError) as failed:
        await env.wecom.send_template_card("wangfang", {"card_type": "button_interaction", "task_id": "t"})
    assert failed.value.errcode == 40058


async def test_simulator_answers_in_the_sampled_shapes(env: Env, samples: Path) -> None:
    """gettoken, message/send and an expired token answer with the fields of Tencent's samples."""
    base = env.client.server.app[keys.SETTINGS].wecom_api_base
    sample = {name: json.loads((samples / "api" / name).read_text()) for name in _SAMPLED}
    async with aiohttp.ClientSession() as http:
        query = {"corpid": wecom.CORP_ID, "corpsecret": wecom.SECRET}
        async with http.get(base + "gettoken", params=query) as resp:
            token = await resp.json()
        assert set(token) == set(sample["wecom/gettoken.json"]) and token["errcode"] == 0
        body = {"touser": "wangfang", "msgtype": "template_card", "agentid": int(wecom.AGENT_ID)}
        body["template_card"] = review_card("t-5")
        async with http.post(
            base + "message/send", params={"access_token": token["access_token"]}, json=body
        ) as resp:
            sent = await resp.json()
        assert {"errcode", "errmsg", "msgid", "response_code"} <= set(sample["wecom/message_send.json"])
        assert {"errcode", "errmsg", "msgid", "response_code"} == set(sent)
        env.sim.expire_tokens()
        async with http.post(
            base + "message/send", params={"access_token": token["access_token"]}, json=body
        ) as resp:
            expired = await resp.json()
        assert (
            set(expired) == set(sample["errors/42001_access_token_expired.json"])
            and expired["errcode"] == 42001
        )


_SAMPLED = ("wecom/gettoken.json", "wecom/message_send.json", "errors/42001_access_token_expired.json")
