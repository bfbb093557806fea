"""Each rule class with a failing and a passing fixture, generated from the contracts; outcomes and counts."""

from __future__ import annotations

import pytest

from data_sharing.validation import validate_table
from schemas.contracts import ExtractContract
from tests.validation.conftest import (
    CONTRACTS,
    all_column_cases,
    bad_value,
    contract,
    problems_at,
    shift,
    table_of,
    valid_rows,
)


@pytest.mark.parametrize("key", sorted(CONTRACTS), ids=lambda k: f"{k[0]}.{k[1]}")
def test_valid_rows_pass_every_check(key: tuple[str, str]) -> None:
    c = CONTRACTS[key]
    rows = valid_rows(c, 6)
    result = validate_table(table_of(rows), c)
    assert result.problems == []
    assert result.counts() == {"rows_in": 6, "duplicate_rows": 0, "accepted": 6, "quarantined": 0, "refused": 0}
    assert result.status == "accepted" and result.exit_code == 0
    assert result.accepted_indices.tolist() == list(range(6))
    evaluated = [e for e in result.expectations if e.evaluated]
    assert evaluated and all(e.success for e in evaluated)


@pytest.mark.parametrize(
    ("agency", "extract", "column", "kind"), all_column_cases(), ids=lambda v: v if isinstance(v, str) else None
)
def test_each_column_check_fails_on_a_bad_value(agency: str, extract: str, column: str, kind: str) -> None:
    c = contract(agency, extract)
    spec = c.columns[column]
    rows = valid_rows(c, 3)
    rows[1][column] = bad_value(spec, kind)
    result = validate_table(table_of(rows), c)
    rules = [p.rule for p in problems_at(result, 2)]
    assert f"{column}.{kind}" in rules, rules
    # one problem per cell: the first failing check of the column
    assert [r for r in rules if r.startswith(column + ".")] == [f"{column}.{kind}"]
    p = next(p for p in problems_at(result, 2) if p.rule == f"{column}.{kind}")
    assert p.column == column and p.outcome == spec.on_invalid and p.explanation
    assert p.value == (None if spec.privacy != "none" or kind == "required" else rows[1][column])
    assert problems_at(result, 1) == [] and problems_at(result, 3) == []
    assert result.quarantined_indices.tolist() == [1]
    assert result.accepted_indices.tolist() == [0, 2]
    summary = next(e for e in result.expectations if e.rule == f"{column}.{kind}")
    assert summary.evaluated and summary.success is False and summary.unexpected_count == 1


def _breaking(c: ExtractContract, rows: list[dict[str, str]], rule_id: str) -> None:
    """Make row 2 break the rule (and meet its `when` condition)."""
    rule = next(r for r in c.rules if r.id == rule_id)
    cmp = rule.comparison
    row = rows[1]
    if rule.condition is not None:
        row[rule.condition[0]] = rule.condition[1]
    left = c.columns[cmp.left]
    right = row[cmp.right] if cmp.right_is_column else cmp.right
    if cmp.op in (">=", ">"):
        row[cmp.left] = shift(left, right, -1)
    elif cmp.op in ("<=", "<", "=="):
        row[cmp.left] = shift(left, right, +1)
    else:
        row[cmp.left] = right


RULES = [(c.agency, c.extract, r.id) for c in CONTRACTS.values() for r in c.rules]


@pytest.mark.parametrize(("agency", "extract", "rule_id"), RULES, ids=[r[2] for r in RULES])
def test_each_cross_field_rule(agency: str, extract: str, rule_id: str) -> None:
    c = contract(agency, extract)
    rows = valid_rows(c, 3)
    _breaking(c, rows, rule_id)
    result = validate_table(table_of(rows), c)
    rule = next(r for r in c.rules if r.id == rule_id)
    assert [(p.row_number, p.rule, p.outcome) for p in result.problems] == [(2, rule_id, rule.outcome)]
    assert result.problems[0].explanation == rule.explain
    assert result.quarantined_indices.tolist() == [1]


def test_rule_is_checked_only_when_both_sides_are_present() -> None:
    c = contract("fps", "students")
    rows = valid_rows(c, 2)
    rows[0]["exit_date"] = ""  # optional: the rule exit >= enroll is not checked
    assert validate_table(table_of(rows), c).problems == []


def test_when_condition_limits_the_rule() -> None:
    c = contract("fps", "assessments")
    rows = valid_rows(c, 3)
    for row, subject in zip(rows, ["KRA", "ELA", "MATH"], strict=True):
        row["subject"], row["performance_level"] = subject, "4"
    result = validate_table(table_of(rows), c)
    # level 4 is fine for ELA and MATH, not for KRA
    assert [(p.row_number, p.rule) for p in result.problems] == [(1, "kra_level_1_to_3")]
    kra = next(e for e in result.expectations if e.rule == "kra_level_1_to_3")
    assert (kra.element_count, kra.unexpected_count) == (1, 1)  # only the KRA row is in the rule's domain


