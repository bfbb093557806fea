"""Issue 20 finding 11 (audit): the audit chain is keyed, and every release records its head.

Reproduced before the fix: rewriting every entry and recomputing the SHA-256 chain verified as intact
unless ``--head`` was given; cutting entries from the end too. Now:

* entries are HMAC-SHA256 under the hub's ``audit`` key (only its label is written), so a rewrite with
  recomputed hashes fails ``verify`` and ``c2c audit verify`` (exit 1, no ``--head``);
* every release records the head (seq, entry hash, key label); a log cut back before it fails;
* a hub's old unkeyed entries verify as legacy up to the keying marker; appending to a keyed log
  without the key is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from data_sharing.keys import init_keyset
from pipelines.auditkey import use_hub_audit_key
from warehouse.audit import MARKER, AuditEvent, AuditKeyError, entry_hash, read_entries, record_events, set_key_provider, verify
from warehouse.db import make_engine, upgrade
from warehouse.models import AuditLog, Release

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "warehouse"))
from warehouse_city import load_city  # noqa: E402

T0 = dt.datetime(2026, 12, 7, 4, 0, tzinfo=dt.timezone.utc)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A hub home with a key file and a SQLite warehouse holding three unkeyed (pre-upgrade) entries."""
    monkeypatch.delenv("C2C_MASTER_KEY", raising=False)
    home = tmp_path / "home"
    key_file = home / "keys" / "master.key"
    keyset = init_keyset(key_file)
    url = f"sqlite:///{home / 'warehouse.db'}"
    engine = make_engine(url)
    upgrade(engine)
    set_key_provider(None)  # an old hub: no audit key yet
    record_events(engine, [AuditEvent("file_accepted", f"fps/students_2026080{i}.csv", {"rows": i}) for i in (1, 2, 3)], now=T0)
    use_hub_audit_key(key_file, url, key_env=os.environ)
    yield home, key_file, keyset, engine
    set_key_provider(None)
    engine.dispose()


def _rewrite_all(engine: Engine, key: bytes | None = None) -> None:
    """The attack: edit every entry and recompute the whole chain (SHA-256, or HMAC with ``key``)."""
    prev = "0" * 64
    with Session(engine) as s, s.begin():
        for row in s.scalars(select(AuditLog).order_by(AuditLog.seq)).all():
            details = json.loads(row.details)
            if "rows" in details:
                details["rows"] = 999
            row.details = json.dumps(details, sort_keys=True, separators=(",", ":"))
            row.prev_hash = prev
            row.entry_hash = entry_hash(prev, row.seq, row.recorded_at, row.actor, row.event_type, row.subject, row.details, key)
            prev = row.entry_hash


