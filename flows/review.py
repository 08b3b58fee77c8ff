"""Content review: the customer's materials go to the reviewer; a rejection sends the customer back
to redo some steps of their order form in chat, and the new materials go to review again.

```mermaid
stateDiagram-v2
    [*] --> review: paid (materials_for_review → reviewers)
    review --> approved: 通过 (the desk)
    review --> resubmit: 驳回 + reason (send_back)
    [*] --> resubmit: paid flash order without answers (ask_requirements, fresh)
    resubmit --> step1: customer asked the first step to redo
    step1 --> step2: valid answer / 不变 (keep) / images + 好了
    step2 --> review: last step (apply_resubmission → resubmitted → reviewers)
    step1 --> relay: 取消 (talk to staff instead; 重新提交 单号 later)
```
Which steps are redone: the reviewer's `steps`, or by default every material step the order has
(link, selling_points, copy, ref_images: what a reviewer judges); without any of those, every step
it has. The customer keeps an answer with 不变, so asking for all of them costs little.
While redoing, the flow is `resubmit`; whatever flow the person was in is kept in its data and
restored at the end, so an order form of another order is not lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows import texts as t
from flows.engine import Form
from flows.format import yuan
from flows.relay import (
    add_message,
    attach_material,
    customer_message,
    customer_name,
    material_link,
    relay_recipients,
    review_recipients,
    to_staff,
    update_conversation,
)
from flows.requirements import STEPS, show
from settings import Settings
from store.errors import DomainError
from store.models import AuditEntry, Order, utcnow
from store.orders import OrderStatus, get_order
from store.outbox import Outgoing, enqueue, text
from store.turns import FlowState

ASK_ACTION = "ask_requirements"  # audit action of a first ask (a flash order), next to "reject"
MATERIAL_KEYS = ("link", "selling_points", "copy", "ref_images")
MAX_REASON_CHARS = 200
MARKDOWN_BYTES = 2000  # WeCom refuses markdown over 2048 bytes
VALUE_CAPS = (200, 100, 50, 20)  # answers are cut shorter until the card fits


class ResubmitForm(Form):
    """Redo some steps of a paid order's form; remembers the flow it interrupted."""

    name = "resubmit"

    @classmethod
    def start(cls, state: FlowState, order: Order, keys: list[str], *, fresh: bool = False) -> ResubmitForm:
        """Begin (or restart, for the same order) without losing the flow the person was in.

        `fresh`: the order has no answers yet (a flash sale's order), so there is nothing to keep."""
        current = state.data.get("form") or {}
        if state.flow == cls.name and current.get("order_id") == order.id:
            paused = current.get("paused")  # sent back again: what it interrupted stays interrupted
        elif state.flow is not None:
            paused = {"flow": state.flow, "step": state.step, "form": state.data.get("form")}
        else:
            paused = None
        state.data.pop("form", None)
        form = cls.begin(state, keys, order_id=order.id, number=order.number, paused=paused, fresh=fresh)
        assert isinstance(form, ResubmitForm)
        return form

    @property
    def order_id(self) -> int:
        return int(self.data["order_id"])

    @property
    def number(self) -> str:
        return str(self.data["number"])

    @property
    def fresh(self) -> bool:
        """First answers (asked after paying), not a redo: 不变 has nothing to keep."""
        return bool(self.data.get("fresh"))

    def keep(self) -> None:
        """不变: the order keeps its answer to this step."""
        self.answers.pop(self.state.step or "", None)
        self._advance()

    def paused_hint(self) -> str:
        n, total = self.position()
        return (t.REQUIREMENTS_PAUSED if self.fresh else t.RESUBMIT_PAUSED).format(
            number=self.number, n=n, total=total
        )

    def reminder(self) -> str:
        n, total = self.position()
        return (t.REQUIREMENTS_REMINDER if self.fresh else t.RESUBMIT_REMINDER).format(
            number=self.number, n=n, total=total
        )

    def finish(self) -> None:
        """Leave, and put back the flow this one interrupted."""
        paused = self.data.get("paused")
        self.end()
        if paused:
            self.state.flow, self.state.step = paused["flow"], paused["step"]
            if paused.get("form") is not None:
                self.state.data["form"] = paused["form"]


def resubmit_keys(order: Order, steps: Collection[str] | None) -> list[str]:
    """The steps to redo, in form order (see the module docstring for the default)."""
    if steps:
        unknown = [k for k in steps if k not in STEPS]
        if unknown:
            raise DomainError("bad_steps", keys="、".join(unknown), choices="、".join(STEPS))
        wanted = set(steps)
    else:
        present = set(order.requirements)
        wanted = present & set(MATERIAL_KEYS) or present & set(STEPS)
    keys = [k for k in STEPS if k in wanted]
    if not keys:
        raise DomainError("nothing_to_resubmit", number=order.number)
    return keys


def _labels(keys: Collection[str]) -> str:
    return "、".join(STEPS[k].label for k in keys if k in STEPS)


# --- The materials card (WeCom markdown) ---------------------------------------------------------


