"""`generate_partnership_city`: the reference city in another partnership's files, by role only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_sharing.partnership import load_partnership_dir
from synthetic.partnership_city import generate_partnership_city

REPO = Path(__file__).resolve().parents[2]


def test_lakeshore_city_from_the_reference_city(tmp_path: Path) -> None:
    partnership = load_partnership_dir(REPO / "schemas" / "partnerships" / "lakeshore")
    rows = generate_partnership_city(partnership, 300, 7, tmp_path)
    drop = tmp_path / "drop"
    ref = tmp_path / "reference" / "drop"
    read = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)  # noqa: E731
    students = read(ref / "fps" / "students_20260815.csv")
    north, south = read(drop / "north_usd" / "enrollment_20260815.csv"), read(drop / "south_usd" / "enrollment_20260815.csv")
    # every enrolment row lands in exactly one district, in Lakeshore's columns and codes
    assert len(north) + len(south) == len(students) == rows[("north_usd", "enrollment")] + rows[("south_usd", "enrollment")]
    assert list(north.columns) == list(partnership.contracts[("north_usd", "enrollment")].columns)
    assert set(north.grade) <= {"PK", "K", *map(str, range(1, 13))} and "KG" not in set(north.grade)
    assert set(north.ethnicity) - {""} <= {"HISP", "AIAN", "ASN", "BLK", "NHPI", "WHT", "MULTI"}
    assert not set(north.campus_code) & set(south.campus_code)  # a school belongs to one district
    # a pupil who moved has an id in each district; the truth knows both are one person
    ids = read(tmp_path / "truth" / "identities.csv")
    pupils = ids[ids.agency.isin(["north_usd", "south_usd"])]
    assert set(pupils.source_id) == set(north.pupil_number) | set(south.pupil_number)
    movers = pupils.groupby("person_id").agency.nunique()
    assert (movers == 2).sum() > 5
    # the dental extract (no Fairhaven counterpart) takes every third encounter, with its own code
    dental = read(drop / "lc_health" / "dental_screenings_20260815.csv")
    visits = read(drop / "lc_health" / "clinic_visits_20260815.csv")
    assert len(dental) == (len(visits) + 2) // 3 and set(dental.screening_type) == {"DENTAL_SCREEN"}
    assert set(visits.visit_kind) - {""} <= {"WELL", "SICK", "ED", "INPT"}
    assert set(dental.client_no) <= set(read(drop / "lc_health" / "registrants_20260815.csv").client_no)
