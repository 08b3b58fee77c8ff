"""Flash sales (秒杀) through the real app over HTTP: seeing a sale, the rush, holds, the waitlist,
payments after a hold ran out, and the operator's file — on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from bot import keys
from bot.cli import main
from bot.sandbox.mp_sim import MpSimulator, SentMessage
from bot.sandbox.pay_sim import PaySimulator
from flows import flash as flow
from flows import flash_slots, texts
from flows.notices import quiet
from settings import Settings
from store import catalog_import, coupons, flash, orders, payments
from store.models import (
    FlashPaySlot,
    FlashSale,
    FlashTake,
    LedgerEntry,
    Order,
    Package,
    Payment,
    Service,
    User,
    utcnow,
)
from store.orders import BEIJING
from tests import wechat
from tests.conftest import HAVE_REDIS, REDIS_URL, eventually, start_bot
from tests.test_ordering import CATALOG, Customer, in_days
from tests.test_paying import MCH_ID, PAY_KEY, pay_sim
from tests.test_work_chat import Office, office
from webhooks.pay import PAY_HOOKS

__all__ = ["office", "pay_sim"]  # fixtures used here


def beijing(at: dt.datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def sale_yaml(
    code: str = "coffee",
    *,
    starts: dt.timedelta = -dt.timedelta(minutes=1),
    lasts: dt.timedelta = dt.timedelta(hours=1),
    stock: int = 3,
    limit: int = 1,
    price: str = "9.9",
    tiers: str = "",
    hold: int = 5,
) -> str:
    start = utcnow() + starts
    return (
        f"code: {code}\n"
        "title: 探店图文秒杀\n"
        "service: xhs-xiaolu\n"
        "package: 1\n"
        f"price: {price}\n"
        f"{tiers}"
        f"stock: {stock}\n"
        f"limit: {limit}\n"
        f"starts: {beijing(start)}\n"
        f"ends: {beijing(start + lasts)}\n"
        f"hold_minutes: {hold}\n"
        "reminders: [24h, 1h, 0]\n"
        "remarket: [xhs-ajie]\n"
    )


@dataclass
class Shop:
    client: TestClient
    mp: MpSimulator
    pay: PaySimulator
    settings: Settings

    @property
    def sm(self) -> async_sessionmaker[AsyncSession]:
        return self.client.app[keys.SESSIONMAKER]

    def customer(self, openid: str) -> Customer:
        return Customer(self.client, self.mp, openid)

    async def sale(self, text: str) -> FlashSale:
        spec, errors = flash.parse_sale(text)
        assert not errors, errors
        async with self.sm.begin() as s:
            sale, errors = await flash.create_sale(s, spec, now=utcnow())
        assert sale is not None, errors
        return sale

    async def takes(self, **where: Any) -> list[FlashTake]:
        async with self.sm() as s:
            stmt = select(FlashTake).filter_by(**where).order_by(FlashTake.id)
            return list(await s.scalars(stmt))

    async def order(self, order_id: int | None) -> Order:
        async with self.sm() as s:
            found = await s.get(Order, order_id)
        assert found is not None
        return found

    async def sweep(self, *, after: dt.timedelta = dt.timedelta(0)) -> int:
        """The hold sweep, run now (or as if `after` had passed)."""
        gate = flash.FlashGate(self.client.app[keys.REDIS]) if self.client.app[keys.REDIS] else None
        return await flow.sweep(self.sm, self.settings, gate, utcnow() + after)

    def sent_to(self, openid: str) -> list[str]:
        return [str(m.payload.get("content", "")) for m in self.mp.sent if m.openid == openid]


@pytest.fixture
async def shop(
    make_settings: Callable[..., Settings],
    pay_sim: tuple[PaySimulator, str],
    mp_sim: tuple[MpSimulator, str],
    db_url: str,
) -> AsyncIterator[Shop]:
    """The app with WeChat Pay; on PostgreSQL it also runs with Redis (the Lua gate answers first)."""
    extra: dict[str, Any] = {}
    redis = None
    if db_url.startswith("postgresql"):
        if not HAVE_REDIS:
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        await redis.flushdb()  # this engineer's own test db
        extra["redis_url"] = REDIS_URL
    settings = make_settings(
        database_url=db_url,
        wechatpay_mch_id=MCH_ID,
        wechatpay_api_key=PAY_KEY,
        wechatpay_api_base=pay_sim[1],
        flash_throttle_ms=0,
        **extra,
    )
    client = await start_bot(settings)
    pay_sim[0].notify_base = str(client.make_url("")).rstrip("/")
    async with client.app[keys.SESSIONMAKER].begin() as s:
        await catalog_import.import_catalog(s, catalog_import.parse_catalog(CATALOG, "yaml")[0])
    yield Shop(client, mp_sim[0], pay_sim[0], settings)
    await client.close()
    if redis is not None:
        await redis.flushdb()
        await redis.aclose()


def number_in(text: str) -> str:
    found = re.search(r"订单 (\d{8}-\d{4})", text)
    assert found, text
    return found.group(1)


# --- Seeing a sale -------------------------------------------------------------------------------


async def test_flash_lists_upcoming_and_live_sales_with_their_prices(shop: Shop) -> None:
    await shop.sale(sale_yaml("later", starts=dt.timedelta(hours=2, minutes=13, seconds=30), stock=50))
    await shop.sale(sale_yaml("now", stock=37, tiers="tiers:\n  - {first: 10, price: 5}\n"))
    said = await shop.customer("o_look").say("秒杀")
    assert "还有 2 小时 13 分开抢" in said
    assert "进行中，仅剩 37 件" in said
    assert "¥9.90（原价 ¥1,000）" in said
    assert "前 10 单 ¥5，之后 ¥9.90" in said
    detail = await shop.customer("o_look").say("1")
    assert "每人限 1 件" in detail and "现在就发「抢」" in detail


async def test_a_poster_qr_and_a_menu_button_open_the_sale(shop: Shop) -> None:
    await shop.sale(sale_yaml("poster", stock=5))
    chat = wechat.WeChat(shop.client)
    first = await chat.event("o_newcomer", "subscribe", "qrscene_flash_poster")
    assert first.text and "欢迎" in first.text and "探店图文秒杀" in first.text
    again = await chat.event("o_follower", "SCAN", "flash_poster")
    assert again.text and "仅剩 5 件" in again.text
    click = await chat.event("o_follower", "CLICK", "flash_poster")
    assert click.text and "仅剩 5 件" in click.text
    unknown = await chat.event("o_follower", "SCAN", "flash_nosuch")
    assert unknown.text and "没有找到秒杀" in unknown.text


async def _pay(shop: Shop, openid: str) -> None:
    (take,) = await shop.takes(openid=openid)
    async with shop.sm() as s:
        payment = await s.scalar(select(Payment).where(Payment.order_id == take.order_id))
    assert payment is not None
    await shop.pay.pay(payment.out_trade_no)


async def test_the_report_lists_the_qr_channels_that_brought_takes_and_payments(shop: Shop) -> None:
    await shop.sale(sale_yaml("scenes", stock=6))
    chat = wechat.WeChat(shop.client)
    came = {
        "o_poster": ("subscribe", "qrscene_flash_scenes@poster1"),
        "o_group": ("SCAN", "flash_scenes@群2"),
        "o_group2": ("SCAN", "flash_scenes@群2"),
        "o_typo": ("SCAN", "flash_scenes@bad channel!"),  # not a channel: the sale's plain QR
        "o_plain": ("SCAN", "flash_scenes"),
    }
    for openid, (event, key) in came.items():
        shown = await chat.event(openid, event, key)
        assert shown.text and "仅剩 6 件" in shown.text, shown.text
    await shop.customer("o_list").say("秒杀")  # not through a QR
    for openid in [*came, "o_list"]:
        assert "抢到了" in await shop.customer(openid).say("抢")
    for openid in ("o_poster", "o_group", "o_typo", "o_list"):
        await _pay(shop, openid)
    scenes = {t.openid: t.scene for t in await shop.takes()}
    assert scenes == {
        "o_poster": "poster1",
        "o_group": "群2",
        "o_group2": "群2",
        "o_typo": "",
        "o_plain": "",
        "o_list": None,
    }
    async with shop.sm() as s:
        view = await flash.sale_by_code(s, "scenes")
        assert view is not None
        report = await flow.staff_view(s, view, utcnow())
    lines = report.split("二维码来源", 1)[1].splitlines()[1:]
    assert lines == [
        "· 默认二维码：抢到 2 · 付款 1 · ¥9.90",  # ties: the plain QR first, then by name
        "· 群2：抢到 2 · 付款 1 · ¥9.90",
        "· poster1：抢到 1 · 付款 1 · ¥9.90",
        "· 不是扫码来的（列表、菜单、提醒）：抢到 1",
    ]


async def test_the_last_qr_counts_and_a_waitlist_place_keeps_its_channel(shop: Shop) -> None:
    await shop.sale(sale_yaml("last", stock=1))
    chat = wechat.WeChat(shop.client)
    await chat.event("o_first", "SCAN", "flash_last@海报A")
    await chat.event("o_first", "SCAN", "flash_last@海报B")
    assert "抢到了" in await shop.customer("o_first").say("抢")
    await chat.event("o_later", "SCAN", "flash_last@朋友圈")
    assert "抢光" in await shop.customer("o_later").say("抢")
    assert "候补" in await shop.customer("o_later").say("候补")
    await shop.sweep(after=dt.timedelta(minutes=6))  # o_first's hold lapses: offered to o_later
    assert [(t.openid, t.scene, t.via) for t in await shop.takes(status="held")] == [
        ("o_later", "朋友圈", "waitlist")
    ]
    assert [t.scene for t in await shop.takes(openid="o_first")] == ["海报B"]


def test_the_report_shows_the_top_five_channels_then_the_rest_together() -> None:
    scenes = [flash.SceneFigures(f"ch{n}", 10 - n, 1, 990) for n in range(7)]
    figures = flash.Figures(
        stock=60, available=0, held=49, paid=7, released=0, takers=56, buyers=7, revenue_fen=6930,
        waitlist=0, waitlist_served=0,
    )  # fmt: skip
    lines = flow.scene_lines(scenes, figures).strip().splitlines()[1:]
    assert lines[0] == "· ch0：抢到 10 · 付款 1 · ¥9.90"
    assert lines[4].startswith("· ch4：")
    assert lines[5] == "· 其他 2 个渠道：抢到 9 · 付款 2 · ¥19.80"
    assert lines[6] == "· 不是扫码来的（列表、菜单、提醒）：抢到 7"
    assert "还没有人扫码" in flow.scene_lines([], figures)


async def test_an_operator_mints_a_channel_qr_for_a_sale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shop: Shop
) -> None:
    await shop.sale(sale_yaml("mint"))
    env = {
        "CHATORDER_DATABASE_URL": shop.settings.database_url,
        "WECHAT_APP_ID": shop.settings.wechat_app_id,
        "WECHAT_APP_SECRET": shop.settings.wechat_app_secret.get_secret_value(),
        "WECHAT_API_BASE": shop.settings.wechat_api_base,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    png = tmp_path / "qr.png"
    argv = ["flash", "qr", "mint", "--channel", "海报A", "--out", str(png)]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "scene flash_mint@海报A" in out
    assert png.read_bytes().startswith(b"\x89PNG")
    (issued,) = shop.mp.qrcodes.values()
    assert issued["scene"] == {"scene_str": "flash_mint@海报A"}
    assert await asyncio.to_thread(main, ["flash", "qr", "mint", "--channel", "bad channel"]) == 2
    assert await asyncio.to_thread(main, ["flash", "qr", "nosuch"]) == 1
    # Scanning what was minted opens the sale and is counted under its channel.
    shown = await wechat.WeChat(shop.client).event("o_mint", "SCAN", "flash_mint@海报A")
    assert shown.text and "探店图文秒杀" in shown.text


async def test_no_sales_is_said_plainly(shop: Shop) -> None:
    assert await shop.customer("o_none").say("秒杀") == texts.FLASH_NONE
    assert await shop.customer("o_none").say("抢") == texts.FLASH_NO_LIVE


# --- The rush ------------------------------------------------------------------------------------


async def test_grab_holds_a_unit_with_the_pay_qr_and_paying_sells_it(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=2))
    buyer = shop.customer("o_fast")
    said = await buyer.say("抢")
    assert "抢到了！你是第 1 位，秒杀价 ¥9.90" in said
    assert "5 分钟内" in said and "待支付 ¥9.90" in said and "余额支付" in said
    # One message, in the HTTP response, says what was taken, until when and how to pay; the pay QR
    # follows it by API.
    assert await eventually(lambda: [m.kind for m in shop.mp.sent if m.openid == buyer.openid] == ["image"])
    (take,) = await shop.takes(openid=buyer.openid)
    order = await shop.order(take.order_id)
    assert order.total_fen == 990 and order.status == "待支付"
    async with shop.sm() as s:
        payment = await s.scalar(select(Payment).where(Payment.order_id == order.id))
    assert payment is not None
    await shop.pay.pay(payment.out_trade_no)
    assert (await shop.order(take.order_id)).status == "待审核"
    assert [t.status for t in await shop.takes(openid=buyer.openid)] == ["paid"]
    assert "仅剩 1 件" in await buyer.say("秒杀")


async def _paid_take(shop: Shop, buyer: Customer) -> Order:
    """`buyer` grabs one unit and pays it by WeChat Pay."""
    assert "抢到了" in await buyer.say("抢")
    (take,) = await shop.takes(openid=buyer.openid)
    async with shop.sm() as s:
        payment = await s.scalar(select(Payment).where(Payment.order_id == take.order_id))
    assert payment is not None
    await shop.pay.pay(payment.out_trade_no)
    return await shop.order(take.order_id)


async def test_after_paying_the_requirements_are_asked_in_chat_like_an_order_form(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=2))
    buyer = shop.customer("o_form")
    order = await _paid_take(shop, buyer)
    asked = await eventually(lambda: [m for m in shop.sent_to(buyer.openid) if "开工前还需要你提供" in m])
    assert asked[0] == texts.REQUIREMENTS_ASK.format(
        number=order.number,
        labels="品牌、推广链接、核心卖点、发布时间、参考图片",  # the package's requirements
        question="第 1/5 步：" + texts.ASK_BRAND + texts.FORM_TEMPLATE_HINT,
    )
    assert order.review == "resubmit"  # not the reviewers' yet: nothing to review
    # The same steps, checks, 返回 and images as the order form; 不变 is an answer, nothing to keep.
    assert "第 2/5 步" in await buyer.say("咖啡品牌A")
    assert texts.LINK_INVALID in await buyer.say("就那个新品")
    assert "第 1/5 步" in await buyer.say("返回")
    assert "第 2/5 步" in await buyer.say("咖啡品牌B")
    assert "第 3/5 步" in await buyer.say("https://shop.example.com/coffee")
    assert "第 4/5 步" in await buyer.say("0 糖冷萃，3 秒速溶")
    assert "第 5/5 步" in await buyer.say(in_days(6))
    assert "收到第 1 张图" in await buyer.image("media-flash-1")
    assert await buyer.say("好了") == texts.REQUIREMENTS_DONE.format(number=order.number)
    order = await shop.order(order.id)
    assert order.review is None and order.status == "待审核"
    assert order.requirements["brand"] == "咖啡品牌B"
    assert order.requirements["link"] == "https://shop.example.com/coffee"
    assert len(order.requirements["ref_images"]) == 1
    assert f"订单 {order.number} 现在不需要补充资料" in await buyer.say(f"重新提交 {order.number}")


async def test_requirements_asked_after_paying_from_the_balance_start_at_once(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=2))
    buyer = shop.customer("o_balance")
    async with shop.sm.begin() as s:
        await payments.credit(
            s, account=wechat.ACCOUNT, openid=buyer.openid, amount_fen=5000, kind="topup", key="t1"
        )
    assert "（余额 ¥50）" in await buyer.say("抢")  # read with the take
    (take,) = await shop.takes(openid=buyer.openid)
    order = await shop.order(take.order_id)
    assert "已用余额支付" in await buyer.say(f"余额支付 {order.number}")
    asked = await eventually(lambda: [m for m in shop.sent_to(buyer.openid) if "开工前还需要你提供" in m])
    assert "第 1/5 步" in asked[0]
    assert "第 2/5 步" in await buyer.say("咖啡品牌A")  # the form started in the paying turn itself
    assert "重新提交" in await buyer.say("取消")  # talk to staff instead; 重新提交 later
    again = await buyer.say(f"重新提交 {order.number}")
    assert "开工前还需要你提供" in again and "第 1/5 步" in again


async def test_tier_prices_follow_the_buyers_position(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=4, price="19.9", tiers="tiers:\n  - {first: 2, price: 9.9}\n"))
    prices = []
    for n in range(3):
        said = await shop.customer(f"o_tier{n}").say("抢")
        prices.append(re.search(r"第 (\d) 位，秒杀价 (¥[\d.]+)", said).groups())  # type: ignore[union-attr]
    assert prices == [("1", "¥9.90"), ("2", "¥9.90"), ("3", "¥19.90")]
    totals = [(await shop.order(t.order_id)).total_fen for t in await shop.takes()]
    assert totals == [990, 990, 1990]


# --- Pay slots: each position's pay order and QR, made before the sale opens ----------------------


async def _prepare(shop: Shop, *, at: dt.datetime | None = None) -> int:
    app = shop.client.app
    pay = app[keys.PAY]
    assert pay is not None
    return await flash_slots.prepare(shop.sm, pay, app[keys.MP].upload_media, shop.settings, at or utcnow())


async def _slots(shop: Shop) -> list[tuple[int, Payment, str | None]]:
    """(position, its payment, its QR's media_id), by position."""
    async with shop.sm() as s:
        rows = await s.execute(
            select(FlashPaySlot.position, Payment, FlashPaySlot.media_id)
            .join(Payment, Payment.id == FlashPaySlot.payment_id)
            .order_by(FlashPaySlot.position)
        )
        return [(position, payment, media) for position, payment, media in rows]


def _images_to(shop: Shop, openid: str) -> list[str]:
    return [str(m.payload["media_id"]) for m in shop.mp.sent if m.openid == openid and m.kind == "image"]


async def test_a_winner_gets_the_pay_qr_made_before_the_sale_without_waiting_for_wechat_pay(
    shop: Shop,
) -> None:
    await shop.sale(
        sale_yaml(
            starts=dt.timedelta(minutes=5),
            stock=3,
            price="19.9",
            tiers="tiers:\n  - {first: 2, price: 9.9}\n",
        )
    )
    assert await _prepare(shop) == 3
    slots = await _slots(shop)
    assert [(p, pay.amount_fen, pay.order_id) for p, pay, _ in slots] == [
        (1, 990, None),
        (2, 990, None),
        (3, 1990, None),
    ]
    assert all(pay.code_url and media for _, pay, media in slots)
    assert await _prepare(shop) == 0  # made once
    async with shop.sm.begin() as s:  # the sale opens
        await s.execute(update(FlashSale).values(starts_at=utcnow() - dt.timedelta(seconds=1)))
    asked, uploaded = shop.pay.calls["unifiedorder"], shop.mp.calls["media_upload"]
    for n in (1, 2):
        buyer = shop.customer(f"o_slot{n}")
        said = await buyer.say("抢")
        assert f"抢到了！你是第 {n} 位，秒杀价 ¥9.90" in said and "待支付 ¥9.90" in said
        assert await eventually(lambda b=buyer: _images_to(shop, b.openid)) == [slots[n - 1][2]]
    assert (shop.pay.calls["unifiedorder"], shop.mp.calls["media_upload"]) == (asked, uploaded)
    (take,) = await shop.takes(openid="o_slot2")
    async with shop.sm() as s:
        mine = await s.scalar(select(Payment).where(Payment.order_id == take.order_id))
    assert mine is not None and mine.id == slots[1][1].id and mine.openid == "o_slot2"
    await shop.pay.pay(mine.out_trade_no)  # the QR they were sent pays their order
    assert (await shop.order(take.order_id)).status == "待审核"
    assert [t.status for t in await shop.takes(openid="o_slot2")] == ["paid"]


async def test_unused_pay_slots_are_closed_when_the_sale_is_over(shop: Shop) -> None:
    sale = await shop.sale(sale_yaml(stock=3))
    assert await _prepare(shop) == 3
    assert "抢到了" in await shop.customer("o_one").say("抢")
    async with shop.sm() as s:  # nobody was shown an unused slot: reconciliation leaves them alone
        asked = await payments.payments_to_reconcile(
            s, older_than=dt.timedelta(0), now=utcnow() + dt.timedelta(seconds=1)
        )
    assert sorted(p.id for p in asked) == [(await _slots(shop))[0][1].id]
    assert await _prepare(shop) == 0  # still on: nothing to close
    async with shop.sm.begin() as s:
        await flash.stop_sale(s, sale.code, utcnow())
    assert await _prepare(shop) == 2
    slots = await _slots(shop)
    assert [pay.status for _, pay, _ in slots] == ["created", "closed", "closed"]
    assert [shop.pay.orders[pay.out_trade_no].state for _, pay, _ in slots[1:]] == ["CLOSED", "CLOSED"]


async def test_a_slot_too_old_for_the_hold_is_not_given_and_a_failed_one_is_finished_later(
    shop: Shop,
) -> None:
    await shop.sale(sale_yaml(stock=2))
    shop.pay.fail_next("unifiedorder", "SYSTEMERROR")
    assert await _prepare(shop) == 0  # WeChat Pay failing: nothing half-made is given out
    assert [(p, media) for p, _, media in await _slots(shop)] == [(1, None), (2, None)]
    assert await _prepare(shop) == 0  # opened a moment ago: another run may be finishing them
    assert await _prepare(shop, at=utcnow() + dt.timedelta(minutes=2)) == 2
    assert all(media for _, _, media in await _slots(shop))
    async with shop.sm.begin() as s:  # WeChat Pay would not honour position 1's code_url for the hold
        first = (await _slots(shop))[0][1]
        await s.execute(
            update(Payment)
            .where(Payment.id == first.id)
            .values(created_at=utcnow() - dt.timedelta(hours=1, minutes=55))
        )
    asked = shop.pay.calls["unifiedorder"]
    assert "抢到了！你是第 1 位" in await shop.customer("o_late_slot").say("抢")
    assert shop.pay.calls["unifiedorder"] == asked + 1  # its own pay order, made at the take
    (take,) = await shop.takes(openid="o_late_slot")
    async with shop.sm() as s:
        mine = await s.scalar(select(Payment).where(Payment.order_id == take.order_id))
    assert mine is not None and mine.id != first.id


async def test_a_big_stock_gets_slots_for_its_opening_positions_only(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flash, "SLOT_MAX", 2)
    await shop.sale(sale_yaml(stock=3))
    assert await _prepare(shop) == 2
    assert await _prepare(shop) == 0  # the sale has all the slots it gets
    assert [p for p, _, _ in await _slots(shop)] == [1, 2]
    asked = shop.pay.calls["unifiedorder"]
    for n in range(3):
        assert f"你是第 {n + 1} 位" in await shop.customer(f"o_big{n}").say("抢")
    assert shop.pay.calls["unifiedorder"] == asked + 1  # only the third made its pay order at the take


async def test_a_payment_made_ahead_and_never_given_out_is_flagged_never_credited(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=1))
    assert await _prepare(shop) == 1
    [(_, slot_payment, _)] = await _slots(shop)
    await shop.pay.pay(slot_payment.out_trade_no, openid="o_stranger")  # nobody was ever shown it
    assert shop.client.app[PAY_HOOKS].counts["unassigned"] == 1
    async with shop.sm() as s:
        paid = await s.get(Payment, slot_payment.id)
        assert paid is not None and (paid.status, paid.flag) == ("paid", "unassigned")
        assert list(await s.scalars(select(LedgerEntry))) == []