def _one_line(value: str, cap: int) -> str:
    value = " / ".join(part.strip() for part in value.splitlines() if part.strip())
    return value if len(value) <= cap else value[:cap] + t.REVIEW_CUT


async def _card(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    *,
    head: str,
    changed: Collection[str],
    now: dt.datetime,
    note: str | None = None,
) -> str:
    view = await get_order(session, order.id)
    items = view.items if view else []
    who = await customer_name(session, order.account, order.openid)
    lines = "；".join(f"{i.service_title} {i.package_name} × {i.quantity}" for i in items)
    answers = [(k, order.requirements[k]) for k in STEPS if k in order.requirements]
    for cap in VALUE_CAPS:
        parts = [head.format(number=order.number)]
        parts.append(t.REVIEW_META.format(who=who, total=yuan(order.total_fen), items=_one_line(lines, cap)))
        for key, value in answers:
            label = STEPS[key].label + (t.REVIEW_CHANGED if key in changed else "")
            if key == "ref_images" and value:
                parts.append(t.REVIEW_IMAGES.format(label=label, links=_image_links(settings, value, now)))
            else:
                parts.append(t.REVIEW_ANSWER.format(label=label, value=_one_line(show(key, value), cap)))
        if note:
            parts.append(t.REVIEW_NOTE.format(reason=_one_line(note, cap)))
        if any(k == "ref_images" and v for k, v in answers):
            parts.append(t.REVIEW_FOOT)
        content = "\n".join(parts)
        if len(content.encode()) <= MARKDOWN_BYTES:
            break
    return content


def _image_links(settings: Settings, material_ids: list[int], now: dt.datetime) -> str:
    links = []
    for n, material_id in enumerate(material_ids, start=1):
        url = material_link(settings, int(material_id), now)
        if url is None:
            return t.REVIEW_IMAGES_NO_LINKS.format(n=len(material_ids))
        links.append(t.REVIEW_IMAGE_LINK.format(n=n, url=url))
    return " ".join(links)


async def materials_for_review(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    *,
    recipients: list[str] | None = None,
    now: dt.datetime | None = None,
) -> list[Outgoing]:
    """What reviewers get when an order is paid: the answers, with links to open the images."""
    content = await _card(session, order, settings, head=t.REVIEW_HEAD, changed=(), now=now or utcnow())
    to = recipients if recipients is not None else await review_recipients(session, order)
    return to_staff(settings, to, content, key=f"review:{order.id}", kind="markdown")


async def resubmitted(
    session: AsyncSession,
    order: Order,
    settings: Settings,
    *,
    changed: Collection[str] = (),
    now: dt.datetime | None = None,
) -> list[Outgoing]:
    """What reviewers and the assignee get when the customer has sent the materials again."""
    now = now or utcnow()
    content = await _card(
        session, order, settings, head=t.RESUBMITTED_HEAD, changed=changed, now=now, note=order.review_note
    )
    to = await review_recipients(session, order)
    return to_staff(settings, to, content, key=f"resubmitted:{order.id}:{now.timestamp()}", kind="markdown")


# --- Sending back, and coming back ---------------------------------------------------------------


async def send_back(
    session: AsyncSession,
    order: Order,
    *,
    reason: str,
    actor: str,
    settings: Settings,
    now: dt.datetime,
    steps: list[str] | None = None,
) -> None:
    """The reviewer rejects the materials: the customer is asked in chat to redo those steps."""
    if order.status != OrderStatus.PENDING_REVIEW:
        raise DomainError("not_in_review", number=order.number, status=order.status)
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON_CHARS:
        raise DomainError("bad_reason", max=MAX_REASON_CHARS)
    keys = resubmit_keys(order, steps)
    if (
        order.review == "resubmit"
        and order.review_note == reason
        and await keys_sent_back(session, order) == keys
    ):
        return  # the same rejection again (a resent command): the customer was asked once already
    # WHERE status: a reject racing an approval (or a refund) of the same order changes nothing.
    stmt = (
        update(Order)
        .where(Order.id == order.id, Order.status == OrderStatus.PENDING_REVIEW)
        .values(review="resubmit", review_note=reason)
        .returning(Order)
    )
    if (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none() is None:
        raise DomainError("conflict", number=order.number)
    labels = _labels(keys)
    note = t.NOTE_SENT_BACK.format(reason=reason, labels=labels)
    await add_message(session, order_id=order.id, direction="note", author=actor, content=note, at=now)
    session.add(
        AuditEntry(
            at=now,
            actor=actor,
            action="reject",
            target=f"order:{order.number}",
            detail={"reason": reason, "steps": keys},
        )
    )
    await update_conversation(
        session, order.account, order.openid, lambda s: ResubmitForm.start(s, order, keys), now
    )
    content = asking(order, keys, reason)
    key = f"resubmit:{order.id}:{now.timestamp()}"
    notice = t.NOTE_SENT_BACK.format(reason=reason, labels=labels)
    message = await customer_message(
        session, order=order, content=content, notice=notice, settings=settings, now=now, dedupe_key=key
    )
    # Outside 48 h without a notice template: try anyway (our record of their last message may be old).
    await enqueue(session, message or text(order.openid, content, dedupe_key=key))


async def ask_requirements(
    session: AsyncSession,
    order: Order,
    keys: list[str],
    *,
    settings: Settings,
    now: dt.datetime,
    state: FlowState | None = None,
) -> None:
    """A paid order made without the order form (a flash sale): the customer is asked in chat for the
    package's requirements, step by step as in the resubmit flow; reviewers get the materials card once
    they are in (apply_resubmission), not an empty one now.

    `state`: the person's flow state when this runs inside their own turn (paying from the balance),
    which writes it; else their stored conversation is changed (the caller holds their lock)."""
    keys = resubmit_keys(order, keys)
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(review="resubmit", review_note=None)
        .execution_options(synchronize_session=False)
    )
    order.review, order.review_note = "resubmit", None
    session.add(
        AuditEntry(
            at=now, actor="system", action=ASK_ACTION, target=f"order:{order.number}", detail={"steps": keys}
        )
    )

    def start(flow_state: FlowState) -> None:
        ResubmitForm.start(flow_state, order, keys, fresh=True)

    if state is not None:
        start(state)
    else:
        await update_conversation(session, order.account, order.openid, start, now)
    content = asking(order, keys, "")
    key = f"requirements:{order.id}"
    notice = t.NOTE_REQUIREMENTS_ASKED.format(labels=_labels(keys))
    message = await customer_message(
        session, order=order, content=content, notice=notice, settings=settings, now=now, dedupe_key=key
    )
    await enqueue(session, message or text(order.openid, content, dedupe_key=key))


