"""Validation of an extract file against its contract: accepted rows, quarantined rows, or a refused file.

The checks are the Great Expectations suite that :func:`schemas.gx_suite.build_suite` builds from the
contract. Two engines evaluate that same suite:

* ``engine="masks"`` (the default): each expectation configuration of the suite is translated into a
  vectorised row mask over Arrow arrays (:class:`_MaskEngine`). It gives GX's own numbers (element,
  missing and unexpected counts, success) and the failing rows, at about a second per million rows.
* ``engine="gx"``: GX itself validates a pandas view of the file (``COMPLETE`` result format, kept in
  this module). Exact but slow (tens of seconds per million rows); the tests run both engines on the
  same fixtures and require identical results, which is what makes the mask engine trustworthy.

Either way the outcome is a :class:`ValidationResult`: counts, one :class:`Problem` per failing cell /
row / rule (row number as in the file, column, rule id, outcome, a sentence a clerk can act on, and the
offending value *only* for columns with ``privacy: none``), the accepted and quarantined row indices,
a GX-style per-expectation summary and :meth:`ValidationResult.to_gx` (a masked
``ExpectationSuiteValidationResult`` for auditors and Data Docs).

Outcomes come from the contract: ``on_invalid`` of a column, ``outcome`` of a rule or reference
(``refuse_file`` | ``quarantine_row`` | ``warn``); a missing required column refuses the file; a key
shared by several rows quarantines them; drift against the previous accepted extract follows
:class:`DriftPolicy`. Exact duplicate rows are dropped before validation (the first is kept) and
reported as warnings.

Identifier values (columns whose privacy is ``direct`` or ``quasi``) never leave this module: not in
problems, not in the summary, not in the GX result, not in exceptions. No Dagster here, and
``great_expectations`` is imported only when a suite is built.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import gx_suite as gs
from schemas.contracts import ExtractContract, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from data_sharing.intake import IntakeDecision
    from data_sharing.partnership import Partnership

OUTCOME_RANK: dict[str, int] = {"warn": 1, "quarantine_row": 2, "refuse_file": 3}
Engine = Literal["masks", "gx"]
_HEADER_ECHO_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_UNICODE_CLASSES = re.compile(r"\\[dDwWsSbB]")
_MAX_PARTIAL = 20
_NULL_STR = pa.scalar(None, pa.string())


# ==================================================================================================
# Public types


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, a row or a cell.

    ``row_number`` is the 1-based data row as in the file (header not counted; ``None`` for the whole
    file). ``value`` is the offending value, given only when no column involved is an identifier.
    """

    row_number: int | None
    column: str | None
    rule: str
    outcome: str
    explanation: str
    value: str | None = None
    expectation_type: str | None = None


