"""MpClient against the MP simulator over real HTTP: tokens, errors, every API, Tencent's JSON shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.mp import MpClient, WeChatApiError
from bot.channels.tokens import DbTokenStore
from bot.sandbox.mp_sim import MpSimulator
from settings import Settings
from store.db import make_engine, make_sessionmaker
from store.models import Base
from store.outbox import Outgoing

APP_ID, APP_SECRET = "wx1234567890abcdef", "s3cr3t-app-secret"
SAMPLES = Path(__file__).resolve().parent / "fixtures" / "wechat" / "api"

ServerFactory = Callable[..., Awaitable[TestServer]]


def make_settings(server: TestServer, **overrides: Any) -> Settings:
    """Settings whose MP API base points at the simulator."""
    values: dict[str, Any] = {
        "wechat_app_id": APP_ID,
        "wechat_app_secret": APP_SECRET,
        "wechat_api_base": str(server.make_url("/cgi-bin/")),
        "wechat_notice_template_id": "",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def sim() -> MpSimulator:
    return MpSimulator(APP_ID, APP_SECRET)


@pytest.fixture
async def server(sim: MpSimulator, aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(sim.app)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sqlite_sm(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'client.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def client(
    http: aiohttp.ClientSession, server: TestServer, sqlite_sm: async_sessionmaker[AsyncSession]
) -> MpClient:
    return MpClient(http, make_settings(server), DbTokenStore(sqlite_sm, "mp-token"))


async def test_send_text_fetches_token_once(client: MpClient, sim: MpSimulator) -> None:
    await client.send_text("o_alice", "你好")
    await client.send_text("o_alice", "再见")
    assert [(m.openid, m.kind, m.payload) for m in sim.sent] == [
        ("o_alice", "text", {"content": "你好"}),
        ("o_alice", "text", {"content": "再见"}),
    ]
    assert sim.calls["token"] == 1


async def test_expired_token_mid_send_is_refreshed_once(client: MpClient, sim: MpSimulator) -> None:
    await client.send_text("o_alice", "one")
    sim.expire_tokens()  # 42001 on the next use
    await client.send_text("o_alice", "two")
    assert [m.payload["content"] for m in sim.sent] == ["one", "two"]
    assert sim.calls["token"] == 2
    assert sim.calls["custom_send"] == 3


async def test_invalid_credential_mid_send_is_refreshed_once(client: MpClient, sim: MpSimulator) -> None:
    await client.send_text("o_alice", "one")
    sim.fail_next("custom_send", 40001)
    await client.send_text("o_alice", "two")
    assert [m.payload["content"] for m in sim.sent] == ["one", "two"]
    assert sim.calls["token"] == 2


async def test_token_rejected_twice_raises_instead_of_looping(client: MpClient, sim: MpSimulator) -> None:
    sim.fail_next("custom_send", 42001, times=2)
    with pytest.raises(WeChatApiError) as err:
        await client.send_text("o_alice", "hi")
    assert err.value.errcode == 42001
    assert sim.calls["custom_send"] == 2
    assert sim.sent == []


async def test_wrong_secret_raises_40001_from_token_endpoint(
    http: aiohttp.ClientSession,
    server: TestServer,
    sim: MpSimulator,
    sqlite_sm: async_sessionmaker[AsyncSession],
) -> None:
    settings = make_settings(server, wechat_app_secret="wrong")
    client = MpClient(http, settings, DbTokenStore(sqlite_sm, "mp-token"))
    with pytest.raises(WeChatApiError) as err:
        await client.send_text("o_alice", "hi")
    assert err.value.errcode == 40001
    assert sim.calls["token"] == 1
    assert sim.calls["custom_send"] == 0


@pytest.mark.parametrize(
    ("errcode", "retryable"), [(-1, True), (45009, True), (500, True), (40003, False), (45015, False)]
)
async def test_errors_raise_with_retryable_flag(
    client: MpClient, sim: MpSimulator, errcode: int, retryable: bool
) -> None:
    sim.fail_next("custom_send", errcode)
    with pytest.raises(WeChatApiError) as err:
        await client.send_text("o_alice", "hi")
    assert (err.value.errcode, err.value.retryable) == (errcode, retryable)
    assert sim.sent == []


async def test_network_error_is_retryable(
    http: aiohttp.ClientSession, sqlite_sm: async_sessionmaker[AsyncSession], server: TestServer
) -> None:
    settings = make_settings(server, wechat_api_base="http://127.0.0.1:9/cgi-bin/")  # discard port
    client = MpClient(http, settings, DbTokenStore(sqlite_sm, "mp-token"))
    with pytest.raises(WeChatApiError) as err:
        await client.send_text("o_alice", "hi")
    assert err.value.errcode == -2
    assert err.value.retryable


async def test_template_news_and_send_dispatch(client: MpClient, sim: MpSimulator) -> None:
    data = {"first": {"value": "订单已完成"}}
    await client.send(
        Outgoing("mp", "o_bob", "template", {"template_id": "TPL", "data": data, "url": "https://x"})
    )
    article = {"title": "T", "description": "D", "url": "https://x", "picurl": "https://x/p.png"}
    await client.send(Outgoing("mp", "o_bob", "news", {"articles": [article]}))
    assert sim.sent[0].kind == "template"
    assert sim.sent[0].payload == {"template_id": "TPL", "url": "https://x", "data": data}
    assert sim.sent[1].payload == {"articles": [article]}
    with pytest.raises(ValueError):
        await client.send(Outgoing("mp", "o_bob", "voice", {}))


async def test_media_upload_get_and_image_send(client: MpClient, sim: MpSimulator) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    media_id = await client.upload_media("image", "poster.png", png)
    assert sim.media[media_id] == ("image/png", png)
    assert await client.get_media(media_id) == png
    await client.send_image("o_bob", media_id)
    assert sim.sent[-1].payload == {"media_id": media_id}
    with pytest.raises(WeChatApiError) as err:
        await client.get_media("nope")
    assert err.value.errcode == 40007


async def test_qrcode_create_and_show(
    client: MpClient, sim: MpSimulator, http: aiohttp.ClientSession
) -> None:
    qr = await client.create_qrcode("inv_abc123")
    assert set(qr) == {"ticket", "url"}
    assert sim.qrcodes[qr["ticket"]]["scene"] == {"scene_str": "inv_abc123"}
    temp = await client.create_qrcode("inv_abc123", permanent=False, expire_seconds=600)
    assert temp["expire_seconds"] == 600
    base = client._base  # the simulator serves showqrcode next to the API
    async with http.get(base + "showqrcode", params={"ticket": qr["ticket"]}) as resp:
        assert resp.content_type == "image/png"
        assert (await resp.read()).startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        await client.create_qrcode("x" * 65)


async def test_menu_create(client: MpClient, sim: MpSimulator) -> None:
    menu = {"button": [{"type": "click", "name": "我的订单", "key": "MENU_ORDERS"}]}
    await client.create_menu(menu)
    assert sim.menu == menu
    sim.fail_next("menu_create", 45009)
    with pytest.raises(WeChatApiError):
        await client.create_menu(menu)


def _sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


async def _get_json(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> dict[str, Any]:
    async with http.request(kwargs.pop("method", "GET"), url, **kwargs) as resp:
        return await resp.json()


@pytest.mark.parametrize(
    ("sample", "errcode"),
    [
        ("errors/40001_invalid_credential_hint.json", 40001),
        ("errors/42001_access_token_expired.json", 42001),
        ("errors/45009_api_freq_out_of_limit.json", 45009),
        ("errors/45015_response_out_of_time_limit.json", 45015),
        ("errors/minus1_system_error.json", -1),
    ],
)
async def test_error_bodies_match_tencent_samples(
    sim: MpSimulator, server: TestServer, http: aiohttp.ClientSession, sample: str, errcode: int
) -> None:
    expected = _sample(sample)
    sim.fail_next("custom_send", errcode)
    body = await _get_json(http, str(server.make_url("/cgi-bin/message/custom/send")), method="POST", json={})
    assert set(body) == set(expected)
    assert body["errcode"] == expected["errcode"]
    assert body["errmsg"].split(" rid:")[0] == expected["errmsg"].split(" rid:")[0].split(" hint:")[0]


async def test_success_bodies_match_tencent_samples(
    client: MpClient, server: TestServer, http: aiohttp.ClientSession
) -> None:
    base = str(server.make_url("/cgi-bin/"))
    token = await _get_json(
        http,
        base + "token",
        params={"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET},
    )
    assert set(token) == set(_sample("mp/token.json")) and token["expires_in"] == 7200
    q = {"access_token": token["access_token"]}
    sent = await _get_json(
        http, base + "message/custom/send", method="POST", params=q,
        json={"touser": "o", "msgtype": "text", "text": {"content": "x"}},
    )  # fmt: skip
    assert sent == _sample("mp/message_custom_send.json")
    tpl = await _get_json(
        http,
        base + "message/template/send",
        method="POST",
        params=q,
        json={"touser": "o", "template_id": "T"},
    )
    assert set(tpl) == set(_sample("mp/message_template_send.json"))
    body = {
        "expire_seconds": 1800,
        "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": "a"}},
    }
    qr = await _get_json(http, base + "qrcode/create", method="POST", params=q, json=body)
    assert set(qr) == set(_sample("mp/qrcode_create.json"))
    form = aiohttp.FormData()
    form.add_field("media", b"img", filename="a.jpg", content_type="image/jpeg")
    media = await _get_json(
        http, base + "media/upload", method="POST", params={**q, "type": "image"}, data=form
    )
    assert set(media) == set(_sample("mp/media_upload.json"))
