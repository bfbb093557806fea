"""One nightly linkage run: encodings in, persistent ``source_key -> child_key`` crosswalk out.

:func:`link` dedupes within each agency and links across agencies in one Splink scoring pass
(``dedupe_only`` over the union of all agencies' records: equivalent to ``link_and_dedupe``), DuckDB
backend, the database file ``<workdir>/linkage.duckdb`` in the linkage area (never the warehouse);
spill files go to ``<workdir>/duckdb_tmp``. Steps:

1. records: every agency's encodings, as distinct variants per source key (:mod:`.records`);
2. scores: Splink's prediction with the trained model over the settings' blocking rules; a pair of
   source keys scores as its best pair of variants, its weight shifted by its agency pair type's prior
   (:func:`data_sharing.linkage.model._pair_type_priors`); comparison levels recomputed from the
   settings' SQL for the pairs that matter;
3. decisions and guards: reviewers' decisions (stored, re-applied every run), the parent/child,
   sibling and concurrent-ids guards (``guards`` in ``schemas/linkage/settings.yaml``); the last reads
   each id's period from the attributes (every row's value of e.g. ``grade_level``): two ids of one
   agency sharing enough of it were held at the same time (two persons), sharing none, one after
   the other (a re-registration, which lifts the sibling guards marked ``unless_sequential``);
4. persons: guarded greedy clustering (:func:`.persons.cluster`);
5. child keys continued from the previous state, merges and splits in the history
   (:func:`.persons.assign_child_keys`);
6. the clerical review queue and the run's quality (:mod:`.quality`);
7. the state written in one transaction (:mod:`.state`); Splink's working tables dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_sharing.linkage import state as st
from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.evidence import distinct_common as _distinct_common
from data_sharing.linkage.evidence import twin_evidence
from data_sharing.linkage.estimates import with_estimates
from data_sharing.linkage.model import (
    LinkageModel,
    LinkageModelError,
    make_linker,
    pair_type,
    quiet_splink,
    work_connection,
)
from data_sharing.linkage.queue import finish_queue
from data_sharing.linkage.persons import assign_child_keys, cluster
from data_sharing.linkage.quality import LinkageQuality, compute_quality
from data_sharing.linkage.records import LinkageInputError, load_records
from data_sharing.linkage.review import merge_decisions, validate_decisions
from data_sharing.linkage.settings import LinkageSettings

PREDICT_FLOOR_WEIGHT = -10.0  # Splink match weight below which scored pairs are not kept (p < 0.001)
#: Records (variants) per side of one predict chunk. Splink joins every candidate pair to both records;
#: with all of a state's records on each side those joins outgrow DuckDB's memory and spill the wide
#: joined rows (70 GB at 1.5M children), so above this the pairs are scored in n x n chunks of ~n-ths
#: of the records each (``predict(num_chunks_left=n, num_chunks_right=n)``). A city is one chunk.
PREDICT_CHUNK_RECORDS = 1_000_000
GRADE_BANDS = {"PK": "early", "KG": "early", **{f"{g:02d}": "elementary" for g in range(1, 6)},
               **{f"{g:02d}": "middle" for g in range(6, 9)}, **{f"{g:02d}": "high" for g in range(9, 13)}}


@dataclass(frozen=True)
class LinkageResult:
    """What a run returns; the same is in the state database (``database``)."""

    run_id: str
    crosswalk: pd.DataFrame  # source_key, agency, child_key -- every source key of this run
    history: pd.DataFrame  # this run's merges and splits
    review_queue: pd.DataFrame  # this run's clerical queue
    quality: LinkageQuality
    model: dict[str, Any]
    counts: dict[str, Any]
    database: Path
    timings: dict[str, float] = field(default_factory=dict)


def _same_scoring(a: LinkageSettings, b: LinkageSettings) -> bool:
    return [c.model_dump() for c in a.comparisons] == [c.model_dump() for c in b.comparisons]


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


def _gamma_sql(settings: LinkageSettings, pairs: str, records: str) -> str:
    """Comparison levels (Splink's gamma values) of the pairs in ``pairs`` (rid_l, rid_r), from the settings' SQL."""
    cols = list(settings.columns) + list(settings.used_derived_columns)
    inner = ", ".join([f"l.{c} as {c}_l" for c in cols] + [f"r.{c} as {c}_r" for c in cols])
    cases = []
    for comp in settings.comparisons:
        whens = []
        for lv in comp.levels:
            if lv.else_:
                continue
            whens.append(f"when ({lv.expanded_sql}) then {comp.gamma(lv.name)}")
        cases.append(f"case {' '.join(whens)} else 0 end as gamma_{comp.name}")
    return (
        f"select p.rid_l, p.rid_r, {', '.join(cases)} from "
        f"(select p.rid_l, p.rid_r, {inner} from {pairs} p join {records} l on l.rid = p.rid_l "
        f"join {records} r on r.rid = p.rid_r) p"
    )


def _level_names(settings: LinkageSettings, frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for comp in settings.comparisons:
        names = comp.level_names_by_gamma()
        out[comp.name] = frame[f"gamma_{comp.name}"].map(names)
    return out


def _guard_mask(settings: LinkageSettings, levels: pd.DataFrame, when: Mapping[str, Sequence[str]]) -> np.ndarray:
    mask = np.ones(len(levels), dtype=bool)
    for comp, allowed in when.items():
        mask &= levels[comp].isin(list(allowed)).to_numpy()
    return mask


def _histogram(con: Any, table: str, column: str) -> dict[str, int]:
    edges = [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 0.999, 1.0000001]
    col = st.quote(column)
    bins = " , ".join(
        f"count(*) filter (where {col} >= ? and {col} < ?) as b{i}" for i in range(len(edges) - 1)
    )
    params = [v for lo, hi in zip(edges, edges[1:], strict=False) for v in (lo, hi)]
    sql = "select " + bins + " from " + st.quote(table)
    row = con.execute(sql, params).fetchall()[0]
    labels = [f"[{lo:g},{min(hi, 1.0):g}{']' if hi > 1 else ')'}" for lo, hi in zip(edges, edges[1:], strict=False)]
    return {lab: int(v) for lab, v in zip(labels, row, strict=True)}


def link(
    records_by_agency: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
    model: LinkageModel,
    *,
    workdir: LinkageArea | Path | str,
    run_id: str,
    previous_state: Path | str | None = None,
    decisions: pd.DataFrame | None = None,
    attributes: Mapping[str, pd.DataFrame] | None = None,
    settings: LinkageSettings | None = None,
    threads: int | None = None,
    memory_limit: str | None = None,
    now: dt.datetime | None = None,
    predict_chunk_records: int = PREDICT_CHUNK_RECORDS,
) -> LinkageResult:
    """Run linkage once and continue the persistent state in ``workdir`` (see the module doc).

    ``records_by_agency``: agency -> encodings frame(s) (all current files of its person extract).
    ``model``: from :func:`~data_sharing.linkage.model.train_model` / ``load_model``. ``previous_state``:
    a state database to continue from when ``workdir`` has none yet (e.g. a restored backup); by default
    the state already in ``workdir``. ``decisions``: new reviewer decisions (stored, then applied by this
    and every later run). ``attributes``: agency -> frame with ``source_key`` and any of ``sex``,
    ``race_ethnicity``, ``grade_level``, ``birth_date_year_month`` (non-identifying; for quality
    breakdowns and the parent/child guard). ``settings``: thresholds, blocking and guards to use
    instead of the model's (the comparisons must be the model's).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    started = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > 200:
        raise ValueError("run_id must be a non-empty string of at most 200 characters")
    if settings is None:
        settings = model.settings
    elif not _same_scoring(settings, model.settings):
        raise LinkageModelError(
            f"the settings' comparisons differ from those model {model.model_id} was trained with "
            f"({settings.label} vs {model.settings.label}); retrain the model"
        )
    area = LinkageArea.of(workdir)
    area.root.mkdir(parents=True, exist_ok=True)
    db = area.state_db
    if previous_state is not None:
        src = Path(previous_state)
        if src.resolve() != db.resolve():
            if db.exists():
                raise st.LinkageStateError(f"{db} already holds a linkage state; previous_state={src} would replace it")
            if not src.is_file():
                raise st.LinkageStateError(f"previous_state {src} does not exist")
            shutil.copyfile(src, db)
    new_decisions = validate_decisions(decisions)
    attrs = _attributes(attributes)

    con = work_connection(area, threads=threads, memory_limit=memory_limit)
    try:
        st.attach(con, db)
        salt = st.ensure_schema(con)
        if st.run_exists(con, run_id):
            raise st.LinkageStateError(f"run {run_id!r} is already committed in {db}")
        seq = st.next_seq(con)
        # 1. records
        summary = load_records(con, records_by_agency, settings, table="records")
        key_note = None
        if model.linkage_key_id and summary.linkage_key_id and model.linkage_key_id != summary.linkage_key_id:
            key_note = (f"model {model.model_id} was trained on encodings of linkage key {model.linkage_key_id}; "
                        f"this run's are {summary.linkage_key_id} (parameters carry over; retrain when convenient)")
        timings["records"] = time.perf_counter() - t0

        # 2. scores
        t1 = time.perf_counter()
        splink_settings = dict(model.splink)
        fresh = settings.splink_settings(retain=("agency", "source_key"))
        for k in ("blocking_rules_to_generate_predictions", "additional_columns_to_retain", "unique_id_column_name",
                  "retain_matching_columns", "retain_intermediate_calculation_columns", "link_type"):
            splink_settings[k] = fresh[k]
        n_records = sum(summary.variants.values())
        chunks = 1
        if n_records >= 2:
            with quiet_splink():
                linker = make_linker(con, "records", splink_settings)
                # pairs below 2^-10 odds (p < 0.001) are never near a threshold: not materialised
                chunks = max(1, -(-n_records // max(1, predict_chunk_records)))
                pred = linker.inference.predict(threshold_match_weight=PREDICT_FLOOR_WEIGHT, warning_mode="never",
                                                num_chunks_left=chunks if chunks > 1 else None,
                                                num_chunks_right=chunks if chunks > 1 else None)
            pred_table = pred.physical_name
        else:
            con.execute("create or replace table __c2c_empty_pred (match_weight double, match_probability double, "
                        "rid_l bigint, rid_r bigint, agency_l varchar, agency_r varchar, source_key_l varchar, "
                        "source_key_r varchar)")
            pred_table = "__c2c_empty_pred"
        timings["predict"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        agencies = sorted(summary.source_keys)
        shifts = pd.DataFrame([(a, b, model.weight_shift(pair_type(a, b)))
                               for i, a in enumerate(agencies) for b in agencies[i:]], columns=["pa", "pb", "shift"])
        con.register("__c2c_shift", shifts)
        scored_sql = (
            f"""create or replace temp table __c2c_scored as
            with x as (
                select least(source_key_l, source_key_r) a, greatest(source_key_l, source_key_r) b,
                       least(agency_l, agency_r) pa, greatest(agency_l, agency_r) pb,
                       arg_max(struct_pack(rid_l := rid_l, rid_r := rid_r, w := match_weight, p := match_probability,
                                           aa := case when source_key_l < source_key_r then agency_l else agency_r end,
                                           ab := case when source_key_l < source_key_r then agency_r else agency_l end),
                               struct_pack(w := match_weight, l := -rid_l, r := -rid_r)) as best
                from {st.quote(pred_table)} group by 1, 2, 3, 4),
            y as (
                select x.a, x.b, x.best.aa as agency_a, x.best.ab as agency_b, x.best.rid_l as rid_l,
                       x.best.rid_r as rid_r, x.best.w as splink_weight, x.best.p as splink_probability,
                       x.best.w + coalesce(sh.shift, 0.0) as match_weight
                from x left join __c2c_shift sh on sh.pa = x.pa and sh.pb = x.pb)
            select *, case when match_weight >= 0 then 1.0 / (1.0 + pow(2.0, -match_weight))
                           else pow(2.0, match_weight) / (1.0 + pow(2.0, match_weight)) end as match_probability
            from y"""
        )
        con.execute(scored_sql)
        con.unregister("__c2c_shift")
        scored_pairs = int(con.execute("select count(*) from __c2c_scored").fetchall()[0][0])
        count_sql = "select count(*) from " + st.quote(pred_table)
        scored_comparisons = int(con.execute(count_sql).fetchall()[0][0])
        hist_run = _histogram(con, "__c2c_scored", "match_probability")
        hist_splink = _histogram(con, pred_table, "match_probability")
        lower, upper = settings.thresholds.lower, settings.thresholds.upper

        # decisions: stored log + new ones; the effective decision per pair
        stored = st.read_table(con, "decisions")
        to_store, effective = merge_decisions(stored, new_decisions, run_id=run_id, seq=seq)
        con.register("__c2c_decided", effective[["source_key_l", "source_key_r"]] if len(effective)
                     else pd.DataFrame({"source_key_l": pd.Series([], dtype=str), "source_key_r": pd.Series([], dtype=str)}))
        con.execute(
            """create or replace temp table __c2c_pairs as
            select * from __c2c_scored s where s.match_probability >= ?
               or exists (select 1 from __c2c_decided d where d.source_key_l = s.a and d.source_key_r = s.b)""",
            [float(lower)],
        )
        con.unregister("__c2c_decided")
        timings["aggregate"] = time.perf_counter() - t1
        gam = con.execute(_gamma_sql(settings, "__c2c_pairs", "records")).df()
        pairs = con.execute(
            "select a as source_key_l, b as source_key_r, agency_a as agency_l, agency_b as agency_r, rid_l, rid_r, "
            "match_weight, match_probability, splink_probability from __c2c_pairs order by a, b"
        ).df()
        pairs = pairs.merge(gam, on=["rid_l", "rid_r"], how="left")
        levels = _level_names(settings, pairs)
        weights = _level_weights(model, settings, levels)
        timings["score"] = time.perf_counter() - t1

        # 3. guards
        t1 = time.perf_counter()
        year = attrs.set_index("source_key").birth_year if len(attrs) else pd.Series(dtype=float)
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
        dec = effective.set_index(["source_key_l", "source_key_r"]).decision if len(effective) else pd.Series(dtype=str)
        pair_index = pd.MultiIndex.from_arrays([pairs.source_key_l, pairs.source_key_r])
        decision = dec.reindex(pair_index).to_numpy(dtype=object) if len(dec) else np.full(len(pairs), None, dtype=object)
        forced = decision == "match"
        refused_by_decision = decision == "non_match"
        undecided = pd.isna(decision)
        prob = pairs.match_probability.to_numpy()
        # the upper threshold of each pair: its own for two ids of one agency (settings.thresholds)
        upper_w = settings.thresholds.within_agency_upper
        upper_of = np.where(within, upper_w, upper)
        linkable = (prob >= upper_of) & ~parent & ~sibling & ~concurrent & undecided
        links = pairs.loc[linkable, ["source_key_l", "source_key_r", "match_weight"]]
        forced_df = effective.loc[effective.decision == "match", ["source_key_l", "source_key_r"]] if len(effective) else None
        cannot_parts = []
        if len(effective):
            nm = effective.loc[effective.decision == "non_match", ["source_key_l", "source_key_r"]].assign(reason="decision_conflict")
            cannot_parts.append(nm)
        cannot_parts.append(pairs.loc[parent & ~forced, ["source_key_l", "source_key_r"]].assign(reason="conflict_birth_years"))
        cannot_parts.append(pairs.loc[sibling & ~forced, ["source_key_l", "source_key_r"]].assign(reason="possible_sibling"))
        cannot_parts.append(pairs.loc[concurrent & ~forced, ["source_key_l", "source_key_r"]].assign(reason="concurrent_ids"))
        cannot = pd.concat(cannot_parts, ignore_index=True)

        # 4. persons
        nodes = con.execute("select distinct agency, source_key from records order by source_key").df()
        nodes["birth_year"] = year.reindex(nodes.source_key).to_numpy(dtype=float) if len(year) else np.nan
        wa = g.within_agency
        direct_min = upper_w if wa.direct_evidence_threshold == "upper" else lower
        within_ok = pairs.loc[within & (prob >= direct_min) & ~parent & ~sibling & ~concurrent & undecided,
                              ["source_key_l", "source_key_r"]]
        clusters = cluster(nodes, links, forced=forced_df, cannot=cannot, within_evidence=within_ok,
                           max_birth_year_gap=gap, within_agency_needs_direct_evidence=wa.needs_direct_evidence)
        timings["cluster"] = time.perf_counter() - t1

        # 5. child keys
        t1 = time.perf_counter()
        previous = st.read_table(con, "crosswalk")
        keys = st.read_table(con, "child_keys")
        decided_pairs = list(zip(effective.source_key_l, effective.source_key_r, effective.decision, strict=True)) if len(effective) else []
        assignment = assign_child_keys(clusters.labels, previous, keys, run_id=run_id, seq=seq, salt=salt,
                                       decided_pairs=decided_pairs)
        timings["keys"] = time.perf_counter() - t1
        t1 = time.perf_counter()

        # 6. review queue
        label = clusters.labels.set_index("source_key").cluster
        same_person = label.reindex(pairs.source_key_l).to_numpy() == label.reindex(pairs.source_key_r).to_numpy()
        reason = np.full(len(pairs), None, dtype=object)
        reason[(prob >= lower) & (prob < upper_of)] = "score_band"
        reason[sibling & (prob >= lower)] = "possible_sibling"
        refused = clusters.refused.set_index(["source_key_l", "source_key_r"]).reason if len(clusters.refused) else pd.Series(dtype=str)
        if len(refused):
            r = refused.reindex(pair_index).to_numpy(dtype=object)
            has = pd.notna(r) & linkable
            reason[has] = r[has]
        queue_mask = pd.notna(reason) & ~same_person & undecided & ~parent & ~concurrent
        # a guarded (possible sibling) pair is worth a reviewer's time only if the two persons could be
        # one: they hold no records of a common agency (twins are usually both known to an agency)
        if (sibling & queue_mask).any():
            lab = clusters.labels
            bit = np.left_shift(1, pd.Index(agencies).get_indexer(lab.agency)).astype(np.int64)
            held = np.zeros(int(lab.cluster.max()) + 1, dtype=np.int64)
            np.bitwise_or.at(held, lab.cluster.to_numpy(), bit)
            ca = held[label.reindex(pairs.source_key_l).to_numpy()]
            cb = held[label.reindex(pairs.source_key_r).to_numpy()]
            queue_mask &= ~(sibling & ((ca & cb) != 0))
        prev_queue = st.read_table(con, "review_queue")
        first_q = (prev_queue.set_index(["source_key_l", "source_key_r"]).first_queued_run
                   if len(prev_queue) else pd.Series(dtype=str))
        q = pairs.loc[queue_mask, ["source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability", "match_weight"]].copy()
        q["reason"] = reason[queue_mask]
        q["levels"] = [st.dumps(d) for d in levels.loc[queue_mask].to_dict("records")]
        q["weights"] = [st.dumps(d) for d in weights.loc[queue_mask].to_dict("records")]
        fq = first_q.reindex(pd.MultiIndex.from_arrays([q.source_key_l, q.source_key_r])).to_numpy(dtype=object) if len(first_q) else np.full(len(q), None, dtype=object)
        q["first_queued_run"] = np.where(pd.isna(fq), run_id, fq)
        q.insert(0, "run_id", run_id)
        q, queue_cap = finish_queue(q, pairs, levels, weights, same_person & linkable, persons=int(clusters.labels.cluster.nunique()),
                                    upper=upper, upper_within=upper_w, run_id=run_id, dumps=st.dumps)

        timings["queue"] = time.perf_counter() - t1

        # 7. quality
        t1 = time.perf_counter()
        guard_counts = {
            "parent_child_pairs_blocked": int((parent & (prob >= lower)).sum()),
            "possible_sibling_pairs": int((sibling & (prob >= lower)).sum()),
            "concurrent_id_pairs": int((concurrent & (prob >= lower)).sum()),
            "refused_joins": {k: int(v) for k, v in clusters.refused.reason.value_counts().sort_index().items()},
            "decisions_applied": {"match": int(forced.sum()), "non_match": int(refused_by_decision.sum())},
            "decisions_stored": int(len(effective)),
        }
        quality = compute_quality(
            run_id=run_id, crosswalk=assignment.current, attributes=attrs, summary=summary, queue=q,
            scores={"record_comparisons_at_or_above_floor": scored_comparisons, "floor_match_weight": PREDICT_FLOOR_WEIGHT,
                    "scored_source_key_pairs": scored_pairs,
                    "match_probability_histogram": hist_run, "splink_match_probability_histogram": hist_splink,
                    "pairs_at_or_above_upper": int((prob >= upper_of).sum()),
                    "pairs_in_review_band": int(((prob >= lower) & (prob < upper_of)).sum()),
                    "thresholds": {"lower": lower, "upper": upper, "upper_within_agency": upper_w}},
            guards=guard_counts, keys=assignment.counts, model=model.describe(), settings=settings.label,
            notes=[key_note] if key_note else [],
        )
        quality = with_estimates(quality, con, clusters.labels, pairs, same_person, parent | sibling | concurrent, lower, queue_cap)
        timings["quality"] = time.perf_counter() - t1

        # 8. state, in one transaction
        t1 = time.perf_counter()
        finished = dt.datetime.now(dt.UTC) if now is None else started
        counts = {"records": summary.rows, "source_keys": summary.source_keys, "variants": summary.variants,
                  "record_comparisons": scored_comparisons, "scored_pairs": scored_pairs, "predict_chunks": chunks,
                  "review_queue": len(q), **assignment.counts}
        con.execute("begin transaction")
        try:
            st.append(con, "decisions", to_store.assign(recorded_run=run_id, recorded_seq=seq) if len(to_store) else to_store)
            st.replace_table(con, "crosswalk", assignment.crosswalk)
            st.replace_table(con, "child_keys", assignment.child_keys)
            st.append(con, "history", assignment.history)
            st.replace_table(con, "review_queue", q)
            audit = pairs[["source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability", "match_weight"]].copy()
            for comp in settings.comparisons:
                audit[f"gamma_{comp.name}"] = pairs[f"gamma_{comp.name}"].astype("int8")
            audit["outcome"] = np.where(same_person, "same_person", np.where(pd.notna(reason) & queue_mask, "review", "apart"))
            audit["guard"] = np.where(parent, "parent_child", np.where(sibling, "possible_sibling",
                                                                       np.where(concurrent, "concurrent_ids", None)))
            con.register("__c2c_audit", audit)
            audit_sql = "create or replace table " + st.qualified("pairs") + " as select ? as run_id, * from __c2c_audit"
            con.execute(audit_sql, [run_id])
            con.unregister("__c2c_audit")
            st.append(con, "quality", pd.DataFrame({"run_id": [run_id], "document": [st.dumps(quality.to_dict())]}))
            st.append(con, "runs", pd.DataFrame({
                "run_id": [run_id], "seq": [seq], "started_at": [started.isoformat()], "finished_at": [finished.isoformat()],
                "model_id": [model.model_id], "settings": [settings.label], "linkage_key_id": [summary.linkage_key_id],
                "summary": [st.dumps(counts)]}))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        con.execute("checkpoint " + st.quote(st.CATALOG))
        timings["write"] = time.perf_counter() - t1
    finally:
        con.close()
    timings["total"] = time.perf_counter() - t0
    return LinkageResult(run_id=run_id, crosswalk=assignment.current, history=assignment.history.reset_index(drop=True),
                         review_queue=q, quality=quality, model=model.describe(), counts=counts, database=db,
                         timings=timings)


def _level_weights(model: LinkageModel, settings: LinkageSettings, levels: pd.DataFrame) -> pd.DataFrame:
    """Each pair's match weight per comparison at its level (from the model's m and u)."""
    out = pd.DataFrame(index=levels.index)
    for comp in settings.comparisons:
        params = model.parameters.get(comp.name, {})
        table = {name: (round(float(p["match_weight"]), 3) if p.get("match_weight") is not None else None)
                 for name, p in params.items()}
        null = comp.levels[0].name if comp.levels[0].null else None
        if null:
            table[null] = 0.0
        out[comp.name] = levels[comp.name].map(table)
    return out


def rekey_state(workdir: LinkageArea | Path | str, mapping: pd.DataFrame, *, label: str, now: dt.datetime | None = None) -> int:
    """Carry the linkage state over a key rotation: every stored ``source_key`` becomes its new value.

    After a pseudonym-key (or linkage-key) rotation the same agency ids arrive under new source keys;
    without this, every person would look new and get a new child key. ``mapping``: columns
    ``old_source_key``, ``new_source_key`` (from :func:`data_sharing.pseudonyms.rekey_crosswalk`).
    The crosswalk, decisions, review queue and audit pairs are rewritten in one transaction; child keys
    do not change. Recorded in the history as event ``rekey`` under ``label``. Returns the number of
    crosswalk rows re-keyed.
    """
    for col in ("old_source_key", "new_source_key"):
        if col not in mapping.columns:
            raise ValueError(f"rekey_state: the mapping lacks column {col}")
    m = mapping[["old_source_key", "new_source_key"]].dropna().astype(str).drop_duplicates()
    if not m.old_source_key.is_unique or not m.new_source_key.is_unique:
        raise ValueError("rekey_state: the mapping must be one-to-one (each old and each new source key once)")
    area = LinkageArea.of(workdir)
    db = area.state_db
    if not db.is_file():
        raise st.LinkageStateError(f"{db}: no linkage state")
    con = work_connection(area)
    try:
        st.attach(con, db)
        st.ensure_schema(con)
        con.register("__c2c_map", m)
        crosswalk = st.qualified("crosswalk")
        clash_sql = ("select count(*) from " + crosswalk + " c join __c2c_map m on c.source_key = m.new_source_key "
                     "where c.source_key not in (select old_source_key from __c2c_map)")
        clash = con.execute(clash_sql).fetchall()[0][0]
        if clash:
            raise st.LinkageStateError(f"rekey_state: {clash} new source key(s) already in the state under another id")
        seq = max(st.next_seq(con) - 1, 0)
        con.execute("begin transaction")
        try:
            count_sql = "select count(*) from " + crosswalk + " c join __c2c_map m on c.source_key = m.old_source_key"
            n = con.execute(count_sql).fetchall()[0][0]
            update_sql = ("update " + crosswalk + " c set source_key = m.new_source_key from __c2c_map m "
                          "where c.source_key = m.old_source_key")
            con.execute(update_sql)
            for table in ("decisions", "review_queue"):
                qtable = st.qualified(table)
                for side in ("l", "r"):
                    col = st.quote(f"source_key_{side}")
                    side_sql = ("update " + qtable + " t set " + col + " = m.new_source_key from __c2c_map m "
                                "where t." + col + " = m.old_source_key")
                    con.execute(side_sql)
                order_sql = ("update " + qtable + " set source_key_l = source_key_r, source_key_r = source_key_l "
                             "where source_key_l > source_key_r")
                con.execute(order_sql)
            drop_sql = "drop table if exists " + st.qualified("pairs")  # audit of the last run only: stale now
            con.execute(drop_sql)
            st.append(con, "history", pd.DataFrame({
                "run_id": [label], "seq": [seq], "event": ["rekey"], "old_keys": [[]], "new_keys": [[]],
                "reason": [f"source keys re-keyed after a key rotation ({(now or dt.datetime.now(dt.UTC)).isoformat()})"],
                "source_keys": [int(n)]}))
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        con.unregister("__c2c_map")
        con.execute("checkpoint " + st.quote(st.CATALOG))
        return int(n)
    finally:
        con.close()


def read_state(workdir: LinkageArea | Path | str) -> dict[str, pd.DataFrame]:
    """The state tables of a linkage area (read-only), e.g. for review tools and tests."""
    import duckdb

    db = LinkageArea.of(workdir).state_db
    if not db.is_file():
        raise st.LinkageStateError(f"{db}: no linkage state")
    con = duckdb.connect(":memory:")
    try:
        st.attach(con, db, read_only=True)
        names = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = ? and table_schema = ?",
            [st.CATALOG, st.SCHEMA.split(".")[1]]).fetchall()]
        return {n: st.read_table(con, n) for n in sorted(names)}
    finally:
        con.close()


def quality_of_run(workdir: LinkageArea | Path | str, run_id: str) -> dict[str, Any]:
    doc = read_state(workdir)["quality"]
    row = doc[doc.run_id == run_id]
    if row.empty:
        raise KeyError(run_id)
    return json.loads(row.document.iloc[0])


__all__ = ["LinkageResult", "link", "quality_of_run", "read_state", "rekey_state"]
