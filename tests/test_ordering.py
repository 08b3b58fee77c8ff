"""Ordering through chat, as transcripts over real HTTP: search, detail, cart, the order form, my orders."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from flows import texts
from flows.notices import order_notice
from settings import Settings
from store import catalog, catalog_import, orders
from store.models import Material, Order, OutboxMessage, Package, Service, utcnow
from tests.conftest import REDIS_URL, eventually, needs_redis, start_bot
from tests.wechat import ACCOUNT, WeChat

CATALOG = """
- code: xhs-xiaolu
  title: 小鹿爱咖啡
  platform: 小红书
  category: 达人营销
  forms: [图文]
  tags: [咖啡, 探店]
  summary: 上海咖啡探店博主
  followers: 52000
  engagement: 8.1%
  exposure: 30000
  audience: {gender: {女: 82, 男: 18}, age: {18-30: 71, 31-40: 29}, region: {华东: 46, 华南: 54}}
  packages:
    - {name: 1 篇图文笔记, price: 1000, lead_days: 5, stock: 2,
       requirements: [brand, link, selling_points, publish_time, ref_images]}
    - {name: 3 篇图文笔记, price: 2700, requirements: [brand, link]}
- code: xhs-ajie
  title: 阿杰探店
  platform: 小红书
  category: 达人营销
  forms: [图文, 视频]
  tags: [咖啡, 探店, 美食]
  summary: 城市探店
  followers: 38000
  engagement: 7.4%
  packages:
    - {name: 1 篇图文笔记, price: 800, stock: 1, requirements: [brand, link, mentions]}
- code: dy-course
  title: 抖音运营实战课
  platform: 知识服务
  category: 课程
  summary: 8 节直播课
  packages:
    - {name: 单人报名, price: 299, requirements: [contact]}
