"""The local Dagster instance under the data directory (``DAGSTER_HOME``), written on first use."""

import os
from pathlib import Path

LOCAL_DAGSTER_YAML = """\
# Dagster instance for c2c (written by c2c; edit freely). For PostgreSQL storage see docs/dagster.postgres.yaml.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      # One intake run at a time: the manifest's snapshot rules are applied in arrival order.
      - key: "c2c/stage"
        value: "intake"
        limit: 1
"""


def ensure_dagster_home(dagster_home: Path) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml if it has none, and point this process at it."""
    dagster_home = Path(dagster_home).absolute()
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home
