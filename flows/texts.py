"""Every person-facing sentence, in one place (zh-CN). Code and tests refer to these names."""

from __future__ import annotations

WELCOME = (
    "你好，欢迎来到「{brand}」👋\n"
    "在这里可以直接下单真实的达人推广、广告投放、内容制作、数据分析和课程咨询服务，"
    "全部由专业团队人工交付。\n"
    "发「帮助」看看可以怎么说，随时发「菜单」回到这里。"
)

WELCOME_BACK = "欢迎回来，{brand} 一直在 😊 发「帮助」看看可以怎么说。"

HELP = (
    "直接说需求就行，比如「小红书 美食博主 3000以内」「便宜一点的」「就要这个」。也可以用这些说法：\n"
    "找服务\n"
    "· 搜 关键词 — 例如「搜 咖啡 探店」\n"
    "· 分类 — 按平台（抖音、小红书…）或类别浏览\n"
    "· 筛选 / 排序 — 按价格、粉丝、互动率、形式缩小范围\n"
    "· 回复数字看详情，「下一页」翻页\n"
    "下单\n"
    "· 加购 ① — 放进购物车；购物车 — 查看；结算 — 一起下单\n"
    "· 下单 ① — 直接下单；填写中可发「返回」「模板」「取消」「继续」\n"
    "订单与支付\n"
    "· 我的订单 — 查看进度；取消订单 单号；申请退款 单号 原因\n"
    "· 支付 单号 — 支付二维码；余额支付；余额；充值 金额\n"
    "· 发票 — 保存抬头、申请电子发票\n"
    "秒杀\n"
    "· 秒杀 — 预告与进行中的活动；提醒我 — 开抢前提醒；抢 — 开抢后抢一件；候补 — 抢光后排队\n"
    "· 我的券 — 优惠券；用券 编号 — 下单时用这张；退订 / 订阅 — 活动消息\n"
    "其他\n"
    "· 关于 — 了解{brand}；人工 — 找真人客服；「怎么退款」「多久能发」这样问也可以\n"
    "· 我的数据 — 下载我们保存的你的全部信息；注销 — 删除你的个人信息"
)

# --- Understanding free text (handlers/understand/) ---------------------------------------------

GREETING = "在的 👋 想找什么样的推广？可以直接说，比如「小红书 美食博主 3000以内」。"
THANKS = "不客气 😊 还有什么需要，随时直接说。"
NOT_UNDERSTOOD = "没太明白你的意思 🤔 你是想（回复数字）：\n{options}"
NOT_UNDERSTOOD_OPTION = "{n}. {label}"
NOT_UNDERSTOOD_SHORT = "😊 想找推广的话，直接说需求就行，比如「小红书 美食博主 3000以内」。"
OFFER_HUMAN = "\n也可以发「人工」，请客服同事来帮你。"
SUGGEST_SEARCH = "找「{what}」的服务"
SUGGEST_ORDER = "查看订单 {number}"
SUGGEST_PICK = "看第 {n} 个的详情"
SUGGEST_ORDER_VIEWED = "下单刚才看的服务"
SUGGEST_CART_VIEWED = "把刚才看的服务放进购物车"
SUGGEST_BROWSE = "按平台和类别浏览全部服务"
SUGGEST_MY_ORDERS = "看看我的订单"
SUGGEST_HOWTO = "了解怎么下单"
SUGGEST_HUMAN = "找人工客服"
CHOICE_OUT_OF_RANGE = "请回复 1–{max} 之间的数字，或者直接说你想做什么。"
COMPLAINT_SORRY = "非常抱歉给你带来不好的体验 🙏 "
ORDER_WHAT = "想下单哪个服务呢？先说说需求，比如「小红书 美食博主 3000以内」，或发「分类」浏览。"
WHICH_PACKAGE = "「{title}」有 {count} 个套餐，要哪一个？回复数字就行：\n{packages}"
WHICH_PACKAGE_LINE = "{n}. {name} {price} · {lead}"
PRICES_OF = "「{title}」的 {count} 个套餐，明码标价：\n{packages}\n想下单直接回复数字。"
LEADS_OF = "「{title}」的交付时间从审核通过算起：\n{packages}\n发布时间下单时可以约定；想下单直接回复数字。"
ORDER_WHEN_NOTED = "好的，发布时间先记为 {when}，填到那一步时确认一下就行。\n"
FORM_QUESTION_RESUME = "\n\n我们接着填——{prompt}"

ABOUT = (
    "「{brand}」是一个在聊天里下单的服务平台：\n"
    "· 达人推广：抖音、快手、小红书、B站、微博、视频号\n"
    "· 广告投放、内容制作、数据分析\n"
    "· 课程与咨询\n"
    "所有服务都由真人交付，我们不卖刷粉、刷量、刷赞。"
)

HUMAN = "已记下，你可以直接把问题发在这里，工作时间（9:00–21:00）客服会尽快回复你。"

IMAGE_RECEIVED = "收到你的图片啦 👍 下单填写资料时直接发图，就会作为素材保存到订单里。"

VOICE_UNSUPPORTED = "暂时听不了语音，麻烦打字告诉我吧～ 发「帮助」看看可以怎么说。"

OTHER_MESSAGE = "这类消息我还看不懂，发文字就好～ 发「帮助」看看可以怎么说。"

SORRY = "抱歉，刚才出了点问题，我们已经在处理了。请稍后再试一次。"

# --- Personal data: 我的数据 and 注销 ----------------------------------------------------------------

MY_DATA_LINK = (
    "这是你在「{brand}」的全部数据（资料、聊天记录、订单、支付、余额流水、发票抬头、邀请关系、下单资料和图片清单），"
    "JSON 格式，点开即可下载：\n{url}\n链接 {hours} 小时内有效，只有拿到链接的人能打开，请不要转发。"
)
MY_DATA_UNAVAILABLE = "暂时无法生成下载链接，请稍后再试，或发「人工」联系客服。"
ERASE_CONFIRM = (
    "确定要注销吗？注销后将删除：你的资料、聊天内容、对话进度、下单时填写的资料和发送的图片、保存的发票抬头、购物车。\n"
    "订单、支付和账务记录是财务依法需要保留的，会去掉与你的关联后保留；未支付的订单会被取消。\n"
    "{money}"
    "确认请在 {minutes} 分钟内回复「确认注销」，不注销就不用理会。"
)
ERASE_MONEY = (
    "⚠️ 你还有 {total} 在这里：{parts}。注销后这些钱无法再找回或提现，"
    "建议先处理：可提现的收益发「提现 金额」，余额可用「余额支付」下单或发「人工」咨询退回，"
    "待结算的佣金要等结算后才能提现。\n"
)
ERASE_MONEY_BALANCE = "余额 {amount}"
ERASE_MONEY_AVAILABLE = "可提现收益 {amount}"
ERASE_MONEY_PENDING = "待结算佣金 {amount}"
ERASE_BLOCKED_ORDERS = (
    "你还有进行中的订单（{numbers}），注销会让我们无法继续交付或退款。"
    "等订单完成后再注销，或先发「申请退款 单号 原因」。"
)
ERASE_BLOCKED_WITHDRAWAL = "你有一笔 {amount} 的提现正在处理，到账后再注销吧，以免钱无法到账。"
ERASE_NOT_ASKED = "要注销的话，请先发「注销」，看清会删除哪些信息后再确认。"
ERASED = "已注销，你的个人信息已删除 🙏 感谢一路相伴。以后想再用{brand}，随时发消息就好。"

# Menu button labels (WeChat allows 4 Chinese characters for top-level, 8 for sub-buttons).
MENU_BROWSE = "找服务"
MENU_ORDERS = "我的订单"
MENU_CART = "购物车"
MENU_BALANCE = "我的余额"
MENU_HELP = "使用帮助"
MENU_ABOUT = "关于我们"
MENU_HUMAN = "人工客服"
MENU_FLASH = "限时秒杀"
MENU_MORE = "更多"
MENU_MINE = "我的"
MENU_EARNINGS = "我的收益"
MENU_TEAM = "我的团队"

# The template message sent when a customer-service message is refused (45015, outside 48 hours).
NOTICE_TITLE = "您有一条新消息"
NOTICE_REMARK = "回复任意消息即可继续对话。"

# --- Catalog -------------------------------------------------------------------------------------

