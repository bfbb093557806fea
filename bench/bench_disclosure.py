"""Benchmark disclosure control (issue 7): time to protect one indicator-period table.

Run:  python bench/bench_disclosure.py [--repeat 5]

Tables are synthetic but shaped like Fairhaven's (SPEC "What the cabinet publishes"): every school and
the city (``ALL``), every dimension (``race_ethnicity`` 7 groups, ``sex`` 3, four Y/N flags and, for
``chronic_absence``, the 8 overlapping ``program`` groups plus ``NONE``, with ``CHILD_WELFARE`` and
``FOSTER_CARE`` city-wide only). Child-level records are drawn first and aggregated, so every sum
relation holds exactly. For ``chronic_absence`` some students count at two schools, so the schools do
not add up to the city, as in the SPEC.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_sharing.disclosure import CITY, derivable_cells, protect_table  # noqa: E402

RACES = (["HI", "AI", "AS", "BL", "PI", "WH", "MR"], [0.30, 0.01, 0.06, 0.30, 0.005, 0.28, 0.045])
SEXES = (["F", "M", "X"], [0.49, 0.49, 0.02])
FLAGS = {"english_learner": 0.12, "disability": 0.14, "econ_disadvantaged": 0.55, "homeless": 0.04}
PROGRAMS = {
    "SNAP": 0.35, "TANF": 0.06, "WIC": 0.10, "CHILD_CARE_SUBSIDY": 0.05, "CHILD_WELFARE": 0.02,
    "FOSTER_CARE": 0.01, "HOUSING_ASSISTANCE": 0.08, "HOMELESS_SERVICES": 0.03,
}
CITY_ONLY_PROGRAMS = {"CHILD_WELFARE", "FOSTER_CARE"}


def make_table(
    n_schools: int,
    mean_students: float,
    success_rate: float,
    *,
    indicator: str,
    k: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """One indicator-period table aggregated from synthetic child-level records."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, rng.lognormal(np.log(mean_students), 0.6, n_schools).round().astype(int))
    school = np.repeat([f"S{i:03d}" for i in range(n_schools)], sizes)
    n = len(school)
    kids = pd.DataFrame(
        {
            "child": np.arange(n),
            "school_id": school,
            "race_ethnicity": rng.choice(RACES[0], n, p=RACES[1]),
            "sex": rng.choice(SEXES[0], n, p=SEXES[1]),
            **{f: np.where(rng.random(n) < p, "Y", "N") for f, p in FLAGS.items()},
            "hit": (rng.random(n) < success_rate).astype(int),
        }
    )
    with_program = indicator == "chronic_absence"
    per_school = kids
    if with_program:
        # a few transfers: the student also counts at a second school (city counts them once)
        movers = kids.sample(frac=0.03, random_state=seed).copy()
        movers["school_id"] = rng.choice(sorted(set(school)), len(movers))
        per_school = pd.concat([kids, movers], ignore_index=True)

    dims = ["race_ethnicity", "sex", *FLAGS]
    frames = []

    def agg(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return df.groupby(keys, sort=True)["hit"].agg(numerator="sum", denominator="size").reset_index()

    for scope, df in ((CITY, kids), (None, per_school)):
        base = df.assign(school_id=scope) if scope else df
        t = agg(base.assign(dimension="all", group="all"), ["school_id", "dimension", "group"])
        frames.append(t)
        for dim in dims:
            t = agg(base.assign(dimension=dim, group=base[dim]), ["school_id", "dimension", "group"])
            frames.append(t)
        if with_program:
            long = []
            any_prog = np.zeros(len(base), dtype=bool)
            draws = np.random.default_rng(seed + 1).random((len(kids), len(PROGRAMS)))
            child = base["child"].to_numpy()
            for j, (prog, p) in enumerate(PROGRAMS.items()):
                member = draws[child, j] < p
                any_prog |= member
                if scope is None and prog in CITY_ONLY_PROGRAMS:
                    continue
                long.append(base[member].assign(dimension="program", group=prog))
            long.append(base[~any_prog].assign(dimension="program", group="NONE"))
            frames.append(agg(pd.concat(long), ["school_id", "dimension", "group"]))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "indicator", indicator)
    table.insert(1, "period", 2026)
    table["k"] = k
    return table


CASES = [
    # name, schools, mean students per school, success rate, indicator, k (None: stress, see main)
    ("city: 40 schools, grade-level cohort (grade3_reading)", 40, 60, 0.45, "grade3_reading", 10),
    ("city: 40 schools, all students (well_child_visit, k=11)", 40, 1500, 0.7, "well_child_visit", 11),
    ("city: 40 schools, chronic_absence with program", 40, 1500, 0.2, "chronic_absence", 10),
    ("2,000 rows: 120 schools, small cohorts", 120, 40, 0.5, "kindergarten_readiness", 10),
    ("state: 400 schools, grade-level cohort", 400, 60, 0.45, "grade3_reading", 10),
    ("state: 400 schools, chronic_absence with program", 400, 1500, 0.2, "chronic_absence", 10),
    ("stress: 400 schools, random 30% primary pattern", 400, 1500, 0.5, "well_child_visit", None),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="run cases whose name contains this text")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, pandas {pd.__version__}")
    print(f"{'case':58} {'rows':>6} {'prim':>5} {'compl':>5} {'protect s':>10} {'audit s':>8}")
    for name, schools, size, rate, indicator, k in CASES:
        if args.only not in name:
            continue
        table = make_table(schools, size, rate, indicator=indicator, k=k or 10, seed=7)
        if k is None:  # per-row k of 1 or 10**6 makes primary suppression an arbitrary pattern
            table["k"] = np.where(np.random.default_rng(7).random(len(table)) < 0.3, 10**6, 1)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = protect_table(table)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        leaked = derivable_cells(out)
        audit = time.perf_counter() - t0
        assert not leaked, leaked
        reasons = out["suppression_reason"]
        primary = int(reasons.isin(["small_denominator", "small_count"]).sum())
        compl = int((reasons == "complementary").sum())
        print(
            f"{name:58} {len(table):6d} {primary:5d} {compl:5d} "
            f"{statistics.median(times):10.3f} {audit:8.3f}"
        )


if __name__ == "__main__":
    main()
