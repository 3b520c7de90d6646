"""Tables of the embedded backend (SQLAlchemy Core); migrations/ creates the same schema.

Times are naive UTC (`DateTime` without zone) on both SQLite and PostgreSQL. Integer ids are
never reused: AUTOINCREMENT on SQLite, identity columns on PostgreSQL. Indexes serve the
dashboard's filters (tag, prompt version, status, score, time) over a newest-first list.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "groups",
    "metadata",
    "prompt_templates",
    "prompt_versions",
    "release_history",
    "release_labels",
    "release_splits",
    "request_tags",
    "requests",
    "scores",
]

metadata = sa.MetaData()

# BIGINT ids on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY is the rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, sa.Identity(), primary_key=True)


prompt_templates = sa.Table(
    "prompt_templates",
    metadata,
    _id(),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("tags", sa.JSON(), nullable=False),
    sqlite_autoincrement=True,
)

prompt_versions = sa.Table(
    "prompt_versions",
    metadata,
    _id(),
    sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("prompt_template", sa.JSON(), nullable=False),
    sa.Column("metadata", sa.JSON(), nullable=False),
    sa.Column("commit_message", sa.String(72), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("template_id", "version", name="uq_prompt_versions_template_version"),
    sqlite_autoincrement=True,
)

release_labels = sa.Table(
    "release_labels",
    metadata,
    _id(),
    sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
    sa.Column("label", sa.String(512), nullable=False),
    sa.Column("version_id", Id, sa.ForeignKey("prompt_versions.id"), nullable=False),
    sa.UniqueConstraint("template_id", "label", name="uq_release_labels_template_label"),
    sa.Index("ix_release_labels_version", "version_id"),
    sa.Index("ix_release_labels_label", "label"),
    sqlite_autoincrement=True,
)

groups = sa.Table(
    "groups",
    metadata,
    _id(),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sqlite_autoincrement=True,
)

requests = sa.Table(
    "requests",
    metadata,
    _id(),
    # "log" for /log-request, "track" for the legacy /track-request (raw provider JSON).
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
    sa.Index("ix_requests_prompt_version", "prompt_version_id", "id"),
    sa.Index("ix_requests_status", "status", "id"),
    sa.Index("ix_requests_start_time", "request_start_time"),
    sa.Index("ix_requests_group", "group_id"),
    # Added by migration 0002 for the dashboard's per-version statistics.
    sa.Index("ix_requests_version_status", "prompt_version_id", "status"),
    sa.Index("ix_requests_version_start", "prompt_version_id", "request_start_time"),
    sqlite_autoincrement=True,
)

request_tags = sa.Table(
    "request_tags",
    metadata,
    sa.Column("tag", sa.String(512), primary_key=True),
    sa.Column("request_id", Id, sa.ForeignKey("requests.id"), primary_key=True),
    sa.Index("ix_request_tags_request", "request_id"),
)

scores = sa.Table(
    "scores",
    metadata,
    _id(),
    sa.Column("request_id", Id, sa.ForeignKey("requests.id"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("score", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.UniqueConstraint("request_id", "name", name="uq_scores_request_name"),
    sa.Index("ix_scores_name_score", "name", "score", "request_id"),
    # Added by migration 0002: average scores per prompt version from the index alone.
    sa.Index("ix_scores_request_name_score", "request_id", "name", "score"),
    sqlite_autoincrement=True,
)

# A/B releases (migration 0003, docs/RELEASES.md). A row per label split now; the label's
# `release_labels` row stays on the control meanwhile. `looks` keeps each challenger's last
# comparison (judging.Comparison.to_dict) for this release id, so a verdict never reverts.
release_splits = sa.Table(
    "release_splits",
    metadata,
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
    sqlite_autoincrement=True,
)

# Every change of a label or a split, append-only; `before`/`after` hold the label's state
# (`{"version": n}`, a split object, or null), `reason` why the guardrail acted.
release_history = sa.Table(
    "release_history",
    metadata,
    _id(),
    sa.Column("template_id", Id, sa.ForeignKey("prompt_templates.id"), nullable=False),
    sa.Column("label", sa.String(512), nullable=False),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("before", sa.JSON(), nullable=True),
    sa.Column("after", sa.JSON(), nullable=True),
    sa.Column("by", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Index("ix_release_history_template_label", "template_id", "label", "id"),
    sqlite_autoincrement=True,
)
