"""Ranked search: relevance over fields, partial matches, filters and tags, explicit sorts, what to
say when nothing matches, and an index that follows imports (store level on both backends, and
conversations over HTTP)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import keys
from flows import texts
from store.catalog import Query, find
from store.catalog_import import import_catalog, parse_catalog
from store.models import Package, Service
from store.search import SearchIndex, relax
from tests.wechat import WeChat

ROOT = Path(__file__).resolve().parents[1]

CATALOG = """\
- code: xhs-food
  title: 阿杰吃遍上海
  platform: 小红书
  category: 达人营销
  forms: [图文, 视频]
  tags: [美食, 探店]
  summary: 本地餐厅和咖啡馆的真实体验
  followers: 38000
  engagement: 7.4%
  packages:
    - {name: 1 篇图文笔记, price: 800}
    - {name: 1 条视频, price: 2400}
- code: xhs-beauty
  title: 桃子护肤研究所
  platform: 小红书
  category: 达人营销
  forms: [图文]
  tags: [美妆, 护肤]
  summary: 成分党护肤测评
  followers: 120000
  engagement: 6.0%
  packages:
    - {name: 1 篇测评, price: 5800}
- code: dy-food
  title: 美食探店老王
  platform: 抖音
  category: 达人营销
  forms: [视频, 直播]
  tags: [本地生活]
  summary: 一条视频带你吃一家店
  followers: 260000
  engagement: 5.1%
  packages:
    - {name: 1 条视频, price: 3500}
- code: dy-life
  title: 城市生活记录
  platform: 抖音
  category: 内容制作
  forms: [视频]
  tags: [生活方式]
  summary: 拍城市的日常
  description: 偶尔也拍美食探店，但主要是城市风景。
  followers: 90000
  engagement: 9.0%
  packages:
    - {name: 1 条视频, price: 1200}
- code: dy-makeup
  title: 美妆Coco的化妆间
  platform: 抖音
  category: 达人营销
  forms: [视频]
  tags: [彩妆]
  summary: 日常妆容教程
  followers: 500000
  engagement: 4.2%
  packages:
    - {name: 1 条视频, price: 9000}
- code: bili-tech
  title: 硬核数码评测
  platform: B站
  category: 达人营销
  forms: [视频]
  tags: [数码, 科技]
  summary: 手机电脑深度评测
  followers: 800000
  engagement: 3.0%
  packages:
    - {name: 1 期视频, price: 20000}
- code: xhs-soldout
  title: 小红书美食探店合集
  platform: 小红书
  category: 达人营销
  forms: [图文]
  tags: [美食, 探店]
  followers: 50000
  engagement: 8.0%
  packages:
    - {name: 1 篇合集, price: 1500, stock: 0}
