"""The trained Fellegi-Sunter model: trained with Splink (u by random sampling, m by EM), saved as a
versioned JSON artefact in the linkage area, reused by every nightly run until retrained on demand.

Artefact (``<workdir>/models/<model_id>.json``, written atomically, never overwritten)::

    {"format": "c2c-linkage-model", "format_version": 1,
     "model_id": "lm-20261123T063000Z-1a2b3c4d",        # trained-at + hash of the parameters
     "trained_at": "...", "splink_version": "5.0.0",
     "linkage_key_id": "linkage/v1/abc...",              # the key the training encodings were made with
     "settings": {...}, "settings_label": "c2c-person-linkage/v3/<fingerprint>",
     "training": {"records": {...}, "source_keys": {...}, "u_max_pairs": ..., "seed": ...,
                  "prior": ..., "em_sessions": [...], "untrained_levels": [...], "filled_defaults": {...},
                  "pair_type_priors": {"global": ..., "by_pair_type": {"fhd|fps": {"lambda": ...,
                                       "weight_shift": ...}, "fps|fps": {...}, ...}}},
     "parameters": {"<comparison>": {"<level>": {"m": ..., "u": ..., "bayes_factor": ...}}},
     "splink": {...}}                                     # Splink's own model JSON (m, u, lambda)

The model holds no identifier and no encoding: only level probabilities and counts. Term-frequency
tables are not stored; they are recomputed from each run's records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import duckdb
import numpy as np
import pandas as pd

from data_sharing.linkage.area import LinkageArea
from data_sharing.linkage.backend import linkage_backend, spark_linker, spark_work, splink_for_dialect
from data_sharing.linkage.records import LinkageInputError, RecordSummary, load_records
from data_sharing.linkage.settings import LinkageSettings, load_settings, parse_settings

MODEL_FORMAT = "c2c-linkage-model"
MODEL_FORMAT_VERSION = 1
_SPLINK_LOGGERS = ("splink",)


class LinkageModelError(ValueError):
    """A model artefact is missing, malformed, or does not fit the settings or data it is used with."""


@dataclass(frozen=True)
class LinkageModel:
    model_id: str
    trained_at: str
    linkage_key_id: str | None
    settings: LinkageSettings
    splink: dict[str, Any]
    training: dict[str, Any]
    parameters: dict[str, Any]
    splink_version: str
    path: Path | None = None

    @property
    def probability_two_random_records_match(self) -> float:
        return float(self.splink["probability_two_random_records_match"])

    def weight_shift(self, pair_type: str) -> float:
        """Bits added to a pair's Splink match weight for its agency pair type (0 if not estimated)."""
        by = (self.training.get("pair_type_priors") or {}).get("by_pair_type") or {}
        entry = by.get(pair_type)
        return float(entry["weight_shift"]) if entry else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "model_id": self.model_id,
            "trained_at": self.trained_at,
            "splink_version": self.splink_version,
            "linkage_key_id": self.linkage_key_id,
            "settings_label": self.settings.label,
            "settings": self.settings.model_dump(mode="json", by_alias=True, exclude_defaults=False),
            "training": self.training,
            "parameters": self.parameters,
            "splink": self.splink,
        }

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise LinkageModelError(f"{path} exists: a model artefact is never overwritten")
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def describe(self) -> dict[str, Any]:
        """What a run records about the model it used (no parameters)."""
        return {"model_id": self.model_id, "trained_at": self.trained_at, "linkage_key_id": self.linkage_key_id,
                "settings": self.settings.label, "path": str(self.path) if self.path else None,
                "trained_on": str(self.training.get("backend", "duckdb"))}


