"""The sandbox console in a real browser: type as a customer, see the bot's answer."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.util
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import keys
from bot.doctor import chromium_path
from flows import texts
from tests.test_sandbox import serve_demo

CHROMIUM = chromium_path() or "chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="the playwright package is not installed"
    ),
    pytest.mark.skipif(
        chromium_path() is None,
        reason="Chromium is not installed (scripts/setup installs it; or set CHATORDER_CHROMIUM to its path)",
    ),
]


@pytest.fixture
async def console_url(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    async with serve_demo(tmp_path) as (base, app):
        yield f"{base}/sandbox/", app


async def test_typing_help_shows_the_help_reply(
    console_url: tuple[str, web.Application], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    url, app = console_url
    help_text = texts.HELP.format(brand=app[keys.SETTINGS].brand)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 860}, locale="zh-CN")
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(url)

            await expect(page.get_by_test_id("customer-column")).to_have_count(2)
            await expect(page.get_by_test_id("staff-empty")).to_have_text("员工消息将在这里出现")
            first = page.get_by_test_id("customer-column").first
            box = first.get_by_test_id("chat-input")
            await expect(box).to_have_attribute("aria-label", "咖啡品牌A 的消息")
            await box.fill("帮助")
            await box.press("Enter")

            await expect(first.get_by_test_id("msg-user").last).to_have_text("帮助")
            first_line = help_text.splitlines()[0]
            reply = first.get_by_test_id("msg-bot").filter(has_text=first_line).first
            await expect(reply).to_be_visible(timeout=10_000)
            # Newlines are kept: the bubble's text is the help text exactly.
            assert (await reply.locator(".bubble").inner_text()).strip() == help_text.strip()
            # The second customer's chat stays empty until they tap the menu's help button.
            second = page.get_by_test_id("customer-column").nth(1)
            await expect(second.get_by_test_id("msg-bot")).to_have_count(0)
            # The menu as WeChat shows it: three buttons; 更多 opens its sub-menu, 使用帮助 is in it.
            await expect(second.get_by_test_id("menu-button")).to_have_count(3)
            help_item = second.locator("[data-testid=menu-item][data-key=MENU_HELP]")
            await expect(help_item).to_be_hidden()
            await second.get_by_test_id("menu-button").filter(has_text=texts.MENU_MORE).click()
            await help_item.click()
            await expect(second.get_by_test_id("msg-event")).to_have_text("点击菜单「使用帮助」")
            await expect(second.get_by_test_id("msg-bot").filter(has_text=first_line)).to_be_visible()

            await page.get_by_test_id("add-customer").click()
            await expect(page.get_by_test_id("customer-column")).to_have_count(3)

            await page.screenshot(path=str(tmp_path / "sandbox-console.png"))
            assert errors == []
            await _bounded(context.close())
        finally:
            await _bounded(browser.close())


@asynccontextmanager
async def console(url: str) -> AsyncIterator[tuple[Any, Any]]:
    """The console open in Chromium: (browser context, page)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            page = await context.new_page()
            await page.goto(url)
            yield context, page
            await _bounded(context.close())
        finally:
            await _bounded(browser.close())


