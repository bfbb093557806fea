"""Data-quality scorecard asset: per agency and extract, over time, the share of rows accepted and the
problems that keep coming back (``stages.scorecard``)."""

from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, TableColumn, TableSchema, asset

from assets import lineage, names
from assets.resources import C2CPaths
from assets.retries import IO_RETRY, retry_transient_only
from stages.scorecard import REPORT, SCORECARD_COLUMNS, Scorecard, score_data_quality


@asset(
    name=names.DATA_QUALITY_SCORECARD,
    deps=[names.CURRENT_SNAPSHOTS],
    group_name=names.GROUP_VALIDATION,
    kinds={"python"},
    owners=["team:city-data-office"],
    description=(
        "Per agency and extract, over time: share of rows accepted and the top recurring problems, from the "
        "per-file validation summaries (counts and rule names only); written to reports/data_quality_scorecard.json."
    ),
    retry_policy=IO_RETRY,
)
@retry_transient_only
def data_quality_scorecard(context: AssetExecutionContext, c2c_paths: C2CPaths) -> MaterializeResult:
    scored = score_data_quality(Path(c2c_paths.linkage_dir), Path(c2c_paths.home))
    return MaterializeResult(
        metadata={
            "scorecard": MetadataValue.md(scorecard_table(scored)),
            "scorecard_file": MetadataValue.path(str(scored.report)),
            "agencies": len(scored.cards),
            **lineage.table_metadata(
                REPORT.as_posix(), scored.rows,
                TableSchema(columns=[TableColumn(n, t) for n, t in SCORECARD_COLUMNS.items()]), None,
            ),
        }
    )


def scorecard_table(scored: Scorecard) -> str:
    lines = ["| agency | extract | files | rows | accepted | quarantined | refused | top problem |", "|---|---|---|---|---|---|---|---|"]
    for agency, extracts in sorted(scored.cards.items()):
        for extract, c in sorted(extracts.items()):
            share = f"{c['share_accepted']:.1%}" if c["share_accepted"] is not None else "-"
            top = c["top_problems"][0][0] if c["top_problems"] else ""
            lines.append(f"| {agency} | {extract} | {c['files']} | {c['rows_in']:,} | {share} | {c['quarantined']:,} | {c['refused']:,} | {top} |")
    return "\n".join(lines)
