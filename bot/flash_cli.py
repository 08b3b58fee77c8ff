"""`chatorder flash create FILE.yaml | list | stop CODE | report CODE | qr CODE [--channel NAME]`:
flash sales for operators."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from settings import Settings


def add_parser(sub: Any) -> None:
    """Add the `flash` command to the CLI's subparsers."""
    flash = sub.add_parser("flash", help="flash sales (秒杀): create from YAML, list, stop, report")
    actions = flash.add_subparsers(dest="flash_action", required=True)
    create = actions.add_parser("create", help="create a sale from a YAML file (see README, 秒杀)")
    create.add_argument("file", type=Path)
    actions.add_parser("list", help="every sale, its state and stock left")
    stop = actions.add_parser("stop", help="stop a sale: nothing more can be taken")
    stop.add_argument("code")
    report = actions.add_parser("report", help="a sale's figures")
    report.add_argument("code")
    qr = actions.add_parser("qr", help="a permanent QR code opening the sale (scene flash_CODE[@CHANNEL])")
    qr.add_argument("code")
    qr.add_argument(
        "--channel", default="", help="1–20 letters, digits, CJK, - or _: told apart in the report"
    )
    qr.add_argument("--out", type=Path, help="also write the QR code as a PNG here")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run `chatorder flash …`: 0 done, 1 refused (said on stderr)."""
    if args.flash_action == "create":
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{args.file}: 无法读取：{exc}", file=sys.stderr)
            return 1
        return asyncio.run(_create(settings, args.file, text))
    if args.flash_action == "qr":
        return asyncio.run(_qr(settings, args))
    return asyncio.run(_other(settings, args))


async def _qr(settings: Settings, args: argparse.Namespace) -> int:
    """Ask WeChat for the sale's permanent QR code (qrcode/create, QR_LIMIT_STR_SCENE), as invite
    posters do; print the scene and the URL the QR encodes, and write the PNG if asked."""
    import aiohttp

    from bot.channels.mp import WeChatApiError
    from bot.tools import mp_client
    from flows.flash import CHANNEL
    from posters.qr import qr_png
    from store import flash
    from store.db import make_engine, make_sessionmaker

    if args.channel and not CHANNEL.fullmatch(args.channel):
        print(f"--channel {args.channel!r}: 1–20 letters, digits, CJK, - or _", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            view = await flash.sale_by_code(session, args.code)
    finally:
        await engine.dispose()
    if view is None:
        print(f"no flash sale {args.code}", file=sys.stderr)
        return 1
    scene = f"flash_{view.sale.code}" + (f"@{args.channel}" if args.channel else "")
    try:
        async with mp_client(settings) as mp:
            url = str((await mp.create_qrcode(scene))["url"])
    except (WeChatApiError, aiohttp.ClientError, TimeoutError) as exc:  # said plainly, no traceback
        print(f"qrcode/create: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_bytes(await asyncio.to_thread(qr_png, url))
    print(f"scene {scene}\nqr {url}" + (f"\npng {args.out}" if args.out else ""))
    return 0


async def _create(settings: Settings, path: Path, text: str) -> int:
    from store import flash
    from store.db import make_engine, make_sessionmaker
    from store.models import utcnow

    spec, errors = flash.parse_sale(text)
    if not errors:
        engine = make_engine(settings.database_url)
        try:
            async with make_sessionmaker(engine).begin() as session:
                # On any error create_sale adds nothing: nothing is half-created.
                _, errors = await flash.create_sale(session, spec, now=utcnow())
        finally:
            await engine.dispose()
    if errors:
        for error in sorted(errors, key=lambda e: e.line):
            print(f"{path}:{error.line}: {error.message}", file=sys.stderr)
        return 1
    print(f"flash sale {spec.code} created: {spec.stock} units, limit {spec.per_customer} per customer")
    return 0


async def _other(settings: Settings, args: argparse.Namespace) -> int:
    from flows import flash as flow
    from store import flash
    from store.db import make_engine, make_sessionmaker
    from store.errors import DomainError
    from store.models import utcnow

    engine = make_engine(settings.database_url)
    now = utcnow()
    try:
        async with make_sessionmaker(engine).begin() as session:
            if args.flash_action == "list":
                print(await flow.staff_list(session, now))
            elif args.flash_action == "stop":
                sale = await flash.stop_sale(session, args.code, now)
                print(f"flash sale {sale.code} stopped")
            else:
                view = await flash.sale_by_code(session, args.code)
                if view is None:
                    print(f"no flash sale {args.code}", file=sys.stderr)
                    return 1
                print(await flow.staff_view(session, view, now))
    except DomainError as exc:
        print(f"{args.code}: {exc.code}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0
