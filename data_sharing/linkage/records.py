"""From the privacy layer's encodings frames to the records Splink scores.

Input: per agency one frame (or several, concatenated) of linkage encodings as
:func:`data_sharing.protect.protect_raw` writes them: ``source_key`` (one per agency id), the keyed
hashes, the Bloom filters and their popcounts, ``linkage_key_id``, ``row_number``. A school keeps one
row per enrolment and year, so one ``source_key`` has many rows, with details that may vary (an
address after a move, a corrected surname).

Output (a DuckDB table ``records``): one row per distinct *variant* of a source key -- the distinct
combinations of the encoding columns the settings use -- with a dense integer ``rid`` (Splink's unique
id), ``agency``, ``source_key`` and ``n_rows``. Every variant of a source key is the same person by
construction (an agency id names one person), so they are never scored against each other; a pair of
source keys scores as its best pair of variants.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from data_sharing.linkage.settings import BLOOM_COLUMNS, KEY_COLUMNS, LinkageSettings

_AGENCY_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
#: columns an agency's encodings may lack (null then): the Medicaid key (clinics only) and the encodings v3
#: columns (issue 14), so that files encoded before v3 still link -- their records never meet the
#: middle-name-as-first and swapped-name levels, and compare as before on every other level
OPTIONAL_COLUMNS = frozenset({"medicaid_source_key", "middle_name_as_first_hash", "last_name_as_first_hash"})


class LinkageInputError(ValueError):
    """The encodings handed to linkage are unusable (missing columns, mixed linkage keys...).

    Messages name agencies, columns and counts, never a value.
    """


@dataclass(frozen=True)
class RecordSummary:
    rows: dict[str, int]
    source_keys: dict[str, int]
    variants: dict[str, int]
    dropped_rows_without_key: dict[str, int]
    linkage_key_id: str | None


def _quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def _parts_of(value: object, agency: str) -> list[pd.DataFrame | pa.Table | Path]:
    """An agency's encodings as a list of parts: DataFrames, Arrow tables or parquet file paths."""
    items = [value] if isinstance(value, (pd.DataFrame, pa.Table, str, Path)) else list(value)  # type: ignore[call-overload]
    if not items:
        raise LinkageInputError(f"{agency}: no encodings given")
    parts: list[pd.DataFrame | pa.Table | Path] = []
    for item in items:
        if isinstance(item, (pd.DataFrame, pa.Table)):
            parts.append(item)
        elif isinstance(item, (str, Path)):
            path = Path(item)
            if not path.is_file():
                raise LinkageInputError(f"{agency}: an encodings file does not exist ({path.name})")
            parts.append(path)
        else:
            raise LinkageInputError(f"{agency}: expected pandas DataFrames, Arrow tables or parquet files of encodings")
    return parts


