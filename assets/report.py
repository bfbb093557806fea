"""The cabinet's report: after every release, the static site of the current release (thin: the builder is
``warehouse.reports.cabinet``)."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from assets import names
from assets.resources import C2CPaths, PartnershipResource, WarehouseResource
from assets.retries import IO_RETRY, retry_transient_only
from warehouse.reports.cabinet import ReportError, build_cabinet_report

REPORTS_DIR = "reports"


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
    try:
        result = build_cabinet_report(warehouse.engine(), Path(c2c_paths.home) / REPORTS_DIR, partnership=partnership.load())
    except ReportError as exc:  # a new hub before its first release: nothing to report yet
        context.log.warning(str(exc))
        return MaterializeResult(metadata={"written": False, "status": str(exc)})
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
