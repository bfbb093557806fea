"""Operations: per-agency lateness against the MOU cadence, and alerts for failed runs."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from pathlib import Path

import pytest
from dagster import DagsterInstance, build_run_status_sensor_context

from assets.partitions import DROP_FILES
from pipelines.alerts import Alert, deliver_alert, run_failure_alert_sensor
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from stages.intake import agency_lateness
from tests.conftest import students_csv
from warehouse.manifest import ManifestEntry


def _entry(agency: str, as_of: dt.date) -> ManifestEntry:
    return ManifestEntry(
        id=1, rel_path=f"{agency}/x.csv", file_name="x.csv", sha256="0" * 64, size_bytes=1, agency=agency, extract="x",
        as_of_date=as_of, tokenized=False, rows=1, duplicate_rows=0, period_rows={None: 1}, status="accepted",
        reason_code=None, reason=None, warnings=[], superseded_by=None, duplicate_of=None, mou_id=None,
        mou_version=None, marker_sha256=None, partition_key=None, run_id=None,
        first_seen_at=dt.datetime(2026, 1, 1), decided_at=dt.datetime(2026, 1, 1),
    )


def test_agency_lateness_against_mou_cadence(partnership) -> None:  # type: ignore[no-untyped-def]
    today = dt.date(2026, 11, 23)
    snapshot = {
        ("fps", "students"): {2026: _entry("fps", dt.date(2026, 11, 10))},  # 13 days old, cadence 7: late
        ("fps", "attendance"): {2026: _entry("fps", dt.date(2026, 11, 1))},
        ("fhd", "patients"): {None: _entry("fhd", dt.date(2026, 11, 20))},  # 3 days old, cadence 7: on time
    }
    out = agency_lateness(snapshot, partnership, today)
    assert out["fps"] == {"newest_as_of": "2026-11-10", "age_days": 13, "cadence_days": 7, "late": True}
    assert out["fhd"] == {"newest_as_of": "2026-11-20", "age_days": 3, "cadence_days": 7, "late": False}
    assert out["dhs"] == {"newest_as_of": None, "age_days": None, "cadence_days": 31, "late": True}


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802
        _Hook.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def test_alert_goes_to_file_and_webhook(tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    alert = Alert("2026-11-23T02:00:00+00:00", "run_failed", "nightly_job", "abc", None, "ValueError", "look")
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    where = deliver_alert(alert, file=tmp_path / "alerts.jsonl", webhook=url)
    thread.join(timeout=10)
    server.server_close()
    assert where == [str(tmp_path / "alerts.jsonl"), url]
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["run_id"] == "abc"
    assert json.loads(_Hook.received[-1])["job"] == "nightly_job"


def test_failed_intake_run_raises_an_alert_without_file_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that really fails (the landed copy of an accepted file altered on disk before validation) raises
    an alert naming the file and the error class, never a value from the file. (A refused file is not a
    failure: its run succeeds with outcome ``refused``, see tests/operations/test_refused_outcome.py.)"""
    drop = tmp_path / "drop"
    (drop / "fps").mkdir(parents=True)
    name = "fps/students_20260815.csv"
    (drop / name).write_bytes(students_csv(3))
    settings = Settings.from_env(
        {"C2C_HOME": str(tmp_path / "home"), "C2C_DROP_DIR": str(drop), "C2C_TODAY": "2026-11-23", "C2C_DROP_SETTLE_S": "0",
         "C2C_ALERTS_FILE": str(tmp_path / "alerts.jsonl")}
    )
    defs = build_definitions(settings, env={})
    job = defs.resolve_job_def("intake_job")
    tags = {"c2c/stage": "intake", "c2c/file": name}
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(DROP_FILES, [name])
        assert job.execute_in_process(instance=instance, partition_key=name, tags=tags).success
        [landed] = list((settings.landing_dir / "fps").glob("students_*"))
        data = bytearray(landed.read_bytes())
        data[-5] ^= 0xFF
        landed.write_bytes(bytes(data))
        result = job.execute_in_process(instance=instance, partition_key=name, raise_on_error=False, tags=tags)
        assert not result.success
        context = build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            resources={"alerts": defs.resources["alerts"]},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    text = (tmp_path / "alerts.jsonl").read_text()
    alert = json.loads(text)
    assert alert["kind"] == "file_refused_or_failed"
    assert alert["file"] == name and alert["run_id"] == result.run_id
    assert "Testfirst" not in text and "S00001" not in text
