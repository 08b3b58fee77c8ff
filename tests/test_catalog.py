"""The catalog: parsing imports (errors by line, exact money), importing (upsert, orders keep their
packages), searching on both backends, the demo catalog and `chatorder catalog import`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.catalog import (
    CATEGORIES,
    PLATFORMS,
    Availability,
    Query,
    availability,
    facets,
    get_detail,
    get_package,
    search,
)
from store.catalog_import import import_catalog, load_demo_catalog, parse_catalog
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Order, OrderItem, Package, Service

ROOT = Path(__file__).resolve().parents[1]

# Four listed services with distinct metrics, plus an unlisted and a draft one that must never show.
CATALOG = """\
services:
  - code: s1
    title: 小鹿爱咖啡
    platform: 小红书
    category: 达人营销
    forms: [图文, 视频]
    tags: [咖啡, 探店]
    followers: 5.2万
    engagement: 8.1%
    exposure: 30000
    audience: {gender: {女: 82, 男: 18}}
    packages:
      - {name: 1 篇图文笔记, price: 1000, requirements: [brand, link]}
      - {name: 3 篇图文笔记, price: 2700}
  - code: s2
    title: 阿杰探店
    platform: 小红书
    category: 达人营销
    forms: [图文]
    tags: [探店, 美食]
    followers: 38000
    engagement: 7.4
    exposure: 22000
    packages:
      - {name: 1 篇笔记, price: 800, stock: 2}
      - {name: 1 条视频, price: 1500, stock: 1}
  - code: s3
    title: 咖啡师小周
    platform: 抖音
    category: 达人营销
    forms: [视频, 直播]
    tags: [咖啡]
    followers: 143000
    engagement: 6.4%
    exposure: 70000
    packages:
      - {name: 1 条视频, price: 2500, stock: 0}
      - {name: 直播 1 场, price: 5000, stock: 0}
  - code: s4
    title: 竞品分析报告
    platform: 全平台
    category: 数据分析
    forms: [报告]
    tags: [竞品]
    packages:
      - {name: 3 个竞品, price: 5000, requirements: [brand, link, notes]}
  - code: s5
    title: 下架的咖啡探店
    platform: 小红书
    category: 达人营销
    tags: [咖啡, 探店]
    engagement: 12%
    status: unlisted
    packages:
      - {name: 1 篇, price: 100}
  - code: s6
    title: 草稿咖啡探店
    platform: 小红书
    category: 达人营销
    status: draft
    packages:
      - {name: 1 篇, price: 100}
