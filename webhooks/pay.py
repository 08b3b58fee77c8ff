"""`/pay/wechat/notify` and `/pay/wechat/refund-notify`: WeChat Pay v2 notifications.

verify → parse → act → respond. WeChat Pay resends a notification for hours until it reads
return_code SUCCESS, so every notification we could read is acknowledged once `apply` has run
(idempotency and amount checks are the store's); only our own failure answers 500, to be resent.
"""

from __future__ import annotations

import collections
import logging
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from wechatpy.crypto import RefundCrypto, WeChatRefundCrypto

from bot import keys
from bot.channels.pay import verify_sign, with_ints
from settings import Settings
from webhooks.fields import pay_fields
from webhooks.guard import BadRequest, TooLarge, parse_xml, read_body

log = logging.getLogger(__name__)

Apply = Callable[[dict[str, Any]], Awaitable[str]]
OUTCOMES = {"credited", "duplicate", "unknown", "mismatch", "late", "unassigned"}
_XML = "text/xml"
_REASONS = {400: "bad request", 403: "forbidden", 413: "body too large"}


@dataclass(slots=True)
class PayHooks:
    """What the pay webhooks need: our ids, the key, and the store actions injected by the app."""

    app_id: str
    mch_id: str
    api_key: str
    apply: Apply
    apply_refund: Apply
    # notifications by outcome (credited, duplicate, …, refused_403): cheap to read in tests and logs
    counts: collections.Counter[str] = field(default_factory=collections.Counter)


PAY_HOOKS = web.AppKey("pay_hooks", PayHooks)


class Refused(Exception):
    """A notification we will not act on; args = (status, reason)."""


def answer(ok: bool, message: str = "OK", status: int = 200) -> web.Response:
    """The XML WeChat Pay reads: return_code SUCCESS stops its resends, FAIL asks for another."""
    code = "SUCCESS" if ok else "FAIL"
    text = (
        f"<xml><return_code><![CDATA[{code}]]></return_code>"
        f"<return_msg><![CDATA[{message}]]></return_msg></xml>"
    )
    return web.Response(status=status, text=text, content_type=_XML)


async def notify(request: web.Request) -> web.Response:
    """A payment result: credit it through `apply` and acknowledge, whatever the store decides."""
    hooks = request.app[PAY_HOOKS]
    try:
        fields = await _read(request)
        if fields.get("return_code") != "SUCCESS":
            # Per the spec such a notification carries no sign and nothing to act on.
            return _acknowledge(hooks, "return_fail", fields.get("return_msg"))
        _check_sign(hooks, fields)
        _check_ids(hooks, fields)
        if fields.get("result_code") != "SUCCESS":
            return _acknowledge(hooks, "result_fail", fields.get("err_code"))
        fields = _payment(fields)
    except Refused as exc:
        return _refuse(request, hooks, *exc.args)
    return await _act(hooks, hooks.apply, fields, "pay notification")


async def refund_notify(request: web.Request) -> web.Response:
    """A refund result: decrypt req_info (AES-256-ECB, md5 of the key) and pass it to `apply_refund`."""
    hooks = request.app[PAY_HOOKS]
    try:
        fields = await _read(request)
        if fields.get("return_code") != "SUCCESS":
            return _acknowledge(hooks, "return_fail", fields.get("return_msg"))
        _check_ids(hooks, fields)
        fields = _decrypt_refund(hooks, fields)
    except Refused as exc:
        return _refuse(request, hooks, *exc.args)
    return await _act(hooks, hooks.apply_refund, fields, "refund notification")


async def _read(request: web.Request) -> dict[str, Any]:
    try:
        return pay_fields(parse_xml(await read_body(request)))
    except TooLarge:
        raise Refused(413, "body too large") from None
    except BadRequest as exc:
        raise Refused(400, f"unreadable notification: {exc}") from None


