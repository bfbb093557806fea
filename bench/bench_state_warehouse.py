"""A state's night on PostgreSQL (issue 19, item 4): the warehouse load and the release, partitioned fact tables.

    nice python bench/bench_state_warehouse.py --children 1500000 [--url postgresql+psycopg2://127.0.0.1:5432/test]
        [--work /work/scratch-pgstate] [--keep]

Builds the warehouse's input without running the linkage: the partner-tier rows of a synthetic state
(``bench_indicators.generate``: made-up 64-hex source keys, 32-hex child keys, five school years) are
turned back into the pseudonymous **staging frames** of the reference partnership's extracts (the
contract's staging column names, every value a string, ``row_number``), written as parquet as the
protection stage writes them, with the **crosswalk** (source_key -> child_key of every linked record)
the linkage would have written. Set-up, not timed. Then, in a fresh schema migrated to head (fact tables
with a school year partitioned by it), it times, like ``stages.release.load_warehouse`` and
``publish_release`` in a night:

* the **warehouse load**: per extract, the staging parquet read into pandas and ``load_current`` with the
  whole crosswalk (partitions created, COPY, indexes rebuilt, ``children`` rebuilt, audit entry);
* the **release**: ``publish_release`` (every indicator, disclosure control, the published rows written);

each with wall time, CPU seconds of this process and of the PostgreSQL backends it used (``/proc/<pid>/stat``
of ``pg_backend_pid()``; the server runs on this machine) and this process's peak RSS in that phase.
Then the floors, in the same script on the same rows: **COPY** of the same typed rows into empty
unpartitioned copies of the tables in another schema plus their two indexes each; the **indicator SQL**
(``compute_indicator_rows``, every definition) on the loaded tables; for comparison, the same indicator
SQL on the unpartitioned copies (ANALYZEd). Last, two reloads with the crosswalk unchanged:
the same files again (nothing to do) and the attendance extract re-sent as a new file (its year partitions
truncated and filled again).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import resource
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_indicators import LINKAGE, MOU_K, WORK_MEM, generate  # noqa: E402
from schemas.indicators import load_indicator_definitions  # noqa: E402
from warehouse.bulk import MAINTENANCE_WORK_MEM  # noqa: E402
from warehouse.db import make_engine, upgrade  # noqa: E402
from warehouse.indicators import compute_indicator_rows  # noqa: E402
from warehouse.load import ExtractTable, StagedFile, extract_tables, load_current, prepare_crosswalk  # noqa: E402
from warehouse.partitions import partitions  # noqa: E402
from warehouse.releases import publish_release  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------------------------------------
# Measuring: wall, CPU of this process and of its PostgreSQL backends, peak RSS


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


class Backends:
    """The PostgreSQL backend pids of an engine's connections (recorded as they connect)."""

    def __init__(self, engine: Engine) -> None:
        self.pids: set[int] = set()

        @event.listens_for(engine, "connect")
        def _pid(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("SELECT pg_backend_pid()")
            self.pids.add(int(cur.fetchone()[0]))
            cur.close()

    def cpu(self) -> dict[int, float]:
        return {p: _proc_cpu(p) for p in self.pids}


@contextmanager
def measured(label: str, backends: list[Backends], out: dict[str, dict[str, float]]) -> Iterator[None]:
    peak = [_rss()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    before = [b.cpu() for b in backends]
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    yield
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    sampler.join()
    server = sum(cpu - b0.get(pid, 0.0) for b, b0 in zip(backends, before) for pid, cpu in b.cpu().items())
    out[label] = {"wall": wall, "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), "server_cpu": server,
                  "peak_rss_gb": peak[0] / 2**30}
    m = out[label]
    print(f"  {label}: wall {m['wall']:.1f} s, CPU {m['cpu']:.1f} s (python) + {m['server_cpu']:.1f} s (PostgreSQL), "
          f"peak RSS {m['peak_rss_gb']:.2f} GB", flush=True)


# ------------------------------------------------------------------------------------------------
# Set-up: staging parquet and the crosswalk, from the generated partner-tier rows


def spec_of(tables: dict[str, ExtractTable], table_name: str) -> ExtractTable:
    """The reference partnership's (first) extract loading into ``table_name``."""
    return next(spec for _, spec in sorted(tables.items()) if spec.table.name == table_name)


def staging_table(spec: ExtractTable, typed: pa.Table) -> pa.Table:
    """The staging frame an extract's protected file would give for these rows: strings, staging names."""
    cols: dict[str, pa.Array] = {"source_key": typed["source_key"], "row_number": pc.cast(typed["source_row"], pa.string())}
    for staging_col, (table_col, _) in spec.columns.items():
        col = typed[table_col] if table_col in typed.column_names else pa.nulls(typed.num_rows, pa.string())
        cols[staging_col] = pc.cast(col, pa.string())
    return pa.table(cols)


def prepare(n_children: int, work: Path, tables: dict[str, ExtractTable]) -> tuple[dict[str, Path], Path, dict[str, int]]:
    """Write per extract the staging parquet and the typed rows (for the COPY floor); the crosswalk."""
    work.mkdir(parents=True, exist_ok=True)
    files, sizes, links = {}, {}, []
    for name, typed in generate(n_children):
        spec = spec_of(tables, name)
        pq.write_table(staging_table(spec, typed), work / f"{name}.staging.parquet")
        pq.write_table(typed, work / f"{name}.typed.parquet")
        linked = typed.select(["source_key", "child_key"]).filter(pc.is_valid(typed["child_key"]))
        links.append(linked)
        files[spec.key], sizes[name] = work / f"{name}.staging.parquet", typed.num_rows
    crosswalk = pa.concat_tables(links).group_by(["source_key", "child_key"]).aggregate([])
    pq.write_table(crosswalk, work / "crosswalk.parquet")
    return files, work / "crosswalk.parquet", sizes


# ------------------------------------------------------------------------------------------------
# Timed: load, release; floors


def load_all(engine: Engine, files: dict[str, Path], crosswalk: pd.DataFrame, tables: dict[str, ExtractTable],
             manifest: Callable[[str], int], *, read: bool = True, relink: bool = True) -> dict[str, Any]:
    """As ``stages.release.load_warehouse``: the crosswalk prepared once, then per extract its staging read
    (``read=False``: an empty frame, as for a file already loaded) and ``load_current``."""
    out = {}
    cw = prepare_crosswalk(crosswalk)
    for key, path in sorted(files.items()):
        spec = tables[key]
        frame = pq.read_table(path).to_pandas(types_mapper=pd.ArrowDtype) if read else pd.DataFrame()  # as read_staging
        mid = manifest(key)
        staged = StagedFile(spec.agency, spec.extract, mid, f"{mid:064x}", frame)
        out[key] = load_current(engine, key, [staged], cw, tables=tables, relink=relink)
        del frame, staged
    return out


def copy_floor(url: str, schema: str, work: Path, sizes: dict[str, int], backends: list[Backends]) -> Engine:
    """Empty unpartitioned copies of the tables in ``schema`` (no indexes); COPY happens in the timed phase."""
    engine = make_engine(url, schema)
    backends.append(Backends(engine))
    with engine.begin() as conn:
        q = conn.dialect.identifier_preparer
        for name in sizes:
            source = f"{q.quote_schema(schema.removesuffix('_floor'))}.{q.quote(name)}"
            conn.execute(text(f"CREATE TABLE {q.quote(name)} (LIKE {source} INCLUDING DEFAULTS)"))
    return engine


def copy_rows(engine: Engine, work: Path, sizes: dict[str, int]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        q = engine.dialect.identifier_preparer
        cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", (MAINTENANCE_WORK_MEM,))  # as the load's index builds
        for name in sizes:
            typed = pq.read_table(work / f"{name}.typed.parquet")
            cols = ", ".join(q.quote(c) for c in typed.column_names)
            for off in range(0, typed.num_rows, 1_000_000):
                buf = io.BytesIO()
                pacsv.write_csv(typed.slice(off, 1_000_000), buf, pacsv.WriteOptions(include_header=False))
                buf.seek(0)
                cur.copy_expert(f"COPY {q.quote(name)} ({cols}) FROM STDIN WITH (FORMAT csv)", buf)
            for col in ("child_key", "source_key"):
                cur.execute(f"CREATE INDEX ON {q.quote(name)} ({q.quote(col)})")
        raw.commit()
    finally:
        raw.close()


def indicator_sql(engine: Engine) -> int:
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT set_config('work_mem', %s, true)", (WORK_MEM,))
        return len(compute_indicator_rows(conn, load_indicator_definitions(), MOU_K))


def run(args: argparse.Namespace) -> None:
    tables = extract_tables()
    work = Path(args.work) / f"state_{args.children}"
    t0 = time.perf_counter()
    files, cw_path, sizes = prepare(args.children, work, tables)
    crosswalk = pq.read_table(cw_path).to_pandas(types_mapper=pd.ArrowDtype)
    print(f"  set-up: {sum(sizes.values()):,} rows in {len(files)} extracts, crosswalk {len(crosswalk):,} keys, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    print("   ", ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)
    schema = f"c2c_bench_state_{uuid.uuid4().hex[:6]}"
    engine = make_engine(args.url, schema)
    backends = [Backends(engine)]
    upgrade(engine)
    m: dict[str, dict[str, float]] = {}
    try:
        with measured("warehouse load", backends, m):
            load_all(engine, files, crosswalk, tables, lambda key: 1 + sorted(files).index(key))
        with measured("release (publish_release)", backends, m):
            info = publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, run_id="bench-state")
        print(f"    release timings {info.timings}; {info.rows:,} rows, {info.suppressed_rows:,} suppressed", flush=True)
        with engine.connect() as conn:
            print("    partitions:", {t: sorted(y for y in partitions(conn, t) if y) for t in ("enrolments", "attendance", "assessments")})
        floor_engine = copy_floor(args.url, schema + "_floor", work, sizes, backends)
        with measured("floor: COPY of the same rows + 2 indexes per table", backends, m):
            copy_rows(floor_engine, work, sizes)
        with floor_engine.begin() as conn:
            for name in sizes:
                conn.execute(text(f'ANALYZE "{name}"'))
        for i in range(args.repeat_sql):  # interleaved, so that the machine's load falls on both alike
            suffix = f" (run {i + 1})" if args.repeat_sql > 1 else ""
            with measured("floor: indicator SQL on the loaded tables" + suffix, backends, m):
                indicator_sql(engine)
            with measured("for comparison: indicator SQL on the unpartitioned copies" + suffix, backends, m):
                indicator_sql(floor_engine)
        with measured("reload: the same files again (kept files not read, crosswalk unchanged)", backends, m):
            again = load_all(engine, files, crosswalk, tables, lambda key: 1 + sorted(files).index(key), read=False, relink=False)
        assert not any(r.changed for r in again.values())
        attendance = {k: v for k, v in files.items() if tables[k].table.name == "attendance"}
        with measured("reload: attendance re-sent as a new file (partitions truncated)", backends, m):
            load_all(engine, attendance, crosswalk, tables, lambda key: 100, relink=False)
        total = m["warehouse load"]["wall"] + m["release (publish_release)"]["wall"]
        sql = min(v["wall"] for k, v in m.items() if k.startswith("floor: indicator SQL"))
        floor = m["floor: COPY of the same rows + 2 indexes per table"]["wall"] + sql
        print(f"\n  load + release: {total:.1f} s wall (target <= 240 s); floor COPY + indicator SQL: {floor:.1f} s", flush=True)
        print("\n| phase | wall s | CPU s (python) | CPU s (PostgreSQL) | peak RSS GB |\n|---|---:|---:|---:|---:|")
        for label, v in m.items():
            print(f"| {label} | {v['wall']:.1f} | {v['cpu']:.1f} | {v['server_cpu']:.1f} | {v['peak_rss_gb']:.2f} |")
        floor_engine.dispose()
    finally:
        if not args.keep:
            with engine.begin() as conn:
                for s in (schema, schema + "_floor"):
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
            shutil.rmtree(work, ignore_errors=True)
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, default=1_500_000)
    ap.add_argument("--url", default="postgresql+psycopg2://127.0.0.1:5432/test")
    ap.add_argument("--work", default="/work/scratch-pgstate", help="scratch folder for the staging parquet")
    ap.add_argument("--keep", action="store_true", help="keep the schemas and the parquet files")
    ap.add_argument("--repeat-sql", type=int, default=1, help="time the indicator SQL (partitioned, unpartitioned) this many times")
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"load average {os.getloadavg()[0]:.1f}")
    with make_engine(args.url).connect() as conn:
        print(conn.execute(text("SELECT version()")).scalar_one().split(",")[0])
    run(args)


if __name__ == "__main__":
    main()
