"""How numbers look to people: money, follower counts, rates, progress."""

from __future__ import annotations

import datetime as dt

from flows.when import BEIJING

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"


def yuan(fen: int) -> str:
    """12345600 → '¥123,456'; 1234 → '¥12.34' (integer arithmetic only)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}" + (f".{cents:02d}" if cents else "")


def count(n: int | None) -> str:
    """52000 → '5.2万'; 1500000 → '150万'; 9800 → '9,800'."""
    if n is None:
        return "—"
    if n >= 100_000_000:
        return f"{n / 100_000_000:.1f}".rstrip("0").rstrip(".") + "亿"
    if n >= 10_000:
        return f"{n / 10_000:.1f}".rstrip("0").rstrip(".") + "万"
    return f"{n:,}"


def rate(bp: int | None) -> str:
    """810 basis points → '8.1%'."""
    if bp is None:
        return "—"
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac // 10}%" if frac // 10 else f"{whole}%"


def circled(position: int) -> str:
    return CIRCLED[position - 1] if 1 <= position <= len(CIRCLED) else f"({position})"


def bar(done: int, total: int) -> str:
    """3 of 5 → '▓▓▓░░'."""
    return "▓" * done + "░" * (total - done)


WEEKDAYS = "一二三四五六日"


def day_time(at: dt.datetime, *, clock: bool = True) -> str:
    """A Beijing time as people read it: '12月18日（周五）19:00' (or without the clock)."""
    local = at.astimezone(BEIJING)
    day = f"{local.month}月{local.day}日（周{WEEKDAYS[local.weekday()]}）"
    return f"{day}{local:%H:%M}" if clock else day