def _arrow(frame: pd.DataFrame | pa.Table, agency: str, columns: Sequence[str]) -> pa.Table:
    names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    missing = [c for c in ("source_key", *columns) if c not in names and c not in OPTIONAL_COLUMNS]
    if missing:
        raise LinkageInputError(
            f"{agency}: the encodings lack column(s) {', '.join(missing)} that the linkage settings use"
        )
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {}
    n = frame.num_rows if isinstance(frame, pa.Table) else len(frame)
    for col in ("source_key", "linkage_key_id", *columns):
        if col not in names:
            arrays[col] = pa.nulls(n, pa.string())
            continue
        if isinstance(frame, pa.Table):
            arr = frame.column(col)
        else:
            s = frame[col]
            if col.endswith("_bits") and col not in BLOOM_COLUMNS:
                arr = pa.array(pd.to_numeric(s, errors="raise").astype("Int32"), from_pandas=True)
            else:
                arr = pa.array(s, from_pandas=True) if not isinstance(s.dtype, pd.ArrowDtype) else pa.array(s)
        if col in BLOOM_COLUMNS:
            if not (pa.types.is_binary(arr.type) or pa.types.is_fixed_size_binary(arr.type)
                    or pa.types.is_large_binary(arr.type) or pa.types.is_null(arr.type)):
                raise LinkageInputError(f"{agency}: column {col} must hold binary Bloom filters, not {arr.type}")
            arrays[col] = arr.cast(pa.binary())
        elif col.endswith("_bits"):
            if not (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
                raise LinkageInputError(f"{agency}: column {col} must hold bit counts, not {arr.type}")
            arrays[col] = arr.cast(pa.int32())
        else:
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
                raise LinkageInputError(f"{agency}: column {col} must hold hex strings, not {arr.type}")
            arrays[col] = arr.cast(pa.string())
    return pa.table(arrays)


def _parquet_view(con: duckdb.DuckDBPyConnection, path: Path, name: str, agency: str, columns: Sequence[str]) -> None:
    """View ``name`` over a parquet file of encodings, typed as :func:`_arrow` types a frame; DuckDB
    reads the file as it goes (nothing held in Python)."""
    rel = con.read_parquet(str(path))
    types = {c: str(t).upper() for c, t in zip(rel.columns, rel.types, strict=True)}
    missing = [c for c in ("source_key", *columns) if c not in types and c not in OPTIONAL_COLUMNS]
    if missing:
        raise LinkageInputError(
            f"{agency}: the encodings lack column(s) {', '.join(missing)} that the linkage settings use"
        )
    select: list[str] = []
    for col in ("source_key", "linkage_key_id", *columns):
        t = types.get(col)
        if t is None:
            select.append("null::varchar as " + _quote(col))
            continue
        if col in BLOOM_COLUMNS:
            want, ok = "blob", t in ("BLOB", '"NULL"', "NULL")
            what = "binary Bloom filters"
        elif col.endswith("_bits"):
            want, ok = "integer", t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                                         "UINTEGER", "UBIGINT", '"NULL"', "NULL")
            what = "bit counts"
        else:
            want, ok = "varchar", t in ("VARCHAR", '"NULL"', "NULL")
            what = "hex strings"
        if not ok:
            raise LinkageInputError(f"{agency}: column {col} must hold {what}, not {t}")
        select.append(_quote(col) + "::" + want + " as " + _quote(col))
    rel.project(", ".join(select)).create_view(name, replace=True)


@dataclass
class _Inputs:
    """The inputs registered in the connection while the records table is built (cleaned up after)."""

    columns: list[str]
    parts: list[str] = field(default_factory=list)  # one select per input
    params: list[str] = field(default_factory=list)  # its agency
    views: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    key_ids: dict[str, set[str]] = field(default_factory=dict)

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        for name in self.registered:
            con.unregister(name)
        for name in self.views:
            con.execute("drop view if exists " + _quote(name))


def _add_agency(con: duckdb.DuckDBPyConnection, inputs: _Inputs, agency: str, records: object) -> None:
    """Register one agency's inputs (views on parquet files, registered frames) and count their rows."""
    if not _AGENCY_RE.match(str(agency)):
        raise LinkageInputError("agency ids are lower-case names like 'fps'")
    cols = ", ".join(_quote(c) for c in inputs.columns)
    inputs.rows[agency] = inputs.dropped[agency] = 0
    inputs.key_ids[agency] = set()
    for j, part in enumerate(_parts_of(records, agency)):
        name = f"__c2c_in_{agency}_{j}"
        if isinstance(part, Path):
            _parquet_view(con, part, name, agency, inputs.columns)
            inputs.views.append(name)
        else:
            con.register(name, _arrow(part, agency, inputs.columns))
            inputs.registered.append(name)
        stats_sql = ("select count(*), count(*) filter (where source_key is null), "
                     "list(distinct linkage_key_id) filter (where linkage_key_id is not null) from " + _quote(name))
        n, n_null, ids = con.execute(stats_sql).fetchall()[0]
        inputs.rows[agency] += int(n)
        inputs.dropped[agency] += int(n_null)
        inputs.key_ids[agency].update(ids or [])
        inputs.parts.append("select ? as agency, source_key, " + cols + " from " + _quote(name) + " where source_key is not null")
        inputs.params.append(agency)


