"""The WeCom work-group robot: markdown posts and pictures to the staff group (`webhook/send?key=…`)."""

from __future__ import annotations

import aiohttp

from bot.channels.mp import WeChatApiError
from settings import Settings
from store.outbox import Outgoing

NETWORK_ERROR = -2


class RobotClient:
    """Sends the outbox's 'robot' messages; errors are WeChatApiError, so the dispatcher retries them."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self._http = http
        self._url = f"{settings.wecom_api_base}webhook/send"
        self._key = settings.wecom_robot_key.get_secret_value()

    async def send(self, msg: Outgoing) -> None:
        p = msg.payload
        if msg.kind == "image":  # the robot takes a picture inline: base64 and its md5, at most 2 MB
            body = {"msgtype": "image", "image": {"base64": p["base64"], "md5": p["md5"]}}
        else:
            body = {"msgtype": "markdown", "markdown": {"content": p["content"]}}
        try:
            async with self._http.post(self._url, params={"key": self._key}, json=body) as resp:
                if resp.status != 200:
                    raise WeChatApiError(resp.status, f"robot webhook answered HTTP {resp.status}")
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeChatApiError(NETWORK_ERROR, f"robot webhook unreachable: {exc}") from exc
        if answer.get("errcode", 0) != 0:
            raise WeChatApiError(int(answer["errcode"]), str(answer.get("errmsg", "")))