"""


@pytest.fixture
async def shop(sm: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    await _import(sm, CATALOG)
    return sm


async def _import(sm: async_sessionmaker[AsyncSession], text: str) -> None:
    specs, errors = parse_catalog(text, "yaml")
    assert errors == []
    async with sm.begin() as session:
        await import_catalog(session, specs)


async def codes(
    sm: async_sessionmaker[AsyncSession], index: SearchIndex | None = None, **query: object
) -> list[str]:
    async with sm() as session:
        result = await find(session, Query(**query), per_page=50, index=index)  # type: ignore[arg-type]
    assert result.total == len(result.cards)
    return [c.code for c in result.cards]


# --- relevance ---------------------------------------------------------------------------------------


async def test_a_title_match_outranks_a_description_match(shop: async_sessionmaker[AsyncSession]) -> None:
    ranked = await codes(shop, keywords=("美食探店",))
    assert ranked.index("dy-food") < ranked.index("dy-life")  # in its title vs in its description
    assert ranked[-1] == "xhs-soldout"  # the best title match of all, but sold out


async def test_services_matching_more_of_the_words_come_first(shop: async_sessionmaker[AsyncSession]) -> None:
    ranked = await codes(shop, keywords=("小红书", "美食"))
    assert ranked[0] == "xhs-food"  # both words: platform and tag
    assert "xhs-beauty" in ranked and "dy-food" in ranked  # one word each, still listed, lower
    assert ranked.index("xhs-food") < ranked.index("xhs-beauty")
    assert "bili-tech" not in ranked  # neither word


async def test_a_sentence_without_spaces_finds_what_it_names(shop: async_sessionmaker[AsyncSession]) -> None:
    ranked = await codes(shop, keywords=("有没有抖音的探店达人",))
    assert ranked[0] == "dy-food"
    assert "bili-tech" not in ranked and "xhs-beauty" not in ranked


async def test_one_character_and_latin_words(shop: async_sessionmaker[AsyncSession]) -> None:
    assert (await codes(shop, keywords=("妆",)))[:2] == ["dy-makeup", "xhs-beauty"]
    assert await codes(shop, keywords=("Bilibili",)) == ["bili-tech"]  # a platform alias
    assert await codes(shop, keywords=("量子",)) == []


# --- filters, tags and sorts ---------------------------------------------------------------------------


async def test_filters_narrow_the_ranked_list(shop: async_sessionmaker[AsyncSession]) -> None:
    assert await codes(shop, keywords=("美食",), platform="抖音") == ["dy-food", "dy-life"]
    # a service matches a price range when one of its packages does
    assert await codes(shop, keywords=("美食",), price_min_fen=200000, price_max_fen=300000) == ["xhs-food"]
    assert await codes(shop, keywords=("美食",), form="直播") == ["dy-food"]
    assert await codes(shop, keywords=("美食",), followers_min=100000) == ["dy-food"]
    assert await codes(shop, keywords=("美食",), engagement_min_bp=800) == ["dy-life", "xhs-soldout"]
    async with shop() as session:
        result = await find(session, Query(keywords=("美食",), price_min_fen=200000, platform="小红书"))
    assert [c.min_price_fen for c in result.cards] == [240000]  # the cheapest package in range


async def test_tags_match_any_of_them_and_more_tags_rank_higher(
    shop: async_sessionmaker[AsyncSession],
) -> None:
    ranked = await codes(shop, tags=("美妆", "护肤"))
    assert ranked == ["xhs-beauty", "dy-makeup"]  # both tags; then 美妆 in the title only
    assert await codes(shop, tags=("数码",), platform="B站") == ["bili-tech"]
    assert await codes(shop, tags=("数码",), platform="抖音") == []


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("relevance", ["dy-food", "xhs-food", "dy-life", "xhs-soldout"]),
        ("price", ["xhs-food", "dy-life", "dy-food", "xhs-soldout"]),
        ("price_desc", ["dy-food", "dy-life", "xhs-food", "xhs-soldout"]),
        ("followers", ["dy-food", "dy-life", "xhs-food", "xhs-soldout"]),
        ("engagement", ["dy-life", "xhs-food", "dy-food", "xhs-soldout"]),
    ],
)
async def test_explicit_sorts_order_the_matching_services(
    shop: async_sessionmaker[AsyncSession], sort: str, expected: list[str]
) -> None:
    found = await codes(shop, keywords=("美食", "探店"), sort=sort)
    assert found == expected  # sold out last in every order


# --- when nothing matches ------------------------------------------------------------------------------


async def test_over_budget_says_so_and_offers_the_cheapest_above_it(
    shop: async_sessionmaker[AsyncSession],
) -> None:
    query = Query(keywords=("美妆",), platform="小红书", price_max_fen=300000)
    async with shop() as session:
        result = await find(session, query)
    assert (result.cards, result.total) == ([], 0)
    assert result.blocked_by == ("price", "keywords")  # dropping either alone finds something
    alternatives = result.alternatives
    assert alternatives is not None and alternatives.dropped == ("price",)
    assert [c.code for c in alternatives.cards] == ["xhs-beauty"]
    assert alternatives.query == relax(query, ("price",)) == Query(keywords=("美妆",), platform="小红书")


async def test_nearest_above_a_budget_comes_first(shop: async_sessionmaker[AsyncSession]) -> None:
    async with shop() as session:
        result = await find(session, Query(platform="抖音", price_max_fen=50000))
    assert result.alternatives is not None
    assert [c.code for c in result.alternatives.cards] == ["dy-life", "dy-food", "dy-makeup"]


async def test_a_platform_without_it_offers_the_same_search_elsewhere(
    shop: async_sessionmaker[AsyncSession],
) -> None:
    async with shop() as session:
        result = await find(session, Query(keywords=("美妆",), platform="B站"))
    assert result.blocked_by == ("platform", "keywords")  # B站 has other things
    assert result.alternatives is not None and result.alternatives.dropped == ("platform",)
    assert [c.code for c in result.alternatives.cards] == ["dy-makeup", "xhs-beauty"]


async def test_when_no_single_condition_is_to_blame_all_filters_go(
    shop: async_sessionmaker[AsyncSession],
) -> None:
    async with shop() as session:
        result = await find(
            session, Query(keywords=("美妆",), tags=("彩妆",), platform="B站", price_max_fen=100)
        )
    assert result.blocked_by == ()
    assert result.alternatives is not None and result.alternatives.dropped == ("price", "platform", "tags")
    # matching the words, nearest to the budget first
    assert [c.code for c in result.alternatives.cards] == ["xhs-beauty", "dy-makeup"]


async def test_words_nothing_has_fall_back_to_the_filters(shop: async_sessionmaker[AsyncSession]) -> None:
    async with shop() as session:
        result = await find(session, Query(keywords=("量子计算",), platform="小红书"))
    assert result.blocked_by == ("keywords",)
    assert result.alternatives is not None
    assert [c.code for c in result.alternatives.cards] == ["xhs-food", "xhs-beauty", "xhs-soldout"]


# --- the index follows the catalog ---------------------------------------------------------------------


async def test_the_index_follows_imports_and_stock(shop: async_sessionmaker[AsyncSession]) -> None:
    index = SearchIndex()
    assert await codes(shop, index, keywords=("火锅",)) == []
    await _import(
        shop,
        "- {code: cq-hotpot, title: 重庆火锅地图, platform: 抖音, category: 达人营销, tags: [美食],"
        " packages: [{name: 1 条视频, price: 1000}]}",
    )
    assert await codes(shop, index, keywords=("火锅",)) == ["cq-hotpot"]
    builds = index.text_builds
    assert await codes(shop, index, keywords=("火锅",)) == ["cq-hotpot"]
    assert index.text_builds == builds  # nothing changed, nothing rebuilt

    async with shop.begin() as session:  # an order takes the last one: only the packages are re-read
        await session.execute(update(Package).where(Package.name == "1 条视频").values(stock=0))
    async with shop() as session:
        result = await find(session, Query(keywords=("火锅",)), index=index)
    assert result.cards[0].availability == "已售罄" and index.text_builds == builds
    async with shop.begin() as session:  # restocked
        await session.execute(update(Package).where(Package.name == "1 条视频").values(stock=20))
    async with shop() as session:
        result = await find(session, Query(keywords=("火锅",)), index=index)
    assert result.cards[0].availability == "可下单" and index.text_builds == builds

    await _import(  # the same service at a new price: the card follows, the text is not rebuilt
        shop,
        "- {code: cq-hotpot, title: 重庆火锅地图, platform: 抖音, category: 达人营销, tags: [美食],"
        " packages: [{name: 1 条视频, price: 1200}]}",
    )
    async with shop() as session:
        result = await find(session, Query(keywords=("火锅",), price_max_fen=110000), index=index)
    assert result.total == 0 and result.blocked_by == ("price", "keywords")
    assert result.alternatives is not None and result.alternatives.cards[0].min_price_fen == 120000

    two = "[{name: 1 条视频, price: 1200}, {name: 试拍, price: 300}]"
    await _import(shop, HOTPOT.format(packages=two))
    assert await prices(shop, index, "火锅") == [30000]
    await _import(shop, HOTPOT.format(packages="[{name: 1 条视频, price: 1200}]"))  # 试拍 deleted
    assert await prices(shop, index, "火锅") == [120000]

    await _import(
        shop,
        "- {code: cq-hotpot, title: 重庆火锅地图, platform: 抖音, category: 达人营销, status: unlisted,"
        " packages: [{name: 1 条视频, price: 1000}]}",
    )
    assert await codes(shop, index, keywords=("火锅",)) == []
    async with shop.begin() as session:
        await session.execute(update(Service).where(Service.code == "cq-hotpot").values(status="listed"))
    assert await codes(shop, index, keywords=("火锅",)) == ["cq-hotpot"]


HOTPOT = (
    "- {{code: cq-hotpot, title: 重庆火锅地图, platform: 抖音, category: 达人营销, packages: {packages}}}"
)


async def prices(sm: async_sessionmaker[AsyncSession], index: SearchIndex, word: str) -> list[int]:
    async with sm() as session:
        result = await find(session, Query(keywords=(word,)), index=index)
    return [c.min_price_fen for c in result.cards]


def test_the_server_loads_the_search_libraries_only_when_someone_searches() -> None:
    probe = (
        "import sys; from bot.app import create_app; from settings import load_settings; "
        "create_app(load_settings(wechat_app_id='wx', wechat_token='t', "
        "wechat_aes_key='abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG')); "
        "print(sorted(m for m in ('numpy', 'bm25s') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_queries_saved_by_older_versions_still_load() -> None:
    old = {"keywords": ["咖啡"], "platform": "小红书", "sort": "engagement", "gone": 1}
    assert Query.from_dict(old) == Query(keywords=("咖啡",), platform="小红书", sort="engagement")
    query = Query(keywords=(" 咖啡 ", ""), tags=["美食"])
    assert query.keywords == ("咖啡",) and Query.from_dict(query.to_dict()) == query
    assert Query().effective_sort == "engagement" and query.effective_sort == "relevance"


# --- conversations over HTTP ------------------------------------------------------------------------


async def say(bot: TestClient, text: str, openid: str = "o_searcher") -> str:
    answer = await WeChat(bot).say(openid, text)
    assert answer.text is not None
    return answer.text


@pytest.fixture
async def bot_shop(any_bot: TestClient) -> TestClient:
    await _import(any_bot.app[keys.SESSIONMAKER], CATALOG)
    return any_bot


async def test_search_with_words_shows_the_best_match_first(bot_shop: TestClient) -> None:
    listing = await say(bot_shop, "搜 小红书 美食")
    assert texts.SORT_NAMES["relevance"] in listing
    assert listing.splitlines()[1].startswith("1. 阿杰吃遍上海 · 小红书")
    assert "硬核数码评测" not in listing
    assert "【阿杰吃遍上海】" in await say(bot_shop, "1")
    by_price = await say(bot_shop, "排序 价格")
    assert texts.SORT_NAMES["price"] in by_price and "硬核数码评测" not in by_price
    glued = await say(bot_shop, "搜小红书美食")  # no spaces: the same best match
    assert glued.splitlines()[1].startswith("1. 阿杰吃遍上海 · 小红书")


async def test_a_budget_nothing_fits_names_it_and_lists_the_nearest(bot_shop: TestClient) -> None:
    await say(bot_shop, "搜 美妆")
    answer = await say(bot_shop, "筛选 价格 100以下")
    assert answer.startswith("「美妆 · ≤¥100」没有找到")
    assert "放宽预算后最接近的是：\n1. 桃子护肤研究所" in answer
    assert "【桃子护肤研究所】" in await say(bot_shop, "1")  # the alternatives can be opened


async def test_a_platform_nothing_fits_offers_other_platforms(bot_shop: TestClient) -> None:
    await say(bot_shop, "搜 美妆")
    answer = await say(bot_shop, "筛选 平台 B站")
    assert answer.startswith("「美妆 · B站」没有找到")
    assert "换个平台后最接近的是：\n1. 美妆Coco的化妆间" in answer


async def test_words_nothing_matches_show_something_anyway(bot_shop: TestClient) -> None:
    answer = await say(bot_shop, "搜 量子计算")
    assert answer.startswith("没有和「量子计算」相关的服务 😶 先看看这些：\n1. ")
    await say(bot_shop, "筛选 平台 小红书")
    answer = await say(bot_shop, "搜 量子计算")  # the platform is kept: what it has
    assert answer.startswith("没有和「量子计算」相关的服务 😶 小红书的服务里先看看这些：\n1. 阿杰吃遍上海")


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"CHATORDER_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_a_catalog_imported_by_another_process_is_searchable_at_once(
    bot: TestClient, tmp_path: Path
) -> None:
    assert await say(bot, "搜 火锅") == texts.NO_RESULTS.format(filters_hint="")  # nothing listed yet
    path = tmp_path / "more.yaml"
    path.write_text(
        "- {code: cq-hotpot, title: 重庆火锅地图, platform: 抖音, category: 达人营销,"
        " packages: [{name: 1 条视频, price: 1000}]}\n",
        "utf-8",
    )
    result = _cli(bot.app[keys.SETTINGS].database_url, "catalog", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "1. 重庆火锅地图 · 抖音" in await say(bot, "搜 火锅")
