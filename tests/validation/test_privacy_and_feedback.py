"""Feedback reports and Data Docs; no identifier value of the input appears in any output."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from data_sharing.feedback import build_data_docs, feedback_stem, render_html, write_feedback
from data_sharing.validation import ValidationInputError, check_extract, read_extract, validate_table
from tests.conftest import TODAY
from tests.validation.conftest import contract, table_of, valid_rows

GENERATED = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)


def identifying_students() -> list[dict[str, str]]:
    """Students whose identifier values are distinctive, with problems in identifier columns on many rows."""
    c = contract("fps", "students")
    rows = valid_rows(c, 30)
    for i, r in enumerate(rows):
        r.update(
            student_id=f"SID{i:03d}QX",
            first_name=f"Zyfirst{i}q",
            middle_name=f"Zymid{i}q",
            last_name=f"Zylast{i}q",
            birth_date=f"2012-{1 + i % 12:02d}-{10 + i % 18:02d}",
            street_address=f"{i} Zyquist Lane",
            zip=f"{97100 + i}",
            enroll_date="2025-08-20",
            exit_date="2026-06-15",
        )
    rows[0]["zip"] = "Q7Z7Q"                       # pattern
    rows[1]["first_name"] = "Zylongname" * 11       # max_length
    rows[2]["birth_date"] = "2012-02-30"            # not a real date
    rows[3]["birth_date"] = "13/03/2012"            # not YYYY-MM-DD
    rows[4]["student_id"] = ""                      # required
    rows[5]["sex"] = "QSEXQ"                        # quasi-identifier code
    rows[6]["race_ethnicity"] = "QRACEQ"            # quasi-identifier code
    rows[7]["birth_date"] = "2025-09-01"            # not before enroll_date: cross-field rule
    rows[8]["street_address"] = "Zystreet " * 30    # max_length
    rows[9]["student_id"] = rows[10]["student_id"]  # key shared with row 11
    rows[9]["school_id"], rows[9]["school_year"], rows[9]["enroll_date"] = (
        rows[10]["school_id"], rows[10]["school_year"], rows[10]["enroll_date"])
    rows[12]["grade_level"] = "<b>13</b>"           # not an identifier: shown, escaped
    rows[13]["school_id"] = "=HYPERLINK(" + "9" * 30 + ")"  # too long; not an identifier: shown, defused in CSV
    rows[14]["last_name"] = ""                      # required
    rows.append(dict(rows[20]))                     # exact repeat
    return rows


def identifier_values(rows: list[dict[str, str]]) -> set[str]:
    c = contract("fps", "students")
    public_codes = {code for spec in c.columns.values() for code in (spec.codes or {})}
    return {
        r[col]
        for r in rows
        for col, spec in c.columns.items()
        if spec.privacy != "none" and r[col] and r[col] not in public_codes
    }


def assert_clean(text: str, secrets: set[str], where: str) -> None:
    leaked = sorted(s for s in secrets if s in text)
    assert not leaked, f"identifier values found in {where}: {len(leaked)} (first: row values of length {len(leaked[0])})"


def written_files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8", errors="replace")
        for p in folder.rglob("*")
        if p.is_file() and "static" not in p.relative_to(folder).parts
    }


@pytest.mark.parametrize("engine", ["masks", "gx"])
def test_no_identifier_value_in_any_output(engine: str, tmp_path: Path, partnership, gx_context) -> None:  # type: ignore[no-untyped-def]
    rows = identifying_students()
    secrets = identifier_values(rows)
    assert len(secrets) > 150
    c = contract("fps", "students")
    result = validate_table(table_of(rows), c, file_name="students_20260915.csv", engine=engine)  # type: ignore[arg-type]
    flagged = {p.row_number for p in result.problems}
    assert flagged == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 31}
    assert [p.row_number for p in result.problems if p.rule == "birth_before_enroll"] == [8]

    outputs = {
        "result repr": repr(result),
        "problems": repr(result.problems),
        "summary": repr(result.expectations) + json.dumps(result.summary()),
        "profile": json.dumps(result.profile.to_dict()),
        "gx result": json.dumps(result.to_gx(GENERATED).to_json_dict(), default=str),
    }
    files = write_feedback(tmp_path / "drop", "fps", "students_20260915.csv", result, generated=GENERATED)
    outputs["feedback html"] = files.html.read_text(encoding="utf-8")
    outputs["feedback csv"] = files.csv.read_text(encoding="utf-8")
    build_data_docs([result], "fps", tmp_path / "docs")
    outputs.update({f"data docs {k}": v for k, v in written_files(tmp_path / "docs").items()})
    for where, text in outputs.items():
        assert_clean(text, secrets, where)

    # ... while non-identifier values are shown, escaped and defused (the scan is not vacuous)
    assert "&lt;b&gt;13&lt;/b&gt;" in outputs["feedback html"] and "<b>13</b>" not in outputs["feedback html"]
    lines = list(csv.reader(io.StringIO(outputs["feedback csv"])))
    assert ["13", "grade_level", "grade_level.codes", "quarantine_row"] == lines[[r[0] for r in lines].index("13")][:4]
    assert any(line[5] == "<b>13</b>" for line in lines)
    assert any(line[5] == "'=HYPERLINK(" + "9" * 30 + ")" for line in lines)
    assert any("13" in str(v) for e in result.expectations if e.rule == "grade_level.codes" for v in e.partial_unexpected_list)
    docs = [v for k, v in outputs.items() if k.startswith("data docs validations")]
    assert len(docs) == 1 and "<b>13</b>" not in docs[0] and "&lt;b&gt;13&lt;/b&gt;" in docs[0]


def test_check_extract_text_has_no_identifier_value(tmp_path: Path, partnership) -> None:  # type: ignore[no-untyped-def]
    rows = identifying_students()
    path = tmp_path / "students_20260915.csv"
    path.write_text(
        ",".join(rows[0]) + "\n" + "\n".join(",".join(r.values()) for r in rows) + "\n", encoding="utf-8"
    )
    report = check_extract(path, "fps", partnership, today=TODAY)
    assert report.exit_code == 1
    assert_clean(report.text(max_problems=1000) + repr(report), identifier_values(rows), "check report")


def test_unreadable_file_error_names_no_value(tmp_path: Path) -> None:
    path = tmp_path / "students_20260915.csv"
    path.write_text("student_id,first_name\nSID001QX,Zyfirstq\nSID002QX,Zysecond,extra\n", encoding="utf-8")
    with pytest.raises(ValidationInputError) as info:
        read_extract(path)
    assert "Zy" not in str(info.value) and "SID" not in str(info.value)


def test_feedback_files_and_summary_at_the_top(tmp_path: Path) -> None:
    c = contract("fps", "graduation")
    rows = valid_rows(c, 4)
    rows[1]["outcome"] = "GRADUATED_6YR"
    rows[2]["cohort_year"] = ""
    result = validate_table(table_of(rows), c, file_name="graduation_20260915.csv")
    files = write_feedback(tmp_path / "drop", "fps", "graduation_20260915.csv", result, generated=GENERATED)
    assert files.html == tmp_path / "drop" / "fps" / "feedback" / "graduation_20260915.html"
    assert files.csv == tmp_path / "drop" / "fps" / "feedback" / "graduation_20260915.csv"
    html = files.html.read_text(encoding="utf-8")
    assert html.index("quarantined</th>") < html.index("What to fix") < html.index("Every problem")
    assert "Accepted in part" in html and "2026-11-23 09:30 UTC" in html
    lines = list(csv.DictReader(io.StringIO(files.csv.read_text(encoding="utf-8"))))
    assert lines[0]["rule"] == "summary"
    assert "accepted: 2; quarantined: 2; refused: 0" in lines[0]["explanation"]
    assert [(r["row_number"], r["column"], r["rule"], r["value"]) for r in lines[1:]] == [
        ("2", "outcome", "outcome.codes", "GRADUATED_6YR"),
        ("3", "cohort_year", "cohort_year.required", ""),
    ]


def test_feedback_for_a_file_refused_at_intake(tmp_path: Path) -> None:
    files = write_feedback(tmp_path / "drop", "fps", "students_20260915.csv", None,
                           refusal="Required columns are missing from 'students': zip.")
    html = files.html.read_text(encoding="utf-8")
    assert "Refused: nothing from this file was taken" in html and "Required columns are missing" in html
    assert "intake,refuse_file" in files.csv.read_text(encoding="utf-8")


def test_long_problem_lists_are_cut_in_html_only() -> None:
    c = contract("fps", "graduation")
    rows = valid_rows(c, 10)
    for r in rows:
        r["outcome"] = "NOPE"
    result = validate_table(table_of(rows), c)
    html = render_html(result, "graduation_20260915.csv", "fps", row_limit=3)
    assert "The first 3 of 10 problems" in html and html.count("<td>outcome.codes</td>") == 1 + 3


def test_feedback_names_are_safe(tmp_path: Path) -> None:
    assert feedback_stem("../../etc/students_20260915.csv") == "students_20260915"
    assert feedback_stem("a b<c>.csv") == "a_b_c_"
    with pytest.raises(ValueError):
        write_feedback(tmp_path, "../fps", "x.csv", None, refusal="r")


def test_data_docs_site_per_agency(tmp_path: Path) -> None:
    grad = contract("fps", "graduation")
    att = contract("fps", "attendance")
    r1 = validate_table(table_of(valid_rows(grad, 3)), grad, file_name="graduation_20260915.csv")
    r2 = validate_table(table_of(valid_rows(att, 3)), att, file_name="attendance_20260915.csv")
    index = build_data_docs([r1, r2], "fps", tmp_path / "fps")
    assert index == tmp_path / "fps" / "index.html" and index.is_file()
    pages = written_files(tmp_path / "fps")
    assert sum(1 for k in pages if k.startswith("validations/")) == 2
    assert sum(1 for k in pages if k.startswith("expectations/")) == 2
    assert "fps.graduation.v1" in pages["index.html"]
    dhs = contract("dhs", "clients")
    other = validate_table(table_of(valid_rows(dhs, 2)), dhs)
    with pytest.raises(ValueError, match="other agencies"):
        build_data_docs([r1, other], "fps", tmp_path / "mixed")


def test_arrow_errors_do_not_carry_values(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from data_sharing.validation import table as validation_table

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise pa.ArrowInvalid("Failed to parse string: 'Zyfirst1q'")

    monkeypatch.setattr(validation_table, "_build_view", boom)
    c = contract("fps", "graduation")
    with pytest.raises(ValidationInputError) as info:
        validate_table(table_of(valid_rows(c, 2)), c)
    assert "Zyfirst" not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__
