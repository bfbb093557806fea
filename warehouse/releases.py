"""Atomic, versioned releases of ``indicator_values`` (the public tier).

:func:`publish_release` computes every indicator from its definition (``warehouse.indicators``), applies
disclosure control, and publishes in **one transaction**:

1. a ``releases`` row (run id, time, definition versions and file checksums, the SHA-256 of every
   contributing source file as loaded now, the linkage quality the caller passes, release notes);
2. the release's ``indicator_values`` rows (bulk: COPY on PostgreSQL);
3. the ``current_release`` pointer flipped to it;
4. releases beyond the last ``keep`` deleted (with their values);
5. a ``release`` event appended to the audit log, and the log's head after it (seq, entry hash, audit key
   label) recorded in the release row (``audit_head``), so ``c2c audit verify`` catches a log cut back or
   rewritten before it.

Readers select from the ``current_indicator_values`` view (or :func:`current_indicator_values`), which
follows the pointer, so they see the previous release until the commit and the new one after it, never a
half-written release; if anything fails, the transaction rolls back and the previous release stays
current. On PostgreSQL the run holds a session advisory lock (one release at a time) and computes in a
``REPEATABLE READ`` snapshot, so a load committing meanwhile cannot mix two states of the data.

A computation that yields **no indicator row** (an empty warehouse, e.g. a new hub before its first school
extract, or a warehouse emptied by mistake) is refused with :class:`EmptyReleaseError`: an empty release
would replace a good one for every reader, so nothing is written and the previous release (if any) stays
current. The nightly asset turns the refusal into a failed check on a new hub and a failed run otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from data_sharing.publication import publishable_quality
from schemas.contracts import load_extract_contracts
from schemas.indicators import DefinitionSet, load_indicator_definitions
from schemas.roles import ROLES
from warehouse.audit import AuditEntry, AuditEvent, AuditKeys, append_events, audit_keys
from warehouse.indicators import PUBLISHED_COLUMNS, compute_indicator_rows, extracts_read, protect_rows, role_min_cell_sizes
from warehouse.indicators import min_cell_size
from warehouse.load import ExtractTable, bulk_insert, extract_tables, loaded_files
from warehouse.models import CurrentRelease, Enrolment, IndicatorValue, Release
from warehouse.locks import session_lock, session_unlock
from warehouse.partitions import RELEASE_LOCK_KEY

if TYPE_CHECKING:
    from schemas.partnership import Partnership

DEFAULT_KEEP = 5
POINTER = "indicators"
_RELEASE_LOCK_KEY = RELEASE_LOCK_KEY  # warehouse.partitions: loads that truncate take it too

KNOWN_LIMITATIONS = (
    "Tables are protected one indicator and period at a time: differencing across indicators or years is not prevented.",
    "Only exact linear derivation from the published sums is prevented; bounds (counts are non-negative) can narrow a suppressed value.",
    "Cross-agency numerators depend on record linkage; the linkage quality this release rests on is published with it.",
)


class ReleaseError(ValueError):
    """A release cannot be made as asked (bad arguments); nothing was published."""


class EmptyReleaseError(ReleaseError):
    """The indicators computed to no row at all; nothing was published and the previous release (if any)
    stays current. ``current_release_id`` is that release (None on a hub that never published)."""

    def __init__(self, message: str, current_release_id: int | None) -> None:
        super().__init__(message)
        self.current_release_id = current_release_id


@dataclass(frozen=True)
class ReleaseInfo:
    """One release as recorded (no values; safe for metadata)."""

    release_id: int
    run_id: str | None
    created_at: dt.datetime
    rows: int
    suppressed_rows: int
    definitions: dict[str, Any]
    source_files: list[dict[str, Any]]
    linkage_quality: dict[str, Any]
    notes: str
    is_current: bool
    previous_release_id: int | None = None
    pruned: tuple[int, ...] = ()
    by_reason: Mapping[str, int] | None = None
    timings: Mapping[str, float] | None = None  # seconds: compute (SQL), protect, write (rows, pointer, audit)
    audit_head: Mapping[str, Any] | None = None  # the audit log's head after this release's entry (seq, entry_hash, key)
    table_states: Mapping[str, str] | None = None  # per warehouse table, the state computed from (table_states)
    reused: tuple[str, ...] = ()  # indicators whose rows were copied from the previous release (inputs unchanged)

    def metadata(self) -> dict[str, Any]:
        return {
            "release_id": self.release_id, "run_id": self.run_id, "created_at": self.created_at.isoformat(),
            "rows": self.rows, "suppressed_rows": self.suppressed_rows, "by_reason": dict(self.by_reason or {}),
            "definitions": {k: v["version"] for k, v in self.definitions.items()},
            "source_files": len(self.source_files), "previous_release_id": self.previous_release_id,
            "pruned": list(self.pruned), "timings": dict(self.timings or {}),
            "audit_head": dict(self.audit_head) if self.audit_head else None,
            "reused": list(self.reused),
        }


def _canonical(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    except (TypeError, ValueError) as exc:
        raise ReleaseError(f"{what} must be JSON-serialisable: {exc}") from None


def release_notes(definitions: DefinitionSet | Mapping[str, Any]) -> str:
    lines = ["Known limitations:"] + [f"- {t}" for t in KNOWN_LIMITATIONS]
    for d in sorted(definitions.values(), key=lambda d: d.id):
        lines += [f"- {d.id} (v{d.version}): {t}" for t in d.limitations]
    return "\n".join(lines)


def _min_cell_sizes(
    partnership: Partnership | None, min_cell_sizes: Mapping[str, int] | None
) -> tuple[dict[str, int], dict[str, ExtractTable]]:
    """k per extract role and the partnership's extract tables.

    ``min_cell_sizes`` maps agency ids (or role names) to k; default: the partnership's MOUs. A role's k is
    the largest of the agencies sending an extract of that role.
    """
    if partnership is None and min_cell_sizes is None:
        from schemas.partnership import load_partnership

        partnership = load_partnership()
    contracts = partnership.contracts if partnership is not None else load_extract_contracts()
    tables = extract_tables(contracts)
    if min_cell_sizes is None:
        assert partnership is not None
        min_cell_sizes = {a: int(ag.min_cell_size) for a, ag in partnership.agreements.items()}
    roles_of: dict[str, set[str]] = {}
    for spec in tables.values():
        roles_of.setdefault(spec.agency, set()).add(spec.role)
    ks = role_min_cell_sizes({str(a): int(k) for a, k in min_cell_sizes.items()}, roles_of)
    ks.update({str(r): int(k) for r, k in min_cell_sizes.items() if r in ROLES})
    return ks, tables


def k_by_role(partnership: Partnership | None, min_cell_sizes: Mapping[str, int] | None = None) -> dict[str, int]:
    """The disclosure threshold k per extract role (see ``_min_cell_sizes``)."""
    return _min_cell_sizes(partnership, min_cell_sizes)[0]


def _lock_sqlite(conn: Connection) -> None:
    cr = CurrentRelease.__table__
    conn.execute(update(cr).where(cr.c.name == "").values(name=""))  # takes SQLite's write lock now


def _write_values(conn: Connection, release_id: int, published: pd.DataFrame) -> int:
    frame = published[list(PUBLISHED_COLUMNS)].copy()
    frame.insert(0, "release_id", release_id)
    frame["numerator"] = frame["numerator"].astype("Int64")
    frame["denominator"] = frame["denominator"].astype("Int64")
    frame["period"] = frame["period"].astype("int64")
    return bulk_insert(conn, IndicatorValue.__table__, frame)  # type: ignore[arg-type]


def _set_current(conn: Connection, release_id: int, now: dt.datetime) -> int | None:
    """Flip the pointer; returns the release it pointed to before."""
    cr = CurrentRelease.__table__
    previous = conn.execute(select(cr.c.release_id).where(cr.c.name == POINTER)).scalar()
    if previous is None:
        conn.execute(insert(cr).values(name=POINTER, release_id=release_id, updated_at=now))
    else:
        conn.execute(update(cr).where(cr.c.name == POINTER).values(release_id=release_id, updated_at=now))
    return previous


def _prune(conn: Connection, keep: int) -> tuple[int, ...]:
    r = Release.__table__
    old = [int(x) for x in conn.execute(select(r.c.release_id).order_by(r.c.release_id.desc()).offset(keep)).scalars()]
    if old:
        conn.execute(delete(IndicatorValue.__table__).where(IndicatorValue.__table__.c.release_id.in_(old)))
        conn.execute(delete(r).where(r.c.release_id.in_(old)))
    return tuple(sorted(old))


def table_states(conn: Connection, tables: Mapping[str, ExtractTable], link_state: str) -> dict[str, str]:
    """Per warehouse table of an extract role: a digest of the files loaded into it (agency, extract,
    SHA-256, periods) and ``link_state`` (what its rows' child keys come from: the crosswalk and the
    pseudonym key). Equal digests, equal rows."""
    table_of = {key: spec.table.name for key, spec in tables.items()}
    files: dict[str, list[str]] = {}
    for f in loaded_files(conn, sorted(table_of)):
        files.setdefault(table_of[f"{f['agency']}/{f['extract']}"], []).append(
            _canonical([f["agency"], f["extract"], f["sha256"], f["periods"]], "file"))
    return {
        t: hashlib.sha256(_canonical({"files": sorted(files.get(t, [])), "link": link_state}, "state").encode()).hexdigest()
        for t in sorted(set(table_of.values()))
    }


def tables_read(d: Any) -> set[str]:
    """The warehouse tables a definition's SQL reads: those of the roles it reads (kind and definition)."""
    return {ROLES[r].table for r in d.roles_read}


