"""Referrals: who brought whom (QR scene inv_<code>), the inviter chain, teams and creator levels.

Every action runs in the caller's transaction and never commits. Binds are serialized per account
(an advisory lock on PostgreSQL, SQLite's single write lock), so two binds can never close a cycle
that neither of them saw; the referral's primary key still makes a lost race harmless.
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Integer, false, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import creators
from store.db import upsert_insert
from store.errors import DomainError
from store.models import Creator, Order, OrderEvent, Referral, Refund, User
from store.orders import OrderStatus
from store.payments import WAS_PAID

if TYPE_CHECKING:
    from settings import Level

OUTCOMES = frozenset(
    {"bound", "rebound", "candidate", "already", "taken", "self", "cycle", "unknown_code", "not_new"}
)
POLICIES = frozenset({"first_touch", "time_limited", "new_users", "first_paid"})
SOURCES = frozenset({"subscribe", "scan"})
MAX_DEPTH = 3  # multi-level payouts beyond three levels are illegal in China
MAX_CHAIN = 64  # hops walked up when looking for a cycle; a longer chain is refused as one
_CODE = re.compile(f"[{creators._ALPHABET}]{{6,16}}")


@dataclass(frozen=True, slots=True)
class BindResult:
    """What a scan did. `inviter` is the scanned code's owner; `invites` their bound direct invitees."""

    outcome: str
    inviter: str | None
    invites: int
    flagged: bool


@dataclass(frozen=True, slots=True)
class Member:
    """One person of a creator's team, `depth` levels below them."""

    openid: str
    nickname: str | None
    bound_at: dt.datetime | None
    sales_fen: int
    depth: int


@dataclass(frozen=True, slots=True)
class Team:
    """A creator's team: `by_depth[0]` are the direct invitees, then their invitees, …"""

    by_depth: list[list[Member]]
    team_sales_fen: int
    sales_since_fen: int
    top: list[Member]  # up to three members with the most sales (none without sales)

    @property
    def counts(self) -> list[int]:
        return [len(members) for members in self.by_depth]

    @property
    def size(self) -> int:
        return sum(self.counts)


def parse_code(scene: str) -> str | None:
    """The invite code in a QR scene `inv_<code>` (or subscribe's `qrscene_inv_<code>`), else None."""
    scene = scene.strip().removeprefix("qrscene_")
    if not scene.startswith("inv_"):
        return None
    code = scene.removeprefix("inv_").upper()
    return code if _CODE.fullmatch(code) else None


# --- Reading the tree ------------------------------------------------------------------------------


async def _chain(session: AsyncSession, account: str, openid: str, limit: int) -> list[str]:
    """The bound inviters above `openid`, nearest first, at most `limit` (one recursive query)."""
    if limit <= 0:
        return []
    # literal_column, not a bound parameter: PostgreSQL must see one integer type in both terms.
    first = select(Referral.inviter_openid.label("openid"), literal_column("1", Integer).label("hop")).where(
        Referral.account == account, Referral.invitee_openid == openid, Referral.status == "bound"
    )
    chain = first.cte("chain", recursive=True)
    up = (
        select(Referral.inviter_openid, chain.c.hop + 1)
        .join(chain, Referral.invitee_openid == chain.c.openid)
        .where(Referral.account == account, Referral.status == "bound", chain.c.hop < limit)
    )
    chain = chain.union_all(up)
    return list(await session.scalars(select(chain.c.openid).order_by(chain.c.hop)))


async def inviters(session: AsyncSession, *, account: str, openid: str, depth: int) -> list[str]:
    """The bound chain above a person, nearest first, never more than three."""
    return await _chain(session, account, openid, min(depth, MAX_DEPTH))


async def invites_of(session: AsyncSession, *, account: str, openid: str) -> int:
    """How many people are bound directly under `openid`."""
    stmt = select(func.count()).where(
        Referral.account == account, Referral.inviter_openid == openid, Referral.status == "bound"
    )
    return int(await session.scalar(stmt) or 0)


async def _referral(session: AsyncSession, account: str, invitee: str) -> Referral | None:
    return await session.get(Referral, (account, invitee), populate_existing=True)


async def _has_paid(session: AsyncSession, account: str, openid: str) -> bool:
    stmt = select(Order.id).where(
        Order.account == account, Order.openid == openid, Order.status.in_([str(s) for s in WAS_PAID])
    )
    return await session.scalar(stmt.limit(1)) is not None


