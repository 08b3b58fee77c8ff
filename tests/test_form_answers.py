"""The order form understands answers written the way people write them: transcripts over real HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from settings import Settings
from store import catalog_import
from tests.conftest import start_bot
from tests.test_ordering import Customer

CATALOG = """
- code: xhs-xiaolu
  title: 小鹿爱咖啡
  platform: 小红书
  category: 达人营销
  summary: 上海咖啡探店博主
  packages:
    - {name: 1 篇图文笔记, price: 1000, requirements: [brand, link, publish_time, mentions, contact]}
"""
BEIJING = dt.timezone(dt.timedelta(hours=8))
WEEKDAYS = "一二三四五六日"


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
async def customer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    person = Customer(shop, mp_sim[0], "o_form_answers")
    await person.say("搜 小鹿")
    await person.say("1")
    assert "第 1/5 步：品牌或店铺名称是？" in await person.say("下单 ①")
    return person


def shown(day: dt.date) -> str:
    """How the form writes a day back: 12月18日（周五）."""
    return f"{day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）"


def today() -> dt.date:
    return dt.datetime.now(BEIJING).date()


async def fill_until_publish_time(customer: Customer) -> None:
    assert "第 2/5 步" in await customer.say("咖啡品牌A")
    assert "第 3/5 步：希望什么时候发布？" in await customer.say("https://shop.example.com/coffee/new")


async def test_punctuation_and_a_question_are_not_taken_as_the_brand(customer: Customer) -> None:
    refused = await customer.say("？？？")
    assert "品牌名里要有文字或字母" in refused and "第 1/5 步" in refused
    # whoever answers the question, the brand step is asked again and nothing is kept
    assert "第 1/5 步" in await customer.say("退款怎么退？")
    assert "第 2/5 步" in await customer.say("咖啡品牌A")
    await customer.say("https://shop.example.com/coffee/new")
    await customer.say("下周五晚上7点")
    await customer.say("@小鹿 @阿杰")
    summary = await customer.say("王芳 +86 138 0013 8000")
    assert "品牌：咖啡品牌A" in summary and "？？？" not in summary and "退款" not in summary


async def test_a_link_pasted_inside_a_share_text_is_found(customer: Customer) -> None:
    await customer.say("咖啡品牌A")
    share = (
        "3.83 复制打开抖音，看看【小鹿爱咖啡的作品】冷萃咖啡测评 # 咖啡 "
        "https://v.douyin.com/iRNBho6u/ aAa:/ 12/10"
    )
    assert "第 3/5 步" in await customer.say(share)
    await customer.say("下周五晚上7点")
    await customer.say("小鹿、阿杰")
    summary = await customer.say("联系人：王芳，电话：138-0013-8000")
    assert "推广链接：https://v.douyin.com/iRNBho6u/\n" in summary
    assert "需 @ 的账号：@小鹿 @阿杰" in summary and "联系人：王芳 138****8000" in summary


async def test_an_assumed_time_is_confirmed_back_with_the_weekday(customer: Customer) -> None:
    await fill_until_publish_time(customer)
    monday = today() - dt.timedelta(days=today().weekday())
    friday = monday + dt.timedelta(days=7 + 4)
    asked = await customer.say("下周五晚上")
    assert f"第 3/5 步：发布时间记为 {shown(friday)}19:00，对吗？" in asked and "回复「对」确认" in asked

    # wandering off and coming back keeps the question open
    assert "进行到第 3/5 步" in await customer.say("我的订单")
    assert f"发布时间记为 {shown(friday)}19:00" in await customer.say("继续")
    assert "第 4/5 步：需要 @ 哪些账号？" in await customer.say("对")
    await customer.say("@小鹿")
    summary = await customer.say("王芳 13800138000")
    assert f"发布时间：{shown(friday)}19:00" in summary


async def test_another_answer_instead_of_yes_is_read_as_the_new_time(customer: Customer) -> None:
    await fill_until_publish_time(customer)
    assert "对吗" in await customer.say("下周五晚上")
    assert "第 4/5 步" in await customer.say("下周六晚上8点")  # said in full: nothing to confirm
    await customer.say("@小鹿")
    monday = today() - dt.timedelta(days=today().weekday())
    assert f"发布时间：{shown(monday + dt.timedelta(days=12))}20:00" in await customer.say("王芳 13800138000")


async def test_a_past_time_is_refused_with_the_reason(customer: Customer) -> None:
    await fill_until_publish_time(customer)
    yesterday = today() - dt.timedelta(days=1)
    refused = await customer.say(f"{yesterday.month}月{yesterday.day}日 19:00")
    assert f"{shown(yesterday)}19:00 已经过去了" in refused and "第 3/5 步：希望什么时候发布？" in refused


async def test_the_template_example_is_accepted_when_sent_back(customer: Customer) -> None:
    await fill_until_publish_time(customer)
    template = await customer.say("模板")
    found = re.search(r"示例：\n(.+)\n", template)
    assert found, template
    assert shown(today() + dt.timedelta(days=3)) in found.group(1)
    assert "第 4/5 步" in await customer.say(found.group(1))