def _reusable(definitions: DefinitionSet, versions: Mapping[str, Any], states: Mapping[str, str] | None,
              previous: Mapping[str, Any] | None, current: int | None) -> list[str]:
    """The indicators whose every definition (version, file, k) and every table read are as they were for
    ``previous`` (``{"release_id", "definitions", "tables"}``), which must be the current release."""
    if states is None or previous is None or current is None or previous.get("release_id") != current:
        return []
    before_defs, before_tables = previous.get("definitions") or {}, previous.get("tables") or {}

    def same(d: Any) -> bool:
        return before_defs.get(d.id) == versions[d.id] and all(before_tables.get(t) == states.get(t) for t in tables_read(d))

    return sorted(i for i, defs in definitions.by_indicator().items() if all(same(d) for d in defs))


def _copied_rows(conn: Connection, release_id: int, indicators: list[str]) -> pd.DataFrame:
    """The published rows of ``indicators`` in release ``release_id``, as :func:`protect_rows` returns them."""
    iv = IndicatorValue.__table__
    if not indicators:
        return pd.DataFrame(columns=list(PUBLISHED_COLUMNS))
    q = select(*(iv.c[c] for c in PUBLISHED_COLUMNS)).where(iv.c.release_id == release_id, iv.c.indicator.in_(indicators))
    df = pd.DataFrame(list(conn.execute(q).all()), columns=list(PUBLISHED_COLUMNS))
    df["suppressed"] = df["suppressed"].astype(bool)
    df["suppression_reason"] = df["suppression_reason"].astype(object).where(df["suppression_reason"].notna(), None)
    return df


