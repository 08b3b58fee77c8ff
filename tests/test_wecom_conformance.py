"""Conformance with Tencent's official WeCom samples: URL verification, message crypto, callback XML."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import webhooks.crypto
from settings import Settings
from tests import wecom
from webhooks.crypto import Forbidden
from webhooks.guard import parse_xml
from webhooks.work import WorkCrypto, to_event

VECTORS = ("official_sample_ww1436e0e65a779aee.json", "wechatpy_work_vectors.json")


@pytest.fixture
def sample_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """The official samples were signed years ago: set our clock to a sample's moment before using it
    (otherwise the replay window refuses them, as it should)."""

    def at(timestamp: str) -> None:
        monkeypatch.setattr(webhooks.crypto, "now", lambda: float(timestamp))

    return at


def _vector(samples: Path, name: str) -> dict[str, Any]:
    return json.loads((samples / "wecom/crypto" / name).read_text())


def _crypto(v: dict[str, Any], corp_id: str | None = None) -> WorkCrypto:
    return WorkCrypto(v["token"], v["encoding_aes_key"], corp_id or v["corp_id"])


def _query(part: dict[str, str]) -> dict[str, str]:
    return {k: part[k] for k in ("msg_signature", "timestamp", "nonce")}


@pytest.mark.parametrize("name", VECTORS)
def test_url_verification_decrypts_echostr(
    samples: Path, name: str, sample_clock: Callable[[str], None]
) -> None:
    v = _vector(samples, name)
    check = v["url_verification"]
    sample_clock(check["timestamp"])
    assert _crypto(v).echo(check) == check["expected_response_body"]


def test_url_verification_with_a_tampered_nonce_is_refused(samples: Path) -> None:
    v = _vector(samples, "wechatpy_work_vectors.json")
    bad = v["url_verification_bad_nonce"]
    assert bad["valid"] is False
    with pytest.raises(Forbidden):
        _crypto(v).echo(bad)


@pytest.mark.parametrize("name", VECTORS)
def test_message_decrypts_to_the_stated_plaintext(
    samples: Path, name: str, sample_clock: Callable[[str], None]
) -> None:
    v = _vector(samples, name)
    m = v["message"]
    sample_clock(m["timestamp"])
    assert _crypto(v).open(_query(m), parse_xml(m["post_body"])) == m["expected_plaintext"]


def test_json_flavour_uses_the_same_crypto(samples: Path, sample_clock: Callable[[str], None]) -> None:
    v = _vector(samples, "official_json_sample_ww1436e0e65a779aee.json")
    m = v["message"]
    sample_clock(m["timestamp"])
    assert _crypto(v).open(_query(m), {"Encrypt": m["encrypt"]}) == m["expected_plaintext"]
    sample_clock(v["url_verification"]["timestamp"])
    assert _crypto(v).echo(v["url_verification"]) == "1288432023552776189"


@pytest.mark.parametrize("name", VECTORS)
def test_tampered_signature_or_ciphertext_is_refused(samples: Path, name: str) -> None:
    v = _vector(samples, name)
    m = v["message"]
    crypto = _crypto(v)
    forged = _query(m) | {"msg_signature": "0" * 40}
    tampered = m["post_body"].replace(m["encrypt"][:8], "AAAAAAAA")
    for query, body in ((forged, m["post_body"]), (_query(m), tampered), ({}, m["post_body"])):
        with pytest.raises(Forbidden):
            crypto.open(query, parse_xml(body))


def test_message_for_another_corp_is_refused(samples: Path) -> None:
    v = _vector(samples, "official_sample_ww1436e0e65a779aee.json")
    m = v["message"]
    with pytest.raises(Forbidden):
        _crypto(v, corp_id="ww_some_other_corp").open(_query(m), parse_xml(m["post_body"]))


def test_official_plaintexts_become_work_events(samples: Path) -> None:
    official = _vector(samples, "official_sample_ww1436e0e65a779aee.json")["message"]
    event = to_event(official["expected_plaintext"])
    assert (event.corp_id, event.userid, event.agent_id) == ("ww1436e0e65a779aee", "ChenJiaShun", "1000002")
    assert (event.kind, event.name, event.text, event.key) == ("text", "text", "你好", "msg:1456453720")

    text = to_event((samples / "wecom/messages/text_to_app.xml").read_text())
    assert (text.userid, text.text, text.key, text.agent_id) == (
        "fromUser",
        "this is a test",
        "msg:1234567890123456",
        "1",
    )
    assert int(text.created_at.timestamp()) == 1348831860


def test_template_card_event_sample_is_read(samples: Path) -> None:
    event = to_event((samples / "wecom/events/template_card_event.xml").read_text())
    assert (event.kind, event.name, event.userid) == ("event", "template_card_event", "FromUser")
    assert (event.event_key, event.task_id, event.response_code) == ("key111", "taskid111", "ResponseCode")
    assert event.key == "ev:123456789:template_card_event:key111:taskid111"
    assert event.raw is not None and event.raw["CardType"] == "text_notice"


async def test_official_callbacks_over_http(
    samples: Path, make_settings: Callable[..., Settings], sample_clock: Callable[[str], None]
) -> None:
    """The official GET and POST, verbatim, against the real app: echo, decrypt, handle, refuse forgeries."""
    v = _vector(samples, "official_sample_ww1436e0e65a779aee.json")
    settings = wecom.settings(
        make_settings,
        "http://127.0.0.1:9/cgi-bin/",
        wecom_corp_id=v["corp_id"],
        wecom_token=v["token"],
        wecom_aes_key=v["encoding_aes_key"],
    )
    probe = wecom.Probe()
    client = await wecom.start(settings, probe)
    try:
        check = v["url_verification"]
        sample_clock(check["timestamp"])
        ok = await client.get("/wechat/work", params=_query(check) | {"echostr": check["echostr"]})
        assert (ok.status, await ok.text()) == (200, check["expected_response_body"])
        forged = _query(check) | {"echostr": check["echostr"], "msg_signature": "f" * 40}
        refused = await client.get("/wechat/work", params=forged)
        assert refused.status == 403 and check["expected_response_body"] not in await refused.text()

        m = v["message"]
        sample_clock(m["timestamp"])
        resp = await client.post("/wechat/work", params=_query(m), data=m["post_body"].encode())
        assert (resp.status, await resp.text()) == (200, "")
        assert [(e.userid, e.text) for e in probe.events] == [("ChenJiaShun", "你好")]
        again = await client.post("/wechat/work", params=_query(m), data=m["post_body"].encode())
        assert again.status == 200 and len(probe.events) == 1  # WeCom's retry: no second effect
    finally:
        await client.close()