async def test_the_limit_holds_under_concurrent_retries_and_normal_orders(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=10, limit=2))
    greedy = shop.customer("o_greedy")
    chat = wechat.WeChat(shop.client)
    await asyncio.gather(*(chat.say(greedy.openid, "抢") for _ in range(12)))
    assert len(await shop.takes(openid=greedy.openid)) == 2
    assert "每人限 2 件" in await greedy.say("抢")
    # Neither the catalog nor the cart sells the package while the sale runs.
    for said in ("搜 咖啡", "1"):
        await greedy.say(said)
    assert "正在限时秒杀" in await greedy.say("下单 ①")
    assert "正在限时秒杀" in await greedy.say("加购 ①")
    async with shop.sm() as s:
        assert await s.scalar(select(func.count()).select_from(Order)) == 2


async def test_a_holder_tapping_again_is_told_what_they_hold_and_nothing_changes(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=5, limit=1))
    buyer = shop.customer("o_again")
    assert "抢到了" in await buyer.say("抢")
    (take,) = await shop.takes(openid=buyer.openid)
    number = (await shop.order(take.order_id)).number
    said = await buyer.say("抢")
    assert "你已经抢到了（每人限 1 件）" in said and f"订单 {number} 还没付款" in said
    assert f"支付 {number}" in said
    paid = await _paid_take(shop, shop.customer("o_payer"))
    assert "已经抢到并付款了" in await shop.customer("o_payer").say("抢")
    assert paid.status == "待审核" and len(await shop.takes(openid=buyer.openid)) == 1
    async with shop.sm() as s:
        assert await s.scalar(select(FlashSale.available).where(FlashSale.code == "coffee")) == 3


