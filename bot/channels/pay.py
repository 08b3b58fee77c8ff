"""Async client of WeChat Pay API v2 (XML, MD5 or HMAC-SHA256 signatures) on aiohttp.

wechatpy's WeChatPay is synchronous (requests); we keep its pure helpers (signing, dict_to_xml,
nonces) and do the HTTP ourselves. Every answer's sign is checked before anything in it is trusted.
"""

from __future__ import annotations

import hmac
import logging
import ssl
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import aiohttp
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml
from wechatpy.utils import random_string

from bot.channels.http import read_capped
from settings import Settings
from webhooks.guard import BadRequest, parse_xml

log = logging.getLogger(__name__)

SignType = Literal["MD5", "HMAC-SHA256"]
TradeType = Literal["NATIVE", "JSAPI"]
TIMEOUT = aiohttp.ClientTimeout(total=10)
MAX_ANSWER = 64 * 1024
BEIJING = timezone(timedelta(hours=8))  # WeChat Pay times (time_expire, time_end) are Beijing time
# err_code values WeChat documents as "call again with the same parameters".
_RETRYABLE = {"SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED", "NETWORK", "BAD_RESPONSE"}
# 企业付款: err_codes after which the payout's outcome is unknown — call again with the same
# partner_trade_no (WeChat pays it at most once) or ask transfer_query.
_TRANSFER_RETRYABLE = {"SYSTEMERROR", "SEND_FAILED", "FREQ_LIMIT", "FREQUENCY_LIMITED"}
_TRADE_NO_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_INT_FIELDS = ("total_fee", "cash_fee", "refund_fee", "settlement_total_fee", "settlement_refund_fee")