CATEGORIES = (
    "按平台或类别浏览，直接发名字就行：\n"
    "平台：{platforms}\n"
    "类别：{categories}\n"
    "也可以发「搜 关键词」，例如「搜 咖啡 探店」。"
)
SEARCH_EMPTY_QUERY = "想找什么呢？发「搜」加关键词，例如「搜 咖啡 探店」或「搜 美妆 抖音」。"
RESULTS_HEAD = "找到 {total} 个服务（{sort}{filters}）：\n"
RESULTS_LINE = "{n}. {title} · {platform} · {followers}粉 · 互动 {engagement} · {price} 起 · {availability}"
RESULTS_LINE_NO_METRICS = "{n}. {title} · {platform} · {category} · {price} 起 · {availability}"
RESULTS_FOOT = "\n回复数字看详情{more}，「筛选」按价格/粉丝/形式缩小范围，「排序」换排序方式。"
RESULTS_MORE = "，「下一页」看更多"
RESULTS_PAGE = "，第 {page}/{pages} 页"
NO_RESULTS = "没有找到符合条件的服务 😶 换个关键词试试，或发「分类」按平台浏览。{filters_hint}"
RECOMMEND_HEAD = "💡 猜你喜欢：\n"
RECOMMEND_LINE = "{n}. {title} · {platform} · {price} 起 · {availability}"
RECOMMEND_FOOT = "\n回复数字看详情。"
RECOMMEND_NONE = "暂时没有可以推荐的服务，发「分类」看看全部吧。"
RECOMMEND_BESIDE = "\n\n💡 猜你喜欢：\n{lines}\n发「推荐」可以挑一个看详情。"
RECOMMEND_AFTER_SEARCH = "\n\n也可以看看这些 👇\n"
RECOMMEND_AFTER_COMPLETION = "💡 和你买过的服务常被一起选的：\n{lines}\n发「推荐」可以挑一个看详情。"
RECOMMEND_BULLET = "· {title} · {platform} · {price} 起"
NO_RESULTS_FILTER_HINT = "\n当前筛选：{filters}，发「清除筛选」去掉条件。"
# Nothing matched every condition: which one did it, and the nearest services without it.
NO_RESULTS_BLOCKED = "「{conditions}」没有找到 😶 {relaxed}后最接近的是：\n{lines}\n回复数字看详情{others}，发「清除筛选」去掉条件。"
NO_RESULTS_OTHERS = "；也可以{ways}"
NO_RESULTS_WORDS = (
    "没有和「{words}」相关的服务 😶 {where}先看看这些：\n{lines}\n回复数字看详情，或换个说法再搜。"
)
NO_RESULTS_WORDS_WHERE = "{filters}的服务里"
RELAX_WAYS = {
    "price": "放宽预算",
    "followers": "放宽粉丝数",
    "engagement": "放宽互动率",
    "form": "不限形式",
    "platform": "换个平台",
    "category": "不限类别",
    "tags": "不限标签",
    "keywords": "不限关键词",
}
NO_MORE_PAGES = "已经是最后一页了。回复数字看详情，或换个关键词搜索。"
NO_PREVIOUS_PAGE = "已经是第一页了。"
NO_LIST = "先搜点什么吧：发「搜 关键词」或「分类」。"
PICK_OUT_OF_RANGE = "列表里没有第 {n} 项，请回复 1–{max} 之间的数字。"
SORT_NAMES = {
    "relevance": "按相关度排序",
    "engagement": "按互动率排序",
    "price": "按价格从低到高",
    "price_desc": "按价格从高到低",
    "followers": "按粉丝数排序",
    "exposure": "按预估曝光排序",
}
FILTER_HELP = (
    "可以这样筛选（可叠加，发「清除筛选」重来）：\n"
    "· 筛选 价格 500-2000（单位：元）\n"
    "· 筛选 粉丝 1万-10万\n"
    "· 筛选 互动 5%（互动率不低于）\n"
    "· 筛选 形式 视频（图文 / 视频 / 直播）\n"
    "· 筛选 平台 小红书\n"
    "排序：发「排序 价格」「排序 价格高」「排序 粉丝」「排序 互动」「排序 曝光」。"
)
FILTER_INVALID = "没看懂这个筛选条件 🙏\n\n" + FILTER_HELP
FILTERS_CLEARED = "已清除筛选条件。"
SORT_INVALID = "可以按这些排序：相关度、价格、价格高、粉丝、互动、曝光。例如发「排序 粉丝」。"

DETAIL = (
    "【{title}】{platform} · {category}\n"
    "{summary}\n"
    "{metrics}"
    "{audience}"
    "{cases}"
    "套餐：\n{packages}\n"
    "回复「下单 ①」直接下单，或「加购 ②」放进购物车。"
)
DETAIL_METRICS = "粉丝 {followers} · 互动率 {engagement} · 预估曝光 {exposure}\n"
DETAIL_AUDIENCE = "受众：{audience}\n"
DETAIL_CASES = "案例：{cases}\n"
DETAIL_REVIEWS = "评价：⭐ {average} 分（{count} 条）{comments}\n"
DETAIL_PACKAGE = "{mark} {name} {price} · {lead} · {availability}\n   {deliverables}"
LEAD_DAYS = "{days} 天交付"
LEAD_NOW = "即时开通"
NO_VIEWING = "先选一个服务：搜索后回复数字看详情，再发「加购 ①」或「下单 ①」。"
NO_SUCH_PACKAGE = "这个服务没有第 {n} 个套餐，可选 {choices}。"
PACKAGE_SOLD_OUT = "「{name}」已售罄，看看其他套餐或别的服务吧。"

# --- Cart ----------------------------------------------------------------------------------------

CART_ADDED = "已加入购物车（共 {lines} 项，{total}）。继续挑选，或发「结算」。"
CART_EMPTY = "购物车是空的。发「搜 关键词」挑选服务，看中后发「加购 ①」。"
CART_HEAD = "购物车（{lines} 项）：\n"
CART_LINE = "{n}. {title} · {package} × {qty} = {subtotal}{warning}"
CART_LINE_SOLD_OUT = "（已售罄）"
CART_LINE_UNAVAILABLE = "（已下架）"
CART_FOOT = "\n合计 {total}\n发「结算」下单，「数量 1 2」改数量，「删除 1」移除，「清空购物车」全部清空。"
CART_UPDATED = "好的，已更新。\n\n"
CART_CLEARED = "购物车已清空。"
CART_LINE_INVALID = "购物车里没有第 {n} 项，发「购物车」看看编号。"
QUANTITY_INVALID = "数量需要是 1–99 之间的整数，例如「数量 1 2」。发 0 或「删除 1」可以移除。"
CART_USAGE = "发「数量 行号 数量」改数量（如「数量 1 2」），「删除 行号」移除一项。"

# --- Order form ----------------------------------------------------------------------------------

FORM_START = (
    "一共 {lines} 项，需要先填 {steps} 项信息，约 {minutes} 分钟。随时发「返回」改上一项，「取消」放弃。\n\n"
)
FORM_STEP = "第 {n}/{total} 步：{prompt}"
FORM_TEMPLATE_HINT = "（发「模板」看示例）"
FORM_TEMPLATE = "示例：\n{example}\n\n照这个格式发给我就行。"
FORM_FIRST_STEP = "已经是第一步了。\n\n"
FORM_CANCELLED = "好的，已放弃这次下单。购物车里的内容还在，随时发「结算」重新开始。"
FORM_CANCELLED_NO_CART = "好的，已放弃这次下单。想再看看的话，直接说想找什么，或发「分类」浏览。"
FORM_PAUSED = "\n\n——\n刚才的下单进行到第 {n}/{total} 步，发「继续」接着填。"
FORM_PAUSED_CONFIRM = "\n\n——\n刚才的订单还差最后确认，发「继续」查看，发「确认」生成订单。"
FORM_NOTHING_TO_RESUME = "现在没有进行中的下单。发「购物车」看看，或「搜 关键词」找服务。"
FORM_REMINDER = "你有一份没填完的订单（第 {n}/{total} 步）📝 发「继续」接着填，发「取消」放弃。"
NOT_IN_FORM = "现在没有进行中的下单，这句用不上哦。发「帮助」看看可以怎么说。"

