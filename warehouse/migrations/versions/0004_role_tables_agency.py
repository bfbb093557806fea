"""Fact tables keyed by extract role carry the sending agency on every row (issue 15).

Several agencies may share a role (two school districts load into ``enrolments``); ``agency`` keeps which
one sent each row. It is the partnership's free name for the agency, never an identifier of a child.

Revision ID: 0004_role_tables_agency
Revises: 0003_warehouse_indicators
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_role_tables_agency"
down_revision = "0003_warehouse_indicators"
branch_labels = None
depends_on = None

FACT_TABLES = (
    "enrolments", "attendance", "assessments", "graduation_outcomes", "health_patients", "health_encounters",
    "immunizations", "dhs_clients", "program_enrolments",
)


def upgrade() -> None:
    for table in FACT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("agency", sa.String(64), nullable=True))
        # rows loaded before: their agency is their source file's (loaded_files has one row per manifest id)
        fact = sa.table(table, sa.column("manifest_id"), sa.column("agency"))
        lf = sa.table("loaded_files", sa.column("manifest_id"), sa.column("agency"))
        op.execute(
            fact.update().values(
                agency=sa.select(lf.c.agency).where(lf.c.manifest_id == fact.c.manifest_id).limit(1).scalar_subquery()
            )
        )


def downgrade() -> None:
    for table in FACT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("agency")
