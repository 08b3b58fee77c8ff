"""Relay between a customer and the order's staff, over the real MP webhook, on both databases:
联系客服 / relay mode / 结束, staff 回复 (text, template outside 48 h, #快捷回复), images as signed links."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from sqlalchemy import select, update

from bot import files, keys
from bot.app import create_app
from bot.sandbox.mp_sim import MpSimulator
from flows import relay, texts
from flows import texts as t
from flows.notices import quiet
from settings import Settings
from store import catalog_import, orders
from store.db import make_engine
from store.errors import DomainError
from store.migrate import upgrade
from store.models import AuditEntry, Order, OrderEvent, OrderMessage, OutboxMessage, Staff, User, utcnow
from store.orders import OrderStatus
from tests.conftest import eventually
from tests.test_ordering import CATALOG, PNG, Customer
from tests.wechat import ACCOUNT, Answer

TEMPLATE_ID = "tmpl-notice-1"
NUMBER = re.compile(r"\d{8}-\d{4}")


async def start_shop(settings: Settings) -> TestClient:
    """The real app with the catalog, staff, and the signed file view mounted (as the integrator will)."""
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    app = create_app(settings)
    if not any(r.canonical.startswith("/files/materials") for r in app.router.resources()):
        files.setup(app)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    specs, errors = catalog_import.parse_catalog(CATALOG, "yaml")
    assert not errors
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.import_catalog(session, specs)
        session.add_all(
            [
                Staff(userid="wf", name="王芳", roles=["ops"]),
                Staff(userid="lr", name="李锐", roles=["reviewer"]),
                Staff(userid="off", name="休假中", roles=["ops"], on_duty=False),
            ]
        )
    return client


@pytest.fixture
async def shop(make_settings: Callable[..., Settings], db_url: str) -> AsyncIterator[TestClient]:
    settings = make_settings(
        database_url=db_url, wechat_notice_template_id=TEMPLATE_ID, wecom_secret="wecom-test-secret"
    )
    client = await start_shop(settings)
    yield client
    await client.close()


@pytest.fixture
def customer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    return Customer(shop, mp_sim[0], "o_coffee_brand")


def settings_of(shop: TestClient) -> Settings:
    return shop.app[keys.SETTINGS]


async def silent(customer: Customer, content: str) -> Answer:
    """A message that gets no reply (relayed without an acknowledgement)."""
    return await customer.chat.say(customer.openid, content)


async def send_image(customer: Customer, media_id: str, data: bytes = PNG) -> Answer:
    customer.sim.media[media_id] = ("image/png", data)
    xml = (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{customer.openid}]]>"
        f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[image]]></MsgType>"
        f"<PicUrl><![CDATA[http://x/{media_id}]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
        f"<MsgId>{abs(hash(media_id)) % 10**15}</MsgId></xml>"
    )
    return await customer.chat.post(xml)


async def pay(shop: TestClient, number: str) -> Order:
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        return await orders.mark_paid(s, order_id=order.id, notify=quiet)


async def course_order(customer: Customer, shop: TestClient, *, paid: bool = True) -> str:
    """A one-step order (the course), paid."""
    await customer.say("搜 课程")
    await customer.say("1")
    await customer.say("下单 ①")
    await customer.say("王芳 13800138000")
    number = NUMBER.search(await customer.say("确认"))
    assert number
    if paid:
        await pay(shop, number.group(0))
    return number.group(0)


async def wecom(shop: TestClient) -> list[OutboxMessage]:
    """What staff would get in work chat (outbox rows of channel wecom), oldest first."""
    async with shop.app[keys.SESSIONMAKER]() as s:
        rows = await s.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "wecom").order_by(OutboxMessage.id)
        )
        return list(rows)


async def staff_reply(shop: TestClient, number: str, content: str, *, userid: str = "wf", **kw: Any) -> None:
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        await relay.staff_reply(
            s,
            order=order,
            userid=userid,
            content=content,
            settings=kw.get("settings", settings_of(shop)),
            now=kw.get("now", utcnow()),
        )
    shop.app[keys.OUTBOX].wake()


async def received(customer: Customer, kind: str, after: int = 0) -> list[Any]:
    """Messages of `kind` the customer got through the API (customer-service or template)."""
    return await eventually(
        lambda: [m for m in customer.sim.sent[after:] if m.openid == customer.openid and m.kind == kind]
    )


async def test_relay_both_ways_is_kept_under_the_order(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    assert await customer.say("联系客服") == t.RELAY_START.format(number=number)
    start = (await wecom(shop))[-1]
    assert start.recipient == "wf" and number in start.payload["content"]  # on-duty ops; not the reviewer

    assert await customer.say("请问什么时候开课？") == t.RELAY_ACK
    asked = (await wecom(shop))[-1]
    assert asked.kind == "text" and asked.recipient == "wf"
    assert f"订单 {number}" in asked.payload["content"] and "请问什么时候开课？" in asked.payload["content"]
    # Later messages are relayed without an echo each time.
    assert (await silent(customer, "另外发票怎么开")).text is None
    assert "另外发票怎么开" in (await wecom(shop))[-1].payload["content"]
    # Commands still work in relay mode and are not relayed.
    relayed = len(await wecom(shop))
    assert number in await customer.say("我的订单")
    assert len(await wecom(shop)) == relayed

    before = len(customer.sim.sent)
    await staff_reply(shop, number, "周六上午十点开课，链接会提前一天发你。")
    got = (await received(customer, "text", before))[0].payload["content"]
    assert got.startswith(f"【客服 王芳 · 订单 {number}】\n周六上午十点开课")

    async with shop.app[keys.SESSIONMAKER]() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        kept = await relay.thread(s, order.id)
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "reply"))
    assert [(m.direction, m.author) for m in kept] == [
        ("in", f"customer:{customer.openid}"),
        ("in", f"customer:{customer.openid}"),
        ("out", "staff:wf"),
    ]
    assert audit is not None and audit.target == f"order:{number}"
    shown = await customer.say(f"查看对话 {number}")
    assert "你：请问什么时候开课？" in shown and "客服 王芳：周六上午十点开课" in shown

    # The customer's answer to the staff reply goes straight back, without an acknowledgement.
    assert (await silent(customer, "好的谢谢")).text is None
    assert "好的谢谢" in (await wecom(shop))[-1].payload["content"]
    assert await customer.say("结束") == t.RELAY_ENDED
    relayed = len(await wecom(shop))
    assert await customer.say("随便说点什么") != t.RELAY_ACK  # answered here, not relayed
    assert len(await wecom(shop)) == relayed


async def test_the_assignee_gets_the_messages(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(update(Order).where(Order.number == number).values(assignee="lr"))
    await customer.say(f"联系客服 {number} 能开专票吗")  # the rest of the line is the first message
    rows = await wecom(shop)
    assert {r.recipient for r in rows} == {"lr"} and "能开专票吗" in rows[-1].payload["content"]


async def test_staff_reply_outside_48_hours_is_a_template(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(
            update(User)
            .where(User.openid == customer.openid)
            .values(last_inbound_at=utcnow() - dt.timedelta(hours=49))
        )
    before = len(customer.sim.sent)
    await staff_reply(shop, number, "您好，资料我们已经收到，下周一开始执行。")
    notice = (await received(customer, "template", before))[0].payload
    assert notice["template_id"] == TEMPLATE_ID
    assert notice["data"]["first"]["value"] == t.STAFF_REPLY_NOTICE.format(
        name="王芳", number=number, content="您好，资料我们已经收到，下周一开始执行。"
    )
    assert not [m for m in customer.sim.sent[before:] if m.openid == customer.openid and m.kind == "text"]

    # Without a notice template the staff member is told the customer cannot be reached; nothing is kept.
    no_template = settings_of(shop).model_copy(update={"wechat_notice_template_id": ""})
    with pytest.raises(DomainError) as refused:
        await staff_reply(shop, number, "在吗", settings=no_template)
    assert refused.value.code == "customer_unreachable"
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert len((await s.scalars(select(OrderMessage))).all()) == 1


async def test_quick_replies(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        assert await relay.on_quick_reply_command(s, "wf", "") == t.QUICK_LIST_EMPTY
        saved = await relay.on_quick_reply_command(s, "wf", "添加 报价 您好，这个套餐的报价是 ¥299。")
        assert saved == t.QUICK_SAVED.format(name="报价")
        await relay.save_quick_reply(s, "wf", "#到账", "款项已到账。")
        assert [q.name for q in await relay.quick_replies(s, "wf")] == ["到账", "报价"]
        assert await relay.quick_replies(s, "lr") == []
        assert "#报价" in await relay.on_quick_reply_command(s, "wf", "")
    before = len(customer.sim.sent)
    await staff_reply(shop, number, "#报价")
    got = (await received(customer, "text", before))[0].payload["content"]
    assert got == t.STAFF_REPLY.format(name="王芳", number=number, content="您好，这个套餐的报价是 ¥299。")
    with pytest.raises(DomainError) as unknown:
        await staff_reply(shop, number, "#折扣")
    assert unknown.value.code == "unknown_quick_reply" and unknown.value.details == {"name": "折扣"}
    with pytest.raises(DomainError):
        await staff_reply(shop, number, "#报价", userid="lr")  # quick replies are per staff member
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        assert await relay.on_quick_reply_command(s, "wf", "删除 报价") == t.QUICK_DELETED.format(name="报价")
        assert await relay.delete_quick_reply(s, "wf", "报价") is False
        refused = await relay.on_quick_reply_command(s, "wf", "删除 报价")
        assert refused == t.STAFF_ERRORS["unknown_quick_reply"].format(name="报价")
        assert await relay.on_quick_reply_command(s, "wf", "添加 报价") == t.QUICK_USAGE


async def test_staff_reply_needs_an_open_order(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop, paid=False)
    with pytest.raises(DomainError) as unpaid:
        await staff_reply(shop, number, "您好")
    assert unpaid.value.code == "order_not_open" and unpaid.value.details["status"] == "待支付"
    await pay(shop, number)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        for to in (OrderStatus.REFUNDING, OrderStatus.REFUNDED):
            await orders.transition(s, order_id=order.id, to=to, actor="staff:wf", notify=quiet)
    with pytest.raises(DomainError) as refunded:
        await staff_reply(shop, number, "您好")
    assert refunded.value.code == "order_not_open"
    assert "不在服务中" in await customer.say(f"联系客服 {number}")


async def test_which_order_to_talk_about(customer: Customer, shop: TestClient) -> None:
    assert await customer.say("联系客服") == texts.HUMAN  # no paid order: the usual answer
    first = await course_order(customer, shop)
    assert await customer.say("人工客服") == t.RELAY_START.format(number=first)  # the only open order
    assert await customer.say("结束") == t.RELAY_ENDED
    second = await course_order(customer, shop)
    which = await customer.say("联系客服")
    assert which.startswith("你有 2 个进行中的订单") and first in which and second in which
    human = await customer.say("人工")
    assert human.startswith(texts.HUMAN) and first in human and second in human
    assert await customer.say(f"联系客服 {first}") == t.RELAY_START.format(number=first)


async def test_a_completed_order_can_be_talked_about_for_a_week(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
            await orders.transition(s, order_id=order.id, to=to, actor="staff:wf", notify=quiet)
    for words in ("联系客服", "人工", "客服", "转人工"):
        assert await customer.say(words) == t.RELAY_START.format(number=number)
        assert await customer.say("结束") == t.RELAY_ENDED
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(
            update(OrderEvent)
            .where(OrderEvent.order_id == order.id, OrderEvent.to_status == OrderStatus.COMPLETED)
            .values(at=utcnow() - dt.timedelta(days=8))
        )
    assert await customer.say("联系客服") == texts.HUMAN  # completed over a week ago: the usual answer


async def test_relay_ends_after_two_quiet_hours(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    await customer.say("联系客服")
    assert await customer.say("在吗") == t.RELAY_ACK
    async with shop.app[keys.SESSIONMAKER].begin() as s:

        def quiet_for_long(state: Any) -> None:
            state.data["relay"]["last_at"] = (utcnow() - dt.timedelta(hours=2, minutes=1)).isoformat()

        await relay.update_conversation(s, ACCOUNT, customer.openid, quiet_for_long, utcnow())
    relayed = len(await wecom(shop))
    answer = await customer.say("还在吗")  # answered here (short, not the help), not relayed
    assert answer != t.RELAY_ACK and answer != texts.HELP.format(brand="星推")
    assert len(await wecom(shop)) == relayed
    assert await customer.say("结束") == t.RELAY_ENDED  # still understood after the timeout
    assert number


async def test_an_image_is_relayed_as_a_signed_link(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    await customer.say("联系客服")
    picture = PNG + b"relayed"
    assert (await send_image(customer, "media-relay-1", picture)).text == t.RELAY_ACK
    row = (await wecom(shop))[-1]
    assert number in row.payload["content"]
    url = re.search(r"https?://\S+", row.payload["content"])
    assert url
    link = urlsplit(url.group(0))
    resp = await shop.get(f"{link.path}?{link.query}")
    assert resp.status == 200 and resp.content_type == "image/png" and await resp.read() == picture
    async with shop.app[keys.SESSIONMAKER]() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        message = (await relay.thread(s, order.id))[-1]
        view = await orders.get_order(s, order.id)
    assert (
        message.kind == "image"
        and view is not None
        and [m[0] for m in view.materials] == [int(message.content)]
    )
    # A bad picture is refused politely and nothing is relayed.
    relayed = len(await wecom(shop))
    refused = await send_image(customer, "media-relay-2", b"not an image")
    assert refused.text == texts.IMAGE_BAD and len(await wecom(shop)) == relayed


async def test_signed_material_links(customer: Customer, shop: TestClient) -> None:
    settings = settings_of(shop)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        material_id = await orders.save_material(
            s, account=ACCOUNT, openid=customer.openid, media_id="m-1", content_type="", data=PNG
        )
    now = utcnow()

    def path(url: str | None) -> str:
        assert url is not None
        split = urlsplit(url)
        return f"{split.path}?{split.query}"

    good = path(relay.material_link(settings, material_id, now))
    resp = await shop.get(good)
    assert (
        resp.status == 200
        and await resp.read() == PNG
        and resp.headers["Cache-Control"].startswith("private")
    )
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    other = good.replace(f"/materials/{material_id}?", f"/materials/{material_id + 1}?")
    longer = re.sub(r"exp=(\d+)", lambda m: f"exp={int(m.group(1)) + 86400}", good)
    expired = path(relay.material_link(settings, material_id, now - dt.timedelta(days=8)))
    for refused in (tampered, other, longer, expired, f"/files/materials/{material_id}"):
        assert (await shop.get(refused)).status == 403, refused
    # A link signed with another deployment's secrets is refused too.
    stranger = settings.model_copy(update={"wecom_secret": SecretStr("another-secret")})
    assert (await shop.get(path(relay.material_link(stranger, material_id, now)))).status == 403


async def test_an_order_form_under_way_survives_the_relay(customer: Customer, shop: TestClient) -> None:
    number = await course_order(customer, shop)
    await customer.say("搜 课程")
    await customer.say("1")
    assert "第 1/1 步：联系人" in await customer.say("下单 ①")
    started = await customer.say("联系客服")
    assert started.startswith(t.RELAY_START.format(number=number)) and "发「继续」接着填" in started
    acked = await customer.say("王芳 13800138000 这个号码可以吗")  # relayed, not taken as the answer
    assert acked.startswith(t.RELAY_ACK)
    assert "这个号码可以吗" in (await wecom(shop))[-1].payload["content"]
    assert (await customer.say("继续")).startswith("第 1/1 步：联系人")  # leaves the relay
    assert "请确认" in await customer.say("王芳 13800138000")


def test_a_long_list_of_staff_is_split_to_fit_the_outbox(make_settings: Callable[..., Settings]) -> None:
    userids = [f"staff-member-{i:02d}" for i in range(10)]
    sent = relay.to_staff(make_settings(), userids, "hi", key="k")
    assert all(len(m.recipient) <= 64 for m in sent) and len({m.dedupe_key for m in sent}) == len(sent)
    assert [u for m in sent for u in m.recipient.split("|")] == userids
    assert relay.to_staff(make_settings(), [], "hi", key="k") == []  # nobody, and no group robot
