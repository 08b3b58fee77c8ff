"""Typed SQLAlchemy models: people, inbound log, conversation state, outbox, tokens, catalog, orders,
money, creators and their earnings, staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text SQLAlchemy's DATETIME stores ("YYYY-MM-DD HH:MM:SS.ffffff", naive UTC),
        made by one C call: its own processor formats each value in Python after ours converted it,
        and a turn's rows carry four or five datetimes (a group commit's biggest per-row cost after
        the insert itself). Other backends: as TypeDecorator's."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        last: tuple[Any, str | None] = (None, None)  # the datetime (kept alive, so `is` is safe), its text

        def as_text(value: dt.datetime | None) -> str | None:
            nonlocal last
            if value is None:
                return None
            if value is last[0]:  # the same `at` in the next column
                return last[1]
            if value.tzinfo is None:
                raise ValueError("naive datetime refused: pass an aware UTC datetime")
            utc = value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)
            text = utc.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
            last = (value, text)
            return text

        return as_text


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class User(Base):
    """A person who wrote to or followed the Official Account."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("account", "openid", name="uq_users_account_openid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64))
    nickname: Mapped[str | None] = mapped_column(String(64))
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    subscribed: Mapped[bool] = mapped_column(default=True)
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Customer-service messages reach a person only within 48 h of their last message to us.
    last_inbound_at: Mapped[dt.datetime | None] = mapped_column()


class InboundMessage(Base):
    """Every message and event accepted from WeChat; the unique key is what makes retries harmless."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # MsgId alone collides across accounts, so the key always includes account and sender.
        UniqueConstraint("account", "sender", "msg_key", name="uq_inbound_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(64))
    msg_key: Mapped[str] = mapped_column(String(200))
    msg_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The rendered passive reply (plain XML), so that a retry gets the very same answer;
    # NULL when the answer went out through the outbox instead.
    reply_xml: Mapped[str | None] = mapped_column(Text)


class Conversation(Base):
    """Where a person is in a flow. `version` guards against two writers (optimistic concurrency)."""

    __tablename__ = "conversations"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    flow: Mapped[str | None] = mapped_column(String(64))
    step: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """A message to a person, written in the transaction of the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # mp | wecom | robot
    recipient: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # text | image | news | template | markdown | card
    payload: Mapped[dict[str, Any]] = mapped_column()
    # Optional: a second enqueue of the same thing (e.g. a retried webhook) is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sending | sent | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class KeyValue(Base):
    """Small shared values with an expiry: cached access tokens and leases (single-DB mode)."""

    __tablename__ = "kv"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column()


# --- Catalog -------------------------------------------------------------------------------------


