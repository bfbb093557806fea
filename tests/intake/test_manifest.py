"""The intake manifest on SQLite and PostgreSQL: idempotent records and the SPEC's snapshot rules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data_sharing.intake import IntakeDecision
from warehouse.db import current_revision, head_revision, make_engine, upgrade
from warehouse.manifest import ManifestStore
from warehouse.models import IntakeManifest

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(warehouse_target: tuple[str, str | None]) -> ManifestStore:
    url, schema = warehouse_target
    engine = make_engine(url, schema)
    upgrade(engine)
    upgrade(engine)  # migrations are idempotent
    assert current_revision(engine) == head_revision()
    return ManifestStore(engine)


def decision(
    name: str, sha: str, periods: dict[int | None, int], *, extract: str = "students", status: str = "accepted",
    reason_code: str | None = None,
) -> IntakeDecision:
    as_of = dt.datetime.strptime(name.split("_")[-1][:8], "%Y%m%d").date()
    return IntakeDecision(
        rel_path=f"fps/{name}", file_name=name, status=status, fingerprint=sha, sha256=sha, agency="fps",
        extract=extract, as_of=as_of, rows=sum(periods.values()), period_rows=periods, size_bytes=100,
        reason_code=reason_code, reason=None if reason_code is None else "because", mou_id="MOU-FPS-CITY-2024", mou_version=2,
    )


def statuses(store: ManifestStore) -> dict[str, tuple[str, str | None]]:
    by_id = {e.id: e for e in store.entries()}
    return {
        f"{e.rel_path}@{e.sha256[:2]}": (e.status, by_id[e.superseded_by].sha256[:2] if e.superseded_by else None)
        for e in by_id.values()
    }


def count_rows(store: ManifestStore) -> int:
    with Session(store.engine) as s:
        return int(s.scalar(select(func.count()).select_from(IntakeManifest)) or 0)


def test_record_is_idempotent(store: ManifestStore) -> None:
    d = decision("students_20260815.csv", "a1" * 32, {2026: 10})
    first = store.record(d, now=NOW, run_id="run-1")
    again = store.record(d, now=NOW + dt.timedelta(hours=1), run_id="run-2")
    assert first.new and not again.new
    assert again.entry.id == first.entry.id and again.entry.run_id == "run-1"
    assert count_rows(store) == 1
    e = store.entries()[0]
    assert (e.status, e.rows, e.period_rows, e.as_of_date) == ("accepted", 10, {2026: 10}, dt.date(2026, 8, 15))


def test_corrected_resend_supersedes_the_earlier_version(store: ManifestStore) -> None:
    v1 = store.record(decision("students_20260815.csv", "a1" * 32, {2026: 10}), now=NOW).entry
    v2 = store.record(decision("students_20260815.csv", "b2" * 32, {2026: 11}), now=NOW).entry
    old = store.get(v1.id)
    assert old is not None
    assert (old.status, old.superseded_by, old.reason_code) == ("superseded", v2.id, "corrected_resend")
    assert store.get(v2.id).status == "accepted"  # type: ignore[union-attr]
    owners = store.current_snapshot()[("fps", "students")]
    assert {p: e.id for p, e in owners.items()} == {2026: v2.id}


def test_later_snapshot_replaces_the_periods_it_contains(store: ManifestStore) -> None:
    a = store.record(decision("students_20250815.csv", "aa" * 32, {2024: 5, 2025: 6}), now=NOW).entry
    b = store.record(decision("students_20260815.csv", "bb" * 32, {2025: 7, 2026: 8}), now=NOW).entry
    # a still holds 2024, so it stays accepted; 2025 now comes from b
    owners = {p: e.id for p, e in store.current_snapshot()[("fps", "students")].items()}
    assert owners == {2024: a.id, 2025: b.id, 2026: b.id}
    assert store.get(a.id).status == "accepted"  # type: ignore[union-attr]
    c = store.record(decision("students_20260901.csv", "cc" * 32, {2024: 5, 2025: 7, 2026: 8}), now=NOW).entry
    assert statuses(store) == {
        "fps/students_20250815.csv@aa": ("superseded", "cc"),
        "fps/students_20260815.csv@bb": ("superseded", "cc"),
        "fps/students_20260901.csv@cc": ("accepted", None),
    }
    assert {p: e.id for p, e in store.current_snapshot()[("fps", "students")].items()} == {2024: c.id, 2025: c.id, 2026: c.id}


def test_an_older_file_arriving_late_does_not_replace_a_newer_one(store: ManifestStore) -> None:
    new = store.record(decision("students_20260815.csv", "bb" * 32, {2026: 8}), now=NOW).entry
    old = store.record(decision("students_20260101.csv", "aa" * 32, {2026: 9}), now=NOW).entry
    assert store.get(old.id).status == "superseded"  # type: ignore[union-attr]
    assert store.get(old.id).superseded_by == new.id  # type: ignore[union-attr]
    assert store.get(new.id).status == "accepted"  # type: ignore[union-attr]


def test_whole_file_snapshots_without_period(store: ManifestStore) -> None:
    a = store.record(decision("patients_20260801.csv", "aa" * 32, {None: 100}, extract="patients"), now=NOW).entry
    b = store.record(decision("patients_20260815.csv", "bb" * 32, {None: 90}, extract="patients"), now=NOW).entry
    assert store.get(a.id).status == "superseded" and store.get(a.id).superseded_by == b.id  # type: ignore[union-attr]
    prev = store.previous_snapshot("fps", "patients", dt.date(2026, 9, 1))
    assert prev is not None and prev.rows_for({None}) == 90


def test_previous_snapshot_only_counts_what_would_be_replaced(store: ManifestStore) -> None:
    store.record(decision("students_20250815.csv", "aa" * 32, {2024: 5, 2025: 6}), now=NOW)
    store.record(decision("students_20260815.csv", "bb" * 32, {2025: 7, 2026: 8}), now=NOW)
    prev = store.previous_snapshot("fps", "students", dt.date(2026, 9, 1))
    assert prev is not None
    assert dict(prev.period_rows) == {2024: 5, 2025: 7, 2026: 8}
    assert prev.rows_for({2025, 2026}) == 15
    # a file dated before every current file replaces nothing
    assert store.previous_snapshot("fps", "students", dt.date(2025, 1, 1)) is None


def test_duplicate_content_is_found_under_another_path(store: ManifestStore) -> None:
    store.record(decision("students_20260815.csv", "aa" * 32, {2026: 8}), now=NOW)
    seen = store.lookup_content("aa" * 32, "fps/students_20260816.csv")
    assert seen is not None and seen.rel_path == "fps/students_20260815.csv"
    assert store.lookup_content("aa" * 32, "fps/students_20260815.csv") is None


def test_refused_file_is_decided_again_when_it_changes_its_mind(store: ManifestStore) -> None:
    name = "students_20260815.csv"
    refused = decision(name, "aa" * 32, {2026: 8}, status="refused", reason_code="row_count_drop")
    first = store.record(refused, now=NOW)
    again = store.record(refused, now=NOW + dt.timedelta(minutes=5))
    assert first.new and not again.new
    confirmed = store.record(decision(name, "aa" * 32, {2026: 8}), now=NOW + dt.timedelta(minutes=10))
    assert confirmed.new and confirmed.entry.id == first.entry.id and confirmed.entry.status == "accepted"
    assert count_rows(store) == 1


def test_no_row_of_the_manifest_holds_file_content(store: ManifestStore, tmp_path: Path) -> None:
    d = decision("students_20260815.csv", "aa" * 32, {2026: 8})
    store.record(d, now=NOW)
    columns = {c.name for c in IntakeManifest.__table__.columns}
    assert not columns & {"first_name", "last_name", "birth_date", "student_id", "content", "data"}


def test_every_decision_is_in_the_audit_log(store: ManifestStore) -> None:
    from warehouse.audit import read_entries, verify

    v1 = store.record(decision("students_20260815.csv", "a1" * 32, {2026: 10}), now=NOW).entry
    store.record(decision("students_20260815.csv", "a1" * 32, {2026: 10}), now=NOW)  # idempotent: no new entry
    v2 = store.record(decision("students_20260815.csv", "b2" * 32, {2026: 11}), now=NOW).entry
    store.record(decision("students_20260820.csv", "c3" * 32, {2026: 1}, status="refused", reason_code="mou_not_in_force"), now=NOW)
    events = [(e.event_type, e.details.get("manifest_id"), e.details.get("decision")) for e in read_entries(store.engine)]
    assert events == [
        ("file_accepted", v1.id, None),
        ("mou_decision", None, "permitted"),
        ("file_accepted", v2.id, None),
        ("mou_decision", None, "permitted"),
        ("file_superseded", v1.id, None),
        ("file_refused", v2.id + 1, None),
        ("mou_decision", None, "refused"),
    ]
    assert verify(store.engine).ok


def test_a_file_refused_after_intake_gives_the_snapshot_back(store: ManifestStore) -> None:
    a = store.record(decision("students_20250815.csv", "aa" * 32, {2025: 6}), now=NOW).entry
    b = store.record(decision("students_20260815.csv", "bb" * 32, {2025: 7}), now=NOW).entry
    assert store.get(a.id).status == "superseded"  # type: ignore[union-attr]
    refused = store.refuse(b.id, "validation_failed", "A rule refused the file.", now=NOW)
    assert (refused.status, refused.reason_code) == ("refused", "validation_failed")
    assert store.get(a.id).status == "accepted" and store.get(a.id).superseded_by is None  # type: ignore[union-attr]
    assert {p: e.id for p, e in store.current_snapshot()[("fps", "students")].items()} == {2025: a.id}
    again = store.refuse(b.id, "validation_failed", "A rule refused the file.", now=NOW)  # idempotent
    assert again.status == "refused"
    from warehouse.audit import read_entries

    assert [e.event_type for e in read_entries(store.engine)].count("file_refused") == 1
