"""Payouts to a person's WeChat balance (企业付款到零钱): PayClient against PaySimulator over real HTTP."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from wechatpy.pay.utils import calculate_signature, dict_to_xml

from bot.channels.pay import PayClient, PayError
from bot.sandbox.pay_sim import PaySimulator
from settings import load_settings
from webhooks.guard import parse_xml

APP_ID, MCH_ID, KEY = "wx_pay_test_app", "1900000109", "8934e7d15453e97507ef794cf7b0519d"
PAYEE = "o_creator_1"


@dataclass
class Rig:
    sim: PaySimulator
    server: TestServer
    client: PayClient

    async def pay(self, no: str = "W20261122000042", amount: int = 12345, **kw: Any) -> dict[str, Any]:
        return await self.client.transfer(
            partner_trade_no=no, openid=kw.pop("openid", PAYEE), amount_fen=amount, desc="佣金提现", **kw
        )


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = PaySimulator(APP_ID, MCH_ID, KEY)
    server = TestServer(sim.app, host="127.0.0.1")
    await server.start_server()
    settings = load_settings(
        wechat_app_id=APP_ID,
        wechatpay_mch_id=MCH_ID,
        wechatpay_api_key=KEY,
        wechatpay_api_base=str(server.make_url("/")),
        log_format="text",
    )
    async with aiohttp.ClientSession() as http:
        yield Rig(sim, server, PayClient(http, settings))
    await server.close()


async def test_transfer_pays_once_and_answers_like_tencent(rig: Rig) -> None:
    answer = await rig.pay(amount=12345)
    assert answer["payment_no"] and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", answer["payment_time"])
    [made] = rig.sim.transfers.values()
    assert (made.openid, made.amount, made.desc, made.check_name) == (PAYEE, 12345, "佣金提现", "NO_CHECK")
    assert rig.sim.transferred(PAYEE) == 12345
    query = await rig.client.transfer_query("W20261122000042")
    assert query["status"] == "SUCCESS" and query["payment_amount"] == 12345
    assert query["payment_no"] == answer["payment_no"] and query["openid"] == PAYEE


async def test_the_request_is_signed_md5_with_the_transfer_field_names(rig: Rig) -> None:
    seen: list[dict[str, Any]] = []
    original = rig.sim._request_fields

    def spy(raw: bytes, *args: Any, **kw: Any) -> dict[str, Any]:
        seen.append(parse_xml(raw))
        return original(raw, *args, **kw)

    rig.sim._request_fields = spy  # type: ignore[method-assign]
    await rig.pay()
    [req] = seen
    assert (req["mch_appid"], req["mchid"]) == (APP_ID, MCH_ID) and "appid" not in req and "mch_id" not in req
    assert req["amount"] == "12345" and req["check_name"] == "NO_CHECK" and req["spbill_create_ip"]
    unsigned = {k: v for k, v in req.items() if k != "sign"}
    assert req["sign"] == calculate_signature(unsigned, KEY)  # wechatpy's MD5, not our own code


async def test_a_retry_with_the_same_number_pays_nothing_more(rig: Rig) -> None:
    first = await rig.pay()
    again = await rig.pay()
    assert again == first
    assert len(rig.sim.transfers) == 1 and rig.sim.transferred(PAYEE) == 12345
    with pytest.raises(PayError) as err:  # the same number for another amount is refused
        await rig.pay(amount=500)
    assert err.value.code == "PARAM_ERROR" and not err.value.retryable
    assert rig.sim.transferred(PAYEE) == 12345


async def test_systemerror_is_retryable_and_the_retry_finds_the_payout(rig: Rig) -> None:
    """The payout went through but its answer said SYSTEMERROR: query, then retry, pays once."""
    rig.sim.fail_next("transfers", "SYSTEMERROR", after_effect=True)
    with pytest.raises(PayError) as err:
        await rig.pay()
    assert err.value.code == "SYSTEMERROR" and err.value.retryable
    query = await rig.client.transfer_query("W20261122000042")
    assert query["status"] == "SUCCESS" and query["payment_amount"] == 12345
    again = await rig.pay()
    assert again["payment_no"] == query["payment_no"]
    assert len(rig.sim.transfers) == 1 and rig.sim.transferred(PAYEE) == 12345


@pytest.mark.parametrize("code", ["NOTENOUGH", "V2_ACCOUNT_SIMPLE_BAN", "NAME_MISMATCH"])
async def test_a_business_error_pays_nothing_and_is_final(rig: Rig, code: str) -> None:
    rig.sim.fail_next("transfers", code)
    with pytest.raises(PayError) as err:
        await rig.pay()
    assert err.value.code == code and not err.value.retryable and err.value.message
    assert rig.sim.transfers == {}
    with pytest.raises(PayError) as err:
        await rig.client.transfer_query("W20261122000042")
    assert err.value.code == "NOT_FOUND"
    assert (await rig.pay())["payment_no"]  # e.g. after topping up: the same number goes through


async def test_below_the_minimum_is_refused_by_wechat(rig: Rig) -> None:
    with pytest.raises(PayError) as err:
        await rig.pay(amount=29)
    assert err.value.code == "AMOUNT_LIMIT" and rig.sim.transfers == {}


async def test_tampered_signed_answer_is_refused(rig: Rig) -> None:
    rig.sim.sign_transfer_answers = True
    assert (await rig.pay("W1"))["payment_no"]  # a correct sign is checked and accepted
    rig.sim.tamper_next_response()
    with pytest.raises(PayError) as err:
        await rig.pay("W2")
    # Refused, yet the payout may have happened: retryable (a retry with the same number is harmless).
    assert err.value.code == "BAD_SIGN" and err.value.retryable
    assert (await rig.pay("W2"))["payment_no"] == rig.sim.transfers["W2"].payment_no
    assert rig.sim.transferred(PAYEE) == 2 * 12345
    rig.sim.tamper_next_response()
    with pytest.raises(PayError) as err:
        await rig.client.transfer_query("W2")
    assert err.value.code == "BAD_SIGN"


async def test_an_answer_for_another_merchant_or_payout_is_refused(rig: Rig) -> None:
    """Tencent does not sign transfer answers; what they echo must still be ours."""

    async def forged(path: str, body: bytes, ssl_context: Any) -> dict[str, Any]:
        return {
            "return_code": "SUCCESS",
            "result_code": "SUCCESS",
            "mch_appid": APP_ID,
            "mchid": "1900000999",
            "partner_trade_no": "W1",
            "payment_no": "1",
        }

    rig.client._post = forged  # type: ignore[method-assign]
    with pytest.raises(PayError) as err:
        await rig.pay("W1")
    assert err.value.code == "BAD_RESPONSE" and "mchid" in err.value.message

    async def other_payout(path: str, body: bytes, ssl_context: Any) -> dict[str, Any]:
        return (await forged(path, body, ssl_context)) | {"mchid": MCH_ID, "partner_trade_no": "W9"}

    rig.client._post = other_payout  # type: ignore[method-assign]
    with pytest.raises(PayError) as err:
        await rig.pay("W1")
    assert err.value.code == "BAD_RESPONSE" and "partner_trade_no" in err.value.message


async def test_wrong_key_is_refused_unsigned_as_tencent_does(rig: Rig) -> None:
    body = {
        "mch_appid": APP_ID,
        "mchid": MCH_ID,
        "nonce_str": "x" * 16,
        "partner_trade_no": "W1",
        "openid": PAYEE,
        "check_name": "NO_CHECK",
        "amount": "100",
        "desc": "佣金",
    }
    xml = dict_to_xml(body, calculate_signature(body, "y" * 32))
    url = rig.server.make_url("/mmpaymkttransfers/promotion/transfers")
    async with aiohttp.ClientSession() as http, http.post(url, data=xml.encode()) as resp:
        answer = parse_xml(await resp.read())
    assert answer["return_code"] == "FAIL" and answer["return_msg"] == "签名错误" and "sign" not in answer
    assert rig.sim.transfers == {}


@pytest.mark.parametrize(
    ("no", "amount"), [("", 100), ("W-1", 100), ("W" * 33, 100), ("W1", 0), ("W1", -5), ("W1", 1.5)]
)
async def test_bad_arguments_never_leave(rig: Rig, no: str, amount: Any) -> None:
    with pytest.raises(ValueError):
        await rig.pay(no, amount)
    assert rig.sim.calls["transfers"] == 0


async def test_unreachable_api_is_retryable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with aiohttp.ClientSession() as http:
        settings = load_settings(
            wechat_app_id=APP_ID,
            wechatpay_mch_id=MCH_ID,
            wechatpay_api_key=KEY,
            wechatpay_api_base=f"http://127.0.0.1:{port}/",
            log_format="text",
        )
        with pytest.raises(PayError) as err:
            await PayClient(http, settings).transfer(
                partner_trade_no="W1", openid=PAYEE, amount_fen=100, desc="佣金"
            )
    assert err.value.code == "NETWORK" and err.value.retryable
