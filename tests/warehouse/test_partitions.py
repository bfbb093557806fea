"""Fact tables partitioned by school year on PostgreSQL (issue 19, item 4; ``warehouse.partitions``).

The tiny city of ``warehouse_city`` plus two enrolment rows no year partition can hold (a blank school
year and a mistyped 20266): the partitions a load creates, the planner pruning the indicator SQL's
per-year statements to one partition (EXPLAIN), indicator rows equal to SQLite's and to the same PostgreSQL
warehouse before migration 0006 (unpartitioned), and reloads (replace, re-run, a second agency of the
role, an incremental reload without relinking) that leave the same rows as a clean load.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

from tests.conftest import PG_URL
from schemas.indicators import load_indicator_definitions
from warehouse.db import make_engine, upgrade
from warehouse.indicators import compute_indicator_rows
from warehouse.load import StagedFile, extract_tables, load_current
from warehouse.models import Attendance, Enrolment
from warehouse.partitions import PARTITIONED, is_partitioned, partitions, year_slices
from warehouse_city import CROSSWALK, EXTRACTS, STUDENTS, _s, frame, load_city, staged

pytestmark = pytest.mark.postgres

MOU_K = {"school_enrolment": 10, "school_attendance": 10, "school_assessment": 10, "school_graduation": 10, "health_person": 11,
         "health_encounter": 11, "health_immunization": 11, "services_person": 10, "services_program_spell": 10}
ODD = [  # no year partition can hold these: the default partition does
    [*_s("fps-s20", "05", "EAST", 2026, "2025-08-20", "F", "HI", "N", "N", "Y", "N")[:11], "", "2025-08-20", ""],
    _s("fps-s21", "05", "EAST", 20266, "2025-08-20", "M", "WH", "N", "N", "N", "N"),
]
CITY_STUDENTS = STUDENTS + ODD


def load(engine: Engine) -> None:
    load_city(engine)
    load_current(engine, "fps/students", [staged("fps/students", 100, CITY_STUDENTS)], CROSSWALK)


def table_rows(engine: Engine, table) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    cols = [c for c in table.c if c.name != "source_sha256"]
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(select(*cols)).all(), columns=[c.name for c in cols])
    return df.sort_values(["manifest_id", "source_row"]).reset_index(drop=True)


def indicator_rows(engine: Engine) -> pd.DataFrame:
    with engine.begin() as conn:
        return compute_indicator_rows(conn, load_indicator_definitions(), MOU_K)


@pytest.fixture
def pg(pg_schema: str) -> Engine:
    engine = make_engine(PG_URL, pg_schema)
    upgrade(engine)
    load(engine)
    return engine


def test_partitions_follow_the_years_loaded(pg: Engine) -> None:
    assert PARTITIONED == ("assessments", "attendance", "enrolments")
    with pg.connect() as conn:
        assert all(is_partitioned(conn, t) for t in PARTITIONED)
        assert partitions(conn, "enrolments") == {
            2025: "enrolments_y2025", 2026: "enrolments_y2026", 2027: "enrolments_y2027", None: "enrolments_default"}
        assert set(partitions(conn, "attendance")) == {2026, None}
        placed = dict(conn.execute(text(
            "SELECT tableoid::regclass::text, count(*) FROM enrolments GROUP BY 1")).all())  # noqa: S608 (fixed SQL)
    # 2025: s11-s13; 2026: 14 rows; 2027: s14's second; default: the blank year and 20266
    assert placed == {"enrolments_y2025": 3, "enrolments_y2026": 13, "enrolments_y2027": 1, "enrolments_default": 2}


def test_indicator_sql_is_pruned_to_one_partition(pg: Engine) -> None:
    e = Enrolment.__table__
    with pg.connect() as conn:
        slices = year_slices(conn, e)
        scanned = []
        for part in slices:
            sql = select(func.count()).select_from(e).where(e.c.school_year.is_not(None), part)
            compiled = str(sql.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + compiled)))
            scanned.append(sorted({w for w in plan.replace("(", " ").split() if w.startswith("enrolments_")}))
        counts = [conn.execute(select(func.count()).select_from(e).where(e.c.school_year.is_not(None), p)).scalar() for p in slices]
    assert scanned == [["enrolments_y2025"], ["enrolments_y2026"], ["enrolments_y2027"], ["enrolments_default"]]
    assert counts == [3, 13, 1, 1]  # the blank year is in no slice (NULL): the indicators never count it


def test_indicators_equal_sqlite_and_the_unpartitioned_warehouse(pg: Engine, pg_schema: str, tmp_path: Path) -> None:
    lite = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(lite)
    load(lite)
    on_sqlite, on_pg = indicator_rows(lite), indicator_rows(pg)
    assert len(on_pg) > 100, sorted(set(on_pg["period"]))
    pd.testing.assert_frame_equal(on_pg, on_sqlite)
    # the same PostgreSQL warehouse, loaded before migration 0006, then migrated: rows moved, same answers
    old_schema = pg_schema + "_old"
    old = make_engine(PG_URL, old_schema)
    try:
        upgrade(old, "0005_release_audit_head")
        load(old)
        with old.connect() as conn:
            assert not is_partitioned(conn, "enrolments")
        unpartitioned = indicator_rows(old)
        before = {t.name: table_rows(old, t) for t in (Enrolment.__table__, Attendance.__table__)}
        upgrade(old)
        with old.connect() as conn:
            assert set(partitions(conn, "enrolments")) == {2025, 2026, 2027, None}
        for t in (Enrolment.__table__, Attendance.__table__):
            pd.testing.assert_frame_equal(table_rows(old, t), before[t.name])
        pd.testing.assert_frame_equal(unpartitioned, on_pg)
        pd.testing.assert_frame_equal(indicator_rows(old), on_pg)
    finally:
        with old.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {old_schema} CASCADE"))
        old.dispose()


def test_reloads_leave_the_rows_of_a_clean_load(pg: Engine, pg_schema: str) -> None:
    tables = extract_tables()
    e = Enrolment.__table__
    newer = [r for r in CITY_STUDENTS if r[0] != "fps-s14"]  # s14's two years leave; 2027 becomes empty
    result = load_current(pg, "fps/students", [staged("fps/students", 200, newer)], CROSSWALK)
    assert (result.files_removed, result.files_added, result.rows_deleted, result.rows_inserted) == ((100,), (200,), 19, 17)
    again = load_current(pg, "fps/students", [staged("fps/students", 200, newer)], CROSSWALK)
    assert not again.changed
    clean = make_engine(PG_URL, pg_schema + "_clean")
    try:
        upgrade(clean)
        load_city(clean)
        load_current(clean, "fps/students", [staged("fps/students", 200, newer)], CROSSWALK)
        pd.testing.assert_frame_equal(table_rows(pg, e), table_rows(clean, e))
        pd.testing.assert_frame_equal(indicator_rows(pg), indicator_rows(clean))
    finally:
        with clean.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {pg_schema}_clean CASCADE"))
        clean.dispose()
    # a second agency of the role shares the partitions: replacing its file deletes its rows only
    second = {**tables, "fps2/students": dataclasses.replace(tables["fps/students"], agency="fps2")}
    cols = EXTRACTS["fps/students"][0]
    other = StagedFile("fps2", "students", 300, "a" * 64, frame(cols, [_s("fps2-s1", "KG", "NORTH", 2026, "2025-08-20", "F", "HI", "N", "N", "N", "N")]))
    load_current(pg, "fps2/students", [other], CROSSWALK, tables=second)
    other2 = StagedFile("fps2", "students", 301, "b" * 64, frame(cols, [_s("fps2-s1", "01", "NORTH", 2027, "2026-08-20", "F", "HI", "N", "N", "N", "N")]))
    moved = load_current(pg, "fps2/students", [other2], CROSSWALK, tables=second)
    assert (moved.rows_deleted, moved.rows_inserted) == (1, 1)
    with pg.connect() as conn:
        by_file = dict(conn.execute(select(e.c.manifest_id, func.count()).group_by(e.c.manifest_id)).all())
    assert by_file == {200: 17, 301: 1}
    # the incremental reload of one extract without relinking (stages.incremental) adds a year's file
    year_file = staged("fps/students", 201, [_s("fps-s14", "12", "EAST", 2028, "2027-08-20", "M", "WH", "N", "N", "N", "N")])
    inc = load_current(pg, "fps/students", [staged("fps/students", 200, newer), year_file], CROSSWALK, relink=False)
    assert (inc.files_kept, inc.files_added, inc.rows_inserted, inc.rows_relinked) == ((200,), (201,), 1, 0)
    with pg.connect() as conn:
        assert 2028 in partitions(conn, "enrolments")
        assert conn.execute(select(e.c.child_key).where(e.c.manifest_id == 201)).scalar_one() == "C14"
