"""Delivery results over real HTTP: staff record figures in work chat, the customer is told when the
final ones are in, gets the report (text + picture) and an Excel link whose workbook matches the database."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from openpyxl import Workbook, load_workbook
from PIL import Image
from sqlalchemy import func, select, update

from bot import keys
from flows import pushes, ratings, texts
from flows import texts_staff as ts
from store import catalog_import, recommend, results
from store.models import DeliveryStat, FunnelEvent, Order, OrderItem, OutboxMessage, Package, Service, utcnow
from store.orders import BEIJING
from store.results import METRICS, BadFigures, parse_figures, parse_reading
from tests.conftest import eventually
from tests.test_paying import pay_sim
from tests.test_work_chat import Office, office
from tests.wechat import ACCOUNT

__all__ = ["office", "pay_sim"]  # fixtures used here

MORE = "\n".join(
    f"- {{code: more-{i}, title: 更多服务{i}, platform: 抖音, category: 达人营销, tags: [运动],"
    f" packages: [{{name: 1 条视频, price: 500, requirements: [brand]}}]}}"
    for i in range(4)
)
FIRST = "曝光 1.2万 阅读 8000 点赞 530 评论 41 收藏 88 转发 12 点击 300 转化 12"


def test_figures_understand_units_and_refuse_typos() -> None:
    assert parse_figures("曝光 1.2万 阅读 8,000 点赞：530 收藏=3k 转发12") == {
        "exposure": 12000,
        "reads": 8000,
        "likes": 530,
        "favorites": 3000,
        "shares": 12,
    }
    assert parse_figures("播放 2.5w 分享 1.5K") == {"reads": 25000, "shares": 1500}
    reading = parse_reading("第２条 最终 曝光 3万")
    assert (reading.piece, reading.final, reading.figures) == (2, True, {"exposure": 30000})
    for bad in ("曝光 1.2万 阅渎 8000", "曝光", "曝光 1.23456万", "点赞 5 点赞 6", "曝光 12 abc", ""):
        with pytest.raises(BadFigures):
            parse_figures(bad)


async def _stats(office: Office, order_id: int) -> list[DeliveryStat]:
    async with office.sessionmaker() as s:
        return list(await s.scalars(select(DeliveryStat).where(DeliveryStat.order_id == order_id)))


def _expected_totals(rows: list[DeliveryStat]) -> dict[str, int]:
    """Computed here, independently: per piece the latest reading of each metric, summed over pieces."""
    latest: dict[tuple[int, str], tuple[object, int]] = {}
    for r in rows:
        for m in METRICS:
            value = getattr(r, m)
            if value is not None and ((r.piece, m) not in latest or latest[(r.piece, m)][0] <= (r.at, r.id)):  # type: ignore[operator]
                latest[(r.piece, m)] = ((r.at, r.id), value)
    return {m: sum(v for (_, mm), (_, v) in latest.items() if mm == m) for m in METRICS}


def _figure(text: str, label: str) -> int:
    found = re.search(rf"{label} ([\d,]+)", text)
    assert found, (label, text)
    return int(found[1].replace(",", ""))


async def _in_progress_with_two_pieces(office: Office) -> Order:
    order = await office.paid_order()
    n = order.number
    await office.say("lishen", f"通过 {n}")
    await office.say("wangfang", f"开始 {n}")
    await office.say("wangfang", f"发布 {n} https://www.xiaohongshu.com/explore/1 探店笔记")
    await office.say("wangfang", f"发布 {n} https://www.xiaohongshu.com/explore/2 种草笔记")
    return order


async def test_staff_record_figures_and_the_customer_gets_report_and_export(office: Office) -> None:
    order = await _in_progress_with_two_pieces(office)
    n = order.number
    # Bad input gets the usage line (or the reason) and records nothing.
    usage = ts.USAGE_LINE.format(usage=ts.USAGE["数据"])
    assert await office.say("wangfang", f"数据 {n}") == usage
    typo = await office.say("wangfang", f"数据 {n} 第1条 曝光 1.2万 阅渎 8000")
    assert typo.startswith("没看懂「阅渎 8000」") and ts.USAGE["数据"] in typo
    which = await office.say("wangfang", f"数据 {n} {FIRST}")
    assert which == ts.DOMAIN_ERRORS["which_piece"].format(number=n, count=2)
    assert "没有第3条" in await office.say("wangfang", f"数据 {n} 第3条 曝光 100")
    assert await _stats(office, order.id) == []

    recorded = await office.say("wangfang", f"数据 {n} 第1条 {FIRST}")
    assert recorded.startswith(f"📊 {n} 第1条数据已记下（第 1 次统计）") and "曝光 12,000" in recorded
    # Later readings are appended, never written over: the first one stays as it was.
    await office.say(
        "wangfang", f"数据 {n} 第1条 最终 曝光 2.5万 阅读 1.6万 点赞 900 评论 60 收藏 150 转发 30"
    )
    partial = await office.say("wangfang", f"数据 {n} 第2条 曝光 3k 点赞 40 点击 25")
    assert "还有 1 条没有最终数据：第2条" in partial
    ready = [m for m in office.customer.sim.sent if "最终数据出来了" in str(m.payload)]
    assert ready == []  # not before every piece has its final reading
    done = await office.say(
        "wangfang", f"数据 {n} 第2条 最终 曝光 4000 阅读 2100 点赞 66 评论 5 收藏 9 转发 2"
    )
    assert ts.RESULTS_NEXT_DONE.format(number=n) in done
    rows = await _stats(office, order.id)
    assert len(rows) == 4 and rows[0].exposure == 12000 and rows[0].clicks == 300
    expected = _expected_totals(rows)
    assert expected["exposure"] == 25000 + 4000 and expected["clicks"] == 300 + 25  # latest given, per piece
    told = await eventually(
        lambda: [m for m in office.customer.sim.sent if "最终数据出来了" in str(m.payload)]
    )
    assert len(told) == 1 and f"报告 {n}" in told[0].payload["content"]

    # The customer's report: every figure of the text is the database's.
    before = len(office.customer.sim.sent)
    summary = (await office.customer.chat.say(office.customer.openid, f"报告{n}")).text or ""
    # The figures at once, the chart after them by API.
    (picture,) = await eventually(
        lambda: [m for m in office.customer.sim.sent[before:] if m.openid == office.customer.openid]
    )
    assert summary.startswith(f"📊 订单 {n} 数据报告（最终数据")
    for metric, label in results.LABELS.items():
        assert _figure(summary, label) == expected[metric], label
    engagement = sum(expected[m] for m in results.ENGAGEMENT)
    assert _figure(summary, "互动") == engagement
    assert f"互动率 {engagement / expected['exposure'] * 100:.2f}%" in summary
    cpm = round(order.total_fen * 1000 / expected["exposure"])
    assert f"千次曝光成本 ¥{cpm // 100}.{cpm % 100:02d}" in summary
    cpe = round(order.total_fen / engagement)
    assert f"单次互动成本 ¥{cpe // 100}.{cpe % 100:02d}" in summary
    assert picture.kind == "image"
    _, png = office.customer.sim.media[picture.payload["media_id"]]
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width == 750 and image.height > 1000
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) >= 20
    inked = sum(n for n, c in colours if min(c) < 200)  # text, tiles' figures and lines, not a blank page
    assert inked > 0.02 * image.width * image.height

    # The order detail points at the report.
    detail = await office.customer.say(f"订单 {n}")
    assert f"报告 {n}" in detail

    # Export: a signed link; the workbook opens and its totals are the database's.
    answer = await office.customer.say(f"导出 {n}")
    url = re.search(r"https?://\S+", answer)
    assert url and answer.startswith("📥")
    book = await _download(office, url[0])
    summary_sheet = book["汇总"]
    head = [c.value for c in summary_sheet[1]]
    row = [c.value for c in summary_sheet[2]]
    assert row[0] == n
    for metric, label in results.LABELS.items():
        assert row[head.index(label)] == expected[metric]
    assert row[head.index("互动")] == engagement
    assert row[head.index("实付")] == order.total_fen / 100
    assert summary_sheet.cell(row=2, column=head.index("互动率") + 1).number_format == "0.00%"
    readings = book[n]
    assert sum(1 for r in readings.iter_rows(min_row=4) if r[0].value) == 4  # every reading, in time order
    everything = await office.customer.say("导出全部")
    assert "全部订单" in everything and "（1 个订单）" in everything
    # A forged or altered link opens nothing.
    path = urlsplit(url[0])
    forged = await office.client.get(f"{path.path}?{_tampered(path.query)}")
    assert forged.status == 403
    other = await office.client.get(path.path.replace(f"/o{order.id}.", "/o999.") + "?" + path.query)
    assert other.status == 403


def _tampered(query: str) -> str:
    """The signature's last character changed."""
    return query[:-1] + ("0" if query[-1] != "0" else "1")


