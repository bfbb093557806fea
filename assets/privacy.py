"""Privacy asset: one accepted file, read from the encrypted landing zone in memory, split into a
pseudonymous record and linkage encodings in the linkage area. Nothing raw leaves this step.
"""

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from assets import names
from assets.intake import file_identity
from assets.validation import validation_paths
from data_sharing.intake import read_extract_table
from data_sharing.landing import LandingZone
from data_sharing.protect import ProtectedExtract, protect_raw, protect_tokenized
from assets import lineage
from assets.partitions import drop_files
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.manifest import ManifestEntry


def staging_paths(linkage_dir: str | Path, entry: ManifestEntry) -> tuple[Path, Path]:
    """Where one file's pseudonymous record and encodings live (both in the linkage area)."""
    root = Path(linkage_dir)
    return (
        root / "staging" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
        root / "encodings" / str(entry.agency) / str(entry.extract) / entry.artifact_name,
    )


def _write_parquet(frame: pd.DataFrame, path: Path, meta: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def protect_entry(
    entry: ManifestEntry, zone: LandingZone, partnership, keyset, accepted_rows: Path  # type: ignore[no-untyped-def]
) -> tuple[ProtectedExtract, int, int]:
    """Decrypt the landed file in memory, keep the rows validation accepted (exact repeats count once),
    protect them. Returns (protected, rows in the file, rows not taken)."""
    assert entry.agency and entry.extract and entry.sha256
    terms = partnership.terms(entry.agency, entry.extract)
    data = zone.read(zone.path_for(entry.agency, Path(entry.rel_path).name, entry.sha256))
    table = read_extract_table(data)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    rows_in = len(frame)
    row_numbers = pq.read_table(accepted_rows).column("row_number").to_numpy()
    frame = frame.iloc[row_numbers - 1]
    protect = protect_tokenized if entry.tokenized else protect_raw
    protected = protect(frame, terms.contract, keyset, row_numbers=row_numbers)
    return protected, rows_in, rows_in - len(row_numbers)


@asset(
    name=names.PROTECTED_FILE,
    partitions_def=drop_files,
    deps=[names.VALIDATED_FILE],
    group_name=names.GROUP_PRIVACY,
    kinds={"python", "parquet"},
    owners=["team:city-data-office"],
    tags={"c2c/zone": "linkage-area"},
    description=(
        "One accepted file with its identifiers split off: agency ids become keyed pseudonyms "
        "(id_token = HMAC(linkage key, agency|id type|id); source_key = HMAC(pseudonym key, id_token)), names, "
        "addresses and full birth dates are dropped, quasi-identifiers generalised; people extracts also get "
        "their linkage encodings. Read from the encrypted landing zone in memory; written to the linkage area. "
        "Metadata: the file, SHA-256, MOU, key ids (never keys), rows in/not taken/out, and column lineage from "
        "every pseudonymous column to the extract fields (intake_file columns) it is made from."
    ),
    op_tags={names.TAG_STAGE: "intake"},
    retry_policy=IO_RETRY,
)
@retry_transient_only
def protected_file(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> MaterializeResult:
    store = warehouse.manifest()
    entry = store.latest_for_path(context.partition_key)
    if entry is None or entry.status not in ("accepted", "superseded", "duplicate"):
        raise Failure(f"{context.partition_key} has no accepted file in the intake manifest; nothing to protect")
    staging_path, encodings_path = staging_paths(c2c_paths.linkage_dir, entry)
    terms = partnership.load().terms(str(entry.agency), str(entry.extract))
    if entry.status == "duplicate" and terms is None:
        return MaterializeResult(metadata={
            **file_identity(entry), "status": "duplicate", "note": "same content already protected",
            **lineage.table_metadata(entry.rel_path, 0, lineage.extract_schema(None), None),
        })
    if terms is None:
        raise Failure(f"{entry.rel_path}: no MOU permits {entry.agency}/{entry.extract} any more; nothing to protect")
    contract = terms.contract

    def table_meta(rows: int, columns, deps: dict) -> dict:  # type: ignore[no-untyped-def]
        return lineage.table_metadata(
            str(staging_path.relative_to(c2c_paths.linkage_dir)), rows, lineage.staging_schema(contract, columns),
            lineage.lineage_to(names.INTAKE_FILE, {c: deps[c] for c in columns if c in deps}),
        )

    declared = lineage.staging_lineage(contract)
    if entry.status == "duplicate":
        return MaterializeResult(metadata={
            **file_identity(entry), "status": "duplicate", "note": "same content already protected",
            **table_meta(0, list(declared), declared),
        })
    keyset = keys.load()
    zone = LandingZone(Path(c2c_paths.landing_dir), keyset)
    landed = zone.path_for(str(entry.agency), Path(entry.rel_path).name, str(entry.sha256))
    if not landed.exists():
        if staging_path.exists():
            # Raw file destroyed by retention: the pipeline goes on from the pseudonymous record.
            kept = pq.read_schema(staging_path)
            rows = pq.read_metadata(staging_path).num_rows
            return MaterializeResult(
                metadata={**file_identity(entry), "status": "from_staging", "note": "raw file destroyed by retention; staging kept",
                          "rows_out": rows, **table_meta(rows, kept.names, declared)}
            )
        raise Failure(f"{entry.rel_path}: the landed file and its pseudonymous record are both missing")
    accepted_rows, _ = validation_paths(c2c_paths.linkage_dir, entry)
    if not accepted_rows.exists():
        raise Failure(f"{entry.rel_path} has not been validated; materialise validated_file first")
    protected, rows_in, not_taken = protect_entry(entry, zone, partnership.load(), keyset, accepted_rows)
    meta_common = {"source_sha256": str(entry.sha256), "manifest_id": str(entry.id), **{f"key_{k}": v for k, v in protected.key_labels.items()}}
    # encodings first: the pseudonymous record is written last and marks the file as done (a run killed
    # in between leaves no staging file, and `c2c run` resumes the file's intake; see pipelines/runner.py)
    if protected.encodings is not None:
        _write_parquet(protected.encodings, encodings_path, meta_common)
    _write_parquet(protected.staging, staging_path, meta_common)
    return MaterializeResult(
        metadata={
            **file_identity(entry),
            "status": "protected",
            "source_file": entry.rel_path,
            "source_sha256": str(entry.sha256),
            "tokenized_at_source": entry.tokenized,
            "rows_in": rows_in,
            "rows_not_taken": not_taken,
            "rows_out": len(protected.staging),
            "encoded_rows": 0 if protected.encodings is None else len(protected.encodings),
            "key_ids": MetadataValue.json(protected.key_labels),
            "landing_key": _landing_label(landed),
            "dropped_identifiers": MetadataValue.json(protected.dropped),
            "staging_path": MetadataValue.path(str(staging_path)),
            "encodings_path": MetadataValue.path(str(encodings_path)) if protected.encodings is not None else "",
            # lineage as the protection step reports it (row_number: the row's position, no field)
            **table_meta(len(protected.staging), list(protected.staging.columns), {**protected.column_lineage, lineage.ROW_NUMBER: []}),
        }
    )


def _landing_label(path: Path) -> str:
    from data_sharing.landing import read_header

    return read_header(path).key_label
