"""/flash/subscribe: where WeChat redirects after the one-time subscription authorisation page
(一次性订阅消息), with the person's openid, action=confirm|cancel, template_id, scene and our reserved."""

from __future__ import annotations

import html

from aiohttp import web

from bot import keys
from flows import texts
from flows.flash import consent_sale
from store import flash
from store.models import utcnow


async def consent(request: web.Request) -> web.Response:
    """Record a 允许 once per consent; anything not signed by us for this openid changes nothing."""
    q = request.query
    settings = request.app[keys.SETTINGS]
    openid = q.get("openid", "")
    sale_id = consent_sale(settings, q.get("reserved", ""), openid) if openid else None
    if sale_id is None or q.get("template_id") != settings.wechat_subscribe_template_id:
        return _page(texts.FLASH_CONSENT_BAD, status=400)
    if q.get("action") != "confirm":
        return _page(texts.FLASH_CONSENT_DECLINED)
    async with request.app[keys.SESSIONMAKER].begin() as session:
        recorded = await flash.record_consent(session, sale_id=sale_id, openid=openid, now=utcnow())
    return _page(
        texts.FLASH_CONSENT_PAGE if recorded else texts.FLASH_CONSENT_BAD, status=200 if recorded else 400
    )


def _page(message: str, *, status: int = 200) -> web.Response:
    body = (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<body><h2>{html.escape(message)}</h2></body></html>"
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status)


def setup(app: web.Application) -> None:
    app.router.add_get("/flash/subscribe", consent)