async def _closes_cycle(session: AsyncSession, account: str, invitee: str, inviter: str) -> bool:
    """Whether binding invitee under inviter would put the invitee above themself."""
    chain = await _chain(session, account, inviter, MAX_CHAIN)
    return invitee in chain or len(chain) >= MAX_CHAIN


# --- Binding ---------------------------------------------------------------------------------------


async def _lock_binds(session: AsyncSession, account: str) -> None:
    """Serialize binds of one account until commit, so that the cycle check reads the latest tree."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"referrals:{account}".encode()) - 2**31  # pg's lock key is a signed bigint
        await session.execute(select(func.pg_advisory_xact_lock(key)))
    else:
        # A write statement takes SQLite's one write lock even when it matches no row.
        await session.execute(
            update(Referral)
            .where(false())
            .values(status=Referral.status)
            .execution_options(synchronize_session=False)
        )


async def _result(
    session: AsyncSession, account: str, outcome: str, inviter: str, flagged: bool = False
) -> BindResult:
    return BindResult(outcome, inviter, await invites_of(session, account=account, openid=inviter), flagged)


async def _flag_burst(
    session: AsyncSession,
    account: str,
    invitee: str,
    inviter: str,
    now: dt.datetime,
    count: int,
    minutes: int,
) -> bool:
    """Flag this binding when it takes the inviter over `count` bindings within `minutes`."""
    since = now - dt.timedelta(minutes=minutes)
    n, first, last = (
        await session.execute(
            select(func.count(), func.min(Referral.bound_at), func.max(Referral.bound_at)).where(
                Referral.account == account,
                Referral.inviter_openid == inviter,
                Referral.status == "bound",
                Referral.bound_at > since,
            )
        )
    ).one()
    if n <= count or first is None or last is None:  # more than `count` rows always have a min and max
        return False
    note = (
        f"burst: {n} bindings within {minutes} min (limit {count}), {first.isoformat()} .. {last.isoformat()}"
    )
    await session.execute(
        update(Referral)
        .where(Referral.account == account, Referral.invitee_openid == invitee)
        .values(flag="burst", note=note)
        .execution_options(synchronize_session=False)
    )
    return True


async def _insert_referral(
    session: AsyncSession,
    *,
    account: str,
    invitee: str,
    inviter: str,
    code: str,
    status: str,
    source: str,
    now: dt.datetime,
) -> bool:
    """Insert the referral unless the invitee has one already (then False: a concurrent bind won)."""
    stmt = (
        upsert_insert(session)(Referral)
        .values(
            account=account,
            invitee_openid=invitee,
            inviter_openid=inviter,
            code=code,
            status=status,
            source=source,
            touched_at=now,
            bound_at=now if status == "bound" else None,
        )
        .on_conflict_do_nothing(index_elements=["account", "invitee_openid"])
        .returning(Referral.invitee_openid)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def _rebind(
    session: AsyncSession, old: Referral, *, inviter: str, code: str, source: str, now: dt.datetime
) -> bool:
    """Move a bound invitee to another inviter, unless someone changed the referral meanwhile."""
    stmt = (
        update(Referral)
        .where(
            Referral.account == old.account,
            Referral.invitee_openid == old.invitee_openid,
            Referral.inviter_openid == old.inviter_openid,
            Referral.bound_at == old.bound_at,
        )
        .values(
            inviter_openid=inviter,
            code=code,
            source=source,
            touched_at=now,
            bound_at=now,
            flag=None,
            note=None,
        )
        .returning(Referral.invitee_openid)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


@dataclass(frozen=True, slots=True)
class _Scan:
    account: str
    invitee: str
    inviter: str
    code: str
    source: str
    now: dt.datetime
    burst_count: int
    burst_minutes: int


async def _against_existing(
    session: AsyncSession, scan: _Scan, existing: Referral, *, policy: str, rebind_days: int
) -> BindResult:
    """The invitee already has an inviter (or a candidate): already, taken, or a time_limited rebind."""
    a = scan.account
    if existing.inviter_openid == scan.inviter:
        return await _result(session, a, "already", scan.inviter)
    expired = (
        existing.status == "bound"
        and existing.bound_at is not None
        and existing.bound_at + dt.timedelta(days=rebind_days) <= scan.now
    )
    if policy != "time_limited" or not expired:
        return await _result(session, a, "taken", scan.inviter)
    if await _closes_cycle(session, a, scan.invitee, scan.inviter):
        return await _result(session, a, "cycle", scan.inviter)
    if not await _rebind(
        session, existing, inviter=scan.inviter, code=scan.code, source=scan.source, now=scan.now
    ):
        return await _result(session, a, "taken", scan.inviter)
    flagged = await _flag_burst(
        session, a, scan.invitee, scan.inviter, scan.now, scan.burst_count, scan.burst_minutes
    )
    return await _result(session, a, "rebound", scan.inviter, flagged)


async def bind(
    session: AsyncSession,
    *,
    account: str,
    invitee: str,
    code: str,
    source: str,
    now: dt.datetime,
    policy: str = "first_touch",
    rebind_days: int = 30,
    new_user: bool = True,
    burst_count: int = 20,
    burst_minutes: int = 60,
) -> BindResult:
    """Bind `invitee` to the owner of `code` under `policy`; see BindResult.outcome for what happened."""
    if policy not in POLICIES:
        raise DomainError("bad_policy", policy=policy)
    if source not in SOURCES:
        raise DomainError("bad_source", source=source)
    code = code.strip().upper()
    owner = await session.scalar(
        select(Creator.openid).where(Creator.account == account, Creator.code == code)
    )
    if owner is None:
        return BindResult("unknown_code", None, 0, False)
    if owner == invitee:
        return await _result(session, account, "self", owner)
    scan = _Scan(account, invitee, owner, code, source, now, burst_count, burst_minutes)
    existing = await _referral(session, account, invitee)
    if existing is not None and (existing.inviter_openid == owner or policy != "time_limited"):
        # Nothing can change (a replayed scan, or a binding that is for ever): no lock needed.
        return await _against_existing(session, scan, existing, policy=policy, rebind_days=rebind_days)
    await _lock_binds(session, account)
    existing = await _referral(session, account, invitee)  # read again under the lock
    if existing is not None:
        return await _against_existing(session, scan, existing, policy=policy, rebind_days=rebind_days)
    if (policy == "new_users" and not new_user) or (
        policy == "first_paid" and await _has_paid(session, account, invitee)
    ):
        return await _result(session, account, "not_new", owner)
    if await _closes_cycle(session, account, invitee, owner):
        return await _result(session, account, "cycle", owner)
    status = "candidate" if policy == "first_paid" else "bound"
    inserted = await _insert_referral(
        session,
        account=account,
        invitee=invitee,
        inviter=owner,
        code=code,
        status=status,
        source=source,
        now=now,
    )
    if not inserted:  # a concurrent bind won the primary key: judge against what it wrote
        won = await _referral(session, account, invitee)
        assert won is not None
        return await _result(session, account, "already" if won.inviter_openid == owner else "taken", owner)
    if status == "candidate":
        return await _result(session, account, "candidate", owner)
    flagged = await _flag_burst(session, account, invitee, owner, now, burst_count, burst_minutes)
    return await _result(session, account, "bound", owner, flagged)


async def confirm_on_paid(
    session: AsyncSession,
    *,
    account: str,
    invitee: str,
    now: dt.datetime,
    burst_count: int = 20,
    burst_minutes: int = 60,
) -> Referral | None:
    """Bind a `candidate` on the invitee's first paid order; the referral only if it became bound now."""
    found = await _referral(session, account, invitee)
    if found is None or found.status != "candidate":
        return None
    await _lock_binds(session, account)
    found = await _referral(session, account, invitee)  # re-read under the lock
    if found is None or found.status != "candidate" or found.inviter_openid == invitee:
        return None
    if await _closes_cycle(session, account, invitee, found.inviter_openid):
        return None  # the tree changed since the scan; the candidate simply never counts
    stmt = (
        update(Referral)
        .where(
            Referral.account == account, Referral.invitee_openid == invitee, Referral.status == "candidate"
        )
        .values(status="bound", bound_at=now)
        .returning(Referral.invitee_openid)
        .execution_options(synchronize_session=False)
    )
    if (await session.execute(stmt)).scalar_one_or_none() is None:
        return None
    await _flag_burst(session, account, invitee, found.inviter_openid, now, burst_count, burst_minutes)
    return await _referral(session, account, invitee)


