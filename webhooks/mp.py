"""`/wechat/mp`: the Official Account callback. verify → decrypt → parse → dedupe → dispatch → respond."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot import keys
from webhooks.crypto import Forbidden, MpCrypto
from webhooks.fields import mp_event
from webhooks.guard import BadRequest, TooLarge, parse_xml, read_body
from webhooks.pipeline import NotTaken

log = logging.getLogger(__name__)

MP_CRYPTO = web.AppKey("mp_crypto", MpCrypto)


async def verify_url(request: web.Request) -> web.Response:
    """GET: WeChat checks the server URL by asking us to echo `echostr` back."""
    try:
        request.app[MP_CRYPTO].check(request.query)
    except Forbidden:
        return _refuse(request, 403, "bad signature")
    return web.Response(text=request.query.get("echostr", ""))


async def receive(request: web.Request) -> web.Response:
    """POST: one message or event; answers a passive reply or `success`, never a 5xx for our own faults."""
    started = time.perf_counter()
    crypto = request.app[MP_CRYPTO]
    try:
        crypto.check(request.query)
        body = await read_body(request)
        encrypted = crypto.encrypted(request.query)
        crypto.check_mode(encrypted)
        plain = crypto.open(request.query, parse_xml(body)) if encrypted else body
        event = mp_event(parse_xml(plain))
    except Forbidden as exc:
        return _refuse(request, 403, str(exc))
    except TooLarge:
        return _refuse(request, 413, "body too large")
    except BadRequest as exc:
        return _refuse(request, 400, f"unreadable message: {exc}")
    try:
        reply = await request.app[keys.PIPELINE].handle(event)
    except NotTaken as exc:
        # Not handled and not recorded: a non-200 makes WeChat send it again (within 15 s, 3 times).
        return _refuse(request, 503, f"not taken: {exc}")
    request.app[keys.METRICS].latency.observe(time.perf_counter() - started)
    if reply is None:
        return web.Response(text="success")
    if encrypted:
        reply = crypto.seal(reply, request.query["nonce"], request.query["timestamp"])
    return web.Response(text=reply, content_type="application/xml")


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning("mp callback refused", extra={"status": status, "reason": reason, "peer": request.remote})
    request.app[keys.METRICS].rejected.labels(str(status)).inc()
    return web.Response(status=status, text=reason if status != 403 else "forbidden")


def setup(app: web.Application, crypto: MpCrypto) -> None:
    app[MP_CRYPTO] = crypto
    app.router.add_get("/wechat/mp", verify_url)
    app.router.add_post("/wechat/mp", receive)
