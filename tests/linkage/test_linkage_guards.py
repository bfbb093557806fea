"""Sibling guards that read how common a value is (guards.sibling[].distinct_common): two first names
one typo apart are two established names (twins Jaylen and Jayden) or a name and its typo."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from data_sharing.linkage.evidence import distinct_common as _distinct_common
from data_sharing.linkage.settings import DistinctCommon


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    # first names by source key: N1 held by 5 ids, N2 by 4, N3 (a typo of N1) by 1; one id has none
    names = ["N1"] * 5 + ["N2"] * 4 + ["N3", None]
    records = pd.DataFrame({
        "rid": range(len(names)),
        "source_key": [f"k{i:02d}" for i in range(len(names))],
        "first_name_hash": names,
    })
    # a second variant of k00 with the same name: one source key counts once
    records = pd.concat([records, pd.DataFrame({"rid": [99], "source_key": ["k00"], "first_name_hash": ["N1"]})])
    c = duckdb.connect()
    c.register("r", records)
    c.execute("create table records as select * from r")
    # pairs (a, b ordered as the run orders them): N1/N2, N1/N3, N1/N1, N2/null, N3/N2
    pairs = pd.DataFrame({
        "a": ["p1", "p2", "p3", "p4", "p5"],
        "b": ["q1", "q2", "q3", "q4", "q5"],
        "rid_l": [0, 1, 2, 5, 9],
        "rid_r": [5, 9, 3, 10, 6],
    })
    c.register("p", pairs)
    c.execute("create table pairs as select * from p")
    return c


def test_two_different_common_values(con: duckdb.DuckDBPyConnection) -> None:
    # at 4 ids or more: N1 (5) and N2 (4) are both common and differ; N3 (1 id) is a typo's value
    assert _distinct_common(con, "pairs", "first_name_hash", 4).tolist() == [True, False, False, False, False]
    # at 5, N2 (4 ids) no longer counts as common; the repeated variant of k00 does not count twice
    assert _distinct_common(con, "pairs", "first_name_hash", 5).tolist() == [False] * 5
    # at 1, the typo's value counts too: N1/N3 and N3/N2 differ; equal or missing values never do
    assert _distinct_common(con, "pairs", "first_name_hash", 1).tolist() == [True, True, False, False, True]


def test_the_threshold_grows_with_the_run() -> None:
    dc = DistinctCommon(column="first_name_hash", min_source_keys=3, min_share=0.0005)
    assert dc.threshold(2_000) == 3  # a small city: the floor
    assert dc.threshold(56_000) == 28  # 20,000 children
    assert dc.threshold(423_437) == 212  # 150,000 children
    assert DistinctCommon(column="first_name_hash").threshold(10**6) == 2