async def _bounded(closing: Awaitable[None]) -> None:
    """Closing Chromium has no timeout of its own, and once in a while it never returns; the driver
    exiting with `async_playwright()` ends the browser anyway, so a test never hangs on cleanup."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            await closing


async def say(column: Any, text: str, seen: str) -> Any:
    """Type into a customer's chat and wait for the bot's answer containing `seen`."""
    from playwright.async_api import expect

    box = column.get_by_test_id("chat-input")
    await box.fill(text)
    await box.press("Enter")
    reply = column.get_by_test_id("msg-bot").filter(has_text=seen).last
    await expect(reply).to_be_visible(timeout=10_000)
    return reply


ORDER_A_COURSE = (
    ("搜 小红书运营实战课", "1. 小红书运营实战课"),
    ("1", "【小红书运营实战课】"),
    ("下单 ①", "第 1/1 步：" + texts.ASK_CONTACT),
    ("王芳 13800138000", "请确认"),
)


async def test_a_customer_orders_a_course_in_the_console(
    console_url: tuple[str, web.Application], tmp_path: Path
) -> None:
    """Search, open, order, answer the one question, confirm: the order number shows in the chat."""
    async with console(console_url[0]) as (_, page):
        column = page.get_by_test_id("customer-column").first
        for text, seen in ORDER_A_COURSE:
            await say(column, text, seen)
        await say(column, "确认", "已生成，待支付 ¥299")
        await say(column, "我的订单", "待支付 · ¥299 · 小红书运营实战课")
        await page.screenshot(path=str(tmp_path / "sandbox-order.png"))


async def test_a_customer_pays_in_the_console_and_sees_the_order_reviewed(
    console_url: tuple[str, web.Application], tmp_path: Path
) -> None:
    """Order, open the pay link, press 确认支付 on the simulated WeChat Pay page, see 进入审核."""
    from playwright.async_api import expect

    async with console(console_url[0]) as (context, page):
        column = page.get_by_test_id("customer-column").first
        for text, seen in ORDER_A_COURSE:
            await say(column, text, seen)
        created = await say(column, "确认", "已生成，待支付 ¥299")
        await expect(column.locator("[data-testid=msg-bot] img").last).to_be_visible()  # the pay QR
        async with context.expect_page() as opened:
            await created.locator("a").first.click()
        pay_page = await opened.value
        # A failed try first: the page shown after it still pays (its buttons once led to a 404).
        await pay_page.get_by_role("button", name="模拟失败").click()
        await expect(pay_page.get_by_text("支付失败（模拟）")).to_be_visible()
        await pay_page.get_by_role("button", name="确认支付").click()
        await expect(
            pay_page.get_by_text("商户已确认收到通知")
        ).to_be_visible()  # the notification was answered
        reviewed = column.get_by_test_id("msg-bot").filter(has_text="进入审核")
        await expect(reviewed).to_be_visible(timeout=10_000)
        await page.screenshot(path=str(tmp_path / "sandbox-paid.png"))
    # The customer of that chat paid, not one shared sandbox payer (which trips the fraud rule).
    (paid,) = [o for o in console_url[1][keys.PAY_SIM].orders.values() if o.state == "SUCCESS"]
    assert paid.payer in console_url[1][keys.SANDBOX].customers


async def test_a_laptop_screen_shows_three_phones_whole_and_scrolls_to_a_fourth(
    console_url: tuple[str, web.Application],
) -> None:
    """At 1366×768 three customers fit beside the staff pane; a fourth is reached by scrolling."""
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            await page.goto(console_url[0])
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await page.get_by_test_id("add-customer").click()
            phones = page.get_by_test_id("customer-column")
            await expect(phones).to_have_count(3)
            for i in range(3):
                box = await phones.nth(i).bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1366 - 360
            await page.get_by_test_id("add-customer").click()
            await expect(phones).to_have_count(4)
            await expect(phones.nth(3)).to_be_in_viewport(ratio=0.95)  # scrolled to, not clipped
            area = page.locator(".customers")
            assert await area.evaluate("el => el.scrollWidth > el.clientWidth")
        finally:
            await _bounded(browser.close())


async def test_staff_pane_times_are_beijing_time_whatever_the_browser_zone(
    console_url: tuple[str, web.Application],
) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(timezone_id="America/New_York")  # 13 hours behind
            page = await context.new_page()
            await page.goto(console_url[0])
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await page.get_by_test_id("staff-input").fill("帮助")
            await page.get_by_test_id("staff-input").press("Enter")
            shown = page.get_by_test_id("staff-time").first
            await expect(shown).to_be_visible(timeout=10_000)
            now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8)))
            hour = int((await shown.inner_text()).split(":")[0])
            assert hour in {now.hour, (now.hour - 1) % 24}
        finally:
            await _bounded(browser.close())
