"""Known answers for every SPEC indicator on the hand-written tiny city (warehouse_city.py), SQLite and PostgreSQL.

Every expected (numerator, denominator) below is worked out by hand from the rows in warehouse_city.py;
the comment above each block says who is counted and why. Students' attributes (latest enrolment of the
year): s1 F HI Y N Y N EAST KG | s2 M WH N N N N EAST KG | s3 F BL N Y Y N WEST KG | s4 M HI Y N Y N EAST 03 |
s5 F WH N N Y N WEST 04 (transferred from EAST) | s6 X AS N N N Y WEST 08 | s7 M BL N N Y N WEST 08 (tie) |
s8 F BL N N Y N WEST 12 | s9 M HI N N Y N EAST PK | s10 F HI N N Y N WEST 03 (unlinked) | s14 M WH N N N N EAST 12.
(order: sex, race_ethnicity, english_learner, disability, econ_disadvantaged, homeless)
"""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine

from schemas.indicators import DefinitionSet, load_indicator_definitions
from warehouse.indicators import compute_indicator_rows
from warehouse_city import city_engine

MOU_K = {"school_enrolment": 10, "school_attendance": 10, "school_assessment": 10, "school_graduation": 10, "health_person": 11, "health_encounter": 11, "health_immunization": 11, "services_person": 10, "services_program_spell": 10}  # role -> k (fps 10, fhd 11, dhs 10)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    return city_engine(warehouse_target)


@pytest.fixture
def rows(engine: Engine) -> pd.DataFrame:
    with engine.begin() as conn:
        return compute_indicator_rows(conn, load_indicator_definitions(), MOU_K)


Cells = dict[tuple[str, str, str], tuple[int, int]]


def cells(rows: pd.DataFrame, indicator: str, period: int, dimensions: tuple[str, ...] | None = None) -> Cells:
    sel = rows[(rows.indicator == indicator) & (rows.period == period)]
    if dimensions is not None:
        sel = sel[sel.dimension.isin(dimensions)]
    return {(r.school_id, r.dimension, r.group): (int(r.numerator), int(r.denominator)) for r in sel.itertuples()}


def expand(spec: dict[str, dict[str, dict[str, tuple[int, int]]]]) -> Cells:
    """{school: {dimension: {group: (num, den)}}} -> flat cells."""
    return {(s, d, g): v for s, dims in spec.items() for d, groups in dims.items() for g, v in groups.items()}


def test_periods_and_row_rules(rows: pd.DataFrame) -> None:
    # Periods: school years present. 2025 has only s11-s13 (no attendance, assessments or KG) so only
    # well_child_visit has 2025 rows; 2027 has only s14 (WEST), again only well_child_visit.
    got = {(i, int(p)) for i, p in rows[["indicator", "period"]].drop_duplicates().itertuples(index=False)}
    assert got == {
        ("chronic_absence", 2026), ("grade3_reading", 2026), ("grade8_math", 2026), ("hs_graduation_4yr", 2026),
        ("kindergarten_mmr2", 2026), ("kindergarten_readiness", 2026), ("well_child_visit", 2025),
        ("well_child_visit", 2026), ("well_child_visit", 2027),
    }
    assert (rows.denominator >= 1).all() and (rows.numerator <= rows.denominator).all()
    assert rows.period.dtype == "int64"
    # k: fps-only 10; with fhd 11; chronic_absence's program rows fps+dhs: 10.
    k = rows.groupby("indicator")["k"].unique().map(lambda v: sorted(v.tolist())).to_dict()
    assert k == {
        "chronic_absence": [10], "grade3_reading": [10], "grade8_math": [10], "hs_graduation_4yr": [10],
        "kindergarten_mmr2": [11], "kindergarten_readiness": [10], "well_child_visit": [11],
    }
    # Program groups are chronic_absence's only; no 'UNKNOWN' group (no blank attributes in the city).
    assert set(rows[rows.dimension == "program"].indicator) == {"chronic_absence"}
    assert "UNKNOWN" not in set(rows.group)