@dataclass(frozen=True)
class ExpectationSummary:
    """GX-style outcome of one expectation, for auditors (no identifier values)."""

    expectation_type: str
    rule: str
    kind: str
    columns: tuple[str, ...]
    outcome: str
    evaluated: bool
    success: bool | None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    missing_count: int | None = None
    observed_value: Any = None
    partial_unexpected_list: tuple[Any, ...] = ()
    missing_values: tuple[Any, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class DriftPolicy:
    """When a file differs too much from the previous accepted extract of the same kind.

    ``row_count_share``: flag a change of the row count by more than this share (either way);
    ``null_rate_jump``: flag a column whose share of blank cells rose by more than this (absolute);
    ``vanished_codes``: flag a code seen in the previous extract and absent now.
    """

    row_count_share: float = 0.25
    null_rate_jump: float = 0.10
    vanished_codes: bool = True
    outcome: Outcome = "warn"

    def __post_init__(self) -> None:
        if not 0 <= self.row_count_share:
            raise ValueError("row_count_share must be 0 or more")
        if not 0 <= self.null_rate_jump <= 1:
            raise ValueError("null_rate_jump must be between 0 and 1")


@dataclass(frozen=True)
class ExtractProfile:
    """What drift checks need to remember of an accepted extract; holds no identifier value.

    ``non_null``: share of rows with a value per contract column; ``codes``: the contract codes seen
    per code column. JSON-able through :meth:`to_dict` / :meth:`from_dict`.
    """

    agency: str
    extract: str
    rows: int
    non_null: Mapping[str, float]
    codes: Mapping[str, tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "extract": self.extract,
            "rows": self.rows,
            "non_null": dict(self.non_null),
            "codes": {k: list(v) for k, v in self.codes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtractProfile:
        return cls(
            agency=str(data["agency"]),
            extract=str(data["extract"]),
            rows=int(data["rows"]),
            non_null={str(k): float(v) for k, v in data["non_null"].items()},
            codes={str(k): tuple(map(str, v)) for k, v in data["codes"].items()},
        )


@dataclass
class ValidationResult:
    """What validation decided for one file.

    Counts: ``rows_in`` data rows in the file = ``duplicate_rows`` (exact repeats, dropped) +
    ``accepted`` + ``quarantined`` when the file is taken; when it is refused ``refused == rows_in``
    and nothing is accepted or quarantined. Index arrays are 0-based positions in the input table.
    """

    agency: str
    extract: str
    suite_name: str
    file_name: str | None
    engine: str
    rows_in: int
    duplicate_rows: int
    accepted: int
    quarantined: int
    refused: int
    problems: list[Problem]
    expectations: list[ExpectationSummary]
    profile: ExtractProfile
    notes: list[str] = field(default_factory=list)
    accepted_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    quarantined_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    duplicate_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    suite_parameters: dict[str, Any] = field(default_factory=dict, repr=False)
    _suite: Any = field(default=None, repr=False)

    @property
    def file_refused(self) -> bool:
        return self.refused > 0 or any(p.outcome == "refuse_file" for p in self.problems)

    @property
    def status(self) -> str:
        """``refused`` | ``accepted_with_problems`` | ``accepted``."""
        if self.file_refused:
            return "refused"
        return "accepted_with_problems" if self.problems else "accepted"

    @property
    def exit_code(self) -> int:
        """0 nothing to report, 1 accepted with warnings or quarantined rows, 2 refused."""
        return {"accepted": 0, "accepted_with_problems": 1, "refused": 2}[self.status]

    @property
    def accepted_mask(self) -> np.ndarray:
        mask = np.zeros(self.rows_in, dtype=bool)
        mask[self.accepted_indices] = True
        return mask

    @property
    def refusal_reasons(self) -> list[str]:
        seen: dict[str, str] = {}
        for p in self.problems:
            if p.outcome == "refuse_file" and p.rule not in seen:
                seen[p.rule] = p.explanation
        return list(seen.values())

    def counts(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "duplicate_rows": self.duplicate_rows,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "refused": self.refused,
        }

    def problem_counts(self) -> dict[tuple[str, str | None, str], int]:
        """Number of problems per (rule, column, outcome)."""
        out: dict[tuple[str, str | None, str], int] = {}
        for p in self.problems:
            key = (p.rule, p.column, p.outcome)
            out[key] = out.get(key, 0) + 1
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able summary for run metadata and the audit log (no value from the file)."""
        return {
            "suite": self.suite_name,
            "status": self.status,
            **self.counts(),
            "problems": len(self.problems),
            "expectations_evaluated": sum(e.evaluated for e in self.expectations),
            "expectations_failed": sum(e.evaluated and e.success is False for e in self.expectations),
        }

    def accepted_rows(self, table: pa.Table) -> pa.Table:
        return table.take(pa.array(self.accepted_indices, pa.int64()))

    def quarantined_rows(self, table: pa.Table) -> pa.Table:
        """Quarantined rows with why: ``_row_number``, ``_rules``, ``_columns``, ``_reasons`` (';'-joined)."""
        idx = self.quarantined_indices
        rows = table.take(pa.array(idx, pa.int64()))
        by_row: dict[int, list[Problem]] = {}
        wanted = set((idx + 1).tolist())
        for p in self.problems:
            if p.row_number in wanted and p.outcome == "quarantine_row":
                by_row.setdefault(p.row_number, []).append(p)
        numbers = (idx + 1).tolist()
        rules = ["; ".join(p.rule for p in by_row.get(n, [])) for n in numbers]
        cols = ["; ".join(p.column or "" for p in by_row.get(n, [])) for n in numbers]
        reasons = ["; ".join(p.explanation for p in by_row.get(n, [])) for n in numbers]
        return (
            rows.append_column("_row_number", pa.array(numbers, pa.int64()))
            .append_column("_rules", pa.array(rules, pa.string()))
            .append_column("_columns", pa.array(cols, pa.string()))
            .append_column("_reasons", pa.array(reasons, pa.string()))
        )

    def to_gx(self, run_time: dt.datetime | None = None, *, html_safe: bool = False) -> Any:
        """A GX ``ExpectationSuiteValidationResult`` of the evaluated expectations, values masked.

        ``html_safe=True`` HTML-escapes the sampled values (GX Data Docs renders them unescaped).
        """
        return _to_gx_result(self, run_time, html_safe)


class ValidationInputError(Exception):
    """The file cannot be read as an extract (encoding, CSV structure, header). Message has no values."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


# ==================================================================================================
# Suites are built once per contract


@functools.lru_cache(maxsize=64)
def _suite_cached(key: str, contract_json: str) -> Any:
    contract = ExtractContract.model_validate_json(contract_json)
    return gs.build_suite(contract)


def suite_for(contract: ExtractContract) -> Any:
    """The (cached) GX suite of ``contract``."""
    return _suite_cached(gs.suite_name(contract), contract.model_dump_json())


# ==================================================================================================
# Arrow helpers


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _as_array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def _map_uniques(arr: pa.Array, fn: Callable[[str], bool]) -> np.ndarray:
    """``fn`` of every non-null value, computed once per distinct value (nulls give True)."""
    enc = pc.dictionary_encode(arr)
    values = enc.dictionary.to_pylist()
    table = np.fromiter((bool(fn(v)) for v in values), dtype=bool, count=len(values))
    idx = enc.indices
    out = np.ones(len(arr), dtype=bool)
    if len(values):
        valid = _valid(idx)
        pos = pc.fill_null(idx, 0).to_numpy(zero_copy_only=False)
        out[valid] = table[pos[valid]]
    return out


def _regex_ok(arr: pa.Array, pattern: str) -> np.ndarray:
    """Python ``re.search`` semantics (as GX on pandas: ``str.contains``); nulls give True."""
    if not _UNICODE_CLASSES.search(pattern):
        try:
            return _np_bool(pc.match_substring_regex(arr, pattern=pattern)) | ~_valid(arr)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # not RE2 syntax (look-arounds, back-references): fall back to Python on distinct values
    rx = re.compile(pattern)
    return _map_uniques(arr, lambda v: rx.search(v) is not None)


def _strptime_ok(arr: pa.Array, fmt: str) -> np.ndarray:
    """Python ``datetime.strptime`` semantics (as GX); computed once per distinct value."""

    def ok(v: str) -> bool:
        try:
            dt.datetime.strptime(v, fmt)  # noqa: DTZ007
        except ValueError:
            return False
        return True

    return _map_uniques(arr, ok)


def _factorize(values: np.ndarray) -> tuple[np.ndarray, int]:
    import pandas as pd

    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def _group_ids(arrays: list[pa.Array]) -> np.ndarray:
    """Dense group ids of the rows of several aligned columns (null is a value of its own)."""
    n = len(arrays[0]) if arrays else 0
    gid = np.zeros(n, dtype=np.int64)
    card = 1
    for arr in arrays:
        enc = pc.dictionary_encode(arr, null_encoding="encode")
        codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        k = max(len(enc.dictionary), 1)
        if card * k >= 2**62:
            gid, card = _factorize(gid)
        gid = gid * k + codes
        card *= k
    if card >= 2**31 or len(arrays) > 1:
        gid, card = _factorize(gid)
    return gid


def _shared(gid: np.ndarray) -> np.ndarray:
    """Rows whose group has more than one row (GX ``duplicated(keep=False)``)."""
    if gid.size == 0:
        return np.zeros(0, dtype=bool)
    counts = np.bincount(gid)
    return counts[gid] > 1


# ==================================================================================================
# The validation view: trimmed strings, parsed copies, reference flags


@dataclass
class _View:
    contract: ExtractContract
    n: int
    raw: dict[str, pa.Array]  # contract column -> trimmed strings, null when blank (or column absent)
    present: set[str]
    typed: dict[str, pa.Array] = field(default_factory=dict)  # value_column -> int64 / float64 / date32
    refs: dict[str, np.ndarray | None] = field(default_factory=dict)  # reference_column -> found (bool)
    ref_valid: dict[str, np.ndarray] = field(default_factory=dict)
    ref_notes: dict[str, str] = field(default_factory=dict)
    _cache: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)

    def array(self, name: str) -> pa.Array:
        if name in self.raw:
            return self.raw[name]
        if name in self.typed:
            return self.typed[name]
        if name in self.refs:
            found, valid = self.refs[name], self.ref_valid.get(name)
            if found is None or valid is None:
                return pa.nulls(self.n, pa.bool_())
            return pa.array(found, pa.bool_(), mask=~valid)
        raise KeyError(name)

    def regex_ok(self, column: str, pattern: str) -> np.ndarray:
        key = ("regex", column, pattern)
        if key not in self._cache:
            self._cache[key] = _regex_ok(self.array(column), pattern)
        return self._cache[key]

    def strptime_ok(self, column: str, fmt: str) -> np.ndarray:
        key = ("strptime", column, fmt)
        if key not in self._cache:
            self._cache[key] = _strptime_ok(self.array(column), fmt)
        return self._cache[key]

    def group_ids(self, columns: tuple[str, ...]) -> np.ndarray:
        """Group ids of the rows over ``columns`` (not necessarily dense; null is a value)."""
        key = ("gid", columns)
        if key not in self._cache:
            self._cache[key] = _group_ids([self.array(c) for c in columns])
        return self._cache[key]

    def to_pandas(self) -> Any:
        """The same view as a pandas frame, for GX itself (dates as ``datetime.date``, integers as float)."""
        import pandas as pd

        data: dict[str, Any] = {}
        for name, arr in self.raw.items():
            data[name] = arr.to_pandas().astype(object).where(_valid(arr), None)
        for name, arr in self.typed.items():
            if pa.types.is_date(arr.type):
                data[name] = arr.to_pandas(date_as_object=True).astype(object).where(_valid(arr), None)
            else:
                data[name] = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        for name, found in self.refs.items():
            col = np.full(self.n, None, dtype=object)
            if found is not None:
                valid = self.ref_valid[name]
                col[valid] = found[valid]
            data[name] = col
        return pd.DataFrame(data, index=pd.RangeIndex(self.n))


def _trim_and_blank(arr: pa.Array) -> pa.Array:
    """Surrounding whitespace removed (as intake reads periods), blank cells as nulls."""
    if len(arr) == 0:
        return arr
    arr = pc.utf8_trim_whitespace(arr)
    blank = pc.equal(arr, "")
    if pc.any(blank).as_py():
        arr = pc.if_else(blank, _NULL_STR, arr)
    return arr


def _build_view(contract: ExtractContract, raw: dict[str, pa.Array], present: set[str], n: int) -> _View:
    view = _View(contract=contract, n=n, raw=raw, present=present)
    for spec in contract.columns.values():
        if spec.type not in ("integer", "number", "date"):
            continue
        name = gs.value_column(spec.name, spec.type)
        arr = raw[spec.name]
        if spec.type == "integer":
            ok = view.regex_ok(spec.name, gs.INTEGER_REGEX) & _valid(arr)
            view.typed[name] = pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.int64())
        elif spec.type == "number":
            ok = view.regex_ok(spec.name, gs.NUMBER_REGEX) & _valid(arr)
            view.typed[name] = pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.float64())
        else:
            ok = view.regex_ok(spec.name, gs.DATE_REGEX) & view.strptime_ok(spec.name, gs.DATE_FORMAT) & _valid(arr)
            text = pc.if_else(pa.array(ok), arr, _NULL_STR)
            view.typed[name] = pc.cast(pc.strptime(text, format=gs.DATE_FORMAT, unit="s", error_is_null=True), pa.date32())
    return view


