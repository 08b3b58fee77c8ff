"""The words the understanding step knows: the catalog's own words plus built-in aliases and synonyms.

`Vocabulary.build(services)` reads platforms, categories, forms, tags and titles of the listed
services and folds in the tables below (an alias only counts when its canonical word is in the
catalog, or is one of the fixed platforms/categories/forms). Building is cheap (a few ms for the
demo catalog), so callers rebuild it whenever the catalog changes and cache it per catalog version.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import jieba
from xpinyin import Pinyin

from store.catalog import CATEGORIES, FORMS, PLATFORMS

from .normalize import normalize, normalize_all

jieba.setLogLevel(logging.WARNING)
_NUMERAL = re.compile("[零一二两三四五六七八九十百千万]")
# Everyday words with a numeral in them, kept as words (the catalog's own are found by _NUMERAL)
NUMERAL_WORDS = (
    "二维码",
    "十分",
    "三农",
    "二次元",
    "二手",
    "一手",
    "五金",
    "一次性",
    "三明治",
    "一站式",
    "万能",
    "千川",
    "百度",
)


class ServiceLike(Protocol):
    """What the vocabulary reads of a service (store.models.Service, store.catalog_import.ServiceSpec)."""

    @property
    def title(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def forms(self) -> Iterable[str]: ...
    @property
    def tags(self) -> Iterable[str]: ...


# canonical → what people write for it (lower case, simplified: the text is normalised first).
# Only single ideas: 直播带货 is read as 直播 + 带货, so compounds need no entry of their own.
PLATFORM_ALIASES: dict[str, tuple[str, ...]] = {
    # not 小红 (a name) or 红薯 (a sweet potato): too often something else
    "小红书": ("红书", "小红薯", "xhs", "red", "xiaohongshu", "lrb"),
    "抖音": ("dy", "抖", "抖抖", "douyin", "抖y", "tiktok", "斗音"),
    "B站": ("b站", "bilibili", "哔哩哔哩", "哔哩", "bili", "小破站", "阿b"),
    "快手": ("ks", "kuaishou"),
    "微博": ("wb", "weibo", "新浪微博"),
    "视频号": ("微信视频号", "sph"),
    "全平台": ("多平台", "全网", "所有平台", "各大平台"),
    "知识服务": ("知识付费",),
}
_CREATORS = "达人 博主 kol koc up主 up 主播 网红 红人 大v 创作者 素人 达人合作 博主推广 自媒体"
_ADS = "聚光 粉丝通 投放 投流 投广告 打广告 做广告 广告 信息流 买量 竞价 千川 巨量 磁力金牛 dou+ 薯条 推广费"
CREATORS = "达人营销"
COURSES = "课程"
_TOPIC_CATEGORIES = frozenset({CREATORS, COURSES})
# Each category is also named by the words of its trade (拍摄, 剪辑 → 内容制作; 复盘, 竞品 → 数据分析).
_MAKING = "内容生产 代写 代拍 代剪 拍摄制作 做内容 拍摄 剪辑 宣传片 视频制作 短视频制作 脚本 文案 后期"
_ANALYSIS = "数据服务 分析报告 监测 数据分析 分析 复盘 竞品 竞品分析 舆情 行业研究 调研 数据报告"
_PLATFORM_WORDS = tuple(w for canonical, aliases in PLATFORM_ALIASES.items() for w in (canonical, *aliases))
CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    CREATORS: tuple(_CREATORS.split()),
    "广告投放": tuple(_ADS.split()),
    "内容制作": tuple(_MAKING.split()),
    "数据分析": tuple(_ANALYSIS.split()),
    COURSES: ("网课", "培训", "教程", "课", "线上课程", "学习班", "训练营", "想学", "学做", "怎么学"),
    "咨询": ("咨询服务", "顾问", "策略咨询", "运营咨询", "诊断", "出方案"),
}
FORM_ALIASES: dict[str, tuple[str, ...]] = {
    "图文": ("笔记", "图文笔记", "帖子", "文章", "推文", "图片"),
    "视频": ("短视频", "小视频", "vlog", "视频笔记"),
    "直播": ("开播", "连麦", "直播间"),
    "线上课": ("录播课",),
    "报告": (),
    "音频": ("播客",),
}
# tag → synonyms; used only for tags that some listed service has
TAG_ALIASES: dict[str, tuple[str, ...]] = {
    "美食": ("吃的", "餐饮", "吃播", "食品", "吃货", "餐厅", "饭店", "好吃的", "零食", "小吃"),
    "美妆": ("化妆", "化妆品", "口红", "彩妆", "眼影", "粉底"),
    "护肤": ("护肤品", "面膜", "精华", "面霜", "防晒"),
    "探店": ("到店", "门店打卡", "打卡"),
    "母婴": ("宝妈", "宝宝", "奶粉", "婴儿", "孕妇"),
    "育儿": ("带娃",),
    "穿搭": ("服装", "衣服", "服饰", "ootd", "女装", "男装"),
    "数码": ("3c", "电子产品", "科技数码", "电脑"),
    "健身": ("撸铁", "健身房"),
    "减脂": ("减肥", "瘦身"),
    "运动": ("体育",),
    "旅行": ("旅游", "出游", "景区"),
    "游戏": ("电竞",),
    "汽车": ("养车", "新能源车"),
    "家居": ("家具", "家装", "装修"),
    "种草": ("安利", "种草推广"),
    "带货": ("卖货", "卖东西"),
    "咖啡": ("coffee", "咖啡馆", "咖啡店", "拿铁", "手冲", "咖啡厅"),
    "茶饮": ("奶茶", "喝茶", "茶饮店", "奶茶店"),
    "私域": ("社群", "企微"),
    "本地生活": ("同城",),
    "助农": ("农产品", "土特产", "三农", "农村", "农民"),
    "明星同款": ("明星", "爱豆"),
    "拍摄": ("拍照", "拍图", "产品图", "拍视频", "拍片", "摄影"),
}
# Catalog tags too common in requests to be read as a filter (我们品牌的新品 is not a search for 品牌).
GENERIC_TAGS = frozenset({"品牌", "新品", "运营", "成长", "获客", "关键词", "电商", "品牌号", "新手入门"})
# Places are worth keeping as search words; the small dictionary knows them so they segment whole.
_CITIES = (
    "北京 上海 广州 深圳 杭州 成都 重庆 武汉 西安 南京 苏州 天津 长沙 郑州 青岛 厦门 宁波 合肥 昆明 大连 "
    "沈阳 济南 福州 东莞 佛山 无锡 哈尔滨 长春 南昌 贵阳 南宁 石家庄 太原 兰州 海口 三亚 珠海 温州 "
    "华东 华南 华北 西南 东北 江浙沪 大湾区"
)
CITIES = tuple(_CITIES.split())
# Common lines of business: known to the small dictionary so that 火锅店 segments as 火锅 + 店.
_FIELDS = (
    "火锅 烧烤 烘焙 甜品 蛋糕 面包 奶茶 咖啡 茶叶 白酒 红酒 啤酒 酒吧 民宿 酒店 餐厅 小吃 零食 水果 生鲜 "
    "宠物 猫粮 狗粮 医美 口腔 牙科 眼镜 珠宝 首饰 手表 家电 家具 鞋子 运动鞋 箱包 内衣 童装 玩具 文具 "
    "教培 留学 考研 驾校 健身房 瑜伽 美甲 美发 婚纱 摄影 婚庆 旅拍 保健品 养生 中老年 老年 护理 "
    "服装 女装 男装 汉服 香水 洗护 洗发水 日化 母婴 奶粉 纸尿裤 汽车 二手车 新能源 房产 装修 家装 "
    "手机 电脑 耳机 相机 游戏 手游 动漫 二次元 读书 图书 音乐 电影 短剧 知识 财经 理财 保险 法律 "
    "农产品 特产 土特产 面膜 口红 精华 防晒 洗面奶 女粉 男粉 女性用户 男性用户 logo 设计 "
    "搞笑 剧情 颜值 情感 萌宠 音乐 舞蹈 才艺 科普 历史 文化 篮球 足球 钓鱼 露营 绘画 创业 医疗 "
    "奢侈品 机车 骑行 跑步 瑜伽 开箱 测评 好物 种草 变装 剧本杀 密室 电影 书评 口播 "
    "宠物食品 宠物零食 宠物医院 儿童食品 保健食品 运动鞋 亲子游 自驾游"
)
FIELDS = tuple(_FIELDS.split())

_COMMON = (
    "我 你 他 她 我们 你们 他们 想 想要 要 找 找找 找个 找一下 有 "
    "有没有 有么 没有 吗 呢 吧 啊 呀 哦 嗯 的 了 在 是 不是 看 看看 "
    "看一下 帮 帮我 给 给我 推荐 推荐一下 一下 一些 一点 一个 一家 这个 "
    "那个 这些 那些 哪个 哪些 什么 怎么 怎么样 如何 多少 可以 能 能不能 "
    "可不可以 需要 需求 想找 推广 宣传 合作 做 做个 搞 来 来个 点 个 家 "
    "位 些 和 跟 或者 还是 还有 以及 然后 就 都 也 再 最 更 比较 稍微 "
    "大概 大约 左右 以内 以上 以下 之间 预算 价格 价位 报价 费用 钱 元 "
    "块 万 千 粉 粉丝 关注 品牌 产品 新品 店 门店 我家 我们家 公司 商家 "
    "老板 上线 发布 帮忙 谢谢 麻烦 请问 你好 您好 那 这 请 该 应该 现在 "
    "目前 马上 今天 明天 最近 行 好 好的 ok 要求 类型 方面 领域 相关 "
    "类 类似 之类 的话 平台 上 里 账号 号 资源 服务 项目 一起 预算是 "
    "预算在 大概是 不超过 最多 至少 超过 起步 合适 适合 靠谱 优质 真实 "
    "专业 知名 优秀 厉害 开业 上新 活动 引流 曝光 流量 效果 转化 销量 卖 "
    "买 下单 购买 价钱 贵 便宜 一些些 本地 连锁 加盟 品牌方 工厂 源头 "
)
COMMON_WORDS = tuple(_COMMON.split())


@dataclass(frozen=True, slots=True)
class Vocabulary:
    platforms: tuple[str, ...]
    categories: tuple[str, ...]
    forms: tuple[str, ...]
    tags: tuple[str, ...]
    titles: tuple[str, ...]
    # phrase (normalised) → what it says: (slot, canonical value) pairs, e.g. 探店达人 → category+tag
    phrases: dict[str, tuple[tuple[str, str], ...]]
    lengths: tuple[int, ...] = field(repr=False)  # the phrases' lengths, longest first
    # toneless pinyin of a phrase → the phrase, for homophone typos (小红树 → 小红书)
    sounds: dict[tuple[str, ...], str] = field(repr=False)
    tokenizer: jieba.Tokenizer = field(repr=False, compare=False)
    # phrases with Chinese numerals in them (二次元, 一只家居控): kept as words, not read as numbers
    numeral_words: tuple[str, ...] = ()
    # What messages were understood as with this vocabulary (core.understand): 在吗, 你好, 多少钱 come
    # from many people at once; the memo is dropped with the vocabulary when the catalog changes.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, services: Iterable[ServiceLike]) -> Vocabulary:
        services = list(services)
        tags = _ordered(t for s in services for t in s.tags)
        titles = _ordered(s.title for s in services)
        phrases = _phrases(tags, titles, _tag_categories(services))
        return cls(
            lengths=_lengths(phrases),
            numeral_words=tuple(dict.fromkeys([*(p for p in phrases if _NUMERAL.search(p)), *NUMERAL_WORDS])),
            platforms=PLATFORMS,
            categories=CATEGORIES,
            forms=_ordered([*FORMS, *(f for s in services for f in s.forms)]),
            tags=tags,
            titles=titles,
            phrases=phrases,
            sounds=_sounds(phrases),
            tokenizer=_tokenizer(phrases),
        )

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, phrase) of each catalog phrase in `text`, longest first, left to right."""
        return _scan(text, self.phrases, self.lengths)