async def _download(office: Office, url: str):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    response = await office.client.get(f"{parts.path}?{parts.query}")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    return load_workbook(io.BytesIO(await response.read()))


async def test_no_report_before_figures_and_not_for_someone_elses_order(office: Office) -> None:
    order = await _in_progress_with_two_pieces(office)
    assert await office.customer.say(f"报告 {order.number}") == texts.REPORT_NO_DATA.format(
        number=order.number
    )
    assert await office.customer.say("报告") == texts.ORDER_USAGE.format(command="报告")
    stranger = await office.customer.chat.say("o_someone_else", f"报告 {order.number}")
    assert stranger.text == texts.ORDER_NOT_FOUND.format(number=order.number)
    refused = await office.say("lishen", f"数据 {order.number} 第1条 曝光 100")
    assert refused.startswith("「数据」需要运营")


async def test_finance_exports_the_month(office: Office) -> None:
    order = await office.paid_order()
    month = f"{order.created_at:%Y-%m}"
    assert await office.say("boss", "导出 订单 2026-13") == ts.USAGE_LINE.format(usage=ts.USAGE["导出"])
    answer = await office.say("boss", f"导出 订单 {month}")
    url = re.search(r"https?://\S+", answer)
    assert url, answer
    book = await _download(office, url[0])
    assert book.sheetnames == ["订单", "付款", "退款", "佣金"]
    numbers = [r[0].value for r in book["订单"].iter_rows(min_row=2)]
    assert numbers == [order.number]
    paid = [r[4].value for r in book["付款"].iter_rows(min_row=2)]
    assert paid == [order.total_fen / 100]
    async with office.sessionmaker() as s:
        assert await s.scalar(select(func.count(DeliveryStat.id))) == 0


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"CHATORDER_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_results_import_from_csv_and_xlsx_all_or_nothing(office: Office, tmp_path: Path) -> None:
    order = await _in_progress_with_two_pieces(office)
    n = order.number
    url = office.client.app[keys.SETTINGS].database_url
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "单号,第几条,时间,最终,曝光,点赞,评论\n"
        f"{n},1,2026-12-01 20:00,,1.2万,530,41\n"  # fine on its own
        f"{n},,2026-12-01 20:00,,100,1,1\n"  # two pieces: which one?
        f"{n},1,2026-12-01 20:00,也许,100,1,1\n"
        f"{n},2,昨天,,100,1,1\n"
        f"{n},2,2026-12-01 20:00,,很多,1,1\n"
        "20990101-0001,1,,,100,1,1\n",
        encoding="utf-8",
    )
    refused = await asyncio.to_thread(_cli, url, "results", "import", str(bad))
    assert refused.returncode == 1
    lines = refused.stderr.splitlines()
    assert [int(line.split(":")[1]) for line in lines[:-1]] == [3, 4, 5, 6, 7]  # each bad row, in order
    assert all(line.startswith(f"{bad}:") for line in lines[:-1]) and "nothing was imported" in lines[-1]
    assert await _stats(office, order.id) == []  # all or nothing

    good = tmp_path / "good.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["单号", "第几条", "时间", "最终", "曝光", "阅读", "点赞", "评论", "收藏", "转发"])
    sheet.append([n, 1, "2026-12-01 20:00", "", "1.2万", 8000, 530, 41, 88, 12])
    sheet.append([n, 1, "2026-12-03 20:00", "是", 25000, "1.6万", 900, 60, 150, 30])
    sheet.append([n, 2, "2026-12-03 20:00", "是", "3k", 2000, 40, 5, 9, 2])
    book.save(good)
    imported = await asyncio.to_thread(_cli, url, "results", "import", str(good))
    assert imported.returncode == 0, imported.stderr
    assert "imported: 3 reading(s) for 1 order(s)" in imported.stdout and n in imported.stdout
    rows = await _stats(office, order.id)
    assert [(r.piece, r.exposure, r.final) for r in rows] == [
        (1, 12000, False),
        (1, 25000, True),
        (2, 3000, True),
    ]
    assert all(r.recorded_by == "import:good.xlsx" for r in rows)
    told = await eventually(
        lambda: [m for m in office.customer.sim.sent if "最终数据出来了" in str(m.payload)]
    )
    assert "曝光 28,000" in told[0].payload["content"]


