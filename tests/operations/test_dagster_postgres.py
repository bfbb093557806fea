"""The documented production Dagster instance (deploy/dagster.postgres.yaml) on the local PostgreSQL:
a run's events and the drop-folder sensor's cursor land there."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from tests.conftest import PG_URL, students_csv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_dagster_home(tmp_path: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("C2C_DAGSTER_PG_URL", f"{PG_URL}?options=-csearch_path%3D{pg_schema}")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA IF NOT EXISTS " + conn.dialect.identifier_preparer.quote_schema(pg_schema)))
    engine.dispose()
    return home


def _pg_scalar(schema: str, sql: str) -> object:
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def test_runs_and_events_land_in_postgres(tmp_path: Path, pg_dagster_home: Path, pg_schema: str) -> None:
    from dagster import DagsterInstance

    drop = tmp_path / "drop"
    (drop / "fps").mkdir(parents=True)
    (drop / "fps" / "students_20260815.csv").write_bytes(students_csv(3))
    settings = Settings.from_env(
        {"C2C_HOME": str(tmp_path / "home"), "C2C_DROP_DIR": str(drop), "C2C_TODAY": "2026-11-23",
         "DAGSTER_HOME": str(pg_dagster_home)}
    )
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        summary = run_pipeline(settings, settle_s=0, echo=lambda _: None, instance=instance)
        assert summary.ok and summary.counts["accepted"] == 1
        runs = instance.get_runs()
        assert {r.job_name for r in runs} == {"intake_job", "nightly_job"}
    assert _pg_scalar(pg_schema, "SELECT count(*) FROM runs") == 2
    events = _pg_scalar(pg_schema, "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
    # intake_file, validated_file, protected_file; current_snapshots, raw_retention, scorecard, linked_persons,
    # warehouse_tables, indicator_release, cabinet_report
    assert events == 10


@pytest.mark.slow
def test_sensor_cursor_lands_in_postgres(tmp_path: Path, pg_dagster_home: Path, pg_schema: str) -> None:
    """A real daemon ticks the drop-folder sensor; its cursor is stored in PostgreSQL."""
    drop = tmp_path / "drop"
    (drop / "fps").mkdir(parents=True)
    (drop / "fps" / "students_20260815.csv").write_bytes(students_csv(2))
    env = {**os.environ, "C2C_HOME": str(tmp_path / "home"), "C2C_DROP_DIR": str(drop), "C2C_TODAY": "2026-11-23"}
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    cursor = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and cursor is None:
            time.sleep(2)
            try:
                body = _pg_scalar(
                    pg_schema,
                    "SELECT instigator_body FROM instigators WHERE instigator_type = 'SENSOR' "
                    "AND instigator_body LIKE '%\"drop_folder_sensor\"%'",
                )
            except Exception:  # noqa: BLE001 - tables appear when the daemon first writes
                body = None
            if body and "students_20260815.csv" in str(body):
                cursor = body
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
    assert cursor is not None, "the daemon did not store the sensor's cursor in PostgreSQL within 90 s"
    state = json.loads(cursor)
    assert "students_20260815.csv" in json.dumps(state)