def _ordered(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w.strip() for w in words if w and w.strip()))


def _tag_categories(services: list[ServiceLike]) -> dict[str, str]:
    """tag → the one category every service carrying it is in (宣传片 → 内容制作, 竞品分析 → 数据分析),
    so that a category is read from the words of its own trade, not only from 达人-type words.
    Topic tags (美食, 农产品, 英语 — a creator's or a course's subject) say nothing of what is bought,
    nor do platform names: only tags of the trades themselves count."""
    seen: dict[str, set[str]] = {}
    for service in services:
        for tag in service.tags:
            seen.setdefault(tag, set()).add(service.category)
    topics = {_norm(w) for w in (*FIELDS, *_PLATFORM_WORDS)}
    return {
        tag: next(iter(cats))
        for tag, cats in seen.items()
        if len(cats) == 1 and not cats & _TOPIC_CATEGORIES and _norm(tag) not in topics
    }


def _phrases(
    tags: tuple[str, ...], titles: tuple[str, ...], categories: Mapping[str, str] | None = None
) -> dict[str, tuple[tuple[str, str], ...]]:
    table: dict[str, list[tuple[str, str]]] = {}
    norm = _normalised([*tags, *titles])

    def add(phrase: str, slot: str, value: str) -> None:
        entry = table.setdefault(norm.get(phrase) or _norm(phrase), [])
        if (slot, value) not in entry:
            entry.append((slot, value))

    for tag in tags:
        if tag not in GENERIC_TAGS:
            add(tag, "tag", tag)
            if categories and tag in categories:
                add(tag, "category", categories[tag])
    for tag, aliases in TAG_ALIASES.items():
        if tag in tags:
            for alias in aliases:
                if alias not in tags:  # 农产品 stays 农产品 when it is a tag itself
                    add(alias, "tag", tag)
                    if categories and tag in categories:  # 产品图 → 拍摄 → 内容制作
                        add(alias, "category", categories[tag])
    for canonical, aliases in PLATFORM_ALIASES.items():
        for alias in (canonical, *aliases):
            # a tag that names a platform (抖音) is the platform
            table[_norm(alias)] = [e for e in table.get(_norm(alias), []) if e[0] != "tag"]
            add(alias, "platform", canonical)
    for canonical, aliases in CATEGORY_ALIASES.items():
        for alias in (canonical, *aliases):
            add(alias, "category", canonical)
    for form, aliases in FORM_ALIASES.items():
        for alias in (form, *aliases):
            # 直播 is the form, not also the tag 直播: the form filter is the useful one (短视频 keeps both)
            table[_norm(alias)] = [e for e in table.get(_norm(alias), []) if e != ("tag", form)]
            add(alias, "form", form)
    _inner(table, [norm[t] for t in tags if t not in GENERIC_TAGS])  # 直播投流: also 直播
    for word in FIELDS:  # 运动鞋 is a thing to search for, not the tag 运动 and a stray 鞋
        if word not in table:
            add(word, "keyword", word)
    _titles(table, titles, norm)
    return {k: tuple(v) for k, v in table.items() if k}


