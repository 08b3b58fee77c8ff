"""The one object a handler gets: the event, the person, their flow state, and where replies go."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows import texts
from handlers.events import Event
from settings import Settings
from store.db import read_session
from store.errors import DomainError
from store.flash import FlashGate, SaleBoard
from store.models import utcnow
from store.orders import StockGate
from store.outbox import Outgoing, queued
from store.turns import FlowState
from store.writer import Write

if TYPE_CHECKING:
    from bot.channels.llm import LlmClient
    from bot.channels.pay import PayClient
    from bot.locks import PersonLocks
    from store.search import SearchIndex


class UserFacingError(Exception):
    """A refusal the person should read: the text (already zh-CN) becomes the reply."""

    def __init__(self, text: str, **fmt: Any) -> None:
        super().__init__(text)
        self.text = text
        self.fmt = fmt


def refusal(exc: DomainError) -> UserFacingError:
    """The person's sentence for a store refusal (DomainError)."""
    return UserFacingError(texts.DOMAIN_ERRORS.get(exc.code, texts.SORRY), **exc.details)


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a store refusal into the person's sentence for it; nothing was changed."""
    try:
        yield
    except DomainError as exc:
        raise refusal(exc) from None


class MediaApi(Protocol):
    """The part of the WeChat API handlers use (bot.channels.mp.MpClient in production)."""

    async def get_media(self, media_id: str) -> bytes: ...
    async def upload_media(self, kind: str, filename: str, data: bytes) -> str: ...
    async def create_qrcode(self, scene_str: str, *, permanent: bool = True) -> dict[str, Any]: ...
    async def user_info(self, openid: str) -> dict[str, Any]: ...
    async def fetch_avatar(self, url: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers may call beyond the database; each is None where it is not configured."""

    media: MediaApi | None = None
    pay: PayClient | None = None
    stock_gate: StockGate | None = None  # Redis in front of stock, when Redis is configured
    flash_gate: FlashGate | None = None  # Redis in front of flash sales' stock and limits, likewise
    flash_board: SaleBoard | None = None  # the open sales as last read, for the taps of a rush
    # Without Redis: when each person last tapped 抢 (openid -> monotonic seconds), for the throttle.
    flash_taps: dict[str, float] = field(default_factory=dict)
    wake_outbox: Callable[[], None] | None = None
    locks: PersonLocks | None = None  # taken by staff changes to a customer's conversation
    wake_job: Callable[[str], None] | None = None  # runs a background job now (bot.scheduler)
    llm: LlmClient | None = None  # the optional language model (CHATORDER_LLM_*), asked when unsure
    search: SearchIndex | None = None  # the app's catalog index (store.search), built on first use


@dataclass(slots=True)
class Reply:
    kind: str  # text | image | news
    payload: dict[str, Any]


@dataclass
class Ctx:
    event: Event
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    known_user: bool
    subscribed: bool
    state: FlowState
    command: str | None  # normalised text, or the command a menu click stands for
    services: Services = field(default_factory=lambda: Services())
    # False when the turn's snapshot saw no paid or refunding order: nothing to look up for 人工 / 联系客服.
    may_have_open_orders: bool = True
    now: Callable[[], dt.datetime] = utcnow
    replies: list[Reply] = field(default_factory=list)
    later: list[Outgoing] = field(default_factory=list)
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # funnel steps taken (store.funnel.MARKED)
    # Rows committed with the turn's own record (one group commit instead of a transaction of their
    # own): facts already true elsewhere, such as WeChat Pay's answer, so kept even if the turn is refused.
    writes: list[Write] = field(default_factory=list)

    @property
    def openid(self) -> str:
        return self.event.openid

    @property
    def argument(self) -> str:
        """What follows the first word of a command ('搜 咖啡 探店' -> '咖啡 探店')."""
        parts = (self.command or "").split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    def fmt(self, text: str, **values: Any) -> str:
        return text.format(brand=self.settings.brand, **values)

    def say(self, text: str, **values: Any) -> None:
        """Reply with a text (a constant from flows.texts, formatted with brand and values)."""
        self.replies.append(Reply("text", {"content": self.fmt(text, **values)}))

    def image(self, media_id: str) -> None:
        self.replies.append(Reply("image", {"media_id": media_id}))

    def news(self, articles: list[dict[str, str]]) -> None:
        """Articles: title, description, url, picurl (WeChat shows at most 8; passive replies 1)."""
        self.replies.append(Reply("news", {"articles": articles[:8]}))

    def mark(self, step: str) -> None:
        """A step towards buying (searched, viewed, started), kept with this turn for the funnel."""
        self.steps.append(step)

    def send_later(self, message: Outgoing) -> None:
        """An outbox message written with this turn's changes (to this person or anyone else)."""
        self.later.append(message)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading (store.db.read_session: it cannot write)."""
        async with read_session(self.sessionmaker) as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A domain change that must be visible at once (an order, a payment); committed on exit."""
        async with self.sessionmaker.begin() as session:
            yield session
        # What it wrote to the outbox goes out now; a wake without messages would still cost the
        # dispatcher a claim (a write) for nothing.
        if self.services.wake_outbox is not None and queued(session):
            self.services.wake_outbox()