ANSWER_LENGTH = "这一步需要 {lo}–{hi} 个字，你发了 {got} 个字，请调整后再发一次。"
BRAND_NO_LETTERS = "品牌名里要有文字或字母哦。请发品牌或店铺名称，例如「{example}」。"
BRAND_LOOKS_LIKE_QUESTION = (
    "「{said}」像是一个问题，不像品牌名，我先不记下。这一步请发品牌或店铺名称，例如「{example}」。"
)
BRAND_LOOKS_LIKE_LINK = "这是一个链接哦，链接在后面一步填。这一步请发品牌或店铺名称，例如「{example}」。"
LINK_INVALID = "这一步需要商品或作品的链接哦，例如 https://… 也可以直接粘贴抖音、小红书、淘宝的分享文案，我会从里面找链接。"
TIME_INVALID = "没看懂这个时间，可以这样说：「{example}」「下周五晚上7点」「后天下午3点」。请再发一次。"
TIME_NEEDS_DATE = "{clock} 是哪一天呢？请带上日期，例如「{example}」或「下周五晚上7点」。"
TIME_PAST = "{when} 已经过去了，请发一个以后的时间，例如「{example}」。"
TIME_TOO_SOON = (
    "发布时间需要在 24 小时以后（{earliest} 之后），留给达人准备的时间。请换个时间，例如「{example}」。"
)
TIME_TOO_FAR = "发布时间最多可以约在 180 天内（{latest}之前），请换个近一点的时间。"
TIME_CONFIRM = "发布时间记为 {when}{assumed}，对吗？回复「对」确认，或直接发新的时间。"
TIME_ASSUMED_CLOCK = "（没说几点，先按 {clock} 记）"
TIME_ASAP = (
    "最早可以约在 {when}（留 24 小时给达人准备），就定这个时间吗？回复「对」确认，或直接发你想要的时间。"
)
MENTIONS_INVALID = "请发 1–10 个需要 @ 的账号，用空格隔开，例如「@小鹿爱咖啡 @咖啡品牌A」。"
MENTIONS_NOT_A_NAME = "「{name}」看起来不像账号名哦。" + MENTIONS_INVALID
CONTACT_INVALID = "请发联系人姓名和手机号，例如「王芳 13800138000」。"
CONTACT_NO_PHONE = (
    "没找到有效的电话号码：手机号是 1 开头的 11 位数字（可以带 +86），座机请带区号，"
    "例如「王芳 13800138000」或「王芳 021-62345678」。"
)
CONTACT_NO_NAME = "电话收到了，还差联系人怎么称呼，例如「王芳 {phone}」。"
IMAGES_EXPECTED = "这一步请直接发图片（可以连发几张），发完后回复「好了」。不需要的话发「跳过」。"
IMAGE_SAVED = "收到第 {n} 张图 👍 继续发图，或回复「好了」进入下一步。"
IMAGE_LIMIT = "最多可以放 {max} 张参考图，已经够了，回复「好了」进入下一步。"
IMAGES_NONE_YET = "还没收到图片哦。请直接发图，或发「跳过」不放参考图。"
IMAGE_BAD = "这张图片打不开或格式不支持，请发 JPG 或 PNG 图片。"
IMAGE_TOO_LARGE = "这张图片超过 10MB 了，请压缩后再发。"
IMAGE_DOWNLOAD_FAILED = "图片没能保存下来，请再发一次。"
IMAGE_NOT_NOW = "这一步需要文字回答哦。"

ASK_BRAND = "品牌或店铺名称是？"
ASK_LINK = "推广的商品链接是？"
ASK_SELLING_POINTS = "核心卖点，一到三句话。"
ASK_COPY = "希望文案或口播里提到哪些要点？"
ASK_PUBLISH_TIME = "希望什么时候发布？"
ASK_MENTIONS = "需要 @ 哪些账号？"
ASK_IMAGES = "有参考图片吗？直接发图（可连发几张），发完回复「好了」；没有就发「跳过」。"
ASK_AUDIENCE = "想触达的目标人群是？"
ASK_CONTACT = "联系人和手机号？方便执行同事和你确认细节。"
ASK_NOTES = "还有其他要求吗？没有就发「无」。"

EXAMPLE_BRAND = "咖啡品牌A"
EXAMPLE_LINK = "https://shop.example.com/coffee/new"
EXAMPLE_SELLING_POINTS = "0 糖 0 脂的冷萃咖啡，3 秒速溶，冷水也能冲。"
EXAMPLE_COPY = "突出早八通勤场景，提一句新品首发 8 折。"
EXAMPLE_MENTIONS = "@咖啡品牌A官方 @小鹿爱咖啡"
EXAMPLE_IMAGES = "直接发产品图、包装图或你喜欢的风格参考图，发完回复「好了」。"
EXAMPLE_AUDIENCE = "一二线城市 22–30 岁上班族，女性为主"
EXAMPLE_CONTACT = "王芳 13800138000"
EXAMPLE_NOTES = "不要出现竞品；视频里露出 logo 3 秒以上。"

CONFIRM = "请确认：\n{lines}\n合计 {total}\n{answers}\n回复「确认」生成订单，「返回」修改，「取消」放弃。"
CONFIRM_LINE = "{title} {package} × {qty} {subtotal}"
CONFIRM_ANSWER = "{label}：{value}"
ORDER_CREATED = (
    "订单 {number} 已生成，待支付 {total}，{minutes} 分钟内有效。\n"
    "回复「余额支付」用余额支付（余额 {balance}），或稍后发「支付 {number}」获取支付二维码。"
)
ORDER_SOLD_OUT = "抱歉，「{names}」刚刚被抢完了 😢 已从这次下单里去掉，其他内容还在，发「结算」重新确认。"

# --- My orders -----------------------------------------------------------------------------------

NO_ORDERS = "你还没有订单。发「搜 关键词」找服务，看中后就能下单。"
NO_ORDERS_WITH_STATUS = "没有{status}的订单。发「我的订单」看全部。"
ORDERS_HEAD = "你的订单{status}（共 {total} 个）{page}：\n"
ORDERS_LINE = "{n}. {number} · {status} · {total} · {title}"
ORDERS_TITLE_MORE = "{title} 等 {lines} 项"
ORDERS_FOOT = "\n回复数字看详情{more}；可按状态看，如「我的订单 待支付」。"
ORDER_NOT_FOUND = "没有找到订单 {number}，请检查单号，或发「我的订单」看看。"
ORDER_DETAIL = (
    "订单 {number} · {status}\n"
    "{progress}\n"
    "{lines}\n"
    "合计 {total}{refunded}\n"
    "{answers}"
    "{deliverables}"
    "进度记录：\n{timeline}\n"
    "{actions}"
)
ORDER_REFUNDED = "（已退 {amount}）"
ORDER_DELIVERABLES = "交付：\n{items}\n"
ORDER_ACTION_UNPAID = "发「取消订单 {number}」可以取消。"
ORDER_ACTION_PAID = "需要退款请发「申请退款 {number} 原因」。"
CANCEL_REASON_CUSTOMER = "客户取消"
ORDER_CANCELLED = "订单 {number} 已取消，占用的名额已释放。"
ORDER_NOT_CANCELLABLE = (
    "订单 {number} 现在是「{status}」，不能取消了。已付款的订单可以「申请退款 {number} 原因」。"
)
REFUND_NEEDS_REASON = "请带上退款原因，例如「申请退款 {number} 活动延期了」。"
REFUND_REQUESTED = "已提交订单 {number} 的退款申请，客服会尽快处理，结果会第一时间通知你。"
REFUND_NOT_ALLOWED = "订单 {number} 现在是「{status}」，还不能申请退款。"
REFUND_DECLINED = "订单 {number} 的退款申请没有通过：{reason}\n订单继续进行，当前状态「{status}」。有疑问可以发「联系客服 {number}」。"
ORDER_REPORT_HINT = "📊 已有投放数据，发「报告 {number}」看数据报告，「导出 {number}」下载 Excel。\n"
ORDER_USAGE = "请带上单号，例如「{command} 20261122-0042」。发「我的订单」查看单号。"
ACTOR_NAMES = {"customer": "你", "staff": "客服", "system": "系统"}

ORDER_NOTICES = {
    "待审核": "✅ 已收到付款 {total}，订单 {number} 进入审核，通常 1 小时内完成。",
    "已分配": "👤 订单 {number} 已安排专人负责，马上开始准备。进度 {bar}",
    "执行中": "🚀 订单 {number} 开始执行。进度 {bar}",
    "已完成": "🎉 订单 {number} 已完成！发「订单 {number}」查看交付内容。",
    "已取消": "订单 {number} 已取消{reason}，占用的名额已释放。",
    "退款中": "订单 {number} 进入退款处理{reason}，结果会第一时间通知你。",
    "已退款": "💰 订单 {number} 已退款，请留意到账通知。",
}