def _inner(table: dict[str, list[tuple[str, str]]], words: list[str]) -> None:
    """A compound tag says the form inside it and the category of its head (the last word, as
    Chinese compounds go): 直播投流 is also 直播 and 广告投放, 数据报告 also 报告."""
    lengths = _lengths(table)
    for key in words:
        shorter = tuple(n for n in lengths if n < len(key))  # every word inside it but itself
        for _, end, phrase in _scan(key, table, shorter):
            # a form anywhere; a category only from the head, the last word (信息流投放, 账号诊断):
            # 投放复盘 is a review, not 广告投放, though it starts with 投放
            wanted = ("form", "category") if end == len(key) else ("form",)
            table[key] += [e for e in table[phrase] if e not in table[key] and e[0] in wanted]


def _titles(table: dict[str, list[tuple[str, str]]], titles: tuple[str, ...], norm: dict[str, str]) -> None:
    """A service's title names it, and the catalog words inside it still count (美妆博主Coco: 美妆)."""
    lengths = _lengths(table)
    for title in titles:
        key = norm[title]
        meaning = [("title", title)]
        for _, _, phrase in _scan(key, table, lengths):
            meaning += [e for e in table[phrase] if e not in meaning]
        table[key] = meaning


def _normalised(words: list[str]) -> dict[str, str]:
    return {w: n.replace(" ", "") for w, n in zip(words, normalize_all(words), strict=True)}


