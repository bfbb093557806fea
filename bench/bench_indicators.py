"""Benchmark indicators (issue 7): compute, protect and publish every indicator on PostgreSQL.

Run:  python bench/bench_indicators.py [--children 150000] [--children 1500000] [--repeat 3]
      [--url postgresql+psycopg2://127.0.0.1:5432/test] [--keep-schema]

For each size the script makes a fresh schema, migrates it, and fills the partner-tier tables with a
synthetic city generated here (made-up child_keys and values; sizes as a real city's: one enrolment and
one attendance row per school-age child per year over five school years, 4% mid-year transfers with a
second enrolment and attendance row, KRA/ELA/MATH results with 5% retests, a graduation cohort, one or two
health records per child with about six immunizations each and well-child/sick/ED encounters, human-
services records for 45% of children plus adults, with program spells). Then it times:

* ``publish_release``: the whole release (SQL computation, disclosure control per indicator and period,
  COPY of the published rows, pointer flip, audit entry), best of ``--repeat`` runs;
* the floor: the **same SQL statements** the computation issues, captured from a run and replayed on a
  raw psycopg2 cursor in one transaction (no SQLAlchemy, pandas or disclosure control).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import platform
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.indicators import load_indicator_definitions  # noqa: E402
from warehouse.db import make_engine, upgrade  # noqa: E402
from warehouse.indicators import compute_indicator_rows  # noqa: E402
from warehouse.models import Base  # noqa: E402
from warehouse.partitions import ensure_year_partitions  # noqa: E402
from warehouse.releases import publish_release  # noqa: E402

YEARS = (2022, 2023, 2024, 2025, 2026)
RACES = (np.array(["HI", "AI", "AS", "BL", "PI", "WH", "MR"]), [0.30, 0.01, 0.06, 0.30, 0.005, 0.28, 0.045])
SEXES = (np.array(["F", "M", "X"]), [0.49, 0.49, 0.02])
FLAGS = {"english_learner": 0.12, "disability": 0.14, "econ_disadvantaged": 0.55, "homeless": 0.04}
GRADES = np.array(["PK", "KG"] + [f"{g:02d}" for g in range(1, 13)])
PROGRAMS = (
    np.array(["SNAP", "TANF", "WIC", "CHILD_CARE_SUBSIDY", "CHILD_WELFARE", "FOSTER_CARE", "HOUSING_ASSISTANCE", "HOMELESS_SERVICES"]),
    np.array([0.45, 0.08, 0.15, 0.08, 0.04, 0.02, 0.12, 0.06]),
)
OUTCOMES = (
    np.array(["GRADUATED_4YR", "GRADUATED_5YR", "DROPPED_OUT", "STILL_ENROLLED", "TRANSFERRED_OUT", "DECEASED"]),
    [0.80, 0.03, 0.06, 0.05, 0.059, 0.001],
)
MOU_K = {"school_enrolment": 10, "school_attendance": 10, "school_assessment": 10, "school_graduation": 10, "health_person": 11, "health_encounter": 11, "health_immunization": 11, "services_person": 10, "services_program_spell": 10}  # role -> k
WORK_MEM = "256MB"  # publish_release's default pg_work_mem
LINKAGE = {"fps~fhd": {"records": 0, "link_rate": 0.97}, "fps~dhs": {"records": 0, "link_rate": 0.95}}
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_keys(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    """n random lower-case hex strings of 2*nbytes characters, as bytes (vectorised)."""
    raw = np.frombuffer(rng.bytes(n * nbytes), dtype=np.uint8).reshape(n, nbytes)
    out = np.empty((n, nbytes * 2), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out.view(f"S{nbytes * 2}").ravel()


def days(y: int, m: int, d: int) -> np.datetime64:
    return np.datetime64(dt.date(y, m, d), "D")


def choice(rng: np.random.Generator, spec: tuple[np.ndarray, list[float] | np.ndarray], n: int) -> np.ndarray:
    values, p = spec
    p = np.asarray(p, dtype=float)
    return values[rng.choice(len(values), n, p=p / p.sum())]


def yn(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return np.where(rng.random(n) < p, "Y", "N")


def fact(manifest: int, keys: np.ndarray, child: np.ndarray | None, **cols: object) -> dict[str, object]:
    n = len(keys)
    return {
        "manifest_id": np.full(n, manifest, dtype=np.int32), "source_row": np.arange(1, n + 1, dtype=np.int32),
        "source_sha256": pa.scalar(f"{manifest:064x}"), "source_key": keys, "child_key": child, **cols,
    }


def to_arrow(cols: dict[str, object]) -> pa.Table:
    n = len(cols["source_key"])  # type: ignore[arg-type]
    out = {}
    for k, v in cols.items():
        if isinstance(v, pa.Scalar):
            out[k] = pa.repeat(v, n)
            continue
        arr = np.asarray(v)
        if arr.dtype.kind == "M":
            out[k] = pa.array(arr.astype("datetime64[D]"), type=pa.date32(), from_pandas=True)
        elif arr.dtype.kind in "SO":
            a = pa.array(arr, from_pandas=True)
            out[k] = a.cast(pa.string()) if pa.types.is_binary(a.type) or pa.types.is_null(a.type) else a
        else:
            out[k] = pa.array(arr)
    return pa.table(out)


def generate(n_children: int, seed: int = 7) -> Iterator[tuple[str, pa.Table]]:
    """The partner-tier tables of a synthetic city of ``n_children`` children aged 0-18 (made-up values), one at a time."""
    rng = np.random.default_rng(seed)
    n = n_children
    child_key = hex_keys(rng, n, 16)
    student_key = hex_keys(rng, n, 32)
    birth = days(2007, 9, 2) + rng.integers(0, 19 * 365, n)
    birth_year = birth.astype("datetime64[Y]").astype(int) + 1970
    bym = np.datetime_as_string(birth, unit="M")
    attrs = {
        "sex": choice(rng, SEXES, n), "race_ethnicity": choice(rng, RACES, n),
        **{f: yn(rng, p, n) for f, p in FLAGS.items()},
    }
    zones = max(1, n // 5000)
    zone = rng.integers(0, zones, n)
    student_linked = rng.random(n) >= 0.01  # 1% of students not (yet) linked
    absence_rate = np.clip(rng.lognormal(np.log(0.05), 0.8, n), 0, 0.9)

    # ---- enrolments and attendance ------------------------------------------------------------------
    e_cols: dict[str, list[np.ndarray]] = {k: [] for k in ("i", "year", "grade", "school", "enroll", "exit", "part")}
    for y in YEARS:
        age = (y - 1) - birth_year  # age on Sept 1 of the school year's start, roughly
        grade_idx = age - 4
        enrolled = (grade_idx >= 0) & (grade_idx <= 13) & (rng.random(n) < np.where(grade_idx == 0, 0.6, 0.93))
        idx = np.flatnonzero(enrolled)
        g = grade_idx[idx]
        level = np.where(g <= 7, "E", np.where(g <= 10, "M", "H"))
        school = np.char.add(level.astype(str), np.char.zfill(zone[idx].astype(str), 4))
        moved = rng.random(len(idx)) < 0.04
        move_day = rng.integers(45, 240, len(idx))
        start = days(y - 1, 8, 20)
        e_cols["i"].append(idx)
        e_cols["year"].append(np.full(len(idx), y))
        e_cols["grade"].append(GRADES[g])
        e_cols["school"].append(school)
        e_cols["enroll"].append(np.full(len(idx), start))
        e_cols["exit"].append(np.where(moved, start + move_day - 1, np.datetime64("NaT")))
        e_cols["part"].append(np.where(moved, move_day / 180.0, 1.0))
        m = np.flatnonzero(moved)  # the second enrolment of a mid-year transfer, at another zone's school
        other = np.char.add(level[m].astype(str), np.char.zfill(((zone[idx[m]] + 1 + rng.integers(0, max(1, zones - 1), len(m))) % zones).astype(str), 4))
        e_cols["i"].append(idx[m])
        e_cols["year"].append(np.full(len(m), y))
        e_cols["grade"].append(GRADES[g[m]])
        e_cols["school"].append(other)
        e_cols["enroll"].append(start + move_day[m])
        e_cols["exit"].append(np.full(len(m), np.datetime64("NaT")))
        e_cols["part"].append(1.0 - move_day[m] / 180.0)
    e = {k: np.concatenate(v) for k, v in e_cols.items()}
    ei = e["i"]
    enrol = fact(
        1, student_key[ei], np.where(student_linked[ei], child_key[ei], None),
        school_year=e["year"].astype(np.int32), school_id=e["school"], grade_level=e["grade"],
        enroll_date=e["enroll"], exit_date=e["exit"], **{k: v[ei] for k, v in attrs.items()},
        birth_year_month=bym[ei], zip3=pa.scalar("021"),
    )
    child_of_row = enrol["child_key"]
    yield "enrolments", to_arrow(enrol)
    del enrol
    d_enrolled = np.maximum(0, np.round(178 * e["part"] + rng.integers(-3, 3, len(ei)))).astype(np.int32)
    d_absent = np.minimum(d_enrolled, rng.binomial(d_enrolled, absence_rate[ei])).astype(np.int32)
    attend = fact(2, student_key[ei], child_of_row, school_id=e["school"], school_year=e["year"].astype(np.int32),  # type: ignore[arg-type]
                  days_enrolled=d_enrolled, days_absent=d_absent)
    yield "attendance", to_arrow(attend)
    del attend

    # ---- assessments: KRA in KG, ELA and MATH in grades 03-08, 5% retests ----------------------------
    first = e["part"] >= 0.5  # one result per student-year (at the main enrolment)
    a_parts = []
    for subject, grades, top in (("KRA", ["KG"], 3), ("ELA", [f"{g:02d}" for g in range(3, 9)], 4), ("MATH", [f"{g:02d}" for g in range(3, 9)], 4)):
        sel = np.flatnonzero(first & np.isin(e["grade"], grades) & (rng.random(len(ei)) < 0.97))
        retest = sel[rng.random(len(sel)) < 0.05]
        rows = np.concatenate([sel, retest])
        a_parts.append((rows, np.full(len(rows), subject), rng.integers(1, top + 1, len(rows))))
    ar = np.concatenate([p[0] for p in a_parts])
    assess = fact(
        3, student_key[ei[ar]], child_of_row[ar], school_year=e["year"][ar].astype(np.int32),  # type: ignore[index]
        grade_level=e["grade"][ar], subject=np.concatenate([p[1] for p in a_parts]),
        scale_score=rng.integers(200, 600, len(ar)).astype(np.int32),
        performance_level=np.concatenate([p[2] for p in a_parts]).astype(np.int32),
    )
    yield "assessments", to_arrow(assess)
    del assess

    # ---- graduation: every grade-12 student of a year is in that cohort -------------------------------
    gr = np.flatnonzero(first & (e["grade"] == "12"))
    grad = fact(4, student_key[ei[gr]], child_of_row[gr], cohort_year=e["year"][gr].astype(np.int32),  # type: ignore[index]
                outcome=choice(rng, OUTCOMES, len(gr)))
    yield "graduation_outcomes", to_arrow(grad)
    del grad, child_of_row, e, ei

    # ---- health: one record per child (6% two), 3% of records unlinked ------------------------------
    has2 = rng.random(n) < 0.06
    p_child = np.concatenate([np.arange(n), np.flatnonzero(has2)])
    p_key = hex_keys(rng, len(p_child), 32)
    p_linked = rng.random(len(p_child)) >= 0.03
    p_child_key = np.where(p_linked, child_key[p_child], None)
    yield "health_patients", to_arrow(fact(5, p_key, p_child_key, birth_year_month=bym[p_child], sex=attrs["sex"][p_child], zip3=pa.scalar("021")))
    # immunizations: MMR at 12-15 months and (90%) at 4-6 years, four other vaccines; 3% recorded twice
    rec = np.arange(n)  # first record of each child
    mmr1 = birth + rng.integers(365, 456, n)
    mmr2 = birth + rng.integers(4 * 365, 6 * 365, n)
    other = birth[np.repeat(rec, 4)] + rng.integers(60, 6 * 365, 4 * n)
    give2 = rng.random(n) < 0.9
    i_rec = np.concatenate([rec, rec[give2], np.repeat(rec, 4)])
    i_code = np.concatenate([np.where(rng.random(n) < 0.9, "03", "94"), np.full(give2.sum(), "03"),
                             rng.choice(np.array(["08", "10", "20", "21", "110"]), 4 * n)])
    i_date = np.concatenate([mmr1, mmr2[give2], other])
    keep = i_date < days(2026, 6, 30)
    i_rec, i_code, i_date = i_rec[keep], i_code[keep], i_date[keep]
    dup = rng.random(len(i_rec)) < 0.03
    i_key = np.concatenate([p_key[i_rec], p_key[i_rec[dup]]])
    i_ck = np.concatenate([p_child_key[i_rec], p_child_key[i_rec[dup]]])
    yield "immunizations", to_arrow(fact(6, i_key, i_ck, vaccine_code=np.concatenate([i_code, i_code[dup]]), administered_date=np.concatenate([i_date, i_date[dup]])))
    del i_key, i_ck
    # encounters: per child and school year, well-child (55%), ~1 sick visit, ED 10%
    enc_rec, enc_type, enc_date = [], [], []
    for y in YEARS:
        alive = np.flatnonzero(birth < days(y - 1, 7, 1))
        for etype, lam in (("WELL_CHILD", None), ("SICK_VISIT", 1.0), ("ED_VISIT", 0.1)):
            cnt = (rng.random(len(alive)) < 0.55).astype(int) if lam is None else rng.poisson(lam, len(alive))
            r = np.repeat(alive, cnt)
            enc_rec.append(r)
            enc_type.append(np.full(len(r), etype))
            enc_date.append(days(y - 1, 7, 1) + rng.integers(0, 365, len(r)))
    er = np.concatenate(enc_rec)
    yield "health_encounters", to_arrow(fact(
        7, p_key[er], p_child_key[er], encounter_id=np.char.add("E", np.arange(len(er)).astype(str)),
        encounter_date=np.concatenate(enc_date), encounter_type=np.concatenate(enc_type), diagnosis_code=pa.scalar("Z00.129"),
    ))
    del er, enc_rec, enc_type, enc_date

    # ---- human services: 45% of children and adults (a third as many), program spells ---------------
    kids = np.flatnonzero(rng.random(n) < 0.45)
    n_adults = n // 3
    c_key = hex_keys(rng, len(kids) + n_adults, 32)
    c_child = np.concatenate([child_key[kids], hex_keys(rng, n_adults, 16)])
    clients = fact(8, c_key, c_child, birth_year_month=np.concatenate([bym[kids], np.full(n_adults, "1985-06")]),
                   sex=np.concatenate([attrs["sex"][kids], choice(rng, SEXES, n_adults)]), zip3=pa.scalar("021"))
    yield "dhs_clients", to_arrow(clients)
    spells = rng.integers(1, 4, len(c_key))
    s_rec = np.repeat(np.arange(len(c_key)), spells)
    s_start = days(2019, 1, 1) + rng.integers(0, 7 * 365, len(s_rec))
    s_end = np.where(rng.random(len(s_rec)) < 0.4, np.datetime64("NaT"), s_start + rng.integers(30, 3 * 365, len(s_rec)))
    progs = fact(9, c_key[s_rec], c_child[s_rec], program=PROGRAMS[0][rng.choice(8, len(s_rec), p=PROGRAMS[1] / PROGRAMS[1].sum())],
                 start_date=s_start, end_date=s_end)
    yield "program_enrolments", to_arrow(progs)


EXTRACT_OF = {
    "enrolments": ("fps", "students", 1), "attendance": ("fps", "attendance", 2), "assessments": ("fps", "assessments", 3),
    "graduation_outcomes": ("fps", "graduation", 4), "health_patients": ("fhd", "patients", 5),
    "immunizations": ("fhd", "immunizations", 6), "health_encounters": ("fhd", "encounters", 7),
    "dhs_clients": ("dhs", "clients", 8), "program_enrolments": ("dhs", "program_enrollments", 9),
}


def copy_table(engine: Engine, name: str, table: pa.Table, chunk: int = 1_000_000) -> None:
    """COPY a generated table in (secondary indexes dropped meanwhile and rebuilt: bench set-up only)."""
    indexes = list(Base.metadata.tables[name].indexes)
    with engine.begin() as conn:
        for idx in indexes:
            idx.drop(conn)
        if "school_year" in table.column_names:  # the year partitions a load would create (warehouse.partitions)
            ensure_year_partitions(conn, Base.metadata.tables[name], pc.unique(table["school_year"]).to_pylist())
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cols = ", ".join('"' + c + '"' for c in table.column_names)
        for off in range(0, table.num_rows, chunk):
            buf = io.BytesIO()
            pacsv.write_csv(table.slice(off, chunk), buf, pacsv.WriteOptions(include_header=False))
            buf.seek(0)
            cur.copy_expert(f'COPY "{name}" ({cols}) FROM STDIN WITH (FORMAT csv)', buf)  # bench-only, fixed names
        agency, extract, mid = EXTRACT_OF[name]
        cur.execute(
            "INSERT INTO loaded_files (agency, extract, manifest_id, sha256, periods, rows, loaded_at) VALUES (%s, %s, %s, %s, NULL, %s, now())",
            (agency, extract, mid, f"{mid:064x}", table.num_rows),
        )
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        for idx in indexes:
            idx.create(conn)


def floor_seconds(engine: Engine) -> tuple[float, int]:
    """Capture the computation's SQL, then replay it on a raw cursor in one transaction."""
    captured: list[tuple[str, object, bool]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured.append((statement, parameters, executemany))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT set_config('work_mem', %s, true)", (WORK_MEM,))
            captured.clear()
            compute_indicator_rows(conn, load_indicator_definitions(), MOU_K)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        t0 = time.perf_counter()
        cur.execute("SELECT set_config('work_mem', %s, true)", (WORK_MEM,))  # as publish_release does
        for statement, params, many in captured:
            if many and isinstance(params, list | tuple):
                cur.executemany(statement, params)
            else:
                cur.execute(statement, params)
                if cur.description is not None:
                    cur.fetchall()
        elapsed = time.perf_counter() - t0
        raw.rollback()
    finally:
        raw.close()
    return elapsed, len(captured)


def analyze_tables(engine: Engine) -> None:
    """Planner statistics for the generated tables (this schema's only; autovacuum would get there later)."""
    with engine.begin() as conn:
        for name in EXTRACT_OF:
            conn.execute(text("ANALYZE " + conn.dialect.identifier_preparer.quote(name)))


def run(url: str, n_children: int, repeat: int, keep_schema: bool, reuse: str | None = None) -> dict[str, object]:
    schema = reuse or f"c2c_bench_ind_{n_children}_{uuid.uuid4().hex[:6]}"
    engine = make_engine(url, schema)
    upgrade(engine)
    try:
        t0 = time.perf_counter()
        sizes: dict[str, int] = {}
        t_copy = 0.0
        if reuse:  # a schema a previous run kept (--keep-schema): count its rows instead of generating
            with engine.connect() as conn:
                for name in EXTRACT_OF:
                    sizes[name] = conn.execute(text("SELECT count(*) FROM " + conn.dialect.identifier_preparer.quote(name))).scalar_one()
        for name, tbl in ([] if reuse else generate(n_children)):
            sizes[name] = tbl.num_rows
            tc = time.perf_counter()
            copy_table(engine, name, tbl)
            t_copy += time.perf_counter() - tc
            del tbl
        t_gen = time.perf_counter() - t0 - t_copy
        t0 = time.perf_counter()
        analyze_tables(engine)
        t_load = t_copy + time.perf_counter() - t0
        what = f"reused schema {schema}" if reuse else f"generated in {t_gen:.1f} s, COPY {t_copy:.1f} s"
        print(f"  {n_children:,} children: {sum(sizes.values()):,} rows ({what}; ANALYZE {t_load - t_copy:.1f} s)", flush=True)
        print("   ", ", ".join(f"{k} {v:,}" for k, v in sizes.items()), flush=True)
        best = None
        for i in range(repeat):
            t0 = time.perf_counter()
            info = publish_release(engine, linkage_quality=LINKAGE, min_cell_sizes=MOU_K, run_id=f"bench-{i}")
            wall = time.perf_counter() - t0
            print(f"  publish_release run {i + 1}: {wall:.2f} s ({info.timings}), {info.rows:,} rows, {info.suppressed_rows:,} suppressed", flush=True)
            if best is None or wall < best[0]:
                best = (wall, info)
        floors = [floor_seconds(engine) for _ in range(repeat)]
        floor = min(f[0] for f in floors)
        print(f"  floor (same {floors[0][1]} SQL statements on a raw cursor): {floor:.2f} s", flush=True)
        assert best is not None
        return {"children": n_children, "rows": sizes, "publish": best[0], "timings": best[1].timings,
                "published_rows": best[1].rows, "suppressed": best[1].suppressed_rows, "floor": floor}
    finally:
        if not keep_schema:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA " + conn.dialect.identifier_preparer.quote_schema(schema) + " CASCADE"))
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--children", type=int, action="append", help="city size(s); default 150000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", default="postgresql+psycopg2://127.0.0.1:5432/test")
    ap.add_argument("--keep-schema", action="store_true", help="keep the generated schema (for --reuse-schema)")
    ap.add_argument("--reuse-schema", help="time an existing generated schema (one --children value)")
    args = ap.parse_args()
    sizes = args.children or [150_000]
    print(f"Python {platform.python_version()}, {platform.machine()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    with make_engine(args.url).connect() as conn:
        print(conn.execute(text("SELECT version()")).scalar_one().split(",")[0])
    results = [run(args.url, n, args.repeat if n <= 200_000 else 1, args.keep_schema or bool(args.reuse_schema), args.reuse_schema) for n in sizes]
    print("\n| children | warehouse rows | publish_release (s) | compute / protect / write (s) | published rows | floor: same SQL, raw cursor (s) |")
    print("|---:|---:|---:|---|---:|---:|")
    for r in results:
        t = r["timings"]
        print(
            f"| {r['children']:,} | {sum(r['rows'].values()):,} | **{r['publish']:.1f}** | "  # type: ignore[union-attr]
            f"{t['compute']:.1f} / {t['protect']:.1f} / {t['write']:.1f} | {r['published_rows']:,} | {r['floor']:.1f} |"  # type: ignore[index]
        )


if __name__ == "__main__":
    main()
