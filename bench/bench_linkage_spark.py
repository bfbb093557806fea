"""Linkage on local Spark vs DuckDB (issue 19): wall time, CPU, peak RSS and pairs per second.

Steps (each ``link`` in its own child process, so its peak RSS and CPU are its own):

1. a synthetic city of ``--children`` children (:func:`synthetic.city.generate_city`), protected into
   encodings (:func:`data_sharing.linkage.truth.encode_city`), a model trained once on DuckDB (cached
   in ``<work>/model``: the nightly run reuses a trained model, and both backends use the same one);
2. ``link`` on each backend from the same empty state (one child-key salt), timed; a sampler reads the
   child's process tree in /proc every 0.5 s: RSS summed over the tree (Python + the JVM) and CPU
   seconds (user + system) of every process in it, the JVM included;
3. the two crosswalks compared (child keys equal, source key by source key).

Pairs per second: the candidate pairs the blocking rules make (each once, counted in DuckDB) divided by
the predict step's wall time (the figure the cluster arithmetic in docs/scale.md scales); also Splink's
record comparisons kept (at or above the floor weight) per second. The machine is shared: run under
``nice`` and read CPU seconds beside wall time.

Usage: ``nice .venv/bin/python bench/bench_linkage_spark.py --children 2000 5000 --work /work/scratch-spark/bench``
(JSON lines on stdout and in ``<work>/results.jsonl``). Figures: docs/benchmarks.md, "Linkage on Spark".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOW = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _sample(pid: int) -> tuple[float, dict[int, float]]:
    rss, cpu = 0.0, {}
    for p in _tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[p] = (int(f[11]) + int(f[12])) / TICK
        rss += int(f[21]) * PAGE
    return rss, cpu


def _measured(cmd: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    peak, cpu = 0.0, {}
    stop = threading.Event()

    def sampler() -> None:
        nonlocal peak
        while not stop.is_set():
            rss, c = _sample(proc.pid)
            peak = max(peak, rss)
            cpu.update(c)
            stop.wait(0.5)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    out, _ = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode:
        raise SystemExit(f"{cmd[-1]} failed ({proc.returncode})")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(wall_s=round(time.perf_counter() - t0, 1), cpu_s=round(sum(cpu.values()), 1),
                  peak_rss_gib=round(peak / 2**30, 2))
    return result


def _inputs(work: Path, children: int) -> Any:
    from data_sharing.keys import init_keyset, load_keyset
    from data_sharing.linkage.truth import encode_city
    from synthetic.city import generate_city

    city = work / f"city-{children}"
    key = work / "master.key"
    if not key.exists():
        init_keyset(key, randbytes=lambda n: bytes((41 + i) % 256 for i in range(n)), now=lambda: NOW)
    if not city.exists():
        generate_city(children, 5, city)
    return encode_city(city, load_keyset(key), keep_raw=False)


def _model(work: Path, children: int, inputs: Any) -> Path:
    from data_sharing.linkage import train_model

    models = sorted((work / f"model-{children}" / "models").glob("*.json"))
    if models:
        return models[0]
    model = train_model(inputs.encodings, workdir=work / f"model-{children}", now=NOW, backend="duckdb")
    assert model.path is not None
    return model.path


def candidate_pairs(inputs: Any, settings: Any) -> int:
    """Pairs of records (variants) the blocking rules make, each pair once (as Splink's predict scores them:
    a rule's pairs that no earlier rule made), counted in DuckDB."""
    import duckdb

    from data_sharing.linkage.records import load_records

    con = duckdb.connect(":memory:")
    load_records(con, inputs.encodings, settings)
    rules = [r.expanded_sql for r in settings.blocking_rules]
    total = 0
    for i, rule in enumerate(rules):
        earlier = " ".join(f"and not coalesce(({r}), false)" for r in rules[:i])
        total += int(con.execute(f"select count(*) from records l join records r on ({rule}) and l.rid < r.rid "
                                 f"and l.source_key <> r.source_key where true {earlier}").fetchall()[0][0])
    con.close()
    return total


def link_step(work: Path, children: int, backend: str, partitions: int) -> None:
    """One link in this (child) process; prints its counts and step timings as one JSON line."""
    import duckdb

    from data_sharing.linkage import link, load_model
    from data_sharing.linkage import state as st
    from data_sharing.linkage.backend import SparkOptions, configure_backend, stop_spark

    configure_backend("duckdb", SparkOptions(shuffle_partitions=partitions))
    inputs = _inputs(work, children)
    model = load_model(_model(work, children, inputs))
    template = work / f"template-{children}.duckdb"
    if not template.exists():
        con = duckdb.connect(":memory:")
        st.attach(con, template)
        st.ensure_schema(con)
        con.close()
    area = work / f"area-{children}-{backend}"
    shutil.rmtree(area, ignore_errors=True)
    t0 = time.perf_counter()
    result = link(inputs.encodings, model, workdir=area, run_id="bench", attributes=inputs.attributes,
                  previous_state=template, now=NOW, backend=backend)
    total = time.perf_counter() - t0
    stop_spark()
    result.crosswalk[["source_key", "child_key"]].to_parquet(work / f"crosswalk-{children}-{backend}.parquet")
    pred = result.timings.get("predict", 0.0)
    print(json.dumps({"children": children, "backend": backend, "link_s": round(total, 1),
                      "predict_s": round(pred, 1), "record_comparisons": result.counts["record_comparisons"],
                      "scored_pairs": result.counts["scored_pairs"], "child_keys": result.counts["child_keys_new"],
                      "pairs_per_s": round(result.counts["record_comparisons"] / pred) if pred else None,
                      "timings": {k: round(v, 1) for k, v in result.timings.items()}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--children", type=int, nargs="+", default=[2000])
    ap.add_argument("--work", type=Path, default=Path("/work/scratch-spark/bench"))
    ap.add_argument("--backends", nargs="+", default=["duckdb", "spark"])
    ap.add_argument("--partitions", type=int, default=4, help="Spark shuffle partitions (C2C_SPARK_SHUFFLE_PARTITIONS)")
    ap.add_argument("--step", choices=["link"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.step == "link":
        link_step(args.work, args.children[0], args.backends[0], args.partitions)
        return
    import pandas as pd

    for n in args.children:
        from data_sharing.linkage import load_model

        inputs = _inputs(args.work, n)
        model = load_model(_model(args.work, n, inputs))  # made once, outside the timed steps
        pairs = candidate_pairs(inputs, model.settings)
        rows = {}
        for backend in args.backends:
            rows[backend] = _measured([sys.executable, __file__, "--work", str(args.work), "--children", str(n),
                                       "--backends", backend, "--partitions", str(args.partitions), "--step", "link"])
        if {"duckdb", "spark"} <= rows.keys():
            a = pd.read_parquet(args.work / f"crosswalk-{n}-duckdb.parquet").sort_values("source_key").reset_index(drop=True)
            b = pd.read_parquet(args.work / f"crosswalk-{n}-spark.parquet").sort_values("source_key").reset_index(drop=True)
            rows["spark"]["same_child_keys_as_duckdb"] = bool(a.equals(b))
            rows["spark"]["wall_vs_duckdb"] = round(rows["spark"]["wall_s"] / rows["duckdb"]["wall_s"], 1)
        for row in rows.values():
            row["candidate_pairs"] = pairs
            row["candidate_pairs_per_child"] = round(pairs / n, 1)
            row["candidate_pairs_per_predict_s"] = round(pairs / row["predict_s"]) if row["predict_s"] else None
            line = json.dumps(row)
            print(line, flush=True)
            with open(args.work / "results.jsonl", "a", encoding="utf-8") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