def _norm(phrase: str) -> str:
    return normalize(phrase).replace(" ", "")


def _lengths(phrases: Mapping[str, object]) -> tuple[int, ...]:
    return tuple(sorted({len(p) for p in phrases}, reverse=True))


def _scan(
    text: str, phrases: Mapping[str, object], lengths: tuple[int, ...]
) -> Iterator[tuple[int, int, str]]:
    """Longest match first at each position (小红书 over 小红, 信息流投放 over 投放); ASCII aliases
    only as whole words (red is not inside credit). A dictionary probe per length: fast for any
    catalog size, unlike one regex of ten thousand alternatives."""
    i, n = 0, len(text)
    while i < n:
        for size in lengths:
            piece = text[i : i + size]
            if len(piece) == size and piece in phrases and _whole(text, i, i + size, piece):
                yield i, i + size, piece
                i += size
                break
        else:
            i += 1


def _whole(text: str, start: int, end: int, piece: str) -> bool:
    if not piece.isascii() or not piece[0].isalpha():
        return True
    before = text[start - 1 : start] if start else ""
    after = text[end : end + 1]
    return not (before.isascii() and before.isalpha()) and not (after.isascii() and after.isalpha())


_PINYIN = Pinyin()
_PLATFORM_NAMES = frozenset(p.lower() for p in PLATFORMS)


