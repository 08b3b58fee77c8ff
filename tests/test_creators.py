"""Creators over the real webhook: binding by invite QR, commissions, 收益, 团队, 提现 and the payout."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update

from bot import keys
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.pay_sim import PaySimulator
from flows import texts
from flows.creators import decide_withdrawal, pay_out, release_commissions
from flows.notices import order_notice
from flows.payments import refund_order
from settings import Settings
from store import catalog_import, creators, orders, payments
from store.models import Commission, Earnings, Order, Referral, Service, Withdrawal, utcnow
from store.orders import OrderStatus
from tests.conftest import eventually, start_bot
from tests.test_ordering import CATALOG, Customer
from tests.test_paying import MCH_ID, PAY_KEY, pay_sim  # noqa: F401  (fixture)
from tests.wechat import ACCOUNT, WeChat

_clock = itertools.count(1_800_000_000, 7)  # distinct CreateTimes: an event's dedupe key includes it


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> AsyncIterator[TestClient]:
    client = await open_shop(make_settings, pay_sim)
    yield client
    await client.close()


@pytest.fixture
async def first_paid_shop(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> AsyncIterator[TestClient]:
    client = await open_shop(make_settings, pay_sim, referral_policy="first_paid")
    yield client
    await client.close()


async def open_shop(
    make_settings: Callable[..., Settings], sim_and_base: tuple[PaySimulator, str], **overrides: Any
) -> TestClient:
    sim, base = sim_and_base
    client = await start_bot(
        make_settings(
            wechatpay_mch_id=MCH_ID, wechatpay_api_key=PAY_KEY, wechatpay_api_base=base, **overrides
        )
    )
    sim.notify_base = str(client.make_url("")).rstrip("/")
    specs, _ = catalog_import.parse_catalog(CATALOG, "yaml")
    async with client.app[keys.SESSIONMAKER].begin() as session:
        await catalog_import.import_catalog(session, specs)
        # The course pays its buyer's inviter half its price, so one order is enough to withdraw.
        await session.execute(update(Service).where(Service.code == "dy-course").values(commission_bp=5000))
    return client


def person(shop: TestClient, mp_sim: tuple[MpSimulator, str], openid: str) -> Customer:
    return Customer(shop, mp_sim[0], openid)


async def code_of(shop: TestClient, openid: str) -> str:
    async with shop.app[keys.SESSIONMAKER].begin() as session:
        return (await creators.get_or_create(session, account=ACCOUNT, openid=openid)).code


async def follow(shop: TestClient, openid: str, scene: str, *, at: int | None = None) -> str:
    """Subscribe through a QR (the event WeChat sends), returning what the newcomer was told."""
    answer = await WeChat(shop).event(openid, "subscribe", f"qrscene_{scene}", at=at or next(_clock))
    assert answer.status == 200
    return answer.text or ""


async def scan(shop: TestClient, openid: str, scene: str) -> str:
    answer = await WeChat(shop).event(openid, "SCAN", scene, at=next(_clock))
    return answer.text or ""


def told(mp_sim: tuple[MpSimulator, str], openid: str) -> list[str]:
    return [str(m.payload.get("content", "")) for m in mp_sim[0].sent if m.openid == openid]


async def inviter_of(shop: TestClient, openid: str) -> str | None:
    async with shop.app[keys.SESSIONMAKER]() as s:
        return await s.scalar(
            select(Referral.inviter_openid).where(
                Referral.invitee_openid == openid, Referral.status == "bound"
            )
        )


async def chain(shop: TestClient, *openids: str) -> None:
    """openids[0] invites openids[1], who invites openids[2], …"""
    for inviter, invitee in itertools.pairwise(openids):
        await follow(shop, invitee, f"inv_{await code_of(shop, inviter)}")
        assert await inviter_of(shop, invitee) == inviter


async def test_a_scan_binds_the_newcomer_and_the_inviter_hears_with_progress(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    code = await code_of(shop, "o_amy")
    welcome = await follow(shop, "o_bob", f"inv_{code}")
    assert texts.WELCOME.format(brand="星推").splitlines()[0] in welcome
    assert "加入 TA 的团队" in welcome
    assert await inviter_of(shop, "o_bob") == "o_amy"
    heard = await eventually(lambda: told(mp_sim, "o_amy"))
    assert "新成员" in heard[0] and "加入了你的团队" in heard[0]
    assert "已邀请 1 人，还差 2 人升级为二星" in heard[0]

    await follow(shop, "o_cat", f"inv_{code}")
    heard = await eventually(lambda: told(mp_sim, "o_amy")[1:])
    assert "已邀请 2 人，还差 1 人升级为二星" in heard[0]

    await follow(shop, "o_dan", f"inv_{code}")
    heard = await eventually(lambda: len(told(mp_sim, "o_amy")) >= 4 and told(mp_sim, "o_amy")[2:])
    assert any("升级为「二星」" in h for h in heard)


async def test_first_touch_wins_and_replays_change_nothing(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    amy, zed = await code_of(shop, "o_amy"), await code_of(shop, "o_zed")
    at = next(_clock)
    await follow(shop, "o_bob", f"inv_{amy}", at=at)
    for _ in range(3):  # WeChat's retries of the very same event
        await follow(shop, "o_bob", f"inv_{amy}", at=at)
    await scan(shop, "o_bob", f"inv_{zed}")  # a later scan of someone else's poster
    assert await inviter_of(shop, "o_bob") == "o_amy"
    await eventually(lambda: told(mp_sim, "o_amy"))
    assert len([t for t in told(mp_sim, "o_amy") if "新成员" in t]) == 1
    assert told(mp_sim, "o_zed") == []


async def test_self_invites_and_cycles_are_refused(shop: TestClient) -> None:
    await chain(shop, "o_amy", "o_bob", "o_cat")
    assert "自己的邀请码" in await scan(shop, "o_amy", f"inv_{await code_of(shop, 'o_amy')}")
    await scan(shop, "o_amy", f"inv_{await code_of(shop, 'o_cat')}")  # would close amy → bob → cat → amy
    assert await inviter_of(shop, "o_amy") is None
    async with shop.app[keys.SESSIONMAKER]() as s:
        assert await s.scalar(select(func.count()).select_from(Referral)) == 2


@pytest.mark.parametrize("scene", ["inv_ZZZZZZ", "inv_", "inv_!!", "inv_" + "A" * 40])
async def test_unknown_or_malformed_codes_are_ignored_politely(shop: TestClient, scene: str) -> None:
    welcome = await follow(shop, "o_newbie", scene)
    assert texts.WELCOME.format(brand="星推").splitlines()[0] in welcome
    assert await inviter_of(shop, "o_newbie") is None


async def pay_course(shop: TestClient, buyer: Customer, top_up_fen: int = 29_900) -> str:
    """The buyer orders the ¥299 course and pays from a balance topped up for it."""
    async with shop.app[keys.SESSIONMAKER].begin() as session:
        await payments.credit(
            session,
            account=ACCOUNT,
            openid=buyer.openid,
            amount_fen=top_up_fen,
            kind="topup",
            key=f"test-topup:{buyer.openid}:{next(_clock)}",
        )
    for said in ("搜 课程", "1", "下单 ①", "王芳 13800138000", "确认"):
        await buyer.say(said)
    paid = await buyer.say("余额支付")
    assert "支付成功" in paid or "已用余额" in paid, paid
    async with shop.app[keys.SESSIONMAKER]() as s:
        number = await s.scalar(
            select(Order.number).where(Order.openid == buyer.openid).order_by(Order.id.desc()).limit(1)
        )
    assert number
    return number


async def complete(shop: TestClient, number: str) -> None:
    async with shop.app[keys.SESSIONMAKER].begin() as session:
        order = await orders.order_by_number(session, number)
        assert order is not None
        for to in (OrderStatus.ASSIGNED, OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
            await orders.transition(
                session, order_id=order.id, to=to, actor="staff:test", notify=order_notice
            )


async def commissions_of(shop: TestClient) -> dict[str, tuple[int, int, str]]:
    async with shop.app[keys.SESSIONMAKER]() as s:
        rows = await s.scalars(select(Commission))
        return {c.openid: (c.depth, c.amount_fen, c.status) for c in rows}


async def test_commissions_go_three_levels_up_and_never_further(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    await chain(shop, "o_top", "o_l3", "o_l2", "o_l1", "o_buyer")
    await pay_course(shop, person(shop, mp_sim, "o_buyer"))
    made = await eventually(lambda: commissions_of(shop))
    assert made == {
        "o_l1": (1, 14_950, "pending"),  # the course's 50 %
        "o_l2": (2, 897, "pending"),  # 一星: 3 % two levels down
        "o_l3": (3, 299, "pending"),  # 一星: 1 % three levels down
    }
    assert "o_top" not in made  # a fourth level would be illegal
    heard = await eventually(lambda: [t for t in told(mp_sim, "o_l1") if "预计为你带来" in t])
    assert "¥149.50" in heard[0] and "直推佣金" in heard[0]


async def test_first_paid_binds_at_the_first_payment_and_pays_the_inviter(
    first_paid_shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    shop = first_paid_shop
    await follow(shop, "o_bob", f"inv_{await code_of(shop, 'o_amy')}")
    assert await inviter_of(shop, "o_bob") is None  # only a candidate until Bob pays
    assert told(mp_sim, "o_amy") == []
    await pay_course(shop, person(shop, mp_sim, "o_bob"))
    assert await inviter_of(shop, "o_bob") == "o_amy"
    heard = await eventually(lambda: [t for t in told(mp_sim, "o_amy") if "加入了你的团队" in t])
    assert "已邀请 1 人，还差 2 人升级为二星" in heard[0]
    assert await eventually(lambda: commissions_of(shop)) == {"o_amy": (1, 14_950, "pending")}
    await eventually(lambda: [t for t in told(mp_sim, "o_amy") if "预计为你带来" in t])


async def approve_only_withdrawal(shop: TestClient) -> None:
    sm = shop.app[keys.SESSIONMAKER]
    async with sm() as s:
        withdrawal_id = (await s.scalars(select(Withdrawal.id))).one()
    await decide_withdrawal(
        sm, withdrawal_id=withdrawal_id, approve=True, actor="operator:test", now=utcnow()
    )


async def test_earn_release_withdraw_and_be_paid(
    shop: TestClient,
    mp_sim: tuple[MpSimulator, str],
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    await chain(shop, "o_amy", "o_bob")
    amy = person(shop, mp_sim, "o_amy")
    number = await pay_course(shop, person(shop, mp_sim, "o_bob"))
    assert "待结算　¥149.50" in await amy.say("收益")
    assert "可提现余额不足" in await amy.say("提现 100")  # nothing available before release

    await complete(shop, number)
    settings, sm = shop.app[keys.SETTINGS], shop.app[keys.SESSIONMAKER]
    assert await release_commissions(sm, settings, utcnow()) == 0  # still frozen
    assert await release_commissions(sm, settings, utcnow() + dt.timedelta(days=8)) == 1
    earnings = await amy.say("收益")
    assert "可提现　¥149.50" in earnings and "已到账" in earnings

    assert "最低 ¥100" in await amy.say("提现 50")
    requested = await amy.say("提现 120")
    assert "申请 ¥120，手续费 ¥1.20，实际到账 ¥118.80" in requested
    assert "提现中　¥120" in await amy.say("收益")
    assert "处理中" in await amy.say("提现 100")  # one request at a time; the held ¥120 is not available

    async with sm() as s:
        withdrawal_id = (await s.scalars(select(Withdrawal.id))).one()
    await decide_withdrawal(
        sm, withdrawal_id=withdrawal_id, approve=True, actor="operator:test", now=utcnow()
    )
    assert await pay_out(sm, shop.app[keys.PAY], settings, utcnow()) == 1
    assert await pay_out(sm, shop.app[keys.PAY], settings, utcnow()) == 0  # paid once
    transfers = pay_sim[0].transfers
    assert [(t.openid, t.amount) for t in transfers.values()] == [("o_amy", 11_880)]
    heard = await eventually(lambda: [t for t in told(mp_sim, "o_amy") if "提现到账" in t])
    assert "¥118.80" in heard[0]
    summary = await amy.say("收益")
    assert "可提现　¥29.50" in summary and "已提现　¥120" in summary


async def test_a_refund_after_withdrawal_is_carried_as_debt_and_blocks_withdrawals(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    await chain(shop, "o_amy", "o_bob")
    amy = person(shop, mp_sim, "o_amy")
    number = await pay_course(shop, person(shop, mp_sim, "o_bob"))
    await complete(shop, number)
    settings, sm = shop.app[keys.SETTINGS], shop.app[keys.SESSIONMAKER]
    await release_commissions(sm, settings, utcnow() + dt.timedelta(days=8))
    await amy.say("提现 140")
    async with sm() as s:
        withdrawal_id = (await s.scalars(select(Withdrawal.id))).one()
    await decide_withdrawal(
        sm, withdrawal_id=withdrawal_id, approve=True, actor="operator:test", now=utcnow()
    )
    await pay_out(sm, shop.app[keys.PAY], settings, utcnow())

    await refund_order(
        sm,
        None,
        number=number,
        amount_fen=None,
        destination="balance",
        actor="staff:test",
        reason="客户取消",
        notify_url="",
    )
    async with sm() as s:
        cached = await s.get(Earnings, (ACCOUNT, "o_amy"))
    assert cached is not None and cached.available_fen == 950 - 14_950 + 0  # ¥9.50 left minus ¥149.50 back
    heard = await eventually(lambda: [t for t in told(mp_sim, "o_amy") if "已扣回" in t])
    assert "¥149.50" in heard[0] and "抵扣" in heard[0]
    assert "补齐之前暂不能提现" in await amy.say("提现 100")
    assert "可提现为负" in await amy.say("收益")


async def test_team_shows_levels_sales_and_a_tree_picture(
    shop: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    from posters.fonts import find_cjk_font

    await chain(shop, "o_amy", "o_bob", "o_cat")
    await follow(shop, "o_dan", f"inv_{await code_of(shop, 'o_amy')}")
    number = await pay_course(shop, person(shop, mp_sim, "o_cat"))
    await complete(shop, number)
    amy = person(shop, mp_sim, "o_amy")
    team = await amy.say("团队")  # the figures at once; the tree picture follows by API
    assert "一级成员 2 人 · 二级 1 人 · 三级 0 人" in team
    assert "本月团队业绩 ¥299" in team and "还差 1 人升级为二星" in team
    if find_cjk_font() is not None:  # the picture needs a CJK font; the text says everything anyway
        uploads = await eventually(
            lambda: [m for m in mp_sim[0].sent if m.openid == "o_amy" and m.kind == "image"]
        )
        assert mp_sim[0].media[uploads[-1].payload["media_id"]][1].startswith(b"\x89PNG")
    assert texts.TEAM_EMPTY in await person(shop, mp_sim, "o_dan").say("团队")
