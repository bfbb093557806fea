"""PostgreSQL advisory locks scoped to the warehouse's schema.

Advisory lock keys are global to a database, not to a schema: two c2c warehouses in one database (one
per city, or a test and a production schema) would queue behind each other's loads and releases if they
used the bare keys. Every c2c lock therefore takes the 64-bit key ``hashtext(current_schema()) << 32 |
key``: the same key in the same schema excludes, different schemas never meet (a hash collision between
two schema names only serialises them, which is safe). ``key`` must fit in 31 bits.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_SCOPED = "(hashtext(current_schema())::bigint << 32) | CAST(:k AS bigint)"


def _check(key: int) -> int:
    if not 0 <= key < 2**31:
        raise ValueError(f"advisory lock key {key!r} must fit in 31 bits")
    return key


def xact_lock(conn: Connection, key: int) -> None:
    """Hold the schema's lock ``key`` until the end of the current transaction."""
    conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCOPED})"), {"k": _check(key)})


def session_lock(conn: Connection, key: int) -> None:
    """Hold the schema's lock ``key`` on this connection until :func:`session_unlock`."""
    conn.execute(text(f"SELECT pg_advisory_lock({_SCOPED})"), {"k": _check(key)})


def session_unlock(conn: Connection, key: int) -> None:
    conn.execute(text(f"SELECT pg_advisory_unlock({_SCOPED})"), {"k": _check(key)})


__all__ = ["session_lock", "session_unlock", "xact_lock"]
