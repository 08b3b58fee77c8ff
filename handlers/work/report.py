"""What there is: 帮助 (every command) · 待办 (my queue) · 今日 (today's figures)."""

from __future__ import annotations

from flows import desk
from flows import texts_staff as ts
from handlers.work.turn import StaffRouter, Turn

router = StaffRouter("report")


@router.command("帮助", "help")
async def on_help(turn: Turn) -> None:
    """帮助: every command."""
    turn.send(ts.HELP)


@router.command("待办", "queue")
async def on_queue(turn: Turn) -> None:
    """待办: my open orders (and, for reviewers, what waits for review)."""
    async with turn.read() as session:
        turn.send(await desk.queue_text(session, turn.me, turn.now))


@router.command("今日", "today")
async def on_today(turn: Turn) -> None:
    """今日: today's figures so far."""
    async with turn.read() as session:
        turn.send(await desk.today(session, turn.now))
