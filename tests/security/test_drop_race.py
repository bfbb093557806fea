"""Issue #20 item 5: check-then-open. Every path under the drop folder is opened with O_NOFOLLOW (each folder
on the way too), checked with fstat on the open descriptor, and never re-opened by name.

The race is made deterministic: the file is swapped for a symlink to a secret at the last moment before
it is opened, whichever way the code opens it (``os.open`` now; ``sha256_file`` by name before the fix).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import data_sharing.dropfolder as dropfolder_mod
import data_sharing.intake as intake_mod
from data_sharing import dropsafe
from data_sharing.dropfolder import scan_drop_folder
from data_sharing.intake import examine_drop
from tests.conftest import TODAY, students_csv
from tests.security.drop_support import no_hang

STUDENTS = "fps/students_20260815.csv"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "students_20260815.csv"
    path.parent.mkdir()
    path.write_bytes(students_csv(2).replace(b"Testfirst", b"Secretname"))
    return path


def swap_before_open(monkeypatch: pytest.MonkeyPatch, target: Path, secret: Path) -> list[str]:
    """Replace ``target`` by a symlink to ``secret`` just before it is opened (once)."""
    done: list[str] = []

    def swap() -> None:
        if not done:
            target.unlink()
            os.symlink(secret, target)
            done.append("swapped")

    real_open = os.open

    def guarded_open(path, flags, mode=0o777, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if os.fsdecode(path).endswith(target.name):
            swap()
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", guarded_open)
    for module in (intake_mod, dropfolder_mod):  # the code before the fix hashed by name here
        real = getattr(module, "sha256_file", None)
        if real is not None:
            monkeypatch.setattr(module, "sha256_file", lambda p, *a, _real=real: (swap(), _real(p, *a))[1])
    return done


def test_intake_never_reads_through_a_link_swapped_in_before_the_open(
    drop: Path, partnership, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    path = drop / STUDENTS
    path.write_bytes(students_csv(3))
    done = swap_before_open(monkeypatch, path, secret)
    d = examine_drop(path, drop, partnership, TODAY, expected_sha256=hashlib.sha256(students_csv(3)).hexdigest())
    assert done == ["swapped"]
    assert (d.status, d.reason_code) == ("refused", "symlink")
    assert d.sha256 is None and d.snapshot is None  # the secret was never read
    assert d.fingerprint != hashlib.sha256(secret.read_bytes()).hexdigest()


def test_scan_never_hashes_through_a_link_swapped_in_before_the_open(
    drop: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = drop / STUDENTS
    path.write_bytes(students_csv(3))
    swap_before_open(monkeypatch, path, secret)
    scan = scan_drop_folder(drop, None, settle_s=0)
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert all(r.fingerprint != secret_sha for r in scan.ready)
    assert scan.ready == [] and scan.waiting == [STUDENTS]  # looked at again next time (then: a symlink)
    monkeypatch.undo()
    [again] = scan_drop_folder(drop, scan.state, settle_s=0).ready
    assert again.entry.kind == "symlink" and again.fingerprint != secret_sha


def test_agency_folder_swapped_for_a_link_is_not_entered(drop: Path, partnership, tmp_path: Path, secret: Path) -> None:  # type: ignore[no-untyped-def]
    os.rmdir(drop / "fps")
    os.symlink(secret.parent, drop / "fps")  # <drop>/fps -> outside, which holds students_20260815.csv
    d = examine_drop(drop / STUDENTS, drop, partnership, TODAY)
    assert (d.status, d.reason_code) == ("refused", "symlink")
    assert d.sha256 is None
    with pytest.raises(dropsafe.UnsafeEntry) as err:
        dropsafe.read_entry(drop, STUDENTS, 1 << 20)
    assert err.value.kind == "symlink"


def test_fifo_in_place_of_a_data_file_is_refused_without_blocking(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    os.mkfifo(drop / STUDENTS)
    with no_hang(10):
        d = examine_drop(drop / STUDENTS, drop, partnership, TODAY)
        scan = scan_drop_folder(drop, None)
    assert (d.status, d.reason_code) == ("refused", "not_a_regular_file")
    assert [r.entry.kind for r in scan.ready] == ["special"]


def test_file_over_the_size_bound_is_refused_by_fstat(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    data = students_csv(50)
    (drop / STUDENTS).write_bytes(data)
    limits = dropsafe.DropLimits(settle_s=0, max_file_bytes=1000)
    d = examine_drop(drop / STUDENTS, drop, partnership, TODAY, limits=limits)
    assert (d.status, d.reason_code) == ("refused", "file_too_large")
    assert f"{len(data):,} bytes, over the limit of 1,000 bytes" in (d.reason or "")
    assert d.sha256 == hashlib.sha256(data).hexdigest()  # the fingerprint still names this exact content


def test_taken_file_is_removed_only_if_the_name_still_holds_it(drop: Path) -> None:
    path = drop / STUDENTS
    path.write_bytes(b"first")
    snap = dropsafe.read_entry(drop, STUDENTS, 1 << 20)
    path.unlink()
    path.write_bytes(b"a new file under the same name")
    assert dropsafe.unlink_if_same(drop, STUDENTS, snap) is False
    assert path.read_bytes() == b"a new file under the same name"  # nothing lost
    snap = dropsafe.read_entry(drop, STUDENTS, 1 << 20)
    assert dropsafe.unlink_if_same(drop, STUDENTS, snap) is True and not path.exists()


def test_hard_link_to_a_file_outside_is_refused_unread(drop: Path, partnership, secret: Path) -> None:  # type: ignore[no-untyped-def]
    os.link(secret, drop / STUDENTS)  # the same inode as a file the agency does not own
    os.link(secret, drop / (STUDENTS.replace("students", "attendance") + ".done"))
    [ready] = [r for r in scan_drop_folder(drop, None, settle_s=0).ready if r.entry.rel_path == STUDENTS]
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert ready.fingerprint != secret_sha
    d = examine_drop(drop / STUDENTS, drop, partnership, TODAY)
    assert (d.status, d.reason_code) == ("refused", "hard_link")
    assert d.sha256 is None and d.snapshot is None
    from data_sharing.marker import Marker

    marker = Marker.read(drop / (STUDENTS.replace("students", "attendance") + ".done"), drop_root=drop)
    assert "hard link" in (marker.problem or "") and marker.sha256_of_marker != secret_sha
