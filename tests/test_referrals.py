"""store.referrals on SQLite and PostgreSQL: policies, self and cycles, races, bursts, teams, levels."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from settings import DEFAULT_LEVELS, Level
from store import creators, referrals
from store.models import Creator, Order, OrderEvent, Referral, Refund, User
from store.orders import OrderStatus
from store.referrals import BindResult
from tests.factories import Maker

ACCOUNT = "gh_ref"
NOW = dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC)
_numbers = itertools.count(1)


async def code_of(sm: Maker, openid: str) -> str:
    async with sm.begin() as s:
        return (await creators.get_or_create(s, account=ACCOUNT, openid=openid)).code


async def bind(sm: Maker, invitee: str, inviter: str, **kw: Any) -> BindResult:
    """`invitee` scans `inviter`'s poster, in a transaction of its own."""
    code = await code_of(sm, inviter)
    args: dict[str, Any] = {
        "source": "scan",
        "now": NOW,
        "policy": "first_touch",
        "rebind_days": 30,
        "new_user": True,
        "burst_count": 20,
        "burst_minutes": 60,
    }
    async with sm.begin() as s:
        return await referrals.bind(s, account=ACCOUNT, invitee=invitee, code=code, **(args | kw))


async def referral(sm: Maker, invitee: str) -> Referral | None:
    async with sm() as s:
        return await s.get(Referral, (ACCOUNT, invitee))


async def chain(sm: Maker, openid: str, depth: int = 3) -> list[str]:
    async with sm() as s:
        return await referrals.inviters(s, account=ACCOUNT, openid=openid, depth=depth)


async def count_referrals(sm: Maker) -> int:
    async with sm() as s:
        return await s.scalar(select(func.count()).select_from(Referral)) or 0


# --- Scenes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scene", "code"),
    [
        ("inv_ABC234", "ABC234"),
        ("qrscene_inv_abc234", "ABC234"),
        (" inv_ABCDEFGHJK234567 ", "ABCDEFGHJK234567"),
        ("inv_ABC23", None),  # too short
        ("inv_ABCDEFGHJK2345678", None),  # too long
        ("inv_ABC10O", None),  # 0, 1, O are not in the alphabet
        ("inv_ABC 234", None),
        ("ABC234", None),
        ("order_ABC234", None),
        ("", None),
    ],
)
def test_parse_code(scene: str, code: str | None) -> None:
    assert referrals.parse_code(scene) == code


# --- Policies --------------------------------------------------------------------------------------


async def test_first_touch_keeps_the_first_inviter_for_ever(sm: Maker) -> None:
    assert await bind(sm, "o_b", "o_a") == BindResult("bound", "o_a", 1, False)
    assert await bind(sm, "o_b", "o_a") == BindResult("already", "o_a", 1, False)  # a replayed scan
    assert await bind(sm, "o_b", "o_c", now=NOW + dt.timedelta(days=400)) == BindResult(
        "taken", "o_c", 0, False
    )
    assert await bind(sm, "o_d", "o_a", source="subscribe") == BindResult("bound", "o_a", 2, False)
    found = await referral(sm, "o_b")
    assert found is not None
    assert (found.inviter_openid, found.status, found.bound_at, found.source) == ("o_a", "bound", NOW, "scan")


async def test_self_invites_and_unknown_codes_change_nothing(sm: Maker) -> None:
    assert await bind(sm, "o_a", "o_a") == BindResult("self", "o_a", 0, False)
    async with sm.begin() as s:
        unknown = await referrals.bind(
            s, account=ACCOUNT, invitee="o_b", code="ZZZZZZ", source="scan", now=NOW, policy="first_touch"
        )
    assert unknown == BindResult("unknown_code", None, 0, False)
    assert await count_referrals(sm) == 0


async def test_codes_are_case_insensitive(sm: Maker) -> None:
    code = await code_of(sm, "o_a")
    async with sm.begin() as s:
        result = await referrals.bind(
            s, account=ACCOUNT, invitee="o_b", code=code.lower(), source="scan", now=NOW
        )
    assert result.outcome == "bound"


