"""Access tiers: c2c_public reads published values only, c2c_partners also the row-level tables (PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from warehouse.access import PARTNERS_ROLE, PUBLIC_ROLE, grant_access_tiers, partner_relations
from warehouse.db import make_engine, upgrade
from warehouse.releases import publish_release
from warehouse_city import load_city


@pytest.fixture
def engine(warehouse_target: tuple[str, str | None]) -> Engine:
    url, schema = warehouse_target
    e = make_engine(url, schema)
    upgrade(e)
    return e


def can_read(engine: Engine, role: str, relation: str) -> bool:
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            conn.execute(text("SET LOCAL ROLE " + conn.dialect.identifier_preparer.quote(role)))
            conn.execute(text("SELECT count(*) FROM " + conn.dialect.identifier_preparer.quote(relation)))
            return True
        except ProgrammingError as exc:
            assert "permission denied" in str(exc)
            return False
        finally:
            trans.rollback()


def test_access_tiers(engine: Engine, partnership) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        report = grant_access_tiers(engine, partnership)
        assert not report.supported and "has none" in report.message and "PostgreSQL" in report.message
        return
    load_city(engine)
    publish_release(engine, linkage_quality={}, partnership=partnership)
    first = grant_access_tiers(engine, partnership)
    again = grant_access_tiers(engine, partnership)  # idempotent
    assert first.supported and first.grants == again.grants
    assert "enrolments" in first.grants[PARTNERS_ROLE] and "children" in first.grants[PARTNERS_ROLE]
    for rel in ("current_indicator_values", "indicator_values", "releases"):
        assert can_read(engine, PUBLIC_ROLE, rel) and can_read(engine, PARTNERS_ROLE, rel)
    for rel in ("enrolments", "immunizations", "program_enrolments", "children"):
        assert not can_read(engine, PUBLIC_ROLE, rel)
        assert can_read(engine, PARTNERS_ROLE, rel)
    for rel in ("audit_log", "intake_manifest", "loaded_files"):
        assert not can_read(engine, PUBLIC_ROLE, rel) and not can_read(engine, PARTNERS_ROLE, rel)
    with engine.connect() as conn:  # SELECT only
        trans = conn.begin()
        conn.execute(text("SET LOCAL ROLE c2c_partners"))
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("DELETE FROM enrolments"))
        trans.rollback()


def test_partner_tables_follow_the_mous(partnership) -> None:  # type: ignore[no-untyped-def]
    tables = partner_relations(partnership)
    assert tables[-1] == "children" and "health_encounters" in tables and "audit_log" not in tables
    no_partners = partnership.agreements["fhd"].model_copy(update={"access_tiers": {"public": partnership.agreements["fhd"].access_tiers["public"]}})
    restricted = type(partnership)(agreements={**partnership.agreements, "fhd": no_partners}, contracts=partnership.contracts)
    tables = partner_relations(restricted)
    assert "immunizations" not in tables and "children" not in tables and "enrolments" in tables