async def test_completion_brings_the_report_and_one_ask_for_a_review(office: Office) -> None:
    order = await _in_progress_with_two_pieces(office)
    n = order.number
    await office.say("wangfang", f"数据 {n} 第1条 曝光 1.2万 点赞 530")
    assert (await office.say("wangfang", f"完成 {n}")).startswith(f"🎉 {n}")

    def mine() -> list[str]:
        sent = office.customer.sim.sent
        return [m.payload.get("content", "") for m in sent if m.openid == office.customer.openid]

    await eventually(lambda: any("打个分" in c for c in mine()))
    assert sum("数据报告（截至" in c and "曝光 12,000" in c for c in mine()) == 1
    assert sum("打个分" in c for c in mine()) == 1
    await eventually(lambda: [c for c in mine() if "常被一起选的" in c])  # 「猜你喜欢」 after completion
    assert await office.customer.say("评分 很好") == texts.REVIEW_USAGE
    assert await office.customer.say("评价一下这个达人") != texts.REVIEW_USAGE  # not a rating: other routes
    assert await office.customer.say("评分 6") == texts.REVIEW_USAGE
    thanks = await office.customer.say("评分 2 达人回复太慢了")
    assert thanks.startswith("收到你的评价 ★★☆☆☆") and texts.REVIEW_SORRY in thanks
    alert = await eventually(lambda: [p for p in office.robot if "差评" in p])
    assert n in alert[0] and "达人回复太慢了" in alert[0] and "王芳" in alert[0]
    await eventually(lambda: [t for t in office.texts_to("wangfang") if "差评" in t and n in t])
    assert await office.customer.say("评分 5") == texts.REVIEW_NOTHING  # asked once, answered once
    again = await office.customer.say(f"评分 {n} 5 其实还行")
    assert again == texts.DOMAIN_ERRORS["already_reviewed"].format(number=n)
    # The service's detail shows the average, the count and the latest comments.
    await office.customer.say("搜 课程")
    detail = await office.customer.say("1")
    assert "评价：⭐ 2.0 分（1 条）" in detail and "「达人回复太慢了」" in detail


