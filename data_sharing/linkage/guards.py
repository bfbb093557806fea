"""The guards of a linkage run (``guards`` in ``schemas/linkage/settings.yaml``) and the decisions they feed.

Over the scored pairs: the parent/child guard (birth years too far apart), the concurrent-ids guard (two
ids of one agency sharing enough of a period attribute were held at the same time: two persons; sharing
none, one after the other: a re-registration, which lifts the sibling guards marked
``unless_sequential``), the sibling guards; then reviewers' decisions, the links and the pairs that
may never share a person (:func:`decide`). The attributes (:func:`_attributes`) are non-identifying.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_sharing.linkage.evidence import distinct_common as _distinct_common
from data_sharing.linkage.evidence import twin_evidence
from data_sharing.linkage.records import LinkageInputError, RecordSummary
from data_sharing.linkage.settings import LinkageSettings

GRADE_BANDS = {"PK": "early", "KG": "early", **{f"{g:02d}": "elementary" for g in range(1, 6)},
               **{f"{g:02d}": "middle" for g in range(6, 9)}, **{f"{g:02d}": "high" for g in range(9, 13)}}


def _attributes(attributes: Mapping[str, pd.DataFrame] | None) -> pd.DataFrame:
    """source_key, sex, race_ethnicity, grade_band, birth_year -- the last row per source key wins."""
    cols = ["source_key", "sex", "race_ethnicity", "grade_level", "birth_year"]
    parts = []
    for agency, frame in sorted((attributes or {}).items()):
        if frame is None or len(frame) == 0:
            continue
        if "source_key" not in frame.columns:
            raise LinkageInputError(f"{agency}: attributes lack the source_key column")
        f = frame
        present = [c for c in ("sex", "race_ethnicity", "grade_level", "birth_date_year_month") if c in f.columns]
        # rows that carry none of them (an event extract's period rows, guards.concurrent_ids) never win
        has = f[present].notna().any(axis=1).to_numpy() if present else np.ones(len(f), dtype=bool)
        f = f.assign(__has=has)
        f = f.sort_values(["__has", "row_number"] if "row_number" in f.columns else ["__has"], kind="stable")
        f = f.drop_duplicates("source_key", keep="last")
        out = pd.DataFrame({"source_key": f["source_key"].astype(str).to_numpy()})
        for c in ("sex", "race_ethnicity", "grade_level"):
            out[c] = f[c].astype("string").to_numpy(dtype=object) if c in f.columns else None
        if "birth_date_year_month" in f.columns:
            y = f["birth_date_year_month"].astype("string").str.slice(0, 4)
            out["birth_year"] = pd.to_numeric(y, errors="coerce").to_numpy()
        else:
            out["birth_year"] = np.nan
        parts.append(out)
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True).drop_duplicates("source_key", keep="last")
    out["grade_band"] = pd.Series(out.grade_level, dtype=object).map(GRADE_BANDS)
    return out.reset_index(drop=True)


def _periods(attributes: Mapping[str, pd.DataFrame] | None, column: str,
             agency: str | None = None) -> tuple[pd.Index, np.ndarray]:
    """Each source key's period as a bit set (uint64 words) of the distinct values of ``column`` over all
    its rows (e.g. the grade levels a school enrolled it in); keys without a value have no bits set.
    ``agency``: only that agency's frame."""
    parts = []
    for name, frame in sorted((attributes or {}).items()):
        if agency is not None and name != agency:
            continue
        if frame is None or len(frame) == 0 or column not in frame.columns or "source_key" not in frame.columns:
            continue
        parts.append(pd.DataFrame({"source_key": frame["source_key"].astype(str).to_numpy(),
                                   "v": frame[column].astype("string").to_numpy(dtype=object)}))
    if not parts:
        return pd.Index([], dtype=object), np.zeros((0, 1), dtype=np.uint64)
    f = pd.concat(parts, ignore_index=True).dropna().drop_duplicates()
    keys = pd.Index(f.source_key.unique())
    key_codes = keys.get_indexer(f.source_key)
    val_codes, values = pd.factorize(f.v, sort=True)
    words = max(1, -(-len(values) // 64))
    masks = np.zeros((len(keys), words), dtype=np.uint64)
    bit = np.left_shift(np.uint64(1), (val_codes % 64).astype(np.uint64))
    np.bitwise_or.at(masks, (key_codes, val_codes // 64), bit)
    return keys, masks


def period_rows(frame: pd.DataFrame, source_key: pd.Series | np.ndarray, columns: Sequence[str],
                attribute: str) -> pd.DataFrame:
    """``source_key`` and ``attribute`` (the row's ``columns`` joined with ``|``) of an event extract's
    rows: an agency's periods when its person extract carries none (``guards.concurrent_ids[].source``).
    Rows missing any of the columns give no value."""
    parts = [frame[c].astype("string") for c in columns]
    value = parts[0]
    for p in parts[1:]:
        value = value + "|" + p
    out = pd.DataFrame({"source_key": pd.Series(np.asarray(source_key, dtype=object)).astype("string").to_numpy(),
                        attribute: value.to_numpy(dtype=object)})
    return out.dropna().drop_duplicates().reset_index(drop=True)


def _shared_periods(keys: pd.Index, masks: np.ndarray, left: pd.Series, right: pd.Series) -> np.ndarray:
    """Number of period values two source keys share; -1 where either has no period."""
    il, ir = keys.get_indexer(left.astype(str)), keys.get_indexer(right.astype(str))
    known = (il >= 0) & (ir >= 0)
    out = np.full(len(il), -1, dtype=np.int64)
    if known.any():
        both = masks[il[known]] & masks[ir[known]]
        out[known] = np.bitwise_count(both).sum(axis=1)
    return out


def _guard_mask(settings: LinkageSettings, levels: pd.DataFrame, when: Mapping[str, Sequence[str]]) -> np.ndarray:
    mask = np.ones(len(levels), dtype=bool)
    for comp, allowed in when.items():
        mask &= levels[comp].isin(list(allowed)).to_numpy()
    return mask


@dataclass(frozen=True)
class PairGuards:
    """Per scored pair (in ``pairs`` order): which guards hold, and the birth years they read."""

    within: np.ndarray  # both source keys of one agency
    parent: np.ndarray
    concurrent: np.ndarray
    sibling: np.ndarray
    year: pd.Series  # birth year by source key
    gap: int | None  # the parent/child guard's minimum birth-year gap


def _parent_child(settings: LinkageSettings, pairs: pd.DataFrame, levels: pd.DataFrame,
                  year: pd.Series) -> tuple[np.ndarray, int | None]:
    yl = year.reindex(pairs.source_key_l).to_numpy(dtype=float)
    yr = year.reindex(pairs.source_key_r).to_numpy(dtype=float)
    g = settings.guards
    parent = np.zeros(len(pairs), dtype=bool)
    gap = None
    if g.parent_child is not None:
        gap = g.parent_child.min_birth_year_gap
        known = ~np.isnan(yl) & ~np.isnan(yr)
        parent = known & (np.abs(np.nan_to_num(yl) - np.nan_to_num(yr)) >= gap)
        if g.parent_child.levels:
            parent |= ~known & levels[g.parent_child.comparison].isin(g.parent_child.levels).to_numpy()
    return parent, gap


def pair_guards(con: Any, settings: LinkageSettings, pairs: pd.DataFrame, levels: pd.DataFrame, attrs: pd.DataFrame,
                attributes: Mapping[str, pd.DataFrame] | None, summary: RecordSummary) -> PairGuards:
    """The guards of the pairs in ``pairs`` (also the working table ``__c2c_pairs`` of ``con``)."""
    g = settings.guards
    year = attrs.set_index("source_key").birth_year if len(attrs) else pd.Series(dtype=float)
    parent, gap = _parent_child(settings, pairs, levels, year)
    within = (pairs.agency_l == pairs.agency_r).to_numpy()
    # two ids of one agency held at the same time: two persons; one after the other: a re-registration
    concurrent = np.zeros(len(pairs), dtype=bool)
    sequential = np.zeros(len(pairs), dtype=bool)
    for ci in g.concurrent_ids:
        pkeys, pmasks = _periods(attributes, ci.attribute, ci.agency)
        shared = _shared_periods(pkeys, pmasks, pairs.source_key_l, pairs.source_key_r)
        scope = within if ci.agency is None else within & (pairs.agency_l == ci.agency).to_numpy()
        concurrent |= scope & (shared >= ci.min_shared)
        if ci.disjoint_is_sequential:
            sequential |= scope & (shared == 0)
    sequential &= ~concurrent
    sibling = np.zeros(len(pairs), dtype=bool)
    for sib in g.sibling:
        scope = within if sib.pairs == "within_agency" else (~within if sib.pairs == "across_agencies" else True)
        if sib.unless_sequential:
            scope = scope & ~sequential
        if sib.distinct_common is not None:
            dc = sib.distinct_common
            scope = scope & _distinct_common(con, "__c2c_pairs", dc.column,
                                             dc.threshold(sum(summary.source_keys.values())))
        scope = scope & twin_evidence(con, "__c2c_pairs") if sib.needs_twin_evidence else scope
        sibling |= scope & _guard_mask(settings, levels, sib.when)
    sibling &= ~concurrent
    return PairGuards(within=within, parent=parent, concurrent=concurrent, sibling=sibling, year=year, gap=gap)


@dataclass(frozen=True)
class PairDecisions:
    """Per scored pair: reviewers' decisions, the thresholds, and what may be linked or never joined."""

    pair_index: pd.MultiIndex
    forced: np.ndarray  # a reviewer's match
    refused_by_decision: np.ndarray  # a reviewer's non_match
    undecided: np.ndarray
    prob: np.ndarray
    upper_within: float
    upper_of: np.ndarray  # each pair's upper threshold
    linkable: np.ndarray
    links: pd.DataFrame
    forced_pairs: pd.DataFrame | None
    cannot: pd.DataFrame  # pairs never to share a person, with the reason


def decide(settings: LinkageSettings, pairs: pd.DataFrame, effective: pd.DataFrame, guards: PairGuards) -> PairDecisions:
    """Apply the effective decisions and the thresholds to the guarded pairs."""
    parent, sibling, concurrent = guards.parent, guards.sibling, guards.concurrent
    dec = effective.set_index(["source_key_l", "source_key_r"]).decision if len(effective) else pd.Series(dtype=str)
    pair_index = pd.MultiIndex.from_arrays([pairs.source_key_l, pairs.source_key_r])
    decision = dec.reindex(pair_index).to_numpy(dtype=object) if len(dec) else np.full(len(pairs), None, dtype=object)
    forced = decision == "match"
    undecided = pd.isna(decision)
    prob = pairs.match_probability.to_numpy()
    # the upper threshold of each pair: its own for two ids of one agency (settings.thresholds)
    upper_w = settings.thresholds.within_agency_upper
    upper_of = np.where(guards.within, upper_w, settings.thresholds.upper)
    linkable = (prob >= upper_of) & ~parent & ~sibling & ~concurrent & undecided
    forced_df = effective.loc[effective.decision == "match", ["source_key_l", "source_key_r"]] if len(effective) else None
    cannot_parts = []
    if len(effective):
        nm = effective.loc[effective.decision == "non_match", ["source_key_l", "source_key_r"]].assign(reason="decision_conflict")
        cannot_parts.append(nm)
    cannot_parts.append(pairs.loc[parent & ~forced, ["source_key_l", "source_key_r"]].assign(reason="conflict_birth_years"))
    cannot_parts.append(pairs.loc[sibling & ~forced, ["source_key_l", "source_key_r"]].assign(reason="possible_sibling"))
    cannot_parts.append(pairs.loc[concurrent & ~forced, ["source_key_l", "source_key_r"]].assign(reason="concurrent_ids"))
    return PairDecisions(
        pair_index=pair_index, forced=forced, refused_by_decision=decision == "non_match", undecided=undecided,
        prob=prob, upper_within=upper_w, upper_of=upper_of, linkable=linkable,
        links=pairs.loc[linkable, ["source_key_l", "source_key_r", "match_weight"]], forced_pairs=forced_df,
        cannot=pd.concat(cannot_parts, ignore_index=True),
    )