def asking(order: Order, keys: list[str], reason: str) -> str:
    """The message that asks the customer to redo `keys` (or, without a reviewer's reason, to give them
    for the first time), with the first question."""
    scratch = ResubmitForm.begin(FlowState(), keys)
    if not reason:
        return t.REQUIREMENTS_ASK.format(number=order.number, labels=_labels(keys), question=scratch.prompt())
    return t.RESUBMIT_ASK.format(
        number=order.number, reason=reason, labels=_labels(keys), question=scratch.prompt()
    )


async def keys_sent_back(session: AsyncSession, order: Order) -> list[str]:
    """The steps of the latest rejection or first ask (for 重新提交 after the customer said 取消)."""
    detail: dict[str, Any] | None = await session.scalar(
        select(AuditEntry.detail)
        .where(AuditEntry.target == f"order:{order.number}", AuditEntry.action.in_(("reject", ASK_ACTION)))
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    steps = (detail or {}).get("steps") or None
    return resubmit_keys(order, steps)


def awaiting_resubmission(order: Order | None, openid: str) -> bool:
    return (
        order is not None
        and order.openid == openid
        and order.status == OrderStatus.PENDING_REVIEW
        and order.review == "resubmit"
    )


async def apply_resubmission(
    session: AsyncSession,
    *,
    order_id: int,
    openid: str,
    answers: dict[str, Any],
    settings: Settings,
    now: dt.datetime,
) -> Order | None:
    """The redone answers replace the old ones and the order goes back to review (None: not needed any
    more, e.g. approved or refunded meanwhile)."""
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None or not awaiting_resubmission(order, openid):
        return None
    fresh = not order.review_note  # first answers (asked after paying): reviewers get the usual card
    stmt = (
        update(Order)
        .where(Order.id == order_id, Order.status == OrderStatus.PENDING_REVIEW, Order.review == "resubmit")
        .values(requirements={**order.requirements, **answers}, review=None, updated_at=now)
        .returning(Order)
    )
    order = (await session.scalars(stmt, execution_options={"populate_existing": True})).one_or_none()
    if order is None:
        return None
    await attach_material(session, order, answers.get("ref_images") or [])
    note = t.NOTE_RESUBMITTED.format(labels=_labels(answers) or "—")
    await add_message(
        session, order_id=order.id, direction="note", author=f"customer:{openid}", content=note, at=now
    )
    if fresh:
        await enqueue(session, *await materials_for_review(session, order, settings, now=now))
    else:
        await enqueue(session, *await resubmitted(session, order, settings, changed=answers.keys(), now=now))
    return order


async def declined(session: AsyncSession, *, order: Order, settings: Settings, now: dt.datetime) -> None:
    """The customer would rather talk than resubmit: noted, and the order's staff are told."""
    await add_message(
        session,
        order_id=order.id,
        direction="note",
        author=f"customer:{order.openid}",
        content=t.NOTE_DECLINED,
        at=now,
    )
    who = await customer_name(session, order.account, order.openid)
    content = t.STAFF_RESUBMIT_DECLINED.format(number=order.number, who=who)
    recipients = await relay_recipients(session, order)
    for reviewer in await review_recipients(session, order):
        if reviewer not in recipients:
            recipients.append(reviewer)
    await enqueue(
        session,
        *to_staff(settings, recipients, content, key=f"resubmit-declined:{order.id}:{now.timestamp()}"),
    )
