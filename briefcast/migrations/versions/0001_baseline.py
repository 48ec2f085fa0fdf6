"""Baseline: the ledger and subscriber tables as metadata.create_all made them.

A database created before migrations existed has exactly these tables; it is
stamped at this revision and upgraded from here.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("edition_id", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("target", sa.String(400), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(64)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("receipt", sa.String(400)),
        sa.Column("error", sa.Text()),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("edition_id", "channel", "target", name="uq_delivery"),
    )
    op.create_table(
        "edition_stories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("edition_id", sa.String(100), nullable=False),
        sa.Column("edition_date", sa.Date(), nullable=False),
        sa.Column("story_key", sa.String(1000), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("edition_id", "story_key", name="uq_edition_story"),
    )
    op.create_table(
        "edition_contents",
        sa.Column("edition_id", sa.String(100), primary_key=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("address_key", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True)),
        sa.Column("bounced_at", sa.DateTime(timezone=True)),
        sa.Column("complained_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for table in ("subscribers", "edition_contents", "edition_stories", "deliveries"):
        op.drop_table(table)
