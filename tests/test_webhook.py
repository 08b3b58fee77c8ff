"""The /wechat/mp webhook over real HTTP: modes, retries, the 5-second rule, and hostile requests."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from flows import texts
from handlers import build_router
from handlers.context import Ctx
from handlers.router import Router
from settings import Settings
from store.models import Conversation, FunnelEvent, InboundMessage, OutboxMessage, User, utcnow
from store.writer import GroupWriter
from tests import wechat
from tests.conftest import eventually, start_bot
from tests.wechat import WeChat, text_xml

HELP = texts.HELP.format(brand="星推")


async def count(client: TestClient, model: type) -> int:
    async with client.app[keys.SESSIONMAKER]() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


@pytest.fixture
async def compat_bot(make_settings: Callable[..., Settings]) -> AsyncIterator[TestClient]:
    """The app in WECHAT_MESSAGE_MODE=compat: plaintext and encrypted bodies are both read."""
    client = await start_bot(make_settings(wechat_message_mode="compat"))
    yield client
    await client.close()


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_every_mode_answers(compat_bot: TestClient, mode: str) -> None:
    answer = await WeChat(compat_bot, mode=mode).say("o_mode", "帮助")
    assert answer.status == 200 and answer.text == HELP


async def test_three_deliveries_one_effect_same_reply(bot: TestClient, chat: WeChat) -> None:
    xml = text_xml("o_retry", "帮助", msg_id=777001)
    answers = [await chat.post(xml) for _ in range(3)]
    assert [a.text for a in answers] == [HELP] * 3
    assert await count(bot, InboundMessage) == 1


async def test_concurrent_retries_run_the_handler_once(make_settings: Callable[..., Settings]) -> None:
    calls = 0
    router = Router("probe")

    @router.text("慢")
    async def slow(ctx: Ctx) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)
        ctx.say("好了")

    router.include(build_router())
    client = await start_bot(make_settings(), router)
    try:
        xml = text_xml("o_dup", "慢", msg_id=777002)
        answers = await asyncio.gather(*(WeChat(client).post(xml) for _ in range(3)))
        assert [a.text for a in answers] == ["好了"] * 3
        assert calls == 1
    finally:
        await client.close()


async def test_same_msgid_from_two_people_is_two_messages(bot: TestClient, chat: WeChat) -> None:
    # MsgId alone collides across accounts and senders; the key includes the sender.
    await chat.post(text_xml("o_one", "帮助", msg_id=777003))
    await chat.post(text_xml("o_two", "帮助", msg_id=777003))
    assert await count(bot, InboundMessage) == 2


@pytest.fixture
async def slow_bot(
    make_settings: Callable[..., Settings], mp_sim: tuple[MpSimulator, str]
) -> AsyncIterator[TestClient]:
    router = Router("probe")

    @router.text("慢慢来")
    async def slow(ctx: Ctx) -> None:
        await asyncio.sleep(0.6)
        ctx.say("让你久等了")

    @router.text("图文", "慢图文")
    async def three(ctx: Ctx) -> None:
        if ctx.event.text == "慢图文":
            await asyncio.sleep(0.6)
        ctx.say("先看这段话")
        ctx.image("media_qr")
        ctx.say("最后一句")

    router.include(build_router())
    client = await start_bot(make_settings(reply_budget=0.2), router)
    yield client
    await client.close()


async def test_slow_handler_answers_success_then_sends_by_api(
    slow_bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    sim, _ = mp_sim
    xml = text_xml("o_slow", "慢慢来", msg_id=777004)
    first = await WeChat(slow_bot).post(xml)
    assert (first.status, first.body) == (200, "success")
    sent = await eventually(lambda: [m for m in sim.sent if m.openid == "o_slow"])
    assert sent[0].kind == "text" and sent[0].payload["content"] == "让你久等了"
    # WeChat's retry after the reply went by API gets `success`, not a second copy.
    again = await WeChat(slow_bot).post(xml)
    assert again.body == "success"
    await asyncio.sleep(0.3)
    assert len([m for m in sim.sent if m.openid == "o_slow"]) == 1


def _with_picture(sim: MpSimulator) -> MpSimulator:
    sim.media["media_qr"] = ("image/png", b"\x89PNG")  # the picture the turn answers with, uploaded
    return sim


def _got(sim: MpSimulator, openid: str) -> list[tuple[str, str]]:
    return [
        (m.kind, m.payload.get("content") or m.payload.get("media_id"))
        for m in sim.sent
        if m.openid == openid
    ]


async def test_several_answers_the_first_at_once_the_rest_by_api_in_order(
    slow_bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    sim = _with_picture(mp_sim[0])
    xml = text_xml("o_many", "图文", msg_id=777005)
    first = await WeChat(slow_bot).post(xml)
    assert first.text == "先看这段话"
    rest = [("image", "media_qr"), ("text", "最后一句")]
    assert await eventually(lambda: _got(sim, "o_many") == rest)
    again = await WeChat(slow_bot).post(xml)  # WeChat's retry: the same first answer, nothing sent again
    assert again.text == "先看这段话"
    await asyncio.sleep(0.3)
    assert _got(sim, "o_many") == rest


async def test_several_answers_too_late_for_the_reply_all_go_by_api_in_order(
    slow_bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    sim = _with_picture(mp_sim[0])
    answer = await WeChat(slow_bot).post(text_xml("o_later", "慢图文", msg_id=777006))
    assert answer.body == "success"
    every = [("text", "先看这段话"), ("image", "media_qr"), ("text", "最后一句")]
    assert await eventually(lambda: _got(sim, "o_later") == every)


async def test_several_answers_whose_commit_outlives_the_reply_all_go_by_api_once(
    slow_bot: TestClient, mp_sim: tuple[MpSimulator, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = _with_picture(mp_sim[0])
    commit = GroupWriter._commit

    async def slow_commit(self: GroupWriter, batch: Any) -> None:
        await asyncio.sleep(1.0)  # past the reply budget and the commit grace
        await commit(self, batch)

    monkeypatch.setattr(GroupWriter, "_commit", slow_commit)
    xml = text_xml("o_stuck", "图文", msg_id=777007)
    answer = await WeChat(slow_bot).post(xml)
    assert answer.body == "success"
    every = [("text", "先看这段话"), ("image", "media_qr"), ("text", "最后一句")]
    assert await eventually(lambda: sorted(_got(sim, "o_stuck")) == sorted(every))
    monkeypatch.setattr(GroupWriter, "_commit", commit)
    assert (await WeChat(slow_bot).post(xml)).body == "success"  # the retry: no second copy
    await asyncio.sleep(0.3)
    assert sorted(_got(sim, "o_stuck")) == sorted(every)


async def test_two_messages_from_one_person_never_lose_a_state_update(
    make_settings: Callable[..., Settings],
) -> None:
    router = Router("probe")

    @router.text("加一")
    async def add_one(ctx: Ctx) -> None:
        n = int(ctx.state.data.get("n", 0))
        await asyncio.sleep(0.05)  # widen the race window
        ctx.state.data["n"] = n + 1
        ctx.say(str(n + 1))

    client = await start_bot(make_settings(), router)
    try:
        await asyncio.gather(*(WeChat(client).say("o_race", "加一") for _ in range(5)))
        async with client.app[keys.SESSIONMAKER]() as s:
            conv = await s.get(Conversation, (wechat.ACCOUNT, "o_race"))
        assert conv is not None and conv.data["n"] == 5
    finally:
        await client.close()


async def test_forged_signature_is_refused_and_changes_nothing(bot: TestClient, chat: WeChat) -> None:
    query, body = chat.request(text_xml("o_forge", "帮助"))
    for forged in (query | {"signature": "0" * 40}, query | {"msg_signature": "0" * 40}, {}):
        resp = await bot.post("/wechat/mp", params=forged, data=body.encode())
        assert resp.status == 403
    assert await count(bot, InboundMessage) == 0


async def test_plain_request_with_wrong_token_is_refused(bot: TestClient) -> None:
    answer = await WeChat(bot, mode="plain", token="not-our-token").say("o_forge", "帮助")
    assert answer.status == 403
    assert await count(bot, InboundMessage) == 0


async def test_oversized_body_is_refused(bot: TestClient, chat: WeChat) -> None:
    query, _ = chat.request(text_xml("o_big", "x"))
    resp = await bot.post("/wechat/mp", params=query, data=b"<xml>" + b"a" * 70_000 + b"</xml>")
    assert resp.status == 413
    assert await count(bot, InboundMessage) == 0


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_xml_entities_are_refused(compat_bot: TestClient, mode: str) -> None:
    bot = compat_bot
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        "<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>text</MsgType><Content>&b;</Content><MsgId>1</MsgId></xml>"
    )
    xxe = '<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Content>&x;</Content></xml>'
    for evil in (laughs, xxe):
        answer = await WeChat(bot, mode=mode).post(evil)
        assert answer.status == 400
    assert await count(bot, InboundMessage) == 0


async def test_malformed_xml_is_400(compat_bot: TestClient) -> None:
    bot = compat_bot
    query, _ = WeChat(bot, mode="plain").request("<xml/>")
    for body in (b"<xml><ToUserName>", b"not xml at all", b"<other/>"):
        resp = await bot.post("/wechat/mp", params=query, data=body)
        assert resp.status == 400
    assert await count(bot, InboundMessage) == 0


async def test_outbox_is_empty_after_plain_chat(bot: TestClient, chat: WeChat) -> None:
    """Passive replies travel in the HTTP answer: nothing extra goes through the API."""
    await chat.say("o_quiet", "帮助")
    assert await count(bot, OutboxMessage) == 0


async def test_a_change_deep_inside_the_state_is_saved(make_settings: Callable[..., Settings]) -> None:
    """Regression: a shallow copy of the loaded state hid nested changes from the save."""
    router = Router("probe")

    @router.text("记")
    async def remember(ctx: Ctx) -> None:
        ctx.state.data.setdefault("nested", {}).setdefault("items", []).append(
            len(ctx.state.data["nested"]["items"])
        )
        ctx.say(str(len(ctx.state.data["nested"]["items"])))

    client = await start_bot(make_settings(), router)
    try:
        assert [(await WeChat(client).say("o_deep", "记")).text for _ in range(3)] == ["1", "2", "3"]
    finally:
        await client.close()


async def test_a_person_chatting_has_their_users_row_rewritten_at_most_once_a_minute(
    bot: TestClient, chat: WeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each message used to rewrite the person's users row; now only when it says something new
    (a new person, a subscription changed) or the last write is a minute old."""
    clock = [utcnow()]
    monkeypatch.setattr("webhooks.pipeline.utcnow", lambda: clock[0])

    async def row() -> tuple[dt.datetime | None, dt.datetime | None, bool]:
        async with bot.app[keys.SESSIONMAKER]() as s:
            user = (await s.execute(select(User).where(User.openid == "o_touch"))).scalar_one()
            return user.last_inbound_at, user.last_seen_at, user.subscribed

    start = clock[0]
    assert (await chat.say("o_touch", "帮助")).text == HELP
    assert await row() == (start, start, True)
    clock[0] = start + dt.timedelta(seconds=30)
    await chat.say("o_touch", "关于")
    assert await row() == (start, start, True)  # half a minute later: unchanged
    clock[0] = start + dt.timedelta(seconds=61)
    await chat.say("o_touch", "你好")
    assert await row() == (clock[0], clock[0], True)
    clock[0] += dt.timedelta(seconds=5)
    await chat.event("o_touch", "unsubscribe")
    assert await row() == (clock[0], clock[0], False)  # a change of subscription is written at once
    clock[0] += dt.timedelta(seconds=5)
    await chat.event("o_touch", "subscribe")
    assert await row() == (clock[0], clock[0], True)


