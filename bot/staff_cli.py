"""`chatorder staff add|list|remove|duty`: the staff registry from the command line (audited as "cli")."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

from bot.cli_words import explain
from settings import Settings

SEPARATORS = re.compile(r"[,，、]+")


def add_parser(sub: Any) -> None:
    """Add the `staff` command to the CLI's subparsers."""
    summary = "the staff registry: who may act in WeCom work chat, and how"
    staff = sub.add_parser("staff", help=summary, description=summary)
    actions = staff.add_subparsers(dest="staff_action", required=True)
    add = actions.add_parser("add", help="register a member (or update one; a removed member comes back)")
    add.add_argument("userid", help="the member's WeCom userid")
    add.add_argument("--name", required=True, help="shown to staff, e.g. 张三")
    add.add_argument("--roles", required=True, help="comma-separated: admin, ops, reviewer, finance")
    add.add_argument("--skills", default="", help="catalog categories, e.g. 达人营销,广告投放 (none = all)")
    add.add_argument("--max-open", type=int, default=None, help="open orders at most (default: settings)")
    add.add_argument("--off-duty", action="store_true", help="registered, but not given orders yet")
    listing = actions.add_parser("list", help="members, roles, duty and open orders")
    listing.add_argument("--all", action="store_true", help="include removed members")
    remove = actions.add_parser("remove", help="deactivate a member (the audit trail keeps them)")
    remove.add_argument("userid", help="the member's WeCom userid")
    duty = actions.add_parser("duty", help="put a member on or off duty")
    duty.add_argument("userid", help="the member's WeCom userid")
    duty.add_argument("state", choices=["on", "off"], help="on: hand them orders; off: no new ones")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `chatorder staff …`; 0 on success, 1 when the store refused."""
    return asyncio.run(_run(args, settings))


def _split(text: str) -> list[str]:
    return [part.strip() for part in SEPARATORS.split(text) if part.strip()]


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from flows.desk import hand_out_backlog, role_names
    from store import staff
    from store.db import make_engine, make_sessionmaker
    from store.errors import DomainError
    from store.models import utcnow

    engine = make_engine(settings.database_url)
    sessionmaker = make_sessionmaker(engine)
    now = utcnow()
    try:
        async with sessionmaker.begin() as session:
            if args.staff_action == "list":
                for member, open_orders in await staff.list_members(session, include_removed=args.all):
                    limit = member.max_open or settings.staff_max_open
                    state = "on duty" if member.on_duty else "off duty"
                    if not member.active:
                        state = "removed"
                    skills = ",".join(member.skills) or "all"
                    roles = f"{','.join(member.roles)} ({role_names(member.roles)})"
                    load = f"open {open_orders}/{limit}"
                    print(f"{member.userid}\t{member.name}\t{roles}\t{state}\t{load}\t{skills}")
                return 0
            if args.staff_action == "add":
                member = await staff.add_member(
                    session,
                    userid=args.userid,
                    name=args.name,
                    roles=_split(args.roles),
                    skills=_split(args.skills),
                    max_open=args.max_open,
                    on_duty=not args.off_duty,
                    actor="cli",
                    now=now,
                )
                print(f"{member.userid} ({member.name}): {', '.join(member.roles)}")
            elif args.staff_action == "remove":
                kept = await staff.remove_member(session, userid=args.userid, actor="cli", now=now)
                print(f"{args.userid} removed")
                if kept:
                    print(f"still theirs, to reassign with 分配 in work chat: {', '.join(kept)}")
            elif args.staff_action == "duty":
                await staff.set_duty(
                    session, userid=args.userid, on_duty=args.state == "on", actor="cli", now=now
                )
                print(f"{args.userid} is {args.state} duty")
        # Someone may have room now: orders waiting for an owner are handed out (the server sends the news).
        if handed := await hand_out_backlog(sessionmaker, settings, utcnow()):
            print(f"{handed} waiting order(s) handed out")
        return 0
    except DomainError as exc:
        print(explain(exc), file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
