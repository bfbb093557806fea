"""A city adds an agency by adding files, never code (data_sharing/partnership.py).

A fourth agency, the early-learning provider `elc`, is added to a copy of the shipped configuration: one MOU and
one extract contract. `c2c check-config` accepts it and `c2c run` takes its files in under its MOU.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import csv_bytes
from pipelines.cli import main
from warehouse.db import make_engine
from warehouse.manifest import ManifestStore

REPO = Path(__file__).resolve().parents[2]

ELC_MOU = """\
# Data-sharing agreement (MOU): Fairhaven Early Learning Collaborative -> City of Fairhaven Children's Cabinet.
mou_id: MOU-ELC-CITY-2024
version: 1
agency: elc
agency_name: Fairhaven Early Learning Collaborative
parties:
  - name: Fairhaven Early Learning Collaborative
    role: data_provider
    signatory: Executive Director
  - name: City of Fairhaven, Children's Cabinet Data Office
    role: data_recipient
    signatory: Chief Data Officer
legal_basis: >-
  Parental consent collected at enrolment; state early-learning data-sharing statute.
purposes: [indicator_reporting, program_evaluation]
effective_date: 2024-07-01
expiry_date: 2029-06-30
raw_retention_days: 7
min_cell_size: 10
delivery_cadence_days: 31
access_tiers:
  public:
    description: Published, suppressed indicator values only.
    members: [anyone]
  partners:
    description: Pseudonymous row-level warehouse tables keyed by child_key.
    members: [city_data_office]
extracts:
  enrollments:
    permitted_fields: [child_id, first_name, last_name, birth_date, sex, site_id, program_year, start_date, end_date]
    identifier_fields: [child_id, first_name, last_name, birth_date]
"""

ELC_ENROLLMENTS = """\
# Extract contract: Fairhaven Early Learning Collaborative, `enrollments`.
extract: enrollments
agency: elc
version: 1
title: Early-learning enrolments
grain: one row per child per site per program year
period_column: program_year
unique_key: [child_id, site_id, program_year, start_date]
columns:
  child_id:     {type: string, max_length: 32, privacy: direct, id_type: child}
  first_name:   {type: string, max_length: 100, privacy: direct, linkage: first_name}
  last_name:    {type: string, max_length: 100, privacy: direct, linkage: last_name}
  birth_date:   {type: date, min: "2015-01-01", privacy: direct, linkage: birth_date, generalize: year_month}
  sex:          {type: code, codes: [F, M, X], privacy: quasi, linkage: sex}
  site_id:      {type: string, max_length: 32}
  program_year: {type: integer, min: 2000, max: 2100}
  start_date:   {type: date, min: "2015-01-01"}
  end_date:     {type: date, required: false, min: "2015-01-01"}
rules:
  - id: end_on_or_after_start
    check: end_date >= start_date
    explain: The end date is before the start date.