def test_chronic_absence(rows: pd.DataFrame) -> None:
    c = cells(rows, "chronic_absence", 2026)
    # City (days summed over schools): s1 100/10 yes (exactly 10%), s2 100/9 no, s3 9 days out, s4 30/3 yes
    # (exact comparison), s5 60/4 + 25/4 + 15/2 = 100/10 yes, s6 5/5 + 5/0 = 10/5 yes, s7 50/1 no,
    # s8 100/20 yes, s9 0 days out, s10 10/1 yes, s14 100/0 no, s99 has no enrolment: out.  -> 6 of 9.
    assert c[("ALL", "all", "all")] == (6, 9)
    # EAST (its own rows): s1 yes, s2 no, s4 yes, s5 60/4 no, s14 no; s6 has 5 days there: out. -> 2 of 5.
    assert c[("EAST", "all", "all")] == (2, 5)
    # WEST: s5 40/6 yes (two rows summed), s7 no, s8 yes, s10 yes; s3 9 days and s6 5 days: out. -> 3 of 4.
    assert c[("WEST", "all", "all")] == (3, 4)
    # Attributes from the latest enrolment, also at the earlier school: s5 counts at EAST as econ Y.
    assert c[("EAST", "econ_disadvantaged", "Y")] == (2, 3)  # s1, s4 yes; s5 no
    assert c[("EAST", "econ_disadvantaged", "N")] == (0, 2)  # s2, s14
    assert c[("WEST", "econ_disadvantaged", "Y")] == (3, 4)  # s5, s7, s8, s10
    assert ("WEST", "econ_disadvantaged", "N") not in c
    assert c[("ALL", "econ_disadvantaged", "Y")] == (5, 6)  # s1 s4 s5 s8 s10 yes, s7 no
    assert c[("ALL", "econ_disadvantaged", "N")] == (1, 3)  # s6 yes; s2 s14 no
    # s7's tie (same enroll_date): the later row in the file (M, BL) gives his attributes.
    assert c[("WEST", "sex", "M")] == (0, 1) and c[("WEST", "race_ethnicity", "BL")] == (1, 2)  # s7 no, s8 yes
    assert ("EAST", "race_ethnicity", "BL") not in c
    assert c[("ALL", "sex", "X")] == (1, 1)  # s6 counts city-wide only
    assert c[("ALL", "homeless", "Y")] == (1, 1) and c[("ALL", "homeless", "N")] == (5, 8)
    assert c[("ALL", "race_ethnicity", "HI")] == (3, 3)  # s1, s4, s10
    assert c[("ALL", "english_learner", "Y")] == (2, 2)  # s1, s4
    assert c[("ALL", "disability", "N")] == (6, 9)


def test_chronic_absence_by_program(rows: pd.DataFrame) -> None:
    c = cells(rows, "chronic_absence", 2026, ("program",))
    # Programs overlapping July 1 2025 - June 30 2026 (by child): C1 WIC (SNAP ended June 30 2025: no);
    # C4 SNAP (ended July 1 2025: yes) and CHILD_WELFARE; C5 none (SNAP starts July 1 2026); C6 SNAP (two
    # spells, once); C8 FOSTER_CARE and SNAP. s10 is unlinked: NONE. The adult A1's SNAP never counts.
    # City units (chronic yes/no): s1 y, s2 n, s4 y, s5 y, s6 y, s7 n, s8 y, s10 y, s14 n.
    assert c == {
        ("ALL", "program", "WIC"): (1, 1),            # s1
        ("ALL", "program", "SNAP"): (3, 3),           # s4, s6, s8
        ("ALL", "program", "CHILD_WELFARE"): (1, 1),  # s4
        ("ALL", "program", "FOSTER_CARE"): (1, 1),    # s8
        ("ALL", "program", "NONE"): (2, 5),           # s2 n, s5 y, s7 n, s10 y, s14 n
        # EAST units: s1 y, s2 n, s4 y, s5 n, s14 n; CHILD_WELFARE is city-wide only.
        ("EAST", "program", "WIC"): (1, 1),
        ("EAST", "program", "SNAP"): (1, 1),
        ("EAST", "program", "NONE"): (0, 3),
        # WEST units: s5 y, s7 n, s8 y, s10 y; FOSTER_CARE is city-wide only.
        ("WEST", "program", "SNAP"): (1, 1),
        ("WEST", "program", "NONE"): (2, 3),
    }


