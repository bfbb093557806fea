"""The intake manifest: every file ever seen, what was decided, and which file replaced which.

Snapshot rules (SPEC, "How extracts arrive"): a file is a complete snapshot of its extract for every period
it contains. For each period, the current data comes from the accepted file with the latest as-of date
that contains the period (ties: the one received last). A file dropped again under the same name with
different content is a corrected re-send and supersedes the earlier version outright. A file none of
whose periods is current any more is ``superseded``, with ``superseded_by`` naming the file that
replaced it. Extracts without a period column are whole-file snapshots.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from data_sharing.intake import IntakeDecision, PreviousSnapshot, SeenContent
from warehouse.audit import AuditEvent, append_events
from warehouse.locks import xact_lock
from warehouse.models import IntakeManifest

_PROCESSED = ("accepted", "superseded", "duplicate")
_MANIFEST_LOCK_KEY = 0x_C2C_0001


def _period_key(period: int | None) -> str:
    return "null" if period is None else str(period)


def encode_period_rows(period_rows: dict[int | None, int] | None) -> str | None:
    if period_rows is None:
        return None
    return json.dumps({_period_key(k): v for k, v in sorted(period_rows.items(), key=lambda kv: _period_key(kv[0]))})


def decode_period_rows(value: str | None) -> dict[int | None, int]:
    if not value:
        return {}
    return {(None if k == "null" else int(k)): int(v) for k, v in json.loads(value).items()}


@dataclass(frozen=True)
class ManifestEntry:
    """A read-only view of one manifest row (safe to hand to Dagster metadata: no file content)."""

    id: int
    rel_path: str
    file_name: str
    sha256: str | None
    size_bytes: int | None
    agency: str | None
    extract: str | None
    as_of_date: dt.date | None
    tokenized: bool
    rows: int | None
    duplicate_rows: int | None
    period_rows: dict[int | None, int]
    status: str
    reason_code: str | None
    reason: str | None
    warnings: list[str]
    superseded_by: int | None
    duplicate_of: int | None
    mou_id: str | None
    mou_version: int | None
    marker_sha256: str | None
    partition_key: str | None
    run_id: str | None
    first_seen_at: dt.datetime
    decided_at: dt.datetime

    @property
    def artifact_name(self) -> str:
        """The name of this file's derived artefacts (staging, encodings, validation): id and content."""
        return f"{self.id:08d}-{(self.sha256 or '')[:16]}.parquet"

    @classmethod
    def of(cls, row: IntakeManifest) -> ManifestEntry:
        return cls(
            id=row.id,
            rel_path=row.rel_path,
            file_name=row.file_name,
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            agency=row.agency,
            extract=row.extract,
            as_of_date=row.as_of_date,
            tokenized=row.tokenized,
            rows=row.rows,
            duplicate_rows=row.duplicate_rows,
            period_rows=decode_period_rows(row.period_rows),
            status=row.status,
            reason_code=row.reason_code,
            reason=row.reason,
            warnings=json.loads(row.warnings) if row.warnings else [],
            superseded_by=row.superseded_by,
            duplicate_of=row.duplicate_of,
            mou_id=row.mou_id,
            mou_version=row.mou_version,
            marker_sha256=row.marker_sha256,
            partition_key=row.partition_key,
            run_id=row.run_id,
            first_seen_at=row.first_seen_at,
            decided_at=row.decided_at,
        )


@dataclass(frozen=True)
class RecordOutcome:
    entry: ManifestEntry
    new: bool  # a row was inserted, or a refused row was decided differently
    superseded: tuple[int, ...]  # ids this decision made superseded


