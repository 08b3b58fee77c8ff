"""The whole desk in one console: a customer orders and pays, a staff member approves from the staff
pane, and the customer sees the update."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select

from bot import keys
from flows import texts
from flows import texts_staff as ts
from store.models import Order
from tests.test_browser import ORDER_A_COURSE, console, pytestmark, say  # noqa: F401 (markers, skips)
from tests.test_sandbox import serve_demo

CUSTOMER = "o_sandbox_brand_a"
STAFF = "zhangsan"  # 张三: registered by the demo (store.staff.ensure_demo_staff), on duty, every role
STAFF_NAME = "张三"


@pytest.fixture
async def demo_app(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    async with serve_demo(tmp_path) as (base, app):  # runs prepare_demo: catalog, schema, 张三
        yield f"{base}/sandbox/", app


async def _order(app: web.Application) -> Order:
    async with app[keys.SESSIONMAKER]() as session:
        return (await session.scalars(select(Order).where(Order.openid == CUSTOMER))).one()


async def test_customer_pays_staff_approves_in_the_pane_customer_sees_it(
    demo_app: tuple[str, web.Application], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    url, app = demo_app
    async with console(url) as (context, page):
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        column = page.get_by_test_id("customer-column").first
        await expect(column).to_have_attribute("data-openid", CUSTOMER)

        # The customer orders the course and pays on the simulated WeChat Pay page.
        for text, seen in ORDER_A_COURSE:
            await say(column, text, seen)
        created = await say(column, "确认", "已生成，待支付 ¥299")
        found = re.search(r"\d{8}-\d{4}", await created.inner_text())
        assert found, await created.inner_text()
        number = found[0]
        async with context.expect_page() as opened:
            await created.locator("a").first.click()
        pay_page = await opened.value
        await pay_page.get_by_role("button", name="确认支付").click()
        await expect(pay_page.get_by_text("商户已确认收到通知")).to_be_visible()
        await pay_page.close()
        paid = texts.ORDER_NOTICES["待审核"].split("{")[0]  # "✅ 已收到付款 "
        await expect(column.get_by_test_id("msg-bot").filter(has_text=paid)).to_be_visible(timeout=10_000)

        # The work group's robot post reads as WeCom shows markdown: bold, quotes, no raw marks.
        alert = page.locator("[data-testid=staff-entry][data-kind=markdown]").filter(has_text=number).first
        await expect(alert.locator("strong").first).to_contain_text(number, timeout=10_000)
        assert "**" not in await alert.inner_text() and "> " not in await alert.inner_text()

        # Paying handed the order to 张三 (on duty, ops) and sent the review card to the staff pane.
        order = await _order(app)
        assert order.number == number and order.assignee == STAFF
        title = ts.CARD_TITLE.format(number=number, total="¥299")
        card = page.get_by_test_id("staff-card").filter(has_text=title).last
        await expect(card).to_be_visible(timeout=10_000)
        await expect(card).to_have_attribute("data-userid", STAFF)
        await expect(card).to_contain_text(STAFF_NAME)  # 负责: 张三
        approve = card.locator(f'[data-testid=card-button][data-key="approve:{order.id}"]')
        await expect(approve).to_have_text(ts.BUTTONS["approve"])

        # 张三 taps 通过: the card settles for everyone who got it, with who did it.
        await approve.click()
        clicked = page.get_by_test_id("staff-event").filter(has_text=f"{STAFF} 点击了卡片按钮「通过」")
        await expect(clicked).to_be_visible()
        done = ts.CARD_DONE_LABEL.format(verb=ts.DONE_VERBS["approve"], name=STAFF_NAME)  # 已通过 · 张三
        await expect(card.get_by_test_id("card-done")).to_have_text(done, timeout=10_000)
        await expect(card.get_by_test_id("card-button")).to_have_count(0)

        # The customer's chat shows the update pushed to them: owned and approved means 已分配.
        assigned = texts.ORDER_NOTICES["已分配"].split("，")[0].format(number=number)
        update = column.get_by_test_id("msg-bot").filter(has_text=assigned)
        await expect(update).to_be_visible(timeout=10_000)
        await expect(update).to_have_attribute("data-kind", "text")
        assert (await _order(app)).status == "已分配"
        await say(column, "我的订单", "已分配 · ¥299 · 小红书运营实战课")

        await page.screenshot(path=str(tmp_path / "sandbox-staff-flow.png"))
        assert errors == []
