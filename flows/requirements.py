"""What an order form can ask for: one pure parser per requirement key, with its prompt and example.

Keys are declared by packages in the catalog (store.catalog.REQUIREMENT_KEYS); every key has a Step here.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flows import texts
from flows.format import day_time
from flows.when import BEIJING, find_when  # BEIJING: handlers import it from here too

MAX_IMAGES = 9


class InvalidInput(Exception):
    """The answer can't be used; `text` says why and what to send instead."""

    def __init__(self, text: str, **values: Any) -> None:
        super().__init__(text)
        self.text = text
        self.values = values


class NeedsConfirmation(Exception):
    """The answer is usable but a part was assumed: `question` asks the person before `value` is kept."""

    def __init__(self, value: Any, question: str) -> None:
        super().__init__(question)
        self.value = value
        self.question = question


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    label: str  # short name in the summary (推广链接)
    prompt: str
    example: str | Callable[[dt.datetime], str]  # computed from now where it holds a date
    parse: Callable[[str, dt.datetime], Any]  # (text, now) -> value; raises InvalidInput / NeedsConfirmation
    images: bool = False  # answered by sending pictures, finished with 好了
    optional: bool = False

    def example_at(self, now: dt.datetime) -> str:
        return self.example(now) if callable(self.example) else self.example


def _text(lo: int, hi: int) -> Callable[[str, dt.datetime], str]:
    def parse(text: str, _now: dt.datetime) -> str:
        value = text.strip()
        if not lo <= len(value) <= hi:
            raise InvalidInput(texts.ANSWER_LENGTH, lo=lo, hi=hi, got=len(value))
        return value

    return parse


# A question typed where a name is expected (退款怎么退？ 可以开发票吗): answered elsewhere, never kept.
_QUESTION = re.compile(
    r"[?？]|怎么|怎样|咋|如何|为什么|为啥|多少|多久|多长时间|啥时候|能不能|可不可以|可以吗|是不是|有没有|什么时候|什么意思|啥意思|是什么|什么是|哪里|哪儿|请问|[吗呢么]$"
)


# 品牌：…, 我们品牌叫…, 店名是…: the words around the name, not the name
_BRAND_LEAD = re.compile(
    r"^(?:我们|我家|我们家)?的?(?:品牌|店铺|店|牌子)(?:名称|名字|名)?\s*(?:是|叫|为|[:：])\s*|^(?:我们|我家)?叫\s*"
)


def parse_brand(text: str, now: dt.datetime) -> str:
    """A brand or shop name: 1–30 characters with at least one letter, not a question, not a link."""
    value = _text(1, 30)(_BRAND_LEAD.sub("", text.strip()).strip("。. "), now)
    if _URL.search(value):
        raise InvalidInput(texts.BRAND_LOOKS_LIKE_LINK, example=texts.EXAMPLE_BRAND)
    if not any(unicodedata.category(c).startswith("L") for c in value):  # ？？？, 😀, 123
        raise InvalidInput(texts.BRAND_NO_LETTERS, example=texts.EXAMPLE_BRAND)
    if _QUESTION.search(value) or _QUESTION.search(text.strip()):
        raise InvalidInput(texts.BRAND_LOOKS_LIKE_QUESTION, said=value, example=texts.EXAMPLE_BRAND)
    return value


# Only the characters a URL is made of: a share text's Chinese words and brackets end it.
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.IGNORECASE)
# Links pasted without the scheme (v.douyin.com/…, shop.example.com/a): a host with a common top-level
# domain and a path; bounded repetitions keep a long run of letters and dashes linear.
_BARE_URL = re.compile(
    r"(?<![A-Za-z0-9.@/-])(?:[a-z0-9-]{1,63}\.){1,4}(?:com|cn|net|org|tv|me|io|co|cc|top|xyz|shop|vip|link|app)"
    r"/[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?'\"*"
_CLOSING = {")": "(", "]": "["}


def parse_link(text: str, _now: dt.datetime) -> str:
    """The link in the answer, also out of a platform's share text (抖音, 小红书, 淘宝 …)."""
    plain = unicodedata.normalize("NFKC", text)  # ｈｔｔｐｓ：／／ and a full-width comma after the link
    found = [m.group(0) for m in _URL.finditer(plain)]
    found += ["https://" + m.group(0) for m in _BARE_URL.finditer(plain)]
    for url in found:
        url = _trim(url)
        host = url.split("//", 1)[1].split("/", 1)[0].split("?", 1)[0]
        if len(url) <= 500 and re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?::\d+)?", host):
            return url
    raise InvalidInput(texts.LINK_INVALID)


