"""A tiny city written out by hand for the warehouse and indicator tests (made-up keys and values).

Two schools, EAST and WEST; school year 2026 (2025-26) unless said otherwise. Keys are readable
stand-ins for the 64-hex pseudonyms: ``fps-sN`` a student's source_key, ``fhd-pN`` a patient's,
``dhs-cN`` a client's; ``CN`` the child_key linkage gives them. The crosswalk leaves ``fps-s10`` and
``fhd-px`` unlinked, and links the adult ``dhs-adult`` to ``A1``, which no student has.

Students (attributes: sex, race, english_learner, disability, econ_disadvantaged, homeless)

====  =====  =====================================================================================
key   child  enrolments
====  =====  =====================================================================================
s1    C1     2026 KG EAST, F HI Y N Y N
s2    C2     2026 KG EAST, M WH N N N N
s3    C3     2026 KG WEST, F BL N Y Y N
s4    C4     2026 03 EAST, M HI Y N Y N
s5    C5     transfer: 2026 03 EAST from 2025-08-20 (F WH N N N N), then 04 WEST from 2026-01-10
             (F WH N N Y N): counts at WEST, econ Y, grade 04
s6    C6     2026 08 WEST, X AS N N N Y
s7    C7     two rows, same enroll_date: 08 EAST (F WH ...), later in the file 08 WEST (M BL N N Y N):
             the later row wins (WEST, M, BL)
s8    C8     2026 12 WEST, F BL N N Y N
s9    C9     2026 PK EAST, M HI N N Y N
s10   --     2026 03 WEST, F HI N N Y N (not linked)
s11   C11    2025 11 EAST, M BL N N Y N (only 2025)
s12   C12    2025 11 EAST, F WH N N N N
s13   C13    2025 11 EAST, M WH N N N N
s14   C14    2026 12 EAST (M WH N N N N); 2027 12 WEST
====  =====  =====================================================================================
"""

from __future__ import annotations

import hashlib

import pandas as pd

from warehouse.db import make_engine, upgrade
from warehouse.load import StagedFile

STUDENT_COLS = [
    "source_key", "birth_date_year_month", "sex", "race_ethnicity", "english_learner", "disability",
    "econ_disadvantaged", "homeless", "zip_zip3", "school_id", "grade_level", "school_year", "enroll_date", "exit_date",
]


def _s(key: str, grade: str, school: str, year: int, enroll: str, sex: str, race: str, el: str, dis: str, econ: str, hl: str, exit_date: str = "") -> list[str]:
    return [key, "2019-05", sex, race, el, dis, econ, hl, "021", school, grade, str(year), enroll, exit_date]


STUDENTS = [
    _s("fps-s1", "KG", "EAST", 2026, "2025-08-20", "F", "HI", "Y", "N", "Y", "N"),
    _s("fps-s2", "KG", "EAST", 2026, "2025-08-20", "M", "WH", "N", "N", "N", "N"),
    _s("fps-s3", "KG", "WEST", 2026, "2025-08-20", "F", "BL", "N", "Y", "Y", "N"),
    _s("fps-s4", "03", "EAST", 2026, "2025-08-20", "M", "HI", "Y", "N", "Y", "N"),
    _s("fps-s5", "03", "EAST", 2026, "2025-08-20", "F", "WH", "N", "N", "N", "N", exit_date="2026-01-09"),
    _s("fps-s5", "04", "WEST", 2026, "2026-01-10", "F", "WH", "N", "N", "Y", "N"),
    _s("fps-s6", "08", "WEST", 2026, "2025-08-20", "X", "AS", "N", "N", "N", "Y"),
    _s("fps-s7", "08", "EAST", 2026, "2025-08-20", "F", "WH", "Y", "Y", "N", "Y"),
    _s("fps-s7", "08", "WEST", 2026, "2025-08-20", "M", "BL", "N", "N", "Y", "N"),
    _s("fps-s8", "12", "WEST", 2026, "2025-08-20", "F", "BL", "N", "N", "Y", "N"),
    _s("fps-s9", "PK", "EAST", 2026, "2025-08-20", "M", "HI", "N", "N", "Y", "N"),
    _s("fps-s10", "03", "WEST", 2026, "2025-08-20", "F", "HI", "N", "N", "Y", "N"),
    _s("fps-s11", "11", "EAST", 2025, "2024-08-20", "M", "BL", "N", "N", "Y", "N"),
    _s("fps-s12", "11", "EAST", 2025, "2024-08-20", "F", "WH", "N", "N", "N", "N"),
    _s("fps-s13", "11", "EAST", 2025, "2024-08-20", "M", "WH", "N", "N", "N", "N"),
    _s("fps-s14", "12", "EAST", 2026, "2025-08-20", "M", "WH", "N", "N", "N", "N"),
    _s("fps-s14", "12", "WEST", 2027, "2026-08-20", "M", "WH", "N", "N", "N", "N"),
]

