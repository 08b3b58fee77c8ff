"""`chatorder withdrawals …` and `chatorder commissions …`: the operator's side of creators' money.

Staff do the same from work chat; the command line is for operators and scripts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli_words import explain
from settings import Settings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "creators' withdrawal requests: list, approve, refuse"
    w = sub.add_parser("withdrawals", help=summary, description=summary)
    w.add_argument("action", choices=["list", "approve", "refuse"], help="what to do")
    w.add_argument("id", nargs="?", type=int, help="the request's number (see list)")
    w.add_argument("--reason", default="", help="why a request is refused (the creator reads it)")
    summary = "commissions held by a fraud rule: list, release, reject (staff: 佣金 in work chat)"
    c = sub.add_parser("commissions", help=summary, description=summary)
    c.add_argument("action", choices=["held", "release", "reject"], help="what to do")
    c.add_argument("id", nargs="?", type=int, help="the commission's number (see held)")


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    from store.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def withdrawals(settings: Settings, args: argparse.Namespace) -> int:
    from flows.creators import decide_withdrawal
    from flows.format import yuan
    from store import earnings
    from store.errors import DomainError
    from store.models import utcnow

    async with _store(settings) as sessionmaker:
        if args.action == "list":
            async with sessionmaker() as session:
                waiting = await earnings.pending_withdrawals(session)
            for w in waiting:
                net = yuan(w.amount_fen - w.fee_fen)
                print(f"#{w.id}  {w.created_at:%Y-%m-%d %H:%M}  {w.openid}  {yuan(w.amount_fen)} (net {net})")
            print(f"{len(waiting)} waiting for approval")
            return 0
        if args.id is None or (args.action == "refuse" and not args.reason.strip()):
            print("usage: chatorder withdrawals approve ID | refuse ID --reason '…'", file=sys.stderr)
            return 2
        try:
            w = await decide_withdrawal(
                sessionmaker,
                withdrawal_id=args.id,
                approve=args.action == "approve",
                actor="operator:cli",
                reason=args.reason.strip(),
                now=utcnow(),
            )
        except DomainError as exc:
            print(explain(exc), file=sys.stderr)
            return 1
        if w.status == "approved" and settings.wechatpay_mch_id:
            await _pay_out_now(settings, sessionmaker)
    print(f"withdrawal #{w.id}: {w.status}")
    return 0


async def _pay_out_now(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Transfer what was approved now, as the server does on an approval in work chat (the server's
    payout job would otherwise find it within its period); the same partner_trade_no pays once."""
    import aiohttp

    from bot.channels.pay import PayClient
    from flows.creators import pay_out
    from store.models import utcnow

    async with aiohttp.ClientSession() as http:
        paid = await pay_out(sessionmaker, PayClient(http, settings), settings, utcnow())
    print(f"{paid} payout(s) transferred" if paid else "the payout will be retried by the server")


async def commissions(settings: Settings, args: argparse.Namespace) -> int:
    from flows.format import yuan
    from store import earnings
    from store.errors import DomainError
    from store.models import Commission, utcnow

    async with _store(settings) as sessionmaker:
        if args.action == "held":
            async with sessionmaker() as session:
                held = list(await session.scalars(select(Commission).where(Commission.status == "review")))
            for c in held:
                print(f"#{c.id}  order {c.order_id}  {c.openid}  {yuan(c.amount_fen)}  {c.flag}: {c.note}")
            print(f"{len(held)} held for review")
            return 0
        if args.id is None:
            print("usage: chatorder commissions release|reject ID", file=sys.stderr)
            return 2
        try:
            async with sessionmaker.begin() as session:
                c = await earnings.decide_review(
                    session,
                    commission_id=args.id,
                    approve=args.action == "release",
                    actor="operator:cli",
                    now=utcnow(),
                )
        except DomainError as exc:
            print(explain(exc), file=sys.stderr)
            return 1
    print(f"commission #{c.id}: {c.status}")
    return 0
