"""The staff desk's sentences (zh-CN): work chat, cards, group alerts, and what customers hear of it.

Work chat is for busy people: short lines, the order number first, the next command spelled out.
(To be merged into flows/texts.py; code and tests refer to these names.)
"""

from __future__ import annotations

ROLE_NAMES = {"admin": "管理员", "ops": "运营", "reviewer": "审核", "finance": "财务"}
# What staff may type for a role in 「员工 添加」 (English names work too).
ROLE_WORDS = {"管理员": "admin", "管理": "admin", "运营": "ops", "审核": "reviewer", "财务": "finance"}
REVIEW_STATES = {None: "待审核", "approved": "已通过", "resubmit": "待客户补充"}
UNASSIGNED = "未分配"
CUSTOMER_FALLBACK = "客户…{tail}"
ITEMS_MORE = "{first} 等 {n} 项"
NOBODY = "—"

# --- Access --------------------------------------------------------------------------------------

NOT_STAFF = "你好～ 这里是「{brand}」的工作台，只有登记过的同事可以操作 🙏 需要开通请联系管理员。"
FORBIDDEN = "「{command}」需要{roles}权限，你目前是{mine}。需要的话请找管理员开通。"
SORRY = "出了点问题，这次操作没有生效，请稍后再试。"
CANCELLED = "好的，已取消。"

HELP = (
    "工作台指令（单号如 20261122-0042）：\n"
    "订单\n"
    "· 查单 单号 · 待办 · 今日\n"
    "· 通过 单号 · 驳回 单号 原因\n"
    "· 接单 单号 · 分配 单号 成员\n"
    "· 开始 [单号] · 发布 单号 链接 · 完成 [单号]\n"
    "· 数据 单号 [第N条] [最终] 曝光 1.2万 点赞 530 … · 报告 单号\n"
    "· 导出 订单 2026-12（财务）· 看板\n"
    "· 回复 单号 内容 · 对话 单号 · 快捷回复\n"
    "· 退款 单号 [金额] 原因 [原路] · 拒绝退款 单号 原因\n"
    "其他\n"
    "· 提现 — 待审提现 · 佣金 — 暂扣待核对的佣金 · 上班 / 下班\n"
    "· 秒杀 列表 / 查看 编码 / 停止 编码（管理员）\n"
    "· 员工 列表 / 添加 / 移除 / 值班（管理员）"
)
UNKNOWN = "没看懂「{text}」🤔\n\n" + HELP
DID_YOU_MEAN = "没有「{word}」这个指令，是不是想用：\n{usage}"
USAGE_LINE = "用法：{usage}"

