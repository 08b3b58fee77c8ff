"""flash sales: each position's WeChat Pay order and pay QR, made before the sale opens

Revision ID: 0009_flash_pay_slots
Revises: 0008_flash_scenes
Create Date: 2026-12-07 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0009_flash_pay_slots"
down_revision = "0008_flash_scenes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flash_pay_slots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sale_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("media_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sale_id"], ["flash_sales.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("payment_id"),
        sa.UniqueConstraint("sale_id", "position", name="uq_flash_pay_slots_position"),
    )


def downgrade() -> None:
    op.drop_table("flash_pay_slots")