def _check_sign(hooks: PayHooks, fields: dict[str, Any]) -> None:
    if not verify_sign(fields, hooks.api_key):
        raise Refused(403, "missing or wrong sign")


def _check_ids(hooks: PayHooks, fields: dict[str, Any]) -> None:
    # A valid sign under our key but another appid/mch_id is a notification meant for someone else.
    if fields.get("appid") != hooks.app_id or fields.get("mch_id") != hooks.mch_id:
        raise Refused(403, "notification for another appid or mch_id")


def _payment(fields: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("out_trade_no", "transaction_id", "total_fee") if not fields.get(k)]
    if missing:
        raise Refused(400, f"notification without {', '.join(missing)}")
    try:
        return with_ints(fields)
    except ValueError as exc:
        raise Refused(400, str(exc)) from None


def _decrypt_refund(hooks: PayHooks, fields: dict[str, Any]) -> dict[str, Any]:
    """The req_info plaintext as a dict; anything that does not decrypt under our key is forged."""
    if not isinstance(fields.get("req_info"), str):
        raise Refused(403, "refund notification without req_info")
    # AES-256-ECB under md5(api key), as wechatpy's WeChatRefundCrypto; parsed by our hardened parser.
    crypto = RefundCrypto(WeChatRefundCrypto(hooks.api_key).key)
    try:
        plain = crypto.decrypt(fields["req_info"])
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, struct.error) as exc:
        # wrong key, broken base64, bad padding
        raise Refused(403, f"req_info does not decrypt: {exc.__class__.__name__}") from None
    try:
        refund = with_ints(pay_fields(parse_xml(plain, root="root")))
    except (BadRequest, ValueError):
        raise Refused(403, "req_info does not decrypt to a refund") from None
    refund = {k: v for k, v in refund.items() if v is not None}  # an empty element says nothing
    if not refund.get("out_refund_no") or not isinstance(refund.get("refund_fee"), int):
        raise Refused(403, "req_info without out_refund_no or refund_fee")
    return refund


async def _act(hooks: PayHooks, action: Apply, fields: dict[str, Any], what: str) -> web.Response:
    try:
        outcome = await action(fields)
    except Exception:
        # Nothing accepted is lost: FAIL makes WeChat Pay send this notification again.
        log.exception("%s could not be applied", what, extra={"out_trade_no": fields.get("out_trade_no")})
        hooks.counts["error"] += 1
        return answer(False, "internal error", status=500)
    hooks.counts[outcome] += 1
    level = logging.INFO if outcome in ("credited", "duplicate") else logging.WARNING
    log.log(level, "%s: %s", what, outcome, extra={"out_trade_no": fields.get("out_trade_no")})
    return answer(True)


def _acknowledge(hooks: PayHooks, outcome: str, detail: object) -> web.Response:
    hooks.counts[outcome] += 1
    log.info("pay notification acknowledged without effect: %s (%s)", outcome, detail)
    return answer(True)


def _refuse(request: web.Request, hooks: PayHooks, status: int, reason: str) -> web.Response:
    log.warning(
        "pay notification refused", extra={"status": status, "reason": reason, "peer": request.remote}
    )
    hooks.counts[f"refused_{status}"] += 1
    if (metrics := request.app.get(keys.METRICS)) is not None:
        metrics.rejected.labels(str(status)).inc()
    return answer(False, _REASONS.get(status, "refused"), status=status)


def setup(app: web.Application, *, apply: Apply, apply_refund: Apply, settings: Settings) -> None:
    """Mount both notification URLs; `apply`/`apply_refund` run the store actions in a transaction."""
    app[PAY_HOOKS] = PayHooks(
        app_id=settings.wechat_app_id,
        mch_id=settings.wechatpay_mch_id,
        api_key=settings.wechatpay_api_key.get_secret_value(),
        apply=apply,
        apply_refund=apply_refund,
    )
    app.router.add_post("/pay/wechat/notify", notify)
    app.router.add_post("/pay/wechat/refund-notify", refund_notify)
