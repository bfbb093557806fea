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
from data_sharing.linkage.backend import linkage_backend
from data_sharing.linkage.estimates import with_estimates
from data_sharing.linkage.guards import PairDecisions, PairGuards, _attributes, decide, pair_guards
from data_sharing.linkage.model import LinkageModel, LinkageModelError, work_connection
from data_sharing.linkage.persons import Clusters, KeyAssignment, assign_child_keys, cluster
from data_sharing.linkage.quality import LinkageQuality, compute_quality
from data_sharing.linkage.queue import finish_queue
from data_sharing.linkage.records import RecordSummary, load_records
from data_sharing.linkage.review import merge_decisions, validate_decisions
from data_sharing.linkage.scores import (
    PREDICT_CHUNK_RECORDS,
    PREDICT_FLOOR_WEIGHT,
    Scores,
    aggregate,
    pair_levels,
    predict,
    select_pairs,
)
from data_sharing.linkage.settings import LinkageSettings



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


@dataclass
class _Run:
    """One run's working context: the connection (state attached as ``state``) and what every step reads."""

    con: Any
    run_id: str
    seq: int
    salt: str
    model: LinkageModel
    settings: LinkageSettings
    summary: RecordSummary
    attrs: pd.DataFrame
    timings: dict[str, float]
    backend: str = "duckdb"
    area: LinkageArea | None = None


@dataclass(frozen=True)
class _Scored:
    """Step 2: the scores, the pairs that matter with their levels and weights, and the decisions."""

    scores: Scores
    pairs: pd.DataFrame
    levels: pd.DataFrame
    weights: pd.DataFrame
    to_store: pd.DataFrame  # new decisions to append to the state
    effective: pd.DataFrame  # the effective decision per pair


@dataclass(frozen=True)
class _Queue:
    """Step 6: the clerical queue, its cap, and each pair's queue reason and outcome."""

    frame: pd.DataFrame
    cap: dict[str, Any]
    reason: np.ndarray
    mask: np.ndarray
    same_person: np.ndarray


def _run_settings(run_id: str, model: LinkageModel, settings: LinkageSettings | None) -> LinkageSettings:
    if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > 200:
        raise ValueError("run_id must be a non-empty string of at most 200 characters")
    if settings is None:
        return model.settings
    if not _same_scoring(settings, model.settings):
        raise LinkageModelError(
            f"the settings' comparisons differ from those model {model.model_id} was trained with "
            f"({settings.label} vs {model.settings.label}); retrain the model"
        )
    return settings


def _state_database(area: LinkageArea, previous_state: Path | str | None) -> Path:
    """The area's state database, a copy of ``previous_state`` when the area holds none yet."""
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
    return db


def _key_note(model: LinkageModel, summary: RecordSummary) -> str | None:
    if model.linkage_key_id and summary.linkage_key_id and model.linkage_key_id != summary.linkage_key_id:
        return (f"model {model.model_id} was trained on encodings of linkage key {model.linkage_key_id}; "
                f"this run's are {summary.linkage_key_id} (parameters carry over; retrain when convenient)")
    return None


