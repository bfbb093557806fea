"""Retention asset: destroy raw landing files past their MOU's ``raw_retention_days``, with evidence."""

import datetime as dt
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets import names
from data_sharing.landing import destroy_expired, retention_rules
from assets import lineage
from assets.resources import C2CPaths, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.audit import AuditEvent, record_events
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
    rules = retention_rules(partnership.load().agreements)
    now = dt.datetime.now(dt.timezone.utc)
    evidence = destroy_expired(Path(c2c_paths.landing_dir), rules, now=lambda: now)
    events = [
        AuditEvent("raw_destroyed", e.file, e.as_record(), actor="c2c.retention") for e in evidence
    ]
    record_events(warehouse.engine(), events, now=now)
    for e in evidence:
        context.log.info(f"destroyed {e.file} ({e.rule})")
    return MaterializeResult(
        metadata={
            "files_destroyed": len(evidence),
            "bytes_destroyed": sum(e.size or 0 for e in evidence),
            "rules": MetadataValue.json({a: r.label for a, r in rules.items()}),
            "evidence": MetadataValue.json([e.as_record() for e in evidence]),
            **lineage.table_metadata("audit_log", len(events), lineage.model_schema(AuditLog.__table__), None),  # type: ignore[arg-type]
        }
    )
