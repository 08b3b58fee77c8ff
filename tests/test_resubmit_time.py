"""Redoing a sent-back publish time understands it as the order form does: asked back, then kept on 对."""

from __future__ import annotations

import datetime as dt

from aiohttp.test_utils import TestClient

from flows import texts as t
from tests import test_relay
from tests.test_ordering import Customer
from tests.test_relay import received
from tests.test_review import coffee_order, load, send_back

shop = test_relay.shop
customer = test_relay.customer
BEIJING = dt.timezone(dt.timedelta(hours=8))


async def test_a_redone_publish_time_is_confirmed_back_before_it_is_kept(
    customer: Customer, shop: TestClient
) -> None:
    number = await coffee_order(customer, shop)
    before = len(customer.sim.sent)
    await send_back(shop, number, "档期冲突，发布时间请改一下", steps=["publish_time"])
    assert "第 1/1 步：希望什么时候发布？" in (await received(customer, "text", before))[0].payload["content"]

    today = dt.datetime.now(BEIJING).date()
    saturday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7 + 5)
    shown = f"{saturday.month}月{saturday.day}日（周六）19:00"
    assert f"发布时间记为 {shown}，对吗？" in await customer.say("下周六晚上")
    assert (await load(shop, number)).requirements["publish_time"] != f"{saturday.isoformat()}T19:00+08:00"
    assert await customer.say("对") == t.RESUBMIT_DONE.format(number=number)
    assert (await load(shop, number)).requirements["publish_time"] == f"{saturday.isoformat()}T19:00+08:00"