def test_scores_are_read_in_the_ways_people_write_them() -> None:
    assert ratings.parse("5 很满意") == (5, "很满意")
    assert ratings.parse("五星！服务好") == (5, "服务好")
    assert ratings.parse("4分，还行") == (4, "还行")
    assert ratings.parse("★★★") == (3, "")
    for bad in ("", "很好", "6", "10 分", "0", "4.5", "一下这个达人", "五个人"):
        assert ratings.parse(bad) is None, bad


async def _history(office: Office, openid: str, codes: list[str], status: str = "已完成") -> None:
    """A past paid order of someone else, straight into the database (the purchase history)."""
    async with office.sessionmaker.begin() as s:
        services = {sv.code: sv for sv in await s.scalars(select(Service))}
        order = Order(
            number=f"20260101-{abs(hash((openid, *codes))) % 10000:04d}",
            account=ACCOUNT,
            openid=openid,
            status=status,
            total_fen=100,
            requirements={},
            deliverables=[],
        )
        s.add(order)
        await s.flush()
        for code in codes:
            package = await s.scalar(select(Package).where(Package.service_id == services[code].id))
            assert package is not None
            s.add(
                OrderItem(
                    order_id=order.id,
                    package_id=package.id,
                    service_title=services[code].title,
                    platform=services[code].platform,
                    package_name=package.name,
                    unit_price_fen=package.price_fen,
                    quantity=1,
                )
            )


