"""understand(): a message and its context → an intent with typed slots. Pure: no I/O, no clock."""

from __future__ import annotations

import datetime as dt
import re

from flows.when import find_when

from .intents import CLEAR, GREETING, GUESS, THANKS, Reading, classify
from .normalize import URL, normalize
from .numbers import APPROX, Figures, arabic, lone_amount_fen, read_figures
from .types import LAST, Context, Intent, Slots, Understanding
from .vocab import COURSES, CREATORS, Vocabulary
from .words import Found, find_words

# Below this confidence the reading is a guess: the handler may ask the optional language model
# (bot.channels.llm.ask) and prefer its answer when it is valid.
THRESHOLD = 0.6
# What is read of a message. WeChat text messages are at most ~2,000 bytes; a request is said well
# within this, and some of the patterns cost the square of the length on pathological input.
MAX_CHARS = 500
MEMO_SIZE = 4096  # messages remembered per vocabulary (core.understand)

# Intents for which what is asked about (platform, tags, budget …) means something to the handler;
# keywords only where they are searched for. Elsewhere (博主没发，退款) they are noise.
_ABOUT_SERVICES = frozenset({Intent.SEARCH, Intent.REFINE, Intent.QUESTION})
_SEARCHING = frozenset({Intent.SEARCH, Intent.REFINE})
# 下周五能发吗 asks about publishing; 明天会下雨吗 does not
_PUBLISHING = re.compile(r"(发|交付|完成|上线|排期|档期|安排|来得及|赶得上|能|可以|行).{0,4}(吗|么|嘛|不|\?)")
# In the order form: what only counts as an aside when asked for (see _in_the_form)
# A date only counts when the message is about when something happens: ordering, publishing,
# scheduling. 今天天气怎么样, 我昨天梦见…, 2号的详细信息 say a day but schedule nothing.
_SCHEDULE = re.compile(
    r"发|上线|排期|档期|安排|投放|交付|完成|出稿|交稿|开播|直播|拍|开始|截止|之前|以前|前|开业|活动|上新"
    r"|推|预约|约|定在|订在|要|能|可以|来得及|赶|时间|时候|几号|哪天|\?$"
)
# Without an intent only words of publishing itself make a day a date (明天下午三点发布).
_PUBLISH_WORDS = re.compile(r"发|上线|排期|档期|交付|完成|出稿|交稿|开播|截止|之前|以前|前")
_PAST = re.compile(r"昨天|前天|上周|上个月|去年|刚才|梦|之前说|说好|已经|了吗?$|过了")
_TIMED = frozenset({Intent.ORDER, Intent.ADD_TO_CART, Intent.QUESTION, Intent.MY_ORDERS, Intent.SEARCH})
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
_LEAST_BUDGET = 50  # yuan: a plain figure below it is a count, not a budget
_MONEY = frozenset({Intent.TOPUP, Intent.WITHDRAW})


def understand(text: str, context: Context, vocab: Vocabulary, now: dt.datetime) -> Understanding:
    """What `text` means, read with the conversation's `context` and the catalog's `vocab`.

    `now` anchors relative dates (明天下午三点) in Beijing time; it is passed in so that the step
    stays pure and testable. Only the first MAX_CHARS characters are read. The same message in the
    same context within the same minute is read once (the step is pure; dates are kept to the minute).
    """
    text = text[:MAX_CHARS]
    key = (text, context, now.replace(second=0, microsecond=0))
    found: Understanding | None = vocab.memo.get(key)
    if found is None:
        if len(vocab.memo) >= MEMO_SIZE:
            vocab.memo.clear()  # bounded; refilled by what people say now
        found = vocab.memo[key] = _read(text, context, vocab, now)
    return found


