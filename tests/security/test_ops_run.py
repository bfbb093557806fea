"""Issue 20 items 4 and 8, issue 17 item 5: `c2c run` tells the truth, and leaves its data private.

One small city (four extracts, 60 children) plus one file refused at intake is taken in once by `c2c run`
as a subprocess (module fixture); the tests read what it printed, its exit code and the files it wrote.
Before the fix: the refused file gave exit 0; a landing file altered on disk before validation printed
"accepted" and "0 failed" with exit 0 and no alert; the warehouse, linkage area and Dagster home were 0644.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

from tests.operations.ops_support import BIN, city_env, small_city, subprocess_env

REFUSED = "fps/students_20260101.csv"  # a header typo: refused at intake, the city's own files go on


def _c2c(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "c2c"), *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import base64
    import secrets

    root = tmp_path_factory.mktemp("ops_run")
    drop = small_city(root / "city")
    (drop / REFUSED).write_text("studentid,first_name\nS1,Testfirst\n", encoding="utf-8")
    home = root / "home"  # created by c2c itself, under its umask
    env = subprocess_env(city_env(home, drop, C2C_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode()))
    first = _c2c(env, "run", "--settle", "0")
    return {"home": home, "drop": drop, "env": env, "first": first}


def test_refused_file_gives_exit_3_and_says_why(hub: dict) -> None:
    first = hub["first"]
    assert first.returncode == 3, first.stdout + first.stderr
    assert f"{REFUSED}: REFUSED - " in first.stdout
    assert "4 accepted, 1 refused" in first.stdout and "0 failed" in first.stdout
    assert "Traceback" not in first.stdout + first.stderr
    assert not (hub["home"] / "alerts.jsonl").exists()  # a refusal is not a pipeline failure


def _loose(root: Path) -> list[str]:
    out = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            if not stat.S_ISLNK(os.lstat(path).st_mode) and mode & 0o077:
                out.append(f"{mode:04o} {path.relative_to(root)}")
    return out


def test_everything_the_hub_wrote_is_private(hub: dict) -> None:
    home: Path = hub["home"]
    written = [p for p in home.rglob("*") if p.is_file()]
    # the run really wrote the places issue 20 found world-readable
    assert (home / "warehouse.db").is_file() and any((home / "linkage").rglob("*.parquet"))
    assert any((home / "dagster").rglob("*.db")) and (home / "dagster" / "dagster.yaml").is_file()
    assert len(written) > 20
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert _loose(home) == []
    doctor = _c2c(hub["env"], "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_doctor_reports_a_loose_file_and_fixes_it(hub: dict) -> None:
    target = hub["home"] / "warehouse.db"
    os.chmod(target, 0o644)
    try:
        doctor = _c2c(hub["env"], "doctor")
        assert doctor.returncode == 1
        assert f"0644 file {target}" in doctor.stdout
        fixed = _c2c(hub["env"], "doctor", "--fix")
        assert fixed.returncode == 0, fixed.stdout
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    finally:
        os.chmod(target, 0o600)


def test_landing_file_altered_before_validation_fails_with_alert_and_audit(hub: dict) -> None:
    home: Path = hub["home"]
    # An accepted file whose pseudonymous record is missing is taken in again from the landing zone;
    # its landed copy was altered on disk in the meantime.
    [staging] = list((home / "linkage" / "staging" / "dhs" / "clients").glob("*.parquet"))
    staging.unlink()
    [landed] = [p for p in (home / "landing" / "dhs").iterdir() if p.name.startswith("clients_")]
    data = bytearray(landed.read_bytes())
    data[-20] ^= 0x01
    landed.write_bytes(bytes(data))

    second = _c2c(hub["env"], "run", "--settle", "0")
    out = second.stdout + second.stderr
    assert second.returncode == 1, out
    line = next(x for x in second.stdout.splitlines() if "dhs/clients_" in x and "FAILED" in x)
    assert "FAILED at validation - its encrypted copy in the landing zone does not open" in line
    assert "1 failed" in second.stdout and "accepted (" not in line
    assert "Traceback" not in out

    alerts = [json.loads(x) for x in (home / "alerts.jsonl").read_text().splitlines()]
    [alert] = [a for a in alerts if a["job"] == "intake_job"]
    assert alert["job"] == "intake_job" and alert["file"].startswith("dhs/clients_")
    assert alert["error_class"] == "LandingError" and "failed at validation" in alert["hint"]
    with sqlite3.connect(home / "warehouse.db") as conn:
        rows = conn.execute("SELECT subject, details FROM audit_log WHERE event_type = 'run_failed'").fetchall()
    rows = [r for r in rows if r[0] != "nightly_job"]  # the nightly run may fail too without that file's record
    assert [r[0] for r in rows] == [alert["file"]]
    details = json.loads(rows[0][1])
    assert details["step"] == "validation" and details["run_id"] == alert["run_id"]