async def test_below_the_limit_a_holder_takes_another(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=5, limit=2))
    buyer = shop.customer("o_two")
    assert "抢到了" in await buyer.say("抢")
    assert "抢到了！你是第 2 位" in await buyer.say("抢")  # the board knows them: still below the limit
    assert "你已经抢到了（每人限 2 件）" in await buyer.say("抢")
    assert len(await shop.takes(openid=buyer.openid)) == 2


async def test_many_people_at_once_never_oversell(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=3, limit=1))
    chat = wechat.WeChat(shop.client)
    await asyncio.gather(*(chat.say(f"o_crowd{n % 6}", "抢") for n in range(24)))
    takes = await shop.takes()
    assert len(takes) == 3
    assert len({t.openid for t in takes}) == 3
    said = await shop.customer("o_late").say("抢")
    assert "已经抢光了" in said and "候补" in said


async def test_a_unit_taken_elsewhere_is_still_known_when_this_process_sells_the_last(shop: Shop) -> None:
    """Once this process's board has none left it answers 已抢光 by itself: someone whose take another
    process made a moment ago must still be told what they hold, not that they were too slow."""
    sale = await shop.sale(sale_yaml(stock=2, limit=1))
    assert "仅剩 2 件" in await shop.customer("o_looker").say("秒杀")  # this process's board: 2 left
    async with shop.sm.begin() as s:  # another process's rush takes one
        await flash.take(
            s, sale=sale, account=wechat.ACCOUNT, openid="o_elsewhere", now=utcnow(), notify=quiet
        )
    assert "抢到了" in await shop.customer("o_here").say("抢")  # the last one, from this process
    assert "你已经抢到了" in await shop.customer("o_elsewhere").say("抢")
    assert "已经抢光了" in await shop.customer("o_looker").say("抢")
    assert len(await shop.takes()) == 2


