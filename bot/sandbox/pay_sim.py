"""A simulator of WeChat Pay API v2 over real HTTP: signed XML in, signed XML out, real notifications.

It plays api.mch.weixin.qq.com (unifiedorder, orderquery, closeorder, refund, and 企业付款: transfers and
gettransferinfo) and the payer's phone (a small pay
page with 「确认支付」 and 「模拟失败」). Paying POSTs a signed result notification to the order's
notify_url, and a refund POSTs an encrypted refund notification, exactly as WeChat Pay does.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import html
import itertools
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

import aiohttp
import xmltodict
from aiohttp import web
from wechatpy.crypto import RefundCrypto, WeChatRefundCrypto
from wechatpy.pay.utils import calculate_signature, calculate_signature_hmac, dict_to_xml
from wechatpy.utils import random_string

from settings import Settings
from webhooks.guard import BadRequest, parse_xml

log = logging.getLogger(__name__)

MOUNT = "/sandbox/pay/"
BEIJING = timezone(timedelta(hours=8))
MAX_BODY = 64 * 1024
_XML = {"Content-Type": "text/xml; charset=utf-8"}
# API name (as in `calls` and `fail_next`) -> path; handled by the method `_<name>`.
_ROUTES = {
    "unifiedorder": "pay/unifiedorder",
    "orderquery": "pay/orderquery",
    "closeorder": "pay/closeorder",
    "refund": "secapi/pay/refund",
    "transfers": "mmpaymkttransfers/promotion/transfers",
    "gettransferinfo": "mmpaymkttransfers/gettransferinfo",
}
# 企业付款 names the merchant differently (per API: app field, mch field), signs with MD5 only, and
# answers without a sign.
_MERCHANT_FIELDS = {"transfers": ("mch_appid", "mchid")}
_TRANSFER_APIS = {"transfers", "gettransferinfo"}
MIN_TRANSFER = 30  # fen: WeChat's lowest payout (0.3 yuan)
# err_code_des as Tencent words them, for errors injected with fail_next.
_ERR_TEXT = {
    "SYSTEMERROR": "系统繁忙，请稍后再试。",
    "NOTENOUGH": "余额不足",
    "V2_ACCOUNT_SIMPLE_BAN": "无法给未实名用户付款",
    "NAME_MISMATCH": "姓名校验出错",
    "SEND_FAILED": "付款错误",
    "FREQ_LIMIT": "超过频率限制，请稍后再试。",
}
_STATE_TEXT = {
    "NOTPAY": "待支付",
    "SUCCESS": "支付成功",
    "PAYERROR": "支付失败",
    "REFUND": "转入退款",
    "CLOSED": "已关闭",
}

ApiHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class SimTransfer:
    """One payout to a person's balance (企业付款到零钱), as the simulator made it."""

    partner_trade_no: str
    openid: str
    amount: int
    desc: str
    check_name: str
    payment_no: str
    payment_time: str  # yyyy-MM-dd HH:mm:ss, Beijing time


@dataclass(frozen=True, slots=True)
class _Failure:
    code: str
    after_effect: bool  # the call takes effect, then answers the error (a lost success)


class PayFail(Exception):
    """An answer with result_code FAIL; args = (err_code, err_code_des)."""


class ReturnFail(Exception):
    """An answer with return_code FAIL (unsigned, like Tencent's); args[0] is return_msg."""


@dataclass(slots=True)
class SimOrder:
    """One prepay order as the simulator remembers it."""

    out_trade_no: str
    body: str
    total_fee: int
    trade_type: str
    notify_url: str
    sign_type: str
    prepay_id: str
    openid: str | None = None
    code_url: str | None = None
    time_expire: str | None = None
    state: str = "NOTPAY"  # NOTPAY | SUCCESS | PAYERROR | REFUND | CLOSED
    transaction_id: str | None = None
    payer: str | None = None
    time_end: str | None = None
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # out_refund_no -> answer fields

    @property
    def refunded(self) -> int:
        return sum(int(r["refund_fee"]) for r in self.refunds.values())


