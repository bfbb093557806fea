"""What really happened to a run, read back from the Dagster instance (run status, step failures,
materialisations and their ``outcome`` metadata), in words an operator can act on; and runs a dead
process left ``STARTED``.

Everything here goes through the instance's public methods (``get_run_by_id``, ``all_logs``,
``get_runs``, ``report_run_failed``); nothing trusts the run's own return value.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from assets import names

TAG_PID = "c2c/pid"
TAG_HOST = "c2c/host"
REPOSITORY_LABEL = "__repository__@c2c"
"""The label of the c2c code location's repository (``workspace.yaml``'s ``location_name``), which
the UI uses to list a job's runs."""
REPOSITORY_TAG = ".dagster/repository"

STEP_WORDS = {
    names.INTAKE_FILE: "intake", names.VALIDATED_FILE: "validation", names.PROTECTED_FILE: "protection",
    names.CURRENT_SNAPSHOTS: "current snapshots", names.LINKED_PERSONS: "linkage", names.WAREHOUSE_TABLES: "warehouse load",
    names.INDICATOR_RELEASE: "indicator release", names.RAW_RETENTION: "retention",
    names.DATA_QUALITY_SCORECARD: "data-quality scorecard",
}

REASON_WORDS = {
    ("LandingError", "tampered"): "its encrypted copy in the landing zone does not open: it was altered on disk, "
    "or the hub's keys are not the ones it was taken in with",
    ("LandingError", "key_mismatch"): "the hub's keys do not include the key its landed copy was written with",
    ("LandingError", "not_found"): "its copy in the landing zone is missing",
    ("LandingError", "malformed"): "its copy in the landing zone is damaged",
    ("LandingError", "binding_mismatch"): "the landing zone holds another file under its name",
}
CLASS_WORDS = {
    "KeyMaterialError": "the hub's keys cannot be used (check `c2c keys show`)",
    "IdentifierDataError": "its identifier columns do not match the extract's contract",
    "ValidationInputError": "the file cannot be read as its extract's contract describes",
}


@dataclass
class RunOutcome:
    """One run as the instance recorded it. ``outcome``: accepted | refused | duplicate | superseded | waiting | failed."""

    run_id: str
    status: str
    outcome: str
    step: str | None = None
    reason: str | None = None
    error_class: str | None = None
    reason_code: str | None = None
    metadata: dict[str, dict] = field(default_factory=dict)


def people_words(error_class: str | None, reason_code: str | None) -> str:
    """An error's class and reason code as a sentence (never the error's own text, which could quote data)."""
    if error_class is not None and reason_code is not None and (error_class, reason_code) in REASON_WORDS:
        return REASON_WORDS[(error_class, reason_code)]
    if error_class in CLASS_WORDS:
        return CLASS_WORDS[error_class]
    if error_class in ("OSError", "OperationalError", "InterfaceError", "TimeoutError", "IOException"):
        return "a storage or database error did not clear after the retries"
    what = f" ({error_class})" if error_class else ""
    return f"an unexpected error{what}; the run's log in the Dagster UI (`c2c ui`) has the details"


def _metadata(entry) -> dict:  # type: ignore[no-untyped-def]
    mat = entry.asset_materialization
    return {k: getattr(v, "value", v) for k, v in (mat.metadata or {}).items()} if mat is not None else {}


def _first_failure(instance: DagsterInstance, run_id: str) -> tuple[str | None, str | None, str | None]:
    """(step key, error class, reason code) of the run's first failed step."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        user = getattr(data, "user_failure_data", None)
        meta = {k: getattr(v, "value", v) for k, v in ((user.metadata if user else None) or {}).items()}
        error = getattr(data, "error", None)
        cls = meta.get("error_class") or _root_class(error)
        return event.step_key, cls, meta.get("reason_code")
    return None, None, None


def _root_class(error) -> str | None:  # type: ignore[no-untyped-def]
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return getattr(error, "cls_name", None)


def run_outcome(instance: DagsterInstance, run_id: str) -> RunOutcome:
    """The run's real outcome: its status in the instance, and for a per-file run the ``outcome`` of its last
    per-file materialisation (a refusal at validation overrides the intake's acceptance)."""
    run = instance.get_run_by_id(run_id)
    status = run.status.value if run is not None else "MISSING"
    metadata: dict[str, dict] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        if entry.asset_materialization is not None:
            metadata[entry.asset_materialization.asset_key.to_user_string()] = _metadata(entry)
    if run is None or run.status != DagsterRunStatus.SUCCESS:
        step, cls, code = _first_failure(instance, run_id)
        where = STEP_WORDS.get(step or "", (step or "start").replace("_", " "))
        why = people_words(cls, code) if step else "the run stopped before any step finished"
        return RunOutcome(run_id, status, "failed", where, why, cls, code, metadata)
    outcome, reason = "accepted", None  # type: str, str | None
    for asset in (names.INTAKE_FILE, names.VALIDATED_FILE):
        meta = metadata.get(asset, {})
        if meta.get("outcome") in ("refused", "waiting"):  # waiting: still being written, left for the next scan
            outcome, reason = str(meta["outcome"]), meta.get("reason") or None
            break
        if meta.get("outcome") in ("duplicate", "superseded"):
            outcome = str(meta["outcome"])
    return RunOutcome(run_id, status, outcome, None, reason, metadata=metadata)


def launch_tags() -> dict[str, str]:
    """Tags of every run ``c2c run`` starts: which process runs it (for stale-run detection) and the
    code location's repository (so the UI lists the run under its job)."""
    return {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname(), REPOSITORY_TAG: REPOSITORY_LABEL}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run_pid(instance: DagsterInstance, run) -> int | None:  # type: ignore[no-untyped-def]
    """The process a run executes in, on this host: ``c2c run``'s tag, or, for runs the local (default)
    run launcher started, the pid its run worker recorded. ``None``: unknown or another host's."""
    pid = run.tags.get(TAG_PID)
    if pid is not None:
        return int(pid) if pid.isdigit() and run.tags.get(TAG_HOST) == socket.gethostname() else None
    if type(instance.run_launcher).__name__ != "DefaultRunLauncher":
        return None
    for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
        meta = getattr(getattr(entry.dagster_event, "event_specific_data", None), "metadata", None) or {}
        value = getattr(meta.get("pid"), "value", None)
        if value is not None and str(value).isdigit():
            return int(value)
    return None


def fail_stale_runs(instance: DagsterInstance, *, dry_run: bool = False) -> list:  # type: ignore[type-arg]
    """Mark as failed the runs left STARTED/STARTING by a process of this host that is gone (a killed
    ``c2c run`` or run worker). Returns the runs marked (``dry_run``: that would be)."""
    marked = []
    active = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING]))
    for run in active:
        pid = _run_pid(instance, run)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if dry_run:
            marked.append(run)
            continue
        instance.report_run_failed(
            run, message=f"The process (pid {pid}) that ran this run is gone; marked failed by `c2c run`."
        )
        marked.append(run)
    return marked
