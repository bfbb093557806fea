"""Contract files (extract schemas and MOUs) load into typed objects, and wrong files give precise errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from schemas.agreements import AGREEMENTS_DIR, load_agreement
from data_sharing.partnership import load_partnership
from schemas.contracts import EXTRACTS_DIR, load_extract_contract, load_extract_contracts
from schemas.errors import ContractError, ContractErrors

SPEC_EXTRACTS = {
    ("fps", "students"), ("fps", "attendance"), ("fps", "assessments"), ("fps", "graduation"),
    ("fhd", "patients"), ("fhd", "encounters"), ("fhd", "immunizations"),
    ("dhs", "clients"), ("dhs", "program_enrollments"),
}


def test_all_nine_spec_extracts_load() -> None:
    contracts = load_extract_contracts()
    assert set(contracts) == SPEC_EXTRACTS


def test_students_contract_matches_spec() -> None:
    c = load_extract_contracts()[("fps", "students")]
    assert c.column_names[:4] == ["student_id", "first_name", "middle_name", "last_name"]
    assert len(c.columns) == 18
    assert c.columns["middle_name"].required is False and c.columns["exit_date"].required is False
    assert set(c.columns["race_ethnicity"].codes or {}) == {"HI", "AI", "AS", "BL", "PI", "WH", "MR"}
    assert list(c.columns["grade_level"].codes or {}) == ["PK", "KG"] + [f"{g:02d}" for g in range(1, 13)]
    assert set(c.direct_identifiers) == {
        "student_id", "first_name", "middle_name", "last_name", "birth_date", "street_address", "zip"
    }
    assert c.id_columns == {"student_id": "student"}
    assert set(c.quasi_identifiers) == {"sex", "race_ethnicity"}
    assert c.period_column == "school_year"
    assert c.describes_people
    cmp = next(r for r in c.rules if r.id == "exit_on_or_after_enroll").comparison
    assert (cmp.left, cmp.op, cmp.right, cmp.right_is_column) == ("exit_date", ">=", "enroll_date", True)


def test_attendance_rule_and_reference() -> None:
    c = load_extract_contracts()[("fps", "attendance")]
    cmp = c.rules[0].comparison
    assert (cmp.left, cmp.op, cmp.right) == ("days_absent", "<=", "days_enrolled")
    assert c.columns["days_enrolled"].min == 0 and c.columns["days_enrolled"].max == 200
    assert c.references[0].extract == "students"
    assert c.unique_key == []  # several rows of one student, school and year are summed (SPEC)


def test_partnership_cross_checks_and_mou_items() -> None:
    p = load_partnership()
    assert p.agencies == ["dhs", "fhd", "fps"]
    for agency, agreement in p.agreements.items():
        assert agreement.raw_retention_days == 7
        assert agreement.min_cell_size >= 10
        assert set(agreement.purposes) == {"indicator_reporting", "program_evaluation"}
        assert set(agreement.access_tiers) == {"public", "partners"}
        assert agreement.legal_basis
    terms = p.terms("fhd", "patients")
    assert terms is not None and "medicaid_id" in terms.identifier_fields
    assert p.terms("fps", "patients") is None


def _copy_config(tmp_path: Path) -> tuple[Path, Path]:
    agreements = tmp_path / "agreements"
    extracts = tmp_path / "extracts"
    agreements.mkdir()
    for f in AGREEMENTS_DIR.glob("*.yaml"):
        shutil.copy(f, agreements / f.name)
    shutil.copytree(EXTRACTS_DIR, extracts)
    return agreements, extracts


def _edit_yaml(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("edit", "key_path", "fragment"),
    [
        (lambda d: d["columns"]["zip"].update(pattern="[0-9"), "columns.zip.pattern", "not a valid regular expression"),
        (lambda d: d["columns"]["sex"].pop("codes"), "columns.sex", "needs `codes`"),
        (lambda d: d["columns"]["school_year"].update(min="twenty"), "columns.school_year", "must be a number"),
        (lambda d: d["columns"]["enroll_date"].update(min="2020-13-01"), "columns.enroll_date", "must be a date"),
        (lambda d: d["columns"]["school_id"].update(typ="string"), "columns.school_id.typ", "unknown key"),
        (lambda d: d["columns"]["school_id"].update(type="text"), "columns.school_id.type", "Input should be"),
        (lambda d: d["rules"][0].update(check="exit_date >= leave_date"), "", "'leave_date', which is not one of the columns"),
        (lambda d: d["rules"][0].update(check="exit_date is after enroll_date"), "rules[0].check", "cannot read"),
        (lambda d: d.update(unique_key=["student_id", "nope"]), "", "unique_key names 'nope'"),
        (lambda d: d.update(version=0), "version", "greater than or equal to 1"),
        (lambda d: d["columns"]["first_name"].update(privacy="none"), "columns.first_name", "privacy must be direct or quasi"),
    ],
)
def test_broken_extract_contract_names_file_key_and_problem(tmp_path: Path, edit, key_path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    _, extracts = _copy_config(tmp_path)
    path = extracts / "fps" / "students.yaml"
    _edit_yaml(path, edit)
    with pytest.raises(ContractError) as exc:
        load_extract_contract(path)
    message = str(exc.value)
    assert str(path) in message
    assert fragment in message
    if key_path:
        assert exc.value.key_path == key_path


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    _, extracts = _copy_config(tmp_path)
    path = extracts / "fps" / "graduation.yaml"
    path.write_text(path.read_text() + "\nversion: 2\n")
    with pytest.raises(ContractError, match="duplicate key 'version'"):
        load_extract_contract(path)


def test_contract_in_wrong_folder(tmp_path: Path) -> None:
    _, extracts = _copy_config(tmp_path)
    shutil.move(extracts / "fps" / "graduation.yaml", extracts / "fhd" / "graduation.yaml")
    with pytest.raises(ContractError, match=r"agency: is 'fps' but the file is in folder 'fhd'"):
        load_extract_contracts(extracts)


@pytest.mark.parametrize(
    ("edit", "key_path", "fragment"),
    [
        (lambda d: d.update(min_cell_size="ten"), "min_cell_size", "valid integer"),
        (lambda d: d.update(expiry_date="2020-01-01"), "", "is not after effective_date"),
        (lambda d: d.update(purposes=["marketing"]), "purposes[0]", "indicator_reporting"),
        (lambda d: d["access_tiers"].pop("partners"), "", "missing: partners"),
        (lambda d: d.update(parties=d["parties"][:1]), "parties", "at least 2"),
        (lambda d: d["extracts"]["students"]["identifier_fields"].append("ssn"), "extracts.students", "not in permitted_fields"),
        (lambda d: d.update(retention_days=7), "retention_days", "unknown key"),
    ],
)
def test_broken_mou_names_file_key_and_problem(tmp_path: Path, edit, key_path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    agreements, _ = _copy_config(tmp_path)
    path = agreements / "fps.yaml"
    _edit_yaml(path, edit)
    with pytest.raises(ContractError) as exc:
        load_agreement(path)
    assert str(path) in str(exc.value)
    assert fragment in str(exc.value)
    if key_path:
        assert exc.value.key_path == key_path


@pytest.mark.parametrize(
    ("edit", "key_path", "fragment"),
    [
        (lambda d: d["extracts"]["students"]["permitted_fields"].append("ssn"),
         "extracts.students.permitted_fields", "ssn not defined in the contract fps/students.yaml"),
        (lambda d: d["extracts"]["attendance"]["permitted_fields"].remove("days_absent"),
         "extracts.attendance.permitted_fields", "requires days_absent"),
        (lambda d: d["extracts"]["students"]["identifier_fields"].remove("zip"),
         "extracts.students.identifier_fields", "marks zip as direct identifiers but the MOU does not"),
        (lambda d: d["extracts"].update(report_cards={"permitted_fields": ["student_id"]}),
         "extracts.report_cards", "has no contract file"),
    ],
)
def test_mou_and_contracts_are_cross_checked(tmp_path: Path, edit, key_path: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    agreements, extracts = _copy_config(tmp_path)
    _edit_yaml(agreements / "fps.yaml", edit)
    with pytest.raises(ContractError) as exc:
        load_partnership(agreements, extracts)
    assert exc.value.key_path == key_path
    assert fragment in str(exc.value)
    assert str(agreements / "fps.yaml") in str(exc.value)


def test_contract_without_mou_is_an_error(tmp_path: Path) -> None:
    agreements, extracts = _copy_config(tmp_path)
    (agreements / "dhs.yaml").unlink()
    with pytest.raises(ContractErrors) as exc:
        load_partnership(agreements, extracts)
    assert len(exc.value.errors) == 2  # clients and program_enrollments
    assert all("no MOU" in str(e) for e in exc.value.errors)


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    agreements, _ = _copy_config(tmp_path)
    _edit_yaml(agreements / "fps.yaml", lambda d: d.update(min_cell_size=0, version=0))
    _edit_yaml(agreements / "fhd.yaml", lambda d: d.update(raw_retention_days=-1))
    with pytest.raises(ContractErrors) as exc:
        load_partnership(agreements)
    keys = sorted((e.path.name, e.key_path) for e in exc.value.errors)
    assert keys == [("fhd.yaml", "raw_retention_days"), ("fps.yaml", "min_cell_size"), ("fps.yaml", "version")]
