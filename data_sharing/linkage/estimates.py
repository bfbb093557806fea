"""Linkage quality estimated without a truth (issue 14), every run, from the model's own probabilities.

A real city has no truth file. What the run does know is, for every candidate pair of source keys it
scored, the model's probability that the two are one person, and which pairs it put in one cluster.

* **accepted** pairs are all pairs of source keys in one cluster (what pairwise precision counts). A
  pair scored directly counts its own probability of being true; a pair joined only through others
  counts the mean probability of the cluster's direct links (a cluster is as sound as its links).
  Expected false links = sum of (1 - p) over accepted pairs; estimated precision = 1 - that / accepted.
* **rejected** candidates are scored pairs left in two clusters. Expected missed links = sum of p over
  them, except pairs a guard held apart (parent/child, possible siblings, concurrent ids): the model's
  probability ignores what the guard knows, so they are reported apart and not counted as missed.
  A rejected pair is one person only if its two clusters are, and joining them asserts that any two ids
  of one agency, one in each, are one person too: its p is bounded by theirs (:func:`join_bounds`; 0
  for two such ids never scored above the floor). Without the bound the pairs the clustering refused
  for within-agency uniqueness (a clinic record resembling both of an agency's two ids) count as missed
  at p ~ 1, and at 5,000 children about half of them are not (the estimate was 0.7 points low).
  Estimated recall = expected true accepted / (that + expected missed).
* Pairs never blocked are invisible to both; the estimate of recall is an upper bound by that much.

Link rates by subgroup (``quality.link_rates_by``) are compared with the city's: a group whose rate for
an agency pair differs by more than ``FLAG_POINTS`` percentage points (with at least ``FLAG_MIN_PERSONS``
persons, below which a rate is noise) is flagged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

FLAG_POINTS = 2.0
FLAG_MIN_PERSONS = 50


def _pairs_in_clusters(labels: pd.DataFrame) -> pd.DataFrame:
    """Per cluster: source keys, all pairs, and pairs within one agency."""
    by = labels.groupby("cluster")
    n = by.size()
    per_agency = labels.groupby(["cluster", "agency"]).size()
    within = (per_agency * (per_agency - 1) // 2).groupby(level=0).sum()
    out = pd.DataFrame({"keys": n, "pairs": n * (n - 1) // 2})
    out["within"] = within.reindex(out.index, fill_value=0)
    return out


def _summary(true_acc: float, accepted: float, missed: float) -> dict[str, Any]:
    precision = true_acc / accepted if accepted else 1.0
    recall = true_acc / (true_acc + missed) if (true_acc + missed) else 1.0
    return {"accepted_pairs": int(round(accepted)), "expected_false_links": round(accepted - true_acc, 2),
            "expected_missed_links": round(missed, 2), "precision": round(precision, 5), "recall": round(recall, 5)}


def join_bounds(labels: pd.DataFrame, pairs: pd.DataFrame, apart: np.ndarray) -> np.ndarray:
    """Per pair of ``pairs``: the bound that joining its two clusters puts on its probability (1.0 where
    nothing bounds it; only rows in ``apart`` are bounded). Joining asserts that every two ids of one
    agency, one in each cluster, are one person: the pair is bounded by the smallest of their own
    pairs' probabilities (0 for two such ids never scored above the review floor)."""
    out = np.ones(len(pairs))
    idx = np.flatnonzero(apart)
    if not len(idx):
        return out
    cluster_of = labels.set_index("source_key").cluster
    cand = pd.DataFrame({"i": idx, "ca": cluster_of.reindex(pairs.source_key_l.to_numpy()[idx]).to_numpy(),
                         "cb": cluster_of.reindex(pairs.source_key_r.to_numpy()[idx]).to_numpy()}).dropna()
    mem = labels[["source_key", "agency", "cluster"]]
    cross = (cand.merge(mem.rename(columns={"source_key": "x", "cluster": "ca"}), on="ca")
             .merge(mem.rename(columns={"source_key": "y", "cluster": "cb"}), on=["cb", "agency"]))
    if cross.empty:
        return out
    p = pairs.match_probability.to_numpy(dtype=float)
    scored = pd.concat([pd.DataFrame({"x": pairs.source_key_l, "y": pairs.source_key_r, "q": p}),
                        pd.DataFrame({"x": pairs.source_key_r, "y": pairs.source_key_l, "q": p})], ignore_index=True)
    scored = scored.groupby(["x", "y"], as_index=False).q.max()
    cross = cross.merge(scored, on=["x", "y"], how="left")
    bound = cross.q.fillna(0.0).groupby(cross.i.to_numpy()).min()
    out[bound.index.to_numpy(dtype=int)] = bound.to_numpy(dtype=float)
    return out