def load_model(path: Path | str) -> LinkageModel:
    """Read a model artefact written by :func:`train_model`; errors say what is wrong with it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LinkageModelError(f"{path}: no such linkage model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LinkageModelError(f"{path}: not a readable linkage model ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise LinkageModelError(f"{path}: not a {MODEL_FORMAT} file")
    if data.get("format_version") != MODEL_FORMAT_VERSION:
        raise LinkageModelError(f"{path}: format_version {data.get('format_version')!r}, expected {MODEL_FORMAT_VERSION}")
    for key in ("model_id", "trained_at", "settings", "splink", "training", "parameters"):
        if key not in data:
            raise LinkageModelError(f"{path}: missing key {key!r}")
    settings = parse_settings(data["settings"], f"{path}#settings")
    splink = data["splink"]
    for comp in splink.get("comparisons", []):
        for lv in comp.get("comparison_levels", []):
            if lv.get("is_null_level"):
                continue
            for p in ("m_probability", "u_probability"):
                v = lv.get(p)
                if v is not None and not (isinstance(v, int | float) and 0 <= v <= 1):
                    raise LinkageModelError(f"{path}: {comp.get('output_column_name')}.{lv.get('label_for_charts')}.{p} is not a probability")
    return LinkageModel(
        model_id=str(data["model_id"]), trained_at=str(data["trained_at"]), linkage_key_id=data.get("linkage_key_id"),
        settings=settings, splink=splink, training=data["training"], parameters=data["parameters"],
        splink_version=str(data.get("splink_version", "")), path=path,
    )


# ----------------------------------------------------------------------------------------------
# DuckDB / Splink plumbing shared with the run
# ----------------------------------------------------------------------------------------------


MEMORY_LIMIT_ENV = "C2C_LINKAGE_MEMORY_LIMIT"
#: of the physical memory (DuckDB's own default is 0.8): the run's pandas frames live outside DuckDB's
#: limit and at state scale take as much again (1.5M children: limit 4 GiB, peak RSS 11.2 GiB; with a
#: quarter, 5.9 GiB, over 13 GiB; docs/benchmarks.md)
DEFAULT_MEMORY_FRACTION = 1 / 6
DEFAULT_MEMORY_CAP_GIB = 8


_configured_memory_limit: str | None = None


def configure_memory_limit(memory_limit: str | None) -> None:
    """This process's default DuckDB memory limit for linkage (``C2C_LINKAGE_MEMORY_LIMIT``, read by
    ``pipelines.settings``); None: a sixth of the physical memory, at most 8 GiB."""
    global _configured_memory_limit
    _configured_memory_limit = (memory_limit or "").strip() or None


def linkage_memory_limit(memory_limit: str | None = None) -> str:
    """The DuckDB ``memory_limit`` linkage runs with: ``memory_limit`` if given, else this process's
    default (:func:`configure_memory_limit`, from ``C2C_LINKAGE_MEMORY_LIMIT``: a DuckDB size such as ``12GiB`` or ``60%``), else a sixth
    of the physical memory, at most 8 GiB. DuckDB spills what does not fit to the linkage area's
    ``duckdb_tmp``; the limit covers DuckDB's buffers, not the pandas frames of the run.
    """
    value = (memory_limit or _configured_memory_limit or "").strip()
    if value:
        return value
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 0
    cap = DEFAULT_MEMORY_CAP_GIB * 2**30
    limit = min(int(physical * DEFAULT_MEMORY_FRACTION), cap) if physical > 0 else cap
    return f"{max(limit // 2**20, 256)}MiB"


def work_connection(workdir: LinkageArea | Path | str, *, threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for Splink whose spill files stay in the linkage area.

    Memory: :func:`linkage_memory_limit` (the argument, else the configured default, else a
    sixth of the physical memory capped at 8 GiB); what does not fit spills to ``<workdir>/duckdb_tmp``.
    """
    tmp = LinkageArea.of(workdir).duckdb_tmp
    tmp.mkdir(parents=True, exist_ok=True)
    limit = linkage_memory_limit(memory_limit)
    config: dict[str, Any] = {"temp_directory": str(tmp), "memory_limit": limit}
    if threads:
        config["threads"] = int(threads)
    try:
        return duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        source = "memory_limit" if memory_limit else MEMORY_LIMIT_ENV
        raise ValueError(f"{source}={limit!r} is not a DuckDB memory size such as '8GiB', '8000MB' or '50%' "
                         f"({exc.__class__.__name__})") from None


