"""Linkage at state scale (issue 6): a 1,500,000-child state linked in under 30 minutes, peak RSS < 16 GB.

The generator (:func:`synthetic.city.generate_city`) builds a whole city in memory -- all nine
extracts, attendance included -- and needs ~2 GiB per 150,000 children, so a 1.5M-child city in one
go would need ~20 GiB. The state is therefore generated as ``--chunks`` cities of
``--chunk-children`` children, each with its own seed, in its own child process, and only their
three person extracts are kept (protected into encodings at once, the raw files deleted):

* every agency id (student, patient, client and Medicaid ids) and every person id of chunk ``i`` is
  prefixed ``Z<i>-`` before protection, so ids, source keys and truth never collide across chunks;
* each chunk is its own population (its own families, addresses and schools) and, by default, its
  own region: its zip codes are the generator's with the leading two digits moved (``state_zip``),
  as a state's towns have zips of their own. All chunks still draw names, birth dates and street
  names from the same tables, so blocks on a name or a birth date are as dense as in one city
  ``chunks`` times bigger, and doppelgangers (distinct children with the same name and birth date)
  grow with the square of the population, across chunks too. ``--shared-zips`` keeps the
  generator's ~17 zips in every chunk (the layout first measured: pessimistic for the rules that
  include a zip).

Steps, each in a child process so its peak RSS is its own (``ru_maxrss``; a sampler thread also
records RSS and the DuckDB spill size in the linkage area every second):

1. ``prepare`` chunk i: generate (same random draws; the six non-person files, the truth files
   linkage does not read and the summary's hard-case counts are skipped), prefix ids, protect,
   write parquet;
2. ``train``: the model trained on chunk 0 only (the nightly run reuses a trained model; link time
   is the figure that matters);
3. ``blocks`` n: the pairs of blocking variants (of different source keys) each rule joins over the
   first n chunks, counted exactly in DuckDB, and of those the pairs no earlier rule joined (Splink
   compares each pair once: the sum of the new pairs is what predict scores), to see what grows
   quadratically;
4. ``link`` n: one :func:`data_sharing.linkage.link` over the first n chunks with the default DuckDB
   memory limit (``work_connection``: ``C2C_LINKAGE_MEMORY_LIMIT``, else a sixth of the physical memory,
   at most 8 GiB) and predict in chunks above ``PREDICT_CHUNK_RECORDS`` variants, crosswalk written
   to parquet; ``--lazy-inputs`` hands ``link`` the encodings' parquet paths;
5. ``evaluate`` n: pairwise precision / recall of that crosswalk against the truth.

Usage: ``nice python bench/bench_linkage_scale.py --chunk-children 100000 --chunks 15 --points 5 15
--lazy-inputs --work /tmp/c2c-scale`` (JSON lines, also appended to ``<work>/results.jsonl``; ``--work``
is kept so steps can be re-run with ``--only``; ``--jobs 2`` prepares two chunks at once). The link
step stops itself above ``--abort-rss-gib`` (13 GiB) so that a shared machine's OOM killer never has
to choose. Figures: docs/benchmarks.md, "State scale (1.5M children)".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: agency -> id columns of its person extract that name a person (prefixed per chunk)
ID_COLUMNS = {"fps": ("student_id",), "fhd": ("patient_id", "medicaid_id"), "dhs": ("client_id",)}


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


class Sampler:
    """RSS of this process and bytes under ``folder`` every ``every`` seconds (peaks and a coarse trace)."""

    def __init__(self, folder: Path | None, every: float = 1.0, abort_gib: float | None = None) -> None:
        self.folder, self.every, self.abort = folder, every, (abort_gib or 0) * 2**30
        self.t0 = time.perf_counter()
        self.peak_rss = self.peak_spill = 0
        self.trace: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = 0
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        spill = 0
        if self.folder is not None and self.folder.exists():
            for p in self.folder.rglob("*"):
                try:
                    spill += p.stat().st_size if p.is_file() else 0
                except OSError:
                    pass
        self.peak_rss, self.peak_spill = max(self.peak_rss, rss), max(self.peak_spill, spill)
        if self.abort and rss > self.abort:  # the machine is shared: never let the OOM killer pick others
            sys.stderr.write(f"RSS {rss / 2**30:.1f} GiB over the --abort-rss-gib budget: stopping; trace {self.trace}\n")
            sys.stderr.flush()
            os._exit(3)
        t = time.perf_counter() - self.t0
        if not self.trace or t - self.trace[-1][0] >= 10:
            self.trace.append((round(t), round(rss / 2**30, 2), round(spill / 2**30, 2)))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def report(self) -> dict[str, Any]:
        return {"sampled_peak_rss_gib": round(self.peak_rss / 2**30, 2),
                "peak_duckdb_spill_gib": round(self.peak_spill / 2**30, 2),
                "trace_s_rss_gib_spill_gib": self.trace}


def _save(df: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None), path)


def _load_chunks(work: Path, n: int, kind: str) -> dict[str, list[Any]]:
    import pandas as pd
    import pyarrow.parquet as pq

    out: dict[str, list[Any]] = {}
    for i in range(n):
        for p in sorted((work / "chunks" / f"{i:02d}" / kind).glob("*.parquet")):
            out.setdefault(p.stem, []).append(pq.read_table(p).to_pandas(types_mapper=pd.ArrowDtype))
    return out


def encodings_files(work: Path, n: int) -> dict[str, list[Path]]:
    """agency -> its chunks' encodings parquet files: ``link`` reads them with DuckDB as it groups the
    variants, so the ~540 MiB of Arrow data per 100,000 children never sits in Python's memory
    (``--lazy-inputs``; without it every chunk is read into pandas first, as a city-sized asset does)."""
    agencies = sorted(p.stem for p in (work / "chunks" / "00" / "encodings").glob("*.parquet"))
    return {a: [work / "chunks" / f"{i:02d}" / "encodings" / f"{a}.parquet" for i in range(n)] for a in agencies}


# ----------------------------------------------------------------------------------------------
# steps (one per child process)
# ----------------------------------------------------------------------------------------------


def _lean_generator() -> None:
    """Only what linkage reads: skip the summary's hard-case counts and every file but the three
    person extracts, persons.csv and identities.csv (the same random draws: the extracts are
    byte-identical to a full run's)."""
    import synthetic.city as sc

    keep = {"students", "patients", "clients", "persons", "identities"}
    write = sc._write_csv

    def write_some(df: Any, path: Path) -> None:
        if Path(path).name.split("_")[0].removesuffix(".csv") in keep:
            write(df, path)

    sc._write_csv = write_some
    sc._hard_cases = lambda *a, **k: ({}, {}, {})


def state_zip(zips: Any, i: int) -> Any:
    """Chunk ``i``'s zip codes: the generator's (``246xx``) with the leading two digits moved to a
    region of their own (``24`` + 2i), so each chunk is a region of the state. Typos in a zip stay
    typos; blanks stay blank; chunk 0 keeps the generator's zips."""
    z = zips.astype("string")
    ok = z.str.fullmatch(r"\d{5}").fillna(False)
    lead = (z.str.slice(0, 2).where(ok, "0").astype(int) + 2 * i) % 100
    return zips.where(~ok, lead.map("{:02d}".format) + z.str.slice(2))


def step_prepare(i: int, children: int, seed: int, work: Path, shared_zips: bool = False) -> dict[str, Any]:
    import pandas as pd

    from data_sharing.keys import load_keyset
    from data_sharing.linkage.truth import PERSON_EXTRACTS, latest_file, protect_frames, read_extract, truth_source_keys
    from synthetic.city import generate_city

    _lean_generator()

    tag = f"Z{i:02d}-"
    out = work / "chunks" / f"{i:02d}"
    city = work / f"city-{i:02d}"
    t = time.perf_counter()
    generate_city(children, seed, city)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    frames = {a: read_extract(latest_file(city, a, ex)) for a, (ex, _, _) in PERSON_EXTRACTS.items()}
    for agency, cols in ID_COLUMNS.items():
        for c in cols:
            frames[agency][c] = frames[agency][c].where(frames[agency][c].isna(), tag + frames[agency][c].astype(str))
        if not shared_zips and "zip" in frames[agency]:
            frames[agency]["zip"] = state_zip(frames[agency]["zip"], i)
    identities = pd.read_csv(city / "truth" / "identities.csv", dtype=str, keep_default_na=False)
    identities["source_id"] = tag + identities.source_id
    identities["person_id"] = tag + identities.person_id
    persons = pd.read_csv(city / "truth" / "persons.csv", dtype=str, keep_default_na=False).replace("", None)
    persons = persons[["person_id", "is_child", "aged_0_18_at_as_of", "twin_of", "race_ethnicity", "birth_date"]]
    persons["person_id"] = tag + persons.person_id
    persons["twin_of"] = persons.twin_of.where(persons.twin_of.isna(), tag + persons.twin_of.astype(str))
    shutil.rmtree(city)
    keyset = load_keyset(env=os.environ)
    enc, attrs = protect_frames(frames, keyset)
    truth = truth_source_keys(identities, keyset)
    t_enc = time.perf_counter() - t
    for agency in enc:
        _save(enc[agency], out / "encodings" / f"{agency}.parquet")
        _save(attrs[agency], out / "attributes" / f"{agency}.parquet")
    _save(truth, out / "truth.parquet")
    _save(persons, out / "persons.parquet")
    return {"chunk": i, "seed": seed, "generate_s": t_gen, "protect_s": t_enc,
            "rows": {a: len(e) for a, e in enc.items()}, "peak_rss_gib": _rss_gib()}


#: Bounded variants of the three blocking rules whose blocks grow with the population (a name alone,
#: or a surname and an initial in one zip): counted by ``blocks`` next to the shipped rules, not used.
BOUNDED_ALTERNATIVES = {
    "full_name+birth_year": ("l.first_name_hash = r.first_name_hash and l.last_name_hash = r.last_name_hash"
                             " and l.birth_year_hash = r.birth_year_hash"),
    "full_name+zip": ("l.first_name_hash = r.first_name_hash and l.last_name_hash = r.last_name_hash"
                      " and l.zip_hash = r.zip_hash"),
    "surname_zip_initial+birth_year": ("l.last_name_hash = r.last_name_hash and l.zip_hash = r.zip_hash and "
                                       "l.first_initial_hash = r.first_initial_hash and l.birth_year_hash = r.birth_year_hash"),
    "initial_surname_birth_year+birth_month": ("l.first_initial_last_name_birth_year_hash = r.first_initial_last_name_birth_year_hash"
                                               " and l.birth_month_hash = r.birth_month_hash"),
}


def step_blocks(work: Path, n: int) -> dict[str, Any]:
    from data_sharing.linkage import load_model
    from data_sharing.linkage.model import work_connection

    settings = load_model((work / "model_path").read_text().strip()).settings  # the settings links run with
    rules = {r.name: r.expanded_sql for r in settings.blocking_rules} | {
        f"alternative:{k}": v for k, v in BOUNDED_ALTERNATIVES.items()}
    derived = dict(settings.used_derived_columns)
    needed = sorted({m for sql in rules.values() for m in re.findall(r"\b[lr]\.(\w+)", sql)})
    base = sorted({c for c in needed if c not in derived}
                  | {m for c in needed if c in derived for m in re.findall(r"\b\w+_(?:hash|key)\b", derived[c])})
    area = work / "blocks-area"
    con = work_connection(area)  # the default memory limit; spills to the area
    parts, params = [], []
    for agency in ("dhs", "fhd", "fps"):  # one row per distinct blocking variant of a source key
        files = [str(work / "chunks" / f"{i:02d}" / "encodings" / f"{agency}.parquet") for i in range(n)]
        have = {r[0] for r in con.execute("select name from parquet_schema(?)", [files[0]]).fetchall()}
        parts.append("select distinct ? as agency, source_key, "
                     + ", ".join(c if c in have else f"null::varchar as {c}" for c in base)
                     + " from read_parquet(?, union_by_name = true) where source_key is not null")
        params += [agency, files]
    extra = "".join(f", ({derived[c]}) as {c}" for c in needed if c in derived)
    con.execute("create table records as select *" + extra + " from (" + " union all ".join(parts) + ")", params)
    rows = dict(con.execute("select agency, count(*) from records group by 1").fetchall())
    keys = dict(con.execute("select agency, count(distinct source_key) from records group by 1").fetchall())
    out: dict[str, Any] = {"variants": rows, "source_keys": keys, "rules": {}}
    con.execute("create table variants as select row_number() over () as rid, * from records")
    shipped: list[str] = []
    for name, sql in rules.items():
        # the pairs of variants (of different source keys) the rule joins, and those no earlier shipped
        # rule joined (Splink compares each pair once: these are the pairs this rule adds)
        earlier = " or ".join(f"coalesce(({e}), false)" for e in shipped) or "false"
        q = ("select count(*), count(*) filter (where not (" + earlier + ")) from variants l join variants r "
             "on l.rid < r.rid and l.source_key <> r.source_key and (" + sql + ")")
        pairs, new = con.execute(q).fetchall()[0]
        out["rules"][name] = {"pairs": int(pairs), "new_pairs": int(new) if ":" not in name else None}
        if ":" not in name:
            shipped.append(sql)
    out["pairs_total"] = sum(r["new_pairs"] for k, r in out["rules"].items() if ":" not in k)
    out["peak_rss_gib"] = _rss_gib()
    return out


def step_train(work: Path) -> dict[str, Any]:
    from data_sharing.linkage import train_model

    enc = _load_chunks(work, 1, "encodings")
    t = time.perf_counter()
    model = train_model(enc, workdir=work / "train-area")
    return {"train_s": time.perf_counter() - t, "model": str(model.path), "peak_rss_gib": _rss_gib()}


def bounded_settings(settings: Any) -> Any:
    """The model's settings with the three population-square rules replaced by BOUNDED_ALTERNATIVES."""
    from data_sharing.linkage.settings import NamedRule

    drop = {"full_name", "surname_zip_initial", "initial_surname_birth_year"}
    rules = [r for r in settings.blocking_rules if r.name not in drop]
    rules += [NamedRule(name=k.replace("+", "_"), sql=v) for k, v in BOUNDED_ALTERNATIVES.items()]
    return settings.model_copy(update={"blocking_rules": rules})


def step_link(work: Path, n: int, model_path: str, threads: int | None, abort_gib: float, lazy: bool,
              blocking: str = "shipped") -> dict[str, Any]:
    import pandas as pd

    from data_sharing.linkage import LinkageArea, link, load_model

    area = work / f"area-{n:02d}{'' if blocking == 'shipped' else '-' + blocking}"
    if area.exists():
        shutil.rmtree(area)
    t = time.perf_counter()
    enc = encodings_files(work, n) if lazy else _load_chunks(work, n, "encodings")
    attrs = {a: pd.concat(f, ignore_index=True) for a, f in _load_chunks(work, n, "attributes").items()}
    t_read = time.perf_counter() - t
    rss_inputs = _rss_gib()
    model = load_model(model_path)
    with Sampler(LinkageArea(area).duckdb_tmp, abort_gib=abort_gib) as sampler:
        t = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        settings = bounded_settings(model.settings) if blocking == "bounded" else None
        result = link(enc, model, workdir=area, run_id=f"scale-{n}", attributes=attrs, threads=threads, settings=settings)
        wall = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rss = _rss_gib()
    _save(result.crosswalk, work / f"crosswalk-{n:02d}{'' if blocking == 'shipped' else '-' + blocking}.parquet")
    db = LinkageArea(area).state_db
    return {"chunks": n, "blocking": blocking, "inputs": "lazy" if lazy else "eager", "read_inputs_s": t_read, "rss_after_reading_inputs_gib": rss_inputs, "link_s": wall,
            "link_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
            "load_average_1_5_15": os.getloadavg(), "timings": result.timings, "counts": result.counts, "peak_rss_gib": rss, **sampler.report(),
            "state_db_gib": round(db.stat().st_size / 2**30, 3) if db.exists() else None,
            "review_queue": len(result.review_queue)}


def step_evaluate(work: Path, n: int, blocking: str = "shipped") -> dict[str, Any]:
    import pandas as pd

    from data_sharing.linkage import evaluate_against_truth

    cw = pd.read_parquet(work / f"crosswalk-{n:02d}{'' if blocking == 'shipped' else '-' + blocking}.parquet")
    truth = pd.concat([pd.read_parquet(work / "chunks" / f"{i:02d}" / "truth.parquet") for i in range(n)], ignore_index=True)
    persons = pd.concat([pd.read_parquet(work / "chunks" / f"{i:02d}" / "persons.parquet") for i in range(n)], ignore_index=True)
    ev = evaluate_against_truth(cw, truth, persons)
    pw = ev["pairwise"]
    # false positives across chunks: two persons of different chunks in one cluster (doppelgangers)
    m = cw[["source_key", "child_key"]].merge(truth[["source_key", "person_id"]].drop_duplicates("source_key"), on="source_key")
    m["chunk"] = m.person_id.str.slice(0, 4)
    cross = int((m.groupby("child_key").chunk.nunique() > 1).sum())
    return {"chunks": n, "blocking": blocking, "precision": pw["precision"], "recall": pw["recall"], "f1": pw["f1"],
            "true_pairs": pw["true_pairs"], "false_positives": pw["false_positives"],
            "false_negatives": pw["false_negatives"], "clusters": ev["clusters"],
            "clusters_spanning_chunks": cross, "recall_gap_race": ev.get("recall_gap_between_race_groups"),
            "hard_cases": ev.get("hard_cases"), "peak_rss_gib": _rss_gib()}


# ----------------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--step", *args], capture_output=True, text=True,
                         env=dict(os.environ), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"step {args[0]} failed:\n{out.stderr[-4000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["step_wall_s"] = time.perf_counter() - t
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunk-children", type=int, default=100_000)
    parser.add_argument("--chunks", type=int, default=15)
    parser.add_argument("--points", type=int, nargs="+", default=[5, 15], help="link over the first n chunks")
    parser.add_argument("--seed", type=int, default=101, help="chunk i uses seed + i")
    parser.add_argument("--work", type=Path, default=None, help="kept; reused by --only (required)")
    parser.add_argument("--only", nargs="+", choices=["prepare", "blocks", "train", "link", "evaluate"],
                        default=["prepare", "blocks", "train", "link", "evaluate"])
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads of the link step (default: all cores)")
    parser.add_argument("--abort-rss-gib", type=float, default=13.0,
                        help="the link step stops itself above this RSS (shared machine; 0: never)")
    parser.add_argument("--blocking", choices=["shipped", "bounded"], default="shipped",
                        help="bounded: link with BOUNDED_ALTERNATIVES instead of the three population-square rules")
    parser.add_argument("--lazy-inputs", action="store_true",
                        help="hand link the parquet files of the encodings (read by DuckDB, never held in Python)")
    parser.add_argument("--shared-zips", action="store_true",
                        help="every chunk keeps the generator's zip codes (one city's ~17 zips for the whole state: "
                             "the pessimistic layout measured first) instead of a region of its own")
    parser.add_argument("--jobs", type=int, default=1, help="chunks prepared at once (~1.6 GiB each at 100k children)")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        name, *rest = args.step
        if name == "prepare":
            res = step_prepare(int(rest[0]), int(rest[1]), int(rest[2]), Path(rest[3]), len(rest) > 4 and rest[4] == "shared")
        elif name == "blocks":
            res = step_blocks(Path(rest[0]), int(rest[1]))
        elif name == "train":
            res = step_train(Path(rest[0]))
        elif name == "link":
            res = step_link(Path(rest[0]), int(rest[1]), rest[2], int(rest[3]) or None, float(rest[4]) if len(rest) > 4 else 13.0,
                            len(rest) > 5 and rest[5] == "lazy", rest[6] if len(rest) > 6 else "shipped")
        else:
            res = step_evaluate(Path(rest[0]), int(rest[1]), rest[2] if len(rest) > 2 else "shipped")
        print(json.dumps(res, default=str))
        return 0

    if args.work is None:
        parser.error("--work is required")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    key_file = work / "master_key"  # a benchmark key, kept with the benchmark's synthetic data only
    if "C2C_MASTER_KEY" not in os.environ:
        if not key_file.exists():
            key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
            key_file.chmod(0o600)
        os.environ["C2C_MASTER_KEY"] = key_file.read_text().strip()

    def emit(r: dict[str, Any]) -> None:
        print(json.dumps(r, default=str), flush=True)
        with (work / "results.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(r, default=str) + "\n")

    if "prepare" in args.only:
        from concurrent.futures import ThreadPoolExecutor

        todo = [i for i in range(args.chunks) if not (work / "chunks" / f"{i:02d}" / "persons.parquet").exists()]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # chunks are independent processes
            for r in pool.map(lambda i: _child("prepare", str(i), str(args.chunk_children), str(args.seed + i), str(work),
                                                        "shared" if args.shared_zips else "regions"), todo):
                emit({"step": "prepare", **r})
    model_file = work / "model_path"
    if "train" in args.only:
        r = _child("train", str(work))
        model_file.write_text(r["model"])
        emit({"step": "train", **r})
    if "blocks" in args.only:
        for n in args.points:
            emit({"step": "blocks", "chunks": n, **_child("blocks", str(work), str(n))})
    for n in args.points:
        if "link" in args.only:
            emit({"step": "link", "children": n * args.chunk_children,
                  **_child("link", str(work), str(n), model_file.read_text().strip(), str(args.threads or 0),
                                 str(args.abort_rss_gib), "lazy" if args.lazy_inputs else "eager", args.blocking)})
        if "evaluate" in args.only:
            emit({"step": "evaluate", "children": n * args.chunk_children, **_child("evaluate", str(work), str(n), args.blocking)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