"""

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def reply_text(content: str) -> str:
    return content.format(brand="星推") if "{brand}" in content else content


class Customer:
    """One person chatting; `say` returns what the bot answered (passively or through the API)."""

    def __init__(self, bot: TestClient, sim: MpSimulator, openid: str) -> None:
        self.chat, self.sim, self.openid = WeChat(bot), sim, openid
        self.bot = bot

    async def say(self, text: str) -> str:
        # What the last turn sent by API must have arrived first, or its last message (say, a pay QR
        # after its text) would be taken for this turn's answer.
        await eventually(self._delivered)
        before = len(self._api())
        answer = await self.chat.say(self.openid, text)
        if answer.text is not None:
            return answer.text

        async def arrived() -> list[Any]:
            return self._api()[before:] if await self._delivered() else []

        sent = await eventually(arrived)
        return "\n".join(m.payload.get("content", "") for m in sent)

    async def _delivered(self) -> bool:
        """Nothing due for this person is still waiting in the outbox (later retries do not count)."""
        async with self.bot.app[keys.SESSIONMAKER]() as s:
            waiting = await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.recipient == self.openid,
                    OutboxMessage.status.in_(["pending", "sending"]),
                    OutboxMessage.next_attempt_at <= utcnow(),
                )
            )
        return not waiting

    async def image(self, media_id: str, data: bytes = PNG) -> str:
        self.sim.media[media_id] = ("image/png", data)
        xml = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{self.openid}]]>"
            f"</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[image]]></MsgType>"
            f"<PicUrl><![CDATA[http://x/{media_id}]]></PicUrl><MediaId><![CDATA[{media_id}]]></MediaId>"
            f"<MsgId>{abs(hash(media_id)) % 10**15}</MsgId></xml>"
        )
        answer = await self.chat.post(xml)
        assert answer.text is not None
        return answer.text

    def _api(self) -> list:
        return [m for m in self.sim.sent if m.openid == self.openid]


@pytest.fixture
async def shop(make_settings: Callable[..., Settings]) -> AsyncIterator[TestClient]:
    client = await start_bot(make_settings())
    specs, errors = catalog_import.parse_catalog(CATALOG, "yaml")
    assert not errors
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.import_catalog(session, specs)
    yield client
    await client.close()


@pytest.fixture
def customer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    return Customer(shop, mp_sim[0], "o_coffee_brand")


def in_days(days: int) -> str:
    when = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=days)
    return f"{when.month}月{when.day}日 19:00"


async def stock_of(shop: TestClient, title: str, name: str) -> int | None:
    async with shop.app[keys.SESSIONMAKER]() as s:
        # By title, not by search: a sold-out service ranks last in search.
        service_id = await s.scalar(select(Service.id).where(Service.title == title))
        assert service_id is not None
        detail = await catalog.get_detail(s, service_id)
    assert detail is not None
    return next(p.stock for p in detail.packages if p.name == name)


async def test_search_detail_cart_form_confirm_and_my_orders(customer: Customer, shop: TestClient) -> None:
    listing = await customer.say("搜 咖啡 探店")
    assert (
        "找到 2 个服务" in listing and "1. 小鹿爱咖啡 · 小红书 · 5.2万粉 · 互动 8.1% · ¥1,000 起" in listing
    )
    detail = await customer.say("1")
    assert "【小鹿爱咖啡】" in detail and "① 1 篇图文笔记 ¥1,000" in detail and "女性 82%" in detail
    assert (await customer.say("加购 ①")).startswith("已加入购物车（共 1 项，¥1,000）")
    await customer.say("2")
    assert "共 2 项，¥1,800" in await customer.say("加购 1")
    cart = await customer.say("购物车")
    assert "1. 小鹿爱咖啡 · 1 篇图文笔记 × 1 = ¥1,000" in cart and "合计 ¥1,800" in cart

    start = await customer.say("结算")
    assert "一共 2 项，需要先填 6 项信息" in start and start.endswith(
        "第 1/6 步：品牌或店铺名称是？" + texts.FORM_TEMPLATE_HINT
    )
    assert "第 2/6 步：推广的商品链接是？" in await customer.say("咖啡品牌A")
    bad = await customer.say("就那个新品")
    assert bad.startswith(texts.LINK_INVALID) and "第 2/6 步" in bad
    assert texts.EXAMPLE_LINK in await customer.say("模板")
    assert "第 3/6 步" in await customer.say("看这个 https://shop.example.com/coffee/new 谢谢")

    # Wander off, then come back where we were.
    wandered = await customer.say("我的订单")
    assert wandered.startswith(texts.NO_ORDERS) and "进行到第 3/6 步，发「继续」接着填" in wandered
    assert "第 3/6 步：核心卖点" in await customer.say("继续")
    assert "第 2/6 步" in await customer.say("返回")
    assert "第 3/6 步" in await customer.say("https://shop.example.com/coffee/new")
    assert "第 4/6 步" in await customer.say("0 糖冷萃，3 秒速溶")
    assert "没看懂这个时间" in await customer.say("下周吧")
    assert "没说几点，先按 19:00 记" in await customer.say(in_days(5).split(" ")[0])
    assert "第 5/6 步：需要 @ 哪些账号？" in await customer.say(in_days(5))
    assert "第 6/6 步" in await customer.say("@咖啡品牌A官方 @小鹿爱咖啡")
    assert (
        await customer.say("好了")
        == texts.IMAGES_NONE_YET + "\n\n" + "第 6/6 步：" + texts.ASK_IMAGES + texts.FORM_TEMPLATE_HINT
    )
    assert "收到第 1 张图" in await customer.image("media-1")
    assert "收到第 2 张图" in await customer.image("media-2")
    summary = await customer.say("好了")
    assert "请确认" in summary and "合计 ¥1,800" in summary and "参考图片：2 张" in summary

    created = await customer.say("确认")
    number = re.search(r"订单 (\d{8}-\d{4}) 已生成，待支付 ¥1,800", created)
    assert number, created
    assert await stock_of(shop, "小鹿爱咖啡", "1 篇图文笔记") == 1
    assert await stock_of(shop, "阿杰探店", "1 篇图文笔记") == 0
    assert (await customer.say("购物车")) == texts.CART_EMPTY

    mine = await customer.say("我的订单")
    assert f"1. {number.group(1)} · 待支付 · ¥1,800 · 小鹿爱咖啡 等 2 项" in mine
    shown = await customer.say("1")
    assert "进度 ▓░░░░ 待支付" in shown and "发布时间：" in shown and "参考图片：2 张" in shown
    async with shop.app[keys.SESSIONMAKER]() as s:
        materials = (await s.scalars(select(Material))).all()
    assert len(materials) == 2 and all(m.order_id is not None for m in materials)

    cancelled = await customer.say(f"取消订单 {number.group(1)}")
    assert cancelled == texts.ORDER_CANCELLED.format(number=number.group(1))
    assert await stock_of(shop, "阿杰探店", "1 篇图文笔记") == 1
    assert await stock_of(shop, "小鹿爱咖啡", "1 篇图文笔记") == 2


async def test_cancel_the_form_and_start_again(customer: Customer) -> None:
    await customer.say("搜 课程")
    await customer.say("1")
    start = await customer.say("下单 ①")
    assert "第 1/1 步：联系人和手机号" in start
    assert await customer.say("取消") == texts.FORM_CANCELLED_NO_CART  # nothing in the cart to keep
    assert await customer.say("继续") == texts.FORM_NOTHING_TO_RESUME
    await customer.say("下单 ①")
    assert texts.CONTACT_INVALID in await customer.say("王芳")
    assert "请确认" in await customer.say("王芳 13800138000")
    assert "已生成" in await customer.say("确认")


async def test_refund_request_on_a_paid_order(customer: Customer, shop: TestClient) -> None:
    await customer.say("搜 课程")
    await customer.say("1")
    await customer.say("下单 ①")
    await customer.say("王芳 13800138000")
    number = re.search(r"\d{8}-\d{4}", await customer.say("确认"))
    assert number
    assert "还不能申请退款" in await customer.say(f"申请退款 {number.group(0)} 不想要了")
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await s.scalar(select(Order).where(Order.number == number.group(0)))
        assert order is not None
        await orders.mark_paid(s, order_id=order.id, notify=order_notice)
    assert texts.REFUND_NEEDS_REASON.format(number=number.group(0)) == await customer.say(
        f"申请退款 {number.group(0)}"
    )
    assert await customer.say(f"申请退款 {number.group(0)} 活动延期了") == texts.REFUND_REQUESTED.format(
        number=number.group(0)
    )
    assert "退款中（活动延期了）" in await customer.say(number.group(0))


async def test_status_changes_are_pushed_to_the_customer(
    customer: Customer, shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    await customer.say("搜 课程")
    await customer.say("1")
    await customer.say("下单 ①")
    await customer.say("王芳 13800138000")
    number = re.search(r"\d{8}-\d{4}", await customer.say("确认"))
    assert number
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await s.scalar(select(Order).where(Order.number == number.group(0)))
        assert order is not None
        await orders.mark_paid(s, order_id=order.id, notify=order_notice)
        await orders.transition(
            s, order_id=order.id, to=orders.OrderStatus.ASSIGNED, actor="staff:wf", notify=order_notice
        )
    shop.app[keys.OUTBOX].wake()
    sent = await eventually(lambda: [m for m in mp_sim[0].sent if m.openid == customer.openid][1:] or None)
    contents = [m.payload["content"] for m in mp_sim[0].sent if m.openid == customer.openid]
    assert any("进入审核" in c for c in contents) and sent


async def test_sold_out_while_confirming(customer: Customer, shop: TestClient) -> None:
    await customer.say("搜 阿杰")
    await customer.say("1")
    await customer.say("下单 ①")
    await customer.say("咖啡品牌A")
    await customer.say("https://shop.example.com/x")
    assert "请确认" in await customer.say("@阿杰")
    async with shop.app[keys.SESSIONMAKER].begin() as s:  # someone else took the last one meanwhile
        package = await s.scalar(select(Package).where(Package.name == "1 篇图文笔记", Package.stock == 1))
        assert package is not None
        package.stock = 0
    answer = await customer.say("确认")
    assert "被抢完了" in answer
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert (await s.scalars(select(Order))).all() == []


async def test_faq_and_help(customer: Customer) -> None:
    assert "明码标价" in await customer.say("你们怎么收费的")
    assert "不做刷粉" in await customer.say("能刷粉吗")
    assert await customer.say("帮助") == reply_text(texts.HELP)


async def test_two_customers_race_for_the_last_unit(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    a, b = (Customer(shop, mp_sim[0], f"o_racer_{i}") for i in range(2))
    for c in (a, b):
        await c.say("搜 阿杰")
        await c.say("1")
        await c.say("下单 ①")
        await c.say("品牌")
        await c.say("https://shop.example.com/x")
        await c.say("@阿杰")
    answers = await asyncio.gather(a.say("确认"), b.say("确认"))
    assert sum("已生成" in x for x in answers) == 1 and sum("被抢完了" in x for x in answers) == 1
    assert await stock_of(shop, "阿杰探店", "1 篇图文笔记") == 0


async def test_an_abandoned_form_gets_one_reminder(
    customer: Customer, shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    from sqlalchemy import update

    from bot.locks import PersonLocks
    from flows.reminders import remind_abandoned_forms
    from store.models import Conversation, utcnow

    await customer.say("搜 课程")
    await customer.say("1")
    await customer.say("下单 ①")
    sessionmaker = shop.app[keys.SESSIONMAKER]
    locks = PersonLocks()
    assert await remind_abandoned_forms(sessionmaker, locks, utcnow()) == 0  # not idle yet
    async with sessionmaker.begin() as s:
        await s.execute(update(Conversation).values(updated_at=utcnow() - dt.timedelta(minutes=31)))
    assert await remind_abandoned_forms(sessionmaker, locks, utcnow()) == 1
    assert await remind_abandoned_forms(sessionmaker, locks, utcnow()) == 0  # only one reminder
    shop.app[keys.OUTBOX].wake()
    reminder = await eventually(lambda: [m for m in mp_sim[0].sent if m.openid == customer.openid])
    assert reminder[0].payload["content"] == texts.FORM_REMINDER.format(n=1, total=1)
    assert texts.ASK_CONTACT in await customer.say("继续")  # and the form is still there


@needs_redis
async def test_with_redis_the_flash_sale_gate_guards_the_last_unit(
    make_settings: Callable[..., Settings], mp_sim: tuple[MpSimulator, str], redis_client: object
) -> None:
    client = await start_bot(make_settings(redis_url=REDIS_URL))
    try:
        specs, _ = catalog_import.parse_catalog(CATALOG, "yaml")
        async with client.app[keys.SESSIONMAKER].begin() as session:
            await catalog_import.import_catalog(session, specs)
        racers = [Customer(client, mp_sim[0], f"o_gate_{i}") for i in range(4)]
        for c in racers:
            for said in ("搜 阿杰", "1", "下单 ①", "品牌", "https://shop.example.com/x", "@阿杰"):
                await c.say(said)
        answers = await asyncio.gather(*(c.say("确认") for c in racers))
        assert sum("已生成" in x for x in answers) == 1
        assert [k async for k in redis_client.scan_iter(match="chatorder:stock:*")]  # type: ignore[attr-defined]
        assert await stock_of(client, "阿杰探店", "1 篇图文笔记") == 0
    finally:
        await client.close()


async def test_starting_a_form_does_not_say_it_was_paused(customer: Customer) -> None:
    """Regression: the 'paused form' hint was appended to the form's own first question."""
    await customer.say("搜 课程")
    await customer.say("1")
    start = await customer.say("下单 ①")
    assert "发「继续」接着填" not in start and start.endswith(texts.ASK_CONTACT + texts.FORM_TEMPLATE_HINT)


