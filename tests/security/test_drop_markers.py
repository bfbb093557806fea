"""Issue #20 item 2: ``.done`` markers are opened with O_NOFOLLOW|O_NONBLOCK, checked with fstat (a regular
file) and read with a size cap. A FIFO never hangs the scan or intake; a marker symlinked to /dev/zero or to
the key file is refused and never read, and nothing of its target is echoed (manifest, feedback, logs)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from data_sharing.dropfolder import scan_drop_folder
from data_sharing.intake import examine_drop
from data_sharing.marker import MARKER_MAX_BYTES, Marker
from tests.conftest import TODAY, students_csv
from tests.security.drop_support import dagster_instance, manifest, no_hang, run_intake, settings_for

STUDENTS = "fps/students_20260815.csv"


def put(drop: Path, rel: str, data: bytes) -> Path:
    path = drop / rel
    path.write_bytes(data)
    return path


def test_fifo_marker_does_not_hang_scan_or_intake(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = put(drop, STUDENTS, students_csv(2))
    os.mkfifo(drop / (STUDENTS + ".done"))  # nobody ever writes to it: a blocking open would wait forever
    with no_hang(10):
        marker = Marker.read(drop / (STUDENTS + ".done"), drop_root=drop)
        scan = scan_drop_folder(drop, None)
        decision = examine_drop(path, drop, partnership, TODAY, marker=marker)
    assert marker.present and "not a regular file" in (marker.problem or "")
    assert [r.entry.rel_path for r in scan.ready] == [STUDENTS]  # the marker makes the file complete...
    assert (decision.status, decision.reason_code) == ("refused", "bad_marker")  # ...and is refused with a reason
    assert "not a regular file" in (decision.reason or "")


def test_marker_symlinked_to_dev_zero_is_never_read(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = put(drop, STUDENTS, students_csv(2))
    os.symlink("/dev/zero", drop / (STUDENTS + ".done"))
    with no_hang(10):
        marker = Marker.read(drop / (STUDENTS + ".done"), drop_root=drop)
        scan = scan_drop_folder(drop, None)
        decision = examine_drop(path, drop, partnership, TODAY, marker=marker)
    assert "symbolic link" in (marker.problem or "")
    assert marker.sha256_of_marker != hashlib.sha256(b"").hexdigest()
    assert scan.ready[0].marker_sha256 == marker.sha256_of_marker
    assert decision.reason_code == "bad_marker"


def test_oversized_marker_is_refused_unread(drop: Path) -> None:
    put(drop, STUDENTS, students_csv(1))
    put(drop, STUDENTS + ".done", b" " * (MARKER_MAX_BYTES + 1))
    marker = Marker.read(drop / (STUDENTS + ".done"), drop_root=drop)
    assert marker.problem is not None and "larger than 4,096 bytes" in marker.problem
    assert Marker.read(drop / (STUDENTS + ".done")).problem == marker.problem  # by path alone: same answer


def test_unknown_marker_keys_are_counted_not_echoed(drop: Path) -> None:
    put(drop, STUDENTS + ".done", json.dumps({"rows": 1, "hunter2_secret_key": "x"}).encode())
    marker = Marker.read(drop / (STUDENTS + ".done"), drop_root=drop)
    assert marker.problem == "the .done marker has 1 unknown key(s) (not shown); allowed: rows, sha256, confirm_row_drop"


def test_marker_symlinked_to_the_key_file_leaks_nothing(
    tmp_path: Path, drop: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:  # type: ignore[no-untyped-def]
    """The issue's attack end to end: scan, intake run, manifest, feedback and logs hold nothing of the key file."""
    from data_sharing.keys import init_keyset

    monkeypatch.delenv("C2C_MASTER_KEY")
    key_file = tmp_path / "keys" / "master.key"
    init_keyset(key_file)
    secret = key_file.read_bytes()
    needles = {secret.strip()} | _pieces(secret)
    assert _pieces(secret), "the key file holds key material as text"
    settings = settings_for(tmp_path, drop, C2C_KEY_FILE=str(key_file))
    put(drop, STUDENTS, students_csv(3))
    os.symlink(key_file, drop / (STUDENTS + ".done"))

    [ready] = scan_drop_folder(drop, None, settle_s=0).ready
    with dagster_instance(tmp_path) as instance:
        result = run_intake(instance, settings, STUDENTS, ready.fingerprint)
        logs = "\n".join(str(e.message or "") + repr(e.dagster_event) for e in instance.all_logs(result.run_id))
    [entry] = manifest(settings)
    assert (entry.status, entry.reason_code) == ("refused", "bad_marker")
    assert "symbolic link" in (entry.reason or "")
    feedback = b"".join(p.read_bytes() for p in (drop / "fps" / "feedback").iterdir())
    assert b"symbolic link" in feedback
    surfaces = {
        "manifest": repr(entry).encode(),
        "feedback": feedback,
        "logs": logs.encode(),
        "stdout/stderr": "".join(capfd.readouterr()).encode(),
    }
    for where, text in surfaces.items():
        for needle in needles:
            assert needle not in text, f"key material in the {where}"
    assert (drop / STUDENTS).exists() and key_file.read_bytes() == secret


def _pieces(secret: bytes) -> set[bytes]:
    """The key material of the key file: every base64-looking string of 20 characters or more in it."""
    import re

    return set(re.findall(rb"[A-Za-z0-9+/_-]{20,}={0,2}", secret))
