"""`chatorder doctor`: says what is wrong with this installation, and how to fix it."""

from __future__ import annotations

import shutil

from settings import Settings

OK, BAD, INFO = "✓", "✗", "·"


async def run_doctor(settings: Settings) -> int:
    database = await _database(settings)
    results = [
        *_settings(settings),
        database,
        await _redis(settings),
        _fonts(settings),
        await _wechat(settings, database_ok=database[0] == OK),
        await _ledger(settings)
        if database[0] == OK
        else (INFO, "ledger", "skipped until the database is fixed"),
        _chromium(),
    ]
    for mark, name, detail in results:
        print(f"{mark} {name}: {detail}")
    failed = sum(mark == BAD for mark, _, _ in results)
    print("all good" if not failed else f"{failed} problem(s) found")
    return 1 if failed else 0


def _settings(settings: Settings) -> list[tuple[str, str, str]]:
    problems = settings.problems()
    if not problems:
        return [(OK, "settings", "Official Account settings present")]
    return [(BAD, "settings", p) for p in problems]


async def _database(settings: Settings) -> tuple[str, str, str]:
    from store.db import make_engine
    from store.migrate import status

    engine = make_engine(settings.database_url)
    backend = settings.database_url.split(":", 1)[0]
    try:
        current, head = await status(engine)
    except Exception as exc:
        return BAD, "database", f"{backend}: cannot connect ({type(exc).__name__}: {exc})"
    finally:
        await engine.dispose()
    if current != head:
        return BAD, "database", f"{backend}: schema behind the code — run `chatorder db upgrade`"
    return OK, "database", f"{backend}: schema current ({', '.join(sorted(head))})"


async def _redis(settings: Settings) -> tuple[str, str, str]:
    if not settings.redis_url:
        return INFO, "redis", "not configured (single-process mode)"
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url, socket_timeout=3)
    try:
        await client.ping()
        return OK, "redis", "reachable"
    except Exception as exc:
        return BAD, "redis", f"unreachable ({type(exc).__name__}: {exc})"
    finally:
        await client.aclose()


def _fonts(settings: Settings) -> tuple[str, str, str]:
    from posters.fonts import INSTALL_HINT, find_cjk_font

    font = find_cjk_font(settings.font_path)
    if font is None:
        return BAD, "fonts", f"no CJK font found; posters would show boxes — {INSTALL_HINT}"
    return OK, "fonts", str(font)


async def _wechat(settings: Settings, *, database_ok: bool) -> tuple[str, str, str]:
    if not (settings.wechat_app_id and settings.wechat_app_secret.get_secret_value()):
        return INFO, "wechat", "credentials not set; skipped the token check"
    if not database_ok:
        # The token is cached in the database (or Redis): a token fetched around that cache would
        # make the server's own token stale, so the check waits for a working database.
        return INFO, "wechat", "skipped the token check until the database is fixed"
    from bot.tools import mp_client

    try:
        async with mp_client(settings) as mp:
            await mp.check_credentials()
    except Exception as exc:
        return BAD, "wechat", f"token request to {settings.wechat_api_base} failed: {exc}"
    return OK, "wechat", f"access token obtained from {settings.wechat_api_base}"


async def _ledger(settings: Settings) -> tuple[str, str, str]:
    """Every cached balance must equal the sum of its ledger entries (money never drifts)."""
    from store.db import make_engine, make_sessionmaker
    from store.payments import check_balances

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            wrong = await check_balances(session)
    finally:
        await engine.dispose()
    if wrong:
        shown = "; ".join(
            f"{openid}: cached {cached} fen, entries {summed} fen" for _, openid, cached, summed in wrong[:5]
        )
        return BAD, "ledger", f"{len(wrong)} balance(s) differ from their entries — {shown}"
    return OK, "ledger", "every balance equals the sum of its entries"


def _chromium() -> tuple[str, str, str]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return OK, "chromium", f"{path} (for the console's browser test)"
    return INFO, "chromium", "not installed; the browser test will skip (`apt-get install chromium`)"
