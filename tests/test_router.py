"""The router's shortcut (a turn tries only the routes its kind and command may match) picks the same
route as trying every route in order, for any message in any situation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine import OrderForm
from handlers import build_router
from handlers.context import Ctx
from handlers.events import Event
from handlers.menu import CLICK_COMMANDS
from handlers.router import Route
from handlers.turn import command_of
from settings import load_settings
from store.models import utcnow
from store.turns import FlowState

ROUTER = build_router()
SETTINGS = load_settings(database_url="sqlite+aiosqlite:///:memory:")

# Every word and prefix the routes know, with what people put after them, and text they do not know.
_KNOWN = sorted(
    {w for r in ROUTER.routes for w in (r.only or ())} | {h for r in ROUTER.routes for h in r.heads or ()}
)
_TAILS = ["", " ", " 2", "2", " 咖啡探店", "一下", " 20261122-0042", "有哪些", "500"]
_FREE = [
    "在吗",
    "你好呀",
    "我想在抖音找达人",
    "怎么付款",
    "b站",
    "?",
    "？？",
    "。。。",
    "1",
    "12",
    "订单 20261122-0042",
]


def _state(kind: str, now: dt.datetime) -> FlowState:
    state = FlowState()
    if kind.startswith("form"):
        OrderForm.begin(state, [] if kind == "form_confirm" else ["brand", "link"])
    if kind == "resubmit":
        state.flow, state.step = "resubmit", "brand"
        state.data["form"] = {"keys": ["brand"], "answers": {}, "order_id": 1, "number": "20261122-0042"}
    if kind in ("relay", "form_relay"):
        state.data["relay"] = {
            "order_id": 1,
            "number": "20261122-0042",
            "last_at": now.isoformat(),
            "acked_at": None,
        }
    if kind in ("catalog", "orders", "flash", "choice"):
        state.data["list"] = kind
    return state


_STATES = [
    "none",
    "form",
    "form_confirm",
    "form_relay",
    "resubmit",
    "relay",
    "catalog",
    "orders",
    "flash",
    "choice",
]


@st.composite
def _events(draw: Any) -> tuple[Event, str | None]:
    now = utcnow()
    kind = draw(
        st.sampled_from(["text", "text", "text", "click", "subscribe", "scan", "image", "voice", "view"])
    )
    text, key = "", ""
    if kind == "text":
        text = draw(
            st.one_of(
                st.builds(str.__add__, st.sampled_from(_KNOWN), st.sampled_from(_TAILS)),
                st.sampled_from(_FREE),
                st.text(max_size=12),
            )
        )
    elif kind == "click":
        key = draw(st.sampled_from([*CLICK_COMMANDS, "flash_SALE1", "unknown"]))
    elif kind in ("subscribe", "scan"):
        key = draw(st.sampled_from(["", "inv_ab12", "flash_SALE1", "flash_SALE1@group", "other"]))
    name = kind
    if kind in ("click", "subscribe", "scan", "view"):
        kind = "event"
    event = Event("gh_test", "o_person", kind, name, "msg:1", now, text=text, event_key=key)
    return event, command_of(kind, name, text, key)


def _every_route(ctx: Ctx) -> Route[Ctx] | None:
    return next((r for r in ROUTER.routes if r.matches(ctx)), None)


@settings(max_examples=3000, deadline=None)
@given(_events(), st.sampled_from(_STATES))
def test_the_route_tried_first_is_the_route_every_route_in_order_would_pick(
    drawn: tuple[Event, str | None], situation: str
) -> None:
    event, command = drawn
    state = _state(situation, event.created_at)
    ctx = Ctx(
        event=event,
        settings=SETTINGS,
        sessionmaker=None,  # type: ignore[arg-type]  # predicates never read
        known_user=True,
        subscribed=True,
        state=state,
        command=command,
    )
    expected, got = _every_route(ctx), ROUTER.resolve(ctx)
    assert (got.name if got else None) == (expected.name if expected else None), (
        event.text,
        command,
        situation,
    )
