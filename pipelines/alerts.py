"""Operator alerts: a run that fails writes an alert to a file (JSON lines) and/or posts it to a webhook.

Alerts carry run ids, job names, the file's partition key and the error's class, never an error message
text (a library's message could quote a row of a file).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from dagster import DefaultSensorStatus, RunFailureSensorContext, run_failure_sensor

from assets import names
from assets.resources import AlertsResource


@dataclass(frozen=True)
class Alert:
    at: str
    kind: str
    job: str
    run_id: str
    file: str | None
    error_class: str | None
    hint: str


def deliver_alert(alert: Alert, *, file: Path | None, webhook: str | None, timeout_s: float = 10.0) -> list[str]:
    """Write the alert where configured; returns where it went. A webhook that fails does not lose the file copy."""
    delivered = []
    line = json.dumps(asdict(alert), sort_keys=True)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        delivered.append(str(file))
    if webhook:
        request = urllib.request.Request(
            webhook, data=line.encode("utf-8"), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - operator-configured URL
            response.read()
        delivered.append(webhook)
    return delivered


def alert_for_failure(context: RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    error = context.failure_event.event_specific_data
    error_class = None
    err = getattr(error, "error", None)
    if err is not None:
        error_class = getattr(err, "cls_name", None)
    file = run.tags.get(names.TAG_FILE)
    if run.tags.get(names.TAG_STAGE) == "intake":
        kind = "file_refused_or_failed"
        hint = f"See `c2c manifest` for {file}'s status and reason, or the run in the Dagster UI."
    else:
        kind = "run_failed"
        hint = "Open the run in the Dagster UI; a re-run after fixing the cause gives the same result as a clean run."
    return Alert(
        at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        kind=kind,
        job=run.job_name,
        run_id=run.run_id,
        file=file,
        error_class=error_class,
        hint=hint,
    )


@run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=DefaultSensorStatus.RUNNING,
    description="Writes an alert for every failed run to $C2C_ALERTS_FILE (default <home>/alerts.jsonl) and $C2C_ALERT_WEBHOOK.",
)
def run_failure_alert_sensor(context: RunFailureSensorContext, alerts: AlertsResource) -> None:
    deliver_alert(alert_for_failure(context), file=Path(alerts.file) if alerts.file else None, webhook=alerts.webhook or None)


def alert_for_run(*, job: str, run_id: str, file: str | None, step: str | None, error_class: str | None, reason: str) -> Alert:
    """The alert ``c2c run`` writes for a run that failed (same channel and shape as the sensor's)."""
    where = f"failed at {step}" if step else "failed"
    return Alert(
        at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        kind="file_failed" if file else "run_failed",
        job=job,
        run_id=run_id,
        file=file,
        error_class=error_class,
        hint=f"{file or job} {where}: {reason}. A re-run after fixing the cause gives the same result as a clean run.",
    )
