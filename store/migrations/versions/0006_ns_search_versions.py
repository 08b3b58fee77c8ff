"""what the search index reads before each search: packages.updated_at; services.updated_at and
packages.stock indexed

Revision ID: 0006_ns
Revises: 0005
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0006_ns"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_services_updated_at"), ["updated_at"], unique=False)
    # Nullable: SQLite cannot add a column with a non-constant default; older rows stay NULL.
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("updated_at", store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_packages_updated_at"), ["updated_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_packages_stock"), ["stock"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("packages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_packages_stock"))
        batch_op.drop_index(batch_op.f("ix_packages_updated_at"))
        batch_op.drop_column("updated_at")
    with op.batch_alter_table("services", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_services_updated_at"))
