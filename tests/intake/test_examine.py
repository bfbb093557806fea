"""Intake decisions: every refusal reason with a clerk-readable message, and the facts of accepted files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from data_sharing.intake import Marker, PreviousSnapshot, SeenContent, examine_drop
from tests.conftest import STUDENT_HEADER, TODAY, csv_bytes, student_row, students_csv


def examine(path: Path, drop: Path, partnership, **kw):  # type: ignore[no-untyped-def]
    marker = kw.pop("marker", None)
    if marker is None and path.with_name(path.name + ".done").exists():
        marker = Marker.read(path.with_name(path.name + ".done"))
    return examine_drop(path, drop, partnership, kw.pop("today", TODAY), marker=marker, **kw)


def put(drop: Path, rel: str, data: bytes) -> Path:
    path = drop / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_accepted_file_facts(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    rows = [student_row(1), student_row(2), student_row(2), student_row(3, 2025), student_row(2)]
    data = csv_bytes(STUDENT_HEADER, rows)
    path = put(drop, "fps/students_20260815.csv", data)
    d = examine(path, drop, partnership)
    assert d.status == "accepted", d.reason
    assert d.rows == 5
    assert d.duplicate_rows == 2  # row 2 appears three times: two repeats
    assert d.period_rows == {2026: 4, 2025: 1}
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.size_bytes == len(data)
    assert (d.agency, d.extract, d.as_of) == ("fps", "students", dt.date(2026, 8, 15))
    assert (d.mou_id, d.mou_version) == ("MOU-FPS-CITY-2024", 2)
    assert d.warnings == ["2 rows exactly repeat an earlier row of the file; each counts once."]


def test_bom_columns_in_any_order_and_quoted_newlines_are_accepted(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    header = list(reversed(STUDENT_HEADER))
    row = list(reversed(student_row(1)))
    row[header.index("street_address")] = "1 Test St\nApt 2, Rear"
    data = b"\xef\xbb\xbf" + csv_bytes([f" {h} " for h in header], [row])
    d = examine(put(drop, "fps/students_20260815.csv", data), drop, partnership)
    assert d.status == "accepted", d.reason
    assert d.rows == 1


def test_optional_columns_may_be_left_out(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    header = [h for h in STUDENT_HEADER if h not in ("middle_name", "exit_date")]
    row = [v for h, v in zip(STUDENT_HEADER, student_row(1), strict=True) if h in header]
    d = examine(put(drop, "fps/students_20260815.csv", csv_bytes(header, [row])), drop, partnership)
    assert d.status == "accepted", d.reason


def refusal(d) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    assert d.status == "refused", f"expected a refusal, got {d.status}"
    assert d.reason
    return d.reason_code, d.reason


@pytest.mark.parametrize(
    ("rel", "data", "code", "fragment"),
    [
        ("xyz/students_20260815.csv", None, "unknown_agency", "'xyz' is not an agency"),
        ("fps/report_cards_20260815.csv", None, "unknown_extract", "allowed: assessments, attendance, graduation, students"),
        ("fps/patients_20260815.csv", None, "wrong_agency_folder", "'patients' is an extract of 'fhd', not of 'fps'"),
        ("fps/students-2026-08-15.csv", None, "bad_name", "does not follow <extract>_<YYYYMMDD>.csv"),
        ("fps/students_20260815.CSV", None, "bad_name", "does not follow"),
        ("fps/students_20261345.csv", None, "bad_date", "20261345 in the file name is not a real date"),
        ("fps/students_20261124.csv", None, "future_date", "2026-11-24 in the file name is in the future"),
        ("fps/students_20240630.csv", None, "mou_not_in_force", "in force from 2024-07-01 to 2029-06-30"),
        ("fps/..students_20260815.csv", None, "unsafe_name", "characters that are not allowed"),
        ("fps/students 20260815.csv", None, "unsafe_name", "characters that are not allowed"),
        ("fps/.students_20260815.csv", None, "unsafe_name", "characters that are not allowed"),
        ("students_20260815.csv", None, "outside_agency_folder", "top of the drop folder"),
        ("fps/students_20260815.csv", b"", "empty_file", "0 bytes"),
        ("fps/students_20260815.tokens.csv", None, "columns_not_permitted", "make it with `c2c tokenize`"),
        ("fps/students_20260815.csv.done", b"", "stray_marker", "has no data file students_20260815.csv"),
    ],
)
def test_refusals_by_name_and_place(drop: Path, partnership, rel: str, data: bytes | None, code: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path = put(drop, rel, students_csv(3) if data is None else data)
    d = examine(path, drop, partnership)
    got_code, reason = refusal(d)
    assert got_code == code
    assert fragment in reason
    assert path.exists(), "a refused file is never deleted"
    assert d.fingerprint


def test_unpermitted_column_refuses_the_whole_file(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    header = STUDENT_HEADER + ["ssn"]
    data = csv_bytes(header, [student_row(1) + ["000-00-0000"]])
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", data), drop, partnership))
    assert code == "columns_not_permitted"
    assert "ssn" in reason and "not stored" in reason
    assert "000-00-0000" not in reason


def test_missing_required_columns(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    header = [h for h in STUDENT_HEADER if h not in ("birth_date", "school_year")]
    row = [v for h, v in zip(STUDENT_HEADER, student_row(1), strict=True) if h in header]
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", csv_bytes(header, [row])), drop, partnership))
    assert code == "missing_columns"
    assert "birth_date, school_year" in reason


def test_duplicate_header_column(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    header = STUDENT_HEADER + ["zip"]
    code, reason = refusal(
        examine(put(drop, "fps/students_20260815.csv", csv_bytes(header, [student_row(1) + ["02100"]])), drop, partnership)
    )
    assert code == "duplicate_columns" and "zip" in reason


def test_missing_header_row_never_echoes_values(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    data = csv_bytes(student_row(1), [student_row(2)])  # the first row is data, not a header
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", data), drop, partnership))
    assert code == "missing_header"
    for value in student_row(1):
        if len(value) > 2:
            assert value not in reason


@pytest.mark.parametrize(
    ("encode", "fragment"),
    [
        (lambda s: s.encode("utf-16"), "encoded as UTF-16"),
        (lambda s: s.encode("cp1252"), "line 2 has bytes that are not valid UTF-8"),
    ],
)
def test_non_utf8_files_are_refused_with_the_line(drop: Path, partnership, encode, fragment: str) -> None:  # type: ignore[no-untyped-def]
    row = student_row(1)
    row[1] = "Zoë"
    text = csv_bytes(STUDENT_HEADER, [row]).decode("utf-8")
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", encode(text)), drop, partnership))
    assert code == "not_utf8"
    assert fragment in reason
    assert "Zo" not in reason


def test_ragged_row_is_named_without_its_content(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    rows = [student_row(1), student_row(2)[:-3], student_row(3)]
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", csv_bytes(STUDENT_HEADER, rows)), drop, partnership))
    assert code == "malformed_csv"
    assert "Data row 2 has 15 fields but the header has 18" in reason
    assert "Testfirst2" not in reason


def test_binary_garbage_is_refused(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * 8
    code, _ = refusal(examine(put(drop, "fps/students_20260815.csv", data), drop, partnership))
    assert code == "not_utf8"


def test_nul_bytes_are_refused(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    data = students_csv(2).replace(b"Testlast1", b"Test\x00last1")
    code, reason = refusal(examine(put(drop, "fps/students_20260815.csv", data), drop, partnership))
    assert code == "not_csv" and "Line 3" in reason


def test_symlink_is_refused_and_not_followed(drop: Path, partnership, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "secret.csv"
    outside.write_bytes(students_csv(2))
    link = drop / "fps" / "students_20260815.csv"
    os.symlink(outside, link)
    d = examine(link, drop, partnership)
    assert refusal(d)[0] == "symlink"
    assert d.sha256 is None  # the target was never read


def test_symlinked_agency_folder_is_refused(drop: Path, partnership, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "students_20260815.csv").write_bytes(students_csv(2))
    (drop / "fps").rmdir()
    os.symlink(elsewhere, drop / "fps")
    assert refusal(examine(drop / "fps" / "students_20260815.csv", drop, partnership))[0] == "symlink"


def test_subfolder_is_refused(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    (drop / "fps" / "old").mkdir()
    assert refusal(examine(drop / "fps" / "old", drop, partnership))[0] == "unexpected_folder"


def test_control_totals(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    data = students_csv(4)
    path = put(drop, "fps/students_20260815.csv", data)
    sha = hashlib.sha256(data).hexdigest()
    marker = path.with_name(path.name + ".done")
    marker.write_text(json.dumps({"rows": 4, "sha256": sha}))
    assert examine(path, drop, partnership).status == "accepted"
    marker.write_text(json.dumps({"rows": 5}))
    code, reason = refusal(examine(path, drop, partnership))
    assert code == "control_totals_mismatch" and "says 5 rows but the file has 4 data rows" in reason
    marker.write_text(json.dumps({"sha256": "0" * 64}))
    assert refusal(examine(path, drop, partnership))[0] == "control_totals_mismatch"
    marker.write_text("rows=4")
    assert refusal(examine(path, drop, partnership))[0] == "bad_marker"
    marker.write_text(json.dumps({"rows": "4"}))
    assert refusal(examine(path, drop, partnership))[0] == "bad_marker"
    marker.write_text("")
    assert examine(path, drop, partnership).status == "accepted"


def test_row_count_drop_guard_and_confirmation(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = put(drop, "fps/students_20260901.csv", students_csv(4, years=(2025, 2026)))  # 8 rows
    previous = PreviousSnapshot(period_rows={2025: 10, 2026: 10, 2024: 50})
    code, reason = refusal(examine(path, drop, partnership, previous=previous))
    # the file covers 2025 and 2026 only: 8 rows against the 20 it would replace (2024 is not replaced)
    assert code == "row_count_drop"
    assert "8 rows for school year 2025-2026, less than half of the 20 rows" in reason
    assert '{"confirm_row_drop": true}' in reason
    # exactly half is not "more than half"
    assert examine(path, drop, partnership, previous=PreviousSnapshot(period_rows={2025: 8, 2026: 8})).accepted
    path.with_name(path.name + ".done").write_text('{"confirm_row_drop": true}')
    assert examine(path, drop, partnership, previous=previous).accepted


def test_same_content_under_another_name_is_a_duplicate(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = put(drop, "fps/students_20260816.csv", students_csv(3))
    seen = SeenContent(manifest_id=7, rel_path="fps/students_20260815.csv", status="accepted")
    d = examine(path, drop, partnership, seen_lookup=lambda sha: seen)
    assert d.status == "duplicate" and d.duplicate_of == 7
    assert "fps/students_20260815.csv" in (d.reason or "")


def test_header_only_file_is_an_empty_snapshot(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    d = examine(put(drop, "fhd/patients_20260815.csv", b"patient_id,first_name,last_name,birth_date,sex,street_address,zip\n"), drop, partnership)
    assert d.accepted and d.rows == 0 and d.period_rows == {None: 0}
