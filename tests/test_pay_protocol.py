"""WeChat Pay v2 conformance with the official samples in tests/fixtures/wechat/pay/v2/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from wechatpy.crypto import RefundCrypto, WeChatRefundCrypto
from wechatpy.pay.utils import dict_to_xml

import webhooks.pay
from bot.channels.pay import sign, verify_sign, with_ints
from settings import load_settings
from webhooks.guard import parse_xml


def _load(samples: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((samples / "pay" / "v2" / name).read_text(encoding="utf-8")))


def test_official_example_md5_and_hmac_signatures(samples: Path) -> None:
    spec = _load(samples, "sign_official_example.json")
    assert sign(spec["params"], spec["api_key"], "MD5") == spec["sign_md5"]
    assert sign(spec["params"], spec["api_key"], "HMAC-SHA256") == spec["sign_hmac_sha256"]


def test_official_signed_xml_verifies_and_tampering_does_not(samples: Path) -> None:
    spec = _load(samples, "sign_official_example.json")
    fields = parse_xml((samples / "pay" / "v2" / spec["signed_xml_file"]).read_bytes())
    assert verify_sign(fields, spec["api_key"])
    assert not verify_sign(fields | {"body": "test2"}, spec["api_key"])
    assert not verify_sign(fields | {"sign": fields["sign"].lower()}, spec["api_key"])
    assert not verify_sign(fields, "0" * 32)
    assert not verify_sign({k: v for k, v in fields.items() if k != "sign"}, spec["api_key"])


def test_hmac_sign_verifies_without_a_sign_type_field(samples: Path) -> None:
    """WeChat omits sign_type after an HMAC-SHA256 order; the 64-hex sign must still verify."""
    spec = _load(samples, "sign_official_example.json")
    fields = spec["params"] | {"sign": spec["sign_hmac_sha256"]}
    assert verify_sign(fields, spec["api_key"])
    # A sign_type field is itself signed, and a declared MD5 never accepts an HMAC sign.
    assert not verify_sign(fields | {"sign_type": "HMAC-SHA256"}, spec["api_key"])
    assert not verify_sign(fields | {"sign_type": "MD5"}, spec["api_key"])
    assert not verify_sign(fields | {"sign_type": "SHA1"}, spec["api_key"])


def test_wechatpy_vectors(samples: Path) -> None:
    spec = _load(samples, "sign_wechatpy_vectors.json")
    assert sign(spec["params"], spec["api_key"], "MD5") == spec["sign_md5"]
    assert sign(spec["params"], spec["api_key"], "HMAC-SHA256") == spec["sign_hmac_sha256"]
    assert dict_to_xml(spec["params"], spec["sign_md5"]) == spec["expected_dict_to_xml"]
    assert verify_sign(parse_xml(spec["expected_dict_to_xml"]), spec["api_key"])


def test_official_pay_notification_sample_parses_but_is_not_trusted(samples: Path) -> None:
    """The doc's sample publishes no key (SOURCES.md), so its sign cannot be checked: we must refuse it."""
    fields = parse_xml((samples / "pay" / "v2" / "pay_notify_official_doc_sample.xml").read_bytes())
    assert fields["out_trade_no"] == "1409811653"
    assert fields["transaction_id"] == "1004400740201409030005092168"
    assert with_ints(fields)["total_fee"] == 1
    assert fields["coupon_fee"] == ["10", "100"]  # the old doc repeats <coupon_fee>; kept as a list
    official_key = _load(samples, "sign_official_example.json")["api_key"]
    assert not verify_sign(fields, official_key)


def test_refund_notification_sample_decrypts_to_stated_plaintext(samples: Path) -> None:
    spec = _load(samples, "refund_notify_wechatpy.json")
    fields = parse_xml((samples / "pay" / "v2" / spec["body_file"]).read_bytes())
    key = WeChatRefundCrypto(spec["api_key"]).key
    assert RefundCrypto(key).decrypt(fields["req_info"]).decode() == spec["expected_req_info_plaintext"]
    plain = WeChatRefundCrypto(spec["api_key"]).decrypt_message(fields, spec["appid"], spec["mch_id"])
    assert spec["expected_fields_from_source"].items() <= dict(plain).items()


async def test_refund_sample_through_our_webhook(samples: Path) -> None:
    spec = _load(samples, "refund_notify_wechatpy.json")
    seen: list[dict[str, Any]] = []

    async def apply_refund(fields: dict[str, Any]) -> str:
        seen.append(fields)
        return "credited"

    async def unused(fields: dict[str, Any]) -> str:
        raise AssertionError("not a pay notification")

    settings = load_settings(
        wechat_app_id=spec["appid"], wechatpay_mch_id=spec["mch_id"], wechatpay_api_key=spec["api_key"]
    )
    app = web.Application()
    webhooks.pay.setup(app, apply=unused, apply_refund=apply_refund, settings=settings)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        body = (samples / "pay" / "v2" / spec["body_file"]).read_bytes()
        resp = await client.post("/pay/wechat/refund-notify", data=body)
        assert resp.status == 200 and "SUCCESS" in await resp.text()
        wrong_key = load_settings(
            wechat_app_id=spec["appid"], wechatpay_mch_id=spec["mch_id"], wechatpay_api_key="x" * 32
        )
        client.app[webhooks.pay.PAY_HOOKS].api_key = wrong_key.wechatpay_api_key.get_secret_value()
        assert (await client.post("/pay/wechat/refund-notify", data=body)).status == 403
    assert len(seen) == 1
    assert spec["expected_fields_from_source"].items() <= seen[0].items()
    assert seen[0]["refund_fee"] == 1 and seen[0]["refund_status"] == "SUCCESS"