# Flash sales (秒杀): what staff and operators read.
FLASH_PHASES = {
    "upcoming": "未开始",
    "live": "进行中",
    "sold_out": "已抢光",
    "over": "已结束",
    "stopped": "已停止",
}
FLASH_NONE = "还没有秒杀活动。运营用 chatorder flash create 文件.yaml 创建。"
FLASH_LIST = "秒杀活动：\n{lines}\n发「秒杀 查看 编码」看数据。"
FLASH_LIST_LINE = "· {code} {title}｜{phase}｜剩 {available}/{stock}｜{start} 开始"
FLASH_REPORT = (
    "⚡ 秒杀 {code}「{title}」{phase}\n"
    "时间 {start} – {end}｜价格 {price}｜每人限 {limit} 件\n"
    "库存 {stock}：剩 {available} · 保留中 {held} · 已付款 {paid}\n"
    "超时释放 {released} · 候补在排 {waitlist} · 候补已补上 {served}\n"
    "成交额 {revenue}｜抢到 {takers} 人 → 付款 {buyers} 人（转化 {conversion}%）"
)
# The report's top QR scenes (flash_<code>@<channel>; the plain flash_<code> is 默认二维码).
FLASH_SCENES = "\n二维码来源（抢到 · 付款 · 成交额）：\n{lines}"
FLASH_SCENES_NONE = "\n二维码来源：还没有人扫码进来抢"
FLASH_SCENE_LINE = "· {name}：抢到 {takes} · 付款 {paid} · {revenue}"
FLASH_SCENE_DEFAULT = "默认二维码"
FLASH_SCENE_OTHER = "其他 {n} 个渠道"
FLASH_SCENE_ELSEWHERE = "· 不是扫码来的（列表、菜单、提醒）：抢到 {takes}"
FLASH_ALERT = "⚡ 秒杀 {code} 已抢 {pct}%：剩 {available}/{stock}"
FLASH_ALERT_SOLD_OUT = "🔥 秒杀 {code} 已抢光（{stock} 件）！超时未付的名额会先给候补的人。"
FLASH_ROOM = (
    "⚡ {code} 实时：剩 {available}/{stock} · 保留中 {held} · 已付款 {paid} · "
    "{per_min} 单/分钟 · 转化 {conversion}%"
)
FLASH_ENDED = "📊 秒杀结束，复盘数据：\n"
FLASH_CARD_SOURCE = "秒杀指挥室"
FLASH_CARD_TITLE = "⚡ 秒杀 {code}"
FLASH_CARD_DESC = "{phase} · {at} 更新"
FLASH_CARD_LEFT = "剩余"
FLASH_CARD_HELD = "保留中"
FLASH_CARD_PAID = "已付款"
FLASH_CARD_RATE = "单/分钟"
FLASH_CARD_CONVERSION = "抢到→付款"
FLASH_CARD_REFRESH = "刷新"
FLASH_REMARKETED = "\n再营销：已发 {sent} 人 · 48 小时外未发 {outside} 人 · 已退订 {opted_out} 人"
FLASH_STOPPED = "已停止秒杀 {code}：不能再抢，已抢到的订单仍可在保留时间内付款。"
USAGE = {
    "查单": "查单 单号\n例如：查单 20261122-0042",
    "通过": "通过 单号\n例如：通过 20261122-0042",
    "驳回": "驳回 单号 原因（客户会看到原因）\n例如：驳回 20261122-0042 商品链接打不开，请重新发一个",
    "接单": "接单 单号\n例如：接单 20261122-0042",
    "分配": "分配 单号 成员（姓名或账号）\n例如：分配 20261122-0042 李四",
    "开始": "开始 [单号]（只有一单待开始时可省略单号）\n例如：开始 20261122-0042",
    "发布": "发布 单号 链接 [标题]\n例如：发布 20261122-0042 https://www.xiaohongshu.com/… 探店笔记",
    "完成": "完成 [单号]（只有一单执行中时可省略单号）\n例如：完成 20261122-0042",
    "数据": (
        "数据 单号 [第N条] [最终] 指标 数字 …\n"
        "指标：曝光 阅读 点赞 评论 收藏 转发 点击 转化；数字可写 1.2万、3k、8,000。\n"
        "只有一条发布时可省略「第N条」；最后一次统计加「最终」，客户会收到数据已出的通知。\n"
        "例如：数据 20261122-0042 第1条 曝光 1.2万 阅读 8000 点赞 530 评论 41 收藏 88 转发 12"
    ),
    "导出": "导出 订单 年-月（财务：当月订单、付款、退款、佣金）\n例如：导出 订单 2026-12",
    "看板": "看板",
    "报告": "报告 单号（客户看到的数据报告：文字和图）\n例如：报告 20261122-0042",
    "退款": (
        "退款 单号 [金额] 原因 [原路]\n"
        "不写金额退剩余全部；默认退到客户余额，末尾加「原路」退回微信。\n"
        "例如：退款 20261122-0042 100 活动取消"
    ),
    "拒绝退款": "拒绝退款 单号 原因（客户会看到原因）\n例如：拒绝退款 20261122-0042 笔记已按约定发布，不符合退款条件",
    "佣金": "佣金 · 佣金 放行 编号 · 佣金 驳回 编号\n例如：佣金 放行 12",
    "回复": "回复 单号 内容\n例如：回复 20261122-0042 卖点里的“0 糖”需要检测报告，可以补一张吗？",
    "待办": "待办",
    "今日": "今日",
    "提现": "提现 · 提现 通过 编号 · 提现 拒绝 编号 原因\n例如：提现 拒绝 12 收款信息不完整",
    "上班": "上班",
    "秒杀": "秒杀 列表 · 秒杀 查看 编码 · 秒杀 报告 编码 · 秒杀 停止 编码\n例如：秒杀 查看 coffee1207",
    "下班": "下班",
    "员工": (
        "员工 列表\n"
        "员工 添加 账号 姓名 角色,… [技能,…]\n"
        "员工 移除 账号\n"
        "员工 值班 账号 开|关\n"
        "角色：管理员 运营 审核 财务；技能为服务类别，如 达人营销,广告投放"
    ),
    "对话": "对话 单号\n例如：对话 20261122-0042",
    "帮助": "帮助",
}

