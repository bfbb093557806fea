"""The whole nightly run, stage by stage, next to each stage's floor measured here on the same data.

    python bench/bench_nightly.py --children 20000 [--postgres postgresql+psycopg2://127.0.0.1:5432/test]

Generates a city (``c2c synth``), runs ``c2c run`` on it (SQLite, and PostgreSQL when ``--postgres`` is
given, in its own schema), and prints per stage the wall time from the run's own Dagster step events
(STEP_START -> STEP_SUCCESS, summed over the per-file intake runs), the whole run's wall time, CPU time
and peak RSS (``c2c run`` is one process: getrusage of the child), and the floors:

* intake: ``pyarrow.csv.read_csv`` of every file;
* protection: one HMAC-SHA256 (``hmac.digest``) per row of every id column (first id column of each file);
* validation: one DuckDB pass over every file (``read_csv`` + per-column non-null counts);
* warehouse load: the loaded rows read back and inserted with ``sqlite3.executemany`` of tuples into an
  empty copy of each table (indexes built after), or on PostgreSQL ``COPY`` out and ``COPY`` back in;

then the three nights that follow: nothing new; one new attendance file; one agency's corrected re-send.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import io
import os
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent
FACT_TABLES = ("enrolments", "attendance", "assessments", "graduation_outcomes", "health_patients", "health_encounters",
               "immunizations", "dhs_clients", "program_enrolments")


def c2c(args: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run ``c2c`` as a child; its wall time, CPU time (user+sys) and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("ab") as out:
        rc = subprocess.run(["nice", str(BIN / "c2c"), *args], env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc not in (0, 3):
        print(f"  WARNING: c2c {' '.join(args)} exited {rc}; see {log}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "rss_gb": after.ru_maxrss / 1024**2}


def step_times(dagster_home: Path, seen: set[str]) -> dict[str, float]:
    """Seconds per step (asset) over the runs not in ``seen``, from the runs' own step events."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterEventType, DagsterInstance

    out: dict[str, float] = defaultdict(float)
    with DagsterInstance.get() as instance:
        for rec in instance.get_run_records():
            run_id = rec.dagster_run.run_id
            if run_id in seen:
                continue
            seen.add(run_id)
            starts: dict[str, float] = {}
            for e in instance.all_logs(run_id):
                ev = e.dagster_event
                if ev is None:
                    continue
                if ev.event_type == DagsterEventType.STEP_START:
                    starts[ev.step_key] = e.timestamp
                elif ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    out[ev.step_key] += e.timestamp - starts.get(ev.step_key, e.timestamp)
    return dict(out)


def floor_read(drop_copy: Path) -> float:
    import pyarrow.csv as pacsv

    t = time.perf_counter()
    for f in sorted(drop_copy.glob("*/*.csv")):
        pacsv.read_csv(f)
    return time.perf_counter() - t


def floor_hmac(drop_copy: Path) -> float:
    import pyarrow.csv as pacsv

    key = secrets.token_bytes(32)
    total = 0.0
    for f in sorted(drop_copy.glob("*/*.csv")):
        table = pacsv.read_csv(f)
        ids = table.column(0).cast("string").to_pylist()
        t = time.perf_counter()
        for v in ids:
            hmac.digest(key, (v or "").encode(), "sha256")
        total += time.perf_counter() - t
    return total


def floor_duckdb(drop_copy: Path) -> float:
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect()
    for f in sorted(drop_copy.glob("*/*.csv")):
        cols = [r[0] for r in con.execute("DESCRIBE SELECT * FROM read_csv(?, all_varchar=true)", [str(f)]).fetchall()]
        exprs = ", ".join("count(" + '"' + c.replace('"', '""') + '"' + ")" for c in cols)
        con.execute("SELECT " + exprs + " FROM read_csv(?, all_varchar=true)", [str(f)]).fetchall()
    con.close()
    return time.perf_counter() - t


