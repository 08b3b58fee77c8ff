"""Sentences the sandbox itself shows in the staff pane (the product's texts live in flows/texts.py)."""

from __future__ import annotations

WORK_CALLBACK_FAILED = "企业微信回调失败（HTTP {status}）（共尝试 {attempts} 次）"
WORK_CALLBACK_UNREACHABLE = "企业微信回调 {attempts} 次都没有在 {seconds:g} 秒内得到应答"
CARD_ALREADY_HANDLED = "这张卡片已处理，按钮不可再点"
