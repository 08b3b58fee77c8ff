"""Catalog search at scale: a generated catalog of 10,000 listed services (realistic titles, tags,
platforms, prose, 1–3 packages each), searched in process through `store.catalog.find` with the
app's `SearchIndex`, as a customer's 搜 does.

Measures: what the server has before any search (numpy/bm25s not loaded), the first search (the
index is built then: time and RSS added), per-search latency over a varied mix of queries with
filters and sorts (median, p99; each search includes the version check against the database),
and what a catalog change costs the next search (a stock change: packages re-read; an import:
text index rebuilt).

.venv/bin/python -m bench.search                      # 10,000 services, 2,000 searches
.venv/bin/python -m bench.search --services 2000 --searches 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.catalog import CATEGORIES, FORMS, PLATFORMS, Query, find
from store.db import make_engine, make_sessionmaker
from store.migrate import upgrade
from store.models import Package, Service
from store.search import _VERSIONS, SearchIndex

NICHES: dict[str, tuple[str, ...]] = {
    "美食": ("探店", "本地生活", "家常菜", "烘焙"),
    "咖啡": ("探店", "手冲", "咖啡教学", "城市漫游"),
    "美妆": ("彩妆", "护肤", "成分", "测评"),
    "护肤": ("成分", "敏感肌", "测评", "抗老"),
    "穿搭": ("通勤", "时尚", "平价", "街拍"),
    "母婴": ("育儿", "辅食", "早教", "亲子"),
    "数码": ("科技", "测评", "手机", "开箱"),
    "汽车": ("新能源", "试驾", "用车", "改装"),
    "旅行": ("攻略", "酒店", "自驾", "露营"),
    "健身": ("减脂", "瑜伽", "跑步", "增肌"),
    "宠物": ("猫", "狗", "萌宠", "宠物用品"),
    "家居": ("装修", "收纳", "好物", "软装"),
    "游戏": ("手游", "电竞", "主机", "攻略"),
    "理财": ("基金", "保险", "存钱", "财经"),
    "读书": ("书单", "知识", "成长", "学习"),
    "摄影": ("修图", "器材", "人像", "风光"),
}
NAMES = ("小鹿", "阿杰", "桃子", "老王", "Coco", "豆豆", "大白", "七七", "Lily", "阿龙", "米粒", "橙子")
SHAPES = (
    "{name}爱{niche}",
    "{name}的{niche}日记",
    "{niche}博主{name}",
    "{name}{niche}研究所",
    "{city}{niche}{tag}",
)
CITIES = ("上海", "北京", "成都", "杭州", "广州", "深圳", "重庆", "长沙")
SENTENCES = (
    "粉丝以一二线城市年轻女性为主，{niche}内容互动稳定。",
    "擅长{tag}类选题，单篇笔记平均曝光数万。",
    "合作过多个{niche}品牌，交付准时，支持修改两次。",
    "账号定位{niche}与{tag}，内容真实不浮夸。",
    "可提供数据复盘与投放建议，适合新品冷启动。",
    "近三个月爆文率较高，评论区活跃。",
)
PACKAGE_NAMES = ("1 篇图文笔记", "1 条视频", "直播 1 场", "3 篇图文笔记", "1 期定制视频", "年度合作")

QUERIES: list[dict[str, Any]] = [
    {"keywords": ("小红书", "美食")},
    {"keywords": ("有没有抖音的探店达人",)},
    {"keywords": ("美妆",)},
    {"tags": ("美妆",)},
    {"tags": ("护肤", "成分")},
    {"keywords": ("咖啡", "探店"), "platform": "小红书"},
    {"keywords": ("咖啡",), "price_max_fen": 300000},
    {"keywords": ("健身", "减脂"), "followers_min": 50000},
    {"keywords": ("数码", "测评"), "platform": "B站", "sort": "followers"},
    {"keywords": ("母婴",), "form": "视频"},
    {"keywords": ("旅行",), "engagement_min_bp": 600},
    {"keywords": ("宠物", "猫"), "sort": "price"},
    {"keywords": ("汽车", "新能源"), "price_min_fen": 500000, "price_max_fen": 2000000},
    {"keywords": ("穿搭",), "platform": "抖音", "followers_min": 100000, "followers_max": 1000000},
    {"keywords": ("上海", "探店", "美食")},
    {"keywords": ("理财",), "sort": "engagement"},
    {"keywords": ("书单",), "category": "达人营销"},
    {"keywords": ("摄影",), "tags": ("人像",)},
    {"keywords": ("量子计算",)},  # nothing: explained, with alternatives
    {"keywords": ("美妆",), "platform": "知识服务", "price_max_fen": 10000},  # nothing: blamed
    {"platform": "小红书"},
    {"category": "课程", "sort": "price"},
    {"platform": "抖音", "price_max_fen": 100000},
    {"form": "直播", "sort": "exposure"},
    {},
]


def generate(n: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    rng = random.Random(seed)
    niches = list(NICHES)
    for i in range(n):
        niche = rng.choice(niches)
        tags = [niche, *rng.sample(NICHES[niche], 2)]
        tag = tags[1]
        title = rng.choice(SHAPES).format(
            name=rng.choice(NAMES), niche=niche, tag=tag, city=rng.choice(CITIES)
        )
        platform_ = rng.choice(PLATFORMS[:6]) if rng.random() < 0.9 else rng.choice(PLATFORMS[6:])
        category = CATEGORIES[0] if rng.random() < 0.6 else rng.choice(CATEGORIES)
        prose = "".join(s.format(niche=niche, tag=rng.choice(tags)) for s in rng.sample(SENTENCES, 3))
        followers = int(10 ** rng.uniform(3.5, 6.5)) if category == "达人营销" else None
        service = {
            "code": f"gen-{i:05d}",
            "title": f"{title}{i % 97}",
            "platform": platform_,
            "category": category,
            "forms": rng.sample(FORMS[:3], rng.randint(1, 2)),
            "tags": tags,
            "summary": f"{niche}{tag}内容创作者，{rng.choice(CITIES)}",
            "description": prose,
            "followers": followers,
            "engagement_bp": rng.randint(150, 1200) if followers else None,
            "exposure": followers * rng.randint(1, 4) // 2 if followers else None,
            "status": "listed",
            "search_text": "",
        }
        packages = [
            {
                "position": p + 1,
                "name": rng.choice(PACKAGE_NAMES),
                "price_fen": rng.randint(3, 300) * 10_000,
                "stock": _stock(rng),
            }
            for p in range(rng.randint(1, 3))
        ]
        yield service, packages


def _stock(rng: random.Random) -> int | None:
    """Most offers are not limited; of those that are, a few run low or out."""
    roll = rng.random()
    if roll < 0.8:
        return None
    return rng.randint(4, 50) if roll < 0.95 else rng.randint(0, 3)


async def fill(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    rows = list(generate(n))
    async with sessions.begin() as session:
        ids = (await session.execute(insert(Service).returning(Service.id), [s for s, _ in rows])).scalars()
        packages = [p | {"service_id": sid} for sid, (_, ps) in zip(ids, rows, strict=True) for p in ps]
        await session.execute(insert(Package), packages)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def timed(sessions: async_sessionmaker[AsyncSession], index: SearchIndex, query: Query) -> float:
    """Wall time of one search as a handler runs it: a session, the version check, the ranking."""
    start = time.perf_counter()
    async with sessions() as session:
        await find(session, query, page=1, per_page=5, index=index)
    return (time.perf_counter() - start) * 1000


def in_memory(snapshot: Any, query: Query) -> float:
    """CPU time of the ranking alone (no database): masks, order, one page, any relaxations."""
    start = time.process_time()
    masks = snapshot.conditions(query)
    hits = snapshot.find(query, masks)
    if len(hits):
        snapshot.cards(hits, 0, 5)
    else:
        for name in masks:
            snapshot.find(query, masks, without=(name,))
    return (time.process_time() - start) * 1000


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'search.db'}"
        engine = make_engine(url)
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        started = time.perf_counter()
        await fill(sessions, args.services)
        fill_s = time.perf_counter() - started

        index = SearchIndex()  # what the app makes at start-up
        loaded_before = sorted(m for m in ("numpy", "bm25s") if m in sys.modules)
        rss_before = rss_mb()
        first_cpu = time.process_time()
        first_ms = await timed(sessions, index, Query(keywords=("美食",)))
        first_cpu = time.process_time() - first_cpu
        rss_after = rss_mb()

        queries = [Query(**q) for q in QUERIES]
        latencies: dict[int, list[float]] = {i: [] for i in range(len(queries))}
        cpu_start = time.process_time()
        for n in range(args.searches):
            i = n % len(queries)
            latencies[i].append(await timed(sessions, index, queries[i]))
        cpu_per_search = (time.process_time() - cpu_start) * 1000 / args.searches
        flat = [v for vs in latencies.values() for v in vs]
        async with sessions() as session:
            snapshot = await index.current(session)
        ranking = [in_memory(snapshot, queries[n % len(queries)]) for n in range(args.searches)]
        checks = []
        async with sessions() as session:
            for _ in range(200):
                start = time.perf_counter()
                await session.execute(_VERSIONS)
                checks.append((time.perf_counter() - start) * 1000)

        async with sessions.begin() as session:  # an order: one package's stock changes
            await session.execute(update(Package).where(Package.id == 1).values(stock=0))
        stock_ms = await timed(sessions, index, queries[0])
        async with sessions.begin() as session:  # an import: one service's title changes
            await session.execute(update(Service).where(Service.id == 1).values(title="新的标题"))
        rebuild_ms = await timed(sessions, index, queries[0])
        await engine.dispose()

    return {
        "services": args.services,
        "database": url.split(":", 1)[0],
        "fill_s": round(fill_s, 1),
        "loaded_before_first_search": loaded_before,
        "rss_before_mb": round(rss_before, 1),
        "first_search_ms": round(first_ms, 1),
        "first_search_cpu_ms": round(first_cpu * 1000, 1),
        "rss_added_mb": round(rss_after - rss_before, 1),
        "searches": len(flat),
        "median_ms": round(statistics.median(flat), 2),
        "p99_ms": round(percentile(flat, 99), 2),
        "max_ms": round(max(flat), 2),
        "cpu_per_search_ms": round(cpu_per_search, 2),
        "version_check_median_ms": round(statistics.median(checks), 2),
        "ranking_only_cpu_median_ms": round(statistics.median(ranking), 2),
        "ranking_only_cpu_p99_ms": round(percentile(ranking, 99), 2),
        "per_query_median_p99_ms": {
            json.dumps(QUERIES[i], ensure_ascii=False): (
                round(statistics.median(v), 2),
                round(percentile(v, 99), 2),
            )
            for i, v in latencies.items()
        },
        "after_stock_change_ms": round(stock_ms, 1),
        "after_import_ms": round(rebuild_ms, 1),
        "text_builds": index.text_builds,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=2_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