def publish_release(
    engine: Engine,
    *,
    linkage_quality: Mapping[str, Any],
    run_id: str | None = None,
    definitions: DefinitionSet | None = None,
    partnership: Partnership | None = None,
    min_cell_sizes: Mapping[str, int] | None = None,
    keep: int = DEFAULT_KEEP,
    now: dt.datetime | None = None,
    actor: str = "c2c",
    pg_work_mem: str | None = "256MB",
    link_state: str | None = None,
    previous: Mapping[str, Any] | None = None,
) -> ReleaseInfo:
    """Compute, protect and publish every indicator as a new current release (see the module docstring).

    ``linkage_quality``: what the release rests on, e.g. ``{"fps~fhd": {"records": 48210, "link_rate":
    0.962}, ...}`` (JSON-serialisable; counts and rates only). ``definitions`` default to
    ``schemas/indicators``; ``k`` comes from ``min_cell_sizes`` (agency -> k) or the partnership's MOUs
    (loaded when not given). Keeps the last ``keep`` releases.

    ``link_state`` (what the tables' child keys come from) turns on incremental releases: the release
    records :func:`table_states`, and when ``previous`` (the current release's id, ``definitions`` and
    ``tables`` as a previous call returned them) still describes the current release, the indicators whose
    definitions and tables read are unchanged are copied from it instead of recomputed. Indicators are
    protected one indicator and period at a time, so the release is the same as a full computation.
    """
    if keep < 1:
        raise ReleaseError("keep must be at least 1 (the current release)")
    if not isinstance(linkage_quality, Mapping):
        raise ReleaseError("linkage_quality must be a mapping (records and link rates per agency pair)")
    definitions = definitions if definitions is not None else load_indicator_definitions()
    if not isinstance(definitions, DefinitionSet):
        definitions = DefinitionSet(definitions)
    ks, tables = _min_cell_sizes(partnership, min_cell_sizes)
    # the release row is public: small linkage counts are published as "<k" (the strictest MOU's k)
    linkage_json = _canonical(publishable_quality(dict(linkage_quality), max(ks.values(), default=1)), "linkage_quality")
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if pg:
            session_lock(conn, _RELEASE_LOCK_KEY)
            conn.commit()
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            with Session(bind=conn) as session, session.begin():
                c = session.connection()
                if pg:
                    if pg_work_mem:
                        c.execute(select(func.set_config("work_mem", pg_work_mem, True)))
                else:
                    _lock_sqlite(c)
                info = _publish(session, c, definitions, ks, tables, linkage_json, run_id, keep, now, actor,
                                (link_state, previous))
        finally:
            if pg:
                conn.rollback()
                conn.execution_options(isolation_level="READ COMMITTED")
                session_unlock(conn, _RELEASE_LOCK_KEY)
                conn.commit()
    return info


