"""Staff in work chat, over real HTTP: WeCom (simulated) posts to /wechat/work, the desk answers through
the outbox to the simulated app API and group robot; customers pay through the simulated WeChat Pay."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.pay_sim import PaySimulator
from bot.sandbox.wecom_sim import Push, WeComSimulator
from flows import relay, texts
from flows import texts_staff as ts
from settings import Settings
from store import catalog_import, earnings, staff
from store.models import (
    AuditEntry,
    Conversation,
    Earnings,
    Order,
    OutboxMessage,
    Withdrawal,
    utcnow,
)
from store.turns import FlowState
from tests import wecom
from tests.conftest import eventually
from tests.test_ordering import CATALOG, Customer
from tests.test_paying import MCH_ID, PAY_KEY, order_course, pay_sim, payment_of
from tests.wechat import ACCOUNT

__all__ = ["pay_sim"]  # a fixture used here
ROBOT_KEY = "robot-test-key"


@dataclass
class Office:
    """The app, the WeCom simulator (app API + staff), the group robot's posts, and a customer."""

    client: TestClient
    sim: WeComSimulator
    robot: list[str]
    customer: Customer
    pay: PaySimulator
    robot_images: list[dict[str, str]] = field(default_factory=list)  # the robot's {"base64", "md5"}

    @property
    def base(self) -> str:
        return wecom.base_url(self.client)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self.client.app[keys.SESSIONMAKER]

    def texts_to(self, userid: str) -> list[str]:
        return [m.payload["content"] for m in self.sim.sent_to(userid) if m.kind == "text"]

    async def say(self, userid: str, text: str) -> str:
        """`userid` types `text`; what they are told from then until the answer was delivered — with
        any notice a background job sent them meanwhile (a backlog order handed out, say)."""
        before = len(self.texts_to(userid))
        push = await self.sim.say(self.base, userid, text)
        assert push.ok, push
        answered = await self._last_queued(userid)  # the turn committed its answer before the ack

        async def delivered() -> list[str]:
            return self.texts_to(userid)[before:] if await self._settled(userid, answered) else []

        return "\n".join(await eventually(delivered))

    async def _last_queued(self, userid: str) -> int:
        async with self.sessionmaker() as s:
            return (
                await s.scalar(
                    select(func.coalesce(func.max(OutboxMessage.id), 0)).where(
                        OutboxMessage.recipient == userid
                    )
                )
                or 0
            )

    async def _settled(self, userid: str, upto: int) -> bool:
        """Every text to `userid` queued up to `upto` was sent (or given up); a picture may retry."""
        async with self.sessionmaker() as s:
            waiting = await s.scalar(
                select(func.count()).where(
                    OutboxMessage.recipient == userid,
                    OutboxMessage.id <= upto,
                    OutboxMessage.kind == "text",
                    OutboxMessage.status.in_(("pending", "sending")),
                )
            )
        return not waiting

    async def click(self, userid: str, task_id: str, key: str) -> Push:
        push = await self.sim.click(self.base, userid, task_id, key)
        assert push.ok, push
        return push

    def replaced(self, task_id: str, userid: str) -> str | None:
        """What the buttons of `userid`'s copy of a card gave way to (None while they are there)."""
        view = self.sim.card(task_id, userid)
        return view.replace_name if view is not None else None

    def cards(self, userid: str) -> list[dict[str, Any]]:
        return [m.payload for m in self.sim.sent_to(userid) if m.kind == "template_card"]

    async def paid_order(self) -> Order:
        """The customer orders a course and pays with WeChat Pay (the real notification path)."""
        number = await order_course(self.customer)
        await self.pay.pay((await payment_of(self.client, number)).out_trade_no)
        async with self.sessionmaker() as s:
            order = await s.scalar(select(Order).where(Order.number == number))
        assert order is not None and order.status == "待审核"
        return order

    async def order(self, order_id: int) -> Order:
        async with self.sessionmaker() as s:
            found = await s.get(Order, order_id)
        assert found is not None
        return found

    async def audit(self, number: str) -> list[tuple[str, str]]:
        async with self.sessionmaker() as s:
            return [(e.actor, e.action) for e in await staff.audit_trail(s, f"order:{number}")]


