"""Fixtures of the privacy tests: pinned key sets, the real contracts and small made-up extracts.

Every name, date, address and id below is invented for the tests.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from data_sharing.keys import KeySet, init_keyset
from privacy_support import FIXED_NOW, fixed_bytes
from schemas.contracts import ExtractContract, load_extract_contracts


@pytest.fixture
def keyset(tmp_path: Path) -> KeySet:
    return init_keyset(tmp_path / "keys" / "master.key", randbytes=fixed_bytes(1), now=lambda: FIXED_NOW)


@pytest.fixture
def other_keyset(tmp_path: Path) -> KeySet:
    return init_keyset(tmp_path / "other" / "master.key", randbytes=fixed_bytes(101), now=lambda: FIXED_NOW)


@pytest.fixture(scope="session")
def contracts() -> dict[tuple[str, str], ExtractContract]:
    return load_extract_contracts()


@pytest.fixture(scope="session")
def students() -> pd.DataFrame:
    """An fps/students extract with the hard cases of normalisation in it."""
    rows = [
        ("S00001", "José", "María", "García-López", "2015-03-07", "M", "12 N. Main Street", "02134"),
        ("s 00002", "Zoë", "", "O'Brien", "2014-11-30", "F", "7 Elm Ave Apt #3", "02135-4410"),
        ("S00003", "Jean-Luc", None, "de la Cruz", "2016-01-05", "M", "400 Harbor Rd", "02136"),
        ("S00004", "Ana", "Lucía", "van der Berg", "2013-07-12", "F", "9 Willow Ln", "02134"),
        ("S00005", "Mateo", None, "Nguyễn", "2015-12-01", "X", "55 Ocean Blvd", "02139"),
        ("S00006", "Grace", "Ann", "Smith Jr.", "2012-02-29", "F", "1 Pine Ct", "02134"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["student_id", "first_name", "middle_name", "last_name", "birth_date", "sex", "street_address", "zip"],
    )
    frame["race_ethnicity"] = ["HI", "WH", "MR", "WH", "AS", "BL"]
    frame["english_learner"] = ["Y", "N", "N", "N", "Y", "N"]
    frame["disability"] = "N"
    frame["econ_disadvantaged"] = ["Y", "Y", "N", "N", "Y", "N"]
    frame["homeless"] = "N"
    frame["school_id"] = ["SCH1", "SCH1", "SCH2", "SCH2", "SCH3", "SCH3"]
    frame["grade_level"] = ["05", "06", "04", "07", "05", "08"]
    frame["school_year"] = 2026
    frame["enroll_date"] = "2025-08-20"
    frame["exit_date"] = [None, None, "2026-01-15", None, None, None]
    return frame
