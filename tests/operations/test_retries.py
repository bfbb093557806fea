"""Issue 8, item 3: I/O steps retry transient errors with exponential backoff (and jitter) on the in-process
executor; deterministic errors (bad data, refusals, configuration) fail at once, without a retry."""

from __future__ import annotations

from pathlib import Path

import dagster
import pytest
from dagster import Backoff, Failure, Jitter
from sqlalchemy.exc import OperationalError

import stages.release as release_stage
from assets.retries import IO_RETRY, retry_transient_only
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from tests.conftest import students_csv

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
FILE = "fps/students_20260815.csv"


def test_every_asset_retries_io_with_exponential_backoff_and_jitter() -> None:
    from pipelines.definitions import defs

    assert IO_RETRY.max_retries == 3 and IO_RETRY.backoff is Backoff.EXPONENTIAL and IO_RETRY.jitter is Jitter.PLUS_MINUS
    for key in defs.resolve_all_asset_keys():
        assert defs.resolve_assets_def(key).op.retry_policy == IO_RETRY, key.to_user_string()


def test_classification_of_errors() -> None:
    calls: list[str] = []

    @retry_transient_only
    def step(exc: BaseException) -> None:
        calls.append(type(exc).__name__)
        raise exc

    with pytest.raises(OSError):
        step(OSError("share unavailable"))
    with pytest.raises(OperationalError):
        step(OperationalError("SELECT 1", {}, Exception("database is locked")))
    with pytest.raises(Failure) as missing:
        step(FileNotFoundError("landing/fps/x.enc"))
    assert missing.value.allow_retries is False
    with pytest.raises(Failure) as refused:
        step(ValueError("the configured file does not belong to partition x"))
    assert refused.value.allow_retries is False and "ValueError: the configured file" in str(refused.value.description)
    with pytest.raises(Failure) as failed:
        step(Failure("no accepted file"))
    assert failed.value.allow_retries is False and failed.value.description == "no accepted file"
    assert calls == ["OSError", "OperationalError", "FileNotFoundError", "ValueError", "Failure"]


@pytest.fixture
def hub(tmp_path: Path):  # type: ignore[no-untyped-def]
    """One intake of a small students file into a test instance; yields (definitions, instance)."""
    settings = Settings.from_env({"C2C_HOME": str(tmp_path), "C2C_TODAY": "2026-11-23", "C2C_DATA_DOCS": "0", "C2C_DROP_SETTLE_S": "0"})
    (settings.drop_dir / "fps").mkdir(parents=True)
    (settings.drop_dir / FILE).write_bytes(students_csv(12))
    defs = build_definitions(settings, env={})
    (tmp_path / "dagster").mkdir()
    with dagster.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions("drop_files", [FILE])
        intake = defs.resolve_job_def("intake_job").execute_in_process(instance=instance, partition_key=FILE, run_config=QUIET)
        assert intake.success
        yield defs, instance


def _retries(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_a_transient_database_error_is_retried_and_the_run_succeeds(hub, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    defs, instance = hub
    real = release_stage.load_current
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("INSERT INTO enrolments ...", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(release_stage, "load_current", flaky)
    result = defs.resolve_job_def("nightly_job").execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    assert result.success
    assert _retries(result) == ["warehouse_tables"]
    restarted = [e.step_key for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]
    assert restarted == ["warehouse_tables"]
    loaded = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert loaded["warehouse_tables"]["dagster/row_count"].value == 12  # the 12 enrolments
    assert loaded["indicator_release"]["release_id"].value == 1


def test_a_deterministic_error_is_not_retried(hub, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    defs, instance = hub
    calls = {"n": 0}

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        raise ValueError("indicator chronic_absence: no agreement for agency fps")

    monkeypatch.setattr(release_stage, "publish_release", broken)
    result = defs.resolve_job_def("nightly_job").execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
    assert not result.success
    assert calls["n"] == 1 and _retries(result) == []
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "indicator_release"
    assert "ValueError: indicator chronic_absence: no agreement" in failure.step_failure_data.error.message