def _key_arrays(contract: ExtractContract, raw: Mapping[str, pa.Array], columns: list[str]) -> list[pa.Array]:
    """Key columns in canonical text: integers as parsed numbers (``02026`` is ``2026``), others trimmed."""
    out = []
    for c in columns:
        arr = raw[c]
        if contract.columns[c].type == "integer":
            ok = _regex_ok(arr, gs.INTEGER_REGEX) & _valid(arr)
            arr = pc.cast(pc.cast(pc.if_else(pa.array(ok), arr, _NULL_STR), pa.int64()), pa.string())
        out.append(arr)
    return out


def _prepare_other(table: pa.Table, contract: ExtractContract, columns: list[str]) -> dict[str, pa.Array] | None:
    if any(c not in table.column_names for c in columns):
        return None
    return {c: _trim_and_blank(_as_array(table.column(c))) for c in columns}


def _attach_references(view: _View, references: Mapping[str, pa.Table] | None) -> None:
    contract = view.contract
    for ref in contract.references:
        name = gs.reference_column(ref)
        other = (references or {}).get(ref.extract)
        view.refs[name] = None
        if other is None:
            view.ref_notes[name] = (
                f"Reference {ref.id} was not checked: no {ref.extract} extract was given to check against."
            )
            continue
        other_raw = _prepare_other(other, contract, list(ref.columns))
        if other_raw is None:
            view.ref_notes[name] = (
                f"Reference {ref.id} was not checked: the {ref.extract} extract lacks {', '.join(ref.columns)}."
            )
            continue
        mine = _key_arrays(contract, view.raw, list(ref.columns))
        theirs = _key_arrays(contract, other_raw, list(ref.columns))
        valid = np.ones(view.n, dtype=bool)
        for a in mine:
            valid &= _valid(a)
        other_valid = np.ones(other.num_rows, dtype=bool)
        for a in theirs:
            other_valid &= _valid(a)
        both = [pa.concat_arrays([a, b]) for a, b in zip(mine, theirs, strict=True)]
        gid = _group_ids(both) if view.n + other.num_rows else np.zeros(0, np.int64)
        known = np.unique(gid[view.n :][other_valid])
        view.refs[name] = np.isin(gid[: view.n], known)
        view.ref_valid[name] = valid