def _read(text: str, context: Context, vocab: Vocabulary, now: dt.datetime) -> Understanding:
    norm = _without_courtesy(normalize(text))
    if not norm:
        return Understanding(Intent.UNKNOWN, Slots(), 0.1)  # a lone emoji, punctuation
    digits = arabic(norm, vocab.numeral_words)
    fig = read_figures(digits)
    said = find_when(norm, now)  # normalised: 1.5萬 or １．５ｋ are no dates
    found = find_words(fig.rest, vocab, norm[said.span[0] : said.span[1]] if said else "")
    reading = _in_context(classify(digits, fig, found, context), fig, digits, context, said is not None)
    alone = (
        said is not None
        and reading.intent is not Intent.PICK
        and not re.sub(r"[\W\d_]", "", norm[: said.span[0]] + norm[said.span[1] :])
    )
    when = said.at if said and (alone or _scheduling(reading, digits, context, said.at, now)) else None
    pasted = URL.search(text.lower()) is not None
    slots = _slots(reading, fig, found, when, digits)
    return Understanding(reading.intent, slots, _confidence(reading, found, pasted))


def _only(text: str, span: tuple[int, int]) -> bool:
    """Nothing but the date is said (2026-12-20 19:00): in a reply, it is when something happens."""
    return not re.sub(r"[\W\d_]", "", text[: span[0]] + text[span[1] :])


def _scheduling(reading: Reading, text: str, context: Context, at: dt.datetime, now: dt.datetime) -> bool:
    """Whether the date said is when something should happen (see _SCHEDULE)."""
    if context.form_step is not None:
        return True  # the form asks for a publish time; it judges past dates itself
    if at.date() < now.astimezone(at.tzinfo).date() or _PAST.search(text):
        return False
    if reading.intent is Intent.UNKNOWN:
        return bool(_PUBLISH_WORDS.search(text))
    if reading.intent not in _TIMED:
        return False
    if reading.intent is Intent.QUESTION and reading.topic not in ("timing", None, "price"):
        return False
    return bool(_SCHEDULE.search(text))


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


# Second looks: sentence shapes that single trigger words misread (see _second_look).
_NOT_BUYING = re.compile(r"(不|别|不想|不打算|先不|暂时不|暂不|还是不)(要|想要|买|下单|下了|订|拍|购买)")
_CHECK_ORDERS = re.compile(r"(查|看|瞅)(一?下|看|查)?(我的|我)?(订单|单子)")
_WHEN_READY = re.compile(
    r"(啥|什么|几)时候.{0,3}(好|完|发|到|能好|出来)|(好|完成)了(吗|没|么)|还要多久|多久能好"
)
_REAL_PEOPLE = re.compile(r"真人|真实的人|机器人|假人")
_HEARD_OF_US = re.compile(r"(刷到|看到|听说|听朋友说|搜到)(了)?(你们|你家|贵司)")
_CONTRACT = re.compile(r"合同|签约|协议|盖章")
_JUDGED = re.compile(r"是不是.{0,4}(专业|靠谱|正规|真实|真的|有效|好|水)|(专业|靠谱|正规|真实)(吗|么|嘛|不$)")
_LOOKING = re.compile(r"找|要|推荐|有没有|想|求|来个|给我")
_DOUBT = re.compile(r"吗|么|嘛|\?|是不是|还是|真的")
_STAFF = re.compile(r"客服|人工|工作人员|接待")  # 有真人客服吗 does ask for a person
_DELAYED = re.compile(
    r"(说好|答应|承诺|不是说).{0,12}(现在|都|还|结果|怎么|今天)|都.{0,4}([天周]|礼拜|星期)了|没人(处理|跟进)|(怎么|咋)(搞|弄|做事)的|给个(说法|交代|解释)"
    r"|(还没|还不|都没).{0,6}(发|到|好|回|动静)[^吗么?]{0,3}$|拖了|一拖再拖|耽误"
    r"|这么慢|太慢|效率.{0,3}(低|差)|到底(行不行|能不能|靠不靠谱)|啥玩意|搞啥"
)
_ORDINAL_WORDS = (
    (re.compile(r"^(no[.,]?|#|编号) ?(\d{1,2})"), None),
    (re.compile(r"最上面|最前面|第一行|头一个|排第一"), 1),
    (re.compile(r"最后(那|这)?(一|1)?(个|家|位|条|款)|最下面|倒数第(一|1)"), LAST),
)
# 倒数第二个: counted from the end (-2); 3号的详情 / 5号那个: item 3, 5 of the list, not a day
_FROM_THE_END = re.compile(r"倒数第\s*(\d{1,2})")
_NUMBERED = re.compile(
    r"(?<![\d月.-])(\d{1,2})\s*号\s*(的|那个|那家|那位|这个)?\s*(详情|详细|介绍|信息|资料|看看|看下|怎么样|咋样|那个|那家|那位)"
)
_OPENABLE = frozenset({Intent.UNKNOWN, Intent.QUESTION, Intent.SEARCH, Intent.PICK})
# An item of the list asked about (第一个多少钱, 第2个靠谱吗) is opened: its detail answers it.
_ABOUT_AN_ITEM = frozenset({"price", "quality", "timing", "fake", "audience", "account", None})
_TOPPING_UP = re.compile(r"充")


