"""Orders through their life: 查单 · 通过 · 驳回 · 接单 · 分配 · 开始 · 发布 · 完成."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from flows import creators, desk, review
from flows import texts_staff as ts
from flows.notices import order_notice
from handlers.work import results
from handlers.work.cards import already_done, settle
from handlers.work.turn import StaffRouter, Turn, Usage, pair
from store import staff
from store.errors import DomainError
from store.models import Order
from store.orders import OrderStatus

router = StaffRouter("orders")


async def order_action(turn: Turn, session: AsyncSession, action: str, order: Order) -> Order:
    """通过 or 接单 on an order (a card button or a typed command)."""
    if action == "approve":
        return await staff.approve(
            session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now
        )
    order = await staff.claim(session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now)
    if order.review is None:  # the review card was settled by this claim: reviewers get a fresh one
        await desk.send_order_card(
            session, order, turn.settings, turn.now, buttons=desk.REVIEW_BUTTONS, with_assignee=False
        )
    return order


async def reject(
    turn: Turn,
    session: AsyncSession,
    order: Order,
    reason: str,
    *,
    task_id: str = "",
    response_code: str = "",
) -> None:
    """Send the materials back to the customer with the reason (flows.review asks them to redo them)."""
    if order.review == "approved":
        raise DomainError("already_approved", number=order.number)
    settled = await settle(turn, session, f"order:{order.id}", "reject")
    if task_id and task_id not in settled:
        card = await staff.get_card(session, task_id)
        if card is not None and card.done_by is not None:
            await already_done(turn, session, task_id, response_code)
            return
    await review.send_back(
        session, order, reason=reason, actor=turn.actor, settings=turn.settings, now=turn.now
    )
    if task_id in settled and response_code:
        label = desk.done_label("reject", turn.me.name)
        order = await session.get(Order, order.id) or order  # as sending back left it
        click = desk.CardClick(turn.userid, task_id, response_code)
        turn.out.append(await desk.settled_order_card(session, order, turn.settings, click, label))
    turn.say(ts.REJECTED, number=order.number, reason=reason.strip())


@router.command("查单", "lookup")
async def on_lookup(turn: Turn) -> None:
    """查单 <单号>: the order as staff see it."""
    number, _ = turn.args()
    async with turn.read() as session:
        turn.send(await desk.order_detail(session, await desk.order_by_number(session, number)))


@router.command("通过", "approve")
async def on_approve(turn: Turn) -> None:
    """通过 <单号>: the materials are fine."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await settle(turn, session, f"order:{order.id}", "approve")
        order = await order_action(turn, session, "approve", order)
        if order.assignee:
            after = ts.APPROVED_OWNED.format(assignee=await desk.member_name(session, order.assignee))
        else:
            after = ts.APPROVED_WAITING.format(number=number)
        turn.say(ts.APPROVED, number=number, next=after)


@router.command("驳回", "reject")
async def on_reject(turn: Turn) -> None:
    """驳回 <单号> <原因>: the customer is asked to redo their materials."""
    number, reason = turn.args()
    if not reason:
        raise Usage
    async with turn.change(await turn.customer_of(number=number)) as session:
        await reject(turn, session, await desk.order_by_number(session, number), reason)


@router.command("接单", "claim")
async def on_claim(turn: Turn) -> None:
    """接单 <单号>: take an order nobody owns."""
    number, _ = turn.args()
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await settle(turn, session, f"order:{order.id}", "claim")
        order = await order_action(turn, session, "claim", order)
        ready = order.status == OrderStatus.ASSIGNED
        turn.say(
            ts.CLAIMED,
            number=number,
            next=(ts.CLAIMED_READY if ready else ts.CLAIMED_WAITING).format(number=number),
        )


@router.command("分配", "assign")
async def on_assign(turn: Turn) -> None:
    """分配 <单号> <成员> (admins): give the order to someone (by name or userid)."""
    number, who = turn.args()
    if not who:
        raise Usage
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        to = await staff.find_member(session, who)
        if to is None:
            raise DomainError("no_member", who=who)
        order, previous = await staff.reassign(
            session,
            order_id=order.id,
            member=turn.me,
            to=to,
            notify=order_notice,
            now=turn.now,
            tell=lambda o, m, how: desk.assigned_notice(o, m, how, by=turn.me.name),
        )
        if previous and previous not in (turn.userid, to.userid):
            away = ts.REASSIGNED_AWAY.format(number=number, by=turn.me.name, name=to.name)
            turn.out += desk.to_staff(previous, away)
        turn.say(ts.ASSIGNED, number=number, name=to.name)


async def my_only(turn: Turn, command: str, status: OrderStatus) -> str:
    """The number typed, or — with none — the one order of mine in `status`; else which one?"""
    if turn.rest.strip():
        return turn.args()[0]
    async with turn.read() as session:
        mine = [o for o in await staff.queue_of(session, turn.userid) if o.status == status]
    if len(mine) == 1:
        return mine[0].number
    if not mine:
        raise DomainError("none_of_mine", command=command, status=status.value)
    numbers = "\n".join(f"· {o.number}" for o in mine[:10])
    raise DomainError("which_of_mine", command=command, numbers=numbers, example=mine[0].number)


@router.command("开始", "start")
async def on_start(turn: Turn) -> None:
    """开始 [单号]: 已分配 → 执行中 (without a number: my one order waiting to start)."""
    number = await my_only(turn, "开始", OrderStatus.ASSIGNED)
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        await staff.start(session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now)
        turn.say(ts.STARTED, number=number)


@router.command("发布", "publish")
async def on_publish(turn: Turn) -> None:
    """发布 <单号> <链接> [标题]: a published piece; the customer gets the link."""
    number, rest = turn.args()
    url, title = pair(rest)
    if not url:
        raise Usage
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        title = title.strip() or await desk.items_title(session, order.id, first_only=True)
        order, piece = await staff.publish(
            session, order_id=order.id, member=turn.me, url=url, title=title, now=turn.now
        )
        turn.out += desk.published_notice(order, piece)
        turn.say(ts.PUBLISHED, number=number, url=piece["url"])


@router.command("完成", "complete")
async def on_complete(turn: Turn) -> None:
    """完成 [单号]: 执行中 → 已完成 (the owner has room for the next one)."""
    number = await my_only(turn, "完成", OrderStatus.IN_PROGRESS)
    async with turn.change() as session:
        order = await desk.order_by_number(session, number)
        order = await staff.complete(
            session, order_id=order.id, member=turn.me, notify=order_notice, now=turn.now
        )
        turn.out += await results.after_completion(session, order)  # the report, the ask for a review
        turn.say(ts.COMPLETED, number=number)
    turn.hand_out_later()
    turn.wake_later(creators.RELEASE_JOB)  # a freeze of 0 days releases its commissions now