def _one_linkage_key(key_ids: dict[str, set[str]]) -> set[str]:
    all_ids = set().union(*key_ids.values())
    if len(all_ids) > 1:
        per = "; ".join(f"{a}: {', '.join(sorted(v)) or 'none'}" for a, v in sorted(key_ids.items()))
        raise LinkageInputError(
            "the encodings were made with different linkage keys, so they cannot be compared "
            f"(key ids by agency: {per}); re-encode with the current linkage key"
        )
    return all_ids


def _create_sql(table: str, inputs: _Inputs, settings: LinkageSettings) -> str:
    """The variants, grouped straight from the inputs (no copy of every row first).

    rid: a 63-bit hash of the variant's content (DuckDB's hash: deterministic for one DuckDB version),
    so no sort of the wide table is needed; a collision (never seen; checked) falls back to a sort.
    columns: the settings' checked column names; derived: the settings' checked expressions."""
    columns = inputs.columns
    derived = settings.used_derived_columns
    select_cols = ", ".join(columns + [f"({sql}) as {name}" for name, sql in derived.items()])
    return (
        "create or replace table " + _quote(table) + " as select (hash(agency, source_key, "
        + ", ".join(_quote(c) for c in columns) + ") >> 1)::bigint as rid, * from (select agency, source_key, "
        + select_cols + ", count(*)::bigint as n_rows from (" + " union all ".join(inputs.parts) + ") group by all)"
    )


def _check_table(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
    """Refuse a source key under two agencies (two persons' ids colliding); renumber rids on a hash collision."""
    clash_sql = ("select count(*) from (select source_key from " + _quote(table)
                 + " group by source_key having count(distinct agency) > 1)")
    clash = con.execute(clash_sql).fetchall()[0][0]
    if clash:
        con.execute("drop table " + _quote(table))
        raise LinkageInputError(f"{clash} source_key value(s) appear under two agencies; source keys are per agency")
    count_rids = "select count(*), count(distinct rid) from " + _quote(table)
    n, distinct = con.execute(count_rids).fetchall()[0]
    if n != distinct:
        order = ", ".join(["agency", "source_key", *[c for c in columns if c not in BLOOM_COLUMNS],
                           *[c for c in columns if c in BLOOM_COLUMNS]])
        renumber_sql = ("create or replace table " + _quote(table) + " as select (row_number() over (order by "
                        + order + "))::bigint as rid, * exclude (rid) from " + _quote(table))
        con.execute(renumber_sql)


def load_records(
    con: duckdb.DuckDBPyConnection,
    records_by_agency: Mapping[str, object],
    settings: LinkageSettings,
    *,
    table: str = "records",
) -> RecordSummary:
    """Create table ``table`` (variants, see the module doc) in ``con``; returns counts per agency.

    ``records_by_agency``: agency -> its encodings as a pandas DataFrame, an Arrow table or a parquet
    file path, or a sequence of those (all current files of its person extract). Parquet files are
    read by DuckDB as it groups the variants, so a state-sized input never sits in Python's memory.
    """
    if not records_by_agency:
        raise LinkageInputError("no agency encodings were given")
    inputs = _Inputs(list(settings.columns))
    try:
        for agency in sorted(records_by_agency):
            _add_agency(con, inputs, agency, records_by_agency[agency])
        all_ids = _one_linkage_key(inputs.key_ids)
        con.execute(_create_sql(table, inputs, settings), inputs.params)
    finally:
        inputs.release(con)
    _check_table(con, table, inputs.columns)
    per_agency_sql = ("select agency, count(distinct source_key), count(*) from " + _quote(table)
                      + " group by agency order by agency")
    per_agency = con.execute(per_agency_sql).fetchall()
    source_keys = {a: int(k) for a, k, _ in per_agency}
    variants = {a: int(v) for a, _, v in per_agency}
    for a in inputs.rows:
        source_keys.setdefault(a, 0)
        variants.setdefault(a, 0)
    return RecordSummary(inputs.rows, source_keys, variants, inputs.dropped, next(iter(all_ids), None))


__all__ = ["KEY_COLUMNS", "LinkageInputError", "RecordSummary", "load_records"]
