"""Issue 20 finding 11 (keys, schema names).

Before the fix: with its key file gone, ``c2c keys init`` silently made a new key set for a hub whose
landing zone held data it then could not read, and every key error suggested ``keys init``; and
``information_schema`` was accepted as the warehouse schema. Now ``keys init`` refuses while the
landing zone or linkage area holds data (``--force-new-hub`` overrides), key errors suggest it only
where no data exists, and PostgreSQL's reserved schema names are refused in one line. The CLI runs as
a subprocess, as people use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_sharing.keys import key_error_hint
from warehouse.db import make_engine, schema_problem

REPO = Path(__file__).resolve().parents[2]


def _c2c(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C2C_")}
    env.update(C2C_HOME=str(home), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *argv, "--home", str(home)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_keys_init_refuses_a_hub_that_holds_data(tmp_path: Path) -> None:
    home = tmp_path / "hub"
    landed = home / "landing" / "fps" / "students_20260815.csv.sha256.enc"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(b"ciphertext under the lost key")
    refused = _c2c(home, "keys", "init")
    assert refused.returncode == 2 and not (home / "keys" / "master.key").exists()
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "already holds data" in lines[0] and "--force-new-hub" in lines[0] and "Traceback" not in refused.stderr
    forced = _c2c(home, "keys", "init", "--force-new-hub")
    assert forced.returncode == 0 and (home / "keys" / "master.key").exists(), forced.stderr
    assert _c2c(home, "keys", "init", "--force-new-hub").returncode == 2  # never over an existing key file


def test_keys_init_on_a_new_hub(tmp_path: Path) -> None:
    home = tmp_path / "new"
    (home / "landing").mkdir(parents=True)  # empty folders are not data
    done = _c2c(home, "keys", "init")
    assert done.returncode == 0 and "linkage_hub: linkage_hub/v1/" in done.stdout and "audit: audit/v1/" in done.stdout


def test_key_errors_suggest_keys_init_only_without_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("C2C_MASTER_KEY", raising=False)
    monkeypatch.delenv("C2C_KEY_FILE", raising=False)
    empty, full = tmp_path / "empty", tmp_path / "full"
    (full / "linkage" / "encodings").mkdir(parents=True)
    (full / "linkage" / "encodings" / "x.parquet").write_bytes(b"PAR1")
    assert "c2c keys init" in key_error_hint(empty / "landing", empty / "linkage")
    hint = key_error_hint(full / "landing", full / "linkage")
    assert "keys init" not in hint and "restore its key file" in hint
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings

    settings = Settings.from_env({"C2C_HOME": str(full)})
    summary = run_pipeline(settings, settle_s=0, echo=lambda _m: None)
    assert summary.error and "restore its key file" in summary.error and "keys init" not in summary.error


@pytest.mark.parametrize("name", ["information_schema", "pg_catalog", "pg_toast", "pg_temp_1", "pg_c2c"])
def test_reserved_schema_names_are_refused(name: str) -> None:
    problem = schema_problem(name)
    assert problem is not None and "reserved" in problem and "\n" not in problem
    with pytest.raises(ValueError, match="is reserved by PostgreSQL"):
        make_engine("postgresql+psycopg2://127.0.0.1:5432/test", name)  # refused before connecting


@pytest.mark.parametrize("name", ["c2c", "public", "warehouse_2026", "_c2c"])
def test_ordinary_schema_names_pass(name: str) -> None:
    assert schema_problem(name) is None