def test_kindergarten_readiness(rows: pd.DataFrame) -> None:
    # KG with a KRA result: s1 level 3 (EAST, yes), s2 level 2 (EAST), s3 level 1 (WEST).
    assert cells(rows, "kindergarten_readiness", 2026) == expand({
        "ALL": {
            "all": {"all": (1, 3)}, "race_ethnicity": {"HI": (1, 1), "WH": (0, 1), "BL": (0, 1)},
            "sex": {"F": (1, 2), "M": (0, 1)}, "english_learner": {"Y": (1, 1), "N": (0, 2)},
            "disability": {"N": (1, 2), "Y": (0, 1)}, "econ_disadvantaged": {"Y": (1, 2), "N": (0, 1)},
            "homeless": {"N": (1, 3)},
        },
        "EAST": {
            "all": {"all": (1, 2)}, "race_ethnicity": {"HI": (1, 1), "WH": (0, 1)}, "sex": {"F": (1, 1), "M": (0, 1)},
            "english_learner": {"Y": (1, 1), "N": (0, 1)}, "disability": {"N": (1, 2)},
            "econ_disadvantaged": {"Y": (1, 1), "N": (0, 1)}, "homeless": {"N": (1, 2)},
        },
        "WEST": {
            "all": {"all": (0, 1)}, "race_ethnicity": {"BL": (0, 1)}, "sex": {"F": (0, 1)}, "english_learner": {"N": (0, 1)},
            "disability": {"Y": (0, 1)}, "econ_disadvantaged": {"Y": (0, 1)}, "homeless": {"N": (0, 1)},
        },
    })


def test_grade3_reading(rows: pd.DataFrame) -> None:
    # Grade 03 ELA rows: s4 levels 2 then 3 (retest: best 3, yes, EAST); s5 level 4 (yes; her assessment row
    # says 03 although her latest enrolment says 04; she counts at WEST); s10 level 1 (no, WEST, unlinked).
    assert cells(rows, "grade3_reading", 2026) == expand({
        "ALL": {
            "all": {"all": (2, 3)}, "race_ethnicity": {"HI": (1, 2), "WH": (1, 1)}, "sex": {"M": (1, 1), "F": (1, 2)},
            "english_learner": {"Y": (1, 1), "N": (1, 2)}, "disability": {"N": (2, 3)},
            "econ_disadvantaged": {"Y": (2, 3)}, "homeless": {"N": (2, 3)},
        },
        "EAST": {
            "all": {"all": (1, 1)}, "race_ethnicity": {"HI": (1, 1)}, "sex": {"M": (1, 1)}, "english_learner": {"Y": (1, 1)},
            "disability": {"N": (1, 1)}, "econ_disadvantaged": {"Y": (1, 1)}, "homeless": {"N": (1, 1)},
        },
        "WEST": {
            "all": {"all": (1, 2)}, "race_ethnicity": {"WH": (1, 1), "HI": (0, 1)}, "sex": {"F": (1, 2)},
            "english_learner": {"N": (1, 2)}, "disability": {"N": (1, 2)}, "econ_disadvantaged": {"Y": (1, 2)},
            "homeless": {"N": (1, 2)},
        },
    })


def test_grade8_math(rows: pd.DataFrame) -> None:
    # Grade 08 MATH: s6 level 3 (yes; her second row's level "x" does not parse and is ignored), s7 level 2.
    # Both count at WEST (s7 by the tie rule); EAST has no row.
    both = {
        "all": {"all": (1, 2)}, "race_ethnicity": {"AS": (1, 1), "BL": (0, 1)}, "sex": {"X": (1, 1), "M": (0, 1)},
        "english_learner": {"N": (1, 2)}, "disability": {"N": (1, 2)}, "econ_disadvantaged": {"N": (1, 1), "Y": (0, 1)},
        "homeless": {"Y": (1, 1), "N": (0, 1)},
    }
    assert cells(rows, "grade8_math", 2026) == expand({"ALL": both, "WEST": both})


