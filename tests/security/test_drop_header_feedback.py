"""Issue #17 item 7: feedback an agency can act on, without echoing header values that are not contract
column names. A typo names the missing required column; a semicolon- or tab-separated header says so;
``c2c check-extract`` (on the agency's own machine, its own file) shows the agency its own header."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data_sharing.intake import examine_drop
from tests.conftest import STUDENT_HEADER, TODAY, csv_bytes, student_row

STUDENTS = "fps/students_20260815.csv"
BIN = Path(sys.executable).parent


def examine(drop: Path, partnership, data: bytes):  # type: ignore[no-untyped-def]
    (drop / STUDENTS).write_bytes(data)
    from data_sharing.dropsafe import DropLimits

    return examine_drop(drop / STUDENTS, drop, partnership, TODAY, limits=DropLimits(settle_s=0))


def typo_file(typo: str = "studentid") -> bytes:
    return csv_bytes([typo] + STUDENT_HEADER[1:], [student_row(1), student_row(2)])


def test_header_typo_names_the_missing_required_column(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    d = examine(drop, partnership, typo_file())
    assert d.reason_code == "columns_not_permitted"
    assert d.reason == (
        "The header of 'students' does not match its contract: required columns are missing: student_id "
        "(column 1 may be student_id misspelt); and the MOU does not permit: column 1 (name not shown). "
        "Correct the header row and drop the file again; the file was not stored."
    )


def test_header_value_that_is_not_a_column_name_is_never_echoed(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    d = examine(drop, partnership, typo_file("S00042 Jane"))
    assert "S00042" not in (d.reason or "") and "Jane" not in (d.reason or "")
    assert "required columns are missing: student_id;" in (d.reason or "")  # no close match: no hint


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolon"), ("\t", "tab")])
def test_header_with_another_delimiter_says_so(drop: Path, partnership, sep: str, word: str) -> None:  # type: ignore[no-untyped-def]
    lines = [sep.join(STUDENT_HEADER), sep.join(student_row(1))]
    d = examine(drop, partnership, ("\n".join(lines) + "\n").encode())
    assert d.reason_code == "wrong_delimiter"
    assert d.reason == (
        f"The header looks {word}-separated; the contract of 'students' expects commas. "
        "Export the file again as CSV (comma-separated values)."
    )


def test_semicolon_junk_keeps_its_refusal_with_the_hint(drop: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    d = examine(drop, partnership, b"zzz;qqq\n1;2\n")
    assert d.reason_code == "missing_header"
    assert d.reason is not None and d.reason.endswith("The header looks semicolon-separated; the contract expects commas.")
    assert "zzz" not in d.reason


def test_check_extract_shows_the_agency_its_own_header(tmp_path: Path) -> None:
    path = tmp_path / "students_20260815.csv"
    path.write_bytes(typo_file())
    done = subprocess.run(
        [str(BIN / "c2c"), "check-extract", str(path), "--agency", "fps"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "required columns are missing: student_id (column 1 may be student_id misspelt)" in done.stdout
    assert "note: Your file's header, as read with commas between names (18 field(s)): studentid | first_name |" in done.stdout
    assert "Traceback" not in done.stderr
