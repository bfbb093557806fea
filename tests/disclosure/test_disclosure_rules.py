"""Known-answer tests for data_sharing.disclosure (SPEC, "Disclosure rules")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_sharing.disclosure import (
    COMPLEMENTARY,
    SMALL_COUNT,
    SMALL_DENOMINATOR,
    DisclosureError,
    Relation,
    build_relations,
    derivable_cells,
    primary_reasons,
    protect_table,
    redact,
)


def table(rows: list[tuple], k: int = 10, indicator: str = "grade3_reading") -> pd.DataFrame:
    """rows: (school_id, dimension, group, numerator, denominator[, k]); indexed 'school/dim/group'."""
    recs = []
    for r in rows:
        s, dim, g, n, d = r[:5]
        recs.append(
            {
                "indicator": indicator,
                "period": 2026,
                "school_id": s,
                "dimension": dim,
                "group": g,
                "numerator": n,
                "denominator": d,
                "k": r[5] if len(r) > 5 else k,
            }
        )
    df = pd.DataFrame(recs)
    df.index = [f"{s}/{dim}/{g}" for s, dim, g in zip(df.school_id, df.dimension, df.group, strict=True)]
    return df


def reasons(out: pd.DataFrame) -> dict[str, str | None]:
    return out["suppression_reason"].to_dict()


def numpy_derivable(tbl: pd.DataFrame, suppressed, relations: list[Relation]) -> set[str]:
    """Independent check: x_i is derivable iff dropping column i lowers rank(A_U) by one (float SVD)."""
    pos = {label: i for i, label in enumerate(tbl.index)}
    a = np.zeros((len(relations), len(tbl)))
    for r, rel in enumerate(relations):
        a[r, pos[rel.total]] = 1
        for p in rel.parts:
            a[r, pos[p]] = -1
    unknown = np.flatnonzero(np.asarray(suppressed, dtype=bool))
    au = a[:, unknown]
    full = np.linalg.matrix_rank(au) if au.size else 0
    out = set()
    for j, col in enumerate(unknown):
        rest = np.delete(au, j, axis=1)
        if full - (np.linalg.matrix_rank(rest) if rest.size else 0) == 1:
            out.add(tbl.index[col])
    return out


# ----------------------------------------------------------------------------------------------------
# Rule 1


def test_small_denominator() -> None:
    out = protect_table(table([("ALL", "all", "all", 0, 9), ("S1", "all", "all", 0, 9)]))
    assert reasons(out) == {"ALL/all/all": SMALL_DENOMINATOR, "S1/all/all": SMALL_DENOMINATOR}
    assert out["suppressed"].dtype == bool and out["suppressed"].all()


def test_small_count_via_numerator() -> None:
    out = protect_table(table([("ALL", "all", "all", 4, 50)]))
    assert reasons(out) == {"ALL/all/all": SMALL_COUNT}


def test_small_count_via_denominator_minus_numerator() -> None:
    out = protect_table(table([("ALL", "all", "all", 45, 50)]))
    assert reasons(out) == {"ALL/all/all": SMALL_COUNT}


@pytest.mark.parametrize(
    ("n", "d", "expected"),
    [
        (0, 50, None),  # zero is not small
        (50, 50, None),  # d - n = 0 is not small either
        (0, 10, None),  # denominator == k is not small
        (10, 20, None),  # both counts exactly k
        (9, 20, SMALL_COUNT),
        (11, 20, SMALL_COUNT),  # d - n = 9
        (1, 9, SMALL_DENOMINATOR),  # small denominator wins over small count
    ],
)
def test_rule_one_boundaries(n: int, d: int, expected: str | None) -> None:
    assert reasons(protect_table(table([("ALL", "all", "all", n, d)]))) == {"ALL/all/all": expected}
    assert primary_reasons(table([("ALL", "all", "all", n, d)])).tolist() == [expected]


def test_per_row_k_cross_agency_row() -> None:
    # Same counts; the cross-agency row (k = 11, fhd's min_cell_size) is small, the fps row (k = 10) is not.
    t = table(
        [
            ("ALL", "all", "all", 10, 40, 10),
            ("S1", "all", "all", 10, 40, 11),
            ("S2", "all", "all", 0, 10, 11),
            ("S3", "all", "all", 0, 10, 10),
        ]
    )
    out = protect_table(t, schools_add_up=False)
    assert reasons(out) == {
        "ALL/all/all": None,
        "S1/all/all": SMALL_COUNT,
        "S2/all/all": SMALL_DENOMINATOR,
        "S3/all/all": None,
    }


# ----------------------------------------------------------------------------------------------------
# Rule 2: one relation


@pytest.mark.parametrize("school", ["S1", "ALL"])
def test_complementary_two_groups(school: str) -> None:
    rows = [(school, "all", "all", 13, 50), (school, "sex", "F", 3, 20), (school, "sex", "M", 10, 30)]
    out = protect_table(table(rows), schools_add_up=False)
    assert reasons(out) == {
        f"{school}/all/all": None,
        f"{school}/sex/F": SMALL_COUNT,
        f"{school}/sex/M": COMPLEMENTARY,  # else M = all - F gives F away
    }
    assert derivable_cells(out, schools_add_up=False) == set()


def test_complementary_one_school_three_groups_takes_smallest_denominator() -> None:
    rows = [
        ("S1", "all", "all", 33, 85),
        ("S1", "sex", "F", 3, 20),
        ("S1", "sex", "M", 20, 40),
        ("S1", "sex", "X", 10, 25),  # smallest published denominator
    ]
    out = protect_table(table(rows), schools_add_up=False)
    assert reasons(out) == {
        "S1/all/all": None,
        "S1/sex/F": SMALL_COUNT,
        "S1/sex/M": None,
        "S1/sex/X": COMPLEMENTARY,
    }


@pytest.mark.parametrize(
    ("m", "x", "chosen"),
    [
        ((20, 30), (10, 30), "X"),  # equal denominators: smaller numerator
        ((10, 30), (10, 30), "M"),  # equal denominator and numerator: group order
    ],
)
def test_complementary_tie_breaks(m: tuple[int, int], x: tuple[int, int], chosen: str) -> None:
    rows = [
        ("ALL", "all", "all", 3 + m[0] + x[0], 20 + m[1] + x[1]),
        ("ALL", "sex", "F", 3, 20),
        ("ALL", "sex", "M", *m),
        ("ALL", "sex", "X", *x),
    ]
    out = protect_table(table(rows))
    assert out.loc[f"ALL/sex/{chosen}", "suppression_reason"] == COMPLEMENTARY
    assert out["suppressed"].sum() == 2


def test_complementary_tie_break_by_school_id() -> None:
    rows = [
        ("ALL", "all", "all", 43, 100),
        ("S1", "all", "all", 3, 20),
        ("S3", "all", "all", 20, 40),
        ("S2", "all", "all", 20, 40),
    ]
    out = protect_table(table(rows))
    assert reasons(out) == {
        "ALL/all/all": None,
        "S1/all/all": SMALL_COUNT,
        "S3/all/all": None,
        "S2/all/all": COMPLEMENTARY,
    }


def test_complementary_via_school_to_city_relation() -> None:
    rows = [
        ("ALL", "all", "all", 50, 105),
        ("A", "all", "all", 5, 30),  # small count
        ("B", "all", "all", 20, 40),
        ("C", "all", "all", 25, 35),  # smallest published denominator among the schools
    ]
    out = protect_table(table(rows))
    assert reasons(out) == {"ALL/all/all": None, "A/all/all": SMALL_COUNT, "B/all/all": None, "C/all/all": COMPLEMENTARY}
    # without the school relation nothing else is needed
    alone = protect_table(table(rows), schools_add_up=False)
    assert reasons(alone)["C/all/all"] is None


def test_missing_row_is_a_known_zero() -> None:
    # School C has no F row (denominator 0): city F = A/F + B/F exactly, so once A/F is suppressed B/F
    # must be too. Treating C's absent row as an unknown would wrongly leave B/F published.
    rows = [
        ("ALL", "all", "all", 40, 100),
        ("ALL", "sex", "F", 20, 60),
        ("ALL", "sex", "M", 20, 40),
        ("A", "all", "all", 15, 45),
        ("A", "sex", "F", 5, 25),
        ("A", "sex", "M", 10, 20),
        ("B", "all", "all", 15, 35),
        ("B", "sex", "F", 15, 35),
        ("C", "all", "all", 10, 20),
        ("C", "sex", "M", 10, 20),
    ]
    out = protect_table(table(rows))
    assert out.loc["A/sex/F", "suppression_reason"] == SMALL_COUNT
    assert out.loc["B/sex/F", "suppression_reason"] == COMPLEMENTARY
    assert derivable_cells(out) == set()
    assert numpy_derivable(out, out["suppressed"], build_relations(out)) == set()


# ----------------------------------------------------------------------------------------------------
# Rule 2: combining relations


def multi_relation_table() -> pd.DataFrame:
    """Three schools A, B, C and the city, dimension sex with groups F, M, X; k = 10.

    Denominators (numerators are 0 except C/X, C/all, city X and city all, which are 5):

                F    M    X   all
        A       4    4    4    12      A/F, A/M, A/X: small_denominator
        B       4    4   10    18      B/F, B/M: small_denominator
        C      10   10   20    40      C/X, C/all: small_count (numerator 5)
        ALL    18   18   34    70      ALL/X, ALL/all: small_count (numerator 5)

    Every relation has 0, 2 or 3 suppressed members, so a one-relation-at-a-time method adds nothing.
    Yet two school relations (A, B) and two group relations (F, M) pin A/X:
        A/F + B/F = ALL/F - C/F = 18 - 10 = 8
        A/M + B/M = ALL/M - C/M = 18 - 10 = 8
        B/F + B/M = B/all - B/X = 18 - 10 = 8
      so A/F + A/M = 8 + 8 - 8 = 8 and A/X = A/all - (A/F + A/M) = 12 - 8 = 4 (numerators: 0 - 0 = 0).
    """
    den = {"A": (4, 4, 4, 12), "B": (4, 4, 10, 18), "C": (10, 10, 20, 40), "ALL": (18, 18, 34, 70)}
    num = {("C", "X"), ("C", "all"), ("ALL", "X"), ("ALL", "all")}
    rows = []
    for s, ds in den.items():
        for g, d in zip(("F", "M", "X", "all"), ds, strict=True):
            rows.append((s, "all" if g == "all" else "sex", g, 5 if (s, g) in num else 0, d))
    return table(rows)


def one_relation_at_a_time(tbl: pd.DataFrame) -> pd.Series:
    """The naive method: primary, then while a relation has exactly one suppressed cell, suppress another."""
    sup = primary_reasons(tbl).notna()
    rels = build_relations(tbl)
    changed = True
    while changed:
        changed = False
        for rel in rels:
            members = list(rel.members)
            if sum(sup[m] for m in members) == 1:
                published = [m for m in rel.parts if not sup[m]] or [rel.total]
                sup[min(published, key=lambda m: (tbl.loc[m, "denominator"], tbl.loc[m, "numerator"], m))] = True
                changed = True
    return sup


def test_two_schools_and_two_groups_pin_a_cell() -> None:
    t = multi_relation_table()
    rels = build_relations(t)
    # the arithmetic in the docstring, on the published values
    d = t["denominator"]
    a_f_plus_a_m = (d["ALL/sex/F"] - d["C/sex/F"]) + (d["ALL/sex/M"] - d["C/sex/M"]) - (d["B/all/all"] - d["B/sex/X"])
    assert d["A/all/all"] - a_f_plus_a_m == d["A/sex/X"] == 4

    naive = one_relation_at_a_time(t)
    assert naive.tolist() == primary_reasons(t).notna().tolist()  # no relation isolates a cell
    assert derivable_cells(t, suppressed=naive) == {"A/sex/X"}
    assert numpy_derivable(t, naive, rels) == {"A/sex/X"}

    out = protect_table(t)
    assert derivable_cells(out) == set()
    assert numpy_derivable(t, out["suppressed"], rels) == set()
    # one more cell suffices: B/X, a part of the X relation that holds A/X
    assert out.index[out["suppression_reason"] == COMPLEMENTARY].tolist() == ["B/sex/X"]
    assert (out["suppression_reason"].notna() == out["suppressed"]).all()


# ----------------------------------------------------------------------------------------------------
# What is (not) a relation


def test_overlapping_program_dimension_is_not_a_relation() -> None:
    rows = [
        ("ALL", "all", "all", 50, 100),
        ("ALL", "program", "SNAP", 5, 20),  # small count
        ("ALL", "program", "NONE", 45, 80),  # SNAP + NONE happen to equal all: still not a relation
    ]
    out = protect_table(table(rows, indicator="chronic_absence"))
    assert reasons(out) == {"ALL/all/all": None, "ALL/program/SNAP": SMALL_COUNT, "ALL/program/NONE": None}
    assert build_relations(out) == []
    # were it an exact partition, NONE would have to go
    strict = protect_table(table(rows, indicator="chronic_absence"), overlapping_dimensions=())
    assert strict.loc["ALL/program/NONE", "suppression_reason"] == COMPLEMENTARY


def chronic_absence_rows() -> list[tuple]:
    # one student transferred and counts at both A and B: schools sum to 71 > 70
    return [
        ("ALL", "all", "all", 24, 70),
        ("A", "all", "all", 5, 31),  # small count
        ("B", "all", "all", 20, 40),
    ]


def test_chronic_absence_schools_do_not_add_up() -> None:
    t = table(chronic_absence_rows(), indicator="chronic_absence")
    out = protect_table(t)  # inferred from the indicator column
    assert reasons(out) == {"ALL/all/all": None, "A/all/all": SMALL_COUNT, "B/all/all": None}
    assert [r.kind for r in build_relations(t)] == []
    assert reasons(protect_table(t, schools_add_up=False)) == reasons(out)
    # claiming they add up is refused: the sums do not hold
    with pytest.raises(DisclosureError, match="do not hold"):
        protect_table(t, schools_add_up=True)


def test_chronic_absence_still_uses_group_relations() -> None:
    rows = [
        ("ALL", "all", "all", 24, 70),
        ("A", "all", "all", 15, 35),
        ("A", "sex", "F", 5, 15),  # small count
        ("A", "sex", "M", 10, 20),
        ("B", "all", "all", 10, 40),
        ("B", "sex", "F", 10, 40),
    ]
    out = protect_table(table(rows, indicator="chronic_absence"))
    assert out.loc["A/sex/M", "suppression_reason"] == COMPLEMENTARY
    assert out["suppressed"].sum() == 2


def test_build_relations() -> None:
    t = table(
        [
            ("ALL", "all", "all", 30, 60),
            ("ALL", "sex", "F", 10, 25),
            ("ALL", "sex", "M", 20, 35),
            ("ALL", "program", "SNAP", 10, 20),
            ("A", "all", "all", 30, 60),
            ("A", "sex", "M", 20, 35),
            ("A", "sex", "F", 10, 25),
        ]
    )
    got = {(r.kind, r.school_id, r.dimension, r.group, r.total, r.parts) for r in build_relations(t)}
    assert got == {
        ("groups", "ALL", "sex", "all", "ALL/all/all", ("ALL/sex/F", "ALL/sex/M")),
        ("groups", "A", "sex", "all", "A/all/all", ("A/sex/F", "A/sex/M")),
        ("schools", "ALL", "all", "all", "ALL/all/all", ("A/all/all",)),
        ("schools", "ALL", "sex", "F", "ALL/sex/F", ("A/sex/F",)),
        ("schools", "ALL", "sex", "M", "ALL/sex/M", ("A/sex/M",)),
    }
    assert {r.kind for r in build_relations(t, schools_add_up=False)} == {"groups"}


# ----------------------------------------------------------------------------------------------------
# Output and input handling


def test_redact_nulls_suppressed_values_and_derivable_cells_reads_only_keys() -> None:
    out = protect_table(multi_relation_table())
    pub = redact(out)
    sup = pub["suppressed"]
    assert pub.loc[sup, ["numerator", "denominator", "rate"]].isna().all().all()
    assert pub.loc[~sup, ["numerator", "denominator"]].notna().all().all()
    np.testing.assert_allclose(pub.loc[~sup, "rate"], out.loc[~sup, "numerator"] / out.loc[~sup, "denominator"])
    assert derivable_cells(pub) == set()
    # the input is not modified
    assert "suppressed" not in multi_relation_table().columns


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([("ALL", "all", "all", 0, 0)], "at least 1"),
        ([("ALL", "all", "all", 11, 10)], "between 0"),
        ([("ALL", "all", "all", 1, 10), ("ALL", "all", "all", 1, 10)], "duplicate"),
        ([("ALL", "sex", "F", 1, 10)], "no 'all' row"),
        ([("ALL", "all", "F", 1, 10)], "dimension 'all'"),
        ([("ALL", "all", "all", 1, 30), ("ALL", "sex", "F", 1, 10), ("ALL", "sex", "M", 1, 10)], "do not hold"),
    ],
)
def test_bad_tables_are_refused(rows: list[tuple], match: str) -> None:
    with pytest.raises(DisclosureError, match=match):
        protect_table(table(rows).reset_index(drop=True))


def test_one_indicator_and_period_at_a_time() -> None:
    t = table([("ALL", "all", "all", 0, 50), ("A", "all", "all", 0, 50)])
    t.loc["A/all/all", "period"] = 2025
    with pytest.raises(DisclosureError, match="one indicator and period"):
        protect_table(t)
