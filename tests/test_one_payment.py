"""One payment per order: a retried 确认, 支付 again or a reloaded pay page reuse the order's open
payment while WeChat Pay honours it; a lapsed one is closed at WeChat Pay and replaced."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select, update

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.pay_sim import PaySimulator
from settings import Settings
from store import catalog_import
from store.models import Conversation, InboundMessage, Order, OutboxMessage, Payment, utcnow
from store.payments import payments_to_reconcile
from tests import wechat
from tests.conftest import eventually, start_bot
from tests.test_ordering import CATALOG, Customer
from tests.test_paying import MCH_ID, PAY_KEY, order_course, pay_sim  # noqa: F401  (fixture)


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> AsyncIterator[TestClient]:
    """The shop behind an HTTPS address, so that the pay message links to the JSAPI page."""
    sim, base = pay_sim
    client = await start_bot(
        make_settings(
            wechatpay_mch_id=MCH_ID,
            wechatpay_api_key=PAY_KEY,
            wechatpay_api_base=base,
            public_url="https://shop.example.com",
            order_ttl_minutes=240,
        )
    )
    sim.notify_base = str(client.make_url("")).rstrip("/")  # notifications reach this test server
    specs, _ = catalog_import.parse_catalog(CATALOG, "yaml")
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.import_catalog(session, specs)
    yield client
    await client.close()


@pytest.fixture
def customer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    return Customer(shop, mp_sim[0], "o_once")


def qr_images(customer: Customer) -> int:
    """Pay QRs sent to the customer (each follows its text by API)."""
    return sum(m.openid == customer.openid and m.kind == "image" for m in customer.sim.sent)


async def payments_of(shop: TestClient, number: str) -> list[Payment]:
    async with shop.app[keys.SESSIONMAKER]() as s:
        order_id = await s.scalar(select(Order.id).where(Order.number == number))
        return list(await s.scalars(select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)))


async def test_a_retried_confirm_after_a_crash_reuses_the_payment(
    customer: Customer,
    shop: TestClient,
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    for said in ("搜 课程", "1", "下单 ①", "王芳 13800138000"):
        await customer.say(said)
    sm = shop.app[keys.SESSIONMAKER]
    async with sm() as s:
        before = await s.get(Conversation, (wechat.ACCOUNT, customer.openid))
        assert before is not None
        state = (before.flow, before.step, dict(before.data), before.version)
    xml = wechat.text_xml(customer.openid, "确认", msg_id=7_000_000_000_000_000_001)
    number = re.search(r"订单 (\d{8}-\d{4})", (await customer.chat.post(xml)).text or "")
    assert number
    await eventually(lambda: qr_images(customer) == 1)
    # The crash: the order and its payment were committed, the turn's own writes (the inbound log
    # with its reply and outgoing messages, the conversation state, WeChat Pay's code_url kept with
    # them) never were — so WeChat's retry runs the turn again.
    [first] = await payments_of(shop, number.group(1))
    async with sm.begin() as s:
        await s.execute(update(Payment).where(Payment.id == first.id).values(code_url=None))
        await s.execute(delete(InboundMessage).where(InboundMessage.sender == customer.openid))
        await s.execute(delete(OutboxMessage).where(OutboxMessage.dedupe_key.like("r:%:msg:7%")))
        await s.execute(
            update(Conversation)
            .where(Conversation.openid == customer.openid)
            .values(flow=state[0], step=state[1], data=state[2], version=state[3])
        )
    assert number.group(1) in ((await customer.chat.post(xml)).text or "")
    await eventually(lambda: qr_images(customer) == 2)
    shown = await payments_of(shop, number.group(1))
    # One payment: WeChat Pay was asked again for the same out_trade_no and gave the same code.
    assert len(shown) == 1 and shown[0].code_url == first.code_url
    assert pay_sim[0].calls["unifiedorder"] == 2


async def test_pay_again_shows_the_same_code_until_it_lapses(
    customer: Customer,
    shop: TestClient,
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    number = await order_course(customer)
    for said in ("支付", f"支付 {number}", "去支付"):
        assert "长按识别" in await customer.say(said)
    await eventually(lambda: qr_images(customer) == 4)  # the QR shown again each time
    [payment] = await payments_of(shop, number)
    assert pay_sim[0].calls["unifiedorder"] == 1 and pay_sim[0].orders[payment.out_trade_no].state == "NOTPAY"

    # Two hours later WeChat Pay no longer honours that code_url: a fresh one, and the old one is closed.
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(created_at=payment.created_at - dt.timedelta(hours=2))
        )
    assert "长按识别" in await customer.say("支付")
    await eventually(lambda: qr_images(customer) == 5)
    old, new = await payments_of(shop, number)
    assert (old.status, new.status) == ("closed", "created")
    assert new.code_url and new.code_url != old.code_url
    assert pay_sim[0].orders[old.out_trade_no].state == "CLOSED"
    assert pay_sim[0].calls["unifiedorder"] == 2 and pay_sim[0].calls["closeorder"] == 1
    await pay_sim[0].pay(new.out_trade_no)
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert await s.scalar(select(Order.status).where(Order.number == number)) == "待审核"


async def test_a_reloaded_pay_page_keeps_its_prepay_id(
    customer: Customer,
    shop: TestClient,
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    number = await order_course(customer)
    [shown] = await payments_of(shop, number)
    pages = [await (await shop.get(f"/pay/page/{shown.out_trade_no}")).text() for _ in range(3)]
    prepay_ids = {re.search(r"prepay_id=(\w+)", page).group(1) for page in pages}  # type: ignore[union-attr]
    payments = await payments_of(shop, number)
    assert len(prepay_ids) == 1 and len(payments) == 2  # the chat's QR and one JSAPI payment
    jsapi = payments[1]
    assert jsapi.trade_type == "JSAPI" and jsapi.prepay_id in prepay_ids
    assert pay_sim[0].calls["unifiedorder"] == 2

    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(
            update(Payment)
            .where(Payment.id == jsapi.id)
            .values(created_at=jsapi.created_at - dt.timedelta(hours=2))
        )
    page = await (await shop.get(f"/pay/page/{shown.out_trade_no}")).text()
    fresh = re.search(r"prepay_id=(\w+)", page)
    assert fresh and fresh.group(1) not in prepay_ids
    assert pay_sim[0].orders[jsapi.out_trade_no].state == "CLOSED"


async def test_a_lapsed_payment_paid_meanwhile_is_left_for_reconciliation(
    customer: Customer,
    shop: TestClient,
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    number = await order_course(customer)
    [payment] = await payments_of(shop, number)
    pay_sim[0].drop_next_notification()  # paid at WeChat Pay, and the notification is lost
    await pay_sim[0].pay(payment.out_trade_no)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(
            update(Payment)
            .where(Payment.id == payment.id)
            .values(created_at=payment.created_at - dt.timedelta(hours=2))
        )
    await customer.say("支付")
    old = (await payments_of(shop, number))[0]
    assert old.status == "created"  # closeorder said ORDERPAID: the reconcile job will credit it
    async with shop.app[keys.SESSIONMAKER]() as s:
        due = await payments_to_reconcile(s, older_than=dt.timedelta(minutes=5), now=utcnow())
    assert old.out_trade_no in [p.out_trade_no for p in due]
