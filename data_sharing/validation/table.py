"""Validating one extract table (or one agency's drop) against its contract's suite."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from data_sharing.validation.drift import _drift_explanation, _drift_params, _profile
from data_sharing.validation.engines import _Eval, _gx_evaluations, _MaskEngine, _resolve, suite_for
from data_sharing.validation.results import MAX_PARTIAL, OUTCOME_RANK, DriftPolicy, Engine, ExpectationSummary, ExtractProfile
from data_sharing.validation.results import Problem, ValidationInputError, ValidationResult
from data_sharing.validation.view import _as_array, _attach_references, _build_view, _group_ids, _shared, _trim_and_blank, _View
from schemas import gx_suite as gs
from schemas.contracts import ExtractContract

_HEADER_ECHO_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def _masked_partial(values: list[Any], shows_values: bool) -> tuple[Any, ...]:
    return tuple(values[:MAX_PARTIAL]) if shows_values else ()


def validate_table(
    table: pa.Table,
    contract: ExtractContract,
    *,
    file_name: str | None = None,
    references: Mapping[str, pa.Table] | None = None,
    previous: ExtractProfile | None = None,
    drift: DriftPolicy | None = None,
    engine: Engine = "masks",
) -> ValidationResult:
    """Validate one extract (a table of strings as :func:`data_sharing.intake._read_body` gives it).

    ``references``: other extracts of the same agency (by extract name) that this one's references
    point to, normally the other files of the same drop (or the current accepted snapshot); a
    reference whose extract is not given is not checked (a note says so). ``previous``: the profile
    of the previous accepted extract of the same kind, for drift checks (none without it).

    Raises :class:`ValidationInputError` (never with a value from the file) if Arrow cannot process it.
    """
    try:
        return _validate_table(table, contract, file_name, references, previous, drift, engine)
    except pa.ArrowException as exc:
        # Arrow's messages may quote cell values: name the kind of failure only.
        raise ValidationInputError(
            "unprocessable", f"The file could not be validated ({type(exc).__name__}); the message is withheld "
            "because it may quote the file's content."
        ) from None


def _validate_table(
    table: pa.Table,
    contract: ExtractContract,
    file_name: str | None,
    references: Mapping[str, pa.Table] | None,
    previous: ExtractProfile | None,
    drift: DriftPolicy | None,
    engine: Engine,
) -> ValidationResult:
    policy = drift or DriftPolicy()
    suite = suite_for(contract)
    header = list(table.column_names)
    # 0. Columns the contract does not know refuse the file (intake's MOU check normally comes first).
    problems = _unknown_columns(header, contract)

    # 1. Trimmed strings, blanks as nulls; absent optional columns as all-null.
    present = {c for c in header if c in contract.columns}
    raw_full, original = _trimmed_columns(table, contract, present)

    # 2. Exact duplicate rows count once: find candidates by key, confirm on every column of the file.
    key_gids: dict[tuple[str, ...], np.ndarray] = {}
    keep, dup_rows, dup_first = _exact_duplicates(table, contract, raw_full, present, key_gids)
    if dup_rows.size:
        take = pa.array(keep)
        raw = {c: a.take(take) for c, a in raw_full.items()}
    else:
        raw = raw_full
    problems.extend(_duplicate_problems(dup_rows, dup_first))

    # 3. The view, references, drift parameters.
    view = _build_view(contract, raw, present, int(keep.size))
    for cols, gid in key_gids.items():
        view._cache[("gid", cols)] = gid[keep] if dup_rows.size else gid
    _attach_references(view, references)
    params = _drift_params(contract, previous, policy)

    # 4. Evaluate every expectation of the suite.
    expectations = list(suite.expectations)
    evals = _evaluate(view, suite, expectations, params, engine)

    # 5. Problems, row outcomes, summary.
    severity, summaries = _judge(view, expectations, evals, params, previous, policy, keep, original, problems)
    notes: list[str] = list(view.ref_notes.values())
    if previous is None:
        notes.append("Drift was not checked: no previous accepted extract of this kind was given.")

    # 6. Outcome of the file and of each row.
    refused = any(p.outcome == "refuse_file" for p in problems)
    problems.sort(key=lambda p: (p.row_number is not None, p.row_number or 0))
    if refused:
        accepted_idx = np.zeros(0, np.int64)
        quarantined_idx = np.zeros(0, np.int64)
    else:
        accepted_idx = keep[severity < OUTCOME_RANK["quarantine_row"]]
        quarantined_idx = keep[severity >= OUTCOME_RANK["quarantine_row"]]
    return ValidationResult(
        agency=contract.agency,
        extract=contract.extract,
        suite_name=suite.name,
        file_name=file_name,
        engine=engine,
        rows_in=table.num_rows,
        duplicate_rows=int(dup_rows.size),
        accepted=int(accepted_idx.size),
        quarantined=int(quarantined_idx.size),
        refused=table.num_rows if refused else 0,
        problems=problems,
        expectations=summaries,
        profile=_profile(view),
        notes=notes,
        accepted_indices=accepted_idx,
        quarantined_indices=quarantined_idx,
        duplicate_indices=dup_rows,
        suite_parameters=params,
        _suite=suite,
    )


def _unknown_columns(header: list[str], contract: ExtractContract) -> list[Problem]:
    """A refusal for every column the contract does not know (its name echoed only when it looks like one)."""
    problems = []
    for pos, name in [(i + 1, c) for i, c in enumerate(header) if c not in contract.columns]:
        shown = name if _HEADER_ECHO_RE.match(name) else f"number {pos}"
        problems.append(
            Problem(None, None, "unknown_column", "refuse_file",
                    f"The column {shown} is not part of the {contract.extract} extract; remove it and send the file again.")
        )
    return problems


def _trimmed_columns(
    table: pa.Table, contract: ExtractContract, present: set[str]
) -> tuple[dict[str, pa.Array], dict[str, pa.Array]]:
    """(contract column -> trimmed strings with blanks as nulls, all-null when absent; column -> text as sent)."""
    raw_full: dict[str, pa.Array] = {}
    original: dict[str, pa.Array] = {}
    for c in contract.columns:
        if c in present:
            original[c] = _as_array(table.column(c))
            raw_full[c] = _trim_and_blank(original[c])
        else:
            raw_full[c] = pa.nulls(table.num_rows, pa.string())
    return raw_full, original


def _duplicate_problems(dup_rows: np.ndarray, dup_first: np.ndarray) -> list[Problem]:
    return [
        Problem(r + 1, None, "duplicate_row", "warn", f"This row exactly repeats data row {first + 1:,}; it counts once.")
        for r, first in zip(dup_rows.tolist(), dup_first.tolist(), strict=True)
    ]


def _evaluate(view: _View, suite: Any, expectations: list[Any], params: Mapping[str, Any], engine: Engine) -> list[_Eval]:
    if engine == "masks":
        mask_engine = _MaskEngine(view, params)
        return [mask_engine.evaluate(e) for e in expectations]
    if engine == "gx":
        return _gx_evaluations(view, suite, params)
    raise ValueError(f"engine must be 'masks' or 'gx', not {engine!r}")


def _judge(
    view: _View,
    expectations: list[Any],
    evals: list[_Eval],
    params: Mapping[str, Any],
    previous: ExtractProfile | None,
    policy: DriftPolicy,
    keep: np.ndarray,
    original: Mapping[str, pa.Array],
    problems: list[Problem],
) -> tuple[np.ndarray, list[ExpectationSummary]]:
    """Append each expectation's problems to ``problems``; the worst outcome per view row and the summaries."""
    severity = np.zeros(view.n, dtype=np.int8)
    reported: dict[str, np.ndarray] = {}
    summaries: list[ExpectationSummary] = []
    for expectation, ev in zip(expectations, evals, strict=True):
        meta = gs.check_meta(expectation)
        kw = {k: _resolve(v, params) for k, v in expectation.configuration.kwargs.items()}
        outcome = policy.outcome if meta.is_drift else meta.outcome
        skipped = _skip_reason(meta, view, previous, policy)
        if skipped is not None:
            summaries.append(
                ExpectationSummary(expectation.expectation_type, meta.rule, meta.kind, meta.columns, outcome,
                                   False, None, note=skipped)
            )
            continue
        partial: list[Any] = []
        if ev.unexpected is not None and ev.unexpected_count:
            rows = np.flatnonzero(ev.unexpected)
            severity[rows] = np.maximum(severity[rows], OUTCOME_RANK[outcome])
            problems.extend(
                _row_problems(view, meta, expectation.expectation_type, outcome, rows, keep, reported, original)
            )
            if meta.shows_values:
                partial = _values_at(view, meta, rows[:MAX_PARTIAL], keep, original)
        elif ev.unexpected is None and ev.success is False:
            problems.append(
                Problem(None, meta.column, meta.rule, outcome,
                        _drift_explanation(meta, ev, previous, policy, kw) if meta.is_drift and previous else meta.explain,
                        None, expectation.expectation_type)
            )
        summaries.append(_summary(expectation.expectation_type, meta, ev, outcome, partial))
    return severity, summaries


