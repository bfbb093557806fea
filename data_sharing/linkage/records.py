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
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from data_sharing.linkage.settings import BLOOM_COLUMNS, KEY_COLUMNS, LinkageSettings

_AGENCY_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
OPTIONAL_COLUMNS = frozenset({"medicaid_source_key"})


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


def _frame_of(value: pd.DataFrame | Sequence[pd.DataFrame], agency: str) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    frames = list(value)
    if not frames:
        raise LinkageInputError(f"{agency}: no encodings frame given")
    if not all(isinstance(f, pd.DataFrame) for f in frames):
        raise LinkageInputError(f"{agency}: expected pandas DataFrames of encodings")
    return pd.concat(frames, ignore_index=True)


def _arrow(frame: pd.DataFrame, agency: str, columns: Sequence[str]) -> pa.Table:
    missing = [c for c in ("source_key", *columns) if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise LinkageInputError(
            f"{agency}: the encodings lack column(s) {', '.join(missing)} that the linkage settings use"
        )
    arrays: dict[str, pa.Array] = {}
    n = len(frame)
    for col in ("source_key", "linkage_key_id", *columns):
        if col not in frame.columns:
            arrays[col] = pa.nulls(n, pa.string())
            continue
        s = frame[col]
        if col in BLOOM_COLUMNS:
            arr = pa.array(s, from_pandas=True) if not isinstance(s.dtype, pd.ArrowDtype) else pa.array(s)
            if not (pa.types.is_binary(arr.type) or pa.types.is_fixed_size_binary(arr.type)
                    or pa.types.is_large_binary(arr.type) or pa.types.is_null(arr.type)):
                raise LinkageInputError(f"{agency}: column {col} must hold binary Bloom filters, not {arr.type}")
            arrays[col] = arr.cast(pa.binary())
        elif col.endswith("_bits"):
            arrays[col] = pa.array(pd.to_numeric(s, errors="raise").astype("Int32"), from_pandas=True).cast(pa.int32())
        else:
            arr = pa.array(s, from_pandas=True) if not isinstance(s.dtype, pd.ArrowDtype) else pa.array(s)
            if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type)):
                raise LinkageInputError(f"{agency}: column {col} must hold hex strings, not {arr.type}")
            arrays[col] = arr.cast(pa.string())
    return pa.table(arrays)


def load_records(
    con: duckdb.DuckDBPyConnection,
    records_by_agency: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
    settings: LinkageSettings,
    *,
    table: str = "records",
) -> RecordSummary:
    """Create table ``table`` (variants, see the module doc) in ``con``; returns counts per agency."""
    if not records_by_agency:
        raise LinkageInputError("no agency encodings were given")
    columns = list(settings.columns)
    parts: list[str] = []
    part_params: list[str] = []
    rows: dict[str, int] = {}
    dropped: dict[str, int] = {}
    key_ids: dict[str, set[str]] = {}
    for agency in sorted(records_by_agency):
        if not _AGENCY_RE.match(str(agency)):
            raise LinkageInputError("agency ids are lower-case names like 'fps'")
        frame = _frame_of(records_by_agency[agency], agency)
        tbl = _arrow(frame, agency, columns)
        name = f"__c2c_in_{agency}"
        con.register(name, tbl)
        rows[agency] = tbl.num_rows
        dropped[agency] = int(tbl.column("source_key").null_count)
        ids = con.execute(
            "select distinct linkage_key_id from " + _quote(name) + " where linkage_key_id is not null"
        ).fetchall()
        key_ids[agency] = {r[0] for r in ids}
        cols = ", ".join(columns)
        parts.append(
            "select ? as agency, source_key, " + cols + " from " + _quote(name) + " where source_key is not null"
        )
        part_params.append(agency)
    all_ids = set().union(*key_ids.values())
    if len(all_ids) > 1:
        per = "; ".join(f"{a}: {', '.join(sorted(v)) or 'none'}" for a, v in sorted(key_ids.items()))
        raise LinkageInputError(
            "the encodings were made with different linkage keys, so they cannot be compared "
            f"(key ids by agency: {per}); re-encode with the current linkage key"
        )
    derived = settings.used_derived_columns
    cols = ", ".join(columns + [f"({sql}) as {name}" for name, sql in derived.items()])
    order = ", ".join(["agency", "source_key", *[c for c in columns if c not in BLOOM_COLUMNS], *[c for c in columns if c in BLOOM_COLUMNS]])
    con.execute("create or replace temp table __c2c_rows as " + " union all ".join(parts), part_params)
    # One source key in two agencies' frames would be two persons' ids colliding: refuse.
    clash = con.execute(
        "select count(*) from (select source_key from __c2c_rows group by source_key having count(distinct agency) > 1)"
    ).fetchall()[0][0]
    if clash:
        raise LinkageInputError(f"{clash} source_key value(s) appear under two agencies; source keys are per agency")
    # rid: a 63-bit hash of the variant's content (DuckDB's hash: deterministic for one DuckDB version),
    # so no sort of the wide table is needed; a collision (never seen; checked) falls back to a sort.
    # columns: the settings' checked column names; derived: the settings' checked expressions
    create_sql = (
        "create or replace table " + _quote(table) + " as select (hash(agency, source_key, "
        + ", ".join(_quote(c) for c in columns) + ") >> 1)::bigint as rid, * from (select agency, source_key, "
        + cols + ", count(*)::bigint as n_rows from __c2c_rows group by all)"
    )
    con.execute(create_sql)
    count_rids = "select count(*), count(distinct rid) from " + _quote(table)
    n, distinct = con.execute(count_rids).fetchall()[0]
    if n != distinct:
        renumber_sql = ("create or replace table " + _quote(table) + " as select (row_number() over (order by "
                        + order + "))::bigint as rid, * exclude (rid) from " + _quote(table))
        con.execute(renumber_sql)
    con.execute("drop table __c2c_rows")
    for agency in records_by_agency:
        con.unregister(f"__c2c_in_{agency}")
    per_agency_sql = ("select agency, count(distinct source_key), count(*) from " + _quote(table)
                      + " group by agency order by agency")
    per_agency = con.execute(per_agency_sql).fetchall()
    source_keys = {a: int(k) for a, k, _ in per_agency}
    variants = {a: int(v) for a, _, v in per_agency}
    for a in rows:
        source_keys.setdefault(a, 0)
        variants.setdefault(a, 0)
    return RecordSummary(rows, source_keys, variants, dropped, next(iter(all_ids), None))


__all__ = ["KEY_COLUMNS", "LinkageInputError", "RecordSummary", "load_records"]
