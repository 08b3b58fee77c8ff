"""Catalog words in a message: exact phrases (longest first), homophone typos, and leftover keywords."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import is_cjk
from .vocab import CITIES, COMMON_WORDS, CREATORS, FIELDS, GENERIC_TAGS, Vocabulary, sound

# Words that carry the request, not its subject: never keywords (the intent rules read them).
_REQUEST_WORDS = (
    "找 推荐 搜 搜索 查 查询 看 想 要 做 投 需要 帮 帮忙 有 没 吗 呢 吧 的 了 么 嘛 啥 哪 谁 "
    "推广 宣传 合作 营销 推一下 推 打 接 接单 报名 对接 安排 约 联系 介绍 下 呗 哈 噢 诶 "
    "合作一下 一下子 什么样 哪些 哪个 哪种 有哪些 多少 几个 东西 这种 那种 那边 这边 你家 你们家 "
    "价格 预算 以内 以上 以下 左右 之间 粉丝 粉 元 块 块钱 费用 便宜 贵 一点 一些 点 多 少 高 低 "
    "靠谱 合适 适合 好 好的 优质 专业 真实 厉害 优秀 不错 可以 能 会 给 做个 最好 最 更 比较 "
    "号 账号 达人的 博主的 家 位 个 些 还 再 换 其他 别的 更多 还有 只要 只看 就要 换一批 来 "
    "我们 我 你 你们 他们 它 这个 那个 这 那 是 在 和 跟 或 或者 与 及 都 也 就 又 才 请 麻烦 "
    "产品 品牌 新品 新店 门店 店铺 公司 我家 我们家 商家 项目 活动 服务 资源 平台 类型 方面 领域 类 "
    "我要 我想 想要 想找 找人 找个 想学 学 学习一下 就行 就好 老铁 一款 一批 一下 下一页 上一页 换成 "
    "小于 大于 低于 高于 最高 最低 太贵 再来 新开 开了 开的 刚开 方案 用品 精品 连锁 老师 老板 "
    "那种 这样 那样 一样 一般 大概 差不多 主要 主做 专门 专做 负责 写写 拍拍 写 拍 发 发布 上线 "
    "页 排 排序 排一下 排前面 前面 后面 一篇 每篇 每家 每个 一个月 一个 首页 男的 女的 年轻 卖点 "
    "不太行 都不行 不喜欢 不合适 不太合适 没有合适 换一换 一换 换换 "
    "问下 问一下 想问 开个 开一个 开家 作品 以前 改稿 重拍 画像 "
    "业务 收益 订单 订单多 教人 教我 教 建议 体验 方案 "
    "不少于 不低于 不高于 不多于 不大于 不小于 数 粉丝数 粉丝量 单价 总预算 总共 每个 budget 一篇 每条 "
    "团队 基础 以后 之后 补发 真人 水分 效果 质量 问题 情况 时间 经验 能力 水平 风格 东东 玩意 "
    "不要 不用 太多 太少 充足 不限 随便 懂 懂行 铺 铺量 上周 昨天 前天 刚才 之前 以前 上次 "
)
_KNOWN = frozenset([*CITIES, *FIELDS])  # whole words even when they start like a request (上海)
# Characters of grammar, not of things: a leftover run holding one (一波, 木有, 新出, 提到, 从贵, 咋整)
# is a fragment of the sentence, not a content word. Known words (上海, 运动鞋) are exempt.
_FUNCTION_CHARS = frozenset(
    "一木没不别无有是了的地得着过吗呢吧啊呀么嘛哦哈啦咯嘞喔噢诶唉哎嗯哇咋啥怎这那哪谁每各某其他她你我您们"
    "自己想要会能可新出到从提说讲给让被把对向往在于和与及或也都就还又再才很太更最波些点下上排按贵便宜价钱"
    "咱俩啥样么呗嗯哦吖滴噻撒哟喽求"
)
_NOT_KEYWORDS = frozenset([*COMMON_WORDS, *GENERIC_TAGS, *_REQUEST_WORDS.split()])
_STOP_RUNS = re.compile(
    "|".join(sorted((re.escape(w) for w in _NOT_KEYWORDS if len(w) >= 2), key=len, reverse=True))
)
# A content word is often a shop or a field: 火锅店, 宠物类, 母婴相关 → 火锅, 宠物, 母婴
_SUFFIX = re.compile(r"(店|馆|类|相关|方面|行业|领域|用品|品类)$")
# 做茶的, 做宠物的: what someone works in, even a single character
_WORKS_IN = re.compile(r"做([\u4e00-\u9fff]{1,4}?)(的|类|方面|相关|行业)")
# Words asking for an order of results (store.catalog.SORTS); the first one said wins.
SORTS = (
    (
        "price",
        re.compile(
            r"按照?(价格|价钱|报价|费用)|从(便宜|低)到(贵|高)|便宜|实惠|价格.{0,2}低|低价|性价比|划算|平价|省钱|太贵|贵了|预算(少|有限|不多)"
        ),
    ),
    ("price_desc", re.compile(r"从(贵|高)到(便宜|低)|贵一?点|贵些|更贵|最贵|高端|高档|价格.{0,2}高|档次")),
    (
        "followers",
        re.compile(r"按照?粉丝|(?<![女男])粉丝?(数|量)?.{0,3}(多|高|大(?!概|约))(?!少)|大号|头部|大博主"),
    ),
    (
        "engagement",
        re.compile(
            r"按照?(点赞|互动|评论|转化)|互动.{0,3}(高|好|多|强)|互动率|点赞.{0,2}多|评论.{0,2}多|活跃|转化.{0,2}(好|高)"
        ),
    ),
    ("exposure", re.compile(r"按照?(播放|阅读|浏览)|曝光|播放.{0,2}(量|多|高)|阅读量|流量.{0,2}(大|高|多)")),
)
_NEGATED = re.compile(r"(不要|不想要|别|除了|不是|不用|排除)[^,?]{0,2}$")
_CHUNK = re.compile(r"[a-z][a-z0-9+.]*|[\u4e00-\u9fff]+")


@dataclass(slots=True)
class Found:
    """Catalog words found in a message."""

    platforms: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    sorts: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    corrected: bool = False  # a word was only found by its sound (a typo)
    rest: str = ""  # the text with the catalog words taken out

    def add(self, slot: str, value: str) -> None:
        bucket = {
            "keyword": self.keywords,
            "platform": self.platforms,
            "category": self.categories,
            "tag": self.tags,
            "form": self.forms,
            "sort": self.sorts,
            "title": self.titles,
        }[slot]
        if value not in bucket:
            bucket.append(value)

    @property
    def subject(self) -> bool:
        """Something to search for was named."""
        return bool(self.platforms or self.categories or self.tags or self.forms or self.titles)


def correct_typos(text: str, vocab: Vocabulary) -> tuple[str, bool]:
    """Replaces runs that sound like a catalog word but are spelt otherwise (小红树 → 小红书)."""
    if not vocab.sounds:
        return text, False
    chars = list(text)
    sounds = [sound(ch) if is_cjk(ch) else "" for ch in chars]
    changed = False
    i = 0
    while i < len(chars):
        for size in (4, 3, 2):
            window = chars[i : i + size]
            if len(window) < size or not all(sounds[i : i + size]):
                continue
            phrase = vocab.sounds.get(tuple(sounds[i : i + size]))
            said = "".join(window)
            if phrase is None or said == phrase or said in vocab.phrases:  # 小红薯 is an alias, no typo
                continue
            same = sum(a == b for a, b in zip(window, phrase, strict=True))
            if same >= size - 1 and same >= 1:
                chars[i : i + size] = list(phrase)
                changed = True
                i += size - 1
                break
        i += 1
    return "".join(chars), changed


def find_words(text: str, vocab: Vocabulary, date: str = "") -> Found:
    """Catalog words in `text` (normalised, numbers already taken out) and what is left over;
    `date` is the date expression of the message (下周五晚上), no keyword."""
    found = Found()
    text, found.corrected = correct_typos(text, vocab)
    found.sorts = sorts(text)
    pieces, last = [], 0
    for start, end, phrase in vocab.find(text):
        if not _NEGATED.search(text[max(0, start - 4) : start]):  # 不要小红书的 is no filter on 小红书
            meaning = vocab.phrases[phrase]
            for slot, value in meaning:
                if slot != "title" or not _trade(meaning):
                    found.add(slot, value)
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    found.rest = " ".join(pieces)
    more = [
        k for k in keywords(_without_sorts(found.rest), vocab) if k not in date and k not in found.keywords
    ]
    found.keywords += more
    return found


def _trade(meaning: tuple[tuple[str, str], ...]) -> bool:
    """A title made of a trade's words (竞品分析报告, 品牌宣传片) is said by its tag and category;
    only a name (小鹿爱咖啡, 美妆博主Coco) is worth searching for as itself."""
    return any(slot == "category" and value != CREATORS for slot, value in meaning)


def sorts(text: str) -> list[str]:
    """The orders asked for, first said first; 不用太多 is not asking for many followers."""
    said = []
    for sort, pattern in SORTS:
        for m in pattern.finditer(text):
            if not re.search("不|别", text[max(0, m.start() - 3) : m.end()]):
                said.append((m.start(), sort))
                break
    return [sort for _, sort in sorted(said)]


def _without_sorts(text: str) -> str:
    for _, pattern in SORTS:
        text = pattern.sub(" ", text)
    return text


def keywords(rest: str, vocab: Vocabulary) -> list[str]:
    """Content words left over (火锅, 宠物, a brand, an English word), request words taken out."""
    out = [_root(m[1]) for m in _WORKS_IN.finditer(rest) if m[1] not in _NOT_KEYWORDS and m[1][0] != "的"]
    for chunk in _CHUNK.findall(_STOP_RUNS.sub(" ", rest)):
        tokens = vocab.tokenizer.lcut(chunk, HMM=True) if is_cjk(chunk[0]) else [chunk]
        for token in tokens:
            token = _root(token)
            if _is_keyword(token) and token not in out and not any(token in w for w in out):
                out.append(token)
    return out


def _root(token: str) -> str:
    """做车 → 车, 火锅店 → 火锅: request characters in front and a shop or field behind dropped."""
    while len(token) > 1 and token[0] in _NOT_KEYWORDS and is_cjk(token[0]) and token not in _KNOWN:
        token = token[1:]
    return _SUFFIX.sub("", token) if len(token) > 2 else token


def _is_keyword(token: str) -> bool:
    if token in _NOT_KEYWORDS or token.isdigit():
        return False
    if all(ch in _NOT_KEYWORDS for ch in token):
        return False  # 投个, 上卖: request words glued together by the segmenter
    if is_cjk(token[0]):
        if token not in _KNOWN and any(ch in _FUNCTION_CHARS for ch in token):
            return False
        return len(token) >= 2 and "几" not in token and token[-1] not in "吗呢吧啊呀哦嘛么了的"
    return len(token) >= 2
