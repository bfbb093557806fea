"""Scoring a linkage run's pairs: Splink's prediction over the settings' blocking rules, then each pair of
source keys scored as its best pair of variants, its weight shifted by its agency pair type's prior
(:func:`data_sharing.linkage.model._pair_type_priors`); comparison levels recomputed from the settings'
SQL for the pairs that matter (at or above the lower threshold, or decided by a reviewer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from data_sharing.linkage import state as st
from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.backend import spark_linker, spark_work, splink_for_dialect
from data_sharing.linkage.model import LinkageModel, make_linker, pair_type, quiet_splink
from data_sharing.linkage.records import RecordSummary
from data_sharing.linkage.settings import LinkageSettings

PREDICT_FLOOR_WEIGHT = -10.0  # Splink match weight below which scored pairs are not kept (p < 0.001)
#: Records (variants) per side of one predict chunk. Splink joins every candidate pair to both records;
#: with all of a state's records on each side those joins outgrow DuckDB's memory and spill the wide
#: joined rows (70 GB at 1.5M children), so above this the pairs are scored in n x n chunks of ~n-ths
#: of the records each (``predict(num_chunks_left=n, num_chunks_right=n)``). A city is one chunk.
PREDICT_CHUNK_RECORDS = 1_000_000


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


@dataclass(frozen=True)
class Scores:
    """What the scoring pass counted (the scored pairs are the working table ``__c2c_scored``)."""

    chunks: int  # predict chunks per side
    scored_pairs: int  # pairs of source keys
    scored_comparisons: int  # pairs of records (variants) at or above the floor
    hist_run: dict[str, int]  # match probability after the pair-type shift
    hist_splink: dict[str, int]  # Splink's own


#: the prediction columns the run reads
PREDICTION_COLUMNS = ["match_weight", "match_probability", "rid_l", "rid_r", "agency_l", "agency_r",
                      "source_key_l", "source_key_r"]


def predict(con: Any, model: LinkageModel, settings: LinkageSettings, summary: RecordSummary,
            chunk_records: int, *, backend: str = "duckdb", area: LinkageArea | None = None) -> tuple[str, int]:
    """Splink's prediction over the records table: (the predictions' table in ``con``, chunks per side).

    ``backend`` ``spark``: Spark scores the pairs (:mod:`.backend`) and its predictions are loaded into
    ``con``; one chunk (Spark partitions the work itself)."""
    splink_settings = dict(model.splink)
    fresh = settings.splink_settings(retain=("agency", "source_key"))
    for k in ("blocking_rules_to_generate_predictions", "additional_columns_to_retain", "unique_id_column_name",
              "retain_matching_columns", "retain_intermediate_calculation_columns", "link_type"):
        splink_settings[k] = fresh[k]
    n_records = sum(summary.variants.values())
    if n_records < 2:
        con.execute("create or replace table __c2c_empty_pred (match_weight double, match_probability double, "
                    "rid_l bigint, rid_r bigint, agency_l varchar, agency_r varchar, source_key_l varchar, "
                    "source_key_r varchar)")
        return "__c2c_empty_pred", 1
    if backend == "spark":
        if area is None:
            raise ValueError("predict: the spark backend needs the linkage area")
        with quiet_splink(), spark_work(con, area) as work:
            linker = spark_linker(work, splink_for_dialect(splink_settings, settings, "spark"))
            # the floor is applied after Splink's (lineage-breaking) predict table, not by Splink: its
            # ``where match_weight >= x`` lets Spark push the whole weight expression into the join,
            # re-evaluating every comparison's levels per branch (docs/benchmarks.md, "Linkage on Spark")
            pred = linker.inference.predict()
            return work.predictions_to_duckdb(con, pred, PREDICTION_COLUMNS, "__c2c_spark_pred",
                                              min_weight=PREDICT_FLOOR_WEIGHT), 1
    with quiet_splink():
        linker = make_linker(con, "records", splink_settings)
        # pairs below 2^-10 odds (p < 0.001) are never near a threshold: not materialised
        chunks = max(1, -(-n_records // max(1, chunk_records)))
        pred = linker.inference.predict(threshold_match_weight=PREDICT_FLOOR_WEIGHT, warning_mode="never",
                                        num_chunks_left=chunks if chunks > 1 else None,
                                        num_chunks_right=chunks if chunks > 1 else None)
    return pred.physical_name, chunks


_SCORED_SQL = """create or replace temp table __c2c_scored as
    with x as (
        select least(source_key_l, source_key_r) a, greatest(source_key_l, source_key_r) b,
               least(agency_l, agency_r) pa, greatest(agency_l, agency_r) pb,
               arg_max(struct_pack(rid_l := rid_l, rid_r := rid_r, w := match_weight, p := match_probability,
                                   aa := case when source_key_l < source_key_r then agency_l else agency_r end,
                                   ab := case when source_key_l < source_key_r then agency_r else agency_l end),
                       struct_pack(w := match_weight, l := -rid_l, r := -rid_r)) as best
        from {pred} group by 1, 2, 3, 4),
    y as (
        select x.a, x.b, x.best.aa as agency_a, x.best.ab as agency_b, x.best.rid_l as rid_l,
               x.best.rid_r as rid_r, x.best.w as splink_weight, x.best.p as splink_probability,
               x.best.w + coalesce(sh.shift, 0.0) as match_weight
        from x left join __c2c_shift sh on sh.pa = x.pa and sh.pb = x.pb)
    select *, case when match_weight >= 0 then 1.0 / (1.0 + pow(2.0, -match_weight))
                   else pow(2.0, match_weight) / (1.0 + pow(2.0, match_weight)) end as match_probability
    from y"""


def aggregate(con: Any, model: LinkageModel, pred_table: str, agencies: list[str], chunks: int) -> Scores:
    """Each pair of source keys as its best pair of variants, shifted by its pair type's prior (``__c2c_scored``)."""
    shifts = pd.DataFrame([(a, b, model.weight_shift(pair_type(a, b)))
                           for i, a in enumerate(agencies) for b in agencies[i:]], columns=["pa", "pb", "shift"])
    con.register("__c2c_shift", shifts)
    con.execute(_SCORED_SQL.format(pred=st.quote(pred_table)))
    con.unregister("__c2c_shift")
    scored_pairs = int(con.execute("select count(*) from __c2c_scored").fetchall()[0][0])
    count_sql = "select count(*) from " + st.quote(pred_table)
    scored_comparisons = int(con.execute(count_sql).fetchall()[0][0])
    return Scores(chunks=chunks, scored_pairs=scored_pairs, scored_comparisons=scored_comparisons,
                  hist_run=_histogram(con, "__c2c_scored", "match_probability"),
                  hist_splink=_histogram(con, pred_table, "match_probability"))


