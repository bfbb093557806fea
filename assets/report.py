"""The cabinet's report: after every release, the static site of the current release (thin: the stage is
``stages.report``, the builder ``warehouse.reports.cabinet``)."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets import names
from assets.resources import C2CPaths, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from stages.report import write_cabinet_report


@asset(
    name=names.CABINET_REPORT,
    deps=[names.INDICATOR_RELEASE],
    group_name=names.GROUP_INDICATORS,
    kinds={"html"},
    owners=["team:city-data-office"],
    tags={"c2c/tier": "public"},
    description=(
        "The cabinet's report of the current release: a static site (index.html and a page per indicator, beside "
        "the release's audit.html) under <home>/reports/<release_id>/, with trends, disaggregations, the school "
        "tables and suppression shown as such. Reads the public tier only; opens offline (no server, no fetch)."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def cabinet_report(
    context: AssetExecutionContext, c2c_paths: C2CPaths, warehouse: WarehouseResource, partnership: PartnershipResource
) -> MaterializeResult:
    outcome = write_cabinet_report(warehouse.engine(), Path(c2c_paths.home), partnership.load())
    if outcome.result is None:  # a new hub before its first release: nothing to report yet
        context.log.warning(str(outcome.status))
        return MaterializeResult(metadata={"written": False, "status": str(outcome.status)})
    result = outcome.result
    return MaterializeResult(
        metadata={
            "written": True,
            "release_id": result.release_id,
            "index": MetadataValue.path(str(result.directory / "index.html")),
            "pages": len(result.pages),
            "charts": result.charts,
            "seconds": result.seconds,
        }
    )
