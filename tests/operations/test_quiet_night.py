"""Issue 16 item 3 / issue 17 item 6: run it again and nothing changes, audit log included.

A second `c2c run` with nothing new does no linkage, loads nothing, publishes no release and writes no
audit entry; a changed file after that is taken in and published as the next release.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, func, select

from tests.operations.ops_support import BIN, city_env, small_city, subprocess_env
from warehouse.audit import read_entries
from warehouse.models import Release
from warehouse.releases import current_release


def _run(home: Path, drop: Path, key: str) -> str:
    env = subprocess_env(city_env(home, drop, C2C_MASTER_KEY=key))
    proc = subprocess.run([str(BIN / "c2c"), "run", "--settle", "0"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _state(home: Path) -> tuple[int | None, int, list[str]]:
    engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
    try:
        info = current_release(engine)
        with engine.connect() as conn:
            releases = conn.execute(select(func.count()).select_from(Release.__table__)).scalar_one()
        return (info.release_id if info else None), int(releases), [e.event_type for e in read_entries(engine)]
    finally:
        engine.dispose()


def test_a_quiet_night_changes_nothing_and_a_changed_file_publishes(tmp_path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    drop = small_city(tmp_path / "city")
    home = tmp_path / "home"
    attendance = next(drop.glob("fps/attendance_*.csv")).read_text(encoding="utf-8")  # taken files leave the drop
    first = _run(home, drop, key)
    assert "nothing new" not in first
    release, releases, audit = _state(home)
    assert release == 1 and releases == 1 and audit.count("linkage_run") == 1 and "release" in audit
    crosswalk = home / "linkage" / "crosswalk.parquet"
    stamp = crosswalk.stat().st_mtime_ns

    second = _run(home, drop, key)
    assert "nothing new since release 1" in second
    assert _state(home) == (1, 1, audit)  # same release, no new release row, not one new audit entry
    assert crosswalk.stat().st_mtime_ns == stamp  # no relink

    # one agency re-sends its attendance as a later snapshot with one row fewer: a new night in full
    lines = attendance.splitlines(keepends=True)
    (drop / "fps" / "attendance_20260901.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    third = _run(home, drop, key)
    assert "nothing new" not in third and "attendance_20260901.csv: accepted" in third
    release3, releases3, audit3 = _state(home)
    assert (release3, releases3) == (2, 2)
    assert audit3[: len(audit)] == audit and len(audit3) > len(audit)
