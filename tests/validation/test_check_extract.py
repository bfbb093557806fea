"""check_extract: what an agency learns before dropping a file; exit codes 0 ok, 1 warnings, 2 refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from schemas.partnership import Partnership
from data_sharing.validation import check_extract
from schemas.contracts import ExtractContract
from tests.conftest import STUDENT_HEADER, TODAY, csv_bytes, student_row

ATT_HEADER = ["student_id", "school_id", "school_year", "days_enrolled", "days_absent"]


def put(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def students_file(folder: Path, n: int = 5, name: str = "students_20260915.csv", extra: list[list[str]] | None = None) -> Path:
    return put(folder, name, csv_bytes(STUDENT_HEADER, [student_row(i) for i in range(n)] + (extra or [])))


def test_clean_file_exits_0(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    report = check_extract(students_file(tmp_path), "fps", partnership, today=TODAY)
    assert (report.exit_code, report.status) == (0, "ok")
    assert report.validation is not None and report.validation.accepted == 5
    assert report.text().startswith("students_20260915.csv: OK (exit code 0)")


def test_repeated_row_exits_1(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    report = check_extract(students_file(tmp_path, extra=[student_row(1)]), "fps", partnership, today=TODAY)
    assert (report.exit_code, report.status) == (1, "warnings")
    assert "row 6 (duplicate_row, warn): This row exactly repeats data row 2" in report.text()


def test_quarantined_row_exits_1(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    bad = student_row(9)
    bad[STUDENT_HEADER.index("grade_level")] = "13"
    report = check_extract(students_file(tmp_path, extra=[bad]), "fps", partnership, today=TODAY)
    assert report.exit_code == 1
    assert report.validation is not None and report.validation.quarantined == 1
    assert "row 6, grade_level (grade_level.codes, quarantine_row)" in report.text()
    assert "[value: 13]" in report.text()


def test_header_problems_are_intakes_and_exit_2(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    rows = [student_row(i)[:-1] + ["x"] for i in range(3)]
    path = put(tmp_path, "students_20260915.csv", csv_bytes(STUDENT_HEADER[:-1] + ["ssn"], rows))
    report = check_extract(path, "fps", partnership, today=TODAY)
    assert (report.exit_code, report.status, report.intake_reason_code) == (2, "refused", "columns_not_permitted")
    assert report.validation is None
    header = [h for h in STUDENT_HEADER if h != "zip"]
    rows = [[v for h, v in zip(STUDENT_HEADER, student_row(i), strict=True) if h != "zip"] for i in range(3)]
    report = check_extract(put(tmp_path, "students_20260916.csv", csv_bytes(header, rows)), "fps", partnership, today=TODAY)
    assert (report.exit_code, report.intake_reason_code) == (2, "missing_columns")


def test_mou_dates_are_checked(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    report = check_extract(students_file(tmp_path, name="students_20240630.csv"), "fps", partnership, today=TODAY)
    assert (report.exit_code, report.intake_reason_code) == (2, "mou_not_in_force")


def test_refused_by_a_validation_rule_exits_2(tmp_path: Path, partnership: Partnership) -> None:
    data = partnership.contracts[("fps", "attendance")].model_dump()
    data["rules"][0]["outcome"] = "refuse_file"
    contracts = {**partnership.contracts, ("fps", "attendance"): ExtractContract.model_validate(data)}
    strict = Partnership(agreements=partnership.agreements, contracts=contracts)
    rows = [["S00001", "SCH1", "2026", "10", "12"], ["S00002", "SCH1", "2026", "10", "1"]]
    path = put(tmp_path, "attendance_20260915.csv", csv_bytes(ATT_HEADER, rows))
    report = check_extract(path, "fps", strict, today=TODAY)
    assert (report.exit_code, report.status) == (2, "refused")
    assert report.validation is not None and report.validation.refused == 2 and report.validation.accepted == 0
    assert replace(report, notes=[]).exit_code == 2


def test_references_use_the_sibling_file_of_the_same_date(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    rows = [["S00001", "SCH1", "2026", "100", "3"], ["S99999", "SCH1", "2026", "100", "3"]]
    path = put(tmp_path, "attendance_20260915.csv", csv_bytes(ATT_HEADER, rows))
    alone = check_extract(path, "fps", partnership, today=TODAY)
    assert alone.exit_code == 0
    assert any("was not checked: no students extract" in n for n in alone.validation.notes)  # type: ignore[union-attr]
    students_file(tmp_path)  # students_20260915.csv has S00000..S00004
    report = check_extract(path, "fps", partnership, today=TODAY)
    assert report.exit_code == 1
    assert [(p.row_number, p.rule) for p in report.validation.problems] == [(2, "attendance_student_enrolled")]  # type: ignore[union-attr]


def test_a_file_not_yet_named_can_be_checked_by_saying_its_extract(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = students_file(tmp_path, name="export.csv")
    report = check_extract(path, "fps", partnership, today=TODAY, extract="students")
    assert report.exit_code == 1 and report.validation is not None and report.validation.problems == []
    assert any("name it students_<YYYYMMDD>.csv" in n for n in report.notes)
    report = check_extract(path, "fps", partnership, today=TODAY)
    assert (report.exit_code, report.intake_reason_code) == (2, "bad_name")


def test_missing_file_and_mismatched_extract(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    assert check_extract(tmp_path / "students_20260915.csv", "fps", partnership, today=TODAY).exit_code == 2
    path = students_file(tmp_path)
    assert check_extract(path, "fps", partnership, today=TODAY, extract="attendance").intake_reason_code == "name_mismatch"


def test_unknown_agency_or_extract_is_refused_before_reading(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    path = students_file(tmp_path)
    assert check_extract(path, "../fps", partnership, today=TODAY).intake_reason_code == "unknown_agency"
    assert check_extract(path, "fps", partnership, today=TODAY, extract="../x").intake_reason_code == "unknown_extract"