async def test_units_taken_by_another_process_are_never_sold_twice_from_this_ones_board(shop: Shop) -> None:
    """The board (what 抢 and 秒杀 read during a rush) may be a second behind other processes: the
    database still decides every take, and someone who took a unit elsewhere is told what they hold."""
    sale = await shop.sale(sale_yaml(stock=2, limit=1))
    assert "仅剩 2 件" in await shop.customer("o_looker").say("秒杀")  # this process's board: 2 left
    for openid in ("o_elsewhere1", "o_elsewhere2"):  # another process's rush takes both
        async with shop.sm.begin() as s:
            await flash.take(s, sale=sale, account=wechat.ACCOUNT, openid=openid, now=utcnow(), notify=quiet)
    said = await shop.customer("o_looker").say("抢")
    assert "已经抢光了" in said and "候补" in said
    assert "你已经抢到了" in await shop.customer("o_elsewhere1").say("抢")
    assert len(await shop.takes()) == 2
    assert "已抢光" in await shop.customer("o_looker").say("秒杀")  # read again after the refusal


async def test_rapid_repeats_are_throttled_politely(
    make_settings: Callable[..., Settings], pay_sim: tuple[PaySimulator, str], mp_sim: tuple[MpSimulator, str]
) -> None:
    settings = make_settings(flash_throttle_ms=60_000)
    client = await start_bot(settings)
    try:
        async with client.app[keys.SESSIONMAKER].begin() as s:
            await catalog_import.import_catalog(s, catalog_import.parse_catalog(CATALOG, "yaml")[0])
            spec, _ = flash.parse_sale(sale_yaml(stock=5, limit=3))
            await flash.create_sale(s, spec, now=utcnow())
        tapper = Customer(client, mp_sim[0], "o_tapper")
        assert "抢到了" in await tapper.say("抢")
        assert await tapper.say("抢") == texts.FLASH_THROTTLED
    finally:
        await client.close()


