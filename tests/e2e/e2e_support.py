"""Helpers for the end-to-end tests: an isolated c2c environment, a synthetic city, and byte scanners.

Everything here is test scaffolding; nothing is imported by the pipeline.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

AS_OF = "20260815"
TODAY = "2026-11-23"
REPO = Path(__file__).resolve().parents[2]


def isolate_env(monkeypatch: pytest.MonkeyPatch, home: Path, **extra: str) -> None:
    """No C2C_* setting from the caller (the master key and the test PostgreSQL URL excepted).

    DAGSTER_HOME points inside ``home`` (run_pipeline sets it in-process; monkeypatch restores it).
    """
    for var in list(os.environ):
        if var.startswith("C2C_") and var not in ("C2C_TEST_PG_URL", "C2C_MASTER_KEY"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.setenv("C2C_TODAY", TODAY)
    for key, value in extra.items():
        monkeypatch.setenv(key, value)


def settings_env(
    home: Path, warehouse: tuple[str, str | None] | None = None, *, data_docs: bool = False
) -> dict[str, str]:
    env = {"C2C_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "C2C_TODAY": TODAY,
           "C2C_DATA_DOCS": "1" if data_docs else "0"}
    if warehouse is not None:
        env["C2C_WAREHOUSE_URL"] = warehouse[0]
        if warehouse[1]:
            env["C2C_WAREHOUSE_SCHEMA"] = warehouse[1]
    return env


def warehouse_args(target: tuple[str, str | None]) -> list[str]:
    url, schema = target
    return ["--warehouse", url] + (["--schema", schema] if schema else [])


# ---------------------------------------------------------------------------------------------- CSV files


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def drop_files(drop: Path) -> list[Path]:
    """The data files in the agency folders of a drop folder (feedback excepted)."""
    return sorted(p for p in drop.glob("*/*.csv") if p.is_file())


# ---------------------------------------------------------------------------------------------- scanning


@dataclass(frozen=True)
class Doc:
    """One thing to scan: a label (where it came from) and its bytes."""

    label: str
    data: bytes


def _sqlite_dump(path: Path) -> Iterator[Doc]:
    """Every row of every table of a SQLite file, stringified; zlib blobs (Dagster snapshots) inflated."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            parts: list[bytes] = []
            select_all = 'SELECT * FROM "' + table.replace('"', '""') + '"'
            for row in conn.execute(select_all):
                for value in row:
                    parts.append(_value_bytes(value))
            yield Doc(f"{path} [sqlite table {table}]", b"\n".join(parts))
    except sqlite3.Error:
        return
    finally:
        conn.close()


def _value_bytes(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw + b"\n" + zlib.decompress(raw)
        except zlib.error:
            return raw
    if isinstance(value, str):
        out = value.encode("utf-8", "replace")
        # Dagster stores some bodies as zlib-compressed hex/bytes in text columns; try to inflate.
        try:
            out += b"\n" + zlib.decompress(bytes.fromhex(value))
        except (ValueError, zlib.error):
            pass
        return out
    return str(value).encode("utf-8")


def _parquet_dump(path: Path) -> Iterator[Doc]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - an unreadable file is still scanned as raw bytes
        return
    meta = table.schema.metadata or {}
    body = [repr(meta).encode()] + [
        repr(table.column(i).to_pylist()).encode("utf-8", "replace") for i in range(table.num_columns)
    ]
    yield Doc(f"{path} [parquet values]", b"\n".join(body))


def file_docs(root: Path, *, exclude: Iterable[Path] = ()) -> list[Doc]:
    """Every file under ``root`` (except ``exclude`` paths and folders): raw bytes, plus decoded
    SQLite tables and Parquet values (their pages may be compressed or dictionary-encoded)."""
    excluded = [Path(p).resolve() for p in exclude]
    docs: list[Doc] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        real = path.resolve()
        if any(real == e or e in real.parents for e in excluded):
            continue
        data = path.read_bytes()
        docs.append(Doc(str(path), data))
        if data.startswith(b"SQLite format 3\x00"):
            docs.extend(_sqlite_dump(path))
        elif data.startswith(b"PAR1"):
            docs.extend(_parquet_dump(path))
    return docs


def pg_docs(url: str, schema: str) -> list[Doc]:
    """``SELECT *`` of every table in a PostgreSQL schema, stringified."""
    from sqlalchemy import create_engine, inspect, literal_column, select
    from sqlalchemy import table as table_clause

    engine = create_engine(url)
    docs: list[Doc] = []
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names(schema=schema)
            for table in tables:
                rows = conn.execute(select(literal_column("*")).select_from(table_clause(table, schema=schema))).all()
                data = b"\n".join(_value_bytes(v) for row in rows for v in row)
                docs.append(Doc(f"postgresql {schema}.{table} ({len(rows)} rows)", data))
    finally:
        engine.dispose()
    return docs


def find_needles(docs: Iterable[Doc], needles: dict[str, str]) -> list[str]:
    """Case-insensitive search of every needle in every doc; returns 'needle label -> doc @ offset' lines.

    ``needles`` maps a label (never the value itself, so a failure report does not copy the value
    around) to the value searched.
    """
    lowered = {label: value.lower().encode("utf-8") for label, value in needles.items()}
    hits: list[str] = []
    for doc in docs:
        hay = doc.data.lower()
        for label, needle in lowered.items():
            at = hay.find(needle)
            if at >= 0:
                hits.append(f"{label} -> {doc.label} @ byte {at}")
    return hits


def temp_entries() -> set[str]:
    try:
        return set(os.listdir(tempfile.gettempdir()))
    except OSError:
        return set()


def changed_outside(since: float, temp_before: set[str]) -> list[Doc]:
    """Files written outside the home directory while the pipeline ran: new entries of the system temp
    folder (pytest's own folders excepted), ``~/.dagster``, and the repository's working tree (this
    folder's sources, caches and ``.git`` excepted)."""
    candidates: list[Path] = []
    tmp = Path(tempfile.gettempdir())
    for name in sorted(temp_entries() - temp_before):
        if not name.startswith("pytest-of-"):
            entry = tmp / name
            candidates += [entry] if entry.is_file() else sorted(entry.rglob("*")) if entry.is_dir() else []
    dagster_user = Path.home() / ".dagster"
    if dagster_user.is_dir():
        candidates += sorted(dagster_user.rglob("*"))
    skip = {".git", "__pycache__", ".hypothesis", ".benchmarks"}
    here = Path(__file__).resolve().parent
    for path in sorted(REPO.rglob("*")):
        if skip & set(path.relative_to(REPO).parts) or here in path.resolve().parents:
            continue
        candidates.append(path)
    docs: list[Doc] = []
    for path in candidates:
        try:
            st = path.stat()
            if path.is_file() and not path.is_symlink() and st.st_mtime >= since and st.st_size < 50_000_000:
                docs.append(Doc(f"{path} [written outside the home]", path.read_bytes()))
        except OSError:
            continue
    return docs