@pytest.fixture
async def office(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],
    mp_sim: tuple[MpSimulator, str],
    office_settings: dict[str, Any],
) -> AsyncIterator[Office]:
    sim = wecom.simulator()
    posts: list[str] = []
    images: list[dict[str, str]] = []

    async def robot(request: web.Request) -> web.Response:
        assert request.query.get("key") == ROBOT_KEY
        body = await request.json()
        if body["msgtype"] == "image":
            images.append(body["image"])
        else:
            posts.append(body["markdown"]["content"])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    root = web.Application()
    root.router.add_post("/cgi-bin/webhook/send", robot)  # the group robot, beside the app API
    root.add_subapp("/cgi-bin/", sim.api)
    api = TestServer(root, host="127.0.0.1")
    await api.start_server()
    settings = wecom.settings(
        make_settings,
        str(api.make_url("/cgi-bin/")),
        wecom_robot_key=ROBOT_KEY,
        wechatpay_mch_id=MCH_ID,
        wechatpay_api_key=PAY_KEY,
        wechatpay_api_base=pay_sim[1],
        **office_settings,
    )
    client = await wecom.start(settings)
    pay_sim[0].notify_base = wecom.base_url(client)
    async with client.app[keys.SESSIONMAKER].begin() as s:
        await catalog_import.import_catalog(s, catalog_import.parse_catalog(CATALOG, "yaml")[0])
        for userid, name, roles, on_duty in (
            ("wangfang", "王芳", ["ops"], True),
            ("lishen", "李审", ["reviewer"], True),
            ("zhoushen", "周审", ["reviewer"], True),
            ("boss", "老板", ["admin"], False),
        ):
            await staff.add_member(
                s, userid=userid, name=name, roles=roles, on_duty=on_duty, actor="cli", now=utcnow()
            )
    try:
        customer = Customer(client, mp_sim[0], "o_desk_customer")
        yield Office(client, sim, posts, customer, pay_sim[0], images)
    finally:
        await client.close()
        await sim.close()
        await api.close()


async def test_a_paid_order_alerts_the_group_and_cards_staff_on_duty(office: Office) -> None:
    order = await office.paid_order()
    alert = await eventually(lambda: [p for p in office.robot if order.number in p])
    assert "新订单" in alert[0] and "王芳" in alert[0]  # auto-assigned to the one ops member on duty
    for userid in ("wangfang", "lishen", "zhoushen"):
        cards = await eventually(partial(office.cards, userid))
        assert cards[0]["main_title"]["title"].startswith(f"订单 {order.number}")
    assert office.cards("boss") == []  # off duty
    told = await eventually(lambda: [t for t in office.texts_to("wangfang") if order.number in t])
    assert "分给你了" in told[0]


async def test_a_card_click_approves_and_the_customer_is_told(office: Office) -> None:
    order = await office.paid_order()
    card = (await eventually(lambda: office.cards("lishen")))[0]
    await office.click("lishen", card["task_id"], f"approve:{order.id}")
    assert (await office.order(order.id)).status == "已分配"
    for userid in ("lishen", "wangfang", "zhoushen"):  # every copy shows who did it
        assert await eventually(partial(office.replaced, card["task_id"], userid)) == "已通过 · 李审"
    notice = await eventually(
        lambda: [
            m
            for m in office.customer.sim.sent
            if m.openid == office.customer.openid and "已安排专人负责" in str(m.payload)
        ]
    )
    assert order.number in notice[0].payload["content"]
    assert await office.audit(order.number) == [("system", "assign"), ("staff:lishen", "approve")]


async def test_two_reviewers_click_at_once_one_wins_and_the_other_is_told(office: Office) -> None:
    order = await office.paid_order()
    card = (await eventually(lambda: office.cards("zhoushen")))[0]
    key = f"approve:{order.id}"
    await asyncio.gather(
        office.click("lishen", card["task_id"], key), office.click("zhoushen", card["task_id"], key)
    )
    assert [a for a in await office.audit(order.number) if a[1] == "approve"] in (
        [("staff:lishen", "approve")],
        [("staff:zhoushen", "approve")],
    )
    winner = next(a[0] for a in await office.audit(order.number) if a[1] == "approve").removeprefix("staff:")
    loser, winner_name = ("zhoushen", "李审") if winner == "lishen" else ("lishen", "周审")
    told = await eventually(lambda: [t for t in office.texts_to(loser) if "不用再处理" in t])
    assert told == [ts.CARD_DONE.format(subject=f"订单 {order.number}", name=winner_name, verb="通过")]
    assert (await office.order(order.id)).status == "已分配"


