"""The second door: run the same Dagster asset graph in-process over a drop folder (cron, tests, benchmarks)."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from dagster import DagsterInstance

from assets import names
from assets.partitions import DROP_FILES
from assets.sensors import run_request_for
from pipelines.alerts import alert_for_run, deliver_alert
from pipelines.definitions import build_definitions
from pipelines.hardening import apply_umask
from pipelines.instance import ensure_dagster_home
from pipelines.outcomes import TAG_PID, RunOutcome, fail_stale_runs, launch_tags, run_outcome
from pipelines.quiet_night import run_nightly
from pipelines.settings import Settings
from stages.hub import key_labels, keyset_problem, open_engine, record_audit, upgrade_warehouse, warehouse_engine
from stages.intake import ManifestStore, escape_name, notify_agency, scan_drop
from stages.protect import unfinished_intakes


_QUIET = logging.NullHandler()
EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 3
"""`c2c run`'s exit codes: all taken in / the pipeline failed / finished with refused files."""


@dataclass
class FileOutcome:
    rel_path: str
    status: str  # accepted | refused | duplicate | superseded | unchanged | failed
    rows: int | None = None
    reason: str | None = None
    run_id: str | None = None
    quarantined: int = 0
    step: str | None = None
    error_class: str | None = None
    reason_words: str = ""
    earlier: bool = False  # refused on an earlier night and still in the drop folder, unchanged: not taken in again


@dataclass
class RunSummary:
    files: list[FileOutcome] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    nightly_success: bool | None = None
    error: str | None = None
    nightly_run_id: str | None = None
    release: dict | None = None
    settings: Settings | None = None

    @property
    def counts(self) -> Counter:
        return Counter(f.status for f in self.files)

    stale_runs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.nightly_success is not False and not any(f.status == "failed" for f in self.files)

    @property
    def exit_code(self) -> int:
        """0: every file taken in; 3: finished, but some files were refused; 1: the pipeline failed."""
        if not self.ok:
            return EXIT_FAILED
        return EXIT_REFUSED if any(f.status == "refused" for f in self.files) else EXIT_OK