# --- Orders ---------------------------------------------------------------------------------------

ORDER_NOT_FOUND = "没有找到订单 {number}，请检查单号。"
APPROVED = "✅ {number} 审核通过{next}"
APPROVED_OWNED = "，由 {assignee} 负责，客户已收到通知。"
APPROVED_WAITING = "，等有人接单（有空的同事上班后会自动分配，或「分配 {number} 成员」）。"
CLAIMED = "👌 {number} 由你负责了{next}"
CLAIMED_READY = "，可以「开始 {number}」了。"
CLAIMED_WAITING = "，审核通过后就可以开始。"
ASSIGNED = "📌 {number} 已分配给 {name}。"
STARTED = "🚀 {number} 开始执行，客户已收到通知。发布后发「发布 {number} 链接」。"
PUBLISHED = "📣 {number} 已登记发布并告诉客户：{url}"
COMPLETED = "🎉 {number} 已完成，客户已收到通知。"
RESULTS_RECORDED = "📊 {number} 第{piece}条数据已记下（第 {count} 次统计{final}）：\n{figures}\n{next}"
RESULTS_FINAL_MARK = "，最终"
RESULTS_NEXT_MORE = "还有 {left} 条没有最终数据：{pieces}。"
RESULTS_NEXT_DONE = "全部最终数据已齐，客户已收到通知，可以「完成 {number}」了。"
RESULTS_NEXT_DONE_COMPLETED = "全部最终数据已齐，客户已收到通知。"
RESULTS_NEXT_SO_FAR = "客户发「报告 {number}」就能看到。"
EXPORT_MONTH = (
    "📥 {month} 的订单、付款、退款、佣金已整理成 Excel：\n{url}\n链接 {hours} 小时内有效，请勿转发。"
)
EXPORT_UNAVAILABLE = "导出需要先配置应用密钥（用来给下载链接签名），请联系管理员。"
LOW_REVIEW = "⚠️ 差评：订单 {number} 客户打了 {score} 分{comment}\n负责人：{owner}。请尽快联系客户（「对话 {number}」看聊天记录）。"
BOARD_TEXT = (
    "📈 运营看板\n"
    "今日 GMV {gmv_today} · 付款订单 {orders_today}\n"
    "近 {days} 天 GMV {gmv} · 订单 {orders} · 客单价 {aov}\n"
    "复购客户 {repeat}/{buyers}（{repeat_share}）\n"
    "今日漏斗：{today}\n"
    "近 7 天漏斗：{week}（付款/关注 {paid_share}）\n"
    "热销：{top}\n"
    "图表：{url}\n链接 {hours} 小时内有效。"
)
BOARD_NO_LINK = "（配置应用密钥后这里会附上图表链接）"
FUNNEL_STEPS = {
    "followed": "新关注",
    "searched": "搜索",
    "viewed": "看详情",
    "started": "开始下单",
    "ordered": "下单",
    "paid": "付款",
}
BOARD_TITLE = "运营看板"
BOARD_SUB = "截至 {day}（北京时间）· 近 {days} 天"
BOARD_GMV_TODAY = "今日 GMV"
BOARD_ORDERS_TODAY = "今日付款订单"
BOARD_GMV_DAYS = "近 {days} 天 GMV"
BOARD_ORDERS_DAYS = "近 {days} 天订单"
BOARD_AOV = "客单价"
BOARD_BUYERS = "付费客户"
BOARD_REPEAT = "复购客户"
BOARD_REPEAT_SHARE = "复购率"
BOARD_GMV_CHART = "每日 GMV（元）"
BOARD_GMV_SERIES = "GMV"
BOARD_ORDERS_CHART = "每日付款订单"
BOARD_ORDERS_SERIES = "订单"
BOARD_FUNNEL_TODAY = "今日漏斗（人数，括号内为占新关注）"
BOARD_FUNNEL_WEEK = "近 7 天漏斗"
BOARD_TOP_SERVICES = "热销服务（近 14 天）"
BOARD_TOP_CREATORS = "带货达人（近 14 天佣金，按邀请码）"
BOARD_NONE = "暂无"
RESULTS_BAD = "没看懂「{part}」。\n用法：{usage}"
REJECT_ASK = "请直接回复驳回 {number} 的原因（10 分钟内，客户会看到）。发「取消」不驳回。"
REJECTED = "↩️ {number} 已驳回，已请客户补充：{reason}"
REPLY_SENT = "💬 已发给 {number} 的客户。"
REFUNDED_TO_BALANCE = "↩️ {number} 已退款 {amount} 到客户余额，客户已收到通知。"
REFUND_DECLINED = "🚫 已拒绝 {number} 的退款申请，订单回到「{status}」，原因已告诉客户。"
REFUND_ASKED = "↩️ {number} 已向微信支付申请原路退款 {amount}，到账后会通知客户。"
REFUND_REFUSED = (
    "⚠️ {number} 的原路退款没有成功（{reason}），钱没有退出。可改为退到余额：「退款 {number} 原因」。"
)
NOT_READY = "这个功能还在接入中，暂时用不了 🙏"

