"""Hostile but correctly signed requests to the four callback endpoints: never a 5xx, nothing changes.

Each class of input that used to crash a handler (a repeated element, a missing or absurd CreateTime,
repeated or nested pay fields), DTDs in any encoding, replayed signatures and plaintext in safe mode
gets its 4xx; then hypothesis sends generated mutations of valid requests (bench/hostile.py, which the
10,000-request fuzzer in bench/fuzz.py also uses).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bench import hostile
from bench.hostile import Doc, Keys, Request
from bot import keys as app_keys
from settings import Settings
from store.models import Base
from tests import wechat, wecom
from tests.conftest import start_bot

KEYS = Keys(
    mp_token=wechat.TOKEN,
    mp_aes_key=wechat.AES_KEY,
    app_id=wechat.APP_ID,
    account=wechat.ACCOUNT,
    work_token=wecom.TOKEN,
    work_aes_key=wecom.AES_KEY,
    corp_id=wecom.CORP_ID,
    agent_id=wecom.AGENT_ID,
)
FAIL = "<return_code><![CDATA[FAIL]]></return_code>"


@pytest.fixture
async def server(make_settings: Callable[..., Settings]) -> AsyncIterator[TestClient]:
    """The real app with the Official Account (safe mode), WeCom and WeChat Pay configured."""
    settings = wecom.settings(
        make_settings,
        "http://127.0.0.1:9/cgi-bin/",
        wechatpay_mch_id=KEYS.mch_id,
        wechatpay_api_key=KEYS.pay_key,
    )
    client = await start_bot(settings)
    yield client
    await client.close()


# The outbox dispatcher keeps working on what earlier (accepted) requests wrote: its bookkeeping of a
# delivery in progress, and the access-token cache and its refresh lock (`kv`) that sending uses, are
# not changes the request under test made.
DELIVERY = {"status", "attempts", "next_attempt_at", "claimed_by", "claimed_until", "last_error", "sent_at"}
BACKGROUND = {"kv"}


async def db_state(client: TestClient) -> dict[str, list[str]]:
    """Every row of every table: what "nothing changed" is measured against."""
    out: dict[str, list[str]] = {}
    async with client.app[app_keys.SESSIONMAKER]() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in BACKGROUND:
                continue
            columns = [c for c in table.columns if table.name != "outbox" or c.name not in DELIVERY]
            rows = (await session.execute(select(*columns))).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


async def send(client: TestClient, req: Request) -> tuple[int, str]:
    resp = await client.post(req.path, data=req.body)
    return resp.status, await resp.text()


def replaced(doc: Doc, name: str, value: Any) -> Doc:
    return [(k, value if k == name else v) for k, v in doc if value is not None or k != name]


BASE_MP = hostile.mp_text(KEYS, "o_hostile", "帮助", 990_001)
BASE_WORK = hostile.work_text(KEYS, "wangfang", "帮助", 990_002)
MP_CRASHERS = {
    "repeated FromUserName": [*BASE_MP, ("FromUserName", "o_other")],
    "FromUserName as a list of two": replaced(BASE_MP, "FromUserName", ["o_a", "o_b"]),
    "missing CreateTime": replaced(BASE_MP, "CreateTime", None),
    "absurd CreateTime": replaced(BASE_MP, "CreateTime", "99999999999999999999"),
    "negative CreateTime": replaced(BASE_MP, "CreateTime", "-5"),
    "nested Content": replaced(BASE_MP, "Content", {"a": "x"}),
    "repeated MsgId": [*BASE_MP, ("MsgId", "1")],
    "missing MsgId": replaced(BASE_MP, "MsgId", None),
    "long ToUserName": replaced(BASE_MP, "ToUserName", "g" * 100),
    "long event name": hostile.mp_event(KEYS, "o_hostile", "x" * 40, ""),
}


@pytest.mark.parametrize("case", list(MP_CRASHERS))
async def test_official_account_input_that_crashed_is_400(server: TestClient, case: str) -> None:
    before = await db_state(server)
    status, _ = await send(server, hostile.mp_request(KEYS, hostile.to_xml(MP_CRASHERS[case])))
    assert status == 400
    assert await db_state(server) == before


WORK_CRASHERS = {
    "repeated FromUserName": [*BASE_WORK, ("FromUserName", "lisi")],
    "missing CreateTime": replaced(BASE_WORK, "CreateTime", None),
    "absurd CreateTime": replaced(BASE_WORK, "CreateTime", "99999999999999999999"),
    "nested MsgType": replaced(BASE_WORK, "MsgType", {"a": "text"}),
}


@pytest.mark.parametrize("case", list(WORK_CRASHERS))
async def test_wecom_input_that_crashed_is_400(server: TestClient, case: str) -> None:
    before = await db_state(server)
    status, _ = await send(server, hostile.work_request(KEYS, hostile.to_xml(WORK_CRASHERS[case])))
    assert status == 400
    assert await db_state(server) == before


BASE_PAY = hostile.pay_result(KEYS, "20261122-0042", "4200000540202005267407409907", 1234)
PAY_CRASHERS = {
    "repeated out_trade_no": [*BASE_PAY, ("out_trade_no", "20261122-0043")],
    "nested transaction_id": replaced(BASE_PAY, "transaction_id", {"id": "1"}),
    "nested total_fee": replaced(BASE_PAY, "total_fee", {"fen": "1"}),
    "long transaction_id": replaced(BASE_PAY, "transaction_id", "4" * 80),
    "absurd total_fee": replaced(BASE_PAY, "total_fee", "9" * 30),
}


@pytest.mark.parametrize("case", list(PAY_CRASHERS))
async def test_pay_notification_with_repeated_or_nested_fields_gets_fail(
    server: TestClient, case: str
) -> None:
    before = await db_state(server)
    status, body = await send(server, hostile.pay_request(KEYS, PAY_CRASHERS[case]))
    assert status == 400 and FAIL in body
    assert await db_state(server) == before


@pytest.mark.parametrize("refund_fee", [{"a": "1"}, ["1", "2"], "", "-1"])
async def test_refund_req_info_with_a_bad_refund_fee_is_refused(server: TestClient, refund_fee: Any) -> None:
    inner = replaced(hostile.refund_result(KEYS, "R1", 100), "refund_fee", refund_fee)
    before = await db_state(server)
    status, body = await send(server, hostile.refund_request(KEYS, inner))
    assert 400 <= status < 500 and FAIL in body
    assert await db_state(server) == before


@pytest.mark.parametrize(
    "encoding", ["utf16_dtd", "utf32_dtd", "cp037_dtd", "dtd", "entity", "dtd_after_root"]
)
async def test_dtds_in_any_encoding_are_400_on_every_endpoint(server: TestClient, encoding: str) -> None:
    before = await db_state(server)
    mp_xml, work_xml = hostile.to_xml(BASE_MP), hostile.to_xml(BASE_WORK)
    requests = [
        hostile.mp_request(KEYS, hostile.transform(mp_xml, encoding)),  # the envelope itself
        hostile.mp_request(KEYS, hostile.transform(mp_xml, encoding), encrypt=False),
        hostile.work_request(KEYS, hostile.transform(work_xml, encoding)),
        hostile.pay_request(KEYS, BASE_PAY, encoding),
        hostile.refund_request(KEYS, hostile.refund_result(KEYS, "R1", 100), encoding),
    ]
    for req in requests:
        status, _ = await send(server, req)
        assert status in (400, 403), req.path  # 403: plaintext refused by safe mode before parsing
    status, _ = await send(server, requests[0])
    assert status == 400
    inner = hostile.refund_request(KEYS, hostile.refund_result(KEYS, "R1", 100), inner_op=encoding)
    assert (await send(server, inner))[0] in (400, 403)
    assert await db_state(server) == before


async def test_a_replayed_old_signature_is_403(server: TestClient) -> None:
    month_ago = int(time.time()) - 30 * 86400
    before = await db_state(server)
    old_mp = hostile.mp_request(KEYS, hostile.to_xml(BASE_MP), timestamp=month_ago)
    old_work = hostile.work_request(KEYS, hostile.to_xml(BASE_WORK), timestamp=month_ago)
    ahead = hostile.mp_request(KEYS, hostile.to_xml(BASE_MP), timestamp=int(time.time()) + 3600)
    for req in (old_mp, old_work, ahead):
        assert (await send(server, req))[0] == 403
    assert await db_state(server) == before
    # WeChat's own retries come within seconds: a minute-old signature is still fine.
    recent = hostile.mp_request(KEYS, hostile.to_xml(BASE_MP), timestamp=int(time.time()) - 60)
    assert (await send(server, recent))[0] == 200


async def test_plaintext_is_refused_in_safe_mode(server: TestClient) -> None:
    assert server.app[app_keys.SETTINGS].wechat_message_mode == "safe"  # the default with an AES key
    before = await db_state(server)
    plain = hostile.mp_request(KEYS, hostile.to_xml(BASE_MP), encrypt=False)
    assert (await send(server, plain))[0] == 403
    assert await db_state(server) == before


async def test_a_long_button_key_is_handled_not_crashed(server: TestClient) -> None:
    click = hostile.mp_event(KEYS, "o_long_key", "CLICK", "k" * 600)
    assert (await send(server, hostile.mp_request(KEYS, hostile.to_xml(click))))[0] == 200


# --- generated -----------------------------------------------------------------------------------------

mutations = st.lists(
    st.tuples(
        st.sampled_from(hostile.OPERATIONS),
        st.integers(0, 20),
        st.sampled_from(hostile.ABSURD) | st.text(max_size=30),
    ),
    min_size=1,
    max_size=4,
)
body_op = st.none() | st.sampled_from(hostile.BODY_OPERATIONS)


def hostile_request(endpoint: str, muts: list[hostile.Mutation], op: str | None, n: int) -> Request:
    if endpoint == "/wechat/mp":
        xml = hostile.to_xml(hostile.mutate(hostile.mp_text(KEYS, f"o_gen_{n}", "帮助", 991_000 + n), muts))
        return hostile.mp_request(KEYS, hostile.transform(xml, op) if op else xml)
    if endpoint == "/wechat/work":
        xml = hostile.to_xml(hostile.mutate(hostile.work_text(KEYS, f"gen{n}", "帮助", 992_000 + n), muts))
        return hostile.work_request(KEYS, hostile.transform(xml, op) if op else xml)
    if endpoint == "/pay/wechat/notify":
        doc = hostile.pay_result(KEYS, f"gen-{n}", f"42{n:026d}", 100)
        return hostile.pay_request(KEYS, hostile.mutate(doc, muts), op)
    return hostile.refund_request(KEYS, hostile.mutate(hostile.refund_result(KEYS, f"R{n}", 100), muts), op)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(hostile.ENDPOINTS), muts=mutations, op=body_op, n=st.integers(0, 999))
async def test_generated_hostile_requests_never_get_a_5xx(
    server: TestClient, endpoint: str, muts: list[hostile.Mutation], op: str | None, n: int
) -> None:
    before = await db_state(server)
    status, _ = await send(server, hostile_request(endpoint, muts, op, n))
    assert status < 500
    if status != 200:  # refused: nothing may have changed
        assert await db_state(server) == before