"""


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    await upgrade(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def catalog(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    specs, errors = parse_catalog(CATALOG, "yaml")
    assert errors == []
    async with sessions.begin() as session:
        await import_catalog(session, specs)
    return sessions


async def find(sessions: async_sessionmaker[AsyncSession], **query: object) -> list[str]:
    async with sessions() as session:
        cards, total = await search(session, Query(**query), per_page=50)  # type: ignore[arg-type]
    assert total == len(cards)
    return [c.code for c in cards]


# --- parsing ---------------------------------------------------------------------------------------


def errors_of(text: str, fmt: str = "yaml") -> list[tuple[int, str]]:
    _, errors = parse_catalog(textwrap.dedent(text), fmt)  # type: ignore[arg-type]
    return [(e.line, e.message) for e in errors]


def has(errors: list[tuple[int, str]], line: int, fragment: str) -> bool:
    return any(n == line and fragment in message for n, message in errors)


def test_yaml_errors_name_the_line_of_the_offending_field() -> None:
    errors = errors_of("""\
        - code: ok-1
          title: 好的
          platform: 小红
          category: 达人营销
          engagement: 8.123%
          audience: {gender: {女: 80, 男: 18}}
          packages:
            - name: 一篇
              price: -5
              requirements: [brand, foo]
            - name: 两篇
              price: 0.001
              stok: 1
        - code: ok-1
          title: 重复
        - code: no packages
          title: 没有套餐
          platform: 抖音
          category: 课程
          forms: [图文, 播客]
          status: live
          followers: -3
        """)
    assert has(errors, 3, "platform “小红” is not one of")
    assert has(errors, 5, "engagement")
    assert has(errors, 6, "must add up to 100, not 98")
    assert has(errors, 9, "price must be a positive amount in yuan, at most two decimals; got “-5”")
    assert has(errors, 10, "requirements: foo not allowed")
    assert has(errors, 12, "price must be a positive amount")
    assert has(errors, 13, "unknown field stok")
    assert has(errors, 14, "code ok-1 is repeated (already used on line 1)")
    assert has(errors, 16, "code “no packages” may only use")
    assert has(errors, 16, "at least one package is required")
    assert has(errors, 20, "forms: 播客 not allowed")
    assert has(errors, 21, "status “live” is not one of")
    assert has(errors, 22, "followers must be a whole number from 0 to")
    assert [line for line, _ in errors] == sorted(line for line, _ in errors)


def test_yaml_syntax_error_and_wrong_shapes_have_lines() -> None:
    assert has(errors_of("- code: a\n  title: [unclosed\n"), 3, "not valid YAML")
    assert has(errors_of("services: 3\n"), 1, "the top level must be a list of services")
    assert has(errors_of("- just a string\n"), 1, "each service must be a mapping")
    assert has(errors_of("- code: a\n  packages: 3\n"), 2, "packages must be a list of packages")
    assert errors_of("") == [(1, "the file holds no services")]


def test_csv_errors_name_the_csv_line() -> None:
    errors = errors_of(
        """\
        code,title,platform,category,tags,engagement,audience_gender,package_name,price,stock,requirements
        c1,咖啡,抖音,达人营销,咖啡|探店,5%,女:60|男:40,一条,500,,brand|link
        c1,,,,,,,两条,"1,000.50",3,brand
        c1,别的名字,,,,,,三条,abc,-1,zzz
        c2,t,抖音,达人营销,,,,x,1
        ,t,抖音,达人营销,,,,,x,1,
        c3,t,抖音,达人营销,,120%,女:60|男:30,x,1,,
        """,
        "csv",
    )
    assert has(errors, 4, "title differs from line 2")
    assert has(errors, 4, "price must be a positive amount")
    assert has(errors, 4, "stock must be a whole number from 0 to")
    assert has(errors, 4, "requirements: zzz not allowed")
    assert has(errors, 5, "9 cells where the header has 11 columns")
    assert has(errors, 6, "code is required")
    assert has(errors, 7, "engagement must be a percentage from 0 to 100")
    assert has(errors, 7, "audience.gender percentages must add up to 100")
    assert not any(line in (2, 3) for line, _ in errors)


def test_csv_header_problems() -> None:
    assert has(errors_of("code,title,prise\n", "csv"), 1, "unknown column(s) prise")
    assert has(errors_of("code,title\n", "csv"), 1, "missing column(s) package_name, price")


def test_csv_multiline_cell_keeps_line_numbers_right() -> None:
    text = (
        "code,title,platform,category,description,package_name,price\n"
        'c1,t,抖音,达人营销,"第一行\n第二行",一条,100\n'
        "c2,t,抖音,达人营销,,一条,-1\n"
    )
    assert has(errors_of(text, "csv"), 4, "price must be a positive amount")


def test_csv_groups_rows_into_services_with_packages() -> None:
    text = (
        "\ufeffcode,title,platform,category,forms,followers,engagement,audience_gender,audience_age,"
        "package_name,price,lead_days,stock,requirements,position\n"
        "c1,咖啡,小红书,达人营销,图文|视频,5.2万,8.1%,女:82|男:18,18-24:60|25-30:40,一篇,1000.10,5,,brand|link,\n"
        "c1,,,,,,,,,三篇,2700,,2,brand,\n"
    )
    specs, errors = parse_catalog(text, "csv")
    assert errors == []
    (spec,) = specs
    assert (spec.followers, spec.engagement_bp, spec.forms) == (52000, 810, ("图文", "视频"))
    assert spec.audience == {"gender": {"女": 82, "男": 18}, "age": {"18-24": 60, "25-30": 40}}
    assert [(p.position, p.price_fen, p.stock, p.lead_days) for p in spec.packages] == [
        (1, 100010, None, 5),
        (2, 270000, 2, 7),
    ]


@pytest.mark.parametrize(
    ("written", "fen"),
    [
        ("1000.10", 100010),
        ("19.99", 1999),
        ("0.1", 10),
        ("0.3", 30),
        ('"¥1,000.50"', 100050),
        ("1000.100", 100010),
        ("99999999", 9999999900),
        ("2e3", 200000),
    ],
)
def test_money_is_exact(written: str, fen: int) -> None:
    specs, errors = parse_catalog(
        f"- {{code: m, title: t, platform: 抖音, category: 课程, packages: [{{name: p, price: {written}}}]}}",
        "yaml",
    )
    assert errors == []
    assert specs[0].packages[0].price_fen == fen
    assert isinstance(specs[0].packages[0].price_fen, int)


@pytest.mark.parametrize(
    "written", ["0", "-1", "0.001", "1.005", "0.30000000000000004", "abc", "nan", "inf", '"1元5"', "true"]
)
def test_bad_prices_are_refused(written: str) -> None:
    specs, errors = parse_catalog(
        f"- {{code: m, title: t, platform: 抖音, category: 课程, packages: [{{name: p, price: {written}}}]}}",
        "yaml",
    )
    assert specs == [] and len(errors) == 1 and "price must be a positive amount" in errors[0].message


def test_scalars_keep_their_written_form() -> None:
    """YAML would read `code: no` as False and `code: 0012` as 12; we keep what was written."""
    specs, errors = parse_catalog(
        "- {code: 0012, title: no, platform: 抖音, category: 课程, tags: [yes, 2024],"
        " packages: [{name: on, price: 1}]}",
        "yaml",
    )
    assert errors == []
    assert (specs[0].code, specs[0].title, specs[0].tags, specs[0].packages[0].name) == (
        "0012",
        "no",
        ("yes", "2024"),
        "on",
    )


def test_availability_labels() -> None:
    assert [availability(s) for s in (None, 100, 4, 3, 1, 0)] == [
        Availability.AVAILABLE,
        Availability.AVAILABLE,
        Availability.AVAILABLE,
        Availability.LOW,
        Availability.LOW,
        Availability.SOLD_OUT,
    ]
    assert Availability.LOW == "库存紧张"


def test_query_round_trips_through_json() -> None:
    import json

    query = Query(
        keywords=("咖啡", "探店"), platform="小红书", price_max_fen=200000, form="图文", sort="price"
    )
    assert Query.from_dict(json.loads(json.dumps(query.to_dict()))) == query
    assert Query.from_dict({"keywords": ["a"], "gone": 1}) == Query(keywords=("a",))
    with pytest.raises(ValueError):
        Query(sort="random")


# --- importing -------------------------------------------------------------------------------------


async def test_import_is_idempotent_and_updates_in_place(
    catalog: async_sessionmaker[AsyncSession],
) -> None:
    async with catalog() as session:
        before = {p.id: (p.service_id, p.position) for p in await session.scalars(select(Package))}
    changed = CATALOG.replace("price: 2700", "price: 2900").replace("tags: [竞品]", "tags: [竞品, 新标签]")
    specs, errors = parse_catalog(changed, "yaml")
    assert errors == []
    async with catalog.begin() as session:
        report = await import_catalog(session, specs)
    assert (report.created, report.updated, report.packages, report.notes) == (0, 6, 9, [])
    async with catalog() as session:
        assert await session.scalar(select(func.count()).select_from(Service)) == 6
        after = {p.id: (p.service_id, p.position) for p in await session.scalars(select(Package))}
        assert after == before  # same rows: orders keep pointing at the right package
        prices = set(await session.scalars(select(Package.price_fen)))
        assert 290000 in prices and 270000 not in prices
    assert await find(catalog, keywords=("新标签",)) == ["s4"]  # search_text recomputed


async def test_dropped_package_is_deleted_unless_an_order_refers_to_it(
    catalog: async_sessionmaker[AsyncSession],
) -> None:
    async with catalog.begin() as session:
        s1 = await session.scalar(select(Service).where(Service.code == "s1"))
        assert s1 is not None
        ordered = await session.scalar(
            select(Package).where(Package.service_id == s1.id, Package.position == 2)
        )
        assert ordered is not None
        order = Order(number="20261122-0001", account="acc", openid="o1", status="待支付", total_fen=270000)
        session.add(order)
        await session.flush()
        session.add(
            OrderItem(
                order_id=order.id,
                package_id=ordered.id,
                service_title=s1.title,
                platform=s1.platform,
                package_name=ordered.name,
                unit_price_fen=270000,
                quantity=1,
            )
        )
    # s1 keeps only its first package; s2 keeps only its first package (nobody ordered the second).
    trimmed = CATALOG.replace("      - {name: 3 篇图文笔记, price: 2700}\n", "").replace(
        "      - {name: 1 条视频, price: 1500, stock: 1}\n", ""
    )
    specs, errors = parse_catalog(trimmed, "yaml")
    assert errors == []
    async with catalog.begin() as session:
        report = await import_catalog(session, specs)
    assert len(report.notes) == 2
    assert any("s1 package 2" in n and "orders refer to it" in n and "stock 0" in n for n in report.notes)
    assert any("s2 package 2" in n and "deleted" in n for n in report.notes)
    async with catalog() as session:
        kept = await session.get(Package, ordered.id)
        assert kept is not None and kept.stock == 0
        s2_packages = await session.scalar(
            select(func.count()).select_from(Package).join(Service).where(Service.code == "s2")
        )
        assert s2_packages == 1


# --- searching (each backend) ----------------------------------------------------------------------


async def test_services_matching_every_word_come_first(catalog: async_sessionmaker[AsyncSession]) -> None:
    ranked = await find(catalog, keywords=("咖啡", "探店"))
    assert ranked[0] == "s1" and sorted(ranked[1:]) == ["s2", "s3"]  # partial matches follow
    assert sorted(await find(catalog, keywords=("咖啡",))) == ["s1", "s3"]
    assert sorted(await find(catalog, keywords=("探店",))) == ["s1", "s2"]
    assert sorted(await find(catalog, keywords=("咖啡", "不存在"))) == ["s1", "s3"]  # the best there is
    assert await find(catalog, keywords=("不存在",)) == []
    assert await find(catalog, keywords=(" ", "")) == ["s1", "s2", "s4", "s3"]  # s3 is sold out


async def test_keywords_match_platform_category_tags_and_aliases(
    catalog: async_sessionmaker[AsyncSession],
) -> None:
    assert sorted(await find(catalog, keywords=("小红书",))) == ["s1", "s2"]
    assert sorted(await find(catalog, keywords=("ＸＨＳ",))) == ["s1", "s2"]  # alias, any case or width
    assert await find(catalog, keywords=("数据分析",)) == ["s4"]
    assert await find(catalog, keywords=("美食",)) == ["s2"]
    assert await find(catalog, keywords=("直播",)) == ["s3"]  # a form and a package name
    assert await find(catalog, keywords=("%",)) == []  # punctuation is no word
    assert await find(catalog, keywords=("_",)) == []


async def test_platform_and_category_filters(catalog: async_sessionmaker[AsyncSession]) -> None:
    assert await find(catalog, platform="抖音") == ["s3"]
    assert await find(catalog, platform="小红书", keywords=("咖啡",)) == ["s1"]
    assert await find(catalog, category="数据分析") == ["s4"]
    assert await find(catalog, category="课程") == []


async def test_price_range_uses_the_cheapest_package_in_range(
    catalog: async_sessionmaker[AsyncSession],
) -> None:
    assert await find(catalog, price_max_fen=100000) == ["s1", "s2"]
    assert await find(catalog, price_min_fen=200000) == ["s1", "s4", "s3"]
    assert await find(catalog, price_min_fen=90000, price_max_fen=120000) == ["s1"]
    async with catalog() as session:
        cards, _ = await search(session, Query(price_min_fen=200000, sort="price"))
    # s3 (sold out) comes last whatever the order
    assert [(c.code, c.min_price_fen) for c in cards] == [("s1", 270000), ("s4", 500000), ("s3", 250000)]


async def test_followers_engagement_and_form_filters(catalog: async_sessionmaker[AsyncSession]) -> None:
    assert await find(catalog, followers_min=40000) == ["s1", "s3"]
    assert await find(catalog, followers_max=50000) == ["s2"]
    assert await find(catalog, followers_min=40000, followers_max=100000) == ["s1"]
    assert await find(catalog, engagement_min_bp=700) == ["s1", "s2"]
    assert await find(catalog, engagement_min_bp=810) == ["s1"]
    assert await find(catalog, form="图文") == ["s1", "s2"]
    assert await find(catalog, form="直播") == ["s3"]
    assert await find(catalog, form="报告") == ["s4"]
    assert await find(catalog, form="音频") == []


@pytest.mark.parametrize(
    ("sort", "codes"),
    [
        ("engagement", ["s1", "s2", "s4", "s3"]),
        ("followers", ["s1", "s2", "s4", "s3"]),
        ("exposure", ["s1", "s2", "s4", "s3"]),
        ("price", ["s2", "s1", "s4", "s3"]),
        ("price_desc", ["s4", "s1", "s2", "s3"]),
        ("relevance", ["s1", "s2", "s4", "s3"]),  # without words: the default order (engagement)
    ],
)
async def test_sort_orders_put_missing_metrics_and_sold_out_last(
    catalog: async_sessionmaker[AsyncSession], sort: str, codes: list[str]
) -> None:
    assert await find(catalog, sort=sort) == codes


async def test_ties_are_broken_by_id(sessions: async_sessionmaker[AsyncSession]) -> None:
    twins = "\n".join(
        f"- {{code: t{i}, title: 同款{i}, platform: 抖音, category: 课程, engagement: 5%,"
        f" packages: [{{name: p, price: 10}}]}}"
        for i in range(6)
    )
    specs, _ = parse_catalog(twins, "yaml")
    async with sessions.begin() as session:
        await import_catalog(session, specs)
    for sort in ("engagement", "price", "price_desc", "followers"):
        assert await find(sessions, sort=sort) == [f"t{i}" for i in range(6)]


async def test_paging_and_total(catalog: async_sessionmaker[AsyncSession]) -> None:
    async with catalog() as session:
        pages = [await search(session, Query(), page=n, per_page=3) for n in (1, 2, 3)]
    assert [([c.code for c in cards], total) for cards, total in pages] == [
        (["s1", "s2", "s4"], 4),
        (["s3"], 4),
        ([], 4),
    ]


async def test_cards_show_min_price_and_best_availability(catalog: async_sessionmaker[AsyncSession]) -> None:
    async with catalog() as session:
        cards, _ = await search(session, Query())
    by_code = {c.code: c for c in cards}
    assert by_code["s1"].availability == Availability.AVAILABLE
    assert by_code["s2"].availability == Availability.LOW
    assert by_code["s3"].availability == Availability.SOLD_OUT
    s1 = by_code["s1"]
    assert (s1.min_price_fen, s1.followers, s1.engagement_bp, s1.tags, s1.forms) == (
        100000,
        52000,
        810,
        ("咖啡", "探店"),
        ("图文", "视频"),
    )


async def test_unlisted_and_draft_services_are_hidden(catalog: async_sessionmaker[AsyncSession]) -> None:
    async with catalog() as session:
        ids = {s.code: s.id for s in await session.scalars(select(Service))}
        assert await get_detail(session, ids["s5"]) is None
        assert await get_detail(session, ids["s6"]) is None
        hidden = await get_detail(session, ids["s5"], include_unlisted=True)
        assert hidden is not None and hidden.card.title == "下架的咖啡探店"
        package_id = hidden.packages[0].id
        assert await get_package(session, package_id) is None
        assert await get_detail(session, 10_000) is None
        assert await get_package(session, 10_000) is None
    assert await find(catalog, keywords=("下架",)) == []


async def test_detail_and_package(catalog: async_sessionmaker[AsyncSession]) -> None:
    async with catalog() as session:
        s2 = await session.scalar(select(Service.id).where(Service.code == "s2"))
        assert s2 is not None
        detail = await get_detail(session, s2)
        assert detail is not None
        assert detail.card.availability == Availability.LOW and detail.card.min_price_fen == 80000
        assert [(p.position, p.price_fen, p.stock, p.availability) for p in detail.packages] == [
            (1, 80000, 2, Availability.LOW),
            (2, 150000, 1, Availability.LOW),
        ]
        found = await get_package(session, detail.packages[1].id)
        assert found is not None
        card, package = found
        assert card == detail.card and package == detail.packages[1]
        s1 = await session.scalar(select(Service.id).where(Service.code == "s1"))
        assert s1 is not None
        detail = await get_detail(session, s1)
        assert detail is not None
        assert detail.audience == {"gender": {"女": 82, "男": 18}}
        assert detail.packages[0].requirements == ("brand", "link")


async def test_facets_count_listed_services(catalog: async_sessionmaker[AsyncSession]) -> None:
    async with catalog() as session:
        assert await facets(session) == {
            "platform": {"小红书": 2, "抖音": 1, "全平台": 1},
            "category": {"达人营销": 3, "数据分析": 1},
        }


# --- the demo catalog ------------------------------------------------------------------------------


async def test_demo_catalog_loads_once_and_covers_everything(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        added = await load_demo_catalog(session)
    async with sessions.begin() as session:
        assert await load_demo_catalog(session) == 0  # not twice
    assert added >= 40
    async with sessions() as session:
        listed = await session.scalar(select(func.count()).where(Service.status == "listed"))
        assert listed is not None and listed >= 40
        counts = await facets(session)
        assert set(counts["platform"]) >= set(PLATFORMS) - {"全平台"}
        assert set(counts["category"]) == set(CATEGORIES)
        cards, total = await search(session, Query(keywords=("咖啡", "探店")))
        assert total >= 3
        assert {c.availability for c in (await search(session, Query(), per_page=100))[0]} == set(
            Availability
        )
        assert all(c.engagement_bp is None or 200 <= c.engagement_bp <= 1200 for c in cards)


# --- the command line ------------------------------------------------------------------------------


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "CHATORDER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def count_services(tmp_path: Path) -> int:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    try:
        async with make_sessionmaker(engine)() as session:
            return await session.scalar(select(func.count()).select_from(Service)) or 0
    finally:
        await engine.dispose()


async def test_cli_imports_a_good_file_and_refuses_a_bad_one_entirely(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(CATALOG.replace("price: 5000, requirements", "price: 50.001, requirements"), "utf-8")
    result = run_cli(tmp_path, "catalog", "import", str(bad))
    assert result.returncode == 1
    line = next(n for n, text in enumerate(CATALOG.splitlines(), start=1) if "price: 5000, req" in text)
    assert f"{bad}:{line}: service s4 package 1: price must be a positive amount" in result.stderr
    assert await count_services(tmp_path) == 0  # the five good services were not imported either

    good = tmp_path / "good.yaml"
    good.write_text(CATALOG, "utf-8")
    result = run_cli(tmp_path, "catalog", "import", str(good))
    assert result.returncode == 0, result.stderr
    assert "imported: 6 new, 0 updated service(s)" in result.stdout
    result = run_cli(tmp_path, "catalog", "import", str(good))
    assert "imported: 0 new, 6 updated service(s)" in result.stdout
    assert await count_services(tmp_path) == 6


async def test_cli_reads_csv_and_rejects_unknown_formats(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("code,title,platform,category,package_name,price\nc1,t,抖音,课程,p,-1\n", "utf-8")
    result = run_cli(tmp_path, "catalog", "import", str(bad))
    assert result.returncode == 1 and f"{bad}:2: " in result.stderr
    good = tmp_path / "good.csv"
    good.write_text("code,title,platform,category,package_name,price\nc1,t,抖音,课程,p,9.9\n", "utf-8")
    result = run_cli(tmp_path, "catalog", "import", str(good))
    assert result.returncode == 0 and "imported: 1 new" in result.stdout
    other = tmp_path / "catalog.json"
    other.write_text("[]", "utf-8")
    assert run_cli(tmp_path, "catalog", "import", str(other)).returncode == 2
