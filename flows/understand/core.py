"""understand(): a message and its context → an intent with typed slots. Pure: no I/O, no clock."""

from __future__ import annotations

import datetime as dt
import re

from flows.when import find_when

from .intents import CLEAR, GREETING, GUESS, THANKS, Reading, classify
from .normalize import URL, normalize
from .numbers import APPROX, Figures, arabic, read_figures
from .types import Context, Intent, Slots, Understanding
from .vocab import Vocabulary
from .words import Found, find_words

# Below this confidence the reading is a guess: the handler may ask the optional language model
# (bot.channels.llm.ask) and prefer its answer when it is valid.
THRESHOLD = 0.6
# What is read of a message. WeChat text messages are at most ~2,000 bytes; a request is said well
# within this, and some of the patterns cost the square of the length on pathological input.
MAX_CHARS = 500

# Intents for which what is asked about (platform, tags, budget …) means something to the handler;
# keywords only where they are searched for. Elsewhere (博主没发，退款) they are noise.
_ABOUT_SERVICES = frozenset({Intent.SEARCH, Intent.REFINE, Intent.QUESTION})
_SEARCHING = frozenset({Intent.SEARCH, Intent.REFINE})
# 下周五能发吗 asks about publishing; 明天会下雨吗 does not
_PUBLISHING = re.compile(r"(发|交付|完成|上线|排期|档期|安排|来得及|赶得上|能|可以|行).{0,4}(吗|么|嘛|不|\?)")
# In the order form: what only counts as an aside when asked for (see _in_the_form)
_FORM_WORDS = frozenset({Intent.HUMAN, Intent.COMPLAINT, Intent.MY_ORDERS, Intent.ABOUT})
_ASKED = re.compile(
    r"(吗|么|嘛|呢|怎么办|咋办|怎么弄|怎么填|什么意思|啥意思|\?)$|^请问|怎么|如何|为什么|多少"
)
_REQUEST = re.compile(r"我要|我想|帮我|给我|找|转|叫|联系|接|换|请|让|投诉(你们|一下)|不填了|不想填")
# Courtesy in front of a request says nothing about it: 你好，第二个 / 麻烦问下，退款怎么退
_COURTESY = re.compile(
    r"^(((你好|您好|你们好|hi(?![a-z])|hello|哈喽|嗨|在吗|在不在|在的吗|请问一下|请问|麻烦问下|麻烦问一下|"
    r"打扰一下|打扰了|问一下|问下)[啊呀呢,~ !?]*)|((亲亲|亲|老板|美女|客服|麻烦你)[啊呀呢]*[,~ !?]+))+"
)
_AFTERWORD = re.compile(
    r"[, ]*(谢谢|谢啦|谢了|多谢|麻烦了|麻烦你了|辛苦了|哈哈+|嘿嘿|呵呵|急急急|急|在线等|拜托了|拜托"
    r"|thx|thanks)[啊呀啦了哈!~ ,]*$"
)
_COUNTING = frozenset({Intent.ORDER, Intent.ADD_TO_CART})


def understand(text: str, context: Context, vocab: Vocabulary, now: dt.datetime) -> Understanding:
    """What `text` means, read with the conversation's `context` and the catalog's `vocab`.

    `now` anchors relative dates (明天下午三点) in Beijing time; it is passed in so that the step
    stays pure and testable. Only the first MAX_CHARS characters are read.
    """
    text = text[:MAX_CHARS]
    norm = _without_courtesy(normalize(text))
    if not norm:
        return Understanding(Intent.UNKNOWN, Slots(), 0.1)  # a lone emoji, punctuation
    digits = arabic(norm, vocab.numeral_words)
    fig = read_figures(digits)
    said = find_when(norm, now)  # normalised: 1.5萬 or １．５ｋ are no dates
    found = find_words(fig.rest, vocab, norm[said.span[0] : said.span[1]] if said else "")
    reading = _in_context(classify(digits, fig, found, context), digits, context, said is not None)
    when = said.at if said and reading.intent is not Intent.PICK else None  # 看看2号 is no date
    pasted = URL.search(text.lower()) is not None
    return Understanding(
        reading.intent, _slots(reading, fig, found, when), _confidence(reading, found, pasted)
    )


def _keywords(reading: Reading, found: Found) -> tuple[str, ...]:
    """Words to search for: in a search all content words, in a question the service named
    (小鹿爱咖啡多少钱), elsewhere none."""
    if reading.intent in _SEARCHING:
        return (*found.titles, *found.keywords)
    return tuple(found.titles) if reading.intent is Intent.QUESTION else ()


def _without_courtesy(norm: str) -> str:
    """你好，2 is 2, 麻烦问下，退款怎么退 a refund question and 第二个，谢谢 a pick; 你好啊老板 and
    好的谢谢 stay what they are."""
    if GREETING.match(norm) or THANKS.match(norm):
        return norm
    return _AFTERWORD.sub("", _COURTESY.sub("", norm)) or norm


