"""`c2c --help`, `c2c synth --help` and `c2c status` start quickly (issue 17): building the parser loads
neither the linkage package nor pandas, SQLAlchemy or Dagster, and `c2c status` reads the last run
without importing Dagster when the hub has Dagster's default (SQLite) storage.

What a command imported is read from ``sys.modules`` of a real `c2c` process (deterministic, unlike a
timing on a shared machine); the last-run line is checked against what ``DagsterInstance`` says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipelines.test_cli_hub import REPO, c2c, c2c_env

HEAVY = ("dagster", "pandas", "numpy", "sqlalchemy", "duckdb", "splink", "data_sharing.linkage", "stages.review", "synthetic")
PROBE = """
import json, sys
from pipelines.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split('.')[0] if not m.startswith('data_sharing.linkage') else 'data_sharing.linkage'
                for m in sys.modules if m.split('.')[0] in %r or m.startswith(('data_sharing.linkage', 'stages.review'))})
print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)
""" % ({h.split(".")[0] for h in HEAVY},)


def _probe(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    res = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=300, check=False)
    report = json.loads(res.stderr.strip().splitlines()[-1])
    return report["code"], report["heavy"], res.stdout


@pytest.mark.parametrize("args", [["--help"], ["synth", "--help"], ["run", "--help"], ["linkage", "review", "list", "--help"]])
def test_help_loads_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    code, heavy, out = _probe(args, c2c_env(tmp_path / "home"))
    assert code == 0 and "usage: c2c" in out
    assert heavy == [], heavy


def test_review_reasons_in_the_help_are_the_queue_reasons() -> None:
    from pipelines.cli import REVIEW_REASONS
    from stages.review import QUEUE_REASONS

    assert REVIEW_REASONS == QUEUE_REASONS


def test_status_reads_the_last_run_without_dagster(tmp_path: Path) -> None:
    """After a run of a small job in the hub's instance, `c2c status` names it as DagsterInstance does,
    and the process never imported Dagster."""
    env = c2c_env(tmp_path / "home")
    assert c2c("init", env=env).returncode == 0
    job_run = subprocess.run([sys.executable, "-c", RUN_ONE, str(tmp_path / "home" / "dagster")], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300, check=False)
    assert job_run.returncode == 0, job_run.stderr
    expected = json.loads(job_run.stdout.strip().splitlines()[-1])

    code, heavy, out = _probe(["status"], env)
    assert code == 0, out
    assert "dagster" not in heavy and "data_sharing.linkage" not in heavy, heavy
    line = next(x for x in out.splitlines() if x.lstrip().startswith("last run:"))
    assert line.endswith(f"  tiny_status_job  {expected['status']}, outcome refused  (run {expected['run_id'][:8]})"), line
    assert f" {expected['when']} UTC " in line

    # a declared storage section: the same line, read through DagsterInstance
    config = tmp_path / "home" / "dagster" / "dagster.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "\nrun_storage:\n  module: dagster._core.storage.runs\n"
                      "  class: SqliteRunStorage\n  config:\n    base_dir: " + str(tmp_path / "home" / "dagster" / "history") + "\n",
                      encoding="utf-8")
    code, heavy, out2 = _probe(["status"], env)
    assert code == 0 and "dagster" in heavy
    assert next(x for x in out2.splitlines() if x.lstrip().startswith("last run:")) == line


RUN_ONE = """
import datetime as dt, json, sys
from pathlib import Path
from dagster import DagsterInstance, job, op
from pipelines.instance import ensure_dagster_home

ensure_dagster_home(Path(sys.argv[1]))  # the instance `c2c run` writes

@op
def one():
    return 1

@job
def tiny_status_job():
    one()

with DagsterInstance.get() as instance:
    tiny_status_job.execute_in_process(instance=instance, tags={"c2c/outcome": "refused"})
    rec = instance.get_run_records(limit=1)[0]
    when = dt.datetime.fromtimestamp(rec.end_time, dt.timezone.utc)
    print(json.dumps({"run_id": rec.dagster_run.run_id, "status": rec.dagster_run.status.value.lower(),
                      "when": f"{when:%Y-%m-%d %H:%M}"}))
"""
