"""Linkage quality, every run, and (for tests and benchmarks) against a known truth.

:func:`compute_quality` (called by every run; stored in the state's ``quality`` table as JSON):

* ``records``: rows, source keys and distinct variants per agency;
* ``persons``: child keys in total, per agency, per combination of agencies, and persons holding two
  or more ids of one agency (within-agency duplicates the run resolved);
* ``link_rates``: for every ordered pair of agencies ``a->b``, the share of persons with a record in
  ``a`` who also have one in ``b``; ``link_rates_by``: the same by ``race_ethnicity``, ``sex`` and
  ``grade_band`` of the person (attributes from the schools' records first, then any; ``unknown``
  when no record carries it) -- differences between groups are how linkage bias shows;
* ``scores``: blocked comparisons, scored pairs of source keys, the histogram of the run's match
  probability (after the pair-type prior) and of Splink's own, pairs above the upper threshold and in
  the review band;
* ``review``: the clerical queue's size and its reasons; ``guards``: what the guards and decisions did;
* ``keys``: new, merged, split, retired child keys.

:func:`evaluate_against_truth`: pairwise precision, recall and F1 over pairs of source keys, the same
recall by race/ethnicity, cluster metrics, and the hard cases (twins merged, within-agency duplicates
resolved, parents linked to children).

Publication: the quality is stored whole in the linkage area; what leaves it (the release row, the
linkage asset's metadata in the UI) goes through :func:`publishable_quality` (counts 1..k-1 as ``"<k"``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd


DIMENSIONS = ("race_ethnicity", "sex", "grade_band")


@dataclass(frozen=True)
class LinkageQuality:
    run_id: str
    records: dict[str, Any]
    persons: dict[str, Any]
    link_rates: dict[str, Any]
    link_rates_by: dict[str, Any]
    scores: dict[str, Any]
    review: dict[str, Any]
    guards: dict[str, Any]
    keys: dict[str, Any]
    model: dict[str, Any]
    settings: str
    notes: list[str] = field(default_factory=list)
    estimates: dict[str, Any] = field(default_factory=dict)  # truth-free estimates (estimates.py)
    backend: str = "duckdb"  # the linkage backend that scored the pairs (data_sharing.linkage.backend)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def link_rates_frame(self) -> pd.DataFrame:
        """dimension, group, pair (a->b), persons (with a record in a), linked, rate."""
        rows = [{"dimension": "all", "group": "all", "pair": p, **v} for p, v in self.link_rates.items()]
        for dim, groups in self.link_rates_by.items():
            for grp, pairs in groups.items():
                rows.extend({"dimension": dim, "group": grp, "pair": p, **v} for p, v in pairs.items())
        return pd.DataFrame(rows, columns=["dimension", "group", "pair", "persons", "linked", "rate"])


def _person_attributes(crosswalk: pd.DataFrame, attributes: pd.DataFrame) -> pd.DataFrame:
    """One row per child key: race_ethnicity, sex, grade_band (schools' records first)."""
    keys = crosswalk[["source_key", "agency", "child_key"]]
    if attributes is None or len(attributes) == 0:
        out = pd.DataFrame({"child_key": keys.child_key.unique()})
        for d in DIMENSIONS:
            out[d] = "unknown"
        return out
    a = keys.merge(attributes, on="source_key", how="left")
    dims = [d for d in DIMENSIONS if d in a.columns]
    # the records carrying the most attributes first (school records: race and grade come from them);
    # never an agency id, so any partnership's school extracts lead
    a["_missing"] = a[dims].isna().sum(axis=1) if dims else 0
    a = a.sort_values(["child_key", "_missing", "agency", "source_key"], kind="stable")
    for d in dims:
        a[d] = a[d].astype("string")
    out = a.groupby("child_key", sort=True)[dims].first()
    for d in DIMENSIONS:
        if d not in out.columns:
            out[d] = None
        out[d] = out[d].astype(object).where(out[d].notna(), "unknown").astype(str)
    return out.reset_index()


def _rates(persons: pd.DataFrame, agencies: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in agencies:
        has_a = persons[a].to_numpy()
        n = int(has_a.sum())
        for b in agencies:
            if a == b:
                continue
            linked = int((has_a & persons[b].to_numpy()).sum())
            out[f"{a}->{b}"] = {"persons": n, "linked": linked, "rate": (linked / n) if n else None}
    return out


def compute_quality(
    *,
    run_id: str,
    crosswalk: pd.DataFrame,
    attributes: pd.DataFrame,
    summary: Any,
    queue: pd.DataFrame,
    scores: dict[str, Any],
    guards: dict[str, Any],
    keys: dict[str, Any],
    model: dict[str, Any],
    settings: str,
    notes: list[str] | None = None,
    backend: str = "duckdb",
) -> LinkageQuality:
    agencies = sorted(summary.rows)
    cw = crosswalk[["source_key", "agency", "child_key"]]
    records = {a: {"rows": summary.rows.get(a, 0), "source_keys": summary.source_keys.get(a, 0),
                   "variants": summary.variants.get(a, 0), "rows_without_source_key": summary.dropped_rows_without_key.get(a, 0)}
               for a in agencies}
    counts = cw.groupby(["child_key", "agency"]).size().unstack(fill_value=0)
    for a in agencies:
        if a not in counts.columns:
            counts[a] = 0
    counts = counts[agencies]
    has = counts > 0
    code = np.zeros(len(has), dtype=np.int64)
    for i, a in enumerate(agencies):
        code |= has[a].to_numpy().astype(np.int64) << i
    names = {c: "+".join(a for i, a in enumerate(agencies) if c >> i & 1) for c in np.unique(code).tolist()}
    combo = pd.Series(code).map(names)
    persons = {
        "total": int(len(counts)),
        "by_agency": {a: int(has[a].sum()) for a in agencies},
        "by_agency_combination": {k: int(v) for k, v in combo.value_counts().sort_index().items()},
        "with_two_or_more_ids_of_one_agency": {a: int((counts[a] >= 2).sum()) for a in agencies},
    }
    flags = has.reset_index()
    link_rates = _rates(flags, agencies)
    pattr = _person_attributes(cw, attributes)
    flags = flags.merge(pattr, on="child_key", how="left")
    by: dict[str, Any] = {}
    for d in DIMENSIONS:
        groups: dict[str, Any] = {}
        for grp, sub in flags.groupby(d, sort=True):
            groups[str(grp)] = _rates(sub, agencies)
        by[d] = groups
    review = {"queue_size": int(len(queue)),
              "by_reason": {k: int(v) for k, v in queue.reason.value_counts().sort_index().items()} if len(queue) else {},
              "by_agency_pair": ({f"{a}|{b}": int(v) for (a, b), v in queue.groupby(["agency_l", "agency_r"]).size().items()}
                                 if len(queue) else {})}
    return LinkageQuality(run_id=run_id, records=records, persons=persons, link_rates=link_rates, link_rates_by=by,
                          scores=scores, review=review, guards=guards, keys=keys, model=model, settings=settings,
                          notes=list(notes or []), backend=backend)


# ----------------------------------------------------------------------------------------------
# Against a truth
# ----------------------------------------------------------------------------------------------


def _c2(n: pd.Series | np.ndarray) -> int:
    n = np.asarray(n, dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def _pairwise_and_clusters(m: pd.DataFrame, unscored: int) -> dict[str, Any]:
    cell = m.groupby(["child_key", "person_id"]).size()
    pred_pairs = _c2(m.groupby("child_key").size())
    true_pairs = _c2(m.groupby("person_id").size())
    tp = _c2(cell)
    fp, fn = pred_pairs - tp, true_pairs - tp
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clusters_per_person = m.groupby("person_id").child_key.nunique()
    persons_per_cluster = m.groupby("child_key").person_id.nunique()
    members_p = m.groupby("person_id").source_key.agg(frozenset)
    members_c = m.groupby("child_key").source_key.agg(frozenset)
    exact = len(set(members_p.tolist()) & set(members_c.tolist()))
    return {
        "source_keys_scored": int(len(m)), "source_keys_without_truth": unscored,
        "pairwise": {"true_pairs": true_pairs, "predicted_pairs": pred_pairs, "true_positives": tp,
                     "false_positives": fp, "false_negatives": fn, "precision": precision, "recall": recall, "f1": f1},
        "clusters": {"true_persons": int(len(members_p)), "predicted_persons": int(len(members_c)),
                     "exact_persons": exact, "exact_share": exact / len(members_p) if len(members_p) else 1.0,
                     "persons_split": int((clusters_per_person > 1).sum()),
                     "clusters_merging_persons": int((persons_per_cluster > 1).sum())},
    }


def _cross_pairs(m: pd.DataFrame, a: str, b: str, by: list[str] | str) -> int:
    """Pairs of one record of agency ``a`` and one of ``b`` sharing the ``by`` group(s)."""
    x = m[m.agency == a].groupby(by).size().rename("x")
    y = m[m.agency == b].groupby(by).size().rename("y")
    j = pd.concat([x, y], axis=1, join="inner")
    return int((j.x * j.y).sum())


def _by_agency_pair(m: pd.DataFrame) -> dict[str, Any]:
    """Which kind of pair is missed or wrong."""
    by_pair: dict[str, Any] = {}
    agencies = sorted(m.agency.unique())
    for i, a in enumerate(agencies):
        for b in agencies[i:]:
            if a == b:
                sub = m[m.agency == a]
                tp_ab = _c2(sub.groupby(["child_key", "person_id"]).size())
                t_ab = _c2(sub.groupby("person_id").size())
                p_ab = _c2(sub.groupby("child_key").size())
            else:
                tp_ab = _cross_pairs(m, a, b, ["child_key", "person_id"])
                t_ab = _cross_pairs(m, a, b, "person_id")
                p_ab = _cross_pairs(m, a, b, "child_key")
            by_pair[f"{a}|{b}"] = {"true_pairs": t_ab, "predicted_pairs": p_ab, "true_positives": tp_ab,
                                   "precision": tp_ab / p_ab if p_ab else None, "recall": tp_ab / t_ab if t_ab else None}
    return by_pair


def _recall_by_race(m: pd.DataFrame, p: pd.DataFrame) -> dict[str, Any]:
    """Recall by race/ethnicity (the persons' true group), and the gap between groups."""
    race = p.race_ethnicity.reindex(m.person_id).fillna("unknown").to_numpy()
    mm = m.assign(race=race)
    rec: dict[str, Any] = {}
    for r, sub in mm.groupby("race", sort=True):
        t_r = _c2(sub.groupby("person_id").size())
        tp_r = _c2(sub.groupby(["child_key", "person_id"]).size())
        # false links touching the group: pairs in a cluster between this group's record and another person's
        rec[str(r)] = {"true_pairs": t_r, "true_positives": tp_r, "recall": tp_r / t_r if t_r else None,
                       "persons": int(sub.person_id.nunique())}
    vals = [v["recall"] for v in rec.values() if v["recall"] is not None and v["true_pairs"] >= 20]
    return {"recall_by_race_ethnicity": rec, "recall_gap_between_race_groups": (max(vals) - min(vals)) if vals else None}


def _adults_and_children(m: pd.DataFrame, p: pd.DataFrame) -> dict[str, Any]:
    child = p.is_child.astype(str).str.lower().isin(["true", "1", "yes"])
    is_child = child.reindex(m.person_id).fillna(False).to_numpy()
    mm = m.assign(child=is_child)
    adults = mm[~mm.child].person_id.nunique()  # adults with records, whichever agency holds them
    mixed = mm.groupby("child_key").child.agg(lambda s: bool(s.any() and (~s).any()))
    mixed_keys = set(mixed[mixed].index)
    adults_linked = mm[(~mm.child) & mm.child_key.isin(mixed_keys)].person_id.nunique()
    hard: dict[str, Any] = {"adults_with_records": int(adults), "adults_in_a_child_cluster": int(adults_linked),
                            "clusters_mixing_adults_and_children": int(len(mixed_keys))}
    if "family_id" in p.columns:
        fam = p.family_id.reindex(mm.person_id).to_numpy()
        mm = mm.assign(family=fam)
        sub = mm[mm.child_key.isin(mixed_keys)]
        own = 0
        for _, g in sub.groupby("child_key"):
            if set(g[~g.child].family.dropna()) & set(g[g.child].family.dropna()):
                own += 1
        hard["parents_linked_to_their_own_children"] = own
    return hard


def _hard_cases(m: pd.DataFrame, p: pd.DataFrame) -> dict[str, Any]:
    """Twins, within-agency duplicates, and parents and children (when the truth says who is a child)."""
    hard: dict[str, Any] = {}
    ck = m.groupby("person_id").child_key.agg(set)
    if "twin_of" in p.columns:
        tw = p.twin_of.dropna()
        tw = tw[tw.index < tw.astype(str)]
        present = [(a, b) for a, b in tw.items() if a in ck.index and b in ck.index]
        merged = sum(1 for a, b in present if ck[a] & ck[b])
        hard["twin_pairs_present"] = len(present)
        hard["twin_pairs_merged"] = merged
    per_agency = m.groupby(["person_id", "agency"]).source_key.nunique()
    dups = per_agency[per_agency >= 2]
    if len(dups):
        keys_of = m.groupby(["person_id", "agency"]).child_key.nunique()
        resolved = int((keys_of.reindex(dups.index) == 1).sum())
    else:
        resolved = 0
    hard["within_agency_duplicates"] = int(len(dups))
    hard["within_agency_duplicates_resolved"] = resolved
    if "is_child" in p.columns:
        hard.update(_adults_and_children(m, p))
    return hard


def evaluate_against_truth(crosswalk: pd.DataFrame, truth: pd.DataFrame, persons: pd.DataFrame | None = None) -> dict[str, Any]:
    """Pairwise and cluster quality of a crosswalk against the truth (source_key -> person_id).

    ``persons`` (optional, the truth's persons: person_id, is_child, twin_of, race_ethnicity) adds the
    hard cases and recall by race/ethnicity. Only source keys present in both are scored.
    """
    t = truth[["source_key", "person_id"]].drop_duplicates("source_key")
    m = crosswalk[["source_key", "agency", "child_key"]].merge(t, on="source_key", how="inner")
    out = _pairwise_and_clusters(m, int(len(crosswalk) - len(m)))
    out["by_agency_pair"] = _by_agency_pair(m)
    if persons is None:
        return out
    p = persons.set_index("person_id")
    if "race_ethnicity" in p.columns:
        out.update(_recall_by_race(m, p))
    out["hard_cases"] = _hard_cases(m, p)
    return out