@lru_cache(maxsize=8192)
def sound(ch: str) -> str:
    """Toneless pinyin of one character (itself when it has none)."""
    return str(_PINYIN.get_pinyin(ch, "")) if "\u4e00" <= ch <= "\u9fff" else ch


def _sounds(phrases: dict[str, tuple[tuple[str, str], ...]]) -> dict[tuple[str, ...], str]:
    index: dict[tuple[str, ...], str] = {}
    for phrase, meaning in phrases.items():
        # homophones only for words long enough to be unambiguous and that name something
        if len(phrase) >= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in phrase):
            if any(slot in ("platform", "tag", "category", "title") for slot, _ in meaning):
                index.setdefault(tuple(sound(ch) for ch in phrase), phrase)
        elif len(phrase) == 2 and phrase in _PLATFORM_NAMES:  # 逗音 → 抖音; not 红薯 → 红书
            index.setdefault(tuple(sound(ch) for ch in phrase), phrase)
    return index


def _tokenizer(phrases: dict[str, tuple[tuple[str, str], ...]]) -> jieba.Tokenizer:
    """A jieba tokenizer on a small dictionary (catalog words + common words), built in memory.

    jieba's full dictionary costs ~1.5 s and ~90 MB to load; this one costs milliseconds, and jieba's
    HMM still joins unknown runs (奶茶, 烘焙) into words.
    """
    words = dict.fromkeys([*phrases, *COMMON_WORDS, *CITIES, *FIELDS])
    lines = "".join(f"{w.replace(' ', '')} {max(3, 20 * len(w))}\n" for w in words if w.strip())
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ, tokenizer.total = tokenizer.gen_pfdict(io.BytesIO(lines.encode()))
    tokenizer.initialized = True
    return tokenizer
