"""Validation asset: the extract's Great Expectations suite (built from its contract) over one accepted file.

The work is the validation stage's (``stages.validate``); here: resolve the resources, call it, and map its
result to metadata and the blocking ``validation_passed`` check. File-level failures refuse the whole file;
row-level failures go to quarantine; the agency gets a feedback report next to its file.
"""

from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets import names
from assets.partitions import drop_files
from assets.per_file import OUTCOME, file_identity, file_table, refusal_or_result
from assets.resources import C2CPaths, KeysResource, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only, stage_failures
from stages.validate import FileValidation, validate_landed


@asset(
    name=names.VALIDATED_FILE,
    partitions_def=drop_files,
    deps=[names.INTAKE_FILE],
    group_name=names.GROUP_VALIDATION,
    kinds={"python", "great_expectations"},
    owners=["team:city-data-office"],
    description=(
        "One accepted file validated with its extract's Great Expectations suite, generated from schemas/: "
        "file-level failures refuse it, failing rows go to an encrypted quarantine, warnings are reported, "
        "and the agency gets a feedback report in <drop>/<agency>/feedback/. Metadata: the file, SHA-256, MOU, rows "
        "in/accepted/quarantined/refused; its columns are the contract's, each from the same intake_file column."
    ),
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_VALIDATION_PASSED,
            asset=names.VALIDATED_FILE,
            blocking=True,
            description="No file-level rule failed; a refused file stops everything downstream.",
        )
    ],
    op_tags={names.TAG_STAGE: "intake"},
    retry_policy=IO_RETRY,
    output_required=False,
)
@retry_transient_only
def validated_file(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> Iterator[MaterializeResult | AssetMaterialization | AssetCheckResult]:
    with stage_failures():
        checked = validate_landed(
            context.partition_key, warehouse.manifest(), partnership.load(), keys.load,
            drop=c2c_paths.drop, landing=Path(c2c_paths.landing_dir), linkage=Path(c2c_paths.linkage_dir),
            data_docs_dir=Path(c2c_paths.home) / "data_docs" if c2c_paths.data_docs else None,
        )
    if checked.status in ("duplicate", "from_earlier_validation"):
        check_ok = AssetCheckResult(check_name=names.CHECK_VALIDATION_PASSED, passed=True)
        yield MaterializeResult(metadata=_short_metadata(checked), check_results=[check_ok])
        return
    yield from refusal_or_result(
        names.VALIDATED_FILE, names.CHECK_VALIDATION_PASSED, validation_metadata(checked), partition=context.partition_key,
        refused=" ".join(checked.refused_reasons) or None, check_metadata={"rows_quarantined": checked.rows_quarantined},
    )


def _table_meta(checked: FileValidation, rows: int) -> dict:
    """The contract's columns, each from the same intake_file column."""
    same = {c: [c] for c in (checked.contract.columns if checked.contract is not None else ())}
    return file_table(checked.entry, checked.contract, rows, same)


def _short_metadata(checked: FileValidation) -> dict:
    """A duplicate (nothing validated), or a file whose raw copy retention destroyed (validated earlier)."""
    entry = checked.entry
    if checked.status == "duplicate":
        return {**file_identity(entry), "status": "duplicate", OUTCOME: "duplicate", "rows_in": entry.rows or 0,
                "rows_accepted": 0, "rows_quarantined": 0, "rows_refused": 0, **_table_meta(checked, 0)}
    rows = checked.rows_accepted
    return {**file_identity(entry), "status": "from_earlier_validation", OUTCOME: "validated",
            "note": "raw file destroyed by retention", "rows_accepted": rows, **_table_meta(checked, rows)}


def validation_metadata(checked: FileValidation) -> dict:
    entry = checked.entry
    meta = {
        **file_identity(entry),
        "status": checked.status,
        "source_file": entry.rel_path,
        "source_sha256": str(entry.sha256),
        "suite": checked.suite,
        "rows_in": checked.rows_in,
        "rows_accepted": checked.rows_accepted,
        "rows_quarantined": checked.rows_quarantined,
        "rows_refused": checked.rows_refused,
        "rows_repeated": checked.rows_repeated,
        "problems_by_rule": MetadataValue.json(dict(checked.problems)),
        "expectations": MetadataValue.json([dict(e) for e in checked.expectations]),
        "feedback_report": MetadataValue.path(checked.feedback_report) if checked.feedback_report else "",
        "quarantine_file": checked.quarantine_file,
        "data_docs": MetadataValue.path(checked.data_docs) if checked.data_docs else "",
        **_table_meta(checked, checked.rows_accepted),
    }
    meta[OUTCOME] = checked.status
    return meta
