"""Retention asset: destroy raw landing files past their MOU's ``raw_retention_days``, with evidence (``stages.retention``)."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets import lineage, names
from assets.resources import C2CPaths, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from stages.retention import destroy_raw
from warehouse.models import AuditLog


@asset(
    name=names.RAW_RETENTION,
    deps=[names.CURRENT_SNAPSHOTS],
    group_name=names.GROUP_PRIVACY,
    kinds={"python"},
    owners=["team:city-data-office"],
    description=(
        "Destroys raw files in the encrypted landing zone once they are older than their agency MOU's "
        "raw_retention_days, and writes the evidence (file, SHA-256, size, when, which rule) to the audit log. "
        "The pipeline goes on from the pseudonymous records in the linkage area. Its table: the run's "
        "raw_destroyed entries of audit_log."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def raw_retention(
    context: AssetExecutionContext, c2c_paths: C2CPaths, warehouse: WarehouseResource, partnership: PartnershipResource
) -> MaterializeResult:
    done = destroy_raw(Path(c2c_paths.landing_dir), partnership.load(), warehouse.engine())
    for e in done.evidence:
        context.log.info(f"destroyed {e.file} ({e.rule})")
    return MaterializeResult(
        metadata={
            "files_destroyed": done.files_destroyed,
            "bytes_destroyed": done.bytes_destroyed,
            "rules": MetadataValue.json(dict(done.rules)),
            "evidence": MetadataValue.json(done.records),
            **lineage.table_metadata("audit_log", done.files_destroyed, lineage.model_schema(AuditLog.__table__), None),  # type: ignore[arg-type]
        }
    )