async def test_no_cycle_anywhere_up_the_chain(sm: Maker) -> None:
    # a is bound under b, b under c: c scanning a's code would make c their own grand-inviter.
    assert (await bind(sm, "o_a", "o_b")).outcome == "bound"
    assert (await bind(sm, "o_b", "o_c")).outcome == "bound"
    assert await bind(sm, "o_c", "o_a") == BindResult("cycle", "o_a", 0, False)
    assert (await bind(sm, "o_b", "o_a")).outcome == "taken"  # the direct pair: b already has c
    assert await referral(sm, "o_c") is None
    assert await chain(sm, "o_a") == ["o_b", "o_c"]


async def test_a_direct_pair_cannot_invite_each_other(sm: Maker) -> None:
    assert (await bind(sm, "o_b", "o_a")).outcome == "bound"
    assert (await bind(sm, "o_a", "o_b")).outcome == "cycle"


async def test_time_limited_rebinds_only_after_the_window(sm: Maker) -> None:
    limited = {"policy": "time_limited", "rebind_days": 30}
    assert (await bind(sm, "o_b", "o_a", **limited)).outcome == "bound"
    early = await bind(sm, "o_b", "o_c", now=NOW + dt.timedelta(days=29), **limited)
    assert early == BindResult("taken", "o_c", 0, False)
    late = NOW + dt.timedelta(days=30)
    assert await bind(sm, "o_b", "o_c", now=late, **limited) == BindResult("rebound", "o_c", 1, False)
    assert await bind(sm, "o_b", "o_c", now=late, **limited) == BindResult("already", "o_c", 1, False)
    found = await referral(sm, "o_b")
    assert found is not None and (found.inviter_openid, found.bound_at) == ("o_c", late)
    async with sm() as s:
        assert await referrals.invites_of(s, account=ACCOUNT, openid="o_a") == 0


async def test_time_limited_never_rebinds_into_a_cycle(sm: Maker) -> None:
    limited = {"policy": "time_limited", "rebind_days": 1}
    await bind(sm, "o_b", "o_a", **limited)
    await bind(sm, "o_c", "o_b", **limited)
    # a has no inviter; b is bound under a. b moving under its own invitee c would loop.
    result = await bind(sm, "o_b", "o_c", now=NOW + dt.timedelta(days=5), **limited)
    assert result.outcome == "cycle"
    assert await chain(sm, "o_c") == ["o_b", "o_a"]


async def test_new_users_policy_binds_only_people_new_to_the_account(sm: Maker) -> None:
    assert (await bind(sm, "o_b", "o_a", policy="new_users", new_user=False)).outcome == "not_new"
    assert await referral(sm, "o_b") is None
    assert (await bind(sm, "o_c", "o_a", policy="new_users", new_user=True)).outcome == "bound"


async def test_first_paid_records_a_candidate_bound_by_the_first_payment(sm: Maker) -> None:
    paid = {"policy": "first_paid"}
    assert await bind(sm, "o_b", "o_a", **paid) == BindResult("candidate", "o_a", 0, False)
    assert (await bind(sm, "o_b", "o_c", **paid)).outcome == "taken"  # the first candidate is kept
    assert (await bind(sm, "o_b", "o_a", **paid)).outcome == "already"
    assert await chain(sm, "o_b") == []  # a candidate earns nobody anything yet
    later = NOW + dt.timedelta(hours=2)
    async with sm.begin() as s:
        confirmed = await referrals.confirm_on_paid(s, account=ACCOUNT, invitee="o_b", now=later)
    assert confirmed is not None and (confirmed.status, confirmed.bound_at) == ("bound", later)
    async with sm.begin() as s:
        assert await referrals.confirm_on_paid(s, account=ACCOUNT, invitee="o_b", now=later) is None
        assert await referrals.confirm_on_paid(s, account=ACCOUNT, invitee="o_nobody", now=later) is None
    assert await chain(sm, "o_b") == ["o_a"]


async def test_first_paid_refuses_a_customer_who_already_paid(sm: Maker) -> None:
    async with sm.begin() as s:
        await add_order(s, "o_b", 10_000, status=OrderStatus.PENDING_REVIEW)
    assert (await bind(sm, "o_b", "o_a", policy="first_paid")).outcome == "not_new"
    assert await referral(sm, "o_b") is None


async def test_a_candidate_that_would_now_close_a_cycle_is_never_bound(sm: Maker) -> None:
    assert (await bind(sm, "o_b", "o_a", policy="first_paid")).outcome == "candidate"
    assert (await bind(sm, "o_a", "o_b")).outcome == "bound"  # a candidate is not a binding yet
    async with sm.begin() as s:
        assert await referrals.confirm_on_paid(s, account=ACCOUNT, invitee="o_b", now=NOW) is None
    found = await referral(sm, "o_b")
    assert found is not None and found.status == "candidate"


