"""Periods of agency ids (guards.concurrent_ids): two ids of one agency held at the same time are two
persons; held one after the other, one may be a re-registration of the other."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_sharing.linkage.guards import _attributes, _periods, _shared_periods, period_rows


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


def test_periods_of_one_agency_only() -> None:
    # the same attribute name in another agency's frame is not read for this agency's guard
    attrs = {**_attrs(), "dhs": pd.DataFrame({"source_key": ["G", "H"], "grade_level": ["01", "01"]})}
    keys, _ = _periods(attrs, "grade_level", "fps")
    assert sorted(keys) == ["A", "B", "C", "D"]
    keys, masks = _periods(attrs, "grade_level", "dhs")
    assert sorted(keys) == ["G", "H"]
    assert _shared_periods(keys, masks, pd.Series(["G"]), pd.Series(["H"])).tolist() == [1]


def test_period_rows_join_an_event_extracts_columns() -> None:
    # two spells of K (one listed twice), one of L; a row without a start date gives no value
    events = pd.DataFrame({
        "program": ["SNAP", "SNAP", "WIC", "SNAP", "TANF"],
        "start_date": ["2021-03-01", "2021-03-01", "2022-01-10", "2021-03-01", None],
    })
    rows = period_rows(events, np.array(["K", "K", "K", "L", "L"], dtype=object), ["program", "start_date"], "spell")
    assert sorted(map(tuple, rows[["source_key", "spell"]].to_numpy().tolist())) == [
        ("K", "SNAP|2021-03-01"), ("K", "WIC|2022-01-10"), ("L", "SNAP|2021-03-01")]
    keys, masks = _periods({"dhs": rows}, "spell", "dhs")
    assert _shared_periods(keys, masks, pd.Series(["K"]), pd.Series(["L"])).tolist() == [1]


def test_period_rows_do_not_displace_a_keys_attributes() -> None:
    # the attributes of a key come from its person rows even when period rows follow them
    frame = pd.DataFrame({"source_key": ["K", "L"], "row_number": [1, 2], "sex": ["F", "M"],
                          "birth_date_year_month": ["2015-04", "2016-01"]})
    rows = pd.DataFrame({"source_key": ["K", "L"], "spell": ["SNAP|2021-03-01", "SNAP|2021-03-01"]})
    out = _attributes({"dhs": pd.concat([frame, rows], ignore_index=True)}).set_index("source_key")
    assert out.sex.to_dict() == {"K": "F", "L": "M"}
    assert out.birth_year.to_dict() == {"K": 2015, "L": 2016}
