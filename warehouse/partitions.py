"""Fact tables partitioned by school year on PostgreSQL (issue 19, item 4).

On PostgreSQL the tables of the roles that carry a ``school_year`` (:data:`PARTITIONED`, derived from
``schemas.roles``: enrolments, attendance, assessments) are declaratively partitioned ``BY LIST
(school_year)``: one partition ``<table>_y<year>`` per school year present, created by the load that first
brings that year (:func:`ensure_year_partitions`, in the load's transaction), and a ``<table>_default``
partition for rows whose school year is blank or implausible (outside :data:`YEAR_RANGE`). Migration
``0006`` converts an existing warehouse. SQLite tables are not partitioned and nothing here changes them.

The primary key ``(manifest_id, source_row)`` cannot be kept on a partitioned table (a unique constraint
must hold the partition column), so it becomes ``UNIQUE NULLS NOT DISTINCT (manifest_id, source_row,
school_year)``; a file's row has one school year, and loads refuse a ``row_number`` repeated in a file.

Two uses of the layout:

* :func:`year_slices`: the indicator SQL runs its large per-year statements once per school year, each
  with a ``school_year = <year>`` predicate the planner prunes to one partition (and one for the default
  partition), so sorts and hash tables are a year's size;
* :func:`delete_files`: a reload that replaces every row of a partition truncates it instead of deleting
  row by row (TRUNCATE is not MVCC-safe, so the load first takes the release lock: a release never reads
  a table a load is truncating).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Table, column, delete, func, select, text, true
from sqlalchemy import table as table_clause
from sqlalchemy.sql.elements import ColumnElement

from schemas.roles import ROLES
from warehouse.locks import xact_lock

PARTITION_COLUMN = "school_year"
PARTITIONED: tuple[str, ...] = tuple(sorted(r.table for r in ROLES.values() if PARTITION_COLUMN in r.field_names))
"""Tables partitioned by school year on PostgreSQL: those of every role with a ``school_year`` field."""
YEAR_RANGE = (1900, 2199)
"""School years that get a partition of their own; others (typos, blanks) go to the default partition."""
RELEASE_LOCK_KEY = 0x_C2C_0007
"""The advisory lock ``warehouse.releases.publish_release`` holds while it computes a release."""
_PARTITION_LOCK_BASE = 0x_C2C_2000
_BOUND = re.compile(r"^FOR VALUES IN \((-?\d+)\)$")


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def is_partitioned(conn: Connection, table: Table | str) -> bool:
    """Whether ``table`` is a partitioned table here (always False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    name = table if isinstance(table, str) else table.name
    sql = text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:name)")
    return conn.execute(sql, {"name": _quote(conn, name)}).first() is not None


def partitions(conn: Connection, table: Table | str) -> dict[int | None, str]:
    """The partitions of a partitioned table: school year (None: the default partition) -> partition name."""
    name = table if isinstance(table, str) else table.name
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:name)"
        ),
        {"name": _quote(conn, name)},
    )
    out: dict[int | None, str] = {}
    for relname, bound in rows:
        m = _BOUND.match(str(bound))
        if m:
            out[int(m.group(1))] = str(relname)
        elif bound == "DEFAULT":
            out[None] = str(relname)
    return out


def partition_name(table: str, year: int | None) -> str:
    return f"{table}_default" if year is None else f"{table}_y{year}"


def plausible(year: object) -> bool:
    return isinstance(year, int) and YEAR_RANGE[0] <= year <= YEAR_RANGE[1]


def ensure_year_partitions(conn: Connection, table: Table, years: Iterable[int | None]) -> list[int]:
    """Create the partitions ``table`` lacks for ``years`` (in the caller's transaction); the years added.

    A no-op unless ``table`` is partitioned. Implausible years go to the default partition; so does a year
    whose rows already sit in the default partition (it could not be split off without moving them).
    """
    if not is_partitioned(conn, table):
        return []
    wanted = sorted(y for y in {int(str(v)) for v in years if v is not None} if plausible(y))
    have = partitions(conn, table)
    missing = [y for y in wanted if y not in have]
    if not missing:
        return []
    xact_lock(conn, _PARTITION_LOCK_BASE + PARTITIONED.index(table.name))
    have = partitions(conn, table)  # another load may have added some meanwhile
    default = have.get(None)
    added = []
    for year in missing:
        if year in have:
            continue
        if default is not None:
            sql = "SELECT 1 FROM " + _quote(conn, default) + " WHERE " + _quote(conn, PARTITION_COLUMN) + " = :y LIMIT 1"
            if conn.execute(text(sql), {"y": year}).first() is not None:
                continue
        conn.execute(text(
            "CREATE TABLE " + _quote(conn, partition_name(table.name, year)) + " PARTITION OF " + _quote(conn, table.name)
            + f" FOR VALUES IN ({int(year)})"
        ))
        added.append(year)
    return added


def year_slices(conn: Connection, table: Table) -> list[ColumnElement[bool]]:
    """Predicates that split ``table``'s rows with a school year into one statement per partition.

    On a partitioned table: ``school_year = <year>`` for every year partition, then ``school_year NOT IN
    (<those years>)`` (the default partition's rows with a year); the planner prunes each to one partition.
    Elsewhere: one predicate that is always true. Rows whose school year is NULL are in no slice but the
    last one's ``NOT IN`` is NULL for them too: callers that count such rows must not use slices.
    """
    years = sorted(y for y in partitions(conn, table) if y is not None) if is_partitioned(conn, table) else []
    if not years:
        return [true()]
    col = table.c[PARTITION_COLUMN]
    return [*(col == y for y in years), col.not_in(years)]


def delete_files(conn: Connection, table: Table, removed: Sequence[int], others: Sequence[int]) -> int:
    """Delete the rows of the files ``removed`` from ``table``; the rows deleted.

    ``others``: every other file (manifest id) that may have rows in ``table``. On a partitioned table a
    partition holding none of their rows is truncated (after taking the release lock), the others deleted
    from; elsewhere one ``DELETE``.
    """
    mid = table.c.manifest_id
    if not is_partitioned(conn, table):
        return max(conn.execute(table.delete().where(mid.in_(removed))).rowcount or 0, 0)
    xact_lock(conn, RELEASE_LOCK_KEY)
    deleted = 0
    for name in partitions(conn, table).values():
        part = table_clause(name, column("manifest_id"))
        shared = bool(others) and conn.execute(select(true()).where(part.c.manifest_id.in_(others)).limit(1)).first() is not None
        if shared:
            deleted += max(conn.execute(delete(part).where(part.c.manifest_id.in_(removed))).rowcount or 0, 0)
            continue
        n = int(conn.execute(select(func.count()).select_from(part)).scalar_one())
        if n:
            conn.execute(text("TRUNCATE " + _quote(conn, name)))
            deleted += n
    return deleted


def analyze_partitioned(conn: Connection, table: Table) -> None:
    """Planner statistics for a partitioned table after a load (autovacuum never analyzes the parent)."""
    if is_partitioned(conn, table):
        conn.execute(text("ANALYZE " + _quote(conn, table.name)))


__all__ = [
    "PARTITIONED", "PARTITION_COLUMN", "RELEASE_LOCK_KEY", "YEAR_RANGE", "analyze_partitioned", "delete_files",
    "ensure_year_partitions", "is_partitioned", "partition_name", "partitions", "plausible", "year_slices",
]
