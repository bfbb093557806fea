"""Advisory locks are per schema: two warehouses in one PostgreSQL database never wait on each other, one
warehouse's writers still exclude each other (``warehouse.locks``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.conftest import PG_URL
from warehouse.db import make_engine
from warehouse.locks import session_lock, session_unlock, xact_lock

pytestmark = pytest.mark.postgres

KEY = 0x_C2C_0001  # the manifest's key: what two hubs' intakes would both take


@pytest.fixture
def two_schemas(pg_schema: str) -> Iterator[tuple[Engine, Engine]]:
    other = f"{pg_schema}_b"
    a, b = make_engine(PG_URL, pg_schema), make_engine(PG_URL, other)
    yield a, b
    a.dispose()
    b.dispose()
    with make_engine(PG_URL).begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{other}" CASCADE'))


def _try(engine: Engine, key: int) -> bool:
    """Whether a second session of ``engine``'s schema gets lock ``key`` now (without waiting)."""
    with engine.connect() as conn:
        got = conn.execute(
            text("SELECT pg_try_advisory_xact_lock((hashtext(current_schema())::bigint << 32) | CAST(:k AS bigint))"),
            {"k": key},
        ).scalar_one()
        conn.rollback()
        return bool(got)


def test_a_transaction_lock_excludes_its_own_schema_only(two_schemas: tuple[Engine, Engine]) -> None:
    a, b = two_schemas
    with a.connect() as holder:
        xact_lock(holder, KEY)
        assert _try(a, KEY) is False          # the same hub's second writer waits
        assert _try(b, KEY) is True           # another hub in the same database does not
        assert _try(a, KEY + 1) is True       # another lock of the same hub is free
        holder.rollback()
    assert _try(a, KEY) is True               # released with the transaction


def test_a_session_lock_is_held_until_unlocked(two_schemas: tuple[Engine, Engine]) -> None:
    a, b = two_schemas
    with a.connect() as holder:
        session_lock(holder, KEY)
        holder.commit()
        assert _try(a, KEY) is False          # survives the commit
        assert _try(b, KEY) is True
        session_unlock(holder, KEY)
        holder.commit()
        assert _try(a, KEY) is True


def test_a_key_outside_31_bits_is_refused(two_schemas: tuple[Engine, Engine]) -> None:
    a, _ = two_schemas
    with a.connect() as conn, pytest.raises(ValueError, match="31 bits"):
        xact_lock(conn, 2**31)


def test_the_schema_decides_not_the_name_of_the_lock(pg_schema: str) -> None:
    """The bare key is never taken: a lock of one schema is not the plain ``pg_advisory_lock(key)``."""
    engine = make_engine(PG_URL, pg_schema)
    try:
        with engine.connect() as holder:
            xact_lock(holder, KEY)
            with engine.connect() as other:
                assert other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": KEY}).scalar_one() is True
                other.rollback()
            holder.rollback()
    finally:
        engine.dispose()
