"""Drift against the previous accepted extract, and references within a drop."""

from __future__ import annotations

import json

import pytest

from data_sharing.validation import DriftPolicy, ExtractProfile, validate_drop, validate_table
from schemas.contracts import ExtractContract
from tests.validation.conftest import contract, table_of, valid_rows

# ---- drift ---------------------------------------------------------------------------------------


def students(n: int, start: int = 0) -> list[dict[str, str]]:
    rows = valid_rows(contract("fps", "students"), n + start)[start:]
    for i, r in enumerate(rows):
        r["student_id"] = f"S{start + i:06d}"
    return rows


def previous_profile(rows: list[dict[str, str]]) -> ExtractProfile:
    result = validate_table(table_of(rows), contract("fps", "students"))
    assert result.problems == []
    return result.profile


def drift_problems(result) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return sorted((p.rule, p.outcome) for p in result.problems if ".drift" in p.rule or p.rule.startswith("drift"))


def test_no_drift_against_a_similar_extract() -> None:
    prev = previous_profile(students(100))
    result = validate_table(table_of(students(110, start=5)), contract("fps", "students"), previous=prev)
    assert result.problems == []
    evaluated = [e for e in result.expectations if e.kind.startswith("drift") and e.evaluated]
    assert evaluated and all(e.success for e in evaluated)


def test_row_count_change_over_the_share_is_a_warning() -> None:
    c = contract("fps", "students")
    prev = previous_profile(students(100))
    result = validate_table(table_of(students(70)), c, previous=prev)  # -30% > 25%
    assert drift_problems(result) == [("drift.row_count", "warn")]
    p = next(p for p in result.problems if p.rule == "drift.row_count")
    assert p.row_number is None and "70 rows" in p.explanation and "had 100" in p.explanation and "-30%" in p.explanation
    assert result.accepted == 70 and result.status == "accepted_with_problems"
    # the share is configurable
    assert drift_problems(validate_table(table_of(students(70)), c, previous=prev, drift=DriftPolicy(row_count_share=0.5))) == []
    # and so is the outcome
    refused = validate_table(table_of(students(70)), c, previous=prev, drift=DriftPolicy(outcome="refuse_file"))
    assert refused.file_refused and refused.accepted == 0


def test_row_count_growth_over_the_share_is_a_warning() -> None:
    prev = previous_profile(students(100))
    result = validate_table(table_of(students(126)), contract("fps", "students"), previous=prev)
    assert drift_problems(result) == [("drift.row_count", "warn")]
    assert drift_problems(validate_table(table_of(students(125)), contract("fps", "students"), previous=prev)) == []


def test_null_rate_jump_is_a_warning() -> None:
    prev_rows = students(100)
    for r in prev_rows:
        r["exit_date"] = "2001-06-30"
    rows = students(100)
    for r in rows[15:]:
        r["exit_date"] = ""  # blank in 85% of rows against 0% before
    result = validate_table(table_of(rows), contract("fps", "students"), previous=previous_profile(prev_rows))
    assert drift_problems(result) == [("exit_date.drift_null_rate", "warn")]
    p = next(p for p in result.problems if p.rule == "exit_date.drift_null_rate")
    assert p.column == "exit_date" and "85.0%" in p.explanation and "0.0%" in p.explanation
    # a jump below the threshold is not reported
    policy = DriftPolicy(null_rate_jump=0.9)
    assert drift_problems(validate_table(table_of(rows), contract("fps", "students"), previous=previous_profile(prev_rows), drift=policy)) == []


def test_vanished_code_is_a_warning_naming_it_only_for_non_identifier_columns() -> None:
    prev_rows = students(100)
    rows = students(100)
    for r in rows:
        if r["grade_level"] == "12":
            r["grade_level"] = "11"
        if r["race_ethnicity"] == "PI":
            r["race_ethnicity"] = "WH"
    result = validate_table(table_of(rows), contract("fps", "students"), previous=previous_profile(prev_rows))
    assert drift_problems(result) == [("grade_level.drift_codes", "warn"), ("race_ethnicity.drift_codes", "warn")]
    grade = next(p for p in result.problems if p.rule == "grade_level.drift_codes")
    race = next(p for p in result.problems if p.rule == "race_ethnicity.drift_codes")
    assert "(12)" in grade.explanation  # grade level is not an identifier
    assert "1 code of race_ethnicity" in race.explanation and "PI" not in race.explanation  # quasi-identifier
    summary = {e.rule: e for e in result.expectations}
    assert summary["grade_level.drift_codes"].missing_values == ("12",)
    assert summary["race_ethnicity.drift_codes"].missing_values == ()
    assert summary["race_ethnicity.drift_codes"].missing_count == 1
    off = validate_table(table_of(rows), contract("fps", "students"), previous=previous_profile(prev_rows),
                         drift=DriftPolicy(vanished_codes=False))
    assert drift_problems(off) == []


