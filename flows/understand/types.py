"""The contract of the understanding step: what a message means (an intent with typed slots).

One place turns a message plus the conversation's context into an `Understanding`; handlers act on
intents. An exact command is simply the most certain way to produce one. Pure data, no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    # finding services
    SEARCH = "search"  # find or browse services: any of platform/category/tags/keywords/price/followers/form
    # a follow-up on the last list: 便宜一点的, 粉丝多一点的, 还有吗, 那个抖音的呢 (sort, page, slots)
    REFINE = "refine"
    PICK = "pick"  # an item of the last list: 第二个, 2 (slots.ordinal)
    # ordering
    ADD_TO_CART = "add_to_cart"  # 加购, 放购物车 (package, quantity)
    ORDER = "order"  # 就要这个, 我要下单, 我要两份 (package, quantity, when)
    PAY = "pay"  # 付款, 怎么付 an unpaid order (order_no)
    MY_ORDERS = "my_orders"  # 我的订单, 订单到哪了, 什么时候完成 (order_no)
    CANCEL = "cancel"  # 取消订单 (order_no)
    REFUND = "refund"  # 我要退款 (order_no)
    INVOICE = "invoice"  # 开发票 (order_no)
    BALANCE = "balance"  # 余额
    TOPUP = "topup"  # 充值 (amount_fen)
    # questions answered from what we know (slots.topic says which: price, timing, refund, invoice,
    # payment, howto, fake, quality, contract, …)
    QUESTION = "question"
    ABOUT = "about"  # what we sell
    HUMAN = "human"  # a person, please
    COMPLAINT = "complaint"  # unhappy: offered a person at once
    # creators
    INVITE = "invite"
    EARNINGS = "earnings"
    TEAM = "team"
    WITHDRAW = "withdraw"  # (amount_fen)
    # small talk
    GREETING = "greeting"
    THANKS = "thanks"
    HELP = "help"
    UNKNOWN = "unknown"


LAST = -1  # Slots.ordinal of 最后一个 / 最下面那个: the last item of the list, however long


@dataclass(frozen=True, slots=True)
class Slots:
    """Typed values found in a message; None / () when absent. Names are canonical catalog words."""

    platform: str | None = None  # 抖音 快手 小红书 B站 微博 视频号 (from aliases: 红书, xhs, dy, 哔哩哔哩 …)
    category: str | None = None  # a catalog category (达人营销, 广告投放, 内容制作, 数据分析, 课程, 咨询)
    tags: tuple[str, ...] = ()  # catalog tags (美食, 探店, 美妆 …), synonyms folded
    keywords: tuple[str, ...] = ()  # other content words worth searching for (咖啡)
    form: str | None = None  # 图文 视频 直播 …
    price_min_fen: int | None = None
    price_max_fen: int | None = None
    followers_min: int | None = None
    followers_max: int | None = None
    sort: str | None = None  # store.catalog.SORTS: price, price_desc, followers, engagement, exposure
    quantity: int | None = None
    # 第二个 → 2 (an item of the last list); negative counts from the end: 最后一个 LAST (-1), 倒数第二个 -2
    ordinal: int | None = None
    package: int | None = None  # ② / 第二个套餐 → 2 (a package of the item viewed)
    order_no: str | None = None  # 20261122-0042
    amount_fen: int | None = None  # 充值 500 → 50000
    when: dt.datetime | None = None  # a date/time said in the message (Beijing time), see flows.when
    topic: str | None = None  # for QUESTION: price, timing, refund, invoice, payment, howto, fake, …


@dataclass(frozen=True, slots=True)
class Context:
    """What the conversation already holds; lets 便宜一点的 / 第二个 / 就要这个 mean something."""

    has_list: bool = False  # a list of services was shown last
    viewing: int | None = None  # the service id whose detail was shown last
    last_order: str | None = None  # the order number talked about last
    form_step: str | None = None  # the order form's current step key, when filling it in
    misunderstood: int = 0  # how many messages in a row were not understood


@dataclass(frozen=True, slots=True)
class Understanding:
    intent: Intent
    slots: Slots = Slots()
    confidence: float = 1.0  # 0–1; below the threshold the optional language model may be asked
    source: str = "local"  # command | local | llm
