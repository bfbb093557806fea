"""`c2c run`, `c2c manifest` and `c2c check-config` over a small hand-built drop folder (made-up synthetic values).

The run is checked on SQLite and on PostgreSQL (`--warehouse PG_URL --schema <fresh schema>`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import csv_bytes, students_csv
from pipelines.cli import main
from pipelines.runner import UNLINKED_LINES
from stages.linkage import STATUS_NO_PEOPLE, STATUS_SKIPPED
from warehouse.db import make_engine
from warehouse.manifest import ManifestStore

REPO = Path(__file__).resolve().parents[2]
PATIENT_HEADER = ["patient_id", "first_name", "last_name", "birth_date", "sex", "street_address", "zip", "medicaid_id"]
PATIENTS = csv_bytes(
    PATIENT_HEADER,
    [
        ["P0001", "Testfirsta", "Testlasta", "2016-01-02", "M", "1 Test Road", "02100", ""],
        ["P0002", "Testfirstb", "Testlastb", "2017-03-04", "F", "2 Test Road", "02101", "MTEST0002"],
    ],
)
# a DHS clients extract carrying a column the MOU does not permit: refused as a whole
CLIENTS_WITH_SSN = csv_bytes(
    ["client_id", "first_name", "last_name", "birth_date", "sex", "street_address", "zip", "ssn"],
    [["C0001", "Testfirstc", "Testlastc", "2018-05-06", "X", "3 Test Road", "02102", "000-00-0000"]],
)
CLIENTS_REASON = (
    "The MOU does not permit these columns in 'clients': ssn. Remove them and drop the file again; "
    "the file was not stored."
)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: nothing from the caller's C2C_* settings; Dagster's home inside tmp_path."""
    for var in list(os.environ):
        if var.startswith("C2C_") and var not in ("C2C_TEST_PG_URL", "C2C_MASTER_KEY", "C2C_DATA_DOCS"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # c2c run sets it in-process; restored after
    monkeypatch.setenv("C2C_TODAY", "2026-11-23")
    return tmp_path / "home"


@pytest.fixture
def small_drop(drop: Path) -> Path:
    (drop / "fps/students_20260815.csv").write_bytes(students_csv(3))
    (drop / "fhd/patients_20260815.csv").write_bytes(PATIENTS)
    (drop / "dhs/clients_20260815.csv").write_bytes(CLIENTS_WITH_SSN)
    return drop


def warehouse_args(target: tuple[str, str | None]) -> list[str]:
    url, schema = target
    return ["--warehouse", url] + (["--schema", schema] if schema else [])


def manifest_rows(target: tuple[str, str | None]) -> list[tuple]:
    engine = make_engine(*target)
    try:
        return [
            (e.id, e.rel_path, e.status, e.reason_code, e.rows, e.sha256, e.agency, e.extract, str(e.as_of_date), e.decided_at)
            for e in ManifestStore(engine).entries()
        ]
    finally:
        engine.dispose()


def test_run_is_correct_and_idempotent(
    cli_env: Path, small_drop: Path, warehouse_target: tuple[str, str | None], capsys: pytest.CaptureFixture
) -> None:
    argv = ["run", "--home", str(cli_env), "--drop", str(small_drop), "--settle", "0", *warehouse_args(warehouse_target)]
    assert main(argv) == 3  # finished, with a refused file
    out = capsys.readouterr().out
    assert f"c2c: drop folder {small_drop}: 3 complete file(s), 3 to take in" in out
    assert f"  [1/3] dhs/clients_20260815.csv: REFUSED - {CLIENTS_REASON}" in out
    assert "  [2/3] fhd/patients_20260815.csv: accepted (2 rows)" in out
    assert "  [3/3] fps/students_20260815.csv: accepted (3 rows)" in out
    assert "  files: 2 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in out
    assert "  rows accepted: 5" in out
    assert "nightly cross-agency run succeeded" in out
    # five records are too few to train a linkage model: the summary says so instead of staying silent
    assert f"  linkage:       {UNLINKED_LINES[STATUS_SKIPPED]}" in out
    assert "persons across agencies" not in out

    rows = manifest_rows(warehouse_target)
    assert [r[1:9] for r in rows] == [
        ("dhs/clients_20260815.csv", "refused", "columns_not_permitted", None,
         hashlib.sha256(CLIENTS_WITH_SSN).hexdigest(), "dhs", "clients", "2026-08-15"),
        ("fhd/patients_20260815.csv", "accepted", None, 2,
         hashlib.sha256(PATIENTS).hexdigest(), "fhd", "patients", "2026-08-15"),
        ("fps/students_20260815.csv", "accepted", None, 3,
         hashlib.sha256(students_csv(3)).hexdigest(), "fps", "students", "2026-08-15"),
    ]

    # accepted files moved into the encrypted landing zone; the refused one stays for the agency
    assert sorted(p.name for p in small_drop.rglob("*") if p.is_file() and p.parent.name != "feedback") == ["clients_20260815.csv"]
    # every file got a feedback report for the agency clerk, the refused one with its reason
    feedback = sorted(p.name for p in small_drop.rglob("feedback/*"))
    assert feedback == ["clients_20260815.csv", "clients_20260815.html", "patients_20260815.csv",
                        "patients_20260815.html", "students_20260815.csv", "students_20260815.html"]
    assert CLIENTS_REASON.split(":")[0] in (small_drop / "dhs/feedback/clients_20260815.csv").read_text()
    landed = sorted(p.name for p in (cli_env / "landing").rglob("*") if p.is_file())
    assert [n.split(".")[0] for n in landed] == ["patients_20260815", "students_20260815"]
    for p in (cli_env / "landing").rglob("*.c2cland"):
        assert b"Testfirst" not in p.read_bytes() and b"student_id" not in p.read_bytes()

    assert main(argv) == 3  # again: nothing new, but the refused file is still there, unchanged
    out = capsys.readouterr().out
    assert f"c2c: drop folder {small_drop}: 1 complete file(s), 0 to take in" in out
    assert f"  dhs/clients_20260815.csv: REFUSED - {CLIENTS_REASON} (refused on an earlier night" in out
    assert "  files: 0 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in out
    assert "  rows accepted: 0" in out
    assert "[1/" not in out
    assert manifest_rows(warehouse_target) == rows  # same rows, same statuses, same decision times

    manifest = ["manifest", "--home", str(cli_env), *warehouse_args(warehouse_target)]
    assert main([*manifest, "--status", "refused"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{rows[0][0]:>5}  refused     dhs/clients_20260815.csv",
        f"       columns_not_permitted: {CLIENTS_REASON}",
        "1 file(s)",
    ]
    assert main(manifest) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "3 file(s)"


def test_run_waits_for_fresh_files_with_default_settle(cli_env: Path, drop: Path, capsys) -> None:
    (drop / "fps/students_20260815.csv").write_bytes(students_csv(1))
    assert main(["run", "--home", str(cli_env), "--drop", str(drop), "--settle", "3600"]) == 0
    out = capsys.readouterr().out
    assert f"c2c: drop folder {drop}: 0 complete file(s), 0 to take in, 1 still being written (skipped)" in out
    assert "  files: 0 accepted, 0 refused, 0 duplicate, 0 already processed, 0 failed, 1 still being written" in out


def test_run_survives_a_non_utf8_file_name(cli_env: Path, drop: Path, capsys) -> None:
    (drop / "fps/students_20260815.csv").write_bytes(students_csv(2))
    with open(os.fsencode(drop / "fps") + b"/caf\xe9_20260815.csv", "wb") as fh:
        fh.write(b"x")
    assert main(["run", "--home", str(cli_env), "--drop", str(drop), "--settle", "0"]) == 3
    out = capsys.readouterr().out
    assert "  files: 1 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in out


def test_second_run_still_reports_file_with_control_character_as_refused(cli_env: Path, drop: Path, capsys) -> None:
    (drop / "fps/line\nbreak.csv").write_bytes(b"x")
    argv = ["run", "--home", str(cli_env), "--drop", str(drop), "--settle", "0"]
    assert main(argv) == 3
    first = capsys.readouterr().out
    assert "  files: 0 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in first
    [line] = [line for line in first.splitlines() if "REFUSED" in line]
    assert main(argv) == 3  # left in the drop folder as it was: still refused, for the same reason, not taken in again
    again = capsys.readouterr().out
    assert "  files: 0 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in again
    assert "[1/" not in again
    assert f"  {line.split('] ', 1)[1]} (refused on an earlier night" in again
    (drop / "fps/line\nbreak.csv").unlink()  # the agency removes it: a clean night again
    assert main(argv) == 0
    assert "  files: 0 accepted, 0 refused, 0 duplicate, 0 already processed, 0 failed" in capsys.readouterr().out


# ---- check-config -----------------------------------------------------------------------------------------


def test_check_config_accepts_the_shipped_files(cli_env: Path, capsys) -> None:
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dhs: ")
    assert "fps: MOU-FPS-CITY-2024 v2 (Fairhaven Public Schools), in force 2024-07-01 to 2029-06-30, min cell 10" in out
    assert "  students: 18 columns, 7 identifiers, 2 rules" in out
    assert [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")] == ["dhs", "fhd", "fps"]


def test_check_config_names_file_and_key_of_a_broken_mou(cli_env: Path, tmp_path: Path, capsys) -> None:
    agreements = tmp_path / "agreements"
    shutil.copytree(REPO / "schemas/agreements", agreements, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    mou = agreements / "fps.yaml"
    text = mou.read_text(encoding="utf-8")
    assert "min_cell_size: 10\n" in text
    mou.write_text(text.replace("min_cell_size: 10\n", "min_cell_size: ten\n"), encoding="utf-8")

    assert main(["check-config", "--agreements", str(agreements)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("c2c: configuration is wrong:\n")
    assert f"{mou}: min_cell_size: " in captured.err
    assert "integer" in captured.err
    assert "fhd.yaml" not in captured.err and "dhs.yaml" not in captured.err


def test_unlinked_summary_lines_follow_the_linkage_statuses() -> None:
    """The runner's words for an unlinked night are keyed by the statuses stages.linkage reports."""
    assert set(UNLINKED_LINES) == {STATUS_SKIPPED, STATUS_NO_PEOPLE}