def _trim(url: str) -> str:
    """Without the punctuation that ends a sentence, nor a bracket closing one opened before the link."""
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSING and url.count(last) > url.count(_CLOSING[last])):
            url = url[:-1]
        else:
            return url
    return url


_ASAP = re.compile(r"尽快|尽早|越快越好|越早越好|马上|立刻|随时|都可以|都行|无所谓|不限")
_DATEISH = re.compile(r"[月号]|\d\s*[/.-]\s*\d")
DEFAULT_PUBLISH_HOUR = 19  # a day without a clock: the evening, when most posts go out; confirmed back
MIN_LEAD = dt.timedelta(hours=24)
MAX_LEAD = dt.timedelta(days=180)


def parse_publish_time(text: str, now: dt.datetime) -> str:
    """A natural time (下周五晚上7点, 12月20号晚上, 20号) → ISO time in Beijing, 24 h to 180 days ahead.

    Raises NeedsConfirmation when a part was assumed (晚上 → 19:00, 20号 → which month, no clock at all):
    the form asks back with the weekday before keeping it.
    """
    when = find_when(text, now)
    example = example_publish_time(now)
    if when is None and _ASAP.search(text):
        earliest = _earliest_publish_time(now)
        raise NeedsConfirmation(
            earliest.isoformat(timespec="minutes"), texts.TIME_ASAP.format(when=day_time(earliest))
        )
    if when is None or (not when.has_date and _DATEISH.search(text)):  # 2月30日: a day that is not
        raise InvalidInput(texts.TIME_INVALID, example=example)
    if not when.has_date:
        raise InvalidInput(texts.TIME_NEEDS_DATE, clock=f"{when.at:%H:%M}", example=example)
    at = when.at if when.has_time else when.at.replace(hour=DEFAULT_PUBLISH_HOUR)
    local_now = now.astimezone(BEIJING)
    if (at if when.has_time else at.date()) < (local_now if when.has_time else local_now.date()):
        raise InvalidInput(texts.TIME_PAST, when=day_time(at, clock=when.has_time), example=example)
    if at < local_now + MIN_LEAD:
        raise InvalidInput(texts.TIME_TOO_SOON, earliest=day_time(local_now + MIN_LEAD), example=example)
    if at > local_now + MAX_LEAD:
        raise InvalidInput(texts.TIME_TOO_FAR, latest=day_time(local_now + MAX_LEAD, clock=False))
    value = at.isoformat(timespec="minutes")
    if when.ambiguous or not when.has_time:
        assumed = "" if when.has_time else texts.TIME_ASSUMED_CLOCK.format(clock=f"{at:%H:%M}")
        raise NeedsConfirmation(value, texts.TIME_CONFIRM.format(when=day_time(at), assumed=assumed))
    return value


def _earliest_publish_time(now: dt.datetime) -> dt.datetime:
    """The first evening at least 24 hours ahead: what 尽快 means for a post."""
    earliest = now.astimezone(BEIJING) + MIN_LEAD
    evening = earliest.replace(hour=DEFAULT_PUBLISH_HOUR, minute=0, second=0, microsecond=0)
    return evening if evening >= earliest else evening + dt.timedelta(days=1)


def example_publish_time(now: dt.datetime) -> str:
    """Three days from now at 19:00, with the weekday: always accepted if sent back as it is."""
    day = now.astimezone(BEIJING) + dt.timedelta(days=3)
    return day_time(day.replace(hour=DEFAULT_PUBLISH_HOUR, minute=0))


_MENTION_LEAD = re.compile(
    r"^(?![@＠])[^:：]{0,12}?(?:账号|帐号|艾特|[@＠])[^:：]{0,6}[:：]"
)  # 需要@的账号：…
_MENTION_SPLIT = re.compile(r"[\s,，、;；/|]+|(?=[@＠])")
_CONNECTOR = re.compile(r"(?:以及|还有|和|跟|及|与)(?=\s*[@＠])|^(?:以及|还有|和|跟|及|与)$")
# a sentence or a "nobody" where account names are asked for (the step is required by the package)
_NOT_A_NAME = re.compile(r"[?？!！]|怎么|什么|如何|不知道|需要|随便|^(?:不用|没有|无|不@|都不)|[吗呢吧]$")