ORDER_DETAIL = (
    "订单 {number} · {status} · {total}{refunded}\n"
    "客户：{customer}\n"
    "负责：{assignee} · 审核：{review}\n"
    "{lines}\n"
    "{answers}"
    "{materials}"
    "{deliverables}"
    "{note}"
    "记录：\n{timeline}"
)
DETAIL_REFUNDED = "（已退 {amount}）"
DETAIL_LINE = "· {title} {package} × {qty} {subtotal}"
DETAIL_ANSWER = "{label}：{value}\n"
DETAIL_MATERIALS = "素材：{n} 张图\n"
DETAIL_DELIVERABLES = "交付：\n{items}\n"
DETAIL_DELIVERABLE = "· {title} {url}"
DETAIL_NOTE = "驳回原因：{note}\n"
DETAIL_EVENT = "{at} {to}（{who}）{reason}"
DETAIL_EVENTS = 8  # the latest state changes shown
ACTOR_NAMES = {"customer": "客户", "system": "系统", "wechatpay": "微信支付", "operator": "后台"}

QUEUE_HEAD = "你的待办（{n}）：\n{lines}"
QUEUE_LINE = "{i}. {number} · {status} · {total} · {title}{when}"
QUEUE_PUBLISH = " · {when} 发布"
QUEUE_EMPTY = "👍 你手上没有待办订单。"
QUEUE_REVIEWS = "\n\n待审核（{n}）：\n{lines}"
QUEUE_REVIEW_LINE = "{i}. {number} · {total} · 已等 {minutes} 分钟"
QUEUE_BACKLOG = "\n\n待分配 {n} 单，发「分配 单号 成员」指定负责人。"

TODAY = (
    "📊 今日（截至 {time}）\n"
    "GMV {gmv} · 付款订单 {paid} · 完成 {completed}\n"
    "待审核 {reviews} · 已分配 {assigned} · 执行中 {working} · 退款中 {refunding}\n"
    "新客户 {customers} · 新创作者 {creators} · 待审提现 {withdrawals}"
)

# --- Duty and the registry -------------------------------------------------------------------------

ON_DUTY = "✅ 已上班，新订单会自动分给你。"
OFF_DUTY = "👋 已下班，不再给你分新单；手上的 {n} 单仍由你负责。"
DUTY_SET = "{name} 已{state}。"
DUTY_ON, DUTY_OFF = "上班", "下班"
DUTY_WORDS = {"on": True, "开": True, "上班": True, "off": False, "关": False, "下班": False}
STAFF_LIST = "员工（{n}）：\n{lines}"
STAFF_LINE = "· {name}（{userid}）{roles} · {duty} · 在办 {open}/{limit}{skills}"
STAFF_SKILLS = " · {skills}"
STAFF_NONE = "还没有登记员工。发「员工 添加 账号 姓名 角色」添加。"
STAFF_ADDED = "✅ 已登记 {name}（{userid}）：{roles}{skills}。"
STAFF_REMOVED = "已移除 {name}（{userid}），操作记录保留。"
STAFF_REMOVED_KEPT = "\n名下还有 {n} 单：{numbers}，请用「分配 单号 成员」转给其他人。"
REMOVE_SELF = "不能移除自己哦，请另一位管理员操作。"

# --- Commissions held by a fraud rule ---------------------------------------------------------------

