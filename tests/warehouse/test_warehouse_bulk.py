"""Bulk writes (warehouse.bulk) and lenient parsing per distinct value (warehouse.values).

Round trips on SQLite and PostgreSQL: what goes in through executemany / COPY comes back through SQLAlchemy
exactly (NULLs, empty strings, CSV-hostile text, dates, integers), batch boundaries included; indexes
dropped for a large load are back afterwards, and back after a failure too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Engine, inspect, select, text

import warehouse.bulk as bulk_mod
from warehouse.bulk import BulkError, column_values, deferred_indexes, insert_frame, worth_deferring
from warehouse.db import make_engine, upgrade
from warehouse.models import Enrolment, IndicatorValue
from warehouse.values import parse


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    return e


ODD = 'a,"b"\nc \\N ü'


def enrolment_rows(n: int, manifest_id: int = 1) -> pd.DataFrame:
    """n rows with every kind of value: NULLs, an empty string, CSV-hostile text, dates, nullable ints."""
    return pd.DataFrame({
        "manifest_id": manifest_id,
        "source_row": range(1, n + 1),
        "source_sha256": "0" * 64,
        "source_key": [f"k{i:06d}" for i in range(n)],
        "child_key": [None if i % 3 == 0 else f"c{i % 7}" for i in range(n)],
        "school_year": pd.array([None if i % 5 == 0 else 2020 + i % 4 for i in range(n)], dtype="Int64"),
        "school_id": [ODD if i % 4 == 0 else ("" if i % 4 == 1 else None) for i in range(n)],
        "enroll_date": [None if i % 2 else dt.date(2025, 8, 1) + dt.timedelta(days=i % 30) for i in range(n)],
    })


def read_back(engine: Engine) -> pd.DataFrame:
    t = Enrolment.__table__
    cols = ["manifest_id", "source_row", "source_sha256", "source_key", "child_key", "school_year", "school_id", "enroll_date"]
    with engine.connect() as conn:
        rows = conn.execute(select(*(t.c[c] for c in cols)).order_by(t.c.manifest_id, t.c.source_row)).all()
    return pd.DataFrame(rows, columns=cols)


def test_insert_frame_round_trip_across_batches(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_mod, "BATCH_ROWS", 7)  # 50 rows: 8 batches, the last one short
    sent = enrolment_rows(50)
    with engine.begin() as conn:
        assert insert_frame(conn, Enrolment.__table__, sent) == 50
    got = read_back(engine)
    assert len(got) == 50
    for col in sent.columns:
        want = [None if pd.isna(v) else v for v in sent[col].astype(object)]
        have = [None if pd.isna(v) else v for v in got[col].astype(object)]
        assert have == want, col
    # the empty string stays an empty string (COPY: quoted), NULL stays NULL
    assert got.loc[1, "school_id"] == "" and got.loc[2, "school_id"] is None and got.loc[0, "school_id"] == ODD
    assert isinstance(got.loc[0, "enroll_date"], dt.date) and pd.isna(got.loc[0, "school_year"])


def test_insert_frame_is_part_of_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="injected"):
        with engine.begin() as conn:
            insert_frame(conn, Enrolment.__table__, enrolment_rows(5))
            raise RuntimeError("injected")
    assert read_back(engine).empty


def test_insert_frame_refuses_unknown_columns_and_takes_numeric_frames(engine: Engine) -> None:
    with pytest.raises(BulkError, match="no column"), engine.begin() as conn:
        insert_frame(conn, Enrolment.__table__, enrolment_rows(2).assign(first_name="x"))
    with engine.begin() as conn:
        assert insert_frame(conn, Enrolment.__table__, enrolment_rows(0)) == 0


def test_indicator_values_with_floats_bools_and_missing_counts(engine: Engine) -> None:
    from warehouse.models import Release

    with engine.begin() as conn:
        conn.execute(Release.__table__.insert().values(
            release_id=1, created_at=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), definitions="{}", source_files="[]",
            linkage_quality="{}", rows=2, suppressed_rows=1, notes="",
        ))
    frame = pd.DataFrame({
        "release_id": 1, "indicator": "i", "period": [2025, 2026], "school_id": "ALL", "dimension": "all", "group": "all",
        "numerator": pd.array([3, None], dtype="Int64"), "denominator": pd.array([24, None], dtype="Int64"),
        "rate": [0.125, float("nan")], "suppressed": [False, True], "suppression_reason": [None, "primary"],
    })
    iv = IndicatorValue.__table__
    with engine.begin() as conn:
        insert_frame(conn, iv, frame)
    with engine.connect() as conn:
        got = conn.execute(select(iv.c.numerator, iv.c.denominator, iv.c.rate, iv.c.suppressed, iv.c.suppression_reason)
                           .order_by(iv.c.period)).all()
    assert [tuple(r) for r in got] == [(3, 24, 0.125, False, None), (None, None, None, True, "primary")]


def _index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {ix["name"] for ix in inspect(conn).get_indexes("enrolments") if not ix["unique"]}  # PostgreSQL: + uq_enrolments_row


def test_deferred_indexes_come_back_after_success_and_after_failure(engine: Engine) -> None:
    expected = {"ix_enrolments_child_key", "ix_enrolments_source_key", "ix_enrolments_school_year"}
    assert _index_names(engine) == expected
    with pytest.raises(RuntimeError, match="injected"), engine.begin() as conn:
        with deferred_indexes(conn, Enrolment.__table__):
            assert not {ix["name"] for ix in inspect(conn).get_indexes("enrolments")} & expected
            insert_frame(conn, Enrolment.__table__, enrolment_rows(20))
            raise RuntimeError("injected")
    assert _index_names(engine) == expected and read_back(engine).empty
    with engine.begin() as conn, deferred_indexes(conn, Enrolment.__table__):
        insert_frame(conn, Enrolment.__table__, enrolment_rows(20))
    assert _index_names(engine) == expected and len(read_back(engine)) == 20


def test_worth_deferring(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_mod, "DEFER_MIN_ROWS", 10)
    with engine.begin() as conn:
        assert not worth_deferring(conn, Enrolment.__table__, 9)  # too small to bother
        assert worth_deferring(conn, Enrolment.__table__, 10)  # empty table
        insert_frame(conn, Enrolment.__table__, enrolment_rows(40))
        assert worth_deferring(conn, Enrolment.__table__, 20) and not worth_deferring(conn, Enrolment.__table__, 19)


def test_column_values_are_driver_natives() -> None:
    assert column_values(pd.Series([3, 1, 3], dtype="int64")) == [3, 1, 3]
    assert column_values(pd.Series([1, None, 1], dtype="Int64")) == [1, None, 1]
    assert column_values(pd.Series(["a", None, float("nan")], dtype=object)) == ["a", None, None]
    assert column_values(pd.Series([dt.date(2025, 1, 2), None]), str) == ["2025-01-02", None]
    assert [type(v) for v in column_values(pd.Series([1.5, 2.5]))] == [float, float]


def test_parse_per_distinct_value_matches_the_rules() -> None:
    arrow = pd.Series(pa.array([" 12 ", "12.0", "1e3", "x", "", None, "2147483648", "-3", " 12 "]), dtype=pd.ArrowDtype(pa.string()))
    assert parse(arrow, "int").tolist() == [12, 12, 1000, pd.NA, pd.NA, pd.NA, pd.NA, -3, 12]
    assert str(parse(arrow, "int").dtype) == "Int64"
    dates = pd.Series(["2024-02-29", "2023-02-29", " 2025-01-05", "", None, "2024-02-29"], dtype=object)
    assert parse(dates, "date").tolist() == [dt.date(2024, 2, 29), None, dt.date(2025, 1, 5), None, None, dt.date(2024, 2, 29)]
    assert parse(pd.Series(["3", " 003", "141", "A1", ""]), "cvx").tolist() == ["03", "03", "141", "A1", None]
    assert parse(pd.Series([" a ", "", None, "b"]), "str").tolist() == ["a", None, None, "b"]
    mixed = pd.Series([7, None, " x "], dtype=object)  # not all strings: the general path
    assert parse(mixed, "str").tolist() == ["7", None, "x"]


@pytest.fixture
def other_engine(warehouse_target: tuple[str, str | None], tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """A second empty warehouse next to ``engine`` (another file / another schema), dropped afterwards."""
    url, schema = warehouse_target
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}" if schema is None else url, None if schema is None else schema + "_o")
    upgrade(other)
    yield other
    if schema is not None:
        with other.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS " + conn.dialect.identifier_preparer.quote_schema(schema + "_o") + " CASCADE"))
    other.dispose()


def test_a_load_with_indexes_deferred_gives_the_same_tables_and_rolls_back_whole(
    engine: Engine, other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every extract of the tiny city loaded with indexes dropped and rebuilt (threshold 1 row) equals the
    same load with indexes in place; a failure after the drop leaves tables and indexes as they were."""
    import warehouse.load as load_mod
    from test_warehouse_load import assert_same, snapshot
    from warehouse_city import CROSSWALK, STUDENTS, load_city, staged

    load_city(engine)  # indexes kept: the city is far below DEFER_MIN_ROWS
    kept = snapshot(engine)
    other = other_engine
    monkeypatch.setattr(bulk_mod, "DEFER_MIN_ROWS", 1)
    load_city(other)
    assert_same(kept, snapshot(other))
    indexes = _index_names(other)
    real = load_mod.bulk_insert

    def failing(conn, table, frame):  # type: ignore[no-untyped-def]
        real(conn, table, frame)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(load_mod, "bulk_insert", failing)
    with pytest.raises(RuntimeError, match="injected"):
        load_mod.load_current(other, "fps/students", [staged("fps/students", 9, STUDENTS[:2])], CROSSWALK)
    assert_same(kept, snapshot(other))
    assert _index_names(other) == indexes == _index_names(engine)
