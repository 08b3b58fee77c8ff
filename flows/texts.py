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
    "可以这样跟我说：\n"
    "· 帮助 / 菜单 — 看这份说明\n"
    "· 关于 — 了解{brand}提供哪些服务\n"
    "· 人工 — 想找真人客服时发这个\n"
    "底部菜单里也有这些入口。"
)

UNKNOWN = "抱歉，这句我还没学会 🙈\n\n" + HELP

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

# Menu button labels (WeChat allows 4 Chinese characters for top-level, 8 for sub-buttons).
MENU_HELP = "使用帮助"
MENU_ABOUT = "关于我们"
MENU_HUMAN = "人工客服"
MENU_MORE = "更多"

# The template message sent when a customer-service message is refused (45015, outside 48 hours).
NOTICE_TITLE = "您有一条新消息"
NOTICE_REMARK = "回复任意消息即可继续对话。"