def run_pipeline(
    settings: Settings,
    *,
    settle_s: float | None = None,
    echo: Callable[[str], None] = print,
    verbose: bool = False,
    instance: DagsterInstance | None = None,
) -> RunSummary:
    """Intake every complete file in the drop folder (one run each), then the nightly cross-agency job."""
    apply_umask()
    summary = RunSummary(settings=settings)
    problem = keyset_problem(settings.key_file, settings.key_env(), settings.landing_dir, settings.linkage_dir)
    if problem is not None:
        summary.error = problem
        echo(f"c2c: cannot run: {summary.error}")
        return summary
    for folder in (settings.home, settings.drop_dir, settings.landing_dir, settings.linkage_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if instance is None:
        ensure_dagster_home(settings.dagster_home)
        instance = DagsterInstance.get()
    _run_all(settings, instance, summary, settle_s, echo, verbose)
    return summary


def _run_all(settings: Settings, instance: DagsterInstance, summary: RunSummary, settle_s: float | None,
             echo: Callable[[str], None], verbose: bool) -> None:
    defs = build_definitions(settings, env={})
    engine = open_engine(settings.warehouse_url, settings.warehouse_schema)
    store = ManifestStore(engine)
    summary.stale_runs = _fail_stale_runs(instance, engine, echo)
    todo, in_drop = _plan_intake(settings, store, summary, settle_s, echo)
    existing = set(instance.get_dynamic_partitions(DROP_FILES))
    new_keys = sorted({key for _, key, _, _ in todo} - existing)
    if new_keys:
        instance.add_dynamic_partitions(DROP_FILES, new_keys)
    # Dagster's own console log is for the UI; c2c prints one line per file (--verbose shows both).
    quiet = {} if verbose else {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if not verbose:  # nor Dagster's own Python warnings (e.g. on a check skipped with its refused file)
        logging.getLogger("dagster").addHandler(_QUIET)
    intake_job = defs.resolve_job_def("intake_job")
    for i, (rel, partition_key, run_config, tags) in enumerate(todo, 1):
        result = intake_job.execute_in_process(
            instance=instance,
            partition_key=partition_key,
            run_config={**run_config, **quiet},
            tags={**tags, **launch_tags()},
            raise_on_error=False,
        )
        outcome = _file_outcome(rel, run_outcome(instance, result.run_id), store)
        if outcome.status == "waiting":
            summary.waiting.append(rel)
        summary.files.append(outcome)
        echo(f"  [{i}/{len(todo)}] {_describe(outcome)}" + ("" if rel in in_drop else " (finished an unfinished intake)"))
        if outcome.status == "failed":
            _report_failure(settings, engine, job="intake_job", run_id=result.run_id, file=rel, step=outcome.step,
                            error_class=outcome.error_class, reason=outcome.reason_words)
    _run_nightly(defs.resolve_job_def("nightly_job"), instance, summary, settings, engine, quiet, echo)
    engine.dispose()


IntakeRun = tuple[str, str, dict, dict]
"""One intake run to launch: (rel_path, partition key, run config, tags)."""


def _plan_intake(
    settings: Settings, store: ManifestStore, summary: RunSummary, settle_s: float | None, echo: Callable[[str], None]
) -> tuple[list[IntakeRun], set[str]]:
    """The intake runs to launch (new or changed complete files, and unfinished intakes), and the drop
    names of the complete files found. Unchanged files and files still being written go to the summary."""
    limits = settings.drop_limits()
    scan = scan_drop(settings.drop_dir, limits, settle_s=limits.settle_s if settle_s is None else settle_s)
    summary.waiting = list(scan.waiting)
    report_over_limit(settings, scan.over_limit, echo)
    # Files accepted by an intake run that did not finish (killed, crashed) have no pseudonymous record
    # yet; an accepted file may already have left the drop folder. Their intake runs again (every step
    # is idempotent and goes on from the manifest and the encrypted landing zone).
    unfinished = unfinished_intakes(store, settings.linkage_dir)
    todo: list[IntakeRun] = []
    for ready in scan.ready:
        rel = escape_name(ready.entry.rel_path)
        known = store.find(rel, ready.fingerprint)
        if known is not None and known.marker_sha256 == ready.marker_sha256 and rel not in unfinished:
            # A refused file left as it was stays refused (exit 3 every night) until the agency replaces or
            # removes it; it is not taken in again (no new run, feedback or audit entry).
            refused = known.status == "refused"
            summary.files.append(FileOutcome(rel, "refused" if refused else "unchanged", known.rows,
                                             (known.reason or known.reason_code) if refused else None,
                                             run_id=known.run_id, earlier=refused))
            continue
        request = run_request_for(ready)
        todo.append((rel, str(request.partition_key), dict(request.run_config), dict(request.tags)))
    in_drop = {escape_name(r.entry.rel_path) for r in scan.ready}
    for rel, entry in sorted(unfinished.items()):
        if rel not in in_drop and entry.partition_key:
            config = {} if entry.partition_key.startswith("_unsafe/") else {"rel_path": entry.partition_key}
            todo.append((rel, entry.partition_key, {"ops": {names.INTAKE_FILE: {"config": config}}},
                         {names.TAG_STAGE: "intake", names.TAG_FILE: entry.partition_key, names.TAG_SHA256: str(entry.sha256)}))
    resumed = len(todo) - sum(1 for r in todo if r[0] in in_drop)
    echo(f"c2c: drop folder {settings.drop_dir}: {len(scan.ready)} complete file(s), {len(todo) - resumed} to take in"
         + (f", {resumed} unfinished intake(s) to finish" if resumed else "")
         + (f", {len(scan.waiting)} still being written (skipped)" if scan.waiting else ""))
    for earlier in (f for f in summary.files if f.earlier):
        echo(f"  {_describe(earlier)}")
    return todo, in_drop


def _run_nightly(job, instance: DagsterInstance, summary: RunSummary, settings: Settings, engine, quiet: dict,  # type: ignore[no-untyped-def]
                 echo: Callable[[str], None]) -> None:
    """The cross-agency run; its outcome (and the release it published) read back from the instance."""
    nightly, _ = run_nightly(job, instance, quiet, settings, ManifestStore(engine), key_labels(settings.key_file, settings.key_env()),
                             engine, echo, tags=launch_tags())
    night = run_outcome(instance, nightly.run_id)
    summary.nightly_success = night.outcome != "failed"
    summary.nightly_run_id = nightly.run_id
    summary.release = {
        "release_id": _meta(night, "indicator_release", "release_id"),
        "rows": _meta(night, "indicator_release", "rows"),
        "suppressed": _meta(night, "indicator_release", "suppressed_rows"),
        "persons": (_meta(night, "linked_persons", "persons") or {}).get("total"),
        "review_queue": _meta(night, "linked_persons", "review_queue"),
        "linkage_status": _meta(night, "linked_persons", "status"),
    }
    if summary.nightly_success:
        echo("c2c: nightly cross-agency run succeeded")
    else:
        summary.error = f"the nightly cross-agency run failed at {night.step}: {night.reason}"
        echo(f"c2c: nightly cross-agency run FAILED at {night.step}: {night.reason}")
        _report_failure(settings, engine, job="nightly_job", run_id=nightly.run_id, file=None, step=night.step,
                        error_class=night.error_class, reason=str(night.reason))


def report_over_limit(settings: Settings, over_limit: dict[str, int], echo: Callable[[str], None]) -> None:
    """One line per agency folder with complete files over the per-run caps, and one notice in its feedback."""
    for agency, left in sorted(over_limit.items()):
        text = (f"{left:,} complete file(s) in {agency or 'the top of the drop folder'} were left for the next run: "
                f"each run takes at most {settings.drop_max_files:,} files and {settings.drop_max_bytes:,} bytes per agency folder.")
        echo(f"c2c: {text}")
        if agency:
            notify_agency(settings.drop_dir, agency, text)  # not an agency id, or not a real folder: the line above says it


UNLINKED_LINES = {
    "skipped": "not run: too few records yet to train a linkage model (each agency's records stay apart; every night tries again)",
    "no person extracts yet": "not run: no person extract taken in yet",
}
"""The summary's linkage line when a night linked nobody, by ``linked_persons``' status."""


def _meta(outcome: RunOutcome, asset: str, key: str):  # type: ignore[no-untyped-def]
    return outcome.metadata.get(asset, {}).get(key)


def _file_outcome(rel: str, run: RunOutcome, store: ManifestStore) -> FileOutcome:
    """A file's line in the summary: the status is the run's real outcome in the instance; rows and the
    refusal reason come from the manifest the run wrote."""
    quarantined = int(_meta(run, names.VALIDATED_FILE, "rows_quarantined") or 0)
    if run.outcome == "failed":
        return FileOutcome(rel, "failed", reason=f"failed at {run.step}: {run.reason}", run_id=run.run_id, step=run.step,
                           error_class=run.error_class, reason_words=str(run.reason))
    entry = store.latest_for_path(rel)
    rows = entry.rows if entry is not None else _meta(run, names.INTAKE_FILE, "rows_in")
    reason = (entry.reason if entry is not None and entry.status == run.outcome else None) or run.reason
    return FileOutcome(entry.rel_path if entry else rel, run.outcome, rows, reason, run.run_id, quarantined)


def _fail_stale_runs(instance: DagsterInstance, engine, echo: Callable[[str], None]) -> list[str]:  # type: ignore[no-untyped-def]
    """Runs a killed `c2c run` (or run worker) left STARTED: marked failed in the instance, each with an audit entry."""
    marked = fail_stale_runs(instance)
    if marked:
        record_audit(engine, [
            ("stale_run_failed", run.tags.get(names.TAG_FILE) or run.job_name,
             {"run_id": run.run_id, "job": run.job_name, "pid": run.tags.get(TAG_PID) or ""})
            for run in marked
        ], actor="c2c.run")
        echo(f"c2c: {len(marked)} run(s) left running by a process that is gone marked failed")
    return [run.run_id for run in marked]


def fail_stale_runs_at_start(settings: Settings, echo: Callable[[str], None] = print) -> list[str]:
    """What `c2c run` does first, for the daemon's door (`c2c ui`): fail runs of dead local processes."""
    ensure_dagster_home(settings.dagster_home)
    engine = warehouse_engine(settings.warehouse_url, settings.warehouse_schema)
    try:
        with DagsterInstance.get() as instance:
            if not fail_stale_runs(instance, dry_run=True):
                return []
            upgrade_warehouse(engine)
            return _fail_stale_runs(instance, engine, echo)
    finally:
        engine.dispose()


def _report_failure(settings: Settings, engine, *, job: str, run_id: str, file: str | None, step: str | None,  # type: ignore[no-untyped-def]
                    error_class: str | None, reason: str) -> None:
    """A failed run: an alert through the sensor's channel, and an audit entry."""
    alert = alert_for_run(job=job, run_id=run_id, file=file, step=step, error_class=error_class, reason=reason)
    try:
        deliver_alert(alert, file=settings.alerts_file, webhook=settings.alert_webhook)
    except OSError as exc:  # a webhook that is down must not hide the failure: the audit entry still records it
        print(f"c2c: the alert could not be delivered ({type(exc).__name__})", file=sys.stderr)
    record_audit(engine, [("run_failed", file or job, {"run_id": run_id, "job": job, "step": step or "",
                                                       "error_class": error_class or ""})], actor="c2c.run")


def _describe(o: FileOutcome) -> str:
    if o.status == "accepted":
        extra = f", {o.quarantined:,} quarantined (see the agency's feedback report)" if o.quarantined else ""
        return f"{o.rel_path}: accepted ({o.rows:,} rows{extra})"
    if o.status == "refused":
        again = " (refused on an earlier night and unchanged since: replace or remove the file)" if o.earlier else ""
        return f"{o.rel_path}: REFUSED - {o.reason}{again}"
    if o.status == "duplicate":
        return f"{o.rel_path}: duplicate - {o.reason}"
    if o.status == "failed":
        return f"{o.rel_path}: FAILED at {o.step or 'start'} - {o.reason_words or o.reason}"
    return f"{o.rel_path}: {o.status}" + (f" - {o.reason}" if o.reason else "")


def format_summary(summary: RunSummary) -> str:
    s = summary.settings
    c = summary.counts
    lines = [
        "",
        "c2c run summary",
        f"  files: {c.get('accepted', 0)} accepted, {c.get('refused', 0)} refused, {c.get('duplicate', 0)} duplicate, "
        f"{c.get('unchanged', 0)} already processed, {c.get('failed', 0)} failed"
        + (f", {len(summary.waiting)} still being written" if summary.waiting else ""),
        f"  rows accepted: {sum(f.rows or 0 for f in summary.files if f.status == 'accepted'):,}"
        + (f" ({sum(f.quarantined for f in summary.files):,} quarantined)" if any(f.quarantined for f in summary.files) else ""),
    ]
    if summary.stale_runs:
        lines.append(f"  stale runs:    {len(summary.stale_runs)} left running by a process that is gone, marked failed")
    r = summary.release or {}
    if r.get("persons") is not None:
        lines.append(f"  linkage:       {r['persons']:,} persons across agencies; {r.get('review_queue') or 0:,} pairs for clerical review")
    elif r.get("linkage_status") in UNLINKED_LINES:
        lines.append(f"  linkage:       {UNLINKED_LINES[r['linkage_status']]}")
    if r.get("release_id") is not None:
        lines.append(
            f"  indicators:    release {r['release_id']}: {r['rows']:,} published rows, {r['suppressed']:,} suppressed "
            "(view current_indicator_values)"
        )
    if s is not None:
        lines += [
            f"  drop folder:   {s.drop_dir}  (refusal reasons: `c2c manifest --status refused`)",
            f"  warehouse:     {_safe_url(s.warehouse_url)}  (tables intake_manifest, audit_log, partner tier)",
            f"  dagster home:  {s.dagster_home}  (browse runs and lineage: `c2c ui`)",
        ]
    return "\n".join(lines)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
