"""A simulator of the WeCom group robot: what the bot posts to the staff group lands in the staff pane."""

from __future__ import annotations

from aiohttp import web

from bot.sandbox.state import Sandbox

MOUNT = "/sandbox/wecom/"


def robot_app(sandbox: Sandbox, key: str) -> web.Application:
    """POST /cgi-bin/webhook/send?key=… like qyapi.weixin.qq.com (errcode 93000 for a wrong key)."""

    async def send(request: web.Request) -> web.Response:
        if request.query.get("key") != key:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        body = await request.json()
        if body.get("msgtype") != "markdown" or not body.get("markdown", {}).get("content"):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        sandbox.add_staff_entry(
            "markdown", {"content": body["markdown"]["content"]}, userid="工作群机器人", via="robot"
        )
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/cgi-bin/webhook/send", send)
    return app