ATTENDANCE_COLS = ["source_key", "school_id", "school_year", "days_enrolled", "days_absent"]
ATTENDANCE = [
    ["fps-s1", "EAST", "2026", "100", "10"],   # exactly 10%: chronic (>=)
    ["fps-s2", "EAST", "2026", "100", "9"],
    ["fps-s3", "WEST", "2026", "9", "5"],      # 9 days: below 10, not counted
    ["fps-s4", "EAST", "2026", "30", "3"],     # 3/30 = 0.1 exactly (0.1*30 is 3.0000000000000004 in floats)
    ["fps-s5", "EAST", "2026", "60", "4"],
    ["fps-s5", "WEST", "2026", "25", "4"],     # two WEST rows: summed to 40/6 (chronic at WEST);
    ["fps-s5", "WEST", "2026", "15", "2"],     # city-wide 100 days, 10 absent: chronic
    ["fps-s6", "WEST", "2026", "5", "5"],      # 5 days at each school: neither school counts her,
    ["fps-s6", "EAST", "2026", "5", "0"],      # the city does (10 days, 5 absent)
    ["fps-s7", "WEST", "2026", "50", "1"],
    ["fps-s8", "WEST", "2026", "100", "20"],
    ["fps-s9", "EAST", "2026", "0", "0"],
    ["fps-s10", "WEST", "2026", "10", "1"],    # exactly 10 days, 10%
    ["fps-s14", "EAST", "2026", "100", "0"],
    ["fps-s99", "EAST", "2026", "50", "50"],   # no enrolment row that year: not counted
]

ASSESSMENT_COLS = ["source_key", "school_year", "grade_level", "subject", "scale_score", "performance_level"]
ASSESSMENTS = [
    ["fps-s1", "2026", "KG", "KRA", "", "3"],
    ["fps-s2", "2026", "KG", "KRA", "", "2"],
    ["fps-s3", "2026", "KG", "KRA", "", "1"],
    ["fps-s4", "2026", "03", "ELA", "410", "2"],
    ["fps-s4", "2026", "03", "ELA", "455", "3"],   # retest: the highest level counts
    ["fps-s4", "2026", "03", "MATH", "380", "1"],
    ["fps-s5", "2026", "03", "ELA", "500", "4"],   # grade from the assessment row (her enrolment says 04)
    ["fps-s10", "2026", "03", "ELA", "300", "1"],
    ["fps-s10", "2026", "03", "MATH", "520", "4"],
    ["fps-s6", "2026", "08", "MATH", "470", "3"],
    ["fps-s6", "2026", "08", "MATH", "", "x"],     # does not parse: NULL, ignored
    ["fps-s7", "2026", "08", "MATH", "430", "2"],
]

