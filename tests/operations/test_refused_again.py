"""A refused file left unchanged in the drop folder stays refused on later nights (exit 3, the same reason)
until the agency replaces or removes it: cron keeps flagging it (before, the next night said "1 already
processed" and exited 0). It is not taken in again: no new run, no new feedback file, no audit entry, and
the quiet night publishes nothing. (A removed file: tests/pipelines/test_cli.py, in-process, cheaper.)

Driven through the `c2c` command as cron runs it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy import create_engine, func, select

from tests.conftest import students_csv
from tests.operations.ops_support import BIN, city_env, subprocess_env
from tests.pipelines.test_cli import CLIENTS_REASON, CLIENTS_WITH_SSN
from warehouse.audit import read_entries
from warehouse.models import IntakeManifest, Release

REFUSED = "dhs/clients_20260815.csv"


def _run(home: Path, drop: Path) -> tuple[int, str]:
    proc = subprocess.run([str(BIN / "c2c"), "run", "--settle", "0"], env=subprocess_env(city_env(home, drop)),
                          capture_output=True, text=True, timeout=600)
    assert proc.stderr == "" or "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout


def _state(home: Path) -> tuple[int, int, int]:
    """(manifest rows, releases, audit entries) in the hub's warehouse."""
    engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
    try:
        with engine.connect() as conn:
            manifest = conn.execute(select(func.count()).select_from(IntakeManifest.__table__)).scalar_one()
            releases = conn.execute(select(func.count()).select_from(Release.__table__)).scalar_one()
        return int(manifest), int(releases), len(read_entries(engine))
    finally:
        engine.dispose()


def _feedback(drop: Path) -> dict[str, int]:
    return {p.relative_to(drop).as_posix(): p.stat().st_mtime_ns for p in sorted(drop.rglob("feedback/*"))}


def test_a_refused_file_stays_refused_until_replaced(drop: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (drop / "fps/students_20260815.csv").write_bytes(students_csv(3))
    (drop / REFUSED).write_bytes(CLIENTS_WITH_SSN)
    refused_line = f"{REFUSED}: REFUSED - {CLIENTS_REASON}"

    code, first = _run(home, drop)
    assert code == 3, first
    assert f"  [1/2] {refused_line}\n" in first
    assert "  files: 1 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in first
    state, feedback = _state(home), _feedback(drop)
    assert state[:2] == (2, 1) and len(feedback) == 4

    # the next night: the file is still there, as it was (before: "1 already processed", exit 0)
    code, again = _run(home, drop)
    assert code == 3, again
    assert f"c2c: drop folder {drop}: 1 complete file(s), 0 to take in" in again
    assert f"  {refused_line} (refused on an earlier night and unchanged since: replace or remove the file)\n" in again
    assert "[1/" not in again  # not taken in again
    assert "  files: 0 accepted, 1 refused, 0 duplicate, 0 already processed, 0 failed" in again
    assert "nothing new since release 1" in again
    assert _state(home) == state  # no manifest row, no release, no audit entry
    assert _feedback(drop) == feedback  # no feedback file written again
