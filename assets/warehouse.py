"""Warehouse assets (thin; the stages are :mod:`stages.release`): the partner-tier tables loaded from the
current pseudonymous records, and the published, suppressed indicator release built on them."""

import json
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import names
from data_sharing.linkage.area import LinkageArea, MissingArtifactError
from assets import lineage
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from stages.release import load_warehouse, publish

CHECK_RELEASE_PUBLISHED = "release_published"


@asset(
    name=names.WAREHOUSE_TABLES,
    deps=[names.CURRENT_SNAPSHOTS, names.LINKED_PERSONS],
    group_name=names.GROUP_WAREHOUSE,
    kinds={"sql", "postgres", "sqlite"},
    owners=["team:city-data-office"],
    tags={"c2c/tier": "partners"},
    description=(
        "The partner-tier warehouse tables (enrolments, attendance, assessments, graduation, health encounters, "
        "immunizations, program enrolments, children), keyed by child_key (source_key where not linked), loaded "
        "in bulk from the current pseudonymous records: exactly the current snapshot, idempotently. Columns are "
        "named <table>.<column>; their lineage goes to the protected_file columns (and linked_persons for child_key); "
        "source_files_by_table says which files (SHA-256) stand behind each table."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def warehouse_tables(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> MaterializeResult:
    try:
        load = load_warehouse(warehouse.engine(), warehouse.manifest(), partnership.load(), keys.load(),
                              LinkageArea(Path(c2c_paths.linkage_dir)))
    except MissingArtifactError as exc:
        raise Failure(str(exc)) from exc
    return MaterializeResult(
        metadata={
            "tables": MetadataValue.json(dict(load.tables)),
            "source_files": MetadataValue.json(dict(load.source_files)),
            "pseudonym_key": load.pseudonym_key,
            "rekeyed_after_rotation": load.rekeyed,
            "linked": load.linked,
            "source_files_by_table": MetadataValue.json(dict(load.source_files_by_table)),
            "table_extracts": MetadataValue.json(lineage.warehouse_extract_tables()),
            **lineage.table_metadata(
                _qualified(warehouse, *lineage.warehouse_extract_tables(), "children"), load.rows_total,
                lineage.warehouse_tables_schema(), lineage.warehouse_lineage(),
            ),
        }
    )


@asset(
    name=names.INDICATOR_RELEASE,
    deps=[names.WAREHOUSE_TABLES],
    group_name=names.GROUP_INDICATORS,
    kinds={"sql"},
    owners=["team:city-data-office"],
    tags={"c2c/tier": "public"},
    description=(
        "Every indicator of schemas/indicators, city-wide and per school, for every dimension, with primary and "
        "complementary suppression (k from the contributing MOUs), published atomically as a new release. "
        "contributing_files lists every file behind it (SHA-256, MOU): the indicators' extracts and the person "
        "extracts the linkage read; column lineage goes from each published column to the warehouse columns the "
        "indicator definitions use."
    ),
    check_specs=[
        AssetCheckSpec(
            name=CHECK_RELEASE_PUBLISHED,
            asset=names.INDICATOR_RELEASE,
            description="The night's indicators had rows and were published (an empty computation is refused).",
        )
    ],
    retry_policy=IO_RETRY,
)
@retry_transient_only
def indicator_release(
    context: AssetExecutionContext, c2c_paths: C2CPaths, warehouse: WarehouseResource, partnership: PartnershipResource
) -> MaterializeResult:
    outcome = publish(warehouse.engine(), warehouse.manifest(), partnership.load(), LinkageArea(Path(c2c_paths.linkage_dir)),
                      Path(c2c_paths.home), context.run.run_id)
    if outcome.info is None:
        # Nothing to publish. A good release exists: the data vanished, fail the run (alert); it stays current.
        # A new hub without data yet: not an error; the check warns and the next nightly run tries again.
        if outcome.kept_release_id is not None:
            raise Failure(description=str(outcome.status), allow_retries=False)
        context.log.warning(str(outcome.status))
        return MaterializeResult(
            metadata={"published": False, "status": str(outcome.status),
                      **lineage.table_metadata(_qualified(warehouse, "indicator_values"), 0, *lineage.indicator_release_lineage())},
            check_results=[AssetCheckResult(check_name=CHECK_RELEASE_PUBLISHED, passed=False,
                                            severity=AssetCheckSeverity.WARN, description=str(outcome.status))],
        )
    for warning in outcome.warnings:
        context.log.warning(warning)
    info, contributing, report = outcome.info, outcome.contributing, outcome.report
    meta = info.metadata()
    schema, deps = lineage.indicator_release_lineage(info.definitions)
    return MaterializeResult(
        metadata={
            "release_id": info.release_id,
            "rows": info.rows,
            "suppressed_rows": info.suppressed_rows,
            "suppressed_by_reason": MetadataValue.json(meta["by_reason"]),
            "definition_versions": MetadataValue.json(meta["definitions"]),
            "source_files": MetadataValue.json(json.loads(json.dumps(info.source_files, default=str))),
            "source_sha256": MetadataValue.json(sorted({str(f.get("sha256")) for f in info.source_files})),
            "linkage_quality": MetadataValue.json(info.linkage_quality),
            "previous_release_id": info.previous_release_id or 0,
            "timings_s": MetadataValue.json(meta["timings"]),
            "reused_indicators": MetadataValue.json(meta["reused"]),  # inputs unchanged: copied from the previous release
            "audit_head": MetadataValue.json(meta.get("audit_head") or {}),  # an anchor outside the warehouse
            "contributing_files": MetadataValue.json(contributing),
            "contributing_sha256": MetadataValue.json(sorted({f["sha256"] for f in contributing})),
            **({"audit_report": MetadataValue.path(str(report))} if report is not None else {}),
            **lineage.table_metadata(_qualified(warehouse, "indicator_values"), info.rows, schema, deps),
        },
        check_results=[AssetCheckResult(check_name=CHECK_RELEASE_PUBLISHED, passed=True)],
    )


def _qualified(warehouse: WarehouseResource, *tables: str) -> str:
    """Table name(s) as the UI shows them: schema-qualified on PostgreSQL, comma-separated for several."""
    prefix = f"{warehouse.db_schema}." if warehouse.db_schema else ""
    return ", ".join(prefix + t for t in tables)
