"""The creator's name and avatar on the invite poster: user/info, the avatar download, 海报昵称, and the
poster cache that redraws only when the name, avatar, QR or template changes."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import select

from bot import keys
from bot.sandbox.mp_sim import MpSimulator, SentMessage
from flows import texts
from flows import texts as tc
from handlers.invite import parse_poster_name
from posters.fonts import find_cjk_font
from posters.render import TEMPLATES, load_template, render
from store.models import Creator, User
from tests.conftest import eventually
from tests.test_posters import NOTDEF, with_text
from tests.wechat import WeChat, text_xml

pytestmark = pytest.mark.skipif(find_cjk_font() is None, reason="no CJK font installed (fonts-noto-cjk)")

AVATAR_RGB = (30, 120, 200)
NEW_AVATAR_RGB = (200, 60, 90)
QR_URL = "http://weixin.qq.com/q/02AbCdEfGhIjKl10000003"


def solid_png(rgb: tuple[int, int, int], size: tuple[int, int] = (132, 132)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, rgb).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def font() -> str:
    return str(find_cjk_font())


def sent_to(sim: MpSimulator, openid: str) -> list[SentMessage]:
    return [m for m in sim.sent if m.openid == openid]


async def sent_at_least(sim: MpSimulator, openid: str, count: int) -> list[SentMessage]:
    """Everything sent to `openid` through the API, once there are at least `count` messages."""

    def ready() -> list[SentMessage] | None:
        got = sent_to(sim, openid)
        return got if len(got) >= count else None

    return await eventually(ready)


async def turn(bot: TestClient, sim: MpSimulator, openid: str, said: str) -> list[SentMessage]:
    """Say something that is answered with a picture and a text: the first in the HTTP response,
    the other through the API. Returns (picture, text), whichever came first."""
    before = len(sent_to(sim, openid))
    answer = await WeChat(bot).say(openid, said)
    assert answer.message is not None
    kind, payload = answer.message
    (api,) = (await sent_at_least(sim, openid, before + 1))[before : before + 1]
    pair = [SentMessage(0, openid, kind, payload, 0.0), api]
    return sorted(pair, key=lambda m: m.kind != "image")


def poster_of(sim: MpSimulator, image: SentMessage) -> Image.Image:
    assert image.kind == "image"
    _, png = sim.media[image.payload["media_id"]]
    return Image.open(io.BytesIO(png)).convert("RGB")


def assert_name_drawn(img: Image.Image, font: str, name: str, template: str = "default") -> None:
    """The name's real glyphs are in the nickname slot — not boxes (the check of tests/test_posters)."""
    spec = load_template(template)
    real, bbox = with_text(spec, font, name)
    boxes, _ = with_text(spec, font, NOTDEF * len(name))
    assert img.crop(bbox).tobytes() == real.crop(bbox).tobytes()
    assert img.crop(bbox).tobytes() != boxes.crop(bbox).tobytes()


def avatar_colour(img: Image.Image, template: str = "default") -> tuple[int, ...]:
    return img.getpixel(load_template(template).avatar.center)  # type: ignore[return-value]


# --- over the webhook ---------------------------------------------------------------------------


async def test_poster_shows_the_nickname_and_avatar_wechat_gives(
    bot: TestClient, mp_sim: tuple[MpSimulator, str], font: str
) -> None:
    sim = mp_sim[0]
    sim.set_profile("o_star", nickname="星星月亮", avatar_png=solid_png(AVATAR_RGB))
    image, words = await turn(bot, sim, "o_star", "邀请")
    img = poster_of(sim, image)
    assert img.size == (750, 1334)
    assert_name_drawn(img, font, "星星月亮")
    assert avatar_colour(img) == AVATAR_RGB
    assert words.payload["content"].startswith(texts.INVITE_POSTER.split("{code}")[0])
    assert tc.POSTER_NAME_HINT not in words.payload["content"]  # named: no hint
    assert (sim.calls["user_info"], sim.calls["avatar"], sim.calls["media_upload"]) == (1, 1, 1)
    async with bot.app[keys.SESSIONMAKER]() as s:
        user = await s.scalar(select(User).where(User.openid == "o_star"))
    assert user is not None and user.nickname == "星星月亮" and user.avatar_url.endswith("/132")

    again, _ = await turn(bot, sim, "o_star", "邀请")
    assert again.payload["media_id"] == image.payload["media_id"]
    assert (sim.calls["user_info"], sim.calls["avatar"], sim.calls["media_upload"]) == (1, 1, 1)


