"""Benchmark extract validation (issue 5): a 1,000,000-row `students` extract, full suite, row-level detail.

Run:  python bench/bench_validation.py [--rows 1000000] [--repeat 3] [--gx-rows 100000]

The extract is synthetic (made-up values, built here with Arrow, not from real people): 1,000,000
distinct rows plus 0.05% exact repeats, with exactly 1% of rows made bad in one of thirteen ways
(bad code, impossible date, blank required field, exit before enrolment, birth after enrolment, zip
format, unparseable year, year out of range, over-long name, a key shared by two different rows, ...).
The script checks that validation quarantines exactly those rows and accepts all the others.

Printed, each the best of ``--repeat`` runs:
* ``read``: the CSV bytes to an Arrow table of strings, as intake reads a file (not part of the target);
* ``validate (masks)``: ``validate_table`` with the default engine, from the table to the full
  ``ValidationResult`` (suite built from the contract and cached, every expectation translated into
  a row mask, problems with row numbers, accepted/quarantined indices, GX-style summary);
* ``to_gx``: turning that result into a GX ``ExpectationSuiteValidationResult`` (for Data Docs);
* ``cold``: what the first file of a fresh process pays (GX import, suite build, first validation);
* floors in the same run: the same checks hand-written in vectorised pandas, and in one DuckDB query;
* optionally (``--gx-rows``), GX itself (``engine="gx"``) on the first N rows, to show what the
  translation saves.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from data_sharing.intake import _check_encoding, _read_body, _read_header  # noqa: E402
from data_sharing.validation import suite_for, validate_table  # noqa: E402
from schemas.contracts import load_extract_contracts  # noqa: E402

COLUMNS = [
    "student_id", "first_name", "middle_name", "last_name", "birth_date", "sex", "race_ethnicity",
    "english_learner", "disability", "econ_disadvantaged", "homeless", "street_address", "zip", "school_id",
    "grade_level", "school_year", "enroll_date", "exit_date",
]
DEFECTS = [
    ("sex", "Q"),                # code not in F/M/X
    ("race_ethnicity", "ZZ"),    # code
    ("enroll_date", "2025-02-30"),  # impossible date
    ("birth_date", "2015/03/04"),   # not YYYY-MM-DD
    ("last_name", ""),           # required, blank
    ("exit_date", "2024-01-05"),  # exit before enrolment (rule)
    ("birth_date", "2026-06-01"),  # birth not before enrolment (rule)
    ("zip", "0210"),             # pattern
    ("school_year", "20x6"),     # integer type
    ("school_year", "1999"),     # range
    ("first_name", "N" * 101),   # max length
    ("grade_level", "13"),       # code
]


def _strs(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[rng.integers(0, len(values), n)], pa.string())


def _num(prefix: str, values: np.ndarray, width: int = 0) -> pa.Array:
    text = pc.cast(pa.array(values), pa.string())
    if width:
        text = pc.utf8_lpad(text, width=width, padding="0")
    return pc.binary_join_element_wise(prefix, text, "") if prefix else text


def make_students(n: int, bad_share: float = 0.01, dup_share: float = 0.0005, seed: int = 0) -> tuple[bytes, set[int], int]:
    """(CSV bytes, 0-based indices of the bad rows, number of exact repeats appended)."""
    rng = np.random.default_rng(seed)
    year = rng.integers(2008, 2021, n)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    birth = pc.binary_join_element_wise(_num("", year), _num("", month, 2), _num("", day, 2), "-")
    cols: dict[str, pa.Array] = {
        "student_id": _num("S", np.arange(n), 7),
        "first_name": _num("Testfirst", rng.integers(0, 5000, n)),
        "middle_name": _strs(rng, ["", "", "Testmiddle"], n),
        "last_name": _num("Testlast", rng.integers(0, 20000, n)),
        "birth_date": birth,
        "sex": _strs(rng, ["F", "M", "X"], n),
        "race_ethnicity": _strs(rng, ["HI", "AI", "AS", "BL", "PI", "WH", "MR"], n),
        "english_learner": _strs(rng, ["Y", "N"], n),
        "disability": _strs(rng, ["Y", "N"], n),
        "econ_disadvantaged": _strs(rng, ["Y", "N"], n),
        "homeless": _strs(rng, ["Y", "N"], n),
        "street_address": _num("", rng.integers(1, 9999, n)),
        "zip": _strs(rng, ["02100", "02101", "02102", "02103"], n),
        "school_id": _num("SCH", rng.integers(0, 40, n), 3),
        "grade_level": _strs(rng, ["PK", "KG"] + [f"{g:02d}" for g in range(1, 13)], n),
        "school_year": _strs(rng, ["2025", "2026"], n),
        "enroll_date": _strs(rng, ["2025-08-20", "2025-09-02", "2026-01-12"], n),
        "exit_date": _strs(rng, ["", "", "", "2026-06-15"], n),
    }
    cols["street_address"] = pc.binary_join_element_wise(cols["street_address"], "Test Street", " ")
    n_bad = int(round(n * bad_share))
    kinds = len(DEFECTS) + 1
    n_pairs = n_bad // kinds
    picked = rng.choice(n, size=n_bad - n_pairs, replace=False)  # each pair adds its partner as a bad row
    singles, pair_rows = picked[: len(picked) - n_pairs], picked[len(picked) - n_pairs :]
    pool = np.setdiff1d(np.arange(n), picked)
    partners = rng.choice(pool, size=n_pairs, replace=False)
    arrays = {k: v.to_numpy(zero_copy_only=False).astype(object) for k, v in cols.items()}
    for j, i in enumerate(singles.tolist()):
        column, value = DEFECTS[j % len(DEFECTS)]
        arrays[column][i] = value
    for i, k in zip(pair_rows.tolist(), partners.tolist(), strict=True):
        # a key shared by two different rows: both are quarantined
        for c in ("student_id", "school_id", "school_year", "enroll_date"):
            arrays[c][k] = arrays[c][i]
        arrays["first_name"][k] = "Othername"
    bad_rows = set(picked.tolist()) | set(partners.tolist())
    table = pa.table({k: pa.array(v, pa.string()) for k, v in arrays.items()})
    n_dup = int(round(n * dup_share))
    good = np.setdiff1d(np.arange(n), np.fromiter(bad_rows, np.int64))
    dup_src = rng.choice(good, size=n_dup, replace=False)
    table = pa.concat_tables([table, table.take(pa.array(dup_src))])
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue(), bad_rows, n_dup


def pandas_floor(table: pa.Table) -> int:
    """The same checks, hand-written in vectorised pandas (Arrow-backed strings): rows flagged."""
    import pandas as pd

    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    df = df.replace("", None)
    bad = pd.Series(False, index=df.index)
    for c in ["student_id", "first_name", "last_name", "birth_date", "sex", "race_ethnicity", "english_learner",
              "disability", "econ_disadvantaged", "homeless", "street_address", "zip", "school_id", "grade_level",
              "school_year", "enroll_date"]:
        bad |= df[c].isna()
    codes = {"sex": ["F", "M", "X"], "race_ethnicity": ["HI", "AI", "AS", "BL", "PI", "WH", "MR"],
             "grade_level": ["PK", "KG"] + [f"{g:02d}" for g in range(1, 13)]}
    for c in ("english_learner", "disability", "econ_disadvantaged", "homeless"):
        codes[c] = ["Y", "N"]
    for c, values in codes.items():
        bad |= df[c].notna() & ~df[c].isin(values)
    for c in ("student_id", "first_name", "middle_name", "last_name", "street_address", "school_id"):
        bad |= df[c].str.len().fillna(0) > (32 if c in ("student_id", "school_id") else 200 if c == "street_address" else 100)
    bad |= df["zip"].notna() & ~df["zip"].str.match(r"^[0-9]{5}$").fillna(False)
    is_int = df["school_year"].str.fullmatch(r"-?[0-9]{1,18}").fillna(False)
    year = pd.to_numeric(df["school_year"].where(is_int, None).astype(object), errors="coerce")
    bad |= df["school_year"].notna() & (~is_int | (year < 2000) | (year > 2100))
    dates = {}
    for c, lo in (("birth_date", "1990-01-01"), ("enroll_date", "1999-07-01"), ("exit_date", "1999-07-01")):
        d = pd.to_datetime(df[c].astype(object), format="%Y-%m-%d", errors="coerce")
        bad |= df[c].notna() & (d.isna() | (d < pd.Timestamp(lo)))
        dates[c] = d
    bad |= dates["exit_date"].notna() & (dates["exit_date"] < dates["enroll_date"])
    bad |= dates["birth_date"].notna() & dates["enroll_date"].notna() & (dates["birth_date"] >= dates["enroll_date"])
    dedup = df.drop_duplicates()
    key = ["student_id", "school_id", "school_year", "enroll_date"]
    bad = bad.loc[dedup.index] | dedup.duplicated(key, keep=False)
    return int(bad.sum())


def duckdb_floor(table: pa.Table) -> int:
    """The same checks as one DuckDB query over the Arrow table: rows flagged."""
    import duckdb

    con = duckdb.connect()
    con.register("t", table)
    req = " OR ".join(f"nullif(trim({c}), '') IS NULL" for c in COLUMNS if c not in ("middle_name", "exit_date"))
    sql = f"""
    WITH d AS (SELECT DISTINCT * FROM t),
    k AS (SELECT *, count(*) OVER (PARTITION BY student_id, school_id, school_year, enroll_date) AS kc FROM d)
    SELECT count(*) FROM k WHERE ({req})
      OR sex NOT IN ('F','M','X') OR race_ethnicity NOT IN ('HI','AI','AS','BL','PI','WH','MR')
      OR english_learner NOT IN ('Y','N') OR disability NOT IN ('Y','N') OR econ_disadvantaged NOT IN ('Y','N')
      OR homeless NOT IN ('Y','N')
      OR grade_level NOT IN ('PK','KG','01','02','03','04','05','06','07','08','09','10','11','12')
      OR length(first_name) > 100 OR length(last_name) > 100 OR length(middle_name) > 100
      OR length(student_id) > 32 OR length(school_id) > 32 OR length(street_address) > 200
      OR NOT regexp_full_match(zip, '[0-9]{{5}}')
      OR try_cast(school_year AS INTEGER) IS NULL OR try_cast(school_year AS INTEGER) NOT BETWEEN 2000 AND 2100
      OR try_strptime(birth_date, '%Y-%m-%d') IS NULL OR try_strptime(birth_date, '%Y-%m-%d') < DATE '1990-01-01'
      OR try_strptime(enroll_date, '%Y-%m-%d') IS NULL OR try_strptime(enroll_date, '%Y-%m-%d') < DATE '1999-07-01'
      OR (exit_date <> '' AND (try_strptime(exit_date, '%Y-%m-%d') IS NULL
          OR try_strptime(exit_date, '%Y-%m-%d') < try_strptime(enroll_date, '%Y-%m-%d')))
      OR try_strptime(birth_date, '%Y-%m-%d') >= try_strptime(enroll_date, '%Y-%m-%d')
      OR kc > 1
    """
    return int(con.execute(sql).fetchone()[0])


def best(fn, repeat: int):  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gx-rows", type=int, default=0, help="also run GX itself (engine='gx') on the first N rows")
    args = ap.parse_args()

    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores, pyarrow {pa.__version__}")
    t0 = time.perf_counter()
    data, bad_rows, n_dup = make_students(args.rows)
    print(f"generated {args.rows:,} rows + {n_dup:,} exact repeats ({len(data) / 1e6:.0f} MB CSV), "
          f"{len(bad_rows):,} bad rows, in {time.perf_counter() - t0:.1f} s")
    contract = load_extract_contracts()[("fps", "students")]

    t0 = time.perf_counter()
    suite = suite_for(contract)
    t_suite = time.perf_counter() - t0
    print(f"GX import + suite build (once per process): {t_suite:.2f} s, {len(suite.expectations)} expectations")

    def read() -> pa.Table:
        text = _check_encoding(data)
        return _read_body(text, _read_header(text))

    t_read, table = best(read, args.repeat)
    t_first, _ = best(lambda: validate_table(table, contract, file_name="students_20260915.csv"), 1)
    t_val, result = best(lambda: validate_table(table, contract, file_name="students_20260915.csv"), args.repeat)
    t_gx, _ = best(lambda: result.to_gx(), 1)

    expected_q = len(bad_rows)
    got_q = set((result.quarantined_indices).tolist())
    assert result.duplicate_rows == n_dup, (result.duplicate_rows, n_dup)
    assert got_q == bad_rows, f"quarantined {len(got_q)} rows, expected exactly the {expected_q} bad rows"
    assert result.accepted == args.rows - expected_q, result.counts()
    print(f"result: {result.counts()} ({len(result.problems):,} problems) - exactly the bad rows quarantined")

    t_pd, flagged_pd = best(lambda: pandas_floor(table), args.repeat)
    t_db, flagged_db = best(lambda: duckdb_floor(table), args.repeat)
    assert flagged_pd == expected_q, (flagged_pd, expected_q)
    assert flagged_db == expected_q, (flagged_db, expected_q)

    print()
    print(f"{'step':<44}{'seconds':>9}")
    print(f"{'read CSV -> Arrow (intake reader)':<44}{t_read:>9.2f}")
    print(f"{'validate, engine=masks (target <= 10 s)':<44}{t_val:>9.2f}")
    print(f"{'  + to_gx() result for auditors':<44}{t_gx:>9.2f}")
    print(f"{'cold: GX import + suite + first validate':<44}{t_suite + t_first:>9.2f}")
    print(f"{'floor: same checks, vectorised pandas':<44}{t_pd:>9.2f}")
    print(f"{'floor: same checks, one DuckDB query':<44}{t_db:>9.2f}")
    if args.gx_rows:
        sub = table.slice(0, args.gx_rows)
        t_g, r_g = best(lambda: validate_table(sub, contract, engine="gx"), 1)
        r_m = validate_table(sub, contract)
        assert r_g.counts() == r_m.counts()
        print(f"{f'GX itself (engine=gx), first {args.gx_rows:,} rows':<44}{t_g:>9.2f}"
              f"   (~{t_g * len(table) / args.gx_rows:.0f} s per {len(table):,} rows)")
    print()
    print("target: validate 1M rows with the full suite in <= 10 s:", "MET" if t_val <= 10 else "MISSED")


if __name__ == "__main__":
    main()
