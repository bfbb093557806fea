"""Partner-tier row-level tables, loaded files, children, and releases of indicator_values (issue 7).

Revision ID: 0003_warehouse_indicators
Revises: 0002_audit_log
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_warehouse_indicators"
down_revision = "0002_audit_log"
branch_labels = None
depends_on = None


def fact_tables() -> dict[str, list[sa.Column]]:
    """Fact tables and their own columns (fresh Column objects on every call)."""
    return {
        "enrolments": [
            sa.Column("school_year", sa.Integer()),
            sa.Column("school_id", sa.String()),
            sa.Column("grade_level", sa.String()),
            sa.Column("enroll_date", sa.Date()),
            sa.Column("exit_date", sa.Date()),
            sa.Column("sex", sa.String()),
            sa.Column("race_ethnicity", sa.String()),
            sa.Column("english_learner", sa.String()),
            sa.Column("disability", sa.String()),
            sa.Column("econ_disadvantaged", sa.String()),
            sa.Column("homeless", sa.String()),
            sa.Column("birth_year_month", sa.String(7)),
            sa.Column("zip3", sa.String(3)),
        ],
        "attendance": [
            sa.Column("school_id", sa.String()),
            sa.Column("school_year", sa.Integer()),
            sa.Column("days_enrolled", sa.Integer()),
            sa.Column("days_absent", sa.Integer()),
        ],
        "assessments": [
            sa.Column("school_year", sa.Integer()),
            sa.Column("grade_level", sa.String()),
            sa.Column("subject", sa.String()),
            sa.Column("scale_score", sa.Integer()),
            sa.Column("performance_level", sa.Integer()),
        ],
        "graduation_outcomes": [
            sa.Column("cohort_year", sa.Integer()),
            sa.Column("outcome", sa.String()),
        ],
        "health_patients": [
            sa.Column("birth_year_month", sa.String(7)),
            sa.Column("sex", sa.String()),
            sa.Column("zip3", sa.String(3)),
        ],
        "health_encounters": [
            sa.Column("encounter_id", sa.String()),
            sa.Column("encounter_date", sa.Date()),
            sa.Column("encounter_type", sa.String()),
            sa.Column("diagnosis_code", sa.String()),
        ],
        "immunizations": [
            sa.Column("vaccine_code", sa.String()),
            sa.Column("administered_date", sa.Date()),
        ],
        "dhs_clients": [
            sa.Column("birth_year_month", sa.String(7)),
            sa.Column("sex", sa.String()),
            sa.Column("zip3", sa.String(3)),
        ],
        "program_enrolments": [
            sa.Column("program", sa.String()),
            sa.Column("start_date", sa.Date()),
            sa.Column("end_date", sa.Date()),
        ],
    }


CURRENT_VIEW = "current_indicator_values"
# A plain join, valid on SQLite and PostgreSQL; readers of the public tier select from this view.
CURRENT_VIEW_SQL = (
    "CREATE VIEW current_indicator_values AS "
    "SELECT v.release_id, v.indicator, v.period, v.school_id, v.dimension, v.\"group\", "
    "v.numerator, v.denominator, v.rate, v.suppressed, v.suppression_reason "
    "FROM indicator_values v JOIN current_release c ON c.release_id = v.release_id "
    "WHERE c.name = 'indicators'"
)


def upgrade() -> None:
    for name, columns in fact_tables().items():
        op.create_table(
            name,
            sa.Column("manifest_id", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("source_row", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("source_sha256", sa.String(64), nullable=False),
            sa.Column("source_key", sa.String(), nullable=False),
            sa.Column("child_key", sa.String(), nullable=True),
            *columns,
        )
        op.create_index(f"ix_{name}_child_key", name, ["child_key"])
        op.create_index(f"ix_{name}_source_key", name, ["source_key"])
    op.create_index("ix_enrolments_school_year", "enrolments", ["school_year"])

    op.create_table(
        "children",
        sa.Column("child_key", sa.String(), primary_key=True),
        sa.Column("birth_year_month", sa.String(7)),
        sa.Column("sex", sa.String()),
        sa.Column("has_school_record", sa.Boolean(), nullable=False),
        sa.Column("has_health_record", sa.Boolean(), nullable=False),
        sa.Column("has_human_services_record", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "loaded_files",
        sa.Column("agency", sa.String(64), primary_key=True),
        sa.Column("extract", sa.String(64), primary_key=True),
        sa.Column("manifest_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("periods", sa.Text()),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "releases",
        sa.Column("release_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("definitions", sa.Text(), nullable=False),
        sa.Column("source_files", sa.Text(), nullable=False),
        sa.Column("linkage_quality", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("suppressed_rows", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
    )
    op.create_table(
        "current_release",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.release_id"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "indicator_values",
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.release_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("indicator", sa.String(63), primary_key=True),
        sa.Column("period", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("school_id", sa.String(), primary_key=True),
        sa.Column("dimension", sa.String(32), primary_key=True),
        sa.Column("group", sa.String(), primary_key=True),
        sa.Column("numerator", sa.BigInteger()),
        sa.Column("denominator", sa.BigInteger()),
        sa.Column("rate", sa.Double()),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("suppression_reason", sa.String(32)),
    )
    op.execute(sa.text(CURRENT_VIEW_SQL))


def downgrade() -> None:
    op.execute(sa.text("DROP VIEW IF EXISTS current_indicator_values"))
    for name in ("indicator_values", "current_release", "releases", "loaded_files", "children"):
        op.drop_table(name)
    for name in reversed(list(fact_tables())):
        op.drop_index(f"ix_{name}_source_key", table_name=name)
        op.drop_index(f"ix_{name}_child_key", table_name=name)
        if name == "enrolments":
            op.drop_index("ix_enrolments_school_year", table_name=name)
        op.drop_table(name)