async def test_without_a_nickname_the_creator_names_the_poster(
    bot: TestClient, mp_sim: tuple[MpSimulator, str], font: str
) -> None:
    sim = mp_sim[0]
    image, words = await turn(bot, sim, "o_rain", "邀请")  # WeChat gives no nickname, as since 2021
    fallback = load_template("default").nickname.fallback
    assert_name_drawn(poster_of(sim, image), font, fallback)
    assert words.payload["content"].endswith(tc.POSTER_NAME_HINT)
    assert sim.calls["media_upload"] == 1

    chat = WeChat(bot)
    named = text_xml("o_rain", "海报昵称 小雨")
    answer = await chat.post(named)  # the new poster in the HTTP response, the words by API
    assert answer.message is not None
    redrawn = SentMessage(0, "o_rain", *answer.message, 0.0)
    said = (await sent_at_least(sim, "o_rain", 2))[1]
    retried = await chat.post(named)  # WeChat's retry of the same message: the same answer, one effect
    assert retried.message == answer.message
    assert said.payload["content"] == tc.POSTER_NAME_SET.format(name="小雨")
    assert redrawn.payload["media_id"] != image.payload["media_id"]
    assert_name_drawn(poster_of(sim, redrawn), font, "小雨")
    assert sim.calls["media_upload"] == 2  # redrawn once

    image3, words3 = await turn(bot, sim, "o_rain", "邀请")
    assert image3.payload["media_id"] == redrawn.payload["media_id"]  # nothing redrawn
    assert sim.calls["media_upload"] == 2 and sim.calls["user_info"] == 1
    assert tc.POSTER_NAME_HINT not in words3.payload["content"]
    assert len(sent_to(sim, "o_rain")) == 3  # by API; the retried 海报昵称 sent nothing more


async def test_the_name_the_creator_chose_is_kept_when_wechat_refreshes(
    bot: TestClient, mp_sim: tuple[MpSimulator, str], font: str
) -> None:
    """A day later the profile is asked again: a new avatar is drawn, the chosen name stays."""
    sim = mp_sim[0]
    sim.set_profile("o_sun", avatar_png=solid_png(AVATAR_RGB))
    await turn(bot, sim, "o_sun", "海报昵称 阳光")
    sim.set_profile("o_sun", nickname="WeChat名", avatar_png=solid_png(NEW_AVATAR_RGB))
    async with bot.app[keys.SESSIONMAKER].begin() as s:  # WeChat dropped the poster (3 days)
        creator = await s.scalar(select(Creator).where(Creator.openid == "o_sun"))
        assert creator is not None and creator.poster_uploaded_at is not None
        creator.poster_uploaded_at -= dt.timedelta(days=3)
    image, _ = await turn(bot, sim, "o_sun", "邀请")
    img = poster_of(sim, image)
    assert avatar_colour(img) == NEW_AVATAR_RGB
    assert_name_drawn(img, font, "阳光")
    assert sim.calls["user_info"] == 2


async def test_a_failing_user_info_still_gives_a_poster(
    bot: TestClient, mp_sim: tuple[MpSimulator, str], font: str
) -> None:
    sim = mp_sim[0]
    sim.fail_next("user_info", 45009)
    image, _ = await turn(bot, sim, "o_busy", "邀请")
    assert_name_drawn(poster_of(sim, image), font, load_template("default").nickname.fallback)


@pytest.mark.parametrize("said", ["海报昵称 🌟🌟", "海报昵称 " + "十" * 13, "海报昵称 ……"])
async def test_a_bad_poster_name_is_refused_and_changes_nothing(
    bot: TestClient, mp_sim: tuple[MpSimulator, str], said: str
) -> None:
    answer = await WeChat(bot).say("o_odd", said)
    assert answer.text == tc.POSTER_NAME_BAD
    assert mp_sim[0].calls["media_upload"] == 0
    async with bot.app[keys.SESSIONMAKER]() as s:
        assert await s.scalar(select(User.nickname).where(User.openid == "o_odd")) is None