async def test_inviters_never_go_beyond_three(sm: Maker) -> None:
    people = [f"o_{n}" for n in range(6)]
    for inviter, invitee in itertools.pairwise(people):
        assert (await bind(sm, invitee, inviter)).outcome == "bound"
    assert await chain(sm, "o_5") == ["o_4", "o_3", "o_2"]
    assert await chain(sm, "o_5", depth=10) == ["o_4", "o_3", "o_2"]
    assert await chain(sm, "o_5", depth=1) == ["o_4"]
    assert await chain(sm, "o_5", depth=0) == []
    assert await chain(sm, "o_0") == []


# --- Races -----------------------------------------------------------------------------------------


async def attempt(sm: Maker, invitee: str, inviter: str, code: str) -> str:
    async with sm.begin() as s:
        result = await referrals.bind(s, account=ACCOUNT, invitee=invitee, code=code, source="scan", now=NOW)
        await asyncio.sleep(0.05)  # keep the transaction open while the other one tries
        return result.outcome


async def test_two_binds_of_one_invitee_at_once_have_one_winner(sm: Maker) -> None:
    a, c = await code_of(sm, "o_a"), await code_of(sm, "o_c")
    outcomes = await asyncio.gather(attempt(sm, "o_b", "o_a", a), attempt(sm, "o_b", "o_c", c))
    assert sorted(outcomes) == ["bound", "taken"]
    same = await asyncio.gather(*(attempt(sm, "o_d", "o_a", a) for _ in range(4)))
    assert sorted(same) == ["already", "already", "already", "bound"]
    assert await count_referrals(sm) == 2


async def test_two_people_scanning_each_other_at_once_make_no_cycle(sm: Maker) -> None:
    a, b = await code_of(sm, "o_a"), await code_of(sm, "o_b")
    outcomes = await asyncio.gather(attempt(sm, "o_b", "o_a", a), attempt(sm, "o_a", "o_b", b))
    assert sorted(outcomes) == ["bound", "cycle"]
    assert await count_referrals(sm) == 1


# --- Bursts ----------------------------------------------------------------------------------------


async def test_a_burst_of_bindings_is_flagged_with_its_evidence(sm: Maker) -> None:
    burst = {"burst_count": 3, "burst_minutes": 60}
    for n in range(3):
        result = await bind(sm, f"o_{n}", "o_a", now=NOW + dt.timedelta(minutes=n), **burst)
        assert not result.flagged
    fourth = await bind(sm, "o_3", "o_a", now=NOW + dt.timedelta(minutes=10), **burst)
    assert fourth == BindResult("bound", "o_a", 4, True)
    found = await referral(sm, "o_3")
    assert found is not None and found.flag == "burst"
    assert found.note is not None and "4 bindings within 60 min" in found.note
    assert NOW.isoformat() in found.note and (NOW + dt.timedelta(minutes=10)).isoformat() in found.note
    calm = await bind(sm, "o_4", "o_a", now=NOW + dt.timedelta(hours=3), **burst)
    assert calm == BindResult("bound", "o_a", 5, False)
    first = await referral(sm, "o_0")
    assert first is not None and first.flag is None


# --- Teams and levels ------------------------------------------------------------------------------


async def add_order(
    s: Any,
    openid: str,
    total_fen: int,
    *,
    status: OrderStatus = OrderStatus.COMPLETED,
    completed_at: dt.datetime | None = NOW,
    refunded_fen: int = 0,
) -> int:
    n = next(_numbers)
    order = Order(
        number=f"20261122-{n:04d}", account=ACCOUNT, openid=openid, status=status, total_fen=total_fen
    )
    s.add(order)
    await s.flush()
    if completed_at is not None:
        s.add(
            OrderEvent(
                order_id=order.id, at=completed_at, actor="staff:t", from_status="执行中", to_status="已完成"
            )
        )
    if refunded_fen:
        s.add(
            Refund(
                out_refund_no=f"RF{n}",
                order_id=order.id,
                amount_fen=refunded_fen,
                destination="balance",
                status="succeeded",
                actor="staff:t",
            )
        )
    await s.flush()
    return order.id


