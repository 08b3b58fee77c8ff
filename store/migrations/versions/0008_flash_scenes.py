"""flash sales: the QR scene (channel) a take or a waitlist place came through

Revision ID: 0008_flash_scenes
Revises: 0007_results
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_flash_scenes"
down_revision = "0007_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: rows from before are "not through a QR", and adding the column is instant.
    with op.batch_alter_table("flash_takes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scene", sa.String(length=32), nullable=True))
    with op.batch_alter_table("flash_waitlist", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scene", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flash_waitlist", schema=None) as batch_op:
        batch_op.drop_column("scene")
    with op.batch_alter_table("flash_takes", schema=None) as batch_op:
        batch_op.drop_column("scene")
