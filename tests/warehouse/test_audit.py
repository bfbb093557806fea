"""The audit log's hash chain detects edited, deleted, inserted and reordered entries (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import Engine, text

from warehouse.audit import GENESIS, AuditEvent, export_csv, head, read_entries, record_events, verify
from warehouse.db import make_engine, upgrade

T0 = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    return e


def fill(engine: Engine, n: int = 5) -> None:
    for i in range(n):
        record_events(
            engine,
            [AuditEvent("file_accepted", f"fps/students_2026080{i}.csv", {"sha256": f"{i:064x}", "rows": 10 * i})],
            now=T0 + dt.timedelta(hours=i),
        )


def test_chain_known_answer(engine: Engine) -> None:
    record_events(engine, [AuditEvent("release", "r1", {"b": 2, "a": 1}, actor="tester")], now=T0)
    [e] = read_entries(engine)
    body = json.dumps([1, "2026-11-23T02:00:00.000000+00:00", "tester", "release", "r1", {"a": 1, "b": 2}],
                      sort_keys=True, separators=(",", ":"))
    assert e.prev_hash == GENESIS
    assert e.entry_hash == hashlib.sha256(GENESIS.encode() + b"\n" + body.encode()).hexdigest()
    assert verify(engine).ok


def test_intact_chain_verifies(engine: Engine) -> None:
    fill(engine)
    result = verify(engine)
    assert result.ok and result.entries == 5 and result.head is not None and result.head[0] == 5


def test_edited_entry_is_detected(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as c:
        c.execute(text("UPDATE audit_log SET details = :d WHERE seq = 3"), {"d": json.dumps({"rows": 999, "sha256": "0" * 64})})
    r = verify(engine)
    assert not r.ok and r.first_bad_seq == 3 and "changed" in (r.problem or "")


def test_deleted_entry_is_detected(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    r = verify(engine)
    assert not r.ok and r.first_bad_seq == 2 and "missing" in (r.problem or "")


def test_deleted_and_renumbered_entry_is_detected(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        for seq in (3, 4, 5):
            c.execute(text("UPDATE audit_log SET seq = :new WHERE seq = :old"), {"new": seq - 1, "old": seq})
    r = verify(engine)
    assert not r.ok and r.first_bad_seq == 2


def test_reordered_entries_are_detected(engine: Engine) -> None:
    fill(engine)
    with engine.begin() as c:
        c.execute(text("UPDATE audit_log SET seq = 100 WHERE seq = 2"))
        c.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 4"))
        c.execute(text("UPDATE audit_log SET seq = 4 WHERE seq = 100"))
    r = verify(engine)
    assert not r.ok and r.first_bad_seq == 2


def test_truncation_needs_the_anchor(engine: Engine) -> None:
    fill(engine)
    anchor = head(engine)
    assert anchor is not None
    with engine.begin() as c:
        c.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    assert verify(engine).ok  # a shorter chain is still a chain...
    r = verify(engine, expected_head=anchor)  # ...but not the one that was anchored
    assert not r.ok and "ends before entry 5" in (r.problem or "")


def test_export_csv_round_trip(engine: Engine) -> None:
    fill(engine, 3)
    entries = read_entries(engine, start=T0 + dt.timedelta(hours=1), end=T0 + dt.timedelta(hours=3))
    assert [e.seq for e in entries] == [2, 3]
    lines = export_csv(entries).splitlines()
    assert lines[0].startswith("seq,recorded_at,actor,event_type,subject,details")
    assert len(lines) == 3 and lines[1].startswith("2,2026-11-23T03:00:00")
