"""The JSAPI pay page: opened from the link in chat inside WeChat, it starts WeChat Pay for that order.

The link carries the out_trade_no of the payment shown in chat (random, so it names no one's order);
the page makes a JSAPI payment for the same order, bound to the customer's openid, so only they can pay;
a reload reuses it while WeChat Pay still honours its prepay_id.
"""

from __future__ import annotations

import html
import json
import logging

from aiohttp import web

from bot import keys
from bot.channels.pay import PayError
from flows import texts
from flows.format import yuan
from flows.payments import order_pay_request, pay_notify_url
from store import payments
from store.errors import DomainError
from store.models import Order, utcnow
from store.orders import OrderStatus

log = logging.getLogger(__name__)


async def pay_page(request: web.Request) -> web.Response:
    """GET /pay/page/{out_trade_no}: a page that calls WeixinJSBridge getBrandWCPayRequest."""
    pay, settings = request.app[keys.PAY], request.app[keys.SETTINGS]
    async with request.app[keys.SESSIONMAKER].begin() as session:
        shown = await payments.get_payment(session, out_trade_no=request.match_info["out_trade_no"])
        order = await session.get(Order, shown.order_id) if shown and shown.order_id else None
        if pay is None or shown is None or order is None:
            return _page(texts.PAY_PAGE_NOT_FOUND, status=404)
        if order.status != OrderStatus.PENDING_PAYMENT:
            return _page(texts.PAY_NOT_NEEDED.format(number=order.number, status=order.status))
    try:
        payment = await order_pay_request(
            request.app[keys.SESSIONMAKER],
            pay,
            order,
            trade_type="JSAPI",
            body=texts.PAY_BODY_ORDER.format(brand=settings.brand, number=order.number),
            notify_url=pay_notify_url(settings),
            now=utcnow(),
        )
    except DomainError:  # lapsed or paid meanwhile
        return _page(texts.PAY_PAGE_NOT_FOUND, status=404)
    except PayError:
        log.warning("JSAPI unified order failed", exc_info=True, extra={"order": order.number})
        return _page(texts.PAY_UNAVAILABLE.format(number=order.number), status=503)
    assert payment.prepay_id is not None  # order_pay_request returns a JSAPI payment with its prepay_id
    params = pay.jsapi_params(payment.prepay_id)
    title = texts.PAY_PAGE_TITLE.format(number=order.number, total=yuan(order.total_fen))
    return _page(title, script=_script(params))


def _script(params: dict[str, str]) -> str:
    """The button that hands `params` to WeChat's in-app pay sheet."""
    done, retry = json.dumps(texts.PAY_PAGE_DONE), json.dumps(texts.PAY_PAGE_OPEN_IN_WECHAT)
    return f"""<button id="pay">{html.escape(texts.PAY_PAGE_BUTTON)}</button><p id="note"></p>
<script>
const params = {json.dumps(params)};
function pay() {{
  WeixinJSBridge.invoke("getBrandWCPayRequest", params, (res) => {{
    document.getElementById("note").textContent =
      res.err_msg === "get_brand_wcpay_request:ok" ? {done} : {retry};
  }});
}}
document.getElementById("pay").onclick = () =>
  typeof WeixinJSBridge === "undefined"
    ? document.addEventListener("WeixinJSBridgeReady", pay, false) : pay();
</script>"""


def _page(message: str, *, script: str = "", status: int = 200) -> web.Response:
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(texts.PAY_PAGE_HEAD)}</title>"
        '<body style="font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em;text-align:center">'
        f"<h2>{html.escape(message)}</h2>{script}</body></html>"
    )
    return web.Response(text=body, content_type="text/html", status=status)


def setup(app: web.Application) -> None:
    app.router.add_get("/pay/page/{out_trade_no}", pay_page)