def _score(run: _Run, new_decisions: pd.DataFrame, chunk_records: int) -> _Scored:
    """Step 2: predict, keep each pair of source keys' best score, merge the decisions, select the pairs."""
    con, timings = run.con, run.timings
    t1 = time.perf_counter()
    pred_table, chunks = predict(con, run.model, run.settings, run.summary, chunk_records, backend=run.backend,
                                 area=run.area)
    timings["predict"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    scores = aggregate(con, run.model, pred_table, sorted(run.summary.source_keys), chunks)
    # decisions: stored log + new ones; the effective decision per pair
    stored = st.read_table(con, "decisions")
    to_store, effective = merge_decisions(stored, new_decisions, run_id=run.run_id, seq=run.seq)
    select_pairs(con, effective, run.settings.thresholds.lower)
    timings["aggregate"] = time.perf_counter() - t1
    pairs, levels, weights = pair_levels(con, run.model, run.settings)
    timings["score"] = time.perf_counter() - t1
    return _Scored(scores, pairs, levels, weights, to_store, effective)


def _persons(run: _Run, pairs: pd.DataFrame, guards: PairGuards, d: PairDecisions) -> Clusters:
    """Step 4: guarded greedy clustering of the run's source keys."""
    settings, year = run.settings, guards.year
    nodes = run.con.execute("select distinct agency, source_key from records order by source_key").df()
    nodes["birth_year"] = year.reindex(nodes.source_key).to_numpy(dtype=float) if len(year) else np.nan
    wa = settings.guards.within_agency
    direct_min = d.upper_within if wa.direct_evidence_threshold == "upper" else settings.thresholds.lower
    ok = guards.within & (d.prob >= direct_min) & ~guards.parent & ~guards.sibling & ~guards.concurrent & d.undecided
    return cluster(nodes, d.links, forced=d.forced_pairs, cannot=d.cannot,
                   within_evidence=pairs.loc[ok, ["source_key_l", "source_key_r"]],
                   max_birth_year_gap=guards.gap, within_agency_needs_direct_evidence=wa.needs_direct_evidence)


def _child_keys(run: _Run, clusters: Clusters, effective: pd.DataFrame) -> KeyAssignment:
    """Step 5: child keys continued from the previous state."""
    t1 = time.perf_counter()
    previous = st.read_table(run.con, "crosswalk")
    keys = st.read_table(run.con, "child_keys")
    decided_pairs = list(zip(effective.source_key_l, effective.source_key_r, effective.decision, strict=True)) if len(effective) else []
    assignment = assign_child_keys(clusters.labels, previous, keys, run_id=run.run_id, seq=run.seq, salt=run.salt,
                                   decided_pairs=decided_pairs)
    run.timings["keys"] = time.perf_counter() - t1
    return assignment


def _queue_reasons(run: _Run, pairs: pd.DataFrame, clusters: Clusters, guards: PairGuards,
                   d: PairDecisions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(each pair's queue reason, whether it is queued, whether its two source keys are one person)."""
    lower, prob, sibling = run.settings.thresholds.lower, d.prob, guards.sibling
    label = clusters.labels.set_index("source_key").cluster
    same_person = label.reindex(pairs.source_key_l).to_numpy() == label.reindex(pairs.source_key_r).to_numpy()
    reason = np.full(len(pairs), None, dtype=object)
    reason[(prob >= lower) & (prob < d.upper_of)] = "score_band"
    reason[sibling & (prob >= lower)] = "possible_sibling"
    refused = clusters.refused.set_index(["source_key_l", "source_key_r"]).reason if len(clusters.refused) else pd.Series(dtype=str)
    if len(refused):
        r = refused.reindex(d.pair_index).to_numpy(dtype=object)
        has = pd.notna(r) & d.linkable
        reason[has] = r[has]
    queue_mask = pd.notna(reason) & ~same_person & d.undecided & ~guards.parent & ~guards.concurrent
    # a guarded (possible sibling) pair is worth a reviewer's time only if the two persons could be
    # one: they hold no records of a common agency (twins are usually both known to an agency)
    if (sibling & queue_mask).any():
        lab = clusters.labels
        bit = np.left_shift(1, pd.Index(sorted(run.summary.source_keys)).get_indexer(lab.agency)).astype(np.int64)
        held = np.zeros(int(lab.cluster.max()) + 1, dtype=np.int64)
        np.bitwise_or.at(held, lab.cluster.to_numpy(), bit)
        ca = held[label.reindex(pairs.source_key_l).to_numpy()]
        cb = held[label.reindex(pairs.source_key_r).to_numpy()]
        queue_mask &= ~(sibling & ((ca & cb) != 0))
    return reason, queue_mask, same_person


def _review_queue(run: _Run, scored: _Scored, clusters: Clusters, guards: PairGuards, d: PairDecisions) -> _Queue:
    """Step 6: the clerical review queue (capped, with its audit sample)."""
    t1 = time.perf_counter()
    pairs, run_id = scored.pairs, run.run_id
    reason, queue_mask, same_person = _queue_reasons(run, pairs, clusters, guards, d)
    prev_queue = st.read_table(run.con, "review_queue")
    first_q = (prev_queue.set_index(["source_key_l", "source_key_r"]).first_queued_run
               if len(prev_queue) else pd.Series(dtype=str))
    q = pairs.loc[queue_mask, ["source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability", "match_weight"]].copy()
    q["reason"] = reason[queue_mask]
    q["levels"] = [st.dumps(x) for x in scored.levels.loc[queue_mask].to_dict("records")]
    q["weights"] = [st.dumps(x) for x in scored.weights.loc[queue_mask].to_dict("records")]
    fq = first_q.reindex(pd.MultiIndex.from_arrays([q.source_key_l, q.source_key_r])).to_numpy(dtype=object) if len(first_q) else np.full(len(q), None, dtype=object)
    q["first_queued_run"] = np.where(pd.isna(fq), run_id, fq)
    q.insert(0, "run_id", run_id)
    q, queue_cap = finish_queue(q, pairs, scored.levels, scored.weights, same_person & d.linkable,
                                persons=int(clusters.labels.cluster.nunique()), upper=run.settings.thresholds.upper,
                                upper_within=d.upper_within, run_id=run_id, dumps=st.dumps)
    run.timings["queue"] = time.perf_counter() - t1
    return _Queue(q, queue_cap, reason, queue_mask, same_person)


def _quality(run: _Run, scored: _Scored, clusters: Clusters, guards: PairGuards, d: PairDecisions,
             queue: _Queue, assignment: KeyAssignment) -> LinkageQuality:
    """Step 7: the run's quality, with estimates."""
    t1 = time.perf_counter()
    th, prob, s = run.settings.thresholds, d.prob, scored.scores
    lower, upper = th.lower, th.upper
    guard_counts = {
        "parent_child_pairs_blocked": int((guards.parent & (prob >= lower)).sum()),
        "possible_sibling_pairs": int((guards.sibling & (prob >= lower)).sum()),
        "concurrent_id_pairs": int((guards.concurrent & (prob >= lower)).sum()),
        "refused_joins": {k: int(v) for k, v in clusters.refused.reason.value_counts().sort_index().items()},
        "decisions_applied": {"match": int(d.forced.sum()), "non_match": int(d.refused_by_decision.sum())},
        "decisions_stored": int(len(scored.effective)),
    }
    key_note = _key_note(run.model, run.summary)
    quality = compute_quality(
        run_id=run.run_id, crosswalk=assignment.current, attributes=run.attrs, summary=run.summary, queue=queue.frame,
        scores={"record_comparisons_at_or_above_floor": s.scored_comparisons, "floor_match_weight": PREDICT_FLOOR_WEIGHT,
                "scored_source_key_pairs": s.scored_pairs,
                "match_probability_histogram": s.hist_run, "splink_match_probability_histogram": s.hist_splink,
                "pairs_at_or_above_upper": int((prob >= d.upper_of).sum()),
                "pairs_in_review_band": int(((prob >= lower) & (prob < d.upper_of)).sum()),
                "thresholds": {"lower": lower, "upper": upper, "upper_within_agency": d.upper_within}},
        guards=guard_counts, keys=assignment.counts, model=run.model.describe(), settings=run.settings.label,
        backend=run.backend,
        notes=[key_note] if key_note else [],
    )
    guarded = guards.parent | guards.sibling | guards.concurrent
    quality = with_estimates(quality, run.con, clusters.labels, scored.pairs, queue.same_person, guarded, lower, queue.cap)
    run.timings["quality"] = time.perf_counter() - t1
    return quality


def _audit_pairs(run: _Run, pairs: pd.DataFrame, guards: PairGuards, queue: _Queue) -> pd.DataFrame:
    """The run's scored pairs for audit (the state's ``pairs``): levels as gamma values, outcome and guard."""
    audit = pairs[["source_key_l", "source_key_r", "agency_l", "agency_r", "match_probability", "match_weight"]].copy()
    for comp in run.settings.comparisons:
        audit[f"gamma_{comp.name}"] = pairs[f"gamma_{comp.name}"].astype("int8")
    audit["outcome"] = np.where(queue.same_person, "same_person",
                                np.where(pd.notna(queue.reason) & queue.mask, "review", "apart"))
    audit["guard"] = np.where(guards.parent, "parent_child", np.where(guards.sibling, "possible_sibling",
                                                                      np.where(guards.concurrent, "concurrent_ids", None)))  # type: ignore[call-overload]
    return audit


def _write_state(run: _Run, scored: _Scored, assignment: KeyAssignment, queue: _Queue, audit: pd.DataFrame,
                 quality: LinkageQuality, counts: dict[str, Any], times: tuple[dt.datetime, dt.datetime]) -> None:
    """Step 8: the state, in one transaction (a failure leaves the previous state as it was)."""
    con, run_id, seq = run.con, run.run_id, run.seq
    started, finished = times
    con.execute("begin transaction")
    try:
        to_store = scored.to_store
        st.append(con, "decisions", to_store.assign(recorded_run=run_id, recorded_seq=seq) if len(to_store) else to_store)
        st.replace_table(con, "crosswalk", assignment.crosswalk)
        st.replace_table(con, "child_keys", assignment.child_keys)
        st.append(con, "history", assignment.history)
        st.replace_table(con, "review_queue", queue.frame)
        con.register("__c2c_audit", audit)
        audit_sql = "create or replace table " + st.qualified("pairs") + " as select ? as run_id, * from __c2c_audit"
        con.execute(audit_sql, [run_id])
        con.unregister("__c2c_audit")
        st.append(con, "quality", pd.DataFrame({"run_id": [run_id], "document": [st.dumps(quality.to_dict())]}))
        st.append(con, "runs", pd.DataFrame({
            "run_id": [run_id], "seq": [seq], "started_at": [started.isoformat()], "finished_at": [finished.isoformat()],
            "model_id": [run.model.model_id], "settings": [run.settings.label], "linkage_key_id": [run.summary.linkage_key_id],
            "summary": [st.dumps(counts)]}))
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    con.execute("checkpoint " + st.quote(st.CATALOG))


def _steps(run: _Run, new_decisions: pd.DataFrame, attributes: Mapping[str, pd.DataFrame] | None,
           chunk_records: int, times: tuple[dt.datetime, dt.datetime | None], db: Path) -> LinkageResult:
    """Steps 2 to 8 of a run over the records loaded in ``run.con`` (the module doc)."""
    scored = _score(run, new_decisions, chunk_records)
    t1 = time.perf_counter()
    guards = pair_guards(run.con, run.settings, scored.pairs, scored.levels, run.attrs, attributes, run.summary)
    decided = decide(run.settings, scored.pairs, scored.effective, guards)
    clusters = _persons(run, scored.pairs, guards, decided)
    run.timings["cluster"] = time.perf_counter() - t1
    assignment = _child_keys(run, clusters, scored.effective)
    queue = _review_queue(run, scored, clusters, guards, decided)
    quality = _quality(run, scored, clusters, guards, decided, queue, assignment)
    t1 = time.perf_counter()
    started = times[0]
    finished = dt.datetime.now(dt.UTC) if times[1] is None else started
    s, summary = scored.scores, run.summary
    counts = {"records": summary.rows, "source_keys": summary.source_keys, "variants": summary.variants,
              "record_comparisons": s.scored_comparisons, "scored_pairs": s.scored_pairs, "predict_chunks": s.chunks,
              "review_queue": len(queue.frame), "backend": run.backend, **assignment.counts}
    _write_state(run, scored, assignment, queue, _audit_pairs(run, scored.pairs, guards, queue), quality, counts,
                 (started, finished))
    run.timings["write"] = time.perf_counter() - t1
    return LinkageResult(run_id=run.run_id, crosswalk=assignment.current, history=assignment.history.reset_index(drop=True),
                         review_queue=queue.frame, quality=quality, model=run.model.describe(), counts=counts,
                         database=db, timings=run.timings)


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
    backend: str | None = None,
) -> LinkageResult:
    """Run linkage once and continue the persistent state in ``workdir`` (see the module doc).

    ``records_by_agency``: agency -> encodings frame(s) (all current files of its person extract).
    ``model``: from :func:`~data_sharing.linkage.model.train_model` / ``load_model``. ``previous_state``:
    a state database to continue from when ``workdir`` has none yet (e.g. a restored backup); by default
    the state already in ``workdir``. ``decisions``: new reviewer decisions (stored, then applied by this
    and every later run). ``attributes``: agency -> frame with ``source_key`` and any of ``sex``,
    ``race_ethnicity``, ``grade_level``, ``birth_date_year_month`` (non-identifying; for quality
    breakdowns and the parent/child guard). ``settings``: thresholds, blocking and guards to use
    instead of the model's (the comparisons must be the model's). ``backend``: ``duckdb`` or ``spark``
    (:mod:`.backend`; None: this process's configured backend).
    """
    t0 = time.perf_counter()
    backend = linkage_backend(backend)
    timings: dict[str, float] = {}
    started = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    settings = _run_settings(run_id, model, settings)
    area = LinkageArea.of(workdir)
    db = _state_database(area, previous_state)
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
        timings["records"] = time.perf_counter() - t0
        run = _Run(con, run_id, seq, salt, model, settings, summary, attrs, timings, backend, area)
        result = _steps(run, new_decisions, attributes, predict_chunk_records, (started, now), db)
    finally:
        con.close()
    timings["total"] = time.perf_counter() - t0  # result.timings is this dict
    return result


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