def _second_look(reading: Reading, text: str, context: Context) -> Reading:
    """The whole sentence weighed where one word decided: 我不想买了 orders nothing, 你们的达人
    是真人吗 asks about fakes, not for a person; a delay told angrily is a complaint."""
    intent = reading.intent
    if intent is Intent.SEARCH and _HEARD_OF_US.search(text):
        return Reading(Intent.UNKNOWN, 0.3)  # 在抖音刷到你们: how they found us, not a search
    if intent in _COUNTING and _NOT_BUYING.search(text):
        return Reading(Intent.CANCEL, GUESS) if context.last_order else Reading(Intent.UNKNOWN, 0.3)
    if (
        intent is Intent.HUMAN
        and _REAL_PEOPLE.search(text)
        and _DOUBT.search(text)
        and not _STAFF.search(text)
    ):
        return Reading(Intent.QUESTION, CLEAR, "fake")
    if (intent is Intent.PAY or reading.topic in ("howto", "payment")) and _CONTRACT.search(text):
        return Reading(Intent.QUESTION, CLEAR, "contract")  # 合同怎么走流程: the contract is the subject
    if intent is Intent.SEARCH and _JUDGED.search(text) and not _LOOKING.search(text):
        return Reading(Intent.QUESTION, CLEAR, "quality")  # 你们的主播是不是都挺专业的
    if intent in (Intent.ORDER, Intent.UNKNOWN) and _CHECK_ORDERS.search(text):
        return Reading(Intent.MY_ORDERS, CLEAR)
    if intent in (Intent.UNKNOWN, Intent.QUESTION, Intent.MY_ORDERS) and _DELAYED.search(text):
        return Reading(Intent.COMPLAINT, CLEAR - 0.1)
    if intent is Intent.UNKNOWN and context.last_order and _WHEN_READY.search(text):
        return Reading(Intent.MY_ORDERS, CLEAR - 0.1)
    if reading.topic == "timing" and context.last_order and context.viewing is None:
        return Reading(Intent.MY_ORDERS, CLEAR - 0.1)  # 还要多久, said about the order just placed
    return reading


def _ordinal_word(text: str, context: Context) -> int | None:
    """No.3, 最上面那个: an item of the list said other ways than 第三个."""
    if not context.has_list:
        return None
    for pattern, value in _ORDINAL_WORDS:
        if m := pattern.search(text):
            return value if value is not None else int(m[2])
    return None


def _picked(reading: Reading, fig: Figures, text: str, context: Context) -> Reading | None:
    """An item of the shown list, however it is said: No.3, 最后一个, 第②个 (a package only while
    an item is on view), 第一个多少钱 (a question about the item: open it)."""
    if not context.has_list or context.viewing is not None:
        return None
    if (m := _FROM_THE_END.search(text)) and reading.intent in _OPENABLE:
        return Reading(Intent.PICK, CLEAR, ordinal=-int(m[1]))
    if (m := _NUMBERED.search(text)) and reading.intent in _OPENABLE:
        return Reading(Intent.PICK, CLEAR, ordinal=int(m[1]))
    if (said := _ordinal_word(text, context)) is not None and reading.intent is Intent.UNKNOWN:
        return Reading(Intent.PICK, CLEAR, ordinal=said)
    if reading.intent is Intent.ORDER and fig.package is not None and fig.quantity is None:
        return Reading(Intent.PICK, CLEAR, ordinal=fig.package)
    if reading.intent is Intent.QUESTION and fig.ordinal is not None and reading.topic in _ABOUT_AN_ITEM:
        return Reading(Intent.PICK, CLEAR, ordinal=fig.ordinal)
    return None


