"""The whole nightly run, stage by stage, next to each stage's floor measured here on the same data.

    nice python bench/bench_nightly.py --children 20000 [--postgres postgresql+psycopg2://127.0.0.1:5432/test]

Generates a city (``c2c synth``), runs ``c2c run`` on it (SQLite, and PostgreSQL when ``--postgres`` is
given, in its own schema), and prints per stage, from the run's own Dagster step events (STEP_START ->
STEP_SUCCESS, summed over the per-file intake runs): wall time, CPU time (user+sys of the ``c2c run``
process, sampled from ``/proc`` every 50 ms and taken over the step's window) and peak RSS (the largest
sample in the step's windows); the whole run's wall, CPU and peak RSS (getrusage of the child); and
each stage's floor, measured here on the same files and the same warehouse:

* intake: ``pyarrow.csv.read_csv`` of every file;
* validation: one DuckDB pass over every file evaluating its contract's rules (types, required, codes,
  ranges, lengths, patterns, cross-field rules, unique key);
* protection: one HMAC-SHA256 (``hmac.digest``) per row of every id column of the contract;
* warehouse load: the loaded rows read back and inserted with ``sqlite3.executemany`` of tuples into an
  empty copy of each table (indexes built after), or on PostgreSQL ``COPY`` out and ``COPY`` back in;
* indicator release: the indicator SQL (``compute_indicator_rows``, every definition) on the loaded tables;

then the three nights that follow: nothing new; one new attendance file; one agency's corrected re-send
of its person extract (the latest file of the extract with one row fewer).
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hmac
import io
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------------------------
# Running c2c, sampling its CPU and RSS


class Sampler(threading.Thread):
    """(time, CPU seconds, RSS bytes) of one process every ``every`` seconds, from /proc."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
                statm = Path(f"/proc/{self.pid}/statm").read_text().split()
            except (OSError, IndexError):
                break
            cpu = (int(stat[11]) + int(stat[12]) + int(stat[13]) + int(stat[14])) / TICK  # utime stime cutime cstime
            self.samples.append((time.time(), cpu, int(statm[1]) * PAGE))
            self.done.wait(self.every)

    def cpu_at(self, t: float) -> float:
        times = [s[0] for s in self.samples]
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return self.samples[0][1] if self.samples else 0.0
        if i >= len(times):
            return self.samples[-1][1]
        (t0, c0, _), (t1, c1, _) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.0)

    def rss_in(self, t0: float, t1: float) -> int:
        inside = [s[2] for s in self.samples if t0 <= s[0] <= t1]
        return max(inside, default=0)


