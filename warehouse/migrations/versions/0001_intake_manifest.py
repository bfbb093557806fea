"""Intake manifest: every file ever seen in the drop folder.

Revision ID: 0001_intake_manifest
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_intake_manifest"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_manifest",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("agency", sa.String(64), nullable=True),
        sa.Column("extract", sa.String(64), nullable=True),
        sa.Column("as_of_date", sa.Date(), nullable=True),
        sa.Column("tokenized", sa.Boolean(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("duplicate_rows", sa.BigInteger(), nullable=True),
        sa.Column("period_rows", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("warnings", sa.Text(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), sa.ForeignKey("intake_manifest.id"), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), sa.ForeignKey("intake_manifest.id"), nullable=True),
        sa.Column("mou_id", sa.String(64), nullable=True),
        sa.Column("mou_version", sa.Integer(), nullable=True),
        sa.Column("marker_sha256", sa.String(64), nullable=True),
        sa.Column("partition_key", sa.String(1024), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("rel_path", "fingerprint", name="uq_intake_manifest_path_fingerprint"),
    )
    op.create_index("ix_intake_manifest_extract", "intake_manifest", ["agency", "extract", "as_of_date"])
    op.create_index("ix_intake_manifest_sha256", "intake_manifest", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_intake_manifest_sha256", table_name="intake_manifest")
    op.drop_index("ix_intake_manifest_extract", table_name="intake_manifest")
    op.drop_table("intake_manifest")
