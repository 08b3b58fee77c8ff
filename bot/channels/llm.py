"""An optional language model, asked only when the local understanding step is not confident.

Any OpenAI-compatible chat-completions endpoint (DeepSeek, Qwen, a local vLLM …), configured by
CHATORDER_LLM_BASE_URL / _MODEL / _API_KEY / _TIMEOUT; off when the URL or the model is unset.

What is sent: the customer's message, and fixed instructions naming the intents, the question
topics, the sort orders and the catalog's vocabulary (platforms, categories, forms, tags) with the
JSON schema of the answer. Nothing else: no openid, no name, no order, no conversation history.

What comes back is only a reading: the same intent + slots as flows.understand produces, checked
strictly (an unknown intent or slot, a value outside the vocabulary, a wrong type: the whole answer
is ignored). It never acts by itself; the handler decides what to do with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp

from flows.understand import Intent, Slots, Understanding, Vocabulary
from flows.understand.core import MAX_CHARS
from settings import Settings
from store.catalog import SORTS

log = logging.getLogger(__name__)

# A reading the model gave is a guess from outside: above the local threshold (so it may be acted on
# when valid) but below a clear local match.
LLM_CONFIDENCE = 0.7
# A large catalog's tags are cut to keep the prompt small (the answer may still name any of them).
MAX_TAGS_SENT = 400
# Less time than this left in the reply budget: not worth a round trip.
MIN_BUDGET_S = 0.2
TOPICS = (
    *("price", "timing", "refund", "invoice", "payment", "howto", "fake", "quality", "contract", "cancel"),
    *("revision", "audience", "account"),
)
_ORDER_NO = re.compile(r"^20\d{6}-\d{4}$")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_INT_SLOTS = {
    "price_min_fen": (0, 10**10),
    "price_max_fen": (0, 10**10),
    "followers_min": (0, 10**10),
    "followers_max": (0, 10**10),
    "quantity": (1, 999),
    "ordinal": (1, 99),
    "package": (1, 99),
    "amount_fen": (1, 10**9),
}


def answer_schema(vocab: Vocabulary) -> dict[str, Any]:
    """The JSON schema of the answer (sent to the model, and what check() enforces)."""
    word = {"type": "string", "maxLength": 20}
    slots: dict[str, Any] = {
        "platform": {"enum": list(vocab.platforms)},
        "category": {"enum": list(vocab.categories)},
        "tags": {"type": "array", "items": {"enum": list(vocab.tags[:MAX_TAGS_SENT])}, "maxItems": 5},
        "keywords": {"type": "array", "items": word, "maxItems": 5},
        "form": {"enum": list(vocab.forms)},
        "sort": {"enum": list(SORTS)},
        "order_no": {"type": "string", "pattern": _ORDER_NO.pattern},
        "topic": {"enum": list(TOPICS)},
    }
    slots |= {
        name: {"type": "integer", "minimum": lo, "maximum": hi} for name, (lo, hi) in _INT_SLOTS.items()
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["intent"],
        "properties": {
            "intent": {"enum": [i.value for i in Intent]},
            "slots": {"type": "object", "additionalProperties": False, "properties": slots},
        },
    }


def _instructions(vocab: Vocabulary) -> str:
    return (
        "你是一个中文客服消息理解器。把用户的一条消息理解成意图和槽位，只输出一个 JSON 对象，"
        "不要输出其他文字。JSON 必须符合这个 JSON Schema：\n"
        + json.dumps(answer_schema(vocab), ensure_ascii=False)
        + "\n说明：金额单位是分（3000元 = 300000）；search 是找服务；refine 是在上一批结果里筛选；"
        'question 时用 topic 说明问的是什么；看不懂就输出 {"intent": "unknown"}。'
        "没有提到的槽位不要输出。"
    )


class LlmClient:
    """Asks the configured model for a reading of one message (see the module docstring)."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings) -> None:
        self._http = http
        self._url = settings.llm_base_url.rstrip("/") + "/chat/completions"
        self._model = settings.llm_model
        self._key = settings.llm_api_key.get_secret_value()
        self._timeout = settings.llm_timeout

    async def ask(self, text: str, vocab: Vocabulary, *, budget_s: float) -> Understanding | None:
        """The model's reading of `text`, or None (no time, timeout, error, or an answer that fails
        the checks). Waits at most min(budget_s, CHATORDER_LLM_TIMEOUT) seconds."""
        wait = min(budget_s, self._timeout)
        if wait < MIN_BUDGET_S:
            return None
        try:
            async with asyncio.timeout(wait):
                content = await self._complete(text, vocab)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.info("language model not used: %s", type(exc).__name__)
            return None
        reading = check(content, vocab)
        if reading is None:
            log.info("language model answer ignored: it does not match the schema")
        return reading

    async def _complete(self, text: str, vocab: Vocabulary) -> str:
        body = {
            "model": self._model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": _instructions(vocab)},
                {"role": "user", "content": text[:MAX_CHARS]},
            ],
        }
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        async with self._http.post(self._url, json=body, headers=headers) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            answer = await resp.json(content_type=None)
        try:
            return str(answer["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as exc:
            raise ValueError("not a chat completion") from exc


def check(content: str, vocab: Vocabulary) -> Understanding | None:
    """The reading in the model's answer when it matches answer_schema() exactly, else None."""
    try:
        data = json.loads(_FENCE.sub("", content.strip()))
    except ValueError:
        return None
    if not isinstance(data, dict) or not set(data) <= {"intent", "slots"}:
        return None
    if data.get("intent") not in {i.value for i in Intent}:
        return None
    intent = Intent(data["intent"])
    raw = data.get("slots", {})
    if not isinstance(raw, dict):
        return None
    slots = _slots(raw, vocab)
    return None if slots is None else Understanding(intent, slots, LLM_CONFIDENCE, source="llm")


def _slots(raw: dict[str, Any], vocab: Vocabulary) -> Slots | None:
    choices: dict[str, tuple[str, ...]] = {
        "platform": vocab.platforms,
        "category": vocab.categories,
        "form": vocab.forms,
        "sort": SORTS,
        "topic": TOPICS,
    }
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in choices:
            ok = isinstance(value, str) and value in choices[name]
        elif name in _INT_SLOTS:
            lo, hi = _INT_SLOTS[name]
            ok = type(value) is int and lo <= value <= hi
        elif name == "tags":
            ok = _words(value) and all(t in vocab.tags for t in value)
            value = tuple(value) if ok else value
        elif name == "keywords":
            ok = _words(value) and all(0 < len(w) <= 20 for w in value)
            value = tuple(value) if ok else value
        elif name == "order_no":
            ok = isinstance(value, str) and bool(_ORDER_NO.match(value))
        else:
            ok = False  # an unknown slot, `when` included: dates are read locally
        if not ok:
            return None
        values[name] = value
    return Slots(**values)


def _words(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 5 and all(isinstance(w, str) for w in value)
