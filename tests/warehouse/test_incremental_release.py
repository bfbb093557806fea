"""Incremental releases (issue 16 item 3): with the tables' link state given, a release copies the
indicators whose definitions and tables read are as they were for the current release, recomputes the
others, and publishes exactly what a full computation publishes; any other link state recomputes all."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from sqlalchemy import Engine

from schemas.indicators import load_indicator_definitions
from warehouse.load import load_current
from warehouse.releases import ReleaseInfo, current_indicator_values, publish_release
from warehouse_city import CROSSWALK, EXTRACTS, city_engine, staged

LINKAGE = {"fps~fhd": {"records": 19, "link_rate": 0.842}}
T0 = dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.timezone.utc)
ALL = sorted({d.indicator for d in load_indicator_definitions().values()})
ATTENDANCE_READERS = ["chronic_absence"]  # both chronic_absence* definitions publish it (role school_attendance)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    return city_engine(warehouse_target)


def _basis(info: ReleaseInfo) -> dict:  # type: ignore[type-arg]
    """What stages.release records after a release, through JSON as the record file holds it."""
    return json.loads(json.dumps({"release_id": info.release_id, "definitions": info.definitions, "tables": info.table_states}))


def _values(engine: Engine) -> pd.DataFrame:
    return current_indicator_values(engine).drop(columns=["release_id"])


def test_unchanged_tables_are_copied_and_a_changed_one_recomputes_its_readers(engine: Engine, partnership) -> None:  # type: ignore[no-untyped-def]
    first = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0, link_state="cw1|v1")
    assert first.reused == () and first.table_states is not None and len(first.table_states) == 9
    before = _values(engine)
    assert len(before) > 0

    again = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0, link_state="cw1|v1",
                            previous=_basis(first))
    assert list(again.reused) == ALL
    pd.testing.assert_frame_equal(_values(engine), before)

    # attendance changes: one file replaced by a copy without its first row
    cols, rows = EXTRACTS["fps/attendance"]
    load_current(engine, "fps/attendance", [staged("fps/attendance", 900, rows[1:])], CROSSWALK)
    third = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0, link_state="cw1|v1",
                            previous=_basis(again))
    assert sorted(set(ALL) - set(third.reused)) == ATTENDANCE_READERS
    incremental = _values(engine)
    full = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0)  # no link state: computes all
    assert full.reused == () and full.table_states is None
    pd.testing.assert_frame_equal(incremental, _values(engine))
    assert not incremental.equals(before)  # the change reached the published rows

    # another crosswalk (or pseudonym key): nothing is copied; a stale basis (not the current release): neither
    relinked = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0, link_state="cw2|v1",
                               previous=_basis(third))
    assert relinked.reused == ()
    stale = publish_release(engine, linkage_quality=LINKAGE, partnership=partnership, now=T0, link_state="cw2|v1",
                            previous=_basis(third))
    assert stale.reused == ()
