"""`GET /files/materials/{id}?exp=…&sig=…`: a customer's stored image, for staff who open a signed link.

The link is signed with a key derived from the app secrets (flows.relay.material_link) and expires
after 7 days; anything else is 403, so material ids cannot be walked.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot import keys
from flows.relay import link_is_valid
from store.models import Material, utcnow

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


def setup(app: web.Application) -> None:
    app.router.add_get(r"/files/materials/{id:\d+}", material)
