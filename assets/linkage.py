"""Linkage asset: thin; the stage is :func:`stages.linkage.link_persons` (gather the current encodings, link
them, write the crosswalk ``source_key -> child_key``, quality and review queue to the linkage area).
The warehouse gets child keys only through this crosswalk; the crosswalk itself never enters the warehouse.
"""

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
from stages.linkage import STATUS_SKIPPED, LinkageOutcome, link_persons


def _crosswalk_table(rows: int) -> dict:
    schema, deps = lineage.crosswalk_lineage()
    return lineage.table_metadata(LinkageArea.CROSSWALK, rows, schema, deps)


def _unlinked(outcome: LinkageOutcome) -> MaterializeResult:
    """No person extracts yet, or no model could be trained yet: the check warns; the next night tries again."""
    reason = str(outcome.reason)
    meta = {"status": outcome.status, **({"reason": reason} if outcome.status == STATUS_SKIPPED else {})}
    return MaterializeResult(
        metadata={**meta, **_crosswalk_table(0)},
        check_results=[AssetCheckResult(check_name=names.CHECK_LINKAGE_RAN, passed=False,
                                        severity=AssetCheckSeverity.WARN, description=reason)],
    )


@asset(
    name=names.LINKED_PERSONS,
    deps=[names.CURRENT_SNAPSHOTS],
    group_name=names.GROUP_LINKAGE,
    kinds={"python", "duckdb"},
    owners=["team:city-data-office"],
    tags={"c2c/zone": "linkage-area"},
    check_specs=[
        AssetCheckSpec(
            name=names.CHECK_LINKAGE_RAN,
            asset=names.LINKED_PERSONS,
            description="A linkage model was available and the night's records were linked.",
        )
    ],
    description=(
        "Probabilistic linkage (Splink, Fellegi-Sunter) over the keyed-hash and Bloom-filter encodings only: "
        "dedupes within each agency, links across agencies, keeps a persistent child_key per person, queues "
        "uncertain pairs for pseudonymous review and reports linkage quality by agency pair and group. "
        "Its table is the crosswalk source_key -> child_key (linkage area; never in the warehouse)."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def linked_persons(
    context: AssetExecutionContext,
    c2c_paths: C2CPaths,
    warehouse: WarehouseResource,
    partnership: PartnershipResource,
    keys: KeysResource,
) -> MaterializeResult:
    try:
        outcome = link_persons(warehouse.manifest(), partnership.load(), keys.load(), LinkageArea(Path(c2c_paths.linkage_dir)),
                               warehouse.engine(), context.run.run_id)
    except MissingArtifactError as exc:
        raise Failure(str(exc)) from exc
    if not outcome.linked:
        if outcome.status == STATUS_SKIPPED:
            context.log.warning(str(outcome.reason))
        return _unlinked(outcome)
    if outcome.reason:  # unchanged inputs: the crosswalk stands (stages.incremental)
        context.log.info(str(outcome.reason))
    return MaterializeResult(
        check_results=[AssetCheckResult(check_name=names.CHECK_LINKAGE_RAN, passed=True, description=outcome.reason)],
        metadata={
            "status": outcome.status,
            "model": str(outcome.model),
            "backend": str(outcome.backend or "duckdb"),
            "model_trained_this_run": outcome.trained_now,
            "key_ids": MetadataValue.json(dict(outcome.key_ids)),
            **{name: MetadataValue.json(value) for name, value in outcome.shown_quality.items()},
            "review_queue": outcome.review_queue,
            "history_changes": outcome.history_changes,
            "crosswalk_rows": outcome.crosswalk_rows,
            "rekeyed_after_rotation": outcome.rekeyed,
            "source_sha256": MetadataValue.json(list(outcome.sources)),
            **_crosswalk_table(outcome.crosswalk_rows),
        }
    )
