"""Validation inside the pipeline: quarantine exactly the bad rows, refuse files without touching
what is downstream, feedback and Data Docs without identifier values, the scorecard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from data_sharing.keys import load_keyset
from data_sharing.landing import LandingZone
from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from schemas.contracts import EXTRACTS_DIR
from tests.conftest import STUDENT_HEADER, csv_bytes, student_row
from warehouse.db import make_engine
from warehouse.manifest import ManifestStore

ATTENDANCE_HEADER = ["student_id", "school_id", "school_year", "days_enrolled", "days_absent"]


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"C2C_HOME": str(tmp_path / "home"), "C2C_TODAY": "2026-11-23", **env})


def run(settings: Settings) -> None:
    summary = run_pipeline(settings, settle_s=0, echo=lambda _: None)
    assert summary.ok, summary.files


def students_with_bad_rows(n: int, bad: dict[int, tuple[str, str]]) -> bytes:
    rows = []
    for i in range(1, n + 1):
        row = student_row(i)
        if i in bad:
            column, value = bad[i]
            row[STUDENT_HEADER.index(column)] = value
        rows.append(row)
    return csv_bytes(STUDENT_HEADER, rows)


def test_one_percent_bad_rows_are_quarantined_and_the_rest_go_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C2C_DATA_DOCS", "1")
    settings = settings_for(tmp_path, C2C_DATA_DOCS="1")
    (settings.drop_dir / "fps").mkdir(parents=True)
    # 200 rows, 2 bad (1%): row 17 has a grade that does not exist, row 150 a sex code outside F/M/X
    data = students_with_bad_rows(200, {17: ("grade_level", "13"), 150: ("sex", "Q")})
    (settings.drop_dir / "fps" / "students_20260815.csv").write_bytes(data)
    run(settings)

    [entry] = ManifestStore(make_engine(settings.warehouse_url)).entries()
    assert entry.status == "accepted"
    staging = next((settings.linkage_dir / "staging" / "fps" / "students").glob("*.parquet"))
    numbers = pq.read_table(staging).column("row_number").to_pylist()
    assert numbers == [i for i in range(1, 201) if i not in (17, 150)]

    # the quarantined rows are kept, encrypted, in the landing zone: exactly rows 17 and 150
    zone = LandingZone(settings.landing_dir, load_keyset(settings.key_file, env=settings.key_env()))
    [q] = [f for f in zone.files("fps") if f.name.endswith(".quarantine.csv")]
    assert b"Testfirst17" not in q.path.read_bytes()
    quarantined = pd.read_csv(pd.io.common.BytesIO(zone.read(q)), dtype=str)
    assert quarantined["_row_number"].astype(int).tolist() == [17, 150]

    feedback = (settings.drop_dir / "fps" / "feedback" / "students_20260815.csv").read_text()
    assert "17,grade_level" in feedback and "150,sex" in feedback
    # identifiers are never echoed: not in feedback, Data Docs or anywhere under home outside the landing zone
    secrets = ["Testfirst17", "Testlast17", "Testfirst150", "S00017", "S00150", "17 Test Street"]
    scanned = [p for p in settings.home.rglob("*") if p.is_file() and settings.landing_dir not in p.parents]
    scanned += list((settings.drop_dir / "fps" / "feedback").iterdir())
    assert any("data_docs" in str(p) and p.suffix == ".html" for p in scanned)
    for path in scanned:
        content = path.read_bytes()
        for s in secrets:
            assert s.encode() not in content, f"{s} found in {path}"

    card = json.loads((settings.home / "reports" / "data_quality_scorecard.json").read_text())
    students = card["fps"]["students"]
    assert (students["rows_in"], students["accepted"], students["quarantined"]) == (200, 198, 2)
    assert students["share_accepted"] == 0.99


def test_a_file_refused_by_validation_changes_nothing_downstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extracts = tmp_path / "extracts"
    shutil.copytree(EXTRACTS_DIR, extracts)
    path = extracts / "fps" / "attendance.yaml"
    contract = yaml.safe_load(path.read_text())
    contract["rules"][0]["outcome"] = "refuse_file"  # days_absent > days_enrolled refuses the whole file
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    monkeypatch.setenv("C2C_EXTRACTS_DIR", str(extracts))
    settings = settings_for(tmp_path)
    (settings.drop_dir / "fps").mkdir(parents=True)
    good = [[f"S{i:05d}", "SCH1", "2026", "170", "3"] for i in range(10)]
    (settings.drop_dir / "fps" / "attendance_20260801.csv").write_bytes(csv_bytes(ATTENDANCE_HEADER, good))
    run(settings)
    bad = [row[:] for row in good]
    bad[4][4] = "171"  # more days absent than enrolled
    (settings.drop_dir / "fps" / "attendance_20260815.csv").write_bytes(csv_bytes(ATTENDANCE_HEADER, bad))
    staging_before = sorted(p.name for p in settings.linkage_dir.rglob("*.parquet"))
    run(settings)

    store = ManifestStore(make_engine(settings.warehouse_url))
    by_name = {e.file_name: e for e in store.entries()}
    refused = by_name["attendance_20260815.csv"]
    assert (refused.status, refused.reason_code) == ("refused", "validation_failed")
    assert "Days absent is larger than days enrolled" in (refused.reason or "")
    assert by_name["attendance_20260801.csv"].status == "accepted"  # still the current snapshot
    owners = store.current_snapshot()[("fps", "attendance")]
    assert {e.file_name for e in owners.values()} == {"attendance_20260801.csv"}
    assert sorted(p.name for p in settings.linkage_dir.rglob("*.parquet")) == staging_before  # nothing protected
    feedback = (settings.drop_dir / "fps" / "feedback" / "attendance_20260815.csv").read_text()
    assert "5,days_absent" in feedback or "5,," in feedback


def test_check_extract_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from pipelines.cli import main

    ok = tmp_path / "students_20260815.csv"
    ok.write_bytes(students_with_bad_rows(5, {}))
    warn = tmp_path / "warn" / "students_20260815.csv"
    warn.parent.mkdir()
    warn.write_bytes(students_with_bad_rows(5, {}) + csv_bytes(STUDENT_HEADER, [student_row(1)]).split(b"\n", 1)[1])
    bad = tmp_path / "bad" / "students_20260815.csv"
    bad.parent.mkdir()
    bad.write_bytes(b"student_id,ssn\nS1,000\n")
    assert main(["check-extract", str(ok), "--agency", "fps"]) == 0
    assert main(["check-extract", str(warn), "--agency", "fps"]) == 1  # an exact repeat: warning
    assert main(["check-extract", str(bad), "--agency", "fps"]) == 2
    out = capsys.readouterr().out
    assert "REFUSED" in out and "000" not in out.split("REFUSED", 1)[1].replace("20260815", "")