@dataclass(frozen=True, slots=True)
class SentNotification:
    """One notification the simulator POSTed, with the HTTP status of every attempt."""

    kind: Literal["pay", "refund"]
    url: str
    fields: dict[str, str]
    statuses: tuple[int, ...]
    acknowledged: bool
    at: float


def sign(params: dict[str, Any], api_key: str, sign_type: str) -> str:
    """WeChat Pay v2 sign (wechatpy's), without any `sign` field."""
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    if sign_type == "HMAC-SHA256":
        return str(calculate_signature_hmac(unsigned, api_key))
    return str(calculate_signature(unsigned, api_key))


def fen_text(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


class PaySimulator:
    """Stands in for api.mch.weixin.qq.com and the payer, with fault injection for tests."""

    def __init__(
        self,
        app_id: str,
        mch_id: str,
        api_key: str,
        *,
        notify_base: str | None = None,
        attempts: int = 3,
        retry_delay: float = 0.2,
    ) -> None:
        self.app_id = app_id
        self.mch_id = mch_id
        self._key = api_key
        # When set, notifications go to this origin + the notify_url's path (a demo on another port).
        self.notify_base = notify_base
        # WeChat Pay resends at 15 s, 15 s, 30 s, 3 min, …; the simulator compresses that.
        self.attempts = attempts
        self.retry_delay = retry_delay
        # Some notifications carry sign_type, most after an HMAC-SHA256 order do not (WxJava #1585, #1407).
        self.declare_sign_type = False
        # Tencent does not sign 企业付款 answers; tests turn this on to check a sign that is present.
        self.sign_transfer_answers = False
        self.transfers: dict[str, SimTransfer] = {}  # partner_trade_no -> the payout
        self.orders: dict[str, SimOrder] = {}
        self.sent_notifications: list[SentNotification] = []
        self.failures: list[str] = []  # out_trade_no of each 「模拟失败」
        self.calls: collections.Counter[str] = collections.Counter()
        self._drops = 0
        self._tamper = 0
        self._fail_next: dict[str, collections.deque[_Failure]] = collections.defaultdict(collections.deque)
        self._seq = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        for api, path in _ROUTES.items():
            self.app.router.add_post(f"/{path}", self._wrap(api, getattr(self, f"_{api}")))
        self.app.router.add_get("/page/{out_trade_no}", self._page)
        self.app.router.add_post("/page/{out_trade_no}/pay", self._pay_button, name="pay-button")
        self.app.router.add_post("/page/{out_trade_no}/fail", self._fail_button, name="fail-button")
        self.app.on_cleanup.append(self._cleanup)

    def drop_next_notification(self, times: int = 1) -> None:
        """The next `times` pay notifications are lost on the way (the order is still paid)."""
        self._drops += times

    def tamper_next_response(self, times: int = 1) -> None:
        """The next `times` API answers have a field changed after signing (a forged answer)."""
        self._tamper += times

    def fail_next(self, api: str, err_code: str, times: int = 1, *, after_effect: bool = False) -> None:
        """Answer the next `times` calls of `api` with result_code FAIL and `err_code`.

        With `after_effect` the call is carried out first (e.g. the transfer is paid) and only the
        answer says it failed: a success whose answer was lost, as after a SYSTEMERROR."""
        self._fail_next[api].extend([_Failure(err_code, after_effect)] * times)

    def transferred(self, openid: str) -> int:
        """Fen paid out to `openid` by transfers so far."""
        return sum(t.amount for t in self.transfers.values() if t.openid == openid)

    def paid(self, out_trade_no: str) -> bool:
        order = self.orders.get(out_trade_no)
        return order is not None and order.state in ("SUCCESS", "REFUND")

    def page_path(self, out_trade_no: str) -> str:
        """Path of the pay page under the simulator's mount (what a QR code would open)."""
        return f"page/{urllib.parse.quote(out_trade_no, safe='')}"

    async def idle(self) -> None:
        """Wait until every notification in flight has been delivered (or given up)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _wrap(self, api: str, handler: ApiHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def view(request: web.Request) -> web.Response:
            self.calls[api] += 1
            fields = _MERCHANT_FIELDS.get(api, ("appid", "mch_id"))
            transfer = api in _TRANSFER_APIS
            try:
                req = self._request_fields(await request.content.read(MAX_BODY + 1), fields, md5=transfer)
                failure = self._fail_next[api].popleft() if self._fail_next[api] else None
                if failure is not None and not failure.after_effect:
                    raise PayFail(failure.code, _ERR_TEXT.get(failure.code, failure.code))
                result = {"result_code": "SUCCESS", **await handler(req)}
                if failure is not None:
                    raise PayFail(failure.code, _ERR_TEXT.get(failure.code, failure.code))
            except ReturnFail as exc:
                return self._xml({"return_code": "FAIL", "return_msg": exc.args[0]})
            except PayFail as exc:
                result = {"result_code": "FAIL", "err_code": exc.args[0], "err_code_des": exc.args[1]}
            if transfer:
                return self._xml(self._transfer_answer(result, fields))
            return self._xml(self._signed_answer(result, req.get("sign_type") or "MD5"))

        return view

    def _request_fields(
        self, raw: bytes, fields: tuple[str, str] = ("appid", "mch_id"), *, md5: bool = False
    ) -> dict[str, Any]:
        if len(raw) > MAX_BODY:
            raise ReturnFail("请求包过大")
        try:
            req = parse_xml(raw)
        except BadRequest:
            raise ReturnFail("XML格式错误") from None
        app_field, mch_field = fields
        if req.get(app_field) != self.app_id or req.get(mch_field) != self.mch_id:
            raise ReturnFail(f"{app_field}和{mch_field}不匹配")
        sign_type = "MD5" if md5 else req.get("sign_type") or "MD5"
        if sign_type not in ("MD5", "HMAC-SHA256"):
            raise ReturnFail("sign_type参数格式错误")
        given = str(req.get("sign") or "")
        if not hmac.compare_digest(sign(req, self._key, sign_type).encode(), given.encode()):
            raise ReturnFail("签名错误")
        if not req.get("nonce_str"):
            raise ReturnFail("nonce_str参数缺失")
        return req

    def _signed_answer(self, result: dict[str, Any], sign_type: str) -> dict[str, Any]:
        # Answers are signed with the request's sign_type and do not name it (as Tencent does).
        answer = {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "appid": self.app_id,
            "mch_id": self.mch_id,
            "nonce_str": random_string(16),
            **{k: str(v) for k, v in result.items() if v is not None},
        }
        answer["sign"] = sign(answer, self._key, sign_type)
        if self._tamper:
            self._tamper -= 1
            answer["nonce_str"] = random_string(16)  # signed, then changed on the way
        return answer

    def _transfer_answer(self, result: dict[str, Any], fields: tuple[str, str]) -> dict[str, Any]:
        app_field, mch_field = fields
        answer = {
            "return_code": "SUCCESS",
            "return_msg": "",
            app_field: self.app_id,
            mch_field: self.mch_id,
            "nonce_str": random_string(16),
            **{k: str(v) for k, v in result.items() if v is not None},
        }
        if self.sign_transfer_answers:
            answer["sign"] = sign(answer, self._key, "MD5")
        if self._tamper:
            self._tamper -= 1
            answer["nonce_str"] = random_string(16)  # changed on the way: only a sign can tell
        return answer

    def _xml(self, fields: dict[str, Any]) -> web.Response:
        unsigned = {k: v for k, v in fields.items() if k != "sign"}
        return web.Response(text=dict_to_xml(unsigned, fields.get("sign")), headers=_XML)

    async def _unifiedorder(self, req: dict[str, Any]) -> dict[str, Any]:
        for name in ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type"):
            if not req.get(name):
                raise ReturnFail(f"{name}参数缺失")  # Tencent answers missing fields this way
        no, trade_type, total = req["out_trade_no"], req["trade_type"], _int(req["total_fee"])
        if trade_type not in ("NATIVE", "JSAPI") or total is None or total <= 0:
            raise PayFail("PARAM_ERROR", "参数格式错误")
        if trade_type == "JSAPI" and not req.get("openid"):
            raise ReturnFail("JSAPI支付必须传openid")
        if trade_type == "NATIVE" and not req.get("product_id"):
            raise ReturnFail("NATIVE支付必须传product_id")
        if (old := self.orders.get(no)) is not None:
            return self._same_order(old, req, total)
        order = SimOrder(
            out_trade_no=no,
            body=req["body"],
            total_fee=total,
            trade_type=trade_type,
            notify_url=req["notify_url"],
            sign_type=req.get("sign_type") or "MD5",
            prepay_id=f"wx{_now_beijing()}{random_string(20).lower()}",
            openid=req.get("openid"),
            time_expire=req.get("time_expire"),
        )
        if trade_type == "NATIVE":
            order.code_url = f"weixin://wxpay/bizpayurl?pr={random_string(7)}"
        self.orders[no] = order
        return self._prepay(order)

    def _same_order(self, order: SimOrder, req: dict[str, Any], total: int) -> dict[str, Any]:
        # WeChat answers a repeated unifiedorder with the same prepay, unless it changed or was paid.
        if order.state in ("SUCCESS", "REFUND"):
            raise PayFail("ORDERPAID", "该订单已支付")
        if order.state == "CLOSED":
            raise PayFail("ORDERCLOSED", "订单已关闭")
        if (order.total_fee, order.trade_type, order.body) != (total, req["trade_type"], req["body"]):
            raise PayFail("INVALID_REQUEST", "201 商户订单号重复")
        return self._prepay(order)

    def _prepay(self, order: SimOrder) -> dict[str, Any]:
        return {"trade_type": order.trade_type, "prepay_id": order.prepay_id, "code_url": order.code_url}

    async def _orderquery(self, req: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(req.get("out_trade_no") or "")
        if order is None:
            raise PayFail("ORDERNOTEXIST", "订单不存在")
        answer: dict[str, Any] = {
            "out_trade_no": order.out_trade_no,
            "trade_state": order.state,
            "trade_state_desc": _STATE_TEXT[order.state],
            "trade_type": order.trade_type,
            "total_fee": order.total_fee,
            "fee_type": "CNY",
        }
        if order.state in ("SUCCESS", "REFUND"):
            answer |= {
                "transaction_id": order.transaction_id,
                "openid": order.payer,
                "bank_type": "OTHERS",
                "cash_fee": order.total_fee,
                "time_end": order.time_end,
            }
        return answer

    async def _closeorder(self, req: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(req.get("out_trade_no") or "")
        if order is None:
            raise PayFail("ORDERNOTEXIST", "订单不存在")
        if order.state in ("SUCCESS", "REFUND"):
            raise PayFail("ORDERPAID", "订单已支付，不能发起关单")
        order.state = "CLOSED"  # closing twice is fine, as at Tencent
        return {}

    async def _refund(self, req: dict[str, Any]) -> dict[str, Any]:
        for name in ("out_trade_no", "out_refund_no", "total_fee", "refund_fee"):
            if not req.get(name):
                raise ReturnFail(f"{name}参数缺失")
        order = self.orders.get(req["out_trade_no"])
        if order is None:
            raise PayFail("ORDERNOTEXIST", "订单不存在")
        total, amount = _int(req["total_fee"]), _int(req["refund_fee"])
        if total != order.total_fee or amount is None or amount <= 0:
            raise PayFail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
        if (old := order.refunds.get(req["out_refund_no"])) is not None:
            if int(old["refund_fee"]) != amount:
                raise PayFail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
            return old  # the same out_refund_no is the same refund: no second notification
        if order.state not in ("SUCCESS", "REFUND"):
            raise PayFail("ERROR", "订单未支付")
        if order.refunded + amount > order.total_fee:
            raise PayFail("ERROR", "申请退款金额超过订单可退金额")
        answer = self._accept_refund(order, req["out_refund_no"], amount)
        if req.get("notify_url"):
            self._spawn(self._send_refund_notification(order, answer, req["notify_url"]))
        return answer

    def _accept_refund(self, order: SimOrder, out_refund_no: str, amount: int) -> dict[str, Any]:
        answer = {
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "out_refund_no": out_refund_no,
            "refund_id": f"503{next(self._seq):05d}{_now_beijing()}{random_string(7).lower()}",
            "refund_fee": str(amount),
            "total_fee": str(order.total_fee),
            "cash_fee": str(order.total_fee),
        }
        order.refunds[out_refund_no] = answer
        order.state = "REFUND"
        return answer

    async def _transfers(self, req: dict[str, Any]) -> dict[str, Any]:
        for name in ("partner_trade_no", "openid", "check_name", "amount", "desc"):
            if not req.get(name):
                raise ReturnFail(f"{name}参数缺失")
        no, amount = req["partner_trade_no"], _int(req["amount"])
        if len(no) > 32 or not no.isalnum() or not no.isascii():
            raise PayFail("PARAM_ERROR", "商户订单号只能是字母或者数字，长度不超过32位")
        if req["check_name"] not in ("NO_CHECK", "FORCE_CHECK"):
            raise PayFail("PARAM_ERROR", "check_name参数错误")
        if req["check_name"] == "FORCE_CHECK" and not req.get("re_user_name"):
            raise PayFail("PARAM_ERROR", "校验姓名时收款用户姓名必填")
        if amount is None:
            raise PayFail("PARAM_ERROR", "金额格式错误")
        if (old := self.transfers.get(no)) is not None:
            # The same number is the same payout: a retry gets the first answer and pays nothing more.
            if (old.openid, old.amount) != (req["openid"], amount):
                raise PayFail("PARAM_ERROR", "商户订单号重复，且与原请求参数不一致")
            return self._transfer_result(old)
        if amount < MIN_TRANSFER:
            raise PayFail("AMOUNT_LIMIT", "付款金额不能小于最低限额")
        done = SimTransfer(
            partner_trade_no=no,
            openid=req["openid"],
            amount=amount,
            desc=req["desc"],
            check_name=req["check_name"],
            payment_no=f"10100{next(self._seq):07d}{_now_beijing()[:8]}{random_string(8).lower()}",
            payment_time=datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        )
        self.transfers[no] = done
        return self._transfer_result(done)

    def _transfer_result(self, t: SimTransfer) -> dict[str, Any]:
        return {
            "partner_trade_no": t.partner_trade_no,
            "payment_no": t.payment_no,
            "payment_time": t.payment_time,
        }

    async def _gettransferinfo(self, req: dict[str, Any]) -> dict[str, Any]:
        found = self.transfers.get(req.get("partner_trade_no") or "")
        if found is None:
            raise PayFail("NOT_FOUND", "指定单号数据不存在")
        return {
            "partner_trade_no": found.partner_trade_no,
            "detail_id": found.payment_no,
            "status": "SUCCESS",
            "openid": found.openid,
            "transfer_name": "",
            "payment_amount": found.amount,
            "transfer_time": found.payment_time,
            "payment_time": found.payment_time,
            "desc": found.desc,
        }

    async def pay(self, out_trade_no: str, openid: str | None = None) -> SentNotification | None:
        """The payer pays: the order becomes SUCCESS and its notification is delivered (or dropped)."""
        order = self.orders[out_trade_no]
        if order.state == "CLOSED":
            raise ValueError("订单已关闭")
        if order.state not in ("NOTPAY", "PAYERROR"):
            raise ValueError("该订单已支付")
        if order.time_expire and _now_beijing() > order.time_expire:
            raise ValueError("订单已过期，请重新下单")
        order.state, order.payer = "SUCCESS", order.openid or openid or "o_sandbox_payer"
        order.transaction_id = f"4200{next(self._seq):06d}{_now_beijing()[:8]}{random_string(10).lower()}"
        order.time_end = _now_beijing()
        if self._drops:
            self._drops -= 1
            log.info("pay simulator dropped the notification of %s", out_trade_no)
            return None
        return await self._deliver("pay", order.notify_url, self._pay_xml(order))

    def fail(self, out_trade_no: str) -> None:
        """The payment failed on the phone: recorded, and no notification (WeChat sends none)."""
        order = self.orders[out_trade_no]
        if order.state == "NOTPAY":
            order.state = "PAYERROR"
        self.failures.append(out_trade_no)

    def _pay_xml(self, order: SimOrder) -> dict[str, str]:
        fields = {
            "appid": self.app_id,
            "mch_id": self.mch_id,
            "nonce_str": random_string(32),
            "result_code": "SUCCESS",
            "return_code": "SUCCESS",
            "openid": order.payer or "",
            "is_subscribe": "N",
            "trade_type": order.trade_type,
            "bank_type": "OTHERS",
            "fee_type": "CNY",
            "total_fee": str(order.total_fee),
            "cash_fee": str(order.total_fee),
            "transaction_id": order.transaction_id or "",
            "out_trade_no": order.out_trade_no,
            "time_end": order.time_end or "",
        }
        if self.declare_sign_type:
            fields["sign_type"] = order.sign_type
        return fields | {"sign": sign(fields, self._key, order.sign_type)}

    async def _send_refund_notification(self, order: SimOrder, refund: dict[str, Any], url: str) -> None:
        plain = {
            "out_refund_no": refund["out_refund_no"],
            "out_trade_no": order.out_trade_no,
            "refund_account": "REFUND_SOURCE_RECHARGE_FUNDS",
            "refund_fee": refund["refund_fee"],
            "refund_id": refund["refund_id"],
            "refund_recv_accout": "支付用户零钱",  # sic: Tencent's field name
            "refund_request_source": "API",
            "refund_status": "SUCCESS",
            "settlement_refund_fee": refund["refund_fee"],
            "settlement_total_fee": str(order.total_fee),
            "success_time": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "total_fee": str(order.total_fee),
            "transaction_id": order.transaction_id or "",
        }
        # req_info = base64(AES-256-ECB(key = md5(api_key) hex, PKCS#7)), what WeChatRefundCrypto opens.
        root = xmltodict.unparse({"root": plain}, full_document=False)
        req_info = RefundCrypto(WeChatRefundCrypto(self._key).key).encrypt(root).decode()
        fields = {
            "return_code": "SUCCESS",
            "appid": self.app_id,
            "mch_id": self.mch_id,
            "nonce_str": random_string(32),
            "req_info": req_info,
        }
        await self._deliver("refund", url, fields)

    async def _deliver(
        self, kind: Literal["pay", "refund"], url: str, fields: dict[str, str]
    ) -> SentNotification:
        """POST one notification; resend (same body) until it is answered return_code SUCCESS."""
        target = self._target(url)
        unsigned = {k: v for k, v in fields.items() if k != "sign"}
        body = dict_to_xml(unsigned, fields.get("sign")).encode()
        statuses: list[int] = []
        ok = False
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.retry_delay * attempt)
            status, ok = await self._post(target, body)
            statuses.append(status)
            if ok:
                break
        sent = SentNotification(kind, target, fields, tuple(statuses), ok, time.time())
        self.sent_notifications.append(sent)
        return sent

    async def _post(self, url: str, body: bytes) -> tuple[int, bool]:
        try:
            async with self._client().post(
                url, data=body, headers=_XML, timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("pay simulator could not reach %s: %r", url, exc)
            return 0, False
        try:
            acked = status == 200 and parse_xml(text).get("return_code") == "SUCCESS"
        except BadRequest:
            acked = False
        return status, acked

    def _target(self, url: str) -> str:
        if not self.notify_base:
            return url
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.notify_base.rstrip("/") + path

    def _spawn(self, work: Awaitable[None]) -> None:
        # Refund notifications follow the API answer, as on WeChat: never inside the caller's request.
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _cleanup(self, _: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _page(self, request: web.Request) -> web.Response:
        """The payer's view of an order: amount, what it is for, and the two buttons."""
        order = self._order_or_404(request)
        # ?openid= says who is paying a NATIVE order (the console opens the page as one customer).
        return self._render(request, order, "", payer=request.query.get("openid", "")[:64])

    async def _pay_button(self, request: web.Request) -> web.Response:
        order = self._order_or_404(request)
        form = await request.post()
        openid = form.get("openid")
        payer = openid.strip()[:64] if isinstance(openid, str) else ""
        try:
            sent = await self.pay(order.out_trade_no, payer or None)
        except ValueError as exc:
            return self._render(request, order, str(exc), status=409, payer=payer)
        if sent is None:
            note = "支付成功（通知已按要求丢弃）"
        elif sent.acknowledged:
            note = "支付成功，商户已确认收到通知"
        else:
            note = f"支付成功，但商户未确认通知（HTTP {', '.join(map(str, sent.statuses))}）"
        return self._render(request, order, note)

    async def _fail_button(self, request: web.Request) -> web.Response:
        order = self._order_or_404(request)
        form = await request.post()
        openid = form.get("openid")
        payer = openid.strip()[:64] if isinstance(openid, str) else ""
        if order.state != "NOTPAY":
            return self._render(request, order, "该订单当前状态不能模拟失败", status=409, payer=payer)
        self.fail(order.out_trade_no)
        return self._render(request, order, "支付失败（模拟），未发送通知", payer=payer)

    def _order_or_404(self, request: web.Request) -> SimOrder:
        order = self.orders.get(request.match_info["out_trade_no"])
        if order is None:
            raise web.HTTPNotFound(text="订单不存在")
        return order

    def _render(
        self, request: web.Request, order: SimOrder, note: str, status: int = 200, payer: str = ""
    ) -> web.Response:
        buttons = ""
        if order.state in ("NOTPAY", "PAYERROR"):
            # Absolute actions: the page is shown again under .../pay and .../fail after a press.
            urls = {
                name: request.app.router[name].url_for(out_trade_no=order.out_trade_no)
                for name in ("pay-button", "fail-button")
            }
            # Who pays: the console's customer by default; the operator may type another payer (e.g.
            # one WeChat account paying for several customers, to see the fraud rule at work).
            who = (
                '<label class="muted">付款微信（沙盒 openid）'
                f'<input name="openid" value="{html.escape(payer)}" placeholder="默认为下单的客户"></label>'
            )
            buttons = (
                f'<form method="post" action="{urls["pay-button"]}">{who}'
                '<button class="pay">确认支付</button></form>'
                f'<form method="post" action="{urls["fail-button"]}">'
                f'<input type="hidden" name="openid" value="{html.escape(payer)}">'
                "<button>模拟失败</button></form>"
            )
        page = _PAGE.format(
            amount=fen_text(order.total_fee),
            body=html.escape(order.body),
            no=html.escape(order.out_trade_no),
            state=_STATE_TEXT[order.state],
            note=f'<p class="note">{html.escape(note)}</p>' if note else "",
            buttons=buttons,
        )
        return web.Response(text=page, status=status, content_type="text/html")


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信支付（沙盒）</title>
<style>
body{{font-family:system-ui,sans-serif;background:#ededed;margin:0;padding:24px;text-align:center}}
.card{{background:#fff;border-radius:8px;max-width:360px;margin:0 auto;padding:24px}}
.amount{{font-size:36px;font-weight:600;margin:12px 0}}
button{{width:100%;padding:12px;margin-top:12px;border:0;border-radius:6px;font-size:16px}}
button.pay{{background:#07c160;color:#fff}}
input{{width:100%;box-sizing:border-box;padding:8px;margin-top:4px;border:1px solid #ddd;border-radius:6px}}
.muted{{color:#888;font-size:13px}} .note{{color:#576b95}}
</style></head><body><div class="card">
<div class="muted">沙盒商户</div><div>{body}</div>
<div class="amount">{amount}</div>
<div class="muted">商户订单号 {no} · {state}</div>
{note}{buttons}
</div></body></html>
"""


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() else None


def _now_beijing() -> str:
    return datetime.now(UTC).astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def mount(app: web.Application, settings: Settings) -> PaySimulator:
    """Mount the simulator at /sandbox/pay/ (WECHATPAY_API_BASE = <server>/sandbox/pay/)."""
    sim = PaySimulator(
        settings.wechat_app_id, settings.wechatpay_mch_id, settings.wechatpay_api_key.get_secret_value()
    )
    app.add_subapp(MOUNT, sim.app)
    return sim
