"""Releases: disclosure control in the published rows, atomic publication, the current pointer, pruning."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, text

import warehouse.releases as rel
from schemas.indicators import DefinitionSet, load_indicator_definitions
from warehouse.audit import read_entries, verify
from schemas.roles import ROLES
from warehouse.db import make_engine, upgrade
from warehouse.indicators import compute_indicator_rows
from warehouse.load import load_current
from warehouse.models import IndicatorValue, Release
from warehouse.releases import current_indicator_values, current_release, list_releases, publish_release
from warehouse_city import CROSSWALK, STUDENTS, city_engine, staged

MOU_K = {"fps": 10, "fhd": 11, "dhs": 10}
LINKAGE = {"fps~fhd": {"records": 19, "link_rate": 0.842}, "fps~dhs": {"records": 20, "link_rate": 0.3}}
T0 = dt.datetime(2026, 11, 24, 4, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    return city_engine(warehouse_target)


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_release_with_the_mous_cell_sizes(engine: Engine, partnership) -> None:  # type: ignore[no-untyped-def]
    info = publish_release(engine, linkage_quality=LINKAGE, run_id="run-1", partnership=partnership, now=T0)
    pub = current_indicator_values(engine)
    assert info.release_id == pub.release_id.unique().item() and info.rows == len(pub) and info.is_current
    # Every denominator in the tiny city is below k (10; 11 with health data) except well_child_visit
    # 2026 city-wide: 11 students, 3 with a visit -> 3 is between 1 and 10: small_count.
    reasons = pub.set_index(["indicator", "period", "school_id", "dimension", "group"]).suppression_reason
    assert reasons.loc[("well_child_visit", 2026, "ALL", "all", "all")] == "small_count"
    assert (reasons.drop(("well_child_visit", 2026, "ALL", "all", "all")) == "small_denominator").all()
    assert pub.suppressed.all() and pub.numerator.isna().all() and pub.denominator.isna().all() and pub.rate.isna().all()
    assert info.suppressed_rows == len(pub) and dict(info.by_reason or {}) == {"small_count": 1, "small_denominator": len(pub) - 1}
    # What the release rests on.
    cur = current_release(engine)
    assert cur is not None and cur.release_id == info.release_id and cur.run_id == "run-1"
    assert cur.linkage_quality == LINKAGE
    assert cur.definitions["kindergarten_mmr2"]["version"] == 1 and len(cur.definitions["kindergarten_mmr2"]["sha256"]) == 64
    assert {(f["agency"], f["extract"]) for f in cur.source_files} == {
        ("fps", "students"), ("fps", "attendance"), ("fps", "assessments"), ("fps", "graduation"),
        ("fhd", "immunizations"), ("fhd", "encounters"), ("dhs", "program_enrollments"),
    }
    assert all(len(f["sha256"]) == 64 for f in cur.source_files)
    assert "differencing across indicators or years" in cur.notes and "Dose validity by age" in cur.notes
    # The view the public tier reads shows the same rows.
    with engine.connect() as conn:
        n_view = conn.execute(text("SELECT count(*) FROM current_indicator_values")).scalar_one()
        n_sup = conn.execute(text("SELECT count(*) FROM current_indicator_values WHERE numerator IS NULL AND suppressed")).scalar_one()
    assert n_view == n_sup == len(pub)
    # The release is in the audit log, in the chain.
    [event] = [e for e in read_entries(engine) if e.event_type == "release"]
    assert event.details["release_id"] == info.release_id and event.details["linkage_quality"] == LINKAGE
    assert verify(engine).ok


def test_complementary_suppression_known_answer(engine: Engine) -> None:
    """well_child_visit with the 'all' dimension only and k = 2, worked by hand.

    2026: city 3/11 (3 >= 2, 8 >= 2: published), EAST 2/5 (published), WEST 1/6 (1 < 2: small_count). The
    relation city = EAST + WEST has exactly one suppressed member, so its published part with the smallest
    denominator, EAST, is suppressed too (complementary); the city row stays published.
    2025: city 0/3 and EAST 0/3 (zero is not small; 3 >= 2): published. 2027: 1/1 twice: small_denominator.
    """
    wc = load_indicator_definitions()["well_child_visit"]
    defs = DefinitionSet({"well_child_visit": wc.model_copy(update={"dimensions": ["all"]})})
    publish_release(engine, linkage_quality=LINKAGE, definitions=defs, min_cell_sizes={"fps": 2, "fhd": 2}, now=T0)
    pub = current_indicator_values(engine)
    got = {
        (r.period, r.school_id): (r.suppression_reason, None if pd.isna(r.numerator) else int(r.numerator),
                                  None if pd.isna(r.denominator) else int(r.denominator))
        for r in pub.itertuples()
    }
    assert got == {
        (2025, "ALL"): (None, 0, 3), (2025, "EAST"): (None, 0, 3),
        (2026, "ALL"): (None, 3, 11), (2026, "EAST"): ("complementary", None, None), (2026, "WEST"): ("small_count", None, None),
        (2027, "ALL"): ("small_denominator", None, None), (2027, "WEST"): ("small_denominator", None, None),
    }
    row = pub[(pub.period == 2026) & (pub.school_id == "ALL")].iloc[0]
    assert row.rate == 3 / 11 and not row.suppressed and pub.rate.dtype == "float64"
    assert pub[pub.suppressed].rate.isna().all()


def test_without_small_cells_everything_is_published(engine: Engine) -> None:
    publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes={"fps": 1, "fhd": 1, "dhs": 1}, now=T0)
    pub = current_indicator_values(engine)
    with engine.begin() as conn:
        rows = compute_indicator_rows(conn, load_indicator_definitions(), dict.fromkeys(ROLES, 1))  # role -> k
    assert not pub.suppressed.any() and pub.suppression_reason.isna().all()
    key = ["indicator", "period", "school_id", "dimension", "group"]
    merged = pub.merge(rows, on=key, suffixes=("", "_raw"))
    assert len(merged) == len(pub) == len(rows)
    assert (merged.numerator == merged.numerator_raw).all() and (merged.denominator == merged.denominator_raw).all()
    assert (merged.rate == merged.numerator_raw / merged.denominator_raw).all()


def test_failed_release_leaves_the_previous_one_current(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes={"fps": 1, "fhd": 1, "dhs": 1}, now=T0)
    before = current_indicator_values(engine)
    # New data arrives, then publication fails after the new release's rows were written.
    load_current(engine, "fps/students", [staged("fps/students", 500, STUDENTS[:4])], CROSSWALK)
    audit_before = len(read_entries(engine))
    written: list[int] = []
    real_write = rel._write_values

    def spy(conn, release_id, published):  # type: ignore[no-untyped-def]
        written.append(real_write(conn, release_id, published))
        return written[-1]

    def boom(conn, release_id, now):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected failure before the pointer flips")

    monkeypatch.setattr(rel, "_write_values", spy)
    monkeypatch.setattr(rel, "_set_current", boom)
    with pytest.raises(RuntimeError, match="injected"):
        publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes={"fps": 1, "fhd": 1, "dhs": 1}, now=T0)
    assert written and written[0] > 0  # the failure came mid-publication
    cur = current_release(engine)
    assert cur is not None and cur.release_id == first.release_id
    pd.testing.assert_frame_equal(current_indicator_values(engine), before)
    assert count(engine, Release.__table__) == 1 and count(engine, IndicatorValue.__table__) == len(before)
    assert len(read_entries(engine)) == audit_before and verify(engine).ok
    # The next run succeeds and becomes current.
    monkeypatch.undo()
    second = publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes={"fps": 1, "fhd": 1, "dhs": 1}, now=T0)
    assert second.previous_release_id == first.release_id and current_release(engine).release_id == second.release_id  # type: ignore[union-attr]
    assert not current_indicator_values(engine).equals(before)
    pd.testing.assert_frame_equal(current_indicator_values(engine, release_id=first.release_id), before)


def test_only_the_last_releases_are_kept(engine: Engine) -> None:
    ids = [publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, keep=2, now=T0).release_id for _ in range(3)]
    kept = [r.release_id for r in list_releases(engine)]
    assert kept == [ids[2], ids[1]]
    with engine.connect() as conn:
        in_values = set(conn.execute(select(IndicatorValue.__table__.c.release_id).distinct()).scalars())
    assert in_values == {ids[1], ids[2]}
    assert [e.details["pruned"] for e in read_entries(engine) if e.event_type == "release"] == [[], [], [ids[0]]]
    with pytest.raises(rel.ReleaseError):
        publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, keep=0)
    with pytest.raises(rel.ReleaseError, match="JSON"):
        publish_release(engine, linkage_quality={"x": float("nan")}, min_cell_sizes=MOU_K)


def test_reading_before_any_release(engine: Engine) -> None:
    assert current_release(engine) is None and list_releases(engine) == []
    empty = current_indicator_values(engine)
    assert empty.empty and list(empty.columns)[:3] == ["release_id", "indicator", "period"]


def test_an_empty_warehouse_is_refused_and_the_previous_release_stays_current(engine: Engine) -> None:
    """A nightly run over a warehouse emptied (every snapshot withdrawn) publishes nothing: an empty release
    would replace a good one for every reader."""
    from warehouse.load import EXTRACT_TABLES

    first = publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, now=T0)
    before = current_indicator_values(engine)
    assert first.rows == len(before) > 0
    for key in sorted(EXTRACT_TABLES):
        load_current(engine, key, [], None)
    audit_before = len(read_entries(engine))
    with pytest.raises(rel.EmptyReleaseError, match=f"no student enrolment.*release {first.release_id} stays current") as err:
        publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, now=T0)
    assert err.value.current_release_id == first.release_id and isinstance(err.value, rel.ReleaseError)
    cur = current_release(engine)
    assert cur is not None and cur.release_id == first.release_id
    pd.testing.assert_frame_equal(current_indicator_values(engine), before)
    assert count(engine, Release.__table__) == 1 and count(engine, IndicatorValue.__table__) == len(before)
    assert len(read_entries(engine)) == audit_before and verify(engine).ok


def test_a_new_hub_without_data_has_no_release_and_is_told_why(warehouse_target: tuple[str, str | None]) -> None:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    with pytest.raises(rel.EmptyReleaseError, match="no extract of role school_enrolment has been loaded yet.*there is no release yet") as err:
        publish_release(e, linkage_quality={"linkage": "not run"}, min_cell_sizes=MOU_K, now=T0)
    assert err.value.current_release_id is None
    assert current_release(e) is None and list_releases(e) == [] and current_indicator_values(e).empty
    assert count(e, Release.__table__) == 0 and read_entries(e) == []
    # Enrolments that cannot be placed (no school year) count nowhere: refused, with that reason.
    load_current(e, "fps/students", [staged("fps/students", 900, [r[:11] + [""] + r[12:] for r in STUDENTS])], CROSSWALK)
    with pytest.raises(rel.EmptyReleaseError, match=f"none of the warehouse's {len(STUDENTS)} enrolments has a school year"):
        publish_release(e, linkage_quality={"linkage": "not run"}, min_cell_sizes=MOU_K, now=T0)
    e.dispose()
