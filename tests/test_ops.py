"""Operations: settings validation, /healthz, /metrics, request ids and logs, doctor, the CLI."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.cli import main
from bot.logs import JsonFormatter, request_id
from settings import SettingsError, load_settings
from tests.wechat import WeChat


def test_settings_name_every_problem_without_leaking_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATORDER_PORT", "not-a-port")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s3cret-value")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert any(p.startswith("CHATORDER_PORT") for p in err.value.problems)
    assert "s3cret-value" not in str(err.value)


def test_settings_problems_say_what_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN", "WECHAT_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(wechat_aes_key="too-short", database_url="mysql://x")
    problems = settings.problems()
    for expected in (
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_TOKEN",
        "WECHAT_AES_KEY",
        "CHATORDER_DATABASE_URL",
    ):
        assert any(p.startswith(expected) for p in problems), expected
    assert "s3cret" not in repr(load_settings(wechat_app_secret="s3cret"))


def test_api_bases_are_normalised() -> None:
    s = load_settings(wechat_api_base="http://127.0.0.1:9/cgi-bin", public_url="http://x/")
    assert s.wechat_api_base.endswith("/cgi-bin/") and s.public_url == "http://x"


async def test_healthz_reports_database(bot: TestClient) -> None:
    resp = await bot.get("/healthz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"


async def test_metrics_count_messages_replies_and_rejections(bot: TestClient) -> None:
    chat = WeChat(bot)
    await chat.say("o_metrics", "帮助")
    await bot.post("/wechat/mp", data=b"<xml/>")  # unsigned
    text = await (await bot.get("/metrics")).text()
    assert 'chatorder_messages_in_total{kind="text"} 1.0' in text
    assert 'chatorder_replies_total{mode="passive"} 1.0' in text
    assert 'chatorder_requests_rejected_total{reason="403"} 1.0' in text
    assert "chatorder_outbox_depth 0.0" in text
    assert "chatorder_webhook_seconds_bucket" in text


async def test_every_response_carries_a_request_id(bot: TestClient) -> None:
    resp = await bot.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert resp.headers["X-Request-Id"] == "abc123"
    assert len((await bot.get("/healthz")).headers["X-Request-Id"]) == 16


def test_json_logs_carry_request_id_and_fields() -> None:
    token = request_id.set("rid-1")
    try:
        record = logging.LogRecord("t", logging.WARNING, __file__, 1, "refused %s", ("x",), None)
        record.request_id = request_id.get()
        record.status = 403
        doc = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert doc["msg"] == "refused x" and doc["request_id"] == "rid-1" and doc["status"] == 403


def test_menu_show_prints_the_menu(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["menu", "show"]) == 0
    menu = json.loads(capsys.readouterr().out)
    assert 1 <= len(menu["button"]) <= 3


def test_serve_refuses_incomplete_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("WECHAT_APP_ID", "WECHAT_APP_SECRET", "WECHAT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve"]) == 2
    assert "WECHAT_APP_ID" in capsys.readouterr().err


def test_db_upgrade_and_doctor(tmp_path: Path) -> None:
    env = {"CHATORDER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=60
    )
    before = run("doctor")
    assert before.returncode == 1 and "chatorder db upgrade" in before.stdout
    assert run("db", "upgrade").returncode == 0
    after = run("doctor")
    assert "✓ database" in after.stdout and "WECHAT_APP_ID" in after.stdout


async def test_doctor_checks_credentials_against_the_api(
    tmp_path: Path, mp_sim: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Doctor's WeChat check asks the (simulated) API for a token, and names a wrong secret."""
    from bot.doctor import run_doctor
    from store.db import make_engine
    from store.migrate import upgrade
    from tests import wechat

    base = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'doc.db'}",
        "wechat_app_id": wechat.APP_ID,
        "wechat_token": wechat.TOKEN,
        "wechat_api_base": mp_sim[1],
    }
    fresh = {**base, "database_url": f"sqlite+aiosqlite:///{tmp_path / 'doc2.db'}"}  # no cached token
    for url in (base["database_url"], fresh["database_url"]):
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
    await run_doctor(load_settings(**base, wechat_app_secret="test-secret"))
    assert "✓ wechat" in capsys.readouterr().out
    await run_doctor(load_settings(**fresh, wechat_app_secret="wrong"))
    assert "✗ wechat" in capsys.readouterr().out


async def test_menu_push_creates_the_menu_through_the_api(
    tmp_path: Path, mp_sim: tuple[object, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import _menu
    from handlers.menu import menu_json
    from store.db import make_engine
    from store.migrate import upgrade
    from tests import wechat

    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'menu.db'}",
        wechat_app_id=wechat.APP_ID,
        wechat_app_secret="test-secret",
        wechat_api_base=mp_sim[1],
    )
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    await engine.dispose()
    assert await _menu(settings, push=True) == 0
    assert mp_sim[0].menu == menu_json()  # type: ignore[attr-defined]
    assert "menu pushed" in capsys.readouterr().out


async def test_doctor_finds_a_balance_that_drifted_from_its_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import update

    from bot.doctor import run_doctor
    from store.db import make_engine, make_sessionmaker
    from store.migrate import upgrade
    from store.models import Balance
    from store.payments import credit

    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    async with make_sessionmaker(engine).begin() as session:
        await credit(session, account="gh", openid="o_l", amount_fen=500, kind="topup", key="k1")
    await run_doctor(settings)
    assert "✓ ledger" in capsys.readouterr().out
    async with make_sessionmaker(engine).begin() as session:
        await session.execute(update(Balance).values(balance_fen=501))
    await engine.dispose()
    assert await run_doctor(settings) == 1
    assert "✗ ledger: 1 total(s) differ" in capsys.readouterr().out


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key, like the merchant platform's apiclient_cert/key.pem."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1900000109")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "apiclient_cert.pem", tmp_path / "apiclient_key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_doctor_asks_for_the_merchant_certificate_that_refunds_and_payouts_need(tmp_path: Path) -> None:
    from bot.channels.pay import merchant_tls
    from bot.doctor import _merchant_certificate

    cert_file, key_file = _self_signed(tmp_path)
    real = load_settings(wechatpay_mch_id="1900000109")
    assert _merchant_certificate(real)[0] == "✗" and "WECHATPAY_CERT_FILE" in _merchant_certificate(real)[2]
    simulated = load_settings(wechatpay_mch_id="1900000109", wechatpay_api_base="http://127.0.0.1:9/")
    assert _merchant_certificate(simulated)[0] == "·"
    good = load_settings(
        wechatpay_mch_id="1900000109", wechatpay_cert_file=str(cert_file), wechatpay_key_file=str(key_file)
    )
    assert _merchant_certificate(good)[0] == "✓" and merchant_tls(good) is not None
    wrong_key = good.model_copy(update={"wechatpay_key_file": str(cert_file)})
    assert _merchant_certificate(wrong_key)[0] == "✗"
    missing = good.model_copy(update={"wechatpay_cert_file": str(tmp_path / "nope.pem")})
    assert _merchant_certificate(missing)[0] == "✗"