def _in_context(reading: Reading, fig: Figures, text: str, context: Context, dated: bool) -> Reading:
    """What the rules read, reconsidered with what else the message holds and where it is said."""
    if (picked := _picked(reading, fig, text, context)) is not None:
        return picked
    if reading.intent is Intent.BALANCE and _TOPPING_UP.search(text) and lone_amount_fen(text):
        return Reading(Intent.TOPUP, CLEAR)  # 充一下余额 2000块
    reading = _second_look(reading, text, context)
    if context.form_step is not None:
        return _in_the_form(reading, text, dated)
    if reading.intent is Intent.UNKNOWN and dated and _PUBLISHING.search(text):
        return Reading(Intent.QUESTION, CLEAR - 0.1, "timing")  # 下周五能发吗
    return reading


def _slots(reading: Reading, fig: Figures, found: Found, when: dt.datetime | None, digits: str) -> Slots:
    if reading.intent not in _ABOUT_SERVICES:
        found, fig = Found(), _only_order_figures(fig)
    elif (bare := _plain_budget(reading, fig, found)) is not None:
        fig.price_min_fen = round(bare * (1 - APPROX) * 100)  # 抖音探店3000: about 3,000
        fig.price_max_fen = round(bare * (1 + APPROX) * 100)
    searching = reading.intent in _SEARCHING
    return Slots(
        platform=found.platforms[0] if found.platforms else None,
        category=_category(reading, found),
        tags=tuple(found.tags),
        keywords=_keywords(reading, found),
        form=found.forms[0] if found.forms else None,
        price_min_fen=fig.price_min_fen,
        price_max_fen=fig.price_max_fen,
        followers_min=fig.followers_min,
        followers_max=fig.followers_max,
        sort=found.sorts[0] if found.sorts and searching else None,
        quantity=_quantity(reading, fig),
        ordinal=reading.ordinal or (fig.ordinal if fig.ordinal is not None else _lone_number(reading, fig)),
        package=_package(reading, fig),
        order_no=fig.order_no,
        amount_fen=_amount(reading, fig, digits),
        when=when,
        topic=reading.topic,
    )


def _category(reading: Reading, found: Found) -> str | None:
    """The category asked for; a question about trust or terms that merely mentions 达人
    (你们的达人靠谱吗) asks for no category."""
    if not found.categories:
        return None
    if COURSES in found.categories and CREATORS not in found.categories:
        return COURSES  # 想学短视频剪辑: whatever is learnt, a course is bought
    if CREATORS not in found.categories:
        return found.categories[-1]  # 投放想做个复盘: the head comes last, as Chinese phrases go
    if found.categories[0] == CREATORS and reading.intent is Intent.QUESTION:
        return None if reading.topic not in ("price", "timing", None) else CREATORS
    return found.categories[0]


def _plain_budget(reading: Reading, fig: Figures, found: Found) -> float | None:
    """A plain figure in a search for something named is its budget (小红书美食 5000); a small one
    is a count (出一份调研, 拍两条), no service costs a few yuan."""
    no_price = fig.price_min_fen is None and fig.price_max_fen is None
    plausible = fig.bare is not None and fig.bare >= _LEAST_BUDGET
    return fig.bare if reading.intent in _SEARCHING and found.subject and no_price and plausible else None


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


def _package(reading: Reading, fig: Figures) -> int | None:
    if reading.ordinal is not None:
        return None  # 第②个 on a list is its second item
    return fig.package if fig.package is not None else _lone_package(reading, fig)


def _amount(reading: Reading, fig: Figures, text: str) -> int | None:
    """充值/提现 and the amount a few words away (往账户里充点钱 5000): the one figure is it."""
    if fig.amount_fen is None and reading.intent in _MONEY:
        return lone_amount_fen(text)
    return fig.amount_fen


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