GRADUATION_COLS = ["source_key", "cohort_year", "outcome"]
GRADUATION = [
    ["fps-s8", "2026", "GRADUATED_4YR"],
    ["fps-s11", "2026", "DROPPED_OUT"],      # attributes from his 2025 row (latest with school_year <= 2026)
    ["fps-s12", "2026", "TRANSFERRED_OUT"],  # left out of the denominator
    ["fps-s13", "2026", "DECEASED"],         # left out of the denominator
    ["fps-s14", "2026", "STILL_ENROLLED"],   # his 2027 row (WEST) is after the cohort year: counts at EAST
]

PATIENT_COLS = ["source_key", "birth_date_year_month", "sex", "zip_zip3", "medicaid_source_key"]
PATIENTS = [
    ["fhd-p1a", "2019-05", "F", "021", ""],
    ["fhd-p1b", "2019-05", "F", "021", ""],   # a second health record of child C1
    ["fhd-p2", "2019-05", "M", "021", ""],
    ["fhd-p3", "2019-05", "F", "021", ""],
    ["fhd-p6", "2019-05", "X", "021", ""],
    ["fhd-p9", "2019-05", "M", "021", ""],
    ["fhd-p14", "2019-05", "M", "021", ""],
    ["fhd-px", "2019-05", "F", "021", ""],    # not linked
]

IMMUNIZATION_COLS = ["source_key", "vaccine_code", "administered_date"]
IMMUNIZATIONS = [
    ["fhd-p1a", "03", "2021-03-01"],
    ["fhd-p1b", "03", "2021-03-01"],   # the same dose in C1's second record: counts once
    ["fhd-p1b", "94", "2025-08-31"],   # MMRV the day before the cutoff: counts -> C1 has 2 doses
    ["fhd-p2", "03", "2021-02-01"],
    ["fhd-p2", "3", "2025-09-01"],     # on September 1: does not count -> C2 has 1 dose
    ["fhd-p2", "08", "2020-01-01"],    # hepatitis B: not MMR
    ["fhd-p3", "3", "2021-01-01"],     # CVX "3" is MMR (03)
    ["fhd-p3", "94", "2024-01-01"],    # -> C3 has 2 doses
    ["fhd-px", "03", "2021-01-01"],    # unlinked record: never counts
    ["fhd-px", "03", "2022-01-01"],
]

ENCOUNTER_COLS = ["encounter_id", "source_key", "encounter_date", "encounter_type", "diagnosis_code"]
ENCOUNTERS = [
    ["e1", "fhd-p1a", "2025-07-01", "WELL_CHILD", "Z00.129"],   # first day of the 2026 window
    ["e2", "fhd-p2", "2025-06-30", "WELL_CHILD", "Z00.129"],    # day before the window (school year 2025)
    ["e3", "fhd-p2", "2025-10-01", "SICK_VISIT", "J06.9"],
    ["e4", "fhd-p3", "2026-06-30", "WELL_CHILD", ""],           # last day of the window
    ["e5", "fhd-p9", "2025-12-01", "WELL_CHILD", ""],           # pre-K counts
    ["e6", "fhd-p6", "2025-12-01", "ED_VISIT", ""],
    ["e7", "fhd-px", "2025-10-01", "WELL_CHILD", ""],           # unlinked
    ["e8", "fhd-p14", "2026-07-01", "WELL_CHILD", ""],          # school year 2027
]

CLIENT_COLS = ["source_key", "birth_date_year_month", "sex", "zip_zip3"]
CLIENTS = [
    ["dhs-c1", "2019-05", "F", "021"],
    ["dhs-c4", "2016-02", "M", "021"],
    ["dhs-c5", "2016-07", "F", "021"],
    ["dhs-c6", "2011-09", "X", "021"],
    ["dhs-c8", "2007-11", "F", "021"],
    ["dhs-adult", "1988-04", "F", "021"],   # a parent: linked to A1, no student
]

