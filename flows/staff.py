"""Alerts to the staff work group (the WeCom group robot), written with the change that caused them."""

from __future__ import annotations

from settings import Settings
from store.outbox import Outgoing


def staff_alert(settings: Settings, content: str, *, key: str) -> list[Outgoing]:
    """A markdown post to the staff group; nothing where no group robot is configured."""
    if not settings.wecom_robot_key.get_secret_value():
        return []
    return [Outgoing("robot", "group", "markdown", {"content": content}, dedupe_key=f"staff:{key}")]
