"""Warehouse assets: the partner-tier tables loaded from the current pseudonymous records, and the
published, suppressed indicator release built on them."""

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
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
from stages.protect import staging_paths
from data_sharing.keys import KeySet
from data_sharing.pseudonyms import key_column_names, source_keys_from_tokens
from assets import lineage
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from schemas.contracts import ExtractContract
from schemas.indicators import load_indicator_definitions
from warehouse.load import StagedFile, extract_tables, load_current, loaded_files
from warehouse.releases import EmptyReleaseError, publish_release

CROSSWALK_FILE = "crosswalk.parquet"
QUALITY_FILE = "linkage_quality.json"
STATE_FILE = "warehouse_state.json"
CHECK_RELEASE_PUBLISHED = "release_published"


def read_staging(path: Path, contract: ExtractContract, keyset: KeySet) -> pd.DataFrame:
    """A staging frame with source keys under the *current* pseudonym key (re-keyed from the id tokens
    after a rotation), without the id tokens (they never enter the warehouse)."""
    table = pq.read_table(path)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    current = keyset.purpose_key("pseudonym").label
    if meta.get("key_pseudonym") != current:
        for col, key_col in key_column_names(contract, "source_key").items():
            tokens = f"{col}_id_token"
            if tokens in frame.columns and key_col in frame.columns:
                frame[key_col] = source_keys_from_tokens(frame[tokens], keyset).values
    return frame.drop(columns=[c for c in frame.columns if c.endswith("_id_token")])


