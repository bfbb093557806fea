"""Benchmark indicator correctness (issue 7 item 5): the whole pipeline against the synthetic truth.

Run:  python bench/bench_truth_indicators.py [--children 20000] [--seed 7] [--keep DIR] [--json OUT]

Generates a synthetic city (``synthetic.city.generate_city``), reads its facts and truth, runs the whole
pipeline over its drop folder in-process (``pipelines.runner.run_pipeline``: intake of the nine files, then
the nightly linkage, load and release on a SQLite warehouse, a fresh random master key), then compares per
indicator, period, school (or ``ALL``), dimension and group, before disclosure control:

* **pipeline**: ``warehouse.indicators.compute_indicator_rows`` on the run's warehouse;
* **truth**: ``synthetic.truth_indicators`` (independent pandas code following SPEC.md) with every
  record's true person as the child;
* **replay**: the same reference code with the pipeline's own linkage (each record's ``child_key``) as
  the child: it isolates the indicator computation from the linkage (it must equal the pipeline).

Reports, per indicator: cells, cells exact / differing, cells differing with no linkage error in them,
max |numerator| / |rate| difference, cells beyond the linkage-error bound, cells where pipeline and replay
differ, and the city-wide rate (all periods) pipeline vs truth; plus the linkage errors measured against
the truth (students whose school ids were split or merged; whose health or human-services links differ).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402


def run(children: int, seed: int, keep: Path | None) -> dict:
    os.environ["C2C_MASTER_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    for var in [v for v in os.environ if v.startswith("C2C_") and v not in ("C2C_MASTER_KEY",)]:
        del os.environ[var]
    work = Path(tempfile.mkdtemp(prefix=f"c2c-bench-truth-{children}-"))
    home = work / "home"
    env = {"C2C_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "C2C_TODAY": "2026-11-23",
           "C2C_DATA_DOCS": "0", "C2C_DROP_DIR": str(work / "city" / "drop")}
    os.environ.update(env)
    from sqlalchemy import create_engine

    from data_sharing.keys import load_keyset
    from data_sharing.pseudonyms import pseudonymize_ids
    from pipelines.runner import run_pipeline
    from pipelines.settings import Settings
    from synthetic import truth_indicators as T
    from synthetic.city import generate_city

    try:
        t = time.perf_counter()
        generate_city(children, seed, work / "city")
        t_gen = time.perf_counter() - t
        facts = T.load_city_facts(work / "city")  # before intake takes the files in
        t = time.perf_counter()
        summary = run_pipeline(Settings.from_env(env), settle_s=0, echo=lambda _m: None)
        t_run = time.perf_counter() - t
        if not summary.ok:
            raise SystemExit(f"pipeline run failed: {summary.error or summary.counts}")
        engine = create_engine(f"sqlite:///{home / 'warehouse.db'}")
        t = time.perf_counter()
        keyset = load_keyset(env=os.environ)
        agreement = T.measure(facts, engine, lambda ids, agency, id_type: pseudonymize_ids(
            ids, keyset, agency=agency, id_type=id_type)["source_key"])
        t_measure = time.perf_counter() - t
        engine.dispose()
    finally:
        if keep is not None:
            shutil.copytree(work, keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    table = T.agreement_summary(agreement.cells)
    return {"children": children, "seed": seed, "timings_s": {"generate": round(t_gen, 1), "pipeline": round(t_run, 1),
            "measure": round(t_measure, 1)}, "files": dict(summary.counts), "release": summary.release,
            "linkage_errors": agreement.error_rates, "indicators": table.to_dict(orient="records")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="copy the work folder (city truth, warehouse) here")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    res = run(args.children, args.seed, args.keep)
    print(f"# indicators vs synthetic truth: {args.children:,} children, seed {args.seed} "
          f"({platform.python_version()}, {os.cpu_count()} cpus)")
    print(f"timings (s): {res['timings_s']}; files: {res['files']}; release: {res['release']}")
    le = res["linkage_errors"]
    print(f"students: {le['students_total']:,}; linkage errors (students touched): "
          + ", ".join(f"{a} {le[a]['students']} ({le[a]['share']:.4%})" for a in ("fps", "fps_split", "fps_merged", "fhd", "dhs")))
    df = pd.DataFrame(res["indicators"])
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.6f}".format):
        print(df.to_string(index=False))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