# --- Holds, the waitlist, late payments ----------------------------------------------------------


async def test_an_expired_hold_goes_to_the_waitlist_then_back_to_everyone(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=1, hold=5))
    slow, waiting = shop.customer("o_slow"), shop.customer("o_wait")
    assert "抢到了" in await slow.say("抢")
    assert "已经抢光了" in await waiting.say("抢")
    assert "排在第 1 位" in await waiting.say("候补")

    assert await shop.sweep(after=dt.timedelta(minutes=6)) == 1
    offer = await eventually(lambda: [t for t in shop.sent_to(waiting.openid) if "候补成功" in t])
    number = number_in(offer[0])
    assert await eventually(lambda: [t for t in shop.sent_to(slow.openid) if "名额已让给下一位" in t])
    slow_take, wait_take = await shop.takes()
    assert (slow_take.status, wait_take.status, wait_take.via) == ("released", "held", "waitlist")
    assert (await shop.order(slow_take.order_id)).status == "已取消"

    # The waitlisted person lets it lapse too: with nobody waiting, the unit is everyone's again.
    assert "支付" in await waiting.say(f"支付 {number}")
    assert await shop.sweep(after=dt.timedelta(minutes=10)) == 1
    assert "仅剩 1 件" in await shop.customer("o_third").say("秒杀")
    assert "抢到了" in await shop.customer("o_third").say("抢")


async def _lapse(shop: Shop, openid: str) -> Payment:
    """`openid` grabs, gets the pay QR, and lets the hold run out (the sweep cancels it)."""
    assert "抢到了" in await shop.customer(openid).say("抢")
    (take,) = await shop.takes(openid=openid, status="held")
    async with shop.sm() as s:
        payment = await s.scalar(select(Payment).where(Payment.order_id == take.order_id))
    assert payment is not None
    assert await shop.sweep(after=dt.timedelta(minutes=6)) >= 1
    return payment


async def test_a_payment_after_the_hold_is_honoured_while_a_unit_is_left(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=2))
    payment = await _lapse(shop, "o_latecomer")
    await shop.pay.pay(payment.out_trade_no)
    told = await eventually(lambda: [t for t in shop.sent_to("o_latecomer") if "已生效" in t])
    assert "新订单" in told[0]
    takes = await shop.takes(openid="o_latecomer")
    assert [(t.status, t.via) for t in takes] == [("released", "rush"), ("paid", "late")]
    assert (await shop.order(takes[1].order_id)).status == "待审核"
    async with shop.sm() as s:
        assert await payments.balance_of(s, account=wechat.ACCOUNT, openid="o_latecomer") == 0
        entries = list(await s.scalars(select(LedgerEntry.amount_fen).order_by(LedgerEntry.id)))
    assert entries == [990, -990]


async def test_a_payment_after_the_hold_goes_to_the_balance_when_sold_out(shop: Shop) -> None:
    await shop.sale(sale_yaml(stock=1))
    payment = await _lapse(shop, "o_toolate")
    assert "抢到了" in await shop.customer("o_quick").say("抢")
    await shop.pay.pay(payment.out_trade_no)
    told = await eventually(lambda: [t for t in shop.sent_to("o_toolate") if "存入余额" in t])
    assert "¥9.90" in told[0]
    async with shop.sm() as s:
        assert await payments.balance_of(s, account=wechat.ACCOUNT, openid="o_toolate") == 990
    assert [t.status for t in await shop.takes(openid="o_toolate")] == ["released"]


# --- Staff in work chat --------------------------------------------------------------------------