async def test_a_stranger_is_refused_and_changes_nothing(office: Office) -> None:
    order = await office.paid_order()
    card = (await eventually(lambda: office.cards("lishen")))[0]
    assert await office.say("mallory", f"通过 {order.number}") == ts.NOT_STAFF.format(brand="星推")
    await office.click("mallory", card["task_id"], f"approve:{order.id}")
    await eventually(lambda: len(office.texts_to("mallory")) == 2)
    assert (await office.order(order.id)).review is None
    async with office.sessionmaker() as s:
        actors = list(await s.scalars(select(AuditEntry.actor)))
    assert "staff:mallory" not in actors
    # A removed member is a stranger too.
    async with office.sessionmaker.begin() as s:
        await staff.remove_member(s, userid="zhoushen", actor="cli", now=utcnow())
    assert await office.say("zhoushen", "待办") == ts.NOT_STAFF.format(brand="星推")


async def test_commands_lookup_queue_today_and_usage_lines(office: Office) -> None:
    order = await office.paid_order()
    detail = await office.say("lishen", f"查单 {order.number}")
    assert detail.startswith(f"订单 {order.number} · 待审核 · ¥299") and "负责：王芳" in detail
    queue = await office.say("wangfang", "待办")
    assert queue.startswith("你的待办（1）") and order.number in queue
    assert order.number in await office.say("lishen", "待办")  # reviewers see what waits for review
    today = await office.say("boss", "今日")
    assert today.startswith("📊 今日") and "GMV ¥299" in today and "付款订单 1" in today
    assert await office.say("lishen", "通过") == ts.USAGE_LINE.format(usage=ts.USAGE["通过"])
    assert await office.say("lishen", f"驳回 {order.number}") == ts.USAGE_LINE.format(usage=ts.USAGE["驳回"])
    typo = await office.say("lishen", f"通国 {order.number}")
    assert typo == ts.DID_YOU_MEAN.format(word="通国", usage=ts.USAGE["通过"])
    assert await office.say("lishen", "查单 20990101-0001") == ts.ORDER_NOT_FOUND.format(
        number="20990101-0001"
    )
    assert (await office.say("lishen", "你好")).startswith("没看懂「你好」")


async def test_work_through_an_order_in_chat(office: Office) -> None:
    order = await office.paid_order()
    forbidden = await office.say("lishen", f"开始 {order.number}")
    assert forbidden == ts.FORBIDDEN.format(command="开始", roles="运营或管理员", mine="审核")
    assert (await office.say("lishen", f"通过{order.number}")).startswith(f"✅ {order.number} 审核通过")
    assert (await office.say("wangfang", f"开始 {order.number}")).startswith(f"🚀 {order.number}")
    published = await office.say("wangfang", f"发布 {order.number} https://www.douyin.com/video/1 第一课")
    assert "https://www.douyin.com/video/1" in published
    await eventually(
        lambda: [
            m for m in office.customer.sim.sent if "第一课" in str(m.payload) and "已发布" in str(m.payload)
        ]
    )
    assert (await office.say("wangfang", f"完成 {order.number}")).startswith(f"🎉 {order.number}")
    done = await office.order(order.id)
    assert done.status == "已完成" and done.deliverables[0]["title"] == "第一课"
    assert await office.audit(order.number) == [
        ("system", "assign"),
        ("staff:lishen", "approve"),
        ("staff:wangfang", "start"),
        ("staff:wangfang", "publish"),
        ("staff:wangfang", "complete"),
    ]
    # The card sent at payment was settled by the typed 通过: a late click is answered, not re-applied.
    card = office.cards("zhoushen")[0]
    await office.click("zhoushen", card["task_id"], f"approve:{order.id}")
    told = await eventually(lambda: [t for t in office.texts_to("zhoushen") if "不用再处理" in t])
    assert "李审 通过" in told[0]


async def test_reject_from_a_card_asks_for_the_reason(office: Office) -> None:
    order = await office.paid_order()
    card = (await eventually(lambda: office.cards("lishen")))[0]
    await office.click("lishen", card["task_id"], f"reject:{order.id}")
    asked = await eventually(lambda: office.texts_to("lishen"))
    assert asked == [ts.REJECT_ASK.format(number=order.number)]
    answer = await office.say("lishen", "联系人电话打不通，请换一个")
    assert answer == ts.REJECTED.format(number=order.number, reason="联系人电话打不通，请换一个")
    assert (await office.order(order.id)).review == "resubmit"
    assert await eventually(lambda: office.replaced(card["task_id"], "zhoushen")) == "已驳回 · 李审"
    asked_customer = await eventually(
        lambda: [m for m in office.customer.sim.sent if "联系人电话打不通" in str(m.payload)]
    )
    assert order.number in str(asked_customer[0].payload)
    # The question is answered: the next text is a command again.
    assert (await office.say("lishen", "帮助")).startswith("工作台指令")


