"""results: delivery figures per published piece, reviews, the funnel's steps

Revision ID: 0007_results
Revises: 0006_flash
Create Date: 2026-12-07 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import store.models

revision = "0007_results"
down_revision = "0006_flash"
branch_labels = None
depends_on = None

METRICS = ("exposure", "reads", "likes", "comments", "favorites", "shares", "clicks", "conversions")


def upgrade() -> None:
    op.create_table(
        "delivery_stats",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("piece", sa.Integer(), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        *(sa.Column(m, sa.BigInteger(), nullable=True) for m in METRICS),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_stats", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_stats_order", ["order_id", "piece", "at"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_reviews_score"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_at"), ["at"], unique=False)

    op.create_table(
        "funnel_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.create_index("ix_funnel_events_step_at", ["step", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("funnel_events", schema=None) as batch_op:
        batch_op.drop_index("ix_funnel_events_step_at")
    op.drop_table("funnel_events")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_at"))
    op.drop_table("reviews")
    with op.batch_alter_table("delivery_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_stats_order")
    op.drop_table("delivery_stats")
