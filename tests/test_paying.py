"""Paying through chat end to end: WeChat Pay (simulated over real HTTP), balance, expiry, refunds."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update
from wechatpy.pay.utils import dict_to_xml

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.pay_sim import PaySimulator, sign
from flows import texts
from flows.notices import order_notice
from flows.payments import expire_unpaid
from settings import Settings
from store import catalog_import, payments
from store.models import LedgerEntry, Order, Payment, utcnow
from tests import wechat
from tests.conftest import eventually, start_bot
from tests.test_ordering import CATALOG, Customer

MCH_ID, PAY_KEY = "1900000109", "testpaykey0123456789abcdefABCDEF"


@pytest.fixture
async def pay_sim() -> AsyncIterator[tuple[PaySimulator, str]]:
    sim = PaySimulator(wechat.APP_ID, MCH_ID, PAY_KEY, retry_delay=0.05)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    yield sim, str(server.make_url("/"))
    await sim.idle()
    await server.close()


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings], pay_sim: tuple[PaySimulator, str]
) -> AsyncIterator[TestClient]:
    sim, base = pay_sim
    client = await start_bot(
        make_settings(wechatpay_mch_id=MCH_ID, wechatpay_api_key=PAY_KEY, wechatpay_api_base=base)
    )
    sim.notify_base = str(client.make_url("")).rstrip("/")  # notifications reach this test server
    specs, _ = catalog_import.parse_catalog(CATALOG, "yaml")
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.import_catalog(session, specs)
    yield client
    await client.close()


@pytest.fixture
def customer(shop: TestClient, mp_sim: tuple[MpSimulator, str]) -> Customer:
    return Customer(shop, mp_sim[0], "o_payer")


async def order_course(customer: Customer) -> str:
    for said in ("搜 课程", "1", "下单 ①", "王芳 13800138000"):
        await customer.say(said)
    created = await customer.say("确认")
    number = re.search(r"订单 (\d{8}-\d{4}) 已生成，待支付 ¥299", created)
    assert number, created
    return number.group(1)


async def payment_of(shop: TestClient, number: str) -> Payment:
    async with shop.app[keys.SESSIONMAKER]() as s:
        order = await s.scalar(select(Order).where(Order.number == number))
        assert order is not None
        payment = await s.scalar(
            select(Payment).where(Payment.order_id == order.id).order_by(Payment.id.desc())
        )
    assert payment is not None
    return payment


async def status_of(shop: TestClient, number: str) -> str:
    async with shop.app[keys.SESSIONMAKER]() as s:
        return str(await s.scalar(select(Order.status).where(Order.number == number)))


async def test_order_pay_with_wechat_and_see_it_move_to_review(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str], mp_sim: tuple[MpSimulator, str]
) -> None:
    number = await order_course(customer)
    # The pay QR, drawn from WeChat Pay's code_url, follows the text by API.
    await eventually(
        lambda: [m.kind for m in mp_sim[0].sent if m.openid == customer.openid][-1:] == ["image"]
    )
    payment = await payment_of(shop, number)
    assert payment.code_url and payment.code_url.startswith("weixin://wxpay/bizpayurl")

    await pay_sim[0].pay(payment.out_trade_no)
    assert await status_of(shop, number) == "待审核"
    notice = await eventually(
        lambda: [m for m in mp_sim[0].sent if m.openid == customer.openid and "进入审核" in str(m.payload)]
    )
    assert "¥299" in notice[0].payload["content"]


async def test_a_notification_replayed_twenty_times_credits_once(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str]
) -> None:
    for said in ("充值 500",):
        assert "充值 ¥500" in await customer.say(said)
    async with shop.app[keys.SESSIONMAKER]() as s:
        topup = await s.scalar(select(Payment).where(Payment.purpose == "topup"))
    assert topup is not None
    sent = await pay_sim[0].pay(topup.out_trade_no)
    assert sent is not None
    unsigned = {k: v for k, v in sent.fields.items() if k != "sign"}
    body = dict_to_xml(unsigned, sent.fields["sign"]).encode()  # exactly what WeChat Pay resends
    answers = await asyncio.gather(*(shop.post("/pay/wechat/notify", data=body) for _ in range(20)))
    assert [a.status for a in answers] == [200] * 20
    bodies = [await a.text() for a in answers]
    assert all("SUCCESS" in b for b in bodies)
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert await payments.balance_of(s, account=wechat.ACCOUNT, openid=customer.openid) == 50_000
        entries = (await s.scalars(select(LedgerEntry))).all()
    assert [e.amount_fen for e in entries] == [50_000]
    assert "余额 ¥500" in await customer.say("余额")


async def test_forged_and_mismatched_notifications_credit_nothing(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str]
) -> None:
    number = await order_course(customer)
    payment = await payment_of(shop, number)
    fields = {
        "appid": wechat.APP_ID,
        "mch_id": MCH_ID,
        "nonce_str": "n1",
        "result_code": "SUCCESS",
        "return_code": "SUCCESS",
        "openid": customer.openid,
        "trade_type": "NATIVE",
        "total_fee": "1",
        "transaction_id": "4200000000000001",
        "out_trade_no": payment.out_trade_no,
        "time_end": "20261122120000",
    }
    forged = dict_to_xml(fields, sign(fields, "not-our-key", "MD5")).encode()
    assert (await shop.post("/pay/wechat/notify", data=forged)).status == 403
    mismatch = dict_to_xml(fields, sign(fields, PAY_KEY, "MD5")).encode()  # signed, but ¥0.01 for ¥299
    assert (await shop.post("/pay/wechat/notify", data=mismatch)).status == 200
    assert await status_of(shop, number) == "待支付"
    assert (await payment_of(shop, number)).flag == "amount_mismatch"


async def test_balance_payment_and_its_refusal(customer: Customer, shop: TestClient) -> None:
    number = await order_course(customer)
    short = await customer.say("余额支付")
    assert short.startswith("余额不足：需要 ¥299，余额 ¥0")
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await payments.credit(
            s,
            account=wechat.ACCOUNT,
            openid=customer.openid,
            amount_fen=30_000,
            kind="topup",
            key="test-topup",
        )
    assert await customer.say("余额支付") == texts.PAID_BY_BALANCE.format(
        total="¥299", number=number, balance="¥1"
    )
    assert await status_of(shop, number) == "待审核"
    assert "不需要支付了" in await customer.say(f"余额支付 {number}")


async def test_payment_for_an_expired_order_goes_to_the_balance(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str]
) -> None:
    number = await order_course(customer)
    payment = await payment_of(shop, number)
    sessionmaker = shop.app[keys.SESSIONMAKER]
    async with sessionmaker.begin() as s:
        await s.execute(update(Order).values(expires_at=utcnow() - dt.timedelta(minutes=1)))
    assert await expire_unpaid(sessionmaker, utcnow(), None) == 1
    assert await status_of(shop, number) == "已取消"
    await pay_sim[0].pay(payment.out_trade_no)  # the customer paid at the last second anyway
    async with sessionmaker() as s:
        assert await payments.balance_of(s, account=wechat.ACCOUNT, openid=customer.openid) == 29_900
    assert (await payment_of(shop, number)).flag == "late_payment"


async def test_refund_to_balance_tells_the_customer(customer: Customer, shop: TestClient) -> None:
    number = await order_course(customer)
    await customer.say("余额支付")  # refused: nothing in the balance
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        order = await s.scalar(select(Order).where(Order.number == number))
        assert order is not None
        await payments.credit(
            s, account=wechat.ACCOUNT, openid=customer.openid, amount_fen=29_900, kind="topup", key="t2"
        )
    await customer.say("余额支付")
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await payments.refund(
            s,
            order_id=order.id,
            amount_fen=10_000,
            destination="balance",
            actor="staff:wf",
            reason="少发一篇",
            notify=order_notice,
        )
        await payments.refund(
            s,
            order_id=order.id,
            amount_fen=19_900,
            destination="balance",
            actor="staff:wf",
            reason="全部退回",
            notify=order_notice,
        )
    assert await status_of(shop, number) == "已退款"
    assert "余额 ¥299" in await customer.say("余额")


async def test_reconciliation_finds_a_lost_notification(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str]
) -> None:
    from bot.app import _reconcile

    number = await order_course(customer)
    payment = await payment_of(shop, number)
    pay_sim[0].drop_next_notification()
    await pay_sim[0].pay(payment.out_trade_no)
    assert await status_of(shop, number) == "待支付"  # the notification never came
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(update(Payment).values(created_at=utcnow() - dt.timedelta(minutes=6)))
    pay = shop.app[keys.PAY]
    assert pay is not None
    assert await _reconcile(shop.app, pay) == 1
    assert await status_of(shop, number) == "待审核"


async def test_refund_back_through_wechat_pay(
    customer: Customer,
    shop: TestClient,
    pay_sim: tuple[PaySimulator, str],
    mp_sim: tuple[MpSimulator, str],
) -> None:
    from flows.payments import refund_order

    number = await order_course(customer)
    await pay_sim[0].pay((await payment_of(shop, number)).out_trade_no)
    made = await refund_order(
        shop.app[keys.SESSIONMAKER],
        shop.app[keys.PAY],
        number=number,
        amount_fen=None,
        destination="wechat",
        actor="operator:test",
        reason="活动取消",
        notify_url=str(shop.make_url("/pay/wechat/refund-notify")),
    )
    assert made.status == "pending" and made.amount_fen == 29_900
    await pay_sim[0].idle()  # the simulator's encrypted refund notification has been delivered
    assert await status_of(shop, number) == "已退款"
    told = await eventually(
        lambda: [m for m in mp_sim[0].sent if m.openid == customer.openid and "原路退回" in str(m.payload)]
    )
    assert "¥299" in told[0].payload["content"]


def test_refund_command_refuses_an_unknown_order(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"CHATORDER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "bot", *a], env=env, capture_output=True, text=True, timeout=60
    )
    assert run("db", "upgrade").returncode == 0
    refused = run("refund", "20261122-9999", "--reason", "测试")
    assert refused.returncode == 1 and "order 20261122-9999 not found" in refused.stderr
    assert run("refund", "20261122-9999", "--amount", "1.234", "--reason", "x").returncode == 2


async def test_the_jsapi_pay_page_prepares_wechat_pay_for_the_owner(
    customer: Customer, shop: TestClient, pay_sim: tuple[PaySimulator, str]
) -> None:
    number = await order_course(customer)
    shown = await payment_of(shop, number)
    page = await shop.get(f"/pay/page/{shown.out_trade_no}")
    body = await page.text()
    assert (
        page.status == 200 and "getBrandWCPayRequest" in body and "prepay_id=" in body and "paySign" in body
    )
    jsapi = await payment_of(shop, number)
    assert jsapi.trade_type == "JSAPI" and jsapi.openid == customer.openid and jsapi.prepay_id
    assert (await shop.get("/pay/page/CO-no-such-payment")).status == 404
    await pay_sim[0].pay(jsapi.out_trade_no)
    paid = await (await shop.get(f"/pay/page/{shown.out_trade_no}")).text()
    assert "不需要支付了" in paid


async def test_staff_group_is_told_of_a_wrong_amount_with_the_evidence(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],
    mp_sim: tuple[MpSimulator, str],
) -> None:
    from aiohttp import web

    posts: list[dict[str, object]] = []

    async def robot(request: web.Request) -> web.Response:
        assert request.query["key"] == "robot-key"
        posts.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    group = web.Application()
    group.router.add_post("/cgi-bin/webhook/send", robot)
    server = TestServer(group, host="127.0.0.1")
    await server.start_server()
    client = await start_bot(
        make_settings(
            wechatpay_mch_id=MCH_ID,
            wechatpay_api_key=PAY_KEY,
            wechatpay_api_base=pay_sim[1],
            wecom_robot_key="robot-key",
            wecom_api_base=str(server.make_url("/cgi-bin/")),
        )
    )
    try:
        specs, _ = catalog_import.parse_catalog(CATALOG, "yaml")
        async with client.app[keys.SESSIONMAKER].begin() as session:
            await catalog_import.import_catalog(session, specs)
        customer = Customer(client, mp_sim[0], "o_mismatch")
        number = await order_course(customer)
        payment = await payment_of(client, number)
        fields = {
            "appid": wechat.APP_ID,
            "mch_id": MCH_ID,
            "nonce_str": "n2",
            "result_code": "SUCCESS",
            "return_code": "SUCCESS",
            "openid": customer.openid,
            "trade_type": "NATIVE",
            "total_fee": "100",
            "transaction_id": "4200000000000002",
            "out_trade_no": payment.out_trade_no,
        }
        body = dict_to_xml(fields, sign(fields, PAY_KEY, "MD5")).encode()
        for _ in range(3):  # WeChat Pay resends: the staff group hears of it once
            assert (await client.post("/pay/wechat/notify", data=body)).status == 200
        alert = await eventually(lambda: posts)
        content = alert[0]["markdown"]["content"]  # type: ignore[index]
        assert "支付金额不符" in content and number in content and "¥299" in content and "¥1" in content
        await asyncio.sleep(0.2)
        assert len(posts) == 1
    finally:
        await client.close()
        await server.close()
