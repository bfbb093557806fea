"""The drop-folder sensor against a real Dagster instance, and the intake runs it requests (SPEC, "How extracts arrive").

Ticks are driven by hand with ``build_sensor_context``; what the daemon does between ticks (store the cursor, add
the requested dynamic partitions) is done by :func:`tick`. Requested runs are executed in-process against a real
SQLite warehouse, and the manifest is read back with ``ManifestStore``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster
import pytest
from dagster import AddDynamicPartitionsRequest, RunRequest, SensorResult, SkipReason, build_sensor_context

from tests.conftest import students_csv
from assets.resources import C2CPaths
from assets.sensors import drop_folder_sensor
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from warehouse.db import make_engine
from warehouse.manifest import ManifestStore

STUDENTS = "fps/students_20260815.csv"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dagster.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dagster.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst


@pytest.fixture
def settings(tmp_path: Path, drop: Path) -> Settings:
    # settle time 0: two unchanged looks make a file complete (the settle time itself: tests/security/test_drop_partial.py)
    return Settings.from_env(
        {"C2C_HOME": str(tmp_path), "C2C_DROP_DIR": str(drop), "C2C_TODAY": "2026-11-23", "C2C_DROP_SETTLE_S": "0"}
    )


def paths_of(settings: Settings) -> C2CPaths:
    return C2CPaths(
        home=str(settings.home),
        drop_dir=str(settings.drop_dir),
        landing_dir=str(settings.landing_dir),
        linkage_dir=str(settings.linkage_dir),
        today_override=settings.today_override.isoformat() if settings.today_override else "",
        drop_settle_s=settings.drop_settle_s,
    )


def tick(
    instance: dagster.DagsterInstance, settings: Settings, cursor: str | None, sensor=drop_folder_sensor
) -> tuple[SensorResult | SkipReason, str | None]:
    """One sensor evaluation; returns the result and the cursor the daemon would store."""
    context = build_sensor_context(instance=instance, cursor=cursor, resources={"c2c_paths": paths_of(settings)})
    result = sensor(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests:
            assert isinstance(request, AddDynamicPartitionsRequest)
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result, result.cursor
    assert isinstance(result, SkipReason), result
    return result, context.cursor


def requests(result: SensorResult | SkipReason) -> list[RunRequest]:
    return list(result.run_requests or []) if isinstance(result, SensorResult) else []


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---- ticks ---------------------------------------------------------------------------------------------------


def test_empty_folder_is_a_skip(instance, settings: Settings) -> None:
    result, cursor = tick(instance, settings, None)
    assert isinstance(result, SkipReason)
    assert result.skip_message == f"No new complete files in {settings.drop_dir}."
    assert json.loads(cursor) == {"v": 1, "pending": {}, "handed": {}}


def test_missing_drop_folder_is_a_skip(instance, settings: Settings, tmp_path: Path) -> None:
    settings = settings.with_overrides(drop_dir=tmp_path / "no-drop-yet")
    result, _ = tick(instance, settings, None)
    assert isinstance(result, SkipReason)


def test_damaged_cursor_does_not_crash_the_sensor(instance, settings: Settings) -> None:
    write(settings.drop_dir / STUDENTS, b"x")
    result, cursor = tick(instance, settings, "{not json")
    assert isinstance(result, SkipReason)
    assert json.loads(cursor)["pending"] == {STUDENTS: [1, (settings.drop_dir / STUDENTS).stat().st_mtime_ns]}


def test_file_is_requested_once_after_two_stable_ticks(instance, settings: Settings) -> None:
    data = students_csv(3)
    digest = sha(data)
    write(settings.drop_dir / STUDENTS, data)

    first, c1 = tick(instance, settings, None)
    assert isinstance(first, SkipReason)
    assert first.skip_message == f"No new complete files in {settings.drop_dir}; 1 file(s) still being written."

    second, c2 = tick(instance, settings, c1)
    assert isinstance(second, SensorResult)
    [request] = requests(second)
    assert digest in request.run_key
    assert request.run_key == f"{STUDENTS}@{digest}"
    assert request.partition_key == STUDENTS
    assert request.run_config == {"ops": {"intake_file": {"config": {"rel_path": STUDENTS}}}}
    assert request.tags["c2c/sha256"] == digest
    assert request.tags["c2c/file"] == STUDENTS
    assert second.dynamic_partitions_requests == [AddDynamicPartitionsRequest("drop_files", [STUDENTS])]
    assert instance.get_dynamic_partitions("drop_files") == [STUDENTS]
    assert c2 != c1
    assert json.loads(c2)["handed"][STUDENTS][1] == request.run_key

    third, c3 = tick(instance, settings, c2)
    assert isinstance(third, SkipReason) and requests(third) == []
    assert third.skip_message == f"No new complete files in {settings.drop_dir}."

    # restart: the sensor as loaded from a fresh Definitions, given the stored cursor
    restarted = build_definitions(settings, env={}).resolve_sensor_def("drop_folder_sensor")
    after_restart, _ = tick(instance, settings, c3, sensor=restarted)
    assert isinstance(after_restart, SkipReason) and requests(after_restart) == []


def test_corrected_resend_is_requested_again(instance, settings: Settings) -> None:
    path = write(settings.drop_dir / STUDENTS, students_csv(3))
    _, c1 = tick(instance, settings, None)
    second, c2 = tick(instance, settings, c1)
    [old] = requests(second)

    corrected = students_csv(4)
    write(path, corrected)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    third, c3 = tick(instance, settings, c2)
    assert isinstance(third, SkipReason)  # being written: wait for a second look
    fourth, _ = tick(instance, settings, c3)
    [new] = requests(fourth)
    assert new.run_key == f"{STUDENTS}@{sha(corrected)}" != old.run_key
    assert new.partition_key == STUDENTS
    assert fourth.dynamic_partitions_requests == []  # the partition exists already


def test_done_marker_is_requested_on_first_tick(instance, settings: Settings) -> None:
    data = students_csv(2)
    write(settings.drop_dir / STUDENTS, data)
    write(settings.drop_dir / (STUDENTS + ".done"), b"")
    result, _ = tick(instance, settings, None)
    [request] = requests(result)
    assert request.run_key == f"{STUDENTS}@{sha(data)}+done:{sha(b'')[:16]}"


def test_unsafe_name_is_requested_with_its_path_in_hex(instance, settings: Settings) -> None:
    rel = "fps/my students.csv"
    write(settings.drop_dir / rel, b"x")
    _, c1 = tick(instance, settings, None)
    result, _ = tick(instance, settings, c1)
    [request] = requests(result)
    assert request.partition_key.startswith("_unsafe/")
    assert request.run_config == {"ops": {"intake_file": {"config": {"fs_path_hex": rel.encode().hex()}}}}


# ---- bad input never crashes the sensor or loses a file ---------------------------------------------------------


def tick_until_stable(
    instance, settings: Settings, cursor: str | None = None, max_ticks: int = 5
) -> tuple[list[RunRequest], str | None]:
    out: list[RunRequest] = []
    for _ in range(max_ticks):
        result, cursor = tick(instance, settings, cursor)
        out += requests(result)
        if isinstance(result, SkipReason) and "still being written" not in (result.skip_message or ""):
            return out, cursor
    raise AssertionError(f"sensor did not settle in {max_ticks} ticks")


def run_all(instance, settings: Settings, reqs: list[RunRequest]) -> list[dagster.ExecuteInProcessResult]:
    job = build_definitions(settings, env={}).resolve_job_def("intake_job")
    results = []
    for request in reqs:
        result = job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            run_config={**request.run_config, **QUIET},
            tags=dict(request.tags),
            raise_on_error=False,
        )
        results.append(result)
    return results


def manifest_of(settings: Settings) -> dict[str, tuple[str, str | None]]:
    engine = make_engine(settings.warehouse_url)
    try:
        return {e.rel_path: (e.status, e.reason_code) for e in ManifestStore(engine).entries()}
    finally:
        engine.dispose()


GARBAGE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4  # invalid UTF-8 from byte 0


def test_bad_input_never_crashes_the_sensor_or_loses_a_file(instance, settings: Settings, tmp_path: Path) -> None:
    drop = settings.drop_dir
    outside = tmp_path / "outside"
    outside.mkdir()
    expected = {
        # rel path in the manifest: (status, reason_code)
        "fps/students_20260815.csv": ("refused", "not_utf8"),  # binary garbage named like an extract
        "fps/attendance_20260815.csv": ("refused", "empty_file"),  # zero bytes
        "fps/assessments_20260815.csv": ("refused", "missing_header"),  # text, but not this extract's header
        "fps/graduation_20260815.csv": ("refused", "not_csv"),  # valid UTF-8 with a NUL byte
        "fps/students 2026.csv": ("refused", "unsafe_name"),
        "fps/students-aug.csv": ("refused", "bad_name"),
        "fhd/patients_20260815.csv.done": ("refused", "stray_marker"),
        "fhd/linked": ("refused", "symlink"),
        "dhs/sub": ("refused", "unexpected_folder"),
        "clients_20260815.csv": ("refused", "outside_agency_folder"),
        "fps/caf\\xe9_20260815.csv": ("refused", "unsafe_name"),  # Latin-1 byte in the name, shown escaped
        "fps/line\\x0abreak.csv": ("refused", "unsafe_name"),
    }
    write(drop / "fps/students_20260815.csv", GARBAGE)
    write(drop / "fps/attendance_20260815.csv", b"")
    write(drop / "fps/assessments_20260815.csv", b"zzz;qqq\n1;2\n")
    write(drop / "fps/graduation_20260815.csv", b"student_id,cohort_year,outcome\nS1,20\x0026,GRADUATED_4YR\n")
    write(drop / "fps/students 2026.csv", b"a")
    write(drop / "fps/students-aug.csv", b"b")
    write(drop / "fhd/patients_20260815.csv.done", b"")
    os.symlink(outside, drop / "fhd/linked")
    (drop / "dhs/sub").mkdir()
    write(drop / "clients_20260815.csv", b"c")
    with open(os.fsencode(drop / "fps") + b"/caf\xe9_20260815.csv", "wb") as fh:
        fh.write(b"d")
    write(drop / "fps/line\nbreak.csv", b"e")

    reqs, cursor = tick_until_stable(instance, settings)
    assert len(reqs) == len(expected)
    assert len({r.run_key for r in reqs}) == len(expected)
    assert set(instance.get_dynamic_partitions("drop_files")) == {r.partition_key for r in reqs}

    results = run_all(instance, settings, reqs)
    for request, result in zip(reqs, results):
        # the asset ran and recorded its decision: a refusal is a successful run whose outcome is refused,
        # with the file-level check failed at WARN severity and the later steps skipped (issue 17 item 10)
        [mat] = result.get_asset_materialization_events()
        assert mat.materialization.metadata["outcome"].value == "refused", request.partition_key
        [check] = result.get_asset_check_evaluations()
        assert check.check_name == "intake_accepted" and check.passed is False
        assert check.severity.value == "WARN"
        assert result.success
        assert {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"} == {
            "validated_file", "protected_file"}
    assert manifest_of(settings) == expected

    # later ticks request nothing more; re-executing the same runs (e.g. from the UI) changes nothing
    assert tick_until_stable(instance, settings, cursor, max_ticks=1)[0] == []
    run_all(instance, settings, reqs[:3])
    assert manifest_of(settings) == expected


def test_accepted_file_runs_green_and_is_recorded(instance, settings: Settings) -> None:
    write(settings.drop_dir / STUDENTS, students_csv(3))
    [request], _ = tick_until_stable(instance, settings)
    [result] = run_all(instance, settings, [request])
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"intake_accepted": True, "validation_passed": True}
    mats = {m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()}
    assert sorted(mats) == ["intake_file", "protected_file", "validated_file"]
    meta = mats["intake_file"].materialization.metadata
    assert meta["status"].value == "accepted"
    assert meta["rows_in"].value == 3
    assert meta["sha256"].value == sha(students_csv(3))
    assert manifest_of(settings) == {STUDENTS: ("accepted", None)}


def test_two_long_names_are_two_manifest_entries(instance, settings: Settings) -> None:
    a = "fps/" + "n" * 150 + "_a.csv"
    b = "fps/" + "n" * 150 + "_b.csv"
    write(settings.drop_dir / a, b"same")
    write(settings.drop_dir / b, b"same")
    reqs, _ = tick_until_stable(instance, settings)
    assert len(reqs) == 2
    run_all(instance, settings, reqs)
    engine = make_engine(settings.warehouse_url)
    entries = ManifestStore(engine).entries()
    engine.dispose()
    assert len(entries) == 2