def c2c(args: list[str], env: dict[str, str], log: Path) -> tuple[dict[str, float], Sampler]:
    """Run ``c2c`` as a child; its wall time, CPU time (user+sys) and peak RSS, and its samples."""
    t0 = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen(["nice", str(BIN / "c2c"), *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN keeps the max of all)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        sampler.done.set()
        sampler.join()
    wall = time.perf_counter() - t0
    if rc not in (0, 3):
        print(f"  WARNING: c2c {' '.join(args)} exited {rc}; see {log}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "rss_gb": usage.ru_maxrss / 1024**2, "rc": rc}, sampler


def step_windows(dagster_home: Path, seen: set[str]) -> dict[str, list[tuple[float, float]]]:
    """Per step (asset): its (start, end) windows over the runs not in ``seen``, from the runs' own step events."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    from dagster import DagsterEventType, DagsterInstance

    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with DagsterInstance.get() as instance:
        for rec in instance.get_run_records():
            run_id = rec.dagster_run.run_id
            if run_id in seen:
                continue
            seen.add(run_id)
            starts: dict[str, float] = {}
            for e in instance.all_logs(run_id):
                ev = e.dagster_event
                if ev is None or ev.step_key is None:
                    continue
                if ev.event_type == DagsterEventType.STEP_START:
                    starts[ev.step_key] = e.timestamp
                elif ev.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    out[ev.step_key.split("[")[0]].append((starts.get(ev.step_key, e.timestamp), e.timestamp))
    return dict(out)


# ------------------------------------------------------------------------------------------------
# Floors: wall and CPU seconds (this process, every thread: DuckDB's too) of the timed parts only


class Clock:
    """Accumulates wall and CPU time over the ``with`` blocks it times."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> Clock:
        self._t, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall += time.perf_counter() - self._t
        self.cpu += time.process_time() - self._c

    def __str__(self) -> str:
        return f"{self.wall:.1f} s ({self.cpu:.1f} s CPU)"


def _contract_of(path: Path, contracts: dict) -> object | None:  # type: ignore[type-arg]
    return contracts.get((path.parent.name, path.stem.rsplit("_", 1)[0]))


def floor_read(drop: Path) -> Clock:
    import pyarrow.csv as pacsv

    with Clock() as clock:
        for f in sorted(drop.glob("*/*.csv")):
            pacsv.read_csv(f)
    return clock


def floor_hmac(drop: Path, contracts: dict) -> Clock:  # type: ignore[type-arg]
    import pyarrow.csv as pacsv

    key = secrets.token_bytes(32)
    clock = Clock()
    for f in sorted(drop.glob("*/*.csv")):
        contract = _contract_of(f, contracts)
        table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        cols = [c for c in getattr(contract, "id_columns", []) if c in table.column_names] or [table.column_names[0]]
        for col in cols:
            ids = table.column(col).cast("string").to_pylist()
            with clock:
                for v in ids:
                    hmac.digest(key, (v or "").encode(), "sha256")
    return clock


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed(name: str, kind: str) -> str:
    col = _q(name)
    return {"integer": f"TRY_CAST({col} AS BIGINT)", "number": f"TRY_CAST({col} AS DOUBLE)",
            "date": f"TRY_CAST(TRY_STRPTIME({col}, '%Y-%m-%d') AS DATE)"}.get(kind, col)


def _lit(v: object) -> str:
    return f"DATE '{v}'" if hasattr(v, "isoformat") else repr(v) if isinstance(v, (int, float)) else "'" + str(v).replace("'", "''") + "'"


def validation_sql(contract: object, present: list[str]) -> str:
    """One DuckDB SELECT counting every contract rule's failures over ``src`` (typed view ``t``)."""
    cols = {n: c for n, c in contract.columns.items() if n in present}  # type: ignore[attr-defined]
    typed = ", ".join(f"{_typed(n, c.type)} AS {_q(n)}" for n, c in cols.items())
    raw = ", ".join(f"{_q(n)} AS {_q('raw_' + n)}" for n in cols)
    checks = []
    for n, c in cols.items():
        col, rawc = _q(n), _q("raw_" + n)
        if c.required:
            checks.append(f"count(*) FILTER (WHERE {rawc} IS NULL OR trim({rawc}) = '')")
        if c.type in ("integer", "number", "date"):
            checks.append(f"count(*) FILTER (WHERE {rawc} IS NOT NULL AND {col} IS NULL)")
        if c.codes:
            checks.append(f"count(*) FILTER (WHERE {rawc} NOT IN ({', '.join(_lit(k) for k in c.codes)}))")
        if c.min is not None:
            checks.append(f"count(*) FILTER (WHERE {col} < {_lit(c.min)})")
        if c.max is not None:
            checks.append(f"count(*) FILTER (WHERE {col} > {_lit(c.max)})")
        if c.max_length:
            checks.append(f"count(*) FILTER (WHERE length({rawc}) > {int(c.max_length)})")
        if c.pattern:
            checks.append(f"count(*) FILTER (WHERE NOT regexp_full_match({rawc}, {_lit(c.pattern)}))")
    for rule in contract.rules:  # type: ignore[attr-defined]
        checks.append(f"count(*) FILTER (WHERE NOT coalesce(({rule.check}), true))")
    key = [k for k in contract.unique_key if k in cols]  # type: ignore[attr-defined]
    if key:
        checks.append(f"count(*) - count(DISTINCT ({', '.join(_q(k) for k in key)}))")
    return f"WITH t AS (SELECT {typed}, {raw} FROM src) SELECT {', '.join(checks) or 'count(*)'} FROM t"


def floor_duckdb(drop: Path, contracts: dict) -> Clock:  # type: ignore[type-arg]
    import duckdb

    clock = Clock().__enter__()
    con = duckdb.connect()
    for f in sorted(drop.glob("*/*.csv")):
        contract = _contract_of(f, contracts)
        con.execute("CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM read_csv(" + _lit(str(f)) + ", all_varchar=true, header=true)")
        present = [r[0] for r in con.execute("DESCRIBE src").fetchall()]
        sql = validation_sql(contract, present) if contract is not None else "SELECT count(*) FROM src"
        con.execute(sql).fetchall()
    con.close()
    clock.__exit__()
    return clock


def _fact_tables() -> list[str]:
    from schemas.roles import ROLES

    return sorted({r.table for r in ROLES.values()})


def floor_sqlite_load(warehouse_db: Path) -> tuple[Clock, int]:
    """Read every loaded row back, then time executemany of tuples into empty copies (+ index builds)."""
    src = sqlite3.connect(warehouse_db)
    dst_path = Path(tempfile.mkdtemp()) / "floor.db"
    dst = sqlite3.connect(dst_path)
    clock, rows = Clock(), 0
    for table in _fact_tables():
        ddl = src.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()[0]
        indexes = [r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL", (table,))]
        data = src.execute("SELECT * FROM " + _q(table)).fetchall()
        dst.execute(ddl)
        marks = ", ".join("?" for _ in range(len(data[0]) if data else 0))
        with clock:
            if data:
                dst.executemany("INSERT INTO " + _q(table) + " VALUES (" + marks + ")", data)
            for ix in indexes:
                dst.execute(ix)
            dst.commit()
        rows += len(data)
    src.close()
    dst.close()
    shutil.rmtree(dst_path.parent)
    return clock, rows


def floor_pg_copy(url: str, schema: str) -> tuple[Clock, int]:
    """COPY every loaded table out to memory, then time COPY back into an empty copy (+ index builds)."""
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port, dbname=u.database, user=u.username or "postgres")
    cur = conn.cursor()
    floor_schema = schema + "_floor"
    cur.execute("DROP SCHEMA IF EXISTS " + floor_schema + " CASCADE; CREATE SCHEMA " + floor_schema)
    clock, rows = Clock(), 0
    for table in _fact_tables():
        buf = io.StringIO()
        cur.copy_expert("COPY " + schema + "." + table + " TO STDOUT WITH (FORMAT csv)", buf)
        cur.execute("CREATE TABLE " + floor_schema + "." + table + " (LIKE " + schema + "." + table + " INCLUDING DEFAULTS)")
        buf.seek(0)
        with clock:
            cur.copy_expert("COPY " + floor_schema + "." + table + " FROM STDIN WITH (FORMAT csv)", buf)
            cur.execute("CREATE INDEX ON " + floor_schema + "." + table + " (source_key)")
            cur.execute("CREATE INDEX ON " + floor_schema + "." + table + " (child_key)")
            conn.commit()
        cur.execute("SELECT count(*) FROM " + floor_schema + "." + table)
        rows += cur.fetchone()[0]
    cur.execute("DROP SCHEMA " + floor_schema + " CASCADE")
    conn.commit()
    conn.close()
    return clock, rows


def drop_schema(url: str, schema: str) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port, dbname=u.database, user=u.username or "postgres")
    conn.cursor().execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
    conn.commit()
    conn.close()


def floor_indicators(url: str, schema: str | None) -> Clock:
    """The indicator SQL of every definition on the loaded tables (no protection, no write)."""
    from schemas.indicators import load_indicator_definitions
    from warehouse.db import make_engine
    from warehouse.indicators import compute_indicator_rows
    from warehouse.releases import k_by_role

    engine = make_engine(url, schema)
    definitions, ks = load_indicator_definitions(), k_by_role(None)
    try:
        with engine.connect() as conn:
            with Clock() as clock:
                compute_indicator_rows(conn, definitions, ks)
            conn.rollback()
    finally:
        engine.dispose()
    return clock


# ------------------------------------------------------------------------------------------------
# Report


STAGES = [  # (label, step, floor key)
    ("intake (per file)", "intake_file", "read"),
    ("validation (per file)", "validated_file", "duckdb"),
    ("protection (per file)", "protected_file", "hmac"),
    ("linkage", "linked_persons", None),
    ("warehouse_tables", "warehouse_tables", "load"),
    ("indicator_release", "indicator_release", "indicators"),
]


def report(title: str, run: dict[str, float], windows: dict[str, list[tuple[float, float]]], sampler: Sampler,
           floors: dict[str, Clock]) -> None:
    """Per stage: wall, CPU and peak RSS from the run; the floor's wall and CPU; the ratios (CPU to CPU is
    the fair one on a loaded machine; on PostgreSQL the server's CPU is in neither)."""
    print(f"\n{title}: wall {run['wall']:.1f} s, CPU {run['cpu']:.1f} s, peak RSS {run['rss_gb']:.2f} GB (exit {run['rc']})")
    print(f"  {'stage':24s} {'wall s':>7s} {'CPU s':>7s} {'RSS GB':>7s} {'floor s':>8s} {'fl.CPU':>7s} {'wall x':>7s} {'CPU x':>6s}")
    for label, step, floor in STAGES:
        spans = windows.get(step, [])
        secs = sum(b - a for a, b in spans)
        cpu = sum(sampler.cpu_at(b) - sampler.cpu_at(a) for a, b in spans)
        rss = max((sampler.rss_in(a, b) for a, b in spans), default=0) / 1024**3
        f = floors.get(floor) if floor else None
        shown = f"{secs:7.1f} {cpu:7.1f} {rss:7.2f}" if spans else f"{'not run':>7s} {'':7s} {'':7s}"
        fl = f"{f.wall:8.1f} {f.cpu:7.1f}" if f else f"{'-':>8s} {'-':>7s}"
        ratio = f"{secs / f.wall:7.1f} {(cpu / f.cpu if f.cpu > 0.05 else float('nan')):6.1f}" if f and spans else f"{'-':>7s} {'-':>6s}"
        print(f"  {label:24s} {shown} {fl} {ratio}")
    other = {k: v for k, v in windows.items() if k not in {s for _, s, _ in STAGES}}
    for k, spans in sorted(other.items(), key=lambda kv: -sum(b - a for a, b in kv[1])):
        print(f"  {'  ' + k:24s} {sum(b - a for a, b in spans):7.1f} {sum(sampler.cpu_at(b) - sampler.cpu_at(a) for a, b in spans):7.1f}")


def night(title: str, home: Path, env: dict[str, str], log: Path, seen: set[str], floors: dict[str, Clock]) -> None:
    run, sampler = c2c(["run", "--settle", "0"], env, log)
    report(title, run, step_windows(home / "dagster", seen), sampler, floors)


def _latest(folder: Path, prefix: str) -> Path:
    return sorted(folder.glob(prefix + "_*.csv"))[-1]


def one_setup(name: str, root: Path, city: Path, env: dict[str, str], floors: dict[str, Clock]) -> None:
    home = root / name
    drop = home / "drop"
    shutil.copytree(city / "drop", drop)
    env = {**env, "C2C_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "C2C_DROP_DIR": str(drop)}
    log = root / f"{name}.log"
    c2c(["keys", "init"], env, log)
    seen: set[str] = set()
    run, sampler = c2c(["run", "--settle", "0"], env, log)
    windows = step_windows(home / "dagster", seen)
    if name == "sqlite":
        floors["load"], rows = floor_sqlite_load(home / "warehouse.db")
        floors["indicators"] = floor_indicators(f"sqlite:///{home / 'warehouse.db'}", None)
        what = "sqlite3.executemany"
    else:
        floors["load"], rows = floor_pg_copy(env["C2C_WAREHOUSE_URL"], env["C2C_WAREHOUSE_SCHEMA"])
        floors["indicators"] = floor_indicators(env["C2C_WAREHOUSE_URL"], env["C2C_WAREHOUSE_SCHEMA"])
        what = "COPY"
    print(f"\n[{name}] floors on the loaded warehouse: {what} of the {rows:,} loaded rows + index builds "
          f"{floors['load']}; indicator SQL {floors['indicators']}")
    report(f"[{name}] first night", run, windows, sampler, floors)
    night(f"[{name}] quiet night (nothing new)", home, env, log, seen, floors)
    attendance = _latest(city / "drop" / "fps", "attendance")
    lines = attendance.read_text(encoding="utf-8").splitlines(keepends=True)
    (drop / "fps" / "attendance_20260901.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    night(f"[{name}] one new attendance file", home, env, log, seen, floors)
    clients = _latest(city / "drop" / "dhs", "clients")
    lines = clients.read_text(encoding="utf-8").splitlines(keepends=True)
    (drop / "dhs" / "clients_20260902.csv").write_text("".join(lines[:-1]), encoding="utf-8")
    night(f"[{name}] dhs re-sends clients, corrected", home, env, log, seen, floors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=150_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--postgres", default="", help="PostgreSQL URL (database must exist); a schema c2c_bench_<random> is used")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument("--keep", action="store_true", help="keep the working folder")
    args = ap.parse_args()
    from schemas.contracts import load_extract_contracts

    contracts = load_extract_contracts()
    root = Path(tempfile.mkdtemp(prefix="c2c-bench-nightly-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "DAGSTER_"))}
    env.update({"C2C_TODAY": "2026-11-23", "C2C_DATA_DOCS": "0", "C2C_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode()})
    city = root / "city"
    t = time.perf_counter()
    c2c(["synth", "--children", str(args.children), "--seed", str(args.seed), "--out", str(city)], env, root / "synth.log")
    files = sorted((city / "drop").glob("*/*.csv"))
    rows = sum(sum(1 for _ in f.open("rb")) - 1 for f in files)
    print(f"city: {args.children:,} children, {rows:,} rows in {len(files)} files (synth {time.perf_counter() - t:.0f} s); "
          f"load average at start {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    floors = {"read": floor_read(city / "drop"), "hmac": floor_hmac(city / "drop", contracts),
              "duckdb": floor_duckdb(city / "drop", contracts)}
    print(f"floors on the files: pyarrow CSV read {floors['read']}; HMAC per id row {floors['hmac']}; "
          f"DuckDB pass over the validation rules {floors['duckdb']}")
    del env["C2C_MASTER_KEY"]  # `c2c keys init` writes a key file per hub
    if not args.no_sqlite:
        one_setup("sqlite", root, city, env, dict(floors))
    if args.postgres:
        schema = "c2c_bench_" + secrets.token_hex(4)
        print(f"PostgreSQL schema {schema}")
        try:
            one_setup("postgresql", root, city, {**env, "C2C_WAREHOUSE_URL": args.postgres, "C2C_WAREHOUSE_SCHEMA": schema}, dict(floors))
        finally:
            if not args.keep:
                drop_schema(args.postgres, schema)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}; working folder {root}" + ("" if args.keep else " (removed)"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