# --- Teams -----------------------------------------------------------------------------------------


async def _members_below(
    session: AsyncSession, account: str, above: Sequence[str]
) -> list[tuple[str, str | None, dt.datetime | None]]:
    """(openid, nickname, bound_at) of everyone bound directly under one of `above`."""
    stmt = (
        select(Referral.invitee_openid, User.nickname, Referral.bound_at)
        .outerjoin(User, (User.account == Referral.account) & (User.openid == Referral.invitee_openid))
        .where(Referral.account == account, Referral.status == "bound", Referral.inviter_openid.in_(above))
        .order_by(Referral.bound_at, Referral.invitee_openid)
    )
    return [(r[0], r[1], r[2]) for r in await session.execute(stmt)]


async def _completed_sales(
    session: AsyncSession, account: str, openids: Sequence[str]
) -> list[tuple[str, int, dt.datetime]]:
    """(buyer, net fen, completed at) of every order of `openids` that was ever completed."""
    completed_at = (
        select(func.min(OrderEvent.at))
        .where(OrderEvent.order_id == Order.id, OrderEvent.to_status == OrderStatus.COMPLETED)
        .scalar_subquery()
    )
    # Only refunds that went through: a pending WeChat refund may still fail.
    back = (
        select(func.coalesce(func.sum(Refund.amount_fen), 0))
        .where(Refund.order_id == Order.id, Refund.status == "succeeded")
        .scalar_subquery()
    )
    stmt = select(Order.openid, Order.total_fen - back, completed_at).where(
        Order.account == account, Order.openid.in_(openids), completed_at.is_not(None)
    )
    return [(r[0], max(int(r[1]), 0), r[2]) for r in await session.execute(stmt)]