"""

ENROLLMENT_HEADER = [
    "child_id", "first_name", "last_name", "birth_date", "sex", "site_id", "program_year", "start_date", "end_date",
]
ENROLLMENTS = csv_bytes(
    ENROLLMENT_HEADER,
    [  # made-up children, in any column order the header gives
        ["E0001", "Testfirsta", "Testlasta", "2022-01-10", "F", "SITE1", "2027", "2026-08-20", ""],
        ["E0002", "Testfirstb", "Testlastb", "2021-11-02", "M", "SITE1", "2027", "2026-08-20", "2026-10-01"],
        ["E0003", "Testfirstc", "Testlastc", "2022-06-30", "X", "SITE2", "2027", "2026-08-21", ""],
        ["E0004", "Testfirstd", "Testlastd", "2021-09-15", "F", "SITE2", "2027", "2026-08-22", ""],
    ],
)


@pytest.fixture
def config_with_elc(tmp_path: Path) -> tuple[Path, Path]:
    agreements = tmp_path / "config" / "agreements"
    extracts = tmp_path / "config" / "extracts"
    agreements.mkdir(parents=True)
    for mou in sorted((REPO / "schemas/agreements").glob("*.yaml")):
        shutil.copy(mou, agreements / mou.name)
    shutil.copytree(REPO / "schemas/extracts", extracts, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (agreements / "elc.yaml").write_text(ELC_MOU, encoding="utf-8")
    (extracts / "elc").mkdir()
    (extracts / "elc" / "enrollments.yaml").write_text(ELC_ENROLLMENTS, encoding="utf-8")
    return agreements, extracts


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("C2C_") and var not in ("C2C_TEST_PG_URL", "C2C_MASTER_KEY", "C2C_DATA_DOCS"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("C2C_TODAY", "2026-11-23")


def test_check_config_accepts_a_fourth_agency(clean_env, config_with_elc, capsys) -> None:
    agreements, extracts = config_with_elc
    assert main(["check-config", "--agreements", str(agreements), "--extracts", str(extracts)]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")] == ["dhs", "elc", "fhd", "fps"]
    assert (
        "elc: MOU-ELC-CITY-2024 v1 (Fairhaven Early Learning Collaborative), in force 2024-07-01 to 2029-06-30, "
        "min cell 10, raw kept 7 days\n  enrollments: 9 columns, 4 identifiers, 1 rules\n"
    ) in out


def test_check_config_catches_a_mismatch_in_the_new_files(clean_env, config_with_elc, capsys) -> None:
    """Control: the same files with the MOU forgetting an identifier are refused (the acceptance above means something)."""
    agreements, extracts = config_with_elc
    mou = agreements / "elc.yaml"
    mou.write_text(
        mou.read_text().replace("identifier_fields: [child_id, first_name, last_name, birth_date]",
                                "identifier_fields: [child_id, first_name, last_name]"),
        encoding="utf-8",
    )
    assert main(["check-config", "--agreements", str(agreements), "--extracts", str(extracts)]) == 2
    err = capsys.readouterr().err
    assert f"{mou}: extracts.enrollments.identifier_fields: " in err
    assert "birth_date" in err


def test_pipeline_takes_in_the_fourth_agency(
    clean_env, config_with_elc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    agreements, extracts = config_with_elc
    monkeypatch.setenv("C2C_AGREEMENTS_DIR", str(agreements))
    monkeypatch.setenv("C2C_EXTRACTS_DIR", str(extracts))
    drop = tmp_path / "drop"
    (drop / "elc").mkdir(parents=True)
    (drop / "elc/enrollments_20260815.csv").write_bytes(ENROLLMENTS)
    (drop / "elc/waitlist_20260815.csv").write_bytes(ENROLLMENTS)  # an extract elc has no MOU for
    home = tmp_path / "home"

    assert main(["run", "--home", str(home), "--drop", str(drop), "--settle", "0"]) == 3  # one refused
    out = capsys.readouterr().out
    assert "elc/enrollments_20260815.csv: accepted (4 rows)" in out
    assert "  files: 1 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in out

    engine = make_engine(f"sqlite:///{home / 'warehouse.db'}")
    entries = {e.rel_path: e for e in ManifestStore(engine).entries()}
    engine.dispose()
    assert sorted(entries) == ["elc/enrollments_20260815.csv", "elc/waitlist_20260815.csv"]
    accepted = entries["elc/enrollments_20260815.csv"]
    assert (accepted.status, accepted.agency, accepted.extract, accepted.rows) == ("accepted", "elc", "enrollments", 4)
    assert (accepted.mou_id, accepted.mou_version) == ("MOU-ELC-CITY-2024", 1)
    assert accepted.period_rows == {2027: 4}
    refused = entries["elc/waitlist_20260815.csv"]
    assert (refused.status, refused.reason_code) == ("refused", "unknown_extract")
    assert refused.reason == (
        "'waitlist' is not an extract that MOU MOU-ELC-CITY-2024 v1 allows 'elc' to send (allowed: enrollments)."
    )
