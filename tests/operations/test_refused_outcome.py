"""Issue 17 item 10: a refused file is a successful run whose outcome is ``refused`` (the steps after the
refusal skipped, not failed), recorded as such in the asset catalog; runs `c2c run` starts belong to
their job's run list.

Read back through the Dagster instance, as the UI reads it. Before the fix both runs below were FAILURE
(the blocking check failed at ERROR severity) and the runs had no repository tag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.runner import run_pipeline
from pipelines.settings import Settings
from schemas.contracts import EXTRACTS_DIR
from tests.conftest import csv_bytes

ATTENDANCE_HEADER = ["student_id", "school_id", "school_year", "days_enrolled", "days_absent"]
AT_INTAKE = "fps/students_20260815.csv"
AT_VALIDATION = "fps/attendance_20260815.csv"


def _steps(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> set[str]:
    return {e.dagster_event.step_key for e in instance.all_logs(run_id, of_type=kind) if e.dagster_event.step_key}


def test_refused_files_are_successful_runs_with_outcome_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extracts = tmp_path / "extracts"
    shutil.copytree(EXTRACTS_DIR, extracts)
    path = extracts / "fps" / "attendance.yaml"
    contract = yaml.safe_load(path.read_text())
    contract["rules"][0]["outcome"] = "refuse_file"  # days_absent > days_enrolled refuses the whole file
    path.write_text(yaml.safe_dump(contract, sort_keys=False))
    monkeypatch.setenv("C2C_EXTRACTS_DIR", str(extracts))
    settings = Settings.from_env({"C2C_HOME": str(tmp_path / "home"), "C2C_TODAY": "2026-11-23"})
    (settings.drop_dir / "fps").mkdir(parents=True)
    (settings.drop_dir / AT_INTAKE).write_text("studentid,first_name\nS1,Testfirst\n", encoding="utf-8")
    rows = [[f"S{i:05d}", "SCH1", "2026", "170", "3"] for i in range(10)]
    rows[4][4] = "171"  # more days absent than enrolled
    (settings.drop_dir / AT_VALIDATION).write_bytes(csv_bytes(ATTENDANCE_HEADER, rows))

    with DagsterInstance.ephemeral() as instance:
        summary = run_pipeline(settings, settle_s=0, echo=lambda _: None, instance=instance)
        by_file = {f.rel_path: f for f in summary.files}
        assert {k: v.status for k, v in by_file.items()} == {AT_INTAKE: "refused", AT_VALIDATION: "refused"}
        assert summary.exit_code == 3

        for rel, refused_at, skipped in (
            (AT_INTAKE, "intake_file", {"validated_file", "protected_file"}),
            (AT_VALIDATION, "validated_file", {"protected_file"}),
        ):
            run = instance.get_run_by_id(by_file[rel].run_id)
            assert run is not None and run.status == DagsterRunStatus.SUCCESS, rel
            assert run.job_name == "intake_job" and run.tags["dagster/partition"] == rel
            assert _steps(instance, run.run_id, DagsterEventType.STEP_FAILURE) == set()
            assert _steps(instance, run.run_id, DagsterEventType.STEP_SKIPPED) == skipped
            # the asset catalog holds the refusal: the partition's latest materialisation says so
            records = instance.fetch_materializations(AssetKey(refused_at), limit=10).records
            [record] = [r for r in records if r.partition_key == rel]
            meta = record.asset_materialization.metadata
            assert meta["outcome"].value == "refused"
            checks = [e.dagster_event.event_specific_data for e in
                      instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
            failed = [c for c in checks if not c.passed]
            assert len(failed) == 1 and failed[0].severity.value == "WARN" and failed[0].asset_key == AssetKey(refused_at)

        # both runs are listed under their job the way the UI's job page asks for them
        listed = instance.get_runs(RunsFilter(job_name="intake_job", tags={".dagster/repository": "__repository__@c2c"}))
        assert {r.run_id for r in listed} >= {by_file[AT_INTAKE].run_id, by_file[AT_VALIDATION].run_id}
