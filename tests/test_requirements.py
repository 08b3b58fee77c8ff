"""Each requirement validates what it takes, and says what to send when it can't use an answer."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows import texts
from flows.engine import OrderForm
from flows.requirements import (
    STEPS,
    InvalidInput,
    NeedsConfirmation,
    example_publish_time,
    parse_brand,
    parse_contact,
    parse_link,
    parse_mentions,
    parse_publish_time,
    show,
)
from store.turns import FlowState

NOW = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)  # Monday 7 December 2026, 10:00 in Beijing


def refusal(parse: object, said: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        parse(said, NOW)  # type: ignore[operator]
    return err.value


# --- brand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said", ["咖啡品牌A", "3M", "蕉内", "Manner Coffee", "  喜茶 ", "7-Eleven", "什么值得买"]
)
def test_brand_names_are_kept(said: str) -> None:
    assert parse_brand(said, NOW) == said.strip()


@pytest.mark.parametrize(
    ("said", "brand"),
    [
        ("品牌：咖啡品牌A", "咖啡品牌A"),
        ("我们品牌叫小鹿咖啡", "小鹿咖啡"),
        ("店名是 喜茶。", "喜茶"),
        ("店小二", "店小二"),
    ],
)
def test_the_words_around_a_brand_are_left_out(said: str, brand: str) -> None:
    assert parse_brand(said, NOW) == brand


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("？？？", texts.BRAND_NO_LETTERS),
        ("😀😀", texts.BRAND_NO_LETTERS),
        ("123", texts.BRAND_NO_LETTERS),
        ("…", texts.BRAND_NO_LETTERS),
        ("退款怎么退？", texts.BRAND_LOOKS_LIKE_QUESTION),
        ("可以开发票吗", texts.BRAND_LOOKS_LIKE_QUESTION),
        ("多久能发", texts.BRAND_LOOKS_LIKE_QUESTION),
        ("品牌是什么意思", texts.BRAND_LOOKS_LIKE_QUESTION),
        ("https://shop.example.com", texts.BRAND_LOOKS_LIKE_LINK),
        ("品" * 31, texts.ANSWER_LENGTH),
    ],
)
def test_brand_refusals_say_what_to_send(said: str, reason: str) -> None:
    err = refusal(parse_brand, said)
    assert err.text == reason
    assert err.values.get("example", texts.EXAMPLE_BRAND) == texts.EXAMPLE_BRAND


# --- link ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "url"),
    [
        (
            "3.83 复制打开抖音，看看【小鹿的作品】冷萃测评 https://v.douyin.com/iRNBho6u/ aAa:/ 12/10",
            "https://v.douyin.com/iRNBho6u/",
        ),
        (
            "宝藏冷萃 http://xhslink.com/a/AbCdEf，复制本条信息，打开【小红书】App查看精彩内容！",
            "http://xhslink.com/a/AbCdEf",
        ),
        (
            "【淘宝】https://m.tb.cn/h.5VZ2Kxx?tk=Ab1CdEf CZ0001 「冷萃咖啡 0糖」点击链接直接打开",
            "https://m.tb.cn/h.5VZ2Kxx?tk=Ab1CdEf",
        ),
        ("【淘宝】https://m.tb.cn/h.5VZ2Kxx?tk=Ab1「冷萃咖啡」", "https://m.tb.cn/h.5VZ2Kxx?tk=Ab1"),
        ("看这个：https://a.example.com/x?y=1，谢谢", "https://a.example.com/x?y=1"),
        ("(见 https://a.example.com/x)", "https://a.example.com/x"),
        ("链接是 https://a.example.com/wiki/Foo_(bar) 。", "https://a.example.com/wiki/Foo_(bar)"),
        ("ｈｔｔｐｓ：／／ｓｈｏｐ．ｅｘａｍｐｌｅ．ｃｏｍ／ａ", "https://shop.example.com/a"),
        ("v.douyin.com/iRNBho6u/ 复制此链接", "https://v.douyin.com/iRNBho6u/"),
        ("打开v.douyin.com/iRNBho6u/看看", "https://v.douyin.com/iRNBho6u/"),
        ("shop.example.com/coffee/new", "https://shop.example.com/coffee/new"),
        ("item.jd.com/100012043978.html", "https://item.jd.com/100012043978.html"),
    ],
)
def test_the_link_is_found_in_what_people_paste(said: str, url: str) -> None:
    assert parse_link(said, NOW) == url


@pytest.mark.parametrize(
    "said",
    ["就那个新品", "http://", "https://nodot", "3.83 复制打开抖音", "12/10", "邮箱 a@b.com/x", "1.5/2"],
)
def test_no_link_no_answer(said: str) -> None:
    assert refusal(parse_link, said).text == texts.LINK_INVALID


# --- publish time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("明天下午三点", "2026-12-08T15:00+08:00"),
        ("下周五晚上7点", "2026-12-18T19:00+08:00"),
        ("12月20号晚上8点", "2026-12-20T20:00+08:00"),
        ("2026-12-20 19:00", "2026-12-20T19:00+08:00"),
        ("１２/２０　１９：３０", "2026-12-20T19:30+08:00"),
        ("1月5日 10:00", "2027-01-05T10:00+08:00"),
    ],
)
def test_publish_times_said_in_full_are_kept_at_once(said: str, expected: str) -> None:
    assert parse_publish_time(said, NOW) == expected


@pytest.mark.parametrize(
    ("said", "value", "question"),
    [
        ("下周五晚上", "2026-12-18T19:00+08:00", "发布时间记为 12月18日（周五）19:00，对吗？"),
        ("12月20号晚上", "2026-12-20T19:00+08:00", "发布时间记为 12月20日（周日）19:00，对吗？"),
        ("12月18日（周六）19:00", "2026-12-18T19:00+08:00", "发布时间记为 12月18日（周五）19:00，对吗？"),
        ("20号", "2026-12-20T19:00+08:00", "12月20日（周日）19:00（没说几点，先按 19:00 记），对吗？"),
        ("周六", "2026-12-12T19:00+08:00", "12月12日（周六）19:00（没说几点"),
        ("明天三点", "2026-12-08T15:00+08:00", "12月8日（周二）15:00，对吗？"),
        ("尽快吧", "2026-12-08T19:00+08:00", "最早可以约在 12月8日（周二）19:00"),
        ("时间都行", "2026-12-08T19:00+08:00", "最早可以约在 12月8日（周二）19:00"),
    ],
)
def test_an_assumed_part_is_asked_back_with_the_weekday(said: str, value: str, question: str) -> None:
    with pytest.raises(NeedsConfirmation) as ask:
        parse_publish_time(said, NOW)
    assert ask.value.value == value and question in ask.value.question


@pytest.mark.parametrize(
    ("said", "reason", "shown"),
    [
        ("12月1日 19:00", texts.TIME_PAST, "12月1日（周二）19:00 已经过去了"),
        ("上周五晚上8点", texts.TIME_PAST, "12月4日（周五）20:00 已经过去了"),
        ("昨天", texts.TIME_PAST, "12月6日（周日） 已经过去了"),
        ("今天", texts.TIME_TOO_SOON, "24 小时以后"),
        ("今天 20:00", texts.TIME_TOO_SOON, "24 小时以后（12月8日（周二）10:00 之后）"),
        ("2027-12-01 10:00", texts.TIME_TOO_FAR, "180 天内（6月5日（周六）之前）"),
        ("19:30", texts.TIME_NEEDS_DATE, "19:30 是哪一天呢"),
        ("2月30日 10:00", texts.TIME_INVALID, "没看懂这个时间"),
        ("下周吧", texts.TIME_INVALID, "「12月10日（周四）19:00」"),
    ],
)
def test_publish_time_refusals_say_why(said: str, reason: str, shown: str) -> None:
    err = refusal(parse_publish_time, said)
    assert err.text == reason and shown in err.text.format(**err.values)


@pytest.mark.parametrize(
    "now",
    [NOW, dt.datetime(2026, 12, 30, 15, 59, tzinfo=dt.UTC), dt.datetime(2027, 2, 26, 16, 30, tzinfo=dt.UTC)],
)
def test_the_example_is_computed_from_now_and_accepted_as_it_is(now: dt.datetime) -> None:
    example = example_publish_time(now)
    kept = parse_publish_time(example, now)
    assert dt.datetime.fromisoformat(kept) - now.astimezone() > dt.timedelta(days=2)
    assert show("publish_time", kept) == example
    assert STEPS["publish_time"].example_at(now) == example


def test_as_soon_as_possible_late_in_the_evening_is_the_evening_after_next() -> None:
    late = dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)  # 20:30 in Beijing
    with pytest.raises(NeedsConfirmation) as ask:
        parse_publish_time("越快越好", late)
    assert ask.value.value == "2026-12-09T19:00+08:00"


def test_the_example_of_monday_is_thursday() -> None:
    assert example_publish_time(NOW) == "12月10日（周四）19:00"


# --- mentions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "@小鹿 @阿杰",
        "小鹿、阿杰",
        "＠小鹿＠阿杰",
        "@小鹿和@阿杰",
        "@小鹿，阿杰 @小鹿",
        "@小鹿：@阿杰。",
        "需要@的账号：@小鹿 @阿杰",
        "账号: 小鹿、阿杰",
        "小鹿 和 阿杰",
        "@小鹿/@阿杰",
    ],
)
def test_mentions_in_the_ways_people_list_them(said: str) -> None:
    assert parse_mentions(said, NOW) == ["@小鹿", "@阿杰"]


@pytest.mark.parametrize(
    "said", ["不知道要艾特谁", "就艾特我们官方账号还有小鹿就行了吧", "需要@谁？", "不用", "@" + "长" * 31]
)
def test_sentences_are_not_account_names(said: str) -> None:
    assert refusal(parse_mentions, said).text == texts.MENTIONS_NOT_A_NAME


def test_mentions_count() -> None:
    assert refusal(parse_mentions, "  ").text == texts.MENTIONS_INVALID
    assert refusal(parse_mentions, " ".join(f"@a{i}" for i in range(11))).text == texts.MENTIONS_INVALID


# --- contact -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "name", "phone"),
    [
        ("王芳 13800138000", "王芳", "13800138000"),
        ("王芳 +86 138 0013 8000", "王芳", "13800138000"),
        ("王芳 86-138-0013-8000", "王芳", "13800138000"),
        ("13800138000 王芳", "王芳", "13800138000"),
        ("联系人：王芳，电话：(+86)13800138000", "王芳", "13800138000"),
        ("王芳 ＋８６ １３８００１３８０００", "王芳", "13800138000"),
        ("王经理 021-62345678", "王经理", "021-62345678"),
        ("王芳 0755 8888666", "王芳", "0755-8888666"),
        ("Fang Wang 010-88886666转801", "Fang Wang", "010-88886666"),
    ],
)
def test_contact_name_and_phone(said: str, name: str, phone: str) -> None:
    assert parse_contact(said, NOW) == {"name": name, "phone": phone}


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("王芳", texts.CONTACT_INVALID),
        ("王芳 12345", texts.CONTACT_NO_PHONE),
        ("王芳 23800138000", texts.CONTACT_NO_PHONE),
        ("王芳 010-1234567", texts.CONTACT_NO_PHONE),  # Beijing numbers have 8 digits
        ("13800138000", texts.CONTACT_NO_NAME),
        ("电话 13800138000", texts.CONTACT_NO_NAME),
    ],
)
def test_contact_refusals(said: str, reason: str) -> None:
    assert refusal(parse_contact, said).text == reason


def test_a_landline_is_shown_masked_like_a_mobile() -> None:
    assert show("contact", {"name": "王经理", "phone": "021-62345678"}) == "王经理 021****5678"


# --- the confirmation sub-state of a step --------------------------------------------------------


def at_publish_time() -> tuple[FlowState, OrderForm]:
    state = FlowState()
    OrderForm.begin(state, ["publish_time", "brand"], lines=[[1, 1]])
    form = OrderForm(state)
    form.answer("咖啡品牌A", NOW)
    assert state.step == "publish_time"
    return state, form


@pytest.mark.parametrize("yes", ["对", "对的", "好", "是", "确认", "OK", "ok！", "嗯"])
def test_yes_keeps_the_pending_answer(yes: str) -> None:
    state, form = at_publish_time()
    form.answer("下周五晚上", NOW)
    assert state.step == "publish_time" and "publish_time" not in form.answers
    assert form.prompt() == "第 2/2 步：" + texts.TIME_CONFIRM.format(
        when="12月18日（周五）19:00", assumed=""
    )
    form.answer(yes, NOW)
    assert form.at_confirm and form.answers["publish_time"] == "2026-12-18T19:00+08:00"
    assert "pending" not in form.data


def test_a_refused_answer_keeps_the_question_open() -> None:
    _, form = at_publish_time()
    form.answer("下周五晚上", NOW)
    with pytest.raises(InvalidInput):
        form.answer("12月1日 19:00", NOW)
    assert "12月18日（周五）19:00，对吗" in form.prompt()
    form.answer("对", NOW)
    assert form.answers["publish_time"] == "2026-12-18T19:00+08:00"


def test_a_new_answer_replaces_the_pending_one() -> None:
    _, form = at_publish_time()
    form.answer("下周五晚上", NOW)
    form.answer("20号", NOW)
    assert "12月20日（周日）19:00" in form.prompt()
    form.answer("下周六晚上8点", NOW)
    assert form.at_confirm and form.answers["publish_time"] == "2026-12-19T20:00+08:00"


def test_yes_without_a_pending_answer_is_just_an_answer() -> None:
    state, form = at_publish_time()
    with pytest.raises(InvalidInput):
        form.answer("对", NOW)
    assert state.step == "publish_time"


def test_back_forgets_the_pending_answer() -> None:
    state, form = at_publish_time()
    form.answer("下周五晚上", NOW)
    assert form.back() and state.step == "brand"
    form.answer("咖啡品牌A", NOW)
    assert form.prompt().startswith("第 2/2 步：" + texts.ASK_PUBLISH_TIME)


@given(st.text(max_size=60))
def test_parsers_only_ever_refuse_politely(said: str) -> None:
    for step in STEPS.values():
        with contextlib.suppress(InvalidInput, NeedsConfirmation):
            step.parse(said, NOW)


@pytest.mark.parametrize("key", [k for k, step in STEPS.items() if not step.images])
@pytest.mark.parametrize("now", [NOW, dt.datetime(2027, 2, 26, 16, 30, tzinfo=dt.UTC)])
def test_every_example_is_accepted_as_it_is(key: str, now: dt.datetime) -> None:
    step = STEPS[key]
    step.parse(step.example_at(now), now)  # neither refused nor asked back


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(["下周五晚上", "20号", "下周六晚上8点", "对", "好的", "12月1日 19:00", "x", "返回"]),
        max_size=12,
    )
)
def test_no_sequence_of_answers_keeps_an_unconfirmed_time(said: list[str]) -> None:
    state = FlowState()
    OrderForm.begin(state, ["brand", "publish_time", "notes"], lines=[[1, 1]])
    form = OrderForm(state)
    form.answer("咖啡品牌A", NOW)
    for text in said:
        if form.at_confirm:
            break
        asked_before = form.pending
        try:
            form.back() if text == "返回" else form.answer(text, NOW)
        except InvalidInput:
            assert form.pending == asked_before  # a refusal changes nothing, the question stays open
        pending = form.data.get("pending")
        assert pending is None or pending["key"] == state.step == "publish_time"
        kept = form.answers.get("publish_time")
        # only a time said in full, or one confirmed with 对, is ever kept
        assert kept in (None, "2026-12-18T19:00+08:00", "2026-12-20T19:00+08:00", "2026-12-19T20:00+08:00")
