"""Two school districts share the school roles (Lakeshore, the second reference partnership).

Both districts' extracts load into the role tables with the agency kept on every row; a pupil who moves
from North to South mid-year has a source key in each district, and linkage (the crosswalk) makes them one
child, counted once: at the latest school for the school indicators, with attendance summed city-wide.

Worked by hand (school year 2026; k = 1 for every role so nothing is suppressed):

=========  ======  ===========================================================================
pupil      child   rows
=========  ======  ===========================================================================
north-p1   C1      grade 3 at N-ELM from 2025-08-20; 80 days, 10 absent (0.125)
south-p7   C1      the same child, grade 3 at S-OAK from 2026-01-12; 90 days, 5 absent; READ band 3
north-p2   C2      grade 3 at N-ELM; 100 days, 20 absent; READ band 2
south-p3   --      grade K at S-OAK (not linked); no attendance
=========  ======  ===========================================================================

grade3_reading: city 1/2 (C1 proficient, counted once, at S-OAK); S-OAK 1/1; N-ELM 0/1.
chronic_absence: city: C1 15/170 = 0.088 (not chronic), C2 0.2 (chronic) -> 1/2; per school N-ELM 2/2
(C1's north row is chronic there), S-OAK 0/1.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from data_sharing.partnership import load_partnership_dir
from schemas.indicators import load_indicator_definitions
from schemas.roles import ROLES
from warehouse.db import make_engine, upgrade
from warehouse.indicators import compute_indicator_rows, extracts_read
from warehouse.load import StagedFile, extract_tables, load_current
from warehouse.models import Enrolment

LAKESHORE = Path(__file__).resolve().parents[2] / "schemas" / "partnerships" / "lakeshore"
ENROL = ["source_key", "gender", "ethnicity", "ell_flag", "iep_flag", "frl_flag", "mv_flag", "dob_year_month",
         "postal_code_zip3", "campus_code", "grade", "academic_year", "entry_date", "withdrawal_date"]
ATTEND = ["source_key", "campus_code", "academic_year", "membership_days", "days_missed"]
SCORES = ["source_key", "academic_year", "tested_grade", "test_area", "score", "band"]


def staged(agency: str, extract: str, manifest_id: int, cols: list[str], rows: list[list[str]]) -> StagedFile:
    frame = pd.DataFrame(rows, columns=cols, dtype="string")
    frame["row_number"] = range(1, len(rows) + 1)
    sha = hashlib.sha256(repr((agency, extract, rows)).encode()).hexdigest()
    return StagedFile(agency, extract, manifest_id, sha, frame)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    return e


def test_two_districts_link_a_pupil_who_moves(engine: Engine) -> None:
    partnership = load_partnership_dir(LAKESHORE)
    tables = extract_tables(partnership.contracts)
    north_south = {k: t.table.name for k, t in tables.items() if k.split("/")[0] in ("north_usd", "south_usd")}
    assert north_south["north_usd/enrollment"] == north_south["south_usd/enrollment"] == "enrolments"
    cw = pd.DataFrame({"source_key": ["north-p1", "south-p7", "north-p2"], "child_key": ["C1", "C1", "C2"]})
    files = {
        ("north_usd", "enrollment"): (ENROL, [
            ["north-p1", "F", "HISP", "0", "0", "1", "0", "2017-03", "551", "N-ELM", "3", "2026", "2025-08-20", "2026-01-09"],
            ["north-p2", "M", "WHT", "0", "0", "0", "0", "2017-06", "551", "N-ELM", "3", "2026", "2025-08-20", ""]]),
        ("south_usd", "enrollment"): (ENROL, [
            ["south-p7", "F", "HISP", "0", "0", "1", "0", "2017-03", "552", "S-OAK", "3", "2026", "2026-01-12", ""],
            ["south-p3", "X", "ASN", "1", "0", "1", "0", "2020-10", "552", "S-OAK", "K", "2026", "2025-08-20", ""]]),
        ("north_usd", "attendance_summary"): (ATTEND, [["north-p1", "N-ELM", "2026", "80", "10"], ["north-p2", "N-ELM", "2026", "100", "20"]]),
        ("south_usd", "attendance_summary"): (ATTEND, [["south-p7", "S-OAK", "2026", "90", "5"]]),
        ("north_usd", "test_scores"): (SCORES, [["north-p2", "2026", "3", "READ", "", "2"]]),
        ("south_usd", "test_scores"): (SCORES, [["south-p7", "2026", "3", "READ", "", "3"]]),
    }
    results = {}
    for i, ((agency, extract), (cols, rows)) in enumerate(sorted(files.items())):
        results[f"{agency}/{extract}"] = load_current(engine, (agency, extract), [staged(agency, extract, 10 + i, cols, rows)], cw, tables=tables)
    # each extract counts its own rows in the shared table
    assert results["north_usd/enrollment"].rows_total == 2 and results["south_usd/enrollment"].rows_total == 2
    assert results["south_usd/enrollment"].rows_unlinked == 1
    with engine.connect() as conn:
        e = Enrolment.__table__
        got = sorted(conn.execute(select(e.c.agency, e.c.source_key, e.c.child_key, e.c.grade_level, e.c.school_id)).all())
    assert got == [
        ("north_usd", "north-p1", "C1", "3", "N-ELM"), ("north_usd", "north-p2", "C2", "3", "N-ELM"),
        ("south_usd", "south-p3", None, "K", "S-OAK"), ("south_usd", "south-p7", "C1", "3", "S-OAK"),
    ]
    defs = load_indicator_definitions(partnership.indicators_dir)
    wanted = {k: defs[k] for k in ("grade3_reading", "chronic_absence")}
    assert extracts_read(wanted, tables) == sorted(
        f"{a}/{x}" for a in ("north_usd", "south_usd") for x in ("attendance_summary", "enrollment", "test_scores")
    )
    with engine.begin() as conn:
        rows = compute_indicator_rows(conn, wanted, dict.fromkeys(ROLES, 1))
    allrows = rows[rows.dimension == "all"].set_index(["indicator", "school_id"])[["numerator", "denominator"]]
    assert {k: tuple(v) for k, v in allrows.iterrows()} == {
        ("grade3_reading", "ALL"): (1, 2), ("grade3_reading", "S-OAK"): (1, 1), ("grade3_reading", "N-ELM"): (0, 1),
        ("chronic_absence", "ALL"): (1, 2), ("chronic_absence", "N-ELM"): (2, 2), ("chronic_absence", "S-OAK"): (0, 1),
    }
