"""Bulk writes at the speed of the database driver, inside the caller's transaction.

:func:`insert_frame` puts a typed DataFrame (columns named after the table's) into a table:

* SQLite: the driver's own ``executemany`` over tuples (no per-row dicts, no SQLAlchemy parameter
  processing), in batches of :data:`BATCH_ROWS` rows so memory stays bounded. Values are converted once
  per *distinct* value with the column type's own SQLAlchemy bind processor (dates become the same ISO
  strings SQLAlchemy writes), then spread back to the rows with numpy.
* PostgreSQL: ``COPY ... FROM STDIN (FORMAT csv)`` through psycopg2's ``copy_expert``, fed a CSV that
  pyarrow writes in memory (strings quoted, NULL unquoted), batch by batch.
* any other dialect: SQLAlchemy's ``executemany``.

:func:`deferred_indexes` drops a table's secondary indexes for a large load and builds them again
afterwards, in the same transaction (a failure rolls the drop back with everything else).

SQL is built from the table's own identifiers, quoted by the dialect; values always travel as parameters
or as COPY data, never inside SQL text.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, Index, Table, false, func, insert, inspect, select, update

BATCH_ROWS = 200_000
"""Rows per executemany / COPY batch."""
DEFER_MIN_ROWS = 50_000
"""Loads smaller than this keep the indexes in place."""
MAINTENANCE_WORK_MEM = "256MB"
"""PostgreSQL's memory for each deferred index build (the server default, 64MB, sorts a state's keys on disk)."""

_COPY_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_floating,
               pa.types.is_boolean, pa.types.is_date32, pa.types.is_null)


class BulkError(ValueError):
    """The frame does not fit the table (names columns, never values)."""


def insert_frame(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert every row of ``frame`` into ``table`` on ``conn`` (in its transaction); returns the row count.

    Values must already be typed: str/None, (nullable) integers, ``datetime.date``/None, floats, bools.
    """
    if frame.empty:
        return 0
    cols = [str(c) for c in frame.columns]
    unknown = [c for c in cols if c not in table.c]
    if unknown:
        raise BulkError(f"table {table.name} has no column(s) {unknown}")
    name = conn.dialect.name
    for start in range(0, len(frame), BATCH_ROWS):
        batch = frame.iloc[start : start + BATCH_ROWS]
        if name == "postgresql":
            _copy(conn, table, batch)
        elif name == "sqlite":
            _executemany(conn, table, batch)
        else:
            records = batch.astype(object).where(batch.notna(), None).to_dict("records")
            conn.execute(insert(table), records)
    return len(frame)


def _insert_sql(conn: Connection, table: Table, cols: list[str]) -> str:
    prep = conn.dialect.identifier_preparer
    marks = ", ".join("?" for _ in cols)  # sqlite3's paramstyle is qmark
    return "INSERT INTO " + prep.format_table(table) + " (" + ", ".join(prep.quote(c) for c in cols) + ") VALUES (" + marks + ")"


def _executemany(conn: Connection, table: Table, batch: pd.DataFrame) -> None:
    cols = [str(c) for c in batch.columns]
    values = [column_values(batch[c], _bind_processor(conn, table, c)) for c in cols]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.executemany(_insert_sql(conn, table, cols), zip(*values))  # type: ignore[arg-type]  # any iterable of rows
    finally:
        cur.close()


def _bind_processor(conn: Connection, table: Table, column: str) -> Callable[[Any], Any] | None:
    col_type = table.c[column].type
    return col_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def column_values(series: pd.Series, processor: Callable[[Any], Any] | None = None) -> list[Any]:
    """The column as a list of driver values: None for missing, Python natives, ``processor`` applied.

    Work per *distinct* value: the column is factorised, the distinct values converted, and the
    result spread back by the codes (a date column of a million rows converts a few thousand dates).
    """
    if processor is None and isinstance(series.dtype, np.dtype) and series.dtype.kind in "iub":
        return series.to_numpy().tolist()  # no missing values in a numpy int/bool column
    if processor is None and series.dtype == object:
        arr = series.to_numpy(dtype=object)
        missing = pd.isna(arr)
        if missing.any():
            arr = arr.copy()
            arr[missing] = None
        return arr.tolist()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    natives = list(uniques.tolist()) if hasattr(uniques, "tolist") else list(uniques)
    lookup = np.empty(len(natives) + 1, dtype=object)
    lookup[: len(natives)] = [(_native(v) if processor is None else processor(_native(v))) for v in natives]
    lookup[len(natives)] = None  # code -1: missing
    return lookup[codes].tolist()


def _native(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _copy(conn: Connection, table: Table, batch: pd.DataFrame) -> None:
    cols = [str(c) for c in batch.columns]
    buf = io.BytesIO()
    arrow = _arrow_table(batch)
    if arrow is not None:
        pacsv.write_csv(arrow, buf, pacsv.WriteOptions(include_header=False))
    else:  # a type pyarrow's CSV might render unlike PostgreSQL expects (timestamps): pandas writes it
        buf.write(batch.to_csv(index=False, header=False, na_rep="", lineterminator="\n").encode("utf-8"))
    buf.seek(0)
    prep = conn.dialect.identifier_preparer
    sql = "COPY " + prep.format_table(table) + " (" + ", ".join(prep.quote(c) for c in cols) + ") FROM STDIN WITH (FORMAT csv)"
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        cur.copy_expert(sql, buf)
    finally:
        cur.close()


def _arrow_table(batch: pd.DataFrame) -> pa.Table | None:
    try:
        arrow = pa.Table.from_pandas(batch, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if all(any(ok(f.type) for ok in _COPY_TYPES) for f in arrow.schema):
        return arrow
    return None


@contextmanager
def deferred_indexes(conn: Connection, table: Table, *, enabled: bool = True) -> Iterator[None]:
    """Drop ``table``'s secondary indexes (those of its model that exist), run the body, create them again.

    Same transaction as the body: if the body raises, the caller's rollback restores the indexes too (both
    SQLite and PostgreSQL run DDL transactionally). Primary keys and unique constraints stay.
    """
    if not enabled:
        yield
        return
    _open_transaction(conn, table)
    present = {ix["name"] for ix in inspect(conn).get_indexes(table.name)}
    dropped: list[Index] = [ix for ix in sorted(table.indexes, key=lambda i: str(i.name)) if ix.name in present and not ix.unique]
    for ix in dropped:
        ix.drop(conn)
    yield
    if dropped and conn.dialect.name == "postgresql":  # sorts for the index builds in memory (this transaction only)
        conn.execute(select(func.set_config("maintenance_work_mem", MAINTENANCE_WORK_MEM, True)))
    for ix in dropped:
        ix.create(conn)


def _open_transaction(conn: Connection, table: Table) -> None:
    """pysqlite begins its transaction at the first DML only, and runs DDL before it in autocommit: a
    no-op UPDATE opens it, so the index drop below rolls back with the rest."""
    raw = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and raw is not None and not raw.in_transaction:
        pk = next(iter(table.primary_key.columns))
        conn.execute(update(table).where(false()).values({pk.name: pk}))


def worth_deferring(conn: Connection, table: Table, rows_to_insert: int) -> bool:
    """Rebuilding the indexes pays when the load is large next to what the table holds already."""
    if rows_to_insert < DEFER_MIN_ROWS:
        return False
    held = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return rows_to_insert >= int(held) // 2


__all__ = ["BATCH_ROWS", "BulkError", "column_values", "deferred_indexes", "insert_frame", "worth_deferring"]