def test_without_a_previous_extract_drift_is_not_checked() -> None:
    result = validate_table(table_of(students(5)), contract("fps", "students"))
    drift = [e for e in result.expectations if e.kind.startswith("drift")]
    assert drift and not any(e.evaluated for e in drift)
    assert any("Drift was not checked" in n for n in result.notes)


def test_profile_round_trips_as_json_and_holds_no_identifier_value() -> None:
    rows = students(20)
    profile = previous_profile(rows)
    data = json.loads(json.dumps(profile.to_dict()))
    assert ExtractProfile.from_dict(data) == profile
    text = json.dumps(data)
    for r in rows:
        for col in ("student_id", "first_name", "last_name", "birth_date", "street_address"):
            assert r[col] not in text
    assert profile.rows == 20 and profile.non_null["middle_name"] == 1.0
    assert set(profile.codes["sex"]) == {"F", "M", "X"}


# ---- references within a drop --------------------------------------------------------------------


def attendance(ids: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [
        {"student_id": sid, "school_id": "SCH1", "school_year": year, "days_enrolled": "180", "days_absent": "3"}
        for sid, year in ids
    ]


def students_table(ids: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    rows = students(len(ids))
    for r, (sid, year) in zip(rows, ids, strict=True):
        r["student_id"], r["school_year"] = sid, year
    return table_of(rows)


def test_attendance_rows_must_find_their_student_and_year() -> None:
    c = contract("fps", "attendance")
    enrolled = students_table([("S1", "2026"), ("S2", "2026"), ("S3", "2025")])
    rows = attendance([("S1", "2026"), ("S2", "2026"), ("S3", "2026"), ("S9", "2026"), ("S1", "02026")])
    result = validate_table(table_of(rows), c, references={"students": enrolled})
    ref = c.references[0]
    assert [(p.row_number, p.rule, p.outcome) for p in result.problems] == [
        (3, ref.id, "warn"),  # S3 is enrolled, but in 2025
        (4, ref.id, "warn"),  # S9 is not in the students extract
    ]
    assert result.problems[0].explanation == ref.explain
    assert result.problems[0].value is None  # student_id is an identifier
    assert result.accepted == 5 and result.quarantined == 0  # outcome warn: rows go on
    summary = next(e for e in result.expectations if e.rule == ref.id)
    assert summary.evaluated and summary.unexpected_count == 2 and summary.element_count == 5


def test_reference_outcome_from_the_contract() -> None:
    data = contract("fps", "attendance").model_dump()
    data["references"][0]["outcome"] = "quarantine_row"
    c = ExtractContract.model_validate(data)
    result = validate_table(table_of(attendance([("S1", "2026"), ("S9", "2026")])), c,
                            references={"students": students_table([("S1", "2026")])})
    assert result.quarantined_indices.tolist() == [1]


def test_reference_not_checked_without_the_other_extract() -> None:
    c = contract("fps", "attendance")
    result = validate_table(table_of(attendance([("S9", "2026")])), c)
    assert result.problems == []
    summary = next(e for e in result.expectations if e.rule == c.references[0].id)
    assert not summary.evaluated and summary.note == "referenced extract not given"
    assert any("was not checked: no students extract" in n for n in result.notes)


def test_reference_key_with_a_blank_part_is_left_to_the_required_check() -> None:
    c = contract("fps", "attendance")
    result = validate_table(table_of(attendance([("", "2026")])), c, references={"students": students_table([("S1", "2026")])})
    assert [p.rule for p in result.problems] == ["student_id.required"]


@pytest.mark.parametrize("engine", ["masks", "gx"])
def test_validate_drop_checks_references_between_the_files(engine: str, gx_context) -> None:  # type: ignore[no-untyped-def]
    contracts = {e: contract("fps", e) for e in ("students", "attendance", "assessments")}
    tables = {
        "students": students_table([("S1", "2026"), ("S2", "2026")]),
        "attendance": table_of(attendance([("S1", "2026"), ("S3", "2026")])),
        "assessments": table_of(
            [{"student_id": "S4", "school_year": "2026", "grade_level": "03", "subject": "ELA", "scale_score": "", "performance_level": "3"}]
        ),
    }
    results = validate_drop(tables, contracts, engine=engine)  # type: ignore[arg-type]
    assert results["students"].problems == []
    assert [(p.row_number, p.rule) for p in results["attendance"].problems] == [(2, "attendance_student_enrolled")]
    assert [(p.row_number, p.rule) for p in results["assessments"].problems] == [(1, "assessment_student_enrolled")]


def test_an_empty_file_only_reports_its_row_count_against_the_previous_one() -> None:
    c = contract("fps", "students")
    prev = previous_profile(students(50))
    result = validate_table(table_of(students(1)).slice(0, 0), c, previous=prev)
    assert result.counts() == {"rows_in": 0, "duplicate_rows": 0, "accepted": 0, "quarantined": 0, "refused": 0}
    assert [(p.rule, p.outcome) for p in result.problems] == [("drift.row_count", "warn")]
