"""find_when: the date/time a Chinese message talks about, relative to a fixed now, in Beijing time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.when import BEIJING, When, find_when


def utc(beijing: str) -> dt.datetime:
    """A fixed 'now' given in Beijing time ('2026-12-07 10:00'), as the aware UTC time the app has."""
    return dt.datetime.fromisoformat(beijing).replace(tzinfo=BEIJING).astimezone(dt.UTC)


MONDAY = utc("2026-12-07 10:00")  # Monday 7 December 2026, 10:00 in Beijing


def at(text: str, now: dt.datetime = MONDAY) -> str:
    when = find_when(text, now)
    assert when is not None, text
    assert when.at.utcoffset() == dt.timedelta(hours=8)
    return f"{when.at:%Y-%m-%d %H:%M}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明天下午三点", "2026-12-08 15:00"),
        ("下周五晚上7点", "2026-12-18 19:00"),
        ("下周五晚上", "2026-12-18 19:00"),
        ("12月20号晚上", "2026-12-20 19:00"),
        ("后天上午10点半", "2026-12-09 10:30"),
        ("今晚8点", "2026-12-07 20:00"),
        ("明早", "2026-12-08 08:00"),
        ("2026-12-20 19:00", "2026-12-20 19:00"),
        ("12/20 19:00", "2026-12-20 19:00"),
        ("１２月２０日　１９：００", "2026-12-20 19:00"),
        ("十二月二十号晚上八点", "2026-12-20 20:00"),
        ("二十号下午两点", "2026-12-20 14:00"),
        ("明天晚上7点半", "2026-12-08 19:30"),
        ("明天三点一刻", "2026-12-08 15:15"),
        ("明天中午12点", "2026-12-08 12:00"),
        ("明天中午1点", "2026-12-08 13:00"),
        ("明天下午三点零五", "2026-12-08 15:05"),
        ("明天 8:30", "2026-12-08 08:30"),
        ("明天7:30pm", "2026-12-08 19:30"),
        ("明天凌晨2点", "2026-12-08 02:00"),
        ("明天晚上12点", "2026-12-09 00:00"),  # midnight ends the day that was named
        ("晚上7点 下周五", "2026-12-18 19:00"),  # time first, day after
        ("想约下周五晚上7点左右发", "2026-12-18 19:00"),
    ],
)
def test_dates_with_times(text: str, expected: str) -> None:
    assert at(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20号", "2026-12-20"),
        ("周六", "2026-12-12"),
        ("这周六", "2026-12-12"),
        ("下个月3号", "2027-01-03"),
        ("大后天", "2026-12-10"),
        ("12.20", "2026-12-20"),
        ("元旦", "2027-01-01"),
        ("三天后", "2026-12-10"),
        ("两周后", "2026-12-21"),
        ("下下周三", "2026-12-23"),
        ("上周五", "2026-12-04"),
        ("2027年1月3日", "2027-01-03"),
        ("明年3月5号", "2027-03-05"),
    ],
)
def test_days_without_a_time(text: str, expected: str) -> None:
    when = find_when(text, MONDAY)
    assert when is not None
    assert (f"{when.at:%Y-%m-%d}", when.has_date, when.has_time) == (expected, True, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("晚上7点半", "2026-12-07 19:30"),
        ("19:30", "2026-12-07 19:30"),
        ("三点一刻", "2026-12-07 15:15"),
        ("中午12点", "2026-12-07 12:00"),
        ("8点", "2026-12-08 08:00"),  # 08:00 has passed at 10:00: the next one is tomorrow
        ("凌晨", "2026-12-08 00:00"),
    ],
)
def test_a_time_alone_is_the_next_time_it_comes(text: str, expected: str) -> None:
    when = find_when(text, MONDAY)
    assert when is not None
    assert (f"{when.at:%Y-%m-%d %H:%M}", when.has_date, when.has_time, when.ambiguous) == (
        expected,
        False,
        True,
        True,
    )


@pytest.mark.parametrize(
    ("text", "ambiguous"),
    [
        ("下周五晚上7点", False),
        ("下周五晚上", True),  # 晚上 → 19:00 assumed
        ("12月20号晚上8点", False),
        ("20号晚上8点", True),  # which month
        ("周五晚上8点", True),  # this or next week
        ("这周五晚上8点", False),
        ("明天三点", True),  # 03:00 or 15:00
        ("明天15点", False),
        ("明天 19:00", False),
        ("今晚", True),
        ("明天下午", True),
    ],
)
def test_what_was_assumed_is_flagged(text: str, ambiguous: bool) -> None:
    when = find_when(text, MONDAY)
    assert when is not None
    assert when.ambiguous is ambiguous


@pytest.mark.parametrize(
    ("text", "ambiguous"),
    [
        ("12月10日（周四）19:00", False),
        ("周四12月10日晚上8点", False),
        ("明天周二下午3点", False),
        ("12月10日（周五）19:00", True),  # 10 December is a Thursday: which one was meant?
        ("明天（周三）下午3点", True),
    ],
)
def test_a_weekday_written_next_to_a_date_is_checked(text: str, ambiguous: bool) -> None:
    when = find_when(text, MONDAY)
    assert when is not None
    assert when.ambiguous is ambiguous and when.span == (0, len(text))
    assert when.at.day == (8 if text.startswith("明天") else 10)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("我们想下周五晚上7点发，可以吗", "下周五晚上7点"),
        ("就 19:00 吧", "19:00"),
        ("晚上 吧", "晚上"),
        ("时间：2026-12-20 19:00，谢谢", "2026-12-20 19:00"),
    ],
)
def test_span_points_at_the_words(text: str, words: str) -> None:
    when = find_when(text, MONDAY)
    assert when is not None
    assert text[when.span[0] : when.span[1]] == words


def test_month_and_year_rollover() -> None:
    new_years_eve = utc("2026-12-31 21:00")
    assert at("明天下午3点", new_years_eve) == "2027-01-01 15:00"
    assert at("1月5号", new_years_eve) == "2027-01-05 00:00"
    assert at("3号", new_years_eve) == "2027-01-03 00:00"
    assert at("下个月3号", new_years_eve) == "2027-01-03 00:00"
    assert at("大后天", utc("2027-02-27 09:00")) == "2027-03-02 00:00"
    assert at("30号", utc("2027-02-10 09:00")) == "2027-03-30 00:00"  # February has no 30th


def test_a_date_just_gone_is_in_the_past_not_next_year() -> None:
    # said on 7 December: 12月1日 is six days ago (so a form can say it has passed), 1月5日 is next month
    assert at("12月1日 19:00") == "2026-12-01 19:00"
    assert at("1月5日") == "2027-01-05 00:00"


def test_this_friday_said_on_saturday_is_yesterday() -> None:
    saturday = utc("2026-12-12 10:00")
    assert at("这周五", saturday) == "2026-12-11 00:00"
    assert at("周五", saturday) == "2026-12-18 00:00"  # the coming one
    assert at("下周五", saturday) == "2026-12-18 00:00"


def test_the_day_is_read_in_beijing_not_utc() -> None:
    # 17:00 UTC on the 7th is already 01:00 on the 8th in Beijing
    late = dt.datetime(2026, 12, 7, 17, 0, tzinfo=dt.UTC)
    assert at("明天", late) == "2026-12-09 00:00"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "你好",
        "晚上好",
        "便宜一点的",
        "再快一点",
        "晚一点也行",
        "有三点建议",
        "我想在小红书找美食达人推广咖啡，预算3000以内",
        "1.5万以下",
        "3.83 复制打开抖音，看看【xx的作品】",
        "每周一更新",
        "付款后7日内发货",
        "一点都不便宜",
        "一点效果都没有",  # 一点 as "a little", wherever it stands
        "感觉一点用也没",
        "我有两点要求",
        "评分4.8分",
        "3/5粉丝的号",
        "下周",
        "退款怎么退？",
        "I am here",
    ],
)
def test_no_time_in_the_text(text: str) -> None:
    assert find_when(text, MONDAY) is None


def test_result_is_frozen() -> None:
    when = find_when("明天", MONDAY)
    assert isinstance(when, When)
    with pytest.raises(AttributeError):
        when.has_time = True  # type: ignore[misc]


@given(st.text(max_size=80))
def test_never_raises_on_any_text(text: str) -> None:
    when = find_when(text, MONDAY)
    if when is not None:
        assert 0 <= when.span[0] < when.span[1] <= len(text)
        assert when.at.tzinfo is not None


@given(st.text(alphabet="0123456789０１２３今明后天周下这个月日号点半刻晚上午:/.-零一二两三十", max_size=20))
def test_never_raises_on_time_like_text(text: str) -> None:
    find_when(text, MONDAY)


@pytest.mark.parametrize("unit", [" ", "晚上 ", "下 个 ", "1-", "12月"])
def test_long_repetitive_text_is_read_in_one_pass(unit: str) -> None:
    # regression: optional parts with a space run between them made 2,000 spaces take 80 s (cubic)
    text = unit * (6000 // len(unit))
    when = find_when(text, MONDAY)
    assert when is None or 0 <= when.span[0] < when.span[1] <= len(text)


@pytest.mark.parametrize("text", ["明天一点", "一点钟", "一点前发", "下午一点", "两点到三点"])
def test_one_oclock_said_as_a_time_is_still_read(text: str) -> None:
    found = find_when(text, MONDAY)
    assert found is not None and found.has_time