def test_hs_graduation_4yr(rows: pd.DataFrame) -> None:
    # Cohort 2026: s8 GRADUATED_4YR (WEST); s11 DROPPED_OUT (only a 2025 row: EAST); s14 STILL_ENROLLED
    # (his 2027 WEST row is after the cohort year: EAST); s12 TRANSFERRED_OUT and s13 DECEASED left out.
    assert cells(rows, "hs_graduation_4yr", 2026) == expand({
        "ALL": {
            "all": {"all": (1, 3)}, "race_ethnicity": {"BL": (1, 2), "WH": (0, 1)}, "sex": {"F": (1, 1), "M": (0, 2)},
            "english_learner": {"N": (1, 3)}, "disability": {"N": (1, 3)}, "econ_disadvantaged": {"Y": (1, 2), "N": (0, 1)},
            "homeless": {"N": (1, 3)},
        },
        "EAST": {
            "all": {"all": (0, 2)}, "race_ethnicity": {"BL": (0, 1), "WH": (0, 1)}, "sex": {"M": (0, 2)},
            "english_learner": {"N": (0, 2)}, "disability": {"N": (0, 2)}, "econ_disadvantaged": {"Y": (0, 1), "N": (0, 1)},
            "homeless": {"N": (0, 2)},
        },
        "WEST": {
            "all": {"all": (1, 1)}, "race_ethnicity": {"BL": (1, 1)}, "sex": {"F": (1, 1)}, "english_learner": {"N": (1, 1)},
            "disability": {"N": (1, 1)}, "econ_disadvantaged": {"Y": (1, 1)}, "homeless": {"N": (1, 1)},
        },
    })


def test_kindergarten_mmr2(rows: pd.DataFrame) -> None:
    # KG students: s1 (EAST): CVX 03 on 2021-03-01 in both of C1's health records (one dose) + CVX 94 on
    # 2025-08-31 (before Sept 1) = 2 doses, yes. s2 (EAST): 2021-02-01 + "3" on 2025-09-01 (not before the
    # cutoff) + a hepatitis B dose = 1, no. s3 (WEST): CVX "3" (= 03) + 94 = 2, yes. The unlinked record's
    # doses never count.
    assert cells(rows, "kindergarten_mmr2", 2026) == expand({
        "ALL": {
            "all": {"all": (2, 3)}, "race_ethnicity": {"HI": (1, 1), "WH": (0, 1), "BL": (1, 1)},
            "sex": {"F": (2, 2), "M": (0, 1)}, "english_learner": {"Y": (1, 1), "N": (1, 2)},
            "disability": {"N": (1, 2), "Y": (1, 1)}, "econ_disadvantaged": {"Y": (2, 2), "N": (0, 1)},
            "homeless": {"N": (2, 3)},
        },
        "EAST": {
            "all": {"all": (1, 2)}, "race_ethnicity": {"HI": (1, 1), "WH": (0, 1)}, "sex": {"F": (1, 1), "M": (0, 1)},
            "english_learner": {"Y": (1, 1), "N": (0, 1)}, "disability": {"N": (1, 2)},
            "econ_disadvantaged": {"Y": (1, 1), "N": (0, 1)}, "homeless": {"N": (1, 2)},
        },
        "WEST": {
            "all": {"all": (1, 1)}, "race_ethnicity": {"BL": (1, 1)}, "sex": {"F": (1, 1)}, "english_learner": {"N": (1, 1)},
            "disability": {"Y": (1, 1)}, "econ_disadvantaged": {"Y": (1, 1)}, "homeless": {"N": (1, 1)},
        },
    })


def test_well_child_visit(rows: pd.DataFrame) -> None:
    c = cells(rows, "well_child_visit", 2026, ("all", "sex"))
    # Every 2026 student. WELL_CHILD visits in July 1 2025 - June 30 2026: C1 on July 1 (yes), C3 on June 30
    # (yes), C9 (pre-K, yes). C2's visit on June 30 2025 is in 2025; sick and ED visits do not count; s10 is
    # unlinked; the unlinked record's visit never counts.
    # EAST: s1 y, s2, s4, s9 y, s14 -> 2/5. WEST: s3 y, s5, s6, s7, s8, s10 -> 1/6. City 3/11.
    assert c == {
        ("ALL", "all", "all"): (3, 11), ("EAST", "all", "all"): (2, 5), ("WEST", "all", "all"): (1, 6),
        ("ALL", "sex", "F"): (2, 5), ("ALL", "sex", "M"): (1, 5), ("ALL", "sex", "X"): (0, 1),  # F s1 s3 s5 s8 s10; M s2 s4 s9 s14 s7
        ("EAST", "sex", "F"): (1, 1), ("EAST", "sex", "M"): (1, 4),
        ("WEST", "sex", "F"): (1, 4), ("WEST", "sex", "M"): (0, 1), ("WEST", "sex", "X"): (0, 1),
    }
    # 2025: s11, s12, s13 at EAST, no visits. 2027: s14 at WEST, visit on July 1 2026.
    assert cells(rows, "well_child_visit", 2025, ("all",)) == {("ALL", "all", "all"): (0, 3), ("EAST", "all", "all"): (0, 3)}
    assert cells(rows, "well_child_visit", 2027, ("all",)) == {("ALL", "all", "all"): (1, 1), ("WEST", "all", "all"): (1, 1)}