@pytest.mark.parametrize("key", [k for k, c in sorted(CONTRACTS.items()) if c.unique_key], ids=lambda k: f"{k[0]}.{k[1]}")
def test_shared_key_quarantines_the_rows_that_share_it(key: tuple[str, str]) -> None:
    c = CONTRACTS[key]
    rows = valid_rows(c, 4)
    for col in c.unique_key:
        rows[3][col] = rows[1][col]
    # make the two rows differ outside the key, so they are not exact repeats
    col = next(col for col in c.columns if col not in c.unique_key)
    spec = c.columns[col]
    if spec.codes:
        rows[3][col] = next(v for v in spec.codes if v != rows[1][col])
    elif spec.type in ("integer", "number", "date"):
        rows[3][col] = shift(spec, rows[1][col], 1)
    else:
        rows[3][col] = rows[1][col][:-1] + ("Z" if rows[1][col][-1] != "Z" else "Y")
    result = validate_table(table_of(rows), c)
    assert result.duplicate_rows == 0
    assert [(p.row_number, p.rule) for p in result.problems] == [(2, "unique_key"), (4, "unique_key")]
    assert "data row(s) 4" in result.problems[0].explanation and "data row(s) 2" in result.problems[1].explanation
    assert result.quarantined_indices.tolist() == [1, 3]
    assert result.accepted_indices.tolist() == [0, 2]


def test_exact_duplicate_rows_count_once_with_a_warning() -> None:
    c = contract("fps", "students")
    rows = valid_rows(c, 4)
    rows.append(dict(rows[1]))
    rows.append(dict(rows[1]))
    result = validate_table(table_of(rows), c)
    assert result.counts() == {"rows_in": 6, "duplicate_rows": 2, "accepted": 4, "quarantined": 0, "refused": 0}
    assert [(p.row_number, p.rule, p.outcome) for p in result.problems] == [(5, "duplicate_row", "warn"), (6, "duplicate_row", "warn")]
    assert result.problems[0].explanation == "This row exactly repeats data row 2; it counts once."
    assert result.duplicate_indices.tolist() == [4, 5]
    assert result.exit_code == 1
    # repeats of one key are not a key conflict once they are dropped
    assert all(p.rule != "unique_key" for p in result.problems)


def test_a_row_with_spaces_is_not_an_exact_repeat_but_shares_the_key() -> None:
    c = contract("fps", "graduation")
    rows = valid_rows(c, 2)
    rows.append({**rows[0], "outcome": f" {rows[0]['outcome']}"})
    result = validate_table(table_of(rows), c)
    assert result.duplicate_rows == 0
    assert sorted(p.row_number for p in result.problems if p.rule == "unique_key") == [1, 3]


def test_values_are_trimmed_and_blank_means_missing() -> None:
    c = contract("fps", "attendance")
    rows = valid_rows(c, 2)
    rows[0]["school_year"] = " 2026 "
    rows[1]["school_id"] = "   "
    result = validate_table(table_of(rows), c)
    assert [(p.row_number, p.rule) for p in result.problems] == [(2, "school_id.required")]


def _with(c: ExtractContract, **changes: object) -> ExtractContract:
    data = c.model_dump()
    for path, value in changes.items():
        target = data
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        target[keys[-1]] = value
    return ExtractContract.model_validate(data)


def test_rule_with_outcome_refuse_file_refuses_the_whole_file() -> None:
    c = _with(contract("fps", "attendance"), rules__0__outcome="refuse_file")
    rows = valid_rows(c, 5)
    rows[2]["days_absent"], rows[2]["days_enrolled"] = "9", "3"
    rows[3]["school_id"] = ""  # a quarantine-level problem too
    result = validate_table(table_of(rows), c)
    assert result.status == "refused" and result.exit_code == 2
    assert result.counts() == {"rows_in": 5, "duplicate_rows": 0, "accepted": 0, "quarantined": 0, "refused": 5}
    assert result.accepted_indices.size == 0 and result.quarantined_indices.size == 0
    assert not result.accepted_mask.any()
    assert result.refusal_reasons == [c.rules[0].explain]
    # every problem is still reported, so the agency can fix them all at once
    assert {(p.row_number, p.rule) for p in result.problems} == {(3, "absent_within_enrolled"), (4, "school_id.required")}


def test_column_with_on_invalid_refuse_file() -> None:
    c = _with(contract("fps", "graduation"), columns__outcome__on_invalid="refuse_file")
    rows = valid_rows(c, 3)
    rows[0]["outcome"] = "GRADUATED_6YR"
    result = validate_table(table_of(rows), c)
    assert result.file_refused and result.accepted == 0 and result.refused == 3
    assert result.problems[0].value == "GRADUATED_6YR"  # not an identifier


def test_column_with_on_invalid_warn_keeps_the_row() -> None:
    c = _with(contract("fps", "graduation"), columns__outcome__on_invalid="warn")
    rows = valid_rows(c, 3)
    rows[0]["outcome"] = "GRADUATED_6YR"
    result = validate_table(table_of(rows), c)
    assert result.counts()["accepted"] == 3 and result.quarantined == 0
    assert [(p.row_number, p.outcome) for p in result.problems] == [(1, "warn")]
    assert result.exit_code == 1