def estimate_pairwise(
    labels: pd.DataFrame,
    pairs: pd.DataFrame,
    same_person: np.ndarray,
    guarded: np.ndarray,
    low_scores: tuple[float, int] = (0.0, 0),
) -> dict[str, Any]:
    """Estimated precision and recall over pairs of source keys, overall, within and across agencies.

    ``labels``: source_key, agency, cluster. ``pairs``: the run's scored pairs at or above the review
    floor (source_key_l/_r, agency_l/_r, match_probability); ``same_person`` / ``guarded`` align with it.
    ``low_scores``: (sum of p, count) over scored pairs below the floor left apart (:func:`low_score_totals`).
    """
    clusters = _pairs_in_clusters(labels)
    cluster_of = labels.set_index("source_key").cluster
    p = pairs.match_probability.to_numpy(dtype=float)
    within_pair = (pairs.agency_l == pairs.agency_r).to_numpy()
    direct = pd.DataFrame({"cluster": cluster_of.reindex(pairs.source_key_l).to_numpy()[same_person],
                           "p": p[same_person], "within": within_pair[same_person]})
    stats = direct.groupby("cluster").p.agg(["sum", "count", "mean"])
    wstats = direct[direct.within].groupby("cluster").p.agg(["sum", "count"])
    c = clusters.join(stats, how="left").join(wstats, how="left", rsuffix="_w").fillna(0.0)
    mean = np.where(c["count"] > 0, c["mean"], 1.0)
    true_all = c["sum"] + (c.pairs - c["count"]).clip(lower=0) * mean
    true_within = c["sum_w"] + (c.within - c["count_w"]).clip(lower=0) * mean
    apart = ~same_person & ~guarded
    p_apart = np.minimum(p, join_bounds(labels, pairs, apart))
    missed_within = float(p_apart[apart & within_pair].sum())
    missed_cross = float(p_apart[apart & ~within_pair].sum()) + float(low_scores[0])
    acc_all, acc_within = float(c.pairs.sum()), float(c.within.sum())
    return {
        "all": _summary(float(true_all.sum()), acc_all, missed_within + missed_cross),
        "within_agency": _summary(float(true_within.sum()), acc_within, missed_within),
        "across_agencies": _summary(float(true_all.sum() - true_within.sum()), acc_all - acc_within, missed_cross),
        "guarded_pairs_apart": {"pairs": int((~same_person & guarded).sum()),
                                "sum_probability": round(float(p[~same_person & guarded].sum()), 2)},
        "scored_pairs_below_review_floor": {"pairs": int(low_scores[1]), "sum_probability": round(float(low_scores[0]), 2)},
        "rejected_pairs_bounded_by_their_clusters": {"pairs": int((apart & (p_apart < p)).sum()),
                                                     "sum_probability_removed": round(float((p - p_apart)[apart].sum()), 2)},
        "method": ("sum of match probabilities over accepted (1-p) and rejected (p, bounded by what joining their "
                   "clusters asserts) candidate pairs; unblocked pairs not seen"),
    }


def subgroup_flags(link_rates: dict[str, Any], link_rates_by: dict[str, Any], *, points: float = FLAG_POINTS,
                   min_persons: int = FLAG_MIN_PERSONS) -> list[dict[str, Any]]:
    """Groups whose link rate for an agency pair differs from the city's by more than ``points``."""
    flags = []
    for dim, groups in link_rates_by.items():
        for grp, rates in groups.items():
            for pair, v in rates.items():
                city = link_rates.get(pair)
                if not city or v.get("persons", 0) < min_persons or v.get("rate") is None or city.get("rate") is None:
                    continue
                diff = round(100.0 * (float(v["rate"]) - float(city["rate"])), 6)
                if abs(diff) > points:
                    flags.append({"dimension": dim, "group": grp, "pair": pair, "persons": int(v["persons"]),
                                  "rate": round(float(v["rate"]), 4), "city_rate": round(float(city["rate"]), 4),
                                  "difference_points": round(diff, 2)})
    return flags