def floor_sqlite_load(warehouse_db: Path) -> tuple[float, int]:
    """Read every loaded row back, then time executemany of tuples into empty copies (+ index builds)."""
    src = sqlite3.connect(warehouse_db)
    dst_path = Path(tempfile.mkdtemp()) / "floor.db"
    dst = sqlite3.connect(dst_path)
    total, rows = 0.0, 0
    for table in FACT_TABLES:
        ddl = src.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[0]
        indexes = [r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL", (table,))]
        data = src.execute("SELECT * FROM " + '"' + table + '"').fetchall()
        dst.execute(ddl)
        marks = ", ".join("?" for _ in range(len(data[0]) if data else 0))
        t = time.perf_counter()
        if data:
            dst.executemany("INSERT INTO " + '"' + table + '"' + " VALUES (" + marks + ")", data)
        for ix in indexes:
            dst.execute(ix)
        dst.commit()
        total += time.perf_counter() - t
        rows += len(data)
    src.close()
    dst.close()
    shutil.rmtree(dst_path.parent)
    return total, rows


def floor_pg_copy(url: str, schema: str) -> tuple[float, int]:
    """COPY every loaded table out to memory, then time COPY back into an empty copy (+ index builds)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port, dbname=u.database, user=u.username or "postgres")
    cur = conn.cursor()
    floor_schema = schema + "_floor"
    cur.execute("DROP SCHEMA IF EXISTS " + floor_schema + " CASCADE; CREATE SCHEMA " + floor_schema)
    total, rows = 0.0, 0
    for table in FACT_TABLES:
        buf = io.StringIO()
        cur.copy_expert("COPY " + schema + "." + table + " TO STDOUT WITH (FORMAT csv)", buf)
        cur.execute("CREATE TABLE " + floor_schema + "." + table + " (LIKE " + schema + "." + table + " INCLUDING DEFAULTS)")
        buf.seek(0)
        t = time.perf_counter()
        cur.copy_expert("COPY " + floor_schema + "." + table + " FROM STDIN WITH (FORMAT csv)", buf)
        cur.execute("CREATE INDEX ON " + floor_schema + "." + table + " (source_key)")
        cur.execute("CREATE INDEX ON " + floor_schema + "." + table + " (child_key)")
        conn.commit()
        total += time.perf_counter() - t
        cur.execute("SELECT count(*) FROM " + floor_schema + "." + table)
        rows += cur.fetchone()[0]
    cur.execute("DROP SCHEMA " + floor_schema + " CASCADE")
    conn.commit()
    conn.close()
    return total, rows


STAGES = [  # (label, steps summed, floor key)
    ("intake (per file)", ("intake_file",), "read"),
    ("validation (per file)", ("validated_file",), "duckdb"),
    ("protection (per file)", ("protected_file",), "hmac"),
    ("linkage", ("linked_persons",), None),
    ("warehouse_tables", ("warehouse_tables",), "load"),
    ("indicator_release", ("indicator_release",), None),
]


def report(title: str, run: dict[str, float], steps: dict[str, float], floors: dict[str, float]) -> None:
    print(f"\n{title}: wall {run['wall']:.1f} s, CPU {run['cpu']:.1f} s, peak RSS {run['rss_gb']:.2f} GB")
    print(f"  {'stage':24s} {'seconds':>8s} {'floor':>8s} {'ratio':>6s}")
    for label, keys, floor in STAGES:
        secs = sum(steps.get(k, 0.0) for k in keys)
        f = floors.get(floor) if floor else None
        ratio = f"{secs / f:6.1f}" if f else "     -"
        print(f"  {label:24s} {secs:8.1f} {(f'{f:8.1f}' if f else '       -')} {ratio}")
    other = sum(v for k, v in steps.items() if not any(k in keys for _, keys, _ in STAGES))
    print(f"  {'other steps':24s} {other:8.1f}")


def one_setup(name: str, root: Path, city: Path, env: dict[str, str], floors: dict[str, float]) -> None:
    home = root / name
    drop = home / "drop"
    shutil.copytree(city / "drop", drop)
    env = {**env, "C2C_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "C2C_DROP_DIR": str(drop)}
    log = root / f"{name}.log"
    c2c(["keys", "init"], env, log)
    seen: set[str] = set()
    report(f"[{name}] first night", c2c(["run", "--settle", "0"], env, log), step_times(home / "dagster", seen), floors)
    if name == "sqlite":
        floors["load"], rows = floor_sqlite_load(home / "warehouse.db")
        print(f"  floor, sqlite3.executemany of the {rows:,} loaded rows + index builds: {floors['load']:.1f} s")
    elif env.get("C2C_WAREHOUSE_SCHEMA"):
        floors["load"], rows = floor_pg_copy(env["C2C_WAREHOUSE_URL"], env["C2C_WAREHOUSE_SCHEMA"])
        print(f"  floor, COPY of the {rows:,} loaded rows + index builds: {floors['load']:.1f} s")
    report(f"[{name}] quiet night (nothing new)", c2c(["run", "--settle", "0"], env, log), step_times(home / "dagster", seen), floors)
    attendance = next((city / "drop" / "fps").glob("attendance_*.csv")).read_text(encoding="utf-8").splitlines(keepends=True)
    (drop / "fps" / "attendance_20260901.csv").write_text("".join(attendance[:-1]), encoding="utf-8")
    report(f"[{name}] one new attendance file", c2c(["run", "--settle", "0"], env, log), step_times(home / "dagster", seen), floors)
    clients = next((city / "drop" / "dhs").glob("clients_*.csv")).read_text(encoding="utf-8").splitlines(keepends=True)
    (drop / "dhs" / "clients_20260902.csv").write_text("".join(clients[:-1]), encoding="utf-8")
    report(f"[{name}] dhs re-sends clients, corrected", c2c(["run", "--settle", "0"], env, log), step_times(home / "dagster", seen), floors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=150_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres", default="", help="PostgreSQL URL (database must exist); a schema c2c_bench_<random> is used")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="c2c-bench-nightly-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "DAGSTER_"))}
    env.update({"C2C_TODAY": "2026-11-23", "C2C_DATA_DOCS": "0", "C2C_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()})
    city = root / "city"
    t = time.perf_counter()
    c2c(["synth", "--children", str(args.children), "--seed", str(args.seed), "--out", str(city)], env, root / "synth.log")
    rows = sum(sum(1 for _ in f.open("rb")) - 1 for f in (city / "drop").glob("*/*.csv"))
    print(f"city: {args.children:,} children, {rows:,} rows in {len(list((city / 'drop').glob('*/*.csv')))} files "
          f"(synth {time.perf_counter() - t:.0f} s); load average at start {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    floors = {"read": floor_read(city / "drop"), "hmac": floor_hmac(city / "drop"), "duckdb": floor_duckdb(city / "drop")}
    print(f"floors: pyarrow CSV read {floors['read']:.1f} s; HMAC per id row {floors['hmac']:.1f} s; DuckDB pass {floors['duckdb']:.1f} s")
    del env["C2C_MASTER_KEY"]  # `c2c keys init` writes a key file per hub
    one_setup("sqlite", root, city, env, floors)
    if args.postgres:
        schema = "c2c_bench_" + secrets.token_hex(4)
        one_setup("postgresql", root, city, {**env, "C2C_WAREHOUSE_URL": args.postgres, "C2C_WAREHOUSE_SCHEMA": schema}, dict(floors))
    print(f"\nload average at end {os.getloadavg()[0]:.1f}; working folder {root}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
