"""The team: 上班 · 下班 for oneself, 员工 列表/添加/移除/值班 for admins."""

from __future__ import annotations

import re

from flows import desk
from flows import texts_staff as ts
from handlers.work.turn import StaffRouter, Turn, Usage, fold, pair
from store import staff
from store.errors import DomainError

LIST_SEPARATORS = re.compile(r"[,，、/]+")

router = StaffRouter("people")


@router.command("上班", "duty")
async def on_duty(turn: Turn) -> None:
    """上班: new orders are handed to me again (and the backlog at once)."""
    async with turn.change() as session:
        await staff.set_duty(session, userid=turn.userid, on_duty=True, actor=turn.actor, now=turn.now)
        await desk.catch_up_cards(session, turn.settings, turn.now, turn.me)  # paid while no one was here
        turn.say(ts.ON_DUTY)
    turn.hand_out_later()


@router.command("下班", "duty")
async def off_duty(turn: Turn) -> None:
    """下班: no new orders for me; my open ones stay mine."""
    async with turn.change() as session:
        await staff.set_duty(session, userid=turn.userid, on_duty=False, actor=turn.actor, now=turn.now)
        open_now = (await staff.open_counts(session, [turn.userid])).get(turn.userid, 0)
        turn.say(ts.OFF_DUTY, n=open_now)


@router.command("员工", "staff")
async def on_staff(turn: Turn) -> None:
    """员工 列表 / 添加 / 移除 / 值班 (admins)."""
    verb, rest = pair(turn.rest)
    sub = {
        "列表": staff_list,
        "添加": staff_add,
        "移除": staff_remove,
        "删除": staff_remove,
        "值班": staff_duty,
    }.get(fold(verb) or "列表")
    if sub is None:
        raise Usage
    await sub(turn, rest)


async def staff_list(turn: Turn, rest: str) -> None:
    async with turn.read() as session:
        turn.send(await desk.staff_list_text(session, turn.settings))


def roles_of(text: str) -> list[str]:
    """'运营,审核' or 'ops,reviewer' → ['ops', 'reviewer'] (the store refuses unknown ones)."""
    return [ts.ROLE_WORDS.get(w, w) for w in LIST_SEPARATORS.split(text) if w]


async def staff_add(turn: Turn, rest: str) -> None:
    parts = rest.split()
    if len(parts) not in (3, 4):
        raise Usage
    userid, name, roles = parts[:3]
    skills = LIST_SEPARATORS.split(parts[3]) if len(parts) == 4 else []
    async with turn.change() as session:
        member = await staff.add_member(
            session,
            userid=userid,
            name=name,
            roles=roles_of(roles),
            skills=skills,
            actor=turn.actor,
            now=turn.now,
        )
        skill_text = ts.STAFF_SKILLS.format(skills="、".join(member.skills)) if member.skills else ""
        turn.say(
            ts.STAFF_ADDED,
            name=member.name,
            userid=member.userid,
            roles=desk.role_names(member.roles),
            skills=skill_text,
        )
    turn.hand_out_later()


async def staff_remove(turn: Turn, rest: str) -> None:
    if not rest:
        raise Usage
    async with turn.change() as session:
        member = await staff.find_member(session, rest)
        if member is None:
            raise DomainError("no_member", who=rest)
        if member.userid == turn.userid:
            turn.say(ts.REMOVE_SELF)
            return
        kept = await staff.remove_member(session, userid=member.userid, actor=turn.actor, now=turn.now)
        tail = ts.STAFF_REMOVED_KEPT.format(n=len(kept), numbers="、".join(kept)) if kept else ""
        turn.send(ts.STAFF_REMOVED.format(name=member.name, userid=member.userid) + tail)
    turn.hand_out_later()


async def staff_duty(turn: Turn, rest: str) -> None:
    parts = rest.rsplit(None, 1)
    who, state = (parts[0], parts[1]) if len(parts) == 2 else ("", rest)
    on_duty = ts.DUTY_WORDS.get(fold(state))
    if not who or on_duty is None:
        raise Usage
    async with turn.change() as session:
        member = await staff.find_member(session, who.strip())
        if member is None:
            raise DomainError("no_member", who=who.strip())
        await staff.set_duty(session, userid=member.userid, on_duty=on_duty, actor=turn.actor, now=turn.now)
        turn.say(ts.DUTY_SET, name=member.name, state=ts.DUTY_ON if on_duty else ts.DUTY_OFF)
    if on_duty:
        turn.hand_out_later()