def _cli_verify(home: Path, key_file: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_")}
    env.update(C2C_HOME=str(home), C2C_KEY_FILE=str(key_file), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "audit", "verify", "--home", str(home)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_legacy_entries_then_a_keyed_chain(hub) -> None:  # noqa: ANN001
    home, key_file, keyset, engine = hub
    record_events(engine, [AuditEvent("file_accepted", "fhd/immunizations_20260804.csv", {"rows": 4})], now=T0)
    entries = read_entries(engine)
    assert [e.event_type for e in entries] == ["file_accepted"] * 3 + [MARKER, "file_accepted"]
    label = keyset.purpose_key("audit").label
    assert entries[3].details == {"key": label, "previous_key": None}
    assert entries[4].entry_hash == entry_hash(entries[3].entry_hash, 5, entries[4].recorded_at, "c2c", "file_accepted",
                                               entries[4].subject, json.dumps({"rows": 4}), keyset.purpose_key("audit").secret)
    result = verify(engine)
    assert result.ok and result.entries == 5 and result.keyed_from == 4
    # the key is never written, only its label
    dump = "".join(str(v) for r in read_entries(engine) for v in (r.details, r.subject, r.entry_hash))
    assert keyset.purpose_key("audit").secret.hex() not in dump and label in dump
    proc = _cli_verify(home, key_file)
    assert proc.returncode == 0 and "keyed from entry 4)" in proc.stdout, proc.stderr


def test_a_full_rewrite_with_recomputed_hashes_is_caught_without_head(hub) -> None:  # noqa: ANN001
    home, key_file, _, engine = hub
    record_events(engine, [AuditEvent("file_accepted", "fhd/immunizations_20260804.csv", {"rows": 4})], now=T0)
    _rewrite_all(engine)  # what passed before: SHA-256 recomputed over the edited entries
    result = verify(engine)
    assert not result.ok and result.first_bad_seq == 4 and "changed after it was written" in (result.problem or "")
    proc = _cli_verify(home, key_file)
    assert proc.returncode == 1 and "TAMPERED: entry 4" in proc.stderr and "Traceback" not in proc.stderr
    # a rewrite under some other key fails too
    _rewrite_all(engine, key=hashlib.sha256(b"a guessed key").digest())
    assert not verify(engine).ok


def test_a_rewrite_dropping_the_keyed_part_is_caught_by_the_release_head(hub, partnership) -> None:  # noqa: ANN001
    from warehouse.releases import current_release, publish_release

    home, key_file, _, engine = hub
    load_city(engine)
    info = publish_release(engine, linkage_quality={}, run_id="run-1", partnership=partnership, now=T0)
    head = current_release(engine).audit_head
    assert head == info.audit_head and head["key"].startswith("audit/v1/")
    entries = read_entries(engine)
    assert (head["seq"], head["entry_hash"]) == (entries[-1].seq, entries[-1].entry_hash) and entries[-1].event_type == "release"
    assert verify(engine).ok and verify(engine).head == (head["seq"], head["entry_hash"])
    # the attacker removes the keying marker and everything after, then recomputes an all-legacy chain
    with Session(engine) as s, s.begin():
        first_marker = s.scalar(select(AuditLog.seq).where(AuditLog.event_type == MARKER))
        s.execute(delete(AuditLog).where(AuditLog.seq >= first_marker))
    _rewrite_all(engine)
    set_key_provider(None)
    result = verify(engine)
    assert not result.ok and f"before entry {head['seq']}" in (result.problem or "") and "release" in (result.problem or "")
    use_hub_audit_key(key_file, str(engine.url), key_env=os.environ)
    proc = _cli_verify(home, key_file)
    assert proc.returncode == 1 and "entries removed from the end" in proc.stderr


def test_truncation_before_the_latest_release_is_caught(hub, partnership) -> None:  # noqa: ANN001
    from warehouse.releases import publish_release

    home, key_file, _, engine = hub
    load_city(engine)
    publish_release(engine, linkage_quality={}, run_id="run-1", partnership=partnership, now=T0)
    last = read_entries(engine)[-1].seq
    with Session(engine) as s, s.begin():
        s.execute(delete(AuditLog).where(AuditLog.seq == last))
    result = verify(engine)  # no expected head given
    assert not result.ok and result.first_bad_seq == last
    # forging the release's recorded head to the new end does not help: the entry hash is keyed
    with Session(engine) as s, s.begin():
        new_last = s.execute(select(AuditLog.seq, AuditLog.entry_hash).order_by(AuditLog.seq.desc()).limit(1)).one()
        s.execute(update(Release).values(audit_head=json.dumps({"seq": new_last[0], "entry_hash": new_last[1]})))
    result = verify(engine)
    assert not result.ok and "is not that release's entry" in (result.problem or "")
    assert _cli_verify(home, key_file).returncode == 1


def test_a_keyed_log_needs_the_key(hub, tmp_path: Path) -> None:  # noqa: ANN001
    _, key_file, _, engine = hub
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other)
    record_events(other, [AuditEvent("file_accepted", "z.csv", {"rows": 1})], now=T0)  # another warehouse: not keyed
    assert [e.event_type for e in read_entries(other)] == ["file_accepted"] and verify(other).keyed_from is None
    record_events(engine, [AuditEvent("file_accepted", "x.csv", {"rows": 1})], now=T0)
    set_key_provider(None)
    with pytest.raises(AuditKeyError, match="the audit log is keyed"):
        record_events(engine, [AuditEvent("file_accepted", "y.csv", {"rows": 1})], now=T0)
    result = verify(engine)
    assert not result.ok and "which this key set does not hold" in (result.problem or "")


def test_rotating_the_audit_key_adds_a_marker(hub) -> None:  # noqa: ANN001
    _, _, keyset, engine = hub
    record_events(engine, [AuditEvent("file_accepted", "x.csv", {"rows": 1})], now=T0)
    keyset.rotate(["audit"])
    record_events(engine, [AuditEvent("file_accepted", "y.csv", {"rows": 1})], now=T0)
    markers = [e for e in read_entries(engine) if e.event_type == MARKER]
    assert [m.details["key"] for m in markers] == [keyset.purpose_key("audit", 1).label, keyset.purpose_key("audit", 2).label]
    assert verify(engine).ok
