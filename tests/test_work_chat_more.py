"""Work chat, as staff live it: commands without the order number when it is obvious, cards that keep up."""

from __future__ import annotations

from functools import partial

from bot import keys
from flows import texts_staff as ts
from store import staff
from store.models import Commission
from tests.conftest import eventually
from tests.test_earnings import chain, earn, paid_order
from tests.test_paying import pay_sim  # noqa: F401 (fixture)
from tests.test_work_chat import Office, office  # noqa: F401 (the office fixture)


async def test_start_and_complete_need_no_number_when_the_member_has_one_such_order(
    office: Office,  # noqa: F811
) -> None:
    nothing = await office.say("wangfang", "开始")
    assert "没有「已分配」的订单" in nothing
    order = await office.paid_order()
    await office.say("lishen", f"通过 {order.number}")
    assert (await office.say("wangfang", "开始")).startswith(f"🚀 {order.number}")
    assert (await office.say("wangfang", "完成")).startswith(f"🎉 {order.number}")
    assert (await office.order(order.id)).status == "已完成"


async def test_start_without_a_number_asks_which_when_there_are_several(office: Office) -> None:  # noqa: F811
    first, second = await office.paid_order(), await office.paid_order()
    for order in (first, second):
        await office.say("lishen", f"通过 {order.number}")
    asked = await office.say("wangfang", "开始")
    assert first.number in asked and second.number in asked and "哪一单" in asked
    assert (await office.order(first.id)).status == "已分配"  # nothing was started
    assert ts.STARTED.split("{")[0] not in asked


async def test_a_card_settled_by_a_click_shows_the_order_as_it_now_is(office: Office) -> None:  # noqa: F811
    order = await office.paid_order()
    card = (await eventually(lambda: office.cards("lishen")))[0]
    assert "待审核" in card["main_title"]["desc"]
    await office.click("lishen", card["task_id"], f"approve:{order.id}")
    for userid in ("lishen", "wangfang", "zhoushen"):
        assert await eventually(partial(office.replaced, card["task_id"], userid)) == "已通过 · 李审"
        view = office.sim.card(card["task_id"], userid)
        assert view is not None
        desc = view.card["main_title"]["desc"]
        assert "已分配" in desc and "已通过" in desc and "待审核" not in desc


async def test_an_order_paid_while_no_reviewer_is_on_duty_reaches_the_first_who_comes(
    office: Office,  # noqa: F811
) -> None:
    for reviewer in ("lishen", "zhoushen"):
        await office.say(reviewer, "下班")
    order = await office.paid_order()
    await office.say("wangfang", "待办")  # the order's turn is over: anything it sent has gone out
    assert not [c for c in office.cards("lishen") if order.number in c["main_title"]["title"]]
    await office.say("lishen", "上班")
    card = await eventually(
        lambda: [c for c in office.cards("lishen") if order.number in c["main_title"]["title"]]
    )
    await office.click("lishen", card[0]["task_id"], f"approve:{order.id}")
    assert (
        await eventually(lambda: office.order(order.id))
        and (await office.order(order.id)).review == "approved"
    )
    await office.say("lishen", "下班")
    await office.say("lishen", "上班")  # no second card for an order already reviewed
    assert len([c for c in office.cards("lishen") if order.number in c["main_title"]["title"]]) == 1


async def test_finance_releases_and_rejects_held_commissions_in_chat_with_the_evidence_in_chinese(
    office: Office,  # noqa: F811
) -> None:
    sm = office.client.app[keys.SESSIONMAKER]
    await chain(sm, "o_a", "o_b")
    await chain(sm, "o_a", "o_c")
    [held] = await earn(sm, await paid_order(sm, "o_c", payer="o_a"))  # the inviter paid for c
    [second] = await earn(sm, await paid_order(sm, "o_b", payer="o_a"))
    assert held.status == second.status == "review"
    listed = await office.say("boss", "佣金")
    assert f"#{held.id}" in listed and f"#{second.id}" in listed
    assert "同一微信 o_a 为" in listed and "same_payer" not in listed  # the evidence, in Chinese
    assert "需要财务" in await office.say("wangfang", f"佣金 放行 {held.id}")  # ops may not
    assert f"佣金 #{held.id} 已放行" in await office.say("boss", f"佣金 放行 {held.id}")
    assert f"佣金 #{second.id} 已驳回" in await office.say("boss", f"佣金 驳回 {second.id}")
    assert "已经处理过了" in await office.say("boss", f"佣金 驳回 {held.id}")
    assert "没有暂扣" in await office.say("boss", "佣金")
    async with sm() as s:
        assert (await s.get(Commission, held.id)).status == "pending"  # type: ignore[union-attr]
        assert (await s.get(Commission, second.id)).status == "reversed"  # type: ignore[union-attr]
    async with sm() as s:
        for c, action in ((held, "commission_release"), (second, "commission_reject")):
            trail = await staff.audit_trail(s, f"commission:{c.id}")
            assert [(e.actor, e.action) for e in trail] == [("staff:boss", action)]
