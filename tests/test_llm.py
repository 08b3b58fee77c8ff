"""The optional language model: asked over HTTP, its answers checked strictly, never trusted blindly.

A local fake OpenAI-compatible server stands in for DeepSeek / Qwen.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import keys
from bot.app import _llm
from bot.channels.llm import LlmClient, check
from flows.understand import Intent, Vocabulary
from flows.understand.load import demo_vocabulary
from settings import Settings, load_settings


@dataclass
class FakeModel:
    """What the fake endpoint answers next, and what it was sent."""

    content: str = '{"intent": "unknown"}'
    status: int = 200
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"error": "boom"}, status=self.status)
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": self.content}}]})


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return demo_vocabulary()


@pytest.fixture
async def model() -> AsyncIterator[tuple[FakeModel, str]]:
    fake = FakeModel()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    server = TestServer(app)
    await server.start_server()
    yield fake, str(server.make_url("/v1"))
    await server.close()


@pytest.fixture
async def ask(
    model: tuple[FakeModel, str],
) -> AsyncIterator[Callable[..., Any]]:
    async with aiohttp.ClientSession() as http:
        settings = _settings(llm_base_url=model[1], llm_model="qwen-plus", llm_api_key="sk-test")
        client = LlmClient(http, settings)

        async def run(text: str, vocab: Vocabulary, budget_s: float = 2.0) -> Any:
            return await client.ask(text, vocab, budget_s=budget_s)

        yield run


def _settings(**values: Any) -> Settings:
    return load_settings(database_url="sqlite+aiosqlite:///:memory:", **values)


async def test_a_valid_answer_becomes_a_reading(
    model: tuple[FakeModel, str], ask: Callable[..., Any], vocab: Vocabulary
) -> None:
    fake, _ = model
    fake.content = json.dumps(
        {
            "intent": "search",
            "slots": {"platform": "小红书", "tags": ["美食"], "keywords": ["烘焙"], "price_max_fen": 300000},
        }
    )
    reading = await ask("红书上做烘焙的美食号 三千内", vocab)
    assert reading.intent is Intent.SEARCH
    assert (reading.slots.platform, reading.slots.tags, reading.slots.keywords) == (
        "小红书",
        ("美食",),
        ("烘焙",),
    )
    assert reading.slots.price_max_fen == 300000
    assert reading.source == "llm"


async def test_only_the_message_and_the_vocabulary_are_sent(
    model: tuple[FakeModel, str], ask: Callable[..., Any], vocab: Vocabulary
) -> None:
    fake, _ = model
    await ask("有没有做宠物的博主", vocab)
    (sent,) = fake.requests
    assert sent["model"] == "qwen-plus"
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert sent["messages"][1]["content"] == "有没有做宠物的博主"
    system = sent["messages"][0]["content"]
    assert all(word in system for word in ("小红书", "达人营销", "探店", "refund"))
    assert fake.headers[0]["Authorization"] == "Bearer sk-test"


async def test_a_slow_model_is_given_up_on(
    model: tuple[FakeModel, str], ask: Callable[..., Any], vocab: Vocabulary
) -> None:
    fake, _ = model
    fake.delay = 3
    assert await ask("有没有做宠物的博主", vocab, budget_s=0.3) is None


async def test_no_time_left_means_no_request(
    model: tuple[FakeModel, str], ask: Callable[..., Any], vocab: Vocabulary
) -> None:
    fake, _ = model
    assert await ask("有没有做宠物的博主", vocab, budget_s=0.05) is None
    assert fake.requests == []


async def test_a_server_error_is_no_answer(
    model: tuple[FakeModel, str], ask: Callable[..., Any], vocab: Vocabulary
) -> None:
    fake, _ = model
    fake.status = 500
    assert await ask("有没有做宠物的博主", vocab) is None


@pytest.mark.parametrize(
    "content",
    [
        "好的，这是一个搜索请求",  # not JSON
        '{"intent": "search", "slots": {"platform": "小红书"}',  # cut off
        '["search"]',  # not an object
        '{"intent": "buy_followers"}',  # an intent that does not exist
        '{"intent": "search", "reply": "我帮你下单了"}',  # an extra field
        '{"intent": "search", "slots": {"platform": "Instagram"}}',  # outside the vocabulary
        '{"intent": "search", "slots": {"tags": ["刷粉"]}}',  # a tag the catalog does not have
        '{"intent": "search", "slots": {"price_max_fen": "3000"}}',  # a number as a string
        '{"intent": "search", "slots": {"price_max_fen": 3000.5}}',  # not an integer
        '{"intent": "order", "slots": {"quantity": true}}',  # a boolean is not a count
        '{"intent": "order", "slots": {"quantity": -2}}',  # out of range
        '{"intent": "refund", "slots": {"order_no": "42"}}',  # not an order number
        '{"intent": "search", "slots": {"openid": "o123"}}',  # a slot that does not exist
        '{"intent": "search", "slots": ["小红书"]}',  # slots not an object
    ],
)
def test_answers_outside_the_schema_are_ignored(vocab: Vocabulary, content: str) -> None:
    assert check(content, vocab) is None


def test_an_answer_in_a_code_fence_is_still_read(vocab: Vocabulary) -> None:
    reading = check('```json\n{"intent": "question", "slots": {"topic": "refund"}}\n```', vocab)
    assert reading is not None
    assert (reading.intent, reading.slots.topic) == (Intent.QUESTION, "refund")


async def test_the_model_is_off_unless_configured() -> None:
    async with aiohttp.ClientSession() as http:
        app = web.Application()
        app[keys.HTTP] = http
        app[keys.SETTINGS] = _settings()
        assert _llm(app) is None
        app[keys.SETTINGS] = _settings(llm_base_url="http://127.0.0.1:1/v1", llm_model="deepseek-chat")
        assert isinstance(_llm(app), LlmClient)