async def test_guess_you_like_from_what_others_bought_never_sold_out(office: Office) -> None:
    await office.paid_order()  # the customer bought the course
    await _history(office, "o_a", ["dy-course", "xhs-ajie"])
    await _history(office, "o_b", ["dy-course", "xhs-ajie"])
    await _history(office, "o_c", ["xhs-xiaolu"])
    await _history(office, "o_d", ["xhs-xiaolu"])
    await _history(office, "o_e", ["xhs-xiaolu"], status="待支付")  # not paid: not a purchase
    liked = await office.customer.say("推荐")
    assert liked.startswith("💡 猜你喜欢") and "抖音运营实战课" not in liked  # not what they have
    lines = [line for line in liked.splitlines() if line[:1].isdigit()]
    # Bought together with the course beats the best-seller.
    assert lines[0].startswith("1. 阿杰探店") and lines[1].startswith("2. 小鹿爱咖啡")
    assert (await office.customer.say("1")).startswith("【阿杰探店】")
    # Sold out or unlisted: never recommended, also when a search finds nothing.
    async with office.sessionmaker.begin() as s:
        ajie = await s.scalar(select(Service).where(Service.code == "xhs-ajie"))
        assert ajie is not None
        await s.execute(update(Package).where(Package.service_id == ajie.id).values(stock=0))
        await s.execute(update(Service).where(Service.code == "xhs-xiaolu").values(status="unlisted"))
    assert await office.customer.say("推荐") == texts.RECOMMEND_NONE
    async with office.sessionmaker.begin() as s:
        await s.execute(update(Service).where(Service.code == "xhs-xiaolu").values(status="listed"))
    # A search that finds nothing lists the nearest services, and 「猜你喜欢」 beside them (others).
    async with office.sessionmaker.begin() as s:
        await catalog_import.import_catalog(s, catalog_import.parse_catalog(MORE, "yaml")[0])
    for i in range(4):
        await _history(office, f"o_more_{i}", ["dy-course", f"more-{i}"])
    nothing = await office.customer.say("搜 火星旅行")
    numbered = [line for line in nothing.split("💡")[0].splitlines() if line[:1].isdigit()]
    beside = [line for line in nothing.split("💡 猜你喜欢")[1].splitlines() if line.startswith("· ")]
    assert len(numbered) == 3 and beside
    for line in beside:
        title = line.removeprefix("· ").split(" · ")[0]
        assert title.startswith("更多服务") and not any(title in n for n in numbered)


def test_rank_prefers_bought_together_then_likeness_then_best_sellers() -> None:
    model = recommend.Model.fit([{1, 2}, {1, 2}, {3}, {3}, {3}, {4, 5}])
    items = {
        i: recommend.Item(i, p, frozenset(t))
        for i, p, t in (
            (2, "抖音", {"美妆"}),
            (3, "B站", {"数码"}),
            (4, "小红书", {"美妆"}),
            (5, "小红书", ()),
        )
    }
    assert recommend.rank(model, {1}, items, k=3) == [2, 3, 4]  # 2 co-bought; then best-seller 3 …
    seed = {9: recommend.Item(9, "小红书", frozenset({"美妆"}))}
    assert recommend.rank(model, {9}, items | seed, k=3) == [4, 2, 5]  # a new item: tags, then platform
    assert recommend.popular(model, items, k=2) == [3, 2]


async def test_the_board_counts_the_funnel_and_the_money(office: Office) -> None:
    await office.customer.chat.event(office.customer.openid, "subscribe")
    order = await office.paid_order()  # 搜 课程 → 1 → 下单 ① → … → 确认 → paid
    await office.customer.say("搜 课程")  # a second search by the same person is still one searcher
    await office.customer.chat.event("o_only_looking", "subscribe")
    answer = await office.say("lishen", "看板")
    assert answer.startswith("📈 运营看板")
    assert "今日 GMV ¥299 · 付款订单 1" in answer and "客单价 ¥299" in answer
    assert "今日漏斗：新关注 2 → 搜索 1 → 看详情 1 → 开始下单 1 → 下单 1 → 付款 1" in answer
    assert "复购客户 0/1" in answer and "抖音运营实战课 ¥299" in answer
    async with office.sessionmaker() as s:
        steps = [(e.openid, e.step) for e in await s.scalars(select(FunnelEvent).order_by(FunnelEvent.id))]
    assert (office.customer.openid, "searched") in steps and ("o_only_looking", "followed") in steps
    assert order.number not in str(steps)
    url = re.search(r"https?://\S+", answer)
    assert url
    parts = urlsplit(url[0])
    response = await office.client.get(f"{parts.path}?{parts.query}")
    assert response.status == 200 and response.content_type == "image/png"
    image = Image.open(io.BytesIO(await response.read()))
    assert image.width == 750 and image.height > 1200
    assert (await office.client.get(f"{parts.path}?{_tampered(parts.query)}")).status == 403
    # … and the picture itself in the chat: uploaded to WeCom, then sent as an image message
    sent = await eventually(lambda: [m for m in office.sim.sent_to("lishen") if m.kind == "image"])
    assert len(sent) == 1
    content_type, png = office.sim.media[sent[0].payload["media_id"]]
    assert content_type == "image/png" and _is_board(png)


