"""Intake assets: one materialisation per dropped file, and the current snapshot of every extract.

Thin by design: resolve the file, ask the domain (``data_sharing.intake``) for a decision, record it in the
manifest (``warehouse.manifest``) and report. No DataFrame is returned to Dagster (nothing is pickled into
its storage) and no value from inside a file reaches metadata or logs.
"""


import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import names
from data_sharing.dropfolder import partition_key_for
from data_sharing.dropsafe import Snapshot, unlink_if_same
from data_sharing.intake import MARKER_SUFFIX, Marker, escape_name, examine_drop, parse_drop_name
from assets import lineage
from assets.partitions import drop_files
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.manifest import ManifestEntry, RecordOutcome
from warehouse.models import IntakeManifest


OUTCOME = "outcome"
"""Metadata key of every per-file materialisation: ``accepted``, ``refused``, ``duplicate``, ``superseded``, ``validated``, ``protected``."""
REFUSED = "refused"
WAITING = "waiting"


class IntakeFileConfig(Config):
    """Which file the run is for. Set by the sensor and ``c2c run``; empty means 'the partition key's path'."""

    rel_path: str = ""
    fs_path_hex: str = ""


def resolve_drop_path(drop_root: Path, partition_key: str, config: IntakeFileConfig) -> Path:
    if config.fs_path_hex:
        rel = os.fsdecode(bytes.fromhex(config.fs_path_hex))
    elif config.rel_path:
        rel = config.rel_path
    elif not partition_key.startswith("_unsafe/"):
        rel = partition_key
    else:
        raise ValueError(
            f"partition {partition_key} names a file whose path is not plain text; launch it from the sensor or `c2c run`"
        )
    if partition_key_for(rel) != partition_key:
        raise ValueError(f"the configured file does not belong to partition {partition_key}")
    return drop_root / rel


class StillBeingWritten(Exception):
    """The file changed while it was read or after it was found complete: nothing recorded, left for the next scan."""


def receive_drop(
    path: Path,
    paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
    *,
    partition_key: str | None,
    run_id: str | None,
    expected_sha256: str | None = None,
    after_read: Callable[[], None] | None = None,
) -> RecordOutcome:
    """Examine one drop-folder entry, land it encrypted if accepted, record the decision (idempotent).

    The entry is read once, from one descriptor opened without following links (``examine_drop``); the
    bytes landed are the bytes examined. An accepted file moves: it is encrypted into the landing zone and
    checked there before the decision is recorded, and only then removed from the drop folder (with its
    ``.done`` marker), and only if the name still holds that very file. A crash between any two steps
    leaves the file where it was, and the next run finishes the move. Refused files stay. A file that is
    still being written raises :class:`StillBeingWritten`: nothing is recorded, landed or removed.
    """
    store = warehouse.manifest()
    marker_path = path.with_name(path.name + MARKER_SUFFIX)
    marker = Marker.read(marker_path, drop_root=paths.drop) if not path.name.endswith(MARKER_SUFFIX) else None
    rel = os.path.relpath(path, paths.drop).replace(os.sep, "/")
    named = parse_drop_name(rel)
    previous = store.previous_snapshot(*named) if named else None
    decision = examine_drop(
        path,
        paths.drop,
        partnership.load(),
        paths.today(),
        marker=marker,
        previous=previous,
        seen_lookup=lambda sha: store.lookup_content(sha, escape_name(rel)),
        limits=paths.drop_limits(),
        expected_sha256=expected_sha256,
        settle_s=paths.drop_settle_s if expected_sha256 is None else None,  # no scan vouched for it
        after_read=after_read,
    )
    if decision.status == "waiting":
        raise StillBeingWritten(decision.reason)
    known = store.find(decision.rel_path, decision.fingerprint)
    if decision.accepted or (known is not None and known.status in ("accepted", "superseded")):
        assert decision.agency is not None and decision.sha256 is not None and decision.snapshot is not None
        zone = keys.landing_zone(paths.landing_dir)
        data = decision.snapshot.data
        landed = zone.put(decision.agency, path.name, data)
        if landed.plaintext_sha256 != decision.sha256 or zone.read(landed) != data:
            raise RuntimeError(f"{decision.rel_path} changed while it was being taken in; it will be taken again")
    now = dt.datetime.now(dt.timezone.utc)
    outcome = store.record(decision, now=now, partition_key=partition_key, run_id=run_id)
    if outcome.new and decision.status == "refused" and decision.agency and decision.reason:
        tell_agency(paths.drop, warehouse, decision.agency, path.name, decision.reason, now)
    if outcome.entry.status in ("accepted", "superseded") and outcome.entry.sha256 == decision.sha256:
        if decision.snapshot is not None:
            unlink_if_same(paths.drop, rel, decision.snapshot)
        if marker is not None and marker.identity is not None:
            unlink_if_same(paths.drop, rel + MARKER_SUFFIX, Snapshot(b"", *marker.identity))
    return outcome


