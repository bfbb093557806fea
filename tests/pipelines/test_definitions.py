"""The code location: `defs` loads, its shape (snapshot of sorted keys and check names), the schedule's settings,
no pickling of data into Dagster storage, the Dagster CLIs accept it, and the governed core never imports Dagster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster
import pytest
from dagster import Definitions

from tests.conftest import students_csv
from pipelines.definitions import build_definitions
from pipelines.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def test_defs_loads_and_snapshot() -> None:
    from pipelines.definitions import defs

    Definitions.validate_loadable(defs)
    assert sorted(k.to_user_string() for k in defs.resolve_all_asset_keys()) == [
        "cabinet_report", "current_snapshots", "data_quality_scorecard", "indicator_release", "intake_file", "linked_persons",
        "protected_file", "raw_retention", "validated_file", "warehouse_tables",
    ]
    checks = sorted(
        (key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys
    )
    assert checks == [
        ("current_snapshots", "agencies_on_time"),
        ("current_snapshots", "every_agency_has_current_data"),
        ("indicator_release", "release_published"),
        ("intake_file", "intake_accepted"),
        ("linked_persons", "linkage_ran"),
        ("validated_file", "validation_passed"),
    ]
    blocking = {
        spec.name: spec.blocking
        for asset in ("intake_file", "validated_file", "current_snapshots")
        for spec in defs.resolve_assets_def(asset).check_specs
    }
    assert blocking == {
        "intake_accepted": True, "validation_passed": True, "every_agency_has_current_data": False, "agencies_on_time": False
    }
    assert sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")) == [
        "intake_job",
        "nightly_job",
    ]
    assert defs.resolve_sensor_def("drop_folder_sensor").job_name == "intake_job"
    assert defs.resolve_schedule_def("nightly_schedule").job_name == "nightly_job"


def test_every_asset_is_described_owned_grouped_by_stage_and_kinded() -> None:
    """What the auditor sees on every asset node (issue 8): description, owner, its stage's group, kinds."""
    from pipelines.definitions import defs
    from assets.retries import IO_RETRY

    groups = {}
    for key in defs.resolve_all_asset_keys():
        assets_def = defs.resolve_assets_def(key)
        spec = next(s for s in assets_def.specs if s.key == key)
        name = key.to_user_string()
        assert spec.description and len(spec.description) > 40, name
        assert list(spec.owners) == ["team:city-data-office"], name
        assert spec.kinds, name
        assert assets_def.op.retry_policy == IO_RETRY, name
        groups[name] = spec.group_name
    assert groups == {
        "intake_file": "intake", "current_snapshots": "intake", "validated_file": "validation",
        "data_quality_scorecard": "validation", "protected_file": "privacy", "raw_retention": "privacy",
        "linked_persons": "linkage", "warehouse_tables": "warehouse", "indicator_release": "indicators",
        "cabinet_report": "indicators",
    }


def test_schedule_defaults(tmp_path: Path) -> None:
    env = {"C2C_HOME": str(tmp_path)}
    schedule = build_definitions(Settings.from_env(env), env).resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "America/New_York"


def test_schedule_follows_environment(tmp_path: Path) -> None:
    env = {"C2C_HOME": str(tmp_path), "C2C_NIGHTLY_CRON": "30 4 * * 1-5", "C2C_TIMEZONE": "Europe/Paris"}
    schedule = build_definitions(Settings.from_env(env), env).resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "30 4 * * 1-5"
    assert schedule.execution_timezone == "Europe/Paris"


def test_wrong_time_zone_is_an_error_at_load() -> None:
    with pytest.raises(SettingsError, match="unknown time zone 'Mars/Olympus_Mons'"):
        Settings.from_env({"C2C_TIMEZONE": "Mars/Olympus_Mons"})


def _pickles_under(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                if fh.read(2) in PICKLE_MAGIC:
                    found.append(path)
    return found


def test_no_asset_pickles_data_into_dagster_storage(tmp_path: Path) -> None:
    settings = Settings.from_env({"C2C_HOME": str(tmp_path), "C2C_TODAY": "2026-11-23", "C2C_DROP_SETTLE_S": "0"})
    (settings.drop_dir / "fps").mkdir(parents=True)
    (settings.drop_dir / "fps/students_20260815.csv").write_bytes(students_csv(3))
    defs = build_definitions(settings, env={})
    dagster_dir = tmp_path / "dagster"
    dagster_dir.mkdir()
    with dagster.instance_for_test(temp_dir=str(dagster_dir)) as instance:
        instance.add_dynamic_partitions("drop_files", ["fps/students_20260815.csv"])
        intake = defs.resolve_job_def("intake_job").execute_in_process(
            instance=instance, partition_key="fps/students_20260815.csv", run_config=QUIET
        )
        nightly = defs.resolve_job_def("nightly_job").execute_in_process(instance=instance, run_config=QUIET)
        assert intake.success and nightly.success
        mats = {m.asset_key.to_user_string(): m for m in nightly.get_asset_materialization_events()}
        assert sorted(mats) == [
            "cabinet_report", "current_snapshots", "data_quality_scorecard", "indicator_release", "linked_persons", "raw_retention",
            "warehouse_tables",
        ]
        assert mats["current_snapshots"].materialization.metadata["files_current"].value == 1
        storage = Path(instance.storage_directory())
    assert storage.is_relative_to(dagster_dir)
    assert not (storage / "current_snapshots").exists()
    for asset in ("intake_file", "validated_file", "protected_file", "raw_retention", "data_quality_scorecard"):
        assert not (storage / asset).exists()
    assert _pickles_under(dagster_dir) == []


def test_pickle_detector_sees_an_asset_that_returns_data(tmp_path: Path) -> None:
    """Control for the test above: an asset returning a value *is* pickled by the default IO manager."""

    @dagster.asset
    def leaky() -> dict:
        return {"first_name": "Testfirst"}

    with dagster.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert dagster.materialize([leaky], instance=instance).success
    assert [p.name for p in _pickles_under(tmp_path)] == ["leaky"]


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(tmp_path / "dagster"),
        C2C_HOME=str(tmp_path / "home"),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    (tmp_path / "dagster").mkdir(exist_ok=True)
    return env


@pytest.mark.slow
def test_dagster_definitions_validate(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=_cli_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful for code location c2c" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_dg_check_defs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "dg"), "check", "defs"],
        cwd=REPO, env=_cli_env(tmp_path), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All definitions loaded successfully" in proc.stdout + proc.stderr


CORE_MODULES = [
    "data_sharing",
    "data_sharing.intake",
    "data_sharing.partnership",
    "data_sharing.dropfolder",
    "warehouse.manifest",
    "warehouse.lineage",
    "warehouse.reports.audit",
    "schemas.contracts",
]


def test_governed_core_does_not_import_dagster() -> None:
    script = (
        "import importlib, json, sys\n"
        "out = {}\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    out[name] = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.'))[:3]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert imported == {name: [] for name in CORE_MODULES}