# ==================================================================================================
# Evaluating one expectation


@dataclass
class _Eval:
    evaluated: bool
    success: bool | None = None
    unexpected: np.ndarray | None = None  # view rows that fail (bool mask), for row-level expectations
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    observed: Any = None
    missing_values: tuple[Any, ...] = ()  # expected values absent from the column (distinct-values checks)

    @property
    def unexpected_percent(self) -> float | None:
        if self.unexpected_count is None or self.element_count is None:
            return None
        base = self.element_count - (self.missing_count or 0)
        return 100.0 * self.unexpected_count / base if base else None


def _scalar_for(value: Any, arr: pa.Array) -> pa.Scalar:
    if pa.types.is_date(arr.type) and isinstance(value, str):
        return pa.scalar(dt.date.fromisoformat(value), arr.type)
    return pa.scalar(value).cast(arr.type) if not pa.types.is_string(arr.type) else pa.scalar(str(value))


def _condition_mask(view: _View, cond: Any) -> np.ndarray:
    if hasattr(cond, "dict"):
        cond = cond.dict()
    kind = cond.get("type")
    if kind in ("and", "or"):
        parts = [_condition_mask(view, c) for c in cond["conditions"]]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if kind == "and" else (out | p)
        return out
    column = cond["column"]["name"] if isinstance(cond["column"], dict) else cond["column"].name
    arr = view.array(column)
    valid = _valid(arr)
    if kind == "nullity":
        return ~valid if cond["is_null"] else valid
    if kind != "comparison":
        raise ValueError(f"row condition of type {kind!r} is not supported")
    op, param = str(cond["operator"]), cond["parameter"]
    if op in ("IN", "NOT_IN"):
        hit = _np_bool(pc.is_in(arr, value_set=pa.array([_scalar_for(p, arr).as_py() for p in param], arr.type)))
        return (hit & valid) if op == "IN" else ~(hit & valid)
    fn = {
        "==": pc.equal,
        "!=": pc.not_equal,
        "<": pc.less,
        "<=": pc.less_equal,
        ">": pc.greater,
        ">=": pc.greater_equal,
    }[op]
    hit = _np_bool(fn(arr, _scalar_for(param, arr)))
    return (hit | ~valid) if op == "!=" else hit  # as pandas: null != x is True


def _resolve(value: Any, params: Mapping[str, Any]) -> Any:
    if isinstance(value, dict) and "$PARAMETER" in value:
        return params[value["$PARAMETER"]]
    return value


def _map_eval(domain: np.ndarray, nonnull: np.ndarray, ok: np.ndarray) -> _Eval:
    unexpected = domain & nonnull & ~ok
    n_dom = int(domain.sum())
    missing = int((domain & ~nonnull).sum())
    bad = int(unexpected.sum())
    return _Eval(True, bad == 0, unexpected, n_dom, missing, bad)


