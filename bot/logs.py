"""Structured logs: one JSON object a line, each carrying the request id of the request it belongs to."""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Request ids: this process's random prefix and a serial (uuid4 read the OS's randomness per request).
_RUN = uuid.uuid4().hex[:8]
_SERIAL = itertools.count(1)


def _new_run() -> None:
    global _RUN
    _RUN = uuid.uuid4().hex[:8]


os.register_at_fork(after_in_child=_new_run)  # a forked worker must not repeat its parent's ids

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_levels(level)


# Loggers held at WARNING whatever the level: request lines carry signed query strings (openid,
# signatures, download links), and the SQL driver's debug lines carry parameters (people's answers).
QUIET = ("aiohttp.access", "aiosqlite", "alembic")


def set_levels(level: int) -> None:
    """The root level, with QUIET loggers kept at WARNING."""
    logging.getLogger().setLevel(level)
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id") or f"{_RUN}{next(_SERIAL):08x}"
    token = request_id.set(rid)
    try:
        response = await handler(request)
        response.headers["X-Request-Id"] = rid
        return response
    finally:
        request_id.reset(token)
