"""发票 in chat: a customer asks for an e-invoice on a completed order and sees which order it is for."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from store import orders
from store.db import make_engine, make_sessionmaker
from store.orders import Line
from tests import wechat
from tests.factories import Recorder, add_package
from tests.test_payments import complete, new_payment, notified

BUYER = "o_invoice_buyer"


async def _completed_order(db: Path) -> str:
    """A paid and completed order of BUYER in the bot's database; its number."""
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    sm = make_sessionmaker(engine)
    try:
        package_id = await add_package(sm, price_fen=8_000)
        async with sm.begin() as s:
            order = await orders.create_order(
                s,
                account=wechat.ACCOUNT,
                openid=BUYER,
                lines=[Line(package_id, 1)],
                requirements={},
                source_key="invoice-chat",
                notify=Recorder(),
            )
        payment = await new_payment(
            sm, account=wechat.ACCOUNT, openid=BUYER, purpose="order", order_id=order.id
        )
        assert await notified(sm, payment) == "credited"
        await complete(sm, order.id)
        return order.number
    finally:
        await engine.dispose()


async def test_invoice_progress_names_the_order_each_invoice_is_for(bot: TestClient, tmp_path: Path) -> None:
    number = await _completed_order(tmp_path / "bot.db")
    chat = wechat.WeChat(bot)
    await chat.say(BUYER, "发票抬头 上海某某科技有限公司 91310000MA1K2B3C4D")
    asked = await chat.say(BUYER, f"开发票 {number}")
    assert asked.text and number in asked.text
    listed = await chat.say(BUYER, "发票")
    assert listed.text and f"订单 {number}" in listed.text and "上海某某科技有限公司" in listed.text
