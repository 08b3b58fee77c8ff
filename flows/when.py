"""The date and time a Chinese message talks about, relative to now, in Beijing time.

`find_when("下周五晚上7点", now)` → When(at=<that Friday 19:00 +08:00>, has_date=True, has_time=True,
ambiguous=False, span=(0, 7)). Pure, no I/O, a few regex scans per message.

Why a small grammar of our own (measured 2026-12, on this machine): dateparser 1.5 returns None for
明天下午三点, 下周五晚上7点, 12月20号晚上, 20号 and 今晚8点. jionlp 1.5 reads all of them, but only when the
text is nothing but the time expression (finding it inside a message needs its slower NER), takes
0.75 s to import, adds ~50 MB RSS and ~0.27 ms a call, and does not say what it assumed (20号 comes back
as "accurate"). Here a message is scanned in tens of microseconds. Chinese numerals (三, 十二, 二十, 两)
are the solved part and go to `cn2an`.

Reading rules (what is assumed sets `ambiguous`):
- days: 今天/明天/后天/大后天, 今晚/明早…, N天后, 周五 (the coming one, today included: ambiguous),
  这周五 (this Mon–Sun week, may be past), 下周五, 下下周五, 上周五, 周末 (Saturday, ambiguous),
  12月20号 / 2026-12-20 / 12/20 / 12.20 (no year: the year nearest today, so 12月1日 said on 12月7日 is
  in the past), 20号 (the coming 20th: ambiguous), 下个月3号, 元旦/国庆/圣诞/双十一… (next occurrence;
  lunar festivals such as 春节 are not read);
- times: 19:30, 7点, 7点半, 三点一刻, 7点05分, 7pm, with or without 凌晨/早上/上午/中午/下午/傍晚/晚上/夜里;
  a period alone (晚上 → 19:00) or an hour without one (三点 → 15:00, 八点 → 08:00) is ambiguous;
  晚上12点 and 晚上1点 are after midnight, the next day;
- a time without a day is the next time it comes (today or tomorrow), ambiguous;
- a day without a time has `has_time=False` and `at` at 00:00.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Iterable

import cn2an

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


@dataclasses.dataclass(frozen=True)
class When:
    at: dt.datetime  # aware, Beijing time
    has_date: bool
    has_time: bool
    ambiguous: bool  # a part was assumed: 晚上 → 19:00, 20号 → which month, 周五 → which week
    span: tuple[int, int]  # where in the text: text[span[0]:span[1]]


# Full-width digits and separators, one character for one so that spans stay true to the text.
_WIDTH = str.maketrans("０１２３４５６７８９：／．－　", "0123456789:/.- ")

_CN = "零〇一二两三四五六七八九十"
_NUM = rf"(?:\d{{1,2}}|[{_CN}]{{1,3}})"
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS.update({str(i + 1): i for i in range(7)})

# Default hours for a period said without a clock, and the period each 今晚/明早 word carries.
_PERIOD_HOUR = {
    "凌晨": 0,
    "半夜": 0,
    "清晨": 7,
    "早晨": 8,
    "早上": 8,
    "一早": 8,
    "早": 8,
    "上午": 10,
    "中午": 12,
    "午后": 14,
    "下午": 15,
    "傍晚": 18,
    "晚上": 19,
    "晚间": 19,
    "晚": 19,
    "夜里": 22,
    "夜间": 22,
    "深夜": 23,
}
_PM = {"午后", "下午", "傍晚", "晚上", "晚间", "晚", "夜里", "夜间", "深夜"}
_NIGHT = {"晚上", "晚间", "晚", "夜里", "夜间", "深夜", "半夜"}  # 晚上1点 is after midnight
_PERIODS = "|".join(sorted((p for p in _PERIOD_HOUR if len(p) > 1), key=len, reverse=True))

_RELATIVE_DAYS = {
    "大大后天": (4, None),
    "大后天": (3, None),
    "后天": (2, None),
    "明天": (1, None),
    "明日": (1, None),
    "明儿": (1, None),
    "明早": (1, "早上"),
    "明晨": (1, "早上"),
    "明晚": (1, "晚上"),
    "明夜": (1, "晚上"),
    "今天": (0, None),
    "今日": (0, None),
    "今儿": (0, None),
    "今早": (0, "早上"),
    "今晨": (0, "早上"),
    "今晚": (0, "晚上"),
    "今夜": (0, "晚上"),
    "昨天": (-1, None),
    "前天": (-2, None),
}
_HOLIDAYS = {
    "元旦": (1, 1),
    "情人节": (2, 14),
    "妇女节": (3, 8),
    "劳动节": (5, 1),
    "五一": (5, 1),
    "儿童节": (6, 1),
    "国庆": (10, 1),
    "双十一": (11, 11),
    "双11": (11, 11),
    "双十二": (12, 12),
    "双12": (12, 12),
    "平安夜": (12, 24),
    "圣诞": (12, 25),
}


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))  # longest first: 大后天 before 后天


_DATE_PATTERNS = (
    re.compile(
        r"(?:(?P<y>\d{4})\s*年\s*|(?P<ry>今年|明年|后年)\s*)?"
        rf"(?P<m>{_NUM})\s*月\s*(?P<d>{_NUM})(?:\s*(?:日|号))?"
    ),
    # 2026-12-20, 12/20, 12.20 — but not 3.83, 1.5万, 4.8分 or 3/5粉丝 (amounts), hence the guards
    re.compile(
        r"(?<![\d.])(?:(?P<y>\d{4})\s*[./-]\s*)?(?P<m>\d{1,2})\s*[./-]\s*(?P<d>\d{1,2})"
        r"(?![\d.]|\s*[%万千百kKwW元块倍折分星级粉人个份件次张篇条秒])"
    ),
    re.compile(rf"(?P<rm>下下|下|这|本)\s*(?:个\s*)?月\s*(?P<d>{_NUM})\s*(?:日|号)"),
    re.compile(rf"(?<![第月\d{_CN}])(?P<d>{_NUM})\s*(?:日|号)(?![楼线床店门位房院馆厅机套款台件个内])"),
    # not 每周一 / 一周一次 (every Monday, once a week)
    re.compile(
        rf"(?<![每几{_CN}\d])(?:(?P<rw>下下|下|这|本|今|上)\s*(?:个\s*)?)?"
        r"(?:周|星期|礼拜)\s*(?P<wd>[一二三四五六日天1-7])"
    ),
    re.compile(r"(?:(?P<rw>下下|下|这|本|上)\s*(?:个\s*)?)?(?P<wk>周末)"),
    re.compile(rf"(?P<rel>{_alternation(_RELATIVE_DAYS)})"),
    re.compile(rf"(?P<n>{_NUM})\s*(?P<unit>天|周|个?星期|个?礼拜)\s*(?:后|以后|之后)"),
    re.compile(rf"(?P<hol>{_alternation(_HOLIDAYS)})"),
)

# Every branch needs a clock or a period word of its own, and no two \s* meet: a message of
# spaces must cost linear time, not cubic.
_CLOCK = (
    r"(?<![\d.])(?P<ch>\d{1,2})\s*:\s*(?P<cm>[0-5]\d)(?!\d)"
    r"|(?<![\d.])(?P<ah>\d{1,2})(?=\s*[aApP]\.?[mM])"  # 7pm
    rf"|(?<![\d.])(?P<h>{_NUM})\s*(?:点钟?|时)"
    rf"(?:\s*(?:(?P<half>半)|(?P<q>[一三1-3])刻|(?P<m>{_NUM})(?![\d{_CN}]|\s*[号日月天周个])(?:\s*分)?|整))?"
)
_TIME_PATTERN = re.compile(
    rf"(?:(?P<p>{_PERIODS}|(?<![今明昨])[早晚](?=\s*{_NUM}\s*[点:时]))\s*)?(?:{_CLOCK})"
    r"(?:\s*(?P<ap>[aApP])\.?[mM]\.?(?![a-zA-Z]))?"
    rf"|(?P<alone>{_PERIODS})"
)
# 一点/两点 after these usually means "a bit" (便宜一点, 快一点), and N点 before these "N points".
_BIT_BEFORE = set("多少快慢早晚高低大小宜贵长短近远好有差再稍些")
_BIT_AFTER = set("儿的吧了呢吗啊么点都也")
_POINTS_AFTER = set("建意问内原理优缺需注")
# A bare 一点/两点 (in characters, no period) is a clock only next to a day or a clock word:
# 明天一点, 一点钟, 一点前, 一点到三点; elsewhere (一点效果, 两点要求) it is an amount.
_CLOCK_BEFORE = set("天日号午上下晚早后周末到至")
_CLOCK_AFTER = set("钟前后左以之到至整,.?!~ ")


@dataclasses.dataclass(frozen=True, slots=True)
class _Token:
    start: int
    end: int
    day: dt.date | None = None
    ambiguous: bool = False
    period: str | None = None  # carried by 今晚/明早
    hour: int | None = None
    minute: int = 0
    weekday: int | None = None  # said as 周五 (0 = Monday), to check a date written next to it


def find_when(text: str, now: dt.datetime) -> When | None:
    """The first date and/or time the message talks about, or None (never raises on any text)."""
    text = text.translate(_WIDTH)
    today = now.astimezone(BEIJING)
    days = _days(text, today.date())
    times = _outside(_times(text), days)
    if not days and not times:
        return None
    if not days:
        return _time_only(times[0], today)
    day = _checked_weekday(days)
    clock = _nearest(day, times)
    if clock is None and day.period is None:
        at = dt.datetime.combine(day.day or today.date(), dt.time(), BEIJING)
        return When(at, True, False, day.ambiguous, (day.start, day.end))
    hour, minute, assumed, shift = _clock(clock, day.period)
    date = (day.day or today.date()) + dt.timedelta(days=shift)
    at = dt.datetime.combine(date, dt.time(hour, minute), BEIJING)
    span = (day.start, day.end) if clock is None else (min(day.start, clock.start), max(day.end, clock.end))
    return When(at, True, True, day.ambiguous or assumed, span)


def _time_only(token: _Token, today: dt.datetime) -> When:
    hour, minute, _assumed, shift = _clock(token, None)
    at = dt.datetime.combine(today.date() + dt.timedelta(days=shift), dt.time(hour, minute), BEIJING)
    if at < today:
        at += dt.timedelta(days=1)
    return When(at, False, True, True, (token.start, token.end))


def _checked_weekday(days: list[_Token]) -> _Token:
    """12月18日（周五）, 周五12月18日, 明天周二: a weekday written next to a day is part of it, and if
    they disagree that is doubt (the form then asks back with the right weekday)."""
    if len(days) < 2 or not 0 <= days[1].start - days[0].end <= 2:
        return days[0]
    said, day = (days[0], days[1]) if days[0].weekday is not None else (days[1], days[0])
    if said.weekday is None or day.weekday is not None or day.day is None:
        return days[0]
    wrong = day.day.weekday() != said.weekday
    return dataclasses.replace(day, start=days[0].start, end=days[1].end, ambiguous=day.ambiguous or wrong)


def _outside(times: list[_Token], days: list[_Token]) -> list[_Token]:
    """The times that are not inside a day already read (days are sorted and do not overlap)."""
    starts = [d.start for d in days]
    kept = []
    for t in times:
        i = bisect.bisect_right(starts, t.start) - 1
        inside = (i >= 0 and days[i].end > t.start) or (i + 1 < len(days) and days[i + 1].start < t.end)
        if not inside:
            kept.append(t)
    return kept


def _nearest(day: _Token, times: list[_Token]) -> _Token | None:
    """The time said next to the day (after it, or just before it: 晚上7点 下周五)."""
    best: tuple[int, _Token] | None = None
    for t in times:
        gap = t.start - day.end if t.start >= day.end else day.start - t.end + 1
        if 0 <= gap <= 8 and (best is None or gap < best[0]):
            best = (gap, t)
    return best[1] if best else None


def _clock(token: _Token | None, carried: str | None) -> tuple[int, int, bool, int]:
    """(hour, minute, assumed, days to add) of a time token, with the period 今晚/明早 carried."""
    period = (token.period if token else None) or carried
    if token is None or token.hour is None:
        return _PERIOD_HOUR.get(period or "", 19), 0, True, 0
    hour, minute = token.hour, token.minute
    if period is None:
        # A bare hour: 3点 is more often 15:00 than 03:00 in an order; 8点 is 08:00.
        return (hour + 12 if 1 <= hour <= 6 else hour), minute, 1 <= hour <= 11, 0
    if period in _NIGHT and (hour == 12 or hour < 5):
        return hour % 12, minute, False, 1
    if (period in _PM and hour < 12) or (period == "中午" and hour < 5):
        hour += 12
    elif period in ("凌晨", "半夜") and hour == 12:
        hour = 0
    return hour, minute, False, 0


def _days(text: str, today: dt.date) -> list[_Token]:
    found = [t for p in _DATE_PATTERNS for m in p.finditer(text) if (t := _day(m, today)) is not None]
    found.sort(key=lambda t: (t.start, t.start - t.end))  # leftmost first, then longest
    kept: list[_Token] = []
    for t in found:
        if not kept or t.start >= kept[-1].end:
            kept.append(t)
    return kept


def _day(m: re.Match[str], today: dt.date) -> _Token | None:
    g = m.groupdict()
    try:
        if g.get("rel"):
            offset, period = _RELATIVE_DAYS[g["rel"]]
            return _Token(m.start(), m.end(), today + dt.timedelta(days=offset), period=period)
        if g.get("wd") or g.get("wk"):
            return _weekday(m, today)
        if g.get("hol"):
            month, day = _HOLIDAYS[g["hol"]]
            date = dt.date(today.year, month, day)
            return _Token(m.start(), m.end(), date if date >= today else date.replace(year=today.year + 1))
        if g.get("unit"):
            n = _number(g["n"])
            days = (n or 0) * (1 if g["unit"] == "天" else 7)
            return None if n is None else _Token(m.start(), m.end(), today + dt.timedelta(days))
        return _calendar(m, today)
    except (ValueError, OverflowError):  # 2月30号, year 9999 + 1: not a date
        return None


def _weekday(m: re.Match[str], today: dt.date) -> _Token:
    rel = m.group("rw") or ""
    target = 5 if m.groupdict().get("wk") else _WEEKDAYS[m.group("wd")]
    monday = today - dt.timedelta(days=today.weekday())
    weeks = {"下下": 2, "下": 1, "上": -1}.get(rel, 0)
    date = monday + dt.timedelta(days=7 * weeks + target)
    if rel or date >= today:
        return _Token(m.start(), m.end(), date, ambiguous=not rel, weekday=None if rel else target)
    return _Token(m.start(), m.end(), date + dt.timedelta(days=7), ambiguous=True, weekday=target)


def _calendar(m: re.Match[str], today: dt.date) -> _Token | None:
    g = m.groupdict()
    day = _number(g["d"])
    if day is None:
        return None
    if g.get("rm"):
        first = today.replace(day=1)
        for _ in {"下下": 2, "下": 1}.get(g["rm"], 0) * [None]:
            first = (first + dt.timedelta(days=32)).replace(day=1)
        return _Token(m.start(), m.end(), first.replace(day=day))
    if g.get("m") is None:
        return _Token(m.start(), m.end(), _coming_day(day, today), ambiguous=True)
    month = _number(g["m"])
    if month is None:
        return None
    if g.get("y"):
        return _Token(m.start(), m.end(), dt.date(int(g["y"]), month, day))
    if g.get("ry"):
        year = today.year + {"今年": 0, "明年": 1, "后年": 2}[g["ry"]]
        return _Token(m.start(), m.end(), dt.date(year, month, day))
    return _Token(m.start(), m.end(), _nearest_year(month, day, today))


def _coming_day(day: int, today: dt.date) -> dt.date:
    """20号: the 20th of this month if still to come, else of the next month that has one."""
    first = today.replace(day=1)
    for _ in range(3):
        try:
            date = first.replace(day=day)
        except ValueError:
            date = None
        if date is not None and date >= today:
            return date
        first = (first + dt.timedelta(days=32)).replace(day=1)
    raise ValueError(day)


def _nearest_year(month: int, day: int, today: dt.date) -> dt.date:
    """12月1日 said on 12月7日 is six days ago; 1月5日 said in December is next January."""
    dates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            dates.append(dt.date(year, month, day))
        except ValueError:
            continue
    if not dates:
        raise ValueError((month, day))
    return min(dates, key=lambda d: (abs((d - today).days), d < today))


def _times(text: str) -> list[_Token]:
    found = []
    for m in _TIME_PATTERN.finditer(text):
        if m.group(0).strip() and (t := _time(m, text)) is not None:
            # the span covers the words, not the spaces the pattern let in around them
            start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
            found.append(dataclasses.replace(t, start=start, end=start + len(m.group(0).strip())))
    return found


def _time(m: re.Match[str], text: str) -> _Token | None:
    g = m.groupdict()
    if g["alone"]:  # 晚上 alone is a time (19:00, assumed); 晚上好 is a greeting
        return None if text[m.end() : m.end() + 1] == "好" else _Token(m.start(), m.end(), period=g["alone"])
    period = g["p"]
    raw_hour = g["ch"] or g["h"] or g["ah"]
    if raw_hour is None:
        return None
    hour = _number(raw_hour)
    minute = _minute(g)
    if hour is None or minute is None or not _plausible_clock(m, text, hour, period):
        return None
    if g["ap"]:
        hour = hour % 12 + (12 if g["ap"] in "pP" else 0)
        period = period or ("下午" if g["ap"] in "pP" else "上午")
    if hour == 24 and minute == 0:
        hour = 0  # 24点: midnight, kept on the same day as people say it
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if g["ch"] is not None and period is None:
        period = "上午" if hour < 12 else "下午"  # 19:30 / 07:30 are written in full: nothing assumed
    return _Token(m.start(), m.end(), period=period, hour=hour, minute=minute)


def _minute(g: dict[str, str | None]) -> int | None:
    if g["cm"]:
        return int(g["cm"])
    if g["half"]:
        return 30
    if g["q"]:
        return 15 * (_number(g["q"]) or 0)
    return _number(g["m"]) if g["m"] else 0


def _plausible_clock(m: re.Match[str], text: str, hour: int, period: str | None) -> bool:
    """便宜一点 / 晚一点 / 有三点建议 are not times: a bare N点 is checked against its neighbours."""
    if m.group("ch") or m.group("half") or m.group("q") or m.group("m"):
        return True
    before = text[m.start() - 1] if m.start() > 0 else ""
    after = text[m.end()] if m.end() < len(text) else ""
    bit = period in ("早", "晚") or (period is None and (before in _BIT_BEFORE or after in _BIT_AFTER))
    if bit and m.group("h") in ("一", "两", "1", "2"):
        return False
    said_clock = m.group(0).endswith(("钟", "时"))
    if period is None and m.group("h") in ("一", "两") and not (said_clock or _clock_bit(before, after)):
        return False  # 一点效果都没有, 两点不满意: "a bit", "two points"
    return period is not None or after not in _POINTS_AFTER


def _clock_bit(before: str, after: str) -> bool:
    return before in _CLOCK_BEFORE or after in _CLOCK_AFTER or (not after and before in ("", " "))


@functools.lru_cache(maxsize=256)
def _number(word: str) -> int | None:
    """'20', '二十', '十二', '两', '零五' → int; None when it is not a number."""
    if word.isdigit():
        return int(word)
    try:
        return int(cn2an.cn2an(word.replace("〇", "零").replace("两", "二"), "smart"))
    except (ValueError, KeyError, TypeError):
        return None
