"""Relay between a customer and the staff member of their order, the thread kept under the order,
and staff's canned replies (快捷回复).

```mermaid
sequenceDiagram
    customer->>relay: 联系客服 [单号]
    relay-->>staff: 🙋 wants to talk (assignee, else on-duty ops/admin)
    customer->>relay: text / image (relay mode, 2 h idle timeout)
    relay-->>staff: 💬 tagged with the order (image: signed link)
    staff->>relay: 回复 单号 内容 | #快捷回复
    relay-->>customer: customer-service text, or a template outside 48 h
```
Every message both ways is an OrderMessage under the order. Relay mode is `data["relay"]` of the
customer's conversation (not a flow), so a paused order form stays where it was.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows import texts
from flows import texts as t
from flows.notices import notice_payload
from flows.requirements import BEIJING
from flows.staff import staff_alert
from settings import Settings
from store.db import upsert_insert
from store.errors import DomainError
from store.models import (
    AuditEntry,
    Conversation,
    Material,
    Order,
    OrderEvent,
    OrderItem,
    OrderMessage,
    QuickReply,
    Staff,
    User,
)
from store.orders import OPEN_STATUSES, OrderStatus, save_material
from store.outbox import Outgoing, enqueue, text
from store.turns import FlowState

RELAY_IDLE = dt.timedelta(hours=2)  # relay mode ends after this long without a message either way
REACK_AFTER = dt.timedelta(minutes=30)  # a relayed message is acknowledged again after this much quiet
WINDOW = dt.timedelta(hours=48)  # WeChat: customer-service messages only within 48 h of the person's last
COMPLETED_OPEN_FOR = dt.timedelta(days=7)  # a completed order can still be talked about this long
LINK_TTL = dt.timedelta(days=7)
RECIPIENT_CHARS = 64  # OutboxMessage.recipient
MAX_REPLY_CHARS = 600
MAX_RELAY_CHARS = 500  # WeCom texts stop at 2048 bytes; the thread keeps the whole message
NOTICE_CHARS = 120  # template fields are short: the rest is read with 查看对话
QUICK_NAME_MAX = 16
QUICK_CONTENT_MAX = MAX_REPLY_CHARS
QUICK_MAX = 50

# Customers talk about paid orders, including one being refunded (OPEN_STATUSES); staff answer any of those.
RELAY_ROLES = frozenset({"ops", "admin"})


# --- People --------------------------------------------------------------------------------------


async def customer_name(session: AsyncSession, account: str, openid: str) -> str:
    """The customer's nickname, or a short stand-in (WeChat rarely gives nicknames any more)."""
    nickname = await session.scalar(
        select(User.nickname).where(User.account == account, User.openid == openid)
    )
    return nickname or t.CUSTOMER_FALLBACK_NAME.format(tail=openid[-4:])


async def staff_name(session: AsyncSession, userid: str) -> str:
    staff = await session.get(Staff, userid)
    return staff.name if staff is not None and staff.name else userid


async def _on_duty(session: AsyncSession, roles: Collection[str]) -> list[str]:
    # Roles are a JSON list: filtered here rather than with backend-specific JSON operators (few staff).
    rows = await session.scalars(
        select(Staff).where(Staff.active.is_(True), Staff.on_duty.is_(True)).order_by(Staff.userid)
    )
    return [s.userid for s in rows if set(s.roles) & set(roles)]


async def relay_recipients(session: AsyncSession, order: Order) -> list[str]:
    """The order's assignee, or (none, or no longer active) every on-duty ops/admin member."""
    if order.assignee:
        staff = await session.get(Staff, order.assignee)
        if staff is not None and staff.active:
            return [staff.userid]
    return await _on_duty(session, RELAY_ROLES)


async def review_recipients(session: AsyncSession, order: Order) -> list[str]:
    """On-duty reviewers (else ops/admin), plus the assignee."""
    found = await _on_duty(session, {"reviewer"}) or await _on_duty(session, RELAY_ROLES)
    if order.assignee and order.assignee not in found:
        found.append(order.assignee)
    return found


