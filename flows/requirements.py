"""What an order form can ask for: one pure parser per requirement key, with its prompt and example.

Keys are declared by packages in the catalog (store.catalog.REQUIREMENT_KEYS); every key has a Step here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flows import texts

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
MAX_IMAGES = 9


class InvalidInput(Exception):
    """The answer can't be used; `text` says why and what to send instead."""

    def __init__(self, text: str, **values: Any) -> None:
        super().__init__(text)
        self.text = text
        self.values = values


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str  # short name in the summary (推广链接)
    prompt: str
    example: str
    parse: Callable[[str, dt.datetime], Any]  # (text, now) -> value; raises InvalidInput
    images: bool = False  # answered by sending pictures, finished with 好了
    optional: bool = False


def _text(lo: int, hi: int) -> Callable[[str, dt.datetime], str]:
    def parse(text: str, _now: dt.datetime) -> str:
        value = text.strip()
        if not lo <= len(value) <= hi:
            raise InvalidInput(texts.ANSWER_LENGTH, lo=lo, hi=hi, got=len(value))
        return value

    return parse


_URL = re.compile(r"https?://[^\s，。；、]+", re.IGNORECASE)


def parse_link(text: str, _now: dt.datetime) -> str:
    """The first http(s) link in the answer (people often paste it with a few words around it)."""
    match = _URL.search(text)
    if not match or len(match.group(0)) > 500 or "." not in match.group(0).split("//", 1)[1]:
        raise InvalidInput(texts.LINK_INVALID)
    return match.group(0)


_CN_DATE = re.compile(r"(?:(\d{4})\s*[年/-]\s*)?(\d{1,2})\s*[月/-]\s*(\d{1,2})\s*[日号]?")
_REL_DATE = {"今天": 0, "明天": 1, "后天": 2}
_TIME = re.compile(r"(上午|下午|晚上|中午)?\s*(\d{1,2})\s*(?:[:：点])\s*(\d{1,2}|半)?\s*分?")


def parse_publish_time(text: str, now: dt.datetime) -> str:
    """'11月28日 19:00', '2026-11-28 19:00', '明天 晚上8点' → ISO time in Beijing; at least 24 h ahead."""
    local_now = now.astimezone(BEIJING)
    day = _parse_day(text, local_now)
    hour, minute = _parse_clock(text)
    when = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=BEIJING)
    if when < local_now + dt.timedelta(hours=24):
        raise InvalidInput(texts.TIME_TOO_SOON)
    if when > local_now + dt.timedelta(days=180):
        raise InvalidInput(texts.TIME_TOO_FAR)
    return when.isoformat(timespec="minutes")


def _parse_day(text: str, now: dt.datetime) -> dt.date:
    for word, offset in _REL_DATE.items():
        if word in text:
            return now.date() + dt.timedelta(days=offset)
    match = _CN_DATE.search(text)
    if not match:
        raise InvalidInput(texts.TIME_INVALID)
    year = int(match.group(1)) if match.group(1) else now.year
    try:
        day = dt.date(year, int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise InvalidInput(texts.TIME_INVALID) from None
    if not match.group(1) and day < now.date():
        day = day.replace(year=year + 1)  # "1月5日" said in December means next January
    return day


def _parse_clock(text: str) -> tuple[int, int]:
    rest = _CN_DATE.sub(" ", text)
    match = _TIME.search(rest)
    if not match:
        raise InvalidInput(texts.TIME_NEEDS_CLOCK)
    hour = int(match.group(2))
    minute = 30 if match.group(3) == "半" else int(match.group(3) or 0)
    if match.group(1) in ("下午", "晚上") and hour < 12:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise InvalidInput(texts.TIME_INVALID)
    return hour, minute


_SPLIT = re.compile(r"[\s,，、;；]+")


def parse_mentions(text: str, _now: dt.datetime) -> list[str]:
    """'@小鹿 @阿杰' or '小鹿，阿杰' → ['@小鹿', '@阿杰'] (1 to 10 accounts)."""
    names = [n.lstrip("@＠") for n in _SPLIT.split(text.strip()) if n.strip("@＠")]
    if not 1 <= len(names) <= 10 or any(len(n) > 30 for n in names):
        raise InvalidInput(texts.MENTIONS_INVALID)
    return [f"@{n}" for n in dict.fromkeys(names)]


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")


def parse_contact(text: str, _now: dt.datetime) -> dict[str, str]:
    """'王芳 13800138000' → name and mainland mobile number."""
    compact = re.sub(r"(?<=\d)[-\s](?=\d)", "", text)  # 138-0013-8000, 138 0013 8000
    match = _PHONE.search(compact)
    name = _PHONE.sub("", compact).strip(" ，,：:")
    if not match or not 1 <= len(name) <= 20:
        raise InvalidInput(texts.CONTACT_INVALID)
    return {"name": name, "phone": match.group(1)}


_NONE = {"无", "没有", "跳过", "不用", "没", "none", "no"}


def parse_notes(text: str, _now: dt.datetime) -> str:
    value = text.strip()
    if value.lower() in _NONE:
        return ""
    if len(value) > 500:
        raise InvalidInput(texts.ANSWER_LENGTH, lo=0, hi=500, got=len(value))
    return value


def _images(_text: str, _now: dt.datetime) -> list[int]:
    raise InvalidInput(texts.IMAGES_EXPECTED)


STEPS: dict[str, Step] = {
    s.key: s
    for s in (
        Step("brand", "品牌", texts.ASK_BRAND, texts.EXAMPLE_BRAND, _text(1, 30)),
        Step("link", "推广链接", texts.ASK_LINK, texts.EXAMPLE_LINK, parse_link),
        Step(
            "selling_points",
            "核心卖点",
            texts.ASK_SELLING_POINTS,
            texts.EXAMPLE_SELLING_POINTS,
            _text(4, 300),
        ),
        Step("copy", "文案要点", texts.ASK_COPY, texts.EXAMPLE_COPY, _text(4, 1000)),
        Step(
            "publish_time", "发布时间", texts.ASK_PUBLISH_TIME, texts.EXAMPLE_PUBLISH_TIME, parse_publish_time
        ),
        Step("mentions", "需 @ 的账号", texts.ASK_MENTIONS, texts.EXAMPLE_MENTIONS, parse_mentions),
        Step("ref_images", "参考图片", texts.ASK_IMAGES, texts.EXAMPLE_IMAGES, _images, images=True),
        Step("audience", "目标人群", texts.ASK_AUDIENCE, texts.EXAMPLE_AUDIENCE, _text(2, 200)),
        Step("contact", "联系人", texts.ASK_CONTACT, texts.EXAMPLE_CONTACT, parse_contact),
        Step("notes", "其他要求", texts.ASK_NOTES, texts.EXAMPLE_NOTES, parse_notes, optional=True),
    )
}


def show(key: str, value: Any) -> str:
    """An answer as the summary shows it."""
    if key == "publish_time":
        when = dt.datetime.fromisoformat(value)
        return f"{when.month}月{when.day}日 {when:%H:%M}"
    if key == "ref_images":
        return f"{len(value)} 张"
    if key == "mentions":
        return " ".join(value)
    if key == "contact":
        return f"{value['name']} {value['phone'][:3]}****{value['phone'][-4:]}"
    return str(value) if value else "无"
