"""Intake assets: one materialisation per dropped file, and the current snapshot of every extract.

Thin by design: resolve the file and the resources, call the intake stage (``stages.intake``), map its
result to metadata and check results. No DataFrame is returned to Dagster (nothing is pickled into its
storage) and no value from inside a file reaches metadata or logs.
"""

import os
from collections.abc import Iterator
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

from assets import lineage, names
from assets.partitions import drop_files
from assets.per_file import OUTCOME, file_identity, file_table, refusal_or_result
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from data_sharing.dropfolder import partition_key_for
from stages.intake import STILL_BEING_WRITTEN, WAITING, CurrentFiles, IntakeResult, current_files, take_in
from warehouse.manifest import ManifestEntry
from warehouse.models import IntakeManifest


REFUSED = "refused"


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
    result = take_in(
        path, c2c_paths.drop_site(), warehouse.manifest(), partnership.load(), keys.load,
        partition_key=context.partition_key, run_id=context.run.run_id,
        expected_sha256=context.run.tags.get(names.TAG_SHA256) or None,
    )
    if result.entry is None:
        yield from _still_being_written(context, result)
        return
    entry = result.entry
    if entry.status == "refused":
        context.log.warning(f"{entry.rel_path} refused ({entry.reason_code}): {entry.reason}")
    elif not result.already_taken:
        context.log.info(f"{entry.rel_path}: {entry.status}" + ("" if result.newly_recorded else " (already recorded)"))
    yield from refusal_or_result(
        names.INTAKE_FILE, names.CHECK_INTAKE_ACCEPTED, intake_metadata(result), partition=context.partition_key,
        refused=result.reason, check_metadata={} if result.already_taken else
        {"status": entry.status, "reason_code": entry.reason_code or ""},
    )


def intake_metadata(result: IntakeResult) -> dict:
    assert result.entry is not None
    meta = entry_metadata(result.entry, result.contract)
    meta["key_ids"] = MetadataValue.json(dict(result.landing_keys))
    meta["newly_recorded"] = result.newly_recorded
    if result.already_taken:
        meta["note"] = "already taken in; the file is in the encrypted landing zone"
    if result.superseded:
        meta["superseded_manifest_ids"] = MetadataValue.json(list(result.superseded))
    meta[OUTCOME] = result.outcome
    return meta


def _still_being_written(
    context: AssetExecutionContext, result: IntakeResult
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    """Nothing decided: the file is left in the drop folder for the next scan (downstream steps skipped;
    the run succeeds with outcome ``waiting``)."""
    reason = str(result.reason)
    context.log.warning(reason)
    yield from refusal_or_result(
        names.INTAKE_FILE, names.CHECK_INTAKE_ACCEPTED,
        {"file": MetadataValue.path(result.rel_path), "status": STILL_BEING_WRITTEN, "reason": reason, "newly_recorded": False},
        partition=context.partition_key, refused=reason, outcome=WAITING,
        check_metadata={"status": STILL_BEING_WRITTEN, "reason_code": "still_being_written"},
    )


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
    current = current_files(warehouse.manifest(), partnership.load(), c2c_paths.today())
    context.log.info(
        f"current snapshot: {len(current.files)} files over {len(current.snapshot)} extracts; manifest {dict(current.status_counts)}"
    )
    return MaterializeResult(metadata=snapshot_metadata(current), check_results=snapshot_checks(current))


def snapshot_metadata(current: CurrentFiles) -> dict:
    lines = ["| agency | extract | periods | file | as of | rows | sha256 |", "|---|---|---|---|---|---|---|"]
    for agency, extract, periods, e in current.by_file():
        shown = ", ".join(str(p) for p in sorted(p for p in periods if p is not None)) or "all"
        lines.append(
            f"| {agency} | {extract} | {shown} | {e.rel_path} | {e.as_of_date} | {e.rows:,} | {(e.sha256 or '')[:12]} |"
        )
    files = current.files.values()
    return {
        "current_files": MetadataValue.md("\n".join(lines)),
        "extracts_with_data": len(current.snapshot),
        "files_current": len(current.files),
        "rows_current": current.total_rows,
        **lineage.table_metadata(
            "intake_manifest", len(current.files),
            lineage.model_schema(IntakeManifest.__table__, only=CURRENT_COLUMNS),  # type: ignore[arg-type]
            None,
        ),
        "manifest_status_counts": MetadataValue.json(dict(current.status_counts)),
        "current_sha256": MetadataValue.json(sorted(e.sha256 for e in files if e.sha256)),
    }


def snapshot_checks(current: CurrentFiles) -> list[AssetCheckResult]:
    missing, late = current.missing, current.late
    return [
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
            description=("Late: " + ", ".join(
                f"{a} (newest as-of {v['newest_as_of']}, cadence {v['cadence_days']} days)" for a, v in late.items()
            )) if late else None,
            metadata={"agencies": MetadataValue.json(dict(current.lateness))},
        ),
    ]