async def test_admins_list_look_at_and_stop_a_sale_in_work_chat(office: Office) -> None:
    spec, _ = flash.parse_sale(sale_yaml("desk", stock=4))
    async with office.sessionmaker.begin() as s:
        await flash.create_sale(s, spec, now=utcnow())
    assert "desk 探店图文秒杀｜进行中｜剩 4/4" in await office.say("boss", "秒杀 列表")
    assert "抢到了" in await office.customer.say("抢")
    looked = await office.say("boss", "秒杀 查看 desk")
    assert "剩 3 · 保留中 1 · 已付款 0" in looked
    assert "抢到 1 人 → 付款 0 人" in looked
    reported = await office.say("boss", "秒杀 报告 desk")  # the figures alone, with where people came from
    assert "抢到 1 人 → 付款 0 人" in reported and "二维码来源：还没有人扫码进来抢" in reported
    # The command room card, refreshed in place by its 刷新 button.
    card = await eventually(lambda: [c for c in office.cards("boss") if "秒杀 desk" in str(c)])
    rows = {r["keyname"]: r["value"] for r in card[0]["horizontal_content_list"]}
    assert rows["剩余"] == "3/4" and rows["保留中"] == "1"
    assert "抢到了" in await Customer(office.client, office.customer.sim, "o_desk2").say("抢")
    task_id, key = card[0]["task_id"], card[0]["button_list"][0]["key"]
    await office.click("boss", task_id, key)

    def redrawn() -> dict[str, str] | None:
        view = office.sim.card(task_id, "boss")
        found = {r["keyname"]: r["value"] for r in view.card["horizontal_content_list"]} if view else {}
        return found if found.get("剩余") == "2/4" else None

    assert (await eventually(redrawn))["保留中"] == "2"
    assert "管理员" in await office.say("wangfang", "秒杀 停止 desk")  # ops may not stop a sale
    assert "用法" in await office.say("boss", "秒杀 停止")
    assert "没有秒杀 nosuch" in await office.say("boss", "秒杀 查看 nosuch")
    assert "已停止秒杀 desk" in await office.say("boss", "秒杀 停止 desk")
    latecomer = Customer(office.client, office.customer.sim, "o_desk3")  # not inside the throttle window
    assert "已经停止" in await latecomer.say("抢 desk")


async def test_the_command_room_alerts_posts_reports_and_exports_gauges(office: Office) -> None:
    spec, _ = flash.parse_sale(sale_yaml("room", stock=2))
    async with office.sessionmaker.begin() as s:
        await flash.create_sale(s, spec, now=utcnow())
    settings = office.client.app[keys.SETTINGS]
    assert "抢到了" in await office.customer.say("抢")
    await flow.command_room(office.sessionmaker, settings, utcnow())
    await eventually(lambda: any("已抢 50%" in p for p in office.robot))
    # The minute's post (the app's own job may have written this minute's already, before the 抢).
    assert await eventually(
        lambda: [p for p in office.robot if re.search(r"room 实时：剩 [12]/2 · 保留中 [01]", p)]
    )
    metrics = await (await office.client.get("/metrics")).text()
    assert 'chatorder_flash_units{sale="room",state="held"} 1.0' in metrics
    assert 'chatorder_flash_takes_per_minute{sale="room"} 1.0' in metrics

    other = Customer(office.client, office.customer.sim, "o_room2")
    assert "抢到了" in await other.say("抢")
    await flow.command_room(office.sessionmaker, settings, utcnow())
    await eventually(lambda: any("已抢光" in p for p in office.robot))
    assert sum("已抢 50%" in p for p in office.robot) == 1  # each alert once

    assert "已停止" in await office.say("boss", "秒杀 停止 room")
    await flow.command_room(office.sessionmaker, settings, utcnow())
    report = await eventually(lambda: [p for p in office.robot if "秒杀结束" in p])
    assert "抢到 2 人 → 付款 0 人" in report[0]


# --- The operator's file -------------------------------------------------------------------------


def test_bad_sale_files_are_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sale.yaml"
    path.write_text(
        "code: Bad Code!\nservice: xhs-xiaolu\npackage: 1\nprice: 免费\nstock: 0\n"
        "starts: 明天\nends: 2026-12-08 10:00\ncolour: red\n",
        encoding="utf-8",
    )
    _, errors = flash.parse_sale(path.read_text(encoding="utf-8"))
    assert [e.line for e in errors] == [1, 4, 5, 6, 8]


async def test_the_cli_creates_lists_reports_and_stops_without_half_creating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, shop: Shop
) -> None:
    monkeypatch.setenv("CHATORDER_DATABASE_URL", shop.settings.database_url)
    bad = tmp_path / "bad.yaml"
    bad.write_text(sale_yaml("ghost").replace("package: 1", "package: 9"), encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text(sale_yaml("cli"), encoding="utf-8")
    assert await asyncio.to_thread(main, ["flash", "create", str(bad)]) == 1
    assert f"{bad}:4: package" in capsys.readouterr().err
    async with shop.sm() as s:
        assert await s.scalar(select(func.count()).select_from(FlashSale)) == 0
    assert await asyncio.to_thread(main, ["flash", "create", str(good)]) == 0
    assert await asyncio.to_thread(main, ["flash", "create", str(good)]) == 1
    assert "已有秒杀 cli" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["flash", "list"]) == 0
    assert "cli 探店图文秒杀｜进行中｜剩 3/3" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["flash", "stop", "cli"]) == 0
    assert await asyncio.to_thread(main, ["flash", "report", "cli"]) == 0
    assert "已停止" in capsys.readouterr().out
    assert "已经停止" in await shop.customer("o_after").say("抢 cli")