class PayError(Exception):
    """A WeChat Pay call that did not succeed: WeChat's err_code (or NETWORK, HTTP_5xx, BAD_SIGN, …)."""

    def __init__(self, code: str, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = (code in _RETRYABLE or code.startswith("HTTP_5")) if retryable is None else retryable


def sign(params: Mapping[str, Any], api_key: str, sign_type: str = "MD5") -> str:
    """The v2 sign of `params` (without any `sign` field), upper-case hex."""
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    if sign_type == "HMAC-SHA256":
        return str(calculate_signature_hmac(unsigned, api_key))
    if sign_type == "MD5":
        return str(calculate_signature(unsigned, api_key))
    raise ValueError(f"unsupported sign_type {sign_type!r}")


def verify_sign(params: Mapping[str, Any], api_key: str) -> bool:
    """True when `params["sign"]` is the sign of the other fields under `api_key`, in constant time."""
    given = params.get("sign")
    if not isinstance(given, str) or not given:
        return False
    # WeChat omits sign_type on answers and notifications that follow an HMAC-SHA256 request
    # (WxJava #1585, node-tenpay #92): then the sign's length tells the algorithm (64 vs 32 hex).
    declared = params.get("sign_type")
    sign_type = declared or ("HMAC-SHA256" if len(given) == 64 else "MD5")
    if sign_type not in ("MD5", "HMAC-SHA256"):
        return False
    return hmac.compare_digest(sign(params, api_key, sign_type).encode(), given.encode())


def with_ints(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of WeChat's string fields with the money fields (fen) as int; ValueError if not digits."""
    out = dict(fields)
    for name in _INT_FIELDS:
        if out.get(name) is not None:
            value = str(out[name])
            if not value.isdigit():
                raise ValueError(f"{name} is not an amount in fen: {value!r}")
            out[name] = int(value)
    return out


def beijing_time(moment: datetime) -> str:
    """yyyyMMddHHmmss in Beijing time, the format of time_expire and time_end."""
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def merchant_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context that presents the merchant certificate, or None when none is configured."""
    if not settings.wechatpay_cert_file:
        return None
    context = ssl.create_default_context()
    context.load_cert_chain(settings.wechatpay_cert_file, settings.wechatpay_key_file or None)
    return context


class PayClient:
    """One merchant's pay APIs (orders, refunds, transfers to balances), on a shared aiohttp session."""

    def __init__(
        self, http: aiohttp.ClientSession, settings: Settings, *, cert: ssl.SSLContext | None = None
    ) -> None:
        self._http = http
        self.app_id = settings.wechat_app_id
        self.mch_id = settings.wechatpay_mch_id
        self._key = settings.wechatpay_api_key.get_secret_value()
        self.sign_type: SignType = "MD5" if settings.wechatpay_sign_type == "MD5" else "HMAC-SHA256"
        self._base = settings.wechatpay_api_base
        # refund is a secapi call: Tencent requires the merchant's client certificate (apiclient_cert).
        self._cert = cert if cert is not None else merchant_tls(settings)

    async def unified_order(
        self,
        *,
        out_trade_no: str,
        body: str,
        total_fee: int,
        trade_type: TradeType,
        notify_url: str,
        openid: str | None = None,
        product_id: str | None = None,
        client_ip: str = "127.0.0.1",
        time_expire: datetime | None = None,
    ) -> dict[str, Any]:
        """Create a prepay order: the answer has code_url (NATIVE) or prepay_id (JSAPI)."""
        if trade_type == "JSAPI" and not openid:
            raise ValueError("JSAPI payments need the payer's openid")
        if trade_type == "NATIVE" and not product_id:
            product_id = out_trade_no  # WeChat requires product_id for NATIVE
        params = {
            "out_trade_no": out_trade_no,
            "body": body,
            "total_fee": _fen(total_fee),
            "trade_type": trade_type,
            "notify_url": notify_url,
            "spbill_create_ip": client_ip,
            "fee_type": "CNY",
            "openid": openid if trade_type == "JSAPI" else None,
            "product_id": product_id if trade_type == "NATIVE" else None,
            "time_expire": beijing_time(time_expire) if time_expire else None,
        }
        answer = await self._call("pay/unifiedorder", params)
        wanted = "code_url" if trade_type == "NATIVE" else "prepay_id"
        if not answer.get(wanted):
            raise PayError("BAD_RESPONSE", f"unifiedorder answered without {wanted}")
        return answer

    async def order_query(self, out_trade_no: str) -> dict[str, Any]:
        """The order as WeChat sees it: trade_state, and once paid transaction_id, total_fee (int), openid."""
        return with_ints(await self._call("pay/orderquery", {"out_trade_no": out_trade_no}))

    async def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order at WeChat Pay so its code_url / prepay_id can no longer be paid.

        PayError ORDERPAID means it was paid meanwhile (its notification is on its way)."""
        await self._call("pay/closeorder", {"out_trade_no": out_trade_no})

    async def refund(
        self, *, out_trade_no: str, out_refund_no: str, total_fee: int, refund_fee: int, notify_url: str
    ) -> dict[str, Any]:
        """Ask for a refund; success means accepted — the result arrives at notify_url later."""
        params = {
            "out_trade_no": out_trade_no,
            "out_refund_no": out_refund_no,
            "total_fee": _fen(total_fee),
            "refund_fee": _fen(refund_fee),
            "notify_url": notify_url,
        }
        return with_ints(await self._call("secapi/pay/refund", params, ssl_context=self._cert))

    async def transfer(
        self, *, partner_trade_no: str, openid: str, amount_fen: int, desc: str, client_ip: str = "127.0.0.1"
    ) -> dict[str, Any]:
        """Pay `amount_fen` into the person's WeChat balance (企业付款到零钱): {payment_no, payment_time}.

        Nothing was paid only when WeChat says so: return_code FAIL (code "FAIL") or a final err_code
        (NOTENOUGH, NAME_MISMATCH, V2_ACCOUNT_SIMPLE_BAN, …; after NOTENOUGH the same number may be
        tried again once the merchant account is topped up). Every other error is `retryable` — it
        leaves the outcome unknown (SYSTEMERROR, NETWORK, and here also BAD_SIGN and BAD_RESPONSE):
        call again with the same partner_trade_no (WeChat pays one number once) or ask transfer_query."""
        _trade_no(partner_trade_no)
        if not openid or not desc.strip():
            raise ValueError("a transfer needs the payee's openid and a desc")
        params = {
            "mch_appid": self.app_id,
            "mchid": self.mch_id,
            "partner_trade_no": partner_trade_no,
            "openid": openid,
            "check_name": "NO_CHECK",
            "amount": _fen(amount_fen),
            "desc": desc,
            "spbill_create_ip": client_ip,
        }
        answer = await self._transfer_call(
            "mmpaymkttransfers/promotion/transfers", params, ("mch_appid", "mchid")
        )
        if not answer.get("payment_no"):
            raise PayError("BAD_RESPONSE", "transfers answered without payment_no", retryable=True)
        return {"payment_no": answer["payment_no"], "payment_time": str(answer.get("payment_time") or "")}

    async def transfer_query(self, partner_trade_no: str) -> dict[str, Any]:
        """A payout as WeChat sees it: status SUCCESS | FAILED | PROCESSING, payment_no, payment_amount
        (int fen), openid, payment_time, reason. PayError NOT_FOUND: no payout has that number."""
        _trade_no(partner_trade_no)
        params = {"appid": self.app_id, "mch_id": self.mch_id, "partner_trade_no": partner_trade_no}
        answer = await self._transfer_call("mmpaymkttransfers/gettransferinfo", params, ("appid", "mch_id"))
        amount = str(answer.get("payment_amount") or "")
        if answer.get("status") not in ("SUCCESS", "FAILED", "PROCESSING") or not amount.isdigit():
            raise PayError(
                "BAD_RESPONSE", "gettransferinfo answered without status or amount", retryable=True
            )
        return dict(answer) | {"payment_no": answer.get("detail_id", ""), "payment_amount": int(amount)}

    async def _transfer_call(
        self, path: str, params: Mapping[str, Any], ids: tuple[str, str]
    ) -> dict[str, Any]:
        # 企业付款 differs from the pay APIs: merchant fields named by `ids`, MD5 signs only, the
        # merchant certificate always, and answers that Tencent does not sign (a sign, if any, must hold).
        # An answer we cannot trust says nothing about the money: retryable, as retrying is harmless.
        request = {k: str(v) for k, v in params.items()} | {"nonce_str": random_string(32)}
        if any("]]>" in v for v in request.values()):
            raise ValueError("a WeChat Pay field cannot contain ']]>' (it would end its CDATA)")
        xml = dict_to_xml(request, sign(request, self._key, "MD5"))
        answer = await self._post(path, xml.encode(), self._cert)
        if answer.get("return_code") != "SUCCESS" and not answer.get("err_code"):
            raise PayError("FAIL", str(answer.get("return_msg") or "return_code is not SUCCESS"))
        if "sign" in answer and not self.verify(answer):
            log.warning("wechat pay answer with a bad sign", extra={"path": path})
            raise PayError("BAD_SIGN", f"{path} answered with a wrong sign", retryable=True)
        app_field, mch_field = ids
        for field, mine in ((app_field, self.app_id), (mch_field, self.mch_id)):
            if answer.get(field) not in (None, mine):
                raise PayError("BAD_RESPONSE", f"{path} answered for another {field}", retryable=True)
        if answer.get("result_code") != "SUCCESS" or answer.get("return_code") != "SUCCESS":
            code = str(answer.get("err_code") or "FAIL")
            message = str(answer.get("err_code_des") or answer.get("return_msg") or code)
            raise PayError(code, message, retryable=code in _TRANSFER_RETRYABLE or None)
        if answer.get("partner_trade_no") not in (None, request["partner_trade_no"]):
            raise PayError("BAD_RESPONSE", f"{path} answered for another partner_trade_no", retryable=True)
        return answer

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the pay page hands to WeixinJSBridge 'getBrandWCPayRequest' (signType as in unifiedorder)."""
        params = {
            "appId": self.app_id,
            "timeStamp": str(int(time.time())),
            "nonceStr": random_string(32),
            "package": f"prepay_id={prepay_id}",
            "signType": self.sign_type,
        }
        return params | {"paySign": sign(params, self._key, self.sign_type)}

    def verify(self, params: Mapping[str, Any]) -> bool:
        """True when `params` carry a valid sign from WeChat Pay for this merchant's key."""
        return verify_sign(params, self._key)

    async def _call(
        self, path: str, params: Mapping[str, Any], *, ssl_context: ssl.SSLContext | None = None
    ) -> dict[str, Any]:
        request = {k: str(v) for k, v in params.items() if v is not None}
        request |= {
            "appid": self.app_id,
            "mch_id": self.mch_id,
            "nonce_str": random_string(32),
            "sign_type": self.sign_type,
        }
        if any("]]>" in v for v in request.values()):
            raise ValueError("a WeChat Pay field cannot contain ']]>' (it would end its CDATA)")
        xml = dict_to_xml(request, sign(request, self._key, self.sign_type))
        answer = await self._post(path, xml.encode(), ssl_context)
        return self._checked(path, answer)

    async def _post(self, path: str, body: bytes, ssl_context: ssl.SSLContext | None) -> dict[str, Any]:
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        try:
            async with self._http.post(
                self._base + path, data=body, headers=headers, timeout=TIMEOUT, ssl=ssl_context or True
            ) as resp:
                raw = await read_capped(resp, MAX_ANSWER)
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise PayError("NETWORK", f"{path}: {exc!r}") from exc
        if status != 200:
            raise PayError(f"HTTP_{status}", f"{path} answered HTTP {status}")
        if len(raw) > MAX_ANSWER:
            raise PayError("BAD_RESPONSE", f"{path} answered more than {MAX_ANSWER} bytes")
        try:
            return parse_xml(raw)
        except BadRequest as exc:
            raise PayError("BAD_RESPONSE", f"{path}: {exc}") from None

    def _checked(self, path: str, answer: dict[str, Any]) -> dict[str, Any]:
        # return_code FAIL answers (bad sign, bad parameters) come unsigned: report them as they are.
        if answer.get("return_code") != "SUCCESS":
            raise PayError("FAIL", str(answer.get("return_msg") or "return_code is not SUCCESS"))
        if not self.verify(answer):
            log.warning("wechat pay answer with a bad sign", extra={"path": path})
            raise PayError("BAD_SIGN", f"{path} answered with a missing or wrong sign", retryable=False)
        if answer.get("appid") != self.app_id or answer.get("mch_id") != self.mch_id:
            raise PayError("BAD_RESPONSE", f"{path} answered for another appid/mch_id", retryable=False)
        if answer.get("result_code") != "SUCCESS":
            code = str(answer.get("err_code") or "FAIL")
            raise PayError(code, str(answer.get("err_code_des") or code))
        return answer


def _trade_no(value: str) -> None:
    # WeChat: 商户订单号, letters and digits only, at most 32.
    if not 1 <= len(value) <= 32 or not set(value) <= _TRADE_NO_CHARS:
        raise ValueError(f"partner_trade_no must be 1-32 letters and digits, not {value!r}")


def _fen(amount: int) -> int:
    # Money is int fen; WeChat refuses 0 and a float here would be a bug upstream.
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"amount must be a positive int in fen, got {amount!r}")
    return amount