PROGRAM_COLS = ["source_key", "program", "start_date", "end_date"]
PROGRAMS = [
    ["dhs-c1", "SNAP", "2025-01-01", "2025-06-30"],          # ends June 30 2025: not in school year 2026
    ["dhs-c1", "WIC", "2026-06-30", ""],                     # starts June 30 2026: overlaps
    ["dhs-c4", "SNAP", "2024-01-01", "2025-07-01"],          # ends July 1 2025: overlaps
    ["dhs-c4", "CHILD_WELFARE", "2025-09-01", ""],
    ["dhs-c5", "SNAP", "2026-07-01", ""],                    # starts after the year: not in 2026
    ["dhs-c6", "SNAP", "2025-07-01", "2025-09-30"],          # two spells of one program count once
    ["dhs-c6", "SNAP", "2026-01-01", ""],
    ["dhs-c8", "FOSTER_CARE", "2020-01-01", ""],
    ["dhs-c8", "SNAP", "2025-10-01", "2025-12-31"],
    ["dhs-adult", "SNAP", "2025-01-01", ""],                 # the adult's enrolment: never counts
]

CROSSWALK = pd.DataFrame(
    [(f"fps-s{i}", f"C{i}") for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 99)]
    + [("fps-s10", None)]
    + [("fhd-p1a", "C1"), ("fhd-p1b", "C1"), ("fhd-p2", "C2"), ("fhd-p3", "C3"), ("fhd-p6", "C6"), ("fhd-p9", "C9"),
       ("fhd-p14", "C14"), ("fhd-px", None)]
    + [("dhs-c1", "C1"), ("dhs-c4", "C4"), ("dhs-c5", "C5"), ("dhs-c6", "C6"), ("dhs-c8", "C8"), ("dhs-adult", "A1")],
    columns=["source_key", "child_key"],
)

EXTRACTS: dict[str, tuple[list[str], list[list[str]]]] = {
    "fps/students": (STUDENT_COLS, STUDENTS),
    "fps/attendance": (ATTENDANCE_COLS, ATTENDANCE),
    "fps/assessments": (ASSESSMENT_COLS, ASSESSMENTS),
    "fps/graduation": (GRADUATION_COLS, GRADUATION),
    "fhd/patients": (PATIENT_COLS, PATIENTS),
    "fhd/immunizations": (IMMUNIZATION_COLS, IMMUNIZATIONS),
    "fhd/encounters": (ENCOUNTER_COLS, ENCOUNTERS),
    "dhs/clients": (CLIENT_COLS, CLIENTS),
    "dhs/program_enrollments": (PROGRAM_COLS, PROGRAMS),
}


def frame(cols: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """A staging frame as the pipeline hands it over: Arrow strings plus row_number (1-based)."""
    df = pd.DataFrame(rows, columns=cols).astype("string[pyarrow]")
    df["row_number"] = pd.Series([str(i + 1) for i in range(len(rows))], dtype="string[pyarrow]")
    return df


def staged(extract_key: str, manifest_id: int, rows: list[list[str]] | None = None, periods: frozenset[int | None] | None = None) -> StagedFile:
    cols, default_rows = EXTRACTS[extract_key]
    rows = default_rows if rows is None else rows
    agency, extract = extract_key.split("/")
    sha = hashlib.sha256(repr((extract_key, manifest_id, rows)).encode()).hexdigest()
    return StagedFile(agency, extract, manifest_id, sha, frame(cols, rows), periods)


def load_city(engine, crosswalk: pd.DataFrame | None = None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from warehouse.load import load_current

    cw = CROSSWALK if crosswalk is None else crosswalk
    return {key: load_current(engine, key, [staged(key, 100 + i)], cw) for i, key in enumerate(EXTRACTS)}


def city_engine(target: tuple[str, str | None]):  # type: ignore[no-untyped-def]
    """A migrated warehouse at ``target`` (url, schema) with this city loaded."""
    url, schema = target
    engine = make_engine(url, schema)
    upgrade(engine)
    load_city(engine)
    return engine
