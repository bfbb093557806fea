"""Jobs: intake of one dropped file, and the nightly cross-agency run."""

from dagster import AssetSelection, define_asset_job

from assets import names

intake_job = define_asset_job(
    name="intake_job",
    selection=AssetSelection.assets(*names.PER_FILE_ASSETS),
    description="Intake of one dropped file (one run per file; started by the drop-folder sensor or `c2c run`).",
    tags={names.TAG_STAGE: "intake"},
)

# Everything downstream of the per-file stages: the cross-agency part of the graph.
nightly_job = define_asset_job(
    name="nightly_job",
    selection=AssetSelection.all() - AssetSelection.assets(*names.PER_FILE_ASSETS),
    description="The nightly cross-agency run: current snapshots, then the stages after them.",
    tags={names.TAG_STAGE: "nightly"},
)
