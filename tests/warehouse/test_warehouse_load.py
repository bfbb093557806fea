"""Bulk loads into the partner tier: idempotent, replace-by-set, period ownership, relinking, lenient parsing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

import warehouse.load as load_mod
from warehouse.audit import read_entries, verify
from warehouse.db import make_engine, upgrade
from warehouse.load import EXTRACT_TABLES, LoadError, load_current, loaded_files, relink_all
from warehouse.models import Base, Child, Enrolment, HealthEncounter
from warehouse_city import CROSSWALK, EXTRACTS, STUDENTS, frame, load_city, staged

NOW = dt.datetime(2026, 11, 24, 3, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    return e


def snapshot(engine: Engine) -> dict[str, pd.DataFrame]:
    """Every partner-tier table and loaded_files, sorted (loaded_at aside)."""
    names = [s.table.name for s in EXTRACT_TABLES.values()] + ["children", "loaded_files"]
    out = {}
    with engine.connect() as conn:
        for name in names:
            t = Base.metadata.tables[name]
            cols = [c for c in t.c if c.name != "loaded_at"]
            df = pd.DataFrame(conn.execute(select(*cols)).all(), columns=[c.name for c in cols])
            out[name] = df.sort_values(list(df.columns[:3])).reset_index(drop=True).astype(object)
    return out


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def enrolments(engine: Engine) -> pd.DataFrame:
    e = Enrolment.__table__
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(select(e).order_by(e.c.manifest_id, e.c.source_row)).mappings().all())


def test_loading_the_same_files_twice_changes_nothing(engine: Engine) -> None:
    first = load_city(engine)
    assert all(r.changed for r in first.values())
    before = snapshot(engine)
    audit_before = len(read_entries(engine))
    second = load_city(engine)
    assert not any(r.changed for r in second.values())
    assert all(r.rows_inserted == 0 and r.rows_deleted == 0 and r.files_kept for r in second.values())
    assert_same(before, snapshot(engine))
    assert len(read_entries(engine)) == audit_before  # nothing happened, nothing recorded
    assert verify(engine).ok
    counts = {k: (r.rows_total, r.rows_unlinked) for k, r in first.items()}
    assert counts["fps/students"] == (17, 1)  # s10 unlinked
    assert counts["fhd/immunizations"] == (10, 2)  # fhd-px unlinked
    assert counts["fps/attendance"] == (15, 1)


def test_replace_by_set(engine: Engine) -> None:
    v1 = staged("fps/students", 1)
    v2 = staged("fps/students", 2, STUDENTS[:3])
    load_current(engine, "fps/students", [v1], CROSSWALK, now=NOW)
    full = enrolments(engine)
    r = load_current(engine, "fps/students", [v2], CROSSWALK, now=NOW)
    assert (r.files_added, r.files_removed, r.rows_deleted, r.rows_inserted) == ((2,), (1,), 17, 3)
    assert set(enrolments(engine).manifest_id) == {2} and len(enrolments(engine)) == 3
    assert [f["manifest_id"] for f in loaded_files(engine)] == [2]
    load_current(engine, "fps/students", [v1], CROSSWALK, now=NOW)  # back to v1: same as a clean load
    pd.testing.assert_frame_equal(enrolments(engine), full)
    r = load_current(engine, "fps/students", [], CROSSWALK, now=NOW)  # an empty set empties the extract
    assert r.rows_total == 0 and loaded_files(engine) == []


def test_a_file_is_loaded_for_the_periods_it_is_current_for(engine: Engine) -> None:
    # File 1 holds 2025 and 2026; file 2 (a later snapshot) holds 2026 only, with s1 moved to WEST.
    rows_2026 = [r[:] for r in STUDENTS if r[11] == "2026"]
    rows_2026[0][9] = "WEST"
    old = staged("fps/students", 1, periods=frozenset({2025}))
    new = staged("fps/students", 2, rows_2026)
    load_current(engine, "fps/students", [old, new], CROSSWALK, now=NOW)
    df = enrolments(engine)
    assert set(df[df.manifest_id == 1].school_year) == {2025}
    assert set(df[df.manifest_id == 2].school_year) == {2026}
    assert df[(df.source_key == "fps-s1")].school_id.tolist() == ["WEST"]
    # The same file later current for no period of its own any more: reloaded with the new periods.
    r = load_current(engine, "fps/students", [staged("fps/students", 1, periods=frozenset({2025, 2027})), new], CROSSWALK, now=NOW)
    assert r.files_added == (1,) and r.files_removed == (1,) and r.files_kept == (2,)
    assert set(enrolments(engine).query("manifest_id == 1").school_year) == {2025, 2027}


def test_relinking_follows_the_crosswalk(engine: Engine) -> None:
    load_city(engine)
    cw = CROSSWALK.copy()
    cw.loc[cw.source_key == "fps-s10", "child_key"] = "C10"  # s10 now linked
    cw = cw[cw.source_key != "fps-s1"]  # s1 no longer linked
    r = load_current(engine, "fps/students", [staged("fps/students", 100)], cw, now=NOW)
    assert r.files_kept == (100,) and r.rows_inserted == 0 and r.rows_relinked == 2 and r.children_rebuilt
    df = enrolments(engine).set_index("source_key")
    assert df.loc["fps-s10", "child_key"] == "C10" and pd.isna(df.loc["fps-s1", "child_key"])
    changed = relink_all(engine, CROSSWALK)  # back to the original links, every table at once
    assert changed["school_enrolment"] == 2 and changed["school_attendance"] == 0  # by role
    df = enrolments(engine).set_index("source_key")
    assert pd.isna(df.loc["fps-s10", "child_key"]) and df.loc["fps-s1", "child_key"] == "C1"


def test_children_hold_non_identifying_attributes(engine: Engine) -> None:
    load_city(engine)
    c = Child.__table__
    with engine.connect() as conn:
        kids = {r.child_key: r for r in conn.execute(select(c))}
    assert set(kids) == {f"C{i}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)} | {"A1"}
    assert (kids["C1"].has_school_record, kids["C1"].has_health_record, kids["C1"].has_human_services_record) == (True, True, True)
    # The adult is in human services only; her attributes come from there.
    assert (kids["A1"].has_school_record, kids["A1"].has_health_record, kids["A1"].birth_year_month) == (False, False, "1988-04")
    assert set(c.c.keys()) == {"child_key", "birth_year_month", "sex", "has_school_record", "has_health_record", "has_human_services_record"}


def test_lenient_parsing_duplicates_and_blanks(engine: Engine) -> None:
    rows = [
        ["fps-a", "2019-05", "F", "HI", "N", "N", "N", "N", "021", "EAST", "KG", "2026", "2025-13-40", ""],  # bad date
        ["fps-b", "", " M ", "WH", "N", "N", "N", "N", "", "EAST", "KG", "twenty", "2025-08-20", "2026-01-01"],  # bad int
        ["fps-b", "", " M ", "WH", "N", "N", "N", "N", "", "EAST", "KG", "twenty", "2025-08-20", "2026-01-01"],  # exact repeat
        ["", "2019-05", "F", "HI", "N", "N", "N", "N", "021", "EAST", "KG", "2026", "2025-08-20", ""],  # no source_key
    ]
    f = staged("fps/students", 7, rows)
    r = load_current(engine, "fps/students", [f], CROSSWALK, now=NOW)
    assert (r.rows_inserted, r.duplicate_rows, r.rows_skipped, r.rows_unlinked) == (2, 1, 1, 2)
    df = enrolments(engine).set_index("source_key")
    assert pd.isna(df.loc["fps-a", "enroll_date"]) and df.loc["fps-a", "school_year"] == 2026
    assert pd.isna(df.loc["fps-b", "school_year"]) and df.loc["fps-b", "sex"] == "M"
    assert df.loc["fps-b", "exit_date"] == dt.date(2026, 1, 1) and pd.isna(df.loc["fps-b", "zip3"])


def test_text_survives_bulk_load(engine: Engine) -> None:
    odd = 'Z00,"12"\nnext, ünïcode \\N'
    rows = [["e1", "fhd-p1a", "2025-07-01", "WELL_CHILD", odd], ["e2", "fhd-p1a", "2025-07-02", "WELL_CHILD", ""]]
    load_current(engine, "fhd/encounters", [staged("fhd/encounters", 3, rows)], CROSSWALK, now=NOW)
    t = HealthEncounter.__table__
    with engine.connect() as conn:
        got = dict(conn.execute(select(t.c.encounter_id, t.c.diagnosis_code)).all())
    assert got == {"e1": odd.strip(), "e2": None}


def test_refusals_and_rollback(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    f = staged("fps/students", 1)
    with pytest.raises(LoadError, match="unexpected column"):
        bad = f.frame.assign(id_token="x")
        load_current(engine, "fps/students", [load_mod.StagedFile("fps", "students", 1, f.sha256, bad)], CROSSWALK)
    with pytest.raises(LoadError, match="no table for extract"):
        load_current(engine, "fps/lunch", [], CROSSWALK)
    with pytest.raises(LoadError, match="same content"):
        load_current(engine, "fps/students", [f, load_mod.StagedFile("fps", "students", 2, f.sha256, f.frame)], CROSSWALK)
    with pytest.raises(LoadError, match="not fps/students"):
        load_current(engine, "fps/students", [staged("fps/attendance", 2)], CROSSWALK)
    clash = pd.concat([CROSSWALK, pd.DataFrame([["fps-s1", "C999"]], columns=["source_key", "child_key"])])
    with pytest.raises(LoadError, match="more than one child_key"):
        load_current(engine, "fps/students", [f], clash)
    # An optional column the file did not carry is NULL, not an error.
    no_exit = load_mod.StagedFile("fps", "students", 1, f.sha256, f.frame.drop(columns=["exit_date"]))
    load_current(engine, "fps/students", [no_exit], CROSSWALK, now=NOW)
    before = snapshot(engine)
    # A failure half-way (after the old file's rows were deleted) leaves everything as it was.
    real = load_mod.bulk_insert

    def failing(conn, table, frame):  # type: ignore[no-untyped-def]
        real(conn, table, frame)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(load_mod, "bulk_insert", failing)
    with pytest.raises(RuntimeError, match="injected"):
        load_current(engine, "fps/students", [staged("fps/students", 2, STUDENTS[:2])], CROSSWALK, now=NOW)
    assert_same(before, snapshot(engine))
    monkeypatch.setattr(load_mod, "bulk_insert", real)
    # ...and a re-run gives the same as a clean run.
    load_current(engine, "fps/students", [staged("fps/students", 2, STUDENTS[:2])], CROSSWALK, now=NOW)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Enrolment.__table__)).scalar() == 2


def test_every_extract_has_a_table_and_all_staging_columns_map() -> None:
    assert set(EXTRACT_TABLES) == set(EXTRACTS)
    for key, (cols, _rows) in EXTRACTS.items():
        spec = EXTRACT_TABLES[key]
        assert set(cols) <= set(spec.columns) | spec.ignored | {"source_key"}, key
        assert frame(cols, []).empty
