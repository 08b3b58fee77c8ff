"""WeChat Pay over real HTTP: our notification webhooks, PayClient against PaySimulator, reconciliation."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from wechatpy.crypto import RefundCrypto, WeChatRefundCrypto
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml

import webhooks.pay
from bot.channels.pay import PayClient, PayError
from bot.reconcile import reconcile
from bot.sandbox import pay_sim
from bot.sandbox.pay_sim import PaySimulator
from settings import Settings, load_settings
from tests.conftest import eventually

APP_ID, MCH_ID, KEY = "wx_pay_test_app", "1900000109", "8934e7d15453e97507ef794cf7b0519d"
ACK = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
NOTIFY, REFUND = "/pay/wechat/notify", "/pay/wechat/refund-notify"


@dataclass
class FakeStore:
    """Records what the webhooks hand to the store; `outcome` is what the store would answer."""

    outcome: str = "credited"
    fail: int = 0  # raise on the next `fail` calls, as a database outage would
    payments: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)

    async def apply(self, fields: dict[str, Any]) -> str:
        return self._record(self.payments, fields)

    async def apply_refund(self, fields: dict[str, Any]) -> str:
        return self._record(self.refunds, fields)

    def _record(self, into: list[dict[str, Any]], fields: dict[str, Any]) -> str:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database is down")
        into.append(fields)
        return self.outcome


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "wechat_app_id": APP_ID,
        "wechatpay_mch_id": MCH_ID,
        "wechatpay_api_key": KEY,
        "log_format": "text",
    }
    return load_settings(**(values | overrides))


def notification(sign_type: str = "MD5", *, declare: bool = True, key: str = KEY, **over: str) -> bytes:
    """A pay result notification as WeChat Pay sends it, signed with wechatpy (not our code)."""
    fields = {
        "appid": APP_ID,
        "mch_id": MCH_ID,
        "nonce_str": "5d2b6c2a8db53831f7eda20af46e531c",
        "return_code": "SUCCESS",
        "result_code": "SUCCESS",
        "openid": "o_payer_1",
        "trade_type": "NATIVE",
        "bank_type": "OTHERS",
        "total_fee": "1234",
        "cash_fee": "1234",
        "transaction_id": "4200000540202005267407409907",
        "out_trade_no": "20261122-0042",
        "time_end": "20261122152550",
    } | over
    if declare and sign_type != "MD5":
        fields["sign_type"] = sign_type
    signer = calculate_signature_hmac if sign_type == "HMAC-SHA256" else calculate_signature
    return dict_to_xml(fields, signer(fields, key)).encode()


def refund_notification(key: str = KEY, mch_id: str = MCH_ID, req_info: str | None = None) -> bytes:
    plain = (
        "<root><out_refund_no><![CDATA[R1]]></out_refund_no><out_trade_no><![CDATA[20261122-0042]]>"
        "</out_trade_no><refund_fee><![CDATA[1234]]></refund_fee><refund_id><![CDATA[50300103]]>"
        "</refund_id><refund_status><![CDATA[SUCCESS]]></refund_status><total_fee><![CDATA[1234]]>"
        "</total_fee></root>"
    )
    if req_info is None:
        req_info = RefundCrypto(WeChatRefundCrypto(key).key).encrypt(plain).decode()
    fields = {
        "return_code": "SUCCESS",
        "appid": APP_ID,
        "mch_id": mch_id,
        "nonce_str": "n1",
        "req_info": req_info,
    }
    return dict_to_xml(fields).encode()


async def serve(app: web.Application) -> TestClient:
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


def hooks_app(store: FakeStore, settings: Settings) -> web.Application:
    app = web.Application()
    webhooks.pay.setup(app, apply=store.apply, apply_refund=store.apply_refund, settings=settings)
    return app


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
async def hooks(store: FakeStore) -> AsyncIterator[TestClient]:
    """Our two notification URLs on a real port, in front of a recording fake store."""
    client = await serve(hooks_app(store, make_settings()))
    yield client
    await client.close()


async def post(client: TestClient, path: str, body: bytes) -> tuple[int, str]:
    async with client.post(path, data=body, headers={"Content-Type": "text/xml"}) as resp:
        return resp.status, await resp.text()


@pytest.mark.parametrize(
    ("sign_type", "declare"), [("MD5", False), ("HMAC-SHA256", True), ("HMAC-SHA256", False)]
)
async def test_signed_notification_is_applied_and_acknowledged(
    hooks: TestClient, store: FakeStore, sign_type: str, declare: bool
) -> None:
    assert await post(hooks, NOTIFY, notification(sign_type, declare=declare)) == (200, ACK)
    [fields] = store.payments
    assert fields["out_trade_no"] == "20261122-0042" and fields["openid"] == "o_payer_1"
    assert fields["total_fee"] == 1234 and fields["cash_fee"] == 1234


@pytest.mark.parametrize(
    "body",
    [
        notification(key="f" * 32),
        notification(total_fee="1").replace(b"<total_fee>1</total_fee>", b"<total_fee>1000</total_fee>"),
        notification().replace(b"<sign>", b"<signature>").replace(b"</sign>", b"</signature>"),
        notification("HMAC-SHA256", declare=True).replace(b"HMAC-SHA256", b"MD5"),
    ],
    ids=["wrong-key", "amount-changed", "missing-sign", "sign-type-swapped"],
)
async def test_forged_notification_is_refused_403(
    hooks: TestClient, store: FakeStore, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="webhooks.pay"):
        status, text = await post(hooks, NOTIFY, body)
    assert status == 403 and "<return_code><![CDATA[FAIL]]></return_code>" in text
    assert store.payments == []
    assert any(r.getMessage() == "pay notification refused" for r in caplog.records)


@pytest.mark.parametrize("over", [{"mch_id": "1900000110"}, {"appid": "wx_someone_else"}])
async def test_other_merchant_or_app_is_refused_403(
    hooks: TestClient, store: FakeStore, over: dict[str, str]
) -> None:
    status, _ = await post(hooks, NOTIFY, notification(**over))
    assert status == 403 and store.payments == []


async def test_twenty_replays_are_each_acknowledged(hooks: TestClient, store: FakeStore) -> None:
    """WeChat Pay resends for hours; every delivery reaches the store (which dedupes) and gets SUCCESS."""
    body = notification("HMAC-SHA256")
    answers = [await post(hooks, NOTIFY, body) for _ in range(20)]
    assert answers == [(200, ACK)] * 20
    assert len(store.payments) == 20
    assert {f["transaction_id"] for f in store.payments} == {"4200000540202005267407409907"}


@pytest.mark.parametrize("outcome", ["credited", "duplicate", "unknown", "mismatch", "late"])
async def test_every_store_outcome_stops_the_resends(
    hooks: TestClient, store: FakeStore, outcome: str
) -> None:
    store.outcome = outcome
    assert await post(hooks, NOTIFY, notification()) == (200, ACK)


async def test_failed_payment_is_acknowledged_without_effect(hooks: TestClient, store: FakeStore) -> None:
    failed = notification(result_code="FAIL", err_code="NOTENOUGH", err_code_des="余额不足")
    assert await post(hooks, NOTIFY, failed) == (200, ACK)
    unsigned = b"<xml><return_code>FAIL</return_code><return_msg>sign error</return_msg></xml>"
    assert await post(hooks, NOTIFY, unsigned) == (200, ACK)
    assert store.payments == []
    assert hooks.app[webhooks.pay.PAY_HOOKS].counts["result_fail"] == 1


async def test_store_failure_answers_500_so_wechat_resends(hooks: TestClient, store: FakeStore) -> None:
    store.fail = 1
    status, text = await post(hooks, NOTIFY, notification())
    assert status == 500 and "FAIL" in text
    assert await post(hooks, NOTIFY, notification()) == (200, ACK)  # the resend is not lost
    assert len(store.payments) == 1


async def test_hostile_bodies(hooks: TestClient, store: FakeStore) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<xml><return_code>SUCCESS</return_code><out_trade_no>&x;</out_trade_no></xml>"
    )
    assert (await post(hooks, NOTIFY, xxe))[0] == 400
    assert (await post(hooks, NOTIFY, b"<xml><unclosed>"))[0] == 400
    assert (await post(hooks, NOTIFY, b"<xml>" + b"a" * 70_000 + b"</xml>"))[0] == 413
    assert (await post(hooks, NOTIFY, notification(total_fee="12.34")))[0] == 400
    assert (await post(hooks, REFUND, xxe))[0] == 400
    assert store.payments == [] and store.refunds == []


async def test_refund_notification_is_decrypted_and_applied(hooks: TestClient, store: FakeStore) -> None:
    assert await post(hooks, REFUND, refund_notification()) == (200, ACK)
    assert await post(hooks, REFUND, refund_notification()) == (200, ACK)  # resent: the store dedupes
    assert len(store.refunds) == 2
    refund = store.refunds[0]
    assert refund["out_refund_no"] == "R1" and refund["refund_id"] == "50300103"
    assert refund["refund_fee"] == 1234 and refund["refund_status"] == "SUCCESS"


@pytest.mark.parametrize(
    "body",
    [
        refund_notification(key="0" * 32),
        refund_notification(req_info="bm90IGVuY3J5cHRlZA=="),
        refund_notification(req_info="%%%not base64%%%"),
        refund_notification(mch_id="1900000110"),
        b"<xml><return_code>SUCCESS</return_code><appid>wx_pay_test_app</appid>"
        b"<mch_id>1900000109</mch_id></xml>",
    ],
    ids=["wrong-key", "garbage", "not-base64", "other-mch", "no-req_info"],
)
async def test_bad_refund_notification_is_refused_403(
    hooks: TestClient, store: FakeStore, body: bytes
) -> None:
    assert (await post(hooks, REFUND, body))[0] == 403
    assert store.refunds == []


@dataclass
class PayRig:
    sim: PaySimulator
    sim_http: TestClient
    hooks: TestClient
    client: PayClient
    store: FakeStore

    def notify_url(self, path: str = NOTIFY) -> str:
        return str(self.hooks.make_url(path))

    async def native(self, no: str = "20261122-0042", fee: int = 1234) -> dict[str, Any]:
        return await self.client.unified_order(
            out_trade_no=no,
            body="小红书图文推广",
            total_fee=fee,
            trade_type="NATIVE",
            notify_url=self.notify_url(),
        )


@pytest.fixture(params=["HMAC-SHA256", "MD5"])
async def rig(request: pytest.FixtureRequest, store: FakeStore) -> AsyncIterator[PayRig]:
    """Simulator and our webhooks on two real ports; the client speaks to the simulator as to Tencent."""
    sim = PaySimulator(APP_ID, MCH_ID, KEY, retry_delay=0.01)
    sim_http = await serve(sim.app)
    settings = make_settings(
        wechatpay_api_base=str(sim_http.make_url("/")), wechatpay_sign_type=request.param
    )
    hooks = await serve(hooks_app(store, settings))
    async with aiohttp.ClientSession() as http:
        yield PayRig(sim, sim_http, hooks, PayClient(http, settings), store)
    await hooks.close()
    await sim_http.close()


async def test_unified_order_native_and_jsapi(rig: PayRig) -> None:
    native = await rig.native()
    assert native["code_url"].startswith("weixin://wxpay/bizpayurl?pr=")
    jsapi = await rig.client.unified_order(
        out_trade_no="20261122-0043",
        body="课程",
        total_fee=9900,
        trade_type="JSAPI",
        notify_url=rig.notify_url(),
        openid="o_customer_1",
    )
    assert jsapi["prepay_id"].startswith("wx")
    params = rig.client.jsapi_params(jsapi["prepay_id"])
    assert params["package"] == f"prepay_id={jsapi['prepay_id']}"
    assert params["signType"] == rig.client.sign_type
    unsigned = {k: v for k, v in params.items() if k != "paySign"}
    signer = calculate_signature_hmac if rig.client.sign_type == "HMAC-SHA256" else calculate_signature
    assert params["paySign"] == signer(unsigned, KEY)


async def test_repeated_unified_order_returns_the_same_prepay(rig: PayRig) -> None:
    first, again = await rig.native(), await rig.native()
    assert first["code_url"] == again["code_url"]
    with pytest.raises(PayError) as err:
        await rig.native(fee=1)
    assert err.value.code == "INVALID_REQUEST" and not err.value.retryable


async def test_pay_button_sends_a_notification_our_webhook_accepts(rig: PayRig) -> None:
    await rig.native()
    assert (await rig.client.order_query("20261122-0042"))["trade_state"] == "NOTPAY"
    async with rig.sim_http.get(f"/{rig.sim.page_path('20261122-0042')}?openid=o_scanner") as resp:
        page = await resp.text()
    assert "确认支付" in page and "模拟失败" in page and "¥12.34" in page
    # Absolute actions: the page shown again after 模拟失败 must still pay (a relative one led to a 404).
    assert 'name="openid" value="o_scanner"' in page and 'action="/page/20261122-0042/pay"' in page
    async with rig.sim_http.post("/page/20261122-0042/pay", data={"openid": "o_scanner"}) as resp:
        assert resp.status == 200 and "商户已确认收到通知" in await resp.text()
    [sent] = rig.sim.sent_notifications
    assert sent.acknowledged and sent.statuses == (200,)
    [paid] = rig.store.payments
    assert paid["total_fee"] == 1234 and paid["openid"] == "o_scanner"
    assert paid["transaction_id"] == sent.fields["transaction_id"]
    order = await rig.client.order_query("20261122-0042")
    assert order["trade_state"] == "SUCCESS" and order["total_fee"] == 1234
    assert order["transaction_id"] == paid["transaction_id"] and order["openid"] == "o_scanner"
    async with rig.sim_http.post("/page/20261122-0042/pay") as resp:
        assert resp.status == 409  # paying twice is refused by WeChat, and nothing is resent
    assert len(rig.sim.sent_notifications) == 1


async def test_simulator_resends_until_acknowledged(rig: PayRig) -> None:
    rig.store.fail = 2
    await rig.native()
    sent = await rig.sim.pay("20261122-0042")
    assert sent is not None and sent.statuses == (500, 500, 200) and sent.acknowledged
    assert len(rig.store.payments) == 1


async def test_fail_button_sends_nothing(rig: PayRig) -> None:
    await rig.native()
    async with rig.sim_http.post("/page/20261122-0042/fail") as resp:
        assert resp.status == 200
    assert rig.sim.sent_notifications == [] and rig.sim.failures == ["20261122-0042"]
    assert (await rig.client.order_query("20261122-0042"))["trade_state"] == "PAYERROR"


async def test_refund_is_accepted_then_notified_encrypted(rig: PayRig) -> None:
    await rig.native()
    await rig.sim.pay("20261122-0042")
    answer = await rig.client.refund(
        out_trade_no="20261122-0042",
        out_refund_no="R-0042-1",
        total_fee=1234,
        refund_fee=1000,
        notify_url=rig.notify_url(REFUND),
    )
    assert answer["refund_fee"] == 1000 and answer["refund_id"]
    await eventually(lambda: rig.store.refunds)
    [refund] = rig.store.refunds
    assert refund["out_refund_no"] == "R-0042-1" and refund["refund_id"] == answer["refund_id"]
    assert refund["refund_fee"] == 1000 and refund["total_fee"] == 1234
    assert refund["refund_status"] == "SUCCESS"
    again = await rig.client.refund(
        out_trade_no="20261122-0042",
        out_refund_no="R-0042-1",
        total_fee=1234,
        refund_fee=1000,
        notify_url=rig.notify_url(REFUND),
    )
    await rig.sim.idle()
    assert again["refund_id"] == answer["refund_id"] and len(rig.store.refunds) == 1
    with pytest.raises(PayError):
        await rig.client.refund(
            out_trade_no="20261122-0042",
            out_refund_no="R-0042-2",
            total_fee=1234,
            refund_fee=1000,
            notify_url=rig.notify_url(REFUND),
        )


async def test_tampered_answer_raises(rig: PayRig) -> None:
    await rig.native()
    rig.sim.tamper_next_response()
    with pytest.raises(PayError) as err:
        await rig.client.order_query("20261122-0042")
    assert err.value.code == "BAD_SIGN" and not err.value.retryable


async def test_wechat_errors_raise_with_their_code(rig: PayRig) -> None:
    with pytest.raises(PayError) as err:
        await rig.client.order_query("no-such-order")
    assert err.value.code == "ORDERNOTEXIST" and not err.value.retryable
    rig.sim.fail_next("orderquery", "SYSTEMERROR")
    with pytest.raises(PayError) as err:
        await rig.client.order_query("no-such-order")
    assert err.value.code == "SYSTEMERROR" and err.value.retryable


async def test_wrong_key_is_refused_by_the_simulator(rig: PayRig) -> None:
    async with aiohttp.ClientSession() as http:
        settings = make_settings(
            wechatpay_api_base=str(rig.sim_http.make_url("/")), wechatpay_api_key="x" * 32
        )
        with pytest.raises(PayError) as err:
            await PayClient(http, settings).order_query("20261122-0042")
    assert err.value.code == "FAIL" and err.value.message == "签名错误"


async def test_unreachable_api_is_a_retryable_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as http:
        client = PayClient(http, make_settings(wechatpay_api_base=f"http://127.0.0.1:{port}/"))
        with pytest.raises(PayError) as err:
            await client.order_query("x")
    assert err.value.code == "NETWORK" and err.value.retryable


async def test_bad_amounts_never_leave(rig: PayRig) -> None:
    for fee in (0, -1, 12.34, True):
        with pytest.raises(ValueError):
            await rig.native(fee=fee)  # type: ignore[arg-type]
    assert rig.sim.calls["unifiedorder"] == 0


async def test_lost_notification_is_found_by_reconcile(rig: PayRig) -> None:
    await rig.native("A-1", 1234)
    await rig.native("A-2", 500)
    rig.sim.drop_next_notification()
    assert await rig.sim.pay("A-1") is None
    assert rig.sim.paid("A-1") and rig.store.payments == []
    pending = [("A-1", 1234), ("A-2", 500), ("A-unknown", 100)]
    assert await reconcile(query=rig.client.order_query, pending=pending, apply=rig.store.apply) == 1
    [fields] = rig.store.payments
    assert fields["out_trade_no"] == "A-1" and fields["total_fee"] == 1234 and fields["transaction_id"]
    rig.store.outcome = "duplicate"  # a second run finds it again; the store says it is done
    assert await reconcile(query=rig.client.order_query, pending=pending, apply=rig.store.apply) == 0


async def test_reconcile_survives_a_failing_apply(rig: PayRig) -> None:
    for no in ("B-1", "B-2"):
        await rig.native(no, 100)
        rig.sim.drop_next_notification()
        await rig.sim.pay(no)
    rig.store.fail = 1
    pending = [("B-1", 100), ("B-2", 100)]
    assert await reconcile(query=rig.client.order_query, pending=pending, apply=rig.store.apply) == 1


async def test_mounted_at_sandbox_pay(store: FakeStore) -> None:
    """As in `chatorder demo`: WECHATPAY_API_BASE = <server>/sandbox/pay/, notifications to this server."""
    app = web.Application()
    sim = pay_sim.mount(app, make_settings())
    webhooks.pay.setup(app, apply=store.apply, apply_refund=store.apply_refund, settings=make_settings())
    server = await serve(app)
    try:
        settings = make_settings(wechatpay_api_base=str(server.make_url("/sandbox/pay/")))
        async with aiohttp.ClientSession() as http:
            client = PayClient(http, settings)
            await client.unified_order(
                out_trade_no="S-1",
                body="咨询",
                total_fee=100,
                trade_type="NATIVE",
                notify_url="http://public.example/pay/wechat/notify",
            )
        sim.notify_base = str(server.make_url("/"))  # the public URL is elsewhere; the demo's port is here
        async with server.post(f"/sandbox/pay/{sim.page_path('S-1')}/pay") as resp:
            assert resp.status == 200
        await eventually(lambda: store.payments)
        assert store.payments[0]["out_trade_no"] == "S-1"
    finally:
        await server.close()