async def test_the_demo_schedules_a_small_sale_a_few_minutes_ahead(
    lite: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    async with lite.begin() as s:
        await catalog_import.load_demo_catalog(s)
        sale = await flash.schedule_demo_sale(s, now)
        assert sale is not None
        assert await flash.schedule_demo_sale(s, now) is None  # one open sale is enough
        view = await flash.sale_by_code(s, sale.code)
    assert view is not None and sale.stock == 5 and sale.per_customer == 1
    assert dt.timedelta(minutes=2) <= sale.starts_at - now <= dt.timedelta(minutes=3)
    assert "分钟开抢" in flow.sale_line(1, view, now)


# --- 提醒我 --------------------------------------------------------------------------------------


async def _bot_with_sale(
    settings: Settings, code: str, starts: dt.timedelta, now: dt.datetime
) -> tuple[TestClient, FlashSale]:
    """A bot with the test catalog and a sale of 5 starting `starts` from `now`."""
    client = await start_bot(settings)
    async with client.app[keys.SESSIONMAKER].begin() as s:
        await catalog_import.import_catalog(s, catalog_import.parse_catalog(CATALOG, "yaml")[0])
        spec, _ = flash.parse_sale(sale_yaml(code, starts=starts, stock=5))
        sale, _ = await flash.create_sale(s, spec, now=now)
    assert sale is not None
    return client, sale


async def test_reminders_go_once_each_inside_the_window_or_through_the_one_time_subscription(
    make_settings: Callable[..., Settings], mp_sim: tuple[MpSimulator, str]
) -> None:
    sim = mp_sim[0]
    settings = make_settings(wechat_subscribe_template_id="TPL-remind")
    now = utcnow()
    client, _ = await _bot_with_sale(settings, "later", dt.timedelta(hours=72), now)
    sm = client.app[keys.SESSIONMAKER]
    try:
        consenting, silent, chatty = (Customer(client, sim, o) for o in ("o_consent", "o_silent", "o_chatty"))
        said = await consenting.say("提醒我")
        assert "开抢前会提醒你" in said and "开抢时" in said
        link = re.search(r"(\S+mp/subscribemsg\?action=get_confirm\S+)#wechat_redirect", said)
        assert link, said
        # The person taps 允许 on WeChat's page, which redirects to us with their openid.
        page = URL(link.group(1)).with_scheme("http")
        sim_page = (
            URL(mp_sim[1])
            .with_path("/mp/subscribemsg")
            .with_query(dict(page.query) | {"openid": consenting.openid})
        )
        async with aiohttp.ClientSession() as http:
            answer = await http.get(sim_page, allow_redirects=False)
        back = URL(answer.headers["Location"])
        assert back.path == "/flash/subscribe" and back.query["action"] == "confirm"
        recorded = await client.get(back.path_qs)
        assert recorded.status == 200 and "已授权" in await recorded.text()
        forged = await client.get(back.update_query(openid="o_other").path_qs)
        assert forged.status == 400
        for person in (silent, chatty):
            await person.say("提醒我")
        async with sm.begin() as s:  # chatty wrote again a day later: inside the window at reminder time
            await s.execute(
                update(User)
                .where(User.openid == chatty.openid)
                .values(last_inbound_at=now + dt.timedelta(hours=48, minutes=30))
            )

        def got(openid: str) -> list[SentMessage]:
            return [
                m
                for m in sim.sent
                if m.openid == openid and (m.kind == "subscribe" or "开抢" in str(m.payload))
            ]

        before = {p.openid: len(got(p.openid)) for p in (consenting, silent, chatty)}
        assert await flow.remind(sm, settings, now + dt.timedelta(hours=49)) == 2  # the 24 h reminder
        assert await flow.remind(sm, settings, now + dt.timedelta(hours=49, minutes=1)) == 0  # once
        sent = await eventually(lambda: got(consenting.openid)[before[consenting.openid] :])
        assert sent[0].kind == "subscribe" and sent[0].payload["template_id"] == "TPL-remind"
        assert re.search(r"还有 2[23] 小时.*开抢", sent[0].payload["data"]["content"]["value"])
        to_chatty = await eventually(lambda: got(chatty.openid)[before[chatty.openid] :])
        assert re.search(r"还有 2[23] 小时.*开抢", to_chatty[0].payload["content"])
        # The 1 h reminder: the consent was used up (one send per consent); chatty is still inside.
        assert await flow.remind(sm, settings, now + dt.timedelta(hours=71, minutes=5)) == 1
        assert await flow.remind(sm, settings, now + dt.timedelta(hours=72, seconds=10)) == 1
        assert (
            "开抢了"
            in (await eventually(lambda: got(chatty.openid)[before[chatty.openid] + 2 :]))[0].payload[
                "content"
            ]
        )
        assert (
            len(got(silent.openid)) == before[silent.openid]
        )  # outside the window, no consent: counted only
        assert sum(1 for m in got(consenting.openid) if m.kind == "subscribe") == 1
    finally:
        await client.close()


# --- Remarketing and coupons ---------------------------------------------------------------------


async def test_remarketing_sends_one_coupon_inside_the_window_never_after_unsubscribe(shop: Shop) -> None:
    coupon = "coupon: {off: 100, min: 500, days: 7}\n"
    sale = await shop.sale(sale_yaml("fans", stock=5, limit=1) + coupon)
    lapsed, subscriber, buyer, unsubscribed, away = (
        shop.customer(o) for o in ("o_lapsed", "o_sub", "o_buyer", "o_unsub", "o_away")
    )
    for person in (lapsed, buyer, unsubscribed, away):
        assert "抢到了" in await person.say("抢")
    assert "已用余额支付" in await _topup_and_pay(shop, buyer)
    await subscriber.say("秒杀")
    async with shop.sm.begin() as s:
        await flash.subscribe(s, sale=sale, account=wechat.ACCOUNT, openid=subscriber.openid, now=utcnow())
        await s.execute(
            update(User)
            .where(User.openid == away.openid)
            .values(last_inbound_at=utcnow() - dt.timedelta(days=3))
        )
    assert "已退订" in await unsubscribed.say("退订")
    assert "已恢复" in await subscriber.say("订阅")  # 订阅 without a 退订 changes nothing
    assert "已经停止" in await _stop(shop, "fans")
    end = utcnow() - dt.timedelta(minutes=31)  # as if it stopped 31 minutes ago
    async with shop.sm.begin() as s:
        await s.execute(update(FlashSale).where(FlashSale.code == "fans").values(stopped_at=end))
    assert await flow.remarket(shop.sm, shop.settings, end + dt.timedelta(minutes=20)) == 0  # not yet
    assert await flow.remarket(shop.sm, shop.settings, utcnow()) == 2
    assert await flow.remarket(shop.sm, shop.settings, utcnow()) == 0  # once
    for person in (lapsed, subscriber):
        told = await eventually(partial(_fan_coupon_messages, shop, person.openid))
        assert "满 ¥500 立减 ¥100" in told[0] and "「阿杰探店」" in told[0] and "退订" in told[0]
    for person in (buyer, unsubscribed, away):
        assert not [t for t in shop.sent_to(person.openid) if "专属粉丝券" in t]
    async with shop.sm() as s:
        view = await flash.sale_by_code(s, "fans")
        assert view is not None
        report = await flow.staff_view(s, view, utcnow())
    assert "再营销：已发 2 人 · 48 小时外未发 1 人 · 已退订 1 人" in report

    # The coupon: listed, taken off the next order automatically, back when that order is cancelled.
    assert "满 ¥500 立减 ¥100" in await lapsed.say("我的券")
    for said in ("搜 阿杰", "1", "下单 ①", "品牌", "https://shop.example.com/x", "@阿杰"):
        await lapsed.say(said)
    created = await lapsed.say("确认")
    assert "待支付 ¥700" in created, created
    number = number_in(created)
    assert "已使用" in await lapsed.say("我的券")
    await lapsed.say(f"取消订单 {number}")
    assert "前有效" in await lapsed.say("我的券")


def _fan_coupon_messages(shop: Shop, openid: str) -> list[str]:
    return [t for t in shop.sent_to(openid) if "专属粉丝券" in t]


async def _topup_and_pay(shop: Shop, person: Customer) -> str:
    async with shop.sm.begin() as s:
        await payments.credit(
            s,
            account=wechat.ACCOUNT,
            openid=person.openid,
            amount_fen=10_000,
            kind="topup",
            key=f"t:{person.openid}",
        )
    return await person.say("余额支付")


async def _stop(shop: Shop, code: str) -> str:
    async with shop.sm.begin() as s:
        await flash.stop_sale(s, code, utcnow())
    return await shop.customer("o_after_stop").say(f"抢 {code}")


async def test_the_order_reply_says_which_coupon_was_applied_and_what_it_saved(shop: Shop) -> None:
    async with shop.sm.begin() as s:
        await coupons.issue(
            s,
            account=wechat.ACCOUNT,
            openid="o_saver",
            source="flash:x",
            title="探店粉丝券",
            spec={"off_fen": 5_000, "min_fen": 50_000, "days": 7},
            now=utcnow(),
        )
    buyer = shop.customer("o_saver")
    await buyer.say("搜 小鹿")
    await buyer.say("1")
    await buyer.say("下单 ②")
    await buyer.say("咖啡品牌A")
    assert "请确认" in await buyer.say("https://shop.example.com/coffee")
    said = await buyer.say("确认")
    assert "待支付 ¥2,650" in said  # ¥2,700 − ¥50
    assert "已用券「探店粉丝券」（满 ¥500 立减 ¥50），为你省了 ¥50" in said
    number = number_in(said)
    assert "探店粉丝券" in await buyer.say(f"支付 {number}")  # and again when asked to pay
    other = shop.customer("o_nocoupon")
    await other.say("搜 小鹿")
    await other.say("1")
    await other.say("下单 ②")
    await other.say("咖啡品牌A")
    await other.say("https://shop.example.com/coffee")
    assert "已用券" not in await other.say("确认")


async def test_new_followers_get_the_first_order_coupon_once_when_the_rule_is_on(
    make_settings: Callable[..., Settings], mp_sim: tuple[MpSimulator, str]
) -> None:
    settings = make_settings(new_follower_coupon_fen=2_000, new_follower_coupon_min_fen=10_000)
    client = await start_bot(settings)
    try:
        chat = wechat.WeChat(client)
        first = await chat.event("o_fresh", "subscribe", "")
        assert first.text and "欢迎来到" in first.text
        assert "新人首单券」：满 ¥100 立减 ¥20，7 天内下单自动抵扣" in first.text
        mine = await Customer(client, mp_sim[0], "o_fresh").say("我的券")
        assert "新人首单券：满 ¥100 立减 ¥20" in mine
        later = int(utcnow().timestamp()) + 60  # another event than the first (WeChat dedupes by time)
        await chat.event("o_fresh", "unsubscribe", "", at=later)
        again = await chat.event("o_fresh", "subscribe", "", at=later + 1)
        assert again.text and "新人首单券" not in again.text  # a returning follower: no second coupon
        async with client.app[keys.SESSIONMAKER]() as s:
            assert len(await coupons.mine(s, account=wechat.ACCOUNT, openid="o_fresh")) == 1
    finally:
        await client.close()
    off = await start_bot(make_settings())  # the rule is off by default
    try:
        plain = await wechat.WeChat(off).event("o_plain", "subscribe", "")
        assert plain.text and "欢迎来到" in plain.text and "券" not in plain.text
    finally:
        await off.close()


async def test_coupons_take_the_best_off_exactly_and_come_back_on_refund(
    lite: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    async with lite.begin() as s:
        await catalog_import.import_catalog(s, catalog_import.parse_catalog(CATALOG, "yaml")[0])
        for source, spec in (
            ("a", {"off_fen": 5_000, "min_fen": 50_000, "days": 7}),  # ¥50 off from ¥500
            ("b", {"percent": 20, "cap_fen": 15_000, "days": 7}),  # 8 折, at most ¥150
            ("c", {"off_fen": 90_000, "min_fen": 200_000, "days": 7}),  # needs ¥2,000: not usable
        ):
            await coupons.issue(
                s, account="acc", openid="o_c", source=source, title=source, spec=spec, now=now
            )
        again = await coupons.issue(
            s, account="acc", openid="o_c", source="a", title="a", spec={"off_fen": 1}, now=now
        )
        assert again is None  # one per customer per source
        package = await s.scalar(
            select(Package.id).join(Service).where(Service.code == "xhs-xiaolu", Package.position == 1)
        )
        assert package is not None
        order = await orders.create_order(
            s,
            account="acc",
            openid="o_c",
            lines=[orders.Line(package, 1)],
            requirements={},
            source_key="k1",
            notify=quiet,
        )
        assert (order.total_fen, order.discount_fen) == (85_000, 15_000)  # ¥1,000 − the capped 20 %
        await s.execute(update(Order).where(Order.id == order.id).values(status="已完成"))
        await orders.transition(
            s, order_id=order.id, to=orders.OrderStatus.REFUNDING, actor="t", notify=quiet
        )
        await orders.transition(s, order_id=order.id, to=orders.OrderStatus.REFUNDED, actor="t", notify=quiet)
        back = {c.title: c.status for c in await coupons.mine(s, account="acc", openid="o_c")}
    assert back == {"a": "available", "b": "available", "c": "available"}


async def test_a_late_subscriber_gets_only_the_reminders_still_ahead(
    make_settings: Callable[..., Settings], mp_sim: tuple[MpSimulator, str]
) -> None:
    """提醒我 three minutes before the start lists 开抢时 only: the 24 h and 1 h reminders, long past,
    are not sent to them at once (they were, both, with the same 「还有 2 分钟」)."""
    sim = mp_sim[0]
    settings = make_settings()
    client, sale = await _bot_with_sale(settings, "soon", dt.timedelta(minutes=3), utcnow())
    sm = client.app[keys.SESSIONMAKER]
    try:
        late = Customer(client, sim, "o_late")
        said = await late.say("提醒我")
        assert "开抢前会提醒你：开抢时" in said

        def reminders() -> list[SentMessage]:
            return [m for m in sim.sent if m.openid == late.openid and "开抢" in str(m.payload)]

        assert await flow.remind(sm, settings, utcnow() + dt.timedelta(seconds=5)) == 0
        assert reminders() == []
        assert await flow.remind(sm, settings, sale.starts_at + dt.timedelta(seconds=5)) == 1
        started = await eventually(reminders)
        assert len(started) == 1 and "开抢了" in started[0].payload["content"]
        assert await flow.remind(sm, settings, sale.starts_at + dt.timedelta(seconds=30)) == 0
    finally:
        await client.close()
