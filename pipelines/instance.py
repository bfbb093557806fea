"""The local Dagster instance under the data directory (``DAGSTER_HOME``), written on first use."""

from pathlib import Path

from pipelines.settings import point_dagster_at

RUN_MONITORING_YAML = """\
# Runs whose process died do not stay STARTED (the daemon's run monitoring): a run still STARTING after
# 3 minutes, or running for over 6 hours, is marked failed. `c2c run` also marks failed, at start, the
# runs of a local process that is gone (the local run launcher cannot report a worker's health).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_runtime_seconds: 21600
  poll_interval_seconds: 60
"""

LOCAL_DAGSTER_YAML = """\
# Dagster instance for c2c (written by c2c; edit freely). For PostgreSQL storage see deploy/dagster.postgres.yaml.
telemetry:
  enabled: false
nux:
  enabled: false  # no sign-up prompt in the UI (auditors use it offline)
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      # One intake run at a time: the manifest's snapshot rules are applied in arrival order.
      - key: "c2c/stage"
        value: "intake"
        limit: 1
""" + RUN_MONITORING_YAML


def ensure_dagster_home(dagster_home: Path) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml if it has none (and turn run monitoring on in one written
    by an earlier c2c), and point this process at it."""
    dagster_home = Path(dagster_home).absolute()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_DAGSTER_YAML, encoding="utf-8")
    elif "run_monitoring:" not in config.read_text(encoding="utf-8"):
        with open(config, "a", encoding="utf-8") as fh:
            fh.write("\n" + RUN_MONITORING_YAML)
    point_dagster_at(dagster_home)
    return dagster_home