class Service(Base):
    """A sellable service (资源): a creator's placements, an ad campaign, a course … with packages."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # stable id used by imports
    title: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(
        String(16), index=True
    )  # 抖音 快手 小红书 B站 微博 视频号 知识服务 全平台
    category: Mapped[str] = mapped_column(
        String(16), index=True
    )  # 达人营销 广告投放 内容制作 数据分析 课程 咨询
    forms: Mapped[list[str]] = mapped_column(JSON, default=list)  # 图文 视频 直播 …
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    followers: Mapped[int | None] = mapped_column()
    engagement_bp: Mapped[int | None] = mapped_column()  # engagement rate in basis points: 8.1 % = 810
    exposure: Mapped[int | None] = mapped_column()  # estimated exposure per placement
    audience: Mapped[dict[str, Any]] = mapped_column(
        default=dict
    )  # {"gender": {...}, "age": {...}, "region": {...}}
    cover_url: Mapped[str | None] = mapped_column(String(512))
    cases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"title", "result", "url"}]
    # What the buyer's inviter earns on this service, in basis points (10 % = 1000).
    commission_bp: Mapped[int] = mapped_column(default=1000, server_default="1000")
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)  # draft | listed | unlisted
    search_text: Mapped[str] = mapped_column(Text, default="")  # lower-cased title, tags, platform … for 搜
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Indexed: the search index reads max(updated_at) before every search (store/search.py).
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow, index=True)


class Package(Base):
    """One priced offer of a service (① 1 篇图文 ¥1,000). `stock` NULL = not limited."""

    __tablename__ = "packages"
    __table_args__ = (
        UniqueConstraint("service_id", "position", name="uq_packages_service_position"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="ck_packages_stock_not_negative"),
        CheckConstraint("price_fen > 0", name="ck_packages_price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()  # 1, 2, 3 … shown as ① ② ③
    name: Mapped[str] = mapped_column(String(100))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    deliverables: Mapped[str] = mapped_column(Text, default="")
    lead_days: Mapped[int] = mapped_column(default=7)
    # Indexed: the search index reads the packages with little or no stock before every search.
    stock: Mapped[int | None] = mapped_column(index=True)
    # Requirement keys the order form asks for, in order (see flows/requirements.py).
    requirements: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the package was added or its price moved (an import): the search index re-reads packages
    # when max(updated_at) changes. Not for stock (see _price_changed). NULL on rows older than it.
    updated_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow, index=True)


class CatalogWrites:
    """How many times this process wrote services: readers that cache what the catalog says (the
    understanding step's vocabulary) see their own process's imports at once, and re-check the
    database for other processes' imports only now and then."""

    count = 0


@event.listens_for(Service, "after_insert")
@event.listens_for(Service, "after_update")
@event.listens_for(Service, "after_delete")
def _service_written(mapper: Mapper[Service], connection: Any, target: Service) -> None:
    CatalogWrites.count += 1


@event.listens_for(Package, "before_update")
def _price_changed(mapper: Mapper[Package], connection: Any, target: Package) -> None:
    """Stamp updated_at when an import moves a package's price or service. Stock is left out: every
    order changes it (with a plain UPDATE, which ORM events do not see anyway), and the search index
    watches the packages low on stock by themselves."""
    state = inspect(target)
    if any(state.attrs[name].history.has_changes() for name in ("price_fen", "service_id")):
        target.updated_at = utcnow()


@event.listens_for(Package, "after_delete")
def _package_deleted(mapper: Mapper[Package], connection: Any, target: Package) -> None:
    """A package dropped by an import changes its service (what it costs): stamp the service, which
    the search index watches, rather than count packages before every search."""
    stamp = update(Service).where(Service.id == target.service_id).values(updated_at=utcnow())
    connection.execute(stamp)


# --- Cart, orders, materials ---------------------------------------------------------------------


class CartItem(Base):
    __tablename__ = "cart_items"
    __table_args__ = (UniqueConstraint("account", "openid", "package_id", name="uq_cart_person_package"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(default=1)
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Order(Base):
    """An order. Its status changes only through store.orders' actions, each writing an OrderEvent."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_person", "account", "openid", "created_at"),
        Index("ix_orders_status_expiry", "status", "expires_at"),
        CheckConstraint("total_fen >= 0", name="ck_orders_total_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)  # 20261122-0042
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # store.orders.OrderStatus
    total_fen: Mapped[int] = mapped_column(BigInteger)
    requirements: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the form's answers
    deliverables: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # [{"at","title","url"}]
    refund_reason: Mapped[str | None] = mapped_column(Text)
    # Creating the same order twice (a retried 确认) is refused by this key.
    source_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column()  # an unpaid order lapses then
    payment_reminded_at: Mapped[dt.datetime | None] = mapped_column()  # the one reminder before it lapses
    # Staff: who owns the order, and the review of the customer's materials.
    assignee: Mapped[str | None] = mapped_column(String(64), index=True)  # Staff.userid
    assigned_at: Mapped[dt.datetime | None] = mapped_column()
    review: Mapped[str | None] = mapped_column(String(16))  # None | approved | resubmit
    review_note: Mapped[str | None] = mapped_column(Text)  # why the materials were sent back
    escalated_at: Mapped[dt.datetime | None] = mapped_column()  # the one escalation of a waiting order
    publish_reminded_at: Mapped[dt.datetime | None] = mapped_column()
    # The coupon that took `discount_fen` off (total_fen is what is paid); it comes back on cancel/refund.
    coupon_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))  # coupons.id
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class OrderItem(Base):
    """A line of an order, with the title and price as they were when ordered."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    service_title: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(16))
    package_name: Mapped[str] = mapped_column(String(100))
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column()
    # Whether stock was taken for this line (so a release gives back exactly what was taken).
    reserved: Mapped[bool] = mapped_column(default=False)
    commission_bp: Mapped[int] = mapped_column(default=0, server_default="0")  # the service's, when ordered


class OrderEvent(Base):
    """One change of an order's state: who, when, from, to, why. Append-only."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))  # customer:<openid> | staff:<userid> | system
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class OrderSequence(Base):
    """The last order number handed out per (Beijing) day."""

    __tablename__ = "order_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)  # 20261122
    last: Mapped[int] = mapped_column(default=0)


class Material(Base):
    """An image a customer sent for an order form (downloaded from WeChat, checked, kept)."""

    __tablename__ = "materials"
    # The same WeChat picture sent twice is kept once.
    __table_args__ = (UniqueConstraint("account", "openid", "media_id", name="uq_materials_media"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    media_id: Mapped[str] = mapped_column(String(128))
    content_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column()
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- Money: balances, payments, refunds, invoices ------------------------------------------------


class Balance(Base):
    """A customer's balance: the cached sum of their ledger entries, never negative."""

    __tablename__ = "balances"
    __table_args__ = (CheckConstraint("balance_fen >= 0", name="ck_balances_not_negative"),)

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    balance_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    """One movement of a customer's balance. Append-only; `key` makes each real-world event count once."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_person", "account", "openid", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + credit, - debit
    kind: Mapped[str] = mapped_column(String(24))  # topup | order_payment | refund | late_payment
    key: Mapped[str] = mapped_column(String(200), unique=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Payment(Base):
    """One attempt to collect money through WeChat Pay (an order, or a balance top-up)."""

    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_status", "status", "created_at"),
        CheckConstraint("amount_fen > 0", name="ck_payments_amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # order | topup
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    trade_type: Mapped[str] = mapped_column(String(16))  # NATIVE | JSAPI
    status: Mapped[str] = mapped_column(String(16), default="created")  # created | paid | failed | closed
    code_url: Mapped[str | None] = mapped_column(String(256))
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    payer_openid: Mapped[str | None] = mapped_column(String(64))
    flag: Mapped[str | None] = mapped_column(String(32))  # amount_mismatch | late_payment …, for staff
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column()


class Refund(Base):
    """Money given back for an order: to the balance, or back through WeChat Pay."""

    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_refunds_amount_positive"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    destination: Mapped[str] = mapped_column(String(16))  # balance | wechat
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | succeeded | failed
    refund_id: Mapped[str | None] = mapped_column(String(32), unique=True)  # WeChat's
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column()


class InvoiceTitle(Base):
    """A saved invoice header (抬头 and 税号) of a customer."""

    __tablename__ = "invoice_titles"
    __table_args__ = (UniqueConstraint("account", "openid", "title", name="uq_invoice_titles_person_title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(100))
    tax_no: Mapped[str | None] = mapped_column(String(20))  # empty for a personal invoice
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Invoice(Base):
    """An e-invoice asked for on a completed order; staff issue it."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(100))
    tax_no: Mapped[str | None] = mapped_column(String(20))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="requested")  # requested | issued | rejected
    url: Mapped[str | None] = mapped_column(String(512))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- Creators --------------------------------------------------------------------------------------


class Creator(Base):
    """A person who invites others: their invite code, permanent QR and the last poster sent."""

    __tablename__ = "creators"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    qr_url: Mapped[str | None] = mapped_column(String(256))  # WeChat's URL for scene inv_<code>
    # The poster is redrawn when its key (template, nickname, QR) changes or the media expires (3 days).
    poster_key: Mapped[str | None] = mapped_column(String(256))
    poster_media_id: Mapped[str | None] = mapped_column(String(128))
    poster_uploaded_at: Mapped[dt.datetime | None] = mapped_column()
    level: Mapped[int] = mapped_column(default=0, server_default="0")  # index into Settings.levels
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Referral(Base):
    """Who brought whom: an invitee and the creator whose QR scene they came through.

    `status` is 'bound' once the binding counts, or 'candidate' while the policy waits for the
    invitee's first paid order. `flag` marks bindings that hold their commissions for review.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_inviter", "account", "inviter_openid", "bound_at"),
        CheckConstraint("inviter_openid <> invitee_openid", name="ck_referrals_not_self"),
    )

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    invitee_openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    inviter_openid: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="bound")  # bound | candidate
    source: Mapped[str] = mapped_column(String(16))  # subscribe | scan
    touched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    bound_at: Mapped[dt.datetime | None] = mapped_column()
    flag: Mapped[str | None] = mapped_column(String(32))  # burst
    note: Mapped[str | None] = mapped_column(Text)  # the evidence behind a flag, for staff


class Commission(Base):
    """What one order earns one creator: the direct commission (depth 1) or a team reward (2, 3).

    `status`: pending (until the order is complete and frozen long enough) → available; review
    (held by a fraud rule until staff decide); reversed (fully refunded). `reversed_fen` grows with refunds.
    """

    __tablename__ = "commissions"
    __table_args__ = (
        UniqueConstraint("order_id", "depth", name="uq_commissions_order_depth"),
        Index("ix_commissions_beneficiary", "account", "openid", "created_at"),
        Index("ix_commissions_status", "status"),
        CheckConstraint("depth BETWEEN 1 AND 3", name="ck_commissions_depth"),
        CheckConstraint("amount_fen > 0", name="ck_commissions_amount_positive"),
        CheckConstraint("reversed_fen BETWEEN 0 AND amount_fen", name="ck_commissions_reversed"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))  # the creator who earns it
    buyer_openid: Mapped[str] = mapped_column(String(64))
    depth: Mapped[int] = mapped_column()
    base_fen: Mapped[int] = mapped_column(BigInteger)
    rate_bp: Mapped[int] = mapped_column()
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reversed_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    flag: Mapped[str | None] = mapped_column(String(32))  # same_payer | burst
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    released_at: Mapped[dt.datetime | None] = mapped_column()


class Earnings(Base):
    """A creator's cached totals per bucket, each the sum of their EarningEntry rows in it.

    `available_fen` may go negative: a refund after the money was released or withdrawn is carried
    as a debt, netted against future earnings, and blocks withdrawals until repaid.
    """

    __tablename__ = "earnings"
    __table_args__ = (
        CheckConstraint("pending_fen >= 0", name="ck_earnings_pending"),
        CheckConstraint("held_fen >= 0", name="ck_earnings_held"),
        CheckConstraint("withdrawn_fen >= 0", name="ck_earnings_withdrawn"),
    )

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    pending_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    available_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    held_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # asked for, waiting for payout
    withdrawn_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class EarningEntry(Base):
    """One movement of a creator's earnings into or out of a bucket. Append-only; `key` counts once."""

    __tablename__ = "earning_entries"
    __table_args__ = (Index("ix_earning_entries_person", "account", "openid", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[str] = mapped_column(String(16))  # pending | available | held | withdrawn
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # + into the bucket, - out of it
    kind: Mapped[str] = mapped_column(String(24))  # commission release clawback withdraw payout return
    key: Mapped[str] = mapped_column(String(200), unique=True)
    commission_id: Mapped[int | None] = mapped_column(ForeignKey("commissions.id"))
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawals.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Withdrawal(Base):
    """A creator's request to be paid: requested → approved → paid, or refused / failed (money returned)."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        Index("ix_withdrawals_status", "status", "created_at"),
        Index("ix_withdrawals_person", "account", "openid", "created_at"),
        CheckConstraint("amount_fen > 0", name="ck_withdrawals_amount_positive"),
        CheckConstraint("fee_fen >= 0 AND fee_fen < amount_fen", name="ck_withdrawals_fee"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    trade_no: Mapped[str] = mapped_column(String(32), unique=True)  # partner_trade_no of the transfer
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # taken from the balance
    fee_fen: Mapped[int] = mapped_column(BigInteger)  # kept; the creator receives amount - fee
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str | None] = mapped_column(Text)  # why refused or failed
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    payment_no: Mapped[str | None] = mapped_column(String(64))  # WeChat's, once paid
    paid_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- Staff -----------------------------------------------------------------------------------------


class Staff(Base):
    """A member of staff in WeCom: roles say what they may do, skills which orders they get."""

    __tablename__ = "staff"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)  # WeCom userid
    name: Mapped[str] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)  # admin | ops | reviewer | finance
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)  # catalog categories; empty = all
    on_duty: Mapped[bool] = mapped_column(default=True)
    max_open: Mapped[int | None] = mapped_column()  # NULL = CHATORDER_STAFF_MAX_OPEN
    active: Mapped[bool] = mapped_column(default=True)  # removed staff stay for the audit trail
    last_assigned_at: Mapped[dt.datetime | None] = mapped_column()  # round-robin order
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Every staff action and registry change: who, when, what, on which order or request. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_target", "target", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))  # staff:<userid> | cli | system
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))  # order:<number> | withdrawal:<id> | staff:<userid>
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WorkCard(Base):
    """A template card sent to staff, so that a click can be answered once and the card updated."""

    __tablename__ = "work_cards"

    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)  # order:<id> | withdrawal:<id>
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    done_by: Mapped[str | None] = mapped_column(String(64))
    done_action: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OrderMessage(Base):
    """The thread kept under an order: what the customer and staff said to each other. Append-only."""

    __tablename__ = "order_messages"
    __table_args__ = (Index("ix_order_messages_order", "order_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    direction: Mapped[str] = mapped_column(String(8))  # in (customer) | out (staff) | note
    author: Mapped[str] = mapped_column(String(80))  # customer:<openid> | staff:<userid>
    kind: Mapped[str] = mapped_column(String(16), default="text")  # text | image
    content: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QuickReply(Base):
    """A staff member's canned reply (快捷回复), used by name in 回复."""

    __tablename__ = "quick_replies"
    __table_args__ = (UniqueConstraint("userid", "name", name="uq_quick_replies_user_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    userid: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeliveryStat(Base):
    """Figures of one published piece at one moment, as staff recorded them. Append-only: a later
    reading is a new row, so each piece keeps its time series (24 h, 72 h, 7 days …)."""

    __tablename__ = "delivery_stats"
    __table_args__ = (Index("ix_delivery_stats_order", "order_id", "piece", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    piece: Mapped[int] = mapped_column()  # 1-based position in Order.deliverables
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)  # when the figures were read
    final: Mapped[bool] = mapped_column(default=False)  # the piece's last reading
    recorded_by: Mapped[str] = mapped_column(String(80))  # staff:<userid> | import:<file>
    # A figure not given is None (unknown), never 0.
    exposure: Mapped[int | None] = mapped_column(BigInteger)
    reads: Mapped[int | None] = mapped_column(BigInteger)
    likes: Mapped[int | None] = mapped_column(BigInteger)
    comments: Mapped[int | None] = mapped_column(BigInteger)
    favorites: Mapped[int | None] = mapped_column(BigInteger)
    shares: Mapped[int | None] = mapped_column(BigInteger)
    clicks: Mapped[int | None] = mapped_column(BigInteger)
    conversions: Mapped[int | None] = mapped_column(BigInteger)


class Review(Base):
    """A customer's score (1–5) and optional comment for a completed order; one per order."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="ck_reviews_score"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    score: Mapped[int] = mapped_column()
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class FunnelEvent(Base):
    """One step a person took towards buying (followed, searched, viewed, started an order), for the
    operators' funnel. Append-only; what the person wrote is never kept here."""

    __tablename__ = "funnel_events"
    __table_args__ = (Index("ix_funnel_events_step_at", "step", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(16))  # store.funnel.STEPS


# --- Flash sales (秒杀) ---------------------------------------------------------------------------


class FlashSale(Base):
    """A flash sale of one package: its own stock, price (tiers by position) and per-customer limit.

    `available` is what can still be taken (stock − held − paid); `taken` counts the positions handed
    out (a unit that comes back and is taken again gets a new position). Both change only through
    conditional UPDATEs in store.flash, so the database is the truth even when Redis answers first."""

    __tablename__ = "flash_sales"
    __table_args__ = (
        CheckConstraint("available >= 0 AND available <= stock", name="ck_flash_available"),
        CheckConstraint("price_fen > 0", name="ck_flash_price_positive"),
        CheckConstraint("per_customer >= 1", name="ck_flash_per_customer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(100))
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"))
    price_fen: Mapped[int] = mapped_column(BigInteger)  # after the last tier (or the only price)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list
    )  # [{"upto": 100, "price_fen": 990}]
    stock: Mapped[int] = mapped_column()
    available: Mapped[int] = mapped_column()
    taken: Mapped[int] = mapped_column(default=0)
    per_customer: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[dt.datetime] = mapped_column()
    ends_at: Mapped[dt.datetime] = mapped_column()
    hold_minutes: Mapped[int] = mapped_column(default=5)
    remind_minutes: Mapped[list[int]] = mapped_column(JSON, default=list)  # before the start: [1440, 60, 0]
    remarket: Mapped[list[str]] = mapped_column(JSON, default=list)  # service codes sold at full price
    status: Mapped[str] = mapped_column(String(16), default="scheduled")  # scheduled | stopped
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column()
    # The coupon remarketing gives (store.coupons spec: off_fen | percent + cap_fen, min_fen, days).
    coupon: Mapped[dict[str, Any]] = mapped_column(default=dict)
    remarketed_at: Mapped[dt.datetime | None] = mapped_column()
    remarket_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)  # sent | outside | opted_out


class FlashQuota(Base):
    """How many units a person holds or bought in a sale: the per-customer limit's conditional UPDATE."""

    __tablename__ = "flash_quotas"
    __table_args__ = (CheckConstraint("active >= 0", name="ck_flash_quota_active"),)

    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    active: Mapped[int] = mapped_column(default=0)


class FlashTake(Base):
    """One unit taken by one person at one position: held (an unpaid order) → paid | released."""

    __tablename__ = "flash_takes"
    __table_args__ = (
        Index("ix_flash_takes_sale_status", "sale_id", "status"),
        Index("ix_flash_takes_person", "sale_id", "account", "openid"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column()
    price_fen: Mapped[int] = mapped_column(BigInteger)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    via: Mapped[str] = mapped_column(String(16), default="rush")  # rush | waitlist | late
    status: Mapped[str] = mapped_column(String(16), default="held")  # held | paid | released
    # The QR channel the person came through (flash_<code>@<channel>; "" the plain flash_<code>),
    # None when not through a QR: the after-sale report's top scenes.
    scene: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    released_at: Mapped[dt.datetime | None] = mapped_column()


class FlashPaySlot(Base):
    """A position's WeChat Pay order and pay QR, made in the minutes before the sale opens (a NATIVE
    code_url names no payer): the take that hands out the position only assigns the payment to its
    order. Usable once `media_id` is set; its payment has no order until then."""

    __tablename__ = "flash_pay_slots"
    __table_args__ = (UniqueConstraint("sale_id", "position", name="uq_flash_pay_slots_position"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), unique=True)
    media_id: Mapped[str | None] = mapped_column(String(128))  # the uploaded QR (valid 3 days)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FlashWaitlist(Base):
    """候补: people waiting for a unit that comes back, first come first offered."""

    __tablename__ = "flash_waitlist"
    __table_args__ = (
        UniqueConstraint("sale_id", "account", "openid", name="uq_flash_waitlist_person"),
        Index("ix_flash_waitlist_queue", "sale_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | offered | gone
    scene: Mapped[str | None] = mapped_column(String(32))  # as FlashTake.scene, passed on to the offer
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    offered_at: Mapped[dt.datetime | None] = mapped_column()


class FlashSubscription(Base):
    """提醒我: a person waiting for a sale's reminders, and their one-time subscription consent
    (一次性订阅消息: one message/template/subscribe send per consent, for reminders outside 48 h)."""

    __tablename__ = "flash_subscriptions"
    __table_args__ = (UniqueConstraint("sale_id", "account", "openid", name="uq_flash_subscription_person"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("flash_sales.id", ondelete="CASCADE"), index=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    consent: Mapped[str] = mapped_column(String(16), default="none")  # none | granted | used
    consent_at: Mapped[dt.datetime | None] = mapped_column()


class FlashReminder(Base):
    """One reminder of one subscription at one offset: written before it is sent, so it goes once."""

    __tablename__ = "flash_reminders"
    __table_args__ = (UniqueConstraint("subscription_id", "offset_minutes", name="uq_flash_reminder_once"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("flash_subscriptions.id", ondelete="CASCADE"))
    offset_minutes: Mapped[int] = mapped_column()
    how: Mapped[str] = mapped_column(String(16))  # message (48-hour window) | subscribe | unreachable
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# --- Coupons and marketing consent ---------------------------------------------------------------


class Coupon(Base):
    """A person's coupon: amount off, or percent off with a cap; a minimum spend; a validity window.
    One per person per source (a sale's remarketing, a rule), by the unique key."""

    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("account", "openid", "source", name="uq_coupons_person_source"),
        Index("ix_coupons_person", "account", "openid", "status"),
        CheckConstraint("off_fen >= 0 AND percent >= 0 AND percent <= 100", name="ck_coupons_value"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))  # flash:<code> | rule:<name>
    title: Mapped[str] = mapped_column(String(100))
    off_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    percent: Mapped[int] = mapped_column(default=0)
    cap_fen: Mapped[int | None] = mapped_column(BigInteger)
    min_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_until: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="available")  # available | used
    order_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MarketingOptOut(Base):
    """退订: no remarketing messages to this person (订阅 removes the row)."""

    __tablename__ = "marketing_optouts"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
