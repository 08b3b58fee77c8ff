"""Personal data: 我的数据 (a signed, expiring download of everything held), 注销 (erasure after a
confirmation, accounting kept anonymised), the retention purge, and logs that never carry secrets or
personal data."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.parse

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot import keys
from bot.logs import JsonFormatter, set_levels
from bot.sandbox.mp_sim import MpSimulator
from bot.sandbox.pay_sim import PaySimulator
from flows import texts
from flows.privacy import purge_retained
from store import payments
from store.models import (
    Balance,
    Conversation,
    InboundMessage,
    LedgerEntry,
    Material,
    Order,
    Payment,
    User,
    utcnow,
)
from tests.test_ordering import PNG, Customer
from tests.test_paying import (  # noqa: F401  (fixtures)
    customer,
    order_course,
    pay_sim,
    payment_of,
    shop,
)
from tests.wechat import ACCOUNT

PHONE = "13800138000"


def picture(openid: str, media_id: str) -> Material:
    return Material(
        account=ACCOUNT, openid=openid, media_id=media_id, content_type="image/png", size=len(PNG), data=PNG
    )


def link_in(reply: str) -> str:
    found = re.search(r"(https?://\S+/files/mydata/\S+)", reply)
    assert found, reply
    return found.group(1)


async def download(shop: TestClient, link: str) -> tuple[int, str]:  # noqa: F811
    parts = urllib.parse.urlsplit(link)
    answer = await shop.get(f"{parts.path}?{parts.query}")
    return answer.status, await answer.text()


async def test_my_data_is_a_signed_expiring_download_of_everything(
    customer: Customer,  # noqa: F811
    shop: TestClient,  # noqa: F811
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    number = await order_course(customer)
    await pay_sim[0].pay((await payment_of(shop, number)).out_trade_no)
    await customer.say("发票抬头 星推科技有限公司 91310000MA1FL4XQ2K")
    reply = await customer.say("我的数据")
    assert "24 小时内有效" in reply
    status, body = await download(shop, link_in(reply))
    assert status == 200
    data = json.loads(body)
    assert [o["number"] for o in data["orders"]] == [number]
    assert PHONE in json.dumps(data["orders"][0]["requirements"], ensure_ascii=False)
    assert any(m["content"] == "我的数据" for m in data["messages"])
    assert [p["status"] for p in data["payments"]] == ["paid"]
    assert data["invoice_titles"][0]["title"] == "星推科技有限公司"
    assert data["profile"][0]["openid"] == customer.openid

    link = link_in(reply)
    forged = re.sub(r"sig=(\w)", lambda m: "sig=" + ("1" if m.group(1) == "0" else "0"), link)
    assert (await download(shop, forged))[0] == 403
    other = re.sub(r"/mydata/(\d+)", lambda m: f"/mydata/{int(m.group(1)) + 1}", link)
    assert (await download(shop, other))[0] == 403
    exp = int(re.search(r"exp=(\d+)", link).group(1))  # type: ignore[union-attr]
    assert (await download(shop, link.replace(f"exp={exp}", f"exp={exp + 3600}")))[0] == 403
    expired = link.replace(f"exp={exp}", "exp=1700000000")
    assert (await download(shop, expired))[0] == 403


async def counts(shop: TestClient, openid: str) -> dict[str, int]:  # noqa: F811
    async with shop.app[keys.SESSIONMAKER]() as s:
        return {
            name: int(await s.scalar(select(func.count()).where(where)) or 0)
            for name, where in (
                ("orders", Order.openid == openid),
                ("payments", Payment.openid == openid),
                ("ledger", LedgerEntry.openid == openid),
                ("materials", Material.openid == openid),
                ("bodies", (InboundMessage.sender == openid) & InboundMessage.content.is_not(None)),
            )
        }


async def test_erasure_is_confirmed_then_keeps_only_anonymised_accounts(
    customer: Customer,  # noqa: F811
    shop: TestClient,  # noqa: F811
) -> None:
    sm = shop.app[keys.SESSIONMAKER]
    async with sm.begin() as s:
        await payments.credit(
            s, account=ACCOUNT, openid=customer.openid, amount_fen=5_000, kind="topup", key="t:erase"
        )
        s.add(
            Material(
                account=ACCOUNT,
                openid=customer.openid,
                media_id="m1",
                content_type="image/png",
                size=1,
                data=PNG,
            )
        )
    number = await order_course(customer)  # unpaid: cancelled by the erasure
    assert await customer.say("确认注销") == texts.ERASE_NOT_ASKED
    asked = await customer.say("注销")
    assert "¥50" in asked and "余额 ¥50" in asked and "确认注销" in asked
    before = await counts(shop, customer.openid)
    assert before["orders"] == 1 and before["materials"] == 1 and before["bodies"] > 3

    assert await customer.say("确认注销") == texts.ERASED.format(brand="星推")
    after = await counts(shop, customer.openid)
    assert after == {"orders": 0, "payments": 0, "ledger": 0, "materials": 0, "bodies": 1}  # 确认注销 itself
    async with sm() as s:
        order = await s.scalar(select(Order).where(Order.number == number))
        assert order is not None and order.status == "已取消" and order.requirements == {}
        assert order.openid.startswith("erased_")
        kept = await s.scalar(
            select(func.sum(LedgerEntry.amount_fen)).where(LedgerEntry.openid == order.openid)
        )
        assert kept == 5_000  # the books still add up, under the pseudonym
        assert await payments.check_balances(s) == []
        assert await s.get(Balance, (ACCOUNT, customer.openid)) is None
        user = await s.scalar(select(User).where(User.openid == customer.openid))
        assert user is None or (user.nickname is None and user.avatar_url is None)
        state = await s.get(Conversation, (ACCOUNT, customer.openid))
        assert state is None or state.data == {}
    assert PHONE not in json.dumps(await _export(shop, customer), ensure_ascii=False)


async def _export(shop: TestClient, customer: Customer) -> dict[str, object]:  # noqa: F811
    status, body = await download(shop, link_in(await customer.say("我的数据")))
    assert status == 200
    return dict(json.loads(body))


async def test_erasure_waits_for_orders_in_flight_and_for_a_late_confirmation(
    customer: Customer,  # noqa: F811
    shop: TestClient,  # noqa: F811
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
) -> None:
    number = await order_course(customer)
    await pay_sim[0].pay((await payment_of(shop, number)).out_trade_no)
    assert await customer.say("注销") == texts.ERASE_BLOCKED_ORDERS.format(numbers=number)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        await s.execute(update(Order).where(Order.number == number).values(status="已完成"))
    assert "确认注销" in await customer.say("注销")
    async with shop.app[keys.SESSIONMAKER].begin() as s:  # the confirmation comes ten minutes late
        conv = await s.get(Conversation, (ACCOUNT, customer.openid))
        assert conv is not None
        late = (utcnow() - dt.timedelta(minutes=10)).isoformat()
        await s.execute(
            update(Conversation)
            .where(Conversation.openid == customer.openid)
            .values(data=conv.data | {"erase_asked_at": late})
        )
    assert await customer.say("确认注销") == texts.ERASE_NOT_ASKED
    assert (await counts(shop, customer.openid))["orders"] == 1


async def test_retention_purges_old_bodies_and_pictures(
    customer: Customer,  # noqa: F811
    shop: TestClient,  # noqa: F811
) -> None:
    await order_course(customer)
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        s.add(
            Material(
                account=ACCOUNT,
                openid=customer.openid,
                media_id="m2",
                content_type="image/png",
                size=1,
                data=PNG,
            )
        )
    sm, settings = shop.app[keys.SESSIONMAKER], shop.app[keys.SETTINGS]
    assert await purge_retained(sm, settings, utcnow()) == 0  # nothing is 180 days old
    assert await purge_retained(sm, settings, utcnow() + dt.timedelta(days=181)) > 0
    after = await counts(shop, customer.openid)
    assert after["bodies"] == 0 and after["materials"] == 0 and after["orders"] == 1


async def test_a_whole_journey_logs_no_secret_and_no_personal_data(
    customer: Customer,  # noqa: F811
    shop: TestClient,  # noqa: F811
    pay_sim: tuple[PaySimulator, str],  # noqa: F811
    mp_sim: tuple[MpSimulator, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    set_levels(logging.INFO)  # as `chatorder serve` configures logging
    for ours in ("bot", "flows", "handlers", "store", "webhooks"):
        caplog.set_level(logging.DEBUG, logger=ours)  # and every line of ours, even debug
    await customer.chat.event(customer.openid, "subscribe")
    number = await order_course(customer)
    await pay_sim[0].pay((await payment_of(shop, number)).out_trade_no)
    link = link_in(await customer.say("我的数据"))
    assert (await download(shop, link))[0] == 200
    await customer.say("海报昵称 王小芳")
    await customer.say("注销")
    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    settings = shop.app[keys.SETTINGS]
    secrets = [
        settings.wechat_app_secret.get_secret_value(),
        settings.wechat_token.get_secret_value(),
        settings.wechat_aes_key.get_secret_value(),
        settings.wechatpay_api_key.get_secret_value(),
        *mp_sim[0]._tokens,  # the access tokens the simulator handed out
    ]
    personal = [PHONE, "王芳", "王小芳", urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["sig"][0]]
    assert len(caplog.records) > 0
    for needle in [*secrets, *personal]:
        assert needle and needle not in logged, f"{needle!r} appears in the logs"


async def test_a_failed_statement_never_carries_its_parameters(shop: TestClient) -> None:  # noqa: F811
    """Errors are logged with their traceback: the SQL's parameters (people's answers) stay out of it."""
    row = {"account": ACCOUNT, "openid": "o_dup", "nickname": PHONE}
    async with shop.app[keys.SESSIONMAKER].begin() as s:
        s.add(User(**row))
    with pytest.raises(IntegrityError) as failed:
        async with shop.app[keys.SESSIONMAKER].begin() as s:
            s.add(User(**row))
    assert PHONE not in str(failed.value) and "o_dup" not in str(failed.value)