async def team(
    session: AsyncSession, *, account: str, openid: str, depth: int = 3, since: dt.datetime | None = None
) -> Team:
    """Everyone up to `depth` (≤ 3) levels below a person, with their completed sales: 2 + depth queries."""
    depth = max(0, min(depth, MAX_DEPTH))
    seen, above = {openid}, [openid]
    found: list[list[tuple[str, str | None, dt.datetime | None]]] = []
    for _ in range(depth):
        below = [m for m in await _members_below(session, account, above) if m[0] not in seen]
        seen.update(m[0] for m in below)
        found.append(below)
        above = [m[0] for m in below]
        if not above:
            break
    found += [[] for _ in range(depth - len(found))]
    everyone = [m[0] for level in found for m in level]
    sales = await _completed_sales(session, account, everyone) if everyone else []
    per_person: dict[str, int] = {}
    for buyer, fen, _ in sales:
        per_person[buyer] = per_person.get(buyer, 0) + fen
    by_depth = [
        [Member(o, nick, at, per_person.get(o, 0), d) for o, nick, at in level]
        for d, level in enumerate(found, start=1)
    ]
    ranked = sorted((m for level in by_depth for m in level if m.sales_fen > 0), key=lambda m: -m.sales_fen)
    return Team(
        by_depth=by_depth,
        team_sales_fen=sum(fen for _, fen, _ in sales),
        sales_since_fen=sum(fen for _, fen, at in sales if since is None or at >= since),
        top=ranked[:3],
    )


# --- Levels ----------------------------------------------------------------------------------------


def level_for(invites: int, team_sales_fen: int, levels: Sequence[Level]) -> int:
    """The highest level whose invites and team sales are both reached (0 if none is)."""
    reached = [
        i for i, lv in enumerate(levels) if invites >= lv.invites and team_sales_fen >= lv.team_sales_fen
    ]
    return max(reached, default=0)


def next_gap(
    level: int, invites: int, team_sales_fen: int, levels: Sequence[Level]
) -> tuple[str, int, int] | None:
    """(next level's name, invites still missing, sales still missing), or None at the top."""
    if level + 1 >= len(levels):
        return None
    nxt = levels[level + 1]
    return nxt.name, max(nxt.invites - invites, 0), max(nxt.team_sales_fen - team_sales_fen, 0)


async def refresh_level(
    session: AsyncSession, *, account: str, openid: str, levels: Sequence[Level]
) -> tuple[int, int]:
    """Recompute and store a creator's level from their invites and team sales: (old, new)."""
    creator = await creators.get_or_create(session, account=account, openid=openid)
    invites = await invites_of(session, account=account, openid=openid)
    sales = (await team(session, account=account, openid=openid)).team_sales_fen
    old, new = creator.level, level_for(invites, sales, levels)
    if new != old:
        creator.level = new
        await session.flush()
    return old, new
