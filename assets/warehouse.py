"""Warehouse assets: the partner-tier tables loaded from the current pseudonymous records, and the
published, suppressed indicator release built on them."""

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets import names
from assets.privacy import staging_paths
from data_sharing.keys import KeySet
from data_sharing.pseudonyms import key_column_names, source_keys_from_tokens
from pipelines.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from schemas.contracts import ExtractContract
from warehouse.load import EXTRACT_TABLES, StagedFile, load_current
from warehouse.releases import publish_release

CROSSWALK_FILE = "crosswalk.parquet"
QUALITY_FILE = "linkage_quality.json"
STATE_FILE = "warehouse_state.json"


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
        "in bulk from the current pseudonymous records: exactly the current snapshot, idempotently."
    ),
)
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
    for key in sorted(EXTRACT_TABLES):
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
        if rekeyed:  # a new pseudonym key: every row's source_key changes, so load the set afresh
            load_current(engine, key, [], None)
        result = load_current(engine, key, files, crosswalk)
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
            "dagster/row_count": total,
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
        "complementary suppression (k from the contributing MOUs), published atomically as a new release."
    ),
)
def indicator_release(
    context: AssetExecutionContext, c2c_paths: C2CPaths, warehouse: WarehouseResource, partnership: PartnershipResource
) -> MaterializeResult:
    quality_path = Path(c2c_paths.linkage_dir) / QUALITY_FILE
    quality = json.loads(quality_path.read_text()) if quality_path.exists() else {"linkage": "not run"}
    info = publish_release(
        warehouse.engine(), linkage_quality=quality, run_id=context.run.run_id, partnership=partnership.load()
    )
    meta = info.metadata()
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
            "dagster/table_name": "indicator_values",
            "dagster/row_count": info.rows,
        }
    )
