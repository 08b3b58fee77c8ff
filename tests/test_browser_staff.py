"""The console's staff pane in a real browser: a card arrives, staff type and click through /wechat/work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select

from bot import keys
from store.models import InboundMessage
from store.outbox import Outgoing, enqueue
from tests.conftest import eventually
from tests.test_browser import console, pytestmark  # noqa: F401 (same markers and skips)
from tests.test_sandbox import serve_demo

CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "新订单待审核", "desc": "20261122-0042"},
    "horizontal_content_list": [{"keyname": "客户", "value": "咖啡品牌A"}],
    "task_id": "browser-task-1",
    "button_list": [
        {"text": "通过", "style": 1, "key": "approve"},
        {"text": "驳回", "style": 3, "key": "reject"},
    ],
}


@pytest.fixture
async def demo_app(tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    async with serve_demo(tmp_path) as (base, app):
        yield f"{base}/sandbox/", app


async def _send(app: web.Application, *messages: Outgoing) -> None:
    async with app[keys.SESSIONMAKER].begin() as session:
        await enqueue(session, *messages)
    app[keys.OUTBOX].wake()


async def _callbacks(app: web.Application) -> list[tuple[str, str]]:
    async with app[keys.SESSIONMAKER]() as session:
        rows = await session.execute(
            select(InboundMessage.sender, InboundMessage.msg_type).where(
                InboundMessage.account.like("wecom:%")
            )
        )
        return [(sender, kind) for sender, kind in rows]


async def test_staff_click_a_card_and_type_a_command(demo_app: tuple[str, web.Application]) -> None:
    from playwright.async_api import expect

    url, app = demo_app
    async with console(url) as (_, page):
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await _send(app, Outgoing("wecom", "zhangsan", "template_card", {"template_card": CARD}))
        card = page.get_by_test_id("staff-card")
        await expect(card).to_have_count(1, timeout=10_000)
        await expect(card).to_contain_text("新订单待审核")
        await expect(page.get_by_test_id("staff-user")).to_have_value("zhangsan")

        await card.locator("[data-testid=card-button][data-key=approve]").click()
        await expect(page.get_by_test_id("staff-event")).to_have_text("zhangsan 点击了卡片按钮「通过」")
        await eventually(lambda: _has(app, ("zhangsan", "template_card_event")))

        wecom = app[keys.WECOM_SIM]
        code = wecom.clicks[-1].response_code
        update = {"response_code": code, "atall": 1, "button": {"replace_name": "已通过 · zhangsan"}}
        await _send(app, Outgoing("wecom", "zhangsan", "card_update", update))
        await expect(card.get_by_test_id("card-done")).to_have_text("已通过 · zhangsan", timeout=10_000)
        await expect(card.get_by_test_id("card-button")).to_have_count(0)

        await page.get_by_test_id("staff-input").fill("我的任务")
        await page.get_by_test_id("staff-send").click()
        typed = page.locator("[data-testid=staff-entry].user").filter(has_text="我的任务")
        await expect(typed).to_be_visible()
        await eventually(lambda: _has(app, ("zhangsan", "text")))
        assert errors == []


async def _has(app: web.Application, item: tuple[str, str]) -> bool:
    return item in await _callbacks(app)