def test_groups_add_up(rows: pd.DataFrame) -> None:
    """Every dimension adds up to its 'all' row; schools add up to the city except for chronic_absence."""
    for (ind, period), t in rows.groupby(["indicator", "period"]):
        for school, st in t.groupby("school_id"):
            total = st[st.dimension == "all"][["numerator", "denominator"]].sum()
            for dim, dt_ in st[~st.dimension.isin(["all", "program"])].groupby("dimension"):
                assert (dt_[["numerator", "denominator"]].sum() == total).all(), (ind, period, school, dim)
        city = t[(t.school_id == "ALL") & (t.dimension == "all")][["numerator", "denominator"]].sum()
        schools = t[(t.school_id != "ALL") & (t.dimension == "all")][["numerator", "denominator"]].sum()
        if ind == "chronic_absence":
            assert not (city == schools).all()  # s5 counts at two schools, s6 at none
        else:
            assert (city == schools).all(), (ind, period)


def test_new_indicator_of_an_existing_kind_is_a_file(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A city adds grade3_math by adding one YAML file (a copy of the shipped folder plus the file)."""
    import shutil

    from schemas.indicators import INDICATORS_DIR

    folder = tmp_path / "indicators"
    shutil.copytree(INDICATORS_DIR, folder)
    (folder / "grade3_math.yaml").write_text(
        "id: grade3_math\nversion: 1\ntitle: Grade 3 mathematics proficiency\n"
        "description: Share of third graders tested in mathematics who score proficient.\n"
        "source: A city's own addition (test).\nkind: assessment_rate\nperiod: school_year\n"
        "denominator: Grade 03 students with a MATH result that year.\nnumerator: Best MATH level >= 3.\n"
        "dimensions: [all, sex]\nschools_add_up: true\nroles: [school_enrolment, school_assessment]\n"
        "parameters: {grade_level: '03', subject: MATH, min_level: 3}\n",
        encoding="utf-8",
    )
    defs = load_indicator_definitions(folder)
    assert isinstance(defs, DefinitionSet) and "grade3_math" in defs
    with engine.begin() as conn:
        rows = compute_indicator_rows(conn, defs, MOU_K)
    # Grade 03 MATH: s4 level 1 (EAST, M, no); s10 level 4 (WEST, F, yes).
    assert cells(rows, "grade3_math", 2026) == {
        ("ALL", "all", "all"): (1, 2), ("EAST", "all", "all"): (0, 1), ("WEST", "all", "all"): (1, 1),
        ("ALL", "sex", "M"): (0, 1), ("ALL", "sex", "F"): (1, 1), ("EAST", "sex", "M"): (0, 1), ("WEST", "sex", "F"): (1, 1),
    }


def test_a_school_named_like_the_city_is_refused(engine: Engine) -> None:
    from warehouse.indicators import IndicatorError
    from warehouse.load import load_current
    from warehouse_city import CROSSWALK, staged

    rows = [["fps-s1", "EAST", "2026", "100", "10"], ["fps-s2", "ALL", "2026", "100", "9"]]
    load_current(engine, "fps/attendance", [staged("fps/attendance", 900, rows)], CROSSWALK)
    with engine.begin() as conn, pytest.raises(IndicatorError, match="stands for the whole city"):
        compute_indicator_rows(conn, load_indicator_definitions(), MOU_K)