def test_missing_required_column_refuses_the_file() -> None:
    c = contract("fps", "attendance")
    rows = valid_rows(c, 3)
    table = table_of(rows, [col for col in c.columns if col != "days_absent"])
    result = validate_table(table, c)
    assert result.file_refused and result.accepted == 0 and result.refused == 3
    assert [(p.row_number, p.rule) for p in result.problems] == [(None, "days_absent.present")]
    skipped = {e.rule for e in result.expectations if not e.evaluated}
    assert {"days_absent.required", "days_absent.type", "days_absent.range", "absent_within_enrolled"} <= skipped


def test_missing_optional_column_is_fine() -> None:
    c = contract("fps", "students")
    rows = valid_rows(c, 3)
    table = table_of(rows, [col for col in c.columns if col not in ("middle_name", "exit_date")])
    result = validate_table(table, c)
    assert result.problems == [] and result.accepted == 3


def test_column_not_in_the_contract_refuses_the_file() -> None:
    c = contract("fps", "graduation")
    rows = valid_rows(c, 2)
    for r in rows:
        r["ssn"] = "123-45-6789"
    result = validate_table(table_of(rows), c)
    assert result.file_refused
    assert [(p.rule, p.outcome) for p in result.problems] == [("unknown_column", "refuse_file")]
    assert "ssn" in result.problems[0].explanation and "6789" not in result.problems[0].explanation


def test_one_percent_bad_rows_exactly_those_quarantined() -> None:
    c = contract("fps", "students")
    rows = valid_rows(c, 2000)
    for i, r in enumerate(rows):
        r["student_id"] = f"S{i:06d}"
    # 20 bad rows out of 2,000 (1%), counted by hand (0-based index: defect):
    bad = {
        7: ("sex", "Q"), 101: ("race_ethnicity", "XX"), 222: ("english_learner", "maybe"),
        333: ("grade_level", "13"), 404: ("zip", "1234"), 505: ("birth_date", "2011-02-29"),
        606: ("enroll_date", "20/08/2025"), 707: ("school_year", "1999"), 808: ("school_year", "two"),
        909: ("last_name", ""), 1010: ("first_name", "N" * 101), 1111: ("street_address", ""),
        1212: ("exit_date", "1999-07-02"),  # before enroll_date 2000-06-30: rule exit_on_or_after_enroll
        1313: ("birth_date", "2001-01-01"),  # after enroll_date: rule birth_before_enroll
        1414: ("school_id", "S" * 33), 1515: ("homeless", ""), 1616: ("disability", "y"),
        1717: ("exit_date", "2026-13-01"),
    }
    for i, (col, value) in bad.items():
        rows[i][col] = value
    # ... plus two different rows sharing one key (both quarantined): 18 + 2 = 20
    for col in c.unique_key:
        rows[1999][col] = rows[1818][col]
    rows[1999]["first_name"] = "Othername"
    # ... and three exact repeats, which are warnings and count once
    rows += [dict(rows[0]), dict(rows[1]), dict(rows[2])]
    result = validate_table(table_of(rows), c)
    expected = sorted(set(bad) | {1818, 1999})
    assert len(expected) == 20
    assert result.quarantined_indices.tolist() == expected
    assert result.counts() == {"rows_in": 2003, "duplicate_rows": 3, "accepted": 1980, "quarantined": 20, "refused": 0}
    mask = result.accepted_mask
    assert mask.sum() == 1980 and not mask[expected].any() and not mask[2000:].any()
    assert sorted({p.row_number for p in result.problems if p.outcome == "quarantine_row"}) == [i + 1 for i in expected]
    q = result.quarantined_rows(table_of(rows))
    assert q.num_rows == 20 and q.column("_row_number").to_pylist() == [i + 1 for i in expected]
    assert all(q.column("_reasons").to_pylist())
    assert result.accepted_rows(table_of(rows)).num_rows == 1980


def test_number_column_and_literal_rules() -> None:
    base = contract("fps", "attendance").model_dump()
    base["columns"]["days_absent"] = {**base["columns"]["days_absent"], "type": "number", "min": 0, "max": 200.5}
    base["rules"] = [{"id": "not_three", "check": "days_absent != 3", "explain": "Not three."}]
    c = ExtractContract.model_validate(base)
    rows = valid_rows(c, 4)
    rows[0]["days_absent"], rows[1]["days_absent"], rows[2]["days_absent"] = "3", "2.5", "2,5"
    result = validate_table(table_of(rows), c)
    assert [(p.row_number, p.rule) for p in result.problems] == [(1, "not_three"), (3, "days_absent.type")]


def test_typed_arrow_columns_are_read_as_text() -> None:
    import pyarrow as pa

    c = contract("fps", "attendance")
    table = pa.table({
        "student_id": ["S1", "S2"], "school_id": ["A", "B"], "school_year": pa.array([2026, 2026]),
        "days_enrolled": pa.array([10, 5]), "days_absent": pa.array([1, 9]),
    })
    result = validate_table(table, c)
    assert [(p.row_number, p.rule, p.value) for p in result.problems] == [
        (2, "absent_within_enrolled", "days_absent=9; days_enrolled=5")
    ]
