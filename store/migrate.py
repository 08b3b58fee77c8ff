"""Alembic, driven from code: `chatorder db upgrade`, the demo and the tests all call upgrade()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision`."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(config(sync), revision))


async def status(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    """(applied heads, heads in the code): equal when the schema is current."""

    def _status(sync: Connection) -> tuple[set[str], set[str]]:
        current = set(MigrationContext.configure(sync).get_current_heads())
        return current, set(ScriptDirectory.from_config(config()).get_heads())

    async with engine.connect() as conn:
        return await conn.run_sync(_status)