def _is_board(png: bytes) -> bool:
    """A PNG 750 px wide and tall like the board, with more than a blank page on it."""
    image = Image.open(io.BytesIO(png))
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    many = colours is None or len(colours) > 8
    return image.format == "PNG" and image.width == 750 and image.height > 1200 and many


async def test_the_board_picture_falls_back_to_the_link_when_the_upload_fails(office: Office) -> None:
    office.sim.fail_next("media_upload", 500, times=20)
    answer = await office.say("lishen", "看板")
    assert "/files/board/board.png?" in answer  # the link is there whatever happens to the picture
    await eventually(lambda: office.sim.calls["media_upload"] >= 1)
    assert not [m for m in office.sim.sent_to("lishen") if m.kind == "image"]


async def test_daily_and_weekly_pushes_go_out_once(office: Office) -> None:
    order = await _in_progress_with_two_pieces(office)
    await office.say("wangfang", f"数据 {order.number} 第1条 曝光 1.2万 点赞 530")
    settings = office.client.app[keys.SETTINGS].model_copy(update={"report_hour": 0})
    now = utcnow()
    if (now + dt.timedelta(minutes=5)).astimezone(BEIJING).date() != now.astimezone(BEIJING).date():
        now -= dt.timedelta(minutes=10)  # both runs on one Beijing day, whenever the suite runs
    assert await pushes.push_results(office.sessionmaker, settings, now) >= 1
    assert await pushes.push_results(office.sessionmaker, settings, now + dt.timedelta(minutes=5)) == 0
    daily = await eventually(
        lambda: [m for m in office.customer.sim.sent if "今日数据更新" in str(m.payload)]
    )
    assert len(daily) == 1 and f"订单 {order.number} 数据报告（阶段数据" in daily[0].payload["content"]
    assert not [p for p in office.robot if p.startswith("📈 运营看板")]  # only today happened so far
    monday = now + dt.timedelta(days=(7 - now.astimezone(BEIJING).weekday()) % 7 or 7)

    def summaries() -> list[Any]:
        return [m for m in office.customer.sim.sent if "本周数据小结" in str(m.payload)]

    before = int(now.astimezone(BEIJING).weekday() == 0)  # a Monday's first push sent that week's summary
    assert await pushes.push_results(office.sessionmaker, settings, monday) >= 1
    posted = await eventually(lambda: [p for p in office.robot if p.startswith("📈 运营看板")])
    assert len(posted) == 1 and "/files/board/board.png?" in posted[0]  # the days before it had work
    pictures = await eventually(lambda: office.robot_images)
    png = base64.b64decode(pictures[0]["base64"])
    assert hashlib.md5(png).hexdigest() == pictures[0]["md5"] and _is_board(png)
    await pushes.push_results(office.sessionmaker, settings, monday + dt.timedelta(minutes=5))
    weekly = await eventually(lambda: summaries()[before:])
    assert len(office.robot_images) == 1  # the picture, like the post, once a day
    assert len(summaries()) == before + 1  # once for that week, however often the job runs
    assert "近 30 天你有 1 个订单，合计曝光 12,000，互动 530" in weekly[0].payload["content"]


async def test_no_suggestions_or_weekly_summary_after_opting_out(office: Office) -> None:
    order = await _in_progress_with_two_pieces(office)
    await office.customer.say("退订")
    await office.say("wangfang", f"数据 {order.number} 第1条 曝光 100")
    await office.say("wangfang", f"完成 {order.number}")
    await eventually(lambda: [m for m in office.customer.sim.sent if "打个分" in str(m.payload)])
    settings = office.client.app[keys.SETTINGS].model_copy(update={"report_hour": 0})
    now = utcnow()
    monday = now + dt.timedelta(days=(7 - now.astimezone(BEIJING).weekday()) % 7 or 7)
    await pushes.push_results(office.sessionmaker, settings, monday)
    async with office.sessionmaker() as s:
        keys_out = list(await s.scalars(select(OutboxMessage.dedupe_key)))
    assert f"review-ask:{order.id}" in keys_out
    assert not [k for k in keys_out if k and k.startswith(("recommend-after:", "results-weekly:"))]
