"""Warehouse connections and migrations (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})  # and every name starting pg_


def schema_problem(schema: str) -> str | None:
    """Why ``schema`` cannot be the warehouse schema (one line), or None. ``public`` is allowed."""
    if not _SCHEMA_RE.match(schema):
        return f"warehouse schema name {schema!r} must be lower-case letters, digits and _"
    if schema in RESERVED_SCHEMAS or schema.startswith("pg_"):
        return (f"warehouse schema name {schema!r} is reserved by PostgreSQL (information_schema and names "
                "starting pg_); choose another, e.g. c2c")
    return None


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg2 driver SQLAlchemy 2.x needs."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, schema: str | None = None) -> Engine:
    """Create an engine. On PostgreSQL, ``schema`` (created if missing) becomes the search path."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        if schema:
            problem = schema_problem(schema)
            if problem:
                raise ValueError(problem)
            boot = create_engine(url)
            with boot.begin() as conn:
                quoted = conn.dialect.identifier_preparer.quote_schema(schema)
                conn.execute(text("CREATE SCHEMA IF NOT EXISTS " + quoted))
            boot.dispose()
            return create_engine(url, connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True)
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(f"unsupported warehouse URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql+psycopg2://")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the warehouse schema to ``revision`` with Alembic (idempotent)."""
    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest migration shipped with this version of c2c."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head
