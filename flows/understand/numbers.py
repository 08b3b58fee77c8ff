"""Numbers in what people write: 三千, 3k, 1.5万, 两三千, 5w粉以上, 十万+, 充值500, 第二个, 套餐②, 单号.

Chinese numerals become digits first (cn2an does the arithmetic of 一万五 and 十万), then each number is
read with the words around it: what it counts (price, followers, an amount, a quantity) and whether
it is a floor (以上, 起, +), a ceiling (以内, 以下, 预算), a range (3k-5k, 两三千) or approximate (左右).

An approximate figure (三千左右, 大概5000) becomes a range of ±20 % (APPROX): close enough to show what
someone has in mind, wide enough not to hide the service that costs 3,500 from a "三千左右" budget.
A price with no qualifier after 预算 is a ceiling; a bare follower figure (5w粉的博主) is a floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cn2an

APPROX = 0.2

_DIGIT = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_RANGE = re.compile(r"([一二两三四五六七八九])([二两三四五六七八九])([十百千万]+)")
_CN_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+(?:点[零一二三四五六七八九]+[十百千万]?)?")
# what may follow a lone 一 for it to be the number one (一份, 一万) and not 一下 / 一点 / 一起
_AFTER_ONE = set("份个篇条套单次家位号元块万千百场期")
_MIXED = re.compile(r"(\d+)\s*([万w千k])\s*(\d)(?![\d.万w千k百])")

NUM = r"(\d+(?:\.\d+)?)\s*(k|w|千|万|百)?"
_UNIT = {"k": 1000, "千": 1000, "w": 10000, "万": 10000, "百": 100, None: 1, "": 1}
_RANGE_SEP = r"\s*(?:-|~|到|至|—|－|~)\s*"

DATE_LIKE = re.compile(
    r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}[日号]?|\d{1,2}月\d{1,2}[日号]?|(?<![\d.])\d{1,2}/\d{1,2}(?![\d/])"
    r"|\d{1,2}:\d{2}|\d{1,2}点(\d{1,2}分?|半|一刻)?"
)
ORDER_NO = re.compile(r"(?<!\d)(20\d{6})\s*[-_ ]?\s*(\d{4})(?!\d)")
PACKAGE = re.compile(r"套餐\s*(\d+)|第\s*(\d+)\s*(?:个|档|种|款)?\s*套餐|(\d+)\s*号\s*套餐")
_NOT_ORDINAL = r"(?!\s*(?:次|天|年|周|步|季|轮|批|回|期|届|时间))"  # 第一次 is not an item of the list
ORDINAL = re.compile(r"第\s*(\d+)(?!\d)" + _NOT_ORDINAL + r"\s*(?:个|家|条|位|款|项|名|号|种)?")
AMOUNT = re.compile(
    r"(?:充值|冲值|充|提现|提|取现|转出|存)\s*(?:了|一下|个|进去|进)?\s*" + NUM + r"\s*(?:元|块钱|块|rmb)?"
)
QUANTITY = re.compile(r"(\d+)\s*(?:份|个|套|单|篇|条|次|场|期)(?!\s*(?:月|星期|礼拜|小时|工作日|钟头|多月))")
_NUMBER = re.compile(NUM + r"(?:" + _RANGE_SEP + NUM + r")?\s*(\+)?")

_MIN = ("以上", "起", "+", "往上", "多", "起步", "朝上", "打底")  # after the number
_MAX = ("以内", "以下", "之内", "内", "不到", "封顶", "为上限", "以里", "能", "够", "可以")
_ABOUT = ("左右", "上下", "附近", "前后", "的样子")
_MIN_BEFORE = ("超过", "至少", "不少于", "不低于", "不小于", "大于", "高于", "过", "最少", "最低", "多于")
_MAX_BEFORE = (
    "不超过",
    "最多",
    "低于",
    "少于",
    "小于",
    "控制在",
    "别超过",
    "不要超过",
    "不高于",
    "不多于",
    "不大于",
    "最高",
    "以内",
)
# 不低于 is a floor though it ends in 低于: the longest word said before a number decides
_BEFORE = sorted(
    [(w, "min") for w in _MIN_BEFORE] + [(w, "max") for w in _MAX_BEFORE], key=lambda p: -len(p[0])
)
_ABOUT_BEFORE = ("大概", "大约", "差不多", "约", "估计", "预计")
_MONEY_AFTER = ("元", "块", "rmb", "¥", "钱")
_MONEY_BEFORE = (
    "预算",
    "价格",
    "价位",
    "¥",
    "花",
    "出",
    "报价",
    "费用",
    "价钱",
    "单价",
    "一篇",
    "每篇",
    "一条",
    "每条",
)
_PER_PIECE = re.compile(r"(每|1)\s*(篇|条|个|场|次|期|位)\s*$")
_PER = re.compile(r"^[/每]?(篇|条|个|次|场|期|月|位|家)?")  # 3000元/篇以内


def arabic(text: str, keep: tuple[str, ...] = ()) -> str:
    """Chinese numerals as digits: 三千左右 → 3000左右, 两三千 → 2千-3千; 一下 / 一点 stay words,
    and so do the words in `keep` (二次元, a title with 一 in it)."""
    kept = [w for w in keep if w in text]
    for i, word in enumerate(kept):
        text = text.replace(word, chr(0xE000 + i))  # private-use placeholders, restored below
    text = text.replace("过万", "过1万").replace("破万", "过1万")
    text = _CN_RANGE.sub(_cn_range, text)
    text = _CN_RUN.sub(_cn_run, text)
    text = _MIXED.sub(_mixed, text)
    for i, word in enumerate(kept):
        text = text.replace(chr(0xE000 + i), word)
    return text


def _cn_range(m: re.Match[str]) -> str:
    a, b, unit = _DIGIT[m[1]], _DIGIT[m[2]], m[3]
    return f"{a}{unit}-{b}{unit}" if b > a else m[0]


def _cn_run(m: re.Match[str]) -> str:
    run, after = m[0], m.string[m.end() : m.end() + 1]
    before = m.string[max(0, m.start() - 2) : m.start()]
    if run == "一" and after not in _AFTER_ONE and not before.endswith(("套餐", "第")):
        return run
    bare_unit = (
        run in ("万", "百万", "千万") and after != "" and after in "粉+级" and not before[-1:].isdigit()
    )
    if not any(ch in _DIGIT or ch == "十" for ch in run) and not bare_unit:
        return run
    if run in ("万", "百万", "千万"):
        run = "一" + run
    try:
        value = cn2an.cn2an(run, "smart")
    except (ValueError, KeyError, IndexError):
        return run
    return _fmt(float(value))


def _mixed(m: re.Match[str]) -> str:
    big = 10000 if m[2] in "万w" else 1000
    return _fmt(int(m[1]) * big + int(m[3]) * big // 10)


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


@dataclass(slots=True)
class Figures:
    """Every number found in a message, by what it means."""

    order_no: str | None = None
    package: int | None = None
    ordinal: int | None = None
    amount_fen: int | None = None
    quantity: int | None = None
    price_min_fen: int | None = None
    price_max_fen: int | None = None
    followers_min: int | None = None
    followers_max: int | None = None
    rest: str = ""  # the text with every number that was read taken out
    bare: float | None = None  # a plain figure nothing qualifies (抖音探店3000): a budget in a search


def read_figures(text: str) -> Figures:
    """`text` is normalised and in arabic digits (see arabic())."""
    fig = Figures()
    text = _take(ORDER_NO, text, lambda m: setattr(fig, "order_no", f"{m[1]}-{m[2]}"))
    text = DATE_LIKE.sub(" ", text)  # 2026-12-20 19:00 is a time (flows.when), never money
    text = _take(PACKAGE, text, lambda m: setattr(fig, "package", int(m[1] or m[2] or m[3])))
    text = _take(ORDINAL, text, lambda m: setattr(fig, "ordinal", int(m[1])))
    text = _take(AMOUNT, text, lambda m: setattr(fig, "amount_fen", _fen(_value(m[1], m[2]))), keep=2)
    text = _take(_NUMBER, text, lambda m: _range(fig, m))
    text = _take(QUANTITY, text, lambda m: setattr(fig, "quantity", int(m[1])))
    fig.rest = text
    # 3000以上2000以下 contradicts itself; read it as the range it must mean
    if (
        fig.price_min_fen is not None
        and fig.price_max_fen is not None
        and fig.price_min_fen > fig.price_max_fen
    ):
        fig.price_min_fen, fig.price_max_fen = fig.price_max_fen, fig.price_min_fen
    if (
        fig.followers_min is not None
        and fig.followers_max is not None
        and fig.followers_min > fig.followers_max
    ):
        fig.followers_min, fig.followers_max = fig.followers_max, fig.followers_min
    return fig


def _take(pattern: re.Pattern[str], text: str, use: object, keep: int = 0) -> str:
    """Calls use(match) for each match and blanks what was read (keeping the first `keep` chars)."""
    assert callable(use)
    out, last = [], 0
    for m in pattern.finditer(text):
        if use(m) is False:
            continue
        out.append(text[last : m.start() + keep])
        out.append(" ")
        last = m.end()
    out.append(text[last:])
    return "".join(out)


_FIGURE = re.compile(r"(?<![\d.])" + NUM + r"(?![\d.])")


def lone_amount_fen(text: str) -> int | None:
    """The one figure of a message about money (往账户里充点钱 5000, 提现吧 500元), in fen; None
    when there is none or several."""
    found = _FIGURE.findall(text)
    return _fen(_value(*found[0])) if len(found) == 1 else None


def _value(number: str, unit: str | None) -> float:
    return float(number) * _UNIT[unit]


def _fen(yuan: float) -> int:
    return round(yuan * 100)


_COUNTED = re.compile(r"\s*(份|条|篇|次|场|期|张|支|套|款|家|位)")


def _range(fig: Figures, m: re.Match[str]) -> bool:
    """Reads one number or range as price or followers; False leaves it (a quantity, an ordinal …)."""
    before = m.string[max(0, m.start() - 8) : m.start()]
    after = m.string[m.end() : m.end() + 6]
    if not m[2] and not m[3] and _COUNTED.match(after):
        return False  # 发1份, 拍2条: a count, never money (a quantity, read below)
    plus = bool(m[5])
    low = _value(m[1], m[2] or (m[4] if m[3] and _fits(m) else None))
    high = _value(m[3], m[4]) if m[3] else None
    money = _is_money(before, after, m, plus)
    # 十万+ with no money word is a follower count
    followers = _is_followers(before, after) or (plus and not _money_word(before, after))
    if not followers and not money:
        if high is None and low >= 100 and _plain(after):
            fig.bare = low
        return False
    lo, hi = _bounds(low, high, before, after, plus, followers)
    # 3000以上5000以下: each number sets its own bound
    if followers:
        fig.followers_min = fig.followers_min if lo is None else int(lo)
        fig.followers_max = fig.followers_max if hi is None else int(hi)
    else:
        fig.price_min_fen = fig.price_min_fen if lo is None else _fen(lo)
        fig.price_max_fen = fig.price_max_fen if hi is None else _fen(hi)
    return True


def _fits(m: re.Match[str]) -> bool:
    """3-5k means 3k-5k, but 500-5k keeps its 500."""
    return float(m[1]) * _UNIT[m[4]] <= float(m[3]) * _UNIT[m[4]] and float(m[1]) <= float(m[3])


def _plain(after: str) -> bool:
    """Nothing after the figure makes it something else (a count, a date, a percentage)."""
    return not after.lstrip()[:1] or after.lstrip()[:1] in ",?的吧呢 " or not after.lstrip()[:1].isalnum()


def _is_followers(before: str, after: str) -> bool:
    tail = re.sub(r"^\s*(以上|以下|左右|以内|\+|的|个|多|级|级别)*\s*", "", after)
    return tail.startswith(("粉", "关注")) or "粉丝" in before[-7:] or "粉" in before[-2:]


def _money_word(before: str, after: str) -> bool:
    per_piece = bool(_PER_PIECE.search(before))  # 一篇500, 每条300
    return per_piece or after.lstrip().startswith(_MONEY_AFTER) or any(w in before for w in _MONEY_BEFORE)


def _is_money(before: str, after: str, m: re.Match[str], plus: bool) -> bool:
    if m[2] or m[4] or _money_word(before, after):
        return True
    if after.lstrip().startswith(
        ("个", "份", "篇", "条", "套", "单", "次", "场", "号", "天", "月", "点", "%", "年")
    ):
        return False
    bounded = after.lstrip().startswith(_MIN + _MAX + _ABOUT) or any(
        w in before for w in _MIN_BEFORE + _MAX_BEFORE + _ABOUT_BEFORE
    )
    return (bounded or plus or m[3] is not None) and float(m[1]) >= 50


def _bounds(
    low: float, high: float | None, before: str, after: str, plus: bool, followers: bool
) -> tuple[float | None, float | None]:
    if high is not None:
        return low, high
    after = after.lstrip().removeprefix("粉丝").removeprefix("粉").lstrip("元块钱 ")
    after = _PER.sub("", after, count=1).lstrip()
    before = before.rstrip()
    said = next((kind for w, kind in _BEFORE if w in before[-4:]), None)
    if after.startswith(_MAX) or said == "max":
        return None, low
    if plus or after.startswith(_MIN) or said == "min":
        return low, None
    if after.startswith(_ABOUT) or any(w in before for w in _ABOUT_BEFORE):
        return low * (1 - APPROX), low * (1 + APPROX)
    if followers:
        return low, None
    if "预算" in before:
        return None, low
    return low * (1 - APPROX), low * (1 + APPROX)