def low_score_totals(con: Any, scored_table: str, floor: float, labels: pd.DataFrame | None = None) -> tuple[float, int]:
    """(sum of p, count) over the run's scored pairs below the review floor (``scored_table`` is trusted).

    With ``labels`` (source_key, agency, cluster) only pairs left in two clusters count, each p bounded
    as :func:`join_bounds` bounds the pairs above the floor (two ids of one agency, one in each cluster,
    never scored: bound 0)."""
    if labels is None:
        row = con.execute(
            "select coalesce(sum(match_probability), 0), count(*) from " + scored_table + " where match_probability < ?",
            [float(floor)],
        ).fetchall()[0]
        return float(row[0]), int(row[1])
    con.register("__c2c_est_frame", labels[["source_key", "agency", "cluster"]])
    try:
        con.execute("create or replace temp table __c2c_est_labels as select * from __c2c_est_frame")
        con.execute(
            "create or replace temp table __c2c_est_low as select s.a, s.b, s.match_probability p, la.cluster ca,"
            " lb.cluster cb from " + scored_table + " s join __c2c_est_labels la on la.source_key = s.a"
            " join __c2c_est_labels lb on lb.source_key = s.b where s.match_probability < ? and la.cluster <> lb.cluster",
            [float(floor)])
        row = con.execute(
            "with x as (select low.a, low.b, least(mx.source_key, my.source_key) x, greatest(mx.source_key, my.source_key) y"
            " from __c2c_est_low low join __c2c_est_labels mx on mx.cluster = low.ca"
            " join __c2c_est_labels my on my.cluster = low.cb and my.agency = mx.agency), "
            "q as (select x.a, x.b, min(coalesce(sc.match_probability, 0.0)) q from x left join " + scored_table
            + " sc on sc.a = x.x and sc.b = x.y group by 1, 2) "
            "select coalesce(sum(least(low.p, coalesce(q.q, 1.0))), 0), count(*) from __c2c_est_low low"
            " left join q on q.a = low.a and q.b = low.b"
        ).fetchall()[0]
    finally:
        con.execute("drop table if exists __c2c_est_low")
        con.execute("drop table if exists __c2c_est_labels")
        con.unregister("__c2c_est_frame")
    return float(row[0]), int(row[1])


def estimate_quality(*, labels: pd.DataFrame, pairs: pd.DataFrame, same_person: np.ndarray, guarded: np.ndarray,
                     low_scores: tuple[float, int], link_rates: dict[str, Any], link_rates_by: dict[str, Any]
                     ) -> dict[str, Any]:
    """The run's truth-free quality document: pairwise estimates and subgroup link-rate flags."""
    est = estimate_pairwise(labels, pairs, same_person, guarded, low_scores)
    est["subgroup_flags"] = subgroup_flags(link_rates, link_rates_by)
    est["subgroup_flag_rule"] = (f"link rate for an agency pair more than {FLAG_POINTS:g} points from the city's, "
                                 f"groups of {FLAG_MIN_PERSONS}+ persons")
    return est


def with_estimates(quality: Any, con: Any, labels: pd.DataFrame, pairs: pd.DataFrame, same_person: np.ndarray,
                   guarded: np.ndarray, floor: float, queue: dict[str, Any]) -> Any:
    """``quality`` (a LinkageQuality) with its ``estimates``: :func:`estimate_quality` over the run's
    scored pairs (``__c2c_scored`` in ``con``) and the review queue's cap figures."""
    est = estimate_quality(labels=labels, pairs=pairs, same_person=same_person, guarded=guarded,
                           low_scores=low_score_totals(con, "__c2c_scored", floor, labels), link_rates=quality.link_rates,
                           link_rates_by=quality.link_rates_by)
    return dataclasses.replace(quality, estimates=est | {"review_queue": queue})
