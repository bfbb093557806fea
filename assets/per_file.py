"""What every per-file materialisation (intake_file, validated_file, protected_file) carries: the file's
identity, its table keys, its ``outcome``, and the refused-or-result ending of a per-file step."""

from collections.abc import Iterator

from dagster import AssetCheckResult, AssetCheckSeverity, AssetMaterialization, MaterializeResult, MetadataValue

from assets import lineage, names
from warehouse.manifest import ManifestEntry

OUTCOME = "outcome"
"""Metadata key of every per-file materialisation: ``accepted``, ``refused``, ``duplicate``, ``superseded``, ``validated``, ``protected``."""


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
