"""Reconciliation: ask WeChat Pay about payments still waiting, and credit the ones it says are paid.

WeChat Pay retries a notification for hours, but a notification can still be lost (our outage outlasted
its retries, a proxy ate it). The doc's remedy is orderquery; the store keeps the result idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bot.channels.pay import PayError

log = logging.getLogger(__name__)

Query = Callable[[str], Awaitable[dict[str, Any]]]
Apply = Callable[[dict[str, Any]], Awaitable[str]]


async def reconcile(*, query: Query, pending: Iterable[tuple[str, int]], apply: Apply) -> int:
    """Query each (out_trade_no, amount_fen); apply the paid ones like notifications; count credited."""
    credited = 0
    for out_trade_no, amount_fen in pending:
        try:
            order = await query(out_trade_no)
        except PayError as exc:
            # One unreachable or unknown order must not stop the rest; the next run asks again.
            log.warning(
                "reconcile: orderquery failed", extra={"out_trade_no": out_trade_no, "code": exc.code}
            )
            continue
        if order.get("trade_state") != "SUCCESS":
            continue
        if order.get("total_fee") != amount_fen:
            # The store decides (mismatch is flagged there); the log line helps whoever looks at it.
            log.warning("reconcile: paid amount differs", extra={"out_trade_no": out_trade_no})
        try:
            outcome = await apply(order)
        except Exception:
            log.exception("reconcile: apply failed", extra={"out_trade_no": out_trade_no})
            continue
        log.info("reconcile: %s", outcome, extra={"out_trade_no": out_trade_no})
        credited += outcome == "credited"
    return credited