def _summary(etype: str, meta: gs.CheckMeta, ev: _Eval, outcome: str, partial: list[Any]) -> ExpectationSummary:
    observed = ev.observed
    if isinstance(observed, list) and not meta.shows_values:
        observed = None  # distinct values of an identifier column: never shown
    return ExpectationSummary(
        etype, meta.rule, meta.kind, meta.columns, outcome, True, bool(ev.success),
        ev.element_count, ev.unexpected_count, ev.unexpected_percent, ev.missing_count, observed,
        _masked_partial(partial, meta.shows_values), _masked_partial(list(ev.missing_values), meta.shows_values),
    )


def _skip_reason(meta: gs.CheckMeta, view: _View, previous: ExtractProfile | None, policy: DriftPolicy) -> str | None:
    if meta.kind == "present":
        return None
    if meta.is_drift:
        if previous is None:
            return "no previous accepted extract"
        if meta.kind in ("drift_null_rate", "drift_codes") and view.n == 0:
            return "the file has no rows (the row-count check reports it)"
        if meta.kind == "drift_codes" and not policy.vanished_codes:
            return "vanished-code check turned off"
        if meta.kind == "drift_null_rate" and meta.column not in previous.non_null:
            return "column not in the previous extract's profile"
        return None
    if meta.kind == "reference":
        name = next(r for r in view.contract.references if r.id == meta.rule)
        if view.refs.get(gs.reference_column(name)) is None:
            return "referenced extract not given"
        return None
    missing = [c for c in meta.columns if c not in view.present and view.contract.columns[c].required]
    if missing:
        return f"required column {', '.join(missing)} missing from the file"
    return None


