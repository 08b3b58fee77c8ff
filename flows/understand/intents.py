"""Which intent a message carries: ordered rules over the normalised text, its numbers and its words.

The rules go from the most specific and most costly to miss (a complaint, a person, money) to the
most general (search, then small talk). Each rule is a phrase pattern, optionally split into an
action (我要退款) and a question about it (退款怎么退 → QUESTION, topic refund).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .numbers import Figures
from .types import Context, Intent
from .words import Found

# How sure a rule is; understand() lowers these for typo-corrected words and guesses.
SURE = 0.95  # the whole message is a known phrase
CLEAR = 0.85  # a rule's trigger words are present
GUESS = 0.5  # a plausible reading, nothing more

ASKING = re.compile(
    r"吗|么|嘛|怎么|怎样|如何|多少|多久|几天|几号|是否|能否|能不能|可不可以|可以不|会不会|有没有|啥|什么|哪|\?|呢|规则|政策|流程|咋"
)


def _re(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(words))


COMPLAINT = _re(
    "投诉",
    "太差",
    "差劲",
    "垃圾",
    "骗子",
    "骗人",
    "骗钱",
    "坑人",
    "被坑",
    "坑爹",
    "差评",
    "举报",
    "气死",
    "生气",
    "失望",
    "什么破",
    "态度差",
    "态度太",
    "不满意",
    "太烂",
    "很烂",
    "烂透",
    "太慢了",
    "没人理",
    "没人回",
    "不回消息",
    "什么玩意",
    "忽悠",
    "黑店",
    "维权",
    "12315",
    "消协",
    "太坑",
    "恶心",
    "离谱",
    "搞什么",
)
HUMAN = _re(
    "人工",
    "客服",
    "真人",
    "活人",
    "找个人",
    "有人吗在",
    "转人工",
    "联系你们",
    "电话多少",
    "打电话",
    "联系方式",
    "经理",
    "对接人",
    "商务",
    "销售",
    "负责人",
    "找你们老板",
    "不想跟机器",
    "机器人吗",
    "是机器人",
)
FAKE = _re(
    "刷粉",
    "刷量",
    "刷赞",
    "买粉",
    "刷播放",
    "刷评论",
    "僵尸粉",
    "刷数据",
    "买赞",
    "刷单",
    "涨粉",
    "买流量",
    "刷阅读",
    "刷关注",
    "假粉",
    "机器粉",
    "互粉",
)
WITHDRAW = _re("提现", "取现", "提钱", "提出来", "提到微信", "提到零钱", "转到微信", "转到零钱", "兑现")
TEAM = _re(
    "团队",
    "下级",
    "下线",
    "我邀请的人",
    "邀请了多少",
    "邀请了几",
    "我拉的人",
    "拉了多少人",
    "我的成员",
    "我带的人",
    "邀请的人",
    "我的徒弟",
    "我的好友列表",
)
EARNINGS = _re(
    "收益",
    "佣金",
    "赚了多少",
    "赚多少",
    "分成",
    "提成",
    "我的收入",
    "返利",
    "我赚的",
    "赚的钱",
    "奖励",
    "返佣",
    "挣了多少",
    "挣多少",
)
INVITE = _re(
    "邀请",
    "推广码",
    "邀请码",
    "海报",
    "分享赚",
    "拉人",
    "推荐给朋友",
    "推荐朋友",
    "赚佣金",
    "我的链接",
    "推广员",
    "分销",
    "合伙人",
    "带朋友",
    "拉新",
    "怎么赚钱",
    "介绍朋友",
    "推给朋友",
    "专属码",
)
TOPUP = _re("充值", "充钱", "充点", "充个", "预存", "存点钱", "存钱", r"充\s*\d", "充进")
BALANCE = _re(
    "余额", "还有多少钱", "剩多少钱", "钱包", "账户里", "还剩多少", "剩下多少钱", "账户有多少", "余款"
)
REFUND = _re("退款", "退钱", "退货", "钱退", "退回来", "退给我", "退费", "把钱要回", "退掉")
INVOICE = _re("发票", "开票", "抬头", "税号", "专票", "普票", "报销凭证")
CANCEL = _re("取消", "不要了", "不买了", "撤单", "撤销", "不想要了", "算了不要", "不做了", "作废")
PAY = _re(
    "付款",
    "支付",
    "付钱",
    "买单",
    "结账",
    "交钱",
    "打款",
    "扫码付",
    "付了",
    "去付",
    "怎么付",
    "转账",
    "付一下",
    "结算",
    "付费",
)
MY_ORDERS = _re(
    "订单",
    "查单",
    "单子",
    "我的单",
    "进度",
    "到哪了",
    "到哪一步",
    "什么时候完成",
    "什么时候好",
    "完成了吗",
    "做好了吗",
    "发了吗",
    "发布了吗",
    "我买的",
    "我下的",
    "买过的",
    "什么时候能发",
    "什么时候发布",
    "几时完成",
    "多久完成",
    "怎么样了",
    "处理了吗",
    "审核",
)
HOWTO = _re(
    "怎么下单",
    "如何下单",
    "怎么买",
    "如何购买",
    "怎么购买",
    "下单流程",
    "购买流程",
    "合作流程",
    "流程是",
    "怎么操作",
    "怎么合作",
    "如何合作",
    "步骤",
    "怎么弄",
    "怎么约",
    "怎么预约",
    "怎么订",
    "咋下单",
    "咋买",
    "怎么找达人",
    "下单步骤",
    "怎么拍",
    "怎么搞",
    "流程",
)
CART = _re("购物车", "加购", "加车", "放进车", "先收藏", "收藏一下", "加入车")
ORDER = _re(
    "下单",
    "就要这个",
    "要这个",
    "买这个",
    "就这个",
    "拍这个",
    "订这个",
    "我要了",
    "就它了",
    "就他了",
    "就她了",
    "要了",
    "买了",
    "来一份",
    "定了",
    "约这个",
    "预定",
    "立即购买",
    "购买",
    "订购",
    "下个单",
    "下订单",
    "拍下",
    "就选",
    "选这个",
    "定这个",
    "这个吧",
    "这个可以",
    "买它",
    "约他",
    "约她",
    "我要买",
    "要买",
    "我买",
)
PRICE = _re(
    "多少钱",
    "价格",
    "报价",
    "收费",
    "费用",
    "价钱",
    "贵不贵",
    "什么价",
    "价目",
    "怎么卖",
    "几块",
    "多少米",
    "啥价",
    "价位",
    "多钱",
    "咋收费",
    "怎么算钱",
    "多少费用",
)
TIMING = _re(
    "多久",
    "几天",
    "多长时间",
    "周期",
    "什么时候发",
    "交付时间",
    "多快",
    "时效",
    "工期",
    "几号能",
    "能多快",
    "多少天",
    "什么时候能",
    "急单",
    "加急",
    "赶得上",
    "来得及",
)
QUALITY = _re(
    "靠谱",
    "真实",
    "效果",
    "保障",
    "质量",
    "案例",
    "真的吗",
    "可信",
    "正规",
    "安全吗",
    "有用吗",
    "数据是真",
    "保证",
    "没效果",
    "不满意怎么",
    "售后",
)
CONTRACT = _re("合同", "签约", "协议", "对公", "盖章")
PAYMENT_Q = _re(
    "怎么付", "怎么支付", "支付方式", "付款方式", "支付宝", "信用卡", "花呗", "分期", "对公转账", "怎么给钱"
)
ABOUT = _re(
    "卖什么",
    "做什么的",
    "干什么的",
    "干嘛的",
    "是做啥",
    "卖啥",
    "有什么服务",
    "有哪些服务",
    "什么服务",
    "业务范围",
    "主要做",
    "提供什么",
    "介绍一下你们",
    "你们是谁",
    "你们是什么",
    "有什么产品",
    "能做什么",
    "能帮我做什么",
    "这是什么",
    "你们家有什么",
    "都有什么",
    "都有啥",
    "有啥服务",
    "业务",
    "你们是",
    "是什么平台",
)
HELP = _re(
    "帮助",
    "^help$",
    "菜单",
    "怎么用",
    "使用说明",
    "说明书",
    "功能",
    "你会什么",
    "你能干",
    "指令",
    "命令",
    "不会用",
    "教我",
    "怎么玩",
    "有什么功能",
    "能干嘛",
    "用法",
    "^\\?$",
    "^帮我$",
    "看不懂",
    "不懂",
)
REFINE = _re(
    "还有吗",
    "还有没有",
    "还有别的",
    "还有其他",
    "更多",
    "下一页",
    "换一批",
    "再来",
    "别的",
    "其他的",
    "多来几个",
    "再看看",
    "再推荐",
    "呢$",
    "一点",
    "一些",
    "只要",
    "只看",
    "换个",
    "换成",
    "有没有更",
    "还有更",
    "再多",
    "继续",
)
SEARCH = _re(
    "找",
    "推荐",
    "有没有",
    "搜",
    "想投",
    "想做",
    "推广",
    "宣传",
    "合作",
    "需要",
    "要一个",
    "来个",
    "有什么",
    "有哪些",
    "哪些",
    "哪个",
    "看看",
    "介绍",
    "约",
    "资源",
    "想要",
    "有吗",
    "有么",
)
GREETING = re.compile(
    r"^(你好|您好|hi|hello|哈喽|哈啰|嗨|hey|在吗|在不在|在么|在嘛|有人吗|有人在吗|早|早上好|上午好|中午好|下午好|晚上好|早安|"
    r"晚安|nihao|老板好|亲|在不|hi there|嘿|喂|你们好|大家好|哈罗|hallo|您好呀|你好呀)+[啊呀呢吗么哈~ ,?!]*"
)
THANKS = re.compile(
    r"^(好的|好滴|好嘞|好吧|好|嗯嗯|嗯|ok|okay|行|收到|明白了|知道了|懂了|了解了|了解)?[,~ ]*"
    r"(谢谢|感谢|多谢|thx|thanks|thank you|3q|辛苦了|谢了|谢啦|感恩|太感谢|非常感谢|谢谢你|谢谢您|麻烦了)"
    r"[你您啦了哈啊呀哦们 ~,!]*$"
    r"|^(好的|好滴|好嘞|嗯嗯|ok|okay|收到|明白了|知道了|懂了|了解了|好的呢)[~ ,!]*$"
)
_PICK_ALONE = re.compile(r"^(看|看看|要|选|打开|详情)?\s*(\d{1,2})\s*(号|个)?$")
_QUANTITY_ALONE = re.compile(r"^(我)?(要|来|买|订|拍|下)?\s*\d+\s*(份|个|套|单)")


@dataclass(frozen=True, slots=True)
class Reading:
    intent: Intent
    confidence: float
    topic: str | None = None


Rule = Callable[[str, Figures, Found, Context], Reading | None]


def classify(text: str, fig: Figures, found: Found, context: Context) -> Reading:
    """`text` is normalised with arabic digits; the first rule that speaks decides."""
    for rule in _RULES:
        reading = rule(text, fig, found, context)
        if reading is not None:
            return reading
    return Reading(Intent.UNKNOWN, 0.2)


def _asking(text: str) -> bool:
    return bool(ASKING.search(text))


def _people(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if COMPLAINT.search(text):
        return Reading(Intent.COMPLAINT, CLEAR)
    if HUMAN.search(text):
        return Reading(Intent.HUMAN, CLEAR)
    if FAKE.search(text):
        return Reading(Intent.QUESTION, CLEAR, "fake")
    return None


def _creators(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if WITHDRAW.search(text):
        return Reading(Intent.WITHDRAW, CLEAR)
    if TEAM.search(text):
        return Reading(Intent.TEAM, CLEAR)
    if EARNINGS.search(text):
        return Reading(Intent.EARNINGS, CLEAR)
    if INVITE.search(text):
        return Reading(Intent.INVITE, CLEAR)
    return None


def _money(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if TOPUP.search(text):
        return Reading(Intent.TOPUP, CLEAR)
    if BALANCE.search(text):
        return Reading(Intent.BALANCE, CLEAR)
    return None


def _after_sale(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    """Refund, invoice, cancel, pay: the act, or a question about it when asked without an order."""
    for pattern, intent, topic in (
        (REFUND, Intent.REFUND, "refund"),
        (INVOICE, Intent.INVOICE, "invoice"),
        (CANCEL, Intent.CANCEL, "cancel"),
    ):
        if pattern.search(text):
            if _asking(text) and fig.order_no is None:
                return Reading(Intent.QUESTION, CLEAR, topic)
            return Reading(intent, CLEAR)
    if PAYMENT_Q.search(text) and fig.order_no is None:
        return Reading(Intent.QUESTION, CLEAR, "payment")
    if PAY.search(text):
        return Reading(Intent.PAY, CLEAR)
    return None


def _orders(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if ORDER.search(text) and "订单" in text and re.search("下.{0,2}订单", text):
        return None  # 下个订单 is ordering, read below
    if MY_ORDERS.search(text) or (fig.order_no and not found.subject):
        if HOWTO.search(text):
            return None
        return Reading(Intent.MY_ORDERS, CLEAR)
    return None


def _howto(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if HOWTO.search(text) and (_asking(text) or "流程" in text or "步骤" in text):
        return Reading(Intent.QUESTION, CLEAR, "howto")
    return None


def _ordering(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if CART.search(text):
        return Reading(Intent.ADD_TO_CART, CLEAR)
    if ORDER.search(text) and not _asking_about_price(text):
        return Reading(Intent.ORDER, CLEAR)
    if fig.package is not None and not found.subject:
        return Reading(Intent.ORDER, CLEAR if context.viewing is not None else GUESS + 0.15)
    if _QUANTITY_ALONE.search(text) and not found.subject and fig.ordinal is None:
        return Reading(Intent.ORDER, CLEAR if context.viewing is not None else GUESS + 0.15)
    return None


def _asking_about_price(text: str) -> bool:
    return bool(PRICE.search(text)) and _asking(text)


def _questions(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    no_budget = fig.price_max_fen is None and fig.price_min_fen is None
    if PRICE.search(text) and not found.sorts and no_budget:
        return Reading(Intent.QUESTION, CLEAR, "price")
    for pattern, topic in ((TIMING, "timing"), (CONTRACT, "contract"), (QUALITY, "quality")):
        if pattern.search(text) and (_asking(text) or len(text) <= 6):
            return Reading(Intent.QUESTION, CLEAR, topic)
    return None


def _pick(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if fig.ordinal is not None and not found.subject:
        return Reading(Intent.PICK, CLEAR if context.has_list else GUESS + 0.15)
    alone = _PICK_ALONE.match(text)
    if alone:
        if context.has_list or context.viewing is None:
            return Reading(Intent.PICK, CLEAR if context.has_list else GUESS)
        return Reading(Intent.ORDER, CLEAR)  # a package number of the item on view
    return None


def _refine(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if not context.has_list:
        return None
    filters = found.sorts or fig.price_max_fen or fig.price_min_fen or fig.followers_min or fig.followers_max
    if REFINE.search(text) or (filters and not found.subject) or (found.subject and len(text) <= 8):
        return Reading(Intent.REFINE, CLEAR)
    return None


def _search(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    filters = fig.price_max_fen or fig.price_min_fen or fig.followers_min or fig.followers_max
    if found.subject:
        return Reading(Intent.SEARCH, CLEAR)
    if filters or found.sorts:
        return Reading(Intent.SEARCH, CLEAR - 0.1)
    if found.keywords and SEARCH.search(text) and not ABOUT.search(text):
        return Reading(Intent.SEARCH, GUESS + 0.15)
    return None


def _talk(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if ABOUT.search(text):
        return Reading(Intent.ABOUT, CLEAR)
    if HELP.search(text):
        return Reading(Intent.HELP, CLEAR)
    if THANKS.match(text):
        return Reading(Intent.THANKS, SURE)
    if GREETING.match(text) and not GREETING.sub("", text).strip():
        return Reading(Intent.GREETING, SURE)
    if _questions_left(text, found):
        return Reading(Intent.SEARCH, GUESS)
    return None


def _questions_left(text: str, found: Found) -> bool:
    """A content word with a search-ish shape (有X吗, X有吗) is probably a search for it."""
    return bool(found.keywords) and bool(re.search("有.*(吗|么|嘛)|(吗|么|嘛)$|\\?$", text))


_RULES: tuple[Rule, ...] = (
    _people,
    _creators,
    _money,
    _after_sale,
    _orders,
    _howto,
    _ordering,
    _questions,
    _pick,
    _refine,
    _search,
    _talk,
)