def _publish(
    session: Session,
    conn: Connection,
    definitions: DefinitionSet,
    ks: Mapping[str, int],
    tables: Mapping[str, ExtractTable],
    linkage_json: str,
    run_id: str | None,
    keep: int,
    now: dt.datetime,
    actor: str,
    incremental: tuple[str | None, Mapping[str, Any] | None] = (None, None),
) -> ReleaseInfo:
    link_state, basis = incremental
    versions = {i: {**v, "k": min_cell_size(definitions[i], ks)} for i, v in definitions.versions().items()}  # k: the rule that applied
    states = table_states(conn, tables, link_state) if link_state is not None else None
    current = current_release_id(conn)
    reused = _reusable(definitions, versions, states, basis, current)
    t0 = time.perf_counter()
    todo = DefinitionSet({i: d for i, d in definitions.items() if d.indicator not in reused})
    rows = compute_indicator_rows(conn, todo, ks)
    t1 = time.perf_counter()
    published = protect_rows(rows, todo)
    if reused:
        assert current is not None
        published = pd.concat([published, _copied_rows(conn, current, reused)], ignore_index=True).sort_values(
            ["indicator", "period", "school_id", "dimension", "group"], kind="stable").reset_index(drop=True)
    t2 = time.perf_counter()
    if len(published) == 0:
        _refuse_empty(conn, definitions)
    sources = loaded_files(conn, extracts_read(definitions, tables))
    suppressed = int(published["suppressed"].sum()) if len(published) else 0
    by_reason = {str(k): int(v) for k, v in published["suppression_reason"].value_counts().sort_index().items()} if len(published) else {}
    release = Release(
        run_id=run_id, created_at=now, definitions=_canonical(versions, "definitions"),
        source_files=_canonical(sources, "source_files"), linkage_quality=linkage_json, rows=len(published),
        suppressed_rows=suppressed, notes=release_notes(definitions),
    )
    session.add(release)
    session.flush()
    release_id = int(release.release_id)
    _write_values(conn, release_id, published)
    previous = _set_current(conn, release_id, now)
    pruned = _prune(conn, keep)
    details = {
        "release_id": release_id, "run_id": run_id, "rows": len(published), "suppressed_rows": suppressed,
        "by_reason": by_reason, "definitions": {k: v["version"] for k, v in versions.items()},
        "source_files": [{k: f[k] for k in ("agency", "extract", "manifest_id", "sha256")} for f in sources],
        "linkage_quality": json.loads(linkage_json), "previous_release_id": previous, "pruned": list(pruned),
    }
    entries = append_events(session, [AuditEvent("release", f"indicators release {release_id}", details, actor=actor)], now=now)
    head = _audit_head(entries[-1], audit_keys(conn))
    release.audit_head = _canonical(head, "audit_head")
    session.flush()
    timings = {"compute": round(t1 - t0, 3), "protect": round(t2 - t1, 3), "write": round(time.perf_counter() - t2, 3)}
    return ReleaseInfo(
        release_id=release_id, run_id=run_id, created_at=now, rows=len(published), suppressed_rows=suppressed,
        definitions=versions, source_files=sources, linkage_quality=json.loads(linkage_json),
        notes=release.notes, is_current=True, previous_release_id=previous, pruned=pruned, by_reason=by_reason,
        timings=timings, audit_head=head, table_states=states, reused=tuple(reused),
    )


def _audit_head(entry: AuditEntry, key: AuditKeys | None) -> dict[str, Any]:
    """The audit log's head as a release records it: ``c2c audit verify`` checks the log against it."""
    return {"seq": entry.seq, "entry_hash": entry.entry_hash, "key": key.current if key is not None else None}


