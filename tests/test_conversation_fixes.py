"""Small things a customer noticed, each a transcript over real HTTP."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from bot.sandbox.mp_sim import MpSimulator
from flows import texts
from tests.test_ordering import Customer, shop  # noqa: F401 (the shop fixture: demo-like catalog)


@pytest.fixture
def buyer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:  # noqa: F811
    return Customer(shop, mp_sim[0], "o_small_fixes")


async def test_cancelling_a_direct_order_does_not_promise_a_cart_that_is_empty(buyer: Customer) -> None:
    await buyer.say("搜 抖音运营实战课")
    await buyer.say("1")
    assert "第 1/1 步" in await buyer.say("下单 ①")
    answer = await buyer.say("取消")
    assert answer == texts.FORM_CANCELLED_NO_CART and "购物车" not in answer


async def test_cancelling_with_things_in_the_cart_says_they_are_kept(buyer: Customer) -> None:
    await buyer.say("搜 抖音运营实战课")
    await buyer.say("1")
    await buyer.say("加购 ①")
    await buyer.say("结算")
    assert await buyer.say("取消") == texts.FORM_CANCELLED


async def test_paying_an_order_that_does_not_exist_says_so(buyer: Customer) -> None:
    await buyer.say("搜 抖音运营实战课")
    await buyer.say("1")
    await buyer.say("下单 ①")
    await buyer.say("王芳 13800138000")
    created = await buyer.say("确认")
    number = re.search(r"\d{8}-\d{4}", created)
    assert number
    answer = await buyer.say("支付 12345")
    assert "12345" in answer and number.group(0) not in answer  # not the order just created
    assert number.group(0) in await buyer.say("支付")  # plain 支付 still means the last one
