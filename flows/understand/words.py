"""Catalog words in a message: exact phrases (longest first), homophone typos, and leftover keywords."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .normalize import is_cjk
from .vocab import COMMON_WORDS, Vocabulary, sound

# Words that carry the request, not its subject: never keywords (the intent rules read them).
_REQUEST_WORDS = (
    "找 推荐 搜 搜索 查 查询 看 想 要 做 投 需要 帮 帮忙 有 没 吗 呢 "
    "吧 的 了 么 嘛 啥 哪 谁 推广 宣传 合作 营销 种草的 推一下 推 打 "
    "接 接单 报名 对接 安排 约 联系 介绍 下 呗 哈 噢 诶 合作一下 一下子 "
    "什么样 哪些 哪个 哪种 有哪些 多少 几个 东西 这种 那种 那边 这边 你家 "
    "你们家 价格 预算 以内 以上 以下 左右 之间 粉丝 粉 元 块 块钱 费用 "
    "便宜 贵 一点 一些 点 多 少 高 低 靠谱 合适 适合 好 好的 优质 专业 "
    "真实 厉害 优秀 不错 可以 能 会 给 做个 最好 最 更 比较 号 账号 "
    "达人的 博主的 家 位 个 些 还 再 换 其他 别的 更多 还有 只要 只看 "
    "就要 换一批 来 我们 我 你 你们 他们 它 这个 那个 这 那 是 在 和 "
    "跟 或 或者 与 及 都 也 就 又 才 请 麻烦 产品 品牌 新品 新店 门店 "
    "店铺 公司 我家 我们家 商家 项目 活动 服务 资源 平台 类型 方面 领域 "
    "类 "
)
_NOT_KEYWORDS = frozenset([*COMMON_WORDS, *_REQUEST_WORDS.split()])
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
            if phrase is None or "".join(window) == phrase:
                continue
            same = sum(a == b for a, b in zip(window, phrase, strict=True))
            if same >= size - 1 and same >= 1:
                chars[i : i + size] = list(phrase)
                changed = True
                i += size - 1
                break
        i += 1
    return "".join(chars), changed


def find_words(text: str, vocab: Vocabulary) -> Found:
    """Catalog words in `text` (normalised, numbers already taken out) and what is left over."""
    found = Found()
    text, found.corrected = correct_typos(text, vocab)
    pieces, last = [], 0
    for m in vocab.pattern.finditer(text):
        for slot, value in vocab.phrases[m[0]]:
            found.add(slot, value)
        pieces.append(text[last : m.start()])
        last = m.end()
    pieces.append(text[last:])
    found.rest = " ".join(pieces)
    found.keywords = keywords(found.rest, vocab)
    return found


def keywords(rest: str, vocab: Vocabulary) -> list[str]:
    """Content words left over (咖啡 when it is not a tag, a brand, an English word)."""
    out: list[str] = []
    for chunk in _CHUNK.findall(rest):
        tokens = vocab.tokenizer.lcut(chunk, HMM=True) if is_cjk(chunk[0]) else [chunk]
        for token in tokens:
            if _is_keyword(token) and token not in out:
                out.append(token)
    return out


def _is_keyword(token: str) -> bool:
    if token in _NOT_KEYWORDS or token.isdigit():
        return False
    if is_cjk(token[0]):
        return len(token) >= 2 and not any(ch in "吗呢吧啊呀哦嘛么了的" for ch in token[-1:])
    return len(token) >= 2
