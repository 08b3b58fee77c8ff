"""`chatorder results import FILE.csv|.xlsx`: delivery figures from a file, all or nothing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from settings import Settings

FORMATS = (".csv", ".xlsx")


def add_parser(sub: Any) -> None:
    summary = "record delivery figures (曝光, 点赞 …) per published piece from a file, all or nothing"
    results = sub.add_parser("results", help=summary, description=summary)
    results.add_argument("action", choices=["import"], help="import: append one reading per row")
    results.add_argument(
        "file", type=Path, help="a .csv (UTF-8) or .xlsx file (columns: store/results_import.py)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from store.results_import import parse_rows, read_table

    path: Path = args.file
    if path.suffix.lower() not in FORMATS:
        print(f"{path}: unsupported format; use a .csv or .xlsx file", file=sys.stderr)
        return 2
    try:
        table = read_table(path.read_bytes(), path.suffix.lower())
    except FileNotFoundError:
        print(f"{path}: no such file; check the path", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8 text; save the file as UTF-8 and try again", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read it ({exc})", file=sys.stderr)
        return 1
    rows, errors = parse_rows(table)
    if not rows and not errors:
        print(f"{path}: only a header, no readings; nothing was imported", file=sys.stderr)
        return 1
    done = None
    if rows:  # the database's checks too, so that one run lists every bad row
        found, done = asyncio.run(_apply(settings, rows, path.name, refuse=bool(errors)))
        errors = sorted([*errors, *found], key=lambda e: e.line)
    if errors or done is None:
        for error in errors:
            print(f"{path}:{error.line}: {error.message}", file=sys.stderr)
        print(f"{len(errors)} problem(s): nothing was imported; fix them and run it again", file=sys.stderr)
        return 1
    print(f"imported: {done.readings} reading(s) for {len(done.orders)} order(s)")
    for number in done.ready:
        print(f"  - {number}: every piece has its final figures; the customer was told")
    return 0


async def _apply(settings: Settings, rows: list[Any], name: str, *, refuse: bool) -> tuple[list[Any], Any]:
    """Record the rows in one transaction, rolled back when any fails (or `refuse`: others did)."""
    from flows.results import final_notice
    from store.db import make_engine, make_sessionmaker
    from store.models import utcnow
    from store.results_import import apply

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            done, errors = await apply(
                session, rows, by=f"import:{name}"[:80], now=utcnow(), notice=final_notice
            )
            if errors or refuse:
                raise _Refused(errors)
    except _Refused as refused:  # all or nothing: the transaction was rolled back
        return refused.errors, None
    finally:
        await engine.dispose()
    return [], done


class _Refused(Exception):
    def __init__(self, errors: list[Any]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors
