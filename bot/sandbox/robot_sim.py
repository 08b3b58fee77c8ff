"""A simulator of the WeCom group robot: what the bot posts to the staff group lands in the staff pane."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from aiohttp import web

from bot.sandbox.state import Sandbox

MOUNT = "/sandbox/wecom/"
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # the robot's limit for a picture


def robot_app(sandbox: Sandbox, key: str) -> web.Application:
    """POST /cgi-bin/webhook/send?key=… like qyapi.weixin.qq.com (errcode 93000 for a wrong key)."""

    async def send(request: web.Request) -> web.Response:
        if request.query.get("key") != key:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await request.json()
        if body.get("msgtype") == "image":
            return _image(sandbox, body.get("image") or {})
        if body.get("msgtype") != "markdown" or not body.get("markdown", {}).get("content"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        sandbox.add_staff_entry(
            "markdown", {"content": body["markdown"]["content"]}, userid="工作群机器人", via="robot"
        )
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/cgi-bin/webhook/send", send)
    return app


def _image(sandbox: Sandbox, image: dict[str, Any]) -> web.Response:
    """A picture as base64 with its md5, checked like the robot does; shown in the staff pane."""
    try:
        data = base64.b64decode(str(image.get("base64") or ""), validate=True)
    except binascii.Error:
        data = b""
    if not data or len(data) > MAX_IMAGE_BYTES:
        return web.json_response({"errcode": 40009, "errmsg": "invalid image size"})
    if hashlib.md5(data).hexdigest() != str(image.get("md5") or "").lower():
        return web.json_response({"errcode": 301019, "errmsg": "media md5 not match"})
    media_id = f"robot_{hashlib.md5(data).hexdigest()}"
    sandbox.sim.media[media_id] = ("image/png", data)
    sandbox.add_staff_entry("image", {"media_id": media_id}, userid="工作群机器人", via="robot")
    return web.json_response({"errcode": 0, "errmsg": "ok"})
