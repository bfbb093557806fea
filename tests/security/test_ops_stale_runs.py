"""Issue 20 item 6: a run left STARTED by a process that is gone is marked failed by the next `c2c run`
(with an audit entry), and the Dagster instance c2c writes has run monitoring on for the daemon.

Before the fix the run stayed STARTED forever and, under the daemon, blocked the next intake run.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from tests.operations.ops_support import BIN, city_env, subprocess_env


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_run_left_started_by_a_dead_process_is_failed_with_an_audit_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, master_key: str
) -> None:
    from pipelines.definitions import build_definitions
    from pipelines.instance import ensure_dagster_home
    from pipelines.settings import Settings

    home, drop = tmp_path / "home", tmp_path / "drop"
    (drop / "fps").mkdir(parents=True)
    env = city_env(home, drop, C2C_MASTER_KEY=master_key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ensure_dagster_home(home / "dagster")
    job = build_definitions(Settings.from_env(env), env={}).resolve_job_def("nightly_job")
    with DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled  # the dagster.yaml c2c writes turns the daemon's monitoring on
        stale = instance.create_run_for_job(
            job, status=DagsterRunStatus.STARTED, tags={"c2c/pid": str(_dead_pid()), "c2c/host": socket.gethostname()}
        )
        alive = instance.create_run_for_job(  # a run whose process is alive (this one) is left alone
            job, status=DagsterRunStatus.STARTED, tags={"c2c/pid": str(os.getpid()), "c2c/host": socket.gethostname()}
        )

    proc = subprocess.run([str(BIN / "c2c"), "run", "--settle", "0"], env=subprocess_env(env), capture_output=True,
                          text=True, timeout=900)
    assert "1 run(s) left running by a process that is gone marked failed" in proc.stdout, proc.stdout + proc.stderr

    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(stale.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED
    with sqlite3.connect(home / "warehouse.db") as conn:
        rows = conn.execute("SELECT actor, subject, details FROM audit_log WHERE event_type = 'stale_run_failed'").fetchall()
    assert len(rows) == 1 and rows[0][0] == "c2c.run" and stale.run_id in rows[0][2]


def test_an_older_dagster_yaml_gets_run_monitoring(tmp_path: Path) -> None:
    from pipelines.instance import ensure_dagster_home

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    ensure_dagster_home(tmp_path)
    text = (tmp_path / "dagster.yaml").read_text(encoding="utf-8")
    assert "run_monitoring:\n  enabled: true" in text and text.startswith("telemetry:")
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds == 21600


def test_the_daemons_door_fails_stale_runs_before_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`c2c ui` (webserver + daemon) runs the same clean-up first (`fail_stale_runs_at_start`)."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import fail_stale_runs_at_start
    from pipelines.settings import Settings

    settings = Settings.from_env({"C2C_HOME": str(tmp_path / "home"), "C2C_TODAY": "2026-11-23"})
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    assert fail_stale_runs_at_start(settings, echo=lambda _: None) == []  # nothing stale: no warehouse touched
    assert not (settings.home / "warehouse.db").exists()
    job = build_definitions(settings, env={}).resolve_job_def("nightly_job")
    with DagsterInstance.get() as instance:
        stale = instance.create_run_for_job(
            job, status=DagsterRunStatus.STARTING, tags={"c2c/pid": str(_dead_pid()), "c2c/host": socket.gethostname()}
        )
    assert fail_stale_runs_at_start(settings, echo=lambda _: None) == [stale.run_id]
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(stale.run_id).status == DagsterRunStatus.FAILURE
    with sqlite3.connect(settings.home / "warehouse.db") as conn:
        [(subject,)] = conn.execute("SELECT subject FROM audit_log WHERE event_type = 'stale_run_failed'").fetchall()
    assert subject == "nightly_job"
