"""Invoices in chat: save a title (抬头 + 税号), ask for an e-invoice on a completed order, see progress."""

from __future__ import annotations

import re

from flows import texts
from flows.format import yuan
from flows.staff import staff_alert
from handlers.context import Ctx, UserFacingError, refusals
from handlers.router import Router
from store import orders, payments
from store.outbox import enqueue

router = Router("invoices")

NUMBER = re.compile(r"\b(\d{8}-\d{4})\b")
_TAX_NO = re.compile(r"^[0-9A-Z]{15,20}$")


@router.text("发票", "开票", "我的发票")
async def on_invoices(ctx: Ctx) -> None:
    """How to get an invoice, the saved titles and the invoices asked for."""
    async with ctx.read() as session:
        titles = await payments.invoice_titles(session, account=ctx.event.account, openid=ctx.openid)
        invoices = await payments.invoices_with_orders(session, account=ctx.event.account, openid=ctx.openid)
    title_lines = "\n".join(
        f"{i}. {t.title} {t.tax_no or ''}".rstrip() for i, t in enumerate(titles, start=1)
    )
    invoice_lines = "\n".join(
        texts.INVOICE_LINE.format(
            number=number,
            title=inv.title,
            amount=yuan(inv.amount_fen),
            status=texts.INVOICE_STATUS.get(inv.status, inv.status),
        )
        + (f" {inv.url}" if inv.url else "")
        for inv, number in invoices
    )
    ctx.say(
        texts.INVOICE_HELP,
        titles=texts.INVOICE_TITLES.format(lines=title_lines) if titles else "",
        invoices=texts.INVOICE_LIST.format(lines=invoice_lines) if invoices else "",
    )


@router.prefix("发票抬头", "添加抬头")
async def on_save_title(ctx: Ctx) -> None:
    """'发票抬头 星推科技有限公司 91310000MA1FL0XXXX' (or just a name, for a personal invoice)."""
    parts = ctx.event.text.split()[1:]
    tax_no = parts[-1].upper() if len(parts) > 1 and _TAX_NO.match(parts[-1].upper()) else ""
    title = " ".join(parts[:-1] if tax_no else parts)
    if not title:
        raise UserFacingError(texts.INVOICE_TITLE_USAGE)
    async with ctx.transaction() as session:
        with refusals():
            saved = await payments.save_invoice_title(
                session, account=ctx.event.account, openid=ctx.openid, title=title, tax_no=tax_no
            )
    ctx.say(
        texts.INVOICE_TITLE_SAVED,
        title=saved.title,
        tax_no=texts.INVOICE_TAX_NO.format(tax_no=saved.tax_no) if saved.tax_no else "",
    )


@router.prefix("开发票", "申请发票")
async def on_request(ctx: Ctx) -> None:
    """'开发票 20261122-0042 [抬头编号]' for a completed order."""
    match = NUMBER.search(ctx.argument)
    if not match:
        raise UserFacingError(texts.ORDER_USAGE, command="开发票")
    number = match.group(1)
    pick = NUMBER.sub("", ctx.argument).strip()
    async with ctx.transaction() as session:
        titles = await payments.invoice_titles(session, account=ctx.event.account, openid=ctx.openid)
        if not titles:
            raise UserFacingError(texts.INVOICE_NO_TITLE)
        if len(titles) > 1 and not pick.isdigit():
            lines = "\n".join(f"{i}. {t.title}" for i, t in enumerate(titles, start=1))
            raise UserFacingError(texts.INVOICE_PICK_TITLE, number=number, lines=lines)
        title = titles[int(pick) - 1] if pick.isdigit() and 1 <= int(pick) <= len(titles) else titles[0]
        view = await orders.find_order(session, account=ctx.event.account, openid=ctx.openid, number=number)
        if view is None:
            raise UserFacingError(texts.ORDER_NOT_FOUND, number=number)
        with refusals():
            invoice = await payments.request_invoice(
                session,
                account=ctx.event.account,
                openid=ctx.openid,
                order_id=view.order.id,
                title_id=title.id,
            )
        alert = texts.STAFF_INVOICE_REQUESTED.format(
            number=number, amount=yuan(invoice.amount_fen), title=invoice.title, tax_no=invoice.tax_no or "—"
        )
        await enqueue(session, *staff_alert(ctx.settings, alert, key=f"invoice:{invoice.id}"))
    ctx.say(texts.INVOICE_REQUESTED, number=number, title=invoice.title, amount=yuan(invoice.amount_fen))
