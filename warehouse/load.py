"""Bulk, idempotent loads of pseudonymous staging frames into the partner-tier tables.

The pipeline hands over, per extract, the **full current set** of its source files (:class:`StagedFile`:
manifest id, SHA-256, the staging frame ``pseudonymize`` produced plus ``row_number``) and the linkage
crosswalk ``source_key -> child_key``. :func:`load_current` makes the extract's table hold exactly those
files' rows, in one transaction:

* files already loaded with the same manifest id, SHA-256 and periods are left alone (loading the same
  file twice changes nothing);
* files no longer in the set are deleted, files new to the set are inserted (replace-by-set), so a re-run
  after any failure gives the same tables as a clean run;
* ``child_key`` of every row is set from the crosswalk (NULL when the ``source_key`` is not linked);
  rows whose link changed since the last load are updated, nothing else;
* ``children`` is rebuilt when a person role's table (school enrolment, health / services person) changed;
* a ``warehouse_load`` audit event records what changed (file ids and checksums, counts; no values).

Inserts are bulk: ``COPY ... FROM STDIN (FORMAT csv)`` through the raw psycopg2 connection on PostgreSQL,
``executemany`` on SQLite. Values are parsed leniently: a value that does not parse (a date, an integer)
becomes NULL, never an error. Exact duplicate rows of a file count once. Rows without a ``source_key``
cannot be attributed and are skipped (counted in :attr:`LoadResult.rows_skipped`).

When a file is current for some of its periods only (a later snapshot holds the others, see
``warehouse.manifest``), pass those periods as :attr:`StagedFile.periods`; only their rows are loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, case, delete, func, insert, literal, select, text, tuple_, union_all, update
from sqlalchemy.orm import Session

from schemas.contracts import ExtractContract, load_extract_contracts
from schemas.roles import PERSON_ROLES, ROLES, staging_column, staging_columns
from warehouse.audit import AuditEvent, append_events
from warehouse.bulk import deferred_indexes, insert_frame, worth_deferring
from warehouse.values import parse as _parse
from warehouse.values import text as _text
from warehouse.models import Base, Child, LoadedFile
from warehouse.locks import xact_lock
from warehouse.partitions import PARTITION_COLUMN, analyze_partitioned, delete_files, ensure_year_partitions

_LOAD_LOCK_BASE = 0x_C2C_1000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class LoadError(ValueError):
    """The load cannot be done as asked (unknown extract, unexpected column, inconsistent crosswalk).

    Messages name columns, files (manifest id) and counts, never a value.
    """


# --------------------------------------------------------------------------------------------------
# Which staging column goes where: by extract role (schemas.roles), never by agency


@dataclass(frozen=True)
class ExtractTable:
    """How one extract's staging frame maps onto its role's partner-tier table."""

    agency: str
    extract: str
    table: Table
    columns: Mapping[str, tuple[str, str]]  # staging column -> (table column, parse: str|int|date|cvx)
    period_column: str | None = None  # staging column holding the period (snapshot rules)
    ignored: frozenset[str] = frozenset()  # staging columns deliberately not stored
    person_table: bool = False  # feeds the children table
    role: str = ""

    @property
    def key(self) -> str:
        return f"{self.agency}/{self.extract}"


def role_table(role: str) -> Table:
    """The partner-tier table of an extract role."""
    return Base.metadata.tables[ROLES[role].table]


def extract_table(contract: ExtractContract) -> ExtractTable | None:
    """How ``contract``'s staging frames load into its role's table (``None``: the contract has no role)."""
    if contract.role is None:
        return None
    role = ROLES[contract.role]
    columns = {
        staging_column(contract, col): (name, role.field(name).parse) for name, col in contract.role_fields.items()
    }
    period = None
    if role.period_field is not None:
        period = next(s for s, (name, _) in columns.items() if name == role.period_field)
    ignored = frozenset(staging_columns(contract) - set(columns) - {"source_key"})
    return ExtractTable(
        contract.agency, contract.extract, role_table(role.name), columns, period_column=period, ignored=ignored,
        person_table=role.person, role=role.name,
    )


def extract_tables(contracts: Mapping[tuple[str, str], ExtractContract] | None = None) -> dict[str, ExtractTable]:
    """Every extract of a partnership that the warehouse stores, by ``agency/extract``.

    ``contracts`` default to the packaged reference partnership's (``schemas/extracts``).
    """
    if contracts is None:
        contracts = load_extract_contracts()
    out = {}
    for _, contract in sorted(contracts.items()):
        spec = extract_table(contract)
        if spec is not None:
            out[spec.key] = spec
    return out


class _ReferenceTables(Mapping[str, ExtractTable]):
    """:func:`extract_tables` of the packaged reference partnership, read on first use."""

    _tables: dict[str, ExtractTable] | None = None

    def _get(self) -> dict[str, ExtractTable]:
        if self._tables is None:
            self._tables = extract_tables()
        return self._tables

    def __getitem__(self, key: str) -> ExtractTable:
        return self._get()[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


EXTRACT_TABLES: Mapping[str, ExtractTable] = _ReferenceTables()
"""The reference partnership's extract tables, by ``agency/extract`` (a city's: :func:`extract_tables`)."""


# --------------------------------------------------------------------------------------------------
# Inputs and results


@dataclass(frozen=True)
class StagedFile:
    """One current source file of an extract, as the pipeline hands it over.

    ``frame`` is the pseudonymous staging frame (strings; blanks may be "" or NA) with ``row_number``
    (1-based row in the source file). ``periods``: the periods this file is current for (``None``: all
    its rows; a ``None`` member stands for rows whose period is blank).
    """

    agency: str
    extract: str
    manifest_id: int
    sha256: str
    frame: pd.DataFrame = field(repr=False, compare=False)
    periods: frozenset[int | None] | None = None

    def periods_json(self) -> str | None:
        if self.periods is None:
            return None
        return json.dumps(sorted(self.periods, key=lambda p: (p is not None, p or 0)))


@dataclass(frozen=True)
class LoadResult:
    """What one :func:`load_current` call did (counts and file ids only; safe for metadata)."""

    extract: str
    files_added: tuple[int, ...]
    files_removed: tuple[int, ...]
    files_kept: tuple[int, ...]
    rows_inserted: int
    rows_deleted: int
    rows_skipped: int
    duplicate_rows: int
    rows_relinked: int
    rows_total: int
    rows_unlinked: int
    children_rebuilt: bool

    @property
    def changed(self) -> bool:
        return bool(self.files_added or self.files_removed or self.rows_relinked)

    def metadata(self) -> dict[str, object]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


# --------------------------------------------------------------------------------------------------
# SQL helpers shared with warehouse.indicators / warehouse.releases


def quote_table(conn: Connection, table: Table) -> str:
    """The table's name quoted by the dialect (identifiers of our own tables only, never data)."""
    return conn.dialect.identifier_preparer.format_table(table)


