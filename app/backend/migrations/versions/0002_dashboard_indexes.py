"""Dashboard indexes: per-version counts by status, activity over time, average scores.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Covering indexes for the prompt page's statistics."""
    # Requests and error rate per version: a count over an index, no table reads.
    op.create_index("ix_requests_version_status", "requests", ["prompt_version_id", "status"])
    # Requests per day of a prompt's versions.
    op.create_index(
        "ix_requests_version_start", "requests", ["prompt_version_id", "request_start_time"]
    )
    # Average scores per version: the join from requests reads scores from the index alone.
    op.create_index("ix_scores_request_name_score", "scores", ["request_id", "name", "score"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_scores_request_name_score", table_name="scores")
    op.drop_index("ix_requests_version_start", table_name="requests")
    op.drop_index("ix_requests_version_status", table_name="requests")