def tell_agency(drop: Path, warehouse: WarehouseResource, agency: str, file_name: str, reason: str, now: dt.datetime) -> None:
    """Write the refusal into the agency's feedback folder (best effort: the manifest has it anyway)."""
    try:
        write_agency_feedback(drop, warehouse, agency, file_name, None, refusal=reason, generated=now)
    except (ValueError, OSError):
        pass


def write_agency_feedback(drop: Path, warehouse: WarehouseResource, agency: str, file_name: str, result, **kw):  # type: ignore[no-untyped-def]
    """``write_feedback`` through checked descriptors, with an audit entry when the agency's ``feedback``
    had to be replaced by a real folder. None when the agency folder itself is not a real folder."""
    from data_sharing.feedback import FeedbackNotWritten, write_feedback

    try:
        files = write_feedback(drop, agency, file_name, result, **kw)
    except FeedbackNotWritten:
        return None
    audit_feedback_repair(warehouse, agency, files.replaced, kw.get("generated") or dt.datetime.now(dt.timezone.utc))
    return files


def audit_feedback_repair(warehouse: WarehouseResource, agency: str, replaced: str | None, now: dt.datetime) -> None:
    """An audit entry when the agency's ``feedback`` was a link, not a folder, or someone else's folder."""
    if not replaced:
        return
    from warehouse.audit import AuditEvent, record_events

    event = AuditEvent(
        "feedback_folder_replaced", f"{agency}/feedback",
        {"agency": agency, "found": replaced, "now": "a real folder owned by the hub"}, actor="c2c.intake",
    )
    record_events(warehouse.engine(), [event], now=now)


def file_identity(entry: ManifestEntry) -> dict:
    """Who and what one file is, for every per-file materialisation: the drop name (never a value from
    inside the file), its SHA-256, its manifest id and the MOU it came under."""
    return {
        "file": MetadataValue.path(entry.rel_path),
        "manifest_id": entry.id,
        "sha256": entry.sha256 or "",
        "agency": entry.agency or "",
        "extract": entry.extract or "",
        "mou_id": entry.mou_id or "",
        "mou_version": entry.mou_version or 0,
        "mou": f"{entry.mou_id} v{entry.mou_version}" if entry.mou_id else "",
    }


def file_table(entry: ManifestEntry, contract, row_count: int, lineage_map: dict | None):  # type: ignore[no-untyped-def]
    """The dagster/* table keys of one per-file materialisation: the drop name, the contract's columns,
    and lineage (``None``: the file itself, the root; else ``{column: [intake_file columns]}``)."""
    schema = lineage.extract_schema(contract)
    deps = None if lineage_map is None else lineage.lineage_to(names.INTAKE_FILE, lineage_map)
    return lineage.table_metadata(entry.rel_path, row_count, schema, deps)


