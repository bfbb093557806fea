"""Indicator definition files: the shipped set covers the SPEC; wrong files name the file, key path and problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from schemas.errors import ContractError, ContractErrors
from schemas.indicators import (
    INDICATORS_DIR,
    IndicatorDefinition,
    check_definition_set,
    cvx,
    load_indicator_definition,
    load_indicator_definitions,
)
from schemas.indicators import KINDS as KIND_SPECS
from warehouse.indicators import KINDS

SPEC_INDICATORS = {
    "chronic_absence", "kindergarten_readiness", "grade3_reading", "grade8_math", "hs_graduation_4yr",
    "kindergarten_mmr2", "well_child_visit",
}
ALL_DIMENSIONS = ["all", "race_ethnicity", "sex", "english_learner", "disability", "econ_disadvantaged", "homeless"]


def test_shipped_definitions_cover_the_spec() -> None:
    defs = load_indicator_definitions()
    assert set(defs.by_indicator()) == SPEC_INDICATORS
    assert set(defs) == SPEC_INDICATORS | {"chronic_absence_by_program"}
    for d in defs.values():
        assert d.kind in KINDS and d.kind in KIND_SPECS and set(KINDS) == set(KIND_SPECS)
        assert d.levels == ["city", "school"] and d.version >= 1
        if d.kind == "chronic_absence_by_program":
            assert d.indicator == "chronic_absence" and d.dimensions == ["program"]
            assert d.per_school_excluded_groups == {"program": ["CHILD_WELFARE", "FOSTER_CARE"]}
            assert d.roles_read == ["school_attendance", "school_enrolment", "services_program_spell"]
        else:
            assert d.dimensions == ALL_DIMENSIONS
    p = defs["chronic_absence"].params
    assert (p.min_days_enrolled, p.threshold_fraction) == (10, __import__("fractions").Fraction(1, 10))
    mmr = defs["kindergarten_mmr2"].params
    assert mmr.canonical_codes == ["03", "94"] and (mmr.dose_cutoff.month, mmr.dose_cutoff.day) == (9, 1) and mmr.min_doses == 2
    assert defs["kindergarten_mmr2"].roles_read == ["health_immunization", "school_enrolment"]
    assert defs["hs_graduation_4yr"].params.excluded_outcomes == ["TRANSFERRED_OUT", "DECEASED"]
    assert all(len(h) == 64 for h in defs.sha256.values()) and set(defs.sha256) == set(defs)
    assert not defs["chronic_absence"].schools_add_up and defs["grade3_reading"].schools_add_up


def test_cvx_codes_are_canonical() -> None:
    assert [cvx(c) for c in ("3", "03", "003", "94", "208", " 94 ")] == ["03", "03", "03", "94", "208", "94"]


def write(tmp_path: Path, name: str, changes: dict, drop: tuple[str, ...] = (), base: str = "grade3_reading") -> Path:  # type: ignore[type-arg]
    data = yaml.safe_load((INDICATORS_DIR / f"{base}.yaml").read_text())
    data.update(changes)
    for key in drop:
        data.pop(key)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("changes", "base", "key_path", "fragment"),
    [
        ({"parameters": {"min_days_enrolled": "ten", "chronic_threshold": 0.1}}, "chronic_absence", "parameters.min_days_enrolled", "integer"),
        ({"parameters": {"min_days_enrolled": 10, "chronic_threshold": 1.5}}, "chronic_absence", "parameters.chronic_threshold", "less than or equal to 1"),
        ({"parameters": {"grade_level": "03", "subject": "ELA", "min_level": 3, "levels": 4}}, "grade3_reading", "parameters.levels", "unknown key"),
        ({"parameters": {"grade_levels": ["KG"], "vaccine_codes": [3, 94], "min_doses": 2, "dose_cutoff": {"month": 9, "day": 1}}},
         "kindergarten_mmr2", "parameters.vaccine_codes", "quoted text"),
        ({"parameters": {"grade_levels": ["KG"], "vaccine_codes": ["03"], "min_doses": 2, "dose_cutoff": {"month": 2, "day": 30}}},
         "kindergarten_mmr2", "parameters.dose_cutoff", "not a day"),
        ({"schools_add_up": True}, "chronic_absence", "", "schools_add_up must be false"),
        ({"schools_add_up": False}, "grade3_reading", "", "would under-protect"),
        ({"roles": ["school_enrolment"]}, "kindergarten_mmr2", "", "roles must include health_immunization"),
        ({"roles": ["school_enrolment", "health_immunization", "clinics"]}, "kindergarten_mmr2", "", "clinics, which is not a role"),
        ({"agencies": ["fps"]}, "kindergarten_mmr2", "agencies", "unknown key"),
        ({"period": "cohort_year"}, "grade3_reading", "", "period must be school_year"),
        ({"dimensions": ["all", "program"]}, "grade3_reading", "", "needs kind chronic_absence_by_program"),
        ({"dimensions": ["all", "sex", "sex"]}, "grade3_reading", "", "more than once"),
        ({"dimensions": ["all", "zip"]}, "grade3_reading", "dimensions[1]", "Input should be"),
        ({"kind": "median_income"}, "grade3_reading", "kind", "'median_income' is not a known kind"),
        ({"color": "blue"}, "grade3_reading", "color", "unknown key"),
        ({"per_school_excluded_groups": {"sex": ["X"]}, "dimensions": ["all"]}, "grade3_reading", "", "not one of the dimensions"),
    ],
)
def test_wrong_definitions_are_explained(tmp_path: Path, changes: dict, base: str, key_path: str, fragment: str) -> None:  # type: ignore[type-arg]
    path = write(tmp_path, base, changes, base=base)
    with pytest.raises(ContractError) as err:
        load_indicator_definition(path)
    assert err.value.path == path and err.value.key_path == key_path
    assert fragment in err.value.problem, err.value.problem
    assert str(path) in str(err.value)


def test_file_name_must_be_the_id(tmp_path: Path) -> None:
    path = write(tmp_path, "reading", {})
    with pytest.raises(ContractError, match="file is named 'reading.yaml'") as err:
        load_indicator_definition(path)
    assert err.value.key_path == "id"


def test_missing_keys_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "grade3_reading", {}, drop=("title", "numerator"))
    with pytest.raises(ContractErrors) as err:
        load_indicator_definition(path)
    assert sorted(e.key_path for e in err.value.errors) == ["numerator", "title"]


def test_definitions_published_together_must_fit(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "indicators"
    shutil.copytree(INDICATORS_DIR, folder)
    # A second file publishing chronic_absence's 'sex' rows again, and the 'all' row twice.
    data = yaml.safe_load((folder / "chronic_absence.yaml").read_text())
    data.update(id="chronic_absence_copy", publish_as="chronic_absence", dimensions=["all", "sex"])
    (folder / "chronic_absence_copy.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises((ContractError, ContractErrors)) as err:
        load_indicator_definitions(folder)
    text = str(err.value)
    assert "'all' is also published for 'chronic_absence'" in text and "'sex' is also published" in text
    # A group without the 'all' dimension cannot be protected.
    defs = {d.id: d for d in load_indicator_definitions().values() if d.id == "chronic_absence_by_program"}
    [problem] = check_definition_set(defs)
    assert "has the 'all' dimension" in problem.problem
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ContractError, match="holds no indicator definition"):
        load_indicator_definitions(empty)


def test_code_built_definitions_are_checked_too() -> None:
    data = yaml.safe_load((INDICATORS_DIR / "grade3_reading.yaml").read_text())
    data["parameters"] = {"grade_level": "03"}
    with pytest.raises(ValueError, match="parameters do not fit kind assessment_rate"):
        IndicatorDefinition.model_validate(data)


def test_schemas_and_warehouse_do_not_import_dagster() -> None:
    code = (
        "import sys; import schemas.indicators, warehouse.load, warehouse.indicators, warehouse.releases, warehouse.access; "
        "sys.exit(1 if any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