async def test_a_turn_whose_rows_cannot_be_written_fails_alone(
    make_settings: Callable[..., Settings],
) -> None:
    """A write the driver cannot even bind (a naive datetime) once ended the group writer's task, and
    every turn committed with it waited forever: never answered, never recorded. Now it fails alone
    (not acknowledged, so WeChat sends it again) and the others at the same moment are answered."""
    router = Router("probe")

    @router.text("慢", "坏")
    async def slow(ctx: Ctx) -> None:
        await asyncio.sleep(0.05)  # so that the turns reach the group writer together
        if ctx.command == "坏":
            ctx.writes.append(
                (insert(FunnelEvent), {"account": "a", "openid": "o", "step": "x", "at": dt.datetime.now()})
            )
        ctx.say("好了")

    router.include(build_router())
    client = await start_bot(make_settings(), router)
    try:
        people = [f"o_batch{i}" for i in range(6)]
        answers = await asyncio.gather(
            *(
                WeChat(client).post(text_xml(p, "坏" if i == 3 else "慢", msg_id=881_700 + i))
                for i, p in enumerate(people)
            )
        )
        assert [a.status for a in answers] == [200, 200, 200, 503, 200, 200]
        assert [a.text for i, a in enumerate(answers) if i != 3] == ["好了"] * 5
        assert await count(client, InboundMessage) == 5
        again = await WeChat(client).say("o_batch3", "帮助")  # the writer still runs
        assert again.text == HELP
    finally:
        await client.close()
