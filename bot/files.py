"""Signed downloads. `GET /files/materials/{id}?exp=…&sig=…`: a customer's stored image, for staff
(flows.relay.material_link, 7 days). `GET /files/mydata/{id}?exp=…&sig=…`: everything held about a
person as JSON, for that person (我的数据, flows.privacy.export_link, 24 hours).
`GET /files/exports/{scope}.xlsx?exp=…&sig=…`: an Excel export of results or a month's accounts, and
`GET /files/board/board.png?exp=…&sig=…`: the operators' board (flows.exports.link, 24 hours).

All are signed with keys derived from the app secrets; anything else is 403, so ids cannot be walked.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from bot import keys
from flows import board, exports
from flows.privacy import export_link_is_valid
from flows.relay import link_is_valid
from store import privacy
from store.models import Material, User, utcnow

log = logging.getLogger(__name__)


async def material(request: web.Request) -> web.Response:
    """The image bytes with their (sniffed) content type, or 403 for a wrong or expired signature."""
    material_id = int(request.match_info["id"])
    query = request.query
    if not link_is_valid(
        request.app[keys.SETTINGS], material_id, query.get("exp", ""), query.get("sig", ""), utcnow()
    ):
        log.warning("material link refused", extra={"material_id": material_id, "peer": request.remote})
        return web.Response(status=403, text="forbidden")
    async with request.app[keys.SESSIONMAKER]() as session:
        found = await session.get(Material, material_id)
    if found is None:
        return web.Response(status=404, text="not found")
    return web.Response(
        body=found.data,
        content_type=found.content_type,
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
        },
    )


async def my_data(request: web.Request) -> web.Response:
    """The person's data as a JSON attachment, or 403 for a wrong or expired signature."""
    query = request.query
    async with request.app[keys.SESSIONMAKER]() as session:
        user = await session.get(User, int(request.match_info["id"]))
        valid = user is not None and export_link_is_valid(
            request.app[keys.SETTINGS], user, query.get("exp", ""), query.get("sig", ""), utcnow()
        )
        if user is None or not valid:
            log.warning("personal data link refused", extra={"peer": request.remote})
            return web.Response(status=403, text="forbidden")
        document = await privacy.export(session, account=user.account, openid=user.openid)
    return web.Response(
        body=json.dumps(document, ensure_ascii=False, indent=1, default=str).encode(),
        content_type="application/json",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": 'attachment; filename="my-data.json"',
        },
    )


async def export(request: web.Request) -> web.Response:
    """An Excel workbook built now for the signed scope (an order, a customer's orders, a month)."""
    scope, query = request.match_info["scope"], request.query
    settings = request.app[keys.SETTINGS]
    if not exports.link_is_valid(settings, scope, query.get("exp", ""), query.get("sig", ""), utcnow()):
        log.warning("export link refused", extra={"scope": scope, "peer": request.remote})
        return web.Response(status=403, text="forbidden")
    async with request.app[keys.SESSIONMAKER]() as session:
        if scope.startswith("m"):
            rows = await exports.month_rows(session, scope[1:])
            body = await asyncio.to_thread(exports.month_workbook, rows)
        else:
            sheets = await exports.scope_sheets(session, scope)
            if sheets is None:
                return web.Response(status=404, text="not found")
            body = await asyncio.to_thread(exports.customer_workbook, sheets)
    return web.Response(
        body=body,
        content_type=exports.XLSX,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="chatorder-{scope}.xlsx"',
        },
    )


async def board_picture(request: web.Request) -> web.Response:
    """The operators' board (flows.board) drawn now, for staff who open the link 看板 gave them."""
    settings, query = request.app[keys.SETTINGS], request.query
    if not exports.link_is_valid(settings, "board", query.get("exp", ""), query.get("sig", ""), utcnow()):
        log.warning("board link refused", extra={"peer": request.remote})
        return web.Response(status=403, text="forbidden")
    async with request.app[keys.SESSIONMAKER]() as session:
        figures = await board.gather(session, utcnow())
    png = await asyncio.to_thread(board.picture, figures, settings.font_path)
    return web.Response(
        body=png,
        content_type="image/png",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


def setup(app: web.Application) -> None:
    app.router.add_get(r"/files/materials/{id:\d+}", material)
    app.router.add_get(r"/files/mydata/{id:\d+}", my_data)
    app.router.add_get(r"/files/exports/{scope:[a-z0-9-]+}.xlsx", export)
    app.router.add_get("/files/board/board.png", board_picture)
