"""Prometheus metrics, in a registry of the app's own (no import-time globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

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

    def track_outbox_depth(self, depth: Callable[[], Awaitable[int]]) -> None:
        self._depth = depth

    def outbox_outcome(self, channel: str, outcome: str) -> None:
        """Observer for the outbox dispatcher: sent | template | retry | failed."""
        if outcome in ("sent", "template"):
            self.outbox_sent.labels(channel).inc()
        else:
            self.outbox_failures.labels(channel, "yes" if outcome == "failed" else "no").inc()

    async def render(self) -> bytes:
        if self._depth is not None:
            self.outbox_depth.set(await self._depth())
        return generate_latest(self.registry)
