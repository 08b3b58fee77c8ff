"""`chatorder doctor`: says what is wrong with this installation, and how to fix it."""

from __future__ import annotations

import os
import shutil
from contextlib import AbstractAsyncContextManager
from typing import Any

from settings import Settings

OK, BAD, INFO = "✓", "✗", "·"


async def run_doctor(settings: Settings) -> int:
    database = await _database(settings)
    results = [
        *_settings(settings),
        database,
        await _redis(settings),
        _fonts(settings),
        _poster_template(settings),
        await _wechat(settings, database_ok=database[0] == OK),
        await _wecom(settings, database_ok=database[0] == OK),
        _merchant_certificate(settings),
        await _ledger(settings)
        if database[0] == OK
        else (INFO, "ledger", "skipped until the database is fixed"),
        _chromium(),
    ]
    for mark, name, detail in results:
        print(f"{mark} {name}: {detail}")
    failed = sum(mark == BAD for mark, _, _ in results)
    print("all good" if not failed else f"{failed} problem(s) found")
    if settings.problems() and not settings.sandbox:
        print(DEMO_NOTE)
    return 1 if failed else 0


# After `chatorder demo`, the missing WeChat settings are expected: say so instead of leaving three ✗.
DEMO_NOTE = (
    "note: the WECHAT_* settings are needed only to serve a real Official Account (`chatorder serve`);\n"
    "      the demo needs none of them — `chatorder doctor --demo` checks the demo in this folder."
)


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
        fix = "run `chatorder demo` here first" if settings.sandbox else "run `chatorder db upgrade`"
        return BAD, "database", f"{backend}: schema behind the code — {fix}"
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
    from bot.tools import mp_client

    return await _token_check("wechat", mp_client(settings), settings.wechat_api_base, database_ok)


async def _token_check(
    name: str, client: AbstractAsyncContextManager[Any], base: str, database_ok: bool
) -> tuple[str, str, str]:
    if "/sandbox/" in base:
        return INFO, name, "the demo's simulator stands in for WeChat (no credentials needed)"
    if not database_ok:
        # The token is cached in the database (or Redis): a token fetched around that cache would
        # make the server's own token stale, so the check waits for a working database.
        return INFO, name, "skipped the token check until the database is fixed"
    try:
        async with client as api:
            await api.check_credentials()
    except Exception as exc:
        return BAD, name, f"token request to {base} failed: {exc}"
    return OK, name, f"access token obtained from {base}"


def _poster_template(settings: Settings) -> tuple[str, str, str]:
    from posters.render import load_template

    try:
        load_template(settings.poster_template)
    except Exception as exc:
        return BAD, "poster", f"CHATORDER_POSTER_TEMPLATE={settings.poster_template}: {exc}"
    return OK, "poster", f"template {settings.poster_template}"


def _merchant_certificate(settings: Settings) -> tuple[str, str, str]:
    """Refunds through WeChat and creator payouts are refused by WeChat Pay without the certificate."""
    if not settings.wechatpay_mch_id:
        return INFO, "wechat pay", "WECHATPAY_MCH_ID not set: WeChat Pay is off"
    if not settings.wechatpay_cert_file:
        where = "商户平台 → 账户中心 → API安全 → API证书"
        if settings.wechatpay_api_base.startswith("https://api.mch.weixin.qq.com"):
            need = "refunds and payouts need them"
            return BAD, "wechat pay", f"set WECHATPAY_CERT_FILE and WECHATPAY_KEY_FILE ({where}): {need}"
        return INFO, "wechat pay", f"no merchant certificate (fine for {settings.wechatpay_api_base})"
    from bot.channels.pay import merchant_tls

    try:
        merchant_tls(settings)
    except (OSError, ValueError) as exc:
        return BAD, "wechat pay", f"merchant certificate {settings.wechatpay_cert_file} unusable: {exc}"
    return OK, "wechat pay", f"merchant certificate {settings.wechatpay_cert_file} loaded"


async def _wecom(settings: Settings, *, database_ok: bool) -> tuple[str, str, str]:
    """Staff work chat: the callback needs token, AES key and CorpID; alerts need the app secret."""
    missing = [
        name
        for name, value in (
            ("WECOM_CORP_ID", settings.wecom_corp_id),
            ("WECOM_AGENT_ID", settings.wecom_agent_id),
            ("WECOM_SECRET", settings.wecom_secret.get_secret_value()),
            ("WECOM_TOKEN", settings.wecom_token.get_secret_value()),
            ("WECOM_AES_KEY", settings.wecom_aes_key.get_secret_value()),
        )
        if not value
    ]
    if missing:
        return INFO, "wecom", f"{', '.join(missing)} not set: staff work chat is off (企业微信 → 应用管理)"
    from bot.tools import wecom_client

    return await _token_check("wecom", wecom_client(settings), settings.wecom_api_base, database_ok)


async def _ledger(settings: Settings) -> tuple[str, str, str]:
    """Every cached balance and creator's earnings must equal the sums of their entries."""
    from store.db import make_engine, make_sessionmaker
    from store.earnings import check_earnings
    from store.payments import check_balances

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            wrong = await check_balances(session)
            drifts = await check_earnings(session)
    finally:
        await engine.dispose()
    if wrong or drifts:
        shown = "; ".join(
            [
                f"{openid}: cached {cached} fen, entries {summed} fen"
                for _, openid, cached, summed in wrong[:5]
            ]
            + [f"{d.openid} {d.bucket}: cached {d.cached} fen, entries {d.summed} fen" for d in drifts[:5]]
        )
        return BAD, "ledger", f"{len(wrong) + len(drifts)} total(s) differ from their entries — {shown}"
    return OK, "ledger", "every balance and every creator's earnings equal the sums of their entries"


# Debian ships `chromium`, Ubuntu `chromium-browser` (a snap under /snap/bin), others Google Chrome.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "/snap/bin/chromium")


def chromium_path() -> str | None:
    """The Chromium (or Chrome) to drive in the console's browser test: CHATORDER_CHROMIUM, else the PATH."""
    wanted = os.environ.get("CHATORDER_CHROMIUM")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _chromium() -> tuple[str, str, str]:
    path = chromium_path()
    if path:
        return OK, "chromium", f"{path} (for the console's browser test)"
    return INFO, "chromium", "not installed; the browser test will skip (`apt-get install chromium`)"
