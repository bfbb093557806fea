"""On PostgreSQL, the fact tables that carry a school year become partitioned by it (issue 19, item 4).

``enrolments``, ``attendance`` and ``assessments`` become ``PARTITION BY LIST (school_year)``: a partition
per school year present (``<table>_y<year>``, for years 1900-2199) and a ``<table>_default`` partition for
the rest (blank or implausible years); loads add partitions for new years (``warehouse.partitions``). Rows
are moved in this migration's transaction. The primary key ``(manifest_id, source_row)`` becomes ``UNIQUE
NULLS NOT DISTINCT (manifest_id, source_row, school_year)`` (a partitioned table's unique constraints must
hold its partition column). SQLite: nothing changes.

Revision ID: 0006_partition_by_school_year
Revises: 0005_release_audit_head
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006_partition_by_school_year"
down_revision = "0005_release_audit_head"
branch_labels = None
depends_on = None

TABLES = {  # table -> its secondary indexes (name, column), as the models declare them
    "enrolments": (("ix_enrolments_child_key", "child_key"), ("ix_enrolments_source_key", "source_key"),
                   ("ix_enrolments_school_year", "school_year")),
    "attendance": (("ix_attendance_child_key", "child_key"), ("ix_attendance_source_key", "source_key")),
    "assessments": (("ix_assessments_child_key", "child_key"), ("ix_assessments_source_key", "source_key")),
}
YEARS = (1900, 2199)


def _indexes(table: str) -> None:
    for name, col in TABLES[table]:
        op.execute(f'CREATE INDEX "{name}" ON "{table}" ("{col}")')


def _rebuild(table: str, old: str, create: str) -> None:
    """Rename ``table`` to ``old``, create it anew (``create``: the statement's tail after the name, which may
    add partitions through :func:`_partitions`), move its rows and drop ``old``."""
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    op.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS){create}')
    if create:
        _partitions(table, old)
    op.execute(f'INSERT INTO "{table}" SELECT * FROM "{old}"')
    op.execute(f'DROP TABLE "{old}"')  # with a partitioned table: its partitions and indexes too


def _partitions(table: str, old: str) -> None:
    """A default partition, and one per plausible school year ``old`` holds."""
    op.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    years = op.get_bind().execute(
        text(f'SELECT DISTINCT school_year FROM "{old}" WHERE school_year BETWEEN :lo AND :hi ORDER BY 1'),
        {"lo": YEARS[0], "hi": YEARS[1]},
    ).scalars()
    for year in years:
        op.execute(f'CREATE TABLE "{table}_y{int(year)}" PARTITION OF "{table}" FOR VALUES IN ({int(year)})')


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, f"{table}_unpartitioned", " PARTITION BY LIST (school_year)")
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "uq_{table}_row" UNIQUE NULLS NOT DISTINCT (manifest_id, source_row, school_year)')
        _indexes(table)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        _rebuild(table, f"{table}_partitioned", "")
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY (manifest_id, source_row)')
        _indexes(table)