def temp_table(conn: Connection, name: str, *columns: Column) -> Table:
    """A fresh temporary table on this connection (dropped at commit on PostgreSQL)."""
    kwargs: dict[str, Any] = {"postgresql_on_commit": "DROP"} if conn.dialect.name == "postgresql" else {}
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"], **kwargs)
    # pysqlite runs DDL outside the transaction until the first DML, so an earlier failed run may have
    # left the table behind on this pooled connection; a second computation in one transaction reuses names.
    schema = "temp." if conn.dialect.name == "sqlite" else "pg_temp."
    conn.execute(text("DROP TABLE IF EXISTS " + schema + conn.dialect.identifier_preparer.quote(name)))
    table.create(conn)
    return table


def analyze(conn: Connection, table: Table) -> None:
    """Give PostgreSQL's planner statistics for a freshly filled (temporary) table."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE " + quote_table(conn, table)))


def bulk_insert(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """Insert ``frame`` (columns named after ``table``'s) in bulk (:func:`warehouse.bulk.insert_frame`:
    COPY on PostgreSQL, the driver's executemany of tuples on SQLite).

    Values must already be typed: str/None, nullable integers, ``datetime.date``/None, floats, bools.
    """
    if frame.empty:
        return 0
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise LoadError(f"table {table.name} has no column(s) {unknown}")
    return insert_frame(conn, table, frame)


# --------------------------------------------------------------------------------------------------
# Parsing (lenient: what does not parse becomes NULL)


def _row_numbers(s: pd.Series) -> pd.Series:
    """``row_number`` as numbers (NaN where blank or not a number); integer columns as they are."""
    if pd.api.types.is_integer_dtype(s.dtype) and not s.isna().any():
        return s.astype("int64")
    if isinstance(s.dtype, pd.ArrowDtype) or (isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow"):
        try:  # Arrow strings that are all numbers (as staging writes them): one cast, no Python objects
            arr = pa.chunked_array(pa.array(s, from_pandas=True))
            return pd.Series(pc.cast(pc.utf8_trim_whitespace(arr), pa.float64()).to_numpy(), index=s.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    return pd.to_numeric(_text(s), errors="coerce")


def prepare_frame(spec: ExtractTable, staged: StagedFile) -> tuple[pd.DataFrame, int, int]:
    """The table rows of one staged file: (rows, rows skipped, duplicate rows). Columns are table columns."""
    frame = staged.frame
    known = set(spec.columns) | spec.ignored | {"source_key", "row_number"}
    unknown = [str(c) for c in frame.columns if c not in known]
    if unknown:
        raise LoadError(
            f"{spec.key} (manifest {staged.manifest_id}): unexpected column(s) {', '.join(sorted(unknown))}; "
            "the warehouse stores only the pseudonymous columns of the contract"
        )
    if "source_key" not in frame.columns:
        raise LoadError(f"{spec.key} (manifest {staged.manifest_id}): the staging frame has no source_key column")
    n = len(frame)
    if "row_number" in frame.columns:
        row_number = _row_numbers(frame["row_number"])
    else:
        row_number = pd.Series(np.arange(1, n + 1), index=frame.index, dtype=float)
    if row_number.isna().any():
        raise LoadError(f"{spec.key} (manifest {staged.manifest_id}): row_number is blank or not a number in some rows")
    value_cols = [c for c in frame.columns if c != "row_number" and c not in spec.ignored]
    dup = frame.duplicated(subset=value_cols, keep="first").to_numpy() if n else np.zeros(0, dtype=bool)
    out = pd.DataFrame(index=frame.index)
    out["manifest_id"] = staged.manifest_id
    out["source_row"] = row_number.astype("int64")
    out["source_sha256"] = staged.sha256
    out["source_key"] = _parse(frame["source_key"], "str")
    out["child_key"] = None
    out["agency"] = staged.agency
    for staging_col, (table_col, how) in spec.columns.items():
        if staging_col in frame.columns:
            out[table_col] = _parse(frame[staging_col], how)
        else:  # an optional column the file did not carry
            out[table_col] = pd.Series([None] * n, index=frame.index, dtype=object if how != "int" else "Int64")
    keep = ~dup & out["source_key"].notna().to_numpy()
    skipped = int((out["source_key"].isna() & ~pd.Series(dup, index=frame.index)).sum())
    if staged.periods is not None and spec.period_column is not None:
        period_col = spec.columns[spec.period_column][0]
        wanted = {p for p in staged.periods if p is not None}
        in_set = out[period_col].isin(wanted).fillna(False).to_numpy(dtype=bool)
        if None in staged.periods:
            in_set |= out[period_col].isna().to_numpy()
        keep &= in_set
    rows = out[keep]
    if rows["source_row"].duplicated().any():
        raise LoadError(f"{spec.key} (manifest {staged.manifest_id}): row_number repeats within the file")
    return rows.reset_index(drop=True), skipped, int(dup.sum())


def prepare_crosswalk(crosswalk: pd.DataFrame | None) -> pd.Series:
    """``source_key -> child_key`` as a Series (linked keys only). A key mapped to two children is refused."""
    if crosswalk is None or len(crosswalk) == 0:
        return pd.Series(dtype=object)
    missing = [c for c in ("source_key", "child_key") if c not in crosswalk.columns]
    if missing:
        raise LoadError(f"the crosswalk lacks column(s) {missing}")
    cw = pd.DataFrame({"source_key": _parse(crosswalk["source_key"], "str"), "child_key": _parse(crosswalk["child_key"], "str")})
    cw = cw[cw["source_key"].notna() & cw["child_key"].notna()].drop_duplicates()
    clash = cw["source_key"].duplicated(keep=False)
    if clash.any():
        raise LoadError(f"the crosswalk maps {int(cw.loc[clash, 'source_key'].nunique())} source_key(s) to more than one child_key")
    return pd.Series(cw["child_key"].to_numpy(), index=cw["source_key"].to_numpy(), dtype=object)


# --------------------------------------------------------------------------------------------------
# Loading


def _lock(conn: Connection, key: str) -> None:
    if conn.dialect.name == "postgresql":
        xact_lock(conn, _LOAD_LOCK_BASE + zlib.crc32(key.encode()) % 4096)
    else:  # SQLite: take the write lock now (pysqlite opens the transaction at the first DML)
        lf = LoadedFile.__table__
        conn.execute(update(lf).where(lf.c.manifest_id == -1).values(rows=0))


def _check_files(spec: ExtractTable, files: Sequence[StagedFile]) -> None:
    seen: set[int] = set()
    contents: dict[str, int] = {}
    for f in files:
        if (f.agency, f.extract) != (spec.agency, spec.extract):
            raise LoadError(f"file (manifest {f.manifest_id}) is {f.agency}/{f.extract}, not {spec.key}")
        if not isinstance(f.sha256, str) or not _HEX64.match(f.sha256):
            raise LoadError(f"file (manifest {f.manifest_id}): sha256 must be 64 lower-case hex characters")
        if f.manifest_id in seen:
            raise LoadError(f"manifest {f.manifest_id} is passed twice")
        if f.sha256 in contents:  # the same content under two manifest ids would count every row twice
            raise LoadError(f"manifests {contents[f.sha256]} and {f.manifest_id} have the same content (SHA-256); pass one")
        seen.add(f.manifest_id)
        contents[f.sha256] = f.manifest_id


def _relink(conn: Connection, table: Table, cw: Table | None) -> int:
    """Set child_key from the crosswalk temp table where it differs; NULL where the key is not linked."""
    changed = 0
    if cw is not None:
        res = conn.execute(
            update(table)
            .where(table.c.source_key == cw.c.source_key)
            .where(table.c.child_key.is_distinct_from(cw.c.child_key))
            .values(child_key=cw.c.child_key)
        )
        changed += max(res.rowcount or 0, 0)
        linked = select(cw.c.source_key).where(cw.c.source_key == table.c.source_key).exists()
        res = conn.execute(update(table).where(table.c.child_key.is_not(None)).where(~linked).values(child_key=None))
    else:
        res = conn.execute(update(table).where(table.c.child_key.is_not(None)).values(child_key=None))
    changed += max(res.rowcount or 0, 0)
    return changed


def _crosswalk_table(conn: Connection, cw: pd.Series) -> Table | None:
    if cw.empty:
        return None
    tmp = temp_table(conn, "_c2c_crosswalk", Column("source_key", String, primary_key=True), Column("child_key", String, nullable=False))
    bulk_insert(conn, tmp, pd.DataFrame({"source_key": cw.index.to_numpy(), "child_key": cw.to_numpy()}))
    analyze(conn, tmp)
    return tmp


def rebuild_children(conn: Connection) -> int:
    """Rebuild ``children`` from the linked rows of the person roles (school enrolment, health, services).

    Attributes come from the school record when there is one, else health, else human services; every
    agency of a role counts alike (two school districts are both school records).
    """
    parts = [
        select(
            t.c.child_key.label("child_key"),
            literal(role, String).label("role"),
            t.c.birth_year_month.label("birth_year_month"),
            t.c.sex.label("sex"),
        ).where(t.c.child_key.is_not(None))
        for role, t in ((r, role_table(r)) for r in PERSON_ROLES)
    ]
    recs = union_all(*parts).subquery("recs")

    def per(role: str, col: str):  # type: ignore[no-untyped-def]
        return func.max(case((recs.c.role == role, recs.c[col])))

    def has(role: str):  # type: ignore[no-untyped-def]
        return func.max(case((recs.c.role == role, 1), else_=0)) == 1

    agg = select(
        recs.c.child_key,
        func.coalesce(*(per(r, "birth_year_month") for r in PERSON_ROLES)),
        func.coalesce(*(per(r, "sex") for r in PERSON_ROLES)),
        *(has(r) for r in PERSON_ROLES),
    ).group_by(recs.c.child_key)
    flags = {"school": "has_school_record", "health": "has_health_record", "services": "has_human_services_record"}
    children = Child.__table__
    conn.execute(delete(children))
    res = conn.execute(
        insert(children).from_select(
            ["child_key", "birth_year_month", "sex", *(flags[ROLES[r].domain] for r in PERSON_ROLES)], agg
        )
    )
    return max(res.rowcount or 0, 0)


def _insert_files(
    conn: Connection, spec: ExtractTable, files: Sequence[StagedFile], cw_series: pd.Series, now: dt.datetime
) -> tuple[int, int, int]:
    """Insert the rows of ``files`` (new to the table) and record them in loaded_files: (inserted, skipped,
    duplicates). A load as large as half the table or more builds the secondary indexes afterwards."""
    table, lf = spec.table, LoadedFile.__table__
    inserted = skipped = dups = 0
    with deferred_indexes(conn, table, enabled=worth_deferring(conn, table, sum(len(f.frame) for f in files))):
        for staged in files:
            rows, n_skipped, n_dup = prepare_frame(spec, staged)
            if not cw_series.empty and len(rows):
                rows["child_key"] = rows["source_key"].map(cw_series)
            if PARTITION_COLUMN in rows.columns:  # a partition for every school year the rows bring
                ensure_year_partitions(conn, table, (int(y) for y in rows[PARTITION_COLUMN].dropna().unique()))
            inserted += bulk_insert(conn, table, rows)
            skipped += n_skipped
            dups += n_dup
            conn.execute(
                insert(lf).values(
                    agency=spec.agency, extract=spec.extract, manifest_id=staged.manifest_id, sha256=staged.sha256,
                    periods=staged.periods_json(), rows=len(rows), loaded_at=now,
                )
            )
    if inserted:
        analyze_partitioned(conn, table)
    return inserted, skipped, dups


def load_current(
    engine: Engine,
    extract_key: str | tuple[str, str],
    files: Sequence[StagedFile],
    crosswalk: pd.DataFrame | pd.Series | None,
    *,
    now: dt.datetime | None = None,
    actor: str = "c2c",
    tables: Mapping[str, ExtractTable] | None = None,
    relink: bool = True,
) -> LoadResult:
    """Make ``extract_key``'s table hold exactly the rows of ``files`` (its full current set), linked by ``crosswalk``.

    ``extract_key`` is ``"<agency>/<extract>"`` or ``(agency, extract)``. ``files`` may be empty (the extract
    then holds no rows). ``crosswalk`` has columns ``source_key`` and ``child_key`` (NULL: not linked);
    it may hold other agencies' keys too (or is :func:`prepare_crosswalk`'s Series, prepared once for many loads). ``tables``: the partnership's :func:`extract_tables` (default: the
    reference partnership's). One transaction: on any error nothing changes. ``relink=False``: the rows already
    loaded are linked by this crosswalk (the caller knows); only new files' frames are read and linked."""
    key = "/".join(extract_key) if isinstance(extract_key, tuple) else extract_key
    spec = (EXTRACT_TABLES if tables is None else tables).get(key)
    if spec is None:
        raise LoadError(f"the warehouse has no table for extract {key!r} (known: {', '.join(sorted(EXTRACT_TABLES if tables is None else tables))})")
    _check_files(spec, files)
    cw_series = crosswalk if isinstance(crosswalk, pd.Series) else prepare_crosswalk(crosswalk)
    now = now or dt.datetime.now(dt.timezone.utc)
    table, lf = spec.table, LoadedFile.__table__
    with Session(engine) as session, session.begin():
        conn = session.connection()
        _lock(conn, key)
        loaded = {
            r.manifest_id: (r.sha256, r.periods)
            for r in conn.execute(select(lf.c.manifest_id, lf.c.sha256, lf.c.periods).where(lf.c.agency == spec.agency, lf.c.extract == spec.extract))
        }
        wanted = {f.manifest_id: f for f in files}
        kept = sorted(m for m, f in wanted.items() if loaded.get(m) == (f.sha256, f.periods_json()))
        removed = sorted(m for m in loaded if m not in kept)
        added = sorted(m for m in wanted if m not in kept)

        deleted = 0
        if removed:  # a partition holding only these files' rows is truncated (warehouse.partitions)
            others = [m for m in conn.execute(select(lf.c.manifest_id).distinct()).scalars() if m not in set(removed)]
            deleted = delete_files(conn, table, removed, others)
            conn.execute(delete(lf).where(lf.c.agency == spec.agency, lf.c.extract == spec.extract, lf.c.manifest_id.in_(removed)))

        inserted, skipped, dups = _insert_files(conn, spec, [wanted[m] for m in added], cw_series, now)

        relinked = 0
        if kept and relink:
            cw_table = _crosswalk_table(conn, cw_series)
            relinked = _relink(conn, table, cw_table)
            if cw_table is not None and conn.dialect.name == "sqlite":
                cw_table.drop(conn)

        rebuilt = False
        if spec.person_table and (added or removed or relinked):
            rebuild_children(conn)
            rebuilt = True
        total, unlinked = conn.execute(
            select(func.count(), func.count().filter(table.c.child_key.is_(None))).select_from(table)
            .where(table.c.manifest_id.in_(select(lf.c.manifest_id).where(lf.c.agency == spec.agency, lf.c.extract == spec.extract)))
        ).one()  # this extract's rows (a role's table may hold other extracts and agencies)
        result = LoadResult(
            extract=key,
            files_added=tuple(added),
            files_removed=tuple(removed),
            files_kept=tuple(kept),
            rows_inserted=inserted,
            rows_deleted=deleted,
            rows_skipped=skipped,
            duplicate_rows=dups,
            rows_relinked=relinked,
            rows_total=int(total),
            rows_unlinked=int(unlinked),
            children_rebuilt=rebuilt,
        )
        if result.changed:
            details = result.metadata()
            details["sha256"] = {str(f.manifest_id): f.sha256 for f in files}
            append_events(session, [AuditEvent("warehouse_load", key, details, actor=actor)], now=now)
    return result