async def test_team_counts_members_per_depth_and_nets_refunds(sm: Maker) -> None:
    for invitee, inviter in [("o_b", "o_a"), ("o_c", "o_a"), ("o_d", "o_b"), ("o_e", "o_d"), ("o_f", "o_e")]:
        assert (await bind(sm, invitee, inviter)).outcome == "bound"
    month = NOW + dt.timedelta(days=1)
    async with sm.begin() as s:
        s.add(User(account=ACCOUNT, openid="o_b", nickname="小白"))
        await add_order(s, "o_b", 10_000, completed_at=month + dt.timedelta(hours=1))
        await add_order(s, "o_d", 20_000, status=OrderStatus.REFUNDING, refunded_fen=5_000)
        await add_order(s, "o_e", 30_000)
        await add_order(s, "o_c", 40_000, status=OrderStatus.PENDING_REVIEW, completed_at=None)  # not done
        await add_order(s, "o_f", 50_000)  # four levels down: outside the team
        await add_order(s, "o_a", 60_000)  # the creator's own orders are not team sales
        await add_order(s, "o_e", 7_000, status=OrderStatus.REFUNDED, refunded_fen=7_000)
    async with sm() as s:
        t = await referrals.team(s, account=ACCOUNT, openid="o_a", since=month)
        shallow = await referrals.team(s, account=ACCOUNT, openid="o_a", depth=1)
        leaf = await referrals.team(s, account=ACCOUNT, openid="o_f")
    assert t.counts == [2, 1, 1] and t.size == 4
    assert [[m.openid for m in level] for level in t.by_depth] == [["o_b", "o_c"], ["o_d"], ["o_e"]]
    b = t.by_depth[0][0]
    assert (b.nickname, b.bound_at, b.sales_fen, b.depth) == ("小白", NOW, 10_000, 1)
    assert t.team_sales_fen == 10_000 + 15_000 + 30_000
    assert t.sales_since_fen == 10_000
    assert [(m.openid, m.sales_fen) for m in t.top] == [("o_e", 30_000), ("o_d", 15_000), ("o_b", 10_000)]
    assert shallow.counts == [2] and shallow.team_sales_fen == 10_000
    assert leaf.counts == [0, 0, 0] and leaf.team_sales_fen == 0 and leaf.top == []


LEVELS = DEFAULT_LEVELS  # 一星 0 · 二星 3 · 三星 10 + ¥5,000 · 百星 30 + ¥50,000 · 千星 100 + ¥200,000


@pytest.mark.parametrize(
    ("invites", "sales", "level"),
    [
        (0, 0, 0),
        (2, 10**9, 0),
        (3, 0, 1),
        (10, 499_999, 1),
        (10, 500_000, 2),
        (29, 10**9, 2),
        (100, 20_000_000, 4),
    ],
)
def test_level_for(invites: int, sales: int, level: int) -> None:
    assert referrals.level_for(invites, sales, LEVELS) == level


def test_level_for_needs_both_and_defaults_to_the_bottom() -> None:
    steep = (Level(name="新人", invites=1), Level(name="达人", invites=2, team_sales_fen=100))
    assert referrals.level_for(0, 0, steep) == 0
    assert referrals.level_for(5, 99, steep) == 0
    assert referrals.level_for(2, 100, steep) == 1


def test_next_gap() -> None:
    assert referrals.next_gap(0, 1, 0, LEVELS) == ("二星", 2, 0)
    assert referrals.next_gap(1, 5, 100_000, LEVELS) == ("三星", 5, 400_000)
    assert referrals.next_gap(1, 12, 600_000, LEVELS) == ("三星", 0, 0)
    assert referrals.next_gap(4, 500, 10**9, LEVELS) is None


async def test_refresh_level_stores_the_level_and_creates_the_creator(sm: Maker) -> None:
    async with sm.begin() as s:
        assert await referrals.refresh_level(s, account=ACCOUNT, openid="o_new", levels=LEVELS) == (0, 0)
    for n in range(3):
        await bind(sm, f"o_{n}", "o_a")
    async with sm.begin() as s:
        assert await referrals.refresh_level(s, account=ACCOUNT, openid="o_a", levels=LEVELS) == (0, 1)
        assert await referrals.refresh_level(s, account=ACCOUNT, openid="o_a", levels=LEVELS) == (1, 1)
    async with sm() as s:
        assert await s.scalar(select(Creator.level).where(Creator.openid == "o_a")) == 1
        assert await s.scalar(select(Creator.level).where(Creator.openid == "o_new")) == 0