async def test_admins_manage_staff_in_chat(office: Office) -> None:
    added = await office.say("boss", "员工 添加 xiaozhao 小赵 运营,审核 课程")
    assert added == ts.STAFF_ADDED.format(
        name="小赵", userid="xiaozhao", roles="运营、审核", skills=" · 课程"
    )
    assert "小赵（xiaozhao）运营、审核 · 上班" in await office.say("boss", "员工 列表")
    refused = await office.say("wangfang", "员工 添加 x 某人 admin")
    assert refused.startswith("「员工」需要管理员权限")
    assert await office.say("boss", "员工 值班 小赵 off") == ts.DUTY_SET.format(name="小赵", state="下班")
    assert (await office.say("boss", "员工 移除 xiaozhao")).startswith("已移除 小赵（xiaozhao）")
    async with office.sessionmaker() as s:
        trail = [(e.actor, e.action) for e in await staff.audit_trail(s, "staff:xiaozhao")]
    assert trail == [("staff:boss", "staff_add"), ("staff:boss", "duty_off"), ("staff:boss", "staff_remove")]
    assert re.search(r"在办 \d+/\d+", await office.say("boss", "员工 列表"))


async def test_finance_decides_withdrawals_from_cards_and_commands(office: Office) -> None:
    settings = office.client.app[keys.SETTINGS]
    async with office.sessionmaker.begin() as s:
        await staff.add_member(s, userid="zhaocai", name="赵财", roles=["finance"], actor="cli", now=utcnow())
        made = []
        for openid, amount in (("o_creator_a", 20_000), ("o_creator_b", 15_000)):
            s.add(Earnings(account=ACCOUNT, openid=openid, available_fen=50_000))
            await s.flush()
            made.append(
                await earnings.request_withdrawal(
                    s, account=ACCOUNT, openid=openid, amount_fen=amount, settings=settings, now=utcnow()
                )
            )
    first, second = made
    assert (await office.say("wangfang", "提现")).startswith("「提现」需要财务或管理员权限")
    listing = await office.say("zhaocai", "提现")
    assert listing.startswith("待审提现 2 笔") and f"#{first.id} · ¥200" in listing
    cards = await eventually(lambda: len(office.cards("zhaocai")) == 2 and office.cards("zhaocai"))
    await office.click("zhaocai", cards[0]["task_id"], f"wd_approve:{first.id}")
    assert await eventually(lambda: office.replaced(cards[0]["task_id"], "zhaocai")) == "已批准 · 赵财"
    refused = await office.say("zhaocai", f"提现 拒绝 {second.id} 收款信息不完整")
    assert refused == ts.WITHDRAWAL_REFUSED.format(id=second.id, reason="收款信息不完整")
    late = await office.say("zhaocai", f"提现 通过 {second.id}")
    assert late == ts.DOMAIN_ERRORS["withdrawal_decided"].format(id=second.id, status="已拒绝")
    async with office.sessionmaker() as s:
        statuses = {w.id: w.status for w in await s.scalars(select(Withdrawal))}
        trail = [
            (e.actor, e.action, e.target) for e in await s.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]
    assert statuses[second.id] == "refused"
    assert statuses[first.id] in ("approved", "paid")  # the approval woke the payout job
    assert ("staff:zhaocai", "withdrawal_approve", f"withdrawal:{first.id}") in trail
    assert ("staff:zhaocai", "withdrawal_refuse", f"withdrawal:{second.id}") in trail
    told = await eventually(
        lambda: [m for m in office.customer.sim.sent if m.openid in ("o_creator_a", "o_creator_b")]
    )
    assert {m.openid for m in told} <= {"o_creator_a", "o_creator_b"}


async def test_finance_refunds_to_the_balance_from_chat(office: Office) -> None:
    order = await office.paid_order()
    async with office.sessionmaker.begin() as s:
        await staff.add_member(s, userid="zhaocai", name="赵财", roles=["finance"], actor="cli", now=utcnow())
    assert await office.say("zhaocai", f"退款 {order.number}") == ts.USAGE_LINE.format(usage=ts.USAGE["退款"])
    too_much = await office.say("zhaocai", f"退款 {order.number} 500 客户不要了")
    assert too_much == ts.DOMAIN_ERRORS["refund_exceeds"].format(refundable="¥299")
    done = await office.say("zhaocai", f"退款 {order.number} 100 活动取消")
    assert done == ts.REFUNDED_TO_BALANCE.format(number=order.number, amount="¥100")
    assert (await office.order(order.id)).status == order.status  # ¥199 still paid: the work goes on
    assert "· 待审核 · ¥299（已退 ¥100）" in await office.say("zhaocai", f"查单 {order.number}")
    assert "合计 ¥299（已退 ¥100）" in await office.customer.say(order.number)
    assert await office.say("zhaocai", f"退款 {order.number} 活动取消") == ts.REFUNDED_TO_BALANCE.format(
        number=order.number, amount="¥199"
    )
    assert (await office.order(order.id)).status == "已退款"
    assert [a for a in await office.audit(order.number) if a[1] == "refund"] == [
        ("staff:zhaocai", "refund")
    ] * 2