def relink_all(engine: Engine, crosswalk: pd.DataFrame | None, *, now: dt.datetime | None = None, actor: str = "c2c") -> dict[str, int]:
    """Refresh ``child_key`` in every role's table from a new crosswalk (one transaction); changes by role."""
    cw_series = prepare_crosswalk(crosswalk)
    changed: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        conn = session.connection()
        _lock(conn, "relink")
        cw_table = _crosswalk_table(conn, cw_series)
        for role in ROLES:
            changed[role] = _relink(conn, role_table(role), cw_table)
        if any(changed[r] for r in PERSON_ROLES):
            rebuild_children(conn)
        if cw_table is not None and conn.dialect.name == "sqlite":
            cw_table.drop(conn)
        if any(changed.values()):
            append_events(session, [AuditEvent("warehouse_relink", "all extracts", {"rows_relinked": changed}, actor=actor)], now=now)
    return changed


def loaded_files(engine_or_conn: Engine | Connection, extracts: Iterable[str] | None = None) -> list[dict[str, object]]:
    """The files in the warehouse now: agency, extract, manifest_id, sha256, periods, rows (sorted)."""
    lf = LoadedFile.__table__
    q = select(lf.c.agency, lf.c.extract, lf.c.manifest_id, lf.c.sha256, lf.c.periods, lf.c.rows).order_by(
        lf.c.agency, lf.c.extract, lf.c.manifest_id
    )
    if extracts is not None:
        pairs = [tuple(e.split("/", 1)) for e in extracts]
        if not pairs:
            return []
        q = q.where(tuple_(lf.c.agency, lf.c.extract).in_(pairs))

    def run(conn: Connection) -> list[dict[str, object]]:
        return [
            {
                "agency": r.agency, "extract": r.extract, "manifest_id": int(r.manifest_id), "sha256": r.sha256,
                "periods": json.loads(r.periods) if r.periods else None, "rows": int(r.rows),
            }
            for r in conn.execute(q)
        ]

    if isinstance(engine_or_conn, Connection):
        return run(engine_or_conn)
    with engine_or_conn.connect() as conn:
        return run(conn)


__all__ = [
    "EXTRACT_TABLES", "ExtractTable", "LoadError", "LoadResult", "StagedFile", "bulk_insert", "extract_table",
    "extract_tables", "load_current", "loaded_files", "prepare_frame", "rebuild_children", "relink_all", "role_table",
]
