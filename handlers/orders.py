"""My orders: the list by status, an order's detail with progress and timeline, cancel, ask for a refund."""

from __future__ import annotations

import re
from typing import Any

from flows import texts
from flows.format import bar, yuan
from flows.notices import quiet
from flows.requirements import BEIJING, STEPS, show
from flows.staff import staff_alert
from handlers.context import Ctx, UserFacingError, refusals
from handlers.router import Router
from store import orders, payments, results
from store.orders import PROGRESS, OrderStatus, OrderView
from store.outbox import enqueue

router = Router("orders")
picks = Router("orders_picks")

NUMBER = re.compile(r"\b(\d{8}-\d{4})\b")
PER_PAGE = 5


def _listing(ctx: Ctx) -> dict[str, Any]:
    return ctx.state.data.setdefault("orders", {})


def _number(ctx: Ctx, command: str) -> str:
    match = NUMBER.search(ctx.argument)
    if not match:
        raise UserFacingError(texts.ORDER_USAGE, command=command)
    return match.group(1)


@router.prefix("我的订单", "订单列表", "查订单")
async def on_list(ctx: Ctx) -> None:
    """'我的订单' or '我的订单 待支付': newest first, five a page."""
    argument = (ctx.command or "").split(" ", 1)[1] if " " in (ctx.command or "") else ""
    status = next((s for s in OrderStatus if s.value == argument.strip()), None)
    await show_orders(ctx, status, 1)