# --- Results: the report, its picture, exports ----------------------------------------------------

REPORT_NO_DATA = (
    "订单 {number} 还没有投放数据。内容发布后我们会在 24 小时、72 小时和 7 天左右统计曝光和互动，"
    "有了数据会通知你 📊"
)
REPORT_SUMMARY = (
    "📊 订单 {number} 数据报告（{stage}，截至 {at}）\n"
    "{pieces} 条内容合计：\n"
    "曝光 {exposure} · 阅读 {reads}\n"
    "互动 {engagement}（点赞 {likes} · 评论 {comments} · 收藏 {favorites} · 转发 {shares}）\n"
    "点击 {clicks} · 转化 {conversions}\n"
    "互动率 {interaction} · 点击率 {ctr} · 转化率 {conversion}\n"
    "千次曝光成本 {cpm} · 单次互动成本 {cpe}（按实付 {paid} 计算）\n"
    "发「导出 {number}」下载 Excel 明细。"
)
REPORT_FINAL = "最终数据"
REPORT_SO_FAR = "阶段数据"
REPORT_PIECE = "第{n}条 {title}：{figures}"
REPORT_PICTURE_TITLE = "数据报告"
REPORT_PICTURE_SUB = "订单 {number} · {stage} · 截至 {at}（北京时间）"
REPORT_ENGAGEMENT = "互动"
REPORT_INTERACTION_RATE = "互动率"
REPORT_CPM = "千次曝光成本"
REPORT_CPE = "单次互动成本"
REPORT_PIECE_HEADING = "第{n}条 · {title}"
REPORT_PIECE_NO_DATA = "这条还没有数据，统计后会更新。"
REPORT_MORE_PIECES = "另有 {n} 条内容没画出来，它们的数据已算在上面的合计里。"
REPORT_FOOT = "互动 = 点赞 + 评论 + 收藏 + 转发；成本按实付 {paid} 计算。"
REPORT_PICTURE_UNAVAILABLE = "（图表暂时生成不了，稍后再发一次「报告」就有图了。）"
REPORT_READY = (
    "📊 订单 {number} 的最终数据出来了：曝光 {exposure}，互动 {engagement}，互动率 {interaction}。\n"
    "发「报告 {number}」看完整数据报告和图表，「导出 {number}」下载 Excel。"
)
REPORT_AT_COMPLETION = (
    "📊 订单 {number} 的数据报告（截至 {at}）：曝光 {exposure}，互动 {engagement}，互动率 {interaction}。\n"
    "发「报告 {number}」看完整报告和图表，「导出 {number}」下载 Excel。"
)
REPORT_DAILY = "☀️ 今日数据更新\n{summary}"
WEEKLY_SUMMARY = (
    "📅 本周数据小结：近 30 天你有 {orders} 个订单，合计曝光 {exposure}，互动 {engagement}。\n{lines}\n"
    "发「报告 单号」看某个订单的完整报告，「导出 全部」下载 Excel。"
)
WEEKLY_LINE = "· {number} {status}：曝光 {exposure}，互动 {engagement}"
REVIEW_ASK = (
    "🙏 订单 {number} 已完成，给这次服务打个分吧：回复「评分 5」（1–5 分），"
    "想多说一句也可以，例如「评分 5 达人很用心，效果超预期」。不想评价的话忽略这条就好。"
)
REVIEW_THANKS = "收到你的评价 {stars}，谢谢！{extra}"
REVIEW_SORRY = "很抱歉这次没让你满意，负责的同事会尽快联系你。"
REVIEW_GLAD = "期待下次合作 😊"
REVIEW_USAGE = "打分请回复「评分」加 1–5 分，可以再加一句评价，例如「评分 5 达人很用心」。"
REVIEW_NOTHING = "目前没有待评价的订单，订单完成后就可以来打分啦。"
REVIEW_WHICH = "你有 {n} 个待评价的订单：{numbers}\n请带上单号，例如「评分 {example} 5 很满意」。"
EXPORT_LINK = "📥 {what}的 Excel 已准备好（{orders} 个订单），点链接下载：\n{url}\n链接 {hours} 小时内有效，只给你自己用哦。"
EXPORT_WHAT_ONE = "订单 {number} "
EXPORT_WHAT_ALL = "全部订单"
EXPORT_NOTHING = "你还没有已付款的订单，暂时没有可以导出的数据。"
EXPORT_UNAVAILABLE = "导出暂时用不了，请稍后再试，或发「联系客服」让我们发给你。"

# --- FAQ -----------------------------------------------------------------------------------------

# Answers to common questions, by the topic the understanding step names (flows/understand/types.py);
# progress answers 「订单什么时候完成」 when there is no order to show.
FAQ = {
    "price": "每个服务的价格都写在套餐里，明码标价：搜索后回复数字看详情就能看到 ①②③ 各档价格。"
    "也可以直接说预算，比如「抖音 美食达人 3000以内」。",
    "refund": "未付款的订单随时可以「取消订单 单号」；已付款的订单可以「申请退款 单号 原因」，"
    "审核前全额退回，客服会在 1 个工作日内处理，可退回余额或原路退回。",
    "timing": "每个套餐都标了交付天数（详情里的「X 天交付」），从审核通过开始计算；发布时间可以在下单时约定。",
    "progress": "订单付款后 1 小时内审核，之后按套餐写的交付天数执行，每一步都会通知你；"
    "发「我的订单」随时看进度和交付物。",
    "invoice": "支持开具电子发票：先发「发票抬头 公司名称 税号」保存抬头，订单完成后发「开发票 订单号」。",
    "payment": "下单后会收到支付二维码，长按识别即可用微信支付；也可以先「充值」再回复「余额支付」。"
    "未支付的订单 30 分钟后自动取消。",
    "howto": "直接说需求就能找到服务，比如「小红书 美食博主 3000以内」；回复数字看详情，"
    "再说「就要这个」或发「下单 ①」，按提示填几项推广要求、确认并支付就好。",
    "fake": "我们只提供真人交付的真实服务，不做刷粉、刷量、刷赞这类数据造假，也请不要提这类需求 🙏",
    "quality": "所有达人与服务都经过审核，数据来自平台后台；订单全程可在「我的订单」查看进度和交付物，"
    "不满意可申请退款。",
    "contract": "可以签合同 📄 下单后发「联系客服 单号」，客服会和你确认合同主体和条款。",
    "cancel": "未付款的订单发「取消订单 单号」就能取消；已付款的订单请「申请退款 单号 原因」。",
}
FAQ_OTHER = "这个问题我先记下了 📝 发「人工」请客服同事来详细解答，工作时间（9:00–21:00）会尽快回复你。"
FAQ_PRICE_LIST = "价格都明码标价，写在每个套餐里 👇\n"


# --- Paying ----------------------------------------------------------------------------------------

ORDER_CREATED_PAY = (
    "订单 {number} 已生成，待支付 {total}。\n"
    "长按识别下方二维码用微信支付，或回复「余额支付」（余额 {balance}）。{minutes} 分钟内有效。{link}"
)
PAY_LINK = "\n也可以打开支付页面：{url}"
PAY_AGAIN = (
    "订单 {number} 待支付 {total}，长按识别下方二维码支付，或回复「余额支付」（余额 {balance}）。{link}"
)
PAY_UNAVAILABLE = "支付通道暂时不可用 😣 订单已保留，请稍后发「支付 {number}」再试，或回复「余额支付」。"
TOPUP_UNAVAILABLE = "充值通道暂时不可用 😣 请稍后再试。"
PAY_NO_ORDER = "请带上要支付的订单号，例如「支付 20261122-0042」。发「我的订单 待支付」查看。"
PAY_NOT_NEEDED = "订单 {number} 现在是「{status}」，不需要支付了。"
PAID_BY_BALANCE = "✅ 已用余额支付 {total}，订单 {number} 进入审核，通常 1 小时内完成。余额还剩 {balance}。"
BALANCE_SHORT = "余额不足：需要 {needed}，余额 {balance}。发「充值 {topup}」充值，或长按二维码用微信支付。"
BALANCE = "💰 余额 {balance}\n{entries}\n发「充值 金额」充值，例如「充值 500」。"
BALANCE_ENTRY = "{at} {amount} {what}"
BALANCE_NO_ENTRIES = "还没有余额变动。"
LEDGER_KINDS = {
    "topup": "充值",
    "order_payment": "支付订单",
    "refund": "退款",
    "late_payment": "订单取消后到账",
}
TOPUP_USAGE = "请带上金额（元），例如「充值 500」，单次 1–50,000 元。"
TOPUP_QR = "充值 {amount}：长按识别下方二维码用微信支付，到账后会通知你。{link}"
TOPUP_CREDITED = "💰 充值 {amount} 已到账，余额 {balance}。"
PAYMENT_REMINDER = "⏰ 订单 {number} 还有 {minutes} 分钟未支付就会自动取消，发「支付 {number}」继续支付。"
EXPIRED_REASON = "超时未支付"
LATE_PAYMENT_CREDITED = (
    "订单 {number} 已超时取消，刚到账的 {total} 已存入你的余额，可直接用于下单或联系客服退款。"
)
# --- Flash sales (秒杀) -----------------------------------------------------------------------------

