"""Privacy asset: one accepted file, read from the encrypted landing zone in memory, split into a
pseudonymous record and linkage encodings in the linkage area (``stages.protect``). Nothing raw leaves this step.
"""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets import lineage, names
from assets.partitions import drop_files
from assets.per_file import file_identity
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only, stage_failures
from stages.protect import ProtectedFile, protect_file


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
    with stage_failures():
        done = protect_file(
            context.partition_key, warehouse.manifest(), partnership.load(), keys.load,
            landing=Path(c2c_paths.landing_dir), linkage=Path(c2c_paths.linkage_dir),
        )
    return MaterializeResult(metadata=protection_metadata(done, Path(c2c_paths.linkage_dir)))


def protection_metadata(done: ProtectedFile, linkage_dir: Path) -> dict:
    entry = done.entry
    if done.contract is None:  # a duplicate whose extract no MOU permits any more
        return {**file_identity(entry), "status": "duplicate", "note": "same content already protected",
                **lineage.table_metadata(entry.rel_path, 0, lineage.extract_schema(None), None)}
    contract, declared = done.contract, lineage.staging_lineage(done.contract)

    def table_meta(rows: int, columns, deps: dict) -> dict:  # type: ignore[no-untyped-def]
        return lineage.table_metadata(
            str(done.staging_path.relative_to(linkage_dir)), rows, lineage.staging_schema(contract, columns),
            lineage.lineage_to(names.INTAKE_FILE, {c: deps[c] for c in columns if c in deps}),
        )

    if done.status == "duplicate":
        return {**file_identity(entry), "status": "duplicate", "note": "same content already protected",
                **table_meta(0, list(declared), declared)}
    columns = list(done.columns or ())
    if done.status == "from_staging":
        return {**file_identity(entry), "status": "from_staging", "note": "raw file destroyed by retention; staging kept",
                "rows_out": done.rows_out, **table_meta(done.rows_out, columns, declared)}
    return {
        **file_identity(entry),
        "status": "protected",
        "source_file": entry.rel_path,
        "source_sha256": str(entry.sha256),
        "tokenized_at_source": entry.tokenized,
        "rows_in": done.rows_in,
        "rows_not_taken": done.rows_not_taken,
        "rows_out": done.rows_out,
        "encoded_rows": done.encoded_rows,
        "key_ids": MetadataValue.json(dict(done.key_labels)),
        "landing_key": done.landing_key,
        "dropped_identifiers": MetadataValue.json(list(done.dropped)),
        "staging_path": MetadataValue.path(str(done.staging_path)),
        "encodings_path": MetadataValue.path(str(done.encodings_path)) if done.encodings_path is not None else "",
        # lineage as the protection step reports it (row_number: the row's position, no field)
        **table_meta(done.rows_out, columns, {**done.column_lineage, lineage.ROW_NUMBER: []}),
    }
