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
    r"吗|么|嘛|怎么|怎样|如何|多少|多久|多长|几天|几号|是否|能否|能不能|可不可以|可以不|会不会|有没有|啥|什么|哪|\?|呢|规则|政策|流程|咋"
)


def _re(*words: str) -> re.Pattern[str]:
    return re.compile("|".join(words))


# Unhappy whatever else is said: a person is offered at once.
COMPLAINT = _re(
    "被骗",
    "骗了",
    "投诉",
    "垃圾",
    "骗子",
    "骗人",
    "骗钱",
    "坑人",
    "被坑",
    "坑爹",
    "太坑",
    "差评",
    "举报",
    "气死",
    "什么破",
    "态度差",
    "态度太",
    "太烂",
    "很烂",
    "烂透",
    "什么玩意",
    "忽悠",
    "黑店",
    "维权",
    "12315",
    "消协",
    "恶心",
    "离谱",
    "搞什么",
    "太差",
    "差劲",
    "没人理",
    "没人回",
    "不回消息",
    "没人管",
)
# Unhappy about something they also ask for (不满意，退款): the request wins, else a complaint.
SOFT_COMPLAINT = _re("不满意", "失望", "生气", "太慢了", "等了.{1,6}(还|都)没", "什么情况", "怎么回事")
HUMAN = _re(
    "(我要|我想|帮我|需要)(改|修改|更改|变更)",
    "人工",
    "客服",
    "真人",
    "活人",
    "转人工",
    "联系你们",
    "联系方式",
    "打电话",
    # 电话 / 销售 / 经理 only asked for: 我是做销售的 is about the customer, not a request
    "电话(多少|号|是|给)",
    "(你们|客服|留个|给个|给我|有没有).{0,2}(电话|手机号|微信号?)",
    "加.{0,2}微信",
    "(找|叫|联系|转|让|要|接|对接).{0,4}(销售|商务|经理|负责人|对接人|老板)",
    "对接人",
    "商务合作",
    "机器人",
    "让人来",
    "叫个人",
    "换个人",
    "工作人员",
    "跟人(说|聊)",
    "有人.{0,2}(回|理|联系)我",
    "人来(跟|和)我",
)
FAKE = _re(
    "水分",
    "注水",
    "(是|都是)刷(的|出来)",
    "假(粉|号|数据|量)",
    "僵尸号",
    "刷.{0,3}(粉|赞|量|播放|评论|阅读|关注|收藏|数据|单|浏览)",
    "买.{0,2}(粉|赞|播放|流量|评论)",
    "僵尸粉",
    "(帮我|帮忙|能|可以|给我).{0,3}涨.{0,2}粉",  # 想涨粉 alone is a goal, not a request to fake it
    "卖.{0,2}粉",
    "假粉",
    "机器粉",
    "互粉",
    "冲量",
    "数据造假",
)
WITHDRAW = _re(
    "^提\\s*\\d",
    "提现",
    "取现",
    "提钱",
    "提出来",
    "提到微信",
    "提到零钱",
    "转到微信",
    "转到零钱",
    "兑现",
    "提款",
)
TEAM = _re(
    "我的.{0,3}团队",
    "我下面",
    "我底下",
    "邀请的.{0,2}(人|朋友|好友|用户)",
    "我的团队",
    "团队(成员|业绩|人数|收益|情况|有多少|里)",
    "^团队$",
    "下级",
    "下线",
    "我邀请的人",
    "邀请了多少",
    "邀请了几",
    "拉的人",
    "拉了多少人",
    "我的成员",
    "带的人",
    "邀请的人",
    "我的徒弟",
    "邀请的朋友",
    "推荐的人",
)
INVITE = _re(
    "分享给",
    "外快",
    "赚点",
    "我的二维码",
    "(我的|推广|邀请|专属|分享)二维码",
    "(?<!请)邀请(?!.{0,4}(博主|达人|主播|up|kol|网红|明星))",
    "推广码",
    "邀请码",
    "(我的|推广|邀请|专属|生成|分享|一张).{0,3}海报",
    "分享.{0,6}赚",
    "拉人",
    "推荐.{0,3}朋友",
    "赚佣金",
    "我的链接",
    "推广员",
    "分销",
    "合伙人",
    "带朋友",
    "拉新",
    "赚钱",
    "介绍朋友",
    "推给朋友",
    "专属码",
    "推广链接",
    "分享链接",
)
EARNINGS = _re(
    "(?<!投放)(?<!广告)收益",
    "佣金",
    "赚了多少",
    "赚多少",
    "分成",
    "提成",
    "收入",
    "返利",
    "我赚的",
    "赚的钱",
    "奖励",
    "返佣",
    "挣了多少",
    "挣多少",
    "挣了",
)
TOPUP = _re(
    "储值", "充值", "冲值", "冲钱", "充钱", "充点", "充个", "预存", "存点钱", "存钱", r"充\s*\d", "充进"
)
BALANCE = _re(
    "余额", "还有多少钱", "剩多少钱", "钱包", "账户里", "还剩多少", "剩下多少钱", "账户有多少", "余款"
)
REFUND = _re(
    "退宽",  # a common misspelling of 退款
    "退款",
    "退钱",
    "退货",
    "钱退",
    "退回来",
    "退给我",
    "退费",
    "把钱要回",
    "退掉",
    "退了",
    "退.{0,3}款",
)
INVOICE = _re("发票", "开.{0,2}票", "抬头", "税号", "专票", "普票", "报销凭证")
CANCEL = _re("取消", "不要了", "不买了", "撤单", "撤销", "不想要了", "不做了", "作废")
PAY = _re(
    "付款",
    "支付",
    "付钱",
    "买单",
    "结账",
    "交钱",
    "打款",
    "扫码付",
    "去付",
    "怎么付",
    "转账",
    "付一下",
    "结算",
    "(现在|马上|立刻|这就|我来|用余额)付",
    "付吧",
    "付了吧",
    "我付",
    "付.{0,2}款",
)
PAYMENT_Q = _re(
    "先.{0,4}后.{0,2}(付|给钱|结)",
    "后付",
    "货到付款",
    "先付",
    "怎么付",
    "怎么支付",
    "支付方式",
    "付款方式",
    "支付宝",
    "信用卡",
    "花呗",
    "分期",
    "对公转账",
    "怎么给钱",
    "微信付",
    "(能|可以)用.{0,4}(付|支付)",
)
ORDER_LIST = _re("(待|未|已|没)(支付|付款|付|完成|审核|发布|取消)的?(订单|单)", "(订单|单)(列表|记录|明细)")
MY_ORDERS = _re(
    "定单",  # a common misspelling of 订单
    "(我|之前|上次|刚才|昨天).{0,3}(下|买|订)的(单|订单|那个|东西)",
    "物流",
    "快递",
    "发货",
    "(买|订|下)的.{0,8}(发|好了|完成|到哪|怎么样)",
    "(发|好|完成|发布)了没",
    "订单(?!量|数|多)",
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
    "之前买",
    "什么时候能发",
    "什么时候发布",
    "几时完成",
    "多久完成",
    "怎么样了",
    "处理了吗",
    "审核",
    "我订的",
    "买的东西",
)
HOWTO = _re(
    "合作方式",
    "合作模式",
    "(怎么|如何|咋|怎样)(才能|去|来)?((跟|和|与).{1,5})?(下单|下个单|合作|购买|买|约|预约|订|拍|操作|弄|搞|用你们)",
    "(下单|购买|合作)(流程|步骤)",
    "流程",
    "步骤",
)
CART_SOFT = _re("放车", "先存", "存着", "先加上", "加一下", "先加")  # said looking at a service
CART = _re("购物车", "加购", "加车", "放进车", "先收藏", "收藏一下", "加入车")
ORDER = _re(
    "^就(它|他|她|这个|这款|这家)(吧|了|啦)?$",
    "就选(它|他|她)",
    "(订|买|要|拍|选)(它|他|她)",
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
# Asking for a better price (能便宜点吗, 有优惠吗) is a price question, not a wish to sort.
DISCOUNT = _re("优惠", "打折", "折扣", "砍价", "讲价", "(能|可以)便宜", "少点", "便宜点(吗|么|不)")
PRICE = _re(
    "多少钱",
    "报价",
    "收费",
    "费用",
    "贵不贵",
    "什么价",
    "价目",
    "怎么卖",
    "几块",
    "啥价",
    "多钱",
    "怎么算钱",
    "多少费用",
    "(价格|价位|价钱)(是|大概|一般)?(多少|怎么|如何|呢|吗|\\?|$)",
    "^(价格|价位|价钱)",
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
    "时间",
)
QUALITY = _re(
    "数据(怎么样|如何|好不好|咋样)",
    "质量(怎么样|如何|好不好|咋样|行不行|有保证|有保障|靠谱)",
    "(看看|看下|有没有|发我).{0,6}(作品|案例|往期)",
    "靠不靠谱",
    "正不正规",
    "真不真",
    "可不可靠",
    "安不安全",
    "有没有用",
    "好不好用",
    "有没有效果",
    # 保证不掉色 is a selling point, 靠谱不 a question: 不 only at the end
    r"(靠谱|真实|真的|正规|可信|安全|有效|有用|保障|保证|专业|准确|准)的?(吗|么|嘛|吧|\?|不$|不\?)",
    r"(正规|靠谱|可信)的?(公司|平台|机构)(吗|么|嘛|吧|\?|不$|不\?)",
    "效果(怎么样|如何|好不好|好吗|咋样)",
    "案例",
    "有没有(效果|保障|保证)",
    "售后",
    "有保障",
    "能保证",
)
CONTRACT = _re("合同", "签约", "协议", "盖章")
REVISION = _re("改稿", "重拍", "重做", "返工", "修改", "改一下", "不满意.{0,4}(改|重)")
AUDIENCE = _re(
    "粉丝画像",
    "用户画像",
    "受众",
    "女粉",
    "男粉",
    "粉丝(是|都是).{0,4}(人|哪|年龄|地区)",
    "粉丝.{0,2}(年龄|地区|性别)",
)
ACCOUNT = _re("注册", "登录", "登陆", "要下载", "app吗")
DATA = _re("(互动率|粉丝数|粉丝量|曝光量|播放量|阅读量|点赞量)(是|有)?多少")
ABOUT = _re(
    "(干|做|卖)(啥|什么|嘛)的",
    "你们.{0,3}(公司|来头|背景)",
    "了解一下",
    "想了解",
    "哪家公司",
    "介绍.{0,2}(你们|一下|下)(你们|的)?(服务|业务|公司|平台)?$",
    "你们的服务",
    "你们家的服务",
    "卖(些|点)?(什么|啥)",
    "地址",
    "公司在哪",
    "你们在哪",
    "卖什么",
    "做什么的",
    "干什么的",
    "干嘛的",
    "是做啥",
    "卖啥",
    "卖些啥",
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
    "(你们|贵司|公司|哪些|什么).{0,4}业务",
    "是什么平台",
)
BROWSE = _re(
    "随便看看",
    "逛逛",
    "先看看",
    "看看都有",
    "看看有什么",
    "有什么可以看",
    "求资源",
    "有资源",
    "资源(吗|有哪些|呢)",
)
# 我要推广 / 想做推广 with nothing named: a search for everything (the catalog's categories)
PROMOTE = _re("推广", "宣传", "营销", "引流", "曝光", "打广告", "做广告", "找人")
HELP = _re(
    "有什么用",
    "说明",
    "指南",
    "新手",
    "不会弄",
    "帮助",
    "^help$",
    "菜单",
    "怎么用",
    "怎么使用",
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
    "能干嘛",
    "用法",
    "^帮我$",
    "看不懂",
    "不懂",
    "填什么",
    "怎么填",
    "填啥",
    "写什么",
    "写啥",
    "什么格式",
    "啥意思",
    "什么意思",
)
REFINE = _re(
    "换(几|一|些|个|批|下)",
    "不太行",
    "都不行",
    "不喜欢",
    "没有合适",
    "不合适",
    "不太合适",
    "不要",
    "除了",
    "排除",
    "还有吗",
    "还有没",
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
    "排一下",
    "排序",
    "排前面",
)
SEARCH = _re(
    "卖的是",
    "做的是",
    "(我们|我家|我们家|本店)(是|家)?(做|卖|开)",
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
_GREETING_WORDS = [
    "good morning",
    "morning",
    "good evening",
    "请问一下",
    "请问",
    "打扰一下",
    "打扰了",
    "麻烦问一下",
    "问一下",
    "咨询一下",
    "我想咨询一下",
    "想咨询一下",
    "你好",
    "您好",
    "你们好",
    "大家好",
    "hi",
    "hello",
    "hey",
    "hallo",
    "哈喽",
    "哈啰",
    "哈罗",
    "嗨",
    "嘿",
    "喂",
    "在吗",
    "在的吗",
    "在的",
    "在不在",
    "在么",
    "在嘛",
    "在不",
    "有人吗",
    "有人在吗",
    "早",
    "早上好",
    "上午好",
    "中午好",
    "下午好",
    "晚上好",
    "早安",
    "晚安",
    "nihao",
    "你好呀",
    "您好呀",
]
_ADDRESS = ["老板", "亲", "亲亲", "美女", "帅哥", "小姐姐", "小哥哥", "同学", "老师", "客官", "掌柜"]
GREETING = re.compile(
    rf"^({'|'.join(sorted(_ADDRESS, key=len, reverse=True))})?[, ~]*"
    rf"(({'|'.join(sorted(_GREETING_WORDS, key=len, reverse=True))})[啊呀呢吗么哈~ ,?!]*)+"
    rf"({'|'.join(sorted(_ADDRESS, key=len, reverse=True))})?[啊呀呢哈~ ,?!]*$"
)
_ACK = [
    "好的",
    "好滴",
    "好嘞",
    "好吧",
    "好",
    "嗯嗯",
    "嗯",
    "ok",
    "okay",
    "行",
    "收到",
    "明白了",
    "明白",
    "知道了",
    "懂了",
    "了解了",
    "了解",
    "好的呢",
    "可以",
    "没问题",
]
_THANK = [
    "十分感谢",
    "万分感谢",
    "特别感谢",
    "真的谢谢",
    "谢谢",
    "感谢",
    "多谢",
    "thx",
    "thanks",
    "thank you",
    "thank u",
    "3q",
    "辛苦了",
    "谢了",
    "谢啦",
    "感恩",
    "太感谢",
    "非常感谢",
    "谢谢你",
    "谢谢您",
    "麻烦了",
    "辛苦",
]
THANKS = re.compile(
    rf"^(哈+)?(({'|'.join(sorted(_ACK + _THANK, key=len, reverse=True))})[你您啦了哈啊呀哦们亲的 ~,!]*"
    r"(老板|亲|你的帮助|您的帮助|帮忙)?[啦了哈啊呀哦 ~,!]*)+$"
)
ORDER_COUNT = re.compile(r"(要|来|买|订|拍|整)\s*\d+\s*(份|个|套|单)")  # 来两份, not 要3个博主
_QUANTITY_ALONE = re.compile(r"^(就|我|给我)?(要|来|买|订|拍|下)?\s*\d+\s*(份|个|套|单)(吧|就行|就好)?$")
_LEANING = re.compile(r"(的|的呢|呢|的吗|的有吗|有吗|的有没有)$|^(那|换|只|要)")
_PICK_ALONE = re.compile(
    r"^(看|看看|看下|要|选|打开|详情)?\s*(\d{1,2})\s*(号|个)?\s*(看看|看下|吧|呢|详情)?$"
)
_SEARCH_SHAPE = re.compile(r"有.*(吗|么|嘛)|(吗|么|嘛)$|\?$|(类|方面|相关|这块|领域)的?(吗|呢)?$")


@dataclass(frozen=True, slots=True)
class Reading:
    intent: Intent
    confidence: float
    topic: str | None = None
    ordinal: int | None = None  # an item of the list said in words (最上面那个), see core


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
    for pattern, intent in (
        (WITHDRAW, Intent.WITHDRAW),
        (TEAM, Intent.TEAM),
        (INVITE, Intent.INVITE),
        (EARNINGS, Intent.EARNINGS),
    ):
        if pattern.search(text):
            return Reading(intent, CLEAR)
    return None


def _topup(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if TOPUP.search(text):
        return Reading(Intent.TOPUP, CLEAR)
    if ORDER_LIST.search(text):
        return Reading(Intent.MY_ORDERS, CLEAR)  # 待支付的订单 lists orders, it does not pay one
    return None


def _after_sale(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    """Refund, invoice, cancel, pay: the act, or a question about it when asked without an order."""
    for pattern, intent, topic in (
        (REFUND, Intent.REFUND, "refund"),
        (INVOICE, Intent.INVOICE, "invoice"),
        (CANCEL, Intent.CANCEL, "cancel"),
    ):
        if pattern.search(text):
            if _asking(text) and fig.order_no is None and not _wants(text):
                return Reading(Intent.QUESTION, CLEAR, topic)
            return Reading(intent, CLEAR)
    if PAYMENT_Q.search(text) and fig.order_no is None:
        return Reading(Intent.QUESTION, CLEAR, "payment")
    if PAY.search(text):
        if _asking(text) and fig.order_no is None and not _wants(text):
            return Reading(Intent.QUESTION, CLEAR, "timing" if TIMING.search(text) else "payment")
        return Reading(Intent.PAY, CLEAR)
    return None


def _wants(text: str) -> bool:
    """我要退款 / 帮我开票 asks for the act even with a question word elsewhere in the sentence."""
    return bool(re.search("我要|我想要|帮我|给我|(?<!怎么)(?<!如何)申请", text))


def _balance(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if BALANCE.search(text):
        return Reading(Intent.BALANCE, CLEAR)
    if SOFT_COMPLAINT.search(text) and not REVISION.search(text):  # 不满意可以重拍吗 asks
        return Reading(Intent.COMPLAINT, CLEAR - 0.1)
    return None


def _orders(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if re.search("(?<![一查看])下(个|一个|了)?订单", text):
        return None  # 下个订单 is ordering, read below
    if MY_ORDERS.search(text) or (fig.order_no and not found.subject):
        if HOWTO.search(text):
            return None
        if _about_the_item_on_view(text, fig, context):
            return Reading(Intent.QUESTION, CLEAR, "timing")  # 什么时候能发, said looking at a service
        return Reading(Intent.MY_ORDERS, CLEAR)
    return None


def _about_the_item_on_view(text: str, fig: Figures, context: Context) -> bool:
    mine = re.search("订单|单子|我的|我买|我下|我订|买的|订的|下的", text)
    return context.viewing is not None and context.last_order is None and not mine and not fig.order_no


def _howto(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if HOWTO.search(text):
        return Reading(Intent.QUESTION, CLEAR, "howto")
    return None


def _questions(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    no_budget = fig.price_max_fen is None and fig.price_min_fen is None
    on_a_list = context.has_list and context.viewing is None  # there 便宜点吗 asks for cheaper items
    if DISCOUNT.search(text) and _asking(text) and not on_a_list:
        return Reading(Intent.QUESTION, CLEAR, "price")
    if PRICE.search(text) and not found.sorts and no_budget:
        return Reading(Intent.QUESTION, CLEAR, "price")
    topics = (
        (TIMING, "timing"),
        (CONTRACT, "contract"),
        (QUALITY, "quality"),
        (DATA, "quality"),
        (REVISION, "revision"),
        (AUDIENCE, "audience"),
        (ACCOUNT, "account"),
    )
    for pattern, topic in topics:
        if pattern.search(text) and (_asking(text) or len(text) <= 6):
            return Reading(Intent.QUESTION, CLEAR, topic)
    return None


def _ordering(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    sure = CLEAR if context.viewing is not None else GUESS + 0.15
    if CART.search(text) or (context.viewing is not None and CART_SOFT.search(text)):
        return Reading(Intent.ADD_TO_CART, CLEAR)
    if ORDER.search(text) or (ORDER_COUNT.search(text) and not found.subject):
        return Reading(Intent.ORDER, sure)
    if fig.package is not None and not found.subject:
        return Reading(Intent.ORDER, sure)
    if _QUANTITY_ALONE.match(text):
        return Reading(Intent.ORDER, sure)  # 两份 / 3个
    return None


def _pick(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    named = found.platforms or found.tags or found.forms or found.titles
    if fig.ordinal is not None and not named:
        return Reading(Intent.PICK, CLEAR if context.has_list else GUESS + 0.15)
    if _PICK_ALONE.match(text):
        if context.has_list or context.viewing is None:
            return Reading(Intent.PICK, CLEAR if context.has_list else GUESS)
        return Reading(Intent.ORDER, CLEAR)  # a package number of the item on view
    return None


def _filters(fig: Figures) -> bool:
    return any(
        v is not None for v in (fig.price_min_fen, fig.price_max_fen, fig.followers_min, fig.followers_max)
    )


def _refine(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if not context.has_list:
        return None
    filters = found.sorts or _filters(fig)
    # 抖音的呢 / 有直播的吗 lean on the list; 小红书美妆博主 alone starts a new search
    leaning = found.subject and len(text) <= 8 and bool(_LEANING.search(text))
    if REFINE.search(text) or (filters and not found.subject) or leaning:
        return Reading(Intent.REFINE, CLEAR)
    return None


def _search_named(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if found.subject:
        return Reading(Intent.SEARCH, CLEAR)
    if _filters(fig) or found.sorts:
        return Reading(Intent.SEARCH, CLEAR - 0.1)
    return None


def _talk(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    if BROWSE.search(text):
        return Reading(Intent.SEARCH, GUESS + 0.15)  # 随便看看: the catalog, no filter
    if THANKS.match(text):  # before help: 感谢你的帮助
        return Reading(Intent.THANKS, SURE)
    if ABOUT.search(text):
        return Reading(Intent.ABOUT, CLEAR)
    if HELP.search(text):
        return Reading(Intent.HELP, CLEAR)
    if GREETING.match(text):
        return Reading(Intent.GREETING, SURE)
    return None


def _search_guess(text: str, fig: Figures, found: Found, context: Context) -> Reading | None:
    """Unknown content words asked for (有X吗, 找X, X类的) are probably a search for them."""
    if found.keywords and (SEARCH.search(text) or _SEARCH_SHAPE.search(text)):
        return Reading(Intent.SEARCH, GUESS + 0.05)
    if PROMOTE.search(text) and len(text) <= 12:
        return Reading(Intent.SEARCH, GUESS + 0.15)
    return None


_RULES: tuple[Rule, ...] = (
    _people,
    _creators,
    _topup,
    _after_sale,
    _balance,
    _orders,
    _howto,
    _questions,
    _ordering,
    _pick,
    _refine,
    _search_named,
    _talk,
    _search_guess,
)
