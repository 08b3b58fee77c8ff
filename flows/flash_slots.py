"""Pay slots: a flash sale's WeChat Pay orders and pay QRs, made in the minutes before it opens.

A winner of the rush used to wait for WeChat Pay's unified order, the QR's drawing and its upload —
about half of a winner's CPU, all of it in the sale's busiest second. A NATIVE code_url names no
payer, so each position's can be made ahead at its tier price; the take only gives the payment to
its order (store.flash.claim_slot). Slots never given out are closed once the sale is over. Without a
ready slot (made too late, or WeChat Pay too slow to answer beforehand) a take makes its payment as
before: slots make the rush cheaper, never possible.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.pay import PayClient
from flows import texts
from flows.payments import Upload, close_at_wechat, pay_notify_url, upload_pay_qr
from settings import Settings
from store import flash
from store.db import writing
from store.models import FlashSale

log = logging.getLogger(__name__)

RETRY_AFTER = dt.timedelta(minutes=1)  # a slot opened this long ago without its QR: finish it again


async def prepare(
    sessionmaker: async_sessionmaker[AsyncSession],
    pay: PayClient,
    upload: Upload,
    settings: Settings,
    now: dt.datetime,
) -> int:
    """Make the slots of sales about to open, finish any a crash left half-made, close those of sales
    that are over; how many slots were made or closed."""
    async with sessionmaker() as session:
        leftovers = await flash.unfinished_slots(session, older_than=now - RETRY_AFTER)
        sales = await flash.sales_to_prepare(session, now)
    made = await _finish(sessionmaker, pay, upload, settings, None, leftovers)
    for sale in sales:
        while True:
            async with writing(sessionmaker), sessionmaker.begin() as session:
                opened = await flash.open_slots(session, sale, now=now)
            if not opened:
                break
            done = await _finish(sessionmaker, pay, upload, settings, sale, opened)
            if done < len(opened):  # WeChat Pay or the upload failing: the next run tries again
                return made + done
            made += done
    async with writing(sessionmaker), sessionmaker.begin() as session:
        closed = await flash.close_slots(session, now)
    for out_trade_no in closed:
        await close_at_wechat(sessionmaker, pay, out_trade_no)
    return made + len(closed)


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    pay: PayClient,
    upload: Upload,
    settings: Settings,
    sale: FlashSale | None,
    slots: list[flash.OpenSlot],
) -> int:
    """Ask WeChat Pay for each slot's code_url, draw and upload its QR; stop at the first failure."""
    # WeChat Pay's body is at most 128 bytes: the sale's title, clipped, is what the payer recognises.
    body = texts.PAY_BODY_FLASH.format(brand=settings.brand, title=sale.title[:20] if sale else "")
    for n, slot in enumerate(slots):
        trade_no = slot.payment.out_trade_no
        try:
            answer = await pay.unified_order(
                out_trade_no=trade_no,
                body=body,
                total_fee=slot.payment.amount_fen,
                trade_type="NATIVE",
                notify_url=pay_notify_url(settings),
                product_id=trade_no,
            )
            media_id = await upload_pay_qr(upload, trade_no, answer["code_url"])
        except Exception:
            log.warning("flash pay slot not made", exc_info=True, extra={"out_trade_no": trade_no})
            return n
        async with writing(sessionmaker), sessionmaker.begin() as session:
            await flash.slot_ready(session, slot.id, code_url=answer["code_url"], media_id=media_id)
    return len(slots)
