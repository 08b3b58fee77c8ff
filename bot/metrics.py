"""Prometheus metrics, in a registry of the app's own (no import-time globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "chatorder_messages_in", "Messages and events accepted from WeChat", ["kind"], registry=r
        )
        self.duplicates = Counter("chatorder_duplicates", "WeChat retries answered from the log", registry=r)
        self.replies = Counter(
            "chatorder_replies", "Answers by how they travelled (passive, outbox, none)", ["mode"], registry=r
        )
        self.rejected = Counter(
            "chatorder_requests_rejected", "Webhook requests refused", ["reason"], registry=r
        )
        self.handler_errors = Counter("chatorder_handler_errors", "Handlers that raised", registry=r)
        self.latency = Histogram(
            "chatorder_webhook_seconds",
            "Time from request to response on /wechat/mp",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 4, 5),
            registry=r,
        )
        self.outbox_sent = Counter(
            "chatorder_outbox_sent", "Outbox messages delivered", ["channel"], registry=r
        )
        self.outbox_failures = Counter(
            "chatorder_outbox_failures", "Outbox send attempts that failed", ["channel", "final"], registry=r
        )
        self.outbox_depth = Gauge("chatorder_outbox_depth", "Outbox messages waiting to be sent", registry=r)
        self._depth: Callable[[], Awaitable[int]] | None = None
        self.flash_units = Gauge(
            "chatorder_flash_units",
            "Units of running flash sales: available, held, paid",
            ["sale", "state"],
            registry=r,
        )
        self.flash_rate = Gauge(
            "chatorder_flash_takes_per_minute", "Units taken in the last minute", ["sale"], registry=r
        )
        self.flash_conversion = Gauge(
            "chatorder_flash_conversion_percent", "Of those who took a unit, who paid", ["sale"], registry=r
        )
        self._flash: Callable[[], Awaitable[list[tuple[str, Any, int]]]] | None = None
        # Labelled children kept per value: labels() takes a lock and builds a key on every call,
        # and these two are counted on every message.
        self._kinds: dict[str, Any] = {}
        self._modes: dict[str, Any] = {}

    def message_in(self, kind: str) -> None:
        child = self._kinds.get(kind) or self._kinds.setdefault(kind, self.messages_in.labels(kind))
        child.inc()

    def reply(self, mode: str) -> None:
        child = self._modes.get(mode) or self._modes.setdefault(mode, self.replies.labels(mode))
        child.inc()

    def track_outbox_depth(self, depth: Callable[[], Awaitable[int]]) -> None:
        self._depth = depth

    def track_flash(self, figures: Callable[[], Awaitable[list[tuple[str, Any, int]]]]) -> None:
        """(code, store.flash.Figures, takes in the last minute) of the running sales, read at scrape time."""
        self._flash = figures

    def outbox_outcome(self, channel: str, outcome: str) -> None:
        """Observer for the outbox dispatcher: sent | template | retry | failed."""
        if outcome in ("sent", "template"):
            self.outbox_sent.labels(channel).inc()
        else:
            self.outbox_failures.labels(channel, "yes" if outcome == "failed" else "no").inc()

    async def render(self) -> bytes:
        if self._depth is not None:
            self.outbox_depth.set(await self._depth())
        if self._flash is not None:
            await self._render_flash()
        return generate_latest(self.registry)

    async def _render_flash(self) -> None:
        assert self._flash is not None
        for gauge in (self.flash_units, self.flash_rate, self.flash_conversion):
            gauge.clear()  # a sale that ended drops out
        for code, f, rate in await self._flash():
            for state, n in (("available", f.available), ("held", f.held), ("paid", f.paid)):
                self.flash_units.labels(code, state).set(n)
            self.flash_rate.labels(code).set(rate)
            self.flash_conversion.labels(code).set(f.conversion_pct)
