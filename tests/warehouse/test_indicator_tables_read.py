"""Incremental releases copy an indicator from the previous release when no table it reads changed; which
tables it reads comes from its definition (the roles of its kind and definition, ``tables_read``). Here the
SQL each definition actually runs is captured and the warehouse tables it names are compared with that."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import event

from schemas.indicators import DefinitionSet, load_indicator_definitions
from schemas.roles import ROLES
from warehouse.db import make_engine, upgrade
from warehouse.indicators import compute_indicator_rows
from warehouse.releases import k_by_role, tables_read

ROLE_TABLES = sorted({r.table for r in ROLES.values()})
DEFINITIONS = load_indicator_definitions()


def _tables_in_sql(engine, definition) -> set[str]:  # type: ignore[no-untyped-def]
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            compute_indicator_rows(conn, DefinitionSet({definition.id: definition}), k_by_role(None))
            conn.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    sql = "\n".join(statements)
    return {t for t in ROLE_TABLES if re.search(r'(?<![\w.])"?' + re.escape(t) + r'"?(?![\w])', sql)}


@pytest.mark.parametrize("indicator_id", sorted(DEFINITIONS))
def test_every_table_an_indicator_reads_is_one_of_its_roles(tmp_path: Path, indicator_id: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(engine)
    try:
        d = DEFINITIONS[indicator_id]
        read = _tables_in_sql(engine, d)
        assert "enrolments" in read  # every kind places its students through their enrolment
        assert read <= tables_read(d), f"{indicator_id} reads {sorted(read - tables_read(d))} beyond its roles"
    finally:
        engine.dispose()


def test_the_attendance_indicators_are_the_ones_reading_attendance() -> None:
    """Known answer from schemas/indicators: the two chronic-absence definitions read attendance."""
    reading = sorted(i for i, d in DEFINITIONS.items() if ROLES["school_attendance"].table in tables_read(d))
    assert reading == ["chronic_absence", "chronic_absence_by_program"]
