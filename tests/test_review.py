"""Content review over the real MP webhook, on both databases: the reviewer's materials card, reject and
resubmit in chat (resuming a paused order form afterwards), 取消 → staff, and refusals."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import keys
from flows import review, texts
from flows import texts as t
from flows.notices import quiet
from flows.reminders import remind_abandoned_forms
from flows.requirements import STEPS
from store import orders
from store.errors import DomainError
from store.models import AuditEntry, Material, Order, OrderMessage, utcnow
from store.orders import OrderStatus
from tests import test_relay
from tests.test_ordering import PNG, Customer, in_days
from tests.test_relay import NUMBER, course_order, pay, received, settings_of, wecom

# The same shop (both databases, staff wf/ops and lr/reviewer) and customer as the relay tests.
shop = test_relay.shop
customer = test_relay.customer


async def coffee_order(customer: Customer, shop: TestClient) -> str:
    """A paid order with material steps: brand, link, selling points, publish time and one image."""
    await customer.say("搜 小鹿")
    await customer.say("1")
    await customer.say("下单 ①")
    for answer in ("咖啡品牌A", "https://shop.example.com/coffee/new", "0 糖冷萃，3 秒速溶", in_days(5)):
        await customer.say(answer)
    assert "收到第 1 张图" in await customer.image("media-old-1")
    assert "请确认" in await customer.say("好了")
    number = NUMBER.search(await customer.say("确认"))
    assert number
    await pay(shop, number.group(0))
    return number.group(0)


async def load(shop: TestClient, number: str) -> Order:
    async with shop.app[keys.SESSIONMAKER]() as s:
        order = await orders.order_by_number(s, number)
    assert order is not None
    return order


async def send_back(shop: TestClient, number: str, reason: str, steps: list[str] | None = None) -> None:
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        await review.send_back(
            s, order, reason=reason, actor="staff:lr", settings=settings_of(shop), now=utcnow(), steps=steps
        )
    shop.app[keys.OUTBOX].wake()


def path_of(url: str) -> str:
    split = urlsplit(url)
    return f"{split.path}?{split.query}"


async def test_the_reviewer_gets_the_materials_with_image_links(customer: Customer, shop: TestClient) -> None:
    number = await coffee_order(customer, shop)
    async with shop.app[keys.SESSIONMAKER]() as s:
        order = await orders.order_by_number(s, number)
        assert order is not None
        (card,) = await review.materials_for_review(s, order, settings_of(shop))
    assert (card.channel, card.kind, card.recipient) == ("wecom", "markdown", "lr")  # the on-duty reviewer
    content = card.payload["content"]
    assert f"订单 {number} · 资料待审核" in content and "> 品牌：咖啡品牌A" in content
    assert (
        "> 推广链接：https://shop.example.com/coffee/new" in content
        and "小鹿爱咖啡 1 篇图文笔记 × 1" in content
    )
    link = re.search(r"\[图1\]\((\S+?)\)", content)
    assert link
    resp = await shop.get(path_of(link.group(1)))
    assert resp.status == 200 and await resp.read() == PNG

    # Long answers are cut so that the card stays within WeCom's 2048 bytes.
    order.requirements = {**order.requirements, "copy": "长" * 1000, "selling_points": "点" * 300}
    async with shop.app[keys.SESSIONMAKER]() as s:
        (card,) = await review.materials_for_review(s, order, settings_of(shop), recipients=["a", "b"])
    assert card.recipient == "a|b" and len(card.payload["content"].encode()) <= 2048
    assert "[图1](" in card.payload["content"]


async def test_reject_and_resubmit_then_the_paused_form_resumes(customer: Customer, shop: TestClient) -> None:
    number = await coffee_order(customer, shop)
    old_images = (await load(shop, number)).requirements["ref_images"]
    # Half-way through another order's form when the materials come back.
    await customer.say("搜 小鹿")
    await customer.say("1")
    await customer.say("下单 ②")
    assert "第 2/2 步：推广的商品链接是？" in await customer.say("咖啡品牌B")

    before = len(customer.sim.sent)
    await send_back(shop, number, "链接打不开，参考图太模糊")
    asked = (await received(customer, "text", before))[0].payload["content"]
    assert asked == t.RESUBMIT_ASK.format(
        number=number,
        reason="链接打不开，参考图太模糊",
        labels="推广链接、核心卖点、参考图片",  # the default: the order's material steps
        question="第 1/3 步：" + texts.ASK_LINK + texts.FORM_TEMPLATE_HINT,
    )
    await send_back(shop, number, "链接打不开，参考图太模糊")  # the same rejection resent: one effect
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert len((await s.scalars(select(AuditEntry))).all()) == 1
    assert texts.LINK_INVALID in await customer.say("就那个新品")
    assert "第 2/3 步：核心卖点" in await customer.say("新链接 https://shop.example.com/coffee/v2")
    assert "第 1/3 步" in await customer.say("返回")
    assert "第 2/3 步" in await customer.say("https://shop.example.com/coffee/v2")
    assert "第 3/3 步：有参考图片吗" in await customer.say("不变")  # keeps the old selling points
    assert texts.IMAGES_EXPECTED in await customer.say("这个可以吗")
    assert "收到第 1 张图" in await customer.image("media-new-1")
    done = await customer.say("好了")
    assert done == t.RESUBMIT_DONE.format(number=number) + t.RESUBMIT_RESUME.format(
        question="第 2/2 步：" + texts.ASK_LINK + texts.FORM_TEMPLATE_HINT
    )
    assert "请确认" in await customer.say("https://shop.example.com/coffee/b")  # the other form goes on

    order = await load(shop, number)
    assert order.review is None and order.review_note == "链接打不开，参考图太模糊"
    assert order.requirements["link"] == "https://shop.example.com/coffee/v2"
    assert order.requirements["selling_points"] == "0 糖冷萃，3 秒速溶"
    assert order.requirements["brand"] == "咖啡品牌A"
    new_images = order.requirements["ref_images"]
    assert len(new_images) == 1 and new_images != old_images
    async with shop.app[keys.SESSIONMAKER]() as s:
        material = await s.get(Material, new_images[0])
        audit = await s.scalar(select(AuditEntry).where(AuditEntry.action == "reject"))
        notes = (await s.scalars(select(OrderMessage).where(OrderMessage.direction == "note"))).all()
    assert material is not None and material.order_id == order.id
    assert audit is not None and audit.actor == "staff:lr" and audit.target == f"order:{number}"
    assert audit.detail["steps"] == ["link", "selling_points", "ref_images"]
    assert [n.author for n in notes] == ["staff:lr", f"customer:{customer.openid}"]

    card = (await wecom(shop))[-1]
    assert card.kind == "markdown" and card.recipient == "lr"
    content = card.payload["content"]
    assert f"订单 {number} · 客户已重新提交资料" in content
    assert "> 推广链接（已更新）：https://shop.example.com/coffee/v2" in content
    assert "> 核心卖点：0 糖冷萃" in content and "参考图片（已更新）：[图1](" in content
    assert "上次驳回原因：链接打不开" in content


async def test_cancel_to_talk_to_staff_and_resubmit_later(customer: Customer, shop: TestClient) -> None:
    number = await coffee_order(customer, shop)
    before = len(customer.sim.sent)
    await send_back(shop, number, "文案要点没写，请补充", steps=["copy"])
    asked = (await received(customer, "text", before))[0].payload["content"]
    assert "第 1/1 步：" + texts.ASK_COPY in asked and "取消" in asked

    assert await customer.say("取消") == t.RESUBMIT_CANCELLED.format(number=number)
    declined = (await wecom(shop))[-1]
    assert declined.recipient == "wf|lr" and "暂不重新提交" in declined.payload["content"]
    assert await customer.say("文案要点能电话沟通吗") == t.RELAY_ACK  # now talking to staff
    assert "文案要点能电话沟通吗" in (await wecom(shop))[-1].payload["content"]

    again = await customer.say(f"重新提交 {number}")
    assert again.startswith(f"📝 订单 {number} 的资料需要再补充一下") and texts.ASK_COPY in again
    copy = "突出早八通勤场景，提一句新品首发 8 折。"
    assert await customer.say(copy) == t.RESUBMIT_DONE.format(number=number)
    order = await load(shop, number)
    assert order.review is None and order.requirements["copy"] == copy
    assert await customer.say(f"重新提交 {number}") == t.RESUBMIT_NOTHING.format(number=number)


async def test_redoing_materials_is_paused_by_other_questions_and_reminded_once(
    customer: Customer, shop: TestClient
) -> None:
    number = await coffee_order(customer, shop)
    before = len(customer.sim.sent)
    await send_back(shop, number, "卖点再具体一些", steps=["selling_points"])
    await received(customer, "text", before)
    # Another question in the middle: answered, then a line on how to get back to the materials.
    mine = await customer.say("我的订单")
    assert number in mine and mine.endswith(t.RESUBMIT_PAUSED.format(number=number, n=1, total=1))
    assert "第 1/1 步：" in await customer.say("继续")

    # Left idle: one reminder through the outbox, never a second.
    sessionmaker, locks = shop.app[keys.SESSIONMAKER], shop.app[keys.LOCKS]
    later = utcnow() + dt.timedelta(minutes=31)
    before = len(customer.sim.sent)
    assert await remind_abandoned_forms(sessionmaker, locks, later) == 1
    assert await remind_abandoned_forms(sessionmaker, locks, later) == 0
    shop.app[keys.OUTBOX].wake()
    reminded = (await received(customer, "text", before))[0].payload["content"]
    assert reminded == t.RESUBMIT_REMINDER.format(number=number, n=1, total=1)
    assert await customer.say("卖点：3 秒速溶，0 糖") == t.RESUBMIT_DONE.format(number=number)


async def test_send_back_refusals_and_a_review_decided_meanwhile(
    customer: Customer, shop: TestClient
) -> None:
    unpaid = await course_order(customer, shop, paid=False)
    with pytest.raises(DomainError) as not_paid:
        await send_back(shop, unpaid, "不行")
    assert not_paid.value.code == "not_in_review"
    number = await course_order(customer, shop)
    for reason, steps, code in (
        ("", None, "bad_reason"),
        ("x" * 201, None, "bad_reason"),
        ("看不清", ["logo"], "bad_steps"),
    ):
        with pytest.raises(DomainError) as refused:
            await send_back(shop, number, reason, steps)
        assert refused.value.code == code
    assert (await load(shop, number)).review is None

    # Without material steps, every step the order has is asked again (here: the contact).
    before = len(customer.sim.sent)
    await send_back(shop, number, "手机号打不通")
    asked = (await received(customer, "text", before))[0].payload["content"]
    assert "需要重新提交：" + STEPS["contact"].label in asked
    async with shop.app[keys.SESSIONMAKER].begin() as s:  # approved by someone else meanwhile
        order = await orders.order_by_number(s, number)
        assert order is not None
        await orders.transition(s, order_id=order.id, to=OrderStatus.ASSIGNED, actor="staff:wf", notify=quiet)
    assert await customer.say("王芳 13900139000") == t.RESUBMIT_NOT_NEEDED.format(number=number)
    assert (await load(shop, number)).requirements["contact"]["phone"] == "13800138000"
    with pytest.raises(DomainError) as late:
        await send_back(shop, number, "再看看")
    assert late.value.code == "not_in_review"


def test_a_resubmit_keeps_what_it_interrupted() -> None:
    """Nested: an order form, then order A's materials, then order B's; each is resumed in turn."""
    from flows.engine import OrderForm
    from store.turns import FlowState

    state = FlowState()
    OrderForm.begin(state, ["brand", "link"], lines=[[1, 1]], from_cart=False)
    OrderForm(state).answer("咖啡品牌A", utcnow())
    a, b = Order(id=1, number="20261122-0001"), Order(id=2, number="20261122-0002")
    review.ResubmitForm.start(state, a, ["link", "copy"])
    review.ResubmitForm.start(state, a, ["copy"])  # sent back again: replaces, does not nest itself
    assert review.ResubmitForm(state).keys == ["copy"]
    review.ResubmitForm.start(state, b, ["ref_images"])
    assert review.ResubmitForm(state).number == b.number
    review.ResubmitForm(state).finish()
    assert review.ResubmitForm.active(state) and review.ResubmitForm(state).number == a.number
    review.ResubmitForm(state).finish()
    assert OrderForm.active(state) and state.step == "link"
    assert OrderForm(state).answers == {"brand": "咖啡品牌A"}