async def test_a_reply_waits_while_a_turn_of_the_customer_is_under_way(office: Office) -> None:
    """Staff changes to a customer's conversation take the customer's lock, as their own turns do: a
    message of theirs handled at that instant cannot write over the relay mode the reply turns on."""
    order = await office.paid_order()
    await eventually(lambda: [t for t in office.texts_to("wangfang") if "分给你了" in t])
    locks = office.client.app[keys.LOCKS]
    async with locks.hold(order.account, order.openid):  # a customer turn under way
        reply = asyncio.create_task(office.say("wangfang", f"回复 {order.number} 明天上午开始"))
        await asyncio.sleep(0.3)
        assert not reply.done()
        async with office.sessionmaker() as s:
            assert await relay.thread(s, order.id) == []
    assert await reply == ts.REPLY_SENT.format(number=order.number)
    async with office.sessionmaker() as s:
        conv = await s.get(Conversation, (order.account, order.openid))
    assert conv is not None and relay.relay_state(FlowState(conv.flow, conv.step, conv.data), utcnow())


async def test_finance_refunds_through_wechat_pay_from_chat(office: Office) -> None:
    """`退款 … 原路`: WeChat Pay is asked, its refund notification finishes the order, the customer is told;
    a refund WeChat Pay refuses is reported to staff and counts for nothing."""
    order = await office.paid_order()
    async with office.sessionmaker.begin() as s:
        await staff.add_member(s, userid="zhaocai", name="赵财", roles=["finance"], actor="cli", now=utcnow())
    office.pay.fail_next("refund", "NOTENOUGH")
    refused = await office.say("zhaocai", f"退款 {order.number} 活动取消 原路")
    assert refused == ts.REFUND_REFUSED.format(number=order.number, reason="余额不足")
    # Still to be refunded (退款中), but nothing went out and nothing is counted as refunded.
    assert (await office.order(order.id)).status == "退款中"
    assert sum(o.refunded for o in office.pay.orders.values()) == 0
    assert ("staff:zhaocai", "refund_failed") in await office.audit(order.number)

    asked = await office.say("zhaocai", f"退款 {order.number} 活动取消 原路")
    assert asked == ts.REFUND_ASKED.format(number=order.number, amount="¥299")
    told = texts.REFUNDED_TO_WECHAT.format(number=order.number, amount="¥299")
    await eventually(lambda: [m for m in office.customer.sim.sent if m.payload.get("content") == told])
    assert (await office.order(order.id)).status == "已退款"
    assert sum(o.refunded for o in office.pay.orders.values()) == 29_900


async def test_finance_turns_down_a_refund_request_and_the_customer_hears_why(office: Office) -> None:
    order = await office.paid_order()
    async with office.sessionmaker.begin() as s:
        await staff.add_member(s, userid="zhaocai", name="赵财", roles=["finance"], actor="cli", now=utcnow())
    await office.customer.say(f"申请退款 {order.number} 不想要了")
    alert = await eventually(lambda: [p for p in office.robot if "退款申请" in p])
    assert f"拒绝退款 {order.number} 原因" in alert[0]

    assert "财务" in await office.say("wangfang", f"拒绝退款 {order.number} 不行")  # ops may not
    usage = await office.say("zhaocai", f"拒绝退款 {order.number}")
    assert usage == ts.USAGE_LINE.format(usage=ts.USAGE["拒绝退款"])
    reason = "课程已开始学习，按约定不支持退款"
    done = await office.say("zhaocai", f"拒绝退款 {order.number} {reason}")
    assert done == ts.REFUND_DECLINED.format(number=order.number, status="待审核")
    told = texts.REFUND_DECLINED.format(number=order.number, reason=reason, status="待审核")
    await eventually(lambda: [m for m in office.customer.sim.sent if m.payload.get("content") == told])
    assert (await office.order(order.id)).status == "待审核"
    assert ("staff:zhaocai", "refund_decline") in await office.audit(order.number)
    again = await office.say("zhaocai", f"拒绝退款 {order.number} {reason}")
    assert again == ts.DOMAIN_ERRORS["not_refunding"].format(number=order.number, status="待审核")
