"""Customers understood in their own words, as transcripts over real HTTP with the demo catalog:
the messages of issue 10's table, the follow-ups that lean on context, questions in the order form,
and what happens when a message is not understood."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from flows import texts
from settings import Settings
from store import catalog_import
from tests import test_relay, test_review, wechat
from tests.conftest import eventually, start_bot
from tests.test_llm import FakeModel
from tests.test_ordering import Customer, in_days, reply_text
from tests.test_relay import pay

HELP = texts.HELP.format(brand="星推")

# The relay tests' shop (staff set up for review) and its customer, for materials sent back.
shop = test_relay.shop
customer_of_shop = test_relay.customer


@pytest.fixture
async def demo(make_settings: Callable[..., Settings]) -> AsyncIterator[TestClient]:
    client = await start_bot(make_settings())
    async with client.app[keys.SESSIONMAKER].begin() as session:
        assert await catalog_import.load_demo_catalog(session) > 0
    yield client
    await client.close()


@pytest.fixture
def customer(demo: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    return Customer(demo, mp_sim[0], "o_own_words")


def listed(reply: str) -> list[str]:
    """The titles of a numbered list of services, in order."""
    return re.findall(r"^\d+\. ([^·\n]+?) · ", reply, flags=re.M)


def prices(reply: str) -> list[int]:
    """The 「¥X 起」 of each line that can still be ordered, in yuan."""
    found = re.findall(r"¥([\d,]+) 起 · (?!已售罄)", reply)
    return [int(p.replace(",", "")) for p in found]


def followers(reply: str) -> list[float]:
    """The follower counts of a list, in 万."""
    return [float(n) for n in re.findall(r"([\d.]+)万粉", reply)]


def understood(reply: str) -> bool:
    """Not the help text, not an apology for not understanding."""
    return HELP not in reply and "没太明白" not in reply and "还没学会" not in reply


# --- the table of issue 10 -----------------------------------------------------------------------


async def test_a_whole_sentence_with_platform_tag_keyword_and_budget(customer: Customer) -> None:
    reply = await customer.say("我想在小红书找美食达人推广咖啡，预算3000以内")
    assert {"小鹿爱咖啡", "阿杰探店"} <= set(listed(reply))
    assert "桃子护肤研究所" not in reply and "城市吃货阿龙" not in reply  # other tag, other platform


async def test_a_question_for_a_platform_and_a_tag(customer: Customer) -> None:
    reply = await customer.say("有没有抖音的探店达人")
    assert {"城市吃货阿龙", "咖啡师小周"} <= set(listed(reply))
    assert "阿杰探店" not in reply  # 小红书


async def test_two_bare_words(customer: Customer) -> None:
    reply = await customer.say("小红书 美食")
    assert {"小鹿爱咖啡", "阿杰探店"} <= set(listed(reply))
    assert "东北大姐家常菜" not in reply  # 快手


async def test_a_tag_alone_lists_every_service_with_it(customer: Customer) -> None:
    reply = await customer.say("美妆")
    assert {"桃子护肤研究所", "美妆博主Coco"} <= set(listed(reply))


async def test_cheaper_after_a_search(customer: Customer) -> None:
    await customer.say("小红书 咖啡 探店")
    reply = await customer.say("便宜一点的")
    titles = listed(reply)
    assert titles[0] == "阿杰探店"  # ¥800, the cheapest of them
    assert all("小红书" in line for line in reply.splitlines() if re.match(r"^\d+\. ", line))


async def test_how_to_order(customer: Customer) -> None:
    reply = await customer.say("怎么下单")
    assert understood(reply) and "下单" in reply and len(reply.splitlines()) <= 4


async def test_i_want_to_advertise_lists_advertising_services(customer: Customer) -> None:
    reply = await customer.say("我要投放广告")
    assert understood(reply) and "信息流投放" in reply


async def test_when_is_my_order_done(customer: Customer) -> None:
    reply = await customer.say("订单什么时候完成")
    assert understood(reply) and "我的订单" in reply


async def test_fake_followers_are_refused_politely(customer: Customer) -> None:
    reply = await customer.say("你们能刷粉吗")
    assert reply.startswith(texts.FAQ["fake"])


async def test_how_much(customer: Customer) -> None:
    reply = await customer.say("价格多少")
    assert understood(reply) and "价格" in reply


async def test_how_much_for_a_platform_lists_it_by_price(customer: Customer) -> None:
    reply = await customer.say("B站UP主合作多少钱")
    lines = [line for line in reply.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(lines) >= 3 and all(" · B站 · " in line for line in lines)
    assert prices(reply) == sorted(prices(reply))  # cheapest first (sold-out ones come last)


# --- context -------------------------------------------------------------------------------------


async def test_more_followers_next_page_pick_and_another_platform(customer: Customer) -> None:
    first = await customer.say("咖啡探店")
    assert len(listed(first)) == 5 and "下一页" in first
    more = await customer.say("粉丝多一点的")
    assert followers(more) == sorted(followers(more), reverse=True) and len(listed(more)) == 5
    assert set(listed(more)) != set(listed(first))  # the best-followed come first now
    rest = await customer.say("还有吗")
    assert listed(rest) and not set(listed(rest)) & set(listed(more))
    assert max(followers(rest)) <= min(followers(more))  # page 2 of the same order
    detail = await customer.say("第二个")
    assert detail.startswith(f"【{listed(rest)[1]}】")
    douyin = await customer.say("那个抖音的呢")
    assert "咖啡师小周" in listed(douyin) and "阿杰探店" not in douyin
    assert all(" · 抖音 · " in line for line in douyin.splitlines() if re.match(r"^\d+\. ", line))


async def test_the_last_one_counts_from_the_end_of_the_list(customer: Customer) -> None:
    listing = await customer.say("小红书 咖啡")
    detail = await customer.say("最后一个")
    assert detail.startswith(f"【{listed(listing)[-1]}】")


async def test_this_one_asks_which_package_and_the_number_orders_it(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    ask = await customer.say("就要这个")
    assert "3 个套餐" in ask and "1. 1 篇图文笔记 ¥1,000" in ask
    start = await customer.say("1")
    assert start.startswith("一共 1 项") and "品牌或店铺名称" in start


async def test_two_of_them_orders_a_quantity_of_two(customer: Customer) -> None:
    await customer.say("搜 短视频剪辑零基础课")
    await customer.say("1")  # one package: 录播课 ¥199.90
    start = await customer.say("我要两份")
    assert texts.ASK_CONTACT in start
    confirm = await customer.say("王芳 13800138000")
    assert "录播课 × 2" in confirm and "¥399.80" in confirm


async def test_a_time_said_with_the_order_is_asked_back_at_its_step(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    start = await customer.say("就要第一个套餐，下周五晚上发")
    assert "周五）19:00" in start and texts.ASK_BRAND in start
    await customer.say("咖啡品牌A")
    await customer.say("https://shop.example.com/coffee")
    ask = await customer.say("冷萃咖啡，0 糖 0 脂")
    assert "第 4/5 步" in ask and "周五）19:00，对吗" in ask
    await customer.say("对")
    confirm = await customer.say("跳过")
    assert "1 篇图文笔记 × 1 ¥1,000" in confirm and re.search(r"发布时间：\d+月\d+日（周五）19:00", confirm)


async def test_how_much_is_this_lists_its_packages_and_a_number_orders_one(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    prices = await customer.say("这个多少钱")
    assert "1. 1 篇图文笔记 ¥1,000" in prices and "3. 3 篇笔记 + 1 场直播 ¥4,500" in prices
    start = await customer.say("3")
    assert start.startswith("一共 1 项") and texts.ASK_BRAND in start


async def test_how_long_does_this_take_lists_its_delivery_times(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    leads = await customer.say("这个多久能发")
    assert "1. 1 篇图文笔记 ¥1,000 · 5 天交付" in leads and "21 天交付" in leads


async def test_order_the_first_from_a_list_opens_it_first(customer: Customer) -> None:
    listing = await customer.say("小红书 咖啡")
    detail = await customer.say("下单第一个")
    assert detail.startswith(f"【{listed(listing)[0]}】") and "套餐" in detail


async def test_journey_4_a_customer_who_never_reads_the_help(customer: Customer) -> None:
    assert await customer.say("在吗") == texts.GREETING
    found = await customer.say("我们是做精品咖啡的，想在红书找几个探店博主，预算两三千")
    assert listed(found) and all(" · 小红书 · " in line for line in found.splitlines()[1:-1])
    more = await customer.say("粉丝多一点的")
    assert followers(more) == sorted(followers(more), reverse=True)
    detail = await customer.say("第一个")
    assert detail.startswith(f"【{listed(more)[0]}】")
    start = await customer.say("就要第一个套餐，下周五晚上发")
    assert "（周五）19:00" in start and texts.ASK_BRAND in start
    again = await customer.say("退款怎么退？")
    assert "申请退款" in again and again.rstrip().endswith(texts.FORM_TEMPLATE_HINT)
    assert texts.ASK_BRAND in again.split("我们接着填")[-1]


# --- the order form ------------------------------------------------------------------------------


async def test_a_question_in_the_form_is_answered_and_the_step_asked_again(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    await customer.say("下单 1")
    reply = await customer.say("退款怎么退？")
    answer, _, again = reply.partition("我们接着填")
    assert "申请退款" in answer and texts.ASK_BRAND in again and "第 1/5 步" in again
    assert "第 2/5 步" in await customer.say("咖啡品牌A")  # the real answer moves on
    await customer.say("https://shop.example.com/coffee")
    await customer.say("冷萃咖啡，0 糖 0 脂")
    await customer.say(in_days(5))
    confirm = await customer.say("跳过")
    assert "咖啡品牌A" in confirm and "退款怎么退" not in confirm


async def test_a_request_in_the_form_is_done_and_the_step_asked_again(customer: Customer) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    await customer.say("下单 1")
    help_now = await customer.say("这一步填什么")  # the step's example, not the whole help
    assert texts.EXAMPLE_BRAND in help_now and HELP not in help_now and "第 1/5 步" in help_now
    orders_now = await customer.say("帮我查一下我的订单")  # a possible brand, but clearly a request
    assert orders_now.startswith(texts.NO_ORDERS) and "第 1/5 步" in orders_now
    await customer.say("咖啡品牌A")
    balance = await customer.say("还有多少余额")  # not a link, and a clear request
    assert "余额" in balance and "第 2/5 步" in balance.split("我们接着填")[-1]
    assert await customer.say("这个单不买了") == texts.FORM_CANCELLED_NO_CART  # this order, not an old one


# --- not understood ------------------------------------------------------------------------------


async def test_an_emoji_gets_one_friendly_line(customer: Customer) -> None:
    reply = await customer.say("👍")
    assert reply == texts.NOT_UNDERSTOOD_SHORT


async def test_not_understood_is_short_numbered_and_the_number_works(customer: Customer) -> None:
    reply = await customer.say("嗯这个那个吧啦吧啦哦")
    assert HELP not in reply and len(reply.splitlines()) <= 4
    assert re.search(r"^1\. ", reply, flags=re.M) and re.search(r"^2\. ", reply, flags=re.M)
    assert texts.OFFER_HUMAN.strip() not in reply  # not yet: one miss
    browse = await customer.say("1")
    assert "平台：" in browse  # the first suggestion: browse by platform and category
    await customer.say("嗯这个那个吧啦吧啦哦")
    howto = await customer.say("第二个")  # words work as well as the number
    assert howto.startswith(texts.FAQ["howto"])


async def test_a_guess_is_offered_first_and_its_number_acts_on_it(customer: Customer) -> None:
    reply = await customer.say("有没有做茶的")  # 茶 is no catalog word: a search for it is a guess
    assert reply.splitlines()[1] == "1. 找「茶」的服务" and len(reply.splitlines()) <= 4
    assert "茶与咖啡的慢生活" in listed(await customer.say("1"))


async def test_a_person_is_offered_after_two_misses_in_a_row(customer: Customer) -> None:
    await customer.say("嗯这个那个吧啦吧啦哦")
    second = await customer.say("呃呃呃哈哈哈嘿嘿嘿")
    assert texts.OFFER_HUMAN.strip() in second and len(second.splitlines()) <= 4


# --- small talk ----------------------------------------------------------------------------------


async def test_greetings_get_a_greeting_not_the_help(customer: Customer) -> None:
    for said in ("在吗", "你好"):
        assert await customer.say(said) == texts.GREETING


async def test_a_long_question_gets_its_answer_and_a_person_offered(customer: Customer) -> None:
    reply = await customer.say("请问一下你们平时一般是怎么和客户沟通需求的，会有专门的人对接整个流程吗")
    assert reply.startswith(texts.FAQ["howto"]) and texts.OFFER_HUMAN.strip() in reply


async def test_an_unhappy_long_message_gets_an_apology_and_a_person(customer: Customer) -> None:
    reply = await customer.say(
        "我之前在别家被坑过好几次了，说得都很好听，结果一点效果都没有，真的很烦，你们到底怎么保证"
    )
    assert reply.startswith(texts.COMPLAINT_SORRY) and "客服" in reply


async def test_punctuation_or_gibberish_gets_one_friendly_line(customer: Customer) -> None:
    assert await customer.say("？？？") == texts.NOT_UNDERSTOOD_SHORT
    second = await customer.say("asdfgh")  # the second miss in a row also offers a person
    assert second == texts.NOT_UNDERSTOOD_SHORT + texts.OFFER_HUMAN


async def test_a_short_request_not_understood_still_gets_suggestions(customer: Customer) -> None:
    reply = await customer.say("帮我推荐")
    assert reply.startswith("没太明白") and re.search(r"^1\. ", reply, flags=re.M)


# --- command words inside sentences --------------------------------------------------------------


async def test_a_question_starting_with_a_command_word_is_answered(customer: Customer) -> None:
    reply = await customer.say("付款方式有哪些")  # 付款 is also a command: 付款 <单号>
    assert reply == texts.FAQ["payment"]


async def test_a_command_glued_to_its_argument_still_reads_it(customer: Customer) -> None:
    number = "20261122-0042"
    assert await customer.say(f"取消订单{number}") == texts.ORDER_NOT_FOUND.format(number=number)
    assert await customer.say("充值500") == texts.TOPUP_UNAVAILABLE  # the amount read; no pay in tests


async def test_a_command_with_its_argument_is_still_the_command(customer: Customer) -> None:
    assert await customer.say("支付 20261122-0042") == texts.ORDER_NOT_FOUND.format(number="20261122-0042")


async def test_asking_for_a_person_in_the_form_is_not_an_answer_but_a_brand_like_it_is(
    customer: Customer,
) -> None:
    await customer.say("搜 小鹿爱咖啡")
    await customer.say("1")
    await customer.say("下单 1")
    reply = await customer.say("我要找人工")
    assert reply.startswith(reply_text(texts.HUMAN)) and "第 1/5 步" in reply
    assert "第 2/5 步" in await customer.say("人工智能科技")  # a brand that mentions 人工


# --- the optional language model -----------------------------------------------------------------

UNCLEAR = "嗯这个那个吧啦吧啦哦"  # nothing the local step can read


@pytest.fixture
async def model() -> AsyncIterator[tuple[FakeModel, str]]:
    fake = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("/v1"))
    await server.close()


@pytest.fixture
async def with_model(
    make_settings: Callable[..., Settings],
    model: tuple[FakeModel, str],
    mp_sim: tuple[MpSimulator, str],
) -> AsyncIterator[Customer]:
    client = await start_bot(make_settings(llm_base_url=model[1], llm_model="qwen-plus", llm_timeout=1.0))
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.load_demo_catalog(session)
    yield Customer(client, mp_sim[0], "o_model")
    await client.close()


async def test_the_model_is_asked_only_when_unsure_and_its_reading_is_acted_on(
    with_model: Customer, model: tuple[FakeModel, str]
) -> None:
    fake, _ = model
    fake.content = json.dumps({"intent": "search", "slots": {"tags": ["美妆"]}})
    assert {"桃子护肤研究所", "美妆博主Coco"} <= set(listed(await with_model.say(UNCLEAR)))
    assert len(fake.requests) == 1
    await with_model.say("小红书 美食")  # read locally with confidence: the model is not asked
    assert len(fake.requests) == 1


async def test_a_slow_or_nonsensical_model_leaves_the_local_answer(
    with_model: Customer, model: tuple[FakeModel, str]
) -> None:
    fake, _ = model
    fake.content = json.dumps({"intent": "transfer_money", "slots": {"amount_fen": 100}})
    assert "没太明白" in await with_model.say(UNCLEAR)
    fake.content, fake.delay = json.dumps({"intent": "search", "slots": {"tags": ["美妆"]}}), 3.0
    assert "没太明白" in await with_model.say(UNCLEAR)


# --- orders talked about -------------------------------------------------------------------------


async def course_order(customer: Customer) -> str:
    """An unpaid order of the one-step course; returns its number."""
    await customer.say("搜 短视频剪辑零基础课")
    await customer.say("1")
    await customer.say("下单 1")
    await customer.say("王芳 13800138000")
    found = re.search(r"\d{8}-\d{4}", await customer.say("确认"))
    assert found
    return found.group(0)


async def test_the_order_talked_about_is_the_one_meant(customer: Customer, demo: TestClient) -> None:
    first = await course_order(customer)
    second = await course_order(customer)
    listing = await customer.say("我的订单")
    assert first in listing and second in listing
    detail = await customer.say("看看第二个")  # the list is newest first
    assert detail.startswith(f"订单 {first} · ")
    assert (await customer.say("订单什么时候完成")).startswith(f"订单 {first} · ")  # the one looked at
    assert await customer.say("不要了，取消吧") == texts.ORDER_CANCELLED.format(number=first)
    await pay(demo, second)
    refund = await customer.say(f"{second} 要退款，活动延期了")
    assert refund == texts.REFUND_REQUESTED.format(number=second)


async def test_a_question_while_redoing_materials_is_answered_and_the_step_asked_again(
    customer_of_shop: Customer, shop: TestClient
) -> None:
    number = await test_review.coffee_order(customer_of_shop, shop)
    await test_review.send_back(shop, number, "链接打不开")
    await eventually(lambda: any(number in m.payload.get("content", "") for m in customer_of_shop.sim.sent))
    reply = await customer_of_shop.say("发票怎么开？")
    answer, _, again = reply.partition("我们接着填")
    assert texts.FAQ["invoice"] in answer and "第 1/3 步" in again and texts.ASK_LINK in again
    assert "第 2/3 步" in await customer_of_shop.say("https://shop.example.com/coffee/v2")


async def test_free_text_is_understood_before_any_catalog_is_loaded(chat: wechat.WeChat) -> None:
    """A fresh install has no services yet: the vocabulary is empty, and free text still gets answers."""
    for said in ("在吗", "你好", "有没有小红书的美食博主", "怎么下单"):
        answer = await chat.say("o_fresh_install", said)
        assert answer.text and answer.text != texts.SORRY, (said, answer.text)