def to_staff(
    settings: Settings, recipients: list[str], content: str, *, key: str, kind: str = "text"
) -> list[Outgoing]:
    """A WeCom app message to these staff ("a|b"); with nobody to send it to, the staff group robot."""
    if not recipients:
        return staff_alert(settings, content, key=key)
    # The outbox keeps at most 64 characters of recipient: a long list goes out in several messages.
    groups: list[list[str]] = [[]]
    for userid in dict.fromkeys(recipients):
        if groups[-1] and len("|".join([*groups[-1], userid])) > RECIPIENT_CHARS:
            groups.append([])
        groups[-1].append(userid)
    return [
        Outgoing(
            "wecom",
            "|".join(group),
            kind,
            {"content": content},
            dedupe_key=f"wecom:{key}" if i == 0 else f"wecom:{key}:{i}",
        )
        for i, group in enumerate(groups)
    ]


# --- Signed links to customers' images -------------------------------------------------------------


def _link_key(settings: Settings) -> bytes:
    """Derived from the app secrets, so the link key is never configured (or logged) on its own."""
    secrets = settings.wecom_secret.get_secret_value() + "\n" + settings.wechat_app_secret.get_secret_value()
    if not secrets.strip():
        return b""
    return hmac.new(b"chatorder:material-links:v1", secrets.encode(), hashlib.sha256).digest()


