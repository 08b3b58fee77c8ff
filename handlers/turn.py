"""Running one handler for one event, with the single error path of the project."""

from __future__ import annotations

import logging

from flows import texts
from flows.engine import Form, OrderForm
from flows.review import ResubmitForm
from handlers.context import Ctx, Reply, UserFacingError
from handlers.menu import CLICK_COMMANDS
from handlers.router import Router, normalise
from store.turns import FlowState

log = logging.getLogger(__name__)


def command_of(kind: str, name: str, text: str, event_key: str) -> str | None:
    """Typed text, or the command a menu button stands for."""
    if kind == "text":
        return normalise(text)
    if kind == "event" and name == "click":
        return CLICK_COMMANDS.get(event_key)
    return None


async def run(router: Router, ctx: Ctx, before: FlowState) -> str:
    """Dispatch to the first matching route. Returns the route name (for logs and metrics).
    `before`: the state as the turn found it (ctx.state is a copy the handler may change)."""
    route = router.resolve(ctx)
    if route is None:
        log.info("no route", extra={"event": ctx.event.name, "openid": ctx.openid})
        return "none"
    try:
        await route.handler(ctx)
    except UserFacingError as exc:
        _refuse(ctx, before, _safe_format(ctx, exc))
    except Exception:
        # People never see a traceback: they get an apology, the log gets the details.
        log.exception("handler failed", extra={"route": route.name, "openid": ctx.openid})
        _refuse(ctx, before, ctx.fmt(texts.SORRY))
        return route.name + ":error"
    _remind_of_form(ctx, route.name, was_in=_form_of(before))
    if not route.name.startswith("understand"):  # misunderstandings count only in a row
        ctx.state.data.pop("misunderstood", None)
    return route.name


FORM_ROUTES = (
    "form.",
    "form_answers.",
    "form_understood.",
    "understand_sentence.",
    "resubmit.",
    "resubmit_answers.",
)


def _form_of(state: FlowState) -> type[Form] | None:
    """The kind of form the person is filling in, if any (an order, or materials sent back)."""
    return next((kind for kind in (OrderForm, ResubmitForm) if kind.active(state)), None)


def _remind_of_form(ctx: Ctx, route: str, *, was_in: type[Form] | None) -> None:
    """Asked something else in the middle of a form: answer it, then say how to go back."""
    if route.startswith(FORM_ROUTES) or was_in is None or _form_of(ctx.state) is not was_in:
        return
    last = ctx.replies[-1] if ctx.replies else None
    if last is not None and last.kind == "text":
        last.payload["content"] += was_in(ctx.state).paused_hint()


def _refuse(ctx: Ctx, before: FlowState, text: str) -> None:
    """Keep the state as it was; the only reply is the explanation."""
    ctx.state = before.copy()
    ctx.later.clear()
    ctx.replies[:] = [Reply("text", {"content": text})]


def _safe_format(ctx: Ctx, exc: UserFacingError) -> str:
    """A refusal with a placeholder its raiser did not fill still gets an answer (and a log line)."""
    try:
        return ctx.fmt(exc.text, **exc.fmt)
    except (KeyError, IndexError, ValueError):
        log.exception("refusal text could not be formatted", extra={"text": exc.text})
        return ctx.fmt(texts.SORRY)
