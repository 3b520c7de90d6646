"""Initial schema: registry, request log, tags, scores, groups.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AUTO = {"sqlite_autoincrement": True}


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "prompt_templates",
        _id(),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        **AUTO,
    )
    op.create_table(
        "prompt_versions",
        _id(),
        sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("prompt_template", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("commit_message", sa.String(72), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("template_id", "version", name="uq_prompt_versions_template_version"),
        **AUTO,
    )
    op.create_table(
        "release_labels",
        _id(),
        sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
        sa.Column("label", sa.String(512), nullable=False),
        sa.Column("version_id", Id, sa.ForeignKey("prompt_versions.id"), nullable=False),
        sa.UniqueConstraint("template_id", "label", name="uq_release_labels_template_label"),
        **AUTO,
    )
    op.create_index("ix_release_labels_version", "release_labels", ["version_id"])
    op.create_index("ix_release_labels_label", "release_labels", ["label"])
    op.create_table(
        "groups",
        _id(),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        **AUTO,
    )
    op.create_table(
        "requests",
        _id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("prompt_version_id", Id, sa.ForeignKey("prompt_versions.id"), nullable=True),
        sa.Column("prompt_input_variables", sa.JSON(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("function_name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("request_start_time", sa.DateTime(), nullable=False),
        sa.Column("request_end_time", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("api_type", sa.Text(), nullable=True),
        sa.Column("group_id", Id, sa.ForeignKey("groups.id"), nullable=True),
        sa.Column("idempotency_key", sa.String(256), nullable=True, unique=True),
        **AUTO,
    )
    op.create_index("ix_requests_prompt_version", "requests", ["prompt_version_id", "id"])
    op.create_index("ix_requests_status", "requests", ["status", "id"])
    op.create_index("ix_requests_start_time", "requests", ["request_start_time"])
    op.create_index("ix_requests_group", "requests", ["group_id"])
    op.create_table(
        "request_tags",
        sa.Column("tag", sa.String(512), primary_key=True),
        sa.Column("request_id", Id, sa.ForeignKey("requests.id"), primary_key=True),
    )
    op.create_index("ix_request_tags_request", "request_tags", ["request_id"])
    op.create_table(
        "scores",
        _id(),
        sa.Column("request_id", Id, sa.ForeignKey("requests.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("request_id", "name", name="uq_scores_request_name"),
        **AUTO,
    )
    op.create_index("ix_scores_name_score", "scores", ["name", "score", "request_id"])


def downgrade() -> None:
    """Drop everything."""
    for table in (
        "scores",
        "request_tags",
        "requests",
        "groups",
        "release_labels",
        "prompt_versions",
        "prompt_templates",
    ):
        op.drop_table(table)