def parse_mentions(text: str, _now: dt.datetime) -> list[str]:
    """'@小鹿 @阿杰', '小鹿、阿杰', '＠小鹿＠阿杰' → ['@小鹿', '@阿杰'] (1 to 10 accounts)."""
    names = []
    text = _MENTION_LEAD.sub("", text.strip())
    for part in _MENTION_SPLIT.split(_CONNECTOR.sub(" ", text)):
        name = part.strip().lstrip("@＠").strip(" :：。.")
        if not name or _CONNECTOR.fullmatch(name):
            continue
        marked = part.strip()[:1] in "@＠"
        # an @ makes a name of anything short; without one, a long phrase is a sentence, not an account
        if _NOT_A_NAME.search(name) or len(name) > (30 if marked else 15):
            raise InvalidInput(texts.MENTIONS_NOT_A_NAME, name=name[:20])
        names.append(name)
    if not 1 <= len(names) <= 10:
        raise InvalidInput(texts.MENTIONS_INVALID)
    return [f"@{n}" for n in dict.fromkeys(names)]


_MOBILE = re.compile(r"(?<!\d)(?:\(?(?:\+|00)?86\)?[\s-]*)?(1[3-9]\d(?:[\s-]*\d){8})(?![\d-])")
# 010 / 02x take 8 digits; other area codes (0xxx) 7 or 8; an extension after 转 / - is dropped
_LANDLINE = re.compile(
    r"(?<!\d)\(?(0(?:10|2\d|[3-9]\d{2}))\)?[\s-]*(\d{7,8})(?:\s*(?:转|-)\s*\d{1,5})?(?!\d)"
)


def _landline(area: str, number: str) -> bool:
    return len(number) == 8 if len(area) == 3 else len(number) in (7, 8)


_CONTACT_LABELS = re.compile(
    r"联系人|姓名|名字|手机号码?|电话号码?|联系方式|手机|电话|座机|tel|phone|[:：,，;；/()（）]", re.I
)


def parse_contact(text: str, _now: dt.datetime) -> dict[str, str]:
    """'王芳 +86 138-0013-8000' or '王芳 021-62345678' → name and phone (mobile digits, or area-number)."""
    plain = unicodedata.normalize("NFKC", text)
    if match := _MOBILE.search(plain):
        phone = re.sub(r"\D", "", match.group(1))
    elif (match := _LANDLINE.search(plain)) and _landline(match.group(1), match.group(2)):
        phone = f"{match.group(1)}-{match.group(2)}"
    else:  # digits that make no number get the rules; no digits at all, what to send
        raise InvalidInput(texts.CONTACT_NO_PHONE if re.search(r"\d", plain) else texts.CONTACT_INVALID)
    name = " ".join(_CONTACT_LABELS.sub(" ", plain[: match.start()] + " " + plain[match.end() :]).split())
    if not name or not any(unicodedata.category(c).startswith("L") for c in name):
        raise InvalidInput(texts.CONTACT_NO_NAME, phone=phone)
    if len(name) > 20:
        raise InvalidInput(texts.CONTACT_INVALID)
    return {"name": name, "phone": phone}


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
        Step("brand", "品牌", texts.ASK_BRAND, texts.EXAMPLE_BRAND, parse_brand),
        Step("link", "推广链接", texts.ASK_LINK, texts.EXAMPLE_LINK, parse_link),
        Step(
            "selling_points",
            "核心卖点",
            texts.ASK_SELLING_POINTS,
            texts.EXAMPLE_SELLING_POINTS,
            _text(4, 300),
        ),
        Step("copy", "文案要点", texts.ASK_COPY, texts.EXAMPLE_COPY, _text(4, 1000)),
        Step("publish_time", "发布时间", texts.ASK_PUBLISH_TIME, example_publish_time, parse_publish_time),
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
        return day_time(dt.datetime.fromisoformat(value))
    if key == "ref_images":
        return f"{len(value)} 张"
    if key == "mentions":
        return " ".join(value)
    if key == "contact":
        return f"{value['name']} {value['phone'][:3]}****{value['phone'][-4:]}"
    return str(value) if value else "无"