class ManifestStore:
    """Reads and writes ``intake_manifest``. Every write is one transaction, serialised across processes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- reads -----------------------------------------------------------------------------------
    def lookup_content(self, sha256: str, rel_path: str) -> SeenContent | None:
        """The first processed entry with this content under another path (the same file dropped twice)."""
        with Session(self.engine) as s:
            row = s.scalars(
                select(IntakeManifest)
                .where(
                    IntakeManifest.sha256 == sha256,
                    IntakeManifest.rel_path != rel_path,
                    IntakeManifest.status.in_(_PROCESSED),
                )
                .order_by(IntakeManifest.id)
                .limit(1)
            ).first()
            return SeenContent(row.id, row.rel_path, row.status) if row else None

    def find(self, rel_path: str, fingerprint: str) -> ManifestEntry | None:
        with Session(self.engine) as s:
            row = s.scalars(
                select(IntakeManifest).where(IntakeManifest.rel_path == rel_path, IntakeManifest.fingerprint == fingerprint)
            ).first()
            return ManifestEntry.of(row) if row else None

    def latest_for_path(self, rel_path: str) -> ManifestEntry | None:
        """The most recently decided entry for a drop path."""
        with Session(self.engine) as s:
            row = s.scalars(
                select(IntakeManifest)
                .where(IntakeManifest.rel_path == rel_path)
                .order_by(IntakeManifest.decided_at.desc(), IntakeManifest.id.desc())
                .limit(1)
            ).first()
            return ManifestEntry.of(row) if row else None

    def get(self, entry_id: int) -> ManifestEntry | None:
        with Session(self.engine) as s:
            row = s.get(IntakeManifest, entry_id)
            return ManifestEntry.of(row) if row else None

    def previous_snapshot(self, agency: str, extract: str, as_of: dt.date) -> PreviousSnapshot | None:
        """Rows per period of the current data that a file of this as-of date would replace."""
        owners = self._period_owners(agency, extract)
        period_rows: dict[int | None, int] = {}
        files: list[str] = []
        for period, entry in owners.items():
            if entry.as_of_date is not None and entry.as_of_date <= as_of:
                period_rows[period] = entry.period_rows.get(period, 0)
                files.append(entry.rel_path)
        if not period_rows:
            return None
        return PreviousSnapshot(period_rows=period_rows, files=tuple(sorted(set(files))))

    def entries(self, *, agency: str | None = None, extract: str | None = None) -> list[ManifestEntry]:
        with Session(self.engine) as s:
            q = select(IntakeManifest).order_by(IntakeManifest.id)
            if agency is not None:
                q = q.where(IntakeManifest.agency == agency)
            if extract is not None:
                q = q.where(IntakeManifest.extract == extract)
            return [ManifestEntry.of(r) for r in s.scalars(q)]

    def status_counts(self) -> dict[str, int]:
        with Session(self.engine) as s:
            rows = s.execute(select(IntakeManifest.status, func.count()).group_by(IntakeManifest.status))
            return {status: int(n) for status, n in rows}

    def current_snapshot(self) -> dict[tuple[str, str], dict[int | None, ManifestEntry]]:
        """For every (agency, extract): which accepted file holds the current data of each period."""
        out: dict[tuple[str, str], dict[int | None, ManifestEntry]] = {}
        for agency, extract in self._extracts_with_files():
            owners = self._period_owners(agency, extract)
            if owners:
                out[(agency, extract)] = owners
        return out

    def _extracts_with_files(self) -> list[tuple[str, str]]:
        with Session(self.engine) as s:
            rows = s.execute(
                select(IntakeManifest.agency, IntakeManifest.extract)
                .where(IntakeManifest.status == "accepted")
                .distinct()
                .order_by(IntakeManifest.agency, IntakeManifest.extract)
            )
            return [(a, e) for a, e in rows if a and e]

    def _period_owners(self, agency: str, extract: str) -> dict[int | None, ManifestEntry]:
        with Session(self.engine) as s:
            rows = list(
                s.scalars(
                    select(IntakeManifest).where(
                        IntakeManifest.agency == agency,
                        IntakeManifest.extract == extract,
                        IntakeManifest.status == "accepted",
                    )
                )
            )
        return _owners([ManifestEntry.of(r) for r in rows])

    # ---- writes ----------------------------------------------------------------------------------
    def record(
        self,
        decision: IntakeDecision,
        *,
        now: dt.datetime,
        partition_key: str | None = None,
        run_id: str | None = None,
    ) -> RecordOutcome:
        """Record a decision. Idempotent: the same content at the same path is recorded once.

        A refused entry is decided again when the same content comes back (its marker may now confirm it,
        or the agreement may have been renewed); a processed entry is never decided again.
        """
        with Session(self.engine) as s, s.begin():
            self._lock(s)
            row = s.scalars(
                select(IntakeManifest).where(
                    IntakeManifest.rel_path == decision.rel_path, IntakeManifest.fingerprint == decision.fingerprint
                )
            ).first()
            if row is not None and (row.status in _PROCESSED or _same_refusal(row, decision)):
                return RecordOutcome(ManifestEntry.of(row), new=False, superseded=())
            if row is None:
                row = IntakeManifest(rel_path=decision.rel_path, fingerprint=decision.fingerprint, first_seen_at=now)
                s.add(row)
            _apply(row, decision, now, partition_key, run_id)
            s.flush()
            superseded: list[int] = []
            if decision.accepted and decision.agency and decision.extract:
                changed = self._recompute(s, decision.agency, decision.extract, now)
                superseded += [i for i in changed if i != row.id and (getattr(s.get(IntakeManifest, i), "status", None) == "superseded")]
            s.flush()
            append_events(s, _audit_events(s, row, decision, superseded), now=now)
            return RecordOutcome(ManifestEntry.of(row), new=True, superseded=tuple(superseded))

    def _lock(self, s: Session) -> None:
        if self.engine.dialect.name == "postgresql":
            xact_lock(s.connection(), _MANIFEST_LOCK_KEY)
        else:  # SQLite: take the write lock now, before reading, so concurrent writers queue
            s.execute(update(IntakeManifest).where(IntakeManifest.id == -1).values(status="accepted"))

    def refuse(self, entry_id: int, reason_code: str, reason: str, *, now: dt.datetime, actor: str = "c2c.validation") -> ManifestEntry:
        """A file accepted at intake but refused later (e.g. by validation): the snapshot falls back to what
        was current before it, and the refusal is in the audit log."""
        with Session(self.engine) as s, s.begin():
            self._lock(s)
            row = s.get(IntakeManifest, entry_id)
            if row is None:
                raise KeyError(entry_id)
            if row.status == "refused" and row.reason_code == reason_code:
                return ManifestEntry.of(row)
            row.status, row.reason_code, row.reason, row.superseded_by, row.updated_at = "refused", reason_code, reason, None, now
            s.flush()
            restored = self._recompute(s, str(row.agency), str(row.extract), now) if row.agency and row.extract else []
            details = {"manifest_id": row.id, "sha256": row.sha256, "reason_code": reason_code, "reason": reason, "restored": restored}
            append_events(s, [AuditEvent("file_refused", row.rel_path, details, actor=actor)], now=now)
            return ManifestEntry.of(row)

    def _recompute(self, s: Session, agency: str, extract: str, now: dt.datetime) -> list[int]:
        """Derive every taken file's status from scratch; returns the ids whose status changed.

        Taken files are those accepted at intake and not refused since (status accepted or superseded).
        Among taken files of one as-of date the last received wins (a corrected re-send); among the
        winners, each period is held by the latest as-of date. A winner holding a period is accepted;
        every other taken file is superseded, naming the file that replaced it.
        """
        rows = s.scalars(
            select(IntakeManifest).where(
                IntakeManifest.agency == agency,
                IntakeManifest.extract == extract,
                IntakeManifest.status.in_(("accepted", "superseded")),
            )
        ).all()
        by_date: dict[dt.date | None, IntakeManifest] = {}
        for r in sorted(rows, key=lambda r: r.id):
            by_date[r.as_of_date] = r  # the last received for each as-of date
        winners = {r.id for r in by_date.values()}
        owners = _owners([ManifestEntry.of(r) for r in rows if r.id in winners])
        owning = {e.id for e in owners.values()}
        changed: list[int] = []
        for r in rows:
            before = (r.status, r.superseded_by, r.reason_code)
            if r.id not in winners:
                winner = by_date[r.as_of_date]
                r.status, r.superseded_by, r.reason_code = "superseded", winner.id, "corrected_resend"
                r.reason = f"Replaced by a corrected re-send of the same extract and date ({winner.rel_path})."
            elif r.id in owning:
                r.status, r.superseded_by, r.reason_code, r.reason = "accepted", None, None, None
            else:
                periods = decode_period_rows(r.period_rows)
                replacer = next((owners[p].id for p in sorted(periods, key=_period_key) if p in owners), None)
                if replacer is None:
                    replacer = max(owning, default=None)
                if replacer is None:  # nothing else holds data: keep it (e.g. an empty first snapshot)
                    r.status, r.superseded_by, r.reason_code, r.reason = "accepted", None, None, None
                else:
                    r.status, r.superseded_by, r.reason_code = "superseded", replacer, "replaced_by_later_snapshot"
                    r.reason = "Every period in this file is now held by a snapshot with a later as-of date."
            if (r.status, r.superseded_by, r.reason_code) != before:
                r.updated_at = now
                changed.append(r.id)
        return changed


def _owners(entries: Iterable[ManifestEntry]) -> dict[int | None, ManifestEntry]:
    """Which accepted entry holds each period: latest as-of date, then the one received last."""
    ordered = sorted(entries, key=lambda e: (e.as_of_date or dt.date.min, e.id), reverse=True)
    owners: dict[int | None, ManifestEntry] = {}
    for entry in ordered:
        for period in entry.period_rows:
            owners.setdefault(period, entry)
    return owners


_MOU_REFUSALS = {"unknown_extract", "wrong_agency_folder", "mou_not_in_force", "columns_not_permitted", "missing_columns"}


def _audit_events(s: Session, row: IntakeManifest, d: IntakeDecision, superseded: list[int]) -> list[AuditEvent]:
    """What the audit log keeps of a decision: names, checksums, counts and reasons; never file content."""
    details: dict = {
        "manifest_id": row.id,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "agency": row.agency,
        "extract": row.extract,
        "as_of_date": row.as_of_date.isoformat() if row.as_of_date else None,
        "rows": row.rows,
        "run_id": row.run_id,
    }
    if d.status == "refused":
        details.update(reason_code=d.reason_code, reason=d.reason)
    if d.status == "duplicate":
        details.update(duplicate_of=d.duplicate_of)
    events = [AuditEvent(f"file_{d.status}", row.rel_path, details, actor="c2c.intake")]
    if d.mou_id is not None and (d.extract is not None or d.reason_code in _MOU_REFUSALS):
        permitted = d.status != "refused" or d.reason_code not in _MOU_REFUSALS
        events.append(
            AuditEvent(
                "mou_decision",
                row.rel_path,
                {
                    "mou_id": d.mou_id,
                    "mou_version": d.mou_version,
                    "decision": "permitted" if permitted else "refused",
                    "reason_code": None if permitted else d.reason_code,
                    "sha256": row.sha256,
                },
                actor="c2c.intake",
            )
        )
    for old_id in superseded:
        old = s.get(IntakeManifest, old_id)
        if old is not None:
            events.append(
                AuditEvent(
                    "file_superseded",
                    old.rel_path,
                    {"manifest_id": old.id, "sha256": old.sha256, "superseded_by": row.id,
                     "superseded_by_sha256": row.sha256, "reason_code": old.reason_code},
                    actor="c2c.intake",
                )
            )
    return events


def _same_refusal(row: IntakeManifest, decision: IntakeDecision) -> bool:
    return row.status == decision.status and row.reason_code == decision.reason_code and row.reason == decision.reason


def _apply(
    row: IntakeManifest, d: IntakeDecision, now: dt.datetime, partition_key: str | None, run_id: str | None
) -> None:
    row.file_name = d.file_name
    row.sha256 = d.sha256
    row.size_bytes = d.size_bytes
    row.agency = d.agency
    row.extract = d.extract
    row.as_of_date = d.as_of
    row.tokenized = d.tokenized
    row.rows = d.rows
    row.duplicate_rows = d.duplicate_rows
    row.period_rows = encode_period_rows(d.period_rows)
    row.status = d.status
    row.reason_code = d.reason_code
    row.reason = d.reason
    row.warnings = json.dumps(d.warnings) if d.warnings else None
    row.duplicate_of = d.duplicate_of
    row.superseded_by = None
    row.mou_id = d.mou_id
    row.mou_version = d.mou_version
    row.marker_sha256 = d.marker_sha256
    row.partition_key = partition_key
    row.run_id = run_id
    row.decided_at = now
    row.updated_at = now