COUPON_OFF = "立减 {off}"
COUPON_PERCENT = "{rate} 折"
COUPON_CAP = "（最多减 {cap}）"
COUPON_MIN = "满 {min} "
COUPON_FAN_TITLE = "专属粉丝券"
COUPON_NEW_FOLLOWER_TITLE = "新人首单券"
COUPON_NEW_FOLLOWER = "🎁 送你一张「新人首单券」：{what}，{days} 天内下单自动抵扣，发「我的券」查看。"
COUPONS_NONE = "你还没有优惠券。参加秒杀等活动可以领到～"
COUPONS = "🎟 我的券\n{lines}\n下单时自动用最划算的一张；想指定就发「用券 编号」。"
COUPON_LINE = "{n}. {title}：{what}｜{state}"
COUPON_VALID = "{until} 前有效"
COUPON_USED = "已使用"
COUPON_EXPIRED = "已过期"
COUPON_APPLIED = "\n🎟 已用券「{title}」（{what}），为你省了 {off}。"
COUPON_CHOSEN = "好的，下次下单用第 {n} 张券：{what}（不满足条件时自动换最划算的一张）。"
COUPON_PICK = "请带上券的编号，例如「用券 1」。发「我的券」看看。"
MARKETING_OFF = "已退订活动消息，以后不会再给你发秒杀后的优惠推送。想恢复就回复「订阅」。"
MARKETING_ON = "已恢复活动消息，有好活动会第一时间告诉你 😊 不想收到就回复「退订」。"
FLASH_NONE = "最近没有秒杀活动，有新活动会在这里预告，敬请期待～"
FLASH_LIST = "⚡ 限时秒杀\n{lines}\n\n回复「秒杀 编号」看详情，开抢后发「抢」。"
FLASH_LINE = "{n}. {title}\n   {price}（原价 {usual}）\n   {state}"
FLASH_TIER = "前 {upto} 单 {price}"
FLASH_TIER_THEN = "之后 {price}"
FLASH_PRICE_JOIN = "，"
FLASH_STATE_UPCOMING = "⏳ 还有 {wait}开抢（{at}）"
FLASH_STATE_LIVE = "🔥 进行中，仅剩 {left} 件"
FLASH_STATE_SOLD_OUT = "已抢光，发「候补」排队等名额"
FLASH_STATE_OVER = "已结束"
FLASH_WAIT_DAYS = "{d} 天 {h} 小时"
FLASH_WAIT_HOURS = "{h} 小时 {m} 分"
FLASH_WAIT_WHOLE_HOURS = "{h} 小时"
FLASH_WAIT_MINUTES = "{m} 分钟"
FLASH_WAIT_NOW = "不到 1 分钟"
FLASH_DETAIL = (
    "⚡ {title}\n"
    "{service} · {package}\n"
    "秒杀价 {price}（原价 {usual}）\n"
    "共 {stock} 件，每人限 {limit} 件\n"
    "时间 {start} – {end}\n"
    "{state}\n"
    "{action}"
)
FLASH_ACTION_UPCOMING = "开抢后发「抢」就行，抢到后 {hold} 分钟内付款。"
FLASH_ACTION_LIVE = "现在就发「抢」！抢到后 {hold} 分钟内付款。"
FLASH_ACTION_SOLD_OUT = "发「候补」排队：有人超时没付款，名额会先给候补的人。"
FLASH_ACTION_OVER = "发「秒杀」看看其他活动。"
FLASH_NOT_FOUND = "没有找到秒杀「{code}」，发「秒杀」看看有哪些活动。"
FLASH_WHICH = "现在有好几场秒杀，请说抢哪一场，例如「抢 {code}」：\n{lines}"
FLASH_NO_LIVE = "现在没有正在进行的秒杀，发「秒杀」看看预告。"
FLASH_THROTTLED = "别急，正在帮你抢～ 请隔一秒再发「抢」。"
FLASH_TAKEN = (
    "🎉 抢到了！你是第 {position} 位，秒杀价 {price}。\n"
    "请在 {deadline} 前（{hold} 分钟内）付款，超时名额会让给下一位。"
)
FLASH_PAY = (
    "订单 {number} 待支付 {total}：长按识别下方二维码用微信支付，或回复「余额支付」（余额 {balance}）。{link}"
)
FLASH_HAVE_UNPAID = "你已经抢到了（每人限 {limit} 件）😊 订单 {number} 还没付款，{deadline} 前发「支付 {number}」或「余额支付」。"
FLASH_HAVE_PAID = "你已经抢到并付款了（每人限 {limit} 件）😊 发「我的订单」看看进度。"
FLASH_SOLD_OUT = "手慢了，已经抢光了 😢 发「候补」排队：有人超时没付款，名额会先给候补的人。"
FLASH_WAITLIST_JOINED = "已加入候补，你排在第 {place} 位。一有名额就先给你，并为你保留 {hold} 分钟。"
FLASH_WAITLIST_NOT_NEEDED = "现在还有名额，直接发「抢」就行！"
FLASH_REMIND_SET = "好的，「{title}」开抢前会提醒你：{times}。"
FLASH_REMIND_AT = "开抢时"
FLASH_REMIND_BEFORE_AT = "{at}"
FLASH_REMIND_LINK = (
    "\n有的提醒在 48 小时以后，微信只允许那时发一条订阅消息：点这里授权，提醒一定能收到 👉 {link}"
)
FLASH_REMIND_LIVE = "已经开抢了！现在就发「抢」。"
FLASH_REMIND_OVER = "这场秒杀已经结束了，发「秒杀」看看其他活动。"
FLASH_REMIND_BEFORE = "⏰「{title}」还有 {wait}开抢（{at}），秒杀价 {price}（原价 {usual}）。到点发「抢」！"
FLASH_REMIND_START = "🔥「{title}」开抢了！秒杀价 {price}（原价 {usual}），仅剩 {left} 件，快发「抢」！"
FLASH_REMIND_TITLE = "秒杀开抢提醒"
FLASH_CONSENT_PAGE = "已授权 ✅ 开抢提醒会准时发给你，可以关闭这个页面回到公众号了。"
FLASH_CONSENT_DECLINED = "没有授权也没关系：48 小时内和我们聊过天的话，提醒照样会发给你。"
FLASH_CONSENT_BAD = "这个授权链接无效或已过期，请在公众号里重新发「提醒我」。"
FLASH_REMARKET = (
    "感谢参与「{title}」秒杀 🙏 这次没抢到也别灰心，{coupon}\n"
    "同样好用的正价服务：{services}，发「搜 关键词」看看。\n"
    "不想再收到活动消息，回复「退订」。"
)
FLASH_REMARKET_COUPON = "送你一张专属粉丝券：{coupon}，{days} 天内有效，下单自动抵扣。"
FLASH_REMARKET_ANY = "全部服务"
FLASH_HOLD_EXPIRED = "⏰ 你抢到的「{title}」{hold} 分钟内没有付款，订单 {number} 已取消，名额已让给下一位。"
FLASH_WAITLIST_OFFER = (
    "🎉 候补成功！有人让出了「{title}」的名额，已为你生成订单 {number}（{price}）。\n"
    "请在 {deadline} 前付款：发「支付 {number}」拿付款码，或「余额支付 {number}」。"
)
FLASH_LATE_HONOURED = (
    "订单 {number} 的保留时间已过，好在还有名额：你的付款 {total} 已生效，新订单 {new_number} 已支付 ✅"
)
FLASH_LATE_TO_BALANCE = (
    "订单 {number} 的保留时间已过，名额也已经没有了 😢 你的付款 {total} 已存入余额，"
    "可直接用于下单或联系客服退款。"
)
REFUNDED_TO_BALANCE = "💰 订单 {number} 的退款 {amount} 已退到余额，余额 {balance}。"
REFUNDED_TO_WECHAT = "💰 订单 {number} 的退款 {amount} 已原路退回，请留意微信支付通知。"

