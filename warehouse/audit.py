"""The audit log: an append-only, hash-chained table that Dagster's run history does not replace.

Each entry's hash covers the previous entry's hash and the entry's own canonical content::

    entry_hash = SHA-256( prev_hash || "\\n" || canonical JSON of (seq, recorded_at, actor, event_type, subject, details) )

so an edited, deleted or reordered entry breaks the chain, and ``verify`` names the first entry where it
breaks. Removing entries from the end leaves a valid shorter chain: compare against an anchor (the head
``(seq, entry_hash)`` recorded elsewhere, e.g. in the Dagster materialisation of the run that wrote it)
with ``verify(expected_head=...)``. Details never hold an identifier value: only file names, checksums,
counts, MOU ids, key ids, decisions.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from warehouse.models import AuditLog

GENESIS = "0" * 64
_AUDIT_LOCK_KEY = 0x_C2C_0002


@dataclass(frozen=True)
class AuditEvent:
    event_type: str
    subject: str
    details: Mapping[str, Any]
    actor: str = "c2c"


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    recorded_at: str
    actor: str
    event_type: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int
    head: tuple[int, str] | None
    problem: str | None = None
    first_bad_seq: int | None = None


def canonical_details(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def entry_hash(prev_hash: str, seq: int, recorded_at: str, actor: str, event_type: str, subject: str, details: str) -> str:
    body = json.dumps(
        [seq, recorded_at, actor, event_type, subject, json.loads(details)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body.encode("ascii")).hexdigest()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK_KEY})
    else:  # SQLite: take the write lock before reading the head
        conn.execute(text("UPDATE audit_log SET seq = seq WHERE seq < 0"))


def append_events(
    session: Session, events: Iterable[AuditEvent], *, now: dt.datetime | None = None
) -> list[AuditEntry]:
    """Append events inside the caller's transaction (so the audit entry commits with the decision)."""
    events = list(events)
    if not events:
        return []
    conn = session.connection()
    _lock(conn)
    last = session.execute(select(AuditLog.seq, AuditLog.entry_hash).order_by(AuditLog.seq.desc()).limit(1)).first()
    seq, prev = (last[0], last[1]) if last else (0, GENESIS)
    stamp = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    written = []
    for event in events:
        seq += 1
        details = canonical_details(event.details)
        h = entry_hash(prev, seq, stamp, event.actor, event.event_type, event.subject, details)
        session.add(
            AuditLog(
                seq=seq, recorded_at=stamp, actor=event.actor, event_type=event.event_type,
                subject=event.subject, details=details, prev_hash=prev, entry_hash=h,
            )
        )
        written.append(AuditEntry(seq, stamp, event.actor, event.event_type, event.subject, json.loads(details), prev, h))
        prev = h
    session.flush()
    return written


def record_events(engine: Engine, events: Iterable[AuditEvent], *, now: dt.datetime | None = None) -> list[AuditEntry]:
    """Append events in their own transaction."""
    with Session(engine) as s, s.begin():
        return append_events(s, events, now=now)


def read_entries(
    engine: Engine, *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[AuditEntry]:
    with Session(engine) as s:
        q = select(AuditLog).order_by(AuditLog.seq)
        if start is not None:
            q = q.where(AuditLog.recorded_at >= start.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"))
        if end is not None:
            q = q.where(AuditLog.recorded_at < end.astimezone(dt.timezone.utc).isoformat(timespec="microseconds"))
        return [
            AuditEntry(r.seq, r.recorded_at, r.actor, r.event_type, r.subject, json.loads(r.details), r.prev_hash, r.entry_hash)
            for r in s.scalars(q)
        ]


def verify(engine: Engine, expected_head: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the chain in ``seq`` order and report the first entry that was edited, deleted or moved."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    head: tuple[int, str] | None = None
    with Session(engine) as s:
        rows = s.execute(
            select(
                AuditLog.seq, AuditLog.recorded_at, AuditLog.actor, AuditLog.event_type,
                AuditLog.subject, AuditLog.details, AuditLog.prev_hash, AuditLog.entry_hash,
            ).order_by(AuditLog.seq)
        )
        for seq, at, actor, etype, subject, details, prev_hash, stored in rows:
            count += 1
            if seq != expected_seq:
                return VerifyResult(False, count, head, f"entry {expected_seq} is missing (next entry is {seq})", expected_seq)
            if prev_hash != prev:
                return VerifyResult(False, count, head, f"entry {seq} does not follow entry {seq - 1} (deleted, inserted or reordered)", seq)
            try:
                recomputed = entry_hash(prev, seq, at, actor, etype, subject, details)
            except (json.JSONDecodeError, UnicodeEncodeError):
                recomputed = ""
            if recomputed != stored:
                return VerifyResult(False, count, head, f"entry {seq} was changed after it was written", seq)
            prev = stored
            head = (seq, stored)
            expected_seq += 1
    if expected_head is not None:
        if head is None or head[0] < expected_head[0]:
            return VerifyResult(False, count, head, f"the log ends before entry {expected_head[0]} recorded as its head (entries removed from the end)", expected_head[0])
        anchored = _hash_at(engine, expected_head[0])
        if anchored != expected_head[1]:
            return VerifyResult(False, count, head, f"entry {expected_head[0]} differs from the recorded head (the log was rewritten)", expected_head[0])
    return VerifyResult(True, count, head)


def _hash_at(engine: Engine, seq: int) -> str | None:
    with Session(engine) as s:
        return s.scalar(select(AuditLog.entry_hash).where(AuditLog.seq == seq))


def head(engine: Engine) -> tuple[int, str] | None:
    with Session(engine) as s:
        row = s.execute(select(AuditLog.seq, AuditLog.entry_hash).order_by(AuditLog.seq.desc()).limit(1)).first()
        return (int(row[0]), str(row[1])) if row else None


def export_csv(entries: Iterable[AuditEntry]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["seq", "recorded_at", "actor", "event_type", "subject", "details", "prev_hash", "entry_hash"])
    for e in entries:
        w.writerow([e.seq, e.recorded_at, e.actor, e.event_type, e.subject, canonical_details(e.details), e.prev_hash, e.entry_hash])
    return buf.getvalue()