def read_crosswalk(linkage_dir: Path) -> pd.DataFrame | None:
    path = linkage_dir / CROSSWALK_FILE
    return pd.read_parquet(path) if path.exists() else None


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
    engine = warehouse.engine()
    store = warehouse.manifest()
    keyset = keys.load()
    linkage_dir = Path(c2c_paths.linkage_dir)
    crosswalk = read_crosswalk(linkage_dir)
    snapshot = store.current_snapshot()
    parts = partnership.load()
    label = keyset.purpose_key("pseudonym").label
    state_path = linkage_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    rekeyed = state.get("pseudonym_key") not in (None, label)
    results: dict[str, dict] = {}
    sources: dict[str, str] = {}
    by_table: dict[str, list[str]] = {}
    tables = extract_tables(parts.contracts)
    for key in sorted(tables):
        agency, extract = key.split("/")
        terms = parts.terms(agency, extract)
        if terms is None:
            continue
        by_entry: dict[int, tuple] = {}
        for period, entry in snapshot.get((agency, extract), {}).items():
            by_entry.setdefault(entry.id, (entry, set()))[1].add(period)
        files = []
        for entry, periods in by_entry.values():
            path, _ = staging_paths(linkage_dir, entry)
            if not path.exists():
                raise Failure(f"{entry.rel_path}: its pseudonymous record is missing; re-run its intake partition")
            frame = read_staging(path, terms.contract, keyset)
            scope = frozenset(periods) if terms.contract.period_column else None
            files.append(StagedFile(agency, extract, entry.id, str(entry.sha256), frame, periods=scope))
            sources[str(entry.sha256)] = entry.rel_path
            by_table.setdefault(tables[key].table.name, []).append(str(entry.sha256))
        if rekeyed:  # a new pseudonym key: every row's source_key changes, so load the set afresh
            load_current(engine, key, [], None, tables=tables)
        result = load_current(engine, key, files, crosswalk, tables=tables)
        results[key] = result.metadata()
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({"pseudonym_key": label}), encoding="utf-8")
    total = sum(int(r.get("rows_total", 0)) for r in results.values())
    return MaterializeResult(
        metadata={
            "tables": MetadataValue.json(results),
            "source_files": MetadataValue.json(sources),
            "pseudonym_key": label,
            "rekeyed_after_rotation": rekeyed,
            "linked": crosswalk is not None,
            "source_files_by_table": MetadataValue.json({t: sorted(v) for t, v in sorted(by_table.items())}),
            "table_extracts": MetadataValue.json(lineage.warehouse_extract_tables()),
            **lineage.table_metadata(
                _qualified(warehouse, *lineage.warehouse_extract_tables(), "children"), total,
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
    quality_path = Path(c2c_paths.linkage_dir) / QUALITY_FILE
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {"linkage": "not run"}
    try:
        info = publish_release(
            warehouse.engine(), linkage_quality=quality, run_id=context.run.run_id, partnership=partnership.load(),
            definitions=load_indicator_definitions(partnership.load().indicators_dir)
        )
    except EmptyReleaseError as exc:
        # Nothing to publish. A good release exists: the data vanished, fail the run (alert); it stays current.
        # A new hub without data yet: not an error; the check warns and the next nightly run tries again.
        if exc.current_release_id is not None:
            raise Failure(description=str(exc), allow_retries=False) from exc
        context.log.warning(str(exc))
        return MaterializeResult(
            metadata={"published": False, "status": str(exc),
                      **lineage.table_metadata(_qualified(warehouse, "indicator_values"), 0, *lineage.indicator_release_lineage())},
            check_results=[AssetCheckResult(check_name=CHECK_RELEASE_PUBLISHED, passed=False,
                                            severity=AssetCheckSeverity.WARN, description=str(exc))],
        )
    meta = info.metadata()
    schema, deps = lineage.indicator_release_lineage(info.definitions)
    contributing = contributing_files(warehouse, partnership, info.source_files)
    report = audit_report(context, c2c_paths, warehouse, info.release_id, contributing)
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


def contributing_files(warehouse: WarehouseResource, partnership: PartnershipResource, release_sources: list[dict]) -> list[dict]:
    """Every file behind a release: those of the extracts the indicators read (``via: indicators``) and the
    current person extracts the linkage read (``via: linkage``), with drop name, SHA-256 and MOU."""
    people = [f"{t.agency}/{t.extract}" for t in partnership.load() if t.contract.describes_people]
    via: dict[int, set[str]] = {}
    files: dict[int, dict] = {}
    for tag, found in (("indicators", release_sources), ("linkage", loaded_files(warehouse.engine(), people))):
        for f in found:
            files[int(f["manifest_id"])] = f
            via.setdefault(int(f["manifest_id"]), set()).add(tag)
    store = warehouse.manifest()
    out = []
    for manifest_id, f in sorted(files.items()):
        entry = store.get(manifest_id)
        out.append({
            "manifest_id": manifest_id, "agency": f["agency"], "extract": f["extract"], "sha256": str(f["sha256"]),
            "file": entry.rel_path if entry else None,
            "mou": f"{entry.mou_id} v{entry.mou_version}" if entry and entry.mou_id else None,
            "via": sorted(via[manifest_id]),
        })
    return out


def audit_report(
    context: AssetExecutionContext, c2c_paths: C2CPaths, warehouse: WarehouseResource, release_id: int, contributing: list[dict]
) -> Path | None:
    """Write the release's audit report (``<home>/reports/<id>/audit.html``); the release stands if it cannot be written."""
    from warehouse.reports.audit import write_audit_report

    file_keys: dict[int, dict[str, str]] = {}
    for entry in warehouse.manifest().entries():
        path, _ = staging_paths(c2c_paths.linkage_dir, entry)
        if entry.status in ("accepted", "superseded") and path.exists():
            meta = {k.decode(): v.decode() for k, v in (pq.read_schema(path).metadata or {}).items()}
            file_keys[entry.id] = {k.removeprefix("key_"): v for k, v in meta.items() if k.startswith("key_")}
    try:
        return write_audit_report(warehouse.engine(), release_id, Path(c2c_paths.home) / "reports", file_keys=file_keys,
                                  contributing=contributing)
    except OSError as exc:
        context.log.warning(f"the audit report of release {release_id} was not written: {type(exc).__name__} {exc.strerror}")
        return None