INVOICE_HELP = (
    "开发票：\n"
    "1. 先保存抬头：「发票抬头 公司名称 税号」（个人发票只写名字）\n"
    "2. 订单完成后：「开发票 订单号」（有多个抬头时加编号，如「开发票 20261122-0042 2」）\n"
    "{titles}{invoices}"
)
INVOICE_TITLES = "\n已保存的抬头：\n{lines}"
INVOICE_LIST = "\n发票进度：\n{lines}"
INVOICE_LINE = "· 订单 {number} · {title} {amount} {status}"
INVOICE_TITLE_SAVED = "已保存抬头「{title}」{tax_no}。订单完成后发「开发票 订单号」即可。"
INVOICE_TITLE_USAGE = "请按「发票抬头 公司名称 税号」发送，个人发票只写名字。"
INVOICE_TAX_NO = "（税号 {tax_no}）"
INVOICE_NO_TITLE = "还没有发票抬头，请先发「发票抬头 公司名称 税号」。"
INVOICE_PICK_TITLE = "你有多个抬头，请在单号后加编号，例如「开发票 {number} 1」。\n{lines}"
INVOICE_REQUESTED = "已提交订单 {number} 的发票申请（抬头：{title}，金额 {amount}），开好后会第一时间发给你。"
INVOICE_STATUS = {"requested": "开具中", "issued": "已开具", "rejected": "未通过"}
PAY_BODY_ORDER = "{brand}-订单{number}"
PAY_BODY_TOPUP = "{brand}-余额充值"
PAY_BODY_FLASH = "{brand}-秒杀{title}"  # made before the sale: no order number yet

# What the store's refusals (store.errors.DomainError codes) mean to a person.
DOMAIN_ERRORS = {
    "not_found": "没有找到这一项，发「购物车」或「我的订单」看看编号。",
    "bad_quantity": QUANTITY_INVALID,
    "cart_empty": CART_EMPTY,
    "sold_out": "抱歉，「{names}」已经被抢完了 😢",
    "already_reviewed": "订单 {number} 已经评价过了，谢谢你的反馈！",
    "not_reviewable": "订单 {number} 现在是「{status}」，完成后才能评价。",
    "flash_sold_out": FLASH_SOLD_OUT,
    "flash_limit": "每人限抢 {limit} 件，你已经抢到啦 😊 发「我的订单」看看。",
    "flash_upcoming": "还没开抢哦，发「秒杀」看看开抢时间。",
    "flash_over": "这场秒杀已经结束了，发「秒杀」看看其他活动。",
    "flash_stopped": "这场秒杀已经停止了，发「秒杀」看看其他活动。",
    "flash_not_found": "没有找到这场秒杀，发「秒杀」看看有哪些活动。",
    "flash_package": "「{name}」正在限时秒杀，活动期间只能通过秒杀购买：发「秒杀」参与。",
    "flash_waitlist_done": "候补名额已经为你安排过了，发「我的订单」看看。",
    "not_yours": "没有找到这个订单，请检查单号。",
    "illegal_transition": "订单现在是「{frm}」，不能变成「{to}」。",
    "conflict": "订单刚刚有了变化，请发「我的订单」看看最新状态。",
    "already_paid": "这个订单已经付过款了，发「我的订单」看看进度。",
    "insufficient_balance": "余额不足：需要 {needed}，余额 {balance}。",
    "bad_amount": TOPUP_USAGE,
    "bad_tax_no": "税号应为 15–20 位数字或大写字母，请检查后再发。",
    "not_invoiceable": "订单完成后才能开发票哦，发「我的订单」看看进度。",
    "invoice_exists": "这个订单已经申请过发票了，发「发票」查看进度。",
    "not_payable": "这个订单现在不能支付了，发「我的订单」看看状态。",
    "expired": "这个订单已超时取消，占用的名额已释放，请重新下单。",
    "bad_title": "发票抬头需要 {min_chars}–{max_chars} 个字，请检查后再发。",
    "bad_image": IMAGE_BAD,
    "image_too_large": IMAGE_TOO_LARGE,
}

PAY_PAGE_HEAD = "微信支付"
PAY_PAGE_TITLE = "订单 {number} · 待支付 {total}"
PAY_PAGE_BUTTON = "微信支付"
PAY_PAGE_DONE = "支付成功，回到聊天查看订单进度。"
PAY_PAGE_OPEN_IN_WECHAT = "没有完成支付。请在微信里打开这个页面再试一次。"
PAY_PAGE_NOT_FOUND = "没有找到这个支付，请回到聊天发「支付 订单号」重新获取。"

# --- To staff (work group robot; markdown) --------------------------------------------------------

STAFF_PAY_MISMATCH = (
    "**⚠️ 支付金额不符，未入账**\n> 订单：{number}\n> 应付：{expected}　通知金额：{got}\n"
    "> 商户单号：{out_trade_no}\n> 微信交易号：{transaction_id}\n请核对后处理。"
)
STAFF_UNASSIGNED_PAYMENT = (
    "**⚠️ 收到一笔未分配给订单的秒杀预备付款，未入账**\n> 金额：{total}　付款人：{payer}\n"
    "> 商户单号：{out_trade_no}\n> 微信交易号：{transaction_id}\n这张付款码没有发给任何客户，请核实后在商户平台原路退款。"
)
STAFF_LATE_PAYMENT = (
    "**💰 超时订单收到付款，已存入客户余额**\n> 订单：{number}（已取消）\n> 金额：{total}\n"
    "> 微信交易号：{transaction_id}\n如客户需要，可协助重新下单或退款。"
)
STAFF_REFUND_REQUESTED = (
    "**↩️ 退款申请**\n> 订单：{number}　金额：{total}\n> 原因：{reason}\n"
    "请在 1 个工作日内处理：同意发「退款 {number} 原因」，不同意发「拒绝退款 {number} 原因」。"
)
STAFF_INVOICE_REQUESTED = "**🧾 发票申请**\n> 订单：{number}　金额：{amount}\n> 抬头：{title}\n> 税号：{tax_no}\n开具后请回传发票链接。"

INVITE_POSTER = (
    "这是你的专属邀请海报 👇 长按保存，发到群里或朋友圈。\n邀请码 {code}：好友扫码关注后就会加入你的团队。"
)
INVITE_UNAVAILABLE = "海报生成遇到了点问题，请稍后再发「邀请」试试。"
MENU_INVITE = "邀请好友"

# --- Creators: team, earnings, withdrawals --------------------------------------------------------

JOINED_TEAM = "你已通过 {inviter} 的邀请加入 TA 的团队 🤝 以后你的推广需求，TA 也能帮你一起参谋。"
OWN_INVITE = "这是你自己的邀请码哦 😄 把海报发给好友，好友扫码关注后就会加入你的团队。"
NEW_MEMBER = "🎉 新成员 {name} 加入了你的团队！\n{progress}"
PROGRESS_NEXT = "已邀请 {invites} 人，还差 {gap}升级为{level}。"
PROGRESS_INVITES = "{n} 人"
PROGRESS_SALES = "团队业绩 {amount}"
PROGRESS_AND = "和"
PROGRESS_TOP = "已邀请 {invites} 人，你已经是最高等级「{level}」啦 👑"
LEVEL_UP = "🎖 恭喜升级为「{level}」！团队奖励提高到：二级成员订单 {r2}，三级成员订单 {r3}。"
MEMBER_FALLBACK_NAME = "微信用户{tail}"

COMMISSION_EARNED = (
    "💰 {who}的订单 {number} 已付款，预计为你带来 {amount} 收益（{kind}）。\n"
    "订单完成 {days} 天后到账，可随时发「收益」查看。"
)
COMMISSION_HELD = "（这笔收益需要人工核对后才能结算，我们会尽快处理。）"
COMMISSION_KINDS = {1: "直推佣金", 2: "团队奖励", 3: "团队奖励"}
COMMISSION_WHO = {1: "你邀请的好友", 2: "团队成员", 3: "团队成员"}
COMMISSIONS_RELEASED = "✅ {amount} 收益已结算到账，当前可提现 {available}。发「提现 金额」即可申请提现。"
COMMISSION_CLAWBACK = "订单 {number} 已退款，对应收益 {amount} 已扣回。"
COMMISSION_DEBT = "当前可提现余额为 {available}，之后的收益会先用来抵扣，补齐前暂不能提现。"

