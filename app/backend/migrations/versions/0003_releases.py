"""A/B releases: the splits of release labels and the history of every label change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AUTO = {"sqlite_autoincrement": True}


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


def upgrade() -> None:
    """Create `release_splits` and `release_history`."""
    op.create_table(
        "release_splits",
        _id(),
        sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
        sa.Column("label", sa.String(512), nullable=False),
        sa.Column("release_id", sa.String(64), nullable=False),
        sa.Column("control", sa.Integer(), nullable=False),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=True),
        sa.Column("guardrail", sa.Boolean(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("looks", sa.JSON(), nullable=False),
        sa.UniqueConstraint("template_id", "label", name="uq_release_splits_template_label"),
        **AUTO,
    )
    op.create_table(
        "release_history",
        _id(),
        sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
        sa.Column("label", sa.String(512), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        **AUTO,
    )
    op.create_index(
        "ix_release_history_template_label", "release_history", ["template_id", "label", "id"]
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_release_history_template_label", table_name="release_history")
    op.drop_table("release_history")
    op.drop_table("release_splits")
