"""Normalising what people type: width, case, traditional characters, emoji and punctuation noise.

The result keeps the message's meaning and positions simple for the rules that follow: half-width,
lower case, simplified Chinese, one space between runs, sentence punctuation folded to a few marks.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import zhconv
import zhconv.zhconv

# zhconv reads its table lazily through a file it never closes; read it once, properly closed.
zhconv.zhconv.loaddict(str(Path(zhconv.zhconv.__file__).with_name(zhconv.zhconv.DICTIONARY)))

# ① … ⑩ and friends mean "package N" here; NFKC would make them bare digits, so name them first.
_CIRCLED = {chr(0x2460 + i): i + 1 for i in range(20)} | {chr(0x2776 + i): i + 1 for i in range(10)}
_CIRCLED |= {chr(0x278A + i): i + 1 for i in range(10)}

# Emoji, pictographs, variation selectors, zero-width joiners and other symbols carry no words here.
_NOISE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200b-\u200f\u2060\u3000"
    "\u00a0\u2028\u2029`^_|\\\\<>《》「」『』【】〔〕()（）\\[\\]{}\"'“”‘’*#&]"
)
# A pasted link is never what someone asks for (v.douyin.com/… is no search for 抖音).
URL = re.compile(r"https?://\S+|(?:[a-z0-9-]+\.)+(?:com|cn|net|top|cc)(?:/\S*)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TILDE = re.compile(r"~(?![\d一二两三四五六七八九十])")
_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])")
_QUESTION = re.compile(r"[?？]+")
_STOPS = re.compile(r"(?:[,，。!！;；、…]|(?<!\d)[.:：]|[.:：](?!\d))+")  # 1.5 and 19:00 keep theirs
_SPACES = re.compile(r"\s+")
# Bracket-style text emoticons that WeChat sends as words: [微笑] [捂脸] …
_WECHAT_EMOTICON = re.compile(r"\[[\u4e00-\u9fff]{1,4}\]")


def normalize(text: str, *, simplify: bool = True) -> str:
    """The canonical form of a message: see the module docstring. Idempotent.

    `simplify=False` skips traditional → simplified, for text already converted (normalize_all)."""
    text = "".join(f" 套餐{_CIRCLED[ch]} " if ch in _CIRCLED else ch for ch in text)
    text = _WECHAT_EMOTICON.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).lower()
    text = URL.sub(" ", text)
    text = _THOUSANDS.sub("", text)  # 3,000 → 3000
    if simplify:
        text = _simplified(text)
    text = _NOISE.sub(" ", text)
    text = _TILDE.sub(" ", text)  # 好的～ is noise, 3k~5k a range
    text = _QUESTION.sub("?", text)
    text = _STOPS.sub(",", text)
    text = _SPACES.sub(" ", text).strip(" ,")
    return _CJK_SPACE.sub("", text)  # 美 妆, 小红书 美食: spaces between Chinese words say nothing


def normalize_all(texts: list[str]) -> list[str]:
    """normalize() of many short texts (catalog words): one zhconv pass instead of one per text."""
    if not texts:  # an empty catalog: "".split("\n") would be one empty text, not none
        return []
    simplified = str(zhconv.convert("\n".join(t.replace("\n", " ") for t in texts), "zh-cn")).split("\n")
    if len(simplified) != len(texts):  # a conversion spanned a line break: convert them one by one
        simplified = [_simplified(t.replace("\n", " ")) for t in texts]
    return [normalize(t, simplify=False) for t in simplified]


@lru_cache(maxsize=4096)
def _simplified(text: str) -> str:
    # Only runs with CJK characters need converting; zhconv is the slow part of normalising.
    if not any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return text
    return str(zhconv.convert(text, "zh-cn"))


def is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"