EARNINGS = (
    "💼 我的收益\n"
    "可提现　{available}\n"
    "待结算　{pending}（订单完成 {days} 天后到账）\n"
    "提现中　{held}\n"
    "已提现　{withdrawn}\n"
    "{recent}\n"
    "发「提现 金额」申请提现（最低 {minimum}，手续费 {fee}），发「团队」看看你的团队。"
)
EARNINGS_DEBT = "可提现为负：有退款订单的收益已扣回，之后的收益会先抵扣。"
EARNINGS_RECENT = "最近收益："
EARNINGS_NONE = "还没有收益。发「邀请」领取专属海报，好友下单后你就能获得佣金。"
EARNINGS_LINE = "· {date} 订单 {number} {kind} {amount} {status}"
EARNINGS_STATUS = {"pending": "待结算", "review": "核对中", "available": "已到账", "reversed": "已退款扣回"}
EARNINGS_PART_REVERSED = "（已扣回 {amount}）"

TEAM = (
    "👥 我的团队 · {level}\n"
    "一级成员 {d1} 人 · 二级 {d2} 人 · 三级 {d3} 人\n"
    "本月团队业绩 {month}，累计 {total}\n"
    "{top}"
    "{progress}"
)
TEAM_TOP = "业绩榜：\n{lines}\n"
TEAM_TOP_LINE = "{rank} {name} {amount}"
TEAM_EMPTY = "你的团队还没有成员。发「邀请」领取专属海报，分享到群里，好友扫码关注就会加入 👇"
TEAM_TREE_UNAVAILABLE = "团队图生成遇到了点问题，先看文字版吧。"

WITHDRAW_USAGE = (
    "提现请发「提现 金额」，例如「提现 100」。\n当前可提现 {available}，最低 {minimum}，手续费 {fee}，"
    "每天最多 {limit}。审核通过后打款到你的微信零钱。"
)
WITHDRAW_REQUESTED = (
    "提现申请已提交 ✅\n申请 {amount}，手续费 {fee}，实际到账 {net}。\n"
    "审核通过后会直接打款到你的微信零钱，一般 1 个工作日内，到账后会通知你。"
)
WITHDRAW_APPROVED = "你的提现 {amount} 已审核通过，正在打款到微信零钱。"
WITHDRAW_PAID = "💸 提现到账：{net} 已打入你的微信零钱（申请 {amount}，手续费 {fee}）。"
WITHDRAW_REFUSED = "你的提现 {amount} 未通过审核：{reason}\n金额已退回可提现余额，有疑问可发「人工客服」。"
WITHDRAW_FAILED = "你的提现 {amount} 打款没有成功（{reason}），金额已退回可提现余额，请稍后重新申请。"
WITHDRAW_FAILURE_REASONS = {
    "NAME_MISMATCH": "实名信息不符",
    "V2_ACCOUNT_SIMPLE_BAN": "微信账号未实名",
    "NOTENOUGH": "商户余额不足，我们正在处理",
    "SENDNUM_LIMIT": "今日收款次数已达上限",
}
WITHDRAW_FAILURE_DEFAULT = "微信支付暂时无法打款"
PAYOUT_DESC = "{brand} 收益提现"

STAFF_WITHDRAW_REQUESTED = (
    "**💸 提现申请 #{id}**\n> 创作者：{name}\n> 金额：{amount}（手续费 {fee}，到账 {net}）\n"
    "> 可提现余额：{available}\n在工作台发「提现」审批。"
)
STAFF_COMMISSION_FLAG = (
    "**🚩 佣金已暂扣待核对**\n> 订单：{number}　金额：{total}\n> 规则：{rule}\n> 证据：{note}\n"
    "> 涉及佣金：{amounts}\n核对后在工作台发「佣金」放行或驳回。"
)
EVIDENCE_SAME_PAYER = "同一微信 {payer} 为 {n} 个账号付过款：{customers}"
EVIDENCE_BURST = "{minutes} 分钟内绑定了 {n} 位新成员（上限 {limit}），{first} 至 {last}"
EVIDENCE_VERDICT = "{at} 由 {actor} {verb}"
EVIDENCE_VERDICTS = {"approved": "放行", "rejected": "驳回"}
STAFF_FLAG_RULES = {"same_payer": "多个账号由同一付款人支付", "burst": "短时间内大量邀请"}
STAFF_INVITE_BURST = (
    "**🚩 邀请异常**\n> 邀请人：{name}（邀请码 {code}）\n> {note}\n该邀请人的新成员订单佣金将暂扣待核对。"
)
STAFF_PAYOUT_WAITING = "**⚠️ 提现 #{id} 暂时无法打款**\n> 原因：{code}（商户账户余额不足或超限）\n请给商户号充值，系统会自动重试。"
STAFF_PAYOUT_FAILED = (
    "**⚠️ 提现打款失败 #{id}**\n> 金额：{amount}\n> 原因：{code} {reason}\n金额已退回创作者可提现余额。"
)

DOMAIN_ERRORS.update(
    {
        "below_minimum": "提现最低 {min}，请再攒一攒～发「收益」看看可提现金额。",
        "in_debt": "有退款订单的收益已扣回，目前还差 {debt} 待抵扣，补齐之前暂不能提现。之后的收益会先用来抵扣。",
        "insufficient_available": "可提现余额不足：当前可提现 {available}。",
        "over_daily_limit": "今天还能提现 {left}（每天最多 {limit}），明天再来吧。",
        "one_pending": "你还有一笔 {amount} 的提现在处理中，到账后再申请下一笔吧。",
    }
)

# --- Creators: the name on the poster, the team picture -------------------------------------------

# --- 邀请 poster: the name printed on it ----------------------------------------------------------

POSTER_NAME_HINT = (
    "小提示：微信没有告诉我们你的昵称，海报上暂时写着「微信用户」。"
    "发「海报昵称 你的名字」（例如「海报昵称 小雨」），就能把名字印上去。"
)
POSTER_NAME_HOW = (
    "想在邀请海报上印上自己的名字？发「海报昵称 你的名字」就行，例如「海报昵称 小雨」，1–12 个字。"
)
POSTER_NAME_CURRENT = "你的海报现在写的是「{name}」。想换一个，就发「海报昵称 新名字」，1–12 个字。"
POSTER_NAME_BAD = "这个名字用不了哦：海报昵称要 1–12 个字，不能只有空格、表情或特殊符号。换一个试试？"
POSTER_NAME_SET = "好的，海报上的名字改成「{name}」啦 ✨ 新海报在上面，长按就能保存。"
POSTER_NAME_SAVED = "好的，海报上的名字改成「{name}」啦 ✨ 新海报正在生成，稍后发「邀请」就能拿到。"

# --- 团队 picture ---------------------------------------------------------------------------------

TREE_TITLE = "{name} 的团队"
TREE_SUMMARY = "共 {count} 人"
TREE_LEVELS = ("一级成员", "二级成员", "三级成员")
TREE_COUNT = "{count} 人"
TREE_MORE = "+{count} 人"
TREE_LEVEL_EMPTY = "暂无成员"
TREE_EMPTY = "还没有成员，把邀请海报发给好友，TA 扫码关注后就会出现在这里。"


# --- Relay to staff, and materials sent back for review ---------------------------------------

# --- Customer: talking to the order's staff member -------------------------------------------------

RELAY_START = (
    "好的，已为你接通订单 {number} 的客服 👩‍💼\n"
    "直接发文字或图片，都会转给负责这单的同事，回复会在这里通知你。\n"
    "发「结束」退出；「我的订单」「帮助」等指令照常可用。"
)
RELAY_ACK = "已转给客服，我们会尽快回复 🙏 接下来的消息会直接转过去，不再逐条提示。"
RELAY_ENDED = "好的，已结束和客服的对话。需要时再发「联系客服」就行。"
RELAY_NOT_ACTIVE = "现在没有和客服的对话。关于订单的问题，发「联系客服」就能找到负责的同事。"
RELAY_WHICH = (
    "你有 {count} 个进行中的订单，想咨询哪一个？\n{lines}\n发「联系客服 单号」，例如「联系客服 {first}」。"
)
RELAY_WHICH_LINE = "· {number} · {status} · {title}"
RELAY_NOT_OPEN = (
    "订单 {number} 现在是「{status}」，已经不在服务中了。其他问题可以直接留言，工作时间客服会尽快回复你。"
)
HUMAN_ORDERS_HINT = "\n\n如果是关于订单的问题，发「联系客服 单号」可以直接联系负责的客服：{numbers}"