async def show_orders(ctx: Ctx, status: OrderStatus | None, page: int) -> None:
    async with ctx.read() as session:
        found, total = await orders.order_page(
            session, account=ctx.event.account, openid=ctx.openid, status=status, page=page, per_page=PER_PAGE
        )
    pages = max(1, -(-total // PER_PAGE))
    _listing(ctx).update(
        status=status.value if status else None, page=page, pages=pages, numbers=[o.number for o in found]
    )
    ctx.state.data["list"] = "orders"
    if not found:
        ctx.say(texts.NO_ORDERS_WITH_STATUS if status else texts.NO_ORDERS, status=status or "")
        return
    lines = [
        texts.ORDERS_LINE.format(
            n=i, number=o.number, status=o.status, total=yuan(o.total_fen), title=_title(o)
        )
        for i, o in enumerate(found, start=1)
    ]
    head = texts.ORDERS_HEAD.format(
        status=f"（{status}）" if status else "",
        total=total,
        page=f"（第 {page}/{pages} 页）" if pages > 1 else "",
    )
    more = texts.RESULTS_MORE if page < pages else ""
    ctx.say(head + "\n".join(lines) + texts.ORDERS_FOOT.format(more=more))


def _title(order: orders.ListedOrder) -> str:
    """'小鹿爱咖啡' or '小鹿爱咖啡 等 3 项'."""
    if order.first_title is None:
        return ""
    lines = order.lines
    return (
        order.first_title
        if lines == 1
        else texts.ORDERS_TITLE_MORE.format(title=order.first_title, lines=lines)
    )


@router.said(("下一页", "更多", "上一页"), when=lambda ctx: ctx.state.data.get("list") == "orders")
async def on_page(ctx: Ctx) -> None:
    """Paging through the order list."""
    state = _listing(ctx)
    step = -1 if ctx.command == "上一页" else 1
    page = state.get("page", 1) + step
    if page < 1 or page > state.get("pages", 1):
        ctx.say(texts.NO_PREVIOUS_PAGE if step < 0 else texts.NO_MORE_PAGES)
        return
    status = OrderStatus(state["status"]) if state.get("status") else None
    await show_orders(ctx, status, page)


@router.when(
    lambda ctx: bool(ctx.command) and NUMBER.fullmatch((ctx.command or "").removeprefix("订单 ")) is not None
)
async def on_number(ctx: Ctx) -> None:
    """An order number on its own (or '订单 20261122-0042') shows that order."""
    await show_order(ctx, (ctx.command or "").removeprefix("订单 "))


@picks.when(lambda ctx: ctx.state.data.get("list") == "orders" and (ctx.command or "").isdigit())
async def on_pick(ctx: Ctx) -> None:
    """A number from the order list."""
    numbers: list[str] = _listing(ctx).get("numbers", [])
    n = int(ctx.command or 0)
    if not 1 <= n <= len(numbers):
        raise UserFacingError(texts.PICK_OUT_OF_RANGE, n=n, max=len(numbers))
    await show_order(ctx, numbers[n - 1])


async def show_order(ctx: Ctx, number: str) -> None:
    async with ctx.read() as session:
        view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
        back = await payments.refunded(session, view.order.id, statuses=("succeeded",)) if view else 0
        measured = bool(view and await results.with_results(session, [view.order.id]))
    if view is None:
        raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
    ctx.state.data["last_order"] = number  # 取消 / 退款 / 付款 said next mean this one
    ctx.say(render_order(view, refunded_fen=back, measured=measured))


def render_order(view: OrderView, *, refunded_fen: int = 0, measured: bool = False) -> str:
    order = view.order
    status = OrderStatus(order.status)
    if status in PROGRESS:
        progress = f"进度 {bar(PROGRESS.index(status) + 1, len(PROGRESS))} {status}"
    else:
        progress = f"状态：{status}" + (f"（{order.refund_reason}）" if order.refund_reason else "")
    lines = "\n".join(
        f"{i.service_title} {i.package_name} × {i.quantity} {yuan(i.unit_price_fen * i.quantity)}"
        for i in view.items
    )
    answers = "".join(
        f"{STEPS[k].label}：{show(k, v)}\n" for k, v in order.requirements.items() if k in STEPS
    )
    deliverables = ""
    if order.deliverables:
        items = "\n".join(f"· {d.get('title', '')} {d.get('url', '')}".rstrip() for d in order.deliverables)
        deliverables = texts.ORDER_DELIVERABLES.format(items=items)
    if measured:  # the delivery figures are in: the report is one word away
        deliverables += texts.ORDER_REPORT_HINT.format(number=order.number)
    timeline = "\n".join(
        f"{e.at.astimezone(BEIJING):%m-%d %H:%M} {e.to_status}" + (f"（{e.reason}）" if e.reason else "")
        for e in view.events
    )
    actions = ""
    if status == OrderStatus.PENDING_PAYMENT:
        actions = texts.ORDER_ACTION_UNPAID.format(number=order.number)
    elif status in orders.PAID:
        actions = texts.ORDER_ACTION_PAID.format(number=order.number)
    return texts.ORDER_DETAIL.format(
        number=order.number,
        status=status,
        progress=progress,
        lines=lines,
        total=yuan(order.total_fen),
        refunded=texts.ORDER_REFUNDED.format(amount=yuan(refunded_fen)) if refunded_fen else "",
        answers=answers,
        deliverables=deliverables,
        timeline=timeline,
        actions=actions,
    ).rstrip()


@router.prefix("取消订单")
async def on_cancel(ctx: Ctx) -> None:
    """'取消订单 20261122-0042': an unpaid order is cancelled and its stock released."""
    number = _number(ctx, "取消订单")
    async with ctx.transaction() as session:
        view = await _own(session, ctx, number)
        if view.order.status != OrderStatus.PENDING_PAYMENT:
            raise UserFacingError(texts.ORDER_NOT_CANCELLABLE, number=number, status=view.order.status)
        with refusals():
            await orders.cancel_order(
                session,
                order_id=view.order.id,
                actor=f"customer:{ctx.openid}",
                reason=texts.CANCEL_REASON_CUSTOMER,
                notify=quiet,
                gate=ctx.services.stock_gate,
            )
    ctx.say(texts.ORDER_CANCELLED, number=number)


def _wants_refund(ctx: Ctx) -> bool:
    command = ctx.command or ""
    return command.startswith("申请退款") or (
        command.startswith("退款") and NUMBER.search(command) is not None
    )


@router.prefix("申请退款", "退款", when=_wants_refund)
async def on_refund(ctx: Ctx) -> None:
    """'申请退款 20261122-0042 活动延期了': a paid order goes to 退款中 for staff."""
    number = _number(ctx, "申请退款")
    reason = NUMBER.sub("", ctx.argument).strip(" ，,：:")
    if not reason:
        raise UserFacingError(texts.REFUND_NEEDS_REASON, number=number)
    async with ctx.transaction() as session:
        view = await _own(session, ctx, number)
        if view.order.status not in orders.PAID:
            raise UserFacingError(texts.REFUND_NOT_ALLOWED, number=number, status=view.order.status)
        with refusals():
            await orders.request_refund(
                session, order_id=view.order.id, openid=ctx.openid, reason=reason[:200], notify=quiet
            )
        alert = texts.STAFF_REFUND_REQUESTED.format(
            number=number, total=yuan(view.order.total_fen), reason=reason[:200]
        )
        await enqueue(session, *staff_alert(ctx.settings, alert, key=f"refund-request:{view.order.id}"))
    ctx.say(texts.REFUND_REQUESTED, number=number)


async def _own(session: Any, ctx: Ctx, number: str) -> OrderView:
    view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
    if view is None:
        raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
    return view