def _refuse_empty(conn: Connection, definitions: DefinitionSet) -> None:
    """Raise :class:`EmptyReleaseError`, saying what the warehouse lacks and which release stays current."""
    e = Enrolment.__table__
    enrolments = int(conn.execute(select(func.count()).select_from(e)).scalar() or 0)
    placed = int(conn.execute(select(func.count()).select_from(e).where(e.c.school_year.is_not(None), e.c.school_id.is_not(None))).scalar() or 0)
    if len(definitions) == 0:
        why = "there is no indicator definition"
    elif enrolments == 0:
        why = "the warehouse holds no student enrolment (no extract of role school_enrolment has been loaded yet)"
    elif placed == 0:
        why = f"none of the warehouse's {enrolments} enrolments has a school year and a school"
    else:
        why = f"the {len(definitions)} indicator definition(s) counted no student in the {placed} enrolments"
    current = current_release_id(conn)
    kept = f"release {current} stays current" if current is not None else "there is no release yet"
    raise EmptyReleaseError(f"no indicator rows to publish: {why}; nothing was published and {kept}", current)


# --------------------------------------------------------------------------------------------------
# Readers


def _info(row: Any, current: int | None) -> ReleaseInfo:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.timezone.utc)
    return ReleaseInfo(
        release_id=int(row.release_id), run_id=row.run_id, created_at=created, rows=int(row.rows),
        suppressed_rows=int(row.suppressed_rows), definitions=json.loads(row.definitions),
        source_files=json.loads(row.source_files), linkage_quality=json.loads(row.linkage_quality),
        notes=row.notes, is_current=int(row.release_id) == current,
        audit_head=json.loads(row.audit_head) if getattr(row, "audit_head", None) else None,
    )


def current_release_id(conn: Connection) -> int | None:
    cr = CurrentRelease.__table__
    value = conn.execute(select(cr.c.release_id).where(cr.c.name == POINTER)).scalar()
    return None if value is None else int(value)


def list_releases(engine: Engine) -> list[ReleaseInfo]:
    """The kept releases, newest first."""
    r = Release.__table__
    with engine.connect() as conn:
        current = current_release_id(conn)
        return [_info(row, current) for row in conn.execute(select(r).order_by(r.c.release_id.desc()))]


def current_release(engine: Engine) -> ReleaseInfo | None:
    """The release readers see now (None before the first release)."""
    r = Release.__table__
    with engine.connect() as conn:
        current = current_release_id(conn)
        if current is None:
            return None
        row = conn.execute(select(r).where(r.c.release_id == current)).one()
        return _info(row, current)


def current_indicator_values(engine: Engine, *, release_id: int | None = None) -> pd.DataFrame:
    """The published rows of the current release (or of ``release_id``), as the public tier sees them.

    Columns: ``release_id`` and the SPEC's (``indicator``, ``period`` int, ``school_id``, ``dimension``,
    ``group``, ``numerator``/``denominator`` nullable ints, ``rate`` float, ``suppressed`` bool,
    ``suppression_reason``). Empty before the first release.
    """
    iv = IndicatorValue.__table__
    cols = ["release_id", *PUBLISHED_COLUMNS]
    with engine.connect() as conn:
        rid = release_id if release_id is not None else current_release_id(conn)
        if rid is None:
            rows: list[Any] = []
        else:
            q = select(*(iv.c[c] for c in cols)).where(iv.c.release_id == rid).order_by(
                iv.c.indicator, iv.c.period, iv.c.school_id, iv.c.dimension, iv.c.group
            )
            rows = list(conn.execute(q).all())
    df = pd.DataFrame(rows, columns=cols)
    df["release_id"] = df["release_id"].astype("int64")
    df["period"] = df["period"].astype("int64")
    df["numerator"] = df["numerator"].astype("Int64")
    df["denominator"] = df["denominator"].astype("Int64")
    df["rate"] = df["rate"].astype("float64")
    df["suppressed"] = df["suppressed"].astype(bool)
    df["suppression_reason"] = df["suppression_reason"].astype(object).where(df["suppression_reason"].notna(), None)
    return df


__all__ = [
    "DEFAULT_KEEP", "KNOWN_LIMITATIONS", "EmptyReleaseError", "ReleaseError", "ReleaseInfo", "current_indicator_values", "current_release",
    "current_release_id", "list_releases", "publish_release", "release_notes",
]
