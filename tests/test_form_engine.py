"""The form engine and requirement parsers, without HTTP: every path through a form stays consistent."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows import texts
from flows.engine import CONFIRM, OrderForm
from flows.requirements import (
    STEPS,
    InvalidInput,
    parse_contact,
    parse_link,
    parse_mentions,
    parse_publish_time,
)
from store.catalog import REQUIREMENT_KEYS
from store.turns import FlowState

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)  # 11:00 in Beijing
GOOD = {
    "brand": "咖啡品牌A",
    "link": "https://shop.example.com/a",
    "selling_points": "0 糖冷萃咖啡",
    "copy": "突出通勤场景",
    "publish_time": "11月28日 19:00",
    "mentions": "@a @b",
    "audience": "一线城市白领",
    "contact": "王芳 13800138000",
    "notes": "无",
}


def test_every_requirement_key_of_the_catalog_has_a_step() -> None:
    assert set(REQUIREMENT_KEYS) == set(STEPS)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("11月28日 19:00", "2026-11-28T19:00+08:00"),
        ("2026-11-30 8:30", "2026-11-30T08:30+08:00"),
        ("后天 晚上8点", "2026-11-24T20:00+08:00"),
        ("12/1 下午3点半", "2026-12-01T15:30+08:00"),
        ("1月5日 10:00", "2027-01-05T10:00+08:00"),  # a past month means next year
    ],
)
def test_publish_time_is_read_in_beijing_time(said: str, expected: str) -> None:
    assert parse_publish_time(said, NOW) == expected


@pytest.mark.parametrize(
    ("said", "reason"),
    [
        ("今天 20:00", texts.TIME_TOO_SOON),
        ("11月21日 19:00", texts.TIME_PAST),
        ("19:00", texts.TIME_NEEDS_DATE),
        ("下周", texts.TIME_INVALID),
        ("2027-12-01 10:00", texts.TIME_TOO_FAR),
        ("2月30日 10:00", texts.TIME_INVALID),
    ],
)
def test_publish_time_refusals_say_why(said: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_publish_time(said, NOW)
    assert err.value.text == reason


def test_link_mentions_contact() -> None:
    assert parse_link("看这个：https://a.example.com/x?y=1，谢谢", NOW) == "https://a.example.com/x?y=1"
    for bad in ("就那个新品", "http://", "https://nodot"):
        with pytest.raises(InvalidInput):
            parse_link(bad, NOW)
    assert parse_mentions("@小鹿，阿杰 @小鹿", NOW) == ["@小鹿", "@阿杰"]
    assert parse_contact("王芳 138-0013-8000", NOW) == {"name": "王芳", "phone": "13800138000"}
    with pytest.raises(InvalidInput):
        parse_contact("王芳 12345", NOW)


def test_a_form_walks_forward_back_and_to_confirm() -> None:
    state = FlowState()
    form = OrderForm.begin(state, ["link", "brand", "ref_images"], lines=[[1, 1]])
    assert form.keys == ["brand", "link", "ref_images"]  # the catalog's order, not the package's
    form.answer("品牌", NOW)
    assert form.back() and state.step == "brand"
    form.answer("品牌", NOW)
    form.answer("https://a.example.com", NOW)
    with pytest.raises(InvalidInput):
        form.answer("好了", NOW)  # no picture yet
    assert form.add_image(7) == 1 and form.add_image(7) == 1  # the same picture twice counts once
    form.answer("好了", NOW)
    assert state.step == CONFIRM and form.answers["ref_images"] == [7]
    form.end()
    assert state.flow is None and "form" not in state.data


ops = st.lists(
    st.one_of(
        st.just(("answer_good", "")),
        st.sampled_from([("answer_bad", ""), ("back", ""), ("image", ""), ("skip", ""), ("done", "")]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.sampled_from(sorted(STEPS)), unique=True, min_size=1), actions=ops)
def test_no_sequence_of_inputs_leaves_the_form_inconsistent(
    keys: list[str], actions: list[tuple[str, str]]
) -> None:
    state = FlowState()
    form = OrderForm.begin(state, keys, lines=[[1, 1]])
    for action, _ in actions:
        before = (state.step, repr(form.answers))
        try:
            if action == "back":
                form.back()
            elif action == "image":
                form.add_image(len(form.answers) + 1)
            elif form.at_confirm:
                continue
            elif action == "answer_good" and form.step and not form.step.images:
                form.answer(GOOD[form.step.key], NOW)
            elif action in ("skip", "done"):
                form.answer("跳过" if action == "skip" else "好了", NOW)
            else:
                form.answer("x", NOW)
        except InvalidInput:
            assert (state.step, repr(form.answers)) == before  # a refusal changes nothing
        assert state.step == CONFIRM or state.step in form.keys
        n, total = form.position()
        assert 1 <= n <= total == len(form.keys)
        assert set(form.answers) <= set(form.keys)
