"""Periods of agency ids (guards.concurrent_ids): two ids of one agency held at the same time are two
persons; held one after the other, one may be a re-registration of the other."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_sharing.linkage.run import _periods, _shared_periods


def _attrs() -> dict[str, pd.DataFrame]:
    # twin A and twin B enrolled in the same three grades; C re-registered as D after grade 02; E has
    # no grade (a null); F is in another agency's frame without the column
    fps = pd.DataFrame({
        "source_key": ["A", "A", "A", "B", "B", "B", "C", "C", "D", "D", "D", "E"],
        "grade_level": ["01", "02", "03", "01", "02", "03", "01", "02", "03", "04", "04", None],
    })
    fhd = pd.DataFrame({"source_key": ["F"], "sex": ["M"]})
    return {"fps": fps, "fhd": fhd}


def test_periods_are_the_sets_of_values_per_source_key() -> None:
    keys, masks = _periods(_attrs(), "grade_level")
    assert sorted(keys) == ["A", "B", "C", "D"]  # E has no value, F no column
    counts = dict(zip(keys, np.bitwise_count(masks).sum(axis=1).tolist(), strict=True))
    assert counts == {"A": 3, "B": 3, "C": 2, "D": 2}


def test_shared_periods_count_common_values_and_flag_unknown() -> None:
    keys, masks = _periods(_attrs(), "grade_level")
    left = pd.Series(["A", "C", "A", "A", "E", "F"])
    right = pd.Series(["B", "D", "C", "D", "A", "A"])
    assert _shared_periods(keys, masks, left, right).tolist() == [3, 0, 2, 1, -1, -1]


def test_more_than_64_distinct_values_use_several_words() -> None:
    values = [f"{2000 + i}" for i in range(100)]
    frame = pd.DataFrame({"source_key": ["X"] * 100 + ["Y", "Y"], "school_year": values + ["2099", "2000"]})
    keys, masks = _periods({"a": frame}, "school_year")
    assert masks.shape == (2, 2)
    assert _shared_periods(keys, masks, pd.Series(["X"]), pd.Series(["Y"])).tolist() == [2]


def test_no_attributes_no_periods() -> None:
    keys, masks = _periods(None, "grade_level")
    assert len(keys) == 0
    assert _shared_periods(keys, masks, pd.Series(["A"]), pd.Series(["B"])).tolist() == [-1]