async def test_my_orders_are_counted_and_paged_newest_first(customer: Customer, shop: TestClient) -> None:
    async with shop.app[keys.SESSIONMAKER].begin() as session:
        course = await session.scalar(select(Package.id).where(Package.name == "单人报名"))
        assert course is not None
        for i in range(7):
            await orders.create_order(
                session,
                account=ACCOUNT,
                openid=customer.openid,
                lines=[orders.Line(course, 1)],
                requirements={"contact": {"name": "王芳", "phone": "13800138000"}},
                source_key=f"paging:{i}",
                notify=order_notice,
                now=dt.datetime(2026, 12, 1, 8, i, tzinfo=dt.UTC),
                # Still unpaid whatever today is: the expiry job (it runs at start) must not cancel them.
                expires_in=dt.timedelta(days=36500),
            )
    first = await customer.say("我的订单")
    assert "你的订单（共 7 个）（第 1/2 页）" in first and "「下一页」看更多" in first
    assert "1. 20261201-0007 · 待支付 · ¥299 · 抖音运营实战课" in first
    assert "5. 20261201-0003" in first and "20261201-0002" not in first
    second = await customer.say("下一页")
    assert "（第 2/2 页）" in second and "下一页" not in second
    assert "1. 20261201-0002" in second and "2. 20261201-0001" in second
    assert await customer.say("我的订单 已取消") == texts.NO_ORDERS_WITH_STATUS.format(status="已取消")