def _values_at(
    view: _View, meta: gs.CheckMeta, rows: np.ndarray, keep: np.ndarray, original: Mapping[str, pa.Array]
) -> list[Any]:
    """Offending values (text as in the file) of non-identifier columns; caller checks the privacy."""
    if not meta.shows_values or rows.size == 0:
        return []
    src = pa.array(keep[rows])
    cols = [c for c in meta.columns if c in original]
    if not cols:
        return [None] * rows.size
    if len(cols) == 1:
        return [v if v is not None and v.strip() else None for v in original[cols[0]].take(src).to_pylist()]
    parts = [original[c].take(src).to_pylist() for c in cols]
    return ["; ".join(f"{c}={v}" for c, v in zip(cols, vals, strict=True)) for vals in zip(*parts, strict=True)]


def _row_problems(
    view: _View,
    meta: gs.CheckMeta,
    etype: str,
    outcome: str,
    rows: np.ndarray,
    keep: np.ndarray,
    reported: dict[str, np.ndarray],
    original: Mapping[str, pa.Array],
) -> list[Problem]:
    if meta.kind in gs.COLUMN_KINDS:
        # one problem per cell: the first failing check of the column
        seen = reported.setdefault(meta.column or "", np.zeros(view.n, dtype=bool))
        rows = rows[~seen[rows]]
        seen[rows] = True
    if rows.size == 0:
        return []
    numbers = (keep[rows] + 1).tolist()
    values: list[Any] = _values_at(view, meta, rows, keep, original) if meta.shows_values else [None] * len(numbers)
    if meta.kind == "unique_key":
        return _unique_problems(view, meta, etype, outcome, rows, numbers, values)
    explain = meta.explain
    col = meta.column
    return [Problem(n, col, meta.rule, outcome, explain, v, etype) for n, v in zip(numbers, values, strict=True)]