def entry_metadata(entry: ManifestEntry, contract=None) -> dict:  # type: ignore[no-untyped-def]
    meta: dict = {
        **file_identity(entry),
        "status": entry.status,
        "size_bytes": entry.size_bytes or 0,
        "as_of_date": entry.as_of_date.isoformat() if entry.as_of_date else "",
        "rows_in": entry.rows or 0,
        "rows_refused": (entry.rows or 0) if entry.status == "refused" else 0,
        "duplicate_rows": entry.duplicate_rows or 0,
        **file_table(entry, contract, entry.rows or 0, None),
    }
    if entry.reason_code:
        meta["reason_code"] = entry.reason_code
        meta["reason"] = entry.reason or ""
    if entry.warnings:
        meta["warnings"] = MetadataValue.json(entry.warnings)
    if entry.period_rows:
        meta["rows_per_period"] = MetadataValue.json({str(k): v for k, v in sorted(entry.period_rows.items(), key=str)})
    return meta


@asset(
    name=names.INTAKE_FILE,
    partitions_def=drop_files,
    group_name=names.GROUP_INTAKE,
    kinds={"python", "csv"},
    owners=["team:city-data-office"],
    tags={"c2c/zone": "drop-folder"},
    description=(
        "One file dropped by an agency: its name, MOU, header, encoding and control totals checked, and the "
        "decision (accepted, refused with a reason, or duplicate of content already received) recorded in the "
        "warehouse table intake_manifest. The file itself is never deleted. Metadata: the drop name, SHA-256, MOU, "
        "landing key id, rows in/refused, and the extract's columns from its contract (the root of column lineage)."
    ),
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_INTAKE_ACCEPTED,
            asset=names.INTAKE_FILE,
            blocking=True,
            description="The file was accepted under its agency's MOU; a refused file stops everything downstream.",
        )
    ],
    op_tags={names.TAG_STAGE: "intake"},
    retry_policy=IO_RETRY,
    output_required=False,
)
@retry_transient_only
def intake_file(
    context: AssetExecutionContext,
    config: IntakeFileConfig,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    path = resolve_drop_path(c2c_paths.drop, context.partition_key, config)
    if not os.path.lexists(path):
        # Already taken in (accepted files move into the landing zone): a re-run goes on from there.
        taken = warehouse.manifest().latest_for_path(escape_name(os.path.relpath(path, c2c_paths.drop).replace(os.sep, "/")))
        if taken is not None and taken.status in ("accepted", "superseded"):
            meta = entry_metadata(taken, _contract(partnership, taken))
            meta["key_ids"] = MetadataValue.json(_landing_keys(c2c_paths, keys, taken))
            meta["newly_recorded"] = False
            meta["note"] = "already taken in; the file is in the encrypted landing zone"
            meta[OUTCOME] = taken.status
            yield MaterializeResult(
                metadata=meta,
                check_results=[AssetCheckResult(check_name=names.CHECK_INTAKE_ACCEPTED, passed=True)],
            )
            return
    try:
        outcome = receive_drop(
            path, c2c_paths, warehouse, partnership, keys, partition_key=context.partition_key,
            run_id=context.run.run_id, expected_sha256=context.run.tags.get(names.TAG_SHA256) or None,
        )
    except StillBeingWritten as waiting:
        yield from _still_being_written(context, path, c2c_paths, str(waiting))
        return
    entry = outcome.entry
    if entry.status == "refused":
        context.log.warning(f"{entry.rel_path} refused ({entry.reason_code}): {entry.reason}")
    else:
        context.log.info(f"{entry.rel_path}: {entry.status}" + ("" if outcome.new else " (already recorded)"))
    meta = entry_metadata(entry, _contract(partnership, entry))
    meta["key_ids"] = MetadataValue.json(_landing_keys(c2c_paths, keys, entry))
    meta["newly_recorded"] = outcome.new
    if outcome.superseded:
        meta["superseded_manifest_ids"] = MetadataValue.json(list(outcome.superseded))
    meta[OUTCOME] = entry.status
    yield from refusal_or_result(
        names.INTAKE_FILE, names.CHECK_INTAKE_ACCEPTED, meta, partition=context.partition_key,
        refused=(entry.reason or entry.reason_code or "refused") if entry.status == "refused" else None,
        check_metadata={"status": entry.status, "reason_code": entry.reason_code or ""},
    )


def refusal_or_result(
    asset_key: str, check_name: str, meta: dict, *, partition: str, refused: str | None, check_metadata: dict,
    outcome: str = "refused",
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    """A per-file step's end. Refused: a materialisation whose ``outcome`` is ``refused``, the file-level check
    failed at WARN severity and no output, so the steps after it are skipped and the run succeeds (a
    refusal is the pipeline working, not failing). Otherwise the usual result with the check passed."""
    if refused is not None:
        yield AssetMaterialization(asset_key=asset_key, partition=partition, metadata={**meta, OUTCOME: outcome})
        yield AssetCheckResult(
            check_name=check_name, asset_key=asset_key, passed=False, severity=AssetCheckSeverity.WARN,
            description=refused, metadata={**check_metadata, OUTCOME: outcome},
        )
        return
    yield MaterializeResult(
        metadata=meta,
        check_results=[AssetCheckResult(check_name=check_name, passed=True, metadata=check_metadata)],
    )


def _still_being_written(
    context: AssetExecutionContext, path: Path, c2c_paths: C2CPaths, reason: str
) -> Iterator[AssetMaterialization | AssetCheckResult]:
    """Nothing decided: the file is left in the drop folder for the next scan (downstream steps skipped;
    the run succeeds with outcome ``waiting``)."""
    rel = escape_name(os.path.relpath(path, c2c_paths.drop).replace(os.sep, "/"))
    context.log.warning(reason)
    yield from refusal_or_result(
        names.INTAKE_FILE, names.CHECK_INTAKE_ACCEPTED,
        {"file": MetadataValue.path(rel), "status": STILL_BEING_WRITTEN, "reason": reason, "newly_recorded": False},
        partition=context.partition_key, refused=reason, outcome=WAITING,
        check_metadata={"status": STILL_BEING_WRITTEN, "reason_code": "still_being_written"},
    )


STILL_BEING_WRITTEN = "still_being_written"


def _contract(partnership: PartnershipResource, entry: ManifestEntry):  # type: ignore[no-untyped-def]
    terms = partnership.load().terms(entry.agency, entry.extract) if entry.agency and entry.extract else None
    return None if terms is None else terms.contract


def _landing_keys(paths: C2CPaths, keys: KeysResource, entry: ManifestEntry) -> dict[str, str]:
    """The id (label) of the key the landed copy is encrypted with; never the key."""
    from data_sharing.landing import LandingZone, read_header

    if entry.status not in ("accepted", "superseded") or not entry.agency or not entry.sha256:
        return {}
    landed = LandingZone(Path(paths.landing_dir), keys.load()).path_for(entry.agency, Path(entry.rel_path).name, entry.sha256)
    return {"landing": read_header(landed).key_label} if landed.exists() else {}


CURRENT_COLUMNS = ("agency", "extract", "rel_path", "as_of_date", "rows", "sha256", "mou_id", "mou_version")
"""The intake_manifest columns current_snapshots shows (one row per current file)."""


@asset(
    name=names.CURRENT_SNAPSHOTS,
    deps=[names.INTAKE_FILE, names.VALIDATED_FILE, names.PROTECTED_FILE],
    group_name=names.GROUP_INTAKE,
    kinds={"python", "sql"},
    owners=["team:city-data-office"],
    description=(
        "Which accepted file holds the current data of every agency extract and period (later as-of dates "
        "replace earlier ones; corrected re-sends replace the file they correct), read from intake_manifest."
    ),
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_EVERY_AGENCY_CURRENT,
            asset=names.CURRENT_SNAPSHOTS,
            description="Every agency of the partnership has at least one accepted extract.",
        ),
        AssetCheckSpec(
            name=names.CHECK_AGENCIES_ON_TIME,
            asset=names.CURRENT_SNAPSHOTS,
            description="Every agency's newest accepted extract is no older than its MOU's delivery cadence.",
        ),
    ],
    retry_policy=IO_RETRY,
)
@retry_transient_only
def current_snapshots(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
) -> MaterializeResult:
    store = warehouse.manifest()
    snapshot = store.current_snapshot()
    lines = ["| agency | extract | periods | file | as of | rows | sha256 |", "|---|---|---|---|---|---|---|"]
    files: dict[int, ManifestEntry] = {}
    for (agency, extract), owners in sorted(snapshot.items()):
        by_file: dict[int, list] = {}
        for period, entry in owners.items():
            by_file.setdefault(entry.id, []).append(period)
            files[entry.id] = entry
        for entry_id, periods in sorted(by_file.items()):
            e = files[entry_id]
            shown = ", ".join(str(p) for p in sorted(p for p in periods if p is not None)) or "all"
            lines.append(
                f"| {agency} | {extract} | {shown} | {e.rel_path} | {e.as_of_date} | {e.rows:,} | {(e.sha256 or '')[:12]} |"
            )
    counts = store.status_counts()
    agencies = partnership.load().agencies
    lateness = agency_lateness(snapshot, partnership.load(), c2c_paths.today())
    late = {a: v for a, v in lateness.items() if v["late"]}
    missing = [a for a in agencies if not any(k[0] == a for k in snapshot)]
    total_rows = sum(e.rows or 0 for e in files.values())
    context.log.info(f"current snapshot: {len(files)} files over {len(snapshot)} extracts; manifest {counts}")
    return MaterializeResult(
        metadata={
            "current_files": MetadataValue.md("\n".join(lines)),
            "extracts_with_data": len(snapshot),
            "files_current": len(files),
            "rows_current": total_rows,
            **lineage.table_metadata(
                "intake_manifest", len(files),
                lineage.model_schema(IntakeManifest.__table__, only=CURRENT_COLUMNS),  # type: ignore[arg-type]
                None,
            ),
            "manifest_status_counts": MetadataValue.json(counts),
            "current_sha256": MetadataValue.json(sorted(e.sha256 for e in files.values() if e.sha256)),
        },
        check_results=[
            AssetCheckResult(
                check_name=names.CHECK_EVERY_AGENCY_CURRENT,
                passed=not missing,
                severity=AssetCheckSeverity.WARN,
                description=("No accepted extract yet from: " + ", ".join(missing)) if missing else None,
            ),
            AssetCheckResult(
                check_name=names.CHECK_AGENCIES_ON_TIME,
                passed=not late,
                severity=AssetCheckSeverity.WARN,
                description=("Late: " + ", ".join(f"{a} (newest as-of {v['newest_as_of']}, cadence {v['cadence_days']} days)" for a, v in late.items())) if late else None,
                metadata={"agencies": MetadataValue.json(lateness)},
            ),
        ],
    )


def agency_lateness(snapshot: dict, partnership, today: dt.date) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """Per agency: the newest as-of date among its current files, and whether it is past the MOU's cadence."""
    out: dict[str, dict] = {}
    for agency in partnership.agencies:
        cadence = partnership.agreements[agency].delivery_cadence_days
        dates = [e.as_of_date for (a, _), owners in snapshot.items() if a == agency for e in owners.values() if e.as_of_date]
        newest = max(dates) if dates else None
        age = (today - newest).days if newest else None
        out[agency] = {
            "newest_as_of": newest.isoformat() if newest else None,
            "age_days": age,
            "cadence_days": cadence,
            "late": cadence is not None and (age is None or age > cadence),
        }
    return out
