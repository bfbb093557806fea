"""Fairhaven Public Schools' assessments: kindergarten readiness (KRA) and the state tests, from each
student's latest enrolment row of the year, with a few retests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from synthetic import _dates as D
from synthetic.fps_schools import GRADES

if TYPE_CHECKING:  # pragma: no cover
    from synthetic.fps import FpsState

ASSESSED_GRADES = {3, 4, 5, 6, 7, 8, 11}
PROFICIENT = {
    "ELA": {3: 0.47, 4: 0.46, 5: 0.48, 6: 0.44, 7: 0.45, 8: 0.46, 11: 0.52},
    "MATH": {3: 0.45, 4: 0.42, 5: 0.38, 6: 0.36, 7: 0.35, 8: 0.35, 11: 0.28},
}


def build_assessments(c: FpsState) -> pd.DataFrame:
    """Assessments, from each student's latest row of the year: KRA, state tests, a few retests."""
    rng, rc, ryi, rgi, r_enroll = c.rng, c.rc, c.ryi, c.rgi, c.r_enroll
    last_row = ~pd.Series(rc * 10_000 + c.rows.sy.to_numpy()).duplicated(keep="last").to_numpy()
    lr = np.flatnonzero(last_row)
    lc, lyi, lgi = rc[lr], ryi[lr], rgi[lr]
    lsy = c.years[lyi]
    r_exit = c.rows.exit.to_numpy()
    in_rows = pd.DataFrame({"c": rc, "sy": c.rows.sy.to_numpy(), "lo": r_enroll,
                            "hi": np.where(r_exit < D.NEVER, r_exit, D.NEVER)})
    ability = rng.normal(0, 1, c.n)

    def enrolled_on(when: np.ndarray) -> np.ndarray:
        # whether the child of each latest row had a row covering the date that year
        key = in_rows.c.to_numpy() * 10_000 + in_rows.sy.to_numpy()
        lkey = lc * 10_000 + lsy
        pos = np.searchsorted(lkey, key)
        pos = np.clip(pos, 0, len(lkey) - 1)
        hit = (in_rows.lo.to_numpy() <= when[pos]) & (in_rows.hi.to_numpy() >= when[pos]) & (lkey[pos] == key)
        res = np.zeros(len(lr), dtype=bool)
        np.logical_or.at(res, pos[hit], True)
        return res

    # KRA in the fall of kindergarten
    kra_day = D.from_ymd(lsy - 1, np.full(len(lr), 10), np.full(len(lr), 1))
    kra = (lgi == 0) & enrolled_on(kra_day) & (rng.random(len(lr)) < 0.93) & (kra_day <= c.as_of)
    spring = D.from_ymd(lsy, np.full(len(lr), 4), np.full(len(lr), 15))
    tested = np.isin(lgi, list(ASSESSED_GRADES)) & enrolled_on(spring) & (spring <= c.as_of)
    l_el = c.el[lr]
    base = ability[lc] - 0.35 * c.econ[lr] - 0.45 * l_el - 0.7 * c.dis[lr]
    a = _scores(rng, base, kra, tested, lgi, l_el)
    a["score"] = a.score.astype("Int64")
    a.loc[rng.random(len(a)) < 0.02, "score"] = pd.NA
    # retests: a second result the same year (never identical to the first)
    ret = (a.subject != "KRA").to_numpy() & (rng.random(len(a)) < 0.02)
    rt = a[ret].copy()
    if len(rt):
        rt["z"] = rt.z + np.abs(rng.normal(0.3, 0.3, len(rt)))
        rt["level"] = 1 + (rt.z >= rt.th0).astype(int) + (rt.z >= rt.th1) + (rt.z >= rt.th2)
        sc = np.clip(np.round(2100 + 40 * rt.g + 90 * rt.z), 1800, 3000).astype(np.int64)
        same = sc == a.score[ret].fillna(-1).to_numpy()
        rt["score"] = pd.array(np.where(same, sc + 1, sc), dtype="Int64")
    c.counts["assessment_retests"] = int(len(rt))
    a = pd.concat([a, rt], ignore_index=True)
    li = a.li.to_numpy().astype(np.int64)
    return pd.DataFrame({
        "student_id": c.id_str[c.row_id[lr[li]]], "school_year": lsy[li], "grade_level": GRADES[np.minimum(lgi[li], 12) + 1],
        "subject": a.subject.to_numpy(), "scale_score": a.score.to_numpy(), "performance_level": a.level.to_numpy().astype(np.int64),
    })


def _scores(rng: np.random.Generator, base: np.ndarray, kra: np.ndarray, tested: np.ndarray, lgi: np.ndarray,
            l_el: np.ndarray) -> pd.DataFrame:
    """KRA and state-test results of the latest rows: li (latest row), subject, z, level, score (+ thresholds)."""
    assess = []
    kz = 0.8 * base + rng.normal(0, 0.6, len(base))
    ki = np.flatnonzero(kra)
    if len(ki):
        z = kz[ki]
        t1, t2 = np.quantile(z, [0.27, 0.55])
        level = 1 + (z >= t1) + (z >= t2)
        score = np.clip(np.round(262 + 12 * z), 202, 298).astype(np.int64)
        assess.append(pd.DataFrame({"li": ki, "subject": "KRA", "z": z, "level": level, "score": score}))
    for subject in ("ELA", "MATH"):
        z = 0.85 * base - (0.35 * l_el if subject == "ELA" else 0.1 * l_el) + rng.normal(0, 0.5, len(base))
        sel = tested & (rng.random(len(base)) < 0.96)
        for g, prof in PROFICIENT[subject].items():
            gi_sel = np.flatnonzero(sel & (lgi == g))
            if len(gi_sel) == 0:
                continue
            zz = z[gi_sel]
            q = [0.55 * (1 - prof), 1 - prof, 1 - 0.4 * prof]
            th = np.quantile(zz, q)
            level = 1 + (zz >= th[0]) + (zz >= th[1]) + (zz >= th[2])
            score = np.clip(np.round(2100 + 40 * g + 90 * zz), 1800, 3000).astype(np.int64)
            df = pd.DataFrame({"li": gi_sel, "subject": subject, "z": zz, "level": level, "score": score})
            df["th0"], df["th1"], df["th2"], df["g"] = th[0], th[1], th[2], g
            assess.append(df)
    return pd.concat(assess, ignore_index=True) if assess else pd.DataFrame(columns=["li", "subject", "z", "level", "score"])