COMMISSIONS_NONE = "👍 没有暂扣待核对的佣金。"
COMMISSIONS_HEAD = "暂扣待核对的佣金 {n} 笔（发「佣金 放行 编号」或「佣金 驳回 编号」）：\n{lines}"
COMMISSION_LINE = "#{id} · 订单 {number} · {amount}（{kind}）→ {who}\n  规则：{rule}\n  证据：{evidence}"
COMMISSION_RELEASED = "✅ 佣金 #{id} 已放行：{amount} 计入 {who} 的待结算收益。"
COMMISSION_REJECTED = "佣金 #{id} 已驳回：{amount} 不再计入 {who} 的收益。"
COMMISSION_NOT_FOUND = "没有找到佣金 #{id}，发「佣金」看看待核对的列表。"
COMMISSION_DECIDED = "佣金 #{id} 已经处理过了（{status}）。"
COMMISSION_STATES = {
    "pending": "已放行",
    "available": "已结算",
    "reversed": "已驳回或已扣回",
    "review": "待核对",
}

# --- Withdrawals -----------------------------------------------------------------------------------

WITHDRAWALS_NONE = "👍 没有待审的提现申请。"
WITHDRAWALS_HEAD = "待审提现 {n} 笔（卡片上可直接批准或拒绝）：\n{lines}"
WITHDRAWAL_LINE = "#{id} · {amount}（到账 {net}）· {who} · {at}"
WITHDRAWAL_APPROVED = "✅ 提现 #{id} 已批准，{amount} 将打给 {who}。"
WITHDRAWAL_REFUSED = "提现 #{id} 已拒绝：{reason}"
WITHDRAWAL_ASK = "请直接回复拒绝提现 #{id} 的原因（10 分钟内，对方会看到）。发「取消」作罢。"
WITHDRAWAL_NOT_FOUND = "没有找到提现 #{id}，发「提现」看看列表。"
WITHDRAWAL_STATES = {
    "requested": "待审",
    "approved": "已批准",
    "paid": "已打款",
    "refused": "已拒绝",
    "failed": "打款失败",
}
WITHDRAWALS_SHOWN = 10  # cards sent at most per 「提现」

# --- Cards ------------------------------------------------------------------------------------------

CARD_SOURCE = "{brand} · 工作台"
CARD_TITLE = "订单 {number} · {total}"
CARD_DESC = "{status} · 审核：{review}"
CARD_SERVICE, CARD_CUSTOMER, CARD_ASSIGNEE, CARD_PUBLISH = "服务", "客户", "负责", "发布"
BUTTONS = {"approve": "通过", "reject": "驳回", "claim": "接单", "wd_approve": "批准", "wd_refuse": "拒绝"}
DONE_VERBS = {"approve": "通过", "reject": "驳回", "claim": "接单", "wd_approve": "批准", "wd_refuse": "拒绝"}
CARD_DONE_LABEL = "已{verb} · {name}"
CARD_DONE = "{subject} 已由 {name} {verb}，不用再处理了。"
CARD_SUBJECT_ORDER = "订单 {number}"
CARD_SUBJECT_WITHDRAWAL = "提现 #{id}"
CARD_UNKNOWN = "这张卡片已失效，请用指令操作，例如「查单 单号」。"
WITHDRAWAL_CARD_TITLE = "提现 #{id} · {amount}"
WITHDRAWAL_CARD_DESC = "申请于 {at}"
WITHDRAWAL_CARD_WHO, WITHDRAWAL_CARD_NET, WITHDRAWAL_CARD_FEE = "申请人", "到账", "手续费"

# --- To staff, unasked ------------------------------------------------------------------------------

ASSIGNED_TO_YOU = "📌 {number} · {total} 分给你了{by}。发「查单 {number}」看详情。"
ASSIGNED_BY = "（{name} 指派）"
REASSIGNED_AWAY = "{number} 已由 {by} 转给 {name}，不用再跟进了。"
PUBLISH_REMINDER = "⏰ {number} 约定 {when} 发布（还有约 {hours} 小时），发布后发「发布 {number} 链接」。"
ESCALATION_TEXT = (
    "⏰ {number}（{total}）付款后已等 {minutes} 分钟还在{waiting}，负责：{assignee}。请尽快处理。"
)
WAITING_REVIEW = "待审核"
WAITING_OWNER = "等人接单"

# Markdown for the work group (the group robot): WeCom's subset — bold, quotes, <font color>.
PAID_ALERT = "**🆕 新订单 {number}** · {total}\n> {items}\n> 客户：{customer}\n> 负责：{assignee}"
ESCALATION_ALERT = (
    '**<font color="warning">⏰ 订单等待过久</font>**\n'
    "> {number} · {total}\n> 付款后已等 {minutes} 分钟还在{waiting}\n> 负责：{assignee}"
)
REPORT = (
    "**📊 日报 {day}**\n"
    "> GMV：{gmv}\n"
    "> 付款订单：{paid}　完成：{completed}\n"
    "> 新客户：{customers}　新创作者：{creators}\n"
    "当前：待审核 {reviews} · 已分配 {assigned} · 执行中 {working} · 退款中 {refunding}\n"
    "待审提现：{withdrawals}"
)

