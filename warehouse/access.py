"""Access tiers as database roles (PostgreSQL): ``c2c_public`` and ``c2c_partners``.

* ``c2c_public`` may SELECT the published, suppressed indicator values only: the
  ``current_indicator_values`` view, ``indicator_values`` (kept releases; suppressed cells are stored
  NULL), ``releases`` (release notes, definition versions, source checksums, linkage quality) and the
  ``current_release`` pointer.
* ``c2c_partners`` is a member of ``c2c_public`` and may also SELECT the pseudonymous row-level tables
  (keyed by ``child_key``) of the agencies whose MOU describes a ``partners`` tier, and ``children`` when
  every agency's does. Never the intake manifest or the audit log.

Roles are created ``NOLOGIN`` (grant them to login roles or groups); privileges are reset and granted
again on every call, so the call is idempotent and follows MOU changes. SQLite has no roles: the call
returns a report saying so and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from schemas.roles import ROLES
from warehouse.load import extract_tables
from warehouse.models import Child

if TYPE_CHECKING:
    from schemas.partnership import Partnership

PUBLIC_ROLE = "c2c_public"
PARTNERS_ROLE = "c2c_partners"
PUBLIC_RELATIONS = ("current_indicator_values", "indicator_values", "releases", "current_release")


@dataclass(frozen=True)
class AccessReport:
    supported: bool
    message: str
    grants: dict[str, list[str]] = field(default_factory=dict)


def partner_relations(partnership: Partnership) -> list[str]:
    """Row-level tables partners may read under the MOUs."""
    ok = {a for a, ag in partnership.agreements.items() if "partners" in ag.access_tiers}
    specs = extract_tables(partnership.contracts).values()
    # a role's table holds every agency of that role: readable only when all of them allow partners
    tables = sorted({s.table.name for s in specs} - {s.table.name for s in specs if s.agency not in ok})
    agencies_with_tables = {spec.agency for spec in specs}
    if agencies_with_tables <= ok:
        tables.append(Child.__tablename__)
    return tables


def _ensure_role(conn: Connection, role: str) -> None:
    exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    if exists is None:
        # Roles are cluster-wide; another session may create it between the check and here.
        conn.execute(text("SAVEPOINT c2c_role"))
        try:
            conn.execute(text("CREATE ROLE " + conn.dialect.identifier_preparer.quote(role) + " NOLOGIN"))
            conn.execute(text("RELEASE SAVEPOINT c2c_role"))
        except Exception:
            conn.execute(text("ROLLBACK TO SAVEPOINT c2c_role"))
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
                raise


def grant_access_tiers(engine: Engine, partnership: Partnership) -> AccessReport:
    """Create/refresh the ``c2c_public`` and ``c2c_partners`` roles and their SELECT grants (idempotent)."""
    if engine.dialect.name != "postgresql":
        return AccessReport(
            supported=False,
            message=(
                f"access tiers are database roles, and {engine.dialect.name} has none: on SQLite anyone who can "
                "read the file reads every table. Serve the public tier from a PostgreSQL warehouse "
                "(C2C_WAREHOUSE_URL=postgresql://...) or publish an export of current_indicator_values only."
            ),
        )
    partners = partner_relations(partnership)
    with engine.begin() as conn:
        q = conn.dialect.identifier_preparer.quote
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        for role in (PUBLIC_ROLE, PARTNERS_ROLE):
            _ensure_role(conn, role)
        conn.execute(text("GRANT " + q(PUBLIC_ROLE) + " TO " + q(PARTNERS_ROLE)))
        conn.execute(text("GRANT USAGE ON SCHEMA " + q(schema) + " TO " + q(PUBLIC_ROLE) + ", " + q(PARTNERS_ROLE)))
        everything = sorted(set(PUBLIC_RELATIONS) | {r.table for r in ROLES.values()} | {Child.__tablename__})
        for rel in everything:
            conn.execute(text("REVOKE ALL ON " + q(schema) + "." + q(rel) + " FROM " + q(PUBLIC_ROLE) + ", " + q(PARTNERS_ROLE)))
        for rel in PUBLIC_RELATIONS:
            conn.execute(text("GRANT SELECT ON " + q(schema) + "." + q(rel) + " TO " + q(PUBLIC_ROLE)))
        for rel in partners:
            conn.execute(text("GRANT SELECT ON " + q(schema) + "." + q(rel) + " TO " + q(PARTNERS_ROLE)))
    return AccessReport(
        supported=True,
        message=f"granted in schema {schema}: {PUBLIC_ROLE} reads published indicator values; {PARTNERS_ROLE} also reads {len(partners)} row-level tables",
        grants={PUBLIC_ROLE: list(PUBLIC_RELATIONS), PARTNERS_ROLE: partners},
    )


__all__ = ["PARTNERS_ROLE", "PUBLIC_RELATIONS", "PUBLIC_ROLE", "AccessReport", "grant_access_tiers", "partner_relations"]