async def test_poster_name_alone_explains_or_shows_the_current_name(
    bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    assert (await WeChat(bot).say("o_ask", "海报昵称")).text == tc.POSTER_NAME_HOW
    await turn(bot, mp_sim[0], "o_ask", "海报昵称 Amy 小雨")
    answer = await WeChat(bot).say("o_ask", "海报昵称")
    assert answer.text == tc.POSTER_NAME_CURRENT.format(name="Amy 小雨")  # as typed, case and all


@pytest.mark.parametrize(
    ("typed", "name"),
    [("小雨", "小雨"), ("  Amy   Lee ", "Amy Lee"), ("十" * 12, "十" * 12), ("小雨🌟", "小雨🌟")],
)
def test_parse_poster_name(typed: str, name: str) -> None:
    assert parse_poster_name(typed) == name


@pytest.mark.parametrize("typed", ["", "   ", "十" * 13, "🌟", "!!", "小\x07雨"])
def test_parse_poster_name_refuses(typed: str) -> None:
    assert parse_poster_name(typed) is None


# --- the API pieces -------------------------------------------------------------------------------


async def test_user_info_gives_empty_strings_when_wechat_gives_nothing(
    bot: TestClient, mp_sim: tuple[MpSimulator, str]
) -> None:
    sim, mp = mp_sim[0], bot.app[keys.MP]
    plain = await mp.user_info("o_nobody")
    assert plain["openid"] == "o_nobody" and plain["subscribe"] == 1
    assert (plain["nickname"], plain["headimgurl"]) == ("", "")
    sim.set_profile("o_named", nickname="小明", avatar_png=solid_png(AVATAR_RGB))
    named = await mp.user_info("o_named")
    assert named["nickname"] == "小明" and named["headimgurl"].startswith("http://127.0.0.1:")
    assert await mp.fetch_avatar(named["headimgurl"]) == solid_png(AVATAR_RGB)
    sim.set_profile("o_named", avatar_png=solid_png(NEW_AVATAR_RGB))  # a new picture, a new URL
    assert await mp.fetch_avatar(named["headimgurl"]) is None
    sim.set_profile("o_gone", subscribed=False)
    assert (await mp.user_info("o_gone"))["subscribe"] == 0


@pytest.fixture
async def pictures() -> AsyncIterator[str]:
    """A small server of good and bad 'avatars'."""
    app = web.Application()
    routes: dict[str, tuple[int, bytes, str]] = {
        "/ok.png": (200, solid_png(AVATAR_RGB), "image/png"),
        "/lies.jpg": (200, b"<html>not found</html>", "image/jpeg"),  # an error page labelled an image
        "/huge.png": (200, b"\x89PNG\r\n\x1a\n" + b"\0" * (3 * 1024 * 1024), "image/png"),
        "/gone.png": (404, b"", "text/plain"),
    }
    for path, answer in routes.items():
        app.router.add_get(path, _serve(*answer))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/"))
    await server.close()


def _serve(status: int, body: bytes, content_type: str) -> Any:
    async def view(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    return view


async def test_fetch_avatar_takes_only_a_bounded_image(bot: TestClient, pictures: str) -> None:
    mp = bot.app[keys.MP]
    assert await mp.fetch_avatar(pictures + "ok.png") == solid_png(AVATAR_RGB)
    for bad in ("lies.jpg", "huge.png", "gone.png"):
        assert await mp.fetch_avatar(pictures + bad) is None, bad
    assert await mp.fetch_avatar("file:///etc/passwd") is None
    assert await mp.fetch_avatar("http://127.0.0.1:9/unreachable.png") is None


# --- templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(p.stem for p in TEMPLATES.glob("*.json")))
def test_every_shipped_template_prints_the_name_avatar_and_a_readable_qr(template: str, font: str) -> None:
    png = render(
        load_template(template),
        qr_url=QR_URL,
        nickname="星星月亮",
        code="AB12CD",
        avatar=solid_png(AVATAR_RGB),
        font_path=font,
    )
    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.size == (750, 1334)
    assert_name_drawn(img, font, "星星月亮", template)
    assert avatar_colour(img, template) == AVATAR_RGB
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed")
    assert [b.text for b in zxingcpp.read_barcodes(img)] == [QR_URL]


def test_a_seasonal_template_is_data_only() -> None:
    assert {"default", "spring"} <= {p.stem for p in TEMPLATES.glob("*.json")}
    assert load_template("spring").background != load_template("default").background