def _in_context(reading: Reading, text: str, context: Context, dated: bool) -> Reading:
    """What the rules read, reconsidered with what else the message holds and where it is said."""
    if context.form_step is not None:
        return _in_the_form(reading, text, dated)
    if reading.intent is Intent.UNKNOWN and dated and _PUBLISHING.search(text):
        return Reading(Intent.QUESTION, CLEAR - 0.1, "timing")  # 下周五能发吗
    return reading


def _slots(reading: Reading, fig: Figures, found: Found, when: dt.datetime | None) -> Slots:
    if reading.intent not in _ABOUT_SERVICES:
        found, fig = Found(), _only_order_figures(fig)
    elif (bare := _plain_budget(reading, fig, found)) is not None:
        fig.price_min_fen = round(bare * (1 - APPROX) * 100)  # 抖音探店3000: about 3,000
        fig.price_max_fen = round(bare * (1 + APPROX) * 100)
    searching = reading.intent in _SEARCHING
    return Slots(
        platform=found.platforms[0] if found.platforms else None,
        category=found.categories[0] if found.categories else None,
        tags=tuple(found.tags),
        keywords=_keywords(reading, found),
        form=found.forms[0] if found.forms else None,
        price_min_fen=fig.price_min_fen,
        price_max_fen=fig.price_max_fen,
        followers_min=fig.followers_min,
        followers_max=fig.followers_max,
        sort=found.sorts[0] if found.sorts and searching else None,
        quantity=_quantity(reading, fig),
        ordinal=fig.ordinal if fig.ordinal is not None else _lone_number(reading, fig),
        package=fig.package if fig.package is not None else _lone_package(reading, fig),
        order_no=fig.order_no,
        amount_fen=fig.amount_fen,
        when=when,
        topic=reading.topic,
    )


def _plain_budget(reading: Reading, fig: Figures, found: Found) -> float | None:
    """A plain figure in a search for something named is its budget (小红书美食 5000)."""
    no_price = fig.price_min_fen is None and fig.price_max_fen is None
    return fig.bare if reading.intent in _SEARCHING and found.subject and no_price else None


def _in_the_form(reading: Reading, text: str, dated: bool) -> Reading:
    """In the order form most messages are answers: a brand called 人工智能科技 or 投诉处理中心, a
    contact 李经理, a publish time 下周五晚上7点能发吗. Words that elsewhere ask for a person, a
    complaint or an order only do so here when said as a request or a question; a bare question
    about the step (没有链接怎么办) is help."""
    asked = bool(_ASKED.search(text))
    if reading.intent in _FORM_WORDS and not asked and not _REQUEST.search(text):
        return Reading(Intent.UNKNOWN, 0.3)
    if reading.intent in (Intent.SEARCH, Intent.UNKNOWN) and asked and not dated:
        return Reading(Intent.HELP, CLEAR - 0.1)
    return reading


def _only_order_figures(fig: Figures) -> Figures:
    return Figures(
        order_no=fig.order_no,
        package=fig.package,
        ordinal=fig.ordinal,
        amount_fen=fig.amount_fen,
        quantity=fig.quantity,
        rest=fig.rest,
    )


def _quantity(reading: Reading, fig: Figures) -> int | None:
    """How many to order; in a search only a real count (找3个博主), not the 一 of 一个."""
    if reading.intent in _COUNTING or (reading.intent in _SEARCHING and (fig.quantity or 0) > 1):
        return fig.quantity
    return None


def _lone_number(reading: Reading, fig: Figures) -> int | None:
    """A message that is just 2 picks item 2 of the list."""
    if reading.intent is Intent.PICK:
        m = re.search(r"\d{1,2}", fig.rest)
        return int(m[0]) if m else None
    return None


def _lone_package(reading: Reading, fig: Figures) -> int | None:
    """A message that is just 2 while an item is on view orders its package 2."""
    if reading.intent is Intent.ORDER and fig.quantity is None:
        m = re.fullmatch(r"\D{0,3}(\d)\D{0,2}", fig.rest.strip())
        return int(m[1]) if m else None
    return None


def _confidence(reading: Reading, found: Found, pasted: bool) -> float:
    confidence = reading.confidence
    if pasted:
        confidence = min(confidence, GUESS)  # a share text around a link: its words are not a request
    if found.corrected:
        confidence -= 0.1  # a word was read by its sound
    if reading.intent is Intent.SEARCH and not (found.subject or found.sorts) and confidence > GUESS:
        confidence = min(confidence, 0.75)  # only figures or unknown words to go on
    return round(max(0.0, min(1.0, confidence)), 2)