@contextmanager
def quiet_splink(level: int = logging.WARNING) -> Iterator[None]:
    """Splink logs at INFO by default; keep run logs to counts (never values) and warnings."""
    loggers = [logging.getLogger(n) for n in _SPLINK_LOGGERS]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old, strict=True):
            lg.setLevel(lv)


def make_linker(con: duckdb.DuckDBPyConnection, table: str, settings: dict[str, Any]) -> Any:
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(con)
    sdf = db_api.register(table)
    return Linker(sdf, settings, log_level=None)


def drop_splink_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Remove Splink's working tables (``__splink__*``) from the database."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables "
        "where table_schema = current_schema() and table_name like '\\_\\_splink\\_\\_%' escape '\\'"
    ).fetchall()
    for name, kind in rows:
        quoted = '"' + str(name).replace('"', '""') + '"'
        con.execute(("drop view if exists " if kind == "VIEW" else "drop table if exists ") + quoted)


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------


def _parameters(splink: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for comp in splink.get("comparisons", []):
        levels: dict[str, Any] = {}
        for lv in comp.get("comparison_levels", []):
            if lv.get("is_null_level"):
                continue
            m, u = lv.get("m_probability"), lv.get("u_probability")
            bf = (m / u) if isinstance(m, int | float) and isinstance(u, int | float) and u > 0 else None
            levels[lv.get("label_for_charts", "?")] = {
                "m": m, "u": u, "bayes_factor": bf, "match_weight": math.log2(bf) if bf and bf > 0 else None,
            }
        out[comp.get("output_column_name", "?")] = levels
    return out


def _check_trained(splink: Mapping[str, Any]) -> list[str]:
    """Levels left without an m or u estimate (Splink then uses defaults): reported, not fatal."""
    missing = []
    for comp in splink.get("comparisons", []):
        for lv in comp.get("comparison_levels", []):
            if lv.get("is_null_level"):
                continue
            for p in ("m_probability", "u_probability"):
                if not isinstance(lv.get(p), int | float):
                    missing.append(f"{comp.get('output_column_name')}.{lv.get('label_for_charts')}.{p[0]}")
    return missing


def logit2(p: float) -> float:
    return math.log2(p / (1.0 - p))


def pair_type(a: str, b: str) -> str:
    """The agency pair of two records, order-free: ``dhs|fps``; ``fps|fps`` for two records of one agency."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


def _pair_type_priors(query: Callable[[str], pd.DataFrame], linker: Any, summary: RecordSummary, prior: float,
                      quote: Callable[[str], str] = lambda n: '"' + n.replace('"', '""') + '"') -> dict[str, Any]:
    """The probability that two random records match, per agency pair (within one agency, across two).

    One global prior mixes pairs of very different kinds: two ids of one agency are rarely one person
    (the agency gives each person one id), a school and a clinic record often are. For each pair type
    t, lambda_t is the EM fixed point lambda = sum_i P(match_i | lambda) / N_t over the scored pairs of
    source keys of that type (N_t: all pairs of source keys of that type), with m and u fixed. A run
    shifts each pair's match weight by logit2(lambda_t) - logit2(lambda): within-agency uniqueness of
    ids becomes evidence, learnt from the data rather than assumed.
    """
    pred = linker.inference.predict(threshold_match_weight=-30)
    table = quote(str(pred.physical_name))
    sql = ("select least(agency_l, agency_r) a, greatest(agency_l, agency_r) b, max(match_weight) w from " + table
           + " group by least(source_key_l, source_key_r), greatest(source_key_l, source_key_r), 1, 2")
    rows = query(sql)
    base = logit2(prior)
    out: dict[str, Any] = {"global": prior, "by_pair_type": {}}
    agencies = sorted(summary.source_keys)
    for i, a in enumerate(agencies):
        for b in agencies[i:]:
            na, nb = summary.source_keys[a], summary.source_keys[b]
            n_pairs = na * (na - 1) / 2 if a == b else na * nb
            if n_pairs <= 0:
                continue
            w = rows[(rows.a == a) & (rows.b == b)].w.to_numpy(dtype=float) - base
            lam = prior
            for _ in range(200):
                z = w + logit2(lam)
                expected = float((1.0 / (1.0 + np.exp2(-np.clip(z, -60, 60)))).sum())
                new = min(max(expected / n_pairs, 1e-12), 0.5)
                if abs(math.log(new) - math.log(lam)) < 1e-6:
                    lam = new
                    break
                lam = new
            out["by_pair_type"][pair_type(a, b)] = {"lambda": lam, "pairs": n_pairs,
                                                    "expected_matches": lam * n_pairs,
                                                    "weight_shift": logit2(lam) - base}
    pred.drop_table_from_database_and_remove_from_cache()
    return out


UNTRAINED_M = 1e-4  # a level EM never saw among matches: rare among matches, conservatively


def _fill_untrained(splink: dict[str, Any], u_max_pairs: float) -> dict[str, float]:
    """Give levels left without an estimate a conservative value; returns what was filled.

    A level never met in the u sample is rarer among non-matches than 1 in ``u_max_pairs`` (u set to
    that bound, which under-states its weight); a level EM never met among matches gets m = 1e-4.
    """
    filled: dict[str, float] = {}
    for comp in splink.get("comparisons", []):
        for lv in comp.get("comparison_levels", []):
            if lv.get("is_null_level"):
                continue
            name = f"{comp.get('output_column_name')}.{lv.get('label_for_charts')}"
            if not isinstance(lv.get("u_probability"), int | float):
                lv["u_probability"] = filled[f"{name}.u"] = 1.0 / float(u_max_pairs)
            if not isinstance(lv.get("m_probability"), int | float):
                lv["m_probability"] = filled[f"{name}.m"] = UNTRAINED_M
    return filled


def _floor_m(splink: dict[str, Any]) -> dict[str, float]:
    """Raise an m that EM drove below :data:`UNTRAINED_M` to it; returns the levels raised (their m before).

    Issue 14: a city whose records never show, say, a wrong birth month trained m = 3e-11 for that level,
    a weight of -25 bits that no other evidence outweighs in a city whose records do show it. What one
    training city never saw is not evidence against a match: it weighs as a level never met.
    """
    raised: dict[str, float] = {}
    for comp in splink.get("comparisons", []):
        for lv in comp.get("comparison_levels", []):
            m = lv.get("m_probability")
            if not lv.get("is_null_level") and isinstance(m, int | float) and m < UNTRAINED_M:
                raised[f"{comp.get('output_column_name')}.{lv.get('label_for_charts')}"] = float(m)
                lv["m_probability"] = UNTRAINED_M
    return raised


def _with_other_keys(sql: str) -> str:
    return f"({sql}) and l.source_key <> r.source_key"


def train_model(
    records: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
    settings: LinkageSettings | None = None,
    *,
    workdir: LinkageArea | Path | str,
    save: bool = True,
    now: dt.datetime | None = None,
    backend: str | None = None,
) -> LinkageModel:
    """Train the Fellegi-Sunter model on one night's encodings (all agencies) and save it.

    ``records``: agency -> encodings frame(s) (see :mod:`data_sharing.linkage.records`). Steps: the
    prior (probability that two random records match) from the settings' deterministic rules and
    their assumed recall; u by random sampling (``training.u_max_pairs``, seeded); m by EM, one session
    per ``training.em_blocking_rules`` (u fixed). Splink works in an in-memory DuckDB database that
    spills to ``workdir``. Saved as ``<workdir>/models/<model_id>.json`` when ``save``. ``backend``:
    ``duckdb`` or ``spark`` (:mod:`.backend`; None: this process's configured backend); the saved model
    is the same file either way (its Splink SQL in DuckDB's dialect, regenerated for the backend using it).
    """
    import splink

    settings = settings or load_settings()
    backend = linkage_backend(backend)
    area = LinkageArea.of(workdir)
    con = work_connection(area)
    try:
        summary: RecordSummary = load_records(con, records, settings)
        total = sum(summary.variants.values())
        if total < 50:
            raise LinkageInputError(f"too few records to train a model ({total}); at least 50 are needed")
        with quiet_splink(logging.ERROR), _training_backend(con, area, backend) as (new_linker, query):
            model_dict, sessions, untrained, filled, floored, priors = _estimate(settings, summary, new_linker, query, backend)
        drop_splink_tables(con)
    finally:
        con.close()
    model_dict = splink_for_dialect(model_dict, settings, "duckdb")
    model_dict.pop("linker_uid", None)
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    params = _parameters(model_dict)
    digest = hashlib.sha256(json.dumps([params, model_dict.get("probability_two_random_records_match")],
                                       sort_keys=True, default=str).encode()).hexdigest()[:8]
    model_id = f"lm-{when:%Y%m%dT%H%M%SZ}-{digest}"
    tr = settings.training
    training = {
        "records": summary.rows, "source_keys": summary.source_keys, "variants": summary.variants,
        "u_max_pairs": tr.u_max_pairs, "em_max_pairs": tr.em_max_pairs, "seed": tr.seed, "backend": backend,
        "prior": {"recall": tr.prior.recall, "rules": tr.prior.deterministic_rules,
                  "probability_two_random_records_match": model_dict.get("probability_two_random_records_match")},
        "em_sessions": sessions, "untrained_levels": untrained, "filled_defaults": filled, "m_floored": floored,
        "pair_type_priors": priors,
    }
    model = LinkageModel(model_id=model_id, trained_at=when.isoformat(), linkage_key_id=summary.linkage_key_id,
                         settings=settings, splink=model_dict, training=training, parameters=params,
                         splink_version=splink.__version__)
    if save:
        path = model.save(area.model_file(model_id))
        model = LinkageModel(**{**model.__dict__, "path": path})
    return model


@contextmanager
def _training_backend(con: duckdb.DuckDBPyConnection, area: LinkageArea,
                      backend: str) -> Iterator[tuple[Callable[[dict[str, Any]], Any], Callable[[str], pd.DataFrame]]]:
    """(a function making a Splink linker over the records from a settings dict, a SQL query on the backend)."""
    if backend == "spark":
        with spark_work(con, area) as work:
            yield (lambda d: spark_linker(work, d)), work.query
        return
    yield (lambda d: make_linker(con, "records", d)), (lambda sql: con.execute(sql).df())


def _estimate(settings: LinkageSettings, summary: RecordSummary, new_linker: Callable[[dict[str, Any]], Any],
              query: Callable[[str], pd.DataFrame], backend: str) -> tuple[Any, ...]:
    """The training steps on one backend: (Splink's model, EM sessions, untrained, filled, floored, pair-type priors)."""
    tr = settings.training
    linker = new_linker(settings.splink_settings(retain=("agency", "source_key"), dialect=backend))
    linker.training.estimate_probability_two_random_records_match(
        [_with_other_keys(r) for r in tr.prior.deterministic_rules], recall=tr.prior.recall
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=tr.u_max_pairs, seed=tr.seed)
    sessions = []
    for rule in tr.em_blocking_rules:
        sess = linker.training.estimate_parameters_using_expectation_maximisation(
            _with_other_keys(rule.sql_for(backend)),
            estimate_without_term_frequencies=True,
            max_pairs=tr.em_max_pairs,
        )
        iters = getattr(sess, "_iteration_history", None)
        sessions.append({"rule": rule.name, "iterations": len(iters) if iters is not None else None})
    model_dict = linker.misc.save_model_to_json()
    untrained = _check_trained(model_dict)
    filled = _fill_untrained(model_dict, tr.u_max_pairs)
    floored = _floor_m(model_dict)
    linker = new_linker({**model_dict, **{k: v for k, v in settings.splink_settings(
        retain=("agency", "source_key"), dialect=backend).items() if k != "comparisons"}})
    priors = _pair_type_priors(query, linker, summary, float(model_dict["probability_two_random_records_match"]),
                               **({"quote": lambda n: "`" + n.replace("`", "``") + "`"} if backend == "spark" else {}))
    return model_dict, sessions, untrained, filled, floored, priors
