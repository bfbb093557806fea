"""The audit log: an append-only, keyed hash chain that Dagster's run history does not replace.

Each entry's hash covers the previous entry's hash and the entry's own canonical content::

    entry_hash = HMAC-SHA256( audit key, prev_hash || "\\n" || canonical JSON of (seq, recorded_at, actor,
                                                                         event_type, subject, details) )

with the hub's ``audit`` purpose key (derived from the master secret like the other purpose keys; only
its label ``audit/v<n>/<key id>`` is ever written). Without the key nobody can recompute a chain, so an
edited, deleted, reordered or wholly rewritten log fails ``verify``, which names the first entry where it
breaks. Removing entries from the end leaves a valid shorter chain: every release records the head
``(seq, entry_hash, key label)`` in its row (``releases.audit_head``) and ``verify`` checks the log
against every recorded head, so a log cut back before the latest release fails without ``--head``
(``verify(expected_head=...)`` still anchors to a head recorded anywhere else).

Keying began with an entry of type ``audit_chain_keyed`` (the *marker*, details ``{"key": label}``):
entries before the first marker were written unkeyed (``SHA-256`` instead of the HMAC) and verify as
legacy; from a marker on every entry must carry the HMAC of the key it names (a later marker switches
to a rotated audit key). c2c writes the marker itself on the first append with a key. Details never hold
an identifier value: only file names, checksums, counts, MOU ids, key ids, decisions.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, make_url, select, text
from sqlalchemy.orm import Session

from warehouse.locks import xact_lock
from warehouse.models import AuditLog, Release

GENESIS = "0" * 64
_AUDIT_LOCK_KEY = 0x_C2C_0002
MARKER = "audit_chain_keyed"


class AuditKeyError(RuntimeError):
    """The audit log is keyed and the audit key it needs is not available (no key is ever in the message)."""


@dataclass(frozen=True)
class AuditKeys:
    """The hub's audit keys: the current label and every version's secret by label (secrets never shown)."""

    current: str
    secrets: Mapping[str, bytes] = field(repr=False)


_providers: dict[str, Callable[[], AuditKeys | None]] = {}


def warehouse_id(url: str, schema: str | None = None) -> str:
    """Which warehouse an audit key belongs to: its URL (no password) and, on PostgreSQL, its schema."""
    from warehouse.db import normalise_url

    parsed = make_url(normalise_url(str(url)))
    pg = parsed.get_backend_name() == "postgresql"
    return parsed.render_as_string(hide_password=True) + "#" + ((schema or "public") if pg else "")


def set_key_provider(provider: Callable[[], AuditKeys | None] | None, *, warehouse: str | None = None) -> None:
    """Where the audit keys of ``warehouse`` (a :func:`warehouse_id`) come from; the pipeline's doors
    register the hub's key set. ``provider=None`` forgets one warehouse's (or, without ``warehouse``, every)
    registration: its log is then written unkeyed, which a keyed log refuses."""
    if warehouse is None and provider is None:
        _providers.clear()
    elif warehouse is None:
        raise ValueError("name the warehouse the audit key belongs to (warehouse_id(url, schema))")
    elif provider is None:
        _providers.pop(warehouse, None)
    else:
        _providers[warehouse] = provider


def _id_of(conn: Connection) -> str:
    schema = conn.execute(text("SELECT current_schema()")).scalar() if conn.dialect.name == "postgresql" else None
    return warehouse_id(conn.engine.url.render_as_string(hide_password=False), schema)


def audit_keys(conn: Connection) -> AuditKeys | None:
    """The audit keys registered for the warehouse ``conn`` is connected to (None: none registered)."""
    provider = _providers.get(_id_of(conn)) if _providers else None
    return provider() if provider is not None else None


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
    keyed_from: int | None = None  # seq of the first keying marker (None: the chain is not keyed)


def canonical_details(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def entry_hash(
    prev_hash: str, seq: int, recorded_at: str, actor: str, event_type: str, subject: str, details: str,
    key: bytes | None = None,
) -> str:
    """HMAC-SHA256 with ``key`` (keyed entries), else SHA-256 (legacy entries before the first marker)."""
    body = json.dumps(
        [seq, recorded_at, actor, event_type, subject, json.loads(details)],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    message = prev_hash.encode("ascii") + b"\n" + body.encode("ascii")
    if key is not None:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def _marker_label(details: str) -> str | None:
    try:
        label = json.loads(details).get("key")
    except (json.JSONDecodeError, AttributeError):
        return None
    return label if isinstance(label, str) else None


def _regime(session: Session) -> str | None:
    """The audit key label the chain is under now (the last marker's), None while unkeyed."""
    details = session.scalar(
        select(AuditLog.details).where(AuditLog.event_type == MARKER).order_by(AuditLog.seq.desc()).limit(1)
    )
    return None if details is None else _marker_label(details)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        xact_lock(conn, _AUDIT_LOCK_KEY)
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
    regime, keys = _regime(session), audit_keys(conn)
    if keys is None:
        if regime is not None:
            raise AuditKeyError(
                f"the audit log is keyed ({regime}) and this process has no audit key: load the hub's key set "
                "(key file or C2C_MASTER_KEY) to write to it"
            )
        key = None
    else:
        if regime != keys.current:  # first keyed append, or a rotated audit key: the marker comes first
            events.insert(0, AuditEvent(MARKER, "audit chain", {"key": keys.current, "previous_key": regime}, actor="c2c.audit"))
        key = keys.secrets[keys.current]
    written = []
    for event in events:
        seq += 1
        details = canonical_details(event.details)
        h = entry_hash(prev, seq, stamp, event.actor, event.event_type, event.subject, details, key)
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


def verify(engine: Engine, expected_head: tuple[int, str] | None = None, *, keys: AuditKeys | None = None) -> VerifyResult:
    """Walk the chain in ``seq`` order and report the first entry that was edited, deleted, moved or
    rewritten; then check the heads recorded by every release (and ``expected_head``, if given).

    ``keys`` default to the audit keys registered for this warehouse (:func:`set_key_provider`). A keyed log cannot be
    verified without them (that is the point: nobody without them can recompute it either)."""
    if keys is None:
        with engine.connect() as conn:
            keys = audit_keys(conn)
    secrets = dict(keys.secrets) if keys is not None else {}
    result = _walk(engine, secrets)
    if not result.ok:
        return result
    heads: list[tuple[int, str, str, int | None]] = []
    if expected_head is not None:
        heads.append((expected_head[0], expected_head[1], "the recorded head", None))
    heads += _release_heads(engine)
    for seq, digest, where, release_id in heads:
        if result.head is None or result.head[0] < seq:
            return VerifyResult(False, result.entries, result.head,
                                f"the log ends before entry {seq}, {where} (entries removed from the end)", seq, result.keyed_from)
        if _hash_at(engine, seq) != digest:
            return VerifyResult(False, result.entries, result.head,
                                f"entry {seq} differs from {where} (the log was rewritten)", seq, result.keyed_from)
        if release_id is not None and _release_of(engine, seq) != release_id:
            return VerifyResult(False, result.entries, result.head,
                                f"entry {seq}, {where}, is not that release's entry (the head was altered)", seq, result.keyed_from)
    return result


def _walk(engine: Engine, secrets: Mapping[str, bytes]) -> VerifyResult:
    prev = GENESIS
    expected_seq = 1
    count = 0
    head: tuple[int, str] | None = None
    regime: str | None = None
    keyed_from: int | None = None
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
                return VerifyResult(False, count, head, f"entry {expected_seq} is missing (next entry is {seq})", expected_seq, keyed_from)
            if prev_hash != prev:
                return VerifyResult(False, count, head, f"entry {seq} does not follow entry {seq - 1} (deleted, inserted or reordered)", seq, keyed_from)
            if etype == MARKER:
                regime = _marker_label(details)
                if regime is None:
                    return VerifyResult(False, count, head, f"entry {seq} is a keying marker without a key label", seq, keyed_from)
                keyed_from = keyed_from or seq
            if regime is not None and regime not in secrets:
                return VerifyResult(False, count, head, f"entry {seq} is keyed with {regime}, which this key set does not hold "
                                    "(run `c2c audit verify` with the hub's key set)", seq, keyed_from)
            try:
                recomputed = entry_hash(prev, seq, at, actor, etype, subject, details, secrets.get(regime) if regime else None)
            except (json.JSONDecodeError, UnicodeEncodeError):
                recomputed = ""
            if not hmac.compare_digest(recomputed, stored):
                return VerifyResult(False, count, head, f"entry {seq} was changed after it was written", seq, keyed_from)
            prev = stored
            head = (seq, stored)
            expected_seq += 1
    return VerifyResult(True, count, head, keyed_from=keyed_from)


def _release_of(engine: Engine, seq: int) -> int | None:
    """The release id of entry ``seq`` if it is a ``release`` entry."""
    with Session(engine) as s:
        row = s.execute(select(AuditLog.event_type, AuditLog.details).where(AuditLog.seq == seq)).first()
    if row is None or row[0] != "release":
        return None
    try:
        return int(json.loads(row[1])["release_id"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _release_heads(engine: Engine) -> list[tuple[int, str, str, int | None]]:
    """(seq, entry_hash, where, release id) of the audit head every kept release recorded."""
    out: list[tuple[int, str, str, int | None]] = []
    with Session(engine) as s:
        for release_id, raw in s.execute(select(Release.release_id, Release.audit_head).order_by(Release.release_id)):
            if not raw:
                continue
            try:
                head_doc = json.loads(raw)
                out.append((int(head_doc["seq"]), str(head_doc["entry_hash"]), f"the head recorded by release {release_id}",
                            int(release_id)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                out.append((0, "", f"the head recorded by release {release_id} (unreadable)", int(release_id)))
    return out


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
