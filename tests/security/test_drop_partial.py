"""Issue #20 item 3: a file still being written is never taken in part.

A file is complete only when its ``.done`` marker exists or its size and modification time have been
stable for the settle time (a ``Settings`` value, 60 s by default). Intake reads the file from one
descriptor and re-checks size, modification time and the file behind the name after the read; a file that
changed (or is not the content the scan found complete) is left for the next scan: nothing recorded,
nothing landed, nothing removed, and the snapshot it would replace stays current.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from data_sharing.dropfolder import scan_drop_folder
from data_sharing.intake import examine_drop
from pipelines.settings import Settings
from stages.intake import StillBeingWritten, receive_drop
from tests.conftest import STUDENT_HEADER, TODAY, csv_bytes, student_row, students_csv
from tests.security.drop_support import dagster_instance, manifest, resources, run_intake, settings_for

STUDENTS = "fps/students_20260815.csv"
LATER = "fps/students_20260915.csv"
S = 10**9


def write(path: Path, data: bytes, age_s: float = 0.0) -> Path:
    path.write_bytes(data)
    t = time.time_ns() - int(age_s * S)
    os.utime(path, ns=(t, t))
    return path


def rows(n: int, start: int = 0) -> bytes:
    return b"".join(csv_bytes(STUDENT_HEADER, [student_row(i)]).split(b"\n", 1)[1] for i in range(start, start + n))


def test_default_settle_time_is_long_enough_for_a_paused_writer(drop: Path) -> None:
    settings = Settings.from_env({"C2C_HOME": str(drop.parent)})
    assert settings.drop_settle_s == 60.0
    assert Settings.from_env({"C2C_HOME": "x", "C2C_DROP_SETTLE_S": "5"}).drop_settle_s == 5.0
    with pytest.raises(ValueError, match="C2C_DROP_SETTLE_S must be a number of seconds"):
        Settings.from_env({"C2C_HOME": "x", "C2C_DROP_SETTLE_S": "soon"})
    # the writer: 70% of the rows, then a 25 s pause
    write(drop / STUDENTS, students_csv(0) + rows(624), age_s=25)
    now = time.time_ns()
    one_shot = scan_drop_folder(drop, None, settle_s=settings.drop_settle_s, wall_clock_ns=lambda: now)
    assert one_shot.ready == [] and one_shot.waiting == [STUDENTS]
    later = now + 36 * S  # 61 s after the last write, nothing changed
    assert [r.entry.rel_path for r in scan_drop_folder(drop, None, settle_s=60.0, wall_clock_ns=lambda: later).ready] == [STUDENTS]


def test_sensor_needs_the_settle_time_as_well_as_two_looks(drop: Path) -> None:
    write(drop / STUDENTS, students_csv(3))
    t0 = time.time_ns()
    first = scan_drop_folder(drop, None, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0)
    second = scan_drop_folder(drop, first.state, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0 + 30 * S)
    assert first.ready == second.ready == [] and second.waiting == [STUDENTS]
    third = scan_drop_folder(drop, second.state, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0 + 61 * S)
    assert [r.entry.rel_path for r in third.ready] == [STUDENTS]


def test_future_mtime_settles_by_time_seen_unchanged(drop: Path) -> None:
    path = write(drop / STUDENTS, students_csv(3))
    t0 = time.time_ns()
    os.utime(path, ns=(t0 + 3600 * S, t0 + 3600 * S))  # a clock an hour ahead: the age alone never settles
    first = scan_drop_folder(drop, None, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0)
    assert scan_drop_folder(drop, first.state, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0 + 30 * S).ready == []
    later = scan_drop_folder(drop, first.state, settle_s=60.0, two_looks=True, wall_clock_ns=lambda: t0 + 61 * S)
    assert [r.entry.rel_path for r in later.ready] == [STUDENTS]


def test_file_growing_during_the_read_is_left(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = write(drop / STUDENTS, students_csv(5), age_s=120)

    def writer_resumes() -> None:
        with open(path, "ab") as fh:
            fh.write(rows(3, start=5))

    d = examine_drop(path, drop, partnership, TODAY, after_read=writer_resumes)
    assert (d.status, d.reason_code) == ("waiting", "still_being_written")
    assert "changed while it was being read" in (d.reason or "")
    assert d.snapshot is None and d.rows is None
    # the next look takes the whole file
    os.utime(path, ns=(time.time_ns() - 120 * S,) * 2)
    d2 = examine_drop(path, drop, partnership, TODAY)
    assert (d2.status, d2.rows) == ("accepted", 8)


def test_file_replaced_during_the_read_is_left(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = write(drop / STUDENTS, students_csv(5), age_s=120)

    def swap() -> None:
        write(drop / "fps" / "other.tmp", students_csv(5), age_s=120)
        os.replace(drop / "fps" / "other.tmp", path)  # same size, same mtime, another file behind the name

    assert examine_drop(path, drop, partnership, TODAY, after_read=swap).status == "waiting"


def test_recently_changed_file_without_a_scan_is_left(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = write(drop / STUDENTS, students_csv(5), age_s=10)
    d = examine_drop(path, drop, partnership, TODAY, settle_s=60.0)  # e.g. launched by hand from the UI: no scan vouched for it
    assert d.status == "waiting" and "settle time of 60 s" in (d.reason or "")
    write(drop / (STUDENTS + ".done"), b"")
    from data_sharing.marker import Marker

    marker = Marker.read(drop / (STUDENTS + ".done"), drop_root=drop)
    assert examine_drop(path, drop, partnership, TODAY, marker=marker, settle_s=60.0).status == "accepted"


def test_appended_after_the_scan_is_not_taken_and_the_snapshot_stays(tmp_path: Path, drop: Path) -> None:
    """The issue's scenario: an accepted snapshot; a new one is found complete at 624 rows, then the writer
    appends the rest before intake reads it. Nothing of the partial file is taken; the full file is, later."""
    settings = settings_for(tmp_path, drop)
    with dagster_instance(tmp_path) as instance:
        old = students_csv(700)
        write(drop / STUDENTS, old, age_s=3600)
        assert run_intake(instance, settings, STUDENTS, hashlib.sha256(old).hexdigest()).success
        [first] = manifest(settings)

        partial = students_csv(624)
        write(drop / LATER, partial, age_s=120)
        [ready] = scan_drop_folder(drop, None, settle_s=60.0, limits=settings.drop_limits()).ready
        assert ready.fingerprint == hashlib.sha256(partial).hexdigest()
        with open(drop / LATER, "ab") as fh:  # the writer resumes after the scan
            fh.write(rows(268, start=624))
        result = run_intake(instance, settings, LATER, ready.fingerprint)
        meta = result.get_asset_materialization_events()[0].materialization.metadata
        assert meta["status"].value == "still_being_written"
        assert [c.passed for c in result.get_asset_check_evaluations()] == [False]
        assert [(e.rel_path, e.status) for e in manifest(settings)] == [(first.rel_path, "accepted")]
        assert (drop / LATER).read_bytes() == partial + rows(268, start=624)  # left where it was
        landed = [p.name for p in settings.landing_dir.rglob("*") if p.is_file()]
        assert not any(n.startswith("students_20260915") for n in landed)

        [ready] = scan_drop_folder(drop, None, settle_s=0, limits=settings.drop_limits()).ready
        assert run_intake(instance, settings, LATER, ready.fingerprint).success
        entries = {e.rel_path: (e.status, e.rows) for e in manifest(settings)}
        assert entries[LATER] == ("accepted", 892)  # every row, none lost
        assert not (drop / LATER).exists()


def test_receive_drop_raises_and_records_nothing_when_the_file_grows(tmp_path: Path, drop: Path) -> None:
    settings = settings_for(tmp_path, drop)
    paths, warehouse, partnership, keys = resources(settings)
    path = write(drop / STUDENTS, students_csv(4), age_s=120)

    def append() -> None:
        with open(path, "ab") as fh:
            fh.write(rows(1, start=4))

    with pytest.raises(StillBeingWritten):
        receive_drop(path, paths.drop_site(), warehouse.manifest(), partnership.load(), keys.load, partition_key=STUDENTS, run_id=None, after_read=append)
    assert manifest(settings) == [] and path.exists()
