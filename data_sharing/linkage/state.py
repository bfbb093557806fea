"""What linkage keeps between runs, in the linkage area's DuckDB file (schema ``c2c_linkage``).

========================  ==========================================================================
table                     holds
========================  ==========================================================================
``meta``                  state format version; the salt of new child keys (random, made once)
``runs``                  one row per committed run: run id, times, model id, settings, key id, counts
``crosswalk``             every source key ever seen -> its child key, agency, first/last run seen,
                          ``active`` (present in the latest run)
``child_keys``            every child key: created in run, status (active / dormant / retired),
                          ``successor`` (the key a retired key was merged into)
``history``               merges, splits and moves of records between keys: run, event, old keys,
                          new keys, reason, number of source keys concerned
``decisions``             every clerical decision ever recorded (append-only): the pair of source
                          keys, match / non_match, who, when, why, the run that first applied it
``review_queue``          the latest run's clerical review queue (pseudonymous pairs and levels)
``quality``               one JSON document of linkage quality per run
``pairs``                 the latest run's scored pairs of source keys at or above the lower threshold
                          (probability, weight, comparison levels as Splink's gamma values, outcome,
                          guard) for audit; replaced by every run
========================  ==========================================================================

A run works in an in-memory DuckDB connection (Splink's working tables; spill files in
``<workdir>/duckdb_tmp``, the linkage area) with the state database ``<workdir>/linkage.duckdb``
attached as ``state``. It reads the state, computes everything, then writes it in one transaction: a
failed run leaves the previous state as it was. Nothing here is an identifier: source keys and child keys are keyed
pseudonyms, decisions name reviewers by the id the caller gives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

CATALOG = "state"  # the state database is attached under this name to the run's working connection
SCHEMA = f"{CATALOG}.c2c_linkage"  # unquoted, for messages and callers' own statements
STATE_FORMAT_VERSION = 1


def quote(identifier: str) -> str:
    """A DuckDB identifier, double-quoted (embedded quotes doubled)."""
    return '"' + identifier.replace('"', '""') + '"'


def qualified(name: str) -> str:
    """The quoted ``state.c2c_linkage.<name>`` of a state table."""
    return ".".join(quote(part) for part in (*SCHEMA.split("."), name))


_QSCHEMA = ".".join(quote(part) for part in SCHEMA.split("."))
_DDL = """
create schema if not exists {schema};
create table if not exists {meta} (key varchar primary key, value varchar not null);
create table if not exists {runs} (
    run_id varchar primary key, seq integer not null, started_at varchar not null, finished_at varchar not null,
    model_id varchar not null, settings varchar not null, linkage_key_id varchar, summary varchar not null);
create table if not exists {crosswalk} (
    source_key varchar primary key, agency varchar not null, child_key varchar not null,
    first_seen_run varchar not null, first_seen_seq integer not null, last_seen_run varchar not null,
    active boolean not null);
create table if not exists {child_keys} (
    child_key varchar primary key, created_run varchar not null, created_seq integer not null,
    status varchar not null, successor varchar, updated_run varchar not null);
create table if not exists {history} (
    run_id varchar not null, seq integer not null, event varchar not null, old_keys varchar[] not null,
    new_keys varchar[] not null, reason varchar not null, source_keys integer not null);
create table if not exists {decisions} (
    source_key_l varchar not null, source_key_r varchar not null, decision varchar not null,
    decided_by varchar not null, decided_at varchar not null, reason varchar, recorded_run varchar not null,
    recorded_seq integer not null);
create table if not exists {review_queue} (
    run_id varchar not null, source_key_l varchar not null, source_key_r varchar not null,
    agency_l varchar not null, agency_r varchar not null, match_probability double not null,
    match_weight double not null, reason varchar not null, levels varchar not null, weights varchar not null,
    first_queued_run varchar not null);
create table if not exists {quality} (run_id varchar primary key, document varchar not null);
""".format(schema=_QSCHEMA, **{t: qualified(t) for t in (
    "meta", "runs", "crosswalk", "child_keys", "history", "decisions", "review_queue", "quality")})
_META_GET = "select value from " + qualified("meta") + " where key = ?"
_META_PUT = "insert into " + qualified("meta") + " values (?, ?)"


class LinkageStateError(RuntimeError):
    """The linkage state is inconsistent with what a run asks (e.g. a run id committed twice)."""


def attach(con: duckdb.DuckDBPyConnection, db: Path, *, read_only: bool = False) -> None:
    statement = "attach ? as " + quote(CATALOG) + (" (read_only)" if read_only else "")
    con.execute(statement, [str(db)])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> str:
    """Create the state tables if needed; return the child-key salt (hex), made once per state."""
    con.execute(_DDL)
    rows = con.execute(_META_GET, ["format_version"]).fetchall()
    row = rows[0] if rows else None
    if row is None:
        con.execute(_META_PUT, ["format_version", str(STATE_FORMAT_VERSION)])
    elif int(row[0]) != STATE_FORMAT_VERSION:
        raise LinkageStateError(f"linkage state format {row[0]} is not the supported {STATE_FORMAT_VERSION}")
    rows = con.execute(_META_GET, ["child_key_salt"]).fetchall()
    salt = rows[0] if rows else None
    if salt is None:
        value = os.urandom(32).hex()
        con.execute(_META_PUT, ["child_key_salt", value])
        return value
    return str(salt[0])


def read_table(con: duckdb.DuckDBPyConnection, name: str, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """All rows of a state table, or those whose columns equal the values in ``where`` (bound)."""
    statement = "select * from " + qualified(name)
    params: list[Any] = []
    if where:
        statement += " where " + " and ".join(quote(col) + " = ?" for col in where)
        params = list(where.values())
    return con.execute(statement, params).df()


def next_seq(con: duckdb.DuckDBPyConnection) -> int:
    statement = "select coalesce(max(seq), 0) + 1 from " + qualified("runs")
    return int(con.execute(statement).fetchall()[0][0])


def run_exists(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    statement = "select count(*) from " + qualified("runs") + " where run_id = ?"
    return con.execute(statement, [run_id]).fetchall()[0][0] > 0


def _columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    statement = "describe " + qualified(name)
    return [r[0] for r in con.execute(statement).fetchall()]


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace all rows of a state table with ``frame`` (columns in the table's order)."""
    cols = _columns(con, name)
    statement = "delete from " + qualified(name)
    con.execute(statement)
    append(con, name, frame[cols] if len(frame.columns) else frame)


def append(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    if frame is None or len(frame) == 0:
        return
    cols = _columns(con, name)
    view = f"__c2c_append_{name}"
    con.register(view, frame[cols])
    try:
        statement = "insert into " + qualified(name) + " select * from " + quote(view)
        con.execute(statement)
    finally:
        con.unregister(view)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