class _MaskEngine:
    """Vectorised evaluation of the expectation types :func:`schemas.gx_suite.build_suite` declares."""

    def __init__(self, view: _View, params: Mapping[str, Any]) -> None:
        self.view = view
        self.params = params

    def evaluate(self, expectation: Any) -> _Eval:
        etype = expectation.expectation_type
        kw = {k: _resolve(v, self.params) for k, v in expectation.configuration.kwargs.items()}
        method = getattr(self, "_" + etype, None)
        if method is None:
            raise NotImplementedError(f"the mask engine does not translate {etype}")
        return method(kw)

    # --- domains ----------------------------------------------------------------------------------
    def _domain(self, kw: Mapping[str, Any]) -> np.ndarray:
        cond = kw.get("row_condition")
        if cond:
            return _condition_mask(self.view, cond)
        return np.ones(self.view.n, dtype=bool)

    # --- table ------------------------------------------------------------------------------------
    def _expect_column_to_exist(self, kw: Mapping[str, Any]) -> _Eval:
        return _Eval(True, kw["column"] in self.view.present)

    def _expect_table_row_count_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        n, lo, hi = self.view.n, kw.get("min_value"), kw.get("max_value")
        ok = (lo is None or n >= lo) and (hi is None or n <= hi)
        return _Eval(True, ok, observed=n)

    def _expect_column_proportion_of_non_null_values_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        n = self.view.n
        share = float(_valid(self.view.array(kw["column"])).sum()) / n if n else None
        lo, hi = kw.get("min_value"), kw.get("max_value")
        ok = share is not None and (lo is None or share >= lo) and (hi is None or share <= hi)
        return _Eval(True, ok, observed=share)

    def _expect_column_distinct_values_to_contain_set(self, kw: Mapping[str, Any]) -> _Eval:
        # as GX 1.x: missing_count is the number of expected values absent from the column
        arr = self.view.array(kw["column"])
        distinct = set(pc.unique(arr).to_pylist())
        gone = tuple(v for v in kw["value_set"] if v not in distinct)
        return _Eval(True, not gone, missing_count=len(gone), missing_values=gone)

    # --- column map -------------------------------------------------------------------------------
    def _expect_column_values_to_not_be_null(self, kw: Mapping[str, Any]) -> _Eval:
        domain = self._domain(kw)
        nonnull = _valid(self.view.array(kw["column"]))
        unexpected = domain & ~nonnull
        bad = int(unexpected.sum())
        return _Eval(True, bad == 0, unexpected, int(domain.sum()), None, bad)

    def _expect_column_values_to_match_regex(self, kw: Mapping[str, Any]) -> _Eval:
        col = kw["column"]
        arr = self.view.array(col)
        return _map_eval(self._domain(kw), _valid(arr), self.view.regex_ok(col, kw["regex"]))

    def _expect_column_values_to_match_strftime_format(self, kw: Mapping[str, Any]) -> _Eval:
        col = kw["column"]
        arr = self.view.array(col)
        return _map_eval(self._domain(kw), _valid(arr), self.view.strptime_ok(col, kw["strftime_format"]))

    def _expect_column_values_to_be_in_set(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        values = pa.array([_scalar_for(v, arr).as_py() for v in kw["value_set"]], arr.type)
        return _map_eval(self._domain(kw), _valid(arr), _np_bool(pc.is_in(arr, value_set=values)))

    def _expect_column_values_to_not_be_in_set(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        values = pa.array([_scalar_for(v, arr).as_py() for v in kw["value_set"]], arr.type)
        return _map_eval(self._domain(kw), _valid(arr), ~_np_bool(pc.is_in(arr, value_set=values)))

    def _expect_column_values_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        ok = np.ones(self.view.n, dtype=bool)
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if lo is not None:
            fn = pc.greater if kw.get("strict_min") else pc.greater_equal
            ok &= _np_bool(fn(arr, _scalar_for(lo, arr)))
        if hi is not None:
            fn = pc.less if kw.get("strict_max") else pc.less_equal
            ok &= _np_bool(fn(arr, _scalar_for(hi, arr)))
        return _map_eval(self._domain(kw), _valid(arr), ok)

    def _expect_column_value_lengths_to_be_between(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        length = pc.utf8_length(arr)
        ok = np.ones(self.view.n, dtype=bool)
        if kw.get("min_value") is not None:
            ok &= _np_bool(pc.greater_equal(length, kw["min_value"]))
        if kw.get("max_value") is not None:
            ok &= _np_bool(pc.less_equal(length, kw["max_value"]))
        return _map_eval(self._domain(kw), _valid(arr), ok)

    def _expect_column_values_to_be_unique(self, kw: Mapping[str, Any]) -> _Eval:
        arr = self.view.array(kw["column"])
        domain, nonnull = self._domain(kw), _valid(arr)
        keep = domain & nonnull
        shared = np.zeros(self.view.n, dtype=bool)
        if keep.any():
            gid = self.view.group_ids((kw["column"],))[keep]
            shared[keep] = np.bincount(gid)[gid] > 1
        return _map_eval(domain, nonnull, ~shared)

    # --- several columns --------------------------------------------------------------------------
    def _pair(self, kw: Mapping[str, Any]) -> tuple[pa.Array, pa.Array, np.ndarray, np.ndarray]:
        a, b = self.view.array(kw["column_A"]), self.view.array(kw["column_B"])
        va, vb = _valid(a), _valid(b)
        how = kw.get("ignore_row_if", "both_values_are_missing")
        if how == "either_value_is_missing":
            considered = va & vb
        elif how == "both_values_are_missing":
            considered = va | vb
        else:
            considered = np.ones(self.view.n, dtype=bool)
        return a, b, self._domain(kw), considered

    def _expect_column_pair_values_a_to_be_greater_than_b(self, kw: Mapping[str, Any]) -> _Eval:
        a, b, domain, considered = self._pair(kw)
        fn = pc.greater_equal if kw.get("or_equal") else pc.greater
        return _map_eval(domain, considered, _np_bool(fn(a, b)))

    def _expect_column_pair_values_to_be_equal(self, kw: Mapping[str, Any]) -> _Eval:
        a, b, domain, considered = self._pair(kw)
        return _map_eval(domain, considered, _np_bool(pc.equal(a, b)))

    def _multi(self, kw: Mapping[str, Any]) -> tuple[list[pa.Array], np.ndarray, np.ndarray]:
        arrays = [self.view.array(c) for c in kw["column_list"]]
        valids = np.stack([_valid(a) for a in arrays])
        how = kw.get("ignore_row_if", "all_values_are_missing")
        if how == "any_value_is_missing":
            considered = valids.all(axis=0)
        elif how == "all_values_are_missing":
            considered = valids.any(axis=0)
        else:
            considered = np.ones(self.view.n, dtype=bool)
        return arrays, self._domain(kw), considered

    def _expect_compound_columns_to_be_unique(self, kw: Mapping[str, Any]) -> _Eval:
        arrays, domain, considered = self._multi(kw)
        keep = domain & considered
        shared = np.zeros(self.view.n, dtype=bool)
        if keep.any():
            gid = self.view.group_ids(tuple(kw["column_list"]))[keep]
            shared[keep] = np.bincount(gid)[gid] > 1
        return _map_eval(domain, considered, ~shared)

    def _expect_select_column_values_to_be_unique_within_record(self, kw: Mapping[str, Any]) -> _Eval:
        arrays, domain, considered = self._multi(kw)
        same = np.zeros(self.view.n, dtype=bool)
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                same |= _np_bool(pc.equal(arrays[i], arrays[j]))
        return _map_eval(domain, considered, ~same)


def _gx_evaluations(view: _View, suite: Any, params: Mapping[str, Any]) -> list[_Eval]:
    """Run GX itself on the pandas view; keep counts and row positions, drop every value."""
    context = _gx_context()
    frame = view.to_pandas()
    import uuid

    # A required column missing from the file is missing from the frame too; GX then checks only that
    # it exists (the other expectations on it are not evaluated, as with the mask engine).
    absent = {c for c, spec in view.contract.columns.items() if spec.required and c not in view.present}
    absent_view = absent | {gs.value_column(c, view.contract.columns[c].type) for c in absent}
    frame = frame.drop(columns=[c for c in frame.columns if c in absent_view])
    runnable = [
        e for e in suite.expectations
        if gs.check_meta(e).kind == "present" or not (set(gs.check_meta(e).columns) & absent)
    ]
    if len(runnable) != len(suite.expectations):
        suite = type(suite)(name=suite.name, expectations=[e.configuration.to_domain_obj() for e in runnable])
    all_expectations = list(suite_for(view.contract).expectations)

    source = context.data_sources.add_pandas(f"c2c_{uuid.uuid4().hex[:12]}")
    try:
        asset = source.add_dataframe_asset("extract")
        batch = asset.add_batch_definition_whole_dataframe("file").get_batch(batch_parameters={"dataframe": frame})
        with warnings.catch_warnings():
            # pandas' str.contains warns when a contract pattern has groups; it changes nothing
            warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
            result = batch.validate(
                suite,
                result_format={"result_format": "COMPLETE", "partial_unexpected_count": _MAX_PARTIAL},
                expectation_parameters=dict(params),
            )
    finally:
        context.data_sources.delete(source.name)
    by_rule: dict[str, _Eval] = {}
    for res in result.results:
        info = res.exception_info or {}
        nested = [v for v in info.values() if isinstance(v, dict)]
        if info.get("raised_exception") or any(v.get("raised_exception") for v in nested):
            # Never re-raise GX's message: it may quote values.
            raise RuntimeError(f"GX could not evaluate {res.expectation_config.type} ({gs.check_meta(res.expectation_config).rule})")
        r = res.result or {}
        unexpected = None
        if "unexpected_index_list" in r:
            unexpected = np.zeros(view.n, dtype=bool)
            unexpected[np.asarray(r["unexpected_index_list"], dtype=np.int64)] = True
        observed = r.get("observed_value")
        if isinstance(observed, list | tuple | set):
            observed = sorted(v for v in observed if v is not None)
        by_rule[gs.check_meta(res.expectation_config).rule] = _Eval(
            True,
            bool(res.success),
            unexpected,
            r.get("element_count"),
            r.get("missing_count"),
            r.get("unexpected_count"),
            observed,
            missing_values=tuple(r.get("partial_missing_list") or ()),
        )
    # GX reports results in its own order: put them back in the suite's order.
    return [by_rule.get(gs.check_meta(e).rule, _Eval(False)) for e in all_expectations]


@functools.lru_cache(maxsize=1)
def _gx_context() -> Any:
    return gs.ephemeral_context()


# ==================================================================================================
# Validation


def _profile(view: _View) -> ExtractProfile:
    non_null = {}
    codes = {}
    for spec in view.contract.columns.values():
        arr = view.raw[spec.name]
        non_null[spec.name] = float(_valid(arr).sum()) / view.n if view.n else 0.0
        if spec.codes:
            seen = set(pc.unique(arr).to_pylist())
            codes[spec.name] = tuple(c for c in spec.codes if c in seen)
    return ExtractProfile(view.contract.agency, view.contract.extract, view.n, non_null, codes)


def _drift_params(contract: ExtractContract, previous: ExtractProfile | None, policy: DriftPolicy) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if previous is None:
        params[gs.drift_parameter("row_count_min")] = 0
        params[gs.drift_parameter("row_count_max")] = 2**62
    else:
        params[gs.drift_parameter("row_count_min")] = math.ceil(previous.rows * (1 - policy.row_count_share) - 1e-9)
        params[gs.drift_parameter("row_count_max")] = math.floor(previous.rows * (1 + policy.row_count_share) + 1e-9)
    for spec in contract.columns.values():
        before = previous.non_null.get(spec.name) if previous is not None else None
        params[gs.drift_parameter("non_null_min", spec.name)] = (
            0.0 if before is None else max(0.0, round(before - policy.null_rate_jump, 9))
        )
        if spec.codes:
            seen = previous.codes.get(spec.name, ()) if previous is not None and policy.vanished_codes else ()
            params[gs.drift_parameter("codes", spec.name)] = [c for c in seen if c in spec.codes]
    return params


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _drift_explanation(meta: gs.CheckMeta, ev: _Eval, previous: ExtractProfile, policy: DriftPolicy, kw: Mapping[str, Any]) -> str:
    if meta.kind == "drift_row_count":
        n, before = int(ev.observed or 0), previous.rows
        change = (n - before) / before if before else 0.0
        return (
            f"This file has {_plural(n, 'row')} (exact repeats removed); the previous accepted "
            f"{previous.extract} extract had {before:,}, a change of {change:+.0%}, more than the "
            f"{policy.row_count_share:.0%} expected. Check that the export is complete and for the right period."
        )
    col = meta.column
    if meta.kind == "drift_null_rate":
        now = 1.0 - float(ev.observed or 0.0)
        before = 1.0 - float(previous.non_null.get(col or "", 1.0))
        return (
            f"{col} is blank in {now:.1%} of rows against {before:.1%} in the previous accepted extract "
            f"(a rise of more than {policy.null_rate_jump:.0%}); check the export of this column."
        )
    gone = list(ev.missing_values)
    text = f"{_plural(len(gone), 'code')} of {col} present in the previous accepted extract no longer appear"
    if meta.shows_values:
        text += f" ({', '.join(gone)})"
    return text + "; check that no group of records was left out of the export."


def _masked_partial(values: list[Any], shows_values: bool) -> tuple[Any, ...]:
    return tuple(values[:_MAX_PARTIAL]) if shows_values else ()


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
    rows_in = table.num_rows
    header = list(table.column_names)
    problems: list[Problem] = []
    notes: list[str] = []

    # 0. Columns the contract does not know refuse the file (intake's MOU check normally comes first).
    unknown = [(i + 1, c) for i, c in enumerate(header) if c not in contract.columns]
    for pos, name in unknown:
        shown = name if _HEADER_ECHO_RE.match(name) else f"number {pos}"
        problems.append(
            Problem(None, None, "unknown_column", "refuse_file",
                    f"The column {shown} is not part of the {contract.extract} extract; remove it and send the file again.")
        )

    # 1. Trimmed strings, blanks as nulls; absent optional columns as all-null.
    present = {c for c in header if c in contract.columns}
    raw_full: dict[str, pa.Array] = {}
    original: dict[str, pa.Array] = {}
    for c in contract.columns:
        if c in present:
            original[c] = _as_array(table.column(c))
            raw_full[c] = _trim_and_blank(original[c])
        else:
            raw_full[c] = pa.nulls(rows_in, pa.string())

    # 2. Exact duplicate rows count once: find candidates by key, confirm on every column of the file.
    key_gids: dict[tuple[str, ...], np.ndarray] = {}
    keep, dup_rows, dup_first = _exact_duplicates(table, contract, raw_full, present, key_gids)
    n_view = int(keep.size)
    if dup_rows.size:
        take = pa.array(keep)
        raw = {c: a.take(take) for c, a in raw_full.items()}
    else:
        raw = raw_full
    for r, first in zip(dup_rows.tolist(), dup_first.tolist(), strict=True):
        problems.append(
            Problem(r + 1, None, "duplicate_row", "warn",
                    f"This row exactly repeats data row {first + 1:,}; it counts once.")
        )

    # 3. The view, references, drift parameters.
    view = _build_view(contract, raw, present, n_view)
    for cols, gid in key_gids.items():
        view._cache[("gid", cols)] = gid[keep] if dup_rows.size else gid
    _attach_references(view, references)
    params = _drift_params(contract, previous, policy)

    # 4. Evaluate every expectation of the suite.
    expectations = list(suite.expectations)
    if engine == "masks":
        mask_engine = _MaskEngine(view, params)
        evals = [mask_engine.evaluate(e) for e in expectations]
    elif engine == "gx":
        evals = _gx_evaluations(view, suite, params)
    else:
        raise ValueError(f"engine must be 'masks' or 'gx', not {engine!r}")

    # 5. Problems, row outcomes, summary.
    severity = np.zeros(n_view, dtype=np.int8)
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
                partial = _values_at(view, meta, rows[:_MAX_PARTIAL], keep, original)
        elif ev.unexpected is None and ev.success is False:
            problems.append(
                Problem(None, meta.column, meta.rule, outcome,
                        _drift_explanation(meta, ev, previous, policy, kw) if meta.is_drift and previous else meta.explain,
                        None, expectation.expectation_type)
            )
        observed = ev.observed
        if isinstance(observed, list) and not meta.shows_values:
            observed = None  # distinct values of an identifier column: never shown
        summaries.append(
            ExpectationSummary(
                expectation.expectation_type, meta.rule, meta.kind, meta.columns, outcome, True, bool(ev.success),
                ev.element_count, ev.unexpected_count, ev.unexpected_percent, ev.missing_count, observed,
                _masked_partial(partial, meta.shows_values), _masked_partial(list(ev.missing_values), meta.shows_values),
            )
        )
    notes.extend(view.ref_notes.values())
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
        rows_in=rows_in,
        duplicate_rows=int(dup_rows.size),
        accepted=int(accepted_idx.size),
        quarantined=int(quarantined_idx.size),
        refused=rows_in if refused else 0,
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
        col = meta.column or ""
        seen = reported.setdefault(col, np.zeros(view.n, dtype=bool))
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


# ==================================================================================================
# GX validation result for auditors and Data Docs


_VALUE_KEYS = ("partial_unexpected_list", "partial_missing_list", "partial_unexpected_counts", "unexpected_list", "unexpected_index_list",
               "partial_unexpected_index_list", "unexpected_index_query", "unexpected_rows", "details")


def mask_gx_result_dict(result: Mapping[str, Any], shows_values: bool) -> dict[str, Any]:
    """A GX ``result`` dict without any value when the columns involved are identifiers."""
    out = dict(result)
    if not shows_values:
        for key in _VALUE_KEYS:
            out.pop(key, None)
        if isinstance(out.get("observed_value"), list | tuple | set | dict):
            out.pop("observed_value")
    return out


def _to_gx_result(result: ValidationResult, run_time: dt.datetime | None, html_safe: bool = False) -> Any:
    gs.import_gx()
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )

    import html

    def shown(values: tuple[Any, ...]) -> list[Any]:
        return [html.escape(str(v)) if html_safe and v is not None else v for v in values]

    suite = result._suite
    by_rule = {gs.check_meta(e).rule: e for e in suite.expectations}
    items = []
    for s in result.expectations:
        if not s.evaluated:
            continue
        exp = by_rule[s.rule]
        r: dict[str, Any] = {}
        if s.element_count is not None:
            r["element_count"] = s.element_count
        if s.unexpected_count is not None:
            r["unexpected_count"] = s.unexpected_count
            r["unexpected_percent"] = s.unexpected_percent
            r["partial_unexpected_list"] = shown(s.partial_unexpected_list)
        if s.missing_count is not None:
            r["missing_count"] = s.missing_count
        if s.observed_value is not None or s.kind == "drift_codes":
            r["observed_value"] = s.observed_value
        if s.kind == "drift_codes":
            r["partial_missing_list"] = shown(s.missing_values)
        meta = gs.check_meta(exp)
        items.append(
            ExpectationValidationResult(
                success=bool(s.success),
                expectation_config=exp.configuration,
                result=mask_gx_result_dict(r, meta.shows_values),
            )
        )
    ok = sum(1 for i in items if i.success)
    run_time = run_time or dt.datetime.now(dt.timezone.utc)
    name = result.file_name or result.extract
    return ExpectationSuiteValidationResult(
        success=ok == len(items),
        results=items,
        suite_name=result.suite_name,
        suite_parameters={k: v for k, v in result.suite_parameters.items()},
        statistics={
            "evaluated_expectations": len(items),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(items) - ok,
            "success_percent": 100.0 * ok / len(items) if items else None,
        },
        meta={
            "active_batch_definition": {
                "datasource_name": result.agency,
                "data_asset_name": result.extract,
                "batch_definition_name": name,
            },
            "run_id": {"run_name": name, "run_time": run_time.isoformat()},
            "validation_time": run_time.isoformat(),
            "c2c": {**result.counts(), "status": result.status, "engine": result.engine, "notes": list(result.notes)},
        },
    )


# ==================================================================================================
# check_extract: what an agency can run before dropping a file


@dataclass
class CheckReport:
    """What the hub would do with a file: ``exit_code`` 0 ok, 1 warnings or quarantined rows, 2 refused."""

    file_name: str
    agency: str
    extract: str | None
    exit_code: int
    status: str  # ok | warnings | refused
    intake_reason_code: str | None = None
    intake_reason: str | None = None
    intake_warnings: list[str] = field(default_factory=list)
    validation: ValidationResult | None = None
    notes: list[str] = field(default_factory=list)

    def text(self, max_problems: int = 50) -> str:
        """Plain text for a terminal (no identifier values)."""
        lines = [f"{self.file_name}: {self.status.upper()} (exit code {self.exit_code})"]
        if self.intake_reason:
            lines.append(f"  The file would be refused: {self.intake_reason}")
        v = self.validation
        if v is not None:
            lines.append(
                f"  rows: {v.rows_in:,} in the file, {v.duplicate_rows:,} exact repeats, {v.accepted:,} accepted, "
                f"{v.quarantined:,} quarantined, {v.refused:,} refused"
            )
            for p in v.problems[:max_problems]:
                where = f"row {p.row_number:,}" if p.row_number else "file"
                col = f", {p.column}" if p.column else ""
                val = f" [value: {p.value}]" if p.value is not None else ""
                lines.append(f"  {where}{col} ({p.rule}, {p.outcome}): {p.explanation}{val}")
            if len(v.problems) > max_problems:
                lines.append(f"  ... and {len(v.problems) - max_problems:,} more problems")
        elif self.intake_warnings:
            lines += [f"  warning: {w}" for w in self.intake_warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


_HEADER_CODES = frozenset(
    {"missing_header", "columns_not_permitted", "missing_columns", "duplicate_columns", "blank_column_name", "wrong_delimiter"}
)


def own_header_note(path: Path, limit: int = 1 << 16) -> str:
    """The agency's own header names, as this check read them (``check-extract`` runs on the agency's own
    machine, on its own file: the hub never shows these names)."""
    import csv as _csv

    from data_sharing.intake import escape_name

    with open(path, "rb") as fh:
        head = fh.read(limit).split(b"\n", 1)[0].decode("utf-8-sig", "replace").rstrip("\r")
    try:
        names = next(_csv.reader([head]), [])
    except _csv.Error:
        names = [head]
    shown = " | ".join(escape_name(n)[:60] for n in names[:60]) + (" | ..." if len(names) > 60 else "")
    return f"Your file's header, as read with commas between names ({len(names)} field(s)): {shown}"


def check_extract(
    path: Path | str,
    agency: str,
    partnership: Partnership,
    *,
    extract: str | None = None,
    today: dt.date | None = None,
    references: Mapping[str, Path | str] | None = None,
    previous: ExtractProfile | None = None,
    drift: DriftPolicy | None = None,
) -> CheckReport:
    """Check a file as intake and validation would, without dropping it (nothing is stored).

    The intake checks (name, MOU in force, encoding, header, permitted and required columns) run
    through :func:`data_sharing.intake.examine_drop` on a temporary copy; then the contract's suite.
    A file not yet named ``<extract>_<YYYYMMDD>.csv`` can be checked by giving ``extract``.
    References are checked against sibling files of the same date (``students_20260915.csv`` next to
    ``attendance_20260915.csv``) or the files given in ``references``.
    """
    from data_sharing.dropsafe import DropLimits
    from data_sharing.intake import display_name, examine_drop, parse_drop_name

    path = Path(path)
    shown = display_name(path.name)
    today = today or dt.date.today()
    notes: list[str] = []
    if agency not in partnership.agreements:
        return CheckReport(shown, display_name(agency), extract, 2, "refused", "unknown_agency",
                           f"Not an agency of this partnership (agencies: {', '.join(partnership.agencies)}).")
    if extract is not None and extract not in partnership.extracts_of(agency):
        return CheckReport(shown, agency, None, 2, "refused", "unknown_extract",
                           f"Not an extract of {agency} (extracts: {', '.join(partnership.extracts_of(agency))}).")
    parsed = parse_drop_name(f"{agency}/{path.name}")
    if parsed is not None:
        name, date_text = path.name, path.name.rsplit("_", 1)[1][:8]
        extract = extract or parsed[1]
        if extract != parsed[1]:
            return CheckReport(shown, agency, extract, 2, "refused", "name_mismatch",
                               f"The file name says {parsed[1]!r} but the check was asked for {extract!r}.")
    elif extract is not None:
        date_text = today.strftime("%Y%m%d")
        name = f"{extract}_{date_text}.csv"
        notes.append(f"When you drop this file, name it {extract}_<YYYYMMDD>.csv (the as-of date), for example {name}.")
    else:
        return CheckReport(
            shown, agency, None, 2, "refused", "bad_name",
            "The file name does not follow <extract>_<YYYYMMDD>.csv; rename it, or say which extract it is.",
        )
    if not path.is_file():
        return CheckReport(shown, agency, extract, 2, "refused", "not_found", "The file does not exist or is not a file.")

    with tempfile.TemporaryDirectory(prefix="c2c-check-") as tmp:
        drop = Path(tmp) / "drop"
        (drop / agency).mkdir(parents=True)
        copy = drop / agency / name
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o600)
        # a fresh private copy: complete by construction (no settle time)
        decision: IntakeDecision = examine_drop(copy, drop, partnership, today, limits=DropLimits(settle_s=0))
    if decision.status == "refused":
        if decision.reason_code in _HEADER_CODES:
            notes.append(own_header_note(path))
        return CheckReport(shown, agency, extract, 2, "refused", decision.reason_code, decision.reason,
                           list(decision.warnings), None, notes)
    terms = partnership.terms(agency, extract)
    assert terms is not None
    if name.endswith(".tokens.csv"):
        # A tokenized file carries tokens instead of the contract's identifier columns: the contract's
        # suite does not describe it (yet), so only intake's checks apply.
        notes.append("Row-level checks are not run on tokenized (.tokens.csv) files yet; intake's checks passed.")
        code = 1 if decision.warnings else 0
        return CheckReport(shown, agency, extract, code, "warnings" if code else "ok", None, None,
                           list(decision.warnings), None, notes)
    try:
        table = read_extract(path)
    except ValidationInputError as exc:
        return CheckReport(shown, agency, extract, 2, "refused", exc.reason, str(exc), [], None, notes)
    ref_tables: dict[str, pa.Table] = {}
    for ref in terms.contract.references:
        ref_path = Path((references or {}).get(ref.extract) or path.with_name(f"{ref.extract}_{date_text}.csv"))
        if ref_path.is_file():
            try:
                ref_tables[ref.extract] = read_extract(ref_path)
            except ValidationInputError as exc:
                notes.append(f"{display_name(ref_path.name)} could not be read to check references: {exc}")
    try:
        result = validate_table(
            table, terms.contract, file_name=shown, references=ref_tables, previous=previous, drift=drift
        )
    except ValidationInputError as exc:
        return CheckReport(shown, agency, extract, 2, "refused", exc.reason, str(exc), [], None, notes)
    code = result.exit_code
    if code == 0 and notes and parsed is None:
        code = 1  # the name must still be fixed
    status = {0: "ok", 1: "warnings", 2: "refused"}[code]
    return CheckReport(shown, agency, extract, code, status, None, None, list(decision.warnings), result, notes)