def select_pairs(con: Any, effective: pd.DataFrame, lower: float) -> None:
    """The pairs that matter (``__c2c_pairs``): at or above ``lower``, or decided by a reviewer."""
    con.register("__c2c_decided", effective[["source_key_l", "source_key_r"]] if len(effective)
                 else pd.DataFrame({"source_key_l": pd.Series([], dtype=str), "source_key_r": pd.Series([], dtype=str)}))
    con.execute(
        """create or replace temp table __c2c_pairs as
        select * from __c2c_scored s where s.match_probability >= ?
           or exists (select 1 from __c2c_decided d where d.source_key_l = s.a and d.source_key_r = s.b)""",
        [float(lower)],
    )
    con.unregister("__c2c_decided")


def pair_levels(con: Any, model: LinkageModel, settings: LinkageSettings) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the selected pairs with their gamma values, their level names, their level weights)."""
    gam = con.execute(_gamma_sql(settings, "__c2c_pairs", "records")).df()
    pairs = con.execute(
        "select a as source_key_l, b as source_key_r, agency_a as agency_l, agency_b as agency_r, rid_l, rid_r, "
        "match_weight, match_probability, splink_probability from __c2c_pairs order by a, b"
    ).df()
    pairs = pairs.merge(gam, on=["rid_l", "rid_r"], how="left")
    levels = _level_names(settings, pairs)
    return pairs, levels, _level_weights(model, settings, levels)
