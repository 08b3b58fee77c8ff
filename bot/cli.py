"""`chatorder` (also `python -m bot`): demo, serve, db upgrade, catalog import, menu push, doctor."""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from bot import creators_cli, flash_cli, logs, results_cli, staff_cli
from settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from store.catalog_import import ImportReport, ServiceSpec

CATALOG_FORMATS: dict[str, Literal["yaml", "csv"]] = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chatorder",
        description="Chat-first ordering on WeChat: customers order real services in an Official Account, "
        "creators earn commissions, staff work in WeCom work chat.",
        epilog="Settings come from the environment or .env (see README); `chatorder doctor` checks them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = _command(sub, "demo", "run everything locally with the sandbox console (no WeChat account)")
    demo.add_argument("--port", type=int, default=8080, help="port of the server and its console")
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument("--var", type=Path, default=Path("var"), help="folder for the demo database")
    _command(sub, "serve", "run the production server from settings (environment or .env)")
    db = _command(sub, "db", "the database schema (Alembic migrations)")
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply every migration not yet applied")
    catalog = _command(sub, "catalog", "load the service catalog from a file, all or nothing")
    catalog.add_argument("action", choices=["import"], help="import: upsert services and packages")
    catalog.add_argument(
        "file", type=Path, help="a .yaml/.yml or .csv file (format: store/catalog_import.py)"
    )
    menu = _command(sub, "menu", "the Official Account's custom menu")
    menu.add_argument(
        "action", choices=["push", "show"], help="push: create it through the API; show: print it"
    )
    doctor = _command(sub, "doctor", "check settings, database, Redis, fonts and credentials; say how to fix")
    doctor.add_argument(
        "--demo", action="store_true", help="check the demo installation (its settings and database) instead"
    )
    doctor.add_argument("--var", type=Path, default=Path("var"), help="the demo's folder (with --demo)")
    refund = _command(sub, "refund", "refund an order, fully or partly; the customer is told")
    refund.add_argument("number", help="order number, e.g. 20261122-0042")
    refund.add_argument("--amount", help="yuan, e.g. 100 or 99.50 (default: all that is left)")
    refund.add_argument(
        "--to",
        choices=["balance", "wechat"],
        default="balance",
        dest="destination",
        help="where the money goes: the customer's balance, or back through WeChat Pay",
    )
    refund.add_argument("--reason", required=True, help="why (the customer reads it)")
    staff_cli.add_parser(sub)
    results_cli.add_parser(sub)
    flash_cli.add_parser(sub)
    creators_cli.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except SettingsError as exc:
        print("configuration problems:", *exc.problems, sep="\n  - ", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _command(sub: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand with its one-line description, whose --help shows every option's default."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    return parser


def _version() -> str:
    try:
        return metadata.version("chatorder")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _demo(args.host, args.port, args.var)
    if args.command == "doctor":
        from bot.demo import demo_settings
        from bot.doctor import run_doctor

        settings = demo_settings(var_dir=args.var) if args.demo else load_settings()
        return asyncio.run(run_doctor(settings))
    settings = load_settings()
    if args.command == "serve":
        return _serve(settings)
    if args.command == "db":
        asyncio.run(_upgrade(settings))
        print("database schema is up to date")
        return 0
    if args.command == "catalog":
        return _catalog_import(settings, args.file)
    if args.command == "staff":
        return staff_cli.run(args, settings)
    if args.command == "results":
        return results_cli.run(args, settings)
    if args.command == "flash":
        return flash_cli.run(args, settings)
    if args.command == "withdrawals":
        return asyncio.run(creators_cli.withdrawals(settings, args))
    if args.command == "commissions":
        return asyncio.run(creators_cli.commissions(settings, args))
    if args.command == "refund":
        return asyncio.run(_refund(settings, args))
    if args.command == "menu":
        return asyncio.run(_menu(settings, push=args.action == "push"))
    return 2


def _demo(host: str, port: int, var: Path) -> int:
    from bot.demo import demo_settings, prepare_demo

    settings = demo_settings(port=port, var_dir=var, host=host)
    logs.configure(settings.log_format)
    sock = _bind(host, port)  # before anything is printed: a taken port is said plainly
    if sock is None:
        return 2
    if added := asyncio.run(prepare_demo(settings)):
        print(f"demo catalog: {added} services loaded", flush=True)
    print(f"chatorder demo — open the sandbox console: {settings.public_url}/sandbox/", flush=True)
    return _run_app(settings, sock)


def _serve(settings: Settings) -> int:
    logs.configure(settings.log_format)
    if problems := settings.problems():
        raise SettingsError(problems)
    current, head = asyncio.run(_schema_status(settings))
    if current != head:
        print("the database schema is behind the code: run `chatorder db upgrade` first", file=sys.stderr)
        return 2
    sock = _bind(settings.host, settings.port)
    return 2 if sock is None else _run_app(settings, sock)


def _bind(host: str, port: int) -> socket.socket | None:
    """A listening socket on host:port, or None after saying why (e.g. the port is taken)."""
    try:
        sock = socket.create_server((host, port), reuse_port=False)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                f"port {port} on {host} is already in use (another chatorder?); "
                f"stop that program or choose another port, e.g. --port {port + 1}",
                file=sys.stderr,
            )
        else:
            print(f"cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return sock


def _run_app(settings: Settings, sock: socket.socket) -> int:
    from bot.app import create_app, tune_gc

    tune_gc()
    web.run_app(create_app(settings), sock=sock, print=None, access_log=None)
    return 0


async def _upgrade(settings: Settings) -> None:
    from store.db import make_engine
    from store.migrate import upgrade

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _catalog_import(settings: Settings, path: Path) -> int:
    from store.catalog_import import parse_catalog

    fmt = CATALOG_FORMATS.get(path.suffix.lower())
    if fmt is None:
        print(f"{path}: unsupported format; use a .yaml/.yml or .csv file", file=sys.stderr)
        return 2
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        print(f"{path}: no such file; check the path", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8 text; save the file as UTF-8 and try again", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{path}: cannot read it ({exc.strerror or exc})", file=sys.stderr)
        return 1
    specs, errors = parse_catalog(text, fmt)
    if errors:
        # All or nothing: one bad row and nothing is written, so fixing the file and rerunning is safe.
        for error in errors:
            print(f"{path}:{error.line}: {error.message}", file=sys.stderr)
        print(f"{len(errors)} problem(s): nothing was imported; fix them and run it again", file=sys.stderr)
        return 1
    report = asyncio.run(_import_specs(settings, specs))
    counts = f"{report.created} new, {report.updated} updated service(s), {report.packages} package(s)"
    print(f"imported: {counts}")
    for note in report.notes:
        print(f"  - {note}")
    return 0


async def _import_specs(settings: Settings, specs: list[ServiceSpec]) -> ImportReport:
    from store.catalog_import import import_catalog
    from store.db import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            report = await import_catalog(session, specs)
    finally:
        await engine.dispose()
    if settings.redis_url:  # the flash-sale counters reload the new stock from the database
        from redis.asyncio import Redis

        from store.orders import StockGate

        redis = Redis.from_url(settings.redis_url)
        try:
            await StockGate(redis).forget_all()
        finally:
            await redis.aclose()
    return report


async def _schema_status(settings: Settings) -> tuple[set[str], set[str]]:
    from store.db import make_engine
    from store.migrate import status

    engine = make_engine(settings.database_url)
    try:
        return await status(engine)
    finally:
        await engine.dispose()


async def _menu(settings: Settings, *, push: bool) -> int:
    import json

    from handlers.menu import menu_json

    menu = menu_json()
    if not push:
        print(json.dumps(menu, ensure_ascii=False, indent=2))
        return 0
    from bot.tools import mp_client

    async with mp_client(settings) as mp:
        await mp.create_menu(menu)
    print("menu pushed:", ", ".join(b["name"] for b in menu["button"]))
    return 0


async def _refund(settings: Settings, args: argparse.Namespace) -> int:
    import aiohttp

    from bot.channels.pay import PayClient, PayError
    from bot.cli_words import explain
    from flows.format import yuan
    from flows.payments import refund_order
    from store.db import make_engine, make_sessionmaker
    from store.errors import DomainError

    amount = _fen(args.amount) if args.amount else None
    if args.amount and amount is None:
        print(f"--amount {args.amount!r}: write yuan with at most two decimals, e.g. 99.50", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        async with aiohttp.ClientSession() as http:
            pay = PayClient(http, settings) if settings.wechatpay_mch_id else None
            made = await refund_order(
                make_sessionmaker(engine),
                pay,
                number=args.number,
                amount_fen=amount,
                destination=args.destination,
                actor="operator:cli",
                reason=args.reason,
                notify_url=f"{settings.public_url}/pay/wechat/refund-notify",
            )
    except DomainError as exc:
        print(explain(exc), file=sys.stderr)
        return 1
    except PayError as exc:
        print(f"WeChat Pay refused the refund: {exc.code} {exc.message}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"refund {made.out_refund_no}: {yuan(made.amount_fen)} to {made.destination}, {made.status}")
    return 0


def _fen(yuan: str) -> int | None:
    """'99.5' → 9950, exactly; None for anything else."""
    whole, _, cents = yuan.strip().partition(".")
    if not whole.isdigit() or len(cents) > 2 or (cents and not cents.isdigit()):
        return None
    return int(whole) * 100 + int(cents.ljust(2, "0") or 0)
