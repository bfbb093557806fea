"""Issue 16 item 3: a night with one new file redoes only what the file touches, and publishes exactly
what a full rebuild from the same files publishes.

Two hubs with the same key: ``inc`` takes the city's files on night 1 and a later attendance snapshot on
night 2; ``clean`` takes all of them in one run. Attendance is an event extract: linkage reads only person
extracts (and the guards' source extracts), so night 2 does not re-link; only the attendance table is
reloaded; only the indicators reading it (chronic absence, by role ``school_attendance``) are recomputed,
the others are copied from release 1. The published rows, the manifest and the warehouse rows of the two
hubs are the same (child keys compared through the crosswalk: each hub draws its own child-key salt).
Night 3, a corrected re-send of a person extract (clients), re-links.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, select

from schemas.indicators import load_indicator_definitions
from schemas.roles import ROLES
from tests.operations.ops_support import BIN, city_env, small_city, subprocess_env
from warehouse.audit import read_entries
from warehouse.models import IntakeManifest, LoadedFile
from warehouse.releases import current_indicator_values, tables_read

MANIFEST_COLUMNS = ("rel_path", "sha256", "size_bytes", "agency", "extract", "as_of_date", "rows", "duplicate_rows",
                    "period_rows", "status", "reason_code", "mou_id", "mou_version")


def _run(home: Path, drop: Path, key: str) -> str:
    env = subprocess_env(city_env(home, drop, C2C_MASTER_KEY=key))
    proc = subprocess.run([str(BIN / "c2c"), "run", "--settle", "0"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _engine(home: Path):  # type: ignore[no-untyped-def]
    return create_engine(f"sqlite:///{home / 'warehouse.db'}")


def _published(home: Path) -> pd.DataFrame:
    engine = _engine(home)
    try:
        return current_indicator_values(engine).drop(columns=["release_id"])
    finally:
        engine.dispose()


def _manifest(home: Path) -> list[tuple]:  # type: ignore[type-arg]
    engine = _engine(home)
    m = IntakeManifest.__table__
    try:
        with engine.connect() as conn:
            by_id = {r.id: r.sha256 for r in conn.execute(select(m.c.id, m.c.sha256))}
            rows = conn.execute(select(*(m.c[c] for c in MANIFEST_COLUMNS), m.c.superseded_by)).all()
    finally:
        engine.dispose()
    return sorted((*r[:-1], by_id.get(r[-1])) for r in rows)  # superseded_by as the superseding file's SHA-256


def _warehouse(home: Path) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    """Every role table's rows without manifest ids (files by SHA-256), child keys as the smallest source
    key of their crosswalk cluster; and the loaded files (agency, extract, SHA-256, periods, rows)."""
    cw = pd.read_parquet(home / "linkage" / "crosswalk.parquet")
    anchor = cw.groupby("child_key")["source_key"].min().to_dict()
    engine = _engine(home)
    out: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
    try:
        with engine.connect() as conn:
            for table in sorted({r.table for r in ROLES.values()}):
                frame = pd.read_sql_table(table, conn).drop(columns=["manifest_id"])
                frame["child_key"] = frame["child_key"].map(lambda k: anchor.get(k, f"unlinked:{k}") if k is not None else None)
                out[table] = sorted(map(tuple, frame.astype(str).to_numpy().tolist()))
            lf = LoadedFile.__table__
            out["loaded_files"] = sorted(tuple(r) for r in conn.execute(select(lf.c.agency, lf.c.extract, lf.c.sha256, lf.c.periods, lf.c.rows)))
    finally:
        engine.dispose()
    return out


def _events(home: Path) -> list[str]:
    engine = _engine(home)
    try:
        return [e.event_type for e in read_entries(engine)]
    finally:
        engine.dispose()


def _reused(home: Path) -> list[str]:
    """The indicators the latest release copied from the previous one (its Dagster metadata)."""
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        event = instance.get_latest_materialization_event(AssetKey("indicator_release"))
        assert event is not None and event.asset_materialization is not None
        return list(event.asset_materialization.metadata["reused_indicators"].value)  # type: ignore[arg-type]


def test_one_new_event_file_redoes_only_what_it_touches_and_equals_a_clean_run(tmp_path: Path) -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    city = small_city(tmp_path / "city")
    attendance = next(city.glob("fps/attendance_*.csv"))
    later = "".join(attendance.read_text(encoding="utf-8").splitlines(keepends=True)[:-1])  # one row fewer
    inc_drop, clean_drop = tmp_path / "inc_drop", tmp_path / "clean_drop"
    shutil.copytree(city, inc_drop)
    shutil.copytree(city, clean_drop)
    (clean_drop / "fps" / "attendance_20260901.csv").write_text(later, encoding="utf-8")
    inc, clean = tmp_path / "inc", tmp_path / "clean"

    _run(inc, inc_drop, key)
    night1 = _events(inc)
    crosswalk = inc / "linkage" / "crosswalk.parquet"
    stamp = crosswalk.stat().st_mtime_ns
    (inc_drop / "fps" / "attendance_20260901.csv").write_text(later, encoding="utf-8")
    second = _run(inc, inc_drop, key)
    assert "attendance_20260901.csv: accepted" in second
    night2 = _events(inc)[len(night1):]
    assert "linkage_run" not in night2 and crosswalk.stat().st_mtime_ns == stamp  # no re-link
    loads = [e for e in night2 if e == "warehouse_load"]
    assert len(loads) == 1 and "release" in night2  # one table reloaded (attendance), one new release

    # Indicators whose definitions read the attendance table are recomputed; every other one is copied.
    definitions = load_indicator_definitions()
    reads_attendance = {d.indicator for d in definitions.values() if ROLES["school_attendance"].table in tables_read(d)}
    assert reads_attendance and set(_reused(inc)) == {d.indicator for d in definitions.values()} - reads_attendance

    _run(clean, clean_drop, key)
    published_inc, published_clean = _published(inc), _published(clean)
    assert len(published_clean) > 0
    pd.testing.assert_frame_equal(published_inc, published_clean)
    engine = _engine(inc)
    try:  # the new snapshot moved the recomputed indicators (copying release 1's rows would be caught above)
        first = current_indicator_values(engine, release_id=1).drop(columns=["release_id"])
    finally:
        engine.dispose()
    changed = published_inc.merge(first, how="outer", indicator=True).query("_merge != 'both'")
    assert len(changed) > 0 and set(changed["indicator"]) <= reads_attendance
    assert _manifest(inc) == _manifest(clean)
    assert _warehouse(inc) == _warehouse(clean)

    # Night 3: the agency re-sends its person extract, corrected (one row fewer): linkage runs again.
    clients = next(city.glob("dhs/clients_*.csv"))
    lines = clients.read_text(encoding="utf-8").splitlines(keepends=True)
    (inc_drop / "dhs" / "clients_20260902.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    before = len(_events(inc))
    _run(inc, inc_drop, key)
    night3 = _events(inc)[before:]
    assert night3.count("linkage_run") == 1 and "release" in night3
    record = json.loads((inc / "linkage" / "release_inputs.json").read_text(encoding="utf-8"))
    assert record["release_id"] == 3 and set(record["tables"]) == {r.table for r in ROLES.values()}
