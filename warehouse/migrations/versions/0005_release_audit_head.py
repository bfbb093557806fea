"""Releases record the audit log's head (issue 20 item 11): ``releases.audit_head``.

Revision ID: 0005_release_audit_head
Revises: 0004_role_tables_agency
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_release_audit_head"
down_revision = "0004_role_tables_agency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("releases", sa.Column("audit_head", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("audit_head")