THREAD_HEAD = "订单 {number} 的对话记录（最近 {count} 条）：\n"
THREAD_EMPTY = "订单 {number} 还没有对话记录。发「联系客服 {number}」可以直接联系负责的客服。"
THREAD_FOOT = "\n发「联系客服 {number}」继续沟通。"
THREAD_LINE = "{at} {who}：{content}"
THREAD_YOU = "你"
THREAD_STAFF = "客服 {name}"
THREAD_IMAGE = "[图片]"
THREAD_USAGE = "请带上单号，例如「查看对话 20261122-0042」。"

# What a staff member's 回复 looks like to the customer.
STAFF_REPLY = "【客服 {name} · 订单 {number}】\n{content}\n\n直接回复就能继续沟通，发「结束」结束对话。"
# Outside the 48-hour window only a template message gets through, and its fields are short.
STAFF_REPLY_NOTICE = "客服 {name} 回复了你的订单 {number}：{content}"
NOTICE_CUT = "…（发「查看对话 {number}」看完整内容）"

# --- Customer: materials sent back by the reviewer --------------------------------------------------

RESUBMIT_ASK = (
    "📝 订单 {number} 的资料需要再补充一下。\n"
    "审核意见：{reason}\n"
    "需要重新提交：{labels}\n"
    "发「不变」可以保留原来的内容；想直接问客服就发「取消」。\n\n"
    "{question}"
)
RESUBMIT_DONE = "✅ 收到，订单 {number} 的资料已更新并重新提交审核，结果会第一时间通知你。谢谢配合！"
RESUBMIT_NOT_NEEDED = "订单 {number} 现在不需要再补充资料了，发「订单 {number}」看看最新状态。"
RESUBMIT_CANCELLED = (
    "好的，先不补充了。你可以直接在这里说明情况，消息会转给负责订单 {number} 的客服；发「结束」退出。\n"
    "想好了随时发「重新提交 {number}」继续补充。"
)
RESUBMIT_NOTHING = "订单 {number} 现在不需要补充资料哦。"
RESUBMIT_USAGE = "请带上单号，例如「重新提交 20261122-0042」。"
RESUBMIT_FOR_ORDER = "订单 {number} 的资料："
RESUBMIT_RESUME = "\n\n——\n接着刚才的：\n{question}"
RESUBMIT_PAUSED = "\n\n——\n订单 {number} 的资料还在修改（第 {n}/{total} 步），发「继续」接着改。"
RESUBMIT_REMINDER = (
    "订单 {number} 的资料还差一点没改完（第 {n}/{total} 步）📝 改好后才能继续审核。\n"
    "发「继续」接着改；想直接问客服就发「取消」。"
)
# A flash sale's order is made in one tap; its requirements are asked once it is paid.
REQUIREMENTS_ASK = (
    "📝 订单 {number} 付款成功，谢谢！开工前还需要你提供几项资料：{labels}。\n"
    "跟着提示一步步回复就好；想先问问客服就发「取消」。\n\n"
    "{question}"
)
REQUIREMENTS_DONE = "✅ 资料收齐了！订单 {number} 已提交审核，结果会第一时间通知你。"
REQUIREMENTS_PAUSED = "\n\n——\n订单 {number} 的资料还没填完（第 {n}/{total} 步），发「继续」接着填。"
REQUIREMENTS_REMINDER = (
    "订单 {number} 的资料还差一点没填完（第 {n}/{total} 步）📝 填好后我们就开始安排。\n"
    "发「继续」接着填；想直接问客服就发「取消」。"
)
RESUBMIT_KEEP_WORDS = ("不变", "保留", "不用改", "不改", "保持不变", "和原来一样")

# --- Staff (WeCom work chat) ---------------------------------------------------------------------

STAFF_RELAY_TEXT = "💬 订单 {number} · {who}\n{content}\n——\n回复：回复 {number} 你的内容（#名称 用快捷回复）"
RELAY_CUT = "…（完整内容见查单）"
STAFF_RELAY_IMAGE = (
    "🖼 订单 {number} · {who} 发来一张图片（7 天内有效）：\n{url}\n——\n回复：回复 {number} 你的内容"
)
STAFF_RELAY_START = (
    "🙋 订单 {number} · {who} 想联系客服，接下来的消息会转到这里。\n回复：回复 {number} 你的内容"
)
STAFF_RESUBMIT_DECLINED = (
    "ℹ️ 订单 {number} · {who} 暂不重新提交资料，转为和客服沟通，接下来的消息会转到这里。\n"
    "回复：回复 {number} 你的内容"
)
CUSTOMER_FALLBACK_NAME = "客户…{tail}"
IMAGE_LINK_UNAVAILABLE = "（图片链接不可用：未配置 WECOM_SECRET / WECHAT_APP_SECRET）"

# The materials card (WeCom markdown: headings, bold, quotes, links).
REVIEW_HEAD = "**📋 订单 {number} · 资料待审核**"
RESUBMITTED_HEAD = "**🔁 订单 {number} · 客户已重新提交资料**"
REVIEW_META = "> 客户：{who}　金额：{total}\n> 项目：{items}"
REVIEW_ANSWER = "> {label}：{value}"
REVIEW_CHANGED = "（已更新）"
REVIEW_IMAGES = "> {label}：{links}"
REVIEW_IMAGES_NO_LINKS = "{n} 张" + IMAGE_LINK_UNAVAILABLE
REVIEW_IMAGE_LINK = "[图{n}]({url})"
REVIEW_NOTE = "> 上次驳回原因：{reason}"
REVIEW_FOOT = "图片链接 7 天内有效。"
REVIEW_CUT = "…"
NOTE_SENT_BACK = "驳回资料：{reason}（需重新提交：{labels}）"
NOTE_RESUBMITTED = "客户重新提交了资料：{labels}"
NOTE_REQUIREMENTS_ASKED = "订单已付款，请在对话中补充资料：{labels}"
NOTE_DECLINED = "客户暂不重新提交资料，转为和客服沟通"

QUICK_LIST_HEAD = "你的快捷回复（{count} 条）：\n{lines}\n用法：回复 单号 #名称"
QUICK_LIST_LINE = "· #{name}：{content}"
QUICK_LIST_EMPTY = (
    "还没有快捷回复。发「快捷回复 添加 名称 内容」添加一条，之后「回复 单号 #名称」就能直接用。"
)
QUICK_SAVED = "已保存快捷回复 #{name}。用法：回复 单号 #{name}"
QUICK_DELETED = "已删除快捷回复 #{name}。"
QUICK_USAGE = (
    "快捷回复的用法：\n"
    "· 快捷回复 — 查看全部\n"
    "· 快捷回复 添加 名称 内容 — 例如「快捷回复 添加 报价 您好，这个套餐的报价是…」\n"
    "· 快捷回复 删除 名称\n"
    "回复客户时用「回复 单号 #名称」。"
)

# What the relay and review refusals (DomainError codes) mean to staff; the desk renders them.
STAFF_ERRORS = {
    "unknown_quick_reply": "没有名为 #{name} 的快捷回复，发「快捷回复」查看全部。",
    "order_not_open": "订单 {number} 现在是「{status}」，不能再通过这里回复客户了。",
    "empty_reply": "回复内容是空的，请写上要对客户说的话。",
    "reply_too_long": "回复太长了（{got} 字），一次最多 {max} 字，请分几次发。",
    "customer_unreachable": (
        "客户超过 48 小时没有发消息，微信不允许再主动发客服消息；"
        "配置通知模板（WECHAT_NOTICE_TEMPLATE_ID）后可以用模板消息通知客户。"
    ),
    "not_in_review": "订单 {number} 现在是「{status}」，只有「待审核」的订单可以驳回资料。",
    "bad_reason": "请写明驳回原因（1–{max} 字），客户会看到它。",
    "bad_steps": "不认识这些资料项：{keys}。可选：{choices}。",
    "nothing_to_resubmit": "订单 {number} 没有可以重新提交的资料项。",
    "conflict": "订单 {number} 刚刚有了变化，请查单后再试。",
    "bad_quick_reply_name": "快捷回复的名称需要 1–{max} 个字，不能有空格，例如「报价」。",
    "bad_quick_reply_content": "快捷回复的内容需要 1–{max} 个字。",
    "too_many_quick_replies": "快捷回复最多 {max} 条，先删掉一些不用的吧。",
}