# --- To customers ----------------------------------------------------------------------------------

DELIVERABLE_PUBLISHED = "📣 订单 {number}：{title}已发布 → {url}\n进度 {bar} {status}"

# --- Refusals: store.errors.DomainError codes --------------------------------------------------------

DOMAIN_ERRORS = {
    "commission_not_found": COMMISSION_NOT_FOUND,
    "commission_decided": COMMISSION_DECIDED,
    "none_of_mine": "你名下没有「{status}」的订单。要处理别的订单，请发「{command} 单号」。",
    "which_of_mine": "你名下有几单都可以{command}，是哪一单？\n{numbers}\n请发「{command} 单号」，例如「{command} {example}」。",
    "not_found": ORDER_NOT_FOUND,
    "withdrawal_not_found": WITHDRAWAL_NOT_FOUND,
    "withdrawal_decided": "提现 #{id} 已经处理过了（{status}）。",
    "flash_not_found": "没有秒杀 {sale}，发「秒杀 列表」看看编码。",
    "flash_stopped": "秒杀 {sale} 已经停止或结束了。",
    "in_debt": (
        "提现 #{withdrawal_id} 暂不能批准：申请之后有订单退款，扣回的佣金让创作者还欠 {debt_fen}。"
        "请「拒绝」这笔提现，退回的金额会先抵扣欠款。"
    ),
    "already_approved": "{number} 已经审核通过了。",
    "not_reviewable": "{number} 现在是「{status}」，不在审核阶段。",
    "already_yours": "{number} 已经由你负责了。",
    "taken": "{number} 已由 {assignee} 负责，需要调整请找管理员「分配」。",
    "not_claimable": "{number} 现在是「{status}」，不能接单了。",
    "not_assignable": "{number} 现在是「{status}」，不能再分配。",
    "already_assigned": "{number} 已经由 {assignee} 负责了。",
    "not_yours": "{number} 由 {assignee} 负责，只有负责人或管理员可以操作。",
    "cannot_start": "{number} 现在是「{status}」，审核通过并分配后（已分配）才能开始。",
    "cannot_complete": "{number} 现在是「{status}」，执行中的订单才能完成。",
    "no_pieces": "{number} 还没有登记发布的内容，先「发布 {number} 链接」再记数据。",
    "which_piece": "{number} 有 {count} 条发布，请写明第几条，例如「数据 {number} 第1条 曝光 1.2万」。",
    "no_such_piece": "{number} 只有 {count} 条发布，没有第{piece}条。",
    "no_results_yet": "{number} 现在是「{status}」，执行中或已完成的订单才能记数据。",
    "not_publishable": "{number} 现在是「{status}」，分配后才能登记发布。",
    "bad_url": "链接需要以 http:// 或 https:// 开头，请检查后再发。",
    "no_member": "没有找到成员「{who}」，发「员工 列表」看看。",
    "bad_roles": "角色只能是 管理员、运营、审核、财务（或 admin、ops、reviewer、finance），用逗号隔开。",
    "bad_userid": "账号只能包含字母、数字和 _.@-，最长 64 位。",
    "bad_name": "姓名需要 1–{max_chars} 个字。",
    "bad_max_open": "同时在办上限至少是 1。",
    "illegal_transition": "订单现在是「{frm}」，不能变成「{to}」。",
    "conflict": "订单刚刚有了变化，请「查单」看看最新状态。",
    "not_refundable": "订单现在是「{status}」，不能退款。",
    "refund_exceeds": "最多还能退 {refundable}。",
    "not_refunding": "{number} 现在是「{status}」，没有待处理的退款申请。",
    "refund_under_way": "{number} 有一笔原路退款还在微信支付处理中，等结果出来再决定。",
    "no_wechat_payment": "这个订单不是用微信支付的，不能原路退回；去掉「原路」就会退到客户余额。",
    "bad_reason": "请写上原因，200 字以内。",
    "bad_amount": "金额不对，请写元，例如「退款 20261122-0042 100 活动取消」。",
}
REFUSED = "没有办成（{code}），请检查后再试。"
FORBIDDEN_OR = "或"
