"""Conformance with Tencent's official samples: signatures, URL verification, message crypto."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

import webhooks.crypto
from settings import Settings
from webhooks.crypto import Forbidden, MpCrypto
from webhooks.guard import parse_xml


@pytest.fixture
def sample_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """The official samples were signed years ago: set our clock to a sample's moment before using it
    (otherwise the replay window refuses them, as it should)."""

    def at(timestamp: str) -> None:
        monkeypatch.setattr(webhooks.crypto, "now", lambda: float(timestamp))

    return at


def _official(samples: Path) -> dict[str, str]:
    return json.loads((samples / "mp/crypto/official_sample_spamtest.json").read_text())


def test_plain_signature_vectors(samples: Path, sample_clock: Callable[[str], None]) -> None:
    vectors = json.loads((samples / "mp/signature/plain_mode_signature.json").read_text())["vectors"]
    for v in vectors:
        crypto = MpCrypto(v["token"], "", "wx")
        sample_clock(v["timestamp"] if str(v["timestamp"]).isdigit() else "0")
        query = {"timestamp": v["timestamp"], "nonce": v["nonce"], "signature": v["signature"]}
        try:
            crypto.check(query)
            ok = True
        except Forbidden:
            ok = False
        assert ok is v["valid"], v["source"]


def _query(o: dict[str, str]) -> dict[str, str]:
    return {"timestamp": o["timestamp"], "nonce": o["nonce"], "msg_signature": o["msg_signature"]}


def test_official_message_decrypts_in_compatible_and_safe_mode(samples: Path) -> None:
    o = _official(samples)
    crypto = MpCrypto(o["token"], o["encoding_aes_key"], o["appid"])
    for body in (o["post_body"], o["post_body_safe_mode"]):
        assert crypto.open(_query(o), parse_xml(body)) == o["expected_plaintext"]


def test_official_message_with_tampered_signature_or_payload_is_refused(samples: Path) -> None:
    o = _official(samples)
    crypto = MpCrypto(o["token"], o["encoding_aes_key"], o["appid"])
    bad_sig = _query(o) | {"msg_signature": "0" * 40}
    tampered = o["post_body_safe_mode"].replace(o["encrypt"][:8], "AAAAAAAA")
    for query, body in ((bad_sig, o["post_body_safe_mode"]), (_query(o), tampered)):
        with pytest.raises(Forbidden):
            crypto.open(query, parse_xml(body))


def test_message_for_another_app_is_refused(samples: Path) -> None:
    o = _official(samples)
    crypto = MpCrypto(o["token"], o["encoding_aes_key"], "wx_some_other_app")
    with pytest.raises(Forbidden):
        crypto.open(_query(o), parse_xml(o["post_body_safe_mode"]))


def test_our_encrypted_reply_decrypts_with_the_official_key(samples: Path) -> None:
    o = _official(samples)
    ours = MpCrypto(o["token"], o["encoding_aes_key"], o["appid"])
    reply = (
        "<xml><ToUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></ToUserName>"
        "<Content><![CDATA[你好]]></Content></xml>"
    )
    sealed = ours.seal(reply, "1320562132", "1409735669")
    env = xmltodict.parse(sealed)["xml"]
    official = WeChatCrypto(o["token"], o["encoding_aes_key"], o["appid"])
    assert official.decrypt_message(sealed, env["MsgSignature"], env["TimeStamp"], env["Nonce"]) == reply


async def test_url_verification_echoes_echostr(
    samples: Path, make_settings: Callable[..., Settings], sample_clock: Callable[[str], None]
) -> None:
    from tests.conftest import start_bot

    o = _official(samples)
    v = json.loads((samples / "mp/signature/plain_mode_signature.json").read_text())["vectors"][2]
    sample_clock(v["timestamp"])
    client = await start_bot(
        make_settings(wechat_token=o["token"], wechat_app_id=o["appid"], wechat_aes_key=o["encoding_aes_key"])
    )
    try:
        params = {
            "signature": v["signature"],
            "timestamp": v["timestamp"],
            "nonce": v["nonce"],
            "echostr": v["echostr"],
        }
        ok = await client.get("/wechat/mp", params=params)
        assert (ok.status, await ok.text()) == (200, v["echostr"])
        forged = await client.get("/wechat/mp", params=params | {"signature": "f" * 40})
        assert forged.status == 403 and v["echostr"] not in await forged.text()
    finally:
        await client.close()


async def test_official_encrypted_message_is_answered_over_http(
    samples: Path, make_settings, sample_clock
) -> None:  # type: ignore[no-untyped-def]
    """The official compatible-mode POST, verbatim, gets an encrypted reply the official key opens."""
    from tests.conftest import start_bot
    from webhooks.crypto import sign

    o = _official(samples)
    sample_clock(o["timestamp"])
    client = await start_bot(
        make_settings(wechat_token=o["token"], wechat_app_id=o["appid"], wechat_aes_key=o["encoding_aes_key"])
    )
    try:
        query = _query(o) | {"encrypt_type": "aes", "signature": sign(o["token"], o["timestamp"], o["nonce"])}
        resp = await client.post("/wechat/mp", params=query, data=o["post_body"].encode())
        body = await resp.text()
        assert resp.status == 200
        env = xmltodict.parse(body)["xml"]
        official = WeChatCrypto(o["token"], o["encoding_aes_key"], o["appid"])
        reply = xmltodict.parse(
            official.decrypt_message(body, env["MsgSignature"], env["TimeStamp"], env["Nonce"])
        )
        assert reply["xml"]["ToUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        assert reply["xml"]["MsgType"] == "text"
    finally:
        await client.close()