def _unique_problems(
    view: _View, meta: gs.CheckMeta, etype: str, outcome: str, rows: np.ndarray, numbers: list[int], values: list[Any]
) -> list[Problem]:
    gid = _group_ids([view.raw[c].take(pa.array(rows)) for c in meta.columns])
    members: dict[int, list[int]] = {}
    for g, n in zip(gid.tolist(), numbers, strict=True):
        members.setdefault(g, []).append(n)
    out = []
    for g, n, v in zip(gid.tolist(), numbers, values, strict=True):
        others = [m for m in members[g] if m != n]
        shown = ", ".join(f"{m:,}" for m in others[:5]) + (", ..." if len(others) > 5 else "")
        out.append(Problem(n, meta.column, meta.rule, outcome, f"{meta.explain} Same key as data row(s) {shown}.", v, etype))
    return out


def _exact_duplicates(
    table: pa.Table,
    contract: ExtractContract,
    raw: Mapping[str, pa.Array],
    present: set[str],
    key_cache: dict[tuple[str, ...], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept rows, repeated rows, first row each repeat copies); rows compared on every column, as sent."""
    n = table.num_rows
    everything = np.arange(n, dtype=np.int64)
    if n < 2:
        return everything, np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = [c for c in contract.unique_key if c in present]
    if key and len(key) == len(contract.unique_key):
        # rows that are exact repeats share their (trimmed) key: only those need the full comparison
        key_gid = _group_ids([raw[c] for c in key])
        if key_cache is not None:
            key_cache[tuple(key)] = key_gid
        candidates = np.flatnonzero(_shared(key_gid))
    else:
        candidates = everything
    if candidates.size == 0:
        return everything, np.zeros(0, np.int64), np.zeros(0, np.int64)
    take = pa.array(candidates)
    full = _group_ids([_as_array(table.column(c)).take(take) for c in table.column_names])
    _, first_pos = np.unique(full, return_index=True)
    is_first = np.zeros(candidates.size, dtype=bool)
    is_first[first_pos] = True
    first_of_group = np.empty(full.max() + 1, dtype=np.int64)
    first_of_group[full[first_pos]] = candidates[first_pos]
    repeats = candidates[~is_first]
    firsts = first_of_group[full[~is_first]]
    kept = np.setdiff1d(everything, repeats, assume_unique=True)
    return kept, repeats, firsts


def validate_drop(
    tables: Mapping[str, pa.Table],
    contracts: Mapping[str, ExtractContract],
    *,
    file_names: Mapping[str, str] | None = None,
    previous: Mapping[str, ExtractProfile] | None = None,
    drift: DriftPolicy | None = None,
    engine: Engine = "masks",
) -> dict[str, ValidationResult]:
    """Validate the extracts of one agency's drop together, so references are checked within the drop."""
    out = {}
    for extract, table in tables.items():
        contract = contracts[extract]
        others = {e: t for e, t in tables.items() if e != extract}
        out[extract] = validate_table(
            table,
            contract,
            file_name=(file_names or {}).get(extract),
            references=others,
            previous=(previous or {}).get(extract),
            drift=drift,
            engine=engine,
        )
    return out


def read_extract(path: Path) -> pa.Table:
    """Read a CSV extract as intake does (UTF-8, header, every column as text, blanks as "")."""
    from data_sharing.intake import _check_encoding, _read_body, _read_header, _Refuse

    try:
        data = _check_encoding(Path(path).read_bytes())
        header = _read_header(data)
        return _read_body(data, header)
    except _Refuse as refusal:
        raise ValidationInputError(refusal.code, refusal.message) from None