def _signature(key: bytes, material_id: int, exp: int) -> str:
    return hmac.new(key, f"material:{material_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]


def material_link(settings: Settings, material_id: int, now: dt.datetime) -> str | None:
    """A link to the stored image, valid LINK_TTL; None where no secret is configured to sign it."""
    key = _link_key(settings)
    if not key:
        return None
    exp = int((now + LINK_TTL).timestamp())
    sig = _signature(key, material_id, exp)
    return f"{settings.public_url}/files/materials/{material_id}?exp={exp}&sig={sig}"


def link_is_valid(settings: Settings, material_id: int, exp: str, sig: str, now: dt.datetime) -> bool:
    """The signature matches and the link has not expired."""
    key = _link_key(settings)
    if not key or not exp.isdigit() or int(exp) < now.timestamp():
        return False
    return hmac.compare_digest(_signature(key, material_id, int(exp)), sig)


# --- Orders a customer can talk about -------------------------------------------------------------


async def open_orders(session: AsyncSession, *, account: str, openid: str, now: dt.datetime) -> list[Order]:
    """Paid orders (newest first), without refunded ones and those completed more than 7 days ago."""
    found = list(
        await session.scalars(
            select(Order)
            .where(Order.account == account, Order.openid == openid, Order.status.in_(OPEN_STATUSES))
            .order_by(Order.created_at.desc(), Order.id.desc())
        )
    )
    done = [o.id for o in found if o.status == OrderStatus.COMPLETED]
    if not done:
        return found
    # Rows, not the result itself: dict() would take a result (it has keys()) for a mapping.
    rows = await session.execute(
        select(OrderEvent.order_id, func.max(OrderEvent.at))
        .where(OrderEvent.order_id.in_(done), OrderEvent.to_status == OrderStatus.COMPLETED)
        .group_by(OrderEvent.order_id)
    )
    completed_at = {order_id: at for order_id, at in rows}
    return [
        o
        for o in found
        if o.status != OrderStatus.COMPLETED
        or completed_at.get(o.id, o.updated_at) > now - COMPLETED_OPEN_FOR
    ]


async def load_order(session: AsyncSession, order_id: int) -> Order | None:
    """Any order by id (fresh from the database)."""
    return await session.get(Order, order_id, populate_existing=True)


async def first_titles(session: AsyncSession, order_ids: Collection[int]) -> dict[int, str]:
    """'小鹿爱咖啡' or '小鹿爱咖啡 等 3 项' per order."""
    rows = await session.execute(
        select(OrderItem.order_id, OrderItem.service_title)
        .where(OrderItem.order_id.in_(list(order_ids)))
        .order_by(OrderItem.order_id, OrderItem.id)
    )
    titles: dict[int, list[str]] = {}
    for order_id, title in rows:
        titles.setdefault(order_id, []).append(title)
    return {
        k: v[0] if len(v) == 1 else texts.ORDERS_TITLE_MORE.format(title=v[0], lines=len(v))
        for k, v in titles.items()
    }


# --- The thread ----------------------------------------------------------------------------------


async def thread(session: AsyncSession, order_id: int, limit: int = 20) -> list[OrderMessage]:
    """The last `limit` messages under the order, oldest first."""
    rows = await session.scalars(
        select(OrderMessage)
        .where(OrderMessage.order_id == order_id)
        .order_by(OrderMessage.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


async def add_message(
    session: AsyncSession,
    *,
    order_id: int,
    direction: str,
    author: str,
    content: str,
    at: dt.datetime,
    kind: str = "text",
) -> OrderMessage:
    """Append one message (in | out | note) to the order's thread."""
    message = OrderMessage(
        order_id=order_id, direction=direction, author=author, kind=kind, content=content, at=at
    )
    session.add(message)
    await session.flush()
    return message


async def render_thread(
    session: AsyncSession,
    order: Order,
    *,
    settings: Settings,
    now: dt.datetime,
    for_staff: bool,
    limit: int = 20,
) -> str:
    """The thread as text: for the customer (without staff notes) or for staff (images as links)."""
    messages = [m for m in await thread(session, order.id, limit) if for_staff or m.direction != "note"]
    if not messages:
        return t.THREAD_EMPTY.format(number=order.number)
    names: dict[str, str] = {}
    customer = await customer_name(session, order.account, order.openid)
    lines = []
    for m in messages:
        if m.author not in names:
            kind, _, who = m.author.partition(":")
            if kind == "staff":
                names[m.author] = t.THREAD_STAFF.format(name=await staff_name(session, who))
            else:
                names[m.author] = customer if for_staff else t.THREAD_YOU
        content = m.content
        if m.kind == "image":
            link = material_link(settings, int(m.content), now) if for_staff else None
            content = link or t.THREAD_IMAGE
        at = m.at.astimezone(BEIJING).strftime("%m-%d %H:%M")
        lines.append(t.THREAD_LINE.format(at=at, who=names[m.author], content=content))
    head = t.THREAD_HEAD.format(number=order.number, count=len(lines))
    return head + "\n".join(lines) + ("" if for_staff else t.THREAD_FOOT.format(number=order.number))


# --- Messages to the customer (48-hour window) ---------------------------------------------------


async def within_window(session: AsyncSession, account: str, openid: str, now: dt.datetime) -> bool:
    """Whether a customer-service message still reaches the person (their last message < 48 h ago).

    Unknown (no message recorded) counts as inside: the outbox falls back to the template on 45015."""
    last = await session.scalar(
        select(User.last_inbound_at).where(User.account == account, User.openid == openid)
    )
    return last is None or now - last < WINDOW


async def customer_message(
    session: AsyncSession,
    *,
    order: Order,
    content: str,
    notice: str,
    settings: Settings,
    now: dt.datetime,
    dedupe_key: str,
) -> Outgoing | None:
    """A customer-service text, or outside 48 h the notice template with `notice` (None: cannot reach)."""
    if await within_window(session, order.account, order.openid, now):
        return text(order.openid, content, dedupe_key=dedupe_key)
    template_id = settings.wechat_notice_template_id
    if not template_id:
        return None
    if len(notice) > NOTICE_CHARS:
        notice = notice[:NOTICE_CHARS] + t.NOTICE_CUT.format(number=order.number)
    return Outgoing("mp", order.openid, "template", notice_payload(notice, template_id, now), dedupe_key)


# --- The customer's conversation, changed from outside their turn ---------------------------------


async def update_conversation(
    session: AsyncSession, account: str, openid: str, change: Callable[[FlowState], object], now: dt.datetime
) -> None:
    """Apply `change` to the person's flow state (optimistic: retried if a turn wrote meanwhile).

    The caller holds the person's lock (handlers.work.turn Turn.change): the turn writer does not compare
    versions, so a customer turn running at the same moment would otherwise write over this change."""
    for _ in range(3):
        conv = await session.get(Conversation, (account, openid), populate_existing=True)
        if conv is None:
            state = FlowState()
            change(state)
            stmt = (
                upsert_insert(session)(Conversation)
                .values(
                    account=account,
                    openid=openid,
                    flow=state.flow,
                    step=state.step,
                    data=state.data,
                    version=0,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["account", "openid"])
                .returning(Conversation.version)
            )
            if (await session.execute(stmt)).scalar_one_or_none() is not None:
                return
            continue
        state = FlowState(conv.flow, conv.step, copy.deepcopy(conv.data or {}))
        change(state)
        stmt = (
            update(Conversation)
            .where(
                Conversation.account == account,
                Conversation.openid == openid,
                Conversation.version == conv.version,
            )
            .values(
                flow=state.flow, step=state.step, data=state.data, version=conv.version + 1, updated_at=now
            )
            .returning(Conversation.version)
            .execution_options(synchronize_session=False)
        )
        if (await session.execute(stmt)).scalar_one_or_none() is not None:
            return
    raise DomainError("conflict", account=account, openid=openid)


# --- Relay mode (in the customer's conversation data) ---------------------------------------------


def relay_state(state: FlowState, now: dt.datetime) -> dict[str, Any] | None:
    """The relay the person is in, unless it has been idle for RELAY_IDLE."""
    relay: dict[str, Any] | None = state.data.get("relay")
    if not relay or dt.datetime.fromisoformat(relay["last_at"]) < now - RELAY_IDLE:
        return None
    return relay


def start_relay(state: FlowState, order: Order, now: dt.datetime, *, acked: bool = False) -> None:
    """Put the person in relay mode for `order` (replacing any other relay)."""
    state.data["relay"] = {
        "order_id": order.id,
        "number": order.number,
        "last_at": now.isoformat(),
        "acked_at": now.isoformat() if acked else None,
    }


def end_relay(state: FlowState) -> bool:
    """Leave relay mode; False when the person was not in it."""
    return state.data.pop("relay", None) is not None


def needs_ack(relay: dict[str, Any], now: dt.datetime) -> bool:
    """The first relayed message is acknowledged, later ones only after REACK_AFTER of quiet (either way):
    an echo per line is noise, but someone coming back after a while should see it arrived."""
    return relay.get("acked_at") is None or dt.datetime.fromisoformat(relay["last_at"]) < now - REACK_AFTER


def relayed(relay: dict[str, Any], now: dt.datetime) -> bool:
    """Note a relayed message; True when the customer should be told it went through."""
    ack = needs_ack(relay, now)
    relay["last_at"] = now.isoformat()
    if ack:
        relay["acked_at"] = now.isoformat()
    return ack


async def relay_opened(session: AsyncSession, *, order: Order, settings: Settings, now: dt.datetime) -> None:
    """Tell the order's staff that the customer wants to talk."""
    who = await customer_name(session, order.account, order.openid)
    content = t.STAFF_RELAY_START.format(number=order.number, who=who)
    recipients = await relay_recipients(session, order)
    key = f"relay-start:{order.id}:{int(now.timestamp())}"
    await enqueue(session, *to_staff(settings, recipients, content, key=key))


async def customer_said(
    session: AsyncSession,
    *,
    order: Order,
    kind: str,
    content: str,
    key: str,
    settings: Settings,
    now: dt.datetime,
) -> None:
    """Keep a customer's text (or image: content is the material id) under the order and pass it on."""
    await add_message(
        session,
        order_id=order.id,
        direction="in",
        author=f"customer:{order.openid}",
        kind=kind,
        content=content,
        at=now,
    )
    who = await customer_name(session, order.account, order.openid)
    if kind == "image":
        url = material_link(settings, int(content), now) or t.IMAGE_LINK_UNAVAILABLE
        shown = t.STAFF_RELAY_IMAGE.format(number=order.number, who=who, url=url)
    else:
        cut = content if len(content) <= MAX_RELAY_CHARS else content[:MAX_RELAY_CHARS] + t.RELAY_CUT
        shown = t.STAFF_RELAY_TEXT.format(number=order.number, who=who, content=cut)
    recipients = await relay_recipients(session, order)
    await enqueue(session, *to_staff(settings, recipients, shown, key=f"relay:{order.id}:{key}"))


async def pass_on(
    session: AsyncSession,
    *,
    order: Order,
    said: str,
    image: tuple[str, bytes] | None,
    key: str,
    settings: Settings,
    now: dt.datetime,
) -> None:
    """What the customer sent in relay mode: a text, or an image (media id, bytes) kept under the order."""
    if image is None:
        await customer_said(
            session, order=order, kind="text", content=said, key=key, settings=settings, now=now
        )
        return
    material_id = await save_material(
        session, account=order.account, openid=order.openid, media_id=image[0], content_type="", data=image[1]
    )
    await attach_material(session, order, [material_id])
    await customer_said(
        session, order=order, kind="image", content=str(material_id), key=key, settings=settings, now=now
    )


async def attach_material(session: AsyncSession, order: Order, material_ids: Collection[int]) -> None:
    """Keep the customer's own, still unattached images under the order."""
    if not material_ids:
        return
    await session.execute(
        update(Material)
        .where(
            Material.id.in_(list(material_ids)),
            Material.account == order.account,
            Material.openid == order.openid,
            Material.order_id.is_(None),
        )
        .values(order_id=order.id)
        .execution_options(synchronize_session=False)
    )


# --- Staff side ----------------------------------------------------------------------------------


async def _expand(session: AsyncSession, userid: str, content: str) -> str:
    """'#报价' is the staff member's quick reply of that name; anything after the name follows it."""
    content = content.strip()
    if not content.startswith(("#", "＃")):
        return content
    name, _, rest = content[1:].partition(" ")
    found = await session.scalar(
        select(QuickReply.content).where(QuickReply.userid == userid, QuickReply.name == name.strip())
    )
    if found is None:
        raise DomainError("unknown_quick_reply", name=name.strip())
    return f"{found}\n{rest.strip()}" if rest.strip() else found


async def staff_reply(
    session: AsyncSession, *, order: Order, userid: str, content: str, settings: Settings, now: dt.datetime
) -> None:
    """`回复 <单号> <内容>`: the text (or `#快捷回复`) goes to the customer and into the thread."""
    if order.status not in OPEN_STATUSES:
        raise DomainError("order_not_open", number=order.number, status=order.status)
    said = await _expand(session, userid, content)
    if not said:
        raise DomainError("empty_reply")
    if len(said) > MAX_REPLY_CHARS:
        raise DomainError("reply_too_long", got=len(said), max=MAX_REPLY_CHARS)
    name = await staff_name(session, userid)
    shown = t.STAFF_REPLY.format(name=name, number=order.number, content=said)
    notice = t.STAFF_REPLY_NOTICE.format(name=name, number=order.number, content=said)
    key = f"staff-reply:{order.id}:{userid}:{now.timestamp()}"
    message = await customer_message(
        session, order=order, content=shown, notice=notice, settings=settings, now=now, dedupe_key=key
    )
    if message is None:  # refused before anything is written: the staff member is told why
        raise DomainError("customer_unreachable", number=order.number)
    kept = await add_message(
        session, order_id=order.id, direction="out", author=f"staff:{userid}", content=said, at=now
    )
    session.add(
        AuditEntry(
            at=now,
            actor=f"staff:{userid}",
            action="reply",
            target=f"order:{order.number}",
            detail={"message_id": kept.id, "template": message.kind == "template"},
        )
    )
    await enqueue(session, message)
    # The customer's answer to this goes straight back to staff (relay mode), without an extra ack.
    await update_conversation(
        session, order.account, order.openid, lambda s: start_relay(s, order, now, acked=True), now
    )


# --- Quick replies (快捷回复) ----------------------------------------------------------------------


def _quick_name(name: str) -> str:
    name = name.strip().lstrip("#＃").strip()
    if not 1 <= len(name) <= QUICK_NAME_MAX or any(c.isspace() for c in name):
        raise DomainError("bad_quick_reply_name", name=name, max=QUICK_NAME_MAX)
    return name


async def quick_replies(session: AsyncSession, userid: str) -> list[QuickReply]:
    """A staff member's canned replies, by name."""
    return list(
        await session.scalars(select(QuickReply).where(QuickReply.userid == userid).order_by(QuickReply.name))
    )


async def save_quick_reply(session: AsyncSession, userid: str, name: str, content: str) -> QuickReply:
    """Add a canned reply, or replace the text of the one with that name."""
    name, content = _quick_name(name), content.strip()
    if not 1 <= len(content) <= QUICK_CONTENT_MAX:
        raise DomainError("bad_quick_reply_content", max=QUICK_CONTENT_MAX)
    existing = await session.scalar(
        select(QuickReply).where(QuickReply.userid == userid, QuickReply.name == name)
    )
    if existing is not None:
        existing.content = content
        await session.flush()
        return existing
    count = await session.scalar(select(func.count()).where(QuickReply.userid == userid)) or 0
    if count >= QUICK_MAX:
        raise DomainError("too_many_quick_replies", max=QUICK_MAX)
    # Upsert: two quick 添加 of the same name make one row, the later text wins.
    stmt = (
        upsert_insert(session)(QuickReply)
        .values(userid=userid, name=name, content=content)
        .on_conflict_do_update(index_elements=["userid", "name"], set_={"content": content})
        .returning(QuickReply.id)
    )
    reply_id = (await session.execute(stmt)).scalar_one()
    saved = await session.get(QuickReply, reply_id, populate_existing=True)
    assert saved is not None
    return saved


async def delete_quick_reply(session: AsyncSession, userid: str, name: str) -> bool:
    """Remove a canned reply; False when there was none of that name."""
    result = await session.execute(
        delete(QuickReply)
        .where(QuickReply.userid == userid, QuickReply.name == name.strip().lstrip("#＃").strip())
        .returning(QuickReply.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def on_quick_reply_command(session: AsyncSession, userid: str, argument: str) -> str:
    """`快捷回复` / `快捷回复 添加 <名称> <内容>` / `快捷回复 删除 <名称>`: the text to answer staff with."""
    verb, _, rest = argument.strip().partition(" ")
    try:
        if not verb or verb in ("列表", "查看", "全部"):
            return await _list_quick(session, userid)
        if verb in ("添加", "新增", "修改", "保存"):
            name, _, content = rest.strip().partition(" ")
            if not name or not content.strip():
                return t.QUICK_USAGE
            saved = await save_quick_reply(session, userid, name, content)
            return t.QUICK_SAVED.format(name=saved.name)
        if verb in ("删除", "删掉", "移除") and rest.strip():
            name = rest.strip()
            if await delete_quick_reply(session, userid, name):
                return t.QUICK_DELETED.format(name=name.lstrip("#＃"))
            raise DomainError("unknown_quick_reply", name=name.lstrip("#＃"))
    except DomainError as exc:
        return staff_error(exc)
    return t.QUICK_USAGE


async def _list_quick(session: AsyncSession, userid: str) -> str:
    found = await quick_replies(session, userid)
    if not found:
        return t.QUICK_LIST_EMPTY
    lines = [
        t.QUICK_LIST_LINE.format(
            name=q.name, content=q.content if len(q.content) <= 30 else q.content[:30] + "…"
        )
        for q in found
    ]
    return t.QUICK_LIST_HEAD.format(count=len(found), lines="\n".join(lines))


def staff_error(exc: DomainError) -> str:
    """The staff member's sentence for a relay or review refusal."""
    template = t.STAFF_ERRORS.get(exc.code)
    if template is None:
        return texts.SORRY.format(brand="")
    try:
        return template.format(**exc.details)
    except (KeyError, IndexError):
        return template
